//! The route handlers.

use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use wsgw_core::{
    Connection, ConnectionId, Context, EventType, HistoryQuery, HistoryRecord, HistoryStoreExt,
    Order, Rejection, Request, Result, DEFAULT,
};

use crate::protocol::{self, ChatMessage, ErrorCode, Outgoing, ACTIONS};
use crate::state::{
    AuditEvent, ChatSession, ChatState, SessionRecord, StoredMessage, SESSIONS_PARTITION,
};
use crate::{session_group, ALL_GROUP};
use wsgw_core::ids::{rfc3339_millis, time_ordered_id};
use wsgw_core::input::json_body;

type Ctx = Context<ChatState>;

/// The caller's session and name, its connection's attributes since `$connect`. A
/// connection missing from the store (its record expired, or it was pruned while a
/// message was in flight) still gets an answer: its session is taken to be its
/// connection id.
async fn sender(ctx: &Ctx, id: &ConnectionId) -> Result<ChatSession> {
    match ctx.store().get(id).await? {
        Some(stored) => stored.attributes_as(),
        None => {
            tracing::warn!(connection_id = %id, "sender is not in the connection store");
            Ok(ChatSession::unnamed(id))
        }
    }
}

/// Records every refused request in the audit log (the router answers the caller with
/// the rejection, `{"type":"error",…}` ([`Outgoing::Error`]), and logs it): a refused
/// `$connect` at its connect time, the action the client named when there was one.
pub(crate) async fn on_rejection(ctx: Ctx, request: Request, error: Rejection) {
    let (action, at) = match request.event_type {
        EventType::Connect => (None, request.connected_at.unwrap_or(request.request_time)),
        _ if request.route_key == DEFAULT => {
            (protocol::unknown_action_detail(&request).1, Utc::now())
        }
        _ => (Some(request.route_key.clone()), Utc::now()),
    };
    let event = AuditEvent::Error {
        connection_id: request.connection_id.to_string(),
        route: request.route_key,
        action,
        error: error.code().unwrap_or_default().to_owned(),
        detail: error.detail().unwrap_or_default().to_owned(),
        timestamp: rfc3339_millis(at),
    };
    ctx.state().log_event(ctx.history(), at, event).await;
}

/// With a token (auth on), the name the token gives: its `name` claim, else its
/// principal (`sub`); a `?name=` is then ignored, so nobody chats under another's name.
fn signed_in_name(request: &Request) -> Option<&str> {
    let context = request.authorizer.as_ref()?;
    context
        .get("name")
        .and_then(serde_json::Value::as_str)
        .filter(|name| !name.is_empty())
        .or_else(|| context.get(wsgw_core::auth::PRINCIPAL_KEY)?.as_str())
}

/// `$connect`: stores the connection in its session's group and in [`ALL_GROUP`],
/// writes its session record and logs the event. A bad `session_id` or `name` refuses
/// the handshake with 400. With a token, the session is the token's principal (another
/// `session_id` is refused with 403) and the name is the token's (see
/// [`signed_in_name`]).
pub(crate) async fn on_connect(ctx: Ctx, request: Request) -> Result<()> {
    let state = ctx.state();
    let config = state.config();
    let id = request.connection_id.clone();
    let connected_at = request.connected_at.unwrap_or(request.request_time);
    // With auth on, the session is the principal's: nobody connects into another's.
    let requested = request.query_param("session_id");
    let session_id = match wsgw_core::auth::Principal::of(&request) {
        Some(principal) => protocol::session_of_principal(requested, &principal.id, config),
        None => protocol::session_from_query(requested, id.as_str(), config),
    };
    let checked = session_id.and_then(|session_id| {
        let name = signed_in_name(&request).or(request.query_param("name"));
        let name = protocol::check_name(name, config)?;
        Ok(ChatSession { session_id, name })
    });
    let session = checked.map_err(|error| {
        // Another principal's session is forbidden; anything else is bad input.
        let forbidden = error.code() == Some(ErrorCode::SessionMismatch.as_str());
        error.with_status(if forbidden { 403 } else { 400 })
    })?;

    let connection = Connection::from_request(&request)
        .with_group(ALL_GROUP)
        .with_group(session_group(&session.session_id))
        .with_attributes(&session)?;
    ctx.store().put(connection).await?;

    let stored = SessionRecord::opened(&request, connected_at, session.clone())
        .store(ctx.history(), SESSIONS_PARTITION, config.retention)
        .await;
    if let Err(error) = stored {
        // Without its session record the connection is refused (HTTP 500): undo the
        // store write so no broadcast targets it.
        if let Err(undo) = ctx.store().delete(&id).await {
            tracing::error!(connection_id = %id, error = %undo, "could not undo the connection record");
        }
        return Err(error);
    }
    let ChatSession { session_id, name } = session;
    let event = AuditEvent::Connect {
        connection_id: id.to_string(),
        session_id: session_id.clone(),
        name,
        source_ip: request.source_ip.clone(),
        timestamp: rfc3339_millis(connected_at),
    };
    state.log_event(ctx.history(), connected_at, event).await;
    tracing::info!(connection_id = %id, %session_id, "joined the session");
    Ok(())
}

