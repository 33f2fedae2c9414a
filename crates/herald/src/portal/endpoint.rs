//! `/portal/endpoints/{id}`: one endpoint's page — its state in words, the
//! Test button's outcome, the day's chart, the settings and signing secret,
//! and the delivery log with its filters and search.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use herald_core::signing::EndpointSecret;
use herald_store::{
    Application, Attempt, Delivery, DisabledBy, Endpoint, EndpointState, EventType, ListFilter,
    Message, MessageStatus, Page, Store,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::chart;
use super::pages::Notice;
use super::request::{app_of, base, catalog_types, endpoint_of, with};
use super::session::Session;
use super::test_button::{self, TestResult};
use super::{page, PortalResult};
use crate::service::endpoints::is_sensitive;
use crate::service::Herald;

const LOG_PAGE: u32 = 20;
/// Attempts read for the chart at most (a day of a busy endpoint is summarised
/// from its newest attempts).
const CHART_MAX_ATTEMPTS: usize = 10_000;
use herald_core::headers::MASK;
/// An endpoint's state in the portal's words (its badge's class too).
pub(super) fn state_word(ep: &Endpoint) -> &'static str {
    match ep.state() {
        EndpointState::Active => "active",
        EndpointState::Failing => "failing",
        EndpointState::Paused => "paused",
        EndpointState::Disabled => "disabled",
        EndpointState::AutoDisabled => "disabled",
    }
}

/// A sentence with a time in it, as the templates show it:
/// `{before}<time>{at}</time>{after}`, the time in the one date style.
pub(super) fn sentence(
    before: impl Into<String>,
    at: Option<DateTime<Utc>>,
    after: impl Into<String>,
) -> Value {
    json!({"before": before.into(), "at": at.map(|t| t.to_rfc3339()), "after": after.into()})
}

/// Why an endpoint is in its state, in a sentence (none when all is well):
/// `{before, at, after}`, the time between shown as every time is (exact,
/// or relative with the exact one on hover).
pub(super) fn state_detail(ep: &Endpoint) -> Option<Value> {
    let h = &ep.health;
    let last_error = || {
        h.last_error
            .as_deref()
            .map(|e| format!(", the last with “{e}”"))
            .unwrap_or_default()
    };
    match ep.state() {
        EndpointState::Active => None,
        EndpointState::Failing => Some(sentence(
            "Failing since ",
            Some(h.failing_since?),
            format!(
                ": {} attempt{} in a row failed{}. Herald keeps retrying.",
                h.consecutive_failures,
                if h.consecutive_failures == 1 { "" } else { "s" },
                last_error()
            ),
        )),
        EndpointState::Paused => Some(sentence(
            "Paused until ",
            Some(h.paused_until?),
            format!(
                " after {} failed attempts in a row{}. Herald tries again then; nothing is lost.",
                h.consecutive_failures,
                last_error()
            ),
        )),
        EndpointState::Disabled => Some(match h.disabled_at {
            Some(at) => sentence(
                "Disabled by a person on ",
                Some(at),
                ". Nothing is sent until it is enabled; what was pending then waits.",
            ),
            None => sentence("Disabled. Nothing is sent until it is enabled.", None, ""),
        }),
        EndpointState::AutoDisabled => Some(sentence(
            if h.disabled_at.is_some() {
                "Disabled by Herald on "
            } else {
                "Disabled by Herald"
            },
            h.disabled_at,
            format!(
                "{}. What was pending waits and is sent once you enable it again.",
                match h.disabled_by {
                    Some(DisabledBy::Gone) => " because the receiver answered 410 Gone",
                    _ => " because every attempt failed for too long",
                }
            ),
        )),
    }
}

/// The endpoint's state in short, for the Webhooks list: since or until
/// when, and the last error of a failing one (cut to a line).
pub(super) fn state_short(ep: &Endpoint) -> Option<Value> {
    let h = &ep.health;
    let (word, at) = match ep.state() {
        EndpointState::Active => return None,
        EndpointState::Failing => ("since ", h.failing_since),
        EndpointState::Paused => ("until ", h.paused_until),
        EndpointState::Disabled | EndpointState::AutoDisabled => ("since ", h.disabled_at),
    };
    let error = match ep.state() {
        EndpointState::Failing | EndpointState::Paused => h.last_error.as_deref().map(|e| {
            let mut cut: String = e.chars().take(80).collect();
            if cut.len() < e.len() {
                cut.push('…');
            }
            cut
        }),
        _ => None,
    };
    Some(json!({"word": at.map(|_| word), "at": at.map(|t| t.to_rfc3339()), "error": error}))
}

