//! The chat protocol, driven through simulated clients on the in-memory backend: one
//! behaviour per test.

use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt;
use serde_json::{json, Value};
use wsgw_core::{
    Connection, ConnectionId, ConnectionStoreExt, HistoryQuery, HistoryStore, Payload, Request,
};
use wsgw_memory::{ConnectError, ConnectOptions, Harness, TestClient};

use chat::{
    ChatConfig, ChatState, SessionRecord, StoredMessage, ALL_GROUP, EVENTS_PARTITION,
    MESSAGES_PARTITION, SESSIONS_PARTITION,
};

type Client = TestClient<ChatState>;

fn harness() -> Harness<ChatState> {
    harness_with(ChatConfig::default())
}

/// Whether the store holds no connection.
async fn no_connections(harness: &Harness<ChatState>) -> bool {
    harness.store().connections().next().await.is_none()
}

fn harness_with(config: ChatConfig) -> Harness<ChatState> {
    Harness::new(chat::router(ChatState::new().with_config(config)))
}

async fn join(harness: &Harness<ChatState>, session_id: &str, name: &str) -> Client {
    harness
        .connect_with(
            ConnectOptions::new()
                .query("session_id", session_id)
                .query("name", name)
                .source_ip("203.0.113.7")
                .user_agent("harness/1"),
        )
        .await
        .expect("the chat accepts a valid session and name")
}

async fn send(client: &Client, body: Value) {
    client
        .send_json(&body)
        .await
        .expect("the route answers instead of failing");
}

async fn records(history: &dyn HistoryStore, partition: &str) -> Vec<Value> {
    history
        .query(HistoryQuery::new(partition).limit(1000))
        .await
        .expect("history is readable")
        .items
        .into_iter()
        .map(|record| record.data)
        .collect()
}

async fn sessions(harness: &Harness<ChatState>) -> Vec<SessionRecord> {
    records(harness.history(), SESSIONS_PARTITION)
        .await
        .into_iter()
        .map(|data| serde_json::from_value(data).expect("a session record"))
        .collect()
}

async fn events(harness: &Harness<ChatState>) -> Vec<Value> {
    records(harness.history(), EVENTS_PARTITION).await
}

fn is_rfc3339_utc(text: &Value) -> bool {
    text.as_str()
        .is_some_and(|text| text.ends_with('Z') && DateTime::parse_from_rfc3339(text).is_ok())
}

fn error_code(answer: &Value) -> &str {
    assert_eq!(answer["type"], "error", "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .is_some_and(|detail| !detail.is_empty()),
        "an error explains itself: {answer}"
    );
    answer["error"].as_str().unwrap_or("")
}

// ---------------------------------------------------------------- routes and $connect

#[tokio::test]
async fn routes_are_selected_by_the_action_field() {
    let harness = harness();

    assert_eq!(
        harness.router().selection().expression(),
        chat::ROUTE_SELECTION
    );
    assert_eq!(
        harness.router().route_keys(),
        vec![
            "$connect",
            "$default",
            "$disconnect",
            "heartbeat",
            "history",
            "sendmessage"
        ]
    );
}

