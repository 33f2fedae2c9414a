//! PostgreSQL goes away while Herald runs: the API answers 503 (and says why)
//! while the database is down, Herald reconnects by itself when it is back, and
//! nothing accepted is lost. Its own test binary, because stopping the server
//! would break any other test running beside it.

#[path = "it/support.rs"]
mod support;

use std::time::Duration;

use herald::auth::Keys;
use serde_json::json;
use tokio::process::Command;

use support::{eventually, postgres_database_url, split, HeraldProcess, Receiver};

const SECRET: &str = "pg-restart-test-secret-0123456789";

/// Stops and starts the machine's PostgreSQL cluster; starts it again on drop,
/// so a failing test never leaves the database down.
struct Cluster {
    version: String,
}

impl Cluster {
    fn find() -> Cluster {
        let entries = std::fs::read_dir("/etc/postgresql").expect("a Debian PostgreSQL cluster");
        let version = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .max()
            .expect("a PostgreSQL version directory");
        Cluster { version }
    }

    fn ctl(&self, action: &str) {
        let status = std::process::Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &self.version, "main", action])
            .status()
            .expect("pg_ctlcluster");
        assert!(status.success(), "pg_ctlcluster {action} failed");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &self.version, "main", "start"])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_answers_503_while_postgres_is_away_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let db = postgres_database_url(dir.path());
    let receiver = Receiver::start().await;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_herald"));
    cmd.arg("serve")
        .env("HERALD_LISTEN", "127.0.0.1:0")
        .env("HERALD_DATABASE_URL", &db)
        .env("HERALD_SECRET", SECRET)
        .env("HERALD_ALLOW_SUBNETS", "127.0.0.0/8")
        .env("HERALD_RETRY_SCHEDULE", "1,1,1,1,1,1,1,1,1,1")
        .env("RUST_LOG", "info");
    let herald = HeraldProcess::spawn(cmd, dir.path().join("herald.log")).await;
    let token = Keys::new(SECRET.as_bytes()).org_token("org_herald");
    let http = reqwest::Client::new();
    let post = |path: String, body: serde_json::Value| {
        let req = http
            .post(herald.url(&path))
            .bearer_auth(&token)
            .json(&body)
            .timeout(Duration::from_secs(20));
        async move {
            match req.send().await {
                Ok(r) => split(r).await,
                Err(e) => panic!("Herald did not answer: {e}"),
            }
        }
    };

    let (status, app) = post("/api/v1/app".into(), json!({"name": "Outage"})).await;
    assert_eq!(status, 201, "{app}");
    let app_id = app["id"].as_str().unwrap().to_string();
    let (status, _) = post(
        format!("/api/v1/app/{app_id}/endpoint"),
        json!({"url": receiver.url("/hook")}),
    )
    .await;
    assert_eq!(status, 201);

    let mut accepted = Vec::new();
    for n in 0..10 {
        let (status, msg) = post(
            format!("/api/v1/app/{app_id}/msg"),
            json!({"eventType": "before.outage", "payload": {"n": n}}),
        )
        .await;
        assert_eq!(status, 202, "{msg}");
        accepted.push(msg["id"].as_str().unwrap().to_string());
    }
    receiver
        .wait_for("/hook", 10, Duration::from_secs(20))
        .await;

    let cluster = Cluster::find();
    cluster.ctl("stop");
    // While the database is away, the API refuses with 503 and says why.
    let (status, body) = post(
        format!("/api/v1/app/{app_id}/msg"),
        json!({"eventType": "during.outage", "payload": {}}),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "unavailable");
    let health = http.get(herald.url("/api/v1/health")).send().await.unwrap();
    assert_eq!(health.status(), 503);

    cluster.ctl("start");
    // Herald reconnects by itself.
    let mut healthy = || {
        let req = http.get(herald.url("/api/v1/health")).send();
        async move { req.await.ok().filter(|r| r.status() == 204).map(|_| ()) }
    };
    eventually(
        Duration::from_secs(60),
        "Herald to be healthy again",
        &mut healthy,
    )
    .await;
    for n in 0..10 {
        let (status, msg) = post(
            format!("/api/v1/app/{app_id}/msg"),
            json!({"eventType": "after.outage", "payload": {"n": n}}),
        )
        .await;
        assert_eq!(status, 202, "{msg}");
        accepted.push(msg["id"].as_str().unwrap().to_string());
    }
    let got = receiver
        .wait_for("/hook", 20, Duration::from_secs(60))
        .await;
    for id in &accepted {
        assert!(
            got.iter().any(|r| r.header("webhook-id") == id),
            "{id} was accepted but never delivered"
        );
    }
    drop(cluster);
}