/// `$disconnect`: removes the connection, completes its session record with
/// `disconnected_at`, `duration_seconds` and the close code, and logs the event.
pub(crate) async fn on_disconnect(ctx: Ctx, request: Request) -> Result<()> {
    let state = ctx.state();
    let id = request.connection_id.clone();
    let disconnected_at = request.request_time;
    let close_code = request.disconnect.as_ref().map(|info| info.status_code);
    // The connection may already be gone from the store (pruned by a broadcast, or
    // expired): the event's own `connectedAt` still finds its session record.
    let removed = ctx.store().delete(&id).await;
    if let Err(error) = &removed {
        tracing::error!(connection_id = %id, %error, "could not remove the connection");
    }
    let stored = removed.as_ref().ok().and_then(Option::as_ref);
    let known = stored.and_then(|connection| connection.attributes_as::<ChatSession>().ok());
    let record = SessionRecord::close_connection(
        ctx.history(),
        SESSIONS_PARTITION,
        &request,
        stored,
        state.config().retention,
        || known.clone().unwrap_or_else(|| ChatSession::unnamed(&id)),
    )
    .await?;
    let session_id = match &record {
        Some(record) => Some(record.app.session_id.clone()),
        None => known.map(|session| session.session_id),
    };
    let duration_seconds = record.and_then(|record| record.duration_seconds);
    let event = AuditEvent::Disconnect {
        connection_id: id.to_string(),
        session_id: session_id.clone(),
        duration_seconds,
        close_code,
        timestamp: rfc3339_millis(disconnected_at),
    };
    state.log_event(ctx.history(), disconnected_at, event).await;
    tracing::info!(
        connection_id = %id,
        session_id = session_id.as_deref().unwrap_or("unknown"),
        close_code,
        duration_seconds,
        "left the session"
    );
    removed.map(drop)
}

/// `sendmessage`: checks the input, stores the message, delivers it to everyone (or to
/// the connections of `session_ids`, then acks the sender), and logs the event.
pub(crate) async fn on_sendmessage(ctx: Ctx, request: Request) -> Result<()> {
    let state = ctx.state();
    let body = json_body(&request).map_err(protocol::invalid_json)?;
    let send = protocol::parse_send(&body, state.config())?;
    let id = request.connection_id.clone();
    let sender = sender(&ctx, &id).await?;
    let received_at = request.request_time;
    let stored = StoredMessage {
        connection_id: id.to_string(),
        sent: ChatMessage {
            message_id: time_ordered_id(received_at),
            session_id: sender.session_id,
            name: sender.name,
            message: send.message,
            timestamp: rfc3339_millis(received_at),
            session_ids: send.session_ids.clone(),
        },
    };
    let data = serde_json::to_value(&stored)?;
    let partition = crate::MESSAGES_PARTITION;
    let record = HistoryRecord::new(partition, received_at, stored.message_id.clone(), data)
        .retained_for(state.config().retention);
    ctx.history().append(record).await?;

    let message = Outgoing::Message(stored.sent.clone());
    let report = match &send.session_ids {
        None => ctx.broadcast(&message).to_group(ALL_GROUP).await?,
        // Every connection of these sessions, each once.
        Some(session_ids) => {
            let groups = session_ids.iter().map(|id| session_group(id));
            ctx.broadcast(&message).to_groups(groups).await?
        }
    };
    tracing::info!(
        connection_id = %id,
        message_id = %stored.message_id,
        targeted = send.session_ids.is_some(),
        delivered = report.delivered.len(),
        pruned = report.pruned.len(),
        failed = report.failed.len(),
        "message sent"
    );
    if send.session_ids.is_some() {
        let ack = Outgoing::Sent {
            message_id: stored.message_id.clone(),
            delivered: report.delivered.len(),
        };
        ctx.reply(&ack).await?;
    }
    let event = AuditEvent::Message {
        connection_id: id.to_string(),
        session_id: stored.session_id.clone(),
        message_id: stored.message_id.clone(),
        session_ids: send.session_ids,
        delivered: report.delivered.len(),
        pruned: report.pruned.len(),
        failed: report.failed.len(),
        timestamp: stored.timestamp.clone(),
    };
    state.log_event(ctx.history(), received_at, event).await;
    Ok(())
}

/// `history`: the caller's most recent visible messages, oldest first.
///
/// Messages addressed to other sessions are skipped; at most
/// [`ChatConfig::history_scan_limit`](crate::ChatConfig::history_scan_limit) stored
/// messages are read per request, so its cost stays bounded.
pub(crate) async fn on_history(ctx: Ctx, request: Request) -> Result<()> {
    let config = ctx.state().config();
    let body = json_body(&request).map_err(protocol::invalid_json)?;
    let wanted = protocol::parse_history(&body, config)?.limit;
    let id = request.connection_id.clone();
    let caller = sender(&ctx, &id).await?;
    let newest = HistoryQuery::new(crate::MESSAGES_PARTITION)
        .order(Order::NewestFirst)
        .limit(wanted.clamp(1, config.history_scan_limit));
    let mut messages: Vec<_> = ctx
        .history()
        .records(newest)
        .take(config.history_scan_limit)
        .try_filter_map(|record| {
            let visible = record
                .data_as::<StoredMessage>()
                .filter(|message| message.visible_to(&caller.session_id, id.as_str()))
                .map(|message| message.sent);
            std::future::ready(Ok(visible))
        })
        .take(wanted)
        .try_collect()
        .await?;
    messages.reverse();
    ctx.reply(&Outgoing::History { messages }).await
}

/// `heartbeat`: `{"type":"heartbeat"}` to the caller only.
pub(crate) async fn on_heartbeat(ctx: Ctx, _request: Request) -> Result<()> {
    ctx.reply(&Outgoing::Heartbeat).await
}

/// `$default`: unknown actions, messages without an action, non-JSON and binary frames.
pub(crate) async fn on_default(_ctx: Ctx, request: Request) -> Result<()> {
    let (detail, _) = protocol::unknown_action_detail(&request);
    let error = ErrorCode::UnknownAction
        .reject(detail)
        .with_field("available", ACTIONS.to_vec());
    Err(error.into())
}
