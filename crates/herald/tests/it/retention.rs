//! Retention: `payloadRetentionPeriod` is checked and sets the message's expiry;
//! `herald prune` expunges expired payloads (never a pending delivery's) and
//! deletes old attempts, and says how many, on both backends; `serve` prunes at
//! start-up and every `HERALD_PRUNE_INTERVAL_SECONDS`, not at all with 0, and
//! never on an API-only node.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use herald::config::Role;
use herald_store::{
    Application, Attempt, Endpoint, Message, MessageStatus, Next, Store, Targets, TriggerType,
};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{
    herald_command, herald_stdout, HeraldProcess, Options, TestApp, TestDatabase, TEST_SECRET,
};

const PAYLOAD: &str = r#"{"member":{"email":"ada@example.com"}}"#;

#[tokio::test]
async fn payload_retention_period_is_checked_and_sets_the_expiry() {
    let app = TestApp::spawn().await;
    let app_id = app.create_app("Retained").await;
    let path = format!("/api/v1/app/{app_id}/msg");
    for days in [3, 4, 91] {
        let (status, body) = app
            .post_json(
                &path,
                json!({"eventType": "a", "payload": {}, "payloadRetentionPeriod": days}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{days}: {body}");
        assert_eq!(
            body["detail"][0]["loc"],
            json!(["body", "payloadRetentionPeriod"]),
            "{body}"
        );
    }

    let five = app
        .send(
            &app_id,
            json!({"eventType": "a", "payload": {"k": 1}, "payloadRetentionPeriod": 5}),
        )
        .await;
    let default = app
        .send(&app_id, json!({"eventType": "a", "payload": {"k": 2}}))
        .await;
    let store = app.open_store().await;
    for (msg_id, days) in [(five, 5), (default, 90)] {
        let msg = store.get_message(&app_id, &msg_id).await.unwrap().unwrap();
        assert_eq!(msg.expires_at, Some(msg.created_at + Duration::days(days)));
    }
    drop(store);
    app.stop().await;
}

/// An application `app_1` with one endpoint `ep_1`, made 40 days ago.
async fn seed_app(store: &dyn Store) {
    let long_ago = Utc::now() - Duration::days(40);
    store
        .create_app(&Application {
            id: "app_1".into(),
            org_id: herald::auth::DEFAULT_ORG.into(),
            uid: None,
            name: "Spot".into(),
            metadata: json!({}),
            throttle_rate: None,
            created_at: long_ago,
            updated_at: long_ago,
        })
        .await
        .unwrap();
    let endpoint = Endpoint {
        id: "ep_1".into(),
        app_id: "app_1".into(),
        uid: None,
        url: "https://example.com/hook".into(),
        description: String::new(),
        disabled: false,
        event_types: None,
        channels: None,
        metadata: json!({}),
        headers: BTreeMap::new(),
        throttle_rate: None,
        version: 1,
        date_format: "unix".into(),
        transformation: herald_store::Transformation::default(),
        filters: Vec::new(),
        health: Default::default(),
        created_at: long_ago,
        updated_at: long_ago,
    };
    store.create_endpoint(&endpoint, "whsec_key").await.unwrap();
}

/// A message to `ep_1` made 40 days ago whose payload expires at `expires_at`,
/// with one failed attempt made then, after which its delivery is `next`.
async fn seed_message(store: &dyn Store, id: &str, expires_at: DateTime<Utc>, next: Next) {
    let long_ago = Utc::now() - Duration::days(40);
    let msg = Message {
        id: id.into(),
        app_id: "app_1".into(),
        event_type: "a".into(),
        event_id: None,
        channels: None,
        payload: PAYLOAD.into(),
        created_at: long_ago,
        expires_at: Some(expires_at),
        tags: None,
        deliver_at: None,
        content_type: None,
    };
    store
        .create_message(&msg, &Targets::Matching)
        .await
        .unwrap();
    let attempt = Attempt {
        request_headers: Vec::new(),
        response_headers: Vec::new(),
        id: format!("atmpt_{id}"),
        msg_id: id.into(),
        endpoint_id: "ep_1".into(),
        app_id: "app_1".into(),
        url: "https://example.com/hook".into(),
        status: MessageStatus::Fail,
        response_status_code: 500,
        response: String::new(),
        response_duration_ms: 3,
        trigger_type: TriggerType::Scheduled,
        skipped: None,
        created_at: long_ago,
    };
    store.record_attempt(&attempt, &next).await.unwrap();
}

async fn payload_of(store: &dyn Store, id: &str) -> String {
    store
        .get_message("app_1", id)
        .await
        .unwrap()
        .unwrap()
        .payload
}

/// `herald prune ARGS` on `db`; its one line of output.
async fn prune(db: &TestDatabase, args: &[&str]) -> String {
    let mut cmd = herald_command(db.url(), TEST_SECRET);
    cmd.arg("prune").args(args).env("RUST_LOG", "warn");
    herald_stdout(cmd).await.trim().to_string()
}

/// A delivered message and a still-retrying one, both expired, each with an
/// attempt made 40 days ago.
async fn herald_prune_expunges_delivered_payloads_and_old_attempts(db: TestDatabase) {
    let store = herald::database::open_store(db.url(), false, crate::support::test_keyring())
        .await
        .unwrap();
    seed_app(store.as_ref()).await;
    let expired = Utc::now() - Duration::days(1);
    let retry_at = Utc::now() + Duration::hours(1);
    seed_message(store.as_ref(), "msg_done", expired, Next::Done).await;
    seed_message(
        store.as_ref(),
        "msg_retrying",
        expired,
        Next::RetryAt(retry_at),
    )
    .await;

    // The default keeps attempts 90 days: only the delivered payload goes.
    assert_eq!(prune(&db, &[]).await, "pruned 1 payloads, 0 attempts");
    let shorter = ["--attempt-retention-days", "30"];
    assert_eq!(prune(&db, &shorter).await, "pruned 0 payloads, 2 attempts");
    assert_eq!(prune(&db, &shorter).await, "pruned 0 payloads, 0 attempts");

    assert_eq!(
        payload_of(store.as_ref(), "msg_done").await,
        herald_store::EXPUNGED_PAYLOAD
    );
    assert_eq!(
        payload_of(store.as_ref(), "msg_retrying").await,
        PAYLOAD,
        "a pending delivery keeps its payload"
    );
}

#[tokio::test]
async fn herald_prune_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    herald_prune_expunges_delivered_payloads_and_old_attempts(TestDatabase::sqlite(dir.path()))
        .await;
}

#[tokio::test]
async fn herald_prune_on_postgres() {
    herald_prune_expunges_delivered_payloads_and_old_attempts(TestDatabase::postgres()).await;
}

/// A server with these options on a database seeded by `seed` before it starts.
async fn serve_seeded(options: Options, seed: impl AsyncFnOnce(&dyn Store)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::for_suite(dir.path());
    let store = herald::database::open_store(db.url(), false, crate::support::test_keyring())
        .await
        .unwrap();
    seed_app(store.as_ref()).await;
    seed(store.as_ref()).await;
    drop(store);
    TestApp::spawn_on(dir, db, options).await
}

/// Polls the payload of `id` until it is expunged.
async fn wait_expunged(store: &Arc<dyn Store>, id: &str, within: StdDuration) {
    let mut check = || async {
        (payload_of(store.as_ref(), id).await == herald_store::EXPUNGED_PAYLOAD).then_some(())
    };
    crate::support::eventually(
        within,
        &format!("{id}'s payload to be expunged"),
        &mut check,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_prunes_at_start_up_and_then_every_interval() {
    let options = Options {
        prune_interval: Some(StdDuration::from_secs(1)),
        ..Options::default()
    };
    let expired = Utc::now() - Duration::days(1);
    let soon = Utc::now() + Duration::seconds(4);
    let app = serve_seeded(options, async |store: &dyn Store| {
        seed_message(store, "msg_expired", expired, Next::Done).await;
        seed_message(store, "msg_later", soon, Next::Done).await;
    })
    .await;
    let store = app.open_store().await;
    // The run at start-up takes what had expired by then...
    wait_expunged(&store, "msg_expired", StdDuration::from_secs(20)).await;
    assert_eq!(payload_of(store.as_ref(), "msg_later").await, PAYLOAD);
    // ...and a later run what expired since.
    wait_expunged(&store, "msg_later", StdDuration::from_secs(30)).await;
    drop(store);
    app.stop().await;
}

/// Two seconds with an expired, delivered payload: long enough for the run at
/// start-up and two more at a one-second interval, had there been any.
async fn assert_never_pruned(options: Options) {
    let expired = Utc::now() - Duration::days(1);
    let app = serve_seeded(options, async |store: &dyn Store| {
        seed_message(store, "msg_expired", expired, Next::Done).await;
    })
    .await;
    tokio::time::sleep(StdDuration::from_secs(2)).await;
    let store = app.open_store().await;
    assert_eq!(payload_of(store.as_ref(), "msg_expired").await, PAYLOAD);
    drop(store);
    app.stop().await;
}

/// `herald serve` (the binary: the setting is read from the environment) with
/// this `HERALD_PRUNE_INTERVAL_SECONDS`.
async fn serve_binary(db: &TestDatabase, dir: &std::path::Path, interval: &str) -> HeraldProcess {
    let mut cmd = herald_command(db.url(), TEST_SECRET);
    cmd.arg("serve")
        .env("HERALD_PRUNE_INTERVAL_SECONDS", interval);
    HeraldProcess::spawn(cmd, dir.join(format!("serve-{interval}.log"))).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interval_of_zero_turns_pruning_in_serve_off() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::for_suite(dir.path());
    let store = herald::database::open_store(db.url(), false, crate::support::test_keyring())
        .await
        .unwrap();
    seed_app(store.as_ref()).await;
    let expired = Utc::now() - Duration::days(1);
    seed_message(store.as_ref(), "msg_expired", expired, Next::Done).await;

    let off = serve_binary(&db, dir.path(), "0").await;
    tokio::time::sleep(StdDuration::from_secs(2)).await;
    assert_eq!(payload_of(store.as_ref(), "msg_expired").await, PAYLOAD);
    drop(off);
    // The control: the same server with an interval prunes at start-up.
    let _on = serve_binary(&db, dir.path(), "3600").await;
    wait_expunged(&store, "msg_expired", StdDuration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_only_node_never_prunes() {
    assert_never_pruned(Options {
        role: Role::Api,
        prune_interval: Some(StdDuration::from_secs(1)),
        ..Options::default()
    })
    .await;
}
