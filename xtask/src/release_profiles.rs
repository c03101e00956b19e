//! `cargo xtask release-profiles`: the release-profile settings tried for the Lambda
//! functions, side by side ([`CANDIDATES`]). Each is built from scratch in its own target
//! directory (`target/release-profiles/<name>`), with the settings given as
//! `CARGO_PROFILE_RELEASE_*` variables over the workspace's `[profile.release]`:
//! the echo example's arm64 `bootstrap` (cargo-lambda, as `sam build` builds it), whose
//! size stripped and zipped is read with [`lambda::inspect`], and the x86-64 release
//! build `cargo xtask bench` makes (`-p wsgw-bench -p echo`, timed), whose echo's cold
//! start `wsgw-bench cold-start` measures under the Runtime API emulator, the
//! candidates taking turns. Prints the Markdown table of BENCHMARKS.md.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::chat::target_dir;
use crate::lambda::{self, mebibytes};
use crate::python::path_with_venv;

/// One setting tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// A short name (the target directory's).
    pub name: &'static str,
    /// `opt-level`.
    pub opt_level: &'static str,
    /// `lto`.
    pub lto: &'static str,
    /// `codegen-units`.
    pub codegen_units: &'static str,
    /// `panic`.
    pub panic: &'static str,
}

/// The settings tried, every one stripped (`strip = "symbols"`: symbols only cost size).
pub const CANDIDATES: [Candidate; 6] = [
    Candidate {
        name: "cargo-release",
        opt_level: "3",
        lto: "false",
        codegen_units: "16",
        panic: "unwind",
    },
    Candidate {
        name: "cargo-lambda-defaults",
        opt_level: "3",
        lto: "thin",
        codegen_units: "1",
        panic: "abort",
    },
    Candidate {
        name: "thin-unwind",
        opt_level: "3",
        lto: "thin",
        codegen_units: "1",
        panic: "unwind",
    },
    Candidate {
        name: "fat-unwind",
        opt_level: "3",
        lto: "fat",
        codegen_units: "1",
        panic: "unwind",
    },
    Candidate {
        name: "fat-s-unwind",
        opt_level: "s",
        lto: "fat",
        codegen_units: "1",
        panic: "unwind",
    },
    Candidate {
        name: "fat-z-unwind",
        opt_level: "z",
        lto: "fat",
        codegen_units: "1",
        panic: "unwind",
    },
];

impl Candidate {
    fn command(&self, root: &Path, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(root)
            .env("PATH", path_with_venv(root))
            .env(
                "CARGO_TARGET_DIR",
                target_dir(root).join("release-profiles").join(self.name),
            )
            .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", self.opt_level)
            .env("CARGO_PROFILE_RELEASE_LTO", self.lto)
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", self.codegen_units)
            .env("CARGO_PROFILE_RELEASE_PANIC", self.panic)
            .env("CARGO_PROFILE_RELEASE_STRIP", "symbols");
        command
    }
}

