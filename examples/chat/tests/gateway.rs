//! The chat end to end: the LocalGateway on loopback, real WebSocket clients
//! (tokio-tungstenite), the in-memory backend underneath.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use wsgw_core::{Connection, ConnectionId, ConnectionStore, HistoryQuery, HistoryStore};
use wsgw_memory::gateway::{Assets, LocalGateway, RunningGateway};
use wsgw_memory::testing::ws::{assert_silent, next_json, send_json, Client, WAIT};
use wsgw_memory::{MemoryHistory, MemoryStore};

use chat::{ChatState, SessionRecord, ALL_GROUP, EVENTS_PARTITION, SESSIONS_PARTITION};

struct Chat {
    running: RunningGateway,
    store: Arc<MemoryStore>,
    history: Arc<MemoryHistory>,
}

impl Chat {
    async fn start() -> Chat {
        let store = Arc::new(MemoryStore::new());
        let history = Arc::new(MemoryHistory::new());
        let running = LocalGateway::new(chat::router(ChatState::new()))
            .with_store(store.clone())
            .with_history(history.clone())
            .assets(Assets::new().file("/index.html", chat::INDEX_HTML))
            .bind("127.0.0.1:0".parse().expect("an address"))
            .await
            .expect("the gateway binds");
        Chat {
            running,
            store,
            history,
        }
    }

