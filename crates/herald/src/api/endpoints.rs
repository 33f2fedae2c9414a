//! `/api/v1/app/{app_id}/endpoint`: where an application's messages go.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::Json;
use chrono::{Duration, Utc};
use herald_core::dates::DateFormat;
use herald_core::endpoint_url::EndpointUrl;
use herald_core::id::{new_id, IdPrefix};
use herald_core::name::{validate_channel, validate_name};
use herald_core::signing::EndpointSecret;
use herald_store::{Application, Endpoint, Message, Targets};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult, FieldError};
use super::extract::{Body, Params, Patch};
use super::messages::DEFAULT_RETENTION_DAYS;
use super::out::{EndpointOut, ListResponse, MessageAttemptOut, MessageOut};
use super::{check_uid, load_app, load_endpoint, metadata_value, AppState};
use crate::auth::Principal;
use crate::dispatch::Retries;

/// Svix keeps rotated-out keys valid for a day unless told otherwise.
pub(crate) const DEFAULT_GRACE_SECONDS: u32 = 24 * 3600;
const MAX_GRACE_SECONDS: u32 = 7 * 24 * 3600;
const MAX_CHANNELS: usize = 10;

/// Headers Herald sets itself, or that HTTP owns: an endpoint may not override them.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "upgrade",
    "trailer",
    "proxy-connection",
];
const RESERVED_HEADER_PREFIXES: &[&str] = &["webhook-", "svix-", "x-forwarded-"];
/// Shown as names only: their values are credentials.
pub(crate) const SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "api-key",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointIn {
    url: String,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    event_types: Option<Vec<String>>,
    #[serde(default)]
    filter_types: Option<Vec<String>>,
    #[serde(default)]
    channels: Option<Vec<String>>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default, alias = "rateLimit")]
    throttle_rate: Option<u16>,
    /// Herald's: how timestamp fields are sent (`unix`, `unix_ms`, `iso8601`,
    /// `rfc2822`). Svix clients don't send it; absent keeps the current one.
    #[serde(default)]
    date_format: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPatch {
    #[serde(default)]
    url: Patch<String>,
    #[serde(default)]
    uid: Patch<String>,
    #[serde(default)]
    description: Patch<String>,
    #[serde(default)]
    disabled: Patch<bool>,
    #[serde(default)]
    event_types: Patch<Vec<String>>,
    #[serde(default)]
    filter_types: Patch<Vec<String>>,
    #[serde(default)]
    channels: Patch<Vec<String>>,
    #[serde(default)]
    metadata: Patch<BTreeMap<String, String>>,
    #[serde(default, alias = "rateLimit")]
    throttle_rate: Patch<u16>,
    #[serde(default)]
    date_format: Patch<String>,
}

pub(crate) fn check_url(url: &str) -> ApiResult<String> {
    EndpointUrl::parse(url)
        .map(|u| u.as_str().to_string())
        .map_err(|e| ApiError::field(&["url"], format!("URL {e}")))
}

/// The event filter, whichever of its two names it came under. An empty list
/// means "every event type", as no list does.
pub(crate) fn check_event_types(
    field: &str,
    types: Option<Vec<String>>,
) -> ApiResult<Option<Vec<String>>> {
    let Some(mut types) = types else {
        return Ok(None);
    };
    for (i, t) in types.iter().enumerate() {
        validate_name(t).map_err(|e| {
            ApiError::Validation(vec![FieldError::body(
                &[field, &i.to_string()],
                e.to_string(),
            )])
        })?;
    }
    types.sort();
    types.dedup();
    Ok(if types.is_empty() { None } else { Some(types) })
}

pub(crate) fn check_channels(channels: Option<Vec<String>>) -> ApiResult<Option<Vec<String>>> {
    let Some(mut channels) = channels else {
        return Ok(None);
    };
    if channels.len() > MAX_CHANNELS {
        return Err(ApiError::field(
            &["channels"],
            format!("at most {MAX_CHANNELS} channels"),
        ));
    }
    for (i, c) in channels.iter().enumerate() {
        validate_channel(c).map_err(|e| {
            ApiError::Validation(vec![FieldError::body(
                &["channels", &i.to_string()],
                e.to_string(),
            )])
        })?;
    }
    channels.sort();
    channels.dedup();
    Ok(if channels.is_empty() {
        None
    } else {
        Some(channels)
    })
}

pub(crate) fn check_date_format(s: &str) -> ApiResult<String> {
    DateFormat::parse(s)
        .map(|f| f.as_str().to_string())
        .map_err(|e| ApiError::field(&["dateFormat"], e.to_string()))
}

