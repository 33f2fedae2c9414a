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
pub mod lookups;
mod messages;
mod out;
mod portal_access;
mod public_catalog;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use std::collections::BTreeMap;
use std::sync::Arc;

use herald_core::name::validate_name;
use herald_store::{Application, Endpoint, Message, Store};
use serde_json::Value;

use crate::auth::{Keys, Principal, Revocations};
use crate::config::Config;
use crate::dispatch::{Deliverer, Wake};
use error::{ApiError, ApiResult};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub keys: Keys,
    /// Wakes the dispatcher when new work is queued.
    pub wake: Arc<Wake>,
    /// Sends a Test delivery right away, outside the worker.
    pub deliverer: Arc<Deliverer>,
    /// Applications and event types as recently read, for creating messages.
    pub lookups: Arc<lookups::Lookups>,
    /// The revoked API tokens, as recently read.
    pub revocations: Arc<Revocations>,
}

pub fn router(state: AppState) -> Router {
    let app = "/api/v1/app/{app_id}";
    let api = Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/health/ping", get(health))
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
            "/api/v1/event-type/{name}",
            get(event_types::get)
                .put(event_types::update)
                .patch(event_types::patch)
                .delete(event_types::delete),
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
            &format!("{app}/endpoint/{{endpoint_id}}/msg"),
            get(attempts::attempted_messages),
        )
        .route(
            &format!("{app}/msg"),
            get(messages::list).post(messages::create),
        )
        .route(&format!("{app}/msg/{{msg_id}}"), get(messages::get))
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
pub fn health_router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/health/ping", get(health))
        .fallback(not_found)
        .with_state(state)
}

async fn health(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> ApiResult<StatusCode> {
    state.store.ping().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}

/// The application in the path, if this principal may see it; 404 otherwise, so
/// an app token cannot even learn that another application exists.
pub(crate) async fn load_app(
    state: &AppState,
    who: &Principal,
    app_id_or_uid: &str,
) -> ApiResult<Application> {
    let app = state
        .store
        .get_app(&who.org_id, app_id_or_uid)
        .await?
        .filter(|app| who.can_see_app(&app.id))
        .ok_or(ApiError::NotFound("application"))?;
    Ok(app)
}

pub(crate) async fn load_endpoint(
    state: &AppState,
    app: &Application,
    endpoint_id_or_uid: &str,
) -> ApiResult<Endpoint> {
    state
        .store
        .get_endpoint(&app.id, endpoint_id_or_uid)
        .await?
        .ok_or(ApiError::NotFound("endpoint"))
}

/// The message in the path (by id or `eventId`), within the application.
pub(crate) async fn load_message(
    state: &AppState,
    app: &Application,
    msg_id_or_event_id: &str,
) -> ApiResult<Message> {
    state
        .store
        .get_message(&app.id, msg_id_or_event_id)
        .await?
        .ok_or(ApiError::NotFound("message"))
}

pub(crate) fn check_uid(uid: Option<&str>) -> ApiResult<()> {
    if let Some(uid) = uid {
        validate_name(uid).map_err(|e| ApiError::field(&["uid"], e.to_string()))?;
    }
    Ok(())
}

/// Metadata as stored: a JSON object of strings (Svix's clients read it so).
pub(crate) fn metadata_value(m: Option<BTreeMap<String, String>>) -> Value {
    serde_json::to_value(m.unwrap_or_default()).expect("a string map is JSON")
}

/// Org-level writes (creating applications, editing event types) need an
/// organisation token.
pub(crate) fn require_org(who: &Principal) -> ApiResult<()> {
    match who.app_id {
        None => Ok(()),
        Some(_) => Err(ApiError::Forbidden(
            "this needs an organisation token; the token used is scoped to one application".into(),
        )),
    }
}