#[tokio::test]
async fn connect_stores_the_connection_in_its_session_group_and_the_all_group() {
    let harness = harness();

    let ada = join(&harness, "s1", "ada").await;

    let stored = harness
        .store()
        .get(ada.id())
        .await
        .unwrap()
        .expect("stored");
    assert!(stored.groups.contains("session:s1"), "{stored:?}");
    assert!(stored.groups.contains(ALL_GROUP), "{stored:?}");
    assert_eq!(stored.attributes["session_id"], "s1");
    assert_eq!(stored.attributes["name"], "ada");
    assert_eq!(stored.source_ip.as_deref(), Some("203.0.113.7"));
    let everyone = harness
        .store()
        .list_group(ALL_GROUP, wsgw_core::PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(everyone.items, vec![ada.id().clone()]);
}

#[tokio::test]
async fn connect_without_session_id_uses_the_connection_id_as_session() {
    let harness = harness();

    let client = harness.connect().await.expect("connects");

    let stored = harness.store().get(client.id()).await.unwrap().unwrap();
    assert_eq!(stored.attributes["session_id"], client.id().as_str());
    assert!(stored
        .groups
        .contains(&chat::session_group(client.id().as_str())));
    assert!(!stored.attributes.contains_key("name"));
}

#[tokio::test]
async fn connect_treats_empty_session_id_and_blank_name_as_absent() {
    let harness = harness();

    let client = harness
        .connect_with(
            ConnectOptions::new()
                .query("session_id", "")
                .query("name", "   "),
        )
        .await
        .expect("connects");

    let stored = harness.store().get(client.id()).await.unwrap().unwrap();
    assert_eq!(stored.attributes["session_id"], client.id().as_str());
    assert!(!stored.attributes.contains_key("name"));
}

#[tokio::test]
async fn connect_writes_a_session_history_record() {
    let harness = harness();

    let ada = join(&harness, "s1", "ada").await;

    let records = sessions(&harness).await;
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.connection_id, ada.id().as_str());
    assert_eq!(record.app.session_id, "s1");
    assert_eq!(record.app.name.as_deref(), Some("ada"));
    assert_eq!(record.source_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(record.user_agent.as_deref(), Some("harness/1"));
    assert!(is_rfc3339_utc(&json!(record.connected_at)), "{record:?}");
    assert_eq!(record.disconnected_at, None);
    assert_eq!(record.duration_seconds, None);
}

#[tokio::test]
async fn connect_refuses_invalid_session_ids_with_400() {
    let harness = harness();
    let too_long = "s".repeat(129);

    for bad in ["has space", "tab\there", too_long.as_str(), "line\nbreak"] {
        let refused = harness
            .connect_with(ConnectOptions::new().query("session_id", bad))
            .await;
        match refused {
            Err(ConnectError::Refused { status, .. }) => assert_eq!(status, 400, "{bad:?}"),
            other => panic!(
                "expected a 400 refusal for {bad:?}, got {:?}",
                other.map(|c| c.id().clone())
            ),
        }
    }
    assert!(no_connections(&harness).await);
    assert!(sessions(&harness).await.is_empty());
}

#[tokio::test]
async fn connect_accepts_a_session_id_of_128_characters() {
    let harness = harness();
    let longest = "é".repeat(128);

    let client = harness
        .connect_with(ConnectOptions::new().query("session_id", longest.clone()))
        .await
        .expect("128 characters are allowed");

    let stored = harness.store().get(client.id()).await.unwrap().unwrap();
    assert_eq!(stored.attributes["session_id"], longest.as_str());
}

#[tokio::test]
async fn connect_refuses_invalid_names_with_400() {
    let harness = harness();

    for bad in ["n".repeat(65), "bell\u{7}".to_owned()] {
        let refused = harness
            .connect_with(ConnectOptions::new().query("name", bad.clone()))
            .await;
        assert!(
            matches!(refused, Err(ConnectError::Refused { status: 400, .. })),
            "{bad:?}"
        );
    }
    assert!(no_connections(&harness).await);
}

#[tokio::test]
async fn a_refused_connect_is_recorded_as_an_error_event() {
    let harness = harness();

    let _ = harness
        .connect_with(ConnectOptions::new().query("session_id", "a b"))
        .await;

    let events = events(&harness).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], "error");
    assert_eq!(events[0]["route"], "$connect");
    assert_eq!(events[0]["error"], "invalid_session_id");
}

#[tokio::test]
async fn a_new_client_receives_nothing_until_it_asks() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;

    let bob = join(&harness, "s2", "bob").await;

    assert!(ada.received().is_empty());
    assert!(bob.received().is_empty());
}

// ------------------------------------------------------------------------ $disconnect

#[tokio::test]
async fn disconnect_removes_the_connection_and_completes_the_session_record() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;
    let id = ada.id().clone();

    ada.disconnect_with(1001, "Going away")
        .await
        .expect("$disconnect succeeds");

    assert_eq!(harness.store().get(&id).await.unwrap(), None);
    let records = sessions(&harness).await;
    assert_eq!(records.len(), 1, "completed in place, not duplicated");
    let record = &records[0];
    assert_eq!(record.connection_id, id.as_str());
    assert_eq!(record.app.session_id, "s1");
    assert_eq!(record.source_ip.as_deref(), Some("203.0.113.7"));
    assert!(is_rfc3339_utc(&json!(record.disconnected_at)), "{record:?}");
    assert_eq!(record.duration_seconds, Some(0));
    assert_eq!(record.close_code, Some(1001));
    assert_eq!(record.close_reason.as_deref(), Some("Going away"));
}

