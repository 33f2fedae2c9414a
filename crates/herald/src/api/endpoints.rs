//! `/api/v1/app/{app_id}/endpoint`: where an application's messages go.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use herald_core::dates::DateFormat;
use herald_core::filter::Rule;
use herald_core::id::{new_id, IdPrefix};
use herald_core::name::validate_name;
use herald_core::signing::{EndpointSecret, KeyKind};
use herald_store::{Endpoint, ListFilter, MessageStatus, Transformation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::extract::{Body, Params, Patch};
use super::out::{EndpointOut, ListResponse, MessageAttemptOut, MessageOut};
use super::tasks::TaskStarted;
use crate::auth::Principal;
use crate::service::endpoints::{
    self, check_channels, check_date_format, check_deliverable_url, check_event_types,
    check_headers, check_known_event_types, is_sensitive, remove_header, set_headers,
};
use crate::service::tasks;
use crate::service::transformations::check_filters;
use crate::service::{check_uid, load_app, load_endpoint, metadata_value, Error, Herald, Result};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointIn {
    url: String,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
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
    /// Most messages per second this endpoint receives.
    #[serde(default)]
    #[schema(minimum = 1)]
    throttle_rate: Option<u16>,
    /// Svix's older name of `throttleRate`, the same limit in messages per
    /// second: one stored value, answered under both names. At least 1, as
    /// Svix has it; given with `throttleRate`, the two must agree.
    #[serde(default)]
    #[schema(minimum = 1)]
    rate_limit: Option<u16>,
    /// Svix's endpoint version (deprecated there): kept and answered as
    /// given, at least 1; absent is 1, on PUT too, as Svix does.
    #[serde(default)]
    #[schema(minimum = 1)]
    version: Option<u16>,
    /// Herald's: how timestamp fields are sent (`unix`, `unix_ms`, `iso8601`,
    /// `rfc2822`). Svix clients don't send it; absent keeps the current one.
    #[serde(default)]
    date_format: Option<String>,
    /// Herald's: the content filter, rules every message's payload must meet
    /// to be sent here. Absent keeps the current one.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    filters: Option<Vec<Rule>>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPatch {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    url: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    uid: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    description: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    disabled: Patch<bool>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    event_types: Patch<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    filter_types: Patch<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    channels: Patch<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    metadata: Patch<BTreeMap<String, String>>,
    #[serde(default)]
    #[schema(value_type = Option<u16>)]
    throttle_rate: Patch<u16>,
    /// Svix's older name of `throttleRate` (see `EndpointIn`).
    #[serde(default)]
    #[schema(value_type = Option<u16>, minimum = 1)]
    rate_limit: Patch<u16>,
    /// Svix's endpoint version (see `EndpointIn`); not `null`.
    #[serde(default)]
    #[schema(value_type = Option<u16>, minimum = 1)]
    version: Patch<u16>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    date_format: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    filters: Patch<Vec<Rule>>,
}

impl EndpointIn {
    /// Names the endpoint by `uid` unless the body does (an upsert by uid).
    pub(super) fn with_uid_or(mut self, uid: &str) -> EndpointIn {
        if self.uid.is_none() {
            self.uid = Some(uid.to_string());
        }
        self
    }
}

/// The event filter of a create or PUT, under whichever name it came (the
/// SDKs' `eventTypes` wins), with the field it came under: a list of known
/// event types ([`check_known_event_types`]), never empty (Svix's rule: no
/// list, or `null`, is every type).
async fn merge_filter(
    state: &Herald,
    org_id: &str,
    event_types: Option<Vec<String>>,
    filter_types: Option<Vec<String>>,
) -> Result<Option<Vec<String>>> {
    let (field, types) = match (event_types, filter_types) {
        (Some(e), _) => ("eventTypes", Some(e)),
        (None, f) => ("filterTypes", f),
    };
    check_filter(state, org_id, field, types).await
}

/// An event filter given as a list (see [`merge_filter`]).
async fn check_filter(
    state: &Herald,
    org_id: &str,
    field: &str,
    types: Option<Vec<String>>,
) -> Result<Option<Vec<String>>> {
    if types.as_ref().is_some_and(Vec::is_empty) {
        return Err(Error::field(
            &[field],
            format!("{field} can't be empty, it must have at least one item."),
        ));
    }
    let types = check_event_types(field, types)?;
    check_known_event_types(state, org_id, field, types.as_deref()).await?;
    Ok(types)
}

/// The channels of a create, PUT or PATCH: not an empty list (Svix's rule:
/// no list, or `null`, is any channel).
fn api_channels(channels: Option<Vec<String>>) -> Result<Option<Vec<String>>> {
    if channels.as_ref().is_some_and(Vec::is_empty) {
        return Err(Error::field(
            &["channels"],
            "Channels must have at least 1 and at most 10 items, or be set to null.",
        ));
    }
    check_channels(channels)
}

/// The message rate of a create or PUT of an endpoint or (`what`) an
/// application: `throttleRate`, or `rateLimit`, its older name at Svix (one
/// limit, in messages per second, stored once).
pub(super) fn rate(
    what: &str,
    throttle_rate: Option<u16>,
    rate_limit: Option<u16>,
) -> Result<Option<i64>> {
    check_rate_limit(what, rate_limit)?;
    // Svix's create and PUT take at least 1; a PATCH may set 0 (no limit).
    if throttle_rate == Some(0) {
        return Err(Error::field(
            &["throttleRate"],
            "must be at least 1 (leave it out for no limit)",
        ));
    }
    match (throttle_rate, rate_limit) {
        (Some(t), Some(r)) if t != r => Err(rates_disagree()),
        (t, r) => Ok(t.or(r).map(i64::from)),
    }
}

/// The message rate of a PATCH, as [`rate`]: the one of the two names given
/// (`null` clears it).
pub(super) fn patch_rate(
    what: &str,
    throttle_rate: Patch<u16>,
    rate_limit: Patch<u16>,
) -> Result<Patch<u16>> {
    if let Patch::Value(r) = rate_limit {
        check_rate_limit(what, Some(r))?;
    }
    match (throttle_rate, rate_limit) {
        (Patch::Absent, r) => Ok(r),
        (t, Patch::Absent) => Ok(t),
        (t, r) if t == r => Ok(t),
        _ => Err(rates_disagree()),
    }
}

fn check_rate_limit(what: &str, rate_limit: Option<u16>) -> Result<()> {
    if rate_limit == Some(0) {
        return Err(Error::field(
            &["rateLimit"],
            format!("{what} rate limits must be at least one if set"),
        ));
    }
    Ok(())
}

fn rates_disagree() -> Error {
    Error::field(
        &["rateLimit"],
        "differs from throttleRate: the two are one limit (messages per second); give one",
    )
}

/// Svix's endpoint `version`: at least 1, and 1 when absent.
fn version(version: Option<u16>) -> Result<i64> {
    match version {
        Some(0) => Err(Error::field(
            &["version"],
            "Endpoint versions must be at least one if set",
        )),
        v => Ok(i64::from(v.unwrap_or(1))),
    }
}

#[utoipa::path(
    get, operation_id = "v1.endpoint.list",
    path = "/api/v1/app/{app_id}/endpoint",
    tag = "Endpoint",
    summary = "List endpoints",
    params(crate::api::doc::AppPath, crate::api::doc::PageQuery),
    responses((status = 200, description = "OK", body = crate::api::out::ListResponse<crate::api::out::EndpointOut>))
)]
pub async fn list(
    State(state): State<Herald>,
    who: Principal,
    Path(app_id): Path<String>,
    params: Params,
) -> Result<Json<ListResponse<EndpointOut>>> {
    let app = load_app(&state, &who, &app_id).await?;
    // Newest first, as Svix lists endpoints (`order=ascending` flips it).
    let page = params.page(true)?;
    let result = state.store.list_endpoints(&app.id, &page).await?;
    Ok(Json(ListResponse::from_page(
        result,
        |e| e.id.clone(),
        EndpointOut::from,
    )))
}

