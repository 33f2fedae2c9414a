//! `herald bench`: the reproducible benchmark. A crate of its own: it only
//! drives the `herald` binary it runs in (`std::env::current_exe()`), through
//! its CLI and its HTTP API, as any client would.
//!
//! One process holds the load client and a recording receiver on 127.0.0.1.
//! Each scenario starts a fresh Herald as a separate process (`herald serve` on
//! a temporary SQLite file or a fresh PostgreSQL database; with `--workers N`,
//! one `--role api` process and N `--role worker` processes on PostgreSQL),
//! creates an application and endpoints pointing at the receiver through the
//! Svix API,
//! sends messages whose payloads carry their send time, and counts what
//! arrives: losses, duplicates, rates and end-to-end latencies. With
//! `--target URL --token T` the same scenarios drive any Svix-compatible server.
//!
//! Before the scenarios, the same client POSTs straight to the same receiver for
//! a few seconds: the machine's raw limit, to which every rate is compared.
//!
//! The backlog scenario takes the receiver "down" by holding its requests
//! unanswered (a shut gate) rather than refusing connections: a refused
//! connection is a failed attempt that Herald would retry on its schedule
//! (5 s, then 5 min), so the drain would measure the retry schedule, not the
//! queue. With the gate shut, Herald keeps `HERALD_ENDPOINT_CONCURRENCY`
//! requests open and the rest of the backlog waits in the database; the bench
//! starts that Herald with a delivery timeout of a day so that no held request
//! fails. When the gate opens, every held request is answered and the backlog
//! drains at full speed.
//!
//! The slowloris scenario (`attack.rs`, only when named) holds thousands of
//! connections that never finish their headers and reports what the server
//! holds and how fast health answers meanwhile.

mod attack;
mod load;
mod receiver;
mod report;
mod scenarios;
mod server;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use receiver::Receiver;
use report::Outcome;
use scenarios::Bench;
use server::Database;

/// Microseconds since the bench started: the clock of send times and arrivals
/// (one process, so one monotonic clock).
pub(crate) fn now_us() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    u64::try_from(START.get_or_init(Instant::now).elapsed().as_micros()).unwrap_or(u64::MAX)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Throughput,
    Fanout,
    Latency,
    Backlog,
    Isolation,
    /// One endpoint without and with a simple transformation (not part of
    /// `all`).
    Transform,
    /// One endpoint with the metrics off, then on (not part of `all`).
    Metrics,
    /// Slow clients that never finish their headers (not part of `all`).
    Slowloris,
    All,
}

/// Settings of `herald bench`.
#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// Scenarios to run (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "all")]
    pub scenario: Vec<Scenario>,

    /// Database of the Herald the bench starts: `sqlite` (a temporary file) or
    /// a PostgreSQL server URL, on which a fresh database is created with psql
    /// for each scenario and dropped after.
    #[arg(long, default_value = "sqlite")]
    pub database: String,

    /// Worker nodes: 0 starts one `herald serve` doing both the API and the
    /// delivery worker; N >= 1 starts one `--role api` process and N
    /// `--role worker` processes on the same fresh database (PostgreSQL only).
    #[arg(long, default_value_t = 0, conflicts_with = "target")]
    pub workers: usize,

    /// Drive this Svix-compatible server instead of starting Herald.
    #[arg(long, requires = "token")]
    pub target: Option<String>,

    /// API token for `--target`.
    #[arg(long, requires = "target")]
    pub token: Option<String>,

    /// Messages of the throughput scenario (fanout sends this many deliveries).
    #[arg(long, default_value_t = 20_000)]
    pub messages: u64,

    /// Concurrent API calls (and raw POSTs for the baseline).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,

    /// Endpoints of the fanout scenario.
    #[arg(long, default_value_t = 10)]
    pub fanout: usize,

    /// Messages per second of the latency and isolation scenarios.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,

    /// Seconds of the latency scenario and of each isolation phase.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,

    /// Messages queued while the receiver is down in the backlog scenario.
    #[arg(long, default_value_t = 100_000)]
    pub backlog: u64,

    /// Seconds of the raw loopback baseline.
    #[arg(long, default_value_t = 5.0)]
    pub baseline_seconds: f64,

    /// Milliseconds the slow endpoint of the isolation scenario takes to answer.
    #[arg(long, default_value_t = 2000)]
    pub slow_ms: u64,

    /// Clients of the slowloris scenario (each reconnects when cut off).
    #[arg(long, default_value_t = 3000)]
    pub slow_connections: usize,

    /// Milliseconds between the header lines of a slowloris client.
    #[arg(long, default_value_t = 5000)]
    pub slow_interval_ms: u64,

    /// Seconds the slowloris attack lasts.
    #[arg(long, default_value_t = 30.0)]
    pub slow_seconds: f64,

    /// Also write the figures as JSON here.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,

    /// A tiny run of every scenario that fails (exit status 1) if an accepted
    /// message did not arrive at least once; duplicates are reported (the JSON's
    /// `duplicates`); it asserts no timings.
    #[arg(long)]
    pub smoke: bool,
}

