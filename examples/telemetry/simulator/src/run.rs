//! One simulated device: the device logic driven by tokio and tokio-tungstenite.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use telemetry_device::{Action, Config, Device, FrameKind, Incoming};
use telemetry_protocol::MAX_MESSAGE_LEN;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use crate::sensor::Sensors;
use crate::{lock, DeviceReport, BUFFER_CAPACITY};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Everything one device needs.
pub(crate) struct Plan {
    pub device_id: String,
    pub config: Config,
    pub url: String,
    pub sensor_seed: u64,
}

/// The device's clock: milliseconds since it started.
struct Uptime(Instant);

impl Uptime {
    fn now(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }

    fn instant(&self, ms: u64) -> Instant {
        self.0 + Duration::from_millis(ms)
    }
}

fn unix_now_ms() -> Option<u64> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis() as u64)
}

/// What ended a wait.
enum Woke {
    Deadline,
    Shutdown,
    Frame(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
}

pub(crate) async fn device(
    plan: Plan,
    report: Arc<Mutex<DeviceReport>>,
    shutdown: CancellationToken,
) {
    let uptime = Uptime(Instant::now());
    let connect_timeout = Duration::from_millis(u64::from(plan.config.connect_timeout_ms));
    // ~200 KB: on the heap, not in the task's future.
    let mut device: Box<Device<BUFFER_CAPACITY>> = match Device::new(plan.config, uptime.now()) {
        Ok(device) => Box::new(device),
        Err(error) => {
            tracing::error!(device_id = %plan.device_id, %error, "invalid device settings");
            return;
        }
    };
    let mut sensors = Sensors::new(plan.sensor_seed);
    let mut out = vec![0u8; MAX_MESSAGE_LEN];
    let mut socket: Option<Socket> = None;
    let id = plan.device_id.as_str();

    loop {
        publish(&report, &device, socket.is_some());
        let action = device.poll(uptime.now(), &mut out);
        match action {
            Action::Sample => {
                let now = uptime.now();
                if let Err(error) = device.on_sample(now, &sensors.read(now)) {
                    tracing::warn!(device_id = id, %error, "sample refused");
                }
            }
            Action::Connect => {
                let connecting = tokio::time::timeout(
                    connect_timeout,
                    tokio_tungstenite::connect_async(plan.url.as_str()),
                );
                tokio::pin!(connecting);
                // Keep sampling while the handshake runs, as the firmware does.
                let result = loop {
                    let deadline = match device.poll(uptime.now(), &mut out) {
                        Action::Sample => {
                            let now = uptime.now();
                            let _ = device.on_sample(now, &sensors.read(now));
                            continue;
                        }
                        Action::Wait { until_ms } => uptime.instant(until_ms),
                        other => {
                            tracing::error!(
                                device_id = id,
                                ?other,
                                "unexpected action while connecting"
                            );
                            uptime.instant(uptime.now() + 100)
                        }
                    };
                    tokio::select! {
                        result = &mut connecting => break Some(result),
                        () = tokio::time::sleep_until(deadline) => {}
                        () = shutdown.cancelled() => break None,
                    }
                };
                match result {
                    None => break,
                    Some(Ok(Ok((ws, _response)))) => {
                        tracing::info!(
                            device_id = id,
                            buffered = device.stats().buffered,
                            "connected to {}",
                            plan.url
                        );
                        device.on_connected(uptime.now(), unix_now_ms());
                        socket = Some(ws);
                    }
                    Some(Ok(Err(error))) => {
                        device.on_connect_failed(uptime.now());
                        tracing::info!(device_id = id, %error, link = ?device.link(), "connect failed");
                    }
                    Some(Err(_elapsed)) => {
                        device.on_connect_failed(uptime.now());
                        tracing::info!(device_id = id, link = ?device.link(), "connect timed out");
                    }
                }
            }
            Action::Send(frame) => {
                let Some(ws) = socket.as_mut() else {
                    device.on_disconnected(uptime.now());
                    continue;
                };
                let text = String::from_utf8_lossy(&out[..frame.len]).into_owned();
                match ws.send(Message::text(text)).await {
                    Ok(()) => {
                        device.on_sent(uptime.now());
                        match frame.kind {
                            FrameKind::Reading { seq, backlog } => {
                                tracing::debug!(device_id = id, seq, backlog, "reading sent");
                            }
                            FrameKind::ControlAck { sample_interval_ms } => {
                                tracing::info!(
                                    device_id = id,
                                    sample_interval_ms,
                                    "control acknowledged"
                                );
                            }
                            FrameKind::Heartbeat { .. } => {
                                tracing::debug!(device_id = id, "heartbeat sent");
                            }
                        }
                    }
                    Err(error) => {
                        socket = None;
                        device.on_disconnected(uptime.now());
                        tracing::info!(device_id = id, %error, "connection lost while sending");
                    }
                }
            }
            Action::Close(reason) => {
                if let Some(ws) = socket.take() {
                    tracing::info!(device_id = id, ?reason, "renewing the connection");
                    // A control arriving while the close handshake runs is applied (and
                    // acknowledged on the next connection), not discarded.
                    close(ws, "renewing", |text| {
                        device.on_text(uptime.now(), text.as_bytes());
                    })
                    .await;
                }
                device.on_disconnected(uptime.now());
            }
            Action::Wait { until_ms } => {
                let deadline = uptime.instant(until_ms);
                let woke = match socket.as_mut() {
                    Some(ws) => tokio::select! {
                        () = tokio::time::sleep_until(deadline) => Woke::Deadline,
                        () = shutdown.cancelled() => Woke::Shutdown,
                        frame = ws.next() => Woke::Frame(frame),
                    },
                    None => tokio::select! {
                        () = tokio::time::sleep_until(deadline) => Woke::Deadline,
                        () = shutdown.cancelled() => Woke::Shutdown,
                    },
                };
                match woke {
                    Woke::Deadline => {}
                    Woke::Shutdown => break,
                    Woke::Frame(Some(Ok(Message::Text(text)))) => {
                        match device.on_text(uptime.now(), text.as_bytes()) {
                            Incoming::ControlApplied { sample_interval_ms } => {
                                tracing::info!(
                                    device_id = id,
                                    sample_interval_ms,
                                    "control applied"
                                );
                            }
                            Incoming::ControlRejected { requested, kept_ms } => {
                                tracing::warn!(
                                    device_id = id,
                                    requested,
                                    kept_ms,
                                    "control out of bounds, refused"
                                );
                            }
                            Incoming::CloudError(error) => {
                                tracing::warn!(device_id = id, code = %error.code, message = %error.message, "the cloud refused a message");
                            }
                            Incoming::Unknown => {}
                            Incoming::Malformed(error) => {
                                tracing::debug!(device_id = id, %error, "ignored a frame");
                            }
                        }
                    }
                    Woke::Frame(Some(Ok(Message::Close(frame)))) => {
                        socket = None;
                        device.on_disconnected(uptime.now());
                        tracing::info!(device_id = id, ?frame, link = ?device.link(), "the gateway closed the connection");
                    }
                    // Pings are answered by tungstenite; binary frames are not ours.
                    Woke::Frame(Some(Ok(_))) => {}
                    Woke::Frame(Some(Err(error))) => {
                        socket = None;
                        device.on_disconnected(uptime.now());
                        tracing::info!(device_id = id, %error, link = ?device.link(), "connection lost");
                    }
                    Woke::Frame(None) => {
                        socket = None;
                        device.on_disconnected(uptime.now());
                        tracing::info!(device_id = id, link = ?device.link(), "connection closed");
                    }
                }
            }
        }
    }

    if let Some(ws) = socket.take() {
        close(ws, "shutting down", |_| {}).await;
    }
    publish(&report, &device, false);
    tracing::info!(device_id = id, stats = ?device.stats(), "stopped");
}

/// Sends a close frame (1000) and waits briefly for the gateway's answer, handing
/// any text message that arrives meanwhile to `on_text`.
async fn close(mut ws: Socket, reason: &'static str, mut on_text: impl FnMut(&str)) {
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: reason.into(),
    };
    if ws.close(Some(frame)).await.is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Some(Ok(message)) = ws.next().await {
                if let Message::Text(text) = message {
                    on_text(text.as_str());
                }
            }
        })
        .await;
    }
}

fn publish(report: &Mutex<DeviceReport>, device: &Device<BUFFER_CAPACITY>, online: bool) {
    let mut report = lock(report);
    report.stats = device.stats();
    report.sample_interval_ms = device.sample_interval_ms();
    report.online = online;
}
