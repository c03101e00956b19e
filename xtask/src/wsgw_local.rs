//! `wsgw local`'s DynamoDB tests: the template's tables on moto's server (the one the
//! pipeline started), moto installed, started and stopped by the command itself, into a
//! cache in `target/` so later runs reuse the install, and the chat and the telemetry
//! (its authorizer on) served to real clients with their tables on moto.

use std::path::Path;

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