/// Runs the benchmark, prints the table and writes the JSON.
pub async fn run(mut args: BenchArgs) -> anyhow::Result<()> {
    now_us();
    if args.smoke {
        args.messages = 200;
        args.concurrency = 8;
        args.fanout = 3;
        args.rate = 100.0;
        args.duration = 1.0;
        args.backlog = 500;
        args.baseline_seconds = 1.0;
        args.slow_connections = 50;
        args.slow_interval_ms = 500;
        args.slow_seconds = 2.0;
    }
    // The slowloris scenario holds thousands of sockets in this process.
    raise_open_files_limit();
    if !(args.rate > 0.0 && args.duration > 0.0 && args.baseline_seconds > 0.0) {
        bail!("--rate, --duration and --baseline-seconds must be positive");
    }
    if args.fanout == 0 || args.messages < args.fanout as u64 || args.backlog == 0 {
        bail!("--fanout must be at least 1 and at most --messages; --backlog at least 1");
    }
    let database = Database::parse(&args.database)?;
    if args.workers > 0 && matches!(database, Database::Sqlite) {
        bail!("--workers needs --database postgres://...: separate API and worker processes cannot share a SQLite file (it has one writer, in one process)");
    }
    let scenarios = selected(&args.scenario);
    let http = load::client(args.concurrency)?;
    let receiver = Receiver::start(Duration::from_millis(args.slow_ms)).await?;

    eprintln!(
        "bench: raw loopback, {} senders for {} s",
        args.concurrency, args.baseline_seconds
    );
    let (posts, failed, seconds) = load::raw_posts(
        &http,
        &receiver.url("/raw"),
        args.concurrency,
        Duration::from_secs_f64(args.baseline_seconds),
    )
    .await;
    let raw_per_second = posts as f64 / seconds;
    let raw = json!({
        "posts": posts, "failed": failed, "seconds": seconds,
        "posts_per_second": raw_per_second, "concurrency": args.concurrency,
        "received": receiver.raw_count(),
    });
    if posts == 0 {
        bail!("the raw baseline made no POST ({failed} failed)");
    }

    let mut bench = Bench {
        args: args.clone(),
        database,
        http,
        receiver,
        raw_per_second,
        phase: 0,
    };
    let mut reports = Vec::new();
    for scenario in scenarios {
        eprintln!("bench: {scenario:?}");
        let report = match scenario {
            Scenario::Throughput => bench.throughput().await,
            Scenario::Fanout => bench.fanout().await,
            Scenario::Latency => bench.latency().await,
            Scenario::Backlog => bench.backlog().await,
            Scenario::Isolation => bench.isolation().await,
            Scenario::Slowloris => bench.slowloris().await,
            Scenario::Transform => bench.transform().await,
            Scenario::Metrics => bench.metrics().await,
            Scenario::All => unreachable!("expanded by `selected`"),
        }
        .with_context(|| format!("scenario {scenario:?}"))?;
        reports.push(report);
    }

    let machine = machine(&bench);
    let header = format!(
        "herald bench: {} cores, {}, herald {} ({}){}",
        machine["cores"],
        machine["database"].as_str().unwrap_or(""),
        env!("CARGO_PKG_VERSION"),
        machine["git_commit"].as_str().unwrap_or("unknown"),
        if args.smoke { ", SMOKE RUN" } else { "" },
    );
    println!("{}", report::table(&header, &raw, &reports));
    if let Some(path) = &args.json {
        let mut scenarios = serde_json::Map::new();
        for r in &reports {
            scenarios.insert(r.name.to_string(), serde_json::to_value(r)?);
        }
        let doc = json!({
            "machine": machine,
            "smoke": args.smoke,
            "baseline": raw,
            "scenarios": scenarios,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }

    let incomplete: Vec<&Outcome> = reports
        .iter()
        .flat_map(|r| &r.phases)
        .filter(|o| !o.complete())
        .collect();
    // Delivery is at least once: a duplicate is reported, never hidden, and
    // (with nothing killed) the smoke test in the suite counts it.
    for o in reports
        .iter()
        .flat_map(|r| &r.phases)
        .filter(|o| !o.complete() || o.duplicates > 0)
    {
        eprintln!(
            "bench: {}: {} of {} deliveries lost, {} delivered more than once, {} sends failed{}",
            o.label,
            o.lost,
            o.deliveries_expected,
            o.duplicates,
            o.send_errors,
            o.first_send_error
                .as_ref()
                .map_or(String::new(), |e| format!(" (first: {e})"))
        );
    }
    if args.smoke && !incomplete.is_empty() {
        bail!("smoke run: some accepted messages did not arrive (at least once) or sends failed");
    }
    Ok(())
}

fn selected(wanted: &[Scenario]) -> Vec<Scenario> {
    // Backlog last: it is the longest and leaves the biggest database.
    let order = [
        Scenario::Throughput,
        Scenario::Fanout,
        Scenario::Latency,
        Scenario::Isolation,
        Scenario::Backlog,
        Scenario::Slowloris,
        Scenario::Transform,
        Scenario::Metrics,
    ];
    order
        .into_iter()
        .filter(|s| {
            wanted.contains(s)
                || (wanted.contains(&Scenario::All)
                    && !matches!(
                        s,
                        Scenario::Slowloris | Scenario::Transform | Scenario::Metrics
                    ))
        })
        .collect()
}

/// The machine and the build the figures belong to.
fn machine(bench: &Bench) -> Value {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty());
    let durability = match (&bench.args.target, &bench.database) {
        (Some(_), _) => "set by the target".to_string(),
        (None, Database::Postgres(_)) => "PostgreSQL defaults (commit before 202)".to_string(),
        (None, Database::Sqlite) => {
            let level = std::env::var("HERALD_SQLITE_SYNCHRONOUS")
                .unwrap_or_else(|_| "normal".into())
                .to_ascii_lowercase();
            format!("SQLite WAL, synchronous={level}")
        }
    };
    json!({
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "database": bench.target_label(),
        "workers": bench.args.workers,
        "durability": durability,
        "herald_version": env!("CARGO_PKG_VERSION"),
        "git_commit": commit,
        "git_dirty": dirty,
        "target": bench.args.target,
    })
}

/// The slowloris scenario holds thousands of sockets in this process: raise
/// the soft open-files limit to the hard one.
fn raise_open_files_limit() {
    if cfg!(unix) {
        if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
            eprintln!("bench: cannot raise the open-files limit: {e}");
        }
    }
}
