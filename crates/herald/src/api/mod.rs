//! The REST API, route for route and shape for shape compatible with Svix's.
//! One file per resource; handlers parse input into domain values, call the store,
//! and render Svix's JSON. They never see SQL.

mod applications;
mod attempts;
pub mod doc;
pub(crate) mod endpoints;
pub mod error;
mod event_types;
pub mod extract;
mod idempotency;
mod messages;
mod operational;
mod out;
mod portal_access;
mod public_catalog;
mod tasks;
mod transformations;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::service::{Error, Herald, Result};

pub fn router(state: Herald) -> Router {
    let (api, _) = documented_routes().split_for_parts();
    api.fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .with_state(state)
}

/// The OpenAPI document that `/api/v1/openapi.json` serves, without a server.
pub fn openapi() -> utoipa::openapi::OpenApi {
    doc::finish(documented_routes().split_for_parts().1)
}

/// Every route of the API, each from its handler's `#[utoipa::path]`: the
/// router and the document cannot disagree.
fn documented_routes() -> OpenApiRouter<Herald> {
    OpenApiRouter::with_openapi(doc::ApiDoc::openapi())
        .routes(routes!(doc::openapi_json))
        .routes(routes!(doc::reference_page))
        .routes(routes!(doc::reference_script))
        .routes(routes!(home))
        .routes(routes!(health))
        .routes(routes!(health_ping))
        .routes(routes!(metrics))
        .routes(routes!(public_catalog::default_org))
        .routes(routes!(public_catalog::for_org))
        .routes(routes!(portal_access::create))
        .routes(routes!(portal_access::dashboard_access))
        .routes(routes!(portal_access::logout))
        .routes(routes!(portal_access::expire_all))
        .routes(routes!(applications::list, applications::create))
        .routes(routes!(
            applications::get,
            applications::update,
            applications::patch,
            applications::delete
        ))
        .routes(routes!(event_types::list, event_types::create))
        .routes(routes!(event_types::import_openapi))
        .routes(routes!(
            event_types::get,
            event_types::update,
            event_types::patch,
            event_types::delete
        ))
        .routes(routes!(operational::list, operational::create))
        .routes(routes!(
            operational::get,
            operational::upsert,
            operational::delete
        ))
        .routes(routes!(operational::get_secret))
        .routes(routes!(operational::rotate_secret))
        .routes(routes!(operational::get_headers, operational::set_headers))
        .routes(routes!(endpoints::list, endpoints::create))
        .routes(routes!(
            endpoints::get,
            endpoints::update,
            endpoints::patch,
            endpoints::delete
        ))
        .routes(routes!(endpoints::get_secret))
        .routes(routes!(endpoints::rotate_secret))
        .routes(routes!(
            endpoints::get_headers,
            endpoints::put_headers,
            endpoints::patch_headers
        ))
        .routes(routes!(transformations::get, transformations::patch))
        .routes(routes!(transformations::simulate))
        .routes(routes!(endpoints::stats))
        .routes(routes!(endpoints::send_example))
        .routes(routes!(endpoints::recover))
        .routes(routes!(endpoints::replay_missing))
        .routes(routes!(endpoints::bulk_replay))
        .routes(routes!(messages::expunge_all_contents))
        .routes(routes!(messages::bulk_expunge))
        .routes(routes!(attempts::attempted_messages))
        .routes(routes!(messages::list, messages::create))
        .routes(routes!(messages::get))
        .routes(routes!(messages::expunge_content))
        .routes(routes!(attempts::expunge_content))
        .routes(routes!(tasks::list))
        .routes(routes!(tasks::get))
        .routes(routes!(attempts::attempted_destinations))
        .routes(routes!(attempts::resend))
        .routes(routes!(attempts::get))
        .routes(routes!(attempts::by_endpoint))
        .routes(routes!(attempts::by_msg))
}

/// What a worker-only process serves: its health, for load balancers and
/// orchestrators.
pub fn health_router(state: Herald) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/health/ping", get(health_ping))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
}

/// `GET /metrics`: Prometheus's scrape, behind `HERALD_METRICS_TOKEN` when
/// it is set (compared as digests, so the time taken says nothing of it).
#[utoipa::path(get, operation_id = "v1.herald.metrics", path = "/metrics", tag = "Health",
    summary = "Prometheus metrics",
    responses(
        (status = 200, description = "The metrics, in Prometheus's text format", body = String, content_type = "text/plain"),
        (status = 401, description = "HERALD_METRICS_TOKEN is set and was not sent", body = doc::ErrorBody),
        (status = 404, description = "Metrics are turned off", body = doc::ErrorBody),
    ))]
async fn metrics(
    axum::extract::State(state): axum::extract::State<Herald>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use secrecy::ExposeSecret;
    use sha2::{Digest, Sha256};
    if !state.metrics.enabled() {
        return Error::NotFound("route").into_response();
    }
    if let Some(token) = &state.config.metrics_token {
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if Sha256::digest(given.as_bytes()) != Sha256::digest(token.expose_secret().as_bytes()) {
            return Error::Unauthorized(
                "GET /metrics needs the metrics token (HERALD_METRICS_TOKEN)".into(),
            )
            .into_response();
        }
    }
    let body = state.metrics.render(state.store.as_ref()).await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        body,
    )
        .into_response()
}

#[utoipa::path(get, operation_id = "v1.herald.health", path = "/api/v1/health", tag = "Health",
    summary = "Whether Herald and its database answer",
    responses((status = 204, description = "Healthy")))]
async fn health(axum::extract::State(state): axum::extract::State<Herald>) -> Result<StatusCode> {
    state.store.ping().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Svix's name for the same check.
#[utoipa::path(get, operation_id = "v1.herald.health-ping", path = "/api/v1/health/ping", tag = "Health",
    summary = "Whether Herald and its database answer",
    responses((status = 204, description = "Healthy")))]
async fn health_ping(state: axum::extract::State<Herald>) -> Result<StatusCode> {
    health(state).await
}

/// `GET /`: where things are, for a person who opens the server's address.
#[utoipa::path(get, operation_id = "v1.herald.home", path = "/", tag = "Health",
    summary = "Where things are",
    responses((status = 200, description = "Links", body = Object)))]
async fn home() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "name": "Herald",
        "portal": "/portal/",
        "catalog": "/catalog",
        "api": "/api/v1",
        "health": "/api/v1/health",
        "openapi": "/api/v1/openapi.json",
        "reference": "/api/v1/docs",
        "docs": "The portal opens from a link the platform gets from POST /api/v1/auth/app-portal-access/{app}; the public event catalog is at /catalog.",
    }))
}

async fn not_found() -> Error {
    Error::NotFound("route")
}

/// `/api/v1/app/` → `/api/v1/app` (the query kept): the form Svix's server
/// also accepts. Other paths are left alone.
pub fn trim_trailing_slash<B>(mut request: axum::http::Request<B>) -> axum::http::Request<B> {
    let uri = request.uri();
    let path = uri.path();
    if !(path.starts_with("/api/") && path.len() > "/api/".len() && path.ends_with('/')) {
        return request;
    }
    let trimmed = path.trim_end_matches('/');
    let rewritten = match uri.query() {
        Some(q) => format!("{trimmed}?{q}"),
        None => trimmed.to_string(),
    };
    if let Ok(new) = rewritten.parse() {
        *request.uri_mut() = new;
    }
    request
}
