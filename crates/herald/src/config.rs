//! Herald's configuration: every knob, its `HERALD_*` variable and its default in
//! one place (`config/args.rs`). Flags win over the environment; the result is
//! validated once into [`Config`], so the rest of the program never sees a bad
//! value. The main secret's file and the keyring are `config/secret.rs`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use herald_core::net::AllowList;
use herald_core::schedule::RetrySchedule;
use herald_core::seal::Keyring;
use secrecy::{ExposeSecret, SecretString};

mod args;
mod secret;

pub use args::{CommonArgs, ServeArgs, DEFAULT_MAX_CONNECTIONS};
pub use secret::keyring;
use secret::{load_or_generate_secret, secret_path};

/// The parts of Herald a process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The API and the delivery worker.
    All,
    /// The API only (it still sends Test deliveries itself).
    Api,
    /// The delivery worker only; it serves `/api/v1/health` and nothing else.
    Worker,
}

impl std::fmt::Display for Role {
    /// As the flag takes it (`api`, `worker`, `all`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::All => "all",
            Role::Api => "api",
            Role::Worker => "worker",
        })
    }
}

impl Role {
    pub fn runs_api(self) -> bool {
        matches!(self, Role::All | Role::Api)
    }

    pub fn runs_worker(self) -> bool {
        matches!(self, Role::All | Role::Worker)
    }
}

/// Where the main secret came from, for the start-up log.
#[derive(Clone, Debug)]
pub enum SecretSource {
    Environment,
    File(PathBuf),
    Generated(PathBuf),
}

/// The validated configuration of a running Herald.
#[derive(Clone)]
pub struct Config {
    pub role: Role,
    pub listen: SocketAddr,
    pub database_url: String,
    pub secret: SecretString,
    pub secret_source: SecretSource,
    pub sqlite_synchronous_full: bool,
    /// Seals and opens the secrets the store keeps.
    pub keyring: Arc<Keyring>,
    pub allow_subnets: AllowList,
    pub retry_schedule: RetrySchedule,
    pub max_body_bytes: usize,
    pub delivery_timeout: Duration,
    /// How long a claimed delivery belongs to its worker.
    pub lease: Duration,
    pub worker_concurrency: usize,
    pub endpoint_concurrency: usize,
    pub shutdown_grace: Duration,
    pub max_retry_after: Duration,
    pub seed_catalog: bool,
    pub catalog_title: String,
    /// How long attempts are kept.
    pub attempt_retention: Duration,
    /// How often the worker prunes; `None`: never (`herald prune` still does).
    pub prune_interval: Option<Duration>,
    /// Where people reach this server (no trailing slash); `None`: the listen
    /// address.
    pub public_url: Option<String>,
    /// How long a portal link can be opened.
    pub portal_token_ttl: Duration,
    /// Origins that may frame the portal (`scheme://host[:port]`); empty:
    /// none may.
    pub portal_frame_ancestors: Vec<String>,
    /// Answers for names before the system resolver: a test seam, `None`
    /// whenever the configuration comes from flags and the environment.
    pub hosts_override: Option<crate::dispatch::client::HostsOverride>,
    /// The limits of the API's HTTP server.
    pub http: crate::server::Limits,
    /// Payload bytes the worker holds at once (at least one payload, however
    /// large, is always held).
    pub worker_payload_bytes: usize,
    /// Test deliveries per endpoint and minute.
    pub test_rate_per_minute: std::num::NonZeroU32,
    /// What one run of a transformation may use.
    pub transformation_limits: herald_transform::Limits,
    /// Threads running transformations.
    pub transformation_threads: usize,
    /// Whether metrics are counted and served.
    pub metrics: bool,
    /// What `GET /metrics` asks for, if anything.
    pub metrics_token: Option<SecretString>,
    /// How long an endpoint may fail every attempt before it is disabled.
    pub endpoint_disable_after: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field(
                "database_url",
                &herald_store::redact_url(&self.database_url),
            )
            .field("secret", &"<redacted>")
            .field("secret_source", &self.secret_source)
            .field("allow_subnets", &self.allow_subnets)
            .field("retry_schedule", &self.retry_schedule)
            .finish_non_exhaustive()
    }
}

