//! Building the template's functions: a host `cargo build` of the binary each one's
//! build metadata names (`Metadata: BuildMethod: rust-cargolambda`, `CodeUri`,
//! `BuildProperties.Binary`, as `sam build` reads them), in the shared target directory
//! of the workspace the crate belongs to.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio::process::Command;
use wsgw_aws::template::{CargoBuild, Stack};

/// Why a function could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// `cargo` could not be run.
    #[error("cannot run {cargo} to build {}: {source}", functions.join(", "))]
    Cargo {
        /// The cargo program.
        cargo: String,
        /// The functions it was to build.
        functions: Vec<String>,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The build failed; `output` is cargo's.
    #[error("building function {} failed ({command}):\n{output}", functions.join(", "))]
    Failed {
        /// The functions of that build.
        functions: Vec<String>,
        /// The command run.
        command: String,
        /// What cargo printed (its diagnostics).
        output: String,
    },
    /// The build gave no binary for a function, or several where one was expected.
    #[error("function {function}: {problem}")]
    Binary {
        /// The function's logical id.
        function: String,
        /// What is wrong.
        problem: String,
    },
}

/// How functions are built.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Builder {
    /// The cargo program: `$CARGO` (set when run by cargo) or `cargo`.
    pub cargo: PathBuf,
    /// Build with `--release`.
    pub release: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            cargo: std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from),
            release: false,
        }
    }
}

/// One `cargo build`: a crate or workspace and the binaries wanted from it, with the
/// functions each serves.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Job {
    manifest_dir: PathBuf,
    /// Binary name (`None`: the package's only binary) → logical ids.
    binaries: BTreeMap<Option<String>, Vec<String>>,
}

impl Builder {
    /// Builds every runnable function of the stack, one `cargo build` per crate or
    /// workspace (functions sharing a binary build it once), and returns each function's
    /// executable by logical id.
    pub async fn build_stack(
        &self,
        stack: &Stack,
    ) -> Result<BTreeMap<String, PathBuf>, BuildError> {
        let builds = stack
            .functions
            .values()
            .filter(|function| function.is_runnable())
            .filter_map(|function| Some((function.logical_id.clone(), function.build.clone()?)));
        self.build_all(builds).await
    }

    /// Builds functions given as (logical id, build) and returns each one's executable.
    pub async fn build_all(
        &self,
        builds: impl IntoIterator<Item = (String, CargoBuild)>,
    ) -> Result<BTreeMap<String, PathBuf>, BuildError> {
        let mut jobs: Vec<Job> = Vec::new();
        for (logical_id, build) in builds {
            let manifest_dir = normalise(&build.manifest_dir);
            let job = match jobs.iter_mut().find(|job| job.manifest_dir == manifest_dir) {
                Some(job) => job,
                None => {
                    jobs.push(Job {
                        manifest_dir,
                        binaries: BTreeMap::new(),
                    });
                    jobs.last_mut().expect("just pushed")
                }
            };
            job.binaries
                .entry(build.binary)
                .or_default()
                .push(logical_id);
        }
        let mut executables = BTreeMap::new();
        for job in &jobs {
            executables.extend(self.run(job).await?);
        }
        Ok(executables)
    }

    async fn run(&self, job: &Job) -> Result<BTreeMap<String, PathBuf>, BuildError> {
        let functions: Vec<String> = job.binaries.values().flatten().cloned().collect();
        let mut command = Command::new(&self.cargo);
        command
            .arg("build")
            .arg("--message-format=json-render-diagnostics")
            .arg("--manifest-path")
            .arg(job.manifest_dir.join("Cargo.toml"));
        if self.release {
            command.arg("--release");
        }
        for binary in job.binaries.keys().flatten() {
            command.arg("--bin").arg(binary);
        }
        let shown = format!(
            "cargo build{}{} in {}",
            if self.release { " --release" } else { "" },
            job.binaries
                .keys()
                .flatten()
                .map(|binary| format!(" --bin {binary}"))
                .collect::<String>(),
            job.manifest_dir.display()
        );
        tracing::info!(
            functions = functions.join(", "),
            command = shown,
            "building"
        );
        let output = command
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|source| BuildError::Cargo {
                cargo: self.cargo.display().to_string(),
                functions: functions.clone(),
                source,
            })?;
        if !output.status.success() {
            return Err(BuildError::Failed {
                functions,
                command: shown,
                output: String::from_utf8_lossy(&output.stderr)
                    .trim_end()
                    .to_owned(),
            });
        }
        // cargo's JSON messages: each built binary's `executable`.
        let mut built: BTreeMap<String, PathBuf> = BTreeMap::new();
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let Ok(message) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if message["reason"] != "compiler-artifact" {
                continue;
            }
            let is_bin = message["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|kind| kind == "bin"));
            if let (true, Some(name), Some(executable)) = (
                is_bin,
                message["target"]["name"].as_str(),
                message["executable"].as_str(),
            ) {
                built.insert(name.to_owned(), PathBuf::from(executable));
            }
        }
        let mut executables = BTreeMap::new();
        for (binary, logical_ids) in &job.binaries {
            let executable = match binary {
                Some(binary) => built.get(binary).cloned().ok_or_else(|| BuildError::Binary {
                    function: logical_ids.join(", "),
                    problem: format!("{shown} built no binary named {binary}"),
                })?,
                None if built.len() == 1 => built.values().next().cloned().unwrap_or_default(),
                None => {
                    return Err(BuildError::Binary {
                        function: logical_ids.join(", "),
                        problem: format!(
                            "{shown} built {} binaries ({}): name one with Metadata BuildProperties.Binary",
                            built.len(),
                            built.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    })
                }
            };
            for logical_id in logical_ids {
                executables.insert(logical_id.clone(), executable.clone());
            }
        }
        Ok(executables)
    }
}

/// The directory made absolute, `..` and `.` resolved, so two spellings of one crate
/// build once.
fn normalise(path: &Path) -> PathBuf {
    if let Ok(canonical) = path.canonicalize() {
        return canonical;
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut normal = PathBuf::new();
    for component in absolute.components() {
        match component {
            std::path::Component::ParentDir => {
                normal.pop();
            }
            std::path::Component::CurDir => {}
            other => normal.push(other),
        }
    }
    normal
}
