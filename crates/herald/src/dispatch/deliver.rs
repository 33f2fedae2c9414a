//! One delivery attempt: shape the body for the endpoint (its date format, then
//! its content filter and transformation), sign it, send it, record the attempt and decide what comes next. The worker loop
//! and the Test button (`send-example`) both go through [`Deliverer`]: the Test
//! calls [`Deliverer::deliver`]; the worker calls [`Deliverer::send`] while it
//! holds the endpoint's slot and [`Deliverer::record`] after letting it go.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use herald_core::dates::{convert_dates, DateFormat};
use herald_core::filter;
use herald_core::id::{new_id, IdPrefix};
use herald_core::schedule::{jittered, retry_after_delay};
use herald_core::signing::signature_header;
use herald_store::{
    Attempt, Destination, DisabledBy, Endpoint, EventType, Job, MessageStatus, Next, Skip, Store,
};
use herald_transform::{Outcome as Transformed, Transformer, Webhook};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value;
use tracing::Instrument;

use super::client::{self, DeliveryClient, Outcome};
use super::limits::EndpointLimits;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::operational::Operational;
use crate::service::messages::LOOKUP_FRESHNESS;

/// How long the worker reuses what the store's cache read of an endpoint
/// (its URL, headers, state and signing keys) before reading it again. An
/// edit, a disable, a delete or a key rotation made through this process
/// applies at once (the store forgets what it changed); one made on another
/// node applies to every delivery that starts this long after it. The Test
/// button always reads afresh.
pub const ENDPOINT_FRESHNESS: Duration = Duration::from_millis(200);

/// How early a reserved send slot may be used: a slot this close is now.
const PACE_TOLERANCE: Duration = Duration::from_millis(10);

/// When a delivery may be sent, under its endpoint's rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    Now,
    /// At this reserved slot: give it back until then.
    At(chrono::DateTime<Utc>),
}

/// Why a claimed delivery was not attempted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotMade {
    /// Its endpoint was disabled (as last read): the worker gives it back,
    /// and the store parks it until the endpoint is enabled.
    Disabled,
    /// Its endpoint, application or message was deleted.
    Gone,
    /// The endpoint's signing keys, or the endpoint itself, could not be
    /// read: the claim's lease runs out and it is tried again.
    Unreadable,
}

/// Whether a failed attempt is tried again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retries {
    /// On the configured schedule (every delivery the worker makes).
    Scheduled,
    /// Never: a Test shows its one outcome and is done.
    None,
}

/// What an endpoint's filter and transformation made of a delivery.
enum Shaped {
    Send {
        method: Method,
        url: String,
        body: Bytes,
    },
    /// Nothing to send, by the endpoint's own choice, and why.
    Skip(Skip, String),
    /// The transformation failed; the text says how (line, message).
    Failed(String),
}

pub struct Deliverer {
    store: Arc<dyn Store>,
    config: Arc<Config>,
    client: DeliveryClient,
    limits: EndpointLimits,
    /// Runs endpoints' transformations (shared with the API's simulate).
    transformer: Transformer,
    metrics: Arc<Metrics>,
    /// Tells the operator about failing, exhausted and recovered deliveries
    /// and endpoints disabled by a 410.
    operational: Arc<Operational>,
}

impl Deliverer {
    pub fn new(
        store: Arc<dyn Store>,
        config: Arc<Config>,
        transformer: Transformer,
        metrics: Arc<Metrics>,
        operational: Arc<Operational>,
    ) -> anyhow::Result<Deliverer> {
        let client = DeliveryClient::new(
            config.allow_subnets.clone(),
            config.delivery_timeout,
            config.hosts_override.clone(),
        )?;
        let limits = EndpointLimits::new(config.endpoint_concurrency, config.test_rate_per_minute);
        Ok(Deliverer {
            store,
            config,
            client,
            limits,
            transformer,
            metrics,
            operational,
        })
    }

    /// The per-endpoint limits the worker and the Test button share.
    pub fn limits(&self) -> &EndpointLimits {
        &self.limits
    }

    /// Makes one attempt and records it. Returns the attempt, or `None` when it
    /// could not be made ([`NotMade`]).
    pub async fn deliver(&self, mut job: Job, retries: Retries) -> Option<Attempt> {
        let payload = Bytes::from(std::mem::take(&mut job.payload).into_bytes());
        let (attempt, next) = self.send(job, payload, retries).await.ok()?;
        self.record(&attempt, &next).await;
        Some(attempt)
    }

