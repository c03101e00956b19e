//! How telemetry connections are recorded: attribute names and groups.
//!
//! | connection | groups | attributes |
//! | --- | --- | --- |
//! | device | `devices`, `device:<id>` | `role`=`device`, `device_id`, `sample_interval_ms` (last acknowledged), `control_requested_by` (the dashboard awaiting an ack) |
//! | dashboard following every device | `clients` | `role`=`client`, `interval_ms`, `sent:<device id>` (epoch ms of the last reading pushed from that device) |
//! | dashboard following one device | `follow:<id>` | the same, and `follow`=`<id>` |

/// Who the connection is: [`DEVICE_ROLE`](crate::access::DEVICE_ROLE) or
/// [`CLIENT_ROLE`](crate::access::CLIENT_ROLE), the roles of their keys.
pub const ROLE: &str = "role";
/// A device connection's device id.
pub const DEVICE_ID: &str = "device_id";
/// The device a dashboard follows (absent: every device).
pub const FOLLOW: &str = "follow";
/// A dashboard's push interval in milliseconds.
pub const INTERVAL_MS: &str = "interval_ms";
/// Prefix of the per-device "last pushed at" attributes of a dashboard: `sent:<device id>`
/// holds when it was last sent a reading of that device.
pub const SENT_PREFIX: &str = "sent:";
/// The sample interval a device last acknowledged.
pub const SAMPLE_INTERVAL_MS: &str = "sample_interval_ms";
/// The dashboard connection that last asked a device for a new sample interval.
pub const CONTROL_REQUESTED_BY: &str = "control_requested_by";

/// Every device connection.
pub const DEVICES_GROUP: &str = "devices";
/// Every dashboard following all devices.
pub const CLIENTS_GROUP: &str = "clients";

/// The connections of one device.
pub fn device_group(device_id: &str) -> String {
    format!("device:{device_id}")
}

/// The dashboards following one device.
pub fn follow_group(device_id: &str) -> String {
    format!("follow:{device_id}")
}
