//! `/api/v1/app`: applications (one per Spot, say).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use herald_core::id::{new_id, IdPrefix};
use herald_core::name::validate_name;
use herald_store::{Application, PageOf};
use serde::Deserialize;

use super::endpoints::{patch_rate, rate};
use super::extract::{Body, Params, Patch};
use super::out::{ApplicationOut, ListResponse};
use crate::auth::Principal;
use crate::service::{check_uid, load_app, metadata_value, require_org, Herald};
use crate::service::{Error, FieldError, Result};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationIn {
    /// Not empty, nor only spaces.
    #[schema(pattern = r"\S")]
    pub name: String,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub uid: Option<String>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Most messages per second to the application's endpoints (kept and
    /// answered; not enforced yet).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub throttle_rate: Option<u16>,
    /// Svix's older name of `throttleRate`: the same limit, stored once and
    /// answered under both names. At least 1; given with `throttleRate`, the
    /// two must agree.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub rate_limit: Option<u16>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationPatch {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    name: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    uid: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    metadata: Patch<BTreeMap<String, String>>,
    #[serde(default)]
    #[schema(value_type = Option<u16>)]
    throttle_rate: Patch<u16>,
    /// Svix's older name of `throttleRate` (see `ApplicationIn`).
    #[serde(default)]
    #[schema(value_type = Option<u16>, minimum = 1)]
    rate_limit: Patch<u16>,
}

/// How the rate checks name an application.
const APPLICATION: &str = "Application";

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::field(&["name"], "must not be empty"));
    }
    Ok(())
}

/// The application a request makes when the one its path names does not
/// exist (a message's or a portal link's `application`): Svix's rule, the
/// body's uid is the path's, or a 422 `application_uid_mismatch` at
/// `["body","application","uid"]`. Herald takes a missing uid as the path's
/// (Svix refuses it: the path already says which application is meant).
pub(super) fn implicit_app(path_uid: &str, mut new_app: ApplicationIn) -> Result<ApplicationIn> {
    if new_app.uid.as_deref().is_some_and(|uid| uid != path_uid) {
        return Err(Error::Validation(vec![FieldError {
            kind: "application_uid_mismatch",
            ..FieldError::body(
                &["application", "uid"],
                "Application UID in the path and body must match",
            )
        }]));
    }
    new_app.uid.get_or_insert_with(|| path_uid.to_string());
    Ok(new_app)
}

impl ApplicationIn {
    /// A new application of the organisation, after validating the fields.
    pub fn into_new(self, org_id: &str) -> Result<Application> {
        check_name(&self.name)?;
        check_uid(self.uid.as_deref())?;
        let now = Utc::now();
        Ok(Application {
            id: new_id(IdPrefix::App),
            org_id: org_id.to_string(),
            uid: self.uid,
            name: self.name,
            metadata: metadata_value(self.metadata),
            throttle_rate: rate(APPLICATION, self.throttle_rate, self.rate_limit)?,
            created_at: now,
            updated_at: now,
        })
    }
}

#[utoipa::path(
    get, operation_id = "v1.application.list",
    path = "/api/v1/app",
    tag = "Application",
    summary = "List applications",
    params(crate::api::doc::PageQuery),
    responses((status = 200, description = "OK", body = crate::api::out::ListResponse<crate::api::out::ApplicationOut>))
)]
pub async fn list(
    State(state): State<Herald>,
    who: Principal,
    params: Params,
) -> Result<Json<ListResponse<ApplicationOut>>> {
    let page = params.page(false)?;
    let result = match &who.app_id {
        // An app token lists its own application only.
        Some(own) => {
            let app = state.store.get_app(&who.org_id, own).await?;
            PageOf {
                items: app.into_iter().collect(),
                done: true,
            }
        }
        None => state.store.list_apps(&who.org_id, &page).await?,
    };
    Ok(Json(ListResponse::from_page(
        result,
        |a| a.id.clone(),
        ApplicationOut::from,
    )))
}

#[utoipa::path(
    post, operation_id = "v1.application.create",
    path = "/api/v1/app",
    tag = "Application",
    summary = "Create an application",
    params(("get_if_exists" = Option<bool>, Query, description = "Answer with the application of the same uid, if there is one, instead of a conflict")),
    request_body = ApplicationIn,
    responses((status = 200, description = "OK", body = crate::api::out::ApplicationOut), (status = 201, description = "Created", body = crate::api::out::ApplicationOut))
)]
pub async fn create(
    State(state): State<Herald>,
    who: Principal,
    params: Params,
    Body(input): Body<ApplicationIn>,
) -> Result<(StatusCode, Json<ApplicationOut>)> {
    require_org(&who)?;
    if params.bool("get_if_exists", false)? {
        if let Some(uid) = &input.uid {
            if let Some(existing) = state.store.get_app(&who.org_id, uid).await? {
                return Ok((StatusCode::OK, Json(existing.into())));
            }
        }
    }
    let app = input.into_new(&who.org_id)?;
    state.store.create_app(&app).await.map_err(uid_conflict)?;
    Ok((StatusCode::CREATED, Json(app.into())))
}

