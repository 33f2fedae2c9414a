//! `/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation`: the JavaScript
//! an endpoint's deliveries go through, as Svix serves it (get, patch,
//! simulate). Herald adds `format` to PATCH: start from a ready-made format.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use herald_transform::Outcome;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::extract::{Body, Patch};
use super::out::ms;
use crate::auth::Principal;
use crate::service::transformations::{self, Change};
use crate::service::{load_app, load_endpoint, Herald, Result};

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransformationOut {
    code: Option<String>,
    enabled: bool,
    variables: Option<BTreeMap<String, String>>,
    updated_at: Option<DateTime<Utc>>,
}

#[utoipa::path(
    get, operation_id = "v1.endpoint-transformation.get",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation",
    tag = "Endpoint",
    summary = "Get an endpoint's transformation",
    params(crate::api::doc::EndpointPath),
    responses((status = 200, description = "OK", body = TransformationOut))
)]
pub async fn get(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> Result<Json<TransformationOut>> {
    let app = load_app(&state, &who, &app_id).await?;
    let t = load_endpoint(&state, &app, &endpoint_id)
        .await?
        .transformation;
    Ok(Json(TransformationOut {
        code: t.code,
        enabled: t.enabled,
        variables: (!t.variables.is_empty()).then_some(t.variables),
        updated_at: t.updated_at.map(ms),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransformationPatch {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    code: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    enabled: Patch<bool>,
    #[serde(default)]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    variables: Patch<BTreeMap<String, String>>,
    /// Herald's: the id of a ready-made format (`slack`, `discord`, `teams`,
    /// `google-chat`, `sheet-row`) whose code replaces the current code.
    #[serde(default)]
    format: Option<String>,
}

/// Svix's PATCH: 204; code that does not compile is a 422 with the
/// compiler's message, and nothing changes.
#[utoipa::path(
    patch, operation_id = "v1.endpoint-transformation.patch",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation",
    tag = "Endpoint",
    summary = "Set an endpoint's transformation",
    params(crate::api::doc::EndpointPath),
    request_body = TransformationPatch,
    responses((status = 204, description = "No content"))
)]
pub async fn patch(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(input): Body<TransformationPatch>,
) -> Result<StatusCode> {
    let app = load_app(&state, &who, &app_id).await?;
    let mut ep = load_endpoint(&state, &app, &endpoint_id).await?;
    let code = match (input.format, input.code) {
        (Some(format), _) => Some(Some(
            transformations::format_code(&state, &app.org_id, &format).await?,
        )),
        (None, Patch::Absent) => None,
        (None, Patch::Null) => Some(None),
        (None, Patch::Value(code)) => Some(Some(code)),
    };
    let change = Change {
        code,
        enabled: match input.enabled {
            Patch::Absent => None,
            Patch::Null => Some(false),
            Patch::Value(on) => Some(on),
        },
        variables: match input.variables {
            Patch::Absent => None,
            Patch::Null => Some(None),
            Patch::Value(v) => Some(Some(v)),
        },
    };
    transformations::update(&state, &app, &mut ep, change).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SimulateIn {
    code: String,
    event_type: String,
    payload: Value,
    #[serde(default)]
    #[allow(dead_code)]
    channels: Option<Vec<String>>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SimulateOut {
    url: String,
    /// The body that would be sent, as text.
    payload: String,
    method: Option<String>,
    cancel: bool,
}

/// Runs `code` on the payload as the endpoint would, and answers with what
/// would be sent. Nothing is sent or saved.
#[utoipa::path(
    post, operation_id = "v1.endpoint-transformation.simulate",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation/simulate",
    tag = "Endpoint",
    summary = "Run a transformation on a payload",
    params(crate::api::doc::EndpointPath),
    request_body = SimulateIn,
    responses((status = 200, description = "OK", body = SimulateOut))
)]
pub async fn simulate(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(input): Body<SimulateIn>,
) -> Result<Json<SimulateOut>> {
    let app = load_app(&state, &who, &app_id).await?;
    let ep = load_endpoint(&state, &app, &endpoint_id).await?;
    let outcome = transformations::simulate(
        &state,
        &input.code,
        input.event_type,
        input.payload,
        ep.url.clone(),
        ep.transformation.variables.clone(),
    )
    .await?;
    Ok(Json(match outcome {
        Outcome::Cancel => SimulateOut {
            url: ep.url,
            payload: String::new(),
            method: None,
            cancel: true,
        },
        Outcome::Send {
            payload,
            url,
            method,
        } => SimulateOut {
            url,
            payload: payload.to_string(),
            method: Some(method),
            cancel: false,
        },
    }))
}
