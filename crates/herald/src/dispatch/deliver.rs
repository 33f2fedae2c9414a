//! One delivery attempt: shape the body for the endpoint (its date format), sign
//! it, POST it, record the attempt and decide what comes next. The worker loop
//! and the Test button (`send-example`) both go through [`Deliverer::deliver`].

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use herald_core::dates::{convert_dates, DateFormat};
use herald_core::id::{new_id, IdPrefix};
use herald_core::schedule::{jittered, retry_after_delay};
use herald_core::signing::{signature_header, EndpointSecret};
use herald_store::{Attempt, Job, MessageStatus, Next, Store};
use reqwest::header::HeaderMap;

use super::client::{self, DeliveryClient, Outcome};
use crate::config::Config;

/// Whether a failed attempt is tried again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retries {
    /// On the configured schedule (every delivery the worker makes).
    Scheduled,
    /// Never: a Test shows its one outcome and is done.
    None,
}

pub struct Deliverer {
    store: Arc<dyn Store>,
    config: Arc<Config>,
    client: DeliveryClient,
}

impl Deliverer {
    pub fn new(store: Arc<dyn Store>, config: Arc<Config>) -> anyhow::Result<Deliverer> {
        let client = DeliveryClient::new(config.allow_subnets.clone(), config.delivery_timeout)?;
        Ok(Deliverer {
            store,
            config,
            client,
        })
    }

    /// Makes one attempt and records it. Returns the attempt, or `None` when it
    /// could not be made (signing keys unreadable: the lease then runs out and
    /// the delivery is tried again; or the endpoint was deleted meanwhile).
    pub async fn deliver(&self, job: Job, retries: Retries) -> Option<Attempt> {
        let job = self.with_current_endpoint(job).await?;
        let outcome = if job.disabled {
            Outcome::NoResponse {
                reason: "the endpoint is disabled".into(),
                duration: Duration::ZERO,
            }
        } else {
            let body = self.body_for(&job).await;
            match self
                .signed_headers(&job, Utc::now().timestamp(), &body)
                .await
            {
                Ok(headers) => self.client.post(&job.url, headers, body).await,
                Err(e) => {
                    tracing::error!(error = %e, msg = %job.msg_id, "cannot load signing keys; will retry");
                    return None;
                }
            }
        };
        let failed_attempts = u32::try_from(job.attempts + 1).unwrap_or(u32::MAX);
        let retry = |hint| match retries {
            Retries::Scheduled if !job.disabled => self.next_after_failure(failed_attempts, hint),
            _ => Next::GiveUp,
        };
        let (code, response, duration, next) = match outcome {
            Outcome::Response {
                status,
                body,
                retry_after,
                duration,
            } => {
                let next = if (200..300).contains(&status) {
                    Next::Done
                } else if status == 410 {
                    self.disable_gone(&job.endpoint_id).await;
                    Next::GiveUp
                } else if status == 429 || status == 503 {
                    retry(retry_after.as_deref().and_then(|h| {
                        retry_after_delay(h, Utc::now(), self.config.max_retry_after)
                    }))
                } else {
                    retry(None)
                };
                (i64::from(status), body, duration, next)
            }
            Outcome::NoResponse { reason, duration } => (0, reason, duration, retry(None)),
        };
        let attempt = Attempt {
            id: new_id(IdPrefix::Attempt),
            msg_id: job.msg_id.clone(),
            endpoint_id: job.endpoint_id.clone(),
            app_id: job.app_id.clone(),
            url: job.url.clone(),
            status: if matches!(next, Next::Done) {
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
        Some(attempt)
    }

    /// The job with its endpoint as it is now. A claimed delivery may wait for
    /// its endpoint's slot; an edit, a disable or a delete made meanwhile, on any
    /// node, applies to it: only a request already under way goes out as it was.
    /// `None` when the endpoint is gone. If the database cannot say, the claim's
    /// copy is used (recording the attempt needs the database anyway).
    async fn with_current_endpoint(&self, mut job: Job) -> Option<Job> {
        match self.store.get_endpoint(&job.app_id, &job.endpoint_id).await {
            Ok(Some(ep)) => {
                job.url = ep.url;
                job.headers = ep.headers;
                job.disabled = ep.disabled;
                job.date_format = ep.date_format;
                Some(job)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, endpoint = %job.endpoint_id, "cannot re-read the endpoint; using the claim's copy");
                Some(job)
            }
        }
    }

    /// Gone: the receiver asks us to stop. Disable the endpoint.
    async fn disable_gone(&self, endpoint_id: &str) {
        match self.store.disable_endpoint(endpoint_id).await {
            Ok(()) => {
                tracing::info!(endpoint = %endpoint_id, "endpoint answered 410 Gone; disabled")
            }
            Err(e) => {
                tracing::error!(error = %e, endpoint = %endpoint_id, "cannot disable endpoint after 410")
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

    /// The bytes to send: the payload as accepted, or, for an endpoint that chose
    /// another date format, with the timestamp fields its event type's schema
    /// marks rewritten. A payload without a schema goes out untouched.
    async fn body_for(&self, job: &Job) -> Vec<u8> {
        let format = DateFormat::parse(&job.date_format).unwrap_or_default();
        if format == DateFormat::Unix {
            return job.payload.clone().into_bytes();
        }
        let event_type = match self
            .store
            .get_event_type(&job.org_id, &job.event_type)
            .await
        {
            Ok(Some(et)) => et,
            Ok(None) => return job.payload.clone().into_bytes(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the event type; sending dates unconverted");
                return job.payload.clone().into_bytes();
            }
        };
        let (Some(schema), Ok(mut payload)) = (
            event_type.latest_schema(),
            serde_json::from_str::<serde_json::Value>(&job.payload),
        ) else {
            return job.payload.clone().into_bytes();
        };
        if convert_dates(&mut payload, schema, format) == 0 {
            return job.payload.clone().into_bytes();
        }
        serde_json::to_vec(&payload).unwrap_or_else(|_| job.payload.clone().into_bytes())
    }

    /// The Standard Webhooks headers (and their `svix-` twins) over the exact
    /// bytes sent, plus the endpoint's own headers.
    async fn signed_headers(
        &self,
        job: &Job,
        timestamp: i64,
        body: &[u8],
    ) -> anyhow::Result<HeaderMap> {
        let keys = self.store.secrets(&job.endpoint_id, Utc::now()).await?;
        let secrets: Vec<EndpointSecret> = keys
            .iter()
            .filter_map(|k| EndpointSecret::parse(&k.key).ok())
            .collect();
        if secrets.is_empty() {
            anyhow::bail!("endpoint {} has no usable signing key", job.endpoint_id);
        }
        let signature = signature_header(&secrets, &job.msg_id, timestamp, body);
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
