//! What the wsgw package's tests share: the workspace's paths and the fixture function
//! built once per test binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tokio::sync::OnceCell;
use wsgw::build::Builder;
use wsgw_aws::template::CargoBuild;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("wsgw-aws/cli sits two levels below the workspace root")
        .to_path_buf()
}

/// The `plain-echo` fixture (lambda_runtime + aws-sdk-apigatewaymanagement, no wsgw
/// crates), built with [`Builder`] in the workspace's target directory, once.
pub async fn plain_echo() -> PathBuf {
    static BUILT: OnceCell<PathBuf> = OnceCell::const_new();
    BUILT
        .get_or_init(|| async {
            let build = CargoBuild::new(
                workspace().join("wsgw-aws/cli/tests/plain-echo"),
                Some("plain-echo".to_owned()),
            );
            let mut built = Builder::default()
                .build_all([("PlainEcho".to_owned(), build)])
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            built.remove("PlainEcho").expect("the fixture's executable")
        })
        .await
        .clone()
}

/// A directory of its own under the system's temporary directory, emptied first.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wsgw-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// A crate that does not compile, in a workspace of its own: `broken`'s `main` returns
/// a string where it declares `()`.
pub fn broken_crate(dir: &Path) -> PathBuf {
    let root = dir.join("broken");
    std::fs::create_dir_all(root.join("src")).expect("the crate's directory");
    std::fs::write(
        root.join("Cargo.toml"),
        "[package]\nname = \"broken\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .expect("its manifest");
    std::fs::write(
        root.join("src/main.rs"),
        "fn main() {\n    \"not a unit\"\n}\n",
    )
    .expect("its source");
    root
}

/// The `wsgw` binary run with `args` (and `envs`) in the workspace root until it prints
/// its ready lines (the `@connections` line), then stopped with SIGTERM, as it serves
/// until then: its exit status, everything it printed, and its standard error. A run
/// that stops by itself (a bad input) is read to its end.
pub fn wsgw_until_ready(
    args: &[&str],
    envs: &[(&str, &std::ffi::OsStr)],
) -> (std::process::ExitStatus, String, String) {
    use std::io::{BufRead, Read};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsgw"))
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(workspace())
        .env_remove("WSGW_LISTEN")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wsgw runs");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("its stdout"));
    // Standard error is read alongside, so a chatty run cannot fill its pipe and stall.
    let mut stderr_pipe = child.stderr.take().expect("its stderr");
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let mut printed = String::new();
    while stdout.read_line(&mut printed).unwrap_or(0) > 0 {
        if printed
            .lines()
            .last()
            .is_some_and(|line| line.contains("@connections at"))
        {
            break;
        }
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    stdout
        .read_to_string(&mut printed)
        .expect("the rest of stdout");
    let status = child.wait().expect("wsgw stops");
    (status, printed, stderr.join().unwrap_or_default())
}

/// A WebSocket client of the served API.
pub type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long a test waits for a frame it expects.
pub const FRAME_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// A client connected to `url`.
pub async fn connect(url: &str) -> Client {
    let (client, _) = tokio_tungstenite::connect_async(url)
        .await
        .unwrap_or_else(|error| panic!("connecting to {url}: {error}"));
    client
}

/// The HTTP status a refused handshake got.
pub async fn refused_status(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(error) => panic!("{url}: expected a refused handshake, got {error}"),
        Ok(_) => panic!("{url}: expected a refused handshake, the connection was accepted"),
    }
}

/// Sends `body` as a text frame.
pub async fn send(client: &mut Client, body: serde_json::Value) {
    use futures::SinkExt;
    client
        .send(tokio_tungstenite::tungstenite::Message::text(
            body.to_string(),
        ))
        .await
        .expect("the message is sent");
}

/// The next text frame, within [`FRAME_WAIT`].
pub async fn next_text(client: &mut Client) -> String {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let frame = tokio::time::timeout(FRAME_WAIT, client.next())
            .await
            .expect("a frame within the wait")
            .expect("the connection stays open")
            .expect("a frame");
        match frame {
            Message::Text(text) => return text.to_string(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// An example's binary as `cargo run -p EXAMPLE` runs it (no Runtime API: the router in
/// process behind its own LocalGateway, memory backends), on a free loopback port, once
/// it says it listens: the process (killed when dropped) and its `ws://` URL.
pub async fn run_in_process(executable: &Path) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let mut child = tokio::process::Command::new(executable)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
        .env_remove("WSGW_LISTEN")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|error| panic!("{}: {error}", executable.display()));
    let stdout = child.stdout.take().expect("its stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    loop {
        let line = tokio::time::timeout(FRAME_WAIT, lines.next_line())
            .await
            .expect("the example starts")
            .expect("its output")
            .unwrap_or_else(|| panic!("{} ended before listening", executable.display()));
        if line.contains("listening on ws://") {
            break;
        }
    }
    (child, format!("ws://127.0.0.1:{port}/"))
}
