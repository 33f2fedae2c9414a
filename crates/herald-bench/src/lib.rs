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
mod server;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use load::{send_at_rate, send_closed, Sent};
use receiver::Receiver;
use report::{Outcome, ScenarioReport};
use server::{Database, Target};

/// Longest a phase waits for arrivals without any progress.
const STALL: Duration = Duration::from_secs(30);
/// Longest a phase waits for arrivals at all.
const MAX_WAIT: Duration = Duration::from_secs(2 * 3600);

/// Microseconds since the bench started: the clock of send times and arrivals
/// (one process, so one monotonic clock).
///
/// The transform scenario's transformation: a field added, the rest kept (the
/// receiver reads the phase, sequence and send time back).
const TRANSFORMATION: &str = "function handler(webhook) {
  webhook.payload = Object.assign({ text: `tick ${webhook.payload.s}` }, webhook.payload);
  return webhook;
}";

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

/// The state of a bench run: the client, the receiver and the baseline.
struct Bench {
    args: BenchArgs,
    database: Database,
    http: reqwest::Client,
    receiver: Receiver,
    raw_per_second: f64,
    phase: u64,
}

/// How a phase sends its messages.
#[derive(Clone, Copy)]
enum Load {
    /// `concurrency` senders, each sending as soon as the last was answered.
    Closed(usize),
    /// A fixed number per second.
    Rate(f64),
}

impl Bench {
    fn target_label(&self) -> String {
        match &self.args.target {
            Some(url) => format!("external target {url}"),
            None if self.args.workers > 0 => format!(
                "{}, 1 api + {} worker process{}",
                self.database.label(),
                self.args.workers,
                if self.args.workers == 1 { "" } else { "es" }
            ),
            None => self.database.label(),
        }
    }

    /// A fresh server for a scenario (or the one `--target` names).
    async fn open(&self, env: &[(&str, String)]) -> anyhow::Result<Target> {
        match (&self.args.target, &self.args.token) {
            (Some(url), Some(token)) => Ok(Target::external(self.http.clone(), url, token)),
            _ => Target::spawn(self.http.clone(), &self.database, self.args.workers, env).await,
        }
    }

    /// An application with `endpoints` endpoints on the receiver, at the paths
    /// `paths[k]` (default `/ep/{k}`).
    async fn app(&self, target: &Target, name: &str, paths: &[String]) -> anyhow::Result<AppIds> {
        let app = target.api.create_app(name).await?;
        let mut endpoints = Vec::new();
        for path in paths {
            let url = if path.starts_with("http") {
                path.clone()
            } else {
                self.receiver.url(path)
            };
            endpoints.push(target.api.create_endpoint(&app, &url).await?);
        }
        Ok(AppIds { app, endpoints })
    }

    fn begin(&mut self, endpoints: usize, messages: u64) -> u64 {
        self.phase += 1;
        self.receiver.begin(self.phase, endpoints, messages);
        self.phase
    }

    async fn send(&self, target: &Target, app: &str, phase: u64, n: u64, load: Load) -> Sent {
        match load {
            Load::Closed(c) => send_closed(&target.api, app, phase, n, c).await,
            Load::Rate(r) => send_at_rate(&target.api, app, phase, n, r).await,
        }
    }

