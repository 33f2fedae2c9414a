//! The endpoint form (Add and Edit): parsed from `application/x-www-form-
//! urlencoded`, checked with the API's own validators, refused with messages
//! next to the fields, and re-rendered with what was typed.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use herald_core::dates::DateFormat;
use herald_core::filter::Rule;
use herald_core::id::{new_id, IdPrefix};
use herald_core::signing::EndpointSecret;
use herald_store::{Endpoint, EventType, Transformation};
use serde_json::{json, Value};

use super::request::{
    app_of, base, catalog_types, endpoint_of, offered, org_types, posted, with, FormData,
};
use super::session::Session;
use super::transform::{format_codes, format_name, parse_filters, rule_line, CUSTOM};
use super::{page, PortalResult};
use crate::catalog::formats::Format;
use crate::catalog::page::humanise;
use crate::service::endpoints::{
    self, check_channels, check_date_format, check_deliverable_url, check_event_types,
    check_headers, header_value, is_sensitive,
};
use crate::service::transformations::{check_code, check_filters, format_code};
use crate::service::Error;
use crate::service::Herald;

use herald_core::headers::MASK;
/// How long the SSRF check waits for DNS before saving the URL anyway.
/// The instant the date-format preview shows (a Spot event's `occurredAt`).
const PREVIEW_UNIX: f64 = 1_715_095_714.0;

