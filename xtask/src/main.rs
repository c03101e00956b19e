//! `cargo xtask`: see the library documentation of the `xtask` package.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use xtask::{
    bench, cfn_lint, ci_steps, firmware, moto, release_profiles, test_steps, workspace_root,
    Pipeline,
};

/// The project's tasks.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "The project's tasks"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
    /// Print the steps and their commands without running them.
    #[arg(long, global = true)]
    dry_run: bool,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Run every test of the project.
    Test,
    /// `cargo package` of the published crates, and a check of what their archives hold.
    Package,
    /// What CI runs: `cargo fmt --check`, clippy with warnings denied, then every test.
    Ci,
    /// Install the pinned Python tools (xtask/requirements.txt: moto, cfn-lint, the SAM CLI,
    /// cargo-lambda, zig) into the virtualenv `.venv/` (reused when up to date).
    SetupMoto,
    /// Run cfn-lint and `sam validate --lint` (installed into `.venv/` when missing) on every
    /// SAM template.
    LintTemplates,
    /// Build the ESP32-C3 firmware and its flashable image (installs espflash once).
    Firmware,
    /// The release-profile settings tried for Lambda, each built from scratch: echo's arm64
    /// bootstrap size (stripped, zipped) and x86-64 cold start; prints a Markdown table.
    ReleaseProfiles {
        /// Only these candidates (by name); all when none are given.
        names: Vec<String>,
        /// Rounds of cold starts (three per candidate each, candidates in turns).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Candidates measured on x86-64 only (no arm64 build).
        #[arg(long)]
        x86_only: Vec<String>,
        /// Candidates measured on arm64 only (no x86-64 build, no cold start).
        #[arg(long)]
        arm64_only: Vec<String>,
    },
    /// Benchmarks side by side with serverless-offline, boto3, the Node SDK and a bare
    /// echo server; writes BENCHMARKS.md and bench/fanout.svg.
    Bench {
        /// The smoke run CI does: small counts, results in target/bench-work only.
        #[arg(long)]
        quick: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (name, steps) = match cli.task {
        Task::Test => ("test", test_steps()),
        Task::Ci => ("ci", ci_steps()),
        Task::Firmware => ("firmware", Ok(firmware::firmware_steps(&workspace_root()))),
        Task::Bench { quick } => ("bench", bench::bench_steps(&workspace_root(), quick)),
        Task::SetupMoto => {
            return match moto::ensure_moto(&workspace_root()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("xtask setup-moto: error: {error}");
                    ExitCode::FAILURE
                }
            };
        }
        Task::ReleaseProfiles {
            names,
            rounds,
            x86_only,
            arm64_only,
        } => {
            return match release_profiles::compare(
                &workspace_root(),
                &names,
                &x86_only,
                &arm64_only,
                rounds,
            ) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("xtask release-profiles: error: {error}");
                    ExitCode::FAILURE
                }
            };
        }
        Task::Package => {
            return match xtask::publish::package(&workspace_root()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("xtask package: error:\n{error}");
                    ExitCode::FAILURE
                }
            };
        }
        Task::LintTemplates => {
            return match cfn_lint::lint_templates(&workspace_root()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("xtask lint-templates: error: {error}");
                    ExitCode::from(error.exit_code())
                }
            };
        }
    };
    let steps = match steps {
        Ok(steps) => steps,
        Err(error) => {
            eprintln!("xtask {name}: error: no free loopback port for moto's server: {error}");
            return ExitCode::FAILURE;
        }
    };
    // The pipeline is dropped before main returns, which stops any service it started.
    let mut pipeline = Pipeline::new(workspace_root()).dry_run(cli.dry_run);
    match pipeline.run(name, &steps) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("\nxtask {name}: error: {failure}");
            if !failure.output_tail.is_empty() {
                eprintln!("xtask {name}: the failed step's last output lines:");
                for line in &failure.output_tail {
                    eprintln!("  | {line}");
                }
            }
            ExitCode::from(failure.exit_code())
        }
    }
}
