//! The delivery worker: claims due deliveries from the store under a lease, signs
//! and POSTs each one, records the attempt and schedules the next.
//!
//! Architecture invariant: a delivery's state lives only in the store. The
//! worker holds nothing that a crash could lose: a delivery cut off mid-flight
//! keeps its lease until it expires (or the store is reopened), then is claimed
//! again and sent with the same `webhook-id`.

mod breaker;
pub mod client;
mod deliver;
pub mod limits;
mod payloads;
mod wake;

pub use deliver::{Deliverer, Retries};
pub use wake::Wake;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use herald_store::{MessageStatus, Store};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use breaker::Breaker;
use payloads::Payloads;

/// Most deliveries claimed in one query.
const CLAIM_BATCH: usize = 64;
/// While deliveries are in flight, the worker claims again only once this many
/// slots are free, so that under load each claim takes a batch, not one.
const CLAIM_MIN: usize = 16;
/// Deliveries of one endpoint claimed ahead, in multiples of its concurrency:
/// they wait in this worker for a slot, so a freed slot is refilled without a
/// trip to the database, and the next claim for the endpoint comes when half
/// of them are gone.
const CLAIM_AHEAD: usize = 4;
/// Longest idle sleep: retries that fall due are found at least this often.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Poll interval while some endpoints are at their concurrency limit.
const BUSY_POLL: Duration = Duration::from_millis(50);
/// A claim made for news of new work looks only at deliveries that fell due
/// since the previous claim, less this margin for messages still committing
/// then. A claim that looks at all due deliveries runs at least every
/// `BUSY_POLL`; while some endpoints are skipped, at most every `IDLE_POLL`,
/// since it walks their whole backlog (a million rows is ~0.1 s), and the
/// claims in between look at what fell due since it.
const NEWS_MARGIN: chrono::Duration = chrono::Duration::milliseconds(250);

pub struct Dispatcher {
    store: Arc<dyn Store>,
    config: Arc<Config>,
    deliverer: Arc<Deliverer>,
    wake: Arc<Wake>,
}

/// Per-endpoint accounting, so that one slow endpoint cannot take every slot.
#[derive(Default)]
struct EndpointSlots {
    /// Deliveries of this worker to the endpoint, running or waiting.
    queued: usize,
    running: Option<Arc<Semaphore>>,
}

