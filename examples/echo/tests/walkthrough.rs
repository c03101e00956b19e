//! The workspace README's "Poke it by hand" section, run command by command.
//!
//! Every command in the section's fenced blocks is run, in order: `curl` lines through
//! `sh -c` exactly as written, `wscat` in a real terminal (a pseudo-terminal from
//! `script`) with the lines typed as a person types them, `cargo run -p echo …` as the
//! binary that command runs. Only the port (8080 in the README) and the connection id
//! (the README's example) are replaced by this run's. What the README shows after a
//! command is compared with what the command printed, and the wscat screen must end up
//! exactly as the README's console blocks show it. A command the test does not know
//! fails the test, so the README cannot drift from what is run.
//!
//! Needs `wscat` (the version pinned in `examples/echo/walkthrough/package.json`,
//! installed by `npm ci` there, or named by `WSCAT`), `curl` and `script`: `cargo xtask
//! test` installs what is missing and runs this test; plain `cargo test` skips it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use wsgw_memory::testing::{ChildProcess, ServerProcess};

/// The port the README's commands use.
const README_PORT: &str = "8080";
const WAIT: Duration = Duration::from_secs(15);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("examples/echo sits two levels down")
        .to_path_buf()
}

/// A fenced block of the section: its info string and lines.
#[derive(Debug, Clone)]
struct Block {
    lang: String,
    lines: Vec<String>,
}

/// The fenced blocks of the README section `## {title}`, in order.
fn section_blocks(readme: &str, title: &str) -> Vec<Block> {
    let heading = format!("## {title}\n");
    let start = readme
        .find(&heading)
        .unwrap_or_else(|| panic!("the README has a section {heading:?}"));
    let rest = &readme[start + heading.len()..];
    let section = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    for line in section.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(lang)) => {
                current = Some(Block {
                    lang: lang.trim().to_owned(),
                    lines: Vec::new(),
                })
            }
            (Some(_), Some("")) => blocks.push(current.take().unwrap()),
            (Some(block), _) => block.lines.push(line.to_owned()),
            (None, None) => {}
        }
    }
    assert!(current.is_none(), "an unclosed fence");
    blocks
}

/// One thing the README tells the reader to do, or shows.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// A command to run.
    Command(String),
    /// What the command before printed (`text` or `json`).
    Output { lang: String, text: String },
    /// Lines the wscat session's screen shows next.
    Screen(Vec<String>),
}

fn steps(blocks: &[Block]) -> Vec<Step> {
    let mut steps = Vec::new();
    for block in blocks {
        match block.lang.as_str() {
            "sh" => {
                for line in &block.lines {
                    let line = line.trim();
                    assert!(
                        !line.ends_with('\\'),
                        "one command per line, please: {line}"
                    );
                    if !line.is_empty() && !line.starts_with('#') {
                        steps.push(Step::Command(line.to_owned()));
                    }
                }
            }
            "console" => {
                let mut lines = block.lines.clone();
                if let Some(command) = lines.first().and_then(|line| line.strip_prefix("$ ")) {
                    steps.push(Step::Command(command.to_owned()));
                    lines.remove(0);
                }
                steps.push(Step::Screen(lines));
            }
            "text" | "json" => steps.push(Step::Output {
                lang: block.lang.clone(),
                text: block.lines.join("\n"),
            }),
            other => panic!("a fenced block of an unexpected kind in the walkthrough: {other:?}"),
        }
    }
    steps
}

/// A tiny terminal: enough of the cursor movement and erasing readline and wscat use to
/// know what the screen shows, as a person sees it.
#[derive(Default)]
struct Screen {
    lines: Vec<Vec<char>>,
    row: usize,
    col: usize,
    pending: String,
}

impl Screen {
    fn line(&mut self) -> &mut Vec<char> {
        while self.lines.len() <= self.row {
            self.lines.push(Vec::new());
        }
        &mut self.lines[self.row]
    }

