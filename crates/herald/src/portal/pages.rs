//! The portal's pages and the small POST actions on them. Forms that create or
//! edit an endpoint are in [`super::form`].

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use herald_core::signing::EndpointSecret;
use herald_store::{
    Application, Attempt, DisabledBy, Endpoint, EndpointState, EventType, ListFilter,
    MessageStatus, Page, Store,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::chart;
use super::request::{app_of, base, catalog_types, check_csrf, endpoint_of, with, FormData};
use super::session::Session;
use super::{page, PortalError, PortalResult};
use crate::service::endpoints::{self, send_test, SENSITIVE_HEADERS};
use crate::service::Herald;

const LOG_PAGE: u32 = 20;
/// Attempts read for the chart at most (a day of a busy endpoint is summarised
/// from its newest attempts).
const CHART_MAX_ATTEMPTS: usize = 10_000;
const MASK: &str = "••••••••";

pub(super) fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub(super) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    token: String,
}

/// Opens a portal link, once: the link's grant is marked used and the token
/// becomes a session cookie. A link opened before, expired, ended, or for an
/// application deleted since opens nothing.
pub async fn login(
    State(state): State<Herald>,
    Query(q): Query<LoginQuery>,
) -> PortalResult<Response> {
    let grant_id = state
        .keys
        .verify_link(&q.token, false)
        .map_err(|_| PortalError::BadLink)?;
    let grant = state
        .store
        .use_portal_grant(&grant_id, Utc::now())
        .await?
        .ok_or(PortalError::BadLink)?;
    if let Some(app_id) = &grant.app_id {
        state
            .store
            .get_app(&grant.org_id, app_id)
            .await?
            .ok_or(PortalError::BadLink)?;
    }
    let session = Session::new(&grant, Utc::now());
    Ok(with_session(&state, &session, see_other("/portal/")))
}

/// `POST /portal/logout`: ends the session's grant (so the session ends on
/// every node at once) and removes the cookie.
pub async fn logout(
    State(state): State<Herald>,
    session: Session,
    body: axum::body::Bytes,
) -> PortalResult<Response> {
    check_csrf(&session, &FormData::parse(&body))?;
    state
        .store
        .end_portal_grant(&session.grant, Utc::now())
        .await?;
    let mut response = page(
        "error.html",
        json!({
            "title": "You have logged out",
            "text": "Your portal session has ended. Open the webhooks portal again from your platform's settings page.",
            "bare": true,
        }),
    )?;
    response
        .headers_mut()
        .insert(header::SET_COOKIE, Session::clear_cookie());
    Ok(response)
}

