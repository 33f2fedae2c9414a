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
mod planner;
mod wake;

pub use deliver::{Deliverer, NotMade, Pace, Retries, ENDPOINT_FRESHNESS};
pub use wake::Wake;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use herald_store::{Job, MessageStatus, Queue};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use breaker::Breaker;
use payloads::{Payload, Payloads};
use planner::{Capacity, Plan, Planner, BUSY_POLL, CLAIM_BATCH, CLAIM_MIN};

/// Deliveries of one endpoint claimed ahead, in multiples of its concurrency:
/// they wait in this worker for a slot, so a freed slot is refilled without a
/// trip to the database, and the next claim for the endpoint comes when half
/// of them are gone.
const CLAIM_AHEAD: usize = 4;

pub struct Dispatcher {
    /// The worker needs the delivery queue alone; the deliverer reads what
    /// else an attempt needs.
    store: Arc<dyn Queue>,
    config: Arc<Config>,
    deliverer: Arc<Deliverer>,
    wake: Arc<Wake>,
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Queue>,
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
        let mut worker = Worker::new(self, shutdown);
        worker.claim_until_shutdown().await;
        worker.finish().await;
    }
}

/// What every delivery task of the worker shares with the claim loop.
struct Shared {
    store: Arc<dyn Queue>,
    config: Arc<Config>,
    deliverer: Arc<Deliverer>,
    wake: Arc<Wake>,
    shutdown: CancellationToken,
    /// `HERALD_WORKER_CONCURRENCY` permits: one per delivery running or
    /// waiting for its endpoint's slot in this worker.
    global: Arc<Semaphore>,
    /// Per endpoint, what this worker holds, so that one slow endpoint cannot
    /// take every slot.
    slots: Mutex<HashMap<String, EndpointSlots>>,
    /// Signalled when a delivery finishes: its slot may unblock a busy
    /// endpoint, or make room for a batch.
    freed: Notify,
    /// Endpoints paused for failing again and again.
    breaker: Breaker,
    /// The payloads of the claimed deliveries, one copy per message, within
    /// `HERALD_WORKER_PAYLOAD_BYTES`.
    payloads: Payloads,
    /// Deliveries of one endpoint this worker may hold (running or waiting).
    ahead: usize,
    /// Worker slots that must be free before the next claim while busy.
    claim_min: usize,
    /// A claimed delivery that waited for its endpoint's slot longer than
    /// this is not sent but given back: its lease could run out mid-request,
    /// and another worker take it then.
    max_wait: Duration,
}

/// Per-endpoint accounting.
#[derive(Default)]
struct EndpointSlots {
    /// Deliveries of this worker to the endpoint, running or waiting.
    queued: usize,
    /// The endpoint's concurrency, shared with the Test button.
    running: Option<Arc<Semaphore>>,
}

/// The claim loop: its planner, and the delivery tasks it started.
struct Worker {
    shared: Arc<Shared>,
    planner: Planner,
    tasks: TaskTracker,
    /// Wait before the next claim after the store failed one (doubling).
    backoff: Duration,
}

/// One claim's lease, shared by its deliveries.
#[derive(Clone, Copy)]
struct Claim {
    lease_until: DateTime<Utc>,
    at: Instant,
}

impl Worker {
    fn new(dispatcher: Dispatcher, shutdown: CancellationToken) -> Worker {
        let config = &dispatcher.config;
        let shared = Shared {
            global: Arc::new(Semaphore::new(config.worker_concurrency)),
            slots: Mutex::default(),
            freed: Notify::new(),
            breaker: Breaker::default(),
            payloads: Payloads::new(config.worker_payload_bytes),
            ahead: config.endpoint_concurrency * CLAIM_AHEAD,
            claim_min: CLAIM_MIN.min(config.worker_concurrency),
            max_wait: config
                .lease
                .saturating_sub(config.delivery_timeout)
                .saturating_sub(Duration::from_secs(1)),
            store: dispatcher.store,
            config: dispatcher.config,
            deliverer: dispatcher.deliverer,
            wake: dispatcher.wake,
            shutdown,
        };
        Worker {
            shared: Arc::new(shared),
            planner: Planner::new(Utc::now()),
            tasks: TaskTracker::new(),
            backoff: Duration::from_millis(100),
        }
    }