type Slots = Arc<Mutex<HashMap<String, EndpointSlots>>>;

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        config: Arc<Config>,
        deliverer: Arc<Deliverer>,
        wake: Arc<Wake>,
    ) -> Dispatcher {
        Dispatcher {
            store,
            config,
            deliverer,
            wake,
        }
    }

    /// Runs until `shutdown`, then lets in-flight deliveries finish within the
    /// configured grace period. Whatever is cut off stays leased in the store and
    /// is retried after restart.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let global = Arc::new(Semaphore::new(this.config.worker_concurrency));
        let slots: Slots = Arc::default();
        // Signalled when a delivery finishes: its slot may unblock a busy endpoint.
        let freed = Arc::new(Notify::new());
        let tasks = TaskTracker::new();
        let mut backoff = Duration::from_millis(100);

        let breaker = Arc::new(Breaker::default());
        let payloads = Payloads::new(this.config.worker_payload_bytes);
        let ahead = this.config.endpoint_concurrency * CLAIM_AHEAD;
        let claim_min = CLAIM_MIN.min(this.config.worker_concurrency);
        // A claimed delivery that waited for its slot so long that its lease may
        // run out before its request does is not sent (another claim could
        // take it mid-request) but given back.
        let max_wait = this
            .config
            .lease
            .saturating_sub(this.config.delivery_timeout)
            .saturating_sub(Duration::from_secs(1));
        // When the last claim that looked at every due delivery was made.
        let mut last_full_claim = Utc::now();
        // Set when the loop wakes for news only: claim just the recent.
        let mut since: Option<chrono::DateTime<Utc>> = None;
        while !shutdown.is_cancelled() {
            let available = global.available_permits();
            let in_flight = this.config.worker_concurrency - available;
            let free = available.min(CLAIM_BATCH);
            // No more than the payload budget can hold (large payloads are
            // claimed a few at a time).
            let free = match payloads.claim_limit(free) {
                limit if free == 0 || limit == 0 || (in_flight > 0 && free < claim_min) => {
                    tokio::select! {
                        _ = freed.notified() => {}
                        _ = tokio::time::sleep(BUSY_POLL) => {}
                        _ = shutdown.cancelled() => break,
                    }
                    continue;
                }
                limit => limit,
            };
            // Endpoints not to claim for: those with enough claimed ahead, and
            // those paused for failing.
            let mut busy: Vec<String> = {
                let slots = slots.lock().expect("slots lock");
                slots
                    .iter()
                    .filter(|(_, s)| s.queued >= ahead)
                    .map(|(id, _)| id.clone())
                    .collect()
            };
            busy.extend(breaker.paused_endpoints());
            let now = Utc::now();
            let lease_until = now
                + chrono::Duration::from_std(this.config.lease).unwrap_or(chrono::Duration::MAX);
            let full_every = if busy.is_empty() {
                BUSY_POLL
            } else {
                IDLE_POLL
            };
            let since_full = (now - last_full_claim).to_std().unwrap_or(Duration::ZERO);
            let recent = if since_full >= full_every {
                since = None;
                None
            } else if busy.is_empty() {
                since.take()
            } else {
                // Skipping endpoints: never walk their backlog more than once
                // per IDLE_POLL.
                since.take().or(Some(last_full_claim - NEWS_MARGIN))
            };
            let claim = match recent {
                Some(since) => {
                    this.store
                        .claim_recent(now, since, lease_until, free as u32, &busy)
                        .await
                }
                None => {
                    last_full_claim = now;
                    this.store
                        .claim_due(now, lease_until, free as u32, &busy)
                        .await
                }
            };
            let jobs = match claim {
                Ok(jobs) => {
                    backoff = Duration::from_millis(100);
                    jobs
                }
                Err(e) => {
                    tracing::error!(error = %e, "claiming deliveries failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => break,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            let claimed = jobs.len();
            let claimed_at = Instant::now();
            payloads.note_claim(jobs.iter().map(|j| j.payload.len()).max());
            for mut job in jobs {
                // One copy per message; `job.payload` is empty from here on.
                let Some(payload) = payloads.admit(&job.msg_id, std::mem::take(&mut job.payload))
                else {
                    // Over the payload budget: back to the store, due now.
                    let store = this.store.clone();
                    tasks.spawn(async move {
                        let given_back = store
                            .release_claim(&job.msg_id, &job.endpoint_id, lease_until, Utc::now())
                            .await;
                        if let Err(e) = given_back {
                            tracing::warn!(error = %e, msg = %job.msg_id, "cannot give back a delivery over the payload budget; it waits for its lease");
                        }
                    });
                    continue;
                };
                let permit = global
                    .clone()
                    .try_acquire_owned()
                    .expect("claimed no more than the free permits");
                let endpoint_sem = {
                    let mut slots = slots.lock().expect("slots lock");
                    let slot = slots.entry(job.endpoint_id.clone()).or_default();
                    slot.queued += 1;
                    // The endpoint's slots are the Test button's too.
                    slot.running
                        .get_or_insert_with(|| this.deliverer.limits().running(&job.endpoint_id))
                        .clone()
                };
                let this = this.clone();
                let slots = slots.clone();
                let freed = freed.clone();
                let global = global.clone();
                let shutdown = shutdown.clone();
                let breaker = breaker.clone();
                tasks.spawn(async move {
                    let endpoint_id = job.endpoint_id.clone();
                    let msg_id = job.msg_id.clone();
                    let mut outcome = None;
                    let mut unsent = true;
                    if let Ok(_running) = endpoint_sem.acquire().await {
                        // A delivery still waiting for its endpoint's slot when
                        // shutdown starts is not begun, nor one that waited so
                        // long that its lease could end mid-request: both are
                        // given back below, due now.
                        if !shutdown.is_cancelled() && claimed_at.elapsed() < max_wait {
                            unsent = false;
                            outcome = this
                                .deliverer
                                .send(job, payload.bytes(), Retries::Scheduled)
                                .await;
                        }
                        // Its bytes go back to the budget with the message's
                        // last delivery.
                        drop(payload);
                        if let Some((attempt, _)) = &outcome {
                            let ok = attempt.status == MessageStatus::Success;
                            if breaker.outcome(&endpoint_id, ok) {
                                tracing::warn!(endpoint = %endpoint_id, "endpoint keeps failing; pausing its deliveries");
                            }
                        }
                    }
                    // The endpoint's slot is free again before the outcome is
                    // written: recording does not touch the endpoint.
                    if let Some((attempt, next)) = outcome {
                        this.deliverer.record(&attempt, &next).await;
                    }
                    if unsent {
                        let given_back = this
                            .store
                            .release_claim(&msg_id, &endpoint_id, lease_until, Utc::now())
                            .await;
                        if let Err(e) = given_back {
                            // The lease runs out and the delivery is claimed again.
                            tracing::warn!(error = %e, msg = %msg_id, "cannot give back an unsent delivery; it waits for its lease");
                        }
                    }
                    if release(&slots, &endpoint_id, ahead, permit, &global, claim_min) {
                        freed.notify_one();
                    }
                });
            }
            if claimed == free {
                continue;
            }
            let wait = match this.store.next_due().await {
                Ok(Some(due)) => (due - Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .min(IDLE_POLL),
                _ => IDLE_POLL,
            };
            // Deliveries of a busy endpoint may be due now: don't spin on them;
            // a finished delivery wakes the loop instead.
            let wait = if busy.is_empty() {
                wait
            } else {
                wait.max(BUSY_POLL)
            };
            let deadline = Instant::now() + wait;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::select! {
                    _ = this.wake.notified() => {
                        // New work only for endpoints this worker is already
                        // busy with: they are claimed when a slot frees.
                        if this.wake.take().only_for(&busy) && !left.is_zero() {
                            continue;
                        }
                        // The claim just made came up short: it took all it
                        // could see up to `now`.
                        since = Some(now - NEWS_MARGIN);
                    }
                    _ = freed.notified() => {}
                    _ = this.store.wait_for_work(left) => {}
                    _ = shutdown.cancelled() => break,
                }
                break;
            }
        }

        tasks.close();
        let grace = this.config.shutdown_grace;
        if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
            tracing::warn!(
                in_flight = tasks.len(),
                "deliveries still running after the shutdown grace period; they will be retried after restart"
            );
        }
    }
}

/// Gives back a finished delivery's slots. True when the claim loop may have
/// been waiting for this: the endpoint fell to half of what it may have
/// claimed ahead, or enough worker slots are free again for a batch.
fn release(
    slots: &Slots,
    endpoint_id: &str,
    ahead: usize,
    permit: OwnedSemaphorePermit,
    global: &Semaphore,
    claim_min: usize,
) -> bool {
    drop(permit);
    let mut unblocked = global.available_permits() == claim_min;
    let mut slots = slots.lock().expect("slots lock");
    if let Some(slot) = slots.get_mut(endpoint_id) {
        slot.queued -= 1;
        unblocked |= slot.queued == ahead / 2;
        if slot.queued == 0 {
            slots.remove(endpoint_id);
        }
    }
    unblocked
}
