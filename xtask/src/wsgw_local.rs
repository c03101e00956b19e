//! `wsgw local`'s DynamoDB tests: the template's tables on moto's server (the one the
//! pipeline started), moto installed, started and stopped by the command itself, into a
//! cache in `target/` so later runs reuse the install, and the chat and the telemetry
//! (its authorizer on) served to real clients with their tables on moto; then the chat's
//! and the telemetry's page tests in headless Chromium through `wsgw local`
//! ([`page_steps`]).

use std::path::Path;

use crate::chat::{debug_binary, CHROMIUM};
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

/// An example's page tests once more, through `wsgw local --template
/// examples/EXAMPLE/template.yaml --static-dir examples/EXAMPLE/web`
/// (`{EXAMPLE}_THROUGH=wsgw-local`): the page, its clients and its REST API served by
/// wsgw local, every event handled by the example's binary as a process in Lambda mode,
/// its tables on the moto wsgw local starts from the cache in `target/`. `{EXAMPLE}_BIN`
/// is the example's binary for what the tests run beside it (the telemetry's simulated
/// devices). Runs after [`crate::chat::page_test_steps`] for the example (the browser,
/// `npm ci`, the example's build).
pub fn page_steps(
    root: &Path,
    web_tests: &str,
    example: &str,
    test_file: &str,
    what: &str,
) -> Vec<Step> {
    let example_variable = example.to_ascii_uppercase();
    vec![
        Step::run(
            format!("the wsgw binary for {what} through wsgw local"),
            Cmd::cargo().args(["build", "-p", "wsgw", "-p", example]),
        ),
        Step::run(
            format!("{what} through wsgw local in headless Chromium (node --test)"),
            Cmd::new("node")
                .args(["--test", test_file])
                .env(format!("{example_variable}_THROUGH"), "wsgw-local")
                .env(
                    format!("{example_variable}_BIN"),
                    debug_binary(root, example),
                )
                .env("WSGW_BIN", debug_binary(root, "wsgw"))
                .env("WSGW_CACHE_DIR", root.join(CACHE_DIR))
                .env("CHROMIUM", CHROMIUM)
                .current_dir(root.join(web_tests)),
        ),
    ]
}
