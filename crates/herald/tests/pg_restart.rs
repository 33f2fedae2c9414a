//! PostgreSQL goes away under a running Herald, with deliveries pending and in
//! flight and messages arriving: the API answers 503 (and says why) while the
//! database is down, Herald reconnects by itself when it is back, and every
//! message it accepted arrives. The database is a cluster of the test's own
//! (initdb on a temporary directory and port), never the machine's; its own
//! test binary all the same, so that nothing else shares the outage.

#[path = "it/support.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald::auth::Keys;
use serde_json::json;

use support::{
    eventually, herald_command, mint_token, split, HeraldProcess, Receiver, Reply, Scope,
};

const SECRET: &str = "pg-restart-test-secret-0123456789";

/// A PostgreSQL cluster of this test's own: initdb in a temporary directory,
/// on a free port of 127.0.0.1, trust authentication. Stopped (immediately)
/// and deleted on drop, however the test ends.
struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            // initdb refuses to run as root: the cluster belongs to postgres.
            let owner = user_ids("postgres");
            std::os::unix::fs::chown(dir.path(), Some(owner.0), Some(owner.1)).unwrap();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Cluster {
            bin: postgres_bin(),
            dir,
            port,
        };
        let data = cluster.data();
        cluster.run("initdb", &["-D", &data, "-U", "postgres", "--auth=trust"]);
        cluster.pg_ctl("start");
        cluster
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// `pg_ctl start` (waiting until it accepts connections) or `stop` (fast:
    /// sessions are cut, as when the database goes away under its clients).
    fn pg_ctl(&self, action: &str) {
        let log = self.dir.path().join("postgres.log").display().to_string();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let data = self.data();
        let mut args = vec!["-D", &data, "-l", &log, "-w", "-t", "60"];
        match action {
            "start" => args.extend(["-o", &options, "start"]),
            _ => args.extend(["-m", "fast", "stop"]),
        }
        self.run("pg_ctl", &args);
    }

    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let out = if is_root() {
            StdCommand::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&program)
                .args(args)
                .output()
        } else {
            StdCommand::new(&program).args(args).output()
        }
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        assert!(
            out.status.success(),
            "{} {args:?}: {}{}",
            program.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let program = self.bin.join("pg_ctl");
        let args = ["-D", &data, "-m", "immediate", "stop"];
        let _ = if is_root() {
            StdCommand::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&program)
                .args(args)
                .output()
        } else {
            StdCommand::new(&program).args(args).output()
        };
    }
}