    fn put(&mut self, c: char) {
        let col = self.col;
        let line = self.line();
        while line.len() < col {
            line.push(' ');
        }
        if col < line.len() {
            line[col] = c;
        } else {
            line.push(c);
        }
        self.col += 1;
    }

    fn csi(&mut self, params: &str, command: char) {
        let n = |default: usize| {
            params
                .trim_start_matches('?')
                .split(';')
                .next()
                .and_then(|p| p.parse::<usize>().ok())
                .unwrap_or(default)
        };
        match command {
            'K' => {
                let col = self.col;
                let mode = n(0);
                let line = self.line();
                match mode {
                    0 => line.truncate(col),
                    1 => line.iter_mut().take(col + 1).for_each(|c| *c = ' '),
                    _ => line.clear(),
                }
            }
            'J' => {
                let (row, col) = (self.row, self.col);
                match n(0) {
                    0 => {
                        self.line().truncate(col);
                        self.lines.truncate(row + 1);
                    }
                    _ => {
                        self.lines.clear();
                    }
                }
            }
            'D' => self.col = self.col.saturating_sub(n(1)),
            'C' => self.col += n(1),
            'G' => self.col = n(1).saturating_sub(1),
            'A' => self.row = self.row.saturating_sub(n(1)),
            'B' => self.row += n(1),
            // Colours, modes (bracketed paste …): nothing on screen.
            _ => {}
        }
    }

    fn feed(&mut self, text: &str) {
        self.pending.push_str(text);
        let pending = std::mem::take(&mut self.pending);
        let mut chars = pending.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\u{1b}' => {
                    let mut sequence = String::from(c);
                    match chars.peek() {
                        None => {
                            self.pending = sequence;
                            return;
                        }
                        Some('[') => {
                            sequence.push(chars.next().unwrap());
                            let mut params = String::new();
                            loop {
                                match chars.next() {
                                    None => {
                                        sequence.push_str(&params);
                                        self.pending = sequence;
                                        return;
                                    }
                                    Some(c) if ('\u{40}'..='\u{7e}').contains(&c) => {
                                        self.csi(&params, c);
                                        break;
                                    }
                                    Some(c) => params.push(c),
                                }
                            }
                        }
                        Some(_) => {
                            chars.next();
                        }
                    }
                }
                '\r' => self.col = 0,
                '\n' => {
                    self.row += 1;
                    self.line();
                }
                '\u{8}' => self.col = self.col.saturating_sub(1),
                c if c.is_control() => {}
                c => self.put(c),
            }
        }
    }

    /// The screen's lines, trailing blanks and a last bare prompt left out.
    fn text(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .lines
            .iter()
            .map(|line| line.iter().collect::<String>().trim_end().to_owned())
            .collect();
        while lines
            .last()
            .is_some_and(|line| line.is_empty() || line == ">")
        {
            lines.pop();
        }
        lines
    }
}

/// wscat in a pseudo-terminal: what it shows, and a keyboard.
struct Terminal {
    /// Held so that `script` is killed when the terminal is dropped.
    _process: ChildProcess,
    keyboard: ChildStdin,
    screen: Arc<Mutex<Screen>>,
}