#[tokio::test]
async fn disconnect_computes_duration_from_connect_and_disconnect_times() {
    let harness = harness();
    let id = ConnectionId::new("timed=");
    let connected_at = DateTime::parse_from_rfc3339("2026-11-22T09:00:00.250Z")
        .unwrap()
        .with_timezone(&Utc);
    let connect = Request::connect(id.clone())
        .with_connected_at(connected_at)
        .with_source_ip("198.51.100.4")
        .with_query("session_id", "s9");
    assert_eq!(
        harness
            .router()
            .handle(harness.backends(), connect)
            .await
            .unwrap()
            .status,
        200
    );

    let mut disconnect =
        Request::disconnect(id.clone(), 1000, "bye").with_connected_at(connected_at);
    disconnect.request_time = connected_at + TimeDelta::milliseconds(95_900);
    harness
        .router()
        .handle(harness.backends(), disconnect)
        .await
        .unwrap();

    let record = &sessions(&harness).await[0];
    assert_eq!(record.connected_at, "2026-11-22T09:00:00.250Z");
    assert_eq!(
        record.disconnected_at.as_deref(),
        Some("2026-11-22T09:01:36.150Z")
    );
    assert_eq!(record.duration_seconds, Some(95));
    assert_eq!(record.app.session_id, "s9");
}

#[tokio::test]
async fn disconnect_of_a_connection_already_pruned_still_completes_its_record() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;
    harness.store().delete(ada.id()).await.unwrap();

    ada.disconnect().await.expect("$disconnect succeeds");

    let record = &sessions(&harness).await[0];
    assert_eq!(record.app.session_id, "s1");
    assert!(record.disconnected_at.is_some());
    assert_eq!(record.close_code, Some(1000));
}

#[tokio::test]
async fn disconnect_tells_nobody_else() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;
    let bob = join(&harness, "s2", "bob").await;

    bob.disconnect().await.unwrap();

    assert!(ada.received().is_empty());
}

// ------------------------------------------------------------------------ sendmessage

#[tokio::test]
async fn sendmessage_reaches_every_connection_the_sender_included() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;
    let bob = join(&harness, "s2", "bob").await;
    let cyd = join(&harness, "s3", "cyd").await;

    send(&ada, json!({"action": "sendmessage", "message": "hi"})).await;

    for client in [&ada, &bob, &cyd] {
        let received = client.received_json();
        assert_eq!(received.len(), 1, "{received:?}");
        assert_eq!(received[0]["message"], "hi");
    }
}

#[tokio::test]
async fn a_broadcast_message_has_exactly_the_documented_fields() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;

    send(&ada, json!({"action": "sendmessage", "message": "hi"})).await;

    let message = ada.received_json().remove(0);
    let mut keys: Vec<&str> = message
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "message",
            "message_id",
            "name",
            "session_id",
            "timestamp",
            "type"
        ]
    );
    assert_eq!(message["type"], "message");
    // No connection id: it is the gateway's handle on ada's client, nobody else's.
    assert!(
        !message.to_string().contains(ada.id().as_str()),
        "{message}"
    );
    assert_eq!(message["session_id"], "s1");
    assert_eq!(message["name"], "ada");
    assert_eq!(message["message"], "hi");
    assert!(is_rfc3339_utc(&message["timestamp"]), "{message}");
    assert!(message["message_id"]
        .as_str()
        .is_some_and(|id| id.len() == 32));
}

#[tokio::test]
async fn a_sender_without_a_name_is_shown_with_a_null_name() {
    let harness = harness();
    let anonymous = harness.connect().await.unwrap();

    send(
        &anonymous,
        json!({"action": "sendmessage", "message": "hi"}),
    )
    .await;

    let message = anonymous.received_json().remove(0);
    assert_eq!(message["name"], Value::Null);
    assert_eq!(message["session_id"], anonymous.id().as_str());
}

#[tokio::test]
async fn a_broadcast_sends_no_ack() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;

    send(&ada, json!({"action": "sendmessage", "message": "hi"})).await;

    let received = ada.received_json();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["type"], "message");
}

#[tokio::test]
async fn sendmessage_is_stored_in_message_history() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;

    send(&ada, json!({"action": "sendmessage", "message": "keep me"})).await;

    let live = ada.received_json().remove(0);
    let stored: Vec<StoredMessage> = records(harness.history(), MESSAGES_PARTITION)
        .await
        .into_iter()
        .map(|data| serde_json::from_value(data).unwrap())
        .collect();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].message_id, live["message_id"]);
    assert_eq!(stored[0].connection_id, ada.id().as_str());
    assert_eq!(stored[0].message, "keep me");
    assert_eq!(stored[0].timestamp, live["timestamp"]);
    assert_eq!(stored[0].session_ids, None);
}

#[tokio::test]
async fn message_ids_are_unique() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;

    for n in 0..200 {
        send(
            &ada,
            json!({"action": "sendmessage", "message": format!("m{n}")}),
        )
        .await;
    }

    let ids: std::collections::BTreeSet<String> = ada
        .received_json()
        .iter()
        .map(|message| message["message_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 200);
}

#[tokio::test]
async fn the_message_text_is_relayed_exactly_as_sent() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;
    let text = "  <img src=x onerror=alert(1)> \"quotes\" grüße 👋\n";

    send(&ada, json!({"action": "sendmessage", "message": text})).await;

    assert_eq!(ada.received_json()[0]["message"], text);
}

