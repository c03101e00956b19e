//! The telemetry example's steps beyond `cargo test --workspace`: its tests against
//! moto's DynamoDB, and its dashboard in real headless Chromium.
//!
//! The dashboard test ([`WEB_TESTS_DIR`]) is set up like the chat page's
//! ([`crate::chat`]): `node --test` driving Debian's Chromium with `playwright-core`
//! pinned in its `package-lock.json`, after the chat's step installed the browser.

use std::path::Path;

use crate::chat::page_test_steps;
use crate::step::{Cmd, Step};

/// The Node test package of the dashboard, relative to the workspace root.
pub const WEB_TESTS_DIR: &str = "examples/telemetry/web-tests";

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

/// The dashboard test ([`crate::chat::page_test_steps`]; the browser is installed by
/// [`crate::chat::web_steps`], which runs first), then the same test through `wsgw local`
/// ([`crate::wsgw_local::page_steps`]).
pub fn web_steps(root: &Path) -> Vec<Step> {
    let mut steps = page_test_steps(
        root,
        WEB_TESTS_DIR,
        "telemetry",
        "dashboard.test.mjs",
        "the telemetry dashboard",
    );
    steps.extend(crate::wsgw_local::page_steps(
        root,
        WEB_TESTS_DIR,
        "telemetry",
        "dashboard.test.mjs",
        "the telemetry dashboard",
    ));
    steps
}
