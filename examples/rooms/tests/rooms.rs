use serde_json::json;
use wsgw_memory::{ConnectOptions, Harness};

fn in_room(room: &str) -> ConnectOptions {
    ConnectOptions::new().query("room", room)
}

#[tokio::test]
async fn say_reaches_everyone_in_the_room_and_nobody_else() {
    let harness = Harness::new(rooms::router());
    let ada = harness.connect_with(in_room("lobby")).await.unwrap();
    let bob = harness.connect_with(in_room("lobby")).await.unwrap();
    let eve = harness.connect_with(in_room("attic")).await.unwrap();

    ada.send_json(&json!({"action": "say", "text": "hi"}))
        .await
        .unwrap();

    for listener in [&ada, &bob] {
        assert_eq!(
            listener.received_json(),
            [json!({"type": "said", "text": "hi"})]
        );
    }
    assert!(eve.received_json().is_empty());
}

#[tokio::test]
async fn who_answers_the_caller_and_disconnect_leaves_the_room() {
    let harness = Harness::new(rooms::router());
    let ada = harness.connect_with(in_room("lobby")).await.unwrap();
    let bob = harness.connect_with(in_room("lobby")).await.unwrap();
    bob.disconnect().await.unwrap();

    ada.send_json(&json!({"action": "who"})).await.unwrap();

    let who = json!({"type": "who", "room": "lobby", "members": 1});
    assert_eq!(ada.received_json(), [who]);
}

#[tokio::test]
async fn bad_input_gets_an_error_frame_and_no_room_no_connection() {
    let harness = Harness::new(rooms::router());
    let ada = harness.connect_with(in_room("lobby")).await.unwrap();

    ada.send_json(&json!({"action": "say"})).await.unwrap();

    let answer = &ada.received_json()[0];
    assert_eq!(
        (&answer["error"], &answer["field"]),
        (&json!("missing_field"), &json!("text"))
    );
    assert!(
        harness.connect().await.is_err(),
        "no ?room= refuses the handshake"
    );
}