#[utoipa::path(
    post, operation_id = "v1.endpoint.create",
    path = "/api/v1/app/{app_id}/endpoint",
    tag = "Endpoint",
    summary = "Create an endpoint",
    params(crate::api::doc::AppPath),
    request_body = EndpointIn,
    responses((status = 201, description = "Created", body = crate::api::out::EndpointOut))
)]
pub async fn create(
    State(state): State<Herald>,
    who: Principal,
    Path(app_id): Path<String>,
    Body(input): Body<EndpointIn>,
) -> Result<(StatusCode, Json<EndpointOut>)> {
    let app = load_app(&state, &who, &app_id).await?;
    let ep = create_endpoint(&state, &app, input).await?;
    Ok((StatusCode::CREATED, Json(ep.into())))
}

/// A new endpoint of `app` as `input` describes it, saved.
async fn create_endpoint(
    state: &Herald,
    app: &herald_store::Application,
    input: EndpointIn,
) -> Result<Endpoint> {
    let url = check_deliverable_url(state, &input.url).await?;
    check_uid(input.uid.as_deref())?;
    let event_types =
        merge_filter(state, &app.org_id, input.event_types, input.filter_types).await?;
    let channels = api_channels(input.channels)?;
    let headers = check_headers(&input.headers.unwrap_or_default())?;
    let throttle_rate = rate("Endpoint", input.throttle_rate, input.rate_limit)?;
    let version = version(input.version)?;
    let date_format = match &input.date_format {
        Some(f) => check_date_format(f)?,
        None => DateFormat::default().as_str().to_string(),
    };
    let secret = match input.secret {
        Some(s) => {
            EndpointSecret::parse(&s).map_err(|e| Error::field(&["secret"], e.to_string()))?
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
        throttle_rate,
        version,
        date_format,
        transformation: Transformation::default(),
        filters: check_filters("filters", input.filters.unwrap_or_default())?,
        health: Default::default(),
        created_at: now,
        updated_at: now,
    };
    endpoints::create(state, app, &ep, &secret.reveal()).await?;
    Ok(ep)
}

#[utoipa::path(
    get, operation_id = "v1.endpoint.get",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}",
    tag = "Endpoint",
    summary = "Get an endpoint",
    params(crate::api::doc::EndpointPath),
    responses((status = 200, description = "OK", body = crate::api::out::EndpointOut))
)]
pub async fn get(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> Result<Json<EndpointOut>> {
    let app = load_app(&state, &who, &app_id).await?;
    Ok(Json(
        load_endpoint(&state, &app, &endpoint_id).await?.into(),
    ))
}

/// PUT replaces every field it carries; headers and the secret stay. An
/// endpoint that does not exist is created, with the path as its uid (201),
/// as Svix does (and as `PUT /app/{app_id}` creates an application).
#[utoipa::path(
    put, operation_id = "v1.endpoint.update",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}",
    tag = "Endpoint",
    summary = "Update (or create) an endpoint",
    params(crate::api::doc::EndpointPath),
    request_body = EndpointIn,
    responses((status = 200, description = "OK", body = crate::api::out::EndpointOut), (status = 201, description = "Created", body = crate::api::out::EndpointOut))
)]
pub async fn update(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(input): Body<EndpointIn>,
) -> Result<(StatusCode, Json<EndpointOut>)> {
    let app = load_app(&state, &who, &app_id).await?;
    let mut ep = match load_endpoint(&state, &app, &endpoint_id).await {
        Ok(ep) => ep,
        // An endpoint id that is not there is not a uid to create.
        Err(Error::NotFound(_)) if !endpoint_id.starts_with("ep_") => {
            let mut input = input;
            if input.uid.is_none() {
                validate_name(&endpoint_id).map_err(|e| Error::field(&["uid"], e.to_string()))?;
                input.uid = Some(endpoint_id);
            }
            let ep = create_endpoint(&state, &app, input).await?;
            return Ok((StatusCode::CREATED, Json(ep.into())));
        }
        Err(e) => return Err(e),
    };
    ep.url = check_deliverable_url(&state, &input.url).await?;
    check_uid(input.uid.as_deref())?;
    ep.uid = input.uid;
    ep.description = input.description.unwrap_or_default();
    ep.disabled = input.disabled.unwrap_or(false);
    ep.event_types =
        merge_filter(&state, &app.org_id, input.event_types, input.filter_types).await?;
    ep.channels = api_channels(input.channels)?;
    ep.metadata = metadata_value(input.metadata);
    ep.throttle_rate = rate("Endpoint", input.throttle_rate, input.rate_limit)?;
    ep.version = version(input.version)?;
    if let Some(headers) = input.headers {
        ep.headers = check_headers(&headers)?;
    }
    if let Some(format) = &input.date_format {
        ep.date_format = check_date_format(format)?;
    }
    if let Some(rules) = input.filters {
        ep.filters = check_filters("filters", rules)?;
    }
    ep.updated_at = Utc::now();
    endpoints::update(&state, &app, &ep).await?;
    // As saved: enabling it also cleared its failure run.
    let saved = load_endpoint(&state, &app, &ep.id).await?;
    Ok((StatusCode::OK, Json(saved.into())))
}

