//! Local = deployed, seen by independent real clients: Python's `websockets` and boto3
//! against the three example binaries (`echo`, `chat`, `telemetry`), each on a free
//! loopback port, checking API Gateway's behaviour where the LocalGateway once differed
//! ([`SCRIPT`]: binary frames close with 1003, a wrong stage is refused at the
//! handshake, bystanders keep working, `@connections` is checked as SigV4 is on AWS).
//!
//! The clients are pinned ([`REQUIREMENTS`]) and installed into the virtualenv `.venv/`
//! moto and cfn-lint share ([`moto::ensure_installed`]); `cargo xtask setup-parity`
//! installs them, [`parity_steps`] is how `cargo xtask test` runs it all.

use std::path::Path;

use crate::chat::debug_binary;
use crate::moto::{self, venv_python, SetupError};
use crate::step::{Cmd, Step};

/// The Python clients, pinned, each with the snippet that checks it is installed.
pub const REQUIREMENTS: [(&str, &str); 2] = [
    (
        "websockets==17.4",
        "import importlib.metadata as m, sys; sys.exit(0 if m.version('websockets') == '17.4' else 1)",
    ),
    (
        "boto3==1.44.18",
        "import importlib.metadata as m, sys; sys.exit(0 if m.version('boto3') == '1.44.18' else 1)",
    ),
];

/// The check script, relative to the workspace root.
pub const SCRIPT: &str = "xtask/parity/local_vs_deployed.py";

/// The example binaries the script runs, in its argument order.
pub const EXAMPLES: [&str; 3] = ["echo", "chat", "telemetry"];

/// Makes `.venv/` hold every one of [`REQUIREMENTS`] (`cargo xtask setup-parity`).
pub fn ensure_clients(root: &Path) -> Result<(), SetupError> {
    for (requirement, check) in REQUIREMENTS {
        moto::ensure_installed(root, requirement, check)?;
    }
    Ok(())
}

/// The clients, the three binaries, then the script against them.
pub fn parity_steps(root: &Path) -> Vec<Step> {
    let mut build = Cmd::cargo().arg("build");
    for example in EXAMPLES {
        build = build.args(["-p", example]);
    }
    let mut check = Cmd::new(venv_python(root)).arg(root.join(SCRIPT));
    for example in EXAMPLES {
        check = check.arg(debug_binary(root, example));
    }
    vec![
        Step::run(
            "Python websockets and boto3 for the local-vs-deployed check (pinned, in .venv/)",
            Cmd::cargo().args(["xtask", "setup-parity"]),
        ),
        Step::run("the echo, chat and telemetry binaries", build),
        Step::run(
            "local = deployed: Python websockets and boto3 against echo, chat and telemetry (binary frame 1003, wrong stage 403, bystanders, SigV4 on @connections)",
            check,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_runs_against_every_example_binary_in_order() {
        let root = Path::new("/work");
        let steps = parity_steps(root);
        let args: Vec<String> = steps[2]
            .cmd()
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        assert_eq!(steps[2].cmd().program(), venv_python(root).as_os_str());
        assert_eq!(args[0], root.join(SCRIPT).to_string_lossy());
        for (arg, example) in args[1..].iter().zip(EXAMPLES) {
            assert!(arg.ends_with(example), "{arg}");
        }
        assert_eq!(args.len(), 1 + EXAMPLES.len());
    }

    #[test]
    fn the_script_exists_and_every_requirement_is_pinned_exactly() {
        assert!(crate::workspace_root().join(SCRIPT).is_file());
        for (requirement, check) in REQUIREMENTS {
            let (name, version) = requirement.split_once("==").expect("pinned with ==");
            assert!(check.contains(name) && check.contains(version), "{check}");
        }
    }
}
