//! The WebSocket routes: `$connect`, `$disconnect`, `RealTimeDataUpdate`, `ControlAck`,
//! `ControlCmd` and `$default`.

use chrono::DateTime;
use futures::TryStreamExt;
use serde::Serialize;
use serde_json::Value;
use telemetry_protocol::{
    binary_frame, parse_message, parse_update, validate_device_id, Control, ControlAck,
    ControlAckNotice, ControlCmd, ControlRequest, ErrorCode, ErrorReply, IntervalReply,
    ProtocolError, Reading, DEFAULT_CLIENT_INTERVAL_MS,
};
use wsgw_core::{
    AttributeUpdate, Connection, ConnectionId, ConnectionStoreExt, Context, Error, HistoryRecord,
    Payload, Rejection, Request, Result,
};

use wsgw_core::auth::{find_token, Principal, TokenSource};
use wsgw_core::input::Unrouted;

use crate::access::{CLIENT_ROLE, DEVICE_ROLE, OPERATOR_ROLE};
use crate::fanout::{followers, push_reading};
use crate::keys;
use crate::state::Telemetry;

type Ctx = Context<Telemetry>;

/// `$connect`: `?role=device&device_id=…[&token=…]` or `?role=client[&device_id=…]`.
/// Anything else is refused with 400 (401 for a device without its own token when a
/// device secret is set).
pub(crate) async fn on_connect(ctx: Ctx, request: Request) -> Result<()> {
    let now = ctx.state().clock().now();
    let device_id = request.query_param("device_id");
    if let Some(id) = device_id {
        if validate_device_id(id).is_err() {
            return Err(refuse(400, &ProtocolError::InvalidDeviceId.to_string()));
        }
    }
    let connection =
        Connection::from_request(&request).with_connected_at(request.connected_at.unwrap_or(now));
    let connection = match request.query_param("role") {
        Some("device") => {
            authorize(&ctx, &request, |key| {
                key.has_role(DEVICE_ROLE) && device_id == Some(key.id.as_str())
            })?;
            let Some(device_id) = device_id else {
                let message = "a device connects with ?role=device&device_id=<id>";
                return Err(refuse(400, message));
            };
            if let Some(secret) = ctx.state().device_secret() {
                // The token from any source (`?token=`, the bearer header, the
                // subprotocol), checked against this device id's own token.
                let presented = find_token(&TokenSource::defaults(), &request);
                if !presented.is_some_and(|token| secret.verify(device_id, &token)) {
                    tracing::warn!(connection_id = %request.connection_id, device_id, "device refused: no token, or not this device's");
                    return Err(refuse(401, "wrong or missing device token"));
                }
            }
            connection
                .with_group(keys::DEVICES_GROUP)
                .with_group(keys::device_group(device_id))
                .with_attribute(keys::ROLE, DEVICE_ROLE)
                .with_attribute(keys::DEVICE_ID, device_id)
        }
        Some("client") => {
            authorize(&ctx, &request, |key| key.has_role(CLIENT_ROLE))?;
            let connection = connection
                .with_attribute(keys::ROLE, CLIENT_ROLE)
                .with_attribute(keys::INTERVAL_MS, DEFAULT_CLIENT_INTERVAL_MS);
            match device_id {
                Some(device_id) => connection
                    .with_group(keys::follow_group(device_id))
                    .with_attribute(keys::FOLLOW, device_id),
                None => connection.with_group(keys::CLIENTS_GROUP),
            }
        }
        _ => {
            // With auth on, a caller without a key learns no more than that it needs one.
            authorize(&ctx, &request, |_| true)?;
            let message =
                "connect with ?role=device&device_id=<id> or ?role=client[&device_id=<id>]";
            return Err(refuse(400, message));
        }
    };
    tracing::info!(
        connection_id = %request.connection_id,
        role = connection.attributes[keys::ROLE].as_str().unwrap_or(""),
        device_id = device_id.unwrap_or(""),
        "registered"
    );
    ctx.store().put(connection).await
}

/// With auth on, the refusal unless the caller's key `grants` what it asks for: 401 for
/// no key at all (the gateway ran no authorizer), 403 for a key that does not give that
/// role or device.
fn authorize(ctx: &Ctx, request: &Request, grants: impl FnOnce(&Principal) -> bool) -> Result<()> {
    if !ctx.state().auth_required() {
        return Ok(());
    }
    let Some(key) = Principal::of(request) else {
        return Err(refuse(401, "a key is required"));
    };
    if grants(&key) {
        return Ok(());
    }
    tracing::warn!(connection_id = %request.connection_id, principal = %key.id, device_id = request.query_param("device_id").unwrap_or(""), "refused: the key does not grant this role or device");
    Err(refuse(403, "this key does not grant that role or device"))
}

