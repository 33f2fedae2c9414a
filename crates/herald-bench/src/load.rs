//! The load client: one reqwest client with HTTP keep-alive, used both for the
//! raw baseline (straight to the receiver) and to drive the server's Svix API.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::now_us;

/// Filler that gives each payload a realistic size (about 200 bytes in all).
const PAD: &str = "herald-bench-payload-0123456789abcdefghijklmnopqrstuvwxyz-0123456789abcdefghijklmnopqrstuvwxyz-0123456789abcdefghijklmnopqrstuvwxyz";
/// Most messages in flight at once when sending at a fixed rate.
const RATE_MAX_IN_FLIGHT: usize = 1024;

/// The one HTTP client of a bench run: keep-alive, enough idle connections
/// for every concurrent sender, no proxy (all traffic is to the given hosts).
pub fn client(concurrency: usize) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency.max(16) * 2)
        .tcp_nodelay(true)
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .context("cannot build the HTTP client")
}

/// A payload: its phase, sequence number and send time, read back by the receiver.
pub fn payload(phase: u64, seq: u64) -> String {
    format!(
        r#"{{"p":{phase},"s":{seq},"t":{},"data":"{PAD}"}}"#,
        now_us()
    )
}

/// A server that speaks Svix's API.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: Arc<str>,
    token: Arc<str>,
}

/// What a sending phase did.
#[derive(Default)]
pub struct Sent {
    pub attempted: u64,
    /// Sequence numbers the server did not accept (not counted as losses).
    pub rejected: Vec<u64>,
    pub first_error: Option<String>,
    pub first_send_us: u64,
    pub last_ack_us: u64,
    /// Time from each API call to its answer, in µs.
    pub api_latencies_us: Vec<u64>,
}

impl Sent {
    pub fn accepted(&self) -> u64 {
        self.attempted - self.rejected.len() as u64
    }

    fn record(&mut self, seq: u64, sent_us: u64, result: Result<(), String>) {
        let acked = now_us();
        self.attempted += 1;
        self.first_send_us = if self.attempted == 1 {
            sent_us
        } else {
            self.first_send_us.min(sent_us)
        };
        self.last_ack_us = self.last_ack_us.max(acked);
        match result {
            Ok(()) => self.api_latencies_us.push(acked.saturating_sub(sent_us)),
            Err(e) => {
                self.rejected.push(seq);
                self.first_error.get_or_insert(e);
            }
        }
    }
}

impl Api {
    pub fn new(http: reqwest::Client, base: &str, token: &str) -> Api {
        Api {
            http,
            base: base.trim_end_matches('/').into(),
            token: token.into(),
        }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn create_app(&self, name: &str) -> anyhow::Result<String> {
        let out = self
            .post_json("/api/v1/app", json!({ "name": name }))
            .await?;
        id_of(&out)
    }

    pub async fn create_endpoint(&self, app: &str, url: &str) -> anyhow::Result<String> {
        let out = self
            .post_json(
                &format!("/api/v1/app/{app}/endpoint"),
                json!({ "url": url }),
            )
            .await?;
        id_of(&out)
    }

    /// Best effort: a target keeps no work for an endpoint the bench is done with.
    pub async fn delete_endpoint(&self, app: &str, endpoint: &str) {
        let _ = self
            .http
            .delete(format!(
                "{}/api/v1/app/{app}/endpoint/{endpoint}",
                self.base
            ))
            .bearer_auth(&*self.token)
            .send()
            .await;
    }

    /// Gives an endpoint a transformation (Svix's route), enabled.
    pub async fn set_transformation(
        &self,
        app: &str,
        endpoint: &str,
        code: &str,
    ) -> anyhow::Result<()> {
        let path = format!("/api/v1/app/{app}/endpoint/{endpoint}/transformation");
        let r = self
            .http
            .patch(format!("{}{path}", self.base))
            .bearer_auth(&*self.token)
            .json(&json!({ "code": code, "enabled": true }))
            .send()
            .await
            .with_context(|| format!("PATCH {path}"))?;
        if !r.status().is_success() {
            let status = r.status();
            bail!(
                "PATCH {path}: {status}: {}",
                r.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Creates one message whose payload is `payload`.
    pub async fn send(&self, app: &str, payload: &str) -> Result<(), String> {
        let body = format!(r#"{{"eventType":"bench.tick","payload":{payload}}}"#);
        let r = self
            .http
            .post(format!("{}/api/v1/app/{app}/msg", self.base))
            .bearer_auth(&*self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("{e:#}"))?;
        let status = r.status();
        // Read the whole answer, so the connection goes back to the pool.
        let text = r.bytes().await.map_err(|e| format!("{e:#}"))?;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("{status}: {}", String::from_utf8_lossy(&text)))
        }
    }

    async fn post_json(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&*self.token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = r.status();
        let text = r.text().await?;
        if !status.is_success() {
            bail!("POST {path}: {status}: {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("POST {path}: not JSON: {text}"))
    }
}

fn id_of(v: &Value) -> anyhow::Result<String> {
    v["id"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("no id in {v}"))
}

/// Sends messages `0..n` to `app` from `concurrency` senders, each sending its
/// next message as soon as the previous one is answered.
pub async fn send_closed(api: &Api, app: &str, phase: u64, n: u64, concurrency: usize) -> Sent {
    let next = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(Mutex::new(Sent::default()));
    let mut tasks = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (api, app, next, sent) = (api.clone(), app.to_string(), next.clone(), sent.clone());
        tasks.spawn(async move {
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= n {
                    break;
                }
                let at = now_us();
                let result = api.send(&app, &payload(phase, seq)).await;
                sent.lock().expect("sent lock").record(seq, at, result);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    take(sent)
}

/// Sends messages `0..n` to `app` at `rate` per second, whatever the answers
/// (an open loop, so a slow server cannot slow the offered load down), with at
/// most [`RATE_MAX_IN_FLIGHT`] unanswered.
pub async fn send_at_rate(api: &Api, app: &str, phase: u64, n: u64, rate: f64) -> Sent {
    let sent = Arc::new(Mutex::new(Sent::default()));
    let in_flight = Arc::new(Semaphore::new(RATE_MAX_IN_FLIGHT));
    let start = tokio::time::Instant::now();
    let mut tasks = JoinSet::new();
    for seq in 0..n {
        tokio::time::sleep_until(start + Duration::from_secs_f64(seq as f64 / rate)).await;
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let (api, app, sent) = (api.clone(), app.to_string(), sent.clone());
        tasks.spawn(async move {
            let at = now_us();
            let result = api.send(&app, &payload(phase, seq)).await;
            sent.lock().expect("sent lock").record(seq, at, result);
            drop(permit);
        });
        // Reap finished tasks as we go, so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    take(sent)
}

fn take(sent: Arc<Mutex<Sent>>) -> Sent {
    std::mem::take(&mut *sent.lock().expect("sent lock"))
}

/// The machine's own limit: `concurrency` senders POSTing payloads straight to
/// `url` for `duration`. Returns (answered POSTs, failed POSTs, seconds).
pub async fn raw_posts(
    http: &reqwest::Client,
    url: &str,
    concurrency: usize,
    duration: Duration,
) -> (u64, u64, f64) {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (http, url, ok, failed) = (http.clone(), url.to_string(), ok.clone(), failed.clone());
        tasks.spawn(async move {
            let mut seq = 0;
            while Instant::now() < deadline {
                seq += 1;
                let r = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(payload(0, seq))
                    .send()
                    .await;
                let answered = match r {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                let counter = if answered { &ok } else { &failed };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    (
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64(),
    )
}
