//! `/api/v1/event-type`: the organisation's catalog of event types, and
//! `/api/v1/event-type/import/openapi`, Svix's import of them from an OpenAPI
//! document's webhooks.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use herald_core::name::validate_name;
use herald_core::schema::{check_schema, pointer_segments, validate};
use herald_store::EventType;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::extract::{Body, Params, Patch};
use super::out::{EventTypeOut, ListResponse};
use crate::auth::Principal;
use crate::catalog::{all_event_types, openapi_import};
use crate::service::{require_org, Herald};
use crate::service::{Error, Result};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeIn {
    #[schema(min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
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

#[derive(Deserialize, utoipa::ToSchema)]
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypePatch {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    description: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    archived: Patch<bool>,
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    deprecated: Patch<bool>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    schemas: Patch<Value>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    feature_flag: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    public: Patch<bool>,
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
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
        // Svix's `EventTypeIn`: each version is a schema object (a boolean
        // schema, valid JSON Schema as it is, is refused as Svix refuses it).
        if !schema.is_object() {
            return Err(Error::field(
                &["schemas", version],
                "must be a JSON Schema object, e.g. {\"type\": \"object\"}",
            ));
        }
        check_schema_at(&["schemas", version], schema)?;
    }
    Ok(())
}

/// One schema, at `base` in the body: a valid JSON Schema whose examples match
/// it.
fn check_schema_at(base: &[&str], schema: &Value) -> Result<()> {
    if let Err(issue) = check_schema(schema) {
        return Err(schema_error(
            base,
            &issue.pointer,
            format!("is not a valid JSON Schema: {}", issue.message),
        ));
    }
    let examples = schema.get("examples").and_then(Value::as_array);
    for (i, example) in examples.into_iter().flatten().enumerate() {
        if let Err(issues) = validate(schema, example, 1) {
            let issue = &issues[0];
            let mut at = base.to_vec();
            let i = i.to_string();
            at.extend(["examples", i.as_str()]);
            return Err(schema_error(
                &at,
                &issue.pointer,
                format!("does not match the schema: {}", issue.message),
            ));
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

#[utoipa::path(
    get, operation_id = "v1.event-type.list",
    path = "/api/v1/event-type",
    tag = "Event type",
    summary = "List event types",
    params(crate::api::doc::PageQuery, ("with_content" = Option<bool>, Query, description = "Whether each type's schemas are included; false by default, as in Svix"), ("include_archived" = Option<bool>, Query)),
    responses((status = 200, description = "OK", body = crate::api::out::ListResponse<crate::api::out::EventTypeOut>))
)]
pub async fn list(
    State(state): State<Herald>,
    who: Principal,
    params: Params,
) -> Result<Json<ListResponse<EventTypeOut>>> {
    let page = params.page(false)?;
    let include_archived = params.bool("include_archived", false)?;
    // Svix's default: the list without schemas, each type read with them.
    let with_content = params.bool("with_content", false)?;
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
#[utoipa::path(
    post, operation_id = "v1.event-type.create",
    path = "/api/v1/event-type",
    tag = "Event type",
    summary = "Create an event type",
    request_body = EventTypeIn,
    responses((status = 201, description = "Created", body = crate::api::out::EventTypeOut))
)]
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

#[utoipa::path(
    get, operation_id = "v1.event-type.get",
    path = "/api/v1/event-type/{name}",
    tag = "Event type",
    summary = "Get an event type",
    params(("name" = String, Path, description = "The event type's name")),
    responses((status = 200, description = "OK", body = crate::api::out::EventTypeOut))
)]
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
#[utoipa::path(
    put, operation_id = "v1.event-type.update",
    path = "/api/v1/event-type/{name}",
    tag = "Event type",
    summary = "Update (or create) an event type",
    params(("name" = String, Path, description = "The event type's name")),
    request_body = EventTypeUpdate,
    responses((status = 200, description = "OK", body = crate::api::out::EventTypeOut), (status = 201, description = "Created", body = crate::api::out::EventTypeOut))
)]
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

#[utoipa::path(
    patch, operation_id = "v1.event-type.patch",
    path = "/api/v1/event-type/{name}",
    tag = "Event type",
    summary = "Patch an event type",
    params(("name" = String, Path, description = "The event type's name")),
    request_body = EventTypePatch,
    responses((status = 200, description = "OK", body = crate::api::out::EventTypeOut))
)]
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
#[utoipa::path(
    delete, operation_id = "v1.event-type.delete",
    path = "/api/v1/event-type/{name}",
    tag = "Event type",
    summary = "Archive (or expunge) an event type",
    params(("name" = String, Path, description = "The event type's name"), ("expunge" = Option<bool>, Query)),
    responses((status = 204, description = "No content"))
)]
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

/// `POST /api/v1/event-type/import/openapi`: Svix's body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportOpenApiIn {
    #[serde(default)]
    dry_run: Option<bool>,
    #[serde(default)]
    replace_all: Option<bool>,
    #[serde(default)]
    spec: Option<Value>,
    #[serde(default)]
    spec_raw: Option<String>,
}

/// Svix's `EventTypeImportOpenApiOut`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ImportOpenApiOut {
    data: ImportOpenApiOutData,
}

