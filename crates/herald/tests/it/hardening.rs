//! One tenant, or one stranger, must not be able to take Herald down for the
//! others (issue 10): attacks made for real against the real server on
//! loopback, with their figures printed. Timing and memory checks have wide
//! headroom (the machine is small and shared); the benchmark keeps the targets.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::support::{herald_command, read, HeraldProcess, TestDatabase};

const SECRET: &str = "hardening-test-secret-0123456789abc";

/// `herald serve` (the real binary), with the database it runs on (dropped
/// with it).
struct Server {
    process: HeraldProcess,
    _db: TestDatabase,
}

impl std::ops::Deref for Server {
    type Target = HeraldProcess;

    fn deref(&self) -> &HeraldProcess {
        &self.process
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut HeraldProcess {
        &mut self.process
    }
}

/// `herald serve` on a fresh database for the suite, logging in `dir`.
async fn herald(dir: &std::path::Path, env: &[(&str, &str)]) -> Server {
    let db = TestDatabase::for_suite(dir);
    let mut cmd = herald_command(db.url(), SECRET);
    cmd.arg("serve").envs(env.iter().copied());
    let server = Server {
        process: HeraldProcess::spawn(cmd, dir.join("herald.log")).await,
        _db: db,
    };
    let http = reqwest::Client::new();
    let health = server.url("/api/v1/health");
    crate::support::eventually(Duration::from_secs(30), "herald to be healthy", &mut || {
        let r = http.get(&health).send();
        async move { r.await.ok().filter(|r| r.status().is_success()) }
    })
    .await;
    server
}

/// Resident memory of a process, now and at its peak, in MB (Linux).
fn rss_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// File descriptors a process has open: the connections it holds, plus its
/// database and listener (Linux).
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// The slowloris clients of one attack and what became of them.
#[derive(Clone, Default)]
struct Attack {
    /// Connections open right now.
    open: Arc<AtomicUsize>,
    /// Connections made.
    made: Arc<AtomicUsize>,
    /// For each connection the server closed: how long it had held it.
    cut_after: Arc<Mutex<Vec<Duration>>>,
    stop: CancellationToken,
}

impl Attack {
    /// One client that sends a request line and then one header line every
    /// `every`, never finishing its headers; with `again`, it reconnects when
    /// cut off, until the attack stops.
    async fn slow_client(self, addr: std::net::SocketAddr, every: Duration, again: bool) {
        self.slow(addr, Slow::Headers, every, again).await;
    }

