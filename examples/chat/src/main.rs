//! The chat system: on the LocalGateway with its web page at `/` (`cargo run -p chat`;
//! `--dynamodb-endpoint URL` keeps everything in DynamoDB, tables created when missing),
//! as a Lambda function when `AWS_LAMBDA_RUNTIME_API` is set (DynamoDB tables
//! `WSGW_CONNECTIONS_TABLE` and `WSGW_HISTORY_TABLE`, the Management API), and `chat
//! invoke --event events/connect.json --event events/sendmessage.json`. JWT auth is on
//! when `WSGW_JWT_SECRET` or `WSGW_JWT_PUBLIC_KEY_FILE` is set. See `wsgw_aws::runner`.

use clap::Parser;
use wsgw_aws::runner::{Args, Runner};
use wsgw_memory::gateway::Assets;

/// Run the chat: the web page at http://ADDR/, the WebSocket API at ws://ADDR.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    wsgw: Args,

    /// Days to keep messages, session records and events; 0 keeps them until deleted.
    #[arg(long, env = "CHAT_RETENTION_DAYS", value_name = "DAYS", global = true, default_value_t = chat::DEFAULT_RETENTION_DAYS)]
    retention_days: u32,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = chat::ChatConfig::default().retention_days(cli.retention_days);
    Runner::new(chat::router(chat::ChatState::new().with_config(config)))
        .with_history()
        .jwt_from_env()
        .assets(Assets::new().file("/index.html", chat::INDEX_HTML))
        .hint("open http://{addr}/ in a browser, or connect WebSocket clients to ws://{addr}")
        .run(cli.wsgw)
        .await
}
