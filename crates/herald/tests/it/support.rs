//! The test harness: [`TestApp`] runs the real server in-process; [`Receiver`]
//! is a recording webhook receiver whose answers a test can script.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use herald::auth::{Keys, DEFAULT_ORG};
use herald::config::{Config, SecretSource};
use herald_core::net::AllowList;
use herald_core::schedule::RetrySchedule;
use secrecy::SecretString;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub const TEST_SECRET: &str = "integration-test-secret-0123456789";

/// Settings a test may change before the server starts.
pub struct Options {
    pub allow_subnets: AllowList,
    pub retry_schedule: RetrySchedule,
    pub delivery_timeout: Duration,
    pub endpoint_concurrency: usize,
    pub worker_concurrency: usize,
    pub max_body_bytes: usize,
    /// Import the built-in Spot catalog at start-up.
    pub seed_catalog: bool,
    /// The HTTP server's timeouts and connection cap.
    pub http_limits: herald::server::Limits,
    pub worker_payload_bytes: usize,
    pub test_rate_per_minute: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            allow_subnets: "127.0.0.0/8,::1/128".parse().unwrap(),
            // Fast retries, so retry tests take seconds, not hours.
            retry_schedule: RetrySchedule::from_delays(vec![
                Duration::from_millis(200),
                Duration::from_millis(200),
                Duration::from_millis(200),
            ])
            .unwrap(),
            delivery_timeout: Duration::from_secs(5),
            endpoint_concurrency: 16,
            worker_concurrency: 256,
            max_body_bytes: 1024 * 1024,
            seed_catalog: false,
            http_limits: herald::server::Limits::default(),
            worker_payload_bytes: 64 * 1024 * 1024,
            test_rate_per_minute: 10,
        }
    }
}