    /// One client that sends `what` slowly (see [`Attack::slow_client`]).
    async fn slow(self, addr: std::net::SocketAddr, what: Slow, every: Duration, again: bool) {
        loop {
            let Ok(mut stream) = TcpStream::connect(addr).await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if self.stop.is_cancelled() || !again {
                    return;
                }
                continue;
            };
            self.made.fetch_add(1, Ordering::Relaxed);
            self.open.fetch_add(1, Ordering::Relaxed);
            let start = Instant::now();
            let mut line = match &what {
                Slow::Headers => b"GET /api/v1/health HTTP/1.1\r\nHost: herald\r\n".to_vec(),
                Slow::Body { token } => format!(
                    "POST /api/v1/app HTTP/1.1\r\nHost: herald\r\nAuthorization: Bearer {token}\r\n\
                     Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{\"name\": \""
                )
                .into_bytes(),
            };
            let mut buf = [0u8; 512];
            let cut = loop {
                if stream.write_all(&line).await.is_err() {
                    break true;
                }
                line = match &what {
                    Slow::Headers => {
                        format!("X-Slow-{}: 1\r\n", start.elapsed().as_millis()).into_bytes()
                    }
                    Slow::Body { .. } => b"a".to_vec(),
                };
                tokio::select! {
                    read = stream.read(&mut buf) => match read {
                        // Closed, reset, or answered (e.g. 408): cut off.
                        Ok(_) | Err(_) => break true,
                    },
                    _ = tokio::time::sleep(every) => {}
                    _ = self.stop.cancelled() => break false,
                }
            };
            self.open.fetch_sub(1, Ordering::Relaxed);
            if !cut {
                return;
            }
            self.cut_after.lock().unwrap().push(start.elapsed());
            if !again || self.stop.is_cancelled() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn cut(&self) -> Vec<Duration> {
        let mut cut = self.cut_after.lock().unwrap().clone();
        cut.sort();
        cut
    }
}

/// What a slow client trickles.
#[derive(Clone)]
enum Slow {
    /// Header lines of a request that never ends its headers.
    Headers,
    /// The body of an authorised `POST /api/v1/app`, a byte at a time.
    Body { token: String },
}

/// Time for a health check on a fresh connection, or why it failed.
async fn health_latency(http: &reqwest::Client, url: &str) -> Result<Duration, String> {
    let start = Instant::now();
    match http.get(url).send().await {
        Ok(r) if r.status() == reqwest::StatusCode::NO_CONTENT => Ok(start.elapsed()),
        Ok(r) => Err(format!("status {}", r.status())),
        Err(e) => Err(format!("{e}")),
    }
}

/// A client that opens a new connection for every request, as a monitor
/// probing health does.
fn fresh_connections() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

/// Probes health every 100 ms for `span`; returns the sorted latencies and the
/// failures.
async fn probe_health(url: &str, span: Duration) -> (Vec<Duration>, Vec<String>) {
    let http = fresh_connections();
    let (mut latencies, mut failures) = (Vec::new(), Vec::new());
    let end = Instant::now() + span;
    while Instant::now() < end {
        match health_latency(&http, url).await {
            Ok(l) => latencies.push(l),
            Err(e) => failures.push(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    latencies.sort();
    (latencies, failures)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// 1,500 clients that trickle a header line every 500 ms and 200 kept-alive
/// connections that never send a second request: the server cuts every one
/// within its timeouts (2 s for headers, 3 s idle here), and health answers on
/// fresh connections throughout.
#[tokio::test(flavor = "multi_thread")]
async fn slowloris_clients_and_idle_connections_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = herald(
        dir.path(),
        &[
            ("HERALD_HEADER_READ_TIMEOUT_SECONDS", "2"),
            ("HERALD_IDLE_TIMEOUT_SECONDS", "3"),
        ],
    )
    .await;
    let addr: std::net::SocketAddr = server
        .base_url
        .strip_prefix("http://")
        .unwrap()
        .parse()
        .unwrap();
    let (rss_before, _) = rss_mb(server.pid());

    // Kept-alive connections: one complete request each, then silence.
    let idle_cut: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut idle = Vec::new();
    for _ in 0..200 {
        let idle_cut = idle_cut.clone();
        idle.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: herald\r\n\r\n")
                .await
                .unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0, "closed before answering");
                got.extend_from_slice(&buf[..n]);
            }
            assert!(got.starts_with(b"HTTP/1.1 204"), "{got:?}");
            let answered = Instant::now();
            // Stays open until the server closes it (or 30 s pass).
            let closed = tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf)).await;
            if matches!(closed, Ok(Ok(0)) | Ok(Err(_))) {
                idle_cut.lock().unwrap().push(answered.elapsed());
            }
        }));
    }

    let attack = Attack::default();
    let started = Instant::now();
    for batch in 0..15 {
        for _ in 0..100 {
            tokio::spawn(
                attack
                    .clone()
                    .slow_client(addr, Duration::from_millis(500), false),
            );
        }
        if batch % 5 == 4 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let health_url = server.url("/api/v1/health");
    let probe =
        tokio::spawn(async move { probe_health(&health_url, Duration::from_secs(6)).await });
    let mut held = Vec::new();
    for at in [1, 4, 8] {
        tokio::time::sleep_until((started + Duration::from_secs(at)).into()).await;
        held.push((
            at,
            attack.open.load(Ordering::Relaxed),
            open_files(server.pid()),
        ));
    }
    let (latencies, failures) = probe.await.unwrap();
    let (rss_during, rss_peak) = rss_mb(server.pid());
    for task in idle {
        task.await.unwrap();
    }
    attack.stop.cancel();

    let cut = attack.cut();
    let idle_cut = {
        let mut v = idle_cut.lock().unwrap().clone();
        v.sort();
        v
    };
    println!(
        "slowloris: {} slow clients; (s, open on the client side, server's open files) {:?}; cut off after p50 {:.0} ms, max {:.0} ms ({} cut)",
        attack.made.load(Ordering::Relaxed),
        held,
        ms(quantile(&cut, 0.5)),
        ms(cut.last().copied().unwrap_or_default()),
        cut.len(),
    );
    println!(
        "slowloris: 200 idle kept-alive connections, closed after p50 {:.0} ms, max {:.0} ms ({} closed)",
        ms(quantile(&idle_cut, 0.5)),
        ms(idle_cut.last().copied().unwrap_or_default()),
        idle_cut.len(),
    );
    println!(
        "slowloris: health on fresh connections during the attack: {} probes, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} failed {:?}",
        latencies.len(),
        ms(quantile(&latencies, 0.5)),
        ms(quantile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default()),
        failures.len(),
        failures.first(),
    );
    println!(
        "slowloris: server RSS {rss_before:.0} MB before, {rss_during:.0} MB after, {rss_peak:.0} MB peak"
    );

    let log = || read(&server.log);
    // Every connection made is cut off (a connect the kernel dropped under
    // the burst is not a connection).
    let made = attack.made.load(Ordering::Relaxed);
    assert!(made >= 1000, "only {made} slow clients connected");
    assert_eq!(
        cut.len(),
        made,
        "every slow client is cut off; held at 1/4/8 s: {held:?}\n{}",
        log()
    );
    // 2 s allowed for headers; the headroom is for a loaded machine.
    assert!(
        *cut.last().unwrap() < Duration::from_secs(7),
        "slow clients held too long: {cut:?}"
    );
    assert_eq!(
        idle_cut.len(),
        200,
        "every idle kept-alive connection is closed"
    );
    assert!(
        *idle_cut.last().unwrap() < Duration::from_secs(10),
        "idle connections held too long"
    );
    assert!(failures.is_empty(), "health failed: {failures:?}");
    assert!(
        latencies.len() >= 10,
        "health answered only {} times in 6 s",
        latencies.len()
    );
    assert!(
        *latencies.last().unwrap() < Duration::from_secs(5),
        "health took {:?}",
        latencies.last()
    );
}