#[tokio::test]
async fn a_message_of_exactly_4096_bytes_is_accepted() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;
    let text = "é".repeat(2048); // 2 bytes each

    send(&ada, json!({"action": "sendmessage", "message": text})).await;

    assert_eq!(ada.received_json()[0]["type"], "message");
}

// ------------------------------------------------------------- session targeting

#[tokio::test]
async fn a_message_to_session_ids_reaches_only_the_connections_of_those_sessions() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;
    let bob_phone = join(&harness, "s2", "bob").await;
    let bob_laptop = join(&harness, "s2", "bob").await;
    let cyd = join(&harness, "s3", "cyd").await;
    let dan = join(&harness, "s4", "dan").await;

    send(
        &ada,
        json!({"action": "sendmessage", "message": "psst", "session_ids": ["s2", "s3"]}),
    )
    .await;

    for client in [&bob_phone, &bob_laptop, &cyd] {
        let received = client.received_json();
        assert_eq!(received.len(), 1, "{received:?}");
        assert_eq!(received[0]["type"], "message");
        assert_eq!(received[0]["message"], "psst");
        assert_eq!(received[0]["session_ids"], json!(["s2", "s3"]));
    }
    assert!(dan.received().is_empty());
    let ack = ada.received_json();
    assert_eq!(
        ack,
        vec![
            json!({"type": "sent", "message_id": only_message_id(&harness).await, "delivered": 3})
        ]
    );
}

async fn only_message_id(harness: &Harness<ChatState>) -> String {
    let stored = records(harness.history(), MESSAGES_PARTITION).await;
    stored[0]["message_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_sender_addressing_its_own_session_receives_the_message_and_the_ack() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;
    let ada_tab = join(&harness, "s1", "ada").await;

    send(
        &ada,
        json!({"action": "sendmessage", "message": "note to self", "session_ids": ["s1"]}),
    )
    .await;

    let received = ada.received_json();
    assert_eq!(received.len(), 2, "{received:?}");
    assert_eq!(received[0]["type"], "message");
    assert_eq!(received[1]["type"], "sent");
    assert_eq!(received[1]["delivered"], 2);
    assert_eq!(ada_tab.received_json()[0]["message"], "note to self");
}

#[tokio::test]
async fn repeated_session_ids_deliver_once_per_connection() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;
    let bob = join(&harness, "s2", "bob").await;

    send(
        &ada,
        json!({"action": "sendmessage", "message": "once", "session_ids": ["s2", "s2", "s2"]}),
    )
    .await;

    assert_eq!(bob.received().len(), 1);
    assert_eq!(ada.received_json()[0]["delivered"], 1);
}

#[tokio::test]
async fn a_message_to_an_unknown_session_is_acked_with_zero_deliveries() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;

    send(
        &ada,
        json!({"action": "sendmessage", "message": "anyone?", "session_ids": ["nobody"]}),
    )
    .await;

    let ack = ada.received_json();
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0]["type"], "sent");
    assert_eq!(ack[0]["delivered"], 0);
}

#[tokio::test]
async fn session_ids_null_sends_to_everyone() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;
    let bob = join(&harness, "s2", "bob").await;

    send(
        &ada,
        json!({"action": "sendmessage", "message": "all", "session_ids": null}),
    )
    .await;

    assert_eq!(bob.received().len(), 1);
    assert_eq!(ada.received_json()[0]["type"], "message");
}

// ------------------------------------------------------------------ bad sendmessage

async fn refused(body: Value) -> (Value, Harness<ChatState>) {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;
    let bob = join(&harness, "s2", "bob").await;

    send(&ada, body).await;

    let mut answers = ada.received_json();
    assert_eq!(answers.len(), 1, "exactly one answer: {answers:?}");
    assert!(bob.received().is_empty(), "nothing reaches anyone else");
    assert!(ada.is_open(), "the connection stays open");
    assert!(
        records(harness.history(), MESSAGES_PARTITION)
            .await
            .is_empty(),
        "nothing is stored"
    );
    // Still usable afterwards.
    send(&ada, json!({"action": "heartbeat"})).await;
    assert_eq!(ada.received_json(), vec![json!({"type": "heartbeat"})]);
    (answers.remove(0), harness)
}