fn with_session(state: &Herald, session: &Session, mut response: Response) -> Response {
    let secure = state.config.base_url().starts_with("https://");
    let embeddable = !state.config.portal_frame_ancestors.is_empty();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session.cookie(state.config.secret_bytes(), secure, embeddable),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Anything else under `/portal/`: 401 without a session, 404 with one.
pub async fn unknown(_session: Session) -> PortalError {
    PortalError::NotFound
}

#[derive(Deserialize, Default)]
pub struct Notice {
    #[serde(default)]
    notice: Option<String>,
    #[serde(default)]
    n: Option<u64>,
    #[serde(default)]
    before: Option<String>,
}

impl Notice {
    pub(super) fn text(&self) -> Option<String> {
        Some(match self.notice.as_deref()? {
            "created" => "Endpoint added. Send it a test event to check it works.".into(),
            "saved" => "Changes saved.".into(),
            "enabled" => "Endpoint enabled: it receives events again.".into(),
            "disabled" => "Endpoint disabled: it receives nothing until enabled.".into(),
            "rotated" => {
                "Signing secret rotated. The previous one keeps working for 24 hours.".into()
            }
            "resent" => "Message queued to be sent again.".into(),
            "recovered" => format!(
                "{} failed deliveries queued to be sent again.",
                self.n.unwrap_or(0)
            ),
            "deleted" => "Endpoint deleted.".into(),
            _ => return None,
        })
    }
}

/// `/portal/`: the Webhooks page, or an operator's list of applications.
pub async fn home(
    State(state): State<Herald>,
    session: Session,
    Query(notice): Query<Notice>,
) -> PortalResult<Response> {
    if session.app.is_none() && session.operator {
        return apps_page(&state, &session, &AppsQuery::default()).await;
    }
    let app = app_of(&state, &session).await?;
    let endpoints = all_endpoints(state.store.as_ref(), &app.id).await?;
    let since = Utc::now() - Duration::days(7);
    let mut rows = Vec::new();
    for ep in endpoints {
        let stats = state
            .store
            .endpoint_stats(&ep.id, Some(since), None)
            .await?;
        let done = stats.success + stats.fail;
        let rate = (done > 0).then(|| format!("{} %", (stats.success * 100 + done / 2) / done));
        // The endpoint's one state, as its page and the API say it.
        let status = state_word(&ep);
        rows.push(json!({
            "id": ep.id,
            "url": ep.url,
            "description": ep.description,
            "events": ep.event_types.clone().unwrap_or_default(),
            "status": status,
            "rate": rate.unwrap_or_else(|| "—".into()),
            "deliveries": done,
        }));
    }
    page(
        "webhooks.html",
        with(
            base(&session, Some(&app), "Webhooks", "webhooks"),
            json!({ "endpoints": rows, "notice": notice.text() }),
        ),
    )
}

async fn all_endpoints(store: &dyn Store, app_id: &str) -> PortalResult<Vec<Endpoint>> {
    let mut all = Vec::new();
    let mut page = Page {
        limit: 250,
        iterator: None,
        descending: false,
    };
    loop {
        let batch = store.list_endpoints(app_id, &page).await?;
        page.iterator = batch.items.last().map(|e| e.id.clone());
        all.extend(batch.items);
        if batch.done || page.iterator.is_none() {
            return Ok(all);
        }
    }
}

/// An endpoint's state in the portal's words (its badge's class too).
fn state_word(ep: &Endpoint) -> &'static str {
    match ep.state() {
        EndpointState::Active => "active",
        EndpointState::Failing => "failing",
        EndpointState::Paused => "paused",
        EndpointState::Disabled => "disabled",
        EndpointState::AutoDisabled => "disabled",
    }
}

/// Why an endpoint is in its state, in a sentence (none when all is well).
fn state_detail(ep: &Endpoint) -> Option<String> {
    let h = &ep.health;
    match ep.state() {
        EndpointState::Active => None,
        EndpointState::Failing => Some(format!(
            "Failing since {}: {} attempt{} in a row failed{}. Herald keeps retrying.",
            time(h.failing_since?),
            h.consecutive_failures,
            if h.consecutive_failures == 1 { "" } else { "s" },
            h.last_error
                .as_deref()
                .map(|e| format!(", the last with “{e}”"))
                .unwrap_or_default()
        )),
        EndpointState::Paused => Some(format!(
            "Paused until {} after {} failed attempts in a row{}. Herald tries again then; nothing is lost.",
            time(h.paused_until?),
            h.consecutive_failures,
            h.last_error
                .as_deref()
                .map(|e| format!(", the last with “{e}”"))
                .unwrap_or_default()
        )),
        EndpointState::Disabled => Some(match h.disabled_at {
            Some(at) => format!("Disabled by a person on {}. Nothing is sent until it is enabled; what was pending then waits.", time(at)),
            None => "Disabled. Nothing is sent until it is enabled.".into(),
        }),
        EndpointState::AutoDisabled => Some(format!(
            "Disabled by Herald{}{}. What was pending waits and is sent once you enable it again.",
            h.disabled_at.map(|at| format!(" on {}", time(at))).unwrap_or_default(),
            match h.disabled_by {
                Some(DisabledBy::Gone) => " because the receiver answered 410 Gone",
                _ => " because every attempt failed for too long",
            }
        )),
    }
}

