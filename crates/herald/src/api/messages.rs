//! `/api/v1/app/{app_id}/msg`: events from the platform. A message is on disk,
//! with one delivery per subscribed endpoint, before the API answers 202.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use herald_core::json::check_strict;
use herald_core::name::{validate_channel, validate_name, validate_tag};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tracing::Instrument;

use super::applications::{implicit_app, ApplicationIn};
use super::extract::{Body, Params};
use super::out::{ListResponse, MessageOut};
use super::tasks::TaskStarted;
use crate::auth::Principal;
use crate::service::messages::{
    check_event_type, new_message, schedule, NewMessage, RawPayload, DEFAULT_RETENTION_DAYS,
    LOOKUP_FRESHNESS,
};
use crate::service::{load_app, load_message, tasks, Herald};
use crate::service::{Error, FieldError, Result};

const MAX_CHANNELS: usize = 10;
/// The most tags a message may carry (Svix's limit).
const MAX_TAGS: usize = 5;
/// The `payloadRetentionPeriod` Svix accepts, in days.
const RETENTION_DAYS: std::ops::RangeInclusive<i64> = 5..=90;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageIn {
    event_type: String,
    /// Kept as the client's bytes: what is stored and signed is what was sent.
    #[schema(value_type = Object)]
    payload: Box<RawValue>,
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    channels: Option<Vec<String>>,
    /// Free-form tags the logs filter by (Svix: at most 5, unique).
    #[serde(default)]
    tags: Option<Vec<String>>,
    /// Creates the application when it does not exist yet (Svix's shortcut);
    /// its `uid`, when given, must be the path's (ignored when the
    /// application exists, as Svix does).
    #[serde(default)]
    application: Option<ApplicationIn>,
    /// Days to keep the payload; after that, once no delivery is pending, it
    /// is expunged (the message and its log stay).
    #[serde(default)]
    payload_retention_period: Option<i64>,
    /// Deliver no earlier than this (RFC 3339); see `service::messages::schedule`.
    #[serde(default)]
    deliver_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Svix's extra parameters. `rawPayload` (a string) is delivered as the
    /// body instead of `payload`, with `headers["content-type"]` (default
    /// `application/json`); other keys are kept for transformations to come.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    transformations_params: Option<Value>,
}

#[utoipa::path(
    post, operation_id = "v1.message.create",
    path = "/api/v1/app/{app_id}/msg",
    tag = "Message",
    summary = "Send a message",
    params(crate::api::doc::AppPath, crate::api::doc::WithContent),
    request_body = MessageIn,
    responses((status = 202, description = "Accepted", body = crate::api::out::MessageOut))
)]
pub async fn create(
    state: State<Herald>,
    who: Principal,
    app_id: Path<String>,
    params: Params,
    body: Body<MessageIn>,
) -> Result<(StatusCode, Json<MessageOut>)> {
    // Exported over OTLP only (`telemetry.rs`); ids and the event type, never
    // the payload. Without an exporter the span is disabled and costs nothing.
    let span = tracing::info_span!(
        target: crate::telemetry::TARGET,
        crate::telemetry::MESSAGE_ACCEPTED,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        herald.app_id = tracing::field::Empty,
        herald.msg_id = tracing::field::Empty,
        herald.event_type = tracing::field::Empty,
        herald.endpoints = tracing::field::Empty,
    );
    let accepted = accept(state, who, app_id, params, body)
        .instrument(span.clone())
        .await;
    if accepted.is_err() {
        span.record("otel.status_code", "error");
    }
    accepted
}