#[tokio::test]
async fn an_empty_message_is_refused() {
    let (answer, _) = refused(json!({"action": "sendmessage", "message": ""})).await;
    assert_eq!(error_code(&answer), "empty_message");
}

#[tokio::test]
async fn a_whitespace_only_message_is_refused() {
    let (answer, _) = refused(json!({"action": "sendmessage", "message": " \n\t "})).await;
    assert_eq!(error_code(&answer), "empty_message");
}

#[tokio::test]
async fn a_message_over_4_kb_is_refused() {
    let (answer, _) = refused(json!({"action": "sendmessage", "message": "x".repeat(4097)})).await;
    assert_eq!(error_code(&answer), "message_too_large");
    assert!(answer["detail"].as_str().unwrap().contains("4097"));
}

#[tokio::test]
async fn a_multibyte_message_over_4096_bytes_is_refused() {
    let (answer, _) = refused(json!({"action": "sendmessage", "message": "é".repeat(2049)})).await;
    assert_eq!(error_code(&answer), "message_too_large");
}

#[tokio::test]
async fn a_missing_message_is_refused() {
    let (answer, _) = refused(json!({"action": "sendmessage", "text": "wrong field"})).await;
    assert_eq!(error_code(&answer), "missing_field");
}

#[tokio::test]
async fn a_message_that_is_not_a_string_is_refused() {
    for message in [
        json!(42),
        json!(true),
        json!(["hi"]),
        json!({"text": "hi"}),
        json!(null),
    ] {
        let (answer, _) = refused(json!({"action": "sendmessage", "message": message})).await;
        assert_eq!(error_code(&answer), "invalid_type", "{message}");
    }
}

#[tokio::test]
async fn session_ids_that_are_not_an_array_are_refused() {
    for session_ids in [json!("s2"), json!(2), json!({"s2": true}), json!(true)] {
        let (answer, _) =
            refused(json!({"action": "sendmessage", "message": "hi", "session_ids": session_ids}))
                .await;
        assert_eq!(error_code(&answer), "invalid_session_ids", "{session_ids}");
    }
}

#[tokio::test]
async fn an_empty_session_ids_array_is_refused() {
    let (answer, _) =
        refused(json!({"action": "sendmessage", "message": "hi", "session_ids": []})).await;
    assert_eq!(error_code(&answer), "invalid_session_ids");
}

#[tokio::test]
async fn session_ids_with_a_non_string_entry_are_refused() {
    let (answer, _) =
        refused(json!({"action": "sendmessage", "message": "hi", "session_ids": ["s2", 3]})).await;
    assert_eq!(error_code(&answer), "invalid_session_ids");
    assert!(answer["detail"]
        .as_str()
        .unwrap()
        .contains("session_ids[1]"));
}

#[tokio::test]
async fn session_ids_with_an_empty_or_malformed_entry_are_refused() {
    for entry in ["", "a b", &"s".repeat(129)] {
        let (answer, _) =
            refused(json!({"action": "sendmessage", "message": "hi", "session_ids": [entry]}))
                .await;
        assert_eq!(error_code(&answer), "invalid_session_ids", "{entry:?}");
    }
}

#[tokio::test]
async fn more_than_100_session_ids_are_refused() {
    let many: Vec<String> = (0..101).map(|n| format!("s{n}")).collect();
    let (answer, _) =
        refused(json!({"action": "sendmessage", "message": "hi", "session_ids": many})).await;
    assert_eq!(error_code(&answer), "invalid_session_ids");
}

#[tokio::test]
async fn a_refused_message_is_recorded_as_an_error_event() {
    let (_, harness) = refused(json!({"action": "sendmessage", "message": ""})).await;

    let errors: Vec<Value> = events(&harness)
        .await
        .into_iter()
        .filter(|event| event["event"] == "error")
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["route"], "sendmessage");
    assert_eq!(errors[0]["action"], "sendmessage");
    assert_eq!(errors[0]["error"], "empty_message");
    assert!(is_rfc3339_utc(&errors[0]["timestamp"]));
}

// ----------------------------------------------------------------------- history

async fn chat_log(harness: &Harness<ChatState>, sender: &Client, count: usize) {
    for n in 1..=count {
        send(
            sender,
            json!({"action": "sendmessage", "message": format!("m{n}")}),
        )
        .await;
    }
    let _ = sender.received();
    let _ = harness;
}