    async fn join(&self, session_id: &str, name: &str) -> Client {
        let url = format!(
            "{}/?session_id={session_id}&name={name}",
            self.running.ws_url()
        );
        let (client, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("the chat accepts the client");
        client
    }

    async fn sessions(&self) -> Vec<SessionRecord> {
        self.history
            .query(HistoryQuery::new(SESSIONS_PARTITION))
            .await
            .expect("readable")
            .items
            .into_iter()
            .map(|record| serde_json::from_value(record.data).expect("a session record"))
            .collect()
    }

    /// Waits until every session record is completed (`$disconnect` runs after the
    /// socket closed, asynchronously).
    async fn completed_sessions(&self, count: usize) -> Vec<SessionRecord> {
        tokio::time::timeout(WAIT, async {
            loop {
                let records = self.sessions().await;
                let done = records
                    .iter()
                    .filter(|record| record.disconnected_at.is_some())
                    .count();
                if done >= count {
                    return records;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("session records completed in time")
    }
}

#[tokio::test]
async fn three_clients_a_broadcast_reaches_everyone_the_sender_included() {
    let chat = Chat::start().await;
    let mut ada = chat.join("s1", "ada").await;
    let mut bob = chat.join("s2", "bob").await;
    let mut cyd = chat.join("s3", "cyd").await;

    send_json(
        &mut ada,
        &json!({"action": "sendmessage", "message": "hello all"}),
    )
    .await;

    let first = next_json(&mut ada).await;
    assert_eq!(first["type"], "message");
    assert_eq!(first["message"], "hello all");
    assert_eq!(first["session_id"], "s1");
    assert_eq!(first["name"], "ada");
    for client in [&mut bob, &mut cyd] {
        assert_eq!(
            next_json(client).await,
            first,
            "everyone gets the same message"
        );
    }
    assert_silent(&mut ada).await;
}

#[tokio::test]
async fn three_clients_a_message_to_a_session_reaches_only_its_connections() {
    let chat = Chat::start().await;
    let mut ada = chat.join("s1", "ada").await;
    let mut bob = chat.join("s2", "bob").await;
    let mut bob_again = chat.join("s2", "bob").await;
    let mut cyd = chat.join("s3", "cyd").await;

    send_json(
        &mut ada,
        &json!({"action": "sendmessage", "message": "for s2", "session_ids": ["s2"]}),
    )
    .await;

    let ack = next_json(&mut ada).await;
    assert_eq!(ack["type"], "sent");
    assert_eq!(ack["delivered"], 2);
    for client in [&mut bob, &mut bob_again] {
        let message = next_json(client).await;
        assert_eq!(message["message"], "for s2");
        assert_eq!(message["message_id"], ack["message_id"]);
        assert_eq!(message["session_ids"], json!(["s2"]));
    }
    assert_silent(&mut cyd).await;
    assert_silent(&mut ada).await;
}

#[tokio::test]
async fn a_client_that_joins_later_reads_the_history() {
    let chat = Chat::start().await;
    let mut ada = chat.join("s1", "ada").await;
    for text in ["one", "two", "three"] {
        send_json(&mut ada, &json!({"action": "sendmessage", "message": text})).await;
        next_json(&mut ada).await;
    }
    send_json(
        &mut ada,
        &json!({"action": "sendmessage", "message": "secret", "session_ids": ["s1"]}),
    )
    .await;
    next_json(&mut ada).await;
    next_json(&mut ada).await;

    let mut cyd = chat.join("s3", "cyd").await;
    send_json(&mut cyd, &json!({"action": "history", "limit": 2})).await;
    let two = next_json(&mut cyd).await;
    send_json(&mut cyd, &json!({"action": "history"})).await;
    let all = next_json(&mut cyd).await;

    let texts = |answer: &Value| -> Vec<Value> {
        answer["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|message| message["message"].clone())
            .collect()
    };
    assert_eq!(two["type"], "history");
    assert_eq!(texts(&two), [json!("two"), json!("three")]);
    assert_eq!(texts(&all), [json!("one"), json!("two"), json!("three")]);
}

#[tokio::test]
async fn heartbeat_and_bad_input_are_answered_and_the_connection_stays_open() {
    let chat = Chat::start().await;
    let mut ada = chat.join("s1", "ada").await;
    let mut bob = chat.join("s2", "bob").await;

    send_json(&mut ada, &json!({"action": "heartbeat"})).await;
    assert_eq!(next_json(&mut ada).await, json!({"type": "heartbeat"}));
    send_json(&mut ada, &json!({"action": "sendmessage", "message": ""})).await;
    assert_eq!(next_json(&mut ada).await["error"], "empty_message");
    send_json(&mut ada, &json!({"action": "history", "limit": 500})).await;
    assert_eq!(next_json(&mut ada).await["error"], "invalid_limit");
    ada.send(Message::text("not JSON")).await.expect("sent");
    let unknown = next_json(&mut ada).await;
    assert_eq!(unknown["error"], "unknown_action");
    assert_eq!(
        unknown["available"],
        json!(["sendmessage", "history", "heartbeat"])
    );

    send_json(
        &mut ada,
        &json!({"action": "sendmessage", "message": "still here"}),
    )
    .await;
    assert_eq!(next_json(&mut ada).await["message"], "still here");
    assert_eq!(next_json(&mut bob).await["message"], "still here");
}

#[tokio::test]
async fn closing_and_dropping_connections_completes_their_session_records() {
    let chat = Chat::start().await;
    let mut ada = chat.join("s1", "ada").await;
    let bob = chat.join("s2", "bob").await;
    let mut cyd = chat.join("s3", "cyd").await;

    ada.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .await
    .expect("closes");
    drop(bob); // the TCP connection goes away without a close frame

    let records = chat.completed_sessions(2).await;
    let by_session = |session: &str| {
        records
            .iter()
            .find(|record| record.app.session_id == session)
            .cloned()
            .expect("a record")
    };
    let ada_record = by_session("s1");
    assert_eq!(ada_record.close_code, Some(1000));
    assert_eq!(ada_record.close_reason.as_deref(), Some("bye"));
    assert_eq!(ada_record.source_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(ada_record.duration_seconds, Some(0));
    assert!(ada_record
        .disconnected_at
        .as_deref()
        .is_some_and(|at| at.ends_with('Z')));
    assert_eq!(by_session("s2").close_code, Some(1006));
    assert_eq!(by_session("s3").disconnected_at, None, "cyd is still here");

    // The leavers are out of the store: a broadcast reaches cyd alone.
    send_json(
        &mut cyd,
        &json!({"action": "sendmessage", "message": "alone?"}),
    )
    .await;
    assert_eq!(next_json(&mut cyd).await["message"], "alone?");
    let everyone = chat
        .store
        .list_group(ALL_GROUP, wsgw_core::PageRequest::first(10))
        .await
        .expect("listable");
    assert_eq!(everyone.items.len(), 1);
}

#[tokio::test]
async fn a_stale_connection_is_pruned_by_a_broadcast_and_the_rest_still_delivered() {
    let chat = Chat::start().await;
    let mut ada = chat.join("s1", "ada").await;
    let mut bob = chat.join("s2", "bob").await;
    let mut cyd = chat.join("s3", "cyd").await;
    let stale = ConnectionId::new("stale-connection=");
    chat.store
        .put(
            Connection::new(stale.clone())
                .with_group(ALL_GROUP)
                .with_group(chat::session_group("s2"))
                .with_attribute("session_id", "s2"),
        )
        .await
        .expect("stored");

    send_json(
        &mut ada,
        &json!({"action": "sendmessage", "message": "to s2", "session_ids": ["s2"]}),
    )
    .await;
    let ack = next_json(&mut ada).await;
    assert_eq!(ack["delivered"], 1, "the stale connection is not counted");
    assert_eq!(next_json(&mut bob).await["message"], "to s2");
    assert_eq!(chat.store.get(&stale).await.expect("readable"), None);

    chat.store
        .put(Connection::new(stale.clone()).with_group(ALL_GROUP))
        .await
        .expect("stored");
    send_json(
        &mut cyd,
        &json!({"action": "sendmessage", "message": "to all"}),
    )
    .await;
    for client in [&mut ada, &mut bob, &mut cyd] {
        assert_eq!(next_json(client).await["message"], "to all");
    }
    assert_eq!(chat.store.get(&stale).await.expect("readable"), None);
    let events = chat
        .history
        .query(HistoryQuery::new(EVENTS_PARTITION).limit(100))
        .await
        .expect("readable");
    let pruned: Vec<&Value> = events
        .items
        .iter()
        .map(|record| &record.data)
        .filter(|event| event["event"] == "message")
        .map(|event| &event["pruned"])
        .collect();
    assert_eq!(pruned, [&json!(1), &json!(1)]);
}

#[tokio::test]
async fn an_invalid_session_id_refuses_the_handshake_with_400() {
    let chat = Chat::start().await;

    let refused =
        tokio_tungstenite::connect_async(format!("{}/?session_id=a%20b", chat.running.ws_url()))
            .await;

    match refused {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 400),
        other => panic!(
            "expected HTTP 400, got {:?}",
            other.map(|(_, response)| response)
        ),
    }
}

#[tokio::test]
async fn shutting_down_closes_every_client_and_completes_every_record() {
    let chat = Chat::start().await;
    let mut ada = chat.join("s1", "ada").await;
    let _bob = chat.join("s2", "bob").await;
    let history = chat.history.clone();

    chat.running.shutdown().await.expect("stops");

    match tokio::time::timeout(WAIT, ada.next()).await {
        Ok(Some(Ok(Message::Close(Some(frame))))) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected a 1001 close, got {other:?}"),
    }
    let records = history
        .query(HistoryQuery::new(SESSIONS_PARTITION))
        .await
        .expect("readable")
        .items;
    assert_eq!(records.len(), 2);
    for record in records {
        assert_eq!(record.data["close_code"], 1001, "{}", record.data);
    }
}

#[tokio::test]
async fn the_page_is_served_at_the_root() {
    let chat = Chat::start().await;
    let base = format!("http://{}", chat.running.local_addr());

    let page = reqwest::get(format!("{base}/")).await.expect("GET /");

    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let html = page.text().await.expect("a body");
    assert_eq!(html, chat::INDEX_HTML);
    assert!(html.contains("new WebSocket("));
    let same = reqwest::get(format!("{base}/index.html"))
        .await
        .expect("GET /index.html");
    assert_eq!(same.status(), 200);
}

#[tokio::test]
async fn by_default_messages_sessions_and_events_expire_after_30_days() {
    use chat::MESSAGES_PARTITION;
    let chat = Chat::start().await;
    let mut ada = chat.join("s1", "ada").await;
    send_json(
        &mut ada,
        &json!({"action": "sendmessage", "message": "not forever"}),
    )
    .await;
    assert_eq!(next_json(&mut ada).await["message"], "not forever");
    for partition in [SESSIONS_PARTITION, MESSAGES_PARTITION, EVENTS_PARTITION] {
        let records = chat
            .history
            .query(HistoryQuery::new(partition))
            .await
            .expect("readable")
            .items;
        assert!(!records.is_empty(), "{partition}");
        for record in records {
            let kept = record.expires_at.expect("an expiry by default") - record.time;
            assert_eq!(kept.num_days(), 30, "{partition}: {kept}");
        }
    }
}
