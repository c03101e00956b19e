//! moto's DynamoDB server, for the DynamoDB tests of wsgw-aws and the systems on it.
//!
//! `cargo xtask setup-moto` ([`ensure_moto`]) makes `.venv/` hold the pinned Python tools
//! ([`python::REQUIREMENTS`], moto's server among them); it is the first of the
//! [`dynamodb_steps`]. The other two start moto's server on a free loopback port and run
//! the tests with `AWS_ENDPOINT_URL_DYNAMODB` (the AWS SDKs' own name) pointing at it. The pipeline stops the server
//! when the task ends, passed or failed.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::python::{self, REQUIREMENTS};
pub use crate::python::{venv_python, SetupError, VENV_DIR};
use crate::step::{Cmd, Ready, Service, Step};

/// The variable the DynamoDB integration tests read.
pub const ENDPOINT_ENV: &str = "AWS_ENDPOINT_URL_DYNAMODB";

/// `cargo test` of wsgw-aws's DynamoDB test files, their ignored tests included.
pub const DYNAMODB_TEST_ARGS: [&str; 11] = [
    "test",
    "-p",
    "wsgw-aws",
    "--test",
    "dynamo_conformance",
    "--test",
    "churn_dynamodb",
    "--test",
    "dynamo_throttling_proxy",
    "--",
    "--include-ignored",
];

/// moto's server handling one request at a time, so that conditional writes are atomic
/// as on DynamoDB: the launcher `wsgw local` uses too.
pub const MOTO_SERVER: &str = include_str!("../../wsgw-aws/cli/moto_server.py");

/// How long moto's server may take to accept connections.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The three steps: make sure moto is installed, start its server on `port`, run
/// wsgw-aws's DynamoDB tests (`#[ignore]`d in a plain `cargo test`) against it.
pub fn dynamodb_steps(root: &Path, port: u16) -> Vec<Step> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    vec![
        Step::run(
            format!("Python virtualenv {VENV_DIR}/ with {REQUIREMENTS} (moto, cfn-lint, the SAM CLI, cargo-lambda)"),
            Cmd::cargo().args(["xtask", "setup-moto"]),
        ),
        Step::start(
            "moto's DynamoDB server on loopback",
            Service::new(Cmd::new(venv_python(root)).args([
                "-c",
                MOTO_SERVER,
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ]))
            .ready_when(Ready::TcpPort {
                addr,
                timeout: STARTUP_TIMEOUT,
            })
            .export(ENDPOINT_ENV, format!("http://{addr}")),
        ),
        Step::run(
            "wsgw-aws against moto's DynamoDB (its ignored tests)",
            Cmd::cargo().args(DYNAMODB_TEST_ARGS),
        ),
    ]
}

/// Makes `.venv/` in `root` hold the pinned Python tools, moto's server among them (see
/// [`python::ensure_tools`]).
pub fn ensure_moto(root: &Path) -> Result<(), SetupError> {
    python::ensure_tools(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_listens_on_loopback_on_the_given_port_and_its_url_reaches_the_tests() {
        let root = Path::new("/work");
        let steps = dynamodb_steps(root, 4567);

        assert_eq!(steps.len(), 3);
        let server = &steps[1];
        assert_eq!(server.cmd().program(), venv_python(root).as_os_str());
        let args: Vec<_> = server.cmd().get_args().collect();
        assert_eq!(args, ["-c", MOTO_SERVER, "-H", "127.0.0.1", "-p", "4567"]);
        match &server.action {
            crate::Action::Start(service) => assert_eq!(
                *service,
                Service::new(server.cmd().clone())
                    .ready_when(Ready::TcpPort {
                        addr: SocketAddr::from(([127, 0, 0, 1], 4567)),
                        timeout: STARTUP_TIMEOUT,
                    })
                    .export(ENDPOINT_ENV, "http://127.0.0.1:4567")
            ),
            other => panic!("the server is a started service, not {other:?}"),
        }
    }

    #[test]
    fn moto_is_installed_before_the_server_starts_and_the_tests_run_last() {
        let steps = dynamodb_steps(Path::new("/work"), 4567);
        let args = |step: &Step| -> Vec<String> {
            step.cmd()
                .get_args()
                .map(|arg| arg.to_string_lossy().into_owned())
                .collect()
        };

        assert_eq!(args(&steps[0]), ["xtask", "setup-moto"]);
        assert_eq!(args(&steps[2]), DYNAMODB_TEST_ARGS);
    }
}
