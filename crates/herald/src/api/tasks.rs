//! `/api/v1/background-task`: the work the API answered at once and finishes
//! behind (`service::tasks`), as Svix lists it. Organisation tokens only: a
//! task may concern any of the organisation's applications. `TaskStarted` is
//! the answer of the routes that start one (Svix's `RecoverOut`,
//! `ReplayOut`, `ExpungeAllContentsOut`).

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use herald_store::BackgroundTask;
use serde::Serialize;
use serde_json::Value;

use super::extract::Params;
use super::out::{ms, ListResponse};
use crate::auth::Principal;
use crate::service::{require_org, Error, Herald, Result};

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackgroundTaskOut {
    id: String,
    status: String,
    task: String,
    data: Value,
    updated_at: DateTime<Utc>,
}

/// What a route that starts a task answers (202).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskStarted {
    id: String,
    status: String,
    task: String,
    updated_at: DateTime<Utc>,
}

impl From<BackgroundTask> for TaskStarted {
    fn from(t: BackgroundTask) -> Self {
        TaskStarted {
            id: t.id,
            status: t.status,
            task: t.task,
            updated_at: ms(t.updated_at),
        }
    }
}

impl From<BackgroundTask> for BackgroundTaskOut {
    fn from(t: BackgroundTask) -> Self {
        BackgroundTaskOut {
            id: t.id,
            status: t.status,
            task: t.task,
            data: t.data,
            updated_at: ms(t.updated_at),
        }
    }
}

#[utoipa::path(
    get, operation_id = "v1.background-task.list",
    path = "/api/v1/background-task",
    tag = "Background task",
    summary = "List background tasks",
    params(crate::api::doc::PageQuery, ("status" = Option<String>, Query), ("task" = Option<String>, Query)),
    responses((status = 200, description = "OK", body = crate::api::out::ListResponse<BackgroundTaskOut>))
)]
pub async fn list(
    State(state): State<Herald>,
    who: Principal,
    params: Params,
) -> Result<Json<ListResponse<BackgroundTaskOut>>> {
    require_org(&who)?;
    let page = params.page(true)?;
    let tasks = state
        .store
        .list_tasks(&who.org_id, params.str("status"), params.str("task"), &page)
        .await?;
    Ok(Json(ListResponse::from_page(
        tasks,
        |t| t.id.clone(),
        BackgroundTaskOut::from,
    )))
}

#[utoipa::path(
    get, operation_id = "v1.background-task.get",
    path = "/api/v1/background-task/{task_id}",
    tag = "Background task",
    summary = "Get a background task",
    params(("task_id" = String, Path)),
    responses((status = 200, description = "OK", body = BackgroundTaskOut))
)]
pub async fn get(
    State(state): State<Herald>,
    who: Principal,
    Path(task_id): Path<String>,
) -> Result<Json<BackgroundTaskOut>> {
    require_org(&who)?;
    let task = state
        .store
        .get_task(&who.org_id, &task_id)
        .await?
        .ok_or(Error::NotFound("background task"))?;
    Ok(Json(task.into()))
}
