//! The test harness: [`TestApp`] runs the real server in-process; [`Receiver`]
//! is a recording webhook receiver whose answers a test can script;
//! [`TestDatabase`] is a test's own database, dropped however the test ends;
//! [`herald_command`] and [`HeraldProcess`] run the real binary;
//! [`mint_token`] and [`PortalSession::open`] are the one place each where a
//! test gets an API token or a portal session.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use herald::auth::{Keys, DEFAULT_ORG};
use herald::config::{Config, Role, SecretSource};
use herald::dispatch::client::HostsOverride;
use herald_core::net::AllowList;
use herald_core::schedule::RetrySchedule;
use secrecy::SecretString;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub const TEST_SECRET: &str = "integration-test-secret-0123456789";

/// The keyring `TestApp` seals secrets with: the one a server with
/// `TEST_SECRET` and no `HERALD_ENCRYPTION_KEY` derives.
pub fn test_keyring() -> std::sync::Arc<herald_store::Keyring> {
    std::sync::Arc::new(herald_store::Keyring::new(TEST_SECRET.as_bytes(), &[]))
}

/// Where PostgreSQL is for tests: `HERALD_TEST_POSTGRES_URL`, or the local
/// server (`scripts/test` starts it).
pub fn postgres_base_url() -> String {
    let base = std::env::var("HERALD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_string());
    base.trim_end_matches('/').to_string()
}

/// Whether this run of the suite is the PostgreSQL one.
pub fn suite_on_postgres() -> bool {
    std::env::var_os("HERALD_TEST_POSTGRES_URL").is_some()
}

/// Settings a test may change before the server starts.
pub struct Options {
    pub role: Role,
    pub allow_subnets: AllowList,
    pub retry_schedule: RetrySchedule,
    pub delivery_timeout: Duration,
    /// Default: four delivery timeouts.
    pub lease: Option<Duration>,
    pub endpoint_concurrency: usize,
    pub worker_concurrency: usize,
    pub max_body_bytes: usize,
    pub max_retry_after: Duration,
    /// `None`: no periodic pruning (`HERALD_PRUNE_INTERVAL_SECONDS=0`).
    pub prune_interval: Option<Duration>,
    /// Import the built-in Spot catalog at start-up.
    pub seed_catalog: bool,
    /// Origins that may frame the portal.
    pub portal_frame_ancestors: Vec<String>,
    /// How long a portal link can be opened.
    pub portal_token_ttl: Duration,
    /// Addresses for names, before the system resolver (the server's test seam).
    pub hosts: Option<HostsOverride>,
    /// The HTTP server's timeouts and connection cap.
    pub http_limits: herald::server::Limits,
    pub worker_payload_bytes: usize,
    pub test_rate_per_minute: u32,
    /// What one run of a transformation may use.
    pub transformation_limits: herald_transform::Limits,
    /// What `GET /metrics` asks for.
    pub metrics_token: Option<String>,
    /// How long an endpoint may fail before it is disabled.
    pub endpoint_disable_after: Duration,
}

impl Options {
    /// The defaults, with the built-in Spot catalog imported at start-up.
    pub fn seeded() -> Options {
        Options {
            seed_catalog: true,
            ..Options::default()
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            role: Role::All,
            allow_subnets: "127.0.0.0/8,::1/128".parse().unwrap(),
            // Fast retries, so retry tests take seconds, not hours.
            retry_schedule: RetrySchedule::from_delays(vec![
                Duration::from_millis(200),
                Duration::from_millis(200),
                Duration::from_millis(200),
            ])
            .unwrap(),
            delivery_timeout: Duration::from_secs(5),
            lease: None,
            endpoint_concurrency: 16,
            worker_concurrency: 256,
            max_body_bytes: 1024 * 1024,
            max_retry_after: Duration::from_secs(30),
            // The defaults: a first run at start-up, then hourly.
            prune_interval: Some(Duration::from_secs(3600)),
            seed_catalog: false,
            portal_frame_ancestors: Vec::new(),
            portal_token_ttl: Duration::from_secs(3600),
            hosts: None,
            http_limits: herald::server::Limits::default(),
            worker_payload_bytes: 64 * 1024 * 1024,
            test_rate_per_minute: 10,
            transformation_limits: herald_transform::Limits::default(),
            metrics_token: None,
            endpoint_disable_after: Duration::from_secs(5 * 86_400),
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
    /// Declared last: dropped after the server was told to stop.
    pub db: TestDatabase,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(Options::default()).await
    }

    /// A server with the built-in Spot catalog imported at start-up.
    pub async fn seeded() -> TestApp {
        TestApp::spawn_with(Options::seeded()).await
    }

    pub async fn spawn_with(options: Options) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let db = TestDatabase::for_suite(dir.path());
        TestApp::spawn_on(dir, db, options).await
    }

    /// Starts the server on a database the test prepared (`db`, with its
    /// SQLite file, if any, in `dir`).
    pub async fn spawn_on(dir: tempfile::TempDir, db: TestDatabase, options: Options) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = Config {
            role: options.role,
            listen: addr,
            database_url: db.url().to_string(),
            secret: SecretString::from(TEST_SECRET.to_string()),
            secret_source: SecretSource::Environment,
            sqlite_synchronous_full: false,
            keyring: test_keyring(),
            allow_subnets: options.allow_subnets,
            retry_schedule: options.retry_schedule,
            max_body_bytes: options.max_body_bytes,
            delivery_timeout: options.delivery_timeout,
            lease: options.lease.unwrap_or(options.delivery_timeout * 4),
            worker_concurrency: options.worker_concurrency,
            endpoint_concurrency: options.endpoint_concurrency,
            shutdown_grace: Duration::from_secs(5),
            max_retry_after: options.max_retry_after,
            seed_catalog: options.seed_catalog,
            catalog_title: "Spot webhook event types".into(),
            attempt_retention: Duration::from_secs(90 * 86_400),
            prune_interval: options.prune_interval,
            public_url: None,
            portal_token_ttl: options.portal_token_ttl,
            portal_frame_ancestors: options.portal_frame_ancestors,
            hosts_override: options.hosts,
            http: options.http_limits,
            worker_payload_bytes: options.worker_payload_bytes,
            test_rate_per_minute: std::num::NonZeroU32::new(options.test_rate_per_minute)
                .expect("a positive Test rate"),
            transformation_limits: options.transformation_limits,
            transformation_threads: 2,
            metrics_token: options.metrics_token.map(SecretString::from),
            endpoint_disable_after: options.endpoint_disable_after,
            metrics: true,
        };
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(herald::app::serve(config, listener, shutdown.clone()));
        let keys = Keys::new(TEST_SECRET.as_bytes());
        let app = TestApp {
            base_url: format!("http://{addr}"),
            addr,
            token: mint_token(&keys, Scope::Org(DEFAULT_ORG), None),
            keys,
            http: reqwest::Client::new(),
            dir,
            shutdown,
            server: Some(server),
            db,
        };
        app.wait_healthy().await;
        app
    }

    async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
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

    /// A token for `scope`, signed with this server's secret.
    pub fn token_for(&self, scope: Scope<'_>) -> String {
        mint_token(&self.keys, scope, None)
    }

    /// A token scoped to one application of the default organisation.
    pub fn app_token(&self, app_id: &str) -> String {
        self.token_for(Scope::App {
            org: DEFAULT_ORG,
            app: app_id,
        })
    }

    /// The store this server runs on, opened a second time (for seeding and
    /// for reading what the API does not show).
    pub async fn open_store(&self) -> Arc<dyn herald_store::Store> {
        herald::database::open_store(self.db.url(), false, test_keyring())
            .await
            .unwrap()
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

    /// A raw request with `token`, or with none.
    pub async fn call(
        &self,
        token: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        split(req.send().await.unwrap()).await
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

    /// The attempts of a message, oldest first.
    pub async fn attempts(&self, app_id: &str, msg_id: &str) -> Vec<Value> {
        let (status, body) = self
            .get_json(&format!(
                "/api/v1/app/{app_id}/attempt/msg/{msg_id}?limit=250"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let mut list = body["data"].as_array().unwrap().clone();
        list.reverse();
        list
    }

    /// Polls `check` until it returns Some, or fails the test after `timeout`.
    pub async fn eventually<T, F, Fut>(&self, timeout: Duration, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        eventually(timeout, what, &mut check).await
    }

    /// A portal link as `herald portal-link` makes it: one application's
    /// portal, or with `None` the operator view of every application.
    pub async fn cli_portal_link(&self, app_id: Option<&str>) -> String {
        let request = herald::service::links::LinkRequest {
            org_id: DEFAULT_ORG.into(),
            app_id: app_id.map(Into::into),
            read_only: false,
            session_id: None,
            link_ttl: Duration::from_secs(300),
            expiry: None,
            theme: None,
            feature_flags: Vec::new(),
        };
        let token =
            herald::service::links::issue(self.open_store().await.as_ref(), &self.keys, &request)
                .await
                .unwrap();
        herald::service::links::url(&self.base_url, &token)
    }

    /// Stops the server gracefully and starts a new one on the same database
    /// (a restart; the new one listens on a new port).
    pub async fn restart(mut self, options: Options) -> TestApp {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let none = TestDatabase {
            url: String::new(),
            postgres: None,
        };
        let db = std::mem::replace(&mut self.db, none);
        drop(self);
        TestApp::spawn_on(dir, db, options).await
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

/// Who a token speaks for.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    /// The whole organisation.
    Org(&'a str),
    /// One application of an organisation.
    App { org: &'a str, app: &'a str },
}

/// An API token for `scope` (expiring after `ttl` if given), with an id of
/// its own but no record: the one place tests mint one, so a change to what a
/// token is (or how the server learns of it) is made here. (A portal link is
/// a grant in the store: `TestApp::cli_portal_link`, or the API's
/// `portal_link`.)
pub fn mint_token(keys: &Keys, scope: Scope<'_>, ttl: Option<chrono::Duration>) -> String {
    let (org, app) = match scope {
        Scope::Org(org) => (org, None),
        Scope::App { org, app } => (org, Some(app)),
    };
    let now = chrono::Utc::now();
    keys.api_token(&herald_store::ApiToken {
        id: herald_core::id::new_id(herald_core::id::IdPrefix::Token),
        org_id: org.into(),
        app_id: app.map(Into::into),
        name: String::new(),
        created_at: now,
        expires_at: ttl.map(|ttl| now + ttl),
        revoked_at: None,
    })
}

/// A test's database: SQLite in the test's directory, or a fresh PostgreSQL
/// database that is dropped when this value is (whether the test passed or
/// panicked), connections and all.
pub struct TestDatabase {
    url: String,
    /// The server URL (without a database) and the database's name.
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// What the suite runs on: PostgreSQL when `HERALD_TEST_POSTGRES_URL` is
    /// set, SQLite in `dir` otherwise.
    pub fn for_suite(dir: &Path) -> TestDatabase {
        if suite_on_postgres() {
            TestDatabase::postgres()
        } else {
            TestDatabase::sqlite(dir)
        }
    }

    pub fn sqlite(dir: &Path) -> TestDatabase {
        TestDatabase {
            url: format!("sqlite://{}", dir.join("herald.db").display()),
            postgres: None,
        }
    }

    /// A fresh PostgreSQL database, whatever the suite runs on (for what
    /// needs PostgreSQL: several processes, roles).
    pub fn postgres() -> TestDatabase {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let base = postgres_base_url();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "herald_it_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        psql(&base, &format!("CREATE DATABASE {name}"));
        TestDatabase {
            url: format!("{base}/{name}"),
            postgres: Some((base, name)),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// Runs SQL on the database behind the server's back (psql or sqlite3):
    /// for a test that injects a fault the API cannot cause.
    pub fn execute(&self, sql: &str) {
        let out = match &self.postgres {
            Some(_) => std::process::Command::new("psql")
                .args(["-v", "ON_ERROR_STOP=1", "-q", "-d", &self.url, "-c", sql])
                .output()
                .expect("psql runs"),
            None => std::process::Command::new("sqlite3")
                .args(["-bail", "-cmd", ".timeout 10000"])
                .arg(self.url.trim_start_matches("sqlite://"))
                .arg(sql)
                .output()
                .expect("sqlite3 runs (scripts/test installs it)"),
        };
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((base, name)) = &self.postgres {
            // FORCE: a server still shutting down may hold connections.
            let _ = std::process::Command::new("psql")
                .args(["-q", "-d", &format!("{base}/postgres"), "-c"])
                .arg(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .output();
        }
    }
}

/// Runs one statement on the `postgres` database of the server at `base`.
fn psql(base: &str, sql: &str) {
    let out = std::process::Command::new("psql")
        .args([
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-d",
            &format!("{base}/postgres"),
            "-c",
            sql,
        ])
        .output()
        .expect("psql is needed for the PostgreSQL tests (scripts/test installs and starts it)");
    assert!(
        out.status.success(),
        "{sql} on {base}: {} (is PostgreSQL running? scripts/test starts it)",
        String::from_utf8_lossy(&out.stderr)
    );
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
    pub method: axum::http::Method,
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
        Receiver::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// A receiver on this address (any of 127.0.0.0/8; port 0 picks one).
    pub async fn start_on(addr: SocketAddr) -> Receiver {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
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
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let reply = {
        let mut s = state.lock().unwrap();
        s.received.push(Received {
            method,
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

/// The `herald` binary this test build made, killed when dropped: for the
/// commands that bring their own database (`demo`, `bench`).
pub fn herald_binary() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"));
    cmd.kill_on_drop(true);
    cmd
}

/// The `herald` binary with what every test run of it needs: the database,
/// the secret, loopback receivers allowed, port 0, info logs; killed when
/// dropped. Add the subcommand and anything else.
pub fn herald_command(database_url: &str, secret: &str) -> tokio::process::Command {
    let mut cmd = herald_binary();
    cmd.env("HERALD_LISTEN", "127.0.0.1:0")
        .env("HERALD_DATABASE_URL", database_url)
        .env("HERALD_SECRET", secret)
        .env("HERALD_ALLOW_SUBNETS", "127.0.0.0/8")
        .env("RUST_LOG", "info")
        .kill_on_drop(true);
    cmd
}

/// Runs a one-shot command (`herald prune`, `token create`...) to its end;
/// fails the test if it fails, and returns its stdout.
pub async fn herald_stdout(mut cmd: tokio::process::Command) -> String {
    let out = cmd.output().await.expect("the herald binary runs");
    assert!(
        out.status.success(),
        "herald failed ({}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
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

// ---- the portal without a browser ----

/// A client that keeps redirects as answers (the portal's are part of what
/// tests check).
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `name=value` part of the session cookie a response sets.
pub fn session_cookie(r: &reqwest::Response) -> String {
    let set = r
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .expect("a session cookie")
        .to_str()
        .unwrap();
    set.split(';').next().unwrap().to_string()
}

/// What the platform does: asks Herald for a portal link to one application.
pub async fn portal_link(app: &TestApp, app_id: &str) -> String {
    let (status, body) = app
        .post_json(
            &format!("/api/v1/auth/app-portal-access/{app_id}"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = body["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no url in {body}"));
    assert!(
        url.starts_with(&app.url("/portal/login?token=")),
        "a link to this server's portal: {url}"
    );
    url.to_string()
}

/// A browser without a browser: no redirects followed, the session cookie
/// kept by hand.
pub struct PortalSession {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: String,
}

impl PortalSession {
    /// Opens a portal session from a link: the one place tests log in to the
    /// portal without a browser.
    pub async fn open(base: &str, link: &str) -> PortalSession {
        let http = no_redirects();
        let r = http.get(link).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{link}");
        assert_eq!(r.headers()[reqwest::header::LOCATION], "/portal/");
        let cookie = session_cookie(&r);
        PortalSession {
            http,
            base: base.to_string(),
            cookie,
        }
    }

    /// A session on one application's portal, from a fresh link.
    pub async fn for_app(app: &TestApp, app_id: &str) -> PortalSession {
        PortalSession::open(&app.base_url, &portal_link(app, app_id).await).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, &self.cookie)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    /// The CSRF token, as every page's forms (Log out at least) carry it.
    pub async fn csrf(&self) -> String {
        let (status, html) = self.get("/portal/").await;
        assert_eq!(status, StatusCode::OK, "{html}");
        csrf_of(&html)
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, &self.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish(),
            )
            .send()
            .await
            .unwrap()
    }

    /// Posts a form as a browser without JavaScript does: the answer must be
    /// 303 See Other (redirect after POST), which is followed with the
    /// cookies it set (a flash) besides the session's. Returns where it
    /// landed and that page.
    pub async fn post_and_follow(
        &self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (String, StatusCode, String) {
        let r = self.post(path, form).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path} answers 303");
        let location = r.headers()[reqwest::header::LOCATION]
            .to_str()
            .unwrap()
            .to_string();
        let mut cookie = self.cookie.clone();
        for set in r.headers().get_all(reqwest::header::SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            cookie.push_str("; ");
            cookie.push_str(pair);
        }
        let page = self
            .http
            .get(format!("{}{}", self.base, location))
            .header(reqwest::header::COOKIE, cookie)
            .send()
            .await
            .unwrap();
        let status = page.status();
        (location, status, page.text().await.unwrap())
    }
}

/// The value of the first `csrf` field in a page.
pub fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\"")
        .unwrap_or_else(|| panic!("no csrf field in {html}"));
    let tag_start = html[..at].rfind('<').unwrap();
    let tag = &html[tag_start..tag_start + html[tag_start..].find('>').unwrap()];
    let value = tag
        .split("value=\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no csrf value in {tag}"));
    value[..value.find('"').unwrap()].to_string()
}

/// The text after `marker` up to the next double quote (an attribute's value).
pub fn attr_after(html: &str, marker: &str) -> String {
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}