/// The shared settings, validated: what `herald token`, `migrate` and the
/// other one-shot commands need.
#[derive(Clone)]
pub struct CommonConfig {
    pub database_url: String,
    pub secret: SecretString,
    pub secret_source: SecretSource,
    pub sqlite_synchronous_full: bool,
    pub keyring: Arc<Keyring>,
}

impl CommonArgs {
    pub fn resolve(&self) -> anyhow::Result<CommonConfig> {
        let url = self.database_url.as_str();
        let known = ["sqlite:", "postgres://", "postgresql://"];
        if !known.iter().any(|scheme| url.starts_with(scheme)) {
            bail!(
                "unsupported database URL scheme in HERALD_DATABASE_URL (expected sqlite://PATH or postgres://...): {}",
                herald_store::redact_url(url)
            );
        }
        let (secret, secret_source) = match &self.secret {
            Some(s) if s.len() >= 16 => (SecretString::from(s.clone()), SecretSource::Environment),
            Some(_) => bail!("HERALD_SECRET must be at least 16 characters long"),
            None => load_or_generate_secret(&secret_path(&self.database_url)?)?,
        };
        let keyring = keyring(
            self.encryption_key.as_deref(),
            self.previous_encryption_keys.as_deref(),
            &secret,
        )?;
        Ok(CommonConfig {
            database_url: self.database_url.clone(),
            secret,
            secret_source,
            // A one-shot command writes little and says "done" when it is
            // done: its writes are on disk by then, power loss or not.
            sqlite_synchronous_full: true,
            keyring: Arc::new(keyring),
        })
    }
}

impl ServeArgs {
    pub fn resolve(&self) -> anyhow::Result<Config> {
        let common = self.common.resolve()?;
        let sqlite_synchronous_full = match self.sqlite_synchronous.to_ascii_lowercase().as_str() {
            "normal" => false,
            "full" => true,
            other => {
                bail!("HERALD_SQLITE_SYNCHRONOUS must be \"normal\" or \"full\", not {other:?}")
            }
        };
        let allow_subnets = self
            .allow_subnets
            .parse()
            .context("HERALD_ALLOW_SUBNETS is not a comma-separated list of CIDRs")?;
        let retry_schedule = self
            .retry_schedule
            .parse()
            .context("HERALD_RETRY_SCHEDULE is not a comma-separated list of seconds")?;
        if self.worker_concurrency == 0 || self.endpoint_concurrency == 0 {
            bail!("HERALD_WORKER_CONCURRENCY and HERALD_ENDPOINT_CONCURRENCY must be at least 1");
        }
        if self.delivery_timeout_seconds == 0 {
            bail!("HERALD_DELIVERY_TIMEOUT_SECONDS must be at least 1");
        }
        if self.lease_seconds <= self.delivery_timeout_seconds {
            bail!("HERALD_LEASE_SECONDS must be longer than HERALD_DELIVERY_TIMEOUT_SECONDS, or a slow delivery could be sent twice");
        }
        let attempt_retention = attempt_retention(self.attempt_retention_days)?;
        if self.role != Role::All && is_sqlite(&common.database_url) {
            bail!(
                "--role {} needs a database that several processes share (HERALD_DATABASE_URL=postgres://...); \
                 with SQLite, run `herald serve`, which does both",
                self.role
            );
        }
        Ok(Config {
            role: self.role,
            listen: self.listen,
            database_url: common.database_url,
            secret: common.secret,
            secret_source: common.secret_source,
            sqlite_synchronous_full,
            keyring: common.keyring,
            allow_subnets,
            retry_schedule,
            max_body_bytes: self.max_body_bytes,
            delivery_timeout: Duration::from_secs(self.delivery_timeout_seconds),
            lease: Duration::from_secs(self.lease_seconds),
            worker_concurrency: self.worker_concurrency,
            endpoint_concurrency: self.endpoint_concurrency,
            shutdown_grace: Duration::from_secs(self.shutdown_grace_seconds),
            max_retry_after: Duration::from_secs(self.max_retry_after_seconds),
            seed_catalog: self.seed_catalog,
            catalog_title: self.catalog_title.clone(),
            attempt_retention,
            prune_interval: (self.prune_interval_seconds > 0)
                .then(|| Duration::from_secs(self.prune_interval_seconds)),
            public_url: public_url(self.public_url.as_deref())?,
            portal_token_ttl: portal_token_ttl(self.portal_token_ttl_seconds)?,
            portal_frame_ancestors: frame_ancestors(&self.portal_frame_ancestors)?,
            hosts_override: None,
            http: self.http_limits()?,
            worker_payload_bytes: self.worker_payload_bytes.max(1),
            test_rate_per_minute: std::num::NonZeroU32::new(self.test_rate_per_minute)
                .context("HERALD_TEST_RATE_PER_MINUTE must be at least 1")?,
            transformation_limits: self.transformation_limits()?,
            transformation_threads: match self.transformation_threads {
                Some(0) => bail!("HERALD_TRANSFORMATION_THREADS must be at least 1"),
                Some(n) => n,
                None => std::thread::available_parallelism().map_or(1, |n| n.get()),
            },
            metrics_token: self
                .metrics_token
                .clone()
                .filter(|t| !t.expose_secret().is_empty()),
            endpoint_disable_after: *self.endpoint_disable_after,
            metrics: self.metrics,
        })
    }

