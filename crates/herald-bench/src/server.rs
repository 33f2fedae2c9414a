//! The server under test: Herald started as a separate process on a fresh
//! temporary database (or, with `--workers N` on PostgreSQL, one `--role api`
//! process and N `--role worker` processes sharing it), or an existing
//! Svix-compatible server (`--target`).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::load::Api;

/// The main secret of the Herald processes the bench starts.
const SECRET: &str = "herald-bench-secret-0123456789abcdef";
/// Settings the bench sets itself; the other `HERALD_*` variables of the
/// caller's environment (worker concurrency, SQLite durability, ...) pass through.
const OWN_VARIABLES: &[&str] = &[
    "HERALD_LISTEN",
    "HERALD_DATABASE_URL",
    "HERALD_SECRET",
    "HERALD_ALLOW_SUBNETS",
    "HERALD_ROLE",
    "HERALD_SEED_CATALOG",
];

/// Where the spawned Herald keeps its data.
#[derive(Clone, Debug)]
pub enum Database {
    /// A fresh SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on this PostgreSQL server (created with `psql`).
    Postgres(url::Url),
}

impl Database {
    pub fn parse(s: &str) -> anyhow::Result<Database> {
        if s == "sqlite" {
            return Ok(Database::Sqlite);
        }
        let url = url::Url::parse(s).with_context(|| format!("--database {s:?}"))?;
        match url.scheme() {
            "postgres" | "postgresql" => Ok(Database::Postgres(url)),
            other => bail!("--database is `sqlite` or a postgres:// URL, not {other}:"),
        }
    }

    pub fn label(&self) -> String {
        match self {
            Database::Sqlite => "sqlite".into(),
            Database::Postgres(url) => {
                format!("postgresql ({})", redacted(&with_database(url, "")))
            }
        }
    }
}

/// Peak and current resident memory of a process, in kB (for several
/// processes: the sums, so `peak_kb` is the sum of each one's peak).
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Rss {
    pub peak_kb: u64,
    pub current_kb: u64,
}

/// One Herald process's memory, with its role (`all`, `api`, `worker 1`, ...).
#[derive(Clone, Debug, serde::Serialize)]
pub struct ProcessRss {
    pub role: String,
    #[serde(flatten)]
    pub rss: Rss,
}

/// The sum over `processes`, or `None` if none could be read.
pub fn total(processes: &[ProcessRss]) -> Option<Rss> {
    if processes.is_empty() {
        return None;
    }
    Some(processes.iter().fold(Rss::default(), |t, p| Rss {
        peak_kb: t.peak_kb + p.rss.peak_kb,
        current_kb: t.current_kb + p.rss.current_kb,
    }))
}

/// The server a scenario drives.
pub struct Target {
    pub api: Api,
    herald: Option<Herald>,
}

impl Target {
    /// An existing server: nothing to start or stop.
    pub fn external(http: reqwest::Client, url: &str, token: &str) -> Target {
        Target {
            api: Api::new(http, url, token),
            herald: None,
        }
    }

    /// Starts Herald (`std::env::current_exe() serve`) on a fresh database,
    /// with `env` on top of the bench's own settings: one process doing both
    /// roles if `workers` is 0, else one `--role api` process and `workers`
    /// `--role worker` processes (PostgreSQL only).
    pub async fn spawn(
        http: reqwest::Client,
        database: &Database,
        workers: usize,
        env: &[(&str, String)],
    ) -> anyhow::Result<Target> {
        let herald = Herald::spawn(&http, database, workers, env).await?;
        let token = herald.token().await?;
        Ok(Target {
            api: Api::new(http, &herald.base_url, &token),
            herald: Some(herald),
        })
    }

