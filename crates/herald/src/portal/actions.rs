//! The small POST actions of the endpoint page: delete (after its
//! confirmation page), enable/disable, rotate the secret, recover failed
//! deliveries. Each answers 303 to the page that shows the outcome.

use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use herald_core::signing::EndpointSecret;
use serde_json::json;

use super::pages::see_other;
use super::request::{app_of, base, endpoint_of, posted, with};
use super::session::Session;
use super::{page, PortalResult};
use crate::service::endpoints;
use crate::service::Herald;

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
    let (_, app) = posted(&state, &session, &body).await?;
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
    let (_, app) = posted(&state, &session, &body).await?;
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
    let (_, app) = posted(&state, &session, &body).await?;
    let ep = endpoint_of(&state, &app, &id).await?;
    // The new key is of the current key's kind (a `whsk_` endpoint stays
    // ed25519).
    let kind = endpoints::current_key(&state, &ep)
        .await?
        .and_then(|k| EndpointSecret::parse(&k).ok())
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
    let (form, app) = posted(&state, &session, &body).await?;
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
