//! The scenarios of `herald bench` and what they share: a [`Bench`] holds the
//! client, the receiver and the raw baseline of one run; each scenario starts a
//! fresh server (or uses `--target`), creates its application and endpoints,
//! runs its phases (send, then wait for the arrivals) and returns its report.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use crate::load::{send_at_rate, send_closed, Sent};
use crate::receiver::Receiver;
use crate::report::{Outcome, ScenarioReport};
use crate::server::{Database, Target};
use crate::{attack, report, server};
use crate::{now_us, BenchArgs};

/// Longest a phase waits for arrivals without any progress.
const STALL: Duration = Duration::from_secs(30);
/// Longest a phase waits for arrivals at all.
const MAX_WAIT: Duration = Duration::from_secs(2 * 3600);

/// The transform scenario's transformation: a field added, the rest kept (the
/// receiver reads the phase, sequence and send time back).
const TRANSFORMATION: &str = "function handler(webhook) {
  webhook.payload = Object.assign({ text: `tick ${webhook.payload.s}` }, webhook.payload);
  return webhook;
}";

/// The state of a bench run: the client, the receiver and the baseline.
pub(crate) struct Bench {
    pub(crate) args: BenchArgs,
    pub(crate) database: Database,
    pub(crate) http: reqwest::Client,
    pub(crate) receiver: Receiver,
    pub(crate) raw_per_second: f64,
    pub(crate) phase: u64,
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
    pub(crate) fn target_label(&self) -> String {
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

    pub(crate) async fn throughput(&mut self) -> anyhow::Result<ScenarioReport> {
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
    pub(crate) async fn transform(&mut self) -> anyhow::Result<ScenarioReport> {
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
    pub(crate) async fn metrics(&mut self) -> anyhow::Result<ScenarioReport> {
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

    pub(crate) async fn fanout(&mut self) -> anyhow::Result<ScenarioReport> {
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

    pub(crate) async fn latency(&mut self) -> anyhow::Result<ScenarioReport> {
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

    pub(crate) async fn isolation(&mut self) -> anyhow::Result<ScenarioReport> {
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

    pub(crate) async fn slowloris(&mut self) -> anyhow::Result<ScenarioReport> {
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

    pub(crate) async fn backlog(&mut self) -> anyhow::Result<ScenarioReport> {
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