/// `/portal/apps`: an operator's list of the organisation's applications.
/// What the operator's list of applications is asked for.
#[derive(Deserialize, Default)]
pub struct AppsQuery {
    /// Part of a name or uid, or an id.
    #[serde(default)]
    q: Option<String>,
    /// The page after this application id (the list is newest first).
    #[serde(default)]
    after: Option<String>,
}

/// Applications per page of the operator's list.
const APPS_PER_PAGE: u32 = 50;

pub async fn apps(
    State(state): State<Herald>,
    session: Session,
    Query(q): Query<AppsQuery>,
) -> PortalResult<Response> {
    if !session.operator {
        return Err(PortalError::NotFound);
    }
    apps_page(&state, &session, &q).await
}

async fn apps_page(state: &Herald, session: &Session, q: &AppsQuery) -> PortalResult<Response> {
    let page_spec = Page {
        limit: APPS_PER_PAGE,
        iterator: q.after.clone().filter(|a| !a.is_empty()),
        descending: true,
    };
    let query = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let query_text = query;
    let apps = match query {
        Some(text) => {
            state
                .store
                .search_apps(&session.org, text, &page_spec)
                .await?
        }
        None => state.store.list_apps(&session.org, &page_spec).await?,
    };
    let rows: Vec<Value> = apps
        .items
        .iter()
        .map(|a| json!({"id": a.id, "name": a.name, "uid": a.uid, "created": time(a.created_at)}))
        .collect();
    let next = (!apps.done)
        .then(|| apps.items.last().map(|a| a.id.clone()))
        .flatten()
        .map(|after| {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("after", &after);
            if let Some(text) = query_text {
                query.append_pair("q", text);
            }
            format!("/portal/apps?{}", query.finish())
        });
    page(
        "apps.html",
        with(
            base(session, None, "Applications", "apps"),
            json!({ "apps": rows, "org": session.org, "q": query, "next": next }),
        ),
    )
}

/// `/portal/apps/{id}`: an operator opens one application's portal.
pub async fn switch_app(
    State(state): State<Herald>,
    session: Session,
    Path(app_id): Path<String>,
) -> PortalResult<Response> {
    if !session.operator {
        return Err(PortalError::NotFound);
    }
    let app = state
        .store
        .get_app(&session.org, &app_id)
        .await?
        .ok_or(PortalError::NotFound)?;
    let switched = session.with_app(app.id);
    Ok(with_session(&state, &switched, see_other("/portal/")))
}

/// `/portal/catalog`: the organisation's event types, as on the public page.
pub async fn catalog(State(state): State<Herald>, session: Session) -> PortalResult<Response> {
    let app = app_of(&state, &session).await?;
    let types = catalog_types(&state, &session.org).await?;
    let model = crate::catalog::page::render_json(&state.config.catalog_title, &types);
    page(
        "catalog.html",
        with(
            base(&session, Some(&app), "Event catalog", "catalog"),
            json!({ "catalog": model, "count": types.len() }),
        ),
    )
}

/// What the Test button got back, shown in `#test-result`.
#[derive(Serialize)]
struct TestResult {
    event_type: String,
    status: String,
    ok: bool,
    response: String,
    duration_ms: Option<i64>,
    msg_id: Option<String>,
}

/// `/portal/endpoints/{id}`: the endpoint page.
pub async fn endpoint(
    State(state): State<Herald>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<Notice>,
) -> PortalResult<Response> {
    let app = app_of(&state, &session).await?;
    let ep = endpoint_of(&state, &app, &id).await?;
    endpoint_page(&state, &session, &app, &ep, &q, None).await
}