async fn accept(
    State(state): State<Herald>,
    who: Principal,
    Path(app_id): Path<String>,
    params: Params,
    Body(input): Body<MessageIn>,
) -> Result<(StatusCode, Json<MessageOut>)> {
    validate_name(&input.event_type).map_err(|e| Error::field(&["eventType"], e.to_string()))?;
    if let Some(event_id) = &input.event_id {
        validate_name(event_id).map_err(|e| Error::field(&["eventId"], e.to_string()))?;
    }
    let raw = RawPayload::from_params(input.transformations_params.as_ref())?;
    if !input.payload.get().trim_start().starts_with('{') {
        return Err(Error::field(&["payload"], "must be a JSON object"));
    }
    // Kept as sent, so refuse now what a later parse would refuse or mangle.
    check_strict(input.payload.get()).map_err(|e| {
        Error::field(
            &["payload"],
            format!("not JSON that can be delivered as sent: {e} (within the payload)"),
        )
    })?;
    let channels = match input.channels {
        Some(list) if list.len() > MAX_CHANNELS => {
            return Err(Error::field(
                &["channels"],
                format!("at most {MAX_CHANNELS} channels"),
            ))
        }
        Some(list) => {
            for (i, c) in list.iter().enumerate() {
                validate_channel(c).map_err(|e| {
                    Error::Validation(vec![FieldError::body(
                        &["channels", &i.to_string()],
                        e.to_string(),
                    )])
                })?;
            }
            Some(list).filter(|l| !l.is_empty())
        }
        None => None,
    };
    let tags = check_tags(input.tags)?;
    let retention_days = input
        .payload_retention_period
        .unwrap_or(DEFAULT_RETENTION_DAYS);
    if !RETENTION_DAYS.contains(&retention_days) {
        return Err(Error::field(
            &["payloadRetentionPeriod"],
            format!(
                "must be between {} and {} days",
                RETENTION_DAYS.start(),
                RETENTION_DAYS.end()
            ),
        ));
    }
    let targets = schedule(input.deliver_at, chrono::Utc::now(), retention_days)?;
    let with_content = params.bool("with_content", true)?;

    let app = state
        .store
        .cached_app(&who.org_id, &app_id, LOOKUP_FRESHNESS)
        .await?
        .filter(|app| who.can_see_app(&app.id));
    let app = match (app, input.application) {
        (Some(app), _) => app,
        (None, Some(new_app)) if who.app_id.is_none() => {
            let app = implicit_app(&app_id, new_app)?.into_new(&who.org_id)?;
            match state.store.create_app(&app).await {
                Ok(()) => app,
                // Created by a concurrent request with the same uid: use that one.
                Err(herald_store::StoreError::Conflict(_)) => {
                    load_app(&state, &who, app.uid.as_deref().unwrap_or_default()).await?
                }
                Err(e) => return Err(e.into()),
            }
        }
        (None, _) => return Err(Error::NotFound("application")),
    };

    let json_payload = Some(&*input.payload).filter(|_| raw.is_none());
    check_event_type(&state, &app.org_id, &input.event_type, json_payload).await?;
    let (payload, content_type) = match raw {
        Some(raw) => (raw.text, Some(raw.content_type)),
        None => (input.payload.get().to_string(), None),
    };
    let msg = new_message(
        &app,
        NewMessage {
            event_type: input.event_type,
            payload,
            event_id: input.event_id,
            channels,
            tags,
            retention_days,
            deliver_at: match targets {
                herald_store::Targets::Scheduled { at } => Some(at),
                _ => None,
            },
            content_type,
        },
    );
    let span = tracing::Span::current();
    span.record("herald.app_id", msg.app_id.as_str());
    span.record("herald.msg_id", msg.id.as_str());
    span.record("herald.event_type", msg.event_type.as_str());
    let endpoints = state.store.create_message(&msg, &targets).await?;
    span.record("herald.endpoints", endpoints.len());
    state.metrics.message_accepted();
    // A scheduled message wakes the worker too: it then sleeps until the
    // earliest due delivery (at most `IDLE_POLL`), which may be this one.
    state.wake.endpoints(endpoints);
    Ok((
        StatusCode::ACCEPTED,
        Json(MessageOut::new(msg, with_content)),
    ))
}

/// Svix's rule for a message's tags: at most [`MAX_TAGS`], each a tag name
/// ([`validate_tag`]), none twice. An empty list is none.
fn check_tags(tags: Option<Vec<String>>) -> Result<Option<Vec<String>>> {
    let Some(tags) = tags else {
        return Ok(None);
    };
    if tags.len() > MAX_TAGS {
        return Err(Error::field(&["tags"], format!("at most {MAX_TAGS} tags")));
    }
    for (i, tag) in tags.iter().enumerate() {
        let at = i.to_string();
        validate_tag(tag).map_err(|e| Error::field(&["tags", &at], e.to_string()))?;
        if tags[..i].contains(tag) {
            return Err(Error::field(
                &["tags", &at],
                format!("{tag:?} is listed twice"),
            ));
        }
    }
    Ok(Some(tags).filter(|t| !t.is_empty()))
}

#[utoipa::path(
    get, operation_id = "v1.message.list",
    path = "/api/v1/app/{app_id}/msg",
    tag = "Message",
    summary = "List messages",
    params(crate::api::doc::AppPath, crate::api::doc::PageQuery, crate::api::doc::FilterQuery, crate::api::doc::WithContent),
    responses((status = 200, description = "OK", body = crate::api::out::ListResponse<crate::api::out::MessageOut>))
)]
pub async fn list(
    State(state): State<Herald>,
    who: Principal,
    Path(app_id): Path<String>,
    params: Params,
) -> Result<Json<ListResponse<MessageOut>>> {
    let app = load_app(&state, &who, &app_id).await?;
    let page = params.page(true)?;
    let filter = params.filter()?;
    let with_content = params.bool("with_content", true)?;
    let result = state.store.list_messages(&app.id, &filter, &page).await?;
    Ok(Json(ListResponse::from_page(
        result,
        |m| m.id.clone(),
        |m| MessageOut::new(m, with_content),
    )))
}

