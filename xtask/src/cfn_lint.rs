//! cfn-lint on every AWS SAM template of the repository.
//!
//! `cargo xtask lint-templates` ([`lint_templates`]) makes the virtualenv `.venv/` hold
//! the pinned Python tools ([`python::ensure_tools`], cfn-lint among them), finds the
//! templates ([`templates`]) and runs cfn-lint on all of them at once, with the project's
//! own rules ([`POLICY_RULES_DIR`]: throttled stages, hidden and long secrets, finite
//! retention, tokens out of URLs) appended, then `sam validate --lint` on each. Any error
//! or warning fails it, with the linter's exit code; [`lint_step`] is how
//! `cargo xtask test` runs it.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use crate::python::{self, SetupError};
use crate::step::{Cmd, Step};

/// Every template here is linted besides the `template.yaml` files: the patterns the
/// examples copy.
pub const TEMPLATE_DIR: &str = "wsgw-aws/templates";

/// The project's cfn-lint rules (Python, `E9xxx`), relative to the workspace root:
/// appended to cfn-lint's own with `--append-rules`.
pub const POLICY_RULES_DIR: &str = "xtask/cfn-lint-rules";

/// The step of `cargo xtask test`.
pub fn lint_step() -> Step {
    Step::run(
        "cfn-lint and sam validate --lint on every SAM template",
        Cmd::cargo().args(["xtask", "lint-templates"]),
    )
}

/// The virtualenv's `cfn-lint` program.
pub fn cfn_lint_program(root: &Path) -> PathBuf {
    python::venv_bin(root).join(if cfg!(windows) {
        "cfn-lint.exe"
    } else {
        "cfn-lint"
    })
}

/// The templates to lint, relative to `root` and sorted: every `template.yaml` except
/// under `target/`, `node_modules/` or hidden directories (`.git/`, `.venv/`), and every
/// `.yaml` file in [`TEMPLATE_DIR`].
pub fn templates(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    collect_templates(root, root, &mut found)?;
    match fs::read_dir(root.join(TEMPLATE_DIR)) {
        Ok(entries) => {
            for entry in entries {
                let path = entry?.path();
                if path.is_file() && path.extension().is_some_and(|ext| ext == "yaml") {
                    found.push(relative(root, &path));
                }
            }
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    found.sort();
    found.dedup();
    Ok(found)
}

fn relative(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}

fn collect_templates(root: &Path, dir: &Path, found: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // Not followed through symbolic links.
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if !(name.starts_with('.') || name == "target" || name == "node_modules") {
                collect_templates(root, &entry.path(), found)?;
            }
        } else if kind.is_file() && name == "template.yaml" {
            found.push(relative(root, &entry.path()));
        }
    }
    Ok(())
}

/// Why the templates could not be linted, or did not pass.
#[derive(Debug)]
pub enum LintError {
    /// cfn-lint could not be installed.
    Setup(SetupError),
    /// The repository could not be searched for templates.
    Search(io::Error),
    /// No template was found (the search itself must be wrong: echo has one).
    NoTemplates,
    /// cfn-lint or `sam validate` could not be started.
    Spawn(io::Error),
    /// cfn-lint or `sam validate --lint` found errors or warnings (cfn-lint's exit
    /// status: a bit mask, 2 errors, 4 warnings; sam's: 1).
    Findings(ExitStatus),
}

impl LintError {
    /// The exit code `cargo xtask lint-templates` ends with: cfn-lint's own when it ran.
    pub fn exit_code(&self) -> u8 {
        match self {
            LintError::Findings(status) => status
                .code()
                .and_then(|code| u8::try_from(code).ok())
                .filter(|code| *code != 0)
                .unwrap_or(1),
            _ => 1,
        }
    }
}

impl fmt::Display for LintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LintError::Setup(error) => write!(f, "{error}"),
            LintError::Search(error) => write!(f, "could not search for templates: {error}"),
            LintError::NoTemplates => write!(
                f,
                "no template.yaml found outside target/ and no .yaml in {TEMPLATE_DIR}/"
            ),
            LintError::Spawn(error) => write!(f, "could not run the linter: {error}"),
            LintError::Findings(status) => write!(f, "the linter found problems ({status})"),
        }
    }
}

