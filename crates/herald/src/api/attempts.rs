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
