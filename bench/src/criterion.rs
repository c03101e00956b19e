//! The criterion hot paths ([`crate::hot_paths`]): `wsgw-bench run` starts
//! `wsgw-bench hot-paths` as a child process with `CRITERION_HOME` pointing at a fresh
//! directory, then reads each benchmark's `new/benchmark.json` and `new/estimates.json`
//! from there.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use criterion::Criterion;

use crate::report::{HotPath, Results};
use crate::{Result, RunArgs};

/// How long the hot paths may take in all.
const TIME_LIMIT: Duration = Duration::from_secs(20 * 60);

/// `wsgw-bench hot-paths`: every hot path, briefly when `quick`.
pub fn hot_paths(quick: bool) {
    let mut criterion = Criterion::default().without_plots();
    if quick {
        criterion = criterion
            .warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_millis(500));
    }
    crate::hot_paths::all(&mut criterion);
    criterion.final_summary();
}

/// Runs `wsgw-bench hot-paths` into `work/criterion` (emptied first) and reads the results.
pub async fn run(args: &RunArgs, results: &mut Results) -> Result<()> {
    let dir = args.work.join("criterion");
    eprintln!("wsgw-bench: criterion hot paths into {}", dir.display());
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut command =
        tokio::process::Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
    command
        .arg("hot-paths")
        .env("CRITERION_HOME", &dir)
        .stdin(Stdio::null())
        // criterion's report goes to the run's stderr; its stdout is the table.
        .stdout(Stdio::from(std::io::stderr()))
        .kill_on_drop(true);
    if args.quick {
        command.arg("--quick");
    }
    let status = tokio::time::timeout(TIME_LIMIT, command.status())
        .await
        .map_err(|_| format!("the hot paths took over {TIME_LIMIT:?}"))?
        .map_err(|e| format!("cannot run the hot paths: {e}"))?;
    if !status.success() {
        return Err(format!("the hot paths failed: {status}"));
    }
    read(&dir, results)
}

/// The directory levels searched below the criterion directory (group, function, `new`).
const MAX_DEPTH: usize = 4;

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// One benchmark's results from its `new/` directory.
fn hot_path(new: &Path) -> Result<HotPath> {
    let benchmark = read_json(&new.join("benchmark.json"))?;
    let estimates = read_json(&new.join("estimates.json"))?;
    let name = benchmark["full_id"]
        .as_str()
        .ok_or_else(|| format!("{}: no full_id", new.display()))?
        .to_owned();
    let number = |path: &[&str]| -> Result<f64> {
        let mut value = &estimates;
        for key in path {
            value = &value[*key];
        }
        value
            .as_f64()
            .ok_or_else(|| format!("{}: no {}", new.display(), path.join(".")))
    };
    Ok(HotPath {
        name,
        median_ns: number(&["median", "point_estimate"])?,
        low_ns: number(&["median", "confidence_interval", "lower_bound"])?,
        high_ns: number(&["median", "confidence_interval", "upper_bound"])?,
    })
}

/// Collects every benchmark under `dir` (criterion's output directory of this run).
pub fn read(dir: &Path, results: &mut Results) -> Result<()> {
    let mut pending = vec![(dir.to_path_buf(), 0)];
    let mut found = Vec::new();
    while let Some((current, depth)) = pending.pop() {
        if current.file_name().is_some_and(|name| name == "new")
            && current.join("estimates.json").is_file()
        {
            found.push(hot_path(&current)?);
            continue;
        }
        if depth >= MAX_DEPTH {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                pending.push((entry.path(), depth + 1));
            }
        }
    }
    if found.is_empty() {
        return Err(format!(
            "no criterion results under {} (did `cargo bench -p wsgw-bench --bench hot_paths` run?)",
            dir.display()
        ));
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    results.hot_paths = found;
    Ok(())
}
