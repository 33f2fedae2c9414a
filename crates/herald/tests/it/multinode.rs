//! Many Herald nodes on one PostgreSQL: one API process and three workers, real
//! binaries. A worker is killed with SIGKILL mid-run and another restarted;
//! every accepted message must still reach every subscribed endpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use herald::auth::Keys;
use serde_json::json;
use tokio::process::Command;

use crate::support::{
    eventually, herald_command, mint_token, HeraldProcess, Receiver, Reply, Scope, TestDatabase,
};

const SECRET: &str = "multinode-test-secret-0123456789";
const MESSAGES: usize = 1500;
const ENDPOINTS: usize = 4;
/// In flight at once in one worker: bounds what a SIGKILL can cut off.
const WORKER_CONCURRENCY: usize = 32;

fn herald(db: &str, role: &str) -> Command {
    let mut cmd = herald_command(db, SECRET);
    cmd.args(["serve", "--role", role])
        .env("HERALD_RETRY_SCHEDULE", "1,1,1,1,1")
        .env("HERALD_DELIVERY_TIMEOUT_SECONDS", "5")
        .env("HERALD_LEASE_SECONDS", "8")
        .env("HERALD_WORKER_CONCURRENCY", WORKER_CONCURRENCY.to_string());
    cmd
}

fn org_token() -> String {
    mint_token(
        &Keys::new(SECRET.as_bytes()),
        Scope::Org("org_herald"),
        None,
    )
}

async fn start(db: &str, role: &str, dir: &std::path::Path, name: &str) -> HeraldProcess {
    HeraldProcess::spawn(herald(db, role), dir.join(format!("{name}.log"))).await
}

/// An application with one endpoint per receiver path, made through `api`;
/// returns its id and the endpoints' ids.
async fn app_with_endpoints(
    api: &HeraldProcess,
    receiver: &Receiver,
    paths: &[&str],
) -> (String, Vec<String>) {
    let (http, token) = (reqwest::Client::new(), org_token());
    let post = |path: String, body: serde_json::Value| {
        let req = http.post(api.url(&path)).bearer_auth(&token).json(&body);
        async move { req.send().await.unwrap() }
    };
    let r = post("/api/v1/app".into(), json!({"name": "Many nodes"})).await;
    assert_eq!(r.status(), 201);
    let app: serde_json::Value = r.json().await.unwrap();
    let app_id = app["id"].as_str().unwrap().to_string();
    let mut endpoints = Vec::new();
    for path in paths {
        let body = json!({"url": receiver.url(path)});
        let r = post(format!("/api/v1/app/{app_id}/endpoint"), body).await;
        assert_eq!(r.status(), 201);
        let ep: serde_json::Value = r.json().await.unwrap();
        endpoints.push(ep["id"].as_str().unwrap().to_string());
    }
    (app_id, endpoints)
}

/// How often each webhook-id reached `path`.
fn counts(receiver: &Receiver, path: &str) -> BTreeMap<String, usize> {
    let mut map: BTreeMap<String, usize> = BTreeMap::new();
    for r in receiver.received_on(path) {
        *map.entry(r.header("webhook-id").to_string()).or_default() += 1;
    }
    map
}

/// SIGTERM, and the exit within the grace period, with status 0.
async fn stop_gracefully(worker: &mut HeraldProcess) {
    std::process::Command::new("kill")
        .args(["-TERM", &worker.pid().to_string()])
        .status()
        .unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(30), worker.child.wait())
        .await
        .expect("the worker stops within its grace period")
        .unwrap();
    assert!(exit.success(), "graceful stop exits 0");
}

/// A worker that sends at most two deliveries at once to each endpoint.
async fn start_narrow_worker(db: &str, dir: &std::path::Path, name: &str) -> HeraldProcess {
    let mut cmd = herald(db, "worker");
    cmd.env("HERALD_ENDPOINT_CONCURRENCY", "2");
    HeraldProcess::spawn(cmd, dir.join(format!("{name}.log"))).await
}

