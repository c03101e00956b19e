//! The route handlers.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::Value;
use wsgw_core::{
    ConnectionId, Context, HistoryQuery, Order, PageRequest, Payload, Reply, Request, Result,
};

use crate::ids::{new_message_id, rfc3339};
use crate::protocol::{self, ErrorCode, InputError, Outgoing, ACTIONS};
use crate::state::{AuditEvent, ChatState, SessionRecord, StoredMessage, SESSIONS_PARTITION};
use crate::{session_group, ALL_GROUP, NAME_ATTRIBUTE, SESSION_ID_ATTRIBUTE};

type Ctx = Context<ChatState>;

/// Who sent a request: its session and name as stored on `$connect`.
struct Sender {
    session_id: String,
    name: Option<String>,
}

/// The caller's session and name from the store. A connection missing from the store
/// (its record expired, or it was pruned while a message was in flight) still gets an
/// answer: its session is taken to be its connection id.
async fn sender(ctx: &Ctx, id: &ConnectionId) -> Result<Sender> {
    let stored = ctx.store().get(id).await?;
    let attribute = |name: &str| {
        stored
            .as_ref()
            .and_then(|connection| connection.attributes.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if stored.is_none() {
        tracing::warn!(connection_id = %id, "sender is not in the connection store");
    }
    Ok(Sender {
        session_id: attribute(SESSION_ID_ATTRIBUTE).unwrap_or_else(|| id.as_str().to_owned()),
        name: attribute(NAME_ATTRIBUTE),
    })
}

/// Sends `answer` to the caller. A caller that left is no failure of the route.
async fn answer(ctx: &Ctx, caller: &ConnectionId, answer: &Outgoing) -> Result<()> {
    match ctx.send_json(caller, answer).await {
        Ok(()) => Ok(()),
        Err(error) if error.is_gone() => {
            tracing::info!(connection_id = %caller, "caller left before its answer was sent");
            Ok(())
        }
        Err(error) => {
            tracing::warn!(connection_id = %caller, %error, "could not answer the caller");
            Err(error)
        }
    }
}

/// Answers a refused request with `{"type":"error",…}`, records it in the audit log, and
/// keeps the connection open.
async fn refuse(
    ctx: &Ctx,
    request: &Request,
    action: Option<String>,
    error: InputError,
    available: Option<Vec<String>>,
) -> Result<Reply> {
    tracing::info!(
        connection_id = %request.connection_id,
        route = %request.route_key,
        code = %error.code,
        detail = %error.detail,
        "request refused"
    );
    let outgoing = Outgoing::Error {
        error: error.code,
        detail: error.detail.clone(),
        available,
    };
    answer(ctx, &request.connection_id, &outgoing).await?;
    let now = Utc::now();
    ctx.state()
        .log_event(
            now,
            AuditEvent::Error {
                connection_id: request.connection_id.to_string(),
                route: request.route_key.clone(),
                action,
                error: error.code.to_string(),
                detail: error.detail,
                timestamp: rfc3339(now),
            },
        )
        .await;
    Ok(Reply::ok())
}

/// The body as JSON, or the `invalid_json` error.
///
/// A route was selected, so the body named an action; what fails here is JSON the chat
/// cannot read (a number beyond a 64-bit float, nesting deeper than 128 levels), or a
/// body the gateway routed itself: the detail says which.
fn json_body(request: &Request) -> std::result::Result<Value, InputError> {
    let Some(text) = request.text() else {
        return Err(InputError::new(
            ErrorCode::InvalidJson,
            "binary frames are not understood: send JSON text such as {\"action\":\"heartbeat\"}",
        ));
    };
    serde_json::from_str(text).map_err(|error| {
        InputError::new(
            ErrorCode::InvalidJson,
            format!(
                "the message is not JSON the chat can read ({error}; numbers must fit a 64-bit float, nesting 128 levels): send for example {{\"action\":\"heartbeat\"}}"
            ),
        )
    })
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
pub(crate) async fn on_connect(ctx: Ctx, request: Request) -> Result<Reply> {
    let state = ctx.state();
    let config = state.config();
    let id = request.connection_id.clone();
    let connected_at = request.connected_at.unwrap_or(request.request_time);
    // With auth on, the session is the principal's: nobody connects into another's.
    let session_id = match wsgw_core::auth::Principal::of(&request) {
        Some(principal) => {
            protocol::session_of_principal(request.query_param("session_id"), &principal.id, config)
        }
        None => {
            protocol::session_from_query(request.query_param("session_id"), id.as_str(), config)
        }
    };
    let checked = session_id.and_then(|session_id| {
        protocol::check_name(
            signed_in_name(&request).or(request.query_param("name")),
            config,
        )
        .map(|name| (session_id, name))
    });
    let (session_id, name) = match checked {
        Ok(checked) => checked,
        Err(error) => {
            tracing::info!(connection_id = %id, code = %error.code, detail = %error.detail, "$connect refused");
            state
                .log_event(
                    connected_at,
                    AuditEvent::Error {
                        connection_id: id.to_string(),
                        route: request.route_key.clone(),
                        action: None,
                        error: error.code.to_string(),
                        detail: error.detail,
                        timestamp: rfc3339(connected_at),
                    },
                )
                .await;
            // Another principal's session is forbidden; anything else is bad input.
            let status = if error.code == ErrorCode::SessionMismatch {
                403
            } else {
                400
            };
            return Ok(Reply::status(status));
        }
    };

    let mut connection = wsgw_core::Connection::new(id.clone())
        .with_connected_at(connected_at)
        .with_group(ALL_GROUP)
        .with_group(session_group(&session_id))
        .with_attribute(SESSION_ID_ATTRIBUTE, session_id.clone());
    if let Some(name) = &name {
        connection = connection.with_attribute(NAME_ATTRIBUTE, name.clone());
    }
    if let Some(ip) = &request.source_ip {
        connection = connection.with_source_ip(ip.clone());
    }
    if let Some(user_agent) = &request.user_agent {
        connection = connection.with_user_agent(user_agent.clone());
    }
    ctx.store().put(connection).await?;

    let record = SessionRecord {
        connection_id: id.to_string(),
        session_id: session_id.clone(),
        name: name.clone(),
        source_ip: request.source_ip.clone(),
        user_agent: request.user_agent.clone(),
        connected_at: rfc3339(connected_at),
        disconnected_at: None,
        duration_seconds: None,
        close_code: None,
        close_reason: None,
    };
    if let Err(error) = state.put_session(&record).await {
        // Without its session record the connection is refused (HTTP 500): undo the
        // store write so no broadcast targets it.
        if let Err(undo) = ctx.store().delete(&id).await {
            tracing::error!(connection_id = %id, error = %undo, "could not undo the connection record");
        }
        return Err(error);
    }
    state
        .log_event(
            connected_at,
            AuditEvent::Connect {
                connection_id: id.to_string(),
                session_id: session_id.clone(),
                name,
                source_ip: request.source_ip.clone(),
                timestamp: rfc3339(connected_at),
            },
        )
        .await;
    tracing::info!(connection_id = %id, %session_id, source_ip = request.source_ip.as_deref().unwrap_or("unknown"), "connected");
    Ok(Reply::ok())
}

/// The session record of a connection that opened at `connected_at`, if stored.
async fn find_session(
    state: &ChatState,
    id: &ConnectionId,
    connected_at: DateTime<Utc>,
) -> Result<Option<SessionRecord>> {
    let query = HistoryQuery::new(SESSIONS_PARTITION)
        .since(connected_at)
        .until(connected_at + chrono::Duration::milliseconds(1))
        .limit(100);
    let page = state.sessions().query(query).await?;
    Ok(page
        .items
        .into_iter()
        .filter(|record| record.id == id.as_str())
        .find_map(|record| serde_json::from_value(record.data).ok()))
}

/// `$disconnect`: removes the connection, completes its session record with
/// `disconnected_at`, `duration_seconds` and the close code, and logs the event.
pub(crate) async fn on_disconnect(ctx: Ctx, request: Request) -> Result<Reply> {
    let state = ctx.state();
    let id = request.connection_id.clone();
    let disconnected_at = request.request_time;
    let (close_code, close_reason) = match &request.disconnect {
        Some(info) => (Some(info.status_code), Some(info.reason.clone())),
        None => (None, None),
    };
    // The connection may already be gone from the store (pruned by a broadcast, or
    // expired): the event's own `connectedAt` still finds its session record.
    let removed = ctx.store().delete(&id).await;
    let stored = match &removed {
        Ok(stored) => stored.clone(),
        Err(error) => {
            tracing::error!(connection_id = %id, %error, "could not remove the connection");
            None
        }
    };
    let connected_at = stored
        .as_ref()
        .map(|connection| connection.connected_at)
        .or(request.connected_at);
    let mut session_id = stored.as_ref().and_then(|connection| {
        connection
            .attributes
            .get(SESSION_ID_ATTRIBUTE)
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let mut duration_seconds = None;
    match connected_at {
        Some(connected_at) => {
            let mut record = match find_session(state, &id, connected_at).await? {
                Some(record) => record,
                None => {
                    tracing::warn!(connection_id = %id, "no session record to complete; writing one");
                    SessionRecord {
                        connection_id: id.to_string(),
                        session_id: session_id.clone().unwrap_or_else(|| id.to_string()),
                        name: stored.as_ref().and_then(|connection| {
                            connection
                                .attributes
                                .get(NAME_ATTRIBUTE)
                                .and_then(Value::as_str)
                                .map(str::to_owned)
                        }),
                        source_ip: stored
                            .as_ref()
                            .and_then(|connection| connection.source_ip.clone())
                            .or_else(|| request.source_ip.clone()),
                        user_agent: None,
                        connected_at: rfc3339(connected_at),
                        disconnected_at: None,
                        duration_seconds: None,
                        close_code: None,
                        close_reason: None,
                    }
                }
            };
            record.complete(disconnected_at, close_code, close_reason);
            duration_seconds = record.duration_seconds;
            session_id = Some(record.session_id.clone());
            state.put_session(&record).await?;
        }
        None => {
            tracing::warn!(connection_id = %id, "connect time unknown: session record not completed")
        }
    }
    state
        .log_event(
            disconnected_at,
            AuditEvent::Disconnect {
                connection_id: id.to_string(),
                session_id: session_id.clone(),
                duration_seconds,
                close_code,
                timestamp: rfc3339(disconnected_at),
            },
        )
        .await;
    tracing::info!(
        connection_id = %id,
        session_id = session_id.as_deref().unwrap_or("unknown"),
        close_code,
        duration_seconds,
        "disconnected"
    );
    removed.map(|_| Reply::ok())
}

/// Every connection of these sessions, each once (group queries, page by page).
async fn session_members(ctx: &Ctx, session_ids: &[String]) -> Result<Vec<ConnectionId>> {
    let page_size = ctx.broadcast_options().page_size;
    let mut members = BTreeSet::new();
    for session_id in session_ids {
        let group = session_group(session_id);
        let mut token = None;
        loop {
            let page = ctx
                .store()
                .list_group(&group, PageRequest::after(page_size, token))
                .await?;
            members.extend(page.items);
            match page.next {
                Some(next) => token = Some(next),
                None => break,
            }
        }
    }
    Ok(members.into_iter().collect())
}

/// `sendmessage`: checks the input, stores the message, delivers it to everyone (or to
/// the connections of `session_ids`, then acks the sender), and logs the event.
pub(crate) async fn on_sendmessage(ctx: Ctx, request: Request) -> Result<Reply> {
    let state = ctx.state();
    let send =
        match json_body(&request).and_then(|body| protocol::parse_send(&body, state.config())) {
            Ok(send) => send,
            Err(error) => {
                return refuse(
                    &ctx,
                    &request,
                    Some(protocol::SENDMESSAGE.to_owned()),
                    error,
                    None,
                )
                .await
            }
        };
    let id = request.connection_id.clone();
    let sender = sender(&ctx, &id).await?;
    let received_at = request.request_time;
    let stored = StoredMessage {
        message_id: new_message_id(received_at),
        connection_id: id.to_string(),
        session_id: sender.session_id.clone(),
        name: sender.name,
        message: send.message,
        timestamp: rfc3339(received_at),
        session_ids: send.session_ids.clone(),
    };
    let data = serde_json::to_value(&stored).map_err(|error| {
        wsgw_core::Error::backend("serde_json", "serialising a message", Some(error.into()))
    })?;
    state
        .messages()
        .append(state.record(
            crate::MESSAGES_PARTITION,
            received_at,
            stored.message_id.clone(),
            data,
        ))
        .await?;

    let payload = Payload::json(&Outgoing::Message(stored.to_chat_message()))?;
    let report = match &send.session_ids {
        None => ctx.broadcast_to_group(ALL_GROUP, &payload).await?,
        Some(session_ids) => {
            let targets = session_members(&ctx, session_ids).await?;
            ctx.broadcast(targets, &payload).await
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
        answer(&ctx, &id, &ack).await?;
    }
    state
        .log_event(
            received_at,
            AuditEvent::Message {
                connection_id: id.to_string(),
                session_id: stored.session_id.clone(),
                message_id: stored.message_id.clone(),
                session_ids: send.session_ids,
                delivered: report.delivered.len(),
                pruned: report.pruned.len(),
                failed: report.failed.len(),
                timestamp: stored.timestamp.clone(),
            },
        )
        .await;
    Ok(Reply::ok())
}

/// `history`: the caller's most recent visible messages, oldest first.
///
/// Messages addressed to other sessions are skipped; at most
/// [`ChatConfig::history_scan_limit`](crate::ChatConfig::history_scan_limit) stored
/// messages are read per request, so its cost stays bounded.
pub(crate) async fn on_history(ctx: Ctx, request: Request) -> Result<Reply> {
    let state = ctx.state();
    let config = state.config();
    let wanted = match json_body(&request).and_then(|body| protocol::parse_history(&body, config)) {
        Ok(wanted) => wanted.limit,
        Err(error) => {
            return refuse(
                &ctx,
                &request,
                Some(protocol::HISTORY.to_owned()),
                error,
                None,
            )
            .await
        }
    };
    let id = request.connection_id.clone();
    let caller = sender(&ctx, &id).await?;
    let mut messages = Vec::with_capacity(wanted);
    let mut examined = 0usize;
    let mut token = None;
    while messages.len() < wanted && examined < config.history_scan_limit {
        let page_size = wanted.clamp(1, config.history_scan_limit - examined);
        let page = state
            .messages()
            .query(
                HistoryQuery::new(crate::MESSAGES_PARTITION)
                    .order(Order::NewestFirst)
                    .limit(page_size)
                    .after(token),
            )
            .await?;
        if page.items.is_empty() {
            break;
        }
        examined += page.items.len();
        for record in page.items {
            match serde_json::from_value::<StoredMessage>(record.data) {
                Ok(message) if message.visible_to(&caller.session_id, id.as_str()) => {
                    if messages.len() < wanted {
                        messages.push(message.to_chat_message());
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(record_id = %record.id, %error, "skipping an unreadable message record")
                }
            }
        }
        match page.next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    messages.reverse();
    answer(&ctx, &id, &Outgoing::History { messages }).await?;
    Ok(Reply::ok())
}

/// `heartbeat`: `{"type":"heartbeat"}` to the caller only.
pub(crate) async fn on_heartbeat(ctx: Ctx, request: Request) -> Result<Reply> {
    answer(&ctx, &request.connection_id, &Outgoing::Heartbeat).await?;
    Ok(Reply::ok())
}

/// `$default`: unknown actions, messages without an action, non-JSON and binary frames.
pub(crate) async fn on_default(ctx: Ctx, request: Request) -> Result<Reply> {
    let (detail, action) = protocol::unknown_action_detail(request.body.as_ref());
    let available = ACTIONS.iter().map(|action| (*action).to_owned()).collect();
    refuse(
        &ctx,
        &request,
        action,
        InputError::new(ErrorCode::UnknownAction, detail),
        Some(available),
    )
    .await
}