/// 2x the connection cap of clients that trickle headers and reconnect as soon
/// as they are cut: the server holds no more than the cap, health still gets
/// in at once on a fresh connection (the longest-waiting attacker makes room),
/// although the header timeout (60 s) would keep a queued client out for a
/// minute, and kept-alive clients between two requests are not pushed out.
#[tokio::test(flavor = "multi_thread")]
async fn at_the_connection_cap_a_fresh_client_still_gets_in() {
    const CAP: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let server = herald(
        dir.path(),
        &[
            ("HERALD_HEADER_READ_TIMEOUT_SECONDS", "60"),
            ("HERALD_IDLE_TIMEOUT_SECONDS", "60"),
            ("HERALD_MAX_CONNECTIONS", "300"),
        ],
    )
    .await;
    let addr: std::net::SocketAddr = server
        .base_url
        .strip_prefix("http://")
        .unwrap()
        .parse()
        .unwrap();
    // Kept-alive clients between two requests: a slow flood does not push
    // them out (only ready newcomers may, and they close slow ones first).
    let kept: Vec<TcpStream> = {
        let mut kept = Vec::new();
        for _ in 0..50 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: herald\r\n\r\n")
                .await
                .unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"HTTP/1.1 204"));
            kept.push(s);
        }
        kept
    };
    let baseline = open_files(server.pid());
    let attack = Attack::default();
    for _ in 0..2 * CAP {
        tokio::spawn(
            attack
                .clone()
                .slow_client(addr, Duration::from_millis(500), true),
        );
    }
    // Let the attack fill the cap.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let health_url = server.url("/api/v1/health");
    let (latencies, failures) = probe_health(&health_url, Duration::from_secs(4)).await;
    // What the server holds: its open files (connections, plus the listener,
    // the database and a few more). Clients count those still in the kernel's
    // accept queue too, so theirs is only printed.
    let files = open_files(server.pid());
    let held = files.saturating_sub(baseline);
    let (rss, rss_peak) = rss_mb(server.pid());
    let attackers_open = attack.open.load(Ordering::Relaxed);
    attack.stop.cancel();
    let mut kept_open = 0;
    for mut s in kept {
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_millis(20), s.read(&mut buf)).await;
        kept_open += usize::from(read.is_err());
    }
    println!(
        "connection cap {CAP}: {} attacker connections made by {} clients, {} open on their side; server holds {held} connections ({files} files open, {baseline} before); {kept_open} of 50 kept-alive clients still connected; health p50 {:.1} ms, max {:.1} ms over {} probes, {} failed; server RSS {rss:.0} MB, peak {rss_peak:.0} MB",
        attack.made.load(Ordering::Relaxed),
        2 * CAP,
        attackers_open,
        ms(quantile(&latencies, 0.5)),
        ms(latencies.last().copied().unwrap_or_default()),
        latencies.len(),
        failures.len(),
    );
    // Slack: a connection accepted while the one it replaces closes, and the
    // database pool growing (PostgreSQL: up to 10).
    assert!(
        held <= CAP + 16,
        "the server holds {held} connections, more than its cap of {CAP}\n{}",
        read(&server.log)
    );
    assert!(failures.is_empty(), "health failed: {failures:?}");
    assert_eq!(kept_open, 50, "kept-alive clients were pushed out");
    assert!(
        latencies.len() >= 5,
        "health answered {} times",
        latencies.len()
    );
    // Queued behind the attackers it would wait for the 60 s header timeout.
    assert!(
        *latencies.last().unwrap() < Duration::from_secs(15),
        "health waited {:?} at the cap",
        latencies.last()
    );
}