#[utoipa::path(
    get, operation_id = "v1.application.get",
    path = "/api/v1/app/{app_id}",
    tag = "Application",
    summary = "Get an application",
    params(crate::api::doc::AppPath),
    responses((status = 200, description = "OK", body = crate::api::out::ApplicationOut))
)]
pub async fn get(
    State(state): State<Herald>,
    who: Principal,
    Path(app_id): Path<String>,
) -> Result<Json<ApplicationOut>> {
    Ok(Json(load_app(&state, &who, &app_id).await?.into()))
}

/// PUT creates the application (with the path as its uid) when it does not exist,
/// as Svix does.
#[utoipa::path(
    put, operation_id = "v1.application.update",
    path = "/api/v1/app/{app_id}",
    tag = "Application",
    summary = "Update (or create) an application",
    params(crate::api::doc::AppPath),
    request_body = ApplicationIn,
    responses((status = 200, description = "OK", body = crate::api::out::ApplicationOut), (status = 201, description = "Created", body = crate::api::out::ApplicationOut))
)]
pub async fn update(
    State(state): State<Herald>,
    who: Principal,
    Path(app_id): Path<String>,
    Body(input): Body<ApplicationIn>,
) -> Result<(StatusCode, Json<ApplicationOut>)> {
    // An application's record (its uid above all: the platform addresses
    // messages by it) belongs to the organisation. A tenant that could rename
    // its uid could claim another tenant's future uid and receive its events.
    require_org(&who)?;
    match load_app(&state, &who, &app_id).await {
        Ok(mut app) => {
            check_name(&input.name)?;
            check_uid(input.uid.as_deref())?;
            app.name = input.name;
            app.uid = input.uid;
            app.metadata = metadata_value(input.metadata);
            app.throttle_rate = rate(APPLICATION, input.throttle_rate, input.rate_limit)?;
            app.updated_at = Utc::now();
            state.store.update_app(&app).await.map_err(uid_conflict)?;
            Ok((StatusCode::OK, Json(app.into())))
        }
        Err(Error::NotFound(_)) => {
            let mut input = input;
            if input.uid.is_none() {
                validate_name(&app_id).map_err(|e| Error::field(&["uid"], e.to_string()))?;
                input.uid = Some(app_id);
            }
            let app = input.into_new(&who.org_id)?;
            state.store.create_app(&app).await.map_err(uid_conflict)?;
            Ok((StatusCode::CREATED, Json(app.into())))
        }
        Err(e) => Err(e),
    }
}

#[utoipa::path(
    patch, operation_id = "v1.application.patch",
    path = "/api/v1/app/{app_id}",
    tag = "Application",
    summary = "Patch an application",
    params(crate::api::doc::AppPath),
    request_body = ApplicationPatch,
    responses((status = 200, description = "OK", body = crate::api::out::ApplicationOut))
)]
pub async fn patch(
    State(state): State<Herald>,
    who: Principal,
    Path(app_id): Path<String>,
    Body(input): Body<ApplicationPatch>,
) -> Result<Json<ApplicationOut>> {
    require_org(&who)?;
    let mut app = load_app(&state, &who, &app_id).await?;
    match input.name {
        Patch::Absent => {}
        Patch::Null => return Err(Error::field(&["name"], "must not be null")),
        Patch::Value(name) => {
            check_name(&name)?;
            app.name = name;
        }
    }
    app.uid = input.uid.apply_opt(app.uid);
    check_uid(app.uid.as_deref())?;
    match input.metadata {
        Patch::Absent => {}
        Patch::Null => app.metadata = metadata_value(None),
        Patch::Value(m) => app.metadata = metadata_value(Some(m)),
    }
    app.throttle_rate = patch_rate(APPLICATION, input.throttle_rate, input.rate_limit)?
        .apply_opt(app.throttle_rate.and_then(|n| u16::try_from(n).ok()))
        .map(i64::from);
    app.updated_at = Utc::now();
    state.store.update_app(&app).await.map_err(uid_conflict)?;
    Ok(Json(app.into()))
}

#[utoipa::path(
    delete, operation_id = "v1.application.delete",
    path = "/api/v1/app/{app_id}",
    tag = "Application",
    summary = "Delete an application",
    params(crate::api::doc::AppPath),
    responses((status = 204, description = "No content"))
)]
pub async fn delete(
    State(state): State<Herald>,
    who: Principal,
    Path(app_id): Path<String>,
) -> Result<StatusCode> {
    require_org(&who)?;
    let app = load_app(&state, &who, &app_id).await?;
    state.store.delete_app(&who.org_id, &app.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn uid_conflict(e: herald_store::StoreError) -> Error {
    match e {
        herald_store::StoreError::Conflict(_) => {
            Error::Conflict("an application with this uid already exists".into())
        }
        other => other.into(),
    }
}