    /// Makes one attempt and decides what comes next, without recording it,
    /// or says why none was made. `payload` is the message's
    /// payload (the worker shares one copy among a message's deliveries);
    /// `job.payload` is not read.
    pub async fn send(
        &self,
        job: Job,
        payload: Bytes,
        retries: Retries,
    ) -> Result<(Attempt, Next), NotMade> {
        // Exported over OTLP only (`telemetry.rs`), beside the message's
        // span by `herald.msg_id`; never the URL, headers or body. Without an
        // exporter the span is disabled and costs nothing.
        let span = tracing::info_span!(
            target: crate::telemetry::TARGET,
            crate::telemetry::DELIVERY_ATTEMPT,
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            herald.app_id = %job.app_id,
            herald.msg_id = %job.msg_id,
            herald.endpoint_id = %job.endpoint_id,
            herald.event_type = %job.event_type,
            herald.attempt = job.attempts + 1,
            herald.trigger = ?job.trigger,
            herald.outcome = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
            herald.duration_ms = tracing::field::Empty,
        );
        let sent = self
            .attempt(job, payload, retries)
            .instrument(span.clone())
            .await;
        if span.is_disabled() {
            return sent;
        }
        match &sent {
            Ok((attempt, next)) => {
                let outcome = match (&attempt.skipped, next) {
                    (Some(_), _) => "skipped",
                    (None, Next::Done) => "success",
                    (None, Next::GiveUp) => "failed",
                    (None, _) => "retry",
                };
                span.record("herald.outcome", outcome);
                if attempt.response_status_code != 0 {
                    span.record("http.response.status_code", attempt.response_status_code);
                }
                span.record("herald.duration_ms", attempt.response_duration_ms);
                if attempt.status == MessageStatus::Fail {
                    span.record("otel.status_code", "error");
                }
            }
            Err(_) => {
                span.record("herald.outcome", "not_made");
            }
        }
        sent
    }

