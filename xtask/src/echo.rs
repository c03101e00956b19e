//! The echo example's step beyond `cargo test --workspace`: web pages attacking the
//! LocalGateway's `@connections` and `/metrics` through the echo binary, in real
//! headless Chromium (issue 20, finding 3).
//!
//! Set up like the chat page's test ([`crate::chat`]): `node --test` driving Debian's
//! Chromium with `playwright-core` pinned in its `package-lock.json`, after the chat's
//! step installed the browser.

use std::path::Path;

use crate::chat::page_test_steps;
use crate::step::Step;

/// The Node test package of the attack pages, relative to the workspace root.
pub const WEB_TESTS_DIR: &str = "examples/echo/web-tests";

/// The attack pages' test ([`crate::chat::page_test_steps`]; the browser is installed
/// by [`crate::chat::web_steps`], which runs first).
pub fn web_steps(root: &Path) -> Vec<Step> {
    page_test_steps(
        root,
        WEB_TESTS_DIR,
        "echo",
        "attacks.test.mjs",
        "web pages against @connections and /metrics (a no-cors POST from another site, DNS rebinding)",
    )
}
