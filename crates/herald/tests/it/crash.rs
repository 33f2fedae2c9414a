//! The real `herald` binary as a child process: killed with SIGKILL under load,
//! stopped with SIGTERM mid-delivery, and restarted on the same database; plus
//! `herald token create`. Every message the API accepted (202) must reach its
//! endpoint, with its original `webhook-id`, after the restart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald::auth::Keys;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{
    eventually, herald_command, herald_stdout, mint_token, read, split, HeraldProcess as Server,
    Receiver, Reply, Scope, TestDatabase,
};

const SECRET: &str = "crash-test-secret-0123456789abcdef";

/// Deliveries one worker claims ahead of sending, at the default endpoint
/// concurrency (16) times four: what a SIGKILL can leave leased and unrecorded.
const CLAIMED_AHEAD: usize = 64;

impl Server {
    /// Starts `herald serve` on `db`; `run` numbers the log file in `dir`.
    async fn start(db: &TestDatabase, dir: &Path, run: u32, extra_env: &[(&str, &str)]) -> Server {
        let mut cmd = herald_command(db.url(), SECRET);
        // A short lease: on PostgreSQL a killed process's leases are left to
        // expire (other nodes may hold theirs), and the test waits for them.
        cmd.arg("serve")
            .env("HERALD_RETRY_SCHEDULE", "1")
            .env("HERALD_DELIVERY_TIMEOUT_SECONDS", "5")
            .env("HERALD_LEASE_SECONDS", "10")
            .envs(extra_env.iter().copied());
        Server::spawn(cmd, dir.join(format!("herald-{run}.log"))).await
    }
}

fn org_token() -> String {
    mint_token(
        &Keys::new(SECRET.as_bytes()),
        Scope::Org("org_herald"),
        None,
    )
}