    async fn attempt(
        &self,
        job: Job,
        payload: Bytes,
        retries: Retries,
    ) -> Result<(Attempt, Next), NotMade> {
        let fresh = retries == Retries::None;
        let lag = (Utc::now() - job.due_at).to_std().unwrap_or_default();
        let destination = match self.destination(&job, fresh).await {
            Ok(Some(destination)) => destination,
            Ok(None) => return Err(NotMade::Gone),
            Err(e) => {
                tracing::error!(error = %e, "cannot load signing keys; will retry");
                return Err(NotMade::Unreadable);
            }
        };
        let ep = &destination.endpoint;
        // Disabled meanwhile: no attempt is made or logged, and the worker
        // gives the delivery back for the store to park until the endpoint
        // is enabled. A Test still shows why nothing was sent.
        if ep.disabled && retries == Retries::Scheduled {
            return Err(NotMade::Disabled);
        }
        // Where the request went: the endpoint's URL, or the one its
        // transformation chose.
        let mut url = ep.url.clone();
        let mut skipped = None;
        let mut request_headers = Vec::new();
        let outcome = if ep.disabled {
            Outcome::NoResponse {
                reason: "the endpoint is disabled".into(),
                duration: Duration::ZERO,
            }
        } else {
            let started = Instant::now();
            let body = self.body_for(&job, ep, payload).await;
            match self.shape(&job, ep, body).await {
                Shaped::Send {
                    method,
                    url: to,
                    body,
                } => {
                    url = to;
                    let headers = signed_headers(&job, &destination, Utc::now().timestamp(), &body);
                    // Kept for the log without the `svix-*` copies of the
                    // `webhook-*` headers (the same values; the page says so).
                    request_headers = client::header_pairs(&headers);
                    request_headers.retain(|(name, _)| !name.starts_with("svix-"));
                    let _in_flight = self.metrics.sending();
                    self.client.send(method, &url, headers, body).await
                }
                Shaped::Skip(why, reason) => {
                    skipped = Some(why);
                    Outcome::NoResponse {
                        reason,
                        duration: started.elapsed(),
                    }
                }
                Shaped::Failed(reason) => Outcome::NoResponse {
                    reason,
                    duration: started.elapsed(),
                },
            }
        };
        let failed_attempts = u32::try_from(job.attempts + 1).unwrap_or(u32::MAX);
        let retry = |hint| match retries {
            Retries::Scheduled if !ep.disabled => self.next_after_failure(failed_attempts, hint),
            _ => Next::GiveUp,
        };
        let mut response_headers = Vec::new();
        let (code, response, duration, next) = match outcome {
            Outcome::Response {
                status,
                body,
                headers,
                retry_after,
                duration,
            } => {
                response_headers = headers;
                let next = if (200..300).contains(&status) {
                    Next::Done
                } else if status == 410 {
                    self.disable_gone(&job, ep).await;
                    Next::GiveUp
                } else if status == 429 || status == 503 {
                    let hint = retry_after.as_deref().and_then(|h| {
                        retry_after_delay(h, Utc::now(), self.config.max_retry_after)
                    });
                    // A rate-limited endpoint's other sends wait as long.
                    if let (Some(wait), Some(_)) = (hint, ep.throttle_rate) {
                        self.hold(&job.endpoint_id, wait).await;
                    }
                    retry(hint)
                } else {
                    retry(None)
                };
                (i64::from(status), body, duration, next)
            }
            // Nothing was sent by the endpoint's own choice: done, not failed.
            Outcome::NoResponse { reason, duration } if skipped.is_some() => {
                (0, reason, duration, Next::Done)
            }
            Outcome::NoResponse { reason, duration } => (0, reason, duration, retry(None)),
        };
        let attempt = Attempt {
            id: new_id(IdPrefix::Attempt),
            msg_id: job.msg_id.clone(),
            endpoint_id: job.endpoint_id.clone(),
            app_id: job.app_id.clone(),
            url,
            status: if matches!(next, Next::Done) {
                MessageStatus::Success
            } else {
                MessageStatus::Fail
            },
            response_status_code: code,
            response,
            response_duration_ms: i64::try_from(duration.as_millis()).unwrap_or(i64::MAX),
            trigger_type: job.trigger,
            skipped,
            request_headers,
            response_headers,
            created_at: Utc::now(),
        };
        self.metrics.attempted(&attempt, lag);
        if retries == Retries::Scheduled && !ep.disabled {
            self.operational.after_attempt(&job, &attempt, &next).await;
            if attempt.status == MessageStatus::Fail && attempt.skipped.is_none() {
                self.disable_if_failing_too_long(&job, ep).await;
            }
        }
        Ok((attempt, next))
    }

    /// When `job` may be sent: now, or at a later slot of its endpoint's rate
    /// limit (`throttleRate` messages per second, kept across every worker by
    /// reserving slots in the store). A delivery claimed in the slot it holds,
    /// or whose endpoint has no limit, goes now; so does one whose slot cannot
    /// be reserved (the database cannot say), logged.
    pub async fn pace(&self, job: &Job) -> Pace {
        let rate = match self.destination(job, false).await {
            Ok(destination) => destination.and_then(|d| d.endpoint.throttle_rate),
            Err(_) => None,
        };
        let Some(rate) = rate.filter(|r| *r > 0) else {
            return Pace::Now;
        };
        let interval = Duration::from_secs_f64(1.0 / rate as f64);
        let now = Utc::now();
        // A delivery holding a slot sends in it; one claimed well after its
        // slot (a busy worker) takes a new one rather than bunch up with the
        // deliveries of the slots after it.
        let late = (now - job.due_at).to_std().unwrap_or_default();
        if job.slotted && late <= interval / 2 {
            return Pace::Now;
        }
        match self
            .store
            .reserve_slot(&job.endpoint_id, interval, now)
            .await
        {
            Ok(Some(slot)) if slot > now + PACE_TOLERANCE => Pace::At(slot),
            Ok(_) => Pace::Now,
            Err(e) => {
                tracing::warn!(error = %e, endpoint = %job.endpoint_id, "cannot reserve a send slot; sending now");
                Pace::Now
            }
        }
    }

    /// Records an attempt [`Deliverer::send`] made.
    pub async fn record(&self, attempt: &Attempt, next: &Next) {
        match self.store.record_attempt(attempt, next).await {
            Ok(()) => {}
            // Its application, message or endpoint was deleted while the
            // request was in flight: there is nothing left to record it on.
            Err(herald_store::StoreError::NotFound) => tracing::debug!(
                msg = %attempt.msg_id,
                endpoint = %attempt.endpoint_id,
                "the delivery was deleted while in flight; its attempt is not recorded"
            ),
            // The lease runs out and the delivery is tried again: at least once.
            Err(e) => {
                tracing::error!(error = %e, msg = %attempt.msg_id, "cannot record attempt; the delivery will be retried")
            }
        }
    }