pub(crate) fn check_headers(
    headers: &BTreeMap<String, String>,
) -> ApiResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        let bad = |msg: &str| ApiError::Validation(vec![FieldError::body(&["headers", name], msg)]);
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(bad("is not a valid HTTP header name"));
        }
        if HeaderValue::from_str(value).is_err() {
            return Err(bad("has a value that is not a valid HTTP header value"));
        }
        if RESERVED_HEADERS.contains(&lower.as_str())
            || RESERVED_HEADER_PREFIXES
                .iter()
                .any(|p| lower.starts_with(p))
        {
            return Err(bad("is set by Herald and cannot be overridden"));
        }
        out.insert(lower, value.clone());
    }
    Ok(out)
}

fn merge_filter(
    event_types: Option<Vec<String>>,
    filter_types: Option<Vec<String>>,
) -> ApiResult<Option<Vec<String>>> {
    match (event_types, filter_types) {
        (Some(e), _) => check_event_types("eventTypes", Some(e)),
        (None, f) => check_event_types("filterTypes", f),
    }
}

pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Path(app_id): Path<String>,
    params: Params,
) -> ApiResult<Json<ListResponse<EndpointOut>>> {
    let app = load_app(&state, &who, &app_id).await?;
    let page = params.page(false)?;
    let result = state.store.list_endpoints(&app.id, &page).await?;
    Ok(Json(ListResponse::from_page(
        result,
        |e| e.id.clone(),
        EndpointOut::from,
    )))
}

pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    Path(app_id): Path<String>,
    Body(input): Body<EndpointIn>,
) -> ApiResult<(StatusCode, Json<EndpointOut>)> {
    let app = load_app(&state, &who, &app_id).await?;
    let url = check_url(&input.url)?;
    check_uid(input.uid.as_deref())?;
    let event_types = merge_filter(input.event_types, input.filter_types)?;
    let channels = check_channels(input.channels)?;
    let headers = check_headers(&input.headers.unwrap_or_default())?;
    let date_format = match &input.date_format {
        Some(f) => check_date_format(f)?,
        None => DateFormat::default().as_str().to_string(),
    };
    let secret = match input.secret {
        Some(s) => {
            EndpointSecret::parse(&s).map_err(|e| ApiError::field(&["secret"], e.to_string()))?
        }
        None => EndpointSecret::generate(),
    };
    let now = Utc::now();
    let ep = Endpoint {
        id: new_id(IdPrefix::Endpoint),
        app_id: app.id.clone(),
        uid: input.uid,
        url,
        description: input.description.unwrap_or_default(),
        disabled: input.disabled.unwrap_or(false),
        event_types,
        channels,
        metadata: metadata_value(input.metadata),
        headers,
        throttle_rate: input.throttle_rate.map(i64::from),
        date_format,
        created_at: now,
        updated_at: now,
    };
    state
        .store
        .create_endpoint(&ep, &secret.to_whsec())
        .await
        .map_err(uid_conflict)?;
    Ok((StatusCode::CREATED, Json(ep.into())))
}