#[utoipa::path(
    patch, operation_id = "v1.endpoint.patch",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}",
    tag = "Endpoint",
    summary = "Patch an endpoint",
    params(crate::api::doc::EndpointPath),
    request_body = EndpointPatch,
    responses((status = 200, description = "OK", body = crate::api::out::EndpointOut))
)]
pub async fn patch(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(input): Body<EndpointPatch>,
) -> Result<Json<EndpointOut>> {
    let app = load_app(&state, &who, &app_id).await?;
    let mut ep = load_endpoint(&state, &app, &endpoint_id).await?;
    match input.url {
        Patch::Absent => {}
        Patch::Null => return Err(Error::field(&["url"], "must not be null")),
        Patch::Value(url) => ep.url = check_deliverable_url(&state, &url).await?,
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
        Patch::Value(types) => {
            ep.event_types = check_filter(&state, &app.org_id, field, Some(types)).await?
        }
    }
    match input.channels {
        Patch::Absent => {}
        Patch::Null => ep.channels = None,
        Patch::Value(c) => ep.channels = api_channels(Some(c))?,
    }
    match input.metadata {
        Patch::Absent => {}
        Patch::Null => ep.metadata = metadata_value(None),
        Patch::Value(m) => ep.metadata = metadata_value(Some(m)),
    }
    ep.throttle_rate = patch_rate("Endpoint", input.throttle_rate, input.rate_limit)?
        .apply_opt(ep.throttle_rate.and_then(|n| u16::try_from(n).ok()))
        .map(i64::from);
    match input.version {
        Patch::Absent => {}
        Patch::Null => return Err(Error::field(&["version"], "must not be null")),
        Patch::Value(v) => ep.version = version(Some(v))?,
    }
    match input.date_format {
        Patch::Absent => {}
        Patch::Null => ep.date_format = DateFormat::default().as_str().to_string(),
        Patch::Value(f) => ep.date_format = check_date_format(&f)?,
    }
    match input.filters {
        Patch::Absent => {}
        Patch::Null => ep.filters = Vec::new(),
        Patch::Value(rules) => ep.filters = check_filters("filters", rules)?,
    }
    ep.updated_at = Utc::now();
    endpoints::update(&state, &app, &ep).await?;
    // As saved: enabling it also cleared its failure run.
    Ok(Json(load_endpoint(&state, &app, &ep.id).await?.into()))
}

