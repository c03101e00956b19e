//! moto's DynamoDB server, for wsgw-aws's `integration` tests.
//!
//! [`ensure_moto`] makes `.venv/` (a Python virtualenv in the workspace root, ignored by
//! git) hold [`MOTO_REQUIREMENT`]; it is what `cargo xtask setup-moto` runs and the first
//! of the [`dynamodb_steps`]. The other two start moto's server on a free loopback port
//! and run the tests with `WSGW_DYNAMODB_ENDPOINT` pointing at it. The pipeline stops the
//! server when the task ends, passed or failed.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::step::{Cmd, Ready, Service, Step};

/// What is installed into the virtualenv: moto's server, pinned to major version 5.
pub const MOTO_REQUIREMENT: &str = "moto[server]>=5,<6";

/// The virtualenv's directory, relative to the workspace root.
pub const VENV_DIR: &str = ".venv";

/// The variable naming the Python used to create the virtualenv (default `python3`).
pub const PYTHON_ENV: &str = "WSGW_PYTHON";

/// The variable the DynamoDB integration tests read.
pub const ENDPOINT_ENV: &str = "WSGW_DYNAMODB_ENDPOINT";

/// How long moto's server may take to accept connections.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The virtualenv's Python.
pub fn venv_python(root: &Path) -> PathBuf {
    if cfg!(windows) {
        root.join(VENV_DIR).join("Scripts").join("python.exe")
    } else {
        root.join(VENV_DIR).join("bin").join("python")
    }
}

/// The three steps: make sure moto is installed, start its server on `port`, run
/// wsgw-aws's tests with the `integration` feature against it.
pub fn dynamodb_steps(root: &Path, port: u16) -> Vec<Step> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    vec![
        Step::run(
            format!("Python virtualenv {VENV_DIR}/ with {MOTO_REQUIREMENT}"),
            Cmd::cargo().args(["xtask", "setup-moto"]),
        ),
        Step::start(
            "moto's DynamoDB server on loopback",
            Service::new(Cmd::new(venv_python(root)).args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ]))
            .ready_when(Ready::TcpPort {
                addr,
                timeout: STARTUP_TIMEOUT,
            })
            .export(ENDPOINT_ENV, format!("http://{addr}")),
        ),
        Step::run(
            "wsgw-aws against moto's DynamoDB (feature integration)",
            Cmd::cargo().args(["test", "-p", "wsgw-aws", "--features", "integration"]),
        ),
    ]
}

/// Why moto could not be installed.
#[derive(Debug)]
pub struct SetupError(String);

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SetupError {}

/// Runs a command with inherited output; `Ok(false)` when it ran and failed.
fn run(command: &mut Command) -> Result<bool, SetupError> {
    eprintln!("xtask: $ {command:?}");
    command
        .status()
        .map(|status| status.success())
        .map_err(|error| {
            SetupError(format!(
                "could not run {:?}: {error}",
                command.get_program()
            ))
        })
}

/// Exits 0 when moto's server imports at a version matching [`MOTO_REQUIREMENT`].
const MOTO_CHECK: &str = "import importlib.metadata as m, moto.server, sys; \
                          sys.exit(0 if m.version('moto').split('.')[0] == '5' else 1)";

