//! Svix's authentication routes for the portal:
//!
//! - `POST /api/v1/auth/app-portal-access/{app_id}`: a link to the portal of
//!   one application, which the platform links or embeds from its own settings
//!   page. The link opens the portal once; `expiry` bounds everything it
//!   grants, `readOnly` (or `capabilities` without `ManageEndpoint`) makes the
//!   session look-only, `sessionId` names it.
//! - `POST /api/v1/auth/logout`: with a link's token as the bearer, ends the
//!   portal session that link opened (or will open).

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::applications::{implicit_app, ApplicationIn};
use super::extract::{bearer, parse_json, RawBody};
use crate::auth::Principal;
use crate::service::links::{self as link, LinkRequest};
use crate::service::theme::{Theme, ThemeIn};
use crate::service::{load_app, Herald};
use crate::service::{Error, Result};

/// Svix's bounds on `expiry`, in seconds: an hour to a week.
const EXPIRY: std::ops::RangeInclusive<u64> = 3600..=604_800;
/// Svix's `AppPortalCapability` values.
const CAPABILITIES: [&str; 6] = [
    "ViewBase",
    "ViewEndpointSecret",
    "ManageEndpointSecret",
    "ManageTransformations",
    "CreateAttempts",
    "ManageEndpoint",
];

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessIn {
    #[serde(default)]
    expiry: Option<u64>,
    #[serde(default)]
    read_only: Option<bool>,
    #[serde(default)]
    capabilities: Option<Vec<String>>,
    #[serde(default)]
    session_id: Option<String>,
    /// The feature flags whose event types the session sees (Svix's): an
    /// event type with a `featureFlag` not listed here is not shown.
    #[serde(default)]
    feature_flags: Option<Vec<String>>,
    /// Creates the application when it does not exist yet (Svix's shortcut).
    #[serde(default)]
    application: Option<ApplicationIn>,
    /// Herald's own: the portal's look, and no header when framed.
    #[serde(default)]
    theme: Option<ThemeIn>,
    #[serde(default)]
    hide_header: Option<bool>,
}

impl AccessIn {
    /// Whether the session may only look: `readOnly`, or capabilities that
    /// do not include managing endpoints.
    fn read_only(&self) -> Result<bool> {
        if let Some(caps) = &self.capabilities {
            for (i, cap) in caps.iter().enumerate() {
                if !CAPABILITIES.contains(&cap.as_str()) {
                    return Err(Error::field(
                        &["capabilities", &i.to_string()],
                        format!("must be one of {}", CAPABILITIES.join(", ")),
                    ));
                }
            }
        }
        let limited = self
            .capabilities
            .as_ref()
            .is_some_and(|caps| !caps.iter().any(|c| c == "ManageEndpoint"));
        Ok(self.read_only.unwrap_or(false) || limited)
    }

    fn expiry(&self) -> Result<Option<Duration>> {
        match self.expiry {
            None => Ok(None),
            Some(secs) if EXPIRY.contains(&secs) => Ok(Some(Duration::from_secs(secs))),
            Some(_) => Err(Error::field(
                &["expiry"],
                format!(
                    "must be between {} and {} seconds",
                    EXPIRY.start(),
                    EXPIRY.end()
                ),
            )),
        }
    }

    /// The feature flags, each a name as event types' flags are.
    fn feature_flags(&self) -> Result<Vec<String>> {
        let flags = self.feature_flags.clone().unwrap_or_default();
        for (i, flag) in flags.iter().enumerate() {
            herald_core::name::validate_name(flag)
                .map_err(|e| Error::field(&["featureFlags", &i.to_string()], e.to_string()))?;
        }
        Ok(flags)
    }

    fn session_id(&self) -> Result<Option<String>> {
        let Some(id) = &self.session_id else {
            return Ok(None);
        };
        let ok = (1..=64).contains(&id.len())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '_' | '-'));
        if !ok {
            return Err(Error::field(
                &["sessionId"],
                "must be 1 to 64 characters of a-z, A-Z, 0-9, @, _ and -",
            ));
        }
        Ok(Some(id.clone()))
    }
}

#[utoipa::path(
    post, operation_id = "v1.authentication.create",
    path = "/api/v1/auth/app-portal-access/{app_id}",
    tag = "Authentication",
    summary = "Get a link to the portal for an application",
    params(crate::api::doc::AppPath),
    request_body = Option<AccessIn>,
    responses((status = 200, description = "OK", body = Object))
)]
pub async fn create(
    State(state): State<Herald>,
    who: Principal,
    Path(app_id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Json<Value>> {
    // Svix's clients send `{}`; an empty body means the same.
    let input: AccessIn = if body.iter().all(u8::is_ascii_whitespace) {
        AccessIn::default()
    } else {
        parse_json(&body)?
    };
    issue_access(&state, &who, app_id, input).await.map(Json)
}

/// Svix's older `POST /api/v1/auth/dashboard-access/{app_id}` (deprecated in
/// Svix, still sent by older clients): the same link as `app-portal-access`
/// with no options, `{url, token}`.
#[utoipa::path(
    post, operation_id = "v1.authentication.dashboard-access",
    path = "/api/v1/auth/dashboard-access/{app_id}",
    tag = "Authentication",
    summary = "Get a link to the portal for an application (older form)",
    params(crate::api::doc::AppPath),
    responses((status = 200, description = "OK", body = Object))
)]
pub async fn dashboard_access(
    State(state): State<Herald>,
    who: Principal,
    Path(app_id): Path<String>,
) -> Result<Json<Value>> {
    issue_access(&state, &who, app_id, AccessIn::default())
        .await
        .map(Json)
}

