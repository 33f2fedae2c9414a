//! Prometheus metrics (`GET /metrics`, OpenMetrics text): what this process
//! counted (messages accepted, attempts by outcome, their durations and lag,
//! deliveries in flight) and what the database holds now (deliveries due,
//! endpoints by state), read when scraped. One registry per process, held by
//! [`Metrics`], never a global: two servers in one test binary count apart.
//!
//! Labels are few and fixed (an attempt's outcome, an endpoint state), so
//! cardinality stays bounded however many endpoints there are: nothing is
//! labelled by application or endpoint.

use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use herald_store::{Attempt, MessageStatus, Skip, Store};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The content type of what [`Metrics::render`] writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum AttemptOutcome {
    /// A 2xx.
    success,
    /// Anything else: an error status, no response, a failing transformation.
    failure,
    /// Not sent: the endpoint's content filter held it back.
    filtered,
    /// Not sent: the endpoint's transformation cancelled it.
    cancelled,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: AttemptOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum EndpointState {
    active,
    failing,
    paused,
    disabled,
    auto_disabled,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: EndpointState,
}

pub struct Metrics {
    /// Off (`HERALD_METRICS=off`): nothing is counted and `/metrics` is 404.
    enabled: bool,
    registry: Registry,
    messages_accepted: Counter,
    attempts: Family<OutcomeLabel, Counter>,
    duration: Histogram,
    lag: Histogram,
    in_flight: Gauge,
    queue_due: Gauge,
    endpoints: Family<StateLabel, Gauge>,
    /// One scrape at a time reads the database.
    scraping: tokio::sync::Mutex<()>,
    /// The last scrape's database error, logged once per change.
    last_error: Mutex<Option<String>>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Metrics that count nothing (`HERALD_METRICS=off`).
    pub fn off() -> Metrics {
        Metrics {
            enabled: false,
            ..Metrics::new()
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let messages_accepted = Counter::default();
        registry.register(
            "herald_messages_accepted",
            "Messages accepted by the API (answered 202)",
            messages_accepted.clone(),
        );
        let attempts = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "herald_delivery_attempts",
            "Delivery attempts made by this process, by outcome",
            attempts.clone(),
        );
        // 1 ms to ~33 s.
        let duration = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "herald_delivery_duration_seconds",
            "Time from sending a delivery's request to its response (or failure)",
            duration.clone(),
        );
        // 1 ms to ~9 h.
        let lag = Histogram::new(exponential_buckets(0.001, 3.0, 16));
        registry.register(
            "herald_delivery_lag_seconds",
            "Time from when a delivery fell due to when its attempt started",
            lag.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "herald_deliveries_in_flight",
            "Delivery requests this process has under way",
            in_flight.clone(),
        );
        let queue_due = Gauge::default();
        registry.register(
            "herald_queue_due",
            "Deliveries due now, in the whole database (in flight ones included)",
            queue_due.clone(),
        );
        let endpoints = Family::<StateLabel, Gauge>::default();
        registry.register(
            "herald_endpoints",
            "Endpoints in the whole database, by state",
            endpoints.clone(),
        );
        Metrics {
            enabled: true,
            registry,
            messages_accepted,
            attempts,
            duration,
            lag,
            in_flight,
            queue_due,
            endpoints,
            scraping: tokio::sync::Mutex::new(()),
            last_error: Mutex::new(None),
        }
    }

    pub fn message_accepted(&self) {
        if self.enabled {
            self.messages_accepted.inc();
        }
    }

    /// A request is about to be sent; the guard counts it in flight until
    /// dropped.
    pub fn sending(&self) -> InFlight<'_> {
        if self.enabled {
            self.in_flight.inc();
        }
        InFlight(self)
    }

    /// An attempt was made, `lag` after its delivery fell due.
    pub fn attempted(&self, attempt: &Attempt, lag: Duration) {
        if !self.enabled {
            return;
        }
        let outcome = match (attempt.skipped, attempt.status) {
            (Some(Skip::Filtered), _) => AttemptOutcome::filtered,
            (Some(Skip::Cancelled), _) => AttemptOutcome::cancelled,
            (None, MessageStatus::Success) => AttemptOutcome::success,
            (None, _) => AttemptOutcome::failure,
        };
        self.attempts.get_or_create(&OutcomeLabel { outcome }).inc();
        if attempt.skipped.is_none() {
            self.duration
                .observe(attempt.response_duration_ms.max(0) as f64 / 1000.0);
        }
        self.lag.observe(lag.as_secs_f64());
    }

    /// The text Prometheus scrapes, with the database's counts read now. A
    /// database that cannot answer leaves those two at their last values (and
    /// is logged); the process's own counters are always there.
    pub async fn render(&self, store: &dyn Store) -> String {
        {
            let _one = self.scraping.lock().await;
            match store.gauges(Utc::now()).await {
                Ok(g) => {
                    self.queue_due.set(g.due);
                    for (state, n) in [
                        (EndpointState::active, g.endpoints_active),
                        (EndpointState::failing, g.endpoints_failing),
                        (EndpointState::paused, g.endpoints_paused),
                        (EndpointState::disabled, g.endpoints_disabled),
                        (EndpointState::auto_disabled, g.endpoints_auto_disabled),
                    ] {
                        self.endpoints.get_or_create(&StateLabel { state }).set(n);
                    }
                    *self.last_error.lock().expect("metrics lock") = None;
                }
                Err(e) => {
                    let text = e.to_string();
                    let mut last = self.last_error.lock().expect("metrics lock");
                    if last.as_deref() != Some(text.as_str()) {
                        tracing::warn!(error = %text, "metrics: cannot read the database's counts");
                        *last = Some(text);
                    }
                }
            }
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// A request in flight, counted until dropped.
pub struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.enabled {
            self.0.in_flight.dec();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_are_counted_by_outcome_with_bounded_labels() {
        let m = Metrics::new();
        let attempt = |status, skipped| Attempt {
            request_headers: Vec::new(),
            response_headers: Vec::new(),
            id: "atmpt_1".into(),
            msg_id: "msg_1".into(),
            endpoint_id: "ep_1".into(),
            app_id: "app_1".into(),
            url: "https://example.com/".into(),
            status,
            response_status_code: 200,
            response: String::new(),
            response_duration_ms: 12,
            trigger_type: herald_store::TriggerType::Scheduled,
            skipped,
            created_at: Utc::now(),
        };
        m.attempted(&attempt(MessageStatus::Success, None), Duration::ZERO);
        m.attempted(&attempt(MessageStatus::Fail, None), Duration::ZERO);
        m.attempted(&attempt(MessageStatus::Fail, None), Duration::ZERO);
        m.attempted(
            &attempt(MessageStatus::Success, Some(Skip::Filtered)),
            Duration::ZERO,
        );
        m.message_accepted();
        {
            let _sending = m.sending();
            assert_eq!(m.in_flight.get(), 1);
        }
        assert_eq!(m.in_flight.get(), 0);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &m.registry).unwrap();
        for line in [
            "herald_messages_accepted_total 1",
            "herald_delivery_attempts_total{outcome=\"success\"} 1",
            "herald_delivery_attempts_total{outcome=\"failure\"} 2",
            "herald_delivery_attempts_total{outcome=\"filtered\"} 1",
            "herald_delivery_duration_seconds_count 3",
            "herald_delivery_lag_seconds_count 4",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} in\n{out}");
        }
    }
}
