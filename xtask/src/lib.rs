//! The project's task runner: `cargo xtask <task>` (an alias in `.cargo/config.toml`).
//!
//! A task is a list of named [`Step`]s run in order by a [`Pipeline`]: the first failing
//! step ends the task with that step's exit code, and every service a step started (an
//! emulator, a browser) is stopped when the task ends, however it ends.
//!
//! - `cargo xtask test`: every test of the project ([`test_steps`]), including wsgw-aws's
//!   the chat's and the telemetry's DynamoDB tests against moto's server ([`moto`]),
//!   which it installs, starts and stops, the chat page and the telemetry dashboard in
//!   headless Chromium ([`chat`], [`telemetry`]), web pages attacking the LocalGateway's
//!   `@connections` in headless Chromium ([`echo`]), `wsgw local`'s tables and its own moto
//!   and the chat page through `wsgw local` ([`wsgw_local`]), every command of the README's "Poke it
//!   by hand" walkthrough ([`walkthrough`]), Python's `websockets` and boto3 checking
//!   that the example binaries behave as API Gateway does ([`parity`]), the ESP32-C3 firmware built and turned
//!   into a flashable image ([`firmware`]), every `cargo fuzz` target for a bounded
//!   time ([`fuzz`]), and the examples' arm64 Lambda binaries built once, checked and
//!   run under qemu against the x86-64 build ([`lambda`]).
//!   The published crates are also checked as crates.io and docs.rs see them: API docs
//!   with rustdoc warnings denied, `cargo package` and its archives, the MSRV toolchain
//!   ([`publish`]).
//! - `cargo xtask package`: only the packaging and its checks ([`publish::package`]).
//! - `cargo xtask ci`: formatting, clippy, then the test steps ([`ci_steps`]).
//! - `cargo xtask setup-moto`: only install the pinned Python tools (moto, cfn-lint, the
//!   SAM CLI, cargo-lambda) into `.venv/` ([`python::ensure_tools`]).
//! - `cargo xtask lint-templates`: cfn-lint on every SAM template ([`cfn_lint`]), the last
//!   step of `cargo xtask test`.
//! - `cargo xtask firmware`: only the firmware's steps ([`firmware::firmware_steps`]).
//! - `cargo xtask release-profiles [NAME...]`: the release-profile settings tried for the
//!   Lambda functions, built and measured side by side ([`release_profiles`]).
//! - `cargo xtask bench [--quick]`: the benchmarks side by side with the peers
//!   ([`bench::bench_steps`]); `--quick` is the smoke run that ends `cargo xtask test`.
#![warn(missing_docs)]

pub mod bench;
pub mod budgets;
pub mod cfn_lint;
pub mod chat;
pub mod echo;
pub mod firmware;
pub mod fuzz;
pub mod lambda;
pub mod moto;
pub mod parity;
pub mod publish;
pub mod python;
pub mod release_profiles;
pub mod report;
pub mod step;
pub mod telemetry;
pub mod walkthrough;
pub mod wsgw_local;

use std::io;
use std::path::PathBuf;

pub use step::{
    free_port, Action, ChildGuard, Cmd, Failure, Pipeline, Ready, Service, Step, StepFailure,
};

/// The workspace root (the parent of the `xtask` package).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    match manifest_dir.parent() {
        Some(root) => root.to_path_buf(),
        None => manifest_dir,
    }
}

/// Every test of the project, in the order they run, with moto's DynamoDB server on a
/// free loopback port (see [`test_steps_on`]).
pub fn test_steps() -> io::Result<Vec<Step>> {
    Ok(test_steps_on(free_port()?))
}

/// Every test of the project, in the order they run, moto's DynamoDB server listening on
/// `moto_port`.
///
/// Features are unified across a `--workspace` build, so crates whose features change
/// what is tested get their own step with exactly those features.
pub fn test_steps_on(moto_port: u16) -> Vec<Step> {
    let mut steps = vec![
        Step::run(
            "unit and integration tests of every crate",
            Cmd::cargo().args(["test", "--workspace", "--all-targets"]),
        ),
        Step::run(
            "doctests of every crate",
            Cmd::cargo().args(["test", "--workspace", "--doc"]),
        ),
        Step::run(
            "wsgw-core with its mocks and the conformance suite",
            Cmd::cargo().args(["test", "-p", "wsgw-core", "--features", "mock,conformance"]),
        ),
        Step::run(
            "wsgw-memory with the LocalGateway",
            Cmd::cargo().args(["test", "-p", "wsgw-memory", "--features", "gateway"]),
        ),
    ];
    steps.extend(publish::publish_steps(&workspace_root()));
    steps.extend(moto::dynamodb_steps(&workspace_root(), moto_port));
    steps.push(chat::dynamodb_step());
    steps.push(telemetry::dynamodb_step());
    steps.push(wsgw_local::dynamodb_step(&workspace_root()));
    steps.push(cfn_lint::lint_step());
    steps.extend(lambda::lambda_steps(&workspace_root()));
    steps.extend(chat::web_steps(&workspace_root()));
    steps.extend(walkthrough::walkthrough_steps(&workspace_root()));
    steps.extend(parity::parity_steps(&workspace_root()));
    steps.extend(echo::web_steps(&workspace_root()));
    steps.extend(telemetry::web_steps(&workspace_root()));
    steps.extend(firmware::firmware_steps(&workspace_root()));
    steps.extend(fuzz::fuzz_steps(&workspace_root()));
    steps.push(bench::smoke_step());
    steps
}

/// What CI checks: formatting, clippy with warnings denied, then [`test_steps`].
pub fn ci_steps() -> io::Result<Vec<Step>> {
    Ok(ci_steps_on(free_port()?))
}

