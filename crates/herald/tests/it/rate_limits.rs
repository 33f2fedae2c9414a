//! `throttleRate` is enforced: 50 messages to an endpoint limited to 5/s
//! arrive over at least 9 s with no one-second window over 6, while an
//! endpoint without a limit beside it is served at once — in one process, and
//! with two worker processes on one PostgreSQL.

use std::time::{Duration, Instant};

use herald::auth::Keys;
use serde_json::json;

use crate::support::{
    herald_command, mint_token, HeraldProcess, Receiver, Scope, TestApp, TestDatabase,
};

const MESSAGES: usize = 50;
const RATE: u64 = 5;
const WAIT: Duration = Duration::from_secs(60);

/// The arrival spread and the most arrivals in any one-second window.
fn spread_and_peak(arrivals: &[Instant]) -> (Duration, usize) {
    let mut at = arrivals.to_vec();
    at.sort();
    let spread = at[at.len() - 1] - at[0];
    let peak = (0..at.len())
        .map(|i| {
            at[i..]
                .iter()
                .take_while(|t| **t - at[i] < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    (spread, peak)
}

/// Sends the messages through `post`, then checks both receivers' paths.
async fn check_pacing(receiver: &Receiver, started: Instant) {
    let free = receiver.wait_for("/free", MESSAGES, WAIT).await;
    let free_took = free.iter().map(|r| r.at).max().unwrap() - started;
    let limited = receiver.wait_for("/limited", MESSAGES, WAIT).await;
    let arrivals: Vec<Instant> = limited.iter().map(|r| r.at).collect();
    let (spread, peak) = spread_and_peak(&arrivals);
    println!(
        "limited to {RATE}/s: {MESSAGES} arrived over {spread:?}, at most {peak} in one second; \
         unlimited: all {MESSAGES} within {free_took:?}"
    );
    assert!(
        spread >= Duration::from_secs(9),
        "spread {spread:?} is too short for {RATE}/s"
    );
    assert!(peak <= 6, "{peak} arrivals in one second at {RATE}/s");
    assert!(
        free_took < Duration::from_secs(5),
        "the unlimited endpoint waited: {free_took:?}"
    );
    // Nothing dropped, nothing twice.
    let mut ids: Vec<String> = limited
        .iter()
        .map(|r| r.header("webhook-id").to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), MESSAGES);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limited_endpoint_is_paced_and_the_others_are_not() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Design Club").await;
    app.create_endpoint(
        &app_id,
        json!({"url": receiver.url("/limited"), "throttleRate": RATE}),
    )
    .await;
    app.create_endpoint(&app_id, json!({"url": receiver.url("/free")}))
        .await;
    let started = Instant::now();
    for i in 0..MESSAGES {
        app.send(&app_id, json!({"eventType": "a", "payload": {"n": i}}))
            .await;
    }
    check_pacing(&receiver, started).await;
    app.stop().await;
}

const SECRET: &str = "rate-limit-test-secret-0123456789";

fn node(db: &str, role: &str) -> tokio::process::Command {
    let mut cmd = herald_command(db, SECRET);
    cmd.args(["serve", "--role", role]);
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rate_limit_holds_across_two_worker_nodes_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::postgres();
    let db = database.url().to_string();
    let receiver = Receiver::start().await;
    let api = HeraldProcess::spawn(node(&db, "api"), dir.path().join("api.log")).await;
    let _workers = [
        HeraldProcess::spawn(node(&db, "worker"), dir.path().join("w1.log")).await,
        HeraldProcess::spawn(node(&db, "worker"), dir.path().join("w2.log")).await,
    ];
    let token = mint_token(
        &Keys::new(SECRET.as_bytes()),
        Scope::Org("org_herald"),
        None,
    );
    let http = reqwest::Client::new();
    let post = |path: String, body: serde_json::Value| {
        let req = http.post(api.url(&path)).bearer_auth(&token).json(&body);
        async move {
            let r = req.send().await.unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    let app = post("/api/v1/app".into(), json!({"name": "Paced"})).await;
    let app_id = app["id"].as_str().unwrap().to_string();
    post(
        format!("/api/v1/app/{app_id}/endpoint"),
        json!({"url": receiver.url("/limited"), "rateLimit": RATE}),
    )
    .await;
    post(
        format!("/api/v1/app/{app_id}/endpoint"),
        json!({"url": receiver.url("/free")}),
    )
    .await;
    let started = Instant::now();
    for i in 0..MESSAGES {
        post(
            format!("/api/v1/app/{app_id}/msg"),
            json!({"eventType": "a", "payload": {"n": i}}),
        )
        .await;
    }
    check_pacing(&receiver, started).await;
}
