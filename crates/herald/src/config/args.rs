//! The command line of `herald serve` and of the commands that open the
//! database: every flag with its `HERALD_*` variable and its default, as clap
//! declares them. `config.rs` validates them into a `Config`.

use std::net::SocketAddr;

use secrecy::SecretString;

use super::Role;

/// Settings every command that opens the database shares: where the data and
/// the keys are.
#[derive(clap::Args, Clone, Debug)]
pub struct CommonArgs {
    /// Database URL: sqlite://PATH (the file is created if missing) or
    /// postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE.
    #[arg(
        long,
        env = "HERALD_DATABASE_URL",
        default_value = "sqlite://herald.db"
    )]
    pub database_url: String,

    /// Main secret that signs API tokens and portal links; unless
    /// HERALD_ENCRYPTION_KEY is set, the key that seals stored secrets is
    /// derived from it too, so every command on a database needs the same
    /// one as its server. Default: generated once and kept in PATH.secret
    /// beside the SQLite database.
    #[arg(long, env = "HERALD_SECRET", hide_env_values = true)]
    pub secret: Option<String>,

    /// Key that seals endpoint signing keys, custom header values and
    /// remembered responses in the database (at least 16 characters).
    /// Default: derived from the main secret.
    #[arg(long, env = "HERALD_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<String>,

    /// Comma-separated keys that sealed values before the current one: they
    /// still open, and Herald re-seals under the current key at start-up (or
    /// with `herald rekey`). Drop them once that is done.
    #[arg(long, env = "HERALD_PREVIOUS_ENCRYPTION_KEYS", hide_env_values = true)]
    pub previous_encryption_keys: Option<String>,
}

