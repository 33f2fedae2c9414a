//! The delivery worker: claims due deliveries from the store under a lease, signs
//! and POSTs each one, records the attempt and schedules the next.
//!
//! Architecture invariant: a delivery's state lives only in the store. The
//! worker holds nothing that a crash could lose: a delivery cut off mid-flight
//! keeps its lease until it expires (or the store is reopened), then is claimed
//! again and sent with the same `webhook-id`.

pub mod client;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use herald_core::id::{new_id, IdPrefix};
use herald_core::schedule::{jittered, retry_after_delay};
use herald_core::signing::{signature_header, EndpointSecret};
use herald_store::{Attempt, Job, MessageStatus, Next, Store};
use reqwest::header::HeaderMap;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use client::{DeliveryClient, Outcome};

/// How long a claimed delivery belongs to this worker. Longer than the delivery
/// timeout, so a live worker never loses a delivery it is still sending.
const LEASE: Duration = Duration::from_secs(60);
/// Most deliveries claimed in one query.
const CLAIM_BATCH: usize = 64;
/// Longest idle sleep: retries that fall due are found at least this often.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Poll interval while some endpoints are at their concurrency limit.
const BUSY_POLL: Duration = Duration::from_millis(50);

pub struct Dispatcher {
    store: Arc<dyn Store>,
    config: Arc<Config>,
    client: DeliveryClient,
    wake: Arc<Notify>,
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
        wake: Arc<Notify>,
    ) -> anyhow::Result<Dispatcher> {
        let client = DeliveryClient::new(config.allow_subnets.clone(), config.delivery_timeout)?;
        Ok(Dispatcher {
            store,
            config,
            client,
            wake,
        })
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

        while !shutdown.is_cancelled() {
            let free = global.available_permits().min(CLAIM_BATCH);
            if free == 0 {
                tokio::select! {
                    permit = global.clone().acquire_owned() => drop(permit),
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
            let busy: Vec<String> = {
                let slots = slots.lock().expect("slots lock");
                slots
                    .iter()
                    .filter(|(_, s)| s.queued >= this.config.endpoint_concurrency)
                    .map(|(id, _)| id.clone())
                    .collect()
            };
            let now = Utc::now();
            let lease_until = now + chrono::Duration::from_std(LEASE).expect("small duration");
            let jobs = match this
                .store
                .claim_due(now, lease_until, free as u32, &busy)
                .await
            {
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
            for job in jobs {
                let permit = global
                    .clone()
                    .try_acquire_owned()
                    .expect("claimed no more than the free permits");
                let endpoint_sem = {
                    let mut slots = slots.lock().expect("slots lock");
                    let slot = slots.entry(job.endpoint_id.clone()).or_default();
                    slot.queued += 1;
                    slot.running
                        .get_or_insert_with(|| {
                            Arc::new(Semaphore::new(this.config.endpoint_concurrency))
                        })
                        .clone()
                };
                let this = this.clone();
                let slots = slots.clone();
                let freed = freed.clone();
                let shutdown = shutdown.clone();
                tasks.spawn(async move {
                    let endpoint_id = job.endpoint_id.clone();
                    if let Ok(_running) = endpoint_sem.acquire().await {
                        // A delivery still waiting for its endpoint's slot when
                        // shutdown starts is not begun; it is retried after restart.
                        if !shutdown.is_cancelled() {
                            this.deliver(job).await;
                        }
                    }
                    release(&slots, &endpoint_id, permit);
                    freed.notify_one();
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
            tokio::select! {
                _ = this.wake.notified() => {}
                _ = freed.notified(), if !busy.is_empty() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => break,
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

    /// One attempt: sign, send, record, schedule.
    async fn deliver(&self, job: Job) {
        let now = Utc::now();
        let (outcome, url) = if job.disabled {
            (
                Outcome::NoResponse {
                    reason: "the endpoint is disabled".into(),
                    duration: Duration::ZERO,
                },
                job.url.clone(),
            )
        } else {
            match self.signed_headers(&job, now.timestamp()).await {
                Ok(headers) => (
                    self.client
                        .post(&job.url, headers, job.payload.clone().into_bytes())
                        .await,
                    job.url.clone(),
                ),
                Err(e) => {
                    tracing::error!(error = %e, msg = %job.msg_id, "cannot load signing keys; will retry");
                    return;
                }
            }
        };
        let failed_attempts = u32::try_from(job.attempts + 1).unwrap_or(u32::MAX);
        let (status, code, response, duration, next) = match outcome {
            Outcome::Response {
                status,
                body,
                retry_after,
                duration,
            } => {
                let next = if (200..300).contains(&status) {
                    Next::Done
                } else if status == 410 {
                    // Gone: the receiver asks us to stop. Disable the endpoint.
                    if let Err(e) = self.store.disable_endpoint(&job.endpoint_id).await {
                        tracing::error!(error = %e, endpoint = %job.endpoint_id, "cannot disable endpoint after 410");
                    } else {
                        tracing::info!(endpoint = %job.endpoint_id, "endpoint answered 410 Gone; disabled");
                    }
                    Next::GiveUp
                } else {
                    let hint = if status == 429 || status == 503 {
                        retry_after.as_deref().and_then(|h| {
                            retry_after_delay(h, Utc::now(), self.config.max_retry_after)
                        })
                    } else {
                        None
                    };
                    self.next_after_failure(failed_attempts, job.disabled, hint)
                };
                let ok = matches!(next, Next::Done);
                (ok, i64::from(status), body, duration, next)
            }
            Outcome::NoResponse { reason, duration } => {
                let next = self.next_after_failure(failed_attempts, job.disabled, None);
                (false, 0, reason, duration, next)
            }
        };
        let attempt = Attempt {
            id: new_id(IdPrefix::Attempt),
            msg_id: job.msg_id.clone(),
            endpoint_id: job.endpoint_id.clone(),
            app_id: job.app_id.clone(),
            url,
            status: if status {
                MessageStatus::Success
            } else {
                MessageStatus::Fail
            },
            response_status_code: code,
            response,
            response_duration_ms: i64::try_from(duration.as_millis()).unwrap_or(i64::MAX),
            trigger_type: job.trigger,
            created_at: Utc::now(),
        };
        if let Err(e) = self.store.record_attempt(&attempt, &next).await {
            // The lease runs out and the delivery is tried again: at least once.
            tracing::error!(error = %e, msg = %job.msg_id, "cannot record attempt; the delivery will be retried");
        }
    }

    fn next_after_failure(
        &self,
        failed_attempts: u32,
        disabled: bool,
        hint: Option<Duration>,
    ) -> Next {
        if disabled {
            return Next::GiveUp;
        }
        match self.config.retry_schedule.delay_after(failed_attempts) {
            None => Next::GiveUp,
            Some(delay) => {
                let delay = hint.unwrap_or_else(|| jittered(delay, &mut rand::thread_rng()));
                let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
                Next::RetryAt(Utc::now() + delay)
            }
        }
    }

    /// The Standard Webhooks headers (and their `svix-` twins), plus the
    /// endpoint's own headers.
    async fn signed_headers(&self, job: &Job, timestamp: i64) -> anyhow::Result<HeaderMap> {
        let keys = self.store.secrets(&job.endpoint_id, Utc::now()).await?;
        let secrets: Vec<EndpointSecret> = keys
            .iter()
            .filter_map(|k| EndpointSecret::parse(&k.key).ok())
            .collect();
        if secrets.is_empty() {
            anyhow::bail!("endpoint {} has no usable signing key", job.endpoint_id);
        }
        let signature = signature_header(&secrets, &job.msg_id, timestamp, job.payload.as_bytes());
        let timestamp = timestamp.to_string();
        let mut headers = HeaderMap::new();
        for (name, value) in &job.headers {
            client::insert(&mut headers, name, value);
        }
        client::insert(&mut headers, "content-type", "application/json");
        for prefix in ["webhook", "svix"] {
            client::insert(&mut headers, &format!("{prefix}-id"), &job.msg_id);
            client::insert(&mut headers, &format!("{prefix}-timestamp"), &timestamp);
            client::insert(&mut headers, &format!("{prefix}-signature"), &signature);
        }
        Ok(headers)
    }
}

fn release(slots: &Slots, endpoint_id: &str, permit: OwnedSemaphorePermit) {
    drop(permit);
    let mut slots = slots.lock().expect("slots lock");
    if let Some(slot) = slots.get_mut(endpoint_id) {
        slot.queued -= 1;
        if slot.queued == 0 {
            slots.remove(endpoint_id);
        }
    }
}
