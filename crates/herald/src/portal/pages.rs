//! The portal's pages around its endpoints: logging in and out, the Webhooks
//! list, an operator's list of applications, the event catalog. The endpoint
//! page is [`super::endpoint`], its POST actions [`super::actions`], the
//! forms that create or edit an endpoint [`super::form`].

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Duration, Utc};
use herald_store::{Endpoint, Page, Store};
use serde::Deserialize;
use serde_json::{json, Value};

use super::endpoint::{state_short, state_word};
use super::request::{app_of, base, catalog_types, check_csrf, with, FormData};
use super::session::Session;
use super::{page, PortalError, PortalResult};
use crate::service::Herald;

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
    let (grant_id, view) = state
        .keys
        .verify_themed_link(&q.token, false)
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
    let session = Session::new(&grant, Utc::now()).with_view(view);
    Ok(with_session(&state, &session, see_other("/portal/")))
}

/// `POST /portal/logout`: ends the session's grant (so the session ends on
/// every node at once), removes the cookie, and answers 303 to a page that
/// says so (a reload of it posts nothing).
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
    let mut response = see_other(LOGGED_OUT_PATH);
    response
        .headers_mut()
        .insert(header::SET_COOKIE, Session::clear_cookie());
    Ok(response)
}

/// Where logging out lands; it needs no session.
pub const LOGGED_OUT_PATH: &str = "/portal/logged-out";

pub async fn logged_out() -> PortalResult<Response> {
    page(
        "error.html",
        json!({
            "title": "You have logged out",
            "text": "Your portal session has ended. Open the webhooks portal again from your platform's settings page.",
            "bare": true,
        }),
    )
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
    /// The delivery log's page: the messages before this one.
    #[serde(default)]
    pub(super) before: Option<String>,
    /// The message a Test made, or `none` when it sent nothing.
    #[serde(default)]
    pub(super) tested: Option<String>,
    /// The event type of a Test that sent nothing.
    #[serde(default)]
    pub(super) test_type: Option<String>,
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
            "why": state_short(&ep),
            "rate": rate.unwrap_or_else(|| "—".into()),
            "deliveries": done,
            // Not finished yet: waiting for a retry (or a first try).
            "pending": stats.pending + stats.sending,
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
        backwards: false,
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
        backwards: false,
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
        .map(|a| json!({"id": a.id, "name": a.name, "uid": a.uid, "created": a.created_at.to_rfc3339()}))
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
    let types = catalog_types(&state, &session).await?;
    let model = crate::catalog::page::render_json(&state.config.catalog_title, &types);
    page(
        "catalog.html",
        with(
            base(&session, Some(&app), "Event catalog", "catalog"),
            json!({ "catalog": model, "count": types.len() }),
        ),
    )
}