#[utoipa::path(
    delete, operation_id = "v1.endpoint.delete",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}",
    tag = "Endpoint",
    summary = "Delete an endpoint",
    params(crate::api::doc::EndpointPath),
    responses((status = 204, description = "No content"))
)]
pub async fn delete(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let app = load_app(&state, &who, &app_id).await?;
    let ep = load_endpoint(&state, &app, &endpoint_id).await?;
    endpoints::delete(&state, &app, &ep).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretOut {
    /// The `whsec_` key, or for an ed25519 (`whsk_`) one its public `whpk_`
    /// half, as Svix answers: the private key never leaves Herald.
    key: String,
    /// Herald's addition for `whsk_` (ed25519) keys: the `whpk_` key
    /// receivers verify `v1a` signatures with (the same as `key`). Absent
    /// for `whsec_` keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key: Option<String>,
}

impl SecretOut {
    fn new(key: String) -> SecretOut {
        match EndpointSecret::parse(&key)
            .ok()
            .and_then(|k| k.public_key())
        {
            Some(public) => SecretOut {
                key: public.clone(),
                public_key: Some(public),
            },
            None => SecretOut {
                key,
                public_key: None,
            },
        }
    }
}

#[utoipa::path(
    get, operation_id = "v1.endpoint.get-secret",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret",
    tag = "Endpoint",
    summary = "Get an endpoint's signing secret",
    params(crate::api::doc::EndpointPath),
    responses((status = 200, description = "OK", body = SecretOut))
)]
pub async fn get_secret(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> Result<Json<SecretOut>> {
    let app = load_app(&state, &who, &app_id).await?;
    let ep = load_endpoint(&state, &app, &endpoint_id).await?;
    let current = endpoints::current_key(&state, &ep)
        .await?
        .ok_or_else(|| Error::Internal(format!("endpoint {} has no current key", ep.id)))?;
    Ok(Json(SecretOut::new(current)))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotateIn {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    grace_period_seconds: Option<u32>,
    /// Herald's addition: the kind of key to generate when `key` is not
    /// given, `"hmac"` (`whsec_`, the default, as Svix) or `"ed25519"`
    /// (`whsk_`). With a `key`, it must name that key's kind.
    #[serde(default)]
    key_type: Option<KeyType>,
}

#[derive(Deserialize, Clone, Copy, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    Hmac,
    Ed25519,
}

impl From<KeyType> for KeyKind {
    fn from(t: KeyType) -> KeyKind {
        match t {
            KeyType::Hmac => KeyKind::Hmac,
            KeyType::Ed25519 => KeyKind::Ed25519,
        }
    }
}

/// Makes a new key current; the old one keeps signing through the grace period,
/// so receivers can switch without losing a message. Answers with the new key
/// (the SDKs parse it).
#[utoipa::path(
    post, operation_id = "v1.endpoint.rotate-secret",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate",
    tag = "Endpoint",
    summary = "Rotate an endpoint's signing secret",
    params(crate::api::doc::EndpointPath),
    request_body = Option<RotateIn>,
    responses((status = 200, description = "OK", body = SecretOut))
)]
pub async fn rotate_secret(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<SecretOut>> {
    let input: RotateIn = if body.iter().all(u8::is_ascii_whitespace) {
        RotateIn::default()
    } else {
        super::extract::parse_json(&body)?
    };
    let app = load_app(&state, &who, &app_id).await?;
    let ep = load_endpoint(&state, &app, &endpoint_id).await?;
    let grace = input
        .grace_period_seconds
        .unwrap_or(endpoints::DEFAULT_GRACE_SECONDS);
    let key = endpoints::rotate_secret(
        &state,
        &ep,
        input.key.as_deref(),
        input.key_type.map(KeyKind::from),
        grace,
    )
    .await?;
    Ok(Json(SecretOut::new(key)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct HeadersOut {
    headers: BTreeMap<String, String>,
    sensitive: Vec<String>,
}

fn headers_out(ep: &Endpoint) -> HeadersOut {
    let mut headers = BTreeMap::new();
    let mut sensitive = Vec::new();
    for (k, v) in &ep.headers {
        if is_sensitive(k) {
            sensitive.push(k.clone());
        } else {
            headers.insert(k.clone(), v.clone());
        }
    }
    HeadersOut { headers, sensitive }
}

#[utoipa::path(
    get, operation_id = "v1.endpoint.get-headers",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers",
    tag = "Endpoint",
    summary = "Get an endpoint's headers",
    params(crate::api::doc::EndpointPath),
    responses((status = 200, description = "OK", body = HeadersOut))
)]
pub async fn get_headers(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> Result<Json<HeadersOut>> {
    let app = load_app(&state, &who, &app_id).await?;
    let ep = load_endpoint(&state, &app, &endpoint_id).await?;
    Ok(Json(headers_out(&ep)))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct HeadersIn {
    headers: BTreeMap<String, String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeadersPatchIn {
    headers: BTreeMap<String, Option<String>>,
    /// The SDKs' way to remove headers (a `null` value in `headers` works too).
    #[serde(default)]
    delete_headers: Vec<String>,
}

#[utoipa::path(
    put, operation_id = "v1.endpoint.put-headers",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers",
    tag = "Endpoint",
    summary = "Set an endpoint's headers",
    params(crate::api::doc::EndpointPath),
    request_body = HeadersIn,
    responses((status = 204, description = "No content"))
)]
pub async fn put_headers(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(input): Body<HeadersIn>,
) -> Result<StatusCode> {
    let app = load_app(&state, &who, &app_id).await?;
    let mut ep = load_endpoint(&state, &app, &endpoint_id).await?;
    ep.headers = check_headers(&input.headers)?;
    ep.updated_at = Utc::now();
    endpoints::update(&state, &app, &ep).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// PATCH merges: a header set to `null` is removed.
#[utoipa::path(
    patch, operation_id = "v1.endpoint.patch-headers",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers",
    tag = "Endpoint",
    summary = "Patch an endpoint's headers",
    params(crate::api::doc::EndpointPath),
    request_body = HeadersPatchIn,
    responses((status = 204, description = "No content"))
)]
pub async fn patch_headers(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(input): Body<HeadersPatchIn>,
) -> Result<StatusCode> {
    let app = load_app(&state, &who, &app_id).await?;
    let mut ep = load_endpoint(&state, &app, &endpoint_id).await?;
    for name in &input.delete_headers {
        remove_header(&mut ep.headers, name);
    }
    let mut set = BTreeMap::new();
    for (name, value) in input.headers {
        match value {
            Some(v) => {
                set.insert(name, v);
            }
            None => remove_header(&mut ep.headers, &name),
        }
    }
    set_headers(&mut ep.headers, check_headers(&set)?);
    ep.updated_at = Utc::now();
    endpoints::update(&state, &app, &ep).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, operation_id = "v1.endpoint.stats",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/stats",
    tag = "Endpoint",
    summary = "An endpoint's delivery counts",
    params(crate::api::doc::EndpointPath, ("since" = Option<chrono::DateTime<chrono::Utc>>, Query), ("until" = Option<chrono::DateTime<chrono::Utc>>, Query)),
    responses((status = 200, description = "OK", body = Object))
)]
pub async fn stats(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    params: Params,
) -> Result<Json<Value>> {
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

#[derive(Deserialize, utoipa::ToSchema)]
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
#[derive(Serialize, utoipa::ToSchema)]
pub struct ExampleOut {
    #[serde(flatten)]
    message: MessageOut,
    /// Status code, response body prefix (or why nothing was sent) and duration.
    attempt: Option<MessageAttemptOut>,
}

/// The Test button: sends the event type's example (marked `"test": true`) to
/// this endpoint only, whatever its filters, right away and once, and answers
/// with the outcome. The attempt is in the log like any other.
#[utoipa::path(
    post, operation_id = "v1.endpoint.send-example",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/send-example",
    tag = "Endpoint",
    summary = "Send an example event",
    params(crate::api::doc::EndpointPath),
    request_body = EventExampleIn,
    responses((status = 200, description = "OK", body = ExampleOut))
)]
pub async fn send_example(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(input): Body<EventExampleIn>,
) -> Result<(StatusCode, Json<ExampleOut>)> {
    let app = load_app(&state, &who, &app_id).await?;
    let ep = load_endpoint(&state, &app, &endpoint_id).await?;
    let (msg, attempt) = endpoints::send_test(
        &state,
        &app,
        &ep,
        input.event_type,
        input.example_index,
        input.payload,
    )
    .await?;
    // 200, as Svix's spec answers it (the example was sent, not queued).
    Ok((
        StatusCode::OK,
        Json(ExampleOut {
            message: MessageOut::new(msg, true),
            attempt: attempt.map(MessageAttemptOut::from),
        }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RecoverIn {
    since: chrono::DateTime<Utc>,
    #[serde(default)]
    until: Option<chrono::DateTime<Utc>>,
}

/// Queues every failed delivery to this endpoint since a time again, as
/// Svix does: a background task answered `running` at once, finished (with
/// how many it queued) or failed behind, and readable at
/// `/api/v1/background-task/{id}`.
#[utoipa::path(
    post, operation_id = "v1.endpoint.recover",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/recover",
    tag = "Endpoint",
    summary = "Resend the failed messages since a time",
    params(crate::api::doc::EndpointPath),
    request_body = RecoverIn,
    responses((status = 202, description = "Accepted", body = crate::api::tasks::TaskStarted))
)]
pub async fn recover(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(input): Body<RecoverIn>,
) -> Result<(StatusCode, Json<TaskStarted>)> {
    // Nothing older than the attempts Herald keeps can be recovered (Svix:
    // 14 days).
    let reach = Some(state.config.attempt_retention);
    let ep = (app_id, endpoint_id);
    window_task(
        state,
        who,
        ep,
        (input, reach),
        "endpoint.recover",
        "recovered",
        |h, ep, since, until| async move { endpoints::recover(&h, &ep, since, until).await },
    )
    .await
}

/// Queues to this endpoint every message of the window it never got (Svix's
/// `replay-missing`): a background task, as `recover`.
#[utoipa::path(
    post, operation_id = "v1.endpoint.replay-missing",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/replay-missing",
    tag = "Endpoint",
    summary = "Send the messages an endpoint never got",
    params(crate::api::doc::EndpointPath),
    request_body = RecoverIn,
    responses((status = 202, description = "Accepted", body = crate::api::tasks::TaskStarted))
)]
pub async fn replay_missing(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(input): Body<RecoverIn>,
) -> Result<(StatusCode, Json<TaskStarted>)> {
    let ep = (app_id, endpoint_id);
    window_task(
        state,
        who,
        ep,
        (input, None),
        "endpoint.replay",
        "replayed",
        |h, ep, since, until| async move { endpoints::replay_missing(&h, &ep, since, until).await },
    )
    .await
}