/// `/portal/endpoints/{id}`: the endpoint page.
/// After a Test, `?tested=` names its message (or `none`, with the reason in
/// a flash cookie, which this page then removes).
pub async fn endpoint(
    State(state): State<Herald>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<Notice>,
    Query(log_q): Query<LogQuery>,
    headers: HeaderMap,
) -> PortalResult<Response> {
    let app = app_of(&state, &session).await?;
    let ep = endpoint_of(&state, &app, &id).await?;
    let test = match q.tested.as_deref() {
        Some(tested) => {
            test_button::outcome(&state, &app, &ep, tested, q.test_type.as_deref(), &headers)
                .await?
        }
        None => None,
    };
    let flashed = q.tested.as_deref() == Some("none");
    let mut response = endpoint_page(&state, &session, &app, &ep, &q, &log_q, test).await?;
    if flashed {
        response
            .headers_mut()
            .insert(header::SET_COOKIE, test_button::clear_flash());
    }
    Ok(response)
}

async fn endpoint_page(
    state: &Herald,
    session: &Session,
    app: &Application,
    ep: &Endpoint,
    q: &Notice,
    log_q: &LogQuery,
    test: Option<TestResult>,
) -> PortalResult<Response> {
    let store = state.store.as_ref();
    let now = Utc::now();

    // The Test menu: types with an example, the endpoint's own first.
    let types = catalog_types(state, session).await?;
    let own = ep.event_types.clone().unwrap_or_default();
    let mut testable: Vec<&EventType> = types.iter().filter(|t| t.example(0).is_some()).collect();
    testable.sort_by_key(|t| (!own.contains(&t.name), t.name.clone()));
    let selected = test
        .as_ref()
        .map(|t| t.event_type.clone())
        .or_else(|| testable.first().map(|t| t.name.clone()));
    let test_types: Vec<Value> = testable
        .iter()
        .map(|t| json!({"name": t.name, "own": own.contains(&t.name), "selected": selected.as_deref() == Some(t.name.as_str())}))
        .collect();

    // The chart and the day's numbers, from the attempts themselves.
    let since = now - Duration::hours(24);
    let attempts = attempts_since(store, &app.id, &ep.id, since).await?;
    let chart = chart::hourly(&attempts, now);

    let secret = crate::service::endpoints::current_key(state, ep).await?;
    // A `whsk_` key's receivers verify with its public half, the only half
    // shown: the private key signs here and never leaves.
    let public_key = secret
        .as_deref()
        .and_then(|k| EndpointSecret::parse(k).ok())
        .and_then(|k| k.public_key());
    let secret = secret.filter(|_| public_key.is_none());

    // The delivery log, newest first, one page at a time, filtered as asked.
    let log = delivery_log(store, app, ep, log_q, q.before.as_deref(), now).await?;
    let mut log_types: Vec<String> = if own.is_empty() {
        types.iter().map(|t| t.name.clone()).collect()
    } else {
        own.clone()
    };
    if let Some(chosen) = log_q.event_type() {
        if !log_types.iter().any(|t| t == chosen) {
            log_types.push(chosen.to_string());
        }
    }
    log_types.sort();

    let title = ep.url.clone();
    page(
        "endpoint.html",
        with(
            base(session, Some(app), &title, "webhooks"),
            json!({
                "ep": {
                    "id": ep.id,
                    "url": ep.url,
                    "description": ep.description,
                    "disabled": ep.disabled,
                    "state": state_word(ep),
                    "state_detail": state_detail(ep),
                    "events": own,
                    "channels": ep.channels.clone().unwrap_or_default(),
                    "date_format": ep.date_format,
                    "transformation": ep.transformation.active_code().map(|code| super::transform::format_of(&types, code)),
                    "filters": ep.filters.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "headers": masked_headers(&ep.headers),
                    "created": ep.created_at.to_rfc3339(),
                },
                "secret": secret,
                "public_key": public_key,
                "test_types": test_types,
                "test": test,
                "chart": {
                    "svg": chart.svg,
                    "successes": chart.successes,
                    "failures": chart.failures,
                },
                "log": log.rows,
                "older": log.older,
                "paged": q.before.is_some(),
                "newest": log_q.href(&ep.id, None),
                "log_filter": {
                    "status": log_q.status.as_deref().unwrap_or_default(),
                    "event_type": log_q.event_type().unwrap_or_default(),
                    "q": log_q.search().unwrap_or_default(),
                    "error": log.error,
                    "on": log_q.is_filtered(),
                },
                "log_types": log_types,
                "recover_default": (now - Duration::hours(24)).format("%Y-%m-%dT%H:%M").to_string(),
                "notice": q.text(),
            }),
        ),
    )
}