pub async fn get(
    State(state): State<AppState>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> ApiResult<Json<EndpointOut>> {
    let app = load_app(&state, &who, &app_id).await?;
    Ok(Json(
        load_endpoint(&state, &app, &endpoint_id).await?.into(),
    ))
}

/// PUT replaces every field it carries; headers and the secret stay.
pub async fn update(
    State(state): State<AppState>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(input): Body<EndpointIn>,
) -> ApiResult<Json<EndpointOut>> {
    let app = load_app(&state, &who, &app_id).await?;
    let mut ep = load_endpoint(&state, &app, &endpoint_id).await?;
    ep.url = check_url(&input.url)?;
    check_uid(input.uid.as_deref())?;
    ep.uid = input.uid;
    ep.description = input.description.unwrap_or_default();
    ep.disabled = input.disabled.unwrap_or(false);
    ep.event_types = merge_filter(input.event_types, input.filter_types)?;
    ep.channels = check_channels(input.channels)?;
    ep.metadata = metadata_value(input.metadata);
    ep.throttle_rate = input.throttle_rate.map(i64::from);
    if let Some(headers) = input.headers {
        ep.headers = check_headers(&headers)?;
    }
    if let Some(format) = &input.date_format {
        ep.date_format = check_date_format(format)?;
    }
    ep.updated_at = Utc::now();
    state
        .store
        .update_endpoint(&ep)
        .await
        .map_err(uid_conflict)?;
    state.deliverer.forget(&ep.id);
    Ok(Json(ep.into()))
}

pub async fn patch(
    State(state): State<AppState>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(input): Body<EndpointPatch>,
) -> ApiResult<Json<EndpointOut>> {
    let app = load_app(&state, &who, &app_id).await?;
    let mut ep = load_endpoint(&state, &app, &endpoint_id).await?;
    match input.url {
        Patch::Absent => {}
        Patch::Null => return Err(ApiError::field(&["url"], "must not be null")),
        Patch::Value(url) => ep.url = check_url(&url)?,
    }
    ep.uid = input.uid.apply_opt(ep.uid);
    check_uid(ep.uid.as_deref())?;
    match input.description {
        Patch::Absent => {}
        Patch::Null => ep.description = String::new(),
        Patch::Value(d) => ep.description = d,
    }
    match input.disabled {
        Patch::Absent => {}
        Patch::Null => ep.disabled = false,
        Patch::Value(d) => ep.disabled = d,
    }
    // The SDKs' name wins when both are sent.
    let (field, filter) = match (input.event_types, input.filter_types) {
        (Patch::Absent, f) => ("filterTypes", f),
        (e, _) => ("eventTypes", e),
    };
    match filter {
        Patch::Absent => {}
        Patch::Null => ep.event_types = None,
        Patch::Value(types) => ep.event_types = check_event_types(field, Some(types))?,
    }
    match input.channels {
        Patch::Absent => {}
        Patch::Null => ep.channels = None,
        Patch::Value(c) => ep.channels = check_channels(Some(c))?,
    }
    match input.metadata {
        Patch::Absent => {}
        Patch::Null => ep.metadata = metadata_value(None),
        Patch::Value(m) => ep.metadata = metadata_value(Some(m)),
    }
    ep.throttle_rate = input
        .throttle_rate
        .apply_opt(ep.throttle_rate.and_then(|n| u16::try_from(n).ok()))
        .map(i64::from);
    match input.date_format {
        Patch::Absent => {}
        Patch::Null => ep.date_format = DateFormat::default().as_str().to_string(),
        Patch::Value(f) => ep.date_format = check_date_format(&f)?,
    }
    ep.updated_at = Utc::now();
    state
        .store
        .update_endpoint(&ep)
        .await
        .map_err(uid_conflict)?;
    state.deliverer.forget(&ep.id);
    Ok(Json(ep.into()))
}

pub async fn delete(
    State(state): State<AppState>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let app = load_app(&state, &who, &app_id).await?;
    let ep = load_endpoint(&state, &app, &endpoint_id).await?;
    state.store.delete_endpoint(&app.id, &ep.id).await?;
    state.deliverer.forget(&ep.id);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub struct SecretOut {
    key: String,
}

pub async fn get_secret(
    State(state): State<AppState>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> ApiResult<Json<SecretOut>> {
    let app = load_app(&state, &who, &app_id).await?;
    let ep = load_endpoint(&state, &app, &endpoint_id).await?;
    let keys = state.store.secrets(&ep.id, Utc::now()).await?;
    let current = keys
        .into_iter()
        .find(|k| k.expires_at.is_none())
        .ok_or_else(|| ApiError::Internal(format!("endpoint {} has no current key", ep.id)))?;
    Ok(Json(SecretOut { key: current.key }))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RotateIn {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    grace_period_seconds: Option<u32>,
}

/// Makes a new key current; the old one keeps signing through the grace period,
/// so receivers can switch without losing a message. Answers with the new key
/// (the SDKs parse it).
pub async fn rotate_secret(
    State(state): State<AppState>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<Json<SecretOut>> {
    let input: RotateIn = if body.iter().all(u8::is_ascii_whitespace) {
        RotateIn::default()
    } else {
        super::extract::parse_json(&body)?
    };
    let app = load_app(&state, &who, &app_id).await?;
    let ep = load_endpoint(&state, &app, &endpoint_id).await?;
    let secret = match input.key {
        Some(s) => {
            EndpointSecret::parse(&s).map_err(|e| ApiError::field(&["key"], e.to_string()))?
        }
        None => EndpointSecret::generate(),
    };
    let grace = input.grace_period_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
    if grace > MAX_GRACE_SECONDS {
        return Err(ApiError::field(
            &["gracePeriodSeconds"],
            format!("must be at most {MAX_GRACE_SECONDS}"),
        ));
    }
    let now = Utc::now();
    let key = secret.to_whsec();
    state
        .store
        .rotate_secret(&ep.id, &key, now + Duration::seconds(i64::from(grace)), now)
        .await?;
    state.deliverer.forget(&ep.id);
    Ok(Json(SecretOut { key }))
}

#[derive(Serialize)]
pub struct HeadersOut {
    headers: BTreeMap<String, String>,
    sensitive: Vec<String>,
}

fn headers_out(ep: &Endpoint) -> HeadersOut {
    let mut headers = BTreeMap::new();
    let mut sensitive = Vec::new();
    for (k, v) in &ep.headers {
        if SENSITIVE_HEADERS.contains(&k.as_str()) {
            sensitive.push(k.clone());
        } else {
            headers.insert(k.clone(), v.clone());
        }
    }
    HeadersOut { headers, sensitive }
}

pub async fn get_headers(
    State(state): State<AppState>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> ApiResult<Json<HeadersOut>> {
    let app = load_app(&state, &who, &app_id).await?;
    let ep = load_endpoint(&state, &app, &endpoint_id).await?;
    Ok(Json(headers_out(&ep)))
}

#[derive(Deserialize)]
pub struct HeadersIn {
    headers: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeadersPatchIn {
    headers: BTreeMap<String, Option<String>>,
    /// The SDKs' way to remove headers (a `null` value in `headers` works too).
    #[serde(default)]
    delete_headers: Vec<String>,
}

pub async fn put_headers(
    State(state): State<AppState>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(input): Body<HeadersIn>,
) -> ApiResult<StatusCode> {
    let app = load_app(&state, &who, &app_id).await?;
    let mut ep = load_endpoint(&state, &app, &endpoint_id).await?;
    ep.headers = check_headers(&input.headers)?;
    ep.updated_at = Utc::now();
    state.store.update_endpoint(&ep).await?;
    state.deliverer.forget(&ep.id);
    Ok(StatusCode::NO_CONTENT)
}

/// PATCH merges: a header set to `null` is removed.
pub async fn patch_headers(
    State(state): State<AppState>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(input): Body<HeadersPatchIn>,
) -> ApiResult<StatusCode> {
    let app = load_app(&state, &who, &app_id).await?;
    let mut ep = load_endpoint(&state, &app, &endpoint_id).await?;
    for name in &input.delete_headers {
        ep.headers.remove(&name.to_ascii_lowercase());
    }
    let mut set = BTreeMap::new();
    for (name, value) in input.headers {
        match value {
            Some(v) => {
                set.insert(name, v);
            }
            None => {
                ep.headers.remove(&name.to_ascii_lowercase());
            }
        }
    }
    ep.headers.extend(check_headers(&set)?);
    ep.updated_at = Utc::now();
    state.store.update_endpoint(&ep).await?;
    state.deliverer.forget(&ep.id);
    Ok(StatusCode::NO_CONTENT)
}

pub async fn stats(
    State(state): State<AppState>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let app = load_app(&state, &who, &app_id).await?;
    let ep = load_endpoint(&state, &app, &endpoint_id).await?;
    let s = state
        .store
        .endpoint_stats(&ep.id, params.datetime("since")?, params.datetime("until")?)
        .await?;
    Ok(Json(json!({
        "success": s.success,
        "pending": s.pending,
        "sending": s.sending,
        "fail": s.fail,
        "canceled": 0,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventExampleIn {
    event_type: String,
    #[serde(default)]
    example_index: Option<usize>,
    #[serde(default)]
    payload: Option<Value>,
}

/// The Test button's answer: the message, as Svix answers, plus the outcome of
/// the one attempt Herald made right away.
#[derive(Serialize)]
pub struct ExampleOut {
    #[serde(flatten)]
    message: MessageOut,
    /// Status code, response body prefix (or why nothing was sent) and duration.
    attempt: Option<MessageAttemptOut>,
}

/// The Test button: sends the event type's example (marked `"test": true`) to
/// this endpoint only, whatever its filters, right away and once, and answers
/// with the outcome. The attempt is in the log like any other.
pub async fn send_example(
    State(state): State<AppState>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(input): Body<EventExampleIn>,
) -> ApiResult<(StatusCode, Json<ExampleOut>)> {
    let app = load_app(&state, &who, &app_id).await?;
    let ep = load_endpoint(&state, &app, &endpoint_id).await?;
    let (msg, attempt) = send_test(
        &state,
        &app,
        &ep,
        input.event_type,
        input.example_index,
        input.payload,
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ExampleOut {
            message: MessageOut::new(msg, true),
            attempt: attempt.map(MessageAttemptOut::from),
        }),
    ))
}

/// The Test button's work, shared by the API and the portal: the example (or the
/// given payload) marked `"test": true`, held for this caller, claimed and sent
/// once. Returns the message and the attempt, if one could be made. Beyond the
/// endpoint's Test rate, or when its delivery slots stay taken, nothing is
/// stored or sent: 429 with `Retry-After`.
pub(crate) async fn send_test(
    state: &AppState,
    app: &Application,
    ep: &Endpoint,
    event_type: String,
    example_index: Option<usize>,
    payload: Option<Value>,
) -> ApiResult<(Message, Option<herald_store::Attempt>)> {
    validate_name(&event_type).map_err(|e| ApiError::field(&["eventType"], e.to_string()))?;
    let mut payload = match payload {
        Some(p @ Value::Object(_)) => p,
        Some(_) => return Err(ApiError::field(&["payload"], "must be a JSON object")),
        None => {
            let et = state
                .store
                .get_event_type(&app.org_id, &event_type)
                .await?
                .ok_or(ApiError::NotFound("event type"))?;
            let index = example_index.unwrap_or(0);
            et.example(index).cloned().ok_or_else(|| {
                ApiError::field(
                    &["eventType"],
                    format!(
                        "event type {:?} has no example at index {index} (schemas.<version>.examples)",
                        et.name
                    ),
                )
            })?
        }
    };
    if let Some(object) = payload.as_object_mut() {
        object.insert("test".into(), Value::Bool(true));
    }
    // Within the endpoint's Test rate and in one of its delivery slots (the
    // worker's too), held until the attempt is made: Tests cannot flood it.
    let _slot = state.deliverer.limits().test_slot(&ep.id).await?;
    let msg = new_message(
        app,
        event_type,
        payload.to_string(),
        None,
        None,
        DEFAULT_RETENTION_DAYS,
    );
    // Held for this request, so no worker sends it (with retries) first.
    let lease = Duration::from_std(state.config.lease).unwrap_or(Duration::MAX);
    let until = msg.created_at + lease;
    let held = Targets::Held {
        endpoint_id: ep.id.clone(),
        until,
    };
    state.store.create_message(&msg, &held).await?;
    let attempt = match state
        .store
        .claim_delivery(&msg.id, &ep.id, until, until + lease)
        .await?
    {
        Some(job) => state.deliverer.deliver(job, Retries::None).await,
        None => None,
    };
    Ok((msg, attempt))
}

/// A new message whose payload is kept `retention_days` (already checked to be
/// one Svix accepts) before it may be expunged.
pub(crate) fn new_message(
    app: &Application,
    event_type: String,
    payload: String,
    event_id: Option<String>,
    channels: Option<Vec<String>>,
    retention_days: i64,
) -> Message {
    let created_at = Utc::now();
    Message {
        id: new_id(IdPrefix::Message),
        app_id: app.id.clone(),
        event_type,
        event_id,
        channels,
        payload,
        created_at,
        expires_at: Some(created_at + Duration::days(retention_days)),
    }
}

#[derive(Deserialize)]
pub struct RecoverIn {
    since: chrono::DateTime<Utc>,
    #[serde(default)]
    until: Option<chrono::DateTime<Utc>>,
}

/// Queues every failed delivery to this endpoint since a time again.
pub async fn recover(
    State(state): State<AppState>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(input): Body<RecoverIn>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let app = load_app(&state, &who, &app_id).await?;
    let ep = load_endpoint(&state, &app, &endpoint_id).await?;
    let now = Utc::now();
    let queued = state
        .store
        .recover(&ep.id, input.since, input.until, now)
        .await?;
    state.wake.any();
    tracing::info!(endpoint = %ep.id, queued, "recover queued failed deliveries");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "id": new_id(IdPrefix::Task),
            "status": "finished",
            "task": "endpoint.recover",
            "updatedAt": now,
        })),
    ))
}

fn uid_conflict(e: herald_store::StoreError) -> ApiError {
    match e {
        herald_store::StoreError::Conflict(_) => ApiError::Conflict(
            "an endpoint with this uid already exists in this application".into(),
        ),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_and_bad_headers_are_refused() {
        let ok: BTreeMap<_, _> = [("X-Team".to_string(), "a".to_string())].into();
        assert_eq!(
            check_headers(&ok)
                .unwrap()
                .get("x-team")
                .map(String::as_str),
            Some("a")
        );
        for name in [
            "Host",
            "webhook-id",
            "Svix-Signature",
            "content-length",
            "bad name",
        ] {
            let h: BTreeMap<_, _> = [(name.to_string(), "v".to_string())].into();
            assert!(check_headers(&h).is_err(), "{name} should be refused");
        }
    }
}
