//! What long steps print while they run, and the summary at the end: counts of tests
//! passed and failed per step (read from cargo's and node's own summary lines) and time.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How often a step that is still running says so.
const PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// How many of a step's last output lines are kept, to repeat them when it fails: the
/// cause of a failure is then at the end of the log, next to the summary, even when the
/// step printed thousands of lines before it.
pub const TAIL_LINES: usize = 40;

/// What a counted run ended with.
#[derive(Debug)]
pub struct Counted {
    /// The command's exit status.
    pub status: ExitStatus,
    /// Tests it reported.
    pub counts: TestCounts,
    /// Its last [`TAIL_LINES`] output lines, stdout and stderr interleaved as they came.
    pub tail: Vec<String>,
}

/// Tests counted from a step's output.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TestCounts {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed.
    pub failed: u64,
}

impl TestCounts {
    /// Adds the counts one output line reports: cargo's `test result: ok. 3 passed; 1
    /// failed; ...` and node's `# pass 3` / `ℹ pass 3` (TAP and spec reporters).
    pub fn read_line(&mut self, line: &str) {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("test result: ") {
            for part in rest.split([';', '.']) {
                let mut words = part.split_whitespace();
                if let (Some(number), Some(kind)) = (words.next(), words.next()) {
                    if let Ok(number) = number.parse::<u64>() {
                        match kind {
                            "passed" => self.passed += number,
                            "failed" => self.failed += number,
                            _ => {}
                        }
                    }
                }
            }
            return;
        }
        let node = line.strip_prefix("# ").or_else(|| line.strip_prefix("ℹ "));
        if let Some(rest) = node {
            let mut words = rest.split_whitespace();
            if let (Some(kind), Some(number), None) = (words.next(), words.next(), words.next()) {
                if let Ok(number) = number.parse::<u64>() {
                    match kind {
                        "pass" => self.passed += number,
                        "fail" => self.failed += number,
                        _ => {}
                    }
                }
            }
        }
    }
}

/// One finished step, for the summary.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// The step's name.
    pub name: String,
    /// Whether it succeeded.
    pub ok: bool,
    /// How long it took.
    pub took: Duration,
    /// Tests it ran, if it printed test summaries.
    pub tests: TestCounts,
}

fn forward<R: Read + Send + 'static>(
    stream: R,
    mut sink: impl Write + Send + 'static,
    lines: mpsc::Sender<String>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            match reader.read_until(b'\n', &mut buffer) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let _ = sink.write_all(&buffer);
                    let _ = sink.flush();
                    let _ = lines.send(String::from_utf8_lossy(&buffer).into_owned());
                }
            }
        }
    })
}

/// Runs a command to completion, passing its output through unchanged, saying every
/// 30 s that it is still running, and counting the tests it reports.
pub fn run_counted(name: &str, command: Command) -> io::Result<Counted> {
    run_counted_into(name, command, io::stdout(), io::stderr())
}

