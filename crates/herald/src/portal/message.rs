//! `/portal/endpoints/{id}/messages/{msg}`: one message as an endpoint
//! receives it, its attempts, and the Resend button.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use herald_core::dates::{convert_dates, DateFormat};
use herald_core::signing::{
    EndpointSecret, KeyKind, ASYMMETRIC_SIGNATURE_VERSION, SIGNATURE_VERSION,
};
use herald_store::{
    Application, Delivery, Endpoint, EndpointState, ListFilter, MessageStatus, Page, TriggerType,
};
use serde_json::{json, Value};

use super::endpoint::{masked_headers, sentence};
use super::pages::{see_other, Notice};
use super::request::{app_of, base, endpoint_of, message_of, posted, with};
use super::session::Session;
use super::{page, PortalResult};
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
    let msg = message_of(&state, &app, &msg_id).await?;
    // The status first, then the attempts: an attempt and its delivery's
    // new status are written together, so a status that says nothing is
    // left to try is never shown beside a list that lacks its attempt (the
    // page would not refresh itself to show it).
    let overall = overall_status(&state, &app, &ep, &msg.id).await?;
    let filter = ListFilter {
        endpoint_id: Some(ep.id.clone()),
        ..ListFilter::default()
    };
    let page_spec = Page {
        limit: 100,
        iterator: None,
        descending: false,
        backwards: false,
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
    // A raw payload (not JSON) is shown as it is sent.
    let pretty = match msg.content_type {
        Some(_) => msg.payload.clone(),
        None => serde_json::to_string_pretty(&payload).unwrap_or_else(|_| msg.payload.clone()),
    };
    let timestamp = attempts
        .last()
        .map(|a| a.created_at.timestamp().to_string())
        .unwrap_or_else(|| "(the time of sending)".into());
    // The scheme of the current key: `v1a` for an ed25519 (`whsk_`) one.
    let version = endpoints::current_key(&state, &ep)
        .await?
        .and_then(|k| EndpointSecret::parse(&k).ok())
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
    // A Test's message carries `"test": true` (the Test button adds it); the
    // store's trigger type says only that a person asked for the attempt,
    // so the flag tells a Test from a Resend.
    let is_test = payload.get("test") == Some(&Value::Bool(true));
    let attempts: Vec<Value> = attempts
        .iter()
        .map(|a| {
            let manual = a.trigger_type == TriggerType::Manual;
            json!({
                "time": a.created_at.to_rfc3339(),
                "url": a.url,
                "code": a.response_status_code,
                "ok": a.status == MessageStatus::Success,
                "duration": a.response_duration_ms,
                "response": a.response,
                "skipped": a.skipped.map(|s| s.as_str()),
                "request_headers": a.request_headers,
                "response_headers": a.response_headers,
                "trigger": match (manual, is_test) {
                    (false, _) => None,
                    (true, true) => Some("test"),
                    (true, false) => Some("resent"),
                },
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
                    "time": msg.created_at.to_rfc3339(),
                    "payload": pretty,
                },
                "headers": headers,
                "attempts": attempts,
                "overall": overall,
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
    let (_, app) = posted(&state, &session, &body).await?;
    let ep = endpoint_of(&state, &app, &id).await?;
    let msg = message_of(&state, &app, &msg_id).await?;
    endpoints::resend(&state, &app, &msg, &ep).await?;
    Ok(see_other(&format!(
        "/portal/endpoints/{}/messages/{}?notice=resent",
        ep.id, msg.id
    )))
}

/// The message's status over every endpoint it went to, in one line:
/// `(class, words)`, the class one of `success`, `failing`, `pending`; and
/// `live`: a delivery is still to be tried (the page refreshes itself).
/// `this` tells the delivery to the page's endpoint `ep` in words, with the
/// time of its next try, and why nothing is sent when its endpoint holds it.
async fn overall_status(
    state: &Herald,
    app: &Application,
    ep: &Endpoint,
    msg_id: &str,
) -> PortalResult<Value> {
    let mut page = Page {
        limit: 250,
        iterator: None,
        descending: false,
        backwards: false,
    };
    // Failed for good, failed and retried, not tried yet, held by a disabled
    // endpoint, delivered.
    let (mut failed, mut retrying, mut waiting, mut held, mut delivered) =
        (0usize, 0usize, 0usize, 0usize, 0usize);
    let mut this = None;
    loop {
        let batch = state
            .store
            .list_attempted_destinations(&app.id, msg_id, &page)
            .await?;
        page.iterator = batch.items.last().map(|(e, _)| e.id.clone());
        for (e, d) in &batch.items {
            let disabled = matches!(
                e.state(),
                EndpointState::Disabled | EndpointState::AutoDisabled
            );
            match d.status {
                MessageStatus::Success => delivered += 1,
                MessageStatus::Fail => failed += 1,
                MessageStatus::Pending | MessageStatus::Sending if disabled => held += 1,
                MessageStatus::Pending | MessageStatus::Sending if d.attempts > 0 => retrying += 1,
                MessageStatus::Pending | MessageStatus::Sending => waiting += 1,
            }
            if e.id == ep.id {
                this = Some(this_delivery(e, d));
            }
        }
        if batch.done || page.iterator.is_none() {
            break;
        }
    }
    let total = failed + retrying + waiting + held + delivered;
    let endpoints = |n: usize| format!("{n} endpoint{}", if n == 1 { "" } else { "s" });
    // "delivered to 1 of 2 endpoints; 1 failing and being retried".
    let mut parts = vec![format!("delivered to {delivered} of {}", endpoints(total))];
    if retrying > 0 {
        parts.push(format!("{retrying} failing and being retried"));
    }
    if failed > 0 {
        parts.push(format!("{failed} failed and will not be retried"));
    }
    if held > 0 {
        parts.push(format!(
            "{held} waiting for {} to be enabled",
            if held == 1 {
                "its endpoint"
            } else {
                "their endpoints"
            }
        ));
    }
    if waiting > 0 {
        parts.push(format!("{waiting} not tried yet"));
    }
    let detail = parts.join("; ");
    let (class, words) = if total == 0 {
        (
            "pending",
            "Pending: not sent to any endpoint yet.".to_string(),
        )
    } else if failed + retrying > 0 {
        ("failing", format!("Failing: {detail}."))
    } else if delivered == total {
        (
            "success",
            if total == 1 {
                "Delivered to its one endpoint.".to_string()
            } else {
                format!("Delivered to all {}.", endpoints(total))
            },
        )
    } else {
        ("pending", format!("Pending: {detail}."))
    };
    let live = total == 0 || retrying + waiting > 0;
    Ok(json!({"class": class, "words": words, "live": live, "this": this}))
}

/// The delivery to one endpoint in words: `{before, at, after}` as the
/// endpoint page's state sentence, `at` its next try when there is one.
fn this_delivery(ep: &Endpoint, d: &Delivery) -> Value {
    let tries = |n: i64| format!("{n} attempt{}", if n == 1 { "" } else { "s" });
    match (d.status, ep.state()) {
        (MessageStatus::Success, _) => sentence(
            format!("To this endpoint: delivered ({}).", tries(d.attempts)),
            None,
            "",
        ),
        (MessageStatus::Fail, _) => sentence(
            format!(
                "To this endpoint: failed after {}; Herald will not try again (Resend sends it once more).",
                tries(d.attempts)
            ),
            None,
            "",
        ),
        (_, EndpointState::Disabled | EndpointState::AutoDisabled) => sentence(
            "To this endpoint: waiting, because the endpoint is disabled; it is sent once the endpoint is enabled.",
            None,
            "",
        ),
        (_, EndpointState::Paused) => sentence(
            format!(
                "To this endpoint: {} so far; the endpoint is paused after failing attempts in a row, and the next try is ",
                tries(d.attempts)
            ),
            d.next_attempt_at.or(ep.health.paused_until),
            ".",
        ),
        (_, _) if d.attempts > 0 => sentence(
            format!("To this endpoint: {} failed so far; next try ", tries(d.attempts)),
            d.next_attempt_at,
            ".",
        ),
        (_, _) => sentence("To this endpoint: not tried yet; due ", d.next_attempt_at, "."),
    }
}
