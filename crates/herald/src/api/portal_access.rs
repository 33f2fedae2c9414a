//! `POST /api/v1/auth/app-portal-access/{app_id}` (Svix's route): a link to the
//! portal of one application, carrying a short-lived token scoped to it. The
//! platform links or embeds it from its own settings page.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiResult;
use super::{load_app, AppState};
use crate::auth::Principal;

pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    Path(app_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let app = load_app(&state, &who, &app_id).await?;
    let ttl = chrono::Duration::from_std(state.config.portal_token_ttl)
        .unwrap_or(chrono::Duration::hours(1));
    let token = state.keys.app_token(&app.org_id, &app.id, Some(ttl));
    let url = format!("{}/portal/login?token={token}", state.config.base_url());
    Ok(Json(json!({ "url": url, "token": token })))
}
