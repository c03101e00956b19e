//! The telemetry example's steps beyond `cargo test --workspace`: its tests against
//! moto's DynamoDB, and its dashboard in real headless Chromium.
//!
//! The dashboard test ([`WEB_TESTS_DIR`]) is set up like the chat page's
//! ([`crate::chat`]): `node --test` driving Debian's Chromium with `playwright-core`
//! pinned in its `package-lock.json`, after the chat's step installed the browser.

use std::path::{Path, PathBuf};

use crate::chat::{debug_binary, CHROMIUM};
use crate::step::{Cmd, Step};

/// The Node test package of the dashboard, relative to the workspace root.
pub const WEB_TESTS_DIR: &str = "examples/telemetry/web-tests";

/// The debug `telemetry` binary that `cargo build -p telemetry` makes.
pub fn telemetry_binary(root: &Path) -> PathBuf {
    debug_binary(root, "telemetry")
}

/// Runs after moto's server started (it needs `WSGW_DYNAMODB_ENDPOINT`): history and
/// the conditional push update on DynamoDB, `--dynamodb-endpoint`, and Lambda mode.
pub fn dynamodb_step() -> Step {
    Step::run(
        "telemetry on moto's DynamoDB: history, push intervals, Lambda mode (feature integration)",
        Cmd::cargo().args([
            "test",
            "-p",
            "telemetry",
            "--features",
            "integration",
            "--test",
            "dynamodb",
            "--test",
            "lambda_mode",
        ]),
    )
}

/// The dashboard test: `npm ci`, the telemetry binary, then `node --test` with the
/// binary and the browser passed by environment (the browser is installed by
/// [`crate::chat::web_steps`], which runs first).
pub fn web_steps(root: &Path) -> Vec<Step> {
    let web_tests = root.join(WEB_TESTS_DIR);
    vec![
        Step::run(
            format!("npm ci in {WEB_TESTS_DIR} (playwright-core, pinned)"),
            Cmd::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&web_tests),
        ),
        Step::run(
            "the telemetry binary the dashboard test runs",
            Cmd::cargo().args(["build", "-p", "telemetry"]),
        ),
        Step::run(
            "the telemetry dashboard in headless Chromium (node --test)",
            Cmd::new("node")
                .args(["--test", "dashboard.test.mjs"])
                .env("TELEMETRY_BIN", telemetry_binary(root))
                .env("CHROMIUM", CHROMIUM)
                .current_dir(&web_tests),
        ),
    ]
}
