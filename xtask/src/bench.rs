//! `cargo xtask bench [--quick]`: wsgw's benchmarks side by side with the peers (see the
//! `wsgw-bench` package in `bench/` and `BENCHMARKS.md`).
//!
//! The steps: boto3 in the shared `.venv/` (it comes with moto), the Node peers
//! ([`NPM_PACKAGES`]) installed once into [`work_dir`]`/peers` (gitignored, never
//! committed), the bench and the echo example built in release mode, then
//! `wsgw-bench run`, which runs the criterion hot paths from that same release build
//! (briefly when quick), starts and stops every server and script itself. A full run
//! writes `BENCHMARKS.md` and `bench/fanout.svg`; `--quick` (the CI smoke, which asserts
//! nothing about speed) writes them into the work directory instead.

use std::path::{Path, PathBuf};

use crate::chat::target_dir;
use crate::moto::{self, venv_python, VENV_DIR};
use crate::step::{Cmd, Step};

/// What the peers' directory gets from npm.
pub const NPM_PACKAGES: [&str; 4] = [
    "serverless@3",
    "serverless-offline@13",
    "@aws-sdk/client-apigatewaymanagementapi@3",
    "ws@8",
];

/// Installs [`NPM_PACKAGES`] into `$1` unless a marker says this list is installed.
const INSTALL_PEERS: &str = r#"set -eu
mkdir -p "$1"
cd "$1"
shift
marker="node_modules/.wsgw-bench-$(echo "$*" | cksum | cut -d' ' -f1)"
if [ -f "$marker" ]; then
  echo "the peers are installed in $(pwd)"
  exit 0
fi
[ -f package.json ] || echo '{"name":"wsgw-bench-peers","private":true}' > package.json
npm install --no-audit --no-fund --loglevel=error "$@"
touch "$marker"
"#;

/// Makes sure boto3 imports in the virtualenv's Python `$1` (moto brings it).
const ENSURE_BOTO3: &str = r#"set -eu
"$1" -c 'import boto3' 2>/dev/null || "$1" -m pip install --disable-pip-version-check --quiet 'boto3>=1.28'
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
    let release = target_dir(root).join("release");
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
    // WSGW_DYNAMODB_ENDPOINT, which wsgw-bench reads) and stopped when the task ends.
    let mut moto = moto::dynamodb_steps(root, moto_port);
    moto.truncate(2);
    let mut steps = moto;
    steps.extend([
        Step::run(
            format!("boto3 in {VENV_DIR}/ (the Python peers)"),
            Cmd::new("sh")
                .args(["-c", ENSURE_BOTO3, "sh"])
                .arg(venv_python(root)),
        ),
        Step::run(
            "the Node peers from npm (serverless-offline, the AWS SDK), installed once",
            Cmd::new("sh")
                .args(["-c", INSTALL_PEERS, "sh"])
                .arg(&peers)
                .args(NPM_PACKAGES),
        ),
        Step::run(
            "the bench and the echo example, release",
            Cmd::cargo().args(["build", "--release", "-p", "wsgw-bench", "-p", "echo"]),
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
    }
}