    fn transformation_limits(&self) -> anyhow::Result<herald_transform::Limits> {
        if self.transformation_timeout_ms == 0 || self.transformation_memory_mib == 0 {
            bail!("HERALD_TRANSFORMATION_TIMEOUT_MS and HERALD_TRANSFORMATION_MEMORY_MIB must be at least 1");
        }
        Ok(herald_transform::Limits {
            time: Duration::from_millis(self.transformation_timeout_ms),
            memory_bytes: self.transformation_memory_mib.saturating_mul(1024 * 1024),
        })
    }

    fn http_limits(&self) -> anyhow::Result<crate::server::Limits> {
        if self.header_read_timeout_seconds == 0
            || self.body_read_timeout_seconds == 0
            || self.idle_timeout_seconds == 0
        {
            bail!("HERALD_HEADER_READ_TIMEOUT_SECONDS, HERALD_BODY_READ_TIMEOUT_SECONDS and HERALD_IDLE_TIMEOUT_SECONDS must be at least 1");
        }
        if self.max_connections == 0 {
            bail!("HERALD_MAX_CONNECTIONS must be at least 1");
        }
        Ok(crate::server::Limits {
            header_read_timeout: Duration::from_secs(self.header_read_timeout_seconds),
            body_read_timeout: Duration::from_secs(self.body_read_timeout_seconds),
            idle_timeout: Duration::from_secs(self.idle_timeout_seconds),
            max_connections: self.max_connections,
        })
    }
}

/// `HERALD_ATTEMPT_RETENTION_DAYS` as a duration (at least a day: 0 would
/// delete every attempt as it is written).
pub fn attempt_retention(days: u32) -> anyhow::Result<Duration> {
    if days == 0 {
        bail!("HERALD_ATTEMPT_RETENTION_DAYS must be at least 1");
    }
    Ok(Duration::from_secs(u64::from(days) * 86_400))
}

/// `HERALD_PUBLIC_URL`, checked and without its trailing slash.
pub fn public_url(url: Option<&str>) -> anyhow::Result<Option<String>> {
    let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let parsed = url::Url::parse(url).context("HERALD_PUBLIC_URL is not a URL")?;
    if !matches!(parsed.scheme(), "http" | "https") {
        bail!("HERALD_PUBLIC_URL must start with http:// or https://");
    }
    Ok(Some(url.trim_end_matches('/').to_string()))
}

