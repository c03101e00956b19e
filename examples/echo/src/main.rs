//! The echo/whoami system: on the LocalGateway (`cargo run -p echo`), as a Lambda
//! function when `AWS_LAMBDA_RUNTIME_API` is set (one function for every route, posting
//! through the Management API; echo keeps nothing, so it needs no table), and
//! `echo invoke --event events/whoami.json` (events through the function as Lambda
//! runs them). See `wsgw_aws::runner` for the flags.

use wsgw_aws::runner::Runner;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    Runner::new(echo::router())
        .stateless()
        .hint(r#"connect any WebSocket client and send {"action":"whoami"} or {"action":"message","message":"hi"}"#)
        .main()
        .await
}