async fn endpoint_page(
    state: &Herald,
    session: &Session,
    app: &Application,
    ep: &Endpoint,
    q: &Notice,
    test: Option<TestResult>,
) -> PortalResult<Response> {
    let store = state.store.as_ref();
    let now = Utc::now();

    // The Test menu: types with an example, the endpoint's own first.
    let types = catalog_types(state, &session.org).await?;
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

    let secret = store
        .secrets(&ep.id, now)
        .await?
        .into_iter()
        .find(|k| k.expires_at.is_none())
        .map(|k| k.key);
    // A `whsk_` key's receivers verify with its public half.
    let public_key = secret
        .as_deref()
        .and_then(|k| EndpointSecret::parse(k).ok())
        .and_then(|k| k.public_key());

    // The delivery log, newest first, one page at a time.
    let log_page = Page {
        limit: LOG_PAGE,
        iterator: q.before.clone(),
        descending: true,
    };
    let log = store
        .list_attempted_messages(&app.id, &ep.id, &ListFilter::default(), &log_page)
        .await?;
    let older = (!log.done)
        .then(|| log.items.last().map(|(m, _)| m.id.clone()))
        .flatten();
    let mut rows = Vec::new();
    for (msg, delivery) in &log.items {
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
            "retry": retry.map(time),
            "retry_iso": retry.map(|t| t.to_rfc3339()),
            "waiting": waiting,
            "error": last
                .as_ref()
                .filter(|a| a.response_status_code == 0 && a.skipped.is_none() && a.status != MessageStatus::Success)
                .map(|a| a.response.chars().take(80).collect::<String>()),
            "scheduled": scheduled.map(time),
            "scheduled_iso": scheduled.map(|t| t.to_rfc3339()),
            "id": msg.id,
            "event_type": msg.event_type,
            "time": time(msg.created_at),
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
                    "created": time(ep.created_at),
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
                "log": rows,
                "older": older,
                "paged": q.before.is_some(),
                "recover_default": (now - Duration::hours(24)).format("%Y-%m-%dT%H:%M").to_string(),
                "notice": q.text(),
            }),
        ),
    )
}

fn status_word(s: MessageStatus) -> &'static str {
    match s {
        MessageStatus::Success => "success",
        MessageStatus::Pending => "pending",
        MessageStatus::Fail => "failed",
        MessageStatus::Sending => "sending",
    }
}

