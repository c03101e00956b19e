//! `cargo xtask`: see the library documentation of the `xtask` package.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use xtask::{ci_steps, test_steps, workspace_root, Pipeline};

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
    /// What CI runs: `cargo fmt --check`, clippy with warnings denied, then every test.
    Ci,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (name, steps) = match cli.task {
        Task::Test => ("test", test_steps()),
        Task::Ci => ("ci", ci_steps()),
    };
    // The pipeline is dropped before main returns, which stops any service it started.
    let mut pipeline = Pipeline::new(workspace_root()).dry_run(cli.dry_run);
    match pipeline.run(name, &steps) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("\nxtask {name}: error: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}
