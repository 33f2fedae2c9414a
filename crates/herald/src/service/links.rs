//! Portal links. Each link is a grant in the store (`PortalGrant`) and a token
//! naming it (`Keys::portal_link`): the link opens the portal once, before it
//! expires, and the session it opens lasts while the grant holds. The API's
//! `app-portal-access`, `herald portal-link` and `herald demo` all issue links
//! here; the portal turns them into sessions (`portal::session`).

use std::time::Duration;

use chrono::Utc;
use herald_core::id::{new_id, IdPrefix};
use herald_store::{PortalGrant, Store, StoreError};

use crate::auth::Keys;

/// How long a portal session lasts once a link was opened (unless the link
/// said less).
pub const SESSION_SECONDS: i64 = 8 * 3600;

/// What a link opens, and for how long.
#[derive(Clone, Debug)]
pub struct LinkRequest {
    pub org_id: String,
    /// One application's portal; `None` for the operator view of them all.
    pub app_id: Option<String>,
    pub read_only: bool,
    /// The platform's name for the session (Svix's `sessionId`).
    pub session_id: Option<String>,
    /// How long the link can be opened (`HERALD_PORTAL_TOKEN_TTL_SECONDS`).
    pub link_ttl: Duration,
    /// Svix's `expiry`: everything the link grants ends this long after it
    /// is issued. Without it, the session lasts 8 hours from the login.
    pub expiry: Option<Duration>,
    /// The portal's look (`app-portal-access`'s `theme`, `hideHeader`),
    /// carried in the link's token and then in the session.
    pub theme: Option<crate::service::theme::Theme>,
    /// Svix's `featureFlags`: the session sees the event types behind these
    /// flags (and those behind none).
    pub feature_flags: Vec<String>,
}

/// Records a grant for `request` and returns the token of its link.
pub async fn issue(
    store: &dyn Store,
    keys: &Keys,
    request: &LinkRequest,
) -> Result<String, StoreError> {
    let now = Utc::now();
    let span = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    let link_ttl = match request.expiry {
        Some(expiry) => request.link_ttl.min(expiry),
        None => request.link_ttl,
    };
    let link_expires_at = now + span(link_ttl);
    let expires_at = match request.expiry {
        Some(expiry) => now + span(expiry),
        None => link_expires_at + chrono::Duration::seconds(SESSION_SECONDS),
    };
    let grant = PortalGrant {
        id: new_id(IdPrefix::PortalGrant),
        org_id: request.org_id.clone(),
        app_id: request.app_id.clone(),
        read_only: request.read_only,
        session_id: request.session_id.clone(),
        created_at: now,
        link_expires_at,
        expires_at,
        used_at: None,
        ended_at: None,
    };
    store.create_portal_grant(&grant).await?;
    let view = crate::auth::LinkView {
        theme: request.theme.clone(),
        feature_flags: request.feature_flags.clone(),
    };
    Ok(keys.portal_link_themed(&grant, &view))
}

/// The URL that opens the portal with `token`, on the server at `base`.
pub fn url(base: &str, token: &str) -> String {
    format!("{base}/portal/login?token={token}")
}