    /// Claims and starts deliveries until shutdown.
    async fn claim_until_shutdown(&mut self) {
        while !self.shared.shutdown.is_cancelled() {
            let skipping = self.skipped_endpoints();
            let now = Utc::now();
            let plan = self
                .planner
                .plan(now, self.capacity(), !skipping.is_empty());
            let (since, limit) = match plan {
                Plan::WaitForSlots => {
                    if !self.wait_for_slots().await {
                        return;
                    }
                    continue;
                }
                Plan::Full { limit } => (None, limit),
                Plan::Recent { since, limit } => (Some(since), limit),
            };
            let Some(claimed) = self.claim(now, since, limit, &skipping).await else {
                continue;
            };
            // A full claim: more may be due right now.
            if claimed == limit {
                continue;
            }
            if !self.wait_for_news(now, &skipping).await {
                return;
            }
        }
    }

    /// Lets in-flight deliveries finish within the grace period.
    async fn finish(self) {
        self.tasks.close();
        let grace = self.shared.config.shutdown_grace;
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                in_flight = self.tasks.len(),
                "deliveries still running after the shutdown grace period; they will be retried after restart"
            );
        }
    }

    /// What the worker can take on now.
    fn capacity(&self) -> Capacity {
        let shared = &self.shared;
        let free_slots = shared.global.available_permits();
        Capacity {
            free_slots,
            in_flight: shared.config.worker_concurrency - free_slots,
            budget_limit: shared.payloads.claim_limit(free_slots.min(CLAIM_BATCH)),
            claim_min: shared.claim_min,
        }
    }

    /// Endpoints not to claim for: those with enough claimed ahead, and those
    /// paused for failing.
    fn skipped_endpoints(&self) -> Vec<String> {
        let shared = &self.shared;
        let mut skip: Vec<String> = shared
            .slots
            .lock()
            .expect("slots lock")
            .iter()
            .filter(|(_, s)| s.queued >= shared.ahead)
            .map(|(id, _)| id.clone())
            .collect();
        skip.extend(shared.breaker.paused_endpoints());
        skip
    }

    /// Waits for a delivery to finish (or the busy poll); false at shutdown.
    async fn wait_for_slots(&self) -> bool {
        tokio::select! {
            _ = self.shared.freed.notified() => true,
            _ = tokio::time::sleep(BUSY_POLL) => true,
            _ = self.shared.shutdown.cancelled() => false,
        }
    }

    /// Claims up to `limit` due deliveries (those that fell due after `since`,
    /// if given) and starts them. `None` when the store failed: the next try
    /// comes after a backoff.
    async fn claim(
        &mut self,
        now: DateTime<Utc>,
        since: Option<DateTime<Utc>>,
        limit: usize,
        skipping: &[String],
    ) -> Option<usize> {
        let shared = &self.shared;
        let lease =
            chrono::Duration::from_std(shared.config.lease).unwrap_or(chrono::Duration::MAX);
        let lease_until = now + lease;
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let claimed = match since {
            Some(since) => {
                shared
                    .store
                    .claim_recent(now, since, lease_until, limit, skipping)
                    .await
            }
            None => {
                shared
                    .store
                    .claim_due(now, lease_until, limit, skipping)
                    .await
            }
        };
        let jobs = match claimed {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::error!(error = %e, "claiming deliveries failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(self.backoff) => {}
                    _ = shared.shutdown.cancelled() => {}
                }
                self.backoff = (self.backoff * 2).min(Duration::from_secs(5));
                return None;
            }
        };
        self.backoff = Duration::from_millis(100);
        let count = jobs.len();
        shared
            .payloads
            .note_claim(jobs.iter().map(|j| j.payload.len()).max());
        let claim = Claim {
            lease_until,
            at: Instant::now(),
        };
        for job in jobs {
            self.start(job, claim);
        }
        Some(count)
    }

    /// Starts one claimed delivery: it waits in this worker for a slot of its
    /// endpoint, then goes out.
    fn start(&self, mut job: Job, claim: Claim) {
        let shared = self.shared.clone();
        // One copy per message; `job.payload` is empty from here on.
        let Some(payload) = shared
            .payloads
            .admit(&job.msg_id, std::mem::take(&mut job.payload))
        else {
            // Over the payload budget: back to the store, due now.
            self.tasks.spawn(async move {
                shared
                    .give_back(
                        &job.msg_id,
                        &job.endpoint_id,
                        claim,
                        "over the payload budget",
                    )
                    .await;
            });
            return;
        };
        let permit = shared
            .global
            .clone()
            .try_acquire_owned()
            .expect("claimed no more than the free permits");
        let endpoint = {
            let mut slots = shared.slots.lock().expect("slots lock");
            let slot = slots.entry(job.endpoint_id.clone()).or_default();
            slot.queued += 1;
            // The endpoint's slots are the Test button's too.
            slot.running
                .get_or_insert_with(|| shared.deliverer.limits().running(&job.endpoint_id))
                .clone()
        };
        self.tasks
            .spawn(async move { shared.deliver(job, payload, permit, endpoint, claim).await });
    }

    /// After a claim that took everything it could: sleeps until the next
    /// delivery falls due, news of new work, or a freed slot. False at
    /// shutdown.
    async fn wait_for_news(&mut self, claimed_at: DateTime<Utc>, skipping: &[String]) -> bool {
        let shared = self.shared.clone();
        let next_due = shared.store.next_due().await.ok().flatten();
        let wait = planner::idle_wait(next_due, Utc::now(), !skipping.is_empty());
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::select! {
                _ = shared.wake.notified() => {
                    // New work only for endpoints this worker is already
                    // busy with: they are claimed when a slot frees.
                    if shared.wake.take().only_for(skipping) && !left.is_zero() {
                        continue;
                    }
                    self.planner.news_after(claimed_at);
                }
                _ = shared.freed.notified() => {}
                _ = shared.store.wait_for_work(left) => {}
                _ = shared.shutdown.cancelled() => return false,
            }
            return true;
        }
    }
}