pub struct TestApp {
    pub base_url: String,
    pub addr: SocketAddr,
    /// An organisation token for the default organisation.
    pub token: String,
    pub keys: Keys,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let database_url = database_url(dir.path());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = Config {
            role: herald::config::Role::All,
            listen: addr,
            database_url,
            secret: SecretString::from(TEST_SECRET.to_string()),
            secret_source: SecretSource::Environment,
            sqlite_synchronous_full: false,
            allow_subnets: options.allow_subnets,
            retry_schedule: options.retry_schedule,
            max_body_bytes: options.max_body_bytes,
            delivery_timeout: options.delivery_timeout,
            lease: options.delivery_timeout * 4,
            worker_concurrency: options.worker_concurrency,
            endpoint_concurrency: options.endpoint_concurrency,
            shutdown_grace: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
            seed_catalog: options.seed_catalog,
            catalog_title: "Spot webhook event types".into(),
            attempt_retention: Duration::from_secs(90 * 86_400),
            // The defaults: a first run at start-up, then hourly.
            prune_interval: Some(Duration::from_secs(3600)),
            public_url: None,
            portal_token_ttl: Duration::from_secs(3600),
            http: options.http_limits,
            worker_payload_bytes: options.worker_payload_bytes,
            test_rate_per_minute: std::num::NonZeroU32::new(options.test_rate_per_minute)
                .expect("a positive Test rate"),
        };
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(herald::app::serve(config, listener, shutdown.clone()));
        let keys = Keys::new(TEST_SECRET.as_bytes());
        let app = TestApp {
            base_url: format!("http://{addr}"),
            addr,
            token: keys.org_token(DEFAULT_ORG),
            keys,
            http: reqwest::Client::new(),
            dir,
            shutdown,
            server: Some(server),
        };
        app.wait_healthy().await;
        app
    }

    async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(r) = self.http.get(self.url("/api/v1/health")).send().await {
                if r.status() == StatusCode::NO_CONTENT {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "Herald did not become healthy");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// The official Svix SDK, pointed at this server.
    pub fn svix(&self) -> svix::api::Svix {
        self.svix_with_token(&self.token)
    }

    pub fn svix_with_token(&self, token: &str) -> svix::api::Svix {
        svix::api::Svix::new(
            token.to_string(),
            Some(svix::api::SvixOptions {
                server_url: Some(self.base_url.clone()),
                ..Default::default()
            }),
        )
    }

    /// A raw request with the org token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }

    pub async fn post_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .request(reqwest::Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        split(r).await
    }

    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap();
        split(r).await
    }

    /// Creates an application and returns its id.
    pub async fn create_app(&self, name: &str) -> String {
        let (status, body) = self
            .post_json("/api/v1/app", serde_json::json!({"name": name}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// Creates an endpoint from a JSON body and returns its id.
    pub async fn create_endpoint(&self, app_id: &str, body: Value) -> String {
        let (status, out) = self
            .post_json(&format!("/api/v1/app/{app_id}/endpoint"), body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{out}");
        out["id"].as_str().unwrap().to_string()
    }

    pub async fn endpoint_secret(&self, app_id: &str, endpoint_id: &str) -> String {
        let (status, out) = self
            .get_json(&format!(
                "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{out}");
        out["key"].as_str().unwrap().to_string()
    }

    /// Sends a message and returns its id.
    pub async fn send(&self, app_id: &str, body: Value) -> String {
        let (status, out) = self
            .post_json(&format!("/api/v1/app/{app_id}/msg"), body)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{out}");
        out["id"].as_str().unwrap().to_string()
    }

    /// Polls `check` until it returns Some, or fails the test after `timeout`.
    pub async fn eventually<T, F, Fut>(&self, timeout: Duration, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        eventually(timeout, what, &mut check).await
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The database a test runs on: SQLite in `dir`, or, when
/// `HERALD_TEST_POSTGRES_URL` is set (e.g. `postgres://postgres@127.0.0.1:5432`),
/// a PostgreSQL database named after `dir`.
pub fn database_url(dir: &std::path::Path) -> String {
    if std::env::var_os("HERALD_TEST_POSTGRES_URL").is_none() {
        return format!("sqlite://{}", dir.join("herald.db").display());
    }
    postgres_database_url(dir)
}

/// A PostgreSQL database named after `dir` (created if missing, so a restarted
/// server finds the same one), on `HERALD_TEST_POSTGRES_URL` or the local server.
pub fn postgres_database_url(dir: &std::path::Path) -> String {
    let base = std::env::var("HERALD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_string());
    let base = base.trim_end_matches('/');
    let suffix: String = dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    let name = format!("herald_it_{suffix}");
    let exists = std::process::Command::new("psql")
        .args(["-d", &format!("{base}/postgres"), "-tAc"])
        .arg(format!(
            "SELECT 1 FROM pg_database WHERE datname = '{name}'"
        ))
        .output()
        .expect("psql is needed to create test databases");
    if String::from_utf8_lossy(&exists.stdout).trim() != "1" {
        let created = std::process::Command::new("psql")
            .args(["-d", &format!("{base}/postgres"), "-qc"])
            .arg(format!("CREATE DATABASE {name}"))
            .status()
            .expect("psql is needed to create test databases");
        assert!(created.success(), "cannot create database {name}");
    }
    format!("{base}/{name}")
}

pub async fn split(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, check: &mut F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: &str) -> Reply {
        self.body = body.into();
        self
    }

    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Vec<Received>,
    /// Per path: answers to give first, in order; then `default`.
    scripts: HashMap<String, VecDeque<Reply>>,
    defaults: HashMap<String, Reply>,
}

/// A recording webhook receiver on 127.0.0.1. Every path answers 200 "ok" unless
/// scripted otherwise.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<ReceiverState>>,
    shutdown: CancellationToken,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let shutdown = CancellationToken::new();
        let router = axum::Router::new()
            .fallback(record)
            .with_state(state.clone());
        let stop = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
                .unwrap();
        });
        Receiver {
            addr,
            state,
            shutdown,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Answers the next requests to `path` with these replies, in order.
    pub fn script(&self, path: &str, replies: Vec<Reply>) {
        let mut s = self.state.lock().unwrap();
        s.scripts.entry(path.into()).or_default().extend(replies);
    }

    /// Answers every unscripted request to `path` with `reply`.
    pub fn set_default(&self, path: &str, reply: Reply) {
        self.state
            .lock()
            .unwrap()
            .defaults
            .insert(path.into(), reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    pub fn received_on(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until `path` has received at least `n` requests; returns them.
    pub async fn wait_for(&self, path: &str, n: usize, timeout: Duration) -> Vec<Received> {
        let mut check = || {
            let got = self.received_on(path);
            async move { (got.len() >= n).then_some(got) }
        };
        eventually(timeout, &format!("{n} requests on {path}"), &mut check).await
    }

    pub fn stop(&self) {
        self.shutdown.cancel();
    }
}

async fn record(
    State(state): State<Arc<Mutex<ReceiverState>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let reply = {
        let mut s = state.lock().unwrap();
        s.received.push(Received {
            path: path.clone(),
            headers,
            body,
            at: Instant::now(),
        });
        s.scripts
            .get_mut(&path)
            .and_then(VecDeque::pop_front)
            .or_else(|| s.defaults.get(&path).cloned())
            .unwrap_or_else(|| Reply::status(200).body("ok"))
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap(),
        reply.body.clone(),
    )
        .into_response();
    for (k, v) in &reply.headers {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    response
}

/// The real `herald` binary running as a child process.
pub struct HeraldProcess {
    pub child: tokio::process::Child,
    pub base_url: String,
    pub log: std::path::PathBuf,
}

impl HeraldProcess {
    /// Starts `cmd` (a `herald serve` command), logging stderr to `log`, and
    /// waits for the address line it prints first.
    pub async fn spawn(mut cmd: tokio::process::Command, log: std::path::PathBuf) -> HeraldProcess {
        use tokio::io::{AsyncBufReadExt, BufReader};
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("cannot start the herald binary");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no address line; log:\n{}", read(&log)))
            .unwrap()
            .unwrap_or_else(|| panic!("herald exited at start; log:\n{}", read(&log)));
        let base_url = first
            .strip_prefix("Herald listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_string();
        // Keep draining stdout so that a later print never meets a closed pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        HeraldProcess {
            child,
            base_url,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the server is running")
    }
}

pub fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