/// [`ci_steps`] with moto's DynamoDB server listening on `moto_port`.
pub fn ci_steps_on(moto_port: u16) -> Vec<Step> {
    let mut steps = vec![
        Step::run("formatting", Cmd::cargo().args(["fmt", "--all", "--check"])),
        Step::run(
            "clippy, warnings denied",
            Cmd::cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ]),
        ),
    ];
    steps.extend(test_steps_on(moto_port));
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cargo_args(step: &Step) -> Vec<String> {
        step.cmd()
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn test_runs_all_targets_doctests_and_each_feature_set_separately() {
        let steps: Vec<Vec<String>> = test_steps_on(4567).iter().map(cargo_args).collect();
        let root = workspace_root();
        let msrv = publish::declared_msrv(&root).expect("rust-version");
        let parity_args: Vec<String> = std::iter::once(root.join(parity::SCRIPT))
            .chain(["echo", "chat", "telemetry"].map(|example| chat::debug_binary(&root, example)))
            .map(|path| path.to_string_lossy().into_owned())
            .collect();

        assert_eq!(
            steps,
            vec![
                vec!["test", "--workspace", "--all-targets"],
                vec!["test", "--workspace", "--doc"],
                vec!["test", "-p", "wsgw-core", "--features", "mock,conformance"],
                vec!["test", "-p", "wsgw-memory", "--features", "gateway"],
                vec!["doc", "--workspace", "--all-features", "--no-deps"],
                vec!["xtask", "package"],
                vec!["toolchain", "install", &msrv, "--profile", "minimal"],
                vec![
                    "run",
                    &msrv,
                    "cargo",
                    "check",
                    "--locked",
                    "-p",
                    "wsgw-core",
                    "-p",
                    "wsgw-memory",
                    "-p",
                    "wsgw-aws",
                    "--all-features"
                ],
                vec!["xtask", "setup-moto"],
                vec!["-c", moto::MOTO_SERVER, "-H", "127.0.0.1", "-p", "4567"],
                moto::DYNAMODB_TEST_ARGS.to_vec(),
                vec![
                    "test",
                    "-p",
                    "chat",
                    "--features",
                    "integration",
                    "--test",
                    "lambda_mode",
                    "--test",
                    "dynamodb_local"
                ],
                vec![
                    "test",
                    "-p",
                    "telemetry",
                    "--features",
                    "integration",
                    "--test",
                    "dynamodb",
                    "--test",
                    "lambda_mode"
                ],
                vec![
                    "test",
                    "-p",
                    "wsgw",
                    "--features",
                    "integration",
                    "--test",
                    "dynamodb"
                ],
                vec!["xtask", "lint-templates"],
                vec!["-c", lambda::SETUP],
                vec![
                    "lambda",
                    "build",
                    "--release",
                    "--arm64",
                    "--bin",
                    "echo",
                    "--bin",
                    "chat",
                    "--bin",
                    "telemetry"
                ],
                vec![
                    "test",
                    "-p",
                    "xtask",
                    "--test",
                    "bootstraps",
                    "--",
                    "--ignored",
                    "--nocapture"
                ],
                vec![
                    "test",
                    "-p",
                    "echo",
                    "--test",
                    "lambda_mode",
                    "--",
                    "--ignored"
                ],
                vec![
                    "test",
                    "-p",
                    "chat",
                    "--features",
                    "integration",
                    "--test",
                    "lambda_mode",
                    "--",
                    "--ignored"
                ],
                vec![
                    "test",
                    "-p",
                    "telemetry",
                    "--features",
                    "integration",
                    "--test",
                    "lambda_mode",
                    "--",
                    "--ignored"
                ],
                vec!["-c", chat::INSTALL_BROWSER],
                vec!["ci", "--no-audit", "--no-fund"],
                vec!["build", "-p", "chat"],
                vec!["--test", "chat.test.mjs"],
                vec!["build", "-p", "wsgw", "-p", "chat"],
                vec!["--test", "chat.test.mjs"],
                vec!["-c", walkthrough::INSTALL_TOOLS],
                vec!["ci", "--no-audit", "--no-fund"],
                vec![
                    "test",
                    "-p",
                    "echo",
                    "--test",
                    "walkthrough",
                    "--",
                    "--ignored"
                ],
                vec!["build", "-p", "echo", "-p", "chat", "-p", "telemetry"],
                parity_args.iter().map(String::as_str).collect(),
                vec!["ci", "--no-audit", "--no-fund"],
                vec!["build", "-p", "echo"],
                vec!["--test", "attacks.test.mjs"],
                vec!["ci", "--no-audit", "--no-fund"],
                vec!["build", "-p", "telemetry"],
                vec!["--test", "dashboard.test.mjs"],
                vec!["build", "-p", "wsgw", "-p", "telemetry"],
                vec!["--test", "dashboard.test.mjs"],
                vec!["-c", firmware::SETUP],
                vec!["build", "--release", "--locked"],
                vec!["-c", firmware::SAVE_IMAGE],
                vec!["-c", fuzz::SETUP],
                vec!["-c", fuzz::RUN],
                vec!["xtask", "bench", "--quick"],
            ]
        );
    }

    #[test]
    fn ci_checks_formatting_and_clippy_before_the_test_steps() {
        let steps = ci_steps_on(4567);

        assert_eq!(cargo_args(&steps[0]), vec!["fmt", "--all", "--check"]);
        assert_eq!(
            cargo_args(&steps[1]),
            vec![
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings"
            ]
        );
        assert_eq!(steps[2..], test_steps_on(4567)[..]);
    }

    #[test]
    fn the_workspace_root_holds_the_workspace_manifest() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("xtask").is_dir());
    }
}