/// `HERALD_PORTAL_FRAME_ANCESTORS`: each entry an origin, `scheme://host` with
/// an optional port and nothing else, as CSP's `frame-ancestors` takes it.
pub fn frame_ancestors(list: &str) -> anyhow::Result<Vec<String>> {
    list.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|entry| {
            // Nothing after the authority but an optional `/`.
            let bare = entry
                .split_once("://")
                .is_some_and(|(_, rest)| !rest.trim_end_matches('/').contains(['/', '?', '#']));
            match url::Url::parse(entry) {
                Ok(u)
                    if bare
                        && matches!(u.scheme(), "http" | "https")
                        && u.host().is_some()
                        && u.username().is_empty() =>
                {
                    Ok(u.origin().ascii_serialization())
                }
                _ => bail!(
                    "HERALD_PORTAL_FRAME_ANCESTORS: {entry:?} is not an origin such as https://admin.example.com"
                ),
            }
        })
        .collect()
}

/// `HERALD_PORTAL_TOKEN_TTL_SECONDS` as a duration (at least a second).
pub fn portal_token_ttl(seconds: u64) -> anyhow::Result<Duration> {
    if seconds == 0 {
        bail!("HERALD_PORTAL_TOKEN_TTL_SECONDS must be at least 1");
    }
    Ok(Duration::from_secs(seconds))
}

fn is_sqlite(database_url: &str) -> bool {
    database_url.starts_with("sqlite:")
}

impl CommonConfig {
    pub fn secret_bytes(&self) -> &[u8] {
        self.secret.expose_secret().as_bytes()
    }
}

impl Config {
    pub fn secret_bytes(&self) -> &[u8] {
        self.secret.expose_secret().as_bytes()
    }

    /// The start of every link to this server: `HERALD_PUBLIC_URL`, or
    /// `http://` and the address it listens on.
    pub fn base_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `herald serve` with these flags (and a secret, so no file is written).
    fn serve(flags: &[&str]) -> anyhow::Result<Config> {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let args = ["herald", "--secret", "0123456789abcdef0123"]
            .iter()
            .chain(flags);
        <Cli as clap::Parser>::try_parse_from(args)?.serve.resolve()
    }

    #[test]
    fn the_servers_limits_have_defaults_and_refuse_zero() {
        let config = serve(&[]).unwrap();
        assert_eq!(config.http, crate::server::Limits::default());
        assert_eq!(config.worker_payload_bytes, 64 * 1024 * 1024);
        assert_eq!(config.test_rate_per_minute.get(), 10);
        let config = serve(&[
            "--header-read-timeout-seconds",
            "3",
            "--body-read-timeout-seconds",
            "4",
            "--idle-timeout-seconds",
            "5",
            "--max-connections",
            "6",
        ])
        .unwrap();
        assert_eq!(
            config.http,
            crate::server::Limits {
                header_read_timeout: Duration::from_secs(3),
                body_read_timeout: Duration::from_secs(4),
                idle_timeout: Duration::from_secs(5),
                max_connections: 6,
            }
        );
        for flag in [
            "--header-read-timeout-seconds",
            "--body-read-timeout-seconds",
            "--idle-timeout-seconds",
            "--max-connections",
            "--test-rate-per-minute",
        ] {
            let refused = serve(&[flag, "0"]);
            assert!(refused.is_err(), "{flag} 0 was accepted");
        }
    }

    #[test]
    fn frame_ancestors_are_origins() {
        assert_eq!(frame_ancestors("").unwrap(), Vec::<String>::new());
        assert_eq!(
            frame_ancestors("https://Admin.example.com, http://localhost:3000/").unwrap(),
            vec!["https://admin.example.com", "http://localhost:3000"]
        );
        for bad in [
            "admin.example.com",
            "https://admin.example.com/settings",
            "https://a.example?x=1",
            "javascript:alert(1)",
            "'none'",
            "https://user@a.example",
        ] {
            assert!(frame_ancestors(bad).is_err(), "{bad}");
        }
    }
}