    /// Waits until endpoints `counted` have each received every accepted
    /// message, or arrivals stall for [`STALL`].
    async fn wait(&self, counted: &[usize], accepted: u64) {
        let expected = accepted * counted.len() as u64;
        let start = Instant::now();
        let (mut seen, mut progress) = (0, Instant::now());
        loop {
            let got: u64 = counted.iter().map(|&k| self.receiver.unique(k)).sum();
            if got >= expected {
                return;
            }
            if got > seen {
                (seen, progress) = (got, Instant::now());
            }
            if progress.elapsed() > STALL || start.elapsed() > MAX_WAIT {
                eprintln!("bench: stopped waiting: {got} of {expected} deliveries arrived");
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// One complete phase on a fresh server: an app with endpoints at `paths`,
    /// `n` messages sent with `load`, deliveries counted on `counted`.
    async fn phase(
        &mut self,
        label: &str,
        env: &[(&str, String)],
        paths: &[String],
        counted: &[usize],
        n: u64,
        load: Load,
    ) -> anyhow::Result<Outcome> {
        let target = self.open(env).await?;
        let ids = self.app(&target, &format!("bench {label}"), paths).await?;
        let phase = self.begin(paths.len(), n);
        let sent = self.send(&target, &ids.app, phase, n, load).await;
        self.wait(counted, sent.accepted()).await;
        let record = self.receiver.finish();
        if self.args.target.is_some() {
            for ep in &ids.endpoints {
                target.api.delete_endpoint(&ids.app, ep).await;
            }
        }
        let mut outcome = Outcome::measure(
            label,
            &sent,
            &record,
            counted,
            sent.first_send_us,
            self.raw_per_second,
        );
        outcome.set_processes(target.close().await);
        Ok(outcome)
    }

    async fn throughput(&mut self) -> anyhow::Result<ScenarioReport> {
        let (m, c) = (self.args.messages, self.args.concurrency);
        let paths = endpoint_paths(1);
        let o = self
            .phase("throughput", &[], &paths, &[0], m, Load::Closed(c))
            .await?;
        Ok(ScenarioReport {
            name: "throughput",
            params: json!({ "messages": m, "concurrency": c, "endpoints": 1 }),
            note: Some(format!(
                "throughput: API accepted {:.0} msg/s; API call p99 {:.1} ms",
                o.api_messages_per_second,
                o.api_call.map_or(0.0, |p| p.p99_ms)
            )),
            phases: vec![o],
            extra: json!({}),
        })
    }

    /// The throughput of one endpoint without, then with, a simple
    /// transformation (it adds a field and keeps what the receiver reads).
    async fn transform(&mut self) -> anyhow::Result<ScenarioReport> {
        let (m, c) = (self.args.messages, self.args.concurrency);
        let plain = self
            .phase(
                "transform off",
                &[],
                &endpoint_paths(1),
                &[0],
                m,
                Load::Closed(c),
            )
            .await?;
        let target = self.open(&[]).await?;
        let ids = self
            .app(&target, "bench transform on", &endpoint_paths(1))
            .await?;
        target
            .api
            .set_transformation(&ids.app, &ids.endpoints[0], TRANSFORMATION)
            .await?;
        let phase = self.begin(1, m);
        let sent = self
            .send(&target, &ids.app, phase, m, Load::Closed(c))
            .await;
        self.wait(&[0], sent.accepted()).await;
        let record = self.receiver.finish();
        let mut on = Outcome::measure(
            "transform on",
            &sent,
            &record,
            &[0],
            sent.first_send_us,
            self.raw_per_second,
        );
        on.set_processes(target.close().await);
        let ratio = on.deliveries_per_second / plain.deliveries_per_second.max(f64::MIN_POSITIVE);
        Ok(ScenarioReport {
            name: "transform",
            params: json!({ "messages": m, "concurrency": c, "endpoints": 1 }),
            note: Some(format!(
                "transform: with a transformation, {:.0} % of the throughput without ({:.0} vs {:.0} delivered msg/s)",
                ratio * 100.0,
                on.deliveries_per_second,
                plain.deliveries_per_second
            )),
            extra: json!({ "ratio": ratio }),
            phases: vec![plain, on],
        })
    }

    /// The throughput of one endpoint with the metrics off
    /// (`HERALD_METRICS=off`), then on: what counting costs.
    async fn metrics(&mut self) -> anyhow::Result<ScenarioReport> {
        let (m, c) = (self.args.messages, self.args.concurrency);
        let paths = endpoint_paths(1);
        let off = self
            .phase(
                "metrics off",
                &[("HERALD_METRICS", "off".to_string())],
                &paths,
                &[0],
                m,
                Load::Closed(c),
            )
            .await?;
        let on = self
            .phase("metrics on", &[], &paths, &[0], m, Load::Closed(c))
            .await?;
        let ratio = on.deliveries_per_second / off.deliveries_per_second.max(f64::MIN_POSITIVE);
        Ok(ScenarioReport {
            name: "metrics",
            params: json!({ "messages": m, "concurrency": c, "endpoints": 1 }),
            note: Some(format!(
                "metrics: with the metrics on, {:.1} % of the throughput with them off ({:.0} vs {:.0} delivered msg/s)",
                ratio * 100.0,
                on.deliveries_per_second,
                off.deliveries_per_second
            )),
            extra: json!({ "ratio": ratio }),
            phases: vec![off, on],
        })
    }

    async fn fanout(&mut self) -> anyhow::Result<ScenarioReport> {
        let n = self.args.fanout;
        let m = self.args.messages / n as u64;
        let c = self.args.concurrency;
        let paths = endpoint_paths(n);
        let counted: Vec<usize> = (0..n).collect();
        let o = self
            .phase(
                &format!("fanout x{n}"),
                &[],
                &paths,
                &counted,
                m,
                Load::Closed(c),
            )
            .await?;
        Ok(ScenarioReport {
            name: "fanout",
            params: json!({ "messages": m, "endpoints": n, "concurrency": c }),
            note: None,
            phases: vec![o],
            extra: json!({}),
        })
    }

    async fn latency(&mut self) -> anyhow::Result<ScenarioReport> {
        let (rate, secs) = (self.args.rate, self.args.duration);
        let n = messages_for(rate, secs);
        let o = self
            .phase(
                &format!("latency @{rate}/s"),
                &[],
                &endpoint_paths(1),
                &[0],
                n,
                Load::Rate(rate),
            )
            .await?;
        Ok(ScenarioReport {
            name: "latency",
            params: json!({ "rate": rate, "duration_seconds": secs, "messages": n }),
            note: Some(format!(
                "latency: offered {rate}/s, API accepted {:.0} msg/s",
                o.api_messages_per_second
            )),
            phases: vec![o],
            extra: json!({}),
        })
    }

    async fn isolation(&mut self) -> anyhow::Result<ScenarioReport> {
        let (rate, secs) = (self.args.rate, self.args.duration);
        let n = messages_for(rate, secs);
        let slow_ms = self.args.slow_ms;
        // A port nothing listens on: every attempt is refused at once.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            format!("http://{}/dead", l.local_addr()?)
        };
        let alone = self
            .phase(
                "isolation: healthy alone",
                &[],
                &endpoint_paths(1),
                &[0],
                n,
                Load::Rate(rate),
            )
            .await?;
        let slow = self
            .phase(
                &format!("isolation: + {slow_ms} ms endpoint"),
                &[],
                &["/ep/0".to_string(), "/slow/1".to_string()],
                &[0],
                n,
                Load::Rate(rate),
            )
            .await?;
        let dead = self
            .phase(
                "isolation: + dead endpoint",
                &[],
                &["/ep/0".to_string(), dead],
                &[0],
                n,
                Load::Rate(rate),
            )
            .await?;
        let p99 = |o: &Outcome| o.end_to_end.map_or(f64::NAN, |p| p.p99_ms);
        let (with_slow, with_dead) = (p99(&slow) / p99(&alone), p99(&dead) / p99(&alone));
        Ok(ScenarioReport {
            name: "isolation",
            params: json!({ "rate": rate, "duration_seconds": secs, "messages": n, "slow_ms": slow_ms }),
            note: Some(format!(
                "isolation: healthy endpoint p99 x{with_slow:.2} beside a {slow_ms} ms endpoint, x{with_dead:.2} beside a dead one"
            )),
            extra: json!({ "p99_ratio_with_slow": with_slow, "p99_ratio_with_dead": with_dead }),
            phases: vec![alone, slow, dead],
        })
    }

    async fn slowloris(&mut self) -> anyhow::Result<ScenarioReport> {
        let plan = attack::Plan {
            connections: self.args.slow_connections,
            interval: Duration::from_millis(self.args.slow_interval_ms),
            seconds: self.args.slow_seconds,
        };
        let target = self.open(&[]).await?;
        let base = target.api.base().to_string();
        let url = url::Url::parse(&base).with_context(|| format!("the server's URL {base}"))?;
        let addr = tokio::net::lookup_host((
            url.host_str().unwrap_or("127.0.0.1"),
            url.port_or_known_default().unwrap_or(80),
        ))
        .await?
        .next()
        .with_context(|| format!("{base} does not resolve"))?;
        let before = target.rss();
        let idle_files = target.open_files();
        let findings = attack::run(addr, &format!("{base}/api/v1/health"), &plan, || {
            target.open_files()
        })
        .await?;
        let processes = target.close().await;
        let peak = server::total(&processes);
        let health = findings.health;
        let note = format!(
            "slowloris: {} clients, a header line every {} ms, {:.0} s: {} connections made, {} cut off; server open files at most {} ({} idle); health on fresh connections p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} probes, {} failed{}); server RSS {:.0} MB before, peak {:.0} MB",
            plan.connections,
            plan.interval.as_millis(),
            plan.seconds,
            findings.connections_made,
            findings.cut_off,
            findings.server_open_files_max.map_or("-".into(), |n| n.to_string()),
            idle_files.map_or("-".into(), |n| n.to_string()),
            health.map_or(f64::NAN, |p| p.p50_ms),
            health.map_or(f64::NAN, |p| p.p99_ms),
            health.map_or(f64::NAN, |p| p.max_ms),
            health.map_or(0, |p| p.count),
            findings.health_failures,
            findings
                .first_health_failure
                .as_ref()
                .map_or(String::new(), |e| format!(", first: {e}")),
            report::mb(before.map_or(0, |r| r.current_kb)),
            report::mb(peak.map_or(0, |r| r.peak_kb)),
        );
        Ok(ScenarioReport {
            name: "slowloris",
            params: json!({
                "connections": plan.connections,
                "interval_ms": plan.interval.as_millis() as u64,
                "seconds": plan.seconds,
            }),
            phases: Vec::new(),
            extra: json!({
                "findings": findings,
                "server_open_files_idle": idle_files,
                "rss_before": before,
                "rss_peak": peak,
            }),
            note: Some(note),
        })
    }

    async fn backlog(&mut self) -> anyhow::Result<ScenarioReport> {
        let (m, c) = (self.args.backlog, self.args.concurrency);
        // Held requests must not time out while the backlog fills (module docs).
        let env = [
            ("HERALD_DELIVERY_TIMEOUT_SECONDS", "86400".to_string()),
            ("HERALD_LEASE_SECONDS", "86460".to_string()),
        ];
        let target = self.open(&env).await?;
        let ids = self
            .app(&target, "bench backlog", &endpoint_paths(1))
            .await?;
        let phase = self.begin(1, m);
        self.receiver.set_gate(false);
        let sent = self
            .send(&target, &ids.app, phase, m, Load::Closed(c))
            .await;
        let fill_seconds = sent.last_ack_us.saturating_sub(sent.first_send_us) as f64 / 1e6;
        let queued_rss = target.rss();
        let early = self.receiver.unique(0);
        let opened_us = now_us();
        self.receiver.set_gate(true);
        self.wait(&[0], sent.accepted()).await;
        let record = self.receiver.finish();
        let mut o = Outcome::measure(
            &format!("backlog drain ({m} queued)"),
            &sent,
            &record,
            &[0],
            opened_us,
            self.raw_per_second,
        );
        // Latencies here are mostly the time the receiver was down.
        o.end_to_end = None;
        o.set_processes(target.close().await);
        let peak = o.server_rss.map_or(0, |r| r.peak_kb);
        Ok(ScenarioReport {
            name: "backlog",
            params: json!({ "messages": m, "concurrency": c }),
            note: Some(format!(
                "backlog: {} queued in {fill_seconds:.1} s ({:.0} msg/s) with the receiver down; server RSS {:.0} MB when full, peak {:.0} MB; drained at {:.0} msg/s",
                sent.accepted(),
                sent.accepted() as f64 / fill_seconds.max(1e-9),
                report::mb(queued_rss.map_or(0, |r| r.current_kb)),
                report::mb(peak),
                o.deliveries_per_second,
            )),
            extra: json!({
                "fill_seconds": fill_seconds,
                "fill_messages_per_second": sent.accepted() as f64 / fill_seconds.max(1e-9),
                "rss_when_queued": queued_rss,
                "arrived_before_up": early,
                "drain_seconds": o.seconds,
                "drain_messages_per_second": o.deliveries_per_second,
            }),
            phases: vec![o],
        })
    }
}

struct AppIds {
    app: String,
    endpoints: Vec<String>,
}

fn endpoint_paths(n: usize) -> Vec<String> {
    (0..n).map(|k| format!("/ep/{k}")).collect()
}

fn messages_for(rate: f64, seconds: f64) -> u64 {
    ((rate * seconds).round() as u64).max(1)
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