/// Svix's `BulkReplayIn`: the window, and which of its deliveries.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkReplayIn {
    since: chrono::DateTime<Utc>,
    #[serde(default)]
    until: Option<chrono::DateTime<Utc>>,
    #[serde(default)]
    event_types: Option<Vec<String>>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    /// Svix's `MessageStatus`: 0 success, 1 pending, 2 fail, 3 sending.
    #[serde(default)]
    status: Option<i64>,
    /// 0 (no response), 100, 200, 300, 400 or 500.
    #[serde(default)]
    status_code_class: Option<i64>,
}

impl BulkReplayIn {
    /// The filter it names, or a 422 at the bad field.
    fn filter(&self) -> Result<ListFilter> {
        let event_types = check_event_types("eventTypes", self.event_types.clone())?;
        let status = match self.status {
            None => None,
            Some(n @ 0..=3) => Some(MessageStatus::from_i64(n)),
            Some(_) => return Err(Error::field(&["status"], "must be 0, 1, 2 or 3")),
        };
        let status_code_class = match self.status_code_class {
            None => None,
            Some(n) if n % 100 == 0 && (0..=500).contains(&n) => Some(n),
            Some(_) => {
                return Err(Error::field(
                    &["statusCodeClass"],
                    "must be one of 0, 100, 200, 300, 400, 500",
                ))
            }
        };
        Ok(ListFilter {
            channel: self.channel.clone(),
            tag: self.tag.clone(),
            event_types: event_types.unwrap_or_default(),
            status,
            status_code_class,
            ..ListFilter::default()
        })
    }
}