impl Shared {
    /// One delivery, from waiting for its endpoint's slot to its recorded
    /// outcome.
    async fn deliver(
        self: Arc<Self>,
        job: Job,
        payload: Arc<Payload>,
        permit: OwnedSemaphorePermit,
        endpoint: Arc<Semaphore>,
        claim: Claim,
    ) {
        let endpoint_id = job.endpoint_id.clone();
        let msg_id = job.msg_id.clone();
        let mut outcome = None;
        let mut unsent = true;
        let mut not_made = None;
        let mut pause = None;
        // Under its endpoint's rate limit it may have to wait for a later
        // slot: it goes back to the store until then, taking no slot here.
        if let Pace::At(slot) = self.deliverer.pace(&job).await {
            drop(payload);
            self.give_back_at(&msg_id, &endpoint_id, claim, slot).await;
            drop(permit);
            self.leave_endpoint(&endpoint_id);
            // The claim loop may be sleeping past this slot (it read the next
            // due time before the delivery came back): it reads it again.
            self.freed.notify_one();
            return;
        }
        if let Ok(_running) = endpoint.acquire().await {
            // A delivery still waiting for its endpoint's slot when shutdown
            // starts is not begun, nor one that waited so long that its lease
            // could end mid-request: both are given back below, due now.
            if !self.shutdown.is_cancelled() && claim.at.elapsed() < self.max_wait {
                unsent = false;
                match self
                    .deliverer
                    .send(job, payload.bytes(), Retries::Scheduled)
                    .await
                {
                    Ok(sent) => outcome = Some(sent),
                    Err(why) => not_made = Some(why),
                }
            }
            // Its bytes go back to the budget with the message's last delivery.
            drop(payload);
            if let Some((attempt, _)) = &outcome {
                let ok = attempt.status == MessageStatus::Success;
                pause = self.breaker.outcome(&endpoint_id, ok);
            }
        }
        // The endpoint's slot is free again before the outcome is written:
        // recording does not touch the endpoint. Nor is the delivery claimed
        // ahead for it any more, so the worker may claim the endpoint's next
        // ones meanwhile: an outcome waits for a group commit (milliseconds
        // on PostgreSQL), and counting those as ahead left the endpoint's
        // slots idle until they were written.
        let sent = outcome.is_some();
        if let Some((attempt, next)) = outcome {
            if self.leave_endpoint(&endpoint_id) {
                self.freed.notify_one();
            }
            self.deliverer.record(&attempt, &next).await;
        }
        // The breaker opened: recorded for the health model (the API and the
        // portal say until when) after the attempt that opened it, so the
        // store never tells a pause with fewer failures than opened it.
        if let Some(pause) = pause {
            tracing::warn!(endpoint = %endpoint_id, ?pause, "endpoint keeps failing; pausing its deliveries");
            let until = Utc::now() + chrono::Duration::from_std(pause).unwrap_or_default();
            if let Err(e) = self.store.pause_endpoint(&endpoint_id, until).await {
                tracing::warn!(error = %e, endpoint = %endpoint_id, "cannot record the pause");
            }
        }
        // Its endpoint was read as disabled: the store parks it, or (enabled
        // meanwhile) has it due again once that read is out of date. Not
        // left to its lease, which an enable would not cut short.
        if not_made == Some(NotMade::Disabled) {
            let due =
                Utc::now() + chrono::Duration::from_std(ENDPOINT_FRESHNESS).unwrap_or_default();
            let parked = self
                .store
                .release_claim(&msg_id, &endpoint_id, claim.lease_until, due, false)
                .await;
            if let Err(e) = parked {
                tracing::warn!(error = %e, msg = %msg_id, "cannot park a delivery of a disabled endpoint; it waits for its lease");
            }
        }
        if unsent {
            self.give_back(&msg_id, &endpoint_id, claim, "unsent").await;
        }
        // Enough worker slots free again for a batch may unblock the claim
        // loop too.
        drop(permit);
        let mut unblocked = self.global.available_permits() == self.claim_min;
        if !sent {
            unblocked |= self.leave_endpoint(&endpoint_id);
        }
        if unblocked {
            self.freed.notify_one();
        }
    }