fn texts(answer: &Value) -> Vec<String> {
    assert_eq!(answer["type"], "history", "{answer}");
    answer["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|message| message["message"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn history_returns_the_most_recent_messages_oldest_first() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;
    chat_log(&harness, &ada, 5).await;
    let bob = join(&harness, "s2", "bob").await;

    send(&bob, json!({"action": "history", "limit": 3})).await;

    let answers = bob.received_json();
    assert_eq!(answers.len(), 1);
    assert_eq!(texts(&answers[0]), ["m3", "m4", "m5"]);
    assert!(ada.received().is_empty(), "history goes to the caller only");
}

#[tokio::test]
async fn history_messages_have_the_live_message_fields() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;
    send(&ada, json!({"action": "sendmessage", "message": "hi"})).await;
    let mut live = ada.received_json().remove(0);

    send(&ada, json!({"action": "history"})).await;

    let answer = ada.received_json().remove(0);
    live.as_object_mut().unwrap().remove("type");
    assert_eq!(answer["messages"], json!([live]));
}

#[tokio::test]
async fn history_defaults_to_50_messages() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;
    chat_log(&harness, &ada, 60).await;

    send(&ada, json!({"action": "history"})).await;

    let got = texts(&ada.received_json()[0]);
    assert_eq!(got.len(), 50);
    assert_eq!(got.first().map(String::as_str), Some("m11"));
    assert_eq!(got.last().map(String::as_str), Some("m60"));
}

#[tokio::test]
async fn history_accepts_limits_from_1_to_200() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;
    chat_log(&harness, &ada, 210).await;

    send(&ada, json!({"action": "history", "limit": 1})).await;
    send(&ada, json!({"action": "history", "limit": 200})).await;
    send(&ada, json!({"action": "history", "limit": null})).await;

    let answers = ada.received_json();
    assert_eq!(texts(&answers[0]), ["m210"]);
    assert_eq!(texts(&answers[1]).len(), 200);
    assert_eq!(texts(&answers[1])[0], "m11");
    assert_eq!(texts(&answers[2]).len(), 50);
}

#[tokio::test]
async fn history_of_an_empty_chat_is_an_empty_list() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;

    send(&ada, json!({"action": "history"})).await;

    assert_eq!(
        ada.received_json(),
        vec![json!({"type": "history", "messages": []})]
    );
}

#[tokio::test]
async fn history_limits_out_of_range_or_of_the_wrong_type_are_refused() {
    for limit in [
        json!(0),
        json!(201),
        json!(-1),
        json!(2.5),
        json!("10"),
        json!(true),
        json!([5]),
    ] {
        let harness = harness();
        let ada = join(&harness, "s1", "ada").await;

        send(&ada, json!({"action": "history", "limit": limit})).await;

        let answers = ada.received_json();
        assert_eq!(answers.len(), 1, "{limit}: {answers:?}");
        assert_eq!(error_code(&answers[0]), "invalid_limit", "{limit}");
        assert!(ada.is_open());
    }
}

#[tokio::test]
async fn history_hides_messages_addressed_to_other_sessions() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;
    let bob = join(&harness, "s2", "bob").await;
    let cyd = join(&harness, "s3", "cyd").await;
    send(
        &ada,
        json!({"action": "sendmessage", "message": "public 1"}),
    )
    .await;
    send(
        &ada,
        json!({"action": "sendmessage", "message": "for bob", "session_ids": ["s2"]}),
    )
    .await;
    send(
        &ada,
        json!({"action": "sendmessage", "message": "public 2"}),
    )
    .await;
    for client in [&ada, &bob, &cyd] {
        let _ = client.received();
    }

    send(&cyd, json!({"action": "history"})).await;
    send(&bob, json!({"action": "history"})).await;
    send(&ada, json!({"action": "history"})).await;

    assert_eq!(texts(&cyd.received_json()[0]), ["public 1", "public 2"]);
    assert_eq!(
        texts(&bob.received_json()[0]),
        ["public 1", "for bob", "public 2"]
    );
    assert_eq!(
        texts(&ada.received_json()[0]),
        ["public 1", "for bob", "public 2"],
        "the sender sees what it sent"
    );
}

#[tokio::test]
async fn history_fills_its_limit_past_hidden_messages() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;
    let cyd = join(&harness, "s3", "cyd").await;
    send(&ada, json!({"action": "sendmessage", "message": "public"})).await;
    for n in 0..30 {
        send(
            &ada,
            json!({"action": "sendmessage", "message": format!("private {n}"), "session_ids": ["s2"]}),
        )
        .await;
    }
    let _ = cyd.received();

    send(&cyd, json!({"action": "history", "limit": 5})).await;

    assert_eq!(texts(&cyd.received_json()[0]), ["public"]);
}

