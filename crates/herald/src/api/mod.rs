//! The REST API, route for route and shape for shape compatible with Svix's.
//! One file per resource; handlers parse input into domain values, call the store,
//! and render Svix's JSON. They never see SQL.

mod applications;
mod attempts;
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
use axum::routing::{get, post};
use axum::Router;

use crate::service::{Error, Herald, Result};

pub fn router(state: Herald) -> Router {
    let app = "/api/v1/app/{app_id}";
    let api = Router::new()
        .route("/", get(home))
        .route("/api/v1/health", get(health))
        .route("/api/v1/health/ping", get(health))
        .route("/metrics", get(metrics))
        .route("/catalog", get(public_catalog::default_org))
        .route("/catalog/{org_id}", get(public_catalog::for_org))
        .route(
            "/api/v1/auth/app-portal-access/{app_id}",
            post(portal_access::create),
        )
        .route("/api/v1/auth/logout", post(portal_access::logout))
        .route(
            "/api/v1/app",
            get(applications::list).post(applications::create),
        )
        .route(
            app,
            get(applications::get)
                .put(applications::update)
                .patch(applications::patch)
                .delete(applications::delete),
        )
        .route(
            "/api/v1/event-type",
            get(event_types::list).post(event_types::create),
        )
        .route(
            "/api/v1/event-type/import/openapi",
            post(event_types::import_openapi),
        )
        .route(
            "/api/v1/event-type/{name}",
            get(event_types::get)
                .put(event_types::update)
                .patch(event_types::patch)
                .delete(event_types::delete),
        )
        .route(
            "/api/v1/operational-webhook/endpoint",
            get(operational::list).post(operational::create),
        )
        .route(
            "/api/v1/operational-webhook/endpoint/{endpoint_id}",
            get(operational::get)
                .put(operational::upsert)
                .delete(operational::delete),
        )
        .route(
            "/api/v1/operational-webhook/endpoint/{endpoint_id}/secret",
            get(operational::get_secret),
        )
        .route(
            "/api/v1/operational-webhook/endpoint/{endpoint_id}/secret/rotate",
            post(operational::rotate_secret),
        )
        .route(
            "/api/v1/operational-webhook/endpoint/{endpoint_id}/headers",
            get(operational::get_headers).put(operational::set_headers),
        )
        .route(
            &format!("{app}/endpoint"),
            get(endpoints::list).post(endpoints::create),
        )
        .route(
            &format!("{app}/endpoint/{{endpoint_id}}"),
            get(endpoints::get)
                .put(endpoints::update)
                .patch(endpoints::patch)
                .delete(endpoints::delete),
        )
        .route(
            &format!("{app}/endpoint/{{endpoint_id}}/secret"),
            get(endpoints::get_secret),
        )
        .route(
            &format!("{app}/endpoint/{{endpoint_id}}/secret/rotate"),
            post(endpoints::rotate_secret),
        )
        .route(
            &format!("{app}/endpoint/{{endpoint_id}}/headers"),
            get(endpoints::get_headers)
                .put(endpoints::put_headers)
                .patch(endpoints::patch_headers),
        )
        .route(
            &format!("{app}/endpoint/{{endpoint_id}}/transformation"),
            get(transformations::get).patch(transformations::patch),
        )
        .route(
            &format!("{app}/endpoint/{{endpoint_id}}/transformation/simulate"),
            post(transformations::simulate),
        )
        .route(
            &format!("{app}/endpoint/{{endpoint_id}}/stats"),
            get(endpoints::stats),
        )
        .route(
            &format!("{app}/endpoint/{{endpoint_id}}/send-example"),
            post(endpoints::send_example),
        )
        .route(
            &format!("{app}/endpoint/{{endpoint_id}}/recover"),
            post(endpoints::recover),
        )
        .route(
            &format!("{app}/endpoint/{{endpoint_id}}/replay-missing"),
            post(endpoints::replay_missing),
        )
        .route(
            &format!("{app}/endpoint/{{endpoint_id}}/bulk-replay"),
            post(endpoints::bulk_replay),
        )
        .route(
            &format!("{app}/msg/expunge-all-contents"),
            post(messages::expunge_all_contents),
        )
        .route(
            &format!("{app}/endpoint/{{endpoint_id}}/msg"),
            get(attempts::attempted_messages),
        )
        .route(
            &format!("{app}/msg"),
            get(messages::list).post(messages::create),
        )
        .route(&format!("{app}/msg/{{msg_id}}"), get(messages::get))
        .route(
            &format!("{app}/msg/{{msg_id}}/content"),
            axum::routing::delete(messages::expunge_content),
        )
        .route(
            &format!("{app}/msg/{{msg_id}}/attempt/{{attempt_id}}/content"),
            axum::routing::delete(attempts::expunge_content),
        )
        .route("/api/v1/background-task", get(tasks::list))
        .route("/api/v1/background-task/{task_id}", get(tasks::get))
        .route(
            "/api/v1/auth/app/{app_id}/expire-all",
            post(portal_access::expire_all),
        )
        .route(
            &format!("{app}/msg/{{msg_id}}/endpoint"),
            get(attempts::attempted_destinations),
        )
        .route(
            &format!("{app}/msg/{{msg_id}}/endpoint/{{endpoint_id}}/resend"),
            post(attempts::resend),
        )
        .route(
            &format!("{app}/msg/{{msg_id}}/attempt/{{attempt_id}}"),
            get(attempts::get),
        )
        .route(
            &format!("{app}/attempt/endpoint/{{endpoint_id}}"),
            get(attempts::by_endpoint),
        )
        .route(
            &format!("{app}/attempt/msg/{{msg_id}}"),
            get(attempts::by_msg),
        );
    api.fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .with_state(state)
}

/// What a worker-only process serves: its health, for load balancers and
/// orchestrators.
pub fn health_router(state: Herald) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/health/ping", get(health))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
}

/// `GET /metrics`: Prometheus's scrape, behind `HERALD_METRICS_TOKEN` when
/// it is set (compared as digests, so the time taken says nothing of it).
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

async fn health(axum::extract::State(state): axum::extract::State<Herald>) -> Result<StatusCode> {
    state.store.ping().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /`: where things are, for a person who opens the server's address.
async fn home() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "name": "Herald",
        "portal": "/portal/",
        "catalog": "/catalog",
        "api": "/api/v1",
        "health": "/api/v1/health",
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
