//! The router logs every system's connection lifecycle: an accepted `$connect`
//! ("connected") and every `$disconnect` ("disconnected", with the close code and
//! reason), with the connection id and source IP; a refused `$connect` is not logged as
//! connected.

use std::io::Write;
use std::sync::{Arc, Mutex};

use wsgw_core::{Context, Rejection, Request, Result, Router};
use wsgw_memory::{ConnectOptions, Harness};

/// What the subscriber wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().expect("not poisoned").clone();
        String::from_utf8(bytes)
            .expect("UTF-8 logs")
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// Refuses `?room=closed`.
async fn on_connect(_ctx: Context, request: Request) -> Result<()> {
    match request.query_param("room") {
        Some("closed") => Err(Rejection::new("room_closed").into()),
        _ => Ok(()),
    }
}

#[tokio::test]
async fn connects_and_disconnects_are_logged_with_the_caller_and_refusals_are_not_connects() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let harness = Harness::new(Router::new().on_connect(on_connect));

    let ada = harness
        .connect_with(ConnectOptions::new().source_ip("203.0.113.7"))
        .await
        .expect("connects");
    let id = ada.id().as_str().to_owned();
    assert!(harness
        .connect_with(ConnectOptions::new().query("room", "closed"))
        .await
        .is_err());
    ada.disconnect_with(1001, "Going away")
        .await
        .expect("disconnects");

    let lines = captured.lines();
    let connected: Vec<&String> = lines.iter().filter(|l| l.contains(" connected")).collect();
    assert_eq!(connected.len(), 1, "only the accepted connect: {lines:#?}");
    assert!(connected[0].contains("INFO"), "{}", connected[0]);
    assert!(
        connected[0].contains(&format!("connection_id={id}")),
        "{}",
        connected[0]
    );
    assert!(
        connected[0].contains("source_ip=\"203.0.113.7\""),
        "{}",
        connected[0]
    );

    let disconnected: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("disconnected"))
        .collect();
    assert_eq!(disconnected.len(), 1, "{lines:#?}");
    for field in [
        format!("connection_id={id}"),
        "source_ip=\"203.0.113.7\"".to_owned(),
        "status_code=1001".to_owned(),
        "reason=\"Going away\"".to_owned(),
    ] {
        assert!(
            disconnected[0].contains(&field),
            "{field} in {}",
            disconnected[0]
        );
    }
}
