//! What Herald does for a caller, whoever asks: the API's handlers and the
//! portal's pages parse their input, call these functions with domain values,
//! and render what comes back (or the [`Error`]). Neither imports the other,
//! and only this layer reaches the dispatcher (the Test button sends at once).
//!
//! Layering: `api/` and `portal/` → `service/` → `herald-store`, `dispatch/`,
//! `herald-core`. Nothing here knows about HTTP requests or pages.

pub mod endpoints;
mod error;
pub mod links;
pub mod messages;
pub mod tasks;
pub mod theme;
pub mod transformations;

use std::collections::BTreeMap;
use std::sync::Arc;

use herald_core::name::validate_name;
use herald_store::{Application, Endpoint, Message, Store};
use serde_json::Value;

pub use error::{Error, FieldError, Result};

use crate::auth::{Keys, Principal, Revocations};
use crate::config::Config;
use crate::dispatch::{Deliverer, Wake};

/// What Herald's API, portal and services work with: one per process.
#[derive(Clone)]
pub struct Herald {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub keys: Keys,
    /// Wakes the dispatcher when new work is queued.
    pub wake: Arc<Wake>,
    /// Sends a Test delivery right away, outside the worker.
    pub deliverer: Arc<Deliverer>,
    /// The revoked API tokens, as recently read.
    pub revocations: Arc<Revocations>,
    /// Runs transformations: checks code when saved, simulates, and (through
    /// the deliverer) shapes deliveries.
    pub transformer: herald_transform::Transformer,
    /// What this process counts, for `GET /metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Tells the operator's endpoints what happens to endpoints.
    pub operational: Arc<crate::operational::Operational>,
}

/// The application in the path, if this principal may see it; 404 otherwise, so
/// an app token cannot even learn that another application exists.
pub(crate) async fn load_app(
    herald: &Herald,
    who: &Principal,
    app_id_or_uid: &str,
) -> Result<Application> {
    let app = herald
        .store
        .get_app(&who.org_id, app_id_or_uid)
        .await?
        .filter(|app| who.can_see_app(&app.id))
        .ok_or(Error::NotFound("application"))?;
    Ok(app)
}

pub(crate) async fn load_endpoint(
    herald: &Herald,
    app: &Application,
    endpoint_id_or_uid: &str,
) -> Result<Endpoint> {
    herald
        .store
        .get_endpoint(&app.id, endpoint_id_or_uid)
        .await?
        .ok_or(Error::NotFound("endpoint"))
}

/// The message in the path (by id or `eventId`), within the application.
pub(crate) async fn load_message(
    herald: &Herald,
    app: &Application,
    msg_id_or_event_id: &str,
) -> Result<Message> {
    herald
        .store
        .get_message(&app.id, msg_id_or_event_id)
        .await?
        .ok_or(Error::NotFound("message"))
}

pub(crate) fn check_uid(uid: Option<&str>) -> Result<()> {
    if let Some(uid) = uid {
        validate_name(uid).map_err(|e| Error::field(&["uid"], e.to_string()))?;
    }
    Ok(())
}

/// Metadata as stored: a JSON object of strings (Svix's clients read it so).
pub(crate) fn metadata_value(m: Option<BTreeMap<String, String>>) -> Value {
    serde_json::to_value(m.unwrap_or_default()).expect("a string map is JSON")
}

/// Org-level writes (creating applications, editing event types) need an
/// organisation token.
pub(crate) fn require_org(who: &Principal) -> Result<()> {
    match who.app_id {
        None => Ok(()),
        Some(_) => Err(Error::Forbidden(
            "this needs an organisation token; the token used is scoped to one application".into(),
        )),
    }
}
