//! The workspace README's "Poke it by hand" walkthrough, every command run by
//! `examples/echo/tests/walkthrough.rs`: `wscat` in a pseudo-terminal (`script`), `curl`
//! against the running echo binary, and `echo invoke`; and its "Deploy to AWS" up to the
//! first command that needs an AWS account (the tools' virtualenv, `sam validate --lint`,
//! `sam build` of the chat), run after [`crate::lambda`]'s steps built the functions.
//!
//! wscat comes from npm, pinned in [`WALKTHROUGH_DIR`]'s `package.json` and lock file
//! (`npm ci`): a few hundred kilobytes next to minutes of compiling websocat on this
//! machine. [`INSTALL_TOOLS`] installs `curl`, `script` (bsdutils), Node.js and npm with
//! apt-get when they are missing.

use std::path::Path;

use crate::step::{Cmd, Step};

/// The npm package pinning wscat, relative to the workspace root.
pub const WALKTHROUGH_DIR: &str = "examples/echo/walkthrough";

/// Installs with apt-get whatever of `curl`, `script`, `node` and `npm` is missing (as
/// root, or through sudo).
pub const INSTALL_TOOLS: &str = r#"set -eu
missing=""
command -v curl >/dev/null 2>&1 || missing="curl"
command -v script >/dev/null 2>&1 || missing="$missing bsdutils"
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -z "$missing" ]; then
  echo "curl, script, node and npm are installed"
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
echo "installing with apt-get:$missing"
$sudo apt-get update
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y $missing
"#;

/// The tools, wscat, then the walkthrough test with wscat named by `WSCAT`.
pub fn walkthrough_steps(root: &Path) -> Vec<Step> {
    let dir = root.join(WALKTHROUGH_DIR);
    vec![
        Step::run(
            "curl, script, node and npm for the README walkthrough (apt-get install when missing)",
            Cmd::new("sh").args(["-c", INSTALL_TOOLS]),
        ),
        Step::run(
            format!("npm ci in {WALKTHROUGH_DIR} (wscat, pinned)"),
            Cmd::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir),
        ),
        Step::run(
            "the README's \"Poke it by hand\" (wscat in a terminal, curl, echo invoke) and \"Deploy to AWS\" up to sam deploy (venv, sam validate, sam build), and the telemetry README's sam build with HistoryApi=HTTP: every command run",
            Cmd::cargo()
                .args([
                    "test",
                    "-p",
                    "echo",
                    "--test",
                    "walkthrough",
                    "--",
                    "--ignored",
                ])
                .env("WSCAT", dir.join("node_modules/.bin/wscat")),
        ),
    ]
}