fn is_root() -> bool {
    StdCommand::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn user_ids(user: &str) -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = StdCommand::new("id").args([flag, user]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    (id("-u"), id("-g"))
}

/// The newest installed PostgreSQL's programs (Debian keeps initdb and
/// pg_ctl out of PATH).
fn postgres_bin() -> PathBuf {
    let versions = Path::new("/usr/lib/postgresql");
    std::fs::read_dir(versions)
        .expect(
            "PostgreSQL's server programs under /usr/lib/postgresql (scripts/test installs them)",
        )
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .max()
        .map(|v| versions.join(v.to_string()).join("bin"))
        .expect("a PostgreSQL version under /usr/lib/postgresql")
}

/// Posts a message every few milliseconds until `stop`; keeps the ids the API
/// accepted and counts the 503s.
struct Traffic {
    accepted: Arc<Mutex<Vec<String>>>,
    unavailable: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Traffic {
    fn start(url: String, token: String) -> Traffic {
        let accepted: Arc<Mutex<Vec<String>>> = Arc::default();
        let unavailable: Arc<AtomicUsize> = Arc::default();
        let stop: Arc<AtomicBool> = Arc::default();
        let (a, u, s) = (accepted.clone(), unavailable.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut n = 0;
            while !s.load(Ordering::Relaxed) {
                n += 1;
                let body = json!({"eventType": "traffic", "payload": {"n": n}});
                let sent = http.post(&url).bearer_auth(&token).json(&body);
                let sent = sent.timeout(Duration::from_secs(20)).send().await;
                let (status, body) = split(sent.expect("Herald answers")).await;
                match status.as_u16() {
                    202 => a.lock().unwrap().push(body["id"].as_str().unwrap().into()),
                    503 => {
                        u.fetch_add(1, Ordering::Relaxed);
                    }
                    other => panic!("a send got {other}: {body}"),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Traffic {
            accepted,
            unavailable,
            stop,
            task,
        }
    }

    fn accepted(&self) -> BTreeSet<String> {
        self.accepted.lock().unwrap().iter().cloned().collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_accepted_is_lost_when_postgres_stops_under_load() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start().await;
    // Slow answers and four at a time: deliveries queue up and are in flight.
    receiver.set_default(
        "/hook",
        Reply::status(200).delay(Duration::from_millis(300)),
    );
    let mut cmd = herald_command(&cluster.url(), SECRET);
    cmd.arg("serve")
        .env("HERALD_ENDPOINT_CONCURRENCY", "4")
        .env("HERALD_DELIVERY_TIMEOUT_SECONDS", "3")
        .env("HERALD_LEASE_SECONDS", "6")
        .env("HERALD_RETRY_SCHEDULE", "1,1,1,1,1,1,1,1,1,1");
    let herald = HeraldProcess::spawn(cmd, dir.path().join("herald.log")).await;
    let token = mint_token(
        &Keys::new(SECRET.as_bytes()),
        Scope::Org("org_herald"),
        None,
    );
    let app_id = app_with_endpoint(&herald, &token, &receiver.url("/hook")).await;
    let traffic = Traffic::start(
        herald.url(&format!("/api/v1/app/{app_id}/msg")),
        token.clone(),
    );

    let mut backlog = || {
        let (accepted, delivered) = (traffic.accepted(), delivered(&receiver));
        async move { (accepted.len() >= delivered.len() + 10 && delivered.len() >= 3).then_some(()) }
    };
    eventually(
        Duration::from_secs(60),
        "a backlog of deliveries",
        &mut backlog,
    )
    .await;
    cluster.pg_ctl("stop");
    let (pending, in_flight_at_stop) = (traffic.accepted().len(), delivered(&receiver).len());
    eprintln!("pg_restart: stopped with {pending} accepted, {in_flight_at_stop} delivered");

    // While the database is away, the API refuses with 503 and says why.
    let http = reqwest::Client::new();
    let during = http
        .post(herald.url(&format!("/api/v1/app/{app_id}/msg")))
        .bearer_auth(&token)
        .json(&json!({"eventType": "during.outage", "payload": {}}));
    let (status, body) = split(during.send().await.unwrap()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "unavailable");
    let health = http.get(herald.url("/api/v1/health")).send().await.unwrap();
    assert_eq!(health.status(), 503);
    tokio::time::sleep(Duration::from_secs(3)).await;

    cluster.pg_ctl("start");
    let refused = traffic.unavailable.load(Ordering::Relaxed);
    let before = traffic.accepted().len();
    let mut more = || {
        let n = traffic.accepted().len();
        async move { (n >= before + 20).then_some(()) }
    };
    eventually(Duration::from_secs(60), "sends accepted again", &mut more).await;
    traffic.stop.store(true, Ordering::Relaxed);
    let accepted_so_far = traffic.accepted.clone();
    traffic.task.await.unwrap();
    let accepted: BTreeSet<String> = accepted_so_far.lock().unwrap().iter().cloned().collect();
    assert!(refused > 0, "no send arrived during the outage");

    let mut all = || {
        let got = delivered(&receiver);
        let missing = accepted.iter().filter(|id| !got.contains(*id)).count();
        async move { (missing == 0).then_some(()) }
    };
    eventually(Duration::from_secs(120), "every accepted message", &mut all).await;
    eprintln!(
        "pg_restart: {} accepted, {refused} refused with 503, all delivered",
        accepted.len()
    );
    drop(cluster);
}

/// The webhook-ids that reached the receiver.
fn delivered(receiver: &Receiver) -> BTreeSet<String> {
    receiver
        .received_on("/hook")
        .iter()
        .map(|r| r.header("webhook-id").to_string())
        .collect()
}

async fn app_with_endpoint(herald: &HeraldProcess, token: &str, url: &str) -> String {
    let http = reqwest::Client::new();
    let post = |path: String, body: serde_json::Value| {
        let req = http.post(herald.url(&path)).bearer_auth(token).json(&body);
        async move { split(req.send().await.unwrap()).await }
    };
    let (status, app) = post("/api/v1/app".into(), json!({"name": "Outage"})).await;
    assert_eq!(status, 201, "{app}");
    let app_id = app["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/app/{app_id}/endpoint");
    let (status, ep) = post(path, json!({"url": url})).await;
    assert_eq!(status, 201, "{ep}");
    app_id
}
