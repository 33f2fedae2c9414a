//! `GET /catalog[/{org_id}]`: the public catalog of event types, readable without
//! an account — as a page (`text/html`), as JSON (`?format=json`), or as an
//! OpenAPI 3.1 `webhooks` document (`?format=openapi`). Only event types marked
//! `public` (and not archived) appear.

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;

use super::extract::Params;
use crate::auth::DEFAULT_ORG;
use crate::catalog::{all_event_types, openapi, page};
use crate::service::Herald;
use crate::service::{Error, FieldError, Result};

#[utoipa::path(
    get, operation_id = "v1.catalog.default-org",
    path = "/catalog",
    tag = "Catalog",
    summary = "The public event catalog",
    params(("format" = Option<String>, Query, description = "html (the default), json or openapi")),
    responses((status = 200, description = "The catalog: a page, or with ?format=json or openapi a JSON document", content((String = "text/html"), (Object = "application/json"))), (status = 404, description = "No public event type", body = crate::api::doc::ErrorBody))
)]
pub async fn default_org(state: State<Herald>, params: Params) -> Result<Response> {
    render(state, DEFAULT_ORG, params).await
}

#[utoipa::path(
    get, operation_id = "v1.catalog.for-org",
    path = "/catalog/{org_id}",
    tag = "Catalog",
    summary = "An organisation's public event catalog",
    params(("org_id" = String, Path), ("format" = Option<String>, Query, description = "html (the default), json or openapi")),
    responses((status = 200, description = "The catalog: a page, or with ?format=json or openapi a JSON document", content((String = "text/html"), (Object = "application/json"))))
)]
pub async fn for_org(
    state: State<Herald>,
    Path(org_id): Path<String>,
    params: Params,
) -> Result<Response> {
    render(state, &org_id, params).await
}

async fn render(State(state): State<Herald>, org_id: &str, params: Params) -> Result<Response> {
    let mut types = all_event_types(state.store.as_ref(), org_id)
        .await
        .map_err(|e| Error::Internal(format!("{e:#}")))?;
    types.retain(|et| et.public && !et.archived);
    if types.is_empty() {
        return Err(Error::NotFound("public event catalog"));
    }
    let title = &state.config.catalog_title;
    Ok(match params.str("format") {
        None | Some("html") => Html(
            page::render_html(title, &types)
                .map_err(|e| Error::Internal(format!("rendering the catalog: {e}")))?,
        )
        .into_response(),
        Some("json") => Json(page::render_json(title, &types)).into_response(),
        Some("openapi") => Json(openapi::render_openapi(title, &types)).into_response(),
        Some(_) => {
            return Err(Error::Validation(vec![FieldError::query(
                "format",
                "must be html, json or openapi",
            )]))
        }
    })
}