pub(super) fn masked_headers(headers: &BTreeMap<String, String>) -> Vec<Value> {
    headers
        .iter()
        .map(|(k, v)| {
            let sensitive = SENSITIVE_HEADERS.contains(&k.as_str());
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

async fn last_attempt_of(
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
    };
    Ok(store
        .list_attempts_by_msg(app_id, msg_id, &filter, &page)
        .await?
        .items
        .into_iter()
        .next())
}

/// The Test button: the same path as the API's send-example. Answers with the
/// endpoint page showing the result; the script lifts `#test-result` out of it.
pub async fn test(
    State(state): State<Herald>,
    session: Session,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> PortalResult<Response> {
    let form = FormData::parse(&body);
    check_csrf(&session, &form)?;
    let app = app_of(&state, &session).await?;
    let ep = endpoint_of(&state, &app, &id).await?;
    let event_type = form.get("event_type").unwrap_or_default().to_string();
    let result = match send_test(&state, &app, &ep, event_type.clone(), None, None).await {
        Ok((msg, Some(a))) => TestResult {
            event_type,
            status: if a.response_status_code > 0 {
                a.response_status_code.to_string()
            } else {
                "not sent".into()
            },
            ok: a.status == MessageStatus::Success,
            response: a.response,
            duration_ms: Some(a.response_duration_ms),
            msg_id: Some(msg.id),
        },
        Ok((msg, None)) => TestResult {
            event_type,
            status: "not sent".into(),
            ok: false,
            response: "Herald could not send it right now; it will be delivered shortly.".into(),
            duration_ms: None,
            msg_id: Some(msg.id),
        },
        Err(e) => TestResult {
            event_type,
            status: "not sent".into(),
            ok: false,
            response: super::form::error_message(&e),
            duration_ms: None,
            msg_id: None,
        },
    };
    endpoint_page(
        &state,
        &session,
        &app,
        &ep,
        &Notice::default(),
        Some(result),
    )
    .await
}

pub async fn confirm_delete(
    State(state): State<Herald>,
    session: Session,
    Path(id): Path<String>,
) -> PortalResult<Response> {
    session.writable()?;
    let app = app_of(&state, &session).await?;
    let ep = endpoint_of(&state, &app, &id).await?;
    page(
        "delete.html",
        with(
            base(&session, Some(&app), "Delete endpoint", "webhooks"),
            json!({"ep": {"id": ep.id, "url": ep.url}}),
        ),
    )
}

pub async fn delete(
    State(state): State<Herald>,
    session: Session,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> PortalResult<Response> {
    check_csrf(&session, &FormData::parse(&body))?;
    let app = app_of(&state, &session).await?;
    let ep = endpoint_of(&state, &app, &id).await?;
    endpoints::delete(&state, &app, &ep).await?;
    Ok(see_other("/portal/?notice=deleted"))
}

pub async fn toggle(
    State(state): State<Herald>,
    session: Session,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> PortalResult<Response> {
    check_csrf(&session, &FormData::parse(&body))?;
    let app = app_of(&state, &session).await?;
    let mut ep = endpoint_of(&state, &app, &id).await?;
    ep.disabled = !ep.disabled;
    ep.updated_at = Utc::now();
    endpoints::update(&state, &app, &ep).await?;
    let notice = if ep.disabled { "disabled" } else { "enabled" };
    Ok(see_other(&format!(
        "/portal/endpoints/{}?notice={notice}",
        ep.id
    )))
}

pub async fn rotate(
    State(state): State<Herald>,
    session: Session,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> PortalResult<Response> {
    check_csrf(&session, &FormData::parse(&body))?;
    let app = app_of(&state, &session).await?;
    let ep = endpoint_of(&state, &app, &id).await?;
    // The new key is of the current key's kind (a `whsk_` endpoint stays
    // ed25519).
    let kind = state
        .store
        .secrets(&ep.id, Utc::now())
        .await?
        .into_iter()
        .find(|k| k.expires_at.is_none())
        .and_then(|k| EndpointSecret::parse(&k.key).ok())
        .map(|k| k.kind());
    endpoints::rotate_secret(&state, &ep, None, kind, endpoints::DEFAULT_GRACE_SECONDS).await?;
    Ok(see_other(&format!(
        "/portal/endpoints/{}?notice=rotated#secret",
        ep.id
    )))
}

/// Queues every failed delivery since the chosen time (UTC) again.
pub async fn recover(
    State(state): State<Herald>,
    session: Session,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> PortalResult<Response> {
    let form = FormData::parse(&body);
    check_csrf(&session, &form)?;
    let app = app_of(&state, &session).await?;
    let ep = endpoint_of(&state, &app, &id).await?;
    let now = Utc::now();
    let since = form
        .get("since")
        .and_then(parse_local)
        .unwrap_or(now - Duration::hours(24));
    let queued = endpoints::recover(&state, &ep, since, None).await?;
    Ok(see_other(&format!(
        "/portal/endpoints/{}?notice=recovered&n={queued}#delivery-log",
        ep.id
    )))
}

/// A `datetime-local` value (`2024-05-07T15:28`, seconds optional), read as UTC.
fn parse_local(s: &str) -> Option<DateTime<Utc>> {
    [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s.trim(), f).ok())
    .map(|n| n.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_local_values_are_read_as_utc() {
        let t = parse_local("2024-05-07T15:28").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-05-07T15:28:00+00:00");
        assert!(parse_local("2024-05-07T15:28:09").is_some());
        assert!(parse_local("yesterday").is_none());
    }
}
