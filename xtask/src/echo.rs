//! The echo example's step beyond `cargo test --workspace`: web pages attacking the
//! LocalGateway's `@connections` and `/metrics` through the echo binary, in real
//! headless Chromium (issue 20, finding 3).
//!
//! Set up like the chat page's test ([`crate::chat`]): `node --test` driving Debian's
//! Chromium with `playwright-core` pinned in its `package-lock.json`, after the chat's
//! step installed the browser.

use std::path::Path;

use crate::chat::{debug_binary, CHROMIUM};
use crate::step::{Cmd, Step};

/// The Node test package of the attack pages, relative to the workspace root.
pub const WEB_TESTS_DIR: &str = "examples/echo/web-tests";

/// `npm ci`, the echo binary, then `node --test` with the binary and the browser passed
/// by environment (the browser is installed by [`crate::chat::web_steps`], which runs
/// first).
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
            "the echo binary the attack pages run against",
            Cmd::cargo().args(["build", "-p", "echo"]),
        ),
        Step::run(
            "web pages against @connections and /metrics in headless Chromium: a no-cors POST from another site, DNS rebinding (node --test)",
            Cmd::new("node")
                .args(["--test", "attacks.test.mjs"])
                .env("ECHO_BIN", debug_binary(root, "echo"))
                .env("CHROMIUM", CHROMIUM)
                .current_dir(&web_tests),
        ),
    ]
}
