//! The chat example's steps beyond `cargo test --workspace`: its tests against moto's
//! DynamoDB, and its web page in real headless Chromium.
//!
//! The page test ([`WEB_TESTS_DIR`]) is a Node test (`node --test`) driving Debian's
//! Chromium ([`CHROMIUM`]) with `playwright-core` (pinned in its `package-lock.json`);
//! no browser is ever downloaded. [`INSTALL_BROWSER`] installs Debian's `chromium` (and
//! Node.js with npm, if missing) with apt-get when they are not there.

use std::path::{Path, PathBuf};

use crate::step::{Cmd, Step};

/// The Node test package of the chat page, relative to the workspace root.
pub const WEB_TESTS_DIR: &str = "examples/chat/web-tests";

/// Debian's Chromium, the browser the page test drives.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Installs Debian's `chromium` with apt-get when [`CHROMIUM`] is missing, and Node.js
/// and npm when they are (as root, or through sudo).
pub const INSTALL_BROWSER: &str = r#"set -eu
missing=""
[ -x /usr/bin/chromium ] || missing="chromium"
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -z "$missing" ]; then
  echo "chromium, node and npm are installed"
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
echo "installing with apt-get:$missing"
$sudo apt-get update
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y $missing
"#;

/// Where cargo puts build output: `$CARGO_TARGET_DIR` (relative to `root` when
/// relative), else `root/target`.
pub fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()) {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// The debug binary `cargo build -p NAME` makes, in [`target_dir`].
pub fn debug_binary(root: &Path, name: &str) -> PathBuf {
    let file = if cfg!(windows) {
        format!("{name}.exe")
    } else {
        name.to_owned()
    };
    target_dir(root).join("debug").join(file)
}

/// Runs after moto's server started (it needs `WSGW_DYNAMODB_ENDPOINT`): the chat in
/// Lambda mode and on `--dynamodb-endpoint`, against DynamoDB tables.
pub fn dynamodb_step() -> Step {
    Step::run(
        "chat on moto's DynamoDB: Lambda mode and --dynamodb-endpoint (feature integration)",
        Cmd::cargo().args([
            "test",
            "-p",
            "chat",
            "--features",
            "integration",
            "--test",
            "lambda_mode",
            "--test",
            "dynamodb_local",
        ]),
    )
}

/// The page test: Chromium (installed when missing), then [`page_test_steps`], then the
/// same page test through `wsgw local` ([`crate::wsgw_local::page_steps`]).
pub fn web_steps(root: &Path) -> Vec<Step> {
    let mut steps = vec![Step::run(
        "Debian's chromium, node and npm (apt-get install when missing)",
        Cmd::new("sh").args(["-c", INSTALL_BROWSER]),
    )];
    steps.extend(page_test_steps(
        root,
        WEB_TESTS_DIR,
        "chat",
        "chat.test.mjs",
        "the chat page",
    ));
    steps.extend(crate::wsgw_local::page_steps(
        root,
        WEB_TESTS_DIR,
        "chat",
        "chat.test.mjs",
        "the chat page",
    ));
    steps
}

/// One example's page test, once the browser is installed: `npm ci` in `web_tests`
/// (playwright-core, pinned), `cargo build -p example`, then `node --test test_file`
/// with the binary in `{EXAMPLE}_BIN` and the browser in `CHROMIUM` (read by
/// `examples/web-support/binary.mjs`).
pub fn page_test_steps(
    root: &Path,
    web_tests: &str,
    example: &str,
    test_file: &str,
    what: &str,
) -> Vec<Step> {
    let dir = root.join(web_tests);
    vec![
        Step::run(
            format!("npm ci in {web_tests} (playwright-core, pinned)"),
            Cmd::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir),
        ),
        Step::run(
            format!("the {example} binary for {what}"),
            Cmd::cargo().args(["build", "-p", example]),
        ),
        Step::run(
            format!("{what} in headless Chromium (node --test)"),
            Cmd::new("node")
                .args(["--test", test_file])
                .env(
                    format!("{}_BIN", example.to_ascii_uppercase()),
                    debug_binary(root, example),
                )
                .env("CHROMIUM", CHROMIUM)
                .current_dir(&dir),
        ),
    ]
}
