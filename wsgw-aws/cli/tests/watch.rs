//! `--watch`: a changed source of a function's binary rebuilds it and replaces its
//! instances; the files watched are those cargo compiled into the binary.

mod support;

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde_json::json;
use wsgw::build::Builder;
use wsgw::pool::{FunctionPool, PoolFunction, PoolSettings};
use wsgw::watch::{sources_of, Rebuilt, Watcher};
use wsgw_aws::lambda::encode_websocket_event;
use wsgw_aws::template::CargoBuild;
use wsgw_core::{Payload, Request};
use wsgw_memory::gateway::ManagementRecorder;

const ECHO: &str = "PlainEcho";

async fn pid(pool: &FunctionPool) -> u64 {
    let request = Request::message("c-1=".into(), Payload::text(json!({}).to_string()))
        .with_endpoint("127.0.0.1", "production");
    let answer = pool
        .invoke(ECHO, encode_websocket_event(&request))
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    body["pid"].as_u64().unwrap()
}

#[tokio::test]
async fn a_changed_source_rebuilds_the_function_and_the_next_invocation_runs_a_new_instance() {
    let executable = support::plain_echo().await;
    let crate_dir = support::workspace().join("wsgw-aws/cli/tests/plain-echo");
    let main_rs = crate_dir.join("src/main.rs");
    assert!(
        sources_of(&executable).contains(&main_rs),
        "{:?}",
        sources_of(&executable)
    );
    let recorder = ManagementRecorder::start().await.unwrap();
    let settings = PoolSettings::default().with_management_endpoint(recorder.endpoint());
    let pool = FunctionPool::new([PoolFunction::new(ECHO, executable.clone())], settings);
    let builds = BTreeMap::from([(
        ECHO.to_owned(),
        CargoBuild::new(&crate_dir, Some("plain-echo".to_owned())),
    )]);
    let mut watcher = Watcher::new(
        Builder::default(),
        builds,
        &BTreeMap::from([(ECHO.to_owned(), executable)]),
    );
    assert!(watcher.check(&pool).await.is_none(), "nothing changed yet");
    let before = pid(&pool).await;

    // A save without a change of content (the tracked source stays as it is, whatever
    // happens next): cargo rebuilds on the newer time as on an edit. This is the only
    // test of this binary, and cargo runs test binaries one at a time, so no other test
    // builds or runs the fixture while it is rebuilt (tests/local.rs takes turns).
    std::fs::File::options()
        .append(true)
        .open(&main_rs)
        .and_then(|file| file.set_modified(SystemTime::now()))
        .unwrap();
    let rebuilt = watcher.check(&pool).await;

    assert!(
        matches!(&rebuilt, Some(Rebuilt::Replaced(functions)) if functions == &[ECHO.to_owned()]),
        "{rebuilt:?}"
    );
    let after = pid(&pool).await;
    assert_ne!(before, after, "the next invocation runs a new instance");
    assert_eq!(pool.instances_started(ECHO), 2);
    assert!(
        watcher.check(&pool).await.is_none(),
        "one rebuild per change"
    );
}