    /// Gives a claimed delivery back to the store, due now. If that fails its
    /// lease runs out and it is claimed again.
    async fn give_back(&self, msg_id: &str, endpoint_id: &str, claim: Claim, why: &str) {
        let given_back = self
            .store
            .release_claim(msg_id, endpoint_id, claim.lease_until, Utc::now(), false)
            .await;
        if let Err(e) = given_back {
            tracing::warn!(error = %e, msg = %msg_id, why, "cannot give back a claimed delivery; it waits for its lease");
        }
    }

    /// Gives a claimed delivery back to the store with its reserved send slot,
    /// due then. If that fails its lease runs out and it is claimed again
    /// (and reserves another slot).
    async fn give_back_at(
        &self,
        msg_id: &str,
        endpoint_id: &str,
        claim: Claim,
        slot: chrono::DateTime<Utc>,
    ) {
        let given_back = self
            .store
            .release_claim(msg_id, endpoint_id, claim.lease_until, slot, true)
            .await;
        if let Err(e) = given_back {
            tracing::warn!(error = %e, msg = %msg_id, "cannot give back a paced delivery; it waits for its lease");
        }
    }

    /// Counts a delivery out of those claimed ahead for its endpoint. True
    /// when the claim loop may have been waiting for this: the endpoint fell
    /// to half of what it may have claimed ahead.
    fn leave_endpoint(&self, endpoint_id: &str) -> bool {
        let mut slots = self.slots.lock().expect("slots lock");
        let Some(slot) = slots.get_mut(endpoint_id) else {
            return false;
        };
        slot.queued -= 1;
        let half = slot.queued == self.ahead / 2;
        if slot.queued == 0 {
            slots.remove(endpoint_id);
        }
        half
    }
}