impl std::error::Error for LintError {}

/// Installs cfn-lint if needed, then lints every template found under `root` in one
/// cfn-lint run, printing what it finds.
pub fn lint_templates(root: &Path) -> Result<(), LintError> {
    python::ensure_tools(root).map_err(LintError::Setup)?;
    let templates = templates(root).map_err(LintError::Search)?;
    if templates.is_empty() {
        return Err(LintError::NoTemplates);
    }
    let mut command = Command::new(cfn_lint_program(root));
    command
        .args(["--append-rules", POLICY_RULES_DIR, "--"])
        .args(&templates)
        .current_dir(root);
    let line: Vec<String> = templates.iter().map(|t| t.display().to_string()).collect();
    eprintln!(
        "xtask: $ {} --append-rules {POLICY_RULES_DIR} -- {}",
        relative(root, &cfn_lint_program(root)).display(),
        line.join(" ")
    );
    let status = command.status().map_err(LintError::Spawn)?;
    if !status.success() {
        return Err(LintError::Findings(status));
    }
    eprintln!("xtask: cfn-lint passed on {} templates", templates.len());
    // SAM's own check: its transform, then cfn-lint on what it produced.
    for template in &templates {
        let mut command = Command::new(python::venv_bin(root).join("sam"));
        command
            .args(["validate", "--lint", "--template-file"])
            .arg(template)
            .env("SAM_CLI_TELEMETRY", "0")
            .current_dir(root);
        eprintln!(
            "xtask: $ sam validate --lint --template-file {}",
            template.display()
        );
        let status = command.status().map_err(LintError::Spawn)?;
        if !status.success() {
            return Err(LintError::Findings(status));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("creates a scratch directory");
        dir
    }

    fn touch(root: &Path, path: &str) {
        let path = root.join(path);
        fs::create_dir_all(path.parent().expect("has a parent")).expect("creates directories");
        fs::write(path, "").expect("writes the file");
    }

    #[test]
    fn templates_are_every_template_yaml_outside_build_and_hidden_dirs_and_the_patterns() {
        let root = scratch_dir("templates");
        for path in [
            "examples/echo/template.yaml",
            "examples/chat/template.yaml",
            "examples/chat/README.md",
            "target/lambda/echo/template.yaml",
            "firmware/target/template.yaml",
            ".venv/lib/site-packages/x/template.yaml",
            "examples/chat/web-tests/node_modules/x/template.yaml",
            "wsgw-aws/templates/stateful-websocket.yaml",
            "wsgw-aws/templates/notes.md",
        ] {
            touch(&root, path);
        }

        let found = templates(&root).expect("searches");

        assert_eq!(
            found,
            [
                "examples/chat/template.yaml",
                "examples/echo/template.yaml",
                "wsgw-aws/templates/stateful-websocket.yaml",
            ]
            .map(PathBuf::from)
        );
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn the_workspace_has_the_echo_template_and_the_stateful_pattern() {
        let found = templates(&crate::workspace_root()).expect("searches");

        assert!(found.contains(&PathBuf::from("examples/echo/template.yaml")));
        assert!(found.contains(&PathBuf::from("wsgw-aws/templates/stateful-websocket.yaml")));
    }

    #[test]
    fn the_policy_rules_are_there_to_append() {
        let rules = crate::workspace_root()
            .join(POLICY_RULES_DIR)
            .join("wsgw_policy.py");
        let text = fs::read_to_string(&rules).expect("the rules file");
        for id in ["E9001", "E9002", "E9003", "E9004"] {
            assert!(
                text.contains(&format!("id = \"{id}\"")),
                "{id} in {rules:?}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn findings_end_the_task_with_cfn_lints_exit_code() {
        use std::os::unix::process::ExitStatusExt;

        // cfn-lint exits 6 for errors and warnings (2 | 4).
        let findings = LintError::Findings(ExitStatus::from_raw(6 << 8));

        assert_eq!(findings.exit_code(), 6);
        assert_eq!(LintError::NoTemplates.exit_code(), 1);
    }
}
