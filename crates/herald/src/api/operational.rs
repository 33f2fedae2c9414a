//! `/api/v1/operational-webhook/endpoint`: where the operator hears what
//! happens to endpoints (see `crate::operational`), as the current Svix SDKs
//! call it. An operational endpoint is an endpoint of the organisation's
//! operational application, so these handlers are the endpoint handlers run
//! on that application; only an organisation token may use them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::endpoints::{self, EndpointIn, HeadersIn, HeadersOut, SecretOut};
use super::extract::{Body, Params};
use super::out::{EndpointOut, ListResponse};
use crate::auth::Principal;
use crate::operational::ops_org;
use crate::service::{require_org, Herald, Result};

/// The principal and application the endpoint handlers run with: the
/// organisation's operational application, made on first use.
async fn ops(state: &Herald, who: &Principal) -> Result<(Principal, String)> {
    require_org(who)?;
    let app = state.operational.app(&who.org_id).await?;
    let principal = Principal {
        org_id: ops_org(&who.org_id),
        app_id: None,
    };
    Ok((principal, app.id))
}

#[utoipa::path(
    get, operation_id = "v1.operational-webhook-endpoint.list",
    path = "/api/v1/operational-webhook/endpoint",
    tag = "Operational webhook",
    summary = "List operational webhook endpoints",
    params(crate::api::doc::PageQuery),
    responses((status = 200, description = "OK", body = crate::api::out::ListResponse<crate::api::out::EndpointOut>))
)]
pub async fn list(
    State(state): State<Herald>,
    who: Principal,
    params: Params,
) -> Result<Json<ListResponse<EndpointOut>>> {
    let (p, app) = ops(&state, &who).await?;
    endpoints::list(State(state), p, Path(app), params).await
}

#[utoipa::path(
    post, operation_id = "v1.operational-webhook-endpoint.create",
    path = "/api/v1/operational-webhook/endpoint",
    tag = "Operational webhook",
    summary = "Create an operational webhook endpoint",
    request_body = crate::api::endpoints::EndpointIn,
    responses((status = 201, description = "Created", body = crate::api::out::EndpointOut))
)]
pub async fn create(
    State(state): State<Herald>,
    who: Principal,
    body: Body<EndpointIn>,
) -> Result<(StatusCode, Json<EndpointOut>)> {
    let (p, app) = ops(&state, &who).await?;
    endpoints::create(State(state), p, Path(app), body).await
}

#[utoipa::path(
    get, operation_id = "v1.operational-webhook-endpoint.get",
    path = "/api/v1/operational-webhook/endpoint/{endpoint_id}",
    tag = "Operational webhook",
    summary = "Get an operational webhook endpoint",
    params(("endpoint_id" = String, Path)),
    responses((status = 200, description = "OK", body = crate::api::out::EndpointOut))
)]
pub async fn get(
    State(state): State<Herald>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<EndpointOut>> {
    let (p, app) = ops(&state, &who).await?;
    endpoints::get(State(state), p, Path((app, id))).await
}

/// Svix's upsert: replaces the endpoint, or creates it (named by the path's
/// id as its uid) when there is none.
#[utoipa::path(
    put, operation_id = "v1.operational-webhook-endpoint.upsert",
    path = "/api/v1/operational-webhook/endpoint/{endpoint_id}",
    tag = "Operational webhook",
    summary = "Update (or create) an operational webhook endpoint",
    params(("endpoint_id" = String, Path)),
    request_body = crate::api::endpoints::EndpointIn,
    responses((status = 200, description = "OK", body = crate::api::out::EndpointOut), (status = 201, description = "Created", body = crate::api::out::EndpointOut))
)]
pub async fn upsert(
    State(state): State<Herald>,
    who: Principal,
    Path(id): Path<String>,
    Body(input): Body<EndpointIn>,
) -> Result<(StatusCode, Json<EndpointOut>)> {
    let (p, app) = ops(&state, &who).await?;
    let exists = state.store.get_endpoint(&app, &id).await?.is_some();
    if exists {
        endpoints::update(State(state), p, Path((app, id)), Body(input)).await
    } else {
        endpoints::create(State(state), p, Path(app), Body(input.with_uid_or(&id))).await
    }
}

#[utoipa::path(
    delete, operation_id = "v1.operational-webhook-endpoint.delete",
    path = "/api/v1/operational-webhook/endpoint/{endpoint_id}",
    tag = "Operational webhook",
    summary = "Delete an operational webhook endpoint",
    params(("endpoint_id" = String, Path)),
    responses((status = 204, description = "No content"))
)]
pub async fn delete(
    State(state): State<Herald>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let (p, app) = ops(&state, &who).await?;
    endpoints::delete(State(state), p, Path((app, id))).await
}

#[utoipa::path(
    get, operation_id = "v1.operational-webhook-endpoint.get-secret",
    path = "/api/v1/operational-webhook/endpoint/{endpoint_id}/secret",
    tag = "Operational webhook",
    summary = "Get an operational webhook endpoint's secret",
    params(("endpoint_id" = String, Path)),
    responses((status = 200, description = "OK", body = crate::api::endpoints::SecretOut))
)]
pub async fn get_secret(
    State(state): State<Herald>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<SecretOut>> {
    let (p, app) = ops(&state, &who).await?;
    endpoints::get_secret(State(state), p, Path((app, id))).await
}

/// 204, as Svix answers for operational endpoints (the key is read with
/// `GET .../secret`).
#[utoipa::path(
    post, operation_id = "v1.operational-webhook-endpoint.rotate-secret",
    path = "/api/v1/operational-webhook/endpoint/{endpoint_id}/secret/rotate",
    tag = "Operational webhook",
    summary = "Rotate an operational webhook endpoint's secret",
    params(("endpoint_id" = String, Path)),
    request_body = Option<crate::api::endpoints::RotateIn>,
    responses((status = 204, description = "No content"))
)]
pub async fn rotate_secret(
    State(state): State<Herald>,
    who: Principal,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<StatusCode> {
    let (p, app) = ops(&state, &who).await?;
    let _new_key = endpoints::rotate_secret(State(state), p, Path((app, id)), body).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, operation_id = "v1.operational-webhook-endpoint.get-headers",
    path = "/api/v1/operational-webhook/endpoint/{endpoint_id}/headers",
    tag = "Operational webhook",
    summary = "Get an operational webhook endpoint's headers",
    params(("endpoint_id" = String, Path)),
    responses((status = 200, description = "OK", body = crate::api::endpoints::HeadersOut))
)]
pub async fn get_headers(
    State(state): State<Herald>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<HeadersOut>> {
    let (p, app) = ops(&state, &who).await?;
    endpoints::get_headers(State(state), p, Path((app, id))).await
}

#[utoipa::path(
    put, operation_id = "v1.operational-webhook-endpoint.set-headers",
    path = "/api/v1/operational-webhook/endpoint/{endpoint_id}/headers",
    tag = "Operational webhook",
    summary = "Set an operational webhook endpoint's headers",
    params(("endpoint_id" = String, Path)),
    request_body = crate::api::endpoints::HeadersIn,
    responses((status = 204, description = "No content"))
)]
pub async fn set_headers(
    State(state): State<Herald>,
    who: Principal,
    Path(id): Path<String>,
    body: Body<HeadersIn>,
) -> Result<StatusCode> {
    let (p, app) = ops(&state, &who).await?;
    endpoints::put_headers(State(state), p, Path((app, id)), body).await
}