/// A refused `$connect`: the handshake fails with `status` (the body says why).
fn refuse(status: u16, message: &str) -> Error {
    let refusal = Rejection::json(&serde_json::json!({ "message": message }));
    refusal.map_or_else(|error| error, |refusal| refusal.with_status(status).into())
}

/// The error frame `{"type":"error","code":…,"message":…}` a device or dashboard gets for
/// a request it may not make or got wrong; its connection stays open.
fn rejected(reply: impl Serialize) -> Error {
    Rejection::json(&reply).map_or_else(|error| error, Error::from)
}

/// [`rejected`] with the frame for `code` and `message`.
fn reject(code: ErrorCode, message: &str) -> Error {
    rejected(ErrorReply::new(code, message))
}

/// [`rejected`] with the frame for a message that breaks the protocol's rules.
fn invalid(error: ProtocolError) -> Error {
    rejected(ErrorReply::from_error(&error))
}

/// The text of the frame, or the error frame for a binary one.
fn frame_text(request: &Request) -> Result<&str> {
    request.text().ok_or_else(|| rejected(binary_frame()))
}

/// `$disconnect`: forgets the connection.
pub(crate) async fn on_disconnect(ctx: Ctx, request: Request) -> Result<()> {
    let removed = ctx.store().delete(&request.connection_id).await?;
    let device_id: String = removed
        .and_then(|c| c.attribute(keys::DEVICE_ID).ok()?)
        .unwrap_or_default();
    tracing::info!(
        connection_id = %request.connection_id,
        device_id,
        "unregistered"
    );
    Ok(())
}

/// `RealTimeDataUpdate` from a device: validated, stored, pushed to dashboards that are
/// due.
pub(crate) async fn on_update(ctx: Ctx, request: Request) -> Result<()> {
    let update = parse_update(frame_text(&request)?).map_err(rejected)?;
    let device_id = update.device_id.as_str();
    sending_device(&ctx, &request, device_id).await?;
    update.validate().map_err(invalid)?;

    let state = ctx.state();
    let now = state.clock().now();
    let time_ms = update.time_ms(u64::try_from(now.timestamp_millis()).unwrap_or(0));
    // At most `now` plus the allowed clock skew: well within i64 milliseconds.
    let time = DateTime::from_timestamp_millis(time_ms as i64).unwrap_or(now);
    let reading = Reading::from_update(&update, time_ms);
    let mut data = serde_json::to_value(&reading)?;
    if let Value::Object(fields) = &mut data {
        fields.remove("type");
        fields.insert("received_ms".to_owned(), now.timestamp_millis().into());
    }
    // Unique for the device at this time: its `seq`, zero-padded to order as a number.
    let id = format!("{:010}", update.seq);
    let record = HistoryRecord::new(device_id, time, id, data);
    let record = record.expiring_at(time + state.history_ttl());
    ctx.history().append(record).await?;

    let payload = Payload::json(&reading)?;
    push_reading(&ctx, device_id, &payload, now).await
}

/// The record of the device a device's message comes from, or the error frame for the
/// caller: the caller must be a device connection, `named` (the message's `device_id`)
/// the id it opened with and, with auth on, the device its key names.
async fn sending_device(ctx: &Ctx, request: &Request, named: &str) -> Result<Connection> {
    let device = ctx.store().get(&request.connection_id).await?;
    let device_id = device
        .as_ref()
        .filter(|c| c.groups.contains(keys::DEVICES_GROUP))
        .and_then(|c| c.attribute::<String>(keys::DEVICE_ID).ok().flatten());
    let (Some(device), Some(device_id)) = (device, device_id) else {
        let message = "only devices send this; connect with ?role=device&device_id=<id>";
        return Err(reject(ErrorCode::WrongRole, message));
    };
    if named != device_id {
        let message = format!(
            "device_id \"{named}\" is not the id this connection opened with (\"{device_id}\")"
        );
        return Err(reject(ErrorCode::DeviceIdMismatch, &message));
    }
    // With auth on, the key must name this device too.
    let own_key = Principal::of(request).is_some_and(|p| p.has_role(DEVICE_ROLE) && p.id == named);
    if ctx.state().auth_required() && !own_key {
        let message = format!("this connection's key does not name device \"{named}\"");
        return Err(reject(ErrorCode::DeviceIdMismatch, &message));
    }
    Ok(device)
}