/// Settings of `herald serve`.
#[derive(clap::Args, Clone, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// SQLite durability: "normal" survives a crash of the process (the default);
    /// "full" also survives power loss, at a cost in write throughput. (The
    /// one-shot commands always write with "full".)
    #[arg(long, env = "HERALD_SQLITE_SYNCHRONOUS", default_value = "normal")]
    pub sqlite_synchronous: String,

    // HERALD_OTLP_ENDPOINT, HERALD_OTLP_SERVICE_NAME: declared in
    // `telemetry.rs`, read by `main` to install the subscriber before the rest.
    #[command(flatten)]
    pub otlp: crate::telemetry::OtlpArgs,

    /// What this process does: `all` (API and delivery worker), `api` or
    /// `worker`. Separate roles need a shared database (PostgreSQL).
    #[arg(long, env = "HERALD_ROLE", value_enum, default_value_t = Role::All)]
    pub role: Role,

    /// Address to serve the API on.
    #[arg(long, env = "HERALD_LISTEN", default_value = "127.0.0.1:8071")]
    pub listen: SocketAddr,

    /// Comma-separated CIDRs that deliveries may reach although they are private,
    /// loopback or otherwise non-global.
    #[arg(long, env = "HERALD_ALLOW_SUBNETS", default_value = "")]
    pub allow_subnets: String,

    /// Comma-separated seconds to wait between attempts.
    #[arg(
        long,
        env = "HERALD_RETRY_SCHEDULE",
        default_value = "5,300,1800,7200,18000,36000,36000"
    )]
    pub retry_schedule: String,

    /// Largest request body the API accepts, in bytes (larger gets 413).
    #[arg(long, env = "HERALD_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Seconds a delivery may take before it counts as failed.
    #[arg(long, env = "HERALD_DELIVERY_TIMEOUT_SECONDS", default_value_t = 15)]
    pub delivery_timeout_seconds: u64,

    /// Seconds a claimed delivery belongs to its worker. If the worker dies, the
    /// delivery is sent again after this. Must exceed the delivery timeout.
    #[arg(long, env = "HERALD_LEASE_SECONDS", default_value_t = 60)]
    pub lease_seconds: u64,

    /// Deliveries in flight at once, over all endpoints.
    #[arg(long, env = "HERALD_WORKER_CONCURRENCY", default_value_t = 256)]
    pub worker_concurrency: usize,

    /// Deliveries in flight at once to one endpoint, so a slow endpoint cannot
    /// take every slot.
    #[arg(long, env = "HERALD_ENDPOINT_CONCURRENCY", default_value_t = 16)]
    pub endpoint_concurrency: usize,

    /// Seconds that in-flight deliveries get to finish after SIGTERM.
    #[arg(long, env = "HERALD_SHUTDOWN_GRACE_SECONDS", default_value_t = 20)]
    pub shutdown_grace_seconds: u64,

    /// On an organisation without event types, import the built-in Spot catalog
    /// at start-up.
    /// (`HERALD_SEED_CATALOG` takes 1/0, true/false, yes/no, on/off.)
    #[arg(
        long,
        env = "HERALD_SEED_CATALOG",
        num_args = 0..=1,
        default_value = "false",
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub seed_catalog: bool,

    /// Title of the public catalog page (GET /catalog).
    #[arg(
        long,
        env = "HERALD_CATALOG_TITLE",
        default_value = "Webhook event types"
    )]
    pub catalog_title: String,

    /// Longest Retry-After (seconds) honoured from a 429 or 503.
    #[arg(long, env = "HERALD_MAX_RETRY_AFTER_SECONDS", default_value_t = 3600)]
    pub max_retry_after_seconds: u64,

    /// Days the attempt log is kept; older attempts are deleted.
    #[arg(
        long,
        env = "HERALD_ATTEMPT_RETENTION_DAYS",
        default_value_t = crate::retention::DEFAULT_ATTEMPT_RETENTION_DAYS
    )]
    pub attempt_retention_days: u32,

    /// Seconds between pruning runs (expired payloads, old attempts) in
    /// processes that run the worker; 0 turns the periodic run off.
    #[arg(long, env = "HERALD_PRUNE_INTERVAL_SECONDS", default_value_t = 3600)]
    pub prune_interval_seconds: u64,

    /// The address people reach this server at, e.g. https://hooks.example.com;
    /// portal links start with it. Default: http:// and the listen address.
    #[arg(long, env = "HERALD_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Seconds a portal link (app-portal-access, `herald portal-link`) can be
    /// opened; the session it starts lasts 8 hours.
    #[arg(long, env = "HERALD_PORTAL_TOKEN_TTL_SECONDS", default_value_t = 3600)]
    pub portal_token_ttl_seconds: u64,

    /// Origins allowed to show the portal in a frame (comma-separated, e.g.
    /// https://admin.example.com). Default: none, the portal cannot be framed.
    #[arg(long, env = "HERALD_PORTAL_FRAME_ANCESTORS", default_value = "")]
    pub portal_frame_ancestors: String,
    /// Seconds a client gets to send a request's headers, from their first
    /// byte (on a new connection: from the connection); slower ones are cut off.
    #[arg(long, env = "HERALD_HEADER_READ_TIMEOUT_SECONDS", default_value_t = 10)]
    pub header_read_timeout_seconds: u64,

    /// Seconds a client gets to send a request's body, from the end of its
    /// headers; a slower one is cut off.
    #[arg(long, env = "HERALD_BODY_READ_TIMEOUT_SECONDS", default_value_t = 30)]
    pub body_read_timeout_seconds: u64,

    /// Seconds a kept-alive connection may wait for its next request before it
    /// is closed.
    #[arg(long, env = "HERALD_IDLE_TIMEOUT_SECONDS", default_value_t = 60)]
    pub idle_timeout_seconds: u64,

    /// Client connections open at once. At the limit, the connection that has
    /// waited longest outside a request is closed to make room; when every one
    /// is in a request, new ones wait in the kernel's queue. Lowered at
    /// start-up to fit the open-files limit.
    #[arg(long, env = "HERALD_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Payload bytes the worker holds at once, over the deliveries it has
    /// claimed (one copy per message, shared by its deliveries); past it, it
    /// claims no more until some are done.
    #[arg(long, env = "HERALD_WORKER_PAYLOAD_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub worker_payload_bytes: usize,

    /// Test deliveries (send-example, the portal's Test button) per endpoint
    /// and minute; more get 429 with Retry-After.
    #[arg(long, env = "HERALD_TEST_RATE_PER_MINUTE", default_value_t = 10)]
    pub test_rate_per_minute: u32,

    /// Wall-clock time one run of an endpoint's transformation may take,
    /// in milliseconds; past it the run is stopped and the attempt fails.
    #[arg(long, env = "HERALD_TRANSFORMATION_TIMEOUT_MS", default_value_t = 100)]
    pub transformation_timeout_ms: u64,

    /// Heap of each transformation engine, in MiB; a run that needs more is
    /// stopped and the attempt fails.
    #[arg(long, env = "HERALD_TRANSFORMATION_MEMORY_MIB", default_value_t = 16)]
    pub transformation_memory_mib: usize,

    /// Threads running transformations (each keeps one engine). Default: one
    /// per CPU.
    #[arg(long, env = "HERALD_TRANSFORMATION_THREADS")]
    pub transformation_threads: Option<usize>,

    /// How long an endpoint may fail every attempt before Herald disables it
    /// (e.g. "5days", "12h", "30s"); its pending deliveries wait until it is
    /// enabled again.
    #[arg(long, env = "HERALD_ENDPOINT_DISABLE_AFTER", default_value = "5days")]
    pub endpoint_disable_after: humantime::Duration,

    /// Count and serve the Prometheus metrics (`GET /metrics`): `on` or
    /// `off`.
    #[arg(long, env = "HERALD_METRICS", default_value = "on", value_parser = on_off)]
    pub metrics: bool,

    /// Bearer token `GET /metrics` asks for. Unset: the metrics are open to
    /// whoever reaches the listen address (they hold counts, never data).
    #[arg(long, env = "HERALD_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<SecretString>,
}

/// The default of `HERALD_MAX_CONNECTIONS`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// `on`/`off` (and the usual truthy and falsy words).
fn on_off(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        other => Err(format!("expected on or off, not {other:?}")),
    }
}