/// The delivery log's filters and search (`?status=&event_type=&q=`), as a
/// form without JavaScript sends them.
#[derive(Deserialize, Default)]
pub struct LogQuery {
    /// `delivered`, `failed` or `pending`; empty is any.
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    event_type: Option<String>,
    /// A message id or the platform's eventId.
    #[serde(default)]
    q: Option<String>,
}

impl LogQuery {
    fn event_type(&self) -> Option<&str> {
        self.event_type
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    fn search(&self) -> Option<&str> {
        self.q.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }

    /// The delivery status asked for; an unknown word is an error to show.
    fn status(&self) -> Result<Option<MessageStatus>, String> {
        match self.status.as_deref().map(str::trim).unwrap_or_default() {
            "" => Ok(None),
            "delivered" => Ok(Some(MessageStatus::Success)),
            "failed" => Ok(Some(MessageStatus::Fail)),
            "pending" => Ok(Some(MessageStatus::Pending)),
            other => Err(format!(
                "“{other}” is not a status to filter by: choose delivered, failed or pending."
            )),
        }
    }

    fn is_filtered(&self) -> bool {
        matches!(self.status(), Ok(Some(_)))
            || self.event_type().is_some()
            || self.search().is_some()
    }

    /// The log with these filters, from its newest or after `before`.
    fn href(&self, endpoint_id: &str, before: Option<&str>) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Ok(Some(_)) = self.status() {
            query.append_pair("status", self.status.as_deref().unwrap_or_default().trim());
        }
        if let Some(t) = self.event_type() {
            query.append_pair("event_type", t);
        }
        if let Some(before) = before {
            query.append_pair("before", before);
        }
        let query = query.finish();
        let sep = if query.is_empty() { "" } else { "?" };
        format!("/portal/endpoints/{endpoint_id}{sep}{query}#delivery-log")
    }
}

/// One page of the delivery log as the page shows it.
struct Log {
    rows: Vec<Value>,
    /// The link to the next (older) page, with the same filters.
    older: Option<String>,
    /// Why a filter was not applied.
    error: Option<String>,
}

async fn delivery_log(
    store: &dyn Store,
    app: &Application,
    ep: &Endpoint,
    q: &LogQuery,
    before: Option<&str>,
    now: DateTime<Utc>,
) -> PortalResult<Log> {
    let (status, error) = match q.status() {
        Ok(status) => (status, None),
        Err(e) => (None, Some(e)),
    };
    // "pending" is every delivery not finished: waiting for its first
    // attempt (pending) or for a retry (sending).
    let unfinished = status == Some(MessageStatus::Pending);
    let filter = ListFilter {
        status: status.filter(|_| !unfinished),
        unfinished,
        event_types: q
            .event_type()
            .map(|t| vec![t.to_string()])
            .unwrap_or_default(),
        ..ListFilter::default()
    };
    if let Some(text) = q.search() {
        // One message, by id or eventId, if this endpoint has a delivery of it
        // that the other filters keep.
        let found = match store.get_message(&app.id, text).await? {
            Some(msg) => delivery_of(store, app, ep, &msg, &filter).await?,
            None => None,
        };
        let items: Vec<_> = found.into_iter().collect();
        let rows = log_rows(store, app, ep, &items, now).await?;
        return Ok(Log {
            rows,
            older: None,
            error,
        });
    }
    let log_page = Page {
        limit: LOG_PAGE,
        iterator: before.map(str::to_string),
        descending: true,
        backwards: false,
    };
    let log = store
        .list_attempted_messages(&app.id, &ep.id, &filter, &log_page)
        .await?;
    let older = (!log.done)
        .then(|| log.items.last().map(|(m, _)| q.href(&ep.id, Some(&m.id))))
        .flatten();
    let rows = log_rows(store, app, ep, &log.items, now).await?;
    Ok(Log { rows, older, error })
}

/// A message's delivery to this endpoint, if the filter keeps it. The store
/// lists deliveries by time, not by message id: the list is narrowed to the
/// message's own millisecond and event type, and the message picked from it.
async fn delivery_of(
    store: &dyn Store,
    app: &Application,
    ep: &Endpoint,
    msg: &Message,
    filter: &ListFilter,
) -> PortalResult<Option<(Message, Delivery)>> {
    if !filter.event_types.is_empty() && !filter.event_types.contains(&msg.event_type) {
        return Ok(None);
    }
    let narrow = ListFilter {
        status: filter.status,
        unfinished: filter.unfinished,
        event_types: vec![msg.event_type.clone()],
        after: Some(msg.created_at - Duration::milliseconds(1)),
        before: Some(msg.created_at + Duration::milliseconds(1)),
        ..ListFilter::default()
    };
    let mut page = Page {
        limit: 100,
        iterator: None,
        descending: true,
        backwards: false,
    };
    loop {
        let batch = store
            .list_attempted_messages(&app.id, &ep.id, &narrow, &page)
            .await?;
        page.iterator = batch.items.last().map(|(m, _)| m.id.clone());
        if let Some(found) = batch.items.into_iter().find(|(m, _)| m.id == msg.id) {
            return Ok(Some(found));
        }
        if batch.done || page.iterator.is_none() {
            return Ok(None);
        }
    }
}