/// `modified`: the event types the import changed (on a dry run, would
/// change): created, updated or brought back from the archive, and with
/// `replaceAll` the ones it archived. `to_modify` (Svix spells it so), on a dry
/// run only: the document's event types among them, as the document gives
/// them.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ImportOpenApiOutData {
    modified: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to_modify: Option<Vec<EventTypeFromOpenApi>>,
}

/// Svix's `EventTypeFromOpenApi`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeFromOpenApi {
    name: String,
    description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    schemas: Option<Value>,
    deprecated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    feature_flags: Option<Vec<String>>,
}

/// Creates or updates the event types an OpenAPI document's webhooks describe
/// (`catalog::openapi_import` reads it): the document sets the description,
/// schemas, `deprecated` and feature flag, and un-archives; an event type's
/// `public` and `validatePayload` are Herald's own and kept (off for a new one).
/// One the document leaves as it is, is not written. The whole document is
/// checked (names, schemas, examples) before anything is written.
#[utoipa::path(
    post, operation_id = "v1.event-type.import-openapi",
    path = "/api/v1/event-type/import/openapi",
    tag = "Event type",
    summary = "Import event types from an OpenAPI document's webhooks",
    request_body = ImportOpenApiIn,
    responses((status = 200, description = "OK", body = ImportOpenApiOut))
)]
pub async fn import_openapi(
    State(state): State<Herald>,
    who: Principal,
    Body(input): Body<ImportOpenApiIn>,
) -> Result<Json<ImportOpenApiOut>> {
    require_org(&who)?;
    let (doc, root) =
        match (input.spec, input.spec_raw) {
            (Some(spec), None) => (spec, "spec"),
            (None, Some(raw)) => (
                openapi_import::parse_raw(&raw).map_err(|e| doc_error("specRaw", e))?,
                "specRaw",
            ),
            _ => return Err(Error::field(
                &["spec"],
                "send the OpenAPI document as exactly one of `spec` (JSON) and `specRaw` (text)",
            )),
        };
    let webhooks = openapi_import::webhooks(&doc).map_err(|e| doc_error(root, e))?;
    for w in &webhooks {
        if let Some(schema) = w.schemas.as_ref().and_then(|s| s.get("1")) {
            let mut base: Vec<&str> = vec![root];
            base.extend(w.schema_path.iter().map(String::as_str));
            check_schema_at(&base, schema)?;
        }
    }

    let existing = all_event_types(state.store.as_ref(), &who.org_id)
        .await
        .map_err(|e| Error::Internal(format!("{e:#}")))?;
    let now = Utc::now();
    let mut writes: Vec<(EventType, bool)> = Vec::new();
    let mut to_modify = Vec::new();
    for w in &webhooks {
        let current = existing.iter().find(|et| et.name == w.name);
        let wanted = match current {
            Some(et) => EventType {
                description: w.description.clone(),
                archived: false,
                deprecated: w.deprecated,
                feature_flag: w.feature_flag.clone(),
                schemas: w.schemas.clone(),
                updated_at: now,
                ..et.clone()
            },
            None => EventType {
                org_id: who.org_id.clone(),
                name: w.name.clone(),
                description: w.description.clone(),
                archived: false,
                deprecated: w.deprecated,
                feature_flag: w.feature_flag.clone(),
                schemas: w.schemas.clone(),
                public: false,
                validate_payload: false,
                created_at: now,
                updated_at: now,
            },
        };
        let unchanged = current.is_some_and(|et| {
            EventType {
                updated_at: et.updated_at,
                ..wanted.clone()
            } == *et
        });
        if unchanged {
            continue;
        }
        writes.push((wanted, current.is_none()));
        to_modify.push(EventTypeFromOpenApi {
            name: w.name.clone(),
            description: w.description.clone(),
            schemas: w.schemas.clone(),
            deprecated: w.deprecated,
            group_name: w.group_name.clone(),
            feature_flags: w.feature_flag.clone().map(|f| vec![f]),
        });
    }
    if input.replace_all.unwrap_or(false) {
        for et in &existing {
            if !et.archived && !webhooks.iter().any(|w| w.name == et.name) {
                writes.push((
                    EventType {
                        archived: true,
                        updated_at: now,
                        ..et.clone()
                    },
                    false,
                ));
            }
        }
    }

    let modified = writes.iter().map(|(et, _)| et.name.clone()).collect();
    if input.dry_run.unwrap_or(false) {
        return Ok(Json(ImportOpenApiOut {
            data: ImportOpenApiOutData {
                modified,
                to_modify: Some(to_modify),
            },
        }));
    }
    for (et, new) in &writes {
        if *new {
            state.store.create_event_type(et).await?;
        } else {
            state.store.update_event_type(et).await?;
        }
    }
    Ok(Json(ImportOpenApiOut {
        data: ImportOpenApiOutData {
            modified,
            to_modify: None,
        },
    }))
}

/// A 422 at `body.<root>` plus the place in the document.
fn doc_error(root: &str, e: openapi_import::DocError) -> Error {
    let mut path: Vec<&str> = vec![root];
    path.extend(e.path.iter().map(String::as_str));
    Error::field(&path, e.message)
}