impl Terminal {
    fn open(command: &str) -> Terminal {
        // `script` gives wscat a terminal, as a person's shell does; wide enough that
        // nothing wraps.
        let mut child = ChildProcess::spawn(
            Command::new("script")
                .args([
                    "-qfec",
                    &format!("stty cols 250 rows 50; exec {command}"),
                    "/dev/null",
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        )
        .expect("`script` (util-linux) runs");
        let keyboard = child.stdin.take().expect("stdin piped");
        let mut output = child.stdout.take().expect("stdout piped");
        let screen = Arc::new(Mutex::new(Screen::default()));
        let painted = screen.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            let mut undecoded = Vec::new();
            while let Ok(read) = output.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                undecoded.extend_from_slice(&buffer[..read]);
                let valid = match std::str::from_utf8(&undecoded) {
                    Ok(text) => text.len(),
                    Err(error) => error.valid_up_to(),
                };
                let text = String::from_utf8_lossy(&undecoded[..valid]).into_owned();
                undecoded.drain(..valid);
                painted.lock().unwrap().feed(&text);
            }
        });
        Terminal {
            _process: child,
            keyboard,
            screen,
        }
    }

    fn text(&self) -> Vec<String> {
        self.screen.lock().unwrap().text()
    }

    /// Waits until the screen's last lines (a bare prompt aside) are `lines`.
    fn wait_for_last(&self, lines: &[String]) {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self.text();
            if text.ends_with(lines) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the terminal never showed {lines:#?}\nit shows {text:#?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn type_line(&mut self, line: &str) {
        self.keyboard
            .write_all(format!("{line}\r").as_bytes())
            .expect("typed");
        self.keyboard.flush().expect("typed");
    }
}

fn wscat_program() -> PathBuf {
    let program = std::env::var_os("WSCAT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("walkthrough/node_modules/.bin/wscat")
        });
    assert!(
        program.exists(),
        "{} is missing: run `npm ci` in examples/echo/walkthrough (cargo xtask test does), or \
         name a wscat with WSCAT",
        program.display()
    );
    program
}

/// What a run has learnt: the port, the connection id, the processes.
struct Run {
    port: Option<u16>,
    example_id: String,
    id: Option<String>,
    /// Killed if the test fails before Ctrl-C.
    server: Option<ServerProcess>,
    terminal: Option<Terminal>,
    /// Every line typed or shown so far in the session, README ids.
    session: Vec<String>,
    last_output: Option<String>,
    ran: Vec<&'static str>,
}

impl Run {
    fn port(&self) -> String {
        self.port.expect("the server runs").to_string()
    }

    /// The command (or shown text) for this run: its port and connection id.
    fn localize(&self, text: &str) -> String {
        let mut text = text.replace(
            &format!("127.0.0.1:{README_PORT}"),
            &format!("127.0.0.1:{}", self.port()),
        );
        if let Some(id) = &self.id {
            text = text.replace(&self.example_id, id);
        }
        text
    }
}

/// `command` without the settings a reader following the README has not made, but the
/// test's own environment may hold: `cargo xtask test` exports moto's
/// `AWS_ENDPOINT_URL_DYNAMODB` for the DynamoDB steps, and the runner reads every `WSGW_*`,
/// `AWS_ENDPOINT_URL*` and Lambda variable.
fn as_in_a_readers_shell(command: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if ["WSGW_", "AWS_LAMBDA_", "AWS_ENDPOINT_URL"]
            .iter()
            .any(|prefix| name_text.starts_with(prefix))
        {
            command.env_remove(&name);
        }
    }
    command
}