    /// The spawned processes' memory, read from /proc (Linux only); empty for
    /// an external target.
    pub fn processes(&self) -> Vec<ProcessRss> {
        let Some(herald) = &self.herald else {
            return Vec::new();
        };
        herald
            .procs
            .iter()
            .filter_map(|p| {
                Some(ProcessRss {
                    role: p.role.clone(),
                    rss: rss_of(p.pid)?,
                })
            })
            .collect()
    }

    /// Files the spawned server's processes have open (Linux; `None` for an
    /// external target).
    pub fn open_files(&self) -> Option<usize> {
        let herald = self.herald.as_ref()?;
        Some(
            herald
                .procs
                .iter()
                .filter_map(|p| std::fs::read_dir(format!("/proc/{}/fd", p.pid)).ok())
                .map(Iterator::count)
                .sum(),
        )
    }

    /// The spawned server's memory, summed over its processes.
    pub fn rss(&self) -> Option<Rss> {
        total(&self.processes())
    }

    /// Stops a spawned server and removes its database; returns each
    /// process's memory as last seen.
    pub async fn close(self) -> Vec<ProcessRss> {
        let processes = self.processes();
        if let Some(herald) = self.herald {
            herald.stop().await;
        }
        processes
    }
}

fn rss_of(pid: u32) -> Option<Rss> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some(Rss {
        peak_kb: field("VmHWM:")?,
        current_kb: field("VmRSS:")?,
    })
}

/// The Herald child processes and the database they own.
struct Herald {
    /// The first serves the API (role `all` or `api`); the rest are workers.
    procs: Vec<Proc>,
    base_url: String,
    database_url: String,
    dir: PathBuf,
    /// (maintenance URL, database name) of a PostgreSQL database to drop.
    postgres: Option<(String, String)>,
}

/// One `herald serve` child process.
struct Proc {
    child: tokio::process::Child,
    pid: u32,
    role: String,
}