/// Whether the Python snippet `check` exits 0 in `python`.
fn passes(python: &Path, check: &str) -> bool {
    Command::new(python)
        .args(["-c", check])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// `python -m venv DIR`; on Debian without `python3-venv` (venv fails for lack of
/// `ensurepip`), installs that package with apt-get when running as root and tries again.
fn create_venv(python: &str, root: &Path) -> Result<(), SetupError> {
    let venv = root.join(VENV_DIR);
    let create = || {
        Command::new(python)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
    };
    eprintln!("xtask: $ {python} -m venv {}", venv.display());
    match create() {
        Ok(status) if status.success() => return Ok(()),
        Ok(_) => {}
        Err(error) => {
            return Err(SetupError(format!(
                "could not run `{python}` ({error}): install Python 3 (with pip and venv), \
                 or set {PYTHON_ENV} to a Python 3 interpreter"
            )))
        }
    }
    // A failed venv leaves a directory without pip behind.
    let _ = std::fs::remove_dir_all(&venv);
    let apt = Path::new("/usr/bin/apt-get").exists();
    if !(apt && is_root()) {
        return Err(SetupError(format!(
            "`{python} -m venv` failed: on Debian or Ubuntu install the `python3-venv` \
             package (apt-get install python3-venv), or set {PYTHON_ENV} to a Python 3 \
             interpreter that has the venv module"
        )));
    }
    eprintln!("xtask: `{python} -m venv` failed; installing Debian's python3-venv");
    run(Command::new("apt-get").arg("update").arg("-q"))?;
    if !run(Command::new("apt-get").args(["install", "-y", "-q", "python3-venv"]))? {
        return Err(SetupError(
            "apt-get install python3-venv failed".to_string(),
        ));
    }
    eprintln!("xtask: $ {python} -m venv {}", venv.display());
    match create() {
        Ok(status) if status.success() => Ok(()),
        _ => {
            let _ = std::fs::remove_dir_all(&venv);
            Err(SetupError(format!(
                "`{python} -m venv` still fails with python3-venv installed; set {PYTHON_ENV} \
                 to a Python 3 interpreter that has the venv module"
            )))
        }
    }
}

/// Makes `.venv/` in `root` hold [`MOTO_REQUIREMENT`]: reuses it when moto 5 already
/// imports there, otherwise creates the virtualenv (with the Python named by
/// `WSGW_PYTHON`, default `python3`) if needed and installs moto with pip.
pub fn ensure_moto(root: &Path) -> Result<(), SetupError> {
    ensure_installed(root, MOTO_REQUIREMENT, MOTO_CHECK)
}

/// Makes `.venv/` in `root` hold the pip `requirement`: reuses it when the Python snippet
/// `check` exits 0 there, otherwise creates the virtualenv if needed (see
/// [`ensure_moto`]) and installs `requirement` with pip. Every Python tool of the tasks
/// shares the one virtualenv.
pub fn ensure_installed(root: &Path, requirement: &str, check: &str) -> Result<(), SetupError> {
    let python = venv_python(root);
    if python.exists() && passes(&python, check) {
        eprintln!(
            "xtask: {} already has {requirement}",
            root.join(VENV_DIR).display()
        );
        return Ok(());
    }
    if !python.exists() {
        let base = std::env::var(PYTHON_ENV).unwrap_or_else(|_| "python3".to_string());
        create_venv(&base, root)?;
    }
    let installed = run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--quiet",
        requirement,
    ]))?;
    if !installed {
        return Err(SetupError(format!(
            "pip could not install {requirement} into {VENV_DIR}/ (is PyPI reachable?); \
             delete {VENV_DIR}/ to start over"
        )));
    }
    if !passes(&python, check) {
        return Err(SetupError(format!(
            "{requirement} was installed but does not import in {VENV_DIR}/: \
             delete {VENV_DIR}/ to start over"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_listens_on_loopback_on_the_given_port_and_its_url_reaches_the_tests() {
        let root = Path::new("/work");
        let steps = dynamodb_steps(root, 4567);

        assert_eq!(steps.len(), 3);
        let server = &steps[1];
        assert_eq!(server.cmd().program(), venv_python(root).as_os_str());
        let args: Vec<_> = server.cmd().get_args().collect();
        assert_eq!(args, ["-m", "moto.server", "-H", "127.0.0.1", "-p", "4567"]);
        match &server.action {
            crate::Action::Start(service) => assert_eq!(
                *service,
                Service::new(server.cmd().clone())
                    .ready_when(Ready::TcpPort {
                        addr: SocketAddr::from(([127, 0, 0, 1], 4567)),
                        timeout: STARTUP_TIMEOUT,
                    })
                    .export(ENDPOINT_ENV, "http://127.0.0.1:4567")
            ),
            other => panic!("the server is a started service, not {other:?}"),
        }
    }

    #[test]
    fn moto_is_installed_before_the_server_starts_and_the_tests_run_last() {
        let steps = dynamodb_steps(Path::new("/work"), 4567);
        let args = |step: &Step| -> Vec<String> {
            step.cmd()
                .get_args()
                .map(|arg| arg.to_string_lossy().into_owned())
                .collect()
        };

        assert_eq!(args(&steps[0]), ["xtask", "setup-moto"]);
        assert_eq!(
            args(&steps[2]),
            ["test", "-p", "wsgw-aws", "--features", "integration"]
        );
    }
}
