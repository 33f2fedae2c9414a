//! `/portal/endpoints/{id}/messages/{msg}`: one message as an endpoint
//! receives it, its attempts, and the Resend button.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::Utc;
use herald_core::dates::{convert_dates, DateFormat};
use herald_core::signing::{
    EndpointSecret, KeyKind, ASYMMETRIC_SIGNATURE_VERSION, SIGNATURE_VERSION,
};
use herald_store::{ListFilter, MessageStatus, Page};
use serde_json::{json, Value};

use super::pages::{masked_headers, see_other, time, Notice};
use super::request::{app_of, base, check_csrf, endpoint_of, with, FormData};
use super::session::Session;
use super::{page, PortalError, PortalResult};
use crate::service::endpoints;
use crate::service::Herald;

/// `/portal/endpoints/{id}/messages/{msg}`: what was sent and what came back.
pub async fn message(
    State(state): State<Herald>,
    session: Session,
    Path((id, msg_id)): Path<(String, String)>,
    Query(q): Query<Notice>,
) -> PortalResult<Response> {
    let app = app_of(&state, &session).await?;
    let ep = endpoint_of(&state, &app, &id).await?;
    let msg = state
        .store
        .get_message(&app.id, &msg_id)
        .await?
        .filter(|m| m.id == msg_id)
        .ok_or(PortalError::NotFound)?;
    let filter = ListFilter {
        endpoint_id: Some(ep.id.clone()),
        ..ListFilter::default()
    };
    let page_spec = Page {
        limit: 100,
        iterator: None,
        descending: false,
    };
    let attempts = state
        .store
        .list_attempts_by_msg(&app.id, &msg.id, &filter, &page_spec)
        .await?
        .items;

    // The body as this endpoint receives it: its date format applied.
    let mut payload: Value = serde_json::from_str(&msg.payload).unwrap_or(Value::Null);
    let format = DateFormat::parse(&ep.date_format).unwrap_or_default();
    if format != DateFormat::Unix {
        if let Some(et) = state
            .store
            .get_event_type(&session.org, &msg.event_type)
            .await?
        {
            if let Some(schema) = et.latest_schema() {
                convert_dates(&mut payload, schema, format);
            }
        }
    }
    let pretty = serde_json::to_string_pretty(&payload).unwrap_or_else(|_| msg.payload.clone());
    let timestamp = attempts
        .last()
        .map(|a| a.created_at.timestamp().to_string())
        .unwrap_or_else(|| "(the time of sending)".into());
    // The scheme of the current key: `v1a` for an ed25519 (`whsk_`) one.
    let version = state
        .store
        .secrets(&ep.id, Utc::now())
        .await?
        .into_iter()
        .find(|k| k.expires_at.is_none())
        .and_then(|k| EndpointSecret::parse(&k.key).ok())
        .map_or(SIGNATURE_VERSION, |k| match k.kind() {
            KeyKind::Hmac => SIGNATURE_VERSION,
            KeyKind::Ed25519 => ASYMMETRIC_SIGNATURE_VERSION,
        });
    let mut headers = vec![
        json!({"name": "content-type", "value": "application/json"}),
        json!({"name": "webhook-id", "value": msg.id}),
        json!({"name": "webhook-timestamp", "value": timestamp}),
        json!({"name": "webhook-signature", "value": format!("{version},… (computed for each attempt)")}),
    ];
    headers.extend(masked_headers(&ep.headers));
    let attempts: Vec<Value> = attempts
        .iter()
        .map(|a| {
            json!({
                "time": time(a.created_at),
                "iso": a.created_at.to_rfc3339(),
                "code": a.response_status_code,
                "ok": a.status == MessageStatus::Success,
                "duration": a.response_duration_ms,
                "response": a.response,
                "skipped": a.skipped.map(|s| s.as_str()),
                "manual": a.trigger_type == herald_store::TriggerType::Manual,
            })
        })
        .collect();
    page(
        "message.html",
        with(
            base(&session, Some(&app), &msg.event_type, "webhooks"),
            json!({
                "ep": {"id": ep.id, "url": ep.url},
                "msg": {
                    "id": msg.id,
                    "event_type": msg.event_type,
                    "event_id": msg.event_id,
                    "time": time(msg.created_at),
                    "payload": pretty,
                },
                "headers": headers,
                "attempts": attempts,
                "notice": q.text(),
            }),
        ),
    )
}

pub async fn resend(
    State(state): State<Herald>,
    session: Session,
    Path((id, msg_id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> PortalResult<Response> {
    check_csrf(&session, &FormData::parse(&body))?;
    let app = app_of(&state, &session).await?;
    let ep = endpoint_of(&state, &app, &id).await?;
    let msg = state
        .store
        .get_message(&app.id, &msg_id)
        .await?
        .filter(|m| m.id == msg_id)
        .ok_or(PortalError::NotFound)?;
    endpoints::resend(&state, &app, &msg, &ep).await?;
    Ok(see_other(&format!(
        "/portal/endpoints/{}/messages/{}?notice=resent",
        ep.id, msg.id
    )))
}
