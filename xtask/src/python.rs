//! The Python tools of every task, from one pinned file.
//!
//! [`ensure_tools`] makes the virtualenv [`VENV_DIR`] (in the workspace root, ignored by
//! git) hold exactly what [`REQUIREMENTS`] pins: moto's server, boto3, cfn-lint, the SAM
//! CLI, cargo-lambda and zig. A copy of the file inside the virtualenv records what was
//! installed, so a run with an unchanged file starts nothing, and a changed pin is
//! installed on the next run.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The pinned requirements, relative to the workspace root.
pub const REQUIREMENTS: &str = "xtask/requirements.txt";

/// The virtualenv's directory, relative to the workspace root.
pub const VENV_DIR: &str = ".venv";

/// The variable naming the Python used to create the virtualenv (default `python3`).
pub const PYTHON_ENV: &str = "WSGW_PYTHON";

/// The copy (in the virtualenv) of the requirements last installed there.
const INSTALLED: &str = "wsgw-requirements.txt";

/// The virtualenv's directory of programs (`bin/`, `Scripts\` on Windows).
pub fn venv_bin(root: &Path) -> PathBuf {
    root.join(VENV_DIR)
        .join(if cfg!(windows) { "Scripts" } else { "bin" })
}

/// The virtualenv's Python.
pub fn venv_python(root: &Path) -> PathBuf {
    venv_bin(root).join(if cfg!(windows) {
        "python.exe"
    } else {
        "python"
    })
}

/// `PATH` with the virtualenv's programs first, for commands that find `sam`,
/// `cargo-lambda` or `python3 -m ziglang` by name.
pub fn path_with_venv(root: &Path) -> std::ffi::OsString {
    let mut paths = vec![venv_bin(root)];
    if let Some(path) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(paths).unwrap_or_default()
}

/// Why the tools could not be installed.
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

/// Makes `.venv/` in `root` hold [`REQUIREMENTS`]: reuses it when the copy of the
/// requirements last installed there is this file, otherwise creates the virtualenv (with the Python named by
/// `WSGW_PYTHON`, default `python3`) if needed and installs the file with pip.
pub fn ensure_tools(root: &Path) -> Result<(), SetupError> {
    let requirements = root.join(REQUIREMENTS);
    let text = std::fs::read_to_string(&requirements)
        .map_err(|error| SetupError(format!("cannot read {}: {error}", requirements.display())))?;
    let marker = root.join(VENV_DIR).join(INSTALLED);
    let python = venv_python(root);
    if python.exists() && std::fs::read_to_string(&marker).is_ok_and(|installed| installed == text)
    {
        eprintln!(
            "xtask: {} holds {REQUIREMENTS} already",
            root.join(VENV_DIR).display()
        );
        return Ok(());
    }
    if !python.exists() {
        let base = std::env::var(PYTHON_ENV).unwrap_or_else(|_| "python3".to_string());
        create_venv(&base, root)?;
    }
    let installed = run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            "--requirement",
        ])
        .arg(&requirements))?;
    if !installed {
        return Err(SetupError(format!(
            "pip could not install {REQUIREMENTS} into {VENV_DIR}/ (is PyPI reachable?); \
             delete {VENV_DIR}/ to start over"
        )));
    }
    std::fs::write(&marker, &text)
        .map_err(|error| SetupError(format!("cannot write {}: {error}", marker.display())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_is_pinned_to_an_exact_version() {
        let text = std::fs::read_to_string(crate::workspace_root().join(REQUIREMENTS))
            .expect("the requirements file exists");
        let pins: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect();
        for line in &pins {
            assert!(line.contains("=="), "not pinned exactly: {line}");
        }
        for tool in [
            "moto[server]==",
            "boto3==",
            "cfn-lint==",
            "aws-sam-cli==",
            "cargo-lambda==",
            "ziglang==",
        ] {
            assert!(
                pins.iter().any(|line| line.starts_with(tool)),
                "{tool} is not in {REQUIREMENTS}"
            );
        }
    }

    #[test]
    fn the_path_puts_the_virtualenv_first() {
        let root = Path::new("/work");
        let path = path_with_venv(root);
        let first = std::env::split_paths(&path).next();
        assert_eq!(first, Some(venv_bin(root)));
    }
}
