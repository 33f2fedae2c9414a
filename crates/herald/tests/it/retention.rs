//! Retention: `payloadRetentionPeriod` is checked and sets the message's expiry;
//! `herald prune` expunges expired payloads (never a pending delivery's) and
//! deletes old attempts, and says how many.

use std::collections::BTreeMap;
use std::process::Command;

use chrono::{Duration, Utc};
use herald_store::{
    Application, Attempt, Endpoint, Message, MessageStatus, Next, Targets, TriggerType,
};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{database_url, TestApp, TEST_SECRET};

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
    let store = herald::app::open_store(
        &database_url(app.dir.path()),
        false,
        crate::support::test_keyring(),
    )
    .await
    .unwrap();
    for (msg_id, days) in [(five, 5), (default, 90)] {
        let msg = store.get_message(&app_id, &msg_id).await.unwrap().unwrap();
        assert_eq!(msg.expires_at, Some(msg.created_at + Duration::days(days)));
    }
    drop(store);
    app.stop().await;
}

fn herald(db: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .env("HERALD_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("HERALD_SECRET", TEST_SECRET)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "herald failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn herald_prune_expunges_delivered_payloads_and_old_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let url = format!("sqlite://{}", db.display());
    let now = Utc::now();
    let long_ago = now - Duration::days(40);

    // Seeded through the store: an application with one endpoint; a delivered
    // message and a still-retrying one, both expired, each with an attempt
    // made 40 days ago.
    let store = herald::app::open_store(&url, false, crate::support::test_keyring())
        .await
        .unwrap();
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
        date_format: "unix".into(),
        created_at: long_ago,
        updated_at: long_ago,
    };
    store.create_endpoint(&endpoint, "whsec_key").await.unwrap();
    let payload = r#"{"member":{"email":"ada@example.com"}}"#;
    for (id, next) in [
        ("msg_done", Next::Done),
        ("msg_retrying", Next::RetryAt(now + Duration::hours(1))),
    ] {
        let msg = Message {
            id: id.into(),
            app_id: "app_1".into(),
            event_type: "a".into(),
            event_id: None,
            channels: None,
            payload: payload.into(),
            created_at: long_ago,
            expires_at: Some(now - Duration::days(1)),
        };
        store
            .create_message(&msg, &Targets::Matching)
            .await
            .unwrap();
        let attempt = Attempt {
            id: format!("atmpt_{id}"),
            msg_id: id.into(),
            endpoint_id: "ep_1".into(),
            app_id: "app_1".into(),
            url: endpoint.url.clone(),
            status: MessageStatus::Fail,
            response_status_code: 500,
            response: String::new(),
            response_duration_ms: 3,
            trigger_type: TriggerType::Scheduled,
            created_at: long_ago,
        };
        store.record_attempt(&attempt, &next).await.unwrap();
    }

    // The default keeps attempts 90 days: only the delivered payload goes.
    let first = herald(&db, &["prune"]);
    assert_eq!(first.trim(), "pruned 1 payloads, 0 attempts");
    let shorter = herald(&db, &["prune", "--attempt-retention-days", "30"]);
    assert_eq!(shorter.trim(), "pruned 0 payloads, 2 attempts");
    let again = herald(&db, &["prune", "--attempt-retention-days", "30"]);
    assert_eq!(again.trim(), "pruned 0 payloads, 0 attempts");

    let get = |id: &'static str| {
        let store = store.clone();
        async move { store.get_message("app_1", id).await.unwrap().unwrap() }
    };
    assert_eq!(get("msg_done").await.payload, "{}");
    assert_eq!(
        get("msg_retrying").await.payload,
        payload,
        "a pending delivery keeps its payload"
    );
}