#[tokio::test(flavor = "multi_thread")]
async fn three_workers_one_api_a_sigkill_and_a_restart_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::postgres();
    let db = database.url().to_string();
    let receiver = Receiver::start().await;
    let api = start(&db, "api", dir.path(), "api").await;
    let mut workers = [
        start(&db, "worker", dir.path(), "worker-1").await,
        start(&db, "worker", dir.path(), "worker-2").await,
        start(&db, "worker", dir.path(), "worker-3").await,
    ];
    let token = org_token();
    let http = reqwest::Client::new();
    let paths: Vec<String> = (0..ENDPOINTS).map(|i| format!("/ep{i}")).collect();
    for path in &paths {
        // A little latency, so that deliveries are in flight when a node dies.
        receiver.set_default(path, Reply::status(200).delay(Duration::from_millis(5)));
    }
    let path_refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let (app_id, _) = app_with_endpoints(&api, &receiver, &path_refs).await;

    // Send every message (16 at a time); keep the ids the API accepted.
    let url = api.url(&format!("/api/v1/app/{app_id}/msg"));
    let limit = Arc::new(tokio::sync::Semaphore::new(16));
    let mut sends = Vec::new();
    for n in 0..MESSAGES {
        let permit = limit.clone().acquire_owned().await.unwrap();
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        sends.push(tokio::spawn(async move {
            let _permit = permit;
            let r = http
                .post(&url)
                .bearer_auth(&token)
                .json(&json!({"eventType": "load.test", "payload": {"n": n}}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
            let body: serde_json::Value = r.json().await.unwrap();
            body["id"].as_str().unwrap().to_string()
        }));
        if n == MESSAGES / 3 {
            // Mid-run: one worker dies without a word...
            workers[0].child.kill().await.unwrap();
        }
        if n == MESSAGES / 2 {
            // ...and another is restarted gracefully.
            stop_gracefully(&mut workers[1]).await;
            workers[1] = start(&db, "worker", dir.path(), "worker-2b").await;
        }
    }
    let mut accepted = BTreeSet::new();
    for s in sends {
        accepted.insert(s.await.unwrap());
    }
    assert_eq!(accepted.len(), MESSAGES);

    // Every accepted message reaches every endpoint (a killed worker's leases
    // expire after HERALD_LEASE_SECONDS and another worker takes them over).
    let counts = |path: &str| counts(&receiver, path);
    let mut check = || {
        let missing: usize = paths
            .iter()
            .map(|p| {
                let got = counts(p);
                accepted.iter().filter(|id| !got.contains_key(*id)).count()
            })
            .sum();
        async move { (missing == 0).then_some(()) }
    };
    eventually(
        Duration::from_secs(120),
        "every accepted message at every endpoint",
        &mut check,
    )
    .await;

    let mut duplicates = 0;
    for p in &paths {
        let got = counts(p);
        assert!(
            got.keys().all(|id| accepted.contains(id)),
            "only accepted ids arrive"
        );
        duplicates += got.values().filter(|n| **n > 1).count();
    }
    eprintln!(
        "multinode: {} deliveries to {ENDPOINTS} endpoints by 3 workers; {duplicates} delivered more than once",
        MESSAGES * ENDPOINTS
    );
    // Only what the killed worker had in flight (or had claimed) may repeat.
    assert!(
        duplicates <= WORKER_CONCURRENCY + 64,
        "{duplicates} duplicates: more than one worker's in-flight deliveries"
    );
}

/// An endpoint disabled or re-pointed through the API node stops receiving
/// from every worker at once: a claimed delivery re-reads its endpoint just
/// before it is sent, so only requests already under way go out as they were.
/// The documented bound is 200 ms (plus those requests); the test allows a
/// second, five times that, for a loaded machine: an edit that never reached
/// the workers would leave hundreds of queued deliveries going out late.
/// The workers start after the messages are queued, so each claims a batch
/// larger than it may send at once: those claimed deliveries wait for their
/// endpoint's slot, and are sent after the edit.
#[tokio::test(flavor = "multi_thread")]
async fn edits_through_one_node_reach_every_worker_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::postgres();
    let db = database.url().to_string();
    let receiver = Receiver::start().await;
    let api = start(&db, "api", dir.path(), "api").await;
    let token = org_token();
    let http = reqwest::Client::new();
    let post = |path: String, body: serde_json::Value| {
        http.post(api.url(&path))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    // Slow receivers keep a queue of claimed deliveries waiting for their slot.
    let paths = ["/disabled", "/before-move"];
    for path in paths {
        receiver.set_default(path, Reply::status(200).delay(Duration::from_secs(1)));
    }
    let (app_id, endpoints) = app_with_endpoints(&api, &receiver, &paths).await;
    for n in 0..400 {
        let r = post(
            format!("/api/v1/app/{app_id}/msg"),
            json!({"eventType": "edit.test", "payload": {"n": n}}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 202);
    }
    let _workers = [
        start_narrow_worker(&db, dir.path(), "worker-1").await,
        start_narrow_worker(&db, dir.path(), "worker-2").await,
    ];
    receiver
        .wait_for("/disabled", 4, Duration::from_secs(30))
        .await;
    receiver
        .wait_for("/before-move", 4, Duration::from_secs(30))
        .await;

    let edited_at = std::time::Instant::now();
    for (id, change) in [
        (&endpoints[0], json!({"disabled": true})),
        (&endpoints[1], json!({"url": receiver.url("/after-move")})),
    ] {
        let r = http
            .patch(api.url(&format!("/api/v1/app/{app_id}/endpoint/{id}")))
            .bearer_auth(&token)
            .json(&change)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // The re-pointed endpoint keeps receiving, at its new URL.
    receiver
        .wait_for("/after-move", 1, Duration::from_secs(30))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let bound = edited_at + Duration::from_secs(1);
    for path in ["/disabled", "/before-move"] {
        let got = receiver.received_on(path);
        let late = got.iter().filter(|r| r.at > bound).count();
        assert_eq!(
            late, 0,
            "{late} requests reached {path} more than 1 s after the edit"
        );
        assert!(
            got.len() < 400,
            "{path} got everything: the edit changed nothing"
        );
    }
}
