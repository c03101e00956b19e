//! Local = deployed, seen by independent real clients: Python's `websockets` and boto3
//! against the three example binaries (`echo`, `chat`, `telemetry`), each on a free
//! loopback port, checking API Gateway's behaviour where the LocalGateway once differed
//! ([`SCRIPT`]: binary frames close with 1003, a wrong stage is refused at the
//! handshake, bystanders keep working, `@connections` is checked as SigV4 is on AWS).
//!
//! The clients are pinned in the project's one requirements file
//! ([`python::REQUIREMENTS`](crate::python::REQUIREMENTS)) and installed into `.venv/` with every other Python tool by
//! the `setup-moto` step that starts `cargo xtask test`; [`parity_steps`] is how
//! `cargo xtask test` runs the check.

use std::path::Path;

use crate::chat::debug_binary;
use crate::python::venv_python;
use crate::step::{Cmd, Step};

/// The check script, relative to the workspace root.
pub const SCRIPT: &str = "xtask/parity/local_vs_deployed.py";

/// The example binaries the script runs, in its argument order.
pub const EXAMPLES: [&str; 3] = ["echo", "chat", "telemetry"];

/// The three binaries, then the script against them (the clients are in `.venv/`
/// already: see the module docs).
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
        let args: Vec<String> = steps[1]
            .cmd()
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        assert_eq!(steps[1].cmd().program(), venv_python(root).as_os_str());
        assert_eq!(args[0], root.join(SCRIPT).to_string_lossy());
        for (arg, example) in args[1..].iter().zip(EXAMPLES) {
            assert!(arg.ends_with(example), "{arg}");
        }
        assert_eq!(args.len(), 1 + EXAMPLES.len());
    }

    #[test]
    fn the_script_exists_and_its_clients_are_pinned_in_the_requirements() {
        let root = crate::workspace_root();
        assert!(root.join(SCRIPT).is_file());
        let requirements = std::fs::read_to_string(root.join(crate::python::REQUIREMENTS))
            .expect("xtask/requirements.txt is readable");
        for client in ["websockets==", "boto3=="] {
            assert!(
                requirements.lines().any(|line| line.starts_with(client)),
                "{client} is not pinned in {}",
                crate::python::REQUIREMENTS
            );
        }
    }
}
