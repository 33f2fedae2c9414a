//! `/api/v1/app/{app_id}/endpoint`: where an application's messages go.
//! This file holds the endpoint itself (list, create, get, update, patch,
//! delete) and the rules of its fields; `keys.rs` its signing secret and
//! custom headers; `sends.rs` what sends or counts its messages (stats,
//! send-example, recover, replay-missing, bulk-replay).

mod keys;
mod sends;

pub use keys::*;
pub use sends::*;

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
