#[tokio::main]
async fn main() -> std::process::ExitCode {
    wsgw_aws::runner::run(rooms::router()).await
}
