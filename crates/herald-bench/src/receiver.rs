//! The recording receiver: an HTTP server on 127.0.0.1 that answers 200 at once
//! and records, for each delivery, which endpoint got which message and how long
//! after its send it arrived.
//!
//! Paths: `/raw` (the baseline: counted, nothing else), `/ep/{k}` (endpoint `k`),
//! `/slow/{k}` (endpoint `k`, answering after the slow delay). While the gate is
//! shut, `/ep/{k}` holds each request unanswered until it opens: that is how the
//! backlog scenario takes the receiver "down" without making Herald's attempts
//! fail (see the module docs of `bench`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use serde::Deserialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::now_us;

/// What each payload carries: the phase it belongs to, its sequence number and
/// its send time (microseconds since the bench started).
#[derive(Deserialize)]
struct Mark {
    p: u64,
    s: u64,
    t: u64,
}

/// The deliveries of one phase, as counted when it ended.
pub struct PhaseRecord {
    /// Per endpoint, per sequence number: how many times it arrived.
    pub counts: Vec<Vec<u32>>,
    /// Per endpoint: end-to-end latencies (µs) of first arrivals.
    pub latencies_us: Vec<Vec<u64>>,
    /// Arrivals that belong to no endpoint or sequence of this phase.
    pub stray: u64,
    pub last_arrival_us: Option<u64>,
}

#[derive(Default)]
struct Recording {
    phase: u64,
    counts: Vec<Vec<u32>>,
    unique: Vec<u64>,
    latencies_us: Vec<Vec<u64>>,
    stray: u64,
    last_arrival_us: Option<u64>,
    raw: u64,
}

struct Shared {
    recording: Mutex<Recording>,
    gate: watch::Sender<bool>,
    slow: Duration,
}

pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
}

impl Receiver {
    /// Starts on 127.0.0.1, port 0; `/slow/*` answers after `slow`.
    pub async fn start(slow: Duration) -> anyhow::Result<Receiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (gate, _) = watch::channel(true);
        let shared = Arc::new(Shared {
            recording: Mutex::new(Recording::default()),
            gate,
            slow,
        });
        let router = axum::Router::new()
            .route("/raw", post(raw))
            .route("/ep/{k}", post(endpoint))
            .route("/slow/{k}", post(slow_endpoint))
            .with_state(shared.clone());
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(e) = served {
                eprintln!("bench receiver stopped: {e}");
            }
        });
        Ok(Receiver {
            addr,
            shared,
            shutdown,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Starts counting a new phase of `endpoints` endpoints and `messages`
    /// sequence numbers; arrivals of other phases count as stray.
    pub fn begin(&self, phase: u64, endpoints: usize, messages: u64) {
        let n = usize::try_from(messages).expect("message count fits in memory");
        let mut r = self.lock();
        *r = Recording {
            phase,
            counts: vec![vec![0; n]; endpoints],
            unique: vec![0; endpoints],
            latencies_us: (0..endpoints).map(|_| Vec::with_capacity(n)).collect(),
            raw: r.raw,
            ..Recording::default()
        };
    }

    /// Distinct messages that endpoint `k` has received in this phase.
    pub fn unique(&self, k: usize) -> u64 {
        self.lock().unique.get(k).copied().unwrap_or(0)
    }

    /// Ends the phase and hands over what was counted.
    pub fn finish(&self) -> PhaseRecord {
        let mut r = self.lock();
        let taken = std::mem::take(&mut *r);
        r.raw = taken.raw;
        r.phase = u64::MAX;
        PhaseRecord {
            counts: taken.counts,
            latencies_us: taken.latencies_us,
            stray: taken.stray,
            last_arrival_us: taken.last_arrival_us,
        }
    }

    /// Requests received on `/raw` so far.
    pub fn raw_count(&self) -> u64 {
        self.lock().raw
    }

    /// Shut: `/ep/*` requests wait unanswered. Open: they are answered.
    pub fn set_gate(&self, open: bool) {
        self.shared.gate.send_replace(open);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recording> {
        self.shared.recording.lock().expect("recording lock")
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.set_gate(true);
        self.shutdown.cancel();
    }
}

async fn raw(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    // Parse like a delivery, so the baseline does the receiver's same work.
    let _ = serde_json::from_slice::<Mark>(&body);
    shared.recording.lock().expect("recording lock").raw += 1;
    StatusCode::OK
}

async fn endpoint(
    State(shared): State<Arc<Shared>>,
    Path(k): Path<usize>,
    body: Bytes,
) -> StatusCode {
    let mut gate = shared.gate.subscribe();
    // An error means the receiver is being dropped: answer anyway.
    let _ = gate.wait_for(|open| *open).await;
    record(&shared, k, &body);
    StatusCode::OK
}

async fn slow_endpoint(
    State(shared): State<Arc<Shared>>,
    Path(k): Path<usize>,
    body: Bytes,
) -> StatusCode {
    tokio::time::sleep(shared.slow).await;
    record(&shared, k, &body);
    StatusCode::OK
}

fn record(shared: &Shared, k: usize, body: &[u8]) {
    let at = now_us();
    let mark = serde_json::from_slice::<Mark>(body).ok();
    let mut r = shared.recording.lock().expect("recording lock");
    let Some(mark) = mark.filter(|m| m.p == r.phase) else {
        r.stray += 1;
        return;
    };
    let Some(count) = usize::try_from(mark.s)
        .ok()
        .and_then(|s| r.counts.get_mut(k)?.get_mut(s))
    else {
        r.stray += 1;
        return;
    };
    *count += 1;
    if *count == 1 {
        r.unique[k] += 1;
        r.latencies_us[k].push(at.saturating_sub(mark.t));
    }
    r.last_arrival_us = Some(r.last_arrival_us.map_or(at, |l| l.max(at)));
}
