//! `--watch`: when a source file of a function's binary changes, the function is rebuilt
//! and its instances replaced ([`FunctionPool::replace_instances`]); a build that fails
//! is reported and the running instances are kept.
//!
//! The files watched are exactly those cargo compiled into the binary (its dep-info file,
//! `target/debug/NAME.d`, written next to it by every build): the crate's sources and
//! those of its path dependencies, whatever the layout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use wsgw_aws::template::CargoBuild;

use crate::build::{BuildError, Builder};
use crate::pool::FunctionPool;

/// How often the sources' modification times are read.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(500);

/// The source files cargo lists in an executable's dep-info file (`NAME.d` next to it);
/// empty when there is none.
pub fn sources_of(executable: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(executable.with_extension("d")) else {
        return Vec::new();
    };
    let mut sources = Vec::new();
    for line in text.lines() {
        // `target: dep dep …`, spaces inside paths escaped as `\ `.
        let Some((_, dependencies)) = line.split_once(": ") else {
            continue;
        };
        let mut current = String::new();
        let mut chars = dependencies.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&' ') => {
                    current.push(' ');
                    chars.next();
                }
                ' ' => {
                    if !current.is_empty() {
                        sources.push(PathBuf::from(std::mem::take(&mut current)));
                    }
                }
                other => current.push(other),
            }
        }
        if !current.is_empty() {
            sources.push(PathBuf::from(current));
        }
    }
    sources.sort();
    sources.dedup();
    sources
}

/// The latest modification time among `files` (a missing file counts as changed now).
fn latest_change(files: &[PathBuf]) -> Option<SystemTime> {
    files
        .iter()
        .map(|file| {
            std::fs::metadata(file)
                .and_then(|metadata| metadata.modified())
                .unwrap_or_else(|_| SystemTime::now())
        })
        .max()
}

/// What one round of watching did.
#[derive(Debug)]
#[non_exhaustive]
pub enum Rebuilt {
    /// These functions were rebuilt and their instances replaced.
    Replaced(Vec<String>),
    /// Their build failed; their instances were kept.
    Failed(Vec<String>, BuildError),
}

/// Watches the sources of the pool's functions and rebuilds them.
#[derive(Debug)]
pub struct Watcher {
    builder: Builder,
    builds: BTreeMap<String, CargoBuild>,
    /// Per function: the executable, its sources, and their latest change when last
    /// built.
    watched: BTreeMap<String, (PathBuf, Vec<PathBuf>, Option<SystemTime>)>,
}

impl Watcher {
    /// Watches the functions of `builds` whose executables are in `executables`.
    pub fn new(
        builder: Builder,
        builds: BTreeMap<String, CargoBuild>,
        executables: &BTreeMap<String, PathBuf>,
    ) -> Self {
        let watched = executables
            .iter()
            .filter(|(logical_id, _)| builds.contains_key(*logical_id))
            .map(|(logical_id, executable)| {
                let sources = sources_of(executable);
                let latest = latest_change(&sources);
                (logical_id.clone(), (executable.clone(), sources, latest))
            })
            .collect();
        Watcher {
            builder,
            builds,
            watched,
        }
    }

    /// The files watched for a function.
    pub fn sources(&self, logical_id: &str) -> &[PathBuf] {
        self.watched
            .get(logical_id)
            .map_or(&[], |(_, sources, _)| sources.as_slice())
    }

    /// Checks once: rebuilds the functions whose sources changed since their last build
    /// and replaces their instances. `None` when nothing changed.
    pub async fn check(&mut self, pool: &FunctionPool) -> Option<Rebuilt> {
        let changed: Vec<String> = self
            .watched
            .iter()
            .filter(|(_, (_, sources, built))| latest_change(sources) > *built)
            .map(|(logical_id, _)| logical_id.clone())
            .collect();
        if changed.is_empty() {
            return None;
        }
        tracing::info!(
            functions = changed.join(", "),
            "sources changed: rebuilding"
        );
        let builds = changed.iter().filter_map(|logical_id| {
            Some((logical_id.clone(), self.builds.get(logical_id)?.clone()))
        });
        match self.builder.build_all(builds).await {
            Ok(executables) => {
                for (logical_id, executable) in executables {
                    let sources = sources_of(&executable);
                    let latest = latest_change(&sources);
                    if let Err(error) =
                        pool.replace_instances(&logical_id, Some(executable.clone()))
                    {
                        tracing::warn!(%error, "cannot replace the instances");
                    }
                    self.watched
                        .insert(logical_id, (executable, sources, latest));
                }
                Some(Rebuilt::Replaced(changed))
            }
            Err(error) => {
                // Keep the instances; try again after the next change.
                for logical_id in &changed {
                    if let Some((_, sources, built)) = self.watched.get_mut(logical_id) {
                        *built = latest_change(sources);
                    }
                }
                tracing::error!("{error}");
                Some(Rebuilt::Failed(changed, error))
            }
        }
    }

    /// Checks every `interval`, for as long as the future is polled.
    pub async fn run(mut self, pool: FunctionPool, interval: Duration) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.check(&pool).await;
        }
    }
}