#[tokio::test]
async fn history_reads_at_most_the_scan_limit_of_stored_messages() {
    let harness = harness_with(ChatConfig::default().history_scan_limit(10));
    let ada = join(&harness, "s1", "ada").await;
    let cyd = join(&harness, "s3", "cyd").await;
    send(
        &ada,
        json!({"action": "sendmessage", "message": "old public"}),
    )
    .await;
    for n in 0..10 {
        send(
            &ada,
            json!({"action": "sendmessage", "message": format!("private {n}"), "session_ids": ["s2"]}),
        )
        .await;
    }
    let _ = cyd.received();

    send(&cyd, json!({"action": "history"})).await;

    assert_eq!(
        texts(&cyd.received_json()[0]),
        Vec::<String>::new(),
        "the public message lies beyond the 10 most recent records"
    );
}

// --------------------------------------------------------------- heartbeat, $default

#[tokio::test]
async fn heartbeat_answers_the_sender_only() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;
    let bob = join(&harness, "s2", "bob").await;

    send(&ada, json!({"action": "heartbeat"})).await;

    assert_eq!(ada.received_json(), vec![json!({"type": "heartbeat"})]);
    assert!(bob.received().is_empty());
}

fn assert_unknown_action(answer: &Value) {
    assert_eq!(error_code(answer), "unknown_action");
    assert_eq!(
        answer["available"],
        json!(["sendmessage", "history", "heartbeat"])
    );
}

/// The error frames are the protocol: their bytes, field order included, are what
/// clients were written against.
#[tokio::test]
async fn error_frames_keep_their_exact_text() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;

    send(&ada, json!({"action": "Heartbeat"})).await;
    send(&ada, json!({"action": "sendmessage"})).await;

    let frames: Vec<_> = ada
        .received()
        .iter()
        .map(|frame| frame.as_text().map(str::to_owned))
        .collect();
    assert_eq!(
        frames,
        [
            Some(r#"{"type":"error","error":"unknown_action","detail":"`Heartbeat` is not an action (actions are case-sensitive)","available":["sendmessage","history","heartbeat"]}"#.to_owned()),
            Some(r#"{"type":"error","error":"missing_field","detail":"`message` is missing: send {\"action\":\"sendmessage\",\"message\":\"hi\"}"}"#.to_owned()),
        ]
    );
}

#[tokio::test]
async fn an_unknown_action_lists_the_available_ones() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;

    send(
        &ada,
        json!({"action": "sendMessage", "message": "wrong case"}),
    )
    .await;

    let answers = ada.received_json();
    assert_eq!(answers.len(), 1);
    assert_unknown_action(&answers[0]);
    assert!(answers[0]["detail"]
        .as_str()
        .unwrap()
        .contains("sendMessage"));
    assert!(ada.is_open());
}

#[tokio::test]
async fn messages_without_an_action_and_non_json_go_to_default() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;

    send(&ada, json!({"message": "no action"})).await;
    send(&ada, json!({"action": 7})).await;
    ada.send(Payload::text("not json")).await.unwrap();
    ada.send(Payload::text("[1,2]")).await.unwrap();

    let answers = ada.received_json();
    assert_eq!(answers.len(), 4, "{answers:?}");
    for answer in &answers {
        assert_unknown_action(answer);
    }
    assert!(ada.is_open());
}

/// AWS: a binary frame closes the connection with 1003; no route runs, and the
/// `$disconnect` that runs completes the session record as for any close.
#[tokio::test]
async fn a_binary_frame_closes_the_connection_with_1003() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;
    let bob = join(&harness, "s2", "bob").await;

    ada.send(Payload::binary(vec![0u8, 159, 146, 150]))
        .await
        .expect_err("API Gateway refuses binary frames");

    assert!(!ada.is_open());
    assert_eq!(ada.received_json(), Vec::<Value>::new());
    send(&bob, json!({"action": "heartbeat"})).await;
    assert_eq!(bob.received_json(), vec![json!({"type": "heartbeat"})]);
}

#[tokio::test]
async fn a_very_long_unknown_action_is_shortened_in_the_answer() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;

    send(&ada, json!({"action": "x".repeat(10_000)})).await;

    let answer = ada.received_json().remove(0);
    assert!(answer["detail"].as_str().unwrap().len() < 200, "{answer}");
}

#[tokio::test]
async fn a_route_key_set_by_the_gateway_with_a_non_json_body_is_invalid_json() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;
    let request = Request::message(ada.id().clone(), "not json").with_route_key("sendmessage");

    harness
        .router()
        .handle(harness.backends(), request)
        .await
        .unwrap();

    let answers = ada.received_json();
    assert_eq!(error_code(&answers[0]), "invalid_json");
}

// ------------------------------------------------------------------------- audit log