fn shell(command: &str) -> String {
    let output = Command::new("sh")
        .args(["-c", command])
        .output()
        .expect("sh runs");
    assert!(
        output.status.success(),
        "`{command}` failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn run_command(run: &mut Run, command: &str) {
    let run_output = |run: &mut Run, output: String| run.last_output = Some(output);
    if command == "npm install -g wscat" {
        // `npm ci` of the pinned package stands for the global install: check that it
        // is the wscat this test drives.
        let pinned: Value = serde_json::from_str(
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("walkthrough/package.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let version = shell(&format!("{} --version", wscat_program().display()));
        assert_eq!(
            version.trim(),
            pinned["devDependencies"]["wscat"].as_str().unwrap()
        );
        run.ran.push("install wscat");
    } else if command == "cargo run -p echo" {
        let mut command = Command::new(env!("CARGO_BIN_EXE_echo"));
        as_in_a_readers_shell(&mut command).env("WSGW_LISTEN", "127.0.0.1:0");
        let server = ServerProcess::start(command);
        let first = server.first_line().to_owned();
        let port = first
            .split_whitespace()
            .find_map(|word| word.strip_prefix("ws://127.0.0.1:"))
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no ws:// address in {first:?}"));
        run.port = Some(port);
        run.server = Some(server);
        run_output(run, first.trim_end().to_owned());
        run.ran.push("start echo");
    } else if let Some(url) = command.strip_prefix("wscat -c ") {
        let line = format!("{} -c {}", wscat_program().display(), run.localize(url));
        run.terminal = Some(Terminal::open(&line));
        run.ran.push("wscat");
    } else if command.starts_with("curl ") {
        assert!(
            !command.contains(['|', ';', '&', '>', '<', '`', '$']),
            "a plain curl command: {command}"
        );
        let output = shell(&run.localize(command));
        run_output(run, output);
        run.ran.push(if command.contains("/metrics") {
            "metrics"
        } else if command.contains("-X POST") {
            "post"
        } else {
            "curl"
        });
    } else if let Some(args) = command.strip_prefix("cargo run -q -p echo -- ") {
        assert!(!args.contains(['\'', '"', '\\']), "no quoting: {command}");
        let output = as_in_a_readers_shell(&mut Command::new(env!("CARGO_BIN_EXE_echo")))
            .current_dir(workspace_root())
            .args(args.split_whitespace())
            .output()
            .expect("echo runs");
        assert!(output.status.success(), "`{command}` failed");
        run_output(run, String::from_utf8(output.stdout).unwrap());
        if args.starts_with("invoke ") {
            run.ran.push("invoke");
        }
    } else {
        panic!("the README tells the reader to run `{command}`, which this test does not run");
    }
}

/// Values that differ from run to run, as `"<varies>"`: times, latencies.
fn mask(value: &mut Value) {
    match value {
        Value::Object(members) => {
            for (name, member) in members.iter_mut() {
                match name.as_str() {
                    "connectedAt" | "lastActiveAt" => {
                        let time = member.as_str().expect("a time string");
                        chrono::DateTime::parse_from_rfc3339(time).expect("RFC 3339");
                        *member = Value::from("<varies>");
                    }
                    "Timestamp" | "HandlerLatency" => {
                        assert!(member.is_number(), "{name} is a number");
                        *member = Value::from("<varies>");
                    }
                    _ => mask(member),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask),
        _ => {}
    }
}

fn check_output(run: &Run, lang: &str, shown: &str) {
    let printed = run
        .last_output
        .clone()
        .expect("the README shows output only after a command that prints");
    let shown = run.localize(shown);
    match lang {
        "json" => {
            let mut printed: Value = serde_json::from_str(&printed).expect("JSON printed");
            let mut shown: Value = serde_json::from_str(&shown).expect("JSON in the README");
            mask(&mut printed);
            mask(&mut shown);
            assert_eq!(printed, shown, "the README shows what the command prints");
        }
        _ if printed.lines().count() > shown.lines().count() => {
            // An excerpt: every line shown is printed.
            for line in shown.lines() {
                assert!(
                    printed.lines().any(|printed| printed == line),
                    "the README shows {line:?}, not printed:\n{printed}"
                );
            }
        }
        _ => assert_eq!(printed.trim_end(), shown.trim_end()),
    }
}

fn show_on_screen(run: &mut Run, lines: &[String]) {
    for line in lines {
        run.session.push(line.clone());
        if let Some(typed) = line.strip_prefix("> ") {
            let typed = run.localize(typed);
            run.terminal.as_mut().expect("wscat runs").type_line(&typed);
            continue;
        }
        // A line wscat prints: wait for it; a whoami answer tells the connection id.
        if run.id.is_none() {
            if let Some(answer) = line.strip_prefix("< ") {
                if let Ok(shown) = serde_json::from_str::<Value>(answer) {
                    if shown["type"] == "whoami" {
                        run.example_id = shown["connection_id"].as_str().unwrap().to_owned();
                        let terminal = run.terminal.as_ref().unwrap();
                        let deadline = Instant::now() + WAIT;
                        let id = loop {
                            let found = terminal.text().iter().find_map(|line| {
                                let answer: Value =
                                    serde_json::from_str(line.strip_prefix("< ")?).ok()?;
                                Some(answer["connection_id"].as_str()?.to_owned())
                            });
                            if let Some(id) = found {
                                break id;
                            }
                            assert!(Instant::now() < deadline, "no whoami answer");
                            std::thread::sleep(Duration::from_millis(20));
                        };
                        run.id = Some(id);
                    }
                }
            }
        }
        let expected: Vec<String> = run.session.iter().map(|line| run.localize(line)).collect();
        run.terminal
            .as_ref()
            .expect("wscat runs")
            .wait_for_last(&expected[expected.len() - 1..]);
    }
}

#[test]
#[ignore = "needs wscat, curl and script: `cargo xtask test` installs them and runs it"]
fn every_command_of_the_readme_walkthrough_runs_and_prints_what_the_readme_shows() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README");
    let steps = steps(&section_blocks(&readme, "Poke it by hand"));
    let mut run = Run {
        port: None,
        example_id: String::new(),
        id: None,
        server: None,
        terminal: None,
        session: Vec::new(),
        last_output: None,
        ran: Vec::new(),
    };
    for step in &steps {
        match step {
            Step::Command(command) => {
                run.last_output = None;
                run_command(&mut run, command);
            }
            Step::Output { lang, text } => check_output(&run, lang, text),
            Step::Screen(lines) => show_on_screen(&mut run, lines),
        }
    }

    // The session's screen is exactly what the README's console blocks show.
    let terminal = run.terminal.as_ref().expect("the walkthrough opens wscat");
    let expected: Vec<String> = run.session.iter().map(|line| run.localize(line)).collect();
    terminal.wait_for_last(&expected);
    assert_eq!(terminal.text(), expected, "the whole wscat screen");

    // Ctrl-C stops the server cleanly.
    let mut server = run.server.take().expect("the walkthrough starts echo");
    let pid = server.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let status = server.wait().expect("echo exits");
    assert!(status.success(), "Ctrl-C exits 0, got {status}");

    // What the issue asks a newcomer to see is all there.
    for part in [
        "install wscat",
        "start echo",
        "wscat",
        "post",
        "metrics",
        "invoke",
    ] {
        assert!(run.ran.contains(&part), "the walkthrough shows {part}");
    }
    let typed: Vec<&String> = run
        .session
        .iter()
        .filter(|line| line.starts_with("> "))
        .collect();
    assert!(typed
        .iter()
        .any(|line| line.contains(r#""action":"whoami""#)));
    assert!(typed
        .iter()
        .any(|line| line.contains(r#""action":"message""#)));
}

/// How the commands of "Deploy to AWS" that need an AWS account begin: the first is
/// where the test stops running them.
const NEEDS_AN_AWS_ACCOUNT: [&str; 3] = ["sam deploy --guided", "wscat -c ", "sam delete"];

/// ELF's machine number for aarch64 (`EM_AARCH64`).
const EM_AARCH64: u16 = 183;

/// What `sam build` left at `built` is an aarch64 ELF, byte for byte the `example`'s
/// bootstrap that `cargo xtask test` checked (glibc, size) and ran under qemu.
fn assert_deploys_the_checked_arm64_bootstrap(built: &Path, example: &str) {
    let bootstrap =
        std::fs::read(built).unwrap_or_else(|error| panic!("{}: {error}", built.display()));
    assert_eq!(&bootstrap[..4], b"\x7fELF", "an ELF binary");
    assert_eq!(
        u16::from_le_bytes([bootstrap[18], bootstrap[19]]),
        EM_AARCH64,
        "an aarch64 binary"
    );
    let target = Path::new(env!("CARGO_BIN_EXE_echo"))
        .ancestors()
        .nth(2)
        .expect("the target directory")
        .join("lambda")
        .join(example)
        .join("bootstrap");
    let checked =
        std::fs::read(&target).unwrap_or_else(|error| panic!("{}: {error}", target.display()));
    assert!(
        bootstrap == checked,
        "sam build deploys the binary the tests checked: {}",
        built.display()
    );
}

/// The commands of the README's "Deploy to AWS": those before `sam deploy --guided`, and
/// from it on (each checked to be one that needs an AWS account).
fn deploy_commands(readme: &str) -> (Vec<String>, Vec<String>) {
    let mut commands: Vec<String> = steps(&section_blocks(readme, "Deploy to AWS"))
        .into_iter()
        .map(|step| match step {
            Step::Command(command) => command,
            other => panic!("the deploy section shows commands only: {other:?}"),
        })
        .collect();
    let deploy = commands
        .iter()
        .position(|command| command.starts_with(NEEDS_AN_AWS_ACCOUNT[0]))
        .expect("the section deploys with sam deploy --guided");
    let remote = commands.split_off(deploy);
    for command in &remote {
        assert!(
            NEEDS_AN_AWS_ACCOUNT
                .iter()
                .any(|known| command.starts_with(known)),
            "a command after sam deploy that the test does not know: {command}"
        );
    }
    (commands, remote)
}

#[test]
fn the_deploy_section_installs_builds_with_sam_and_then_needs_an_aws_account() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README");

    let (local, remote) = deploy_commands(&readme);

    assert_eq!(
        local,
        [
            "python3 -m venv .venv",
            ".venv/bin/pip install -r xtask/requirements.txt",
            ". .venv/bin/activate",
            "sam --version",
            "rustup target add aarch64-unknown-linux-gnu",
            "sam validate --lint -t examples/chat/template.yaml",
            "sam build -t examples/chat/template.yaml",
        ]
    );
    assert_eq!(remote.len(), 3, "{remote:?}");
}

#[test]
#[ignore = "needs Python 3 and the arm64 build (minutes): `cargo xtask test` runs it after building the functions"]
fn the_readmes_deploy_to_aws_runs_up_to_sam_deploy_and_leaves_the_arm64_bootstrap() {
    let root = workspace_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    let (local, _) = deploy_commands(&readme);
    let _ = std::fs::remove_dir_all(root.join(".aws-sam"));

    // One shell, as a reader's terminal: the virtualenv activated holds for what follows.
    // Each command is shown as it is typed, then run as written.
    let mut script = String::from("set -eu\n");
    for command in &local {
        let shown = format!("$ {command}").replace('\'', "'\\''");
        script.push_str(&format!("printf '%s\\n' '{shown}'\n{command}\n"));
    }
    let status = Command::new("bash")
        .args(["-c", &script])
        .current_dir(&root)
        .env("SAM_CLI_TELEMETRY", "0")
        .status()
        .expect("bash runs");
    assert!(status.success(), "the README's commands failed: {status}");

    // What sam deploy would upload: the arm64 bootstrap, byte for byte the one
    // `cargo xtask test` checked (glibc, size) and ran under qemu.
    assert_deploys_the_checked_arm64_bootstrap(
        &root.join(".aws-sam/build/Function/bootstrap"),
        "chat",
    );
    let template = std::fs::read_to_string(root.join(".aws-sam/build/template.yaml"))
        .expect("sam build writes the template sam deploy uses");
    assert!(template.contains("CodeUri: Function"), "{template}");
}

/// The telemetry README's `sam build`, the one command of its "Deploy to AWS" before
/// `sam deploy --guided`.
fn telemetry_sam_build(root: &Path) -> String {
    let readme = std::fs::read_to_string(root.join("examples/telemetry/README.md"))
        .expect("the telemetry README");
    let blocks = section_blocks(&readme, "Deploy to AWS");
    let commands: Vec<&String> = blocks.iter().flat_map(|block| &block.lines).collect();
    let build: Vec<&&String> = commands
        .iter()
        .take_while(|command| !command.starts_with(NEEDS_AN_AWS_ACCOUNT[0]))
        .collect();
    assert_eq!(
        build,
        [&"sam build -t examples/telemetry/template.yaml"],
        "the telemetry README builds with one sam build before sam deploy"
    );
    build[0].to_string()
}

#[test]
#[ignore = "needs the virtualenv's SAM CLI and the arm64 build (minutes): `cargo xtask test` runs it after building the functions"]
fn the_telemetry_template_builds_with_sam_for_its_http_api_history() {
    let root = workspace_root();
    let build_dir = std::env::temp_dir().join(format!("wsgw-telemetry-sam-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&build_dir);
    // The README's command with the parameter `sam deploy --guided` would ask for: the
    // HTTP API's history function (HttpHistoryFunction) and its HttpApi events must
    // build, not only the default REST API's. A build directory of its own, so the chat's
    // `sam build` of the workspace README may run at the same time.
    let command = format!(
        "{} --parameter-overrides HistoryApi=HTTP --build-dir {}",
        telemetry_sam_build(&root),
        build_dir.display()
    );
    let venv_bin = root.join(".venv/bin");
    let path = format!(
        "{}:{}",
        venv_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let status = Command::new("bash")
        .args(["-c", &command])
        .current_dir(&root)
        .env("PATH", path)
        .env("SAM_CLI_TELEMETRY", "0")
        .status()
        .expect("bash runs");
    assert!(
        status.success(),
        "{command} failed: {status} (the virtualenv .venv/ with xtask/requirements.txt is `cargo xtask setup-moto`'s)"
    );

    let template = std::fs::read_to_string(build_dir.join("template.yaml"))
        .expect("sam build writes the template sam deploy uses");
    for needed in [
        "Type: AWS::Serverless::HttpApi",
        "CodeUri: HttpHistoryFunction",
        "Type: HttpApi",
    ] {
        assert!(template.contains(needed), "{needed} missing in {template}");
    }
    assert_deploys_the_checked_arm64_bootstrap(
        &build_dir.join("HttpHistoryFunction/bootstrap"),
        "telemetry",
    );
    let _ = std::fs::remove_dir_all(&build_dir);
}

#[test]
fn the_screen_model_reads_wscat_output_as_a_person_sees_it() {
    let mut screen = Screen::default();
    // Bytes wscat 6.1.0 wrote under `script`, in two pieces split mid-sequence.
    screen.feed("\r\u{1b}[2K\u{1b}[3D\u{1b}[32mConnected (press CTRL+C to quit)\u{1b}[39m\r\n\u{1b}[1G\u{1b}[0J> \u{1b}[3G{\"action\":\"whoami\"}\r\r\n\u{1b}[1G\u{1b}[0J> \u{1b}[3G\r\u{1b}[2K\u{1b}[3D\u{1b}");
    screen.feed("[34m< {\"connection_id\":\"hWlwQ8mAFL3UhhA=\",\"type\":\"whoami\"}\u{1b}[39m\r\n\u{1b}[1G\u{1b}[0J> \u{1b}[3G");
    assert_eq!(
        screen.text(),
        vec![
            "Connected (press CTRL+C to quit)",
            r#"> {"action":"whoami"}"#,
            r#"< {"connection_id":"hWlwQ8mAFL3UhhA=","type":"whoami"}"#,
        ]
    );
}

#[test]
fn the_walkthrough_section_parses_into_commands_and_what_they_show() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README");
    let commands: Vec<String> = steps(&section_blocks(&readme, "Poke it by hand"))
        .into_iter()
        .filter_map(|step| match step {
            Step::Command(command) => Some(command),
            _ => None,
        })
        .collect();
    assert_eq!(
        commands.first().map(String::as_str),
        Some("npm install -g wscat")
    );
    assert!(commands.contains(&"cargo run -p echo".to_owned()));
    assert!(commands.contains(&"wscat -c ws://127.0.0.1:8080".to_owned()));
}
