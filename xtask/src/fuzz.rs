//! The fuzz targets' steps: `cargo fuzz` (libFuzzer, nightly) on Lambda event decoding,
//! route selection, and the chat's and the telemetry's message parsing, each for a
//! bounded time ([`SECONDS_PER_TARGET`]); a crash, a panic or a hang fails the step.
//!
//! The targets live in [`FUZZ_DIR`], a workspace of its own with its own `target/`, so
//! its nightly, instrumented build never touches (or waits on) the main `target/`. A
//! fresh machine gets the nightly toolchain (`--profile minimal`) and cargo-fuzz
//! (`cargo install cargo-fuzz --locked`) from the setup step, only when missing.
//! What a run found stays in `fuzz/artifacts/<target>/`; the corpus it grew
//! in `fuzz/corpus/<target>/` (both ignored by git) seeds the next run.

use std::path::Path;

use crate::step::{Cmd, Step};

/// The fuzz crate, relative to the workspace root.
pub const FUZZ_DIR: &str = "fuzz";

/// The fuzz targets, in the order they run.
pub const TARGETS: [&str; 4] = [
    "lambda_event",
    "route_selection",
    "chat_protocol",
    "telemetry_protocol",
];

/// How long each target runs, unless `WSGW_FUZZ_SECONDS` says otherwise.
pub const SECONDS_PER_TARGET: u32 = 25;

/// Variables that would point the fuzz build at another toolchain, target directory or
/// rustflags than cargo-fuzz's own.
pub const OVERRIDING_VARIABLES: [&str; 6] = [
    "RUSTUP_TOOLCHAIN",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
];

/// Installs the nightly toolchain and cargo-fuzz when they are missing.
pub const SETUP: &str = r#"set -eu
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "nightly: $(rustup run nightly rustc --version)"
else
  rustup toolchain install nightly --profile minimal
fi
if cargo fuzz --version >/dev/null 2>&1; then
  echo "$(cargo fuzz --version) is installed"
else
  cargo install cargo-fuzz --locked
fi
"#;

/// Builds every target once, then runs each for `$WSGW_FUZZ_SECONDS` (default
/// [`SECONDS_PER_TARGET`]) on its corpus and seeds, printing its executions; a target
/// that crashes, panics or hangs (10 s on one input) fails with the end of its log and
/// the path of the input that did it.
pub const RUN: &str = r#"set -eu
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
seconds="${WSGW_FUZZ_SECONDS:-25}"
cargo +nightly fuzz build --sanitizer none
for target in lambda_event route_selection chat_protocol telemetry_protocol; do
  mkdir -p "corpus/$target"
  seeds="seeds/$target"
  if [ "$target" = lambda_event ]; then
    seeds="$seeds ../examples/echo/events ../examples/chat/events ../examples/telemetry/events"
  fi
  log="target/fuzz-$target.log"
  # shellcheck disable=SC2086 # $seeds is a list of directories
  if cargo +nightly fuzz run --sanitizer none "$target" "corpus/$target" $seeds -- \
      -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    corpus=$(ls "corpus/$target" | wc -l)
    echo "fuzz $target: ${execs:-?} inputs in ${seconds} s, no crash (corpus: $corpus inputs)"
  else
    tail -n 60 "$log"
    echo "fuzz $target FAILED: the input is in $(pwd)/artifacts/$target/; reproduce with"
    echo "  cd fuzz && cargo +nightly fuzz run --sanitizer none $target artifacts/$target/<file>"
    exit 1
  fi
done
"#;

/// The setup step, then the run step, in `root/fuzz`.
pub fn fuzz_steps(root: &Path) -> Vec<Step> {
    let dir = root.join(FUZZ_DIR);
    vec![
        Step::run(
            "fuzzing toolchain: nightly and cargo-fuzz (installed when missing)",
            Cmd::new("sh").args(["-c", SETUP]).current_dir(&dir),
        ),
        Step::run(
            format!(
                "cargo fuzz: {} for {SECONDS_PER_TARGET} s each, no crash",
                TARGETS.join(", ")
            ),
            OVERRIDING_VARIABLES
                .iter()
                .fold(Cmd::new("sh"), |cmd, name| cmd.env_remove(*name))
                .args(["-c", RUN])
                .current_dir(&dir),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_the_crate_declares_is_run() {
        let manifest =
            std::fs::read_to_string(crate::workspace_root().join(FUZZ_DIR).join("Cargo.toml"))
                .expect("the fuzz crate's manifest");
        let declared: Vec<&str> = manifest
            .lines()
            .filter_map(|line| line.strip_prefix("name = \""))
            .filter_map(|rest| rest.strip_suffix('"'))
            .filter(|name| *name != "wsgw-fuzz")
            .collect();
        assert_eq!(declared, TARGETS);
        for target in TARGETS {
            assert!(RUN.contains(target), "{target} is run");
            assert!(
                crate::workspace_root()
                    .join(FUZZ_DIR)
                    .join("seeds")
                    .join(target)
                    .is_dir(),
                "{target} has seeds"
            );
        }
        assert!(RUN.contains(&format!("WSGW_FUZZ_SECONDS:-{SECONDS_PER_TARGET}")));
    }

    /// The fuzz crate sits at the top level (its targets span crates) and every crate it
    /// depends on by path is a package of this workspace, found where it says.
    #[test]
    fn the_fuzz_crate_is_top_level_and_its_path_dependencies_resolve() {
        let root = crate::workspace_root();
        assert_eq!(FUZZ_DIR, "fuzz");
        let manifest = std::fs::read_to_string(root.join(FUZZ_DIR).join("Cargo.toml"))
            .expect("the fuzz crate's manifest");
        let paths: Vec<&str> = manifest
            .lines()
            .filter_map(|line| line.split_once("path = \"../"))
            .filter_map(|(_, rest)| rest.split_once('"'))
            .map(|(path, _)| path)
            .collect();
        assert!(
            !paths.is_empty(),
            "the fuzz crate depends on what it fuzzes"
        );
        for path in paths {
            assert!(
                root.join(path).join("Cargo.toml").is_file(),
                "the fuzz crate's dependency ../{path} is a crate of this workspace"
            );
        }
    }
}