/// A portal link for the application `app_id` (created first if `input`
/// carries an `application` and it does not exist): `{url, token}`.
async fn issue_access(
    state: &Herald,
    who: &Principal,
    app_id: String,
    input: AccessIn,
) -> Result<Value> {
    let read_only = input.read_only()?;
    let expiry = input.expiry()?;
    let session_id = input.session_id()?;
    let feature_flags = input.feature_flags()?;
    let theme = Theme::parse(input.theme, input.hide_header.unwrap_or(false))?;
    let app = match (load_app(state, who, &app_id).await, input.application) {
        (Ok(app), _) => app,
        (Err(Error::NotFound(_)), Some(new_app)) if who.app_id.is_none() => {
            let app = implicit_app(&app_id, new_app)?.into_new(&who.org_id)?;
            state.store.create_app(&app).await?;
            app
        }
        (Err(e), _) => return Err(e),
    };
    let request = LinkRequest {
        org_id: app.org_id.clone(),
        app_id: Some(app.id.clone()),
        read_only,
        session_id,
        link_ttl: state.config.portal_token_ttl,
        expiry,
        theme,
        feature_flags,
    };
    let token = link::issue(state.store.as_ref(), &state.keys, &request).await?;
    let url = link::url(&state.config.base_url(), &token);
    Ok(json!({ "url": url, "token": token }))
}

/// Ends the portal session of the link whose token is the bearer. An API
/// token cannot be logged out (revoke it with `herald token revoke`).
#[utoipa::path(
    post, operation_id = "v1.authentication.logout",
    path = "/api/v1/auth/logout",
    tag = "Authentication",
    summary = "End the portal session whose token is sent",
    responses((status = 204, description = "No content"))
)]
pub async fn logout(State(state): State<Herald>, headers: HeaderMap) -> Result<StatusCode> {
    let token = bearer(&headers)?;
    let grant = match state.keys.verify_link(token, true) {
        Ok(grant) => grant,
        Err(_) if state.keys.verify(token).is_ok() => return Err(Error::Forbidden(
            "only a portal token can be logged out; revoke API tokens with `herald token revoke`"
                .into(),
        )),
        Err(why) => return Err(Error::Unauthorized(why.into())),
    };
    state
        .store
        .end_portal_grant(&grant, chrono::Utc::now())
        .await
        .map_err(|e| match e {
            herald_store::StoreError::NotFound => {
                Error::Unauthorized("the portal session has already ended".into())
            }
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExpireAllIn {
    /// Seconds before the links and sessions end (Svix's `expiry`); none or
    /// 0: now.
    #[serde(default)]
    expiry: Option<i64>,
}

/// Svix's `POST /api/v1/auth/app/{app}/expire-all`: every portal link and
/// session of the application ends (now, or after `expiry` seconds), on
/// every node at its next request. API tokens are not touched (`herald
/// token revoke` is for those). Organisation tokens only.
#[utoipa::path(
    post, operation_id = "v1.authentication.expire-all",
    path = "/api/v1/auth/app/{app_id}/expire-all",
    tag = "Authentication",
    summary = "End all of an application's portal sessions",
    params(crate::api::doc::AppPath),
    request_body = Option<ExpireAllIn>,
    responses((status = 204, description = "No content"))
)]
pub async fn expire_all(
    State(state): State<Herald>,
    who: Principal,
    Path(app_id): Path<String>,
    RawBody(body): RawBody,
) -> Result<StatusCode> {
    crate::service::require_org(&who)?;
    let app = load_app(&state, &who, &app_id).await?;
    let input: ExpireAllIn = if body.iter().all(u8::is_ascii_whitespace) {
        ExpireAllIn::default()
    } else {
        parse_json(&body)?
    };
    let seconds = input.expiry.unwrap_or(0);
    if !(0..=7 * 86_400).contains(&seconds) {
        return Err(Error::field(&["expiry"], "must be 0 to 604800 seconds"));
    }
    let at = chrono::Utc::now() + chrono::Duration::seconds(seconds);
    state.store.expire_portal_grants(&app.id, at).await?;
    Ok(StatusCode::NO_CONTENT)
}