/// [`run_counted`] with the output passed to `stdout` and `stderr` instead of this
/// process's own.
pub fn run_counted_into(
    name: &str,
    mut command: Command,
    stdout: impl Write + Send + 'static,
    stderr: impl Write + Send + 'static,
) -> io::Result<Counted> {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn()?;
    let (lines_tx, lines) = mpsc::channel();
    let mut forwarders = Vec::new();
    if let Some(child_out) = child.stdout.take() {
        forwarders.push(forward(child_out, stdout, lines_tx.clone()));
    }
    if let Some(child_err) = child.stderr.take() {
        forwarders.push(forward(child_err, stderr, lines_tx.clone()));
    }
    drop(lines_tx);
    let started = Instant::now();
    let mut counts = TestCounts::default();
    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    let mut next_progress = started + PROGRESS_EVERY;
    loop {
        match lines.recv_timeout(Duration::from_millis(500)) {
            Ok(line) => {
                counts.read_line(&line);
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line.trim_end().to_owned());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Both streams closed: the child is exiting.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if Instant::now() >= next_progress {
            eprintln!(
                "xtask: … {name} still running ({}s, {} tests passed so far)",
                started.elapsed().as_secs(),
                counts.passed
            );
            next_progress += PROGRESS_EVERY;
        }
    }
    for forwarder in forwarders {
        let _ = forwarder.join();
    }
    Ok(Counted {
        status: child.wait()?,
        counts,
        tail: tail.into(),
    })
}

/// The closing table: each step with its result, tests and time, then the totals.
pub fn summary(task: &str, reports: &[StepReport], total: Duration) -> String {
    let mut out = format!("\nxtask {task} summary\n");
    let mut totals = TestCounts::default();
    for report in reports {
        let tests = if report.tests == TestCounts::default() {
            String::new()
        } else {
            format!(
                "{} passed, {} failed",
                report.tests.passed, report.tests.failed
            )
        };
        out.push_str(&format!(
            "  {:<4} {:>6.1}s  {:<28} {}\n",
            if report.ok { "ok" } else { "FAIL" },
            report.took.as_secs_f64(),
            tests,
            report.name
        ));
        totals.passed += report.tests.passed;
        totals.failed += report.tests.failed;
    }
    // The last line is the plain `N passed, N failed` form CI readers recognise.
    out.push_str(&format!(
        "xtask {task}: {} steps in {:.0}s\nsummary: {} passed, {} failed\n",
        reports.len(),
        total.as_secs_f64(),
        totals.passed,
        totals.failed
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_and_node_summary_lines_are_counted() {
        let mut counts = TestCounts::default();
        for line in [
            "test result: ok. 27 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 5.08s",
            "test result: FAILED. 11 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out",
            "# pass 5",
            "# fail 1",
            "ℹ pass 3",
            "# pass through this comment",
            "running 3 tests",
        ] {
            counts.read_line(line);
        }
        assert_eq!(
            counts,
            TestCounts {
                passed: 46,
                failed: 2
            }
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_counted_run_passes_the_exit_status_and_counts_through() {
        let mut command = Command::new("sh");
        command.args([
            "-c",
            "echo 'test result: ok. 2 passed; 0 failed;'; echo '# fail 1' >&2; exit 3",
        ]);
        // Into sinks: the fake summary lines must not reach this run's own output, where
        // the enclosing `cargo xtask test` would count them.
        let Counted {
            status,
            counts,
            tail,
        } = run_counted_into("demo", command, io::sink(), io::sink()).expect("sh runs");
        assert_eq!(status.code(), Some(3));
        assert_eq!(tail.len(), 2);
        assert!(tail.contains(&"# fail 1".to_owned()), "{tail:?}");
        assert_eq!(
            counts,
            TestCounts {
                passed: 2,
                failed: 1
            }
        );
    }

    #[test]
    fn only_the_last_lines_are_kept_for_the_tail() {
        let mut command = Command::new("sh");
        command.args([
            "-c",
            "i=0; while [ $i -lt 100 ]; do echo line$i; i=$((i+1)); done",
        ]);
        let counted = run_counted_into("tail", command, io::sink(), io::sink()).expect("sh runs");
        assert_eq!(counted.tail.len(), TAIL_LINES);
        assert_eq!(counted.tail.first().map(String::as_str), Some("line60"));
        assert_eq!(counted.tail.last().map(String::as_str), Some("line99"));
    }

    #[test]
    fn the_summary_lists_every_step_and_the_totals() {
        let reports = [
            StepReport {
                name: "unit tests".into(),
                ok: true,
                took: Duration::from_secs(3),
                tests: TestCounts {
                    passed: 10,
                    failed: 0,
                },
            },
            StepReport {
                name: "page".into(),
                ok: false,
                took: Duration::from_secs(1),
                tests: TestCounts {
                    passed: 1,
                    failed: 1,
                },
            },
        ];
        let text = summary("test", &reports, Duration::from_secs(4));
        assert!(text.contains("ok"), "{text}");
        assert!(text.contains("FAIL"), "{text}");
        assert!(text.contains("xtask test: 2 steps in 4s"), "{text}");
        assert!(
            text.trim_end().ends_with("\nsummary: 11 passed, 1 failed"),
            "{text}"
        );
    }
}