/// `ControlAck` from a device: remembered on the device's record and told to its
/// dashboards and to the dashboard that asked.
pub(crate) async fn on_control_ack(ctx: Ctx, request: Request) -> Result<()> {
    let caller = &request.connection_id;
    let ack: ControlAck = parse_message(frame_text(&request)?, "ControlAck").map_err(rejected)?;
    let device_id = ack.device_id.as_str();
    let device = sending_device(&ctx, &request, device_id).await?;
    ack.validate().map_err(invalid)?;
    let requester: Option<ConnectionId> =
        device.attribute(keys::CONTROL_REQUESTED_BY).ok().flatten();
    let known: Option<u32> = device.attribute(keys::SAMPLE_INTERVAL_MS).ok().flatten();
    if requester.is_none() && known == Some(ack.sample_interval_ms) {
        // A heartbeat: the device restates what it already told us.
        return Ok(());
    }
    let update = AttributeUpdate::new()
        .set(keys::SAMPLE_INTERVAL_MS, ack.sample_interval_ms)
        .remove(keys::CONTROL_REQUESTED_BY);
    ctx.store().update_if_connected(caller, update).await?;

    // Every dashboard following the device, and the one that asked (once).
    let report = ctx
        .broadcast(&ControlAckNotice::from_ack(&ack))
        .to_groups(followers(device_id))
        .to(requester)
        .await?;
    tracing::info!(
        device_id,
        sample_interval_ms = ack.sample_interval_ms,
        told = report.delivered.len(),
        "control acknowledged"
    );
    Ok(())
}

/// `ControlCmd` from a dashboard: its own push interval, or a device's sample interval.
pub(crate) async fn on_control_cmd(ctx: Ctx, request: Request) -> Result<()> {
    let caller = &request.connection_id;
    let command: ControlCmd =
        parse_message(frame_text(&request)?, "ControlCmd").map_err(rejected)?;
    let command = command.request().map_err(invalid)?;
    let role: Option<String> = ctx.store().attribute(caller, keys::ROLE).await?;
    if role.as_deref() != Some(CLIENT_ROLE) {
        let message = "only dashboards send ControlCmd; connect with ?role=client";
        return Err(reject(ErrorCode::WrongRole, message));
    }
    match command {
        ControlRequest::SetInterval { interval_ms } => {
            let update = AttributeUpdate::new().set(keys::INTERVAL_MS, interval_ms);
            let Some(_) = ctx.store().update_if_connected(caller, update).await? else {
                return Ok(()); // The dashboard left meanwhile.
            };
            tracing::info!(connection_id = %caller, interval_ms, "push interval set");
            ctx.reply(&IntervalReply::new(interval_ms)).await
        }
        ControlRequest::DeviceControl {
            device_id,
            sample_interval_ms,
        } => {
            // Devices that prove who they are take commands from operators only; with a
            // device secret and no keys there is nobody to prove to be one.
            if ctx.state().devices_protected()
                && !Principal::of(&request).is_some_and(|p| p.has_role(OPERATOR_ROLE))
            {
                let detail = if ctx.state().auth_required() {
                    "only operators change a device's sample_interval_ms"
                } else {
                    "only operators change a device's sample_interval_ms, and without dashboard keys there are none: run with device and dashboard keys (an operator's is NAME=KEY=operator)"
                };
                return Err(reject(ErrorCode::WrongRole, detail));
            }
            let devices: Vec<ConnectionId> = ctx
                .store()
                .members(keys::device_group(&device_id))
                .try_collect()
                .await?;
            for device in &devices {
                let update =
                    AttributeUpdate::new().set(keys::CONTROL_REQUESTED_BY, caller.as_str());
                ctx.store().update_if_connected(device, update).await?;
            }
            // The command's interval was checked with the same bounds.
            let control = Control::new(sample_interval_ms.into()).map_err(invalid)?;
            let report = ctx.broadcast(&control).to(devices).await?;
            if report.delivered.is_empty() {
                let message = format!("device \"{device_id}\" is not connected");
                return Err(reject(ErrorCode::DeviceNotConnected, &message));
            }
            tracing::info!(connection_id = %caller, device_id = %device_id, sample_interval_ms, "control forwarded");
            Ok(())
        }
    }
}

/// `$default`: unknown actions, non-JSON and binary frames.
pub(crate) async fn on_default(_ctx: Ctx, request: Request) -> Result<()> {
    const SENDERS: &str =
        "devices send RealTimeDataUpdate and ControlAck, dashboards send ControlCmd";
    Err(match Unrouted::of(&request, "action") {
        Unrouted::Empty | Unrouted::Binary | Unrouted::NotJson => reject(
            ErrorCode::InvalidMessage,
            "messages are JSON objects with an \"action\": RealTimeDataUpdate, ControlAck or ControlCmd",
        ),
        Unrouted::NoAction => reject(ErrorCode::UnknownAction, &format!("no \"action\"; {SENDERS}")),
        Unrouted::UnknownAction(action) => reject(
            ErrorCode::UnknownAction,
            &format!("unknown action {action}; {SENDERS}"),
        ),
    })
}
