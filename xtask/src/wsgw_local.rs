//! `wsgw local`'s DynamoDB tests: the template's tables on moto's server (the one the
//! pipeline started), moto installed, started and stopped by the command itself, into a
//! cache in `target/` so later runs reuse the install, and the chat and the telemetry
//! (its authorizer on) served to real clients with their tables on moto; then the chat's
//! page tests in headless Chromium through `wsgw local` ([`chat_page_steps`]).

use std::path::Path;

use crate::chat::{debug_binary, CHROMIUM, WEB_TESTS_DIR};
use crate::step::{Cmd, Step};

/// The cache directory `wsgw` installs moto into during the tests, relative to the
/// workspace root.
pub const CACHE_DIR: &str = "target/wsgw-cache";

/// `cargo test -p wsgw --features integration --test dynamodb` with `WSGW_CACHE_DIR`
/// in `target/`.
pub fn dynamodb_step(root: &Path) -> Step {
    Step::run(
        "wsgw local on moto's DynamoDB: template tables, moto started by the command (feature integration)",
        Cmd::cargo()
            .args(["test", "-p", "wsgw", "--features", "integration", "--test", "dynamodb"])
            .env("WSGW_CACHE_DIR", root.join(CACHE_DIR)),
    )
}

/// The chat page's tests once more, through `wsgw local --template
/// examples/chat/template.yaml --static-dir examples/chat/web` (`CHAT_THROUGH=wsgw-local`):
/// the page and its clients served by wsgw local, every event handled by a `chat`
/// process in Lambda mode, its tables on the moto wsgw local starts from the cache in
/// `target/`. Runs after [`crate::chat::web_steps`] (the browser, `npm ci`, the chat's
/// build).
pub fn chat_page_steps(root: &Path) -> Vec<Step> {
    vec![
        Step::run(
            "the wsgw binary for the chat page through wsgw local",
            Cmd::cargo().args(["build", "-p", "wsgw", "-p", "chat"]),
        ),
        Step::run(
            "the chat page through wsgw local in headless Chromium (node --test)",
            Cmd::new("node")
                .args(["--test", "chat.test.mjs"])
                .env("CHAT_THROUGH", "wsgw-local")
                .env("WSGW_BIN", debug_binary(root, "wsgw"))
                .env("WSGW_CACHE_DIR", root.join(CACHE_DIR))
                .env("CHROMIUM", CHROMIUM)
                .current_dir(root.join(WEB_TESTS_DIR)),
        ),
    ]
}
