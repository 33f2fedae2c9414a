//! `/api/v1/event-type`: the organisation's catalog of event types.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use herald_core::name::validate_name;
use herald_core::schema::{check_schema, pointer_segments, validate};
use herald_store::EventType;
use serde::Deserialize;
use serde_json::Value;

use super::extract::{Body, Params, Patch};
use super::out::{EventTypeOut, ListResponse};
use crate::auth::Principal;
use crate::service::{require_org, Herald};
use crate::service::{Error, Result};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeIn {
    name: String,
    description: String,
    #[serde(default)]
    archived: bool,
    #[serde(default)]
    deprecated: bool,
    #[serde(default)]
    schemas: Option<Value>,
    #[serde(default)]
    feature_flag: Option<String>,
    /// Herald's: list it on the public catalog page.
    #[serde(default)]
    public: bool,
    /// Herald's: refuse messages whose payload does not match the schema.
    #[serde(default)]
    validate_payload: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeUpdate {
    description: String,
    #[serde(default)]
    archived: bool,
    #[serde(default)]
    deprecated: bool,
    #[serde(default)]
    schemas: Option<Value>,
    #[serde(default)]
    feature_flag: Option<String>,
    #[serde(default)]
    public: bool,
    #[serde(default)]
    validate_payload: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventTypePatch {
    #[serde(default)]
    description: Patch<String>,
    #[serde(default)]
    archived: Patch<bool>,
    #[serde(default)]
    deprecated: Patch<bool>,
    #[serde(default)]
    schemas: Patch<Value>,
    #[serde(default)]
    feature_flag: Patch<String>,
    #[serde(default)]
    public: Patch<bool>,
    #[serde(default)]
    validate_payload: Patch<bool>,
}

/// `schemas` is an object of versions, each a valid JSON Schema whose examples
/// match it; a 422 says where the problem is.
fn check_schemas(schemas: Option<&Value>) -> Result<()> {
    let Some(schemas) = schemas else {
        return Ok(());
    };
    let Some(versions) = schemas.as_object() else {
        return Err(Error::field(
            &["schemas"],
            "must be an object of versions to JSON Schemas, e.g. {\"1\": {...}}",
        ));
    };
    for (version, schema) in versions {
        if let Err(issue) = check_schema(schema) {
            return Err(schema_error(
                &["schemas", version],
                &issue.pointer,
                format!("is not a valid JSON Schema: {}", issue.message),
            ));
        }
        let examples = schema.get("examples").and_then(Value::as_array);
        for (i, example) in examples.into_iter().flatten().enumerate() {
            if let Err(issues) = validate(schema, example, 1) {
                let issue = &issues[0];
                return Err(schema_error(
                    &["schemas", version, "examples", &i.to_string()],
                    &issue.pointer,
                    format!("does not match the schema: {}", issue.message),
                ));
            }
        }
    }
    Ok(())
}

/// A 422 at `base` plus the JSON pointer inside it.
fn schema_error(base: &[&str], pointer: &str, msg: String) -> Error {
    let segments = pointer_segments(pointer);
    let mut path: Vec<&str> = base.to_vec();
    path.extend(segments.iter().map(String::as_str));
    Error::field(&path, msg)
}

fn check_feature_flag(flag: Option<&str>) -> Result<()> {
    if let Some(flag) = flag {
        validate_name(flag).map_err(|e| Error::field(&["featureFlag"], e.to_string()))?;
    }
    Ok(())
}

pub async fn list(
    State(state): State<Herald>,
    who: Principal,
    params: Params,
) -> Result<Json<ListResponse<EventTypeOut>>> {
    let page = params.page(false)?;
    let include_archived = params.bool("include_archived", false)?;
    let with_content = params.bool("with_content", true)?;
    let result = state
        .store
        .list_event_types(&who.org_id, include_archived, &page)
        .await?;
    Ok(Json(ListResponse::from_page(
        result,
        |et| et.name.clone(),
        |et| EventTypeOut::new(et, with_content),
    )))
}

/// Creates the event type; one that exists but is archived is brought back with
/// the new fields, as Svix does.
pub async fn create(
    State(state): State<Herald>,
    who: Principal,
    Body(input): Body<EventTypeIn>,
) -> Result<(StatusCode, Json<EventTypeOut>)> {
    require_org(&who)?;
    validate_name(&input.name).map_err(|e| Error::field(&["name"], e.to_string()))?;
    check_schemas(input.schemas.as_ref())?;
    check_feature_flag(input.feature_flag.as_deref())?;
    let now = Utc::now();
    if let Some(mut existing) = state.store.get_event_type(&who.org_id, &input.name).await? {
        if !existing.archived {
            return Err(Error::Conflict(format!(
                "event type {:?} already exists",
                input.name
            )));
        }
        existing.description = input.description;
        existing.archived = input.archived;
        existing.deprecated = input.deprecated;
        existing.schemas = input.schemas;
        existing.feature_flag = input.feature_flag;
        existing.public = input.public;
        existing.validate_payload = input.validate_payload;
        existing.updated_at = now;
        state.store.update_event_type(&existing).await?;
        return Ok((StatusCode::CREATED, Json(EventTypeOut::new(existing, true))));
    }
    let et = EventType {
        org_id: who.org_id.clone(),
        name: input.name,
        description: input.description,
        archived: input.archived,
        deprecated: input.deprecated,
        feature_flag: input.feature_flag,
        schemas: input.schemas,
        public: input.public,
        validate_payload: input.validate_payload,
        created_at: now,
        updated_at: now,
    };
    state
        .store
        .create_event_type(&et)
        .await
        .map_err(|e| match e {
            herald_store::StoreError::Conflict(_) => {
                Error::Conflict(format!("event type {:?} already exists", et.name))
            }
            other => other.into(),
        })?;
    Ok((StatusCode::CREATED, Json(EventTypeOut::new(et, true))))
}

pub async fn get(
    State(state): State<Herald>,
    who: Principal,
    Path(name): Path<String>,
) -> Result<Json<EventTypeOut>> {
    let et = state
        .store
        .get_event_type(&who.org_id, &name)
        .await?
        .ok_or(Error::NotFound("event type"))?;
    Ok(Json(EventTypeOut::new(et, true)))
}

/// PUT replaces the event type, creating it when missing.
pub async fn update(
    State(state): State<Herald>,
    who: Principal,
    Path(name): Path<String>,
    Body(input): Body<EventTypeUpdate>,
) -> Result<(StatusCode, Json<EventTypeOut>)> {
    require_org(&who)?;
    check_schemas(input.schemas.as_ref())?;
    check_feature_flag(input.feature_flag.as_deref())?;
    let now = Utc::now();
    match state.store.get_event_type(&who.org_id, &name).await? {
        Some(mut et) => {
            et.description = input.description;
            et.archived = input.archived;
            et.deprecated = input.deprecated;
            et.schemas = input.schemas;
            et.feature_flag = input.feature_flag;
            et.public = input.public;
            et.validate_payload = input.validate_payload;
            et.updated_at = now;
            state.store.update_event_type(&et).await?;
            Ok((StatusCode::OK, Json(EventTypeOut::new(et, true))))
        }
        None => {
            validate_name(&name).map_err(|e| Error::field(&["name"], e.to_string()))?;
            let et = EventType {
                org_id: who.org_id.clone(),
                name,
                description: input.description,
                archived: input.archived,
                deprecated: input.deprecated,
                feature_flag: input.feature_flag,
                schemas: input.schemas,
                public: input.public,
                validate_payload: input.validate_payload,
                created_at: now,
                updated_at: now,
            };
            state.store.create_event_type(&et).await?;
            Ok((StatusCode::CREATED, Json(EventTypeOut::new(et, true))))
        }
    }
}

pub async fn patch(
    State(state): State<Herald>,
    who: Principal,
    Path(name): Path<String>,
    Body(input): Body<EventTypePatch>,
) -> Result<Json<EventTypeOut>> {
    require_org(&who)?;
    let mut et = state
        .store
        .get_event_type(&who.org_id, &name)
        .await?
        .ok_or(Error::NotFound("event type"))?;
    match input.description {
        Patch::Absent => {}
        Patch::Null => return Err(Error::field(&["description"], "must not be null")),
        Patch::Value(d) => et.description = d,
    }
    et.archived = input.archived.apply_opt(Some(et.archived)).unwrap_or(false);
    et.deprecated = input
        .deprecated
        .apply_opt(Some(et.deprecated))
        .unwrap_or(false);
    et.schemas = input.schemas.apply_opt(et.schemas);
    check_schemas(et.schemas.as_ref())?;
    et.feature_flag = input.feature_flag.apply_opt(et.feature_flag);
    et.public = input.public.apply_opt(Some(et.public)).unwrap_or(false);
    et.validate_payload = input
        .validate_payload
        .apply_opt(Some(et.validate_payload))
        .unwrap_or(false);
    check_feature_flag(et.feature_flag.as_deref())?;
    et.updated_at = Utc::now();
    state.store.update_event_type(&et).await?;
    Ok(Json(EventTypeOut::new(et, true)))
}

/// DELETE archives the event type (messages of that type are kept); with
/// `expunge=true` it is removed for good.
pub async fn delete(
    State(state): State<Herald>,
    who: Principal,
    Path(name): Path<String>,
    params: Params,
) -> Result<StatusCode> {
    require_org(&who)?;
    let mut et = state
        .store
        .get_event_type(&who.org_id, &name)
        .await?
        .ok_or(Error::NotFound("event type"))?;
    if params.bool("expunge", false)? {
        state.store.delete_event_type(&who.org_id, &name).await?;
    } else {
        et.archived = true;
        et.updated_at = Utc::now();
        state.store.update_event_type(&et).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