/// The log's rows: each message's delivery in words, with its last attempt.
async fn log_rows(
    store: &dyn Store,
    app: &Application,
    ep: &Endpoint,
    items: &[(Message, Delivery)],
    now: DateTime<Utc>,
) -> PortalResult<Vec<Value>> {
    let mut rows = Vec::new();
    for (msg, delivery) in items {
        let last = last_attempt_of(store, &app.id, &msg.id, &ep.id).await?;
        // Not tried yet and due later: a message sent with `deliverAt`.
        let scheduled = delivery.next_attempt_at.filter(|due| {
            last.is_none() && delivery.status == MessageStatus::Pending && *due > now
        });
        // Tried, not finished: when it is tried next, or that it waits for
        // the endpoint to be enabled again.
        let unfinished = matches!(
            delivery.status,
            MessageStatus::Pending | MessageStatus::Sending
        ) && last.is_some();
        let retry = delivery
            .next_attempt_at
            .filter(|_| unfinished && scheduled.is_none());
        let waiting = unfinished && delivery.next_attempt_at.is_none() && ep.disabled;
        rows.push(json!({
            "retry": retry.is_some(),
            "retry_iso": retry.map(|t| t.to_rfc3339()),
            "waiting": waiting,
            "error": last
                .as_ref()
                .filter(|a| a.response_status_code == 0 && a.skipped.is_none() && a.status != MessageStatus::Success)
                .map(|a| a.response.chars().take(80).collect::<String>()),
            "scheduled": scheduled.is_some(),
            "scheduled_iso": scheduled.map(|t| t.to_rfc3339()),
            "id": msg.id,
            "event_id": msg.event_id,
            "event_type": msg.event_type,
            "iso": msg.created_at.to_rfc3339(),
            // Not sent by the endpoint's own choice: say which.
            "status": last
                .as_ref()
                .and_then(|a| a.skipped)
                .map_or(status_word(delivery.status), |s| s.as_str()),
            "code": last.as_ref().map(|a| a.response_status_code).filter(|c| *c > 0),
            "attempts": delivery.attempts,
        }));
    }
    Ok(rows)
}

/// The log's word for a delivery: a Spot admin sees "pending" for one not
/// finished, first attempt or retry alike (the row says when it is tried
/// next).
fn status_word(s: MessageStatus) -> &'static str {
    match s {
        MessageStatus::Success => "success",
        MessageStatus::Pending | MessageStatus::Sending => "pending",
        MessageStatus::Fail => "failed",
    }
}

pub(super) fn masked_headers(headers: &BTreeMap<String, String>) -> Vec<Value> {
    headers
        .iter()
        .map(|(k, v)| {
            let sensitive = is_sensitive(k);
            json!({"name": k, "value": if sensitive { MASK } else { v.as_str() }, "sensitive": sensitive})
        })
        .collect()
}

async fn attempts_since(
    store: &dyn Store,
    app_id: &str,
    endpoint_id: &str,
    since: DateTime<Utc>,
) -> PortalResult<Vec<Attempt>> {
    let filter = ListFilter {
        after: Some(since),
        ..ListFilter::default()
    };
    let mut page = Page {
        limit: 250,
        iterator: None,
        descending: true,
        backwards: false,
    };
    let mut all = Vec::new();
    loop {
        let batch = store
            .list_attempts_by_endpoint(app_id, endpoint_id, &filter, &page)
            .await?;
        page.iterator = batch.items.last().map(|a| a.id.clone());
        all.extend(batch.items);
        if batch.done || page.iterator.is_none() || all.len() >= CHART_MAX_ATTEMPTS {
            return Ok(all);
        }
    }
}

pub(super) async fn last_attempt_of(
    store: &dyn Store,
    app_id: &str,
    msg_id: &str,
    endpoint_id: &str,
) -> PortalResult<Option<Attempt>> {
    let filter = ListFilter {
        endpoint_id: Some(endpoint_id.to_string()),
        ..ListFilter::default()
    };
    let page = Page {
        limit: 1,
        iterator: None,
        descending: true,
        backwards: false,
    };
    Ok(store
        .list_attempts_by_msg(app_id, msg_id, &filter, &page)
        .await?
        .items
        .into_iter()
        .next())
}