/// An error as a sentence for a person.
pub fn error_message(e: &Error) -> String {
    match e {
        Error::Validation(fields) => fields
            .iter()
            .map(|f| match f.loc.as_slice() {
                // A header's name is part of what is wrong with it.
                [_, field, name] if field == "headers" => format!("{name} {}", f.msg),
                _ => f.msg.clone(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        Error::NotFound(what) => format!("{what} not found"),
        other => other.to_string(),
    }
}

/// What the form holds, as typed.
#[derive(Default)]
pub(super) struct Values {
    pub(super) url: String,
    pub(super) event_types: Vec<String>,
    pub(super) description: String,
    pub(super) date_format: String,
    pub(super) channels: String,
    pub(super) headers: String,
    /// "" (as sent), a ready-made format's id, or "custom".
    pub(super) format: String,
    pub(super) code: String,
    /// Content filter rules, one per line (see [`parse_filters`]).
    pub(super) filters: String,
}

impl Values {
    pub(super) fn from_form(form: &FormData) -> Values {
        Values {
            url: form.get("url").unwrap_or_default().trim().to_string(),
            event_types: form.all("event_types"),
            description: form.get("description").unwrap_or_default().to_string(),
            date_format: form.get("date_format").unwrap_or("unix").to_string(),
            channels: form.get("channels").unwrap_or_default().to_string(),
            headers: form.get("headers").unwrap_or_default().to_string(),
            format: form.get("format").unwrap_or_default().to_string(),
            code: form
                .get("transformation_code")
                .unwrap_or_default()
                .replace("\r\n", "\n"),
            filters: form.get("filters").unwrap_or_default().to_string(),
        }
    }

    /// The endpoint's fields; `formats` are the ready-made formats' codes, to
    /// name the one an endpoint still runs unchanged.
    fn from_endpoint(ep: &Endpoint, formats: &[(Format, String)]) -> Values {
        let code = ep.transformation.code.clone().unwrap_or_default();
        let format = if !ep.transformation.enabled {
            String::new()
        } else {
            formats
                .iter()
                .find(|(_, c)| *c == code)
                .map_or(CUSTOM.to_string(), |(f, _)| f.id.clone())
        };
        Values {
            url: ep.url.clone(),
            event_types: ep.event_types.clone().unwrap_or_default(),
            description: ep.description.clone(),
            date_format: ep.date_format.clone(),
            channels: ep.channels.clone().unwrap_or_default().join(", "),
            headers: ep
                .headers
                .iter()
                .map(|(k, v)| {
                    let shown = if is_sensitive(k) { MASK } else { v };
                    format!("{k}: {shown}\n")
                })
                .collect(),
            format,
            code,
            filters: ep
                .filters
                .iter()
                .map(|r| format!("{}\n", rule_line(r)))
                .collect(),
        }
    }
}

/// The checked form: what an endpoint is made of.
struct Checked {
    url: String,
    event_types: Option<Vec<String>>,
    description: String,
    date_format: String,
    channels: Option<Vec<String>>,
    headers: BTreeMap<String, String>,
    filters: Vec<Rule>,
    /// The transformation's code and whether it runs.
    code: Option<String>,
    transform: bool,
}

/// The event types a form may subscribe to: those the session is offered,
/// and those the endpoint already names (kept when the catalog lost them, or
/// when a link with another flag saves it). `None` when the organisation has
/// no event types at all: any name goes, as in the API.
async fn choosable(
    state: &Herald,
    session: &Session,
    ep: Option<&Endpoint>,
) -> PortalResult<Option<BTreeSet<String>>> {
    let all = org_types(state, session).await?;
    if all.is_empty() {
        return Ok(None);
    }
    let mut names: BTreeSet<String> = all
        .into_iter()
        .filter(|t| offered(session, t))
        .map(|t| t.name)
        .collect();
    names.extend(ep.and_then(|e| e.event_types.clone()).unwrap_or_default());
    Ok(Some(names))
}

/// Checks every field, collecting a message per bad one. `old_headers` gives
/// masked sensitive values back their stored value; `choosable` is what the
/// event types may name (a forged form cannot reach a type the page did not
/// offer).
async fn check(
    state: &Herald,
    org_id: &str,
    v: &Values,
    old_headers: &BTreeMap<String, String>,
    choosable: Option<&BTreeSet<String>>,
) -> Result<Checked, BTreeMap<&'static str, String>> {
    let mut errors = BTreeMap::new();
    let url = match check_deliverable_url(state, &v.url).await {
        Ok(url) => Some(url),
        Err(e) => {
            errors.insert("url", error_message(&e));
            None
        }
    };
    let event_types = check_event_types("eventTypes", Some(v.event_types.clone()))
        .map_err(|e| errors.insert("event_types", error_message(&e)))
        .ok();
    if let Some(choosable) = choosable {
        let refused: Vec<&str> = v
            .event_types
            .iter()
            .filter(|t| !choosable.contains(*t))
            .map(String::as_str)
            .collect();
        if !refused.is_empty() {
            errors.insert(
                "event_types",
                format!("These events can't be chosen here: {}", refused.join(", ")),
            );
        }
    }
    let date_format = check_date_format(&v.date_format)
        .map_err(|e| errors.insert("date_format", error_message(&e)))
        .ok();
    let channels: Vec<String> = v
        .channels
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    let channels = check_channels(Some(channels))
        .map_err(|e| errors.insert("channels", error_message(&e)))
        .ok();
    let headers = match parse_headers(&v.headers, old_headers) {
        Ok(h) => check_headers(&h)
            .map_err(|e| errors.insert("headers", error_message(&e)))
            .ok(),
        Err(line) => {
            errors.insert("headers", format!("line {line:?} is not \"Name: value\""));
            None
        }
    };
    let filters = match parse_filters(&v.filters) {
        Ok(rules) => check_filters("filters", rules)
            .map_err(|e| errors.insert("filters", error_message(&e)))
            .ok(),
        Err(why) => {
            errors.insert("filters", why);
            None
        }
    };
    let typed = Some(v.code.trim().to_string()).filter(|c| !c.is_empty());
    let (code, transform) = match v.format.as_str() {
        // As sent: the code, if any, is kept but does not run.
        "" => (typed, false),
        CUSTOM => match &typed {
            None => {
                errors.insert(
                    "transformation",
                    "Write the code, or choose a format.".into(),
                );
                (None, false)
            }
            Some(code) => {
                if let Err(e) = check_code(state, "code", code).await {
                    errors.insert("transformation", error_message(&e));
                }
                (typed, true)
            }
        },
        id => match format_code(state, org_id, id).await {
            Ok(code) => (Some(code), true),
            Err(e) => {
                errors.insert("transformation", error_message(&e));
                (None, false)
            }
        },
    };
    match (url, event_types, date_format, channels, headers, filters) {
        (
            Some(url),
            Some(event_types),
            Some(date_format),
            Some(channels),
            Some(headers),
            Some(filters),
        ) if errors.is_empty() => Ok(Checked {
            url,
            event_types,
            description: v.description.trim().to_string(),
            date_format,
            channels,
            headers,
            filters,
            code,
            transform,
        }),
        _ => Err(errors),
    }
}

fn parse_headers(
    text: &str,
    old: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').ok_or_else(|| line.to_string())?;
        let (name, value) = (name.trim(), value.trim());
        let value = match header_value(old, name) {
            Some(stored) if value == MASK => stored.clone(),
            _ => value.to_string(),
        };
        out.insert(name.to_string(), value);
    }
    Ok(out)
}

/// `/portal/endpoints/new`.
pub async fn new(State(state): State<Herald>, session: Session) -> PortalResult<Response> {
    session.writable()?;
    let app = app_of(&state, &session).await?;
    let values = Values {
        date_format: DateFormat::default().as_str().into(),
        ..Values::default()
    };
    form_page(&state, &session, &app, None, &values, &BTreeMap::new()).await
}

/// `/portal/endpoints/{id}/edit`.
pub async fn edit(
    State(state): State<Herald>,
    session: Session,
    Path(id): Path<String>,
) -> PortalResult<Response> {
    session.writable()?;
    let app = app_of(&state, &session).await?;
    let ep = endpoint_of(&state, &app, &id).await?;
    let formats = format_codes(&catalog_types(&state, &session).await?);
    form_page(
        &state,
        &session,
        &app,
        Some(&ep),
        &Values::from_endpoint(&ep, &formats),
        &BTreeMap::new(),
    )
    .await
}

/// `POST /portal/endpoints`: adds an endpoint.
pub async fn create(
    State(state): State<Herald>,
    session: Session,
    body: axum::body::Bytes,
) -> PortalResult<Response> {
    let (form, app) = posted(&state, &session, &body).await?;
    let values = Values::from_form(&form);
    let choosable = choosable(&state, &session, None).await?;
    let c = match check(
        &state,
        &app.org_id,
        &values,
        &BTreeMap::new(),
        choosable.as_ref(),
    )
    .await
    {
        Ok(c) => c,
        Err(errors) => return form_page(&state, &session, &app, None, &values, &errors).await,
    };
    let now = Utc::now();
    let ep = Endpoint {
        id: new_id(IdPrefix::Endpoint),
        app_id: app.id.clone(),
        uid: None,
        url: c.url,
        description: c.description,
        disabled: false,
        event_types: c.event_types,
        channels: c.channels,
        metadata: json!({}),
        headers: c.headers,
        throttle_rate: None,
        version: 1,
        date_format: c.date_format,
        transformation: Transformation {
            updated_at: c.code.is_some().then_some(now),
            code: c.code,
            enabled: c.transform,
            variables: BTreeMap::new(),
        },
        filters: c.filters,
        health: Default::default(),
        created_at: now,
        updated_at: now,
    };
    endpoints::create(&state, &app, &ep, &EndpointSecret::generate().reveal()).await?;
    Ok(Redirect::to(&format!("/portal/endpoints/{}?notice=created", ep.id)).into_response())
}

/// `POST /portal/endpoints/{id}`: saves the Edit form.
pub async fn update(
    State(state): State<Herald>,
    session: Session,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> PortalResult<Response> {
    let (form, app) = posted(&state, &session, &body).await?;
    let mut ep = endpoint_of(&state, &app, &id).await?;
    let values = Values::from_form(&form);
    let choosable = choosable(&state, &session, Some(&ep)).await?;
    let c = match check(
        &state,
        &app.org_id,
        &values,
        &ep.headers,
        choosable.as_ref(),
    )
    .await
    {
        Ok(c) => c,
        Err(errors) => return form_page(&state, &session, &app, Some(&ep), &values, &errors).await,
    };
    ep.url = c.url;
    ep.event_types = c.event_types;
    ep.description = c.description;
    ep.date_format = c.date_format;
    ep.channels = c.channels;
    ep.headers = c.headers;
    ep.filters = c.filters;
    let now = Utc::now();
    if (&c.code, c.transform) != (&ep.transformation.code, ep.transformation.enabled) {
        ep.transformation.code = c.code;
        ep.transformation.enabled = c.transform;
        ep.transformation.updated_at = Some(now);
    }
    ep.updated_at = now;
    endpoints::update(&state, &app, &ep).await?;
    Ok(Redirect::to(&format!("/portal/endpoints/{}?notice=saved", ep.id)).into_response())
}

async fn form_page(
    state: &Herald,
    session: &Session,
    app: &herald_store::Application,
    ep: Option<&Endpoint>,
    v: &Values,
    errors: &BTreeMap<&'static str, String>,
) -> PortalResult<Response> {
    let types = catalog_types(state, session).await?;
    let groups = groups(&types, &v.event_types);
    // Types the endpoint names that the catalog no longer has stay choosable.
    let unknown: Vec<&String> = v
        .event_types
        .iter()
        .filter(|t| !types.iter().any(|et| &et.name == *t))
        .collect();
    let formats: Vec<Value> = DateFormat::ALL
        .iter()
        .map(|f| {
            json!({
                "name": f.as_str(),
                "label": format_label(*f),
                "preview": preview(*f),
                "selected": f.as_str() == v.date_format,
            })
        })
        .collect();
    let current = DateFormat::parse(&v.date_format).unwrap_or_default();
    let ready_made: Vec<Value> = format_codes(&types)
        .into_iter()
        .map(|(f, code)| {
            json!({"id": f.id, "title": f.title, "label": format_name(&f.id), "code": code, "selected": f.id == v.format})
        })
        .collect();
    let allow = &state.config.allow_subnets;
    let loopback_allowed = allow.allows(std::net::Ipv4Addr::LOCALHOST.into());
    let private_allowed = ["10.0.0.1", "172.16.0.1", "192.168.0.1"]
        .iter()
        .any(|ip| ip.parse().is_ok_and(|ip| allow.allows(ip)));
    let previewable: Vec<Value> = types
        .iter()
        .filter(|t| t.example(0).is_some())
        .map(|t| json!({"name": t.name, "checked": v.event_types.contains(&t.name)}))
        .collect();
    let title = if ep.is_some() {
        "Edit endpoint"
    } else {
        "Add endpoint"
    };
    let response = page(
        "form.html",
        with(
            base(session, Some(app), title, "webhooks"),
            json!({
                "ep": ep.map(|e| json!({"id": e.id, "url": e.url})),
                "action": ep.map_or("/portal/endpoints".to_string(), |e| format!("/portal/endpoints/{}", e.id)),
                "v": {
                    "url": v.url,
                    "description": v.description,
                    "channels": v.channels,
                    "headers": v.headers,
                    "format": v.format,
                    "code": v.code,
                    "filters": v.filters,
                },
                "ready_made": ready_made,
                // The as-you-type hint warns about local addresses only where
                // this server's operator has not allowed them.
                "loopback_allowed": loopback_allowed,
                "private_allowed": private_allowed,
                "previewable": previewable,
                "groups": groups,
                "unknown": unknown,
                "formats": formats,
                "preview": preview(current),
                "errors": errors,
                "has_errors": !errors.is_empty(),
            }),
        ),
    )?;
    if errors.is_empty() {
        Ok(response)
    } else {
        Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, response).into_response())
    }
}

