//! # telemetry — the ESP32 telemetry system on wsgw
//!
//! Devices push sensor readings over the WebSocket API; dashboards receive them live, each
//! at the interval it chose; every reading is kept in history and served by a REST
//! endpoint; a dashboard page shows it all. The same [`router`] runs on AWS (API Gateway
//! WebSocket + REST APIs, Lambda, DynamoDB) and locally on the in-memory backend. The
//! wire format is the [`telemetry_protocol`] crate, shared with the firmware.
//!
//! ## WebSocket protocol (route selection `$request.body.action`)
//!
//! | who | connects with | sends | receives |
//! | --- | --- | --- | --- |
//! | device | `?role=device&device_id=esp32-01` (`&token=…` when a device secret or device keys are set, see [`access`]) | `RealTimeDataUpdate`, `ControlAck` | `{"type":"control","sample_interval_ms":N}`, `error` |
//! | dashboard | `?role=client`, or `?role=client&device_id=esp32-01` to follow one device | `ControlCmd` | `interval`, `reading`, `control_ack`, `error` |
//!
//! - A reading is checked (the device id is the one the device connected with, ≤ 32
//!   finite metrics with plain names), stored in history under the device id for the
//!   history TTL (30 days by default), and pushed to each following dashboard whose
//!   interval has passed since its last push of that device, as `{"type":"reading",…}`.
//! - `{"action":"ControlCmd","interval_ms":5000}` sets the dashboard's interval (500 ms –
//!   1 h, default 1000 ms) and is answered `{"type":"interval","interval_ms":5000}`.
//! - `{"action":"ControlCmd","device_id":"esp32-01","sample_interval_ms":2000}` is
//!   forwarded to the device as `{"type":"control","sample_interval_ms":2000}` (250 ms –
//!   1 h); the device's `ControlAck` reaches the asking dashboard and every dashboard
//!   following the device as `{"type":"control_ack",…}`.
//! - Anything invalid is answered `{"type":"error","code":…,"message":…}` and the
//!   connection stays open.
//!
//! No timers run anywhere: a dashboard's interval and per-device "last pushed" times live
//! in its connection record and are moved with a conditional update, so concurrent Lambda
//! invocations never push twice within one interval (see [`keys`] for the record layout).
//!
//! ## REST
//!
//! - `GET /history?device_id=esp32-01&from_ms=…&to_ms=…&limit=100&next=TOKEN` →
//!   `{"device_id":…,"items":[…oldest first…],"next":"TOKEN"|null}`; limit 1–1000
//!   (default 100); bad parameters → 400 with `{"error":"bad_request","message":…}`.
//! - `GET /devices` → `{"devices":[{"device_id","connected_at_ms","sample_interval_ms"}]}`.
//! - With keys, both want a dashboard key as `Authorization: Bearer KEY`: 401
//!   `{"error":"unauthorized",…}` without one, 403 `{"error":"forbidden",…}` for a
//!   device key.
//! - CORS headers name the allowed origins ([`access::CorsOrigins`]); `OPTIONS` answers
//!   the preflight. A failed backend is 500 `{"error":"server_error",…}`, 503 with
//!   `Retry-After: 1` when it throttled.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> wsgw_core::Result<()> {
//! use serde_json::json;
//! use telemetry::Telemetry;
//! use wsgw_memory::{ConnectOptions, Harness};
//!
//! let harness = Harness::new(telemetry::router(Telemetry::new()));
//! let device = harness
//!     .connect_with(ConnectOptions::new().query("role", "device").query("device_id", "esp32-01"))
//!     .await
//!     .expect("device connects");
//! let dashboard = harness
//!     .connect_with(ConnectOptions::new().query("role", "client"))
//!     .await
//!     .expect("dashboard connects");
//!
//! device.send_json(&json!({"action": "RealTimeDataUpdate", "device_id": "esp32-01",
//!     "seq": 1, "ts_ms": 0, "readings": {"temperature_c": 23.5}})).await?;
//! let pushed = dashboard.received_json();
//! assert_eq!(pushed[0]["type"], "reading");
//! assert_eq!(pushed[0]["readings"]["temperature_c"], 23.5);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod access;
pub mod cli;
mod fanout;
pub mod keys;
mod rest;
mod state;
mod ws;

use wsgw_aws::runner::Runner;
use wsgw_core::{RouteSelection, Router};
use wsgw_memory::gateway::Assets;

pub use rest::{DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT};
pub use state::{Telemetry, DEFAULT_HISTORY_TTL_DAYS, DEFAULT_MAX_TRACKED_DEVICES};
pub use telemetry_protocol as protocol;
pub use wsgw_core::clock::{Clock, ManualClock, SystemClock};

/// The telemetry router: the WebSocket routes and the REST routes, and the state's keys
/// as the `$connect` authorizer when auth is on ([`access`]). It keeps connections in
/// the store and readings in the history store it is served with.
pub fn router(state: Telemetry) -> Router<Telemetry> {
    let keys = state.keys().cloned();
    let router = Router::with_state(state)
        .route_selection(RouteSelection::default())
        .on_connect(ws::on_connect)
        .on_disconnect(ws::on_disconnect)
        .route(protocol::tags::RealTimeDataUpdate::VALUE, ws::on_update)
        .route(protocol::tags::ControlAck::VALUE, ws::on_control_ack)
        .route(protocol::tags::ControlCmd::VALUE, ws::on_control_cmd)
        .on_default(ws::on_default);
    let router = rest::routes(router);
    match keys {
        Some(keys) => router.authorizer(keys),
        None => router,
    }
}

/// The system as its binary serves it ([`wsgw_aws::runner`]): the router over `state`,
/// readings kept in history, the dashboard at `/` locally.
pub fn runner(state: Telemetry) -> Runner<Telemetry> {
    Runner::new(router(state))
        .with_history()
        .assets(dashboard())
        .hint("dashboard http://{addr}/, history http://{addr}/history?device_id=ID")
}

/// The dashboard's files, served at `/` by the local gateway.
pub fn dashboard() -> Assets {
    Assets::new()
        .file("/index.html", include_str!("../web/index.html"))
        .file("/dashboard.js", include_str!("../web/dashboard.js"))
        .file("/dashboard.css", include_str!("../web/dashboard.css"))
}