async fn post(
    http: &reqwest::Client,
    server: &Server,
    token: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let r = http
        .post(server.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    split(r).await
}

async fn get(
    http: &reqwest::Client,
    server: &Server,
    token: &str,
    path: &str,
) -> (StatusCode, Value) {
    let r = http
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    split(r).await
}

/// Creates an app with one endpoint at `url`; returns the app id.
async fn app_with_endpoint(http: &reqwest::Client, server: &Server, url: &str) -> String {
    let token = org_token();
    let (s, app) = post(
        http,
        server,
        &token,
        "/api/v1/app",
        json!({"name": "Crash"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{app}");
    let app_id = app["id"].as_str().unwrap().to_string();
    let (s, ep) = post(
        http,
        server,
        &token,
        &format!("/api/v1/app/{app_id}/endpoint"),
        json!({"url": url}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{ep}");
    app_id
}

/// How often each webhook-id reached `path`.
fn counts(receiver: &Receiver, path: &str) -> BTreeMap<String, usize> {
    let mut map = BTreeMap::new();
    for r in receiver.received_on(path) {
        *map.entry(r.header("webhook-id").to_string()).or_default() += 1;
    }
    map
}

/// Waits until every id in `accepted` has reached `path`.
async fn wait_all_delivered(receiver: &Receiver, path: &str, accepted: &BTreeSet<String>) {
    let mut check = || {
        let got = counts(receiver, path);
        let missing = accepted.iter().filter(|id| !got.contains_key(*id)).count();
        async move { (missing == 0).then_some(()) }
    };
    eventually(
        Duration::from_secs(90),
        &format!(
            "all {} accepted messages to be delivered after the restart",
            accepted.len()
        ),
        &mut check,
    )
    .await;
}

/// Sends `n` messages to `url`, `concurrency` at a time, and records the id of
/// every one the API accepted (202). Sends after the server died just fail.
fn send_under_load(
    http: &reqwest::Client,
    url: String,
    n: usize,
    concurrency: usize,
) -> (tokio::task::JoinHandle<()>, Arc<Mutex<Vec<String>>>) {
    let accepted: Arc<Mutex<Vec<String>>> = Arc::default();
    let (record, http) = (accepted.clone(), http.clone());
    let sender = tokio::spawn(async move {
        let limit = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let mut tasks = Vec::new();
        for n in 0..n {
            let permit = limit.clone().acquire_owned().await.unwrap();
            let (record, url, http) = (record.clone(), url.clone(), http.clone());
            tasks.push(tokio::spawn(async move {
                let sent = http
                    .post(&url)
                    .bearer_auth(org_token())
                    .json(&json!({"eventType": "load.test", "payload": {"n": n}}))
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await;
                if let Ok(r) = sent {
                    if r.status() == StatusCode::ACCEPTED {
                        if let Ok(body) = r.json::<Value>().await {
                            let id = body["id"].as_str().unwrap().to_string();
                            record.lock().unwrap().push(id);
                        }
                    }
                }
                drop(permit);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    (sender, accepted)
}

const SENDERS: usize = 24;

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_under_load_loses_no_accepted_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::for_suite(dir.path());
    let receiver = Receiver::start().await;
    receiver.set_default(
        "/hook",
        Reply::status(200).delay(Duration::from_millis(200)),
    );
    let http = reqwest::Client::new();
    let mut server = Server::start(&db, dir.path(), 1, &[]).await;
    let app_id = app_with_endpoint(&http, &server, &receiver.url("/hook")).await;
    let url = server.url(&format!("/api/v1/app/{app_id}/msg"));
    let (sender, accepted) = send_under_load(&http, url, 300, SENDERS);

    // Kill once a third has been accepted, deliveries are under way, and some
    // accepted messages still wait for theirs.
    let mut check = || {
        let n = accepted.lock().unwrap().len();
        let delivered = counts(&receiver, "/hook").len();
        async move { (n >= 100 && delivered > 0 && n >= delivered + 20).then_some(()) }
    };
    eventually(Duration::from_secs(90), "load to build up", &mut check).await;
    server.child.kill().await.unwrap();
    sender.await.unwrap();
    let accepted: BTreeSet<String> = accepted.lock().unwrap().iter().cloned().collect();
    let before_restart = counts(&receiver, "/hook");
    eprintln!(
        "sigkill: {} of 300 sends accepted; {} distinct messages had reached the receiver at the kill",
        accepted.len(),
        before_restart.len()
    );

    let server = Server::start(&db, dir.path(), 2, &[]).await;
    wait_all_delivered(&receiver, "/hook", &accepted).await;
    let got = counts(&receiver, "/hook");
    let twice: Vec<(&String, &usize)> = got.iter().filter(|(_, n)| **n > 1).collect();
    let unaccepted: Vec<&String> = got.keys().filter(|id| !accepted.contains(*id)).collect();
    eprintln!(
        "sigkill: all {} accepted messages delivered; {} delivered more than once; \
         {} delivered that were stored but whose 202 was lost to the kill",
        accepted.len(),
        twice.len(),
        unaccepted.len()
    );
    // Only what the killed process had claimed (leased, unrecorded) goes out
    // again, and only once more: it was killed once.
    assert!(twice.len() <= CLAIMED_AHEAD, "{twice:?}");
    assert!(twice.iter().all(|(_, n)| **n == 2), "{twice:?}");
    // A message delivered without a 202 was a send in flight at the kill, and
    // it was stored: delivery never invents a message.
    assert!(unaccepted.len() <= SENDERS, "{unaccepted:?}");
    let token = org_token();
    for id in accepted.iter().take(20).chain(unaccepted) {
        let path = format!("/api/v1/app/{app_id}/msg/{id}");
        let (s, m) = get(&http, &server, &token, &path).await;
        assert_eq!(s, StatusCode::OK, "{id}: {m}");
    }
    eprintln!("(server logs: {})", server.log.display());
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_gracefully_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::for_suite(dir.path());
    let receiver = Receiver::start().await;
    receiver.set_default("/slow", Reply::status(200).delay(Duration::from_secs(1)));
    let http = reqwest::Client::new();
    // At most 16 one-second deliveries are in flight; the grace period is
    // longer than one, so those finish and are recorded before the exit, and
    // the rest (never claimed) wait in the database for the restart.
    let env = [
        ("HERALD_SHUTDOWN_GRACE_SECONDS", "5"),
        ("HERALD_ENDPOINT_CONCURRENCY", "16"),
    ];
    let server = Server::start(&db, dir.path(), 1, &env).await;
    let app_id = app_with_endpoint(&http, &server, &receiver.url("/slow")).await;
    let token = org_token();
    let mut accepted = BTreeSet::new();
    for n in 0..48 {
        let (s, b) = post(
            &http,
            &server,
            &token,
            &format!("/api/v1/app/{app_id}/msg"),
            json!({"eventType": "term.test", "payload": {"n": n}}),
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
        accepted.insert(b["id"].as_str().unwrap().to_string());
    }
    receiver.wait_for("/slow", 1, Duration::from_secs(30)).await;
    stop_with_sigterm(server).await;
    let before_restart = counts(&receiver, "/slow").len();
    eprintln!("sigterm: {before_restart} of 48 messages reached the receiver before the exit");
    // 16 at a time, one second each, five seconds of grace: the exit came
    // with work left, so the restart below has something to prove.
    assert!(
        before_restart < 48,
        "everything was delivered before the exit"
    );

    let _server = Server::start(&db, dir.path(), 2, &env).await;
    wait_all_delivered(&receiver, "/slow", &accepted).await;
    let got = counts(&receiver, "/slow");
    let twice = got.values().filter(|n| **n > 1).count();
    eprintln!("sigterm: all 48 delivered after the restart; {twice} more than once");
    assert_eq!(got.len(), 48);
    // The deliveries in flight at SIGTERM were allowed to finish and were
    // recorded, so the restart did not send them again.
    assert_eq!(twice, 0, "{got:?}");
}

/// SIGTERM, then the exit within 30 s, with status 0.
async fn stop_with_sigterm(mut server: Server) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), server.child.wait())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "herald did not exit after SIGTERM; log:\n{}",
                read(&server.log)
            )
        })
        .unwrap();
    assert!(
        exit.success(),
        "herald exited with {exit:?}; log:\n{}",
        read(&server.log)
    );
}

/// Runs `herald token create` with `args` on `db`; returns the last line of
/// stdout.
async fn token_create(db: &TestDatabase, args: &[&str]) -> String {
    let mut cmd = herald_command(db.url(), SECRET);
    cmd.args(["token", "create"]).args(args);
    let stdout = herald_stdout(cmd).await;
    stdout
        .lines()
        .last()
        .expect("token create printed nothing")
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn token_create_makes_working_org_and_app_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::for_suite(dir.path());
    let http = reqwest::Client::new();
    let server = Server::start(&db, dir.path(), 1, &[]).await;

    let org = token_create(&db, &[]).await;
    let (s, b) = get(&http, &server, &org, "/api/v1/app").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, a) = post(
        &http,
        &server,
        &org,
        "/api/v1/app",
        json!({"name": "A", "uid": "spot-a"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    let (s, b) = post(&http, &server, &org, "/api/v1/app", json!({"name": "B"})).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let b_id = b["id"].as_str().unwrap();

    let scoped = token_create(&db, &["--app", "spot-a"]).await;
    assert_ne!(scoped, org);
    let (s, got) = get(&http, &server, &scoped, "/api/v1/app/spot-a").await;
    assert_eq!(s, StatusCode::OK, "{got}");
    assert_eq!(got["id"], a["id"]);
    let (s, got) = get(&http, &server, &scoped, &format!("/api/v1/app/{b_id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{got}");
    let (s, got) = get(&http, &server, &scoped, "/api/v1/app").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["data"].as_array().unwrap().len(), 1);

    // A token for an application that does not exist is refused at creation.
    let out = herald_command(db.url(), SECRET)
        .args(["token", "create", "--app", "no-such-app"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-app"), "{stderr}");
}
