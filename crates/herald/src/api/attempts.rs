//! The delivery log: attempts by endpoint and by message, the destinations of a
//! message, the messages of an endpoint, and resend.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::extract::Params;
use super::out::{EndpointMessageOut, ListResponse, MessageAttemptOut, MessageEndpointOut};
use crate::auth::Principal;
use crate::service::{load_app, load_endpoint, load_message, Herald};
use crate::service::{Error, Result};

#[utoipa::path(
    get, operation_id = "v1.message-attempt.by-endpoint",
    path = "/api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}",
    tag = "Message attempt",
    summary = "List the attempts of an endpoint",
    params(crate::api::doc::EndpointPath, crate::api::doc::PageQuery, crate::api::doc::FilterQuery),
    responses((status = 200, description = "OK", body = crate::api::out::ListResponse<crate::api::out::MessageAttemptOut>))
)]
pub async fn by_endpoint(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    params: Params,
) -> Result<Json<ListResponse<MessageAttemptOut>>> {
    let app = load_app(&state, &who, &app_id).await?;
    let ep = load_endpoint(&state, &app, &endpoint_id).await?;
    let result = state
        .store
        .list_attempts_by_endpoint(&app.id, &ep.id, &params.filter()?, &params.page(true)?)
        .await?;
    Ok(Json(ListResponse::from_page(
        result,
        |a| a.id.clone(),
        MessageAttemptOut::from,
    )))
}

#[utoipa::path(
    get, operation_id = "v1.message-attempt.by-msg",
    path = "/api/v1/app/{app_id}/attempt/msg/{msg_id}",
    tag = "Message attempt",
    summary = "List the attempts of a message",
    params(crate::api::doc::MessagePath, crate::api::doc::PageQuery, crate::api::doc::FilterQuery),
    responses((status = 200, description = "OK", body = crate::api::out::ListResponse<crate::api::out::MessageAttemptOut>))
)]
pub async fn by_msg(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, msg_id)): Path<(String, String)>,
    params: Params,
) -> Result<Json<ListResponse<MessageAttemptOut>>> {
    let app = load_app(&state, &who, &app_id).await?;
    let msg = load_message(&state, &app, &msg_id).await?;
    let mut filter = params.filter()?;
    if let Some(ep) = &filter.endpoint_id {
        filter.endpoint_id = Some(load_endpoint(&state, &app, ep).await?.id);
    }
    let result = state
        .store
        .list_attempts_by_msg(&app.id, &msg.id, &filter, &params.page(true)?)
        .await?;
    Ok(Json(ListResponse::from_page(
        result,
        |a| a.id.clone(),
        MessageAttemptOut::from,
    )))
}

#[utoipa::path(
    get, operation_id = "v1.message-attempt.get",
    path = "/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}",
    tag = "Message attempt",
    summary = "Get an attempt",
    params(crate::api::doc::MessagePath, ("attempt_id" = String, Path, description = "The attempt's ID")),
    responses((status = 200, description = "OK", body = crate::api::out::MessageAttemptOut))
)]
pub async fn get(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, msg_id, attempt_id)): Path<(String, String, String)>,
) -> Result<Json<MessageAttemptOut>> {
    let app = load_app(&state, &who, &app_id).await?;
    let msg = load_message(&state, &app, &msg_id).await?;
    let attempt = state
        .store
        .get_attempt(&app.id, &msg.id, &attempt_id)
        .await?
        .ok_or(Error::NotFound("attempt"))?;
    Ok(Json(attempt.into()))
}

/// Svix's `DELETE .../attempt/{id}/content`: forgets what the receiver
/// answered (its response body), keeping the attempt.
#[utoipa::path(
    delete, operation_id = "v1.message-attempt.expunge-content",
    path = "/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/content",
    tag = "Message attempt",
    summary = "Delete an attempt's response body",
    params(crate::api::doc::MessagePath, ("attempt_id" = String, Path, description = "The attempt's ID")),
    responses((status = 204, description = "No content"))
)]
pub async fn expunge_content(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, msg_id, attempt_id)): Path<(String, String, String)>,
) -> Result<StatusCode> {
    let app = load_app(&state, &who, &app_id).await?;
    let msg = load_message(&state, &app, &msg_id).await?;
    state
        .store
        .expunge_attempt(&app.id, &msg.id, &attempt_id)
        .await
        .map_err(|e| match e {
            herald_store::StoreError::NotFound => Error::NotFound("attempt"),
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, operation_id = "v1.message-attempt.attempted-destinations",
    path = "/api/v1/app/{app_id}/msg/{msg_id}/endpoint",
    tag = "Message attempt",
    summary = "List the endpoints a message was sent to",
    params(crate::api::doc::MessagePath, crate::api::doc::PageQuery),
    responses((status = 200, description = "OK", body = crate::api::out::ListResponse<crate::api::out::MessageEndpointOut>))
)]
pub async fn attempted_destinations(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, msg_id)): Path<(String, String)>,
    params: Params,
) -> Result<Json<ListResponse<MessageEndpointOut>>> {
    let app = load_app(&state, &who, &app_id).await?;
    let msg = load_message(&state, &app, &msg_id).await?;
    let result = state
        .store
        .list_attempted_destinations(&app.id, &msg.id, &params.page(false)?)
        .await?;
    Ok(Json(ListResponse::from_page(
        result,
        |(e, _)| e.id.clone(),
        MessageEndpointOut::from,
    )))
}

#[utoipa::path(
    get, operation_id = "v1.message-attempt.attempted-messages",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/msg",
    tag = "Message attempt",
    summary = "List the messages of an endpoint",
    params(crate::api::doc::EndpointPath, crate::api::doc::PageQuery, crate::api::doc::FilterQuery, crate::api::doc::WithContent),
    responses((status = 200, description = "OK", body = crate::api::out::ListResponse<crate::api::out::EndpointMessageOut>))
)]
pub async fn attempted_messages(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    params: Params,
) -> Result<Json<ListResponse<EndpointMessageOut>>> {
    let app = load_app(&state, &who, &app_id).await?;
    let ep = load_endpoint(&state, &app, &endpoint_id).await?;
    let with_content = params.bool("with_content", true)?;
    let result = state
        .store
        .list_attempted_messages(&app.id, &ep.id, &params.filter()?, &params.page(true)?)
        .await?;
    Ok(Json(ListResponse::from_page(
        result,
        |(m, _)| m.id.clone(),
        |pair| EndpointMessageOut::new(pair, with_content),
    )))
}

/// Sends the message to the endpoint again, now, as a manual attempt. Answers
/// 202 with `{}`: the SDKs parse the body as an `EmptyResponse`.
#[utoipa::path(
    post, operation_id = "v1.message-attempt.resend",
    path = "/api/v1/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend",
    tag = "Message attempt",
    summary = "Resend a message to an endpoint",
    params(crate::api::doc::MessagePath, ("endpoint_id" = String, Path, description = "The endpoint's ID or uid")),
    responses((status = 202, description = "Accepted", body = Object))
)]
pub async fn resend(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, msg_id, endpoint_id)): Path<(String, String, String)>,
) -> Result<(StatusCode, Json<serde_json::Value>)> {
    let app = load_app(&state, &who, &app_id).await?;
    let msg = load_message(&state, &app, &msg_id).await?;
    let ep = load_endpoint(&state, &app, &endpoint_id).await?;
    if ep.disabled {
        return Err(Error::Conflict(
            "the endpoint is disabled; enable it before resending".into(),
        ));
    }
    crate::service::endpoints::resend(&state, &app, &msg, &ep).await?;
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({}))))
}