    /// The delivery's endpoint with the keys that sign now, as the store
    /// read it at most [`ENDPOINT_FRESHNESS`] ago (`fresh`: now). A claimed
    /// delivery may wait for its endpoint's slot; an edit, a disable or a
    /// delete made meanwhile applies to it: only a request already under way
    /// goes out as it was. `Ok(None)` when the endpoint is gone; an error when
    /// it has no usable signing key or the database cannot say (the lease then
    /// runs out and the delivery is tried again).
    async fn destination(
        &self,
        job: &Job,
        fresh: bool,
    ) -> anyhow::Result<Option<Arc<Destination>>> {
        let max_age = if fresh {
            Duration::ZERO
        } else {
            ENDPOINT_FRESHNESS
        };
        let destination = self
            .store
            .destination(&job.app_id, &job.endpoint_id, max_age)
            .await?;
        if let Some(d) = &destination {
            if d.secrets.is_empty() {
                anyhow::bail!("endpoint {} has no usable signing key", job.endpoint_id);
            }
        }
        Ok(destination)
    }

    /// Holds the endpoint's rate-limited sends for `wait`.
    async fn hold(&self, endpoint_id: &str, wait: Duration) {
        let until = Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
        if let Err(e) = self.store.hold_endpoint(endpoint_id, until).await {
            tracing::warn!(error = %e, endpoint = %endpoint_id, "cannot hold the endpoint's sends after 429");
        }
    }

    /// Gone: the receiver asks us to stop. Disable the endpoint, and tell the
    /// operator.
    async fn disable_gone(&self, job: &Job, ep: &Endpoint) {
        self.disable(job, ep, DisabledBy::Gone).await;
    }

    /// An endpoint whose every attempt failed for `HERALD_ENDPOINT_DISABLE_AFTER`
    /// (as last read: at most [`ENDPOINT_FRESHNESS`] old) is disabled.
    async fn disable_if_failing_too_long(&self, job: &Job, ep: &Endpoint) {
        let Some(since) = ep.health.failing_since else {
            return;
        };
        let limit = chrono::Duration::from_std(self.config.endpoint_disable_after)
            .unwrap_or(chrono::Duration::MAX);
        if Utc::now() - since >= limit {
            self.disable(job, ep, DisabledBy::Failing).await;
        }
    }

    /// Disables the endpoint on Herald's account and, if this call did it,
    /// tells the operator.
    async fn disable(&self, job: &Job, ep: &Endpoint, by: DisabledBy) {
        let endpoint_id = &job.endpoint_id;
        let disabled = self
            .store
            .disable_endpoint(endpoint_id, by, Utc::now())
            .await;
        match disabled {
            Ok(false) => {}
            Ok(true) => {
                tracing::info!(endpoint = %endpoint_id, reason = by.as_str(), "endpoint disabled");
                if let Ok(Some(app)) = self.store.get_app(&job.org_id, &job.app_id).await {
                    let now_disabled = Endpoint {
                        disabled: true,
                        ..ep.clone()
                    };
                    self.operational
                        .endpoint_disabled(&app, &now_disabled, by, ep.health.failing_since)
                        .await;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, endpoint = %endpoint_id, reason = by.as_str(), "cannot disable endpoint")
            }
        }
    }

    fn next_after_failure(&self, failed_attempts: u32, hint: Option<Duration>) -> Next {
        match self.config.retry_schedule.delay_after(failed_attempts) {
            None => Next::GiveUp,
            Some(delay) => {
                let delay = hint.unwrap_or_else(|| jittered(delay, &mut rand::thread_rng()));
                let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
                Next::RetryAt(Utc::now() + delay)
            }
        }
    }