/// Clients that send complete headers and then a body a byte at a time: each
/// is cut off at the body read timeout (2 s here); and at the connection cap,
/// a handler waiting for such a body makes room for a fresh client, although
/// the body timeout (60 s) would keep it waiting for a minute.
#[tokio::test(flavor = "multi_thread")]
async fn slow_bodies_are_cut_off_and_make_room_at_the_cap() {
    let token = herald::auth::Keys::new(SECRET.as_bytes()).org_token(herald::auth::DEFAULT_ORG);
    let addr_of = |server: &HeraldProcess| -> std::net::SocketAddr {
        server
            .base_url
            .strip_prefix("http://")
            .unwrap()
            .parse()
            .unwrap()
    };

    // The timeout: 300 slow bodies, each cut after ~2 s.
    let dir = tempfile::tempdir().unwrap();
    let server = herald(dir.path(), &[("HERALD_BODY_READ_TIMEOUT_SECONDS", "2")]).await;
    let attack = Attack::default();
    for _ in 0..300 {
        tokio::spawn(attack.clone().slow(
            addr_of(&server),
            Slow::Body {
                token: token.clone(),
            },
            Duration::from_millis(500),
            false,
        ));
    }
    let health_url = server.url("/api/v1/health");
    let (latencies, failures) = probe_health(&health_url, Duration::from_secs(6)).await;
    attack.stop.cancel();
    let cut = attack.cut();
    let made = attack.made.load(Ordering::Relaxed);
    println!(
        "slow bodies: {made} clients, {} cut off after p50 {:.0} ms, max {:.0} ms; health p50 {:.1} ms, max {:.1} ms, {} failed",
        cut.len(),
        ms(quantile(&cut, 0.5)),
        ms(cut.last().copied().unwrap_or_default()),
        ms(quantile(&latencies, 0.5)),
        ms(latencies.last().copied().unwrap_or_default()),
        failures.len(),
    );
    assert!(made >= 250, "only {made} slow clients connected");
    assert_eq!(
        cut.len(),
        made,
        "every slow body is cut off\n{}",
        read(&server.log)
    );
    assert!(
        *cut.last().unwrap() < Duration::from_secs(8),
        "slow bodies held too long: {cut:?}"
    );
    assert!(failures.is_empty(), "health failed: {failures:?}");
    drop(server);

    // The cap: 2x of reconnecting slow bodies.
    const CAP: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let server = herald(
        dir.path(),
        &[
            ("HERALD_BODY_READ_TIMEOUT_SECONDS", "60"),
            ("HERALD_MAX_CONNECTIONS", "200"),
        ],
    )
    .await;
    let baseline = open_files(server.pid());
    let attack = Attack::default();
    for _ in 0..2 * CAP {
        tokio::spawn(attack.clone().slow(
            addr_of(&server),
            Slow::Body {
                token: token.clone(),
            },
            Duration::from_millis(500),
            true,
        ));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let health_url = server.url("/api/v1/health");
    let (latencies, failures) = probe_health(&health_url, Duration::from_secs(4)).await;
    let held = open_files(server.pid()).saturating_sub(baseline);
    attack.stop.cancel();
    println!(
        "slow bodies at a cap of {CAP}: {} connections made by {} clients, server holds {held}; health p50 {:.1} ms, max {:.1} ms over {} probes, {} failed",
        attack.made.load(Ordering::Relaxed),
        2 * CAP,
        ms(quantile(&latencies, 0.5)),
        ms(latencies.last().copied().unwrap_or_default()),
        latencies.len(),
        failures.len(),
    );
    assert!(held <= CAP + 16, "the server holds {held} connections");
    assert!(failures.is_empty(), "health failed: {failures:?}");
    assert!(
        latencies.len() >= 5,
        "health answered {} times",
        latencies.len()
    );
    assert!(
        *latencies.last().unwrap() < Duration::from_secs(15),
        "health waited {:?} at the cap",
        latencies.last()
    );
}

/// A receiver that answers after `delay` and counts the requests it is
/// handling at once.
#[derive(Clone, Default)]
struct Gauge {
    now: Arc<AtomicUsize>,
    max: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
}

impl Gauge {
    async fn start(delay: Duration) -> (Gauge, String) {
        let gauge = Gauge::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let g = gauge.clone();
        let router = axum::Router::new().fallback(move || {
            let g = g.clone();
            async move {
                let now = g.now.fetch_add(1, Ordering::SeqCst) + 1;
                g.max.fetch_max(now, Ordering::SeqCst);
                g.total.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                g.now.fetch_sub(1, Ordering::SeqCst);
                "ok"
            }
        });
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        (gauge, url)
    }
}

/// 200 `send-example` calls at once: no more reach the receiver at a time
/// than the endpoint's concurrency, no more in all than its Test rate, and the
/// rest are refused with 429, `Retry-After` and a JSON error; the portal's Test
/// button says why too.
#[tokio::test(flavor = "multi_thread")]
async fn the_test_button_is_not_an_amplifier() {
    use crate::support::{Options, TestApp};
    use serde_json::json;

    let app = TestApp::spawn_with(Options {
        endpoint_concurrency: 4,
        test_rate_per_minute: 10,
        seed_catalog: true,
        ..Options::default()
    })
    .await;
    let (gauge, url) = Gauge::start(Duration::from_millis(300)).await;
    let app_id = app.create_app("Amplifier").await;
    let ep = app.create_endpoint(&app_id, json!({"url": url})).await;
    let path = format!("/api/v1/app/{app_id}/endpoint/{ep}/send-example");

    let calls: Vec<_> = (0..200)
        .map(|_| {
            let request = app
                .request(reqwest::Method::POST, &path)
                .json(&json!({"eventType": "member.created"}));
            tokio::spawn(async move {
                let r = request.send().await.unwrap();
                let retry_after = r
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_string());
                let (status, body) = crate::support::split(r).await;
                (status, retry_after, body)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap());
    }
    let sent = answers
        .iter()
        .filter(|(s, _, _)| *s == reqwest::StatusCode::OK)
        .count();
    let refused: Vec<_> = answers
        .iter()
        .filter(|(s, _, _)| *s == reqwest::StatusCode::TOO_MANY_REQUESTS)
        .collect();
    println!(
        "test button: 200 parallel calls -> {sent} sent, {} refused with 429; receiver saw {} requests, at most {} at once (endpoint concurrency 4)",
        refused.len(),
        gauge.total.load(Ordering::SeqCst),
        gauge.max.load(Ordering::SeqCst),
    );
    assert_eq!(sent + refused.len(), 200, "{answers:?}");
    assert!(sent <= 11, "the rate is 10 a minute; {sent} went out");
    assert!(sent >= 4, "the first ones go out: {answers:?}");
    assert!(
        gauge.max.load(Ordering::SeqCst) <= 4,
        "the endpoint's concurrency is 4; the receiver had {} at once",
        gauge.max.load(Ordering::SeqCst)
    );
    assert_eq!(gauge.total.load(Ordering::SeqCst), sent);
    let (_, retry_after, body) = refused[0];
    let seconds: u64 = retry_after
        .as_deref()
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&seconds), "Retry-After {seconds}");
    assert_eq!(body["code"], "rate_limited", "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("at most 10 a minute") && detail.contains("try again in"),
        "{detail}"
    );

    // The portal's Test button on the same endpoint: refused, and it says so.
    let (status, link) = app
        .post_json(
            &format!("/api/v1/auth/app-portal-access/{app_id}"),
            json!({}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{link}");
    // Without JavaScript the POST answers 303 (redirect after POST) and the
    // page it leads to tells the outcome, carried in a flash cookie.
    let portal =
        crate::support::PortalSession::open(&app.base_url, link["url"].as_str().unwrap()).await;
    let csrf = portal.csrf().await;
    let (location, status, html) = portal
        .post_and_follow(
            &format!("/portal/endpoints/{ep}/test"),
            &[("csrf", &csrf), ("event_type", "member.created")],
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{location}: {html}");
    let result = html
        .split("<pre id=\"test-response\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_else(|| panic!("no test result in {html}"));
    println!("test button: the portal says {result:?}");
    assert!(
        result.contains("too many test deliveries to this endpoint"),
        "{result}"
    );
    assert_eq!(gauge.total.load(Ordering::SeqCst), sent);
}

/// A receiver that reads every request and never answers.
async fn black_hole() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

/// 20 endpoints that never answer and 30 messages of 1 MiB each: 600
/// deliveries, of which the worker claims hundreds at once. Memory follows the
/// distinct payloads held (shared by their deliveries, within
/// HERALD_WORKER_PAYLOAD_BYTES), not payload size x deliveries in flight.
#[tokio::test(flavor = "multi_thread")]
async fn large_payloads_to_dead_endpoints_do_not_blow_up_memory() {
    use crate::support::split;
    use serde_json::json;

    let dir = tempfile::tempdir().unwrap();
    let server = herald(
        dir.path(),
        &[
            ("HERALD_MAX_BODY_BYTES", "2097152"),
            ("HERALD_DELIVERY_TIMEOUT_SECONDS", "30"),
            ("HERALD_LEASE_SECONDS", "120"),
        ],
    )
    .await;
    let hole = black_hole().await;
    let token = herald::auth::Keys::new(SECRET.as_bytes()).org_token(herald::auth::DEFAULT_ORG);
    let http = reqwest::Client::new();
    let post = |path: String, body: serde_json::Value| {
        let r = http
            .post(server.url(&path))
            .bearer_auth(&token)
            .json(&body)
            .send();
        async move { split(r.await.unwrap()).await }
    };
    let (status, app) = post("/api/v1/app".into(), json!({"name": "Heavy"})).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{app}");
    let app_id = app["id"].as_str().unwrap().to_string();
    for k in 0..20 {
        let (status, ep) = post(
            format!("/api/v1/app/{app_id}/endpoint"),
            json!({"url": format!("http://{hole}/ep/{k}")}),
        )
        .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{ep}");
    }
    let (rss_before, _) = rss_mb(server.pid());

    let filler = "x".repeat(1024 * 1024 - 64);
    for n in 0..30 {
        let (status, out) = post(
            format!("/api/v1/app/{app_id}/msg"),
            json!({"eventType": "blob.created", "payload": {"n": n, "blob": filler}}),
        )
        .await;
        assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{out}");
    }
    // The deliveries hang (for the 30 s timeout): watch memory for 8 s.
    let mut samples = Vec::new();
    for _ in 0..16 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        samples.push(rss_mb(server.pid()).0);
    }
    let (rss_now, rss_peak) = rss_mb(server.pid());
    let in_flight = open_files(server.pid());
    println!(
        "memory: 20 dead endpoints x 30 messages of 1 MiB: server RSS {rss_before:.0} MB before, peak {rss_peak:.0} MB, {rss_now:.0} MB after 8 s; {in_flight} files open; samples {samples:.0?}"
    );
    assert!(
        rss_peak < 300.0,
        "peak RSS {rss_peak:.0} MB (target: under 150 MB)\n{}",
        read(&server.log)
    );
}