fn run(mut command: Command) -> Result<f64, String> {
    eprintln!("xtask: $ {command:?}");
    let started = Instant::now();
    let status = command
        .status()
        .map_err(|error| format!("cannot run {:?}: {error}", command.get_program()))?;
    if !status.success() {
        return Err(format!("{:?} failed: {status}", command.get_program()));
    }
    Ok(started.elapsed().as_secs_f64())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Builds and measures the candidates named in `only` (all when empty): the arm64
/// bootstrap left out for those in `x86_only`, the x86-64 build and its cold start for
/// those in `arm64_only`; prints the table.
pub fn compare(
    root: &Path,
    only: &[String],
    x86_only: &[String],
    arm64_only: &[String],
    rounds: usize,
) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let listed =
        |names: &[String], candidate: &Candidate| names.iter().any(|name| name == candidate.name);
    let chosen: Vec<&Candidate> = CANDIDATES
        .iter()
        .filter(|candidate| only.is_empty() || listed(only, candidate))
        .collect();
    let mut rows = Vec::new();
    let mut bench = None;
    for candidate in &chosen {
        let dir = target_dir(root)
            .join("release-profiles")
            .join(candidate.name);
        let arm64 = if listed(x86_only, candidate) {
            None
        } else {
            let mut arm64 = candidate.command(root, &cargo);
            arm64.args(["lambda", "build", "--release", "--arm64", "-p", "echo"]);
            run(arm64)?;
            Some(
                lambda::inspect(&dir.join("lambda/echo/bootstrap"))
                    .map_err(|error| error.to_string())?,
            )
        };
        let x86 = if listed(arm64_only, candidate) {
            None
        } else {
            // What `cargo xtask bench` builds: its time is the bench's build with these
            // settings, and the cold start is its echo's.
            let mut x86 = candidate.command(root, &cargo);
            x86.args(["build", "--release", "-p", "wsgw-bench", "-p", "echo"]);
            let secs = run(x86)?;
            eprintln!(
                "xtask: {}: the bench's release build took {secs:.0} s",
                candidate.name
            );
            bench.get_or_insert_with(|| dir.join("release/wsgw-bench"));
            Some(dir.join("release/echo"))
        };
        rows.push((candidate, arm64, x86, Vec::new()));
    }
    // Cold starts in turns, so a busy neighbour slows every candidate alike.
    for _ in 0..rounds {
        for (_, _, x86, colds) in &mut rows {
            let (Some(echo), Some(bench)) = (x86.as_ref(), bench.as_ref()) else {
                continue;
            };
            let output = Command::new(bench)
                .args(["cold-start", "--runs", "3", "--bin"])
                .arg(echo)
                .output()
                .map_err(|error| format!("cannot run {}: {error}", bench.display()))?;
            let text = String::from_utf8_lossy(&output.stdout);
            let cold: f64 = text.trim().parse().map_err(|_| {
                format!(
                    "wsgw-bench cold-start printed {text:?}: {}",
                    String::from_utf8_lossy(&output.stderr)
                )
            })?;
            colds.push(cold);
        }
    }
    println!(
        "| setting | opt-level | lto | codegen-units | panic | arm64 bootstrap (stripped) | zipped | x86-64 cold start, median (ms) |"
    );
    println!("|---|---|---|---|---|---:|---:|---:|");
    for (candidate, arm64, _, mut colds) in rows {
        let (size, zipped) = match arm64 {
            Some(bootstrap) => (mebibytes(bootstrap.size), mebibytes(bootstrap.zipped)),
            None => ("not built".to_owned(), String::new()),
        };
        println!(
            "| {} | {} | {} | {} | {} | {size} | {zipped} | {} |",
            candidate.name,
            candidate.opt_level,
            candidate.lto,
            candidate.codegen_units,
            candidate.panic,
            if colds.is_empty() {
                "not built".to_owned()
            } else {
                format!("{:.1}", median(&mut colds))
            },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chosen_profile_is_one_of_the_candidates() {
        let manifest = std::fs::read_to_string(crate::workspace_root().join("Cargo.toml"))
            .expect("the workspace manifest");
        let chosen = CANDIDATES.iter().find(|candidate| {
            manifest.contains(&format!("opt-level = {}", quoted(candidate.opt_level)))
                && manifest.contains(&format!("lto = {}", quoted(candidate.lto)))
                && manifest.contains(&format!("codegen-units = {}", candidate.codegen_units))
                && manifest.contains(&format!("panic = \"{}\"", candidate.panic))
        });
        assert!(
            chosen.is_some(),
            "[profile.release] is a measured candidate"
        );
    }

    fn quoted(value: &str) -> String {
        if value.parse::<u32>().is_ok() || value == "false" {
            value.to_owned()
        } else {
            format!("\"{value}\"")
        }
    }
}