    /// What the endpoint's content filter and transformation make of a
    /// delivery's body (dates already converted), before it is signed: the
    /// signature covers the bytes the transformation produced. An endpoint
    /// with neither sends the body as it is, unparsed.
    async fn shape(&self, job: &Job, ep: &Endpoint, body: Bytes) -> Shaped {
        let code = ep.transformation.active_code();
        let untouched = |body| Shaped::Send {
            method: Method::POST,
            url: ep.url.clone(),
            body,
        };
        // A raw payload (not JSON) goes as it is: filters and
        // transformations read JSON.
        if (ep.filters.is_empty() && code.is_none()) || job.content_type.is_some() {
            return untouched(body);
        }
        let payload: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return Shaped::Failed(format!("the payload is not JSON: {e}")),
        };
        if let Some(rule) = filter::first_unmet(&ep.filters, &payload) {
            return Shaped::Skip(
                Skip::Filtered,
                format!("filtered out: {rule} does not hold for this message"),
            );
        }
        let Some(code) = code else {
            return untouched(body);
        };
        let webhook = Webhook {
            event_type: job.event_type.clone(),
            payload,
            url: ep.url.clone(),
            method: "POST".into(),
            variables: ep.transformation.variables.clone(),
        };
        match self.transformer.run(code.into(), webhook).await {
            Ok(Transformed::Cancel) => Shaped::Skip(
                Skip::Cancelled,
                "cancelled by the endpoint's transformation (webhook.cancel)".into(),
            ),
            Ok(Transformed::Send {
                payload,
                url,
                method,
            }) => match (
                serde_json::to_vec(&payload),
                Method::from_bytes(method.as_bytes()),
            ) {
                (Ok(body), Ok(method)) => Shaped::Send {
                    method,
                    url,
                    body: Bytes::from(body),
                },
                (Err(e), _) => {
                    Shaped::Failed(format!("transformation returned an unusable result: {e}"))
                }
                (_, Err(e)) => {
                    Shaped::Failed(format!("transformation returned an unusable result: {e}"))
                }
            },
            Err(failure) => Shaped::Failed(failure.to_string()),
        }
    }

    /// The bytes to send: the payload as accepted (shared, not copied), or,
    /// for an endpoint that chose another date format, with the timestamp
    /// fields its event type's schema marks rewritten. A payload without a
    /// schema goes out untouched.
    async fn body_for(&self, job: &Job, ep: &Endpoint, payload: Bytes) -> Bytes {
        let format = DateFormat::parse(&ep.date_format).unwrap_or_default();
        // Dates are converted in JSON payloads only.
        if format == DateFormat::Unix || job.content_type.is_some() {
            return payload;
        }
        let event_type = match self.event_type(job).await {
            Ok(Some(et)) => et,
            Ok(None) => return payload,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the event type; sending dates unconverted");
                return payload;
            }
        };
        let (Some(schema), Ok(mut value)) = (
            event_type.latest_schema(),
            serde_json::from_slice::<serde_json::Value>(&payload),
        ) else {
            return payload;
        };
        if convert_dates(&mut value, schema, format) == 0 {
            return payload;
        }
        serde_json::to_vec(&value).map_or(payload, Bytes::from)
    }

    /// The message's event type, from the organisation's event types as the
    /// store's cache holds them (read for new messages too).
    async fn event_type(&self, job: &Job) -> herald_store::Result<Option<EventType>> {
        let types = self
            .store
            .cached_event_types(&job.org_id, LOOKUP_FRESHNESS)
            .await?;
        match types {
            Some(types) => Ok(types.get(&job.event_type).cloned()),
            None => {
                self.store
                    .get_event_type(&job.org_id, &job.event_type)
                    .await
            }
        }
    }
}

/// The Standard Webhooks headers (and their `svix-` twins) over the exact
/// bytes sent, plus the endpoint's own headers.
fn signed_headers(job: &Job, to: &Destination, timestamp: i64, body: &[u8]) -> HeaderMap {
    let signature = signature_header(&to.secrets, &job.msg_id, timestamp, body);
    let timestamp = timestamp.to_string();
    let mut headers = HeaderMap::new();
    for (name, value) in &to.endpoint.headers {
        client::insert(&mut headers, name, value);
    }
    let content_type = job.content_type.as_deref().unwrap_or("application/json");
    client::insert(&mut headers, "content-type", content_type);
    for prefix in ["webhook", "svix"] {
        client::insert(&mut headers, &format!("{prefix}-id"), &job.msg_id);
        client::insert(&mut headers, &format!("{prefix}-timestamp"), &timestamp);
        client::insert(&mut headers, &format!("{prefix}-signature"), &signature);
    }
    headers
}