impl Herald {
    /// An organisation token for the bench's client, made as an operator
    /// would: `herald token create` on the same database and secret.
    async fn token(&self) -> anyhow::Result<String> {
        let exe = std::env::current_exe().context("cannot find the herald binary")?;
        let mut cmd = tokio::process::Command::new(exe);
        for var in OWN_VARIABLES {
            cmd.env_remove(var);
        }
        let out = cmd
            .args(["token", "create", "--name", "herald bench"])
            .env("HERALD_DATABASE_URL", &self.database_url)
            .env("HERALD_SECRET", SECRET)
            .stdin(Stdio::null())
            .output()
            .await
            .context("cannot run `herald token create`")?;
        if !out.status.success() {
            bail!(
                "`herald token create` failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let stdout = String::from_utf8(out.stdout).context("the token is not text")?;
        stdout
            .lines()
            .last()
            .map(|t| t.trim().to_string())
            .context("`herald token create` printed no token")
    }

    async fn spawn(
        http: &reqwest::Client,
        database: &Database,
        workers: usize,
        env: &[(&str, String)],
    ) -> anyhow::Result<Herald> {
        if workers > 0 && matches!(database, Database::Sqlite) {
            bail!("--workers needs PostgreSQL (--database postgres://...): separate API and worker processes cannot share a SQLite file");
        }
        static RUNS: AtomicU32 = AtomicU32::new(0);
        let n = RUNS.fetch_add(1, Ordering::Relaxed);
        let name = format!("herald_bench_{}_{n}", std::process::id());
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let (database_url, postgres) = match database {
            Database::Sqlite => (
                format!("sqlite://{}", dir.join("herald.db").display()),
                None,
            ),
            Database::Postgres(url) => {
                let maintenance = with_database(url, "postgres").to_string();
                psql(&maintenance, &format!("CREATE DATABASE {name}"))?;
                (
                    with_database(url, &name).to_string(),
                    Some((maintenance, name.clone())),
                )
            }
        };
        let mut herald = Herald {
            procs: Vec::new(),
            base_url: String::new(),
            database_url: database_url.clone(),
            dir,
            postgres,
        };
        // On failure `herald` is dropped: its children are killed
        // (`kill_on_drop`), but its database must be dropped here.
        match herald.start(http, &database_url, workers, env).await {
            Ok(()) => Ok(herald),
            Err(e) => {
                herald.stop().await;
                Err(e)
            }
        }
    }

    /// Starts the API process, waits until it serves, then the workers, each
    /// waited for in turn (so the measurement starts with every node up, and
    /// the first process has applied the migrations).
    async fn start(
        &mut self,
        http: &reqwest::Client,
        database_url: &str,
        workers: usize,
        env: &[(&str, String)],
    ) -> anyhow::Result<()> {
        let roles: Vec<(String, &str)> = if workers == 0 {
            vec![("all".into(), "all")]
        } else {
            std::iter::once(("api".to_string(), "api"))
                .chain((1..=workers).map(|k| (format!("worker {k}"), "worker")))
                .collect()
        };
        for (k, (label, role)) in roles.into_iter().enumerate() {
            let log = self.dir.join(format!("herald-{k}.log"));
            let exe = std::env::current_exe().context("cannot find the herald binary")?;
            let mut cmd = tokio::process::Command::new(exe);
            cmd.arg("serve");
            for var in OWN_VARIABLES {
                cmd.env_remove(var);
            }
            cmd.env("HERALD_LISTEN", "127.0.0.1:0")
                .env("HERALD_DATABASE_URL", database_url)
                .env("HERALD_SECRET", SECRET)
                .env("HERALD_ALLOW_SUBNETS", "127.0.0.0/8")
                .env("HERALD_ROLE", role);
            for (k, v) in env {
                cmd.env(k, v);
            }
            cmd.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(&log)?)
                .kill_on_drop(true);
            let mut child = cmd
                .spawn()
                .with_context(|| format!("cannot start `herald serve --role {role}`"))?;
            let pid = child.id().context("herald exited at once")?;
            let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
            self.procs.push(Proc {
                child,
                pid,
                role: label.clone(),
            });
            let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await;
            let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
            let first = match first {
                Ok(Ok(Some(line))) => line,
                _ => bail!("herald ({label}) did not start; its log:\n{}", log_text()),
            };
            let base_url = first
                .strip_prefix("Herald listening on ")
                .with_context(|| format!("unexpected first line {first:?}"))?
                .to_string();
            // Keep draining stdout so that a later print never meets a closed pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            // It prints its address before opening the database; it serves
            // health once the database is open and migrated.
            let health = format!("{base_url}/api/v1/health");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                let ok = http
                    .get(&health)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ok {
                    break;
                }
                let exited = self.procs.last_mut().map(|p| p.child.try_wait());
                if let Some(Ok(Some(status))) = exited {
                    bail!(
                        "herald ({label}) exited ({status}); its log:\n{}",
                        log_text()
                    );
                }
                if tokio::time::Instant::now() > deadline {
                    bail!(
                        "herald ({label}) is not healthy after 60 s; its log:\n{}",
                        log_text()
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if k == 0 {
                self.base_url = base_url;
            }
        }
        Ok(())
    }

    async fn stop(mut self) {
        // The bench is done with this server and its data: no grace needed.
        for p in &mut self.procs {
            let _ = p.child.kill().await;
        }
        if let Some((maintenance, name)) = &self.postgres {
            if let Err(e) = psql(
                maintenance,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            ) {
                eprintln!("warning: {e:#}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A database URL with its password hidden, for what the bench prints.
fn redacted(url: &url::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

fn with_database(url: &url::Url, name: &str) -> url::Url {
    let mut url = url.clone();
    url.set_path(&format!("/{name}"));
    url
}

fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("psql")
        .args(["-d", url, "-qc", sql])
        .stdout(Stdio::null())
        .status()
        .context("psql is needed to create the PostgreSQL bench database")?;
    if !status.success() {
        bail!("psql failed: {sql}");
    }
    Ok(())
}
