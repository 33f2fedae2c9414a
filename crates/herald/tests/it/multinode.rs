//! Many Herald nodes on one PostgreSQL: one API process and three workers, real
//! binaries. A worker is killed with SIGKILL mid-run and another restarted;
//! every accepted message must still reach every subscribed endpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use herald::auth::Keys;
use serde_json::json;
use tokio::process::Command;

use crate::support::{eventually, postgres_database_url, HeraldProcess, Receiver, Reply};

const SECRET: &str = "multinode-test-secret-0123456789";
const MESSAGES: usize = 1500;
const ENDPOINTS: usize = 4;
/// In flight at once in one worker: bounds what a SIGKILL can cut off.
const WORKER_CONCURRENCY: usize = 32;

fn herald(db: &str, role: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_herald"));
    cmd.args(["serve", "--role", role])
        .env("HERALD_LISTEN", "127.0.0.1:0")
        .env("HERALD_DATABASE_URL", db)
        .env("HERALD_SECRET", SECRET)
        .env("HERALD_ALLOW_SUBNETS", "127.0.0.0/8")
        .env("HERALD_RETRY_SCHEDULE", "1,1,1,1,1")
        .env("HERALD_DELIVERY_TIMEOUT_SECONDS", "5")
        .env("HERALD_LEASE_SECONDS", "8")
        .env("HERALD_WORKER_CONCURRENCY", WORKER_CONCURRENCY.to_string())
        .env("RUST_LOG", "info");
    cmd
}

async fn start(db: &str, role: &str, dir: &std::path::Path, name: &str) -> HeraldProcess {
    HeraldProcess::spawn(herald(db, role), dir.join(format!("{name}.log"))).await
}

#[tokio::test(flavor = "multi_thread")]
async fn three_workers_one_api_a_sigkill_and_a_restart_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = postgres_database_url(dir.path());
    let receiver = Receiver::start().await;
    let api = start(&db, "api", dir.path(), "api").await;
    let mut workers = [
        start(&db, "worker", dir.path(), "worker-1").await,
        start(&db, "worker", dir.path(), "worker-2").await,
        start(&db, "worker", dir.path(), "worker-3").await,
    ];
    let token = Keys::new(SECRET.as_bytes()).org_token("org_herald");
    let http = reqwest::Client::new();

    let app: serde_json::Value = http
        .post(api.url("/api/v1/app"))
        .bearer_auth(&token)
        .json(&json!({"name": "Many nodes"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app_id = app["id"].as_str().unwrap().to_string();
    let paths: Vec<String> = (0..ENDPOINTS).map(|i| format!("/ep{i}")).collect();
    for path in &paths {
        // A little latency, so that deliveries are in flight when a node dies.
        receiver.set_default(path, Reply::status(200).delay(Duration::from_millis(5)));
        let status = http
            .post(api.url(&format!("/api/v1/app/{app_id}/endpoint")))
            .bearer_auth(&token)
            .json(&json!({"url": receiver.url(path)}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 201);
    }

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
            let w = &mut workers[1];
            std::process::Command::new("kill")
                .args(["-TERM", &w.pid().to_string()])
                .status()
                .unwrap();
            let exit = tokio::time::timeout(Duration::from_secs(30), w.child.wait())
                .await
                .expect("the worker stops within its grace period")
                .unwrap();
            assert!(exit.success(), "graceful stop exits 0");
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
    let counts = |path: &str| {
        let mut map: BTreeMap<String, usize> = BTreeMap::new();
        for r in receiver.received_on(path) {
            *map.entry(r.header("webhook-id").to_string()).or_default() += 1;
        }
        map
    };
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
