//! API tokens, portal grants and idempotency keys.

use super::Timestamp;

/// How long an idempotency key's response is kept (Svix and Stripe keep them
/// about a day). It is shorter than the shortest payload retention (5 days),
/// so a payload is never expunged while a copy of it waits in a remembered
/// response.
pub const IDEMPOTENCY_RETENTION: chrono::Duration = chrono::Duration::hours(24);

/// An API token's identity, so that it can be listed and revoked. The token
/// itself (a JWT signed with the main secret) is never stored.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiToken {
    /// The token's `jti`.
    pub id: String,
    pub org_id: String,
    /// Set for a token scoped to one application.
    pub app_id: Option<String>,
    /// What the operator called it.
    pub name: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A portal link and the sessions opened with it. The link's token carries
/// the grant's id; it opens the portal once, before `link_expires_at`, and the
/// session it opens carries the id too, so ending the grant ends the session.
#[derive(Clone, Debug, PartialEq)]
pub struct PortalGrant {
    pub id: String,
    pub org_id: String,
    /// The application shown; `None` for an operator's link to every one.
    pub app_id: Option<String>,
    /// The session may look but not change anything.
    pub read_only: bool,
    /// The platform's own name for the session (Svix's `sessionId`).
    pub session_id: Option<String>,
    pub created_at: Timestamp,
    pub link_expires_at: Timestamp,
    /// Sessions opened with the link end then at the latest.
    pub expires_at: Timestamp,
    /// When the link was opened; it opens nothing after that.
    pub used_at: Option<Timestamp>,
    /// When its sessions were ended (logout).
    pub ended_at: Option<Timestamp>,
}

impl PortalGrant {
    /// Whether a session opened with this grant may still be used at `now`.
    pub fn session_active(&self, now: Timestamp) -> bool {
        self.used_at.is_some() && self.ended_at.is_none() && now < self.expires_at
    }
}

/// A remembered response for an idempotency key.
#[derive(Clone, Debug, PartialEq)]
pub enum IdempotencyState {
    /// First time this key is seen: the caller runs the request.
    New,
    /// Another request with this key is still running.
    InProgress,
    /// The response the first request got.
    Done { status: u16, body: Vec<u8> },
}