#[tokio::test]
async fn the_event_log_records_connect_message_error_and_disconnect() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;
    let id = ada.id().as_str().to_owned();
    send(&ada, json!({"action": "sendmessage", "message": "hi"})).await;
    send(&ada, json!({"action": "dance"})).await;
    send(&ada, json!({"action": "heartbeat"})).await;
    ada.disconnect().await.unwrap();

    let events = events(&harness).await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|event| event["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["connect", "message", "error", "disconnect"]);
    for event in &events {
        assert_eq!(event["connection_id"], id.as_str(), "{event}");
        assert!(is_rfc3339_utc(&event["timestamp"]), "{event}");
    }
    assert_eq!(events[0]["session_id"], "s1");
    assert_eq!(events[0]["source_ip"], "203.0.113.7");
    assert_eq!(events[1]["delivered"], 1);
    assert!(events[1]["message_id"].is_string());
    assert_eq!(events[2]["error"], "unknown_action");
    assert_eq!(events[2]["action"], "dance");
    assert_eq!(events[3]["close_code"], 1000);
    assert_eq!(events[3]["duration_seconds"], 0);
}

// ----------------------------------------------------------------- stale connections

#[tokio::test]
async fn a_broadcast_prunes_stale_connections_and_delivers_to_the_rest() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;
    let bob = join(&harness, "s2", "bob").await;
    // A connection whose $disconnect never arrived: stored, but gone at the gateway.
    let stale = ConnectionId::new("stale=");
    harness
        .store()
        .put(
            Connection::new(stale.clone())
                .with_group(ALL_GROUP)
                .with_group("session:s2")
                .with_attribute("session_id", "s2"),
        )
        .await
        .unwrap();

    send(&ada, json!({"action": "sendmessage", "message": "hi"})).await;

    assert_eq!(harness.store().get(&stale).await.unwrap(), None);
    assert_eq!(bob.received().len(), 1);
    let events = events(&harness).await;
    let message = events
        .iter()
        .find(|event| event["event"] == "message")
        .unwrap();
    assert_eq!(message["delivered"], 2);
    assert_eq!(message["pruned"], 1);
}

#[tokio::test]
async fn a_targeted_message_prunes_stale_connections_and_does_not_count_them() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;
    let bob = join(&harness, "s2", "bob").await;
    let stale = ConnectionId::new("stale=");
    harness
        .store()
        .put(Connection::new(stale.clone()).with_group("session:s2"))
        .await
        .unwrap();

    send(
        &ada,
        json!({"action": "sendmessage", "message": "hi", "session_ids": ["s2"]}),
    )
    .await;

    assert_eq!(harness.store().get(&stale).await.unwrap(), None);
    assert_eq!(bob.received().len(), 1);
    assert_eq!(ada.received_json()[0]["delivered"], 1);
}

#[tokio::test]
async fn a_caller_that_left_before_its_answer_does_not_fail_the_route() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;
    harness.sink().remove(ada.id());

    let reply = harness
        .router()
        .handle(
            harness.backends(),
            Request::message(ada.id().clone(), r#"{"action":"heartbeat"}"#),
        )
        .await;

    assert_eq!(reply.unwrap().status, 200);
}

#[tokio::test]
async fn a_sender_missing_from_the_store_still_gets_its_message_out() {
    let harness = harness();
    let ada = join(&harness, "s1", "ada").await;
    let bob = join(&harness, "s2", "bob").await;
    harness.store().delete(ada.id()).await.unwrap();

    send(
        &ada,
        json!({"action": "sendmessage", "message": "still here"}),
    )
    .await;

    let received = bob.received_json();
    assert_eq!(received[0]["message"], "still here");
    assert_eq!(received[0]["session_id"], ada.id().as_str());
    assert_eq!(received[0]["name"], Value::Null);
}

// ------------------------------------------------------------------------ retention

#[tokio::test]
async fn with_a_retention_every_record_expires() {
    let retention = std::time::Duration::from_secs(7 * 24 * 3600);
    let harness = harness_with(ChatConfig::default().retention(Some(retention)));
    let ada = join(&harness, "s1", "ada").await;
    send(&ada, json!({"action": "sendmessage", "message": "hi"})).await;

    for partition in [SESSIONS_PARTITION, MESSAGES_PARTITION, EVENTS_PARTITION] {
        let page = harness
            .history()
            .query(HistoryQuery::new(partition))
            .await
            .unwrap();
        for record in page.items {
            let expires = record.expires_at.expect("an expiry");
            let left = expires - Utc::now();
            assert!(
                left > TimeDelta::days(6) && left <= TimeDelta::days(7),
                "{partition}: {left}"
            );
        }
    }
}