#[utoipa::path(
    get, operation_id = "v1.message.get",
    path = "/api/v1/app/{app_id}/msg/{msg_id}",
    tag = "Message",
    summary = "Get a message",
    params(crate::api::doc::MessagePath, crate::api::doc::WithContent),
    responses((status = 200, description = "OK", body = crate::api::out::MessageOut))
)]
pub async fn get(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, msg_id)): Path<(String, String)>,
    params: Params,
) -> Result<Json<MessageOut>> {
    let app = load_app(&state, &who, &app_id).await?;
    let with_content = params.bool("with_content", true)?;
    let msg = load_message(&state, &app, &msg_id).await?;
    Ok(Json(MessageOut::new(msg, with_content)))
}

/// Svix's `DELETE .../msg/{id}/content`: the payload is expunged (it reads
/// `{"expired":true}`, as in Svix); the message, its deliveries and its
/// attempts stay. A delivery still pending sends that.
#[utoipa::path(
    delete, operation_id = "v1.message.expunge-content",
    path = "/api/v1/app/{app_id}/msg/{msg_id}/content",
    tag = "Message",
    summary = "Delete a message's payload",
    params(crate::api::doc::MessagePath),
    responses((status = 204, description = "No content"))
)]
pub async fn expunge_content(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, msg_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let app = load_app(&state, &who, &app_id).await?;
    let msg = load_message(&state, &app, &msg_id).await?;
    state.store.expunge_message(&app.id, &msg.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Svix's `POST .../msg/expunge-all-contents`: every message's payload of
/// the application is expunged, as by [`expunge_content`], in a background
/// task (`application.purge_content`, finished with `messagesPurged`).
#[utoipa::path(
    post, operation_id = "v1.message.expunge-all-contents",
    path = "/api/v1/app/{app_id}/msg/expunge-all-contents",
    tag = "Message",
    summary = "Delete the payloads of all messages",
    params(crate::api::doc::AppPath),
    responses((status = 202, description = "Accepted", body = crate::api::tasks::TaskStarted))
)]
pub async fn expunge_all_contents(
    State(state): State<Herald>,
    who: Principal,
    Path(app_id): Path<String>,
) -> Result<(StatusCode, Json<TaskStarted>)> {
    let app = load_app(&state, &who, &app_id).await?;
    let data = json!({ "appId": app.id });
    let store = state.store.clone();
    let work = async move {
        let purged = store.expunge_all_contents(&app.id).await?;
        Ok(json!({ "messagesPurged": purged }))
    };
    let kind = "application.purge_content";
    let task = tasks::start(&state, &who.org_id, kind, data, work).await?;
    Ok((StatusCode::ACCEPTED, Json(TaskStarted::from(task))))
}

/// The messages of a bulk expunge, by id or eventId.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct BulkExpungeIn {
    /// Message ids or eventIds, 1 to 250.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 250)]
    ids: Vec<String>,
}

/// What became of each id given: `expunged`, or `not-found` (no such
/// message, or its payload was already expunged).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct BulkExpungeOut {
    results: std::collections::BTreeMap<String, &'static str>,
}

/// Svix's `POST .../msg/bulk-expunge`: the payloads of the messages named
/// (ids or eventIds) are expunged, each as by [`expunge_content`].
#[utoipa::path(
    post, operation_id = "v1.message.bulk-expunge-content",
    path = "/api/v1/app/{app_id}/msg/bulk-expunge",
    tag = "Message",
    summary = "Delete the payloads of the messages named",
    params(crate::api::doc::AppPath),
    request_body = BulkExpungeIn,
    responses((status = 200, description = "OK", body = BulkExpungeOut))
)]
pub async fn bulk_expunge(
    State(state): State<Herald>,
    who: Principal,
    Path(app_id): Path<String>,
    Body(input): Body<BulkExpungeIn>,
) -> Result<Json<BulkExpungeOut>> {
    let app = load_app(&state, &who, &app_id).await?;
    if !(1..=250).contains(&input.ids.len()) {
        return Err(Error::field(&["ids"], "must name 1 to 250 messages"));
    }
    for (i, id) in input.ids.iter().enumerate() {
        if validate_name(id).is_err() {
            return Err(Error::field(
                &["ids", &i.to_string()],
                "is not a message id or eventId",
            ));
        }
    }
    let mut results = std::collections::BTreeMap::new();
    for id in input.ids {
        if results.contains_key(&id) {
            continue;
        }
        let outcome = match load_message(&state, &app, &id).await {
            Ok(msg) if msg.payload != herald_store::EXPUNGED_PAYLOAD => {
                state.store.expunge_message(&app.id, &msg.id).await?;
                "expunged"
            }
            Ok(_) | Err(Error::NotFound(_)) => "not-found",
            Err(e) => return Err(e),
        };
        results.insert(id, outcome);
    }
    Ok(Json(BulkExpungeOut { results }))
}