/// Queues again every delivery of the window to this endpoint that the
/// filters take, delivered or not (Svix's `bulk-replay`): a background
/// task, as `recover`, finished with `data.messagesSent`.
#[utoipa::path(
    post, operation_id = "v1.endpoint.bulk-replay",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/bulk-replay",
    tag = "Endpoint",
    summary = "Send the window's deliveries to an endpoint again",
    params(crate::api::doc::EndpointPath),
    request_body = BulkReplayIn,
    responses((status = 202, description = "Accepted", body = crate::api::tasks::TaskStarted))
)]
pub async fn bulk_replay(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(input): Body<BulkReplayIn>,
) -> Result<(StatusCode, Json<TaskStarted>)> {
    let filter = input.filter()?;
    let window = RecoverIn {
        since: input.since,
        until: input.until,
    };
    let ep = (app_id, endpoint_id);
    let kind = "endpoint.bulk-replay";
    window_task(
        state,
        who,
        ep,
        (window, None),
        kind,
        "messagesSent",
        |h, ep, since, until| async move {
            endpoints::bulk_replay(&h, &ep, since, until, &filter).await
        },
    )
    .await
}

/// Starts a background task of `kind` that runs `work` on the endpoint
/// (application, endpoint: ids or uids) over the window of `input`; it
/// finishes with how many deliveries `work` queued, as `data.{count}`.
async fn window_task<W, F>(
    state: Herald,
    who: Principal,
    (app_id, endpoint_id): (String, String),
    (input, reach): (RecoverIn, Option<std::time::Duration>),
    kind: &str,
    count: &'static str,
    work: W,
) -> Result<(StatusCode, Json<TaskStarted>)>
where
    W: FnOnce(Herald, Endpoint, chrono::DateTime<Utc>, Option<chrono::DateTime<Utc>>) -> F,
    F: std::future::Future<Output = Result<u64>> + Send + 'static,
{
    let app = load_app(&state, &who, &app_id).await?;
    let ep = load_endpoint(&state, &app, &endpoint_id).await?;
    // A window reaching back further than `reach` is refused, with five
    // minutes' grace for clocks (as Svix gives).
    if let Some(reach) = reach {
        let reach = chrono::Duration::from_std(reach).unwrap_or(chrono::Duration::MAX);
        if input.since < Utc::now() - reach - chrono::Duration::minutes(5) {
            return Err(Error::field(
                &["since"],
                format!(
                    "cannot recover messages more than {} days old (attempts are kept that long)",
                    reach.num_days()
                ),
            ));
        }
    }
    let data = json!({"appId": app.id, "endpointId": ep.id, "since": input.since});
    let queued = work(state.clone(), ep, input.since, input.until);
    let run = async move { Ok(json!({ count: queued.await? })) };
    let task = tasks::start(&state, &app.org_id, kind, data, run).await?;
    Ok((StatusCode::ACCEPTED, Json(TaskStarted::from(task))))
}
