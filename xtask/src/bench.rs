//! `cargo xtask bench [--quick]`: wsgw's benchmarks side by side with the peers (see the
//! `wsgw-bench` package in `bench/` and `BENCHMARKS.md`).
//!
//! The steps: the pinned Python tools in the shared `.venv/` (boto3 and moto among them),
//! the Node peers pinned in [`PEERS_PACKAGE_DIR`] installed with `npm ci` into
//! [`work_dir`]`/peers` (gitignored), the bench and the echo example built in release mode
//! (`--quick`: the dev profile the tests have built, so CI compiles no dependency twice), then
//! `wsgw-bench run`, which runs the criterion hot paths from that same release build
//! (briefly when quick), starts and stops every server and script itself. A full run
//! writes `BENCHMARKS.md` and `bench/fanout.svg`; `--quick` (the CI smoke, which asserts
//! nothing about speed) writes them into the work directory instead.

use std::path::{Path, PathBuf};

use crate::chat::target_dir;
use crate::moto::{self, venv_python};
use crate::step::{Cmd, Step};

/// The npm package pinning the Node peers (serverless 3, serverless-offline 13, the AWS
/// SDK v3 Management API client, ws), relative to the workspace root: its
/// `package.json` and `package-lock.json` are installed with `npm ci`.
pub const PEERS_PACKAGE_DIR: &str = "bench/peers";

/// Copies the pinned package `$1` into the peers' directory `$2` and installs it there
/// with `npm ci`, unless that lock file is installed there already. The benchmarks write
/// their scripts next to `node_modules`, so the directory is the gitignored `$2`.
const INSTALL_PEERS: &str = r#"set -eu
mkdir -p "$2"
if cmp -s "$1/package-lock.json" "$2/node_modules/.wsgw-bench-lock.json"; then
  echo "the pinned peers are installed in $2"
  exit 0
fi
cp "$1/package.json" "$1/package-lock.json" "$2/"
cd "$2"
npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json node_modules/.wsgw-bench-lock.json
"#;

/// The last step of `cargo xtask test`: `cargo xtask bench --quick`, a smoke run proving
/// the benchmarks still work (it asserts nothing about speed).
pub fn smoke_step() -> Step {
    Step::run(
        "benchmark smoke: cargo xtask bench --quick (nothing about speed is asserted)",
        Cmd::cargo().args(["xtask", "bench", "--quick"]),
    )
}

/// The gitignored directory of the benchmark runs.
pub fn work_dir(root: &Path) -> PathBuf {
    target_dir(root).join("bench-work")
}

/// The steps of `cargo xtask bench`, quick or full, moto's server on a free port.
pub fn bench_steps(root: &Path, quick: bool) -> std::io::Result<Vec<Step>> {
    Ok(bench_steps_on(root, quick, crate::free_port()?))
}

/// The steps of `cargo xtask bench`, quick or full, moto's server on `moto_port`.
pub fn bench_steps_on(root: &Path, quick: bool, moto_port: u16) -> Vec<Step> {
    let work = work_dir(root);
    let peers = work.join("peers");
    // The full run measures the deployed (release) profile. The smoke asserts nothing
    // about speed, so it reuses the dev profile the tests have already built most of:
    // a fresh machine then compiles no dependency a second time at opt-level 3.
    let (profile, profile_dir) = if quick {
        ("dev", "debug")
    } else {
        ("release", "release")
    };
    let release = target_dir(root).join(profile_dir);
    let (out_md, out_svg) = if quick {
        (
            work.join("BENCHMARKS-quick.md"),
            work.join("fanout-quick.svg"),
        )
    } else {
        (
            root.join("BENCHMARKS.md"),
            root.join("bench").join("fanout.svg"),
        )
    };
    let mut run = Cmd::new(release.join("wsgw-bench"))
        .arg("run")
        .arg("--work")
        .arg(&work)
        .arg("--python")
        .arg(venv_python(root))
        .arg("--peers")
        .arg(&peers)
        .arg("--echo-bin")
        .arg(release.join("echo"))
        .arg("--out-md")
        .arg(out_md)
        .arg("--out-svg")
        .arg(out_svg)
        .arg("--command-line")
        .arg(if quick {
            "cargo xtask bench --quick"
        } else {
            "cargo xtask bench"
        });
    if quick {
        run = run.arg("--quick");
    }
    // moto's steps: installed into the virtualenv, then its server started (it exports
    // AWS_ENDPOINT_URL_DYNAMODB, which wsgw-bench reads) and stopped when the task ends.
    let mut moto = moto::dynamodb_steps(root, moto_port);
    moto.truncate(2);
    let mut steps = moto;
    steps.extend([
        Step::run(
            format!(
                "npm ci of {PEERS_PACKAGE_DIR} (serverless-offline, the AWS SDK, pinned), once"
            ),
            Cmd::new("sh")
                .args(["-c", INSTALL_PEERS, "sh"])
                .arg(root.join(PEERS_PACKAGE_DIR))
                .arg(&peers),
        ),
        Step::run(
            format!("the bench and the echo example, profile {profile}"),
            Cmd::cargo().args([
                "build",
                "--profile",
                profile,
                "-p",
                "wsgw-bench",
                "-p",
                "echo",
            ]),
        ),
        Step::run(
            if quick {
                "the benchmarks, quick (a smoke: nothing about speed is asserted)"
            } else {
                "the benchmarks"
            },
            run,
        ),
    ]);
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_writes_into_the_work_dir_and_full_writes_the_report() {
        let root = Path::new("/work");
        let args = |steps: &[Step]| -> Vec<String> {
            steps
                .last()
                .unwrap()
                .cmd()
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        let quick = args(&bench_steps_on(root, true, 4567));
        assert!(quick.contains(&"--quick".to_owned()));
        assert!(quick
            .iter()
            .any(|a| a.ends_with("bench-work/BENCHMARKS-quick.md")));
        let full = args(&bench_steps_on(root, false, 4567));
        assert!(!full.contains(&"--quick".to_owned()));
        assert!(full.contains(&"/work/BENCHMARKS.md".to_owned()));
        // The full run measures the deployed profile's binaries, the smoke faster ones.
        let program = |steps: &[Step]| steps.last().unwrap().cmd().program().to_owned();
        assert!(program(&bench_steps_on(root, false, 4567))
            .to_string_lossy()
            .ends_with("/release/wsgw-bench"));
        assert!(program(&bench_steps_on(root, true, 4567))
            .to_string_lossy()
            .ends_with("/debug/wsgw-bench"));
    }
}