fn format_label(f: DateFormat) -> &'static str {
    match f {
        DateFormat::Unix => "UNIX seconds (as sent by the platform)",
        DateFormat::UnixMs => "UNIX milliseconds (JavaScript)",
        DateFormat::Iso8601 => "ISO 8601 (spreadsheets, most tools)",
        DateFormat::Rfc2822 => "RFC 2822 (e-mail style)",
    }
}

/// `"occurredAt": …` as an endpoint with this format receives it.
fn preview(f: DateFormat) -> String {
    let v = f.render(PREVIEW_UNIX).unwrap_or(Value::Null);
    format!("\"occurredAt\": {v}")
}

/// A name segment as a heading: `learning_path` → `Learning path`.
/// Event types grouped by the first segment of their name, with examples.
fn groups(types: &[EventType], chosen: &[String]) -> Vec<Value> {
    let mut by: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for t in types {
        let group = t.name.split('.').next().unwrap_or(&t.name);
        by.entry(group).or_default().push(json!({
            "name": t.name,
            "description": t.description,
            "deprecated": t.deprecated,
            "checked": chosen.contains(&t.name),
            "example": t.example(0).map(|e| serde_json::to_string_pretty(e).unwrap_or_default()),
        }));
    }
    by.into_iter()
        .map(|(name, types)| json!({"name": humanise(name), "types": types}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_fields_and_masked_headers() {
        let form = FormData::parse(b"event_types=a.b&event_types=c.d&url=x&csrf=1");
        assert_eq!(form.all("event_types"), ["a.b", "c.d"]);
        assert_eq!(form.get("url"), Some("x"));

        let old: BTreeMap<_, _> =
            [("authorization".to_string(), "Bearer s3cret".to_string())].into();
        let parsed =
            parse_headers(&format!("Authorization: {MASK}\nX-Team: blue\n"), &old).unwrap();
        assert_eq!(parsed["Authorization"], "Bearer s3cret");
        assert_eq!(parsed["X-Team"], "blue");
        assert!(parse_headers("no colon here", &old).is_err());
    }
}
