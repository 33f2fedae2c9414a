//! Portal sessions: signed cookies of their own kind (audience
//! `herald-portal`, no `sub`), signed with the main secret, so an API token is
//! never a session and a session is never an API token.
//!
//! A session names the grant of the link that opened it, and every request
//! reads that grant: a session ends the moment its grant is ended (logout, on
//! any node), not only when its cookie expires. It carries a random CSRF
//! secret that every form echoes back, and whether it may change anything.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method};
use herald_store::PortalGrant;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::PortalError;
use crate::service::links::SESSION_SECONDS;
use crate::service::Herald;

pub const COOKIE: &str = "herald_portal";
/// The one change a read-only session may make: ending itself.
pub const LOGOUT_PATH: &str = "/portal/logout";
const AUDIENCE: &str = "herald-portal";
const ISSUER: &str = "herald";

/// Who is looking at the portal: an application's admin, or an operator of the
/// organisation (who may pick any of its applications).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    pub org: String,
    /// The application shown; an operator may have none chosen yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// Opened with an organisation's link: may switch applications.
    #[serde(default)]
    pub operator: bool,
    /// The grant of the link that opened this session.
    pub grant: String,
    /// May look, but the server refuses every change.
    #[serde(default)]
    pub read_only: bool,
    /// Echoed by every form; compared in constant time.
    pub csrf: String,
    /// The look the link asked for (`app-portal-access`'s `theme`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<crate::service::theme::Theme>,
    /// The feature flags the link carried: event types behind other flags
    /// are not shown (an operator's session sees them all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feature_flags: Vec<String>,
    exp: i64,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    aud: String,
    iss: String,
    iat: i64,
    #[serde(flatten)]
    session: Session,
}

impl Session {
    /// The session a link's grant opens at `now`.
    pub fn new(grant: &PortalGrant, now: chrono::DateTime<chrono::Utc>) -> Session {
        let mut bytes = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut bytes);
        Session {
            org: grant.org_id.clone(),
            app: grant.app_id.clone(),
            operator: grant.app_id.is_none(),
            grant: grant.id.clone(),
            read_only: grant.read_only,
            csrf: bytes.iter().map(|b| format!("{b:02x}")).collect(),
            theme: None,
            feature_flags: Vec::new(),
            exp: (now.timestamp() + SESSION_SECONDS).min(grant.expires_at.timestamp()),
        }
    }

    /// The same session looking at another application (an operator's switch);
    /// it keeps its grant, expiry and CSRF secret.
    pub fn with_app(&self, app: String) -> Session {
        Session {
            app: Some(app),
            ..self.clone()
        }
    }

    /// The same session with what its link asked it to show.
    pub fn with_view(self, view: crate::auth::LinkView) -> Session {
        Session {
            theme: view.theme,
            feature_flags: view.feature_flags,
            ..self
        }
    }

    /// Whether an event type behind `flag` (if any) is shown to this
    /// session.
    pub fn sees_flag(&self, flag: Option<&str>) -> bool {
        self.operator || flag.is_none_or(|f| self.feature_flags.iter().any(|mine| mine == f))
    }

    /// Seconds until the session ends.
    fn max_age(&self) -> i64 {
        (self.exp - chrono::Utc::now().timestamp()).max(0)
    }

    pub fn encode(&self, secret: &[u8]) -> String {
        let claims = Claims {
            aud: AUDIENCE.into(),
            iss: ISSUER.into(),
            iat: chrono::Utc::now().timestamp(),
            session: self.clone(),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .expect("HS256 signing of plain claims cannot fail")
    }

    pub fn decode(value: &str, secret: &[u8]) -> Option<Session> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        validation.leeway = 0;
        jsonwebtoken::decode::<Claims>(value, &DecodingKey::from_secret(secret), &validation)
            .ok()
            .map(|d| d.claims.session)
    }

    /// The `Set-Cookie` value that stores this session. An embeddable portal
    /// (framed by the platform's pages, another site) needs `SameSite=None`,
    /// which browsers take only with `Secure`.
    pub fn cookie(&self, secret: &[u8], secure: bool, embeddable: bool) -> HeaderValue {
        let attributes = match (embeddable, secure) {
            (true, _) => "; SameSite=None; Secure",
            (false, true) => "; SameSite=Lax; Secure",
            (false, false) => "; SameSite=Lax",
        };
        let value = format!(
            "{COOKIE}={}; HttpOnly; Path=/portal; Max-Age={}{attributes}",
            self.encode(secret),
            self.max_age(),
        );
        HeaderValue::from_str(&value).expect("a JWT is a valid header value")
    }

    /// The `Set-Cookie` value that removes the session cookie.
    pub fn clear_cookie() -> HeaderValue {
        HeaderValue::from_static("herald_portal=; HttpOnly; Path=/portal; Max-Age=0")
    }

    /// Whether a form's `csrf` field is this session's, in constant time.
    pub fn csrf_ok(&self, given: Option<&str>) -> bool {
        let Some(given) = given else { return false };
        let (a, b) = (self.csrf.as_bytes(), given.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// Refuses a read-only session: for the pages that exist only to change
    /// something (the forms to add, edit and delete).
    pub fn writable(&self) -> Result<(), PortalError> {
        if self.read_only {
            return Err(PortalError::ReadOnly);
        }
        Ok(())
    }
}

/// The session of a request, from its cookie, if its grant still holds;
/// without one, the portal's 401. A read-only session's changes are refused
/// here, for every route at once.
impl FromRequestParts<Herald> for Session {
    type Rejection = PortalError;

    async fn from_request_parts(parts: &mut Parts, state: &Herald) -> Result<Self, PortalError> {
        let session = parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == COOKIE)
            .and_then(|(_, v)| Session::decode(v, state.config.secret_bytes()))
            .ok_or(PortalError::NoSession)?;
        let grant = state.store.get_portal_grant(&session.grant).await?;
        let holds =
            grant.is_some_and(|g| g.session_active(chrono::Utc::now()) && g.org_id == session.org);
        if !holds {
            return Err(PortalError::NoSession);
        }
        if session.read_only && parts.method != Method::GET && parts.uri.path() != LOGOUT_PATH {
            return Err(PortalError::ReadOnly);
        }
        Ok(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Keys;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn grant(expires_in: i64) -> PortalGrant {
        let now = chrono::Utc::now();
        PortalGrant {
            id: "pgrant_1".into(),
            org_id: "org_1".into(),
            app_id: Some("app_1".into()),
            read_only: true,
            session_id: None,
            created_at: now,
            link_expires_at: now,
            expires_at: now + chrono::Duration::seconds(expires_in),
            used_at: Some(now),
            ended_at: None,
        }
    }

    #[test]
    fn sessions_and_api_tokens_are_not_interchangeable() {
        let keys = Keys::new(SECRET);
        let session = Session::new(&grant(3600), chrono::Utc::now());
        assert!(session.read_only && !session.operator);
        let encoded = session.encode(SECRET);
        assert_eq!(Session::decode(&encoded, SECRET), Some(session.clone()));
        assert!(
            keys.verify(&encoded).is_err(),
            "a session is not an API token"
        );
        assert!(Session::decode(&keys.org_token("org_1"), SECRET).is_none());
        assert!(Session::decode(&keys.app_token("org_1", "app_1"), SECRET).is_none());
        assert!(Session::decode(&keys.portal_link(&grant(60)), SECRET).is_none());
        assert!(Session::decode(&encoded, b"another secret, not the same one").is_none());

        assert!(session.csrf_ok(Some(&session.csrf.clone())));
        assert!(!session.csrf_ok(Some("nope")));
        assert!(!session.csrf_ok(None));
    }

    #[test]
    fn a_session_ends_with_its_grant_at_the_latest() {
        let now = chrono::Utc::now();
        assert_eq!(
            Session::new(&grant(60), now).exp,
            grant(60).expires_at.timestamp()
        );
        assert_eq!(
            Session::new(&grant(10 * SESSION_SECONDS), now).exp,
            now.timestamp() + SESSION_SECONDS
        );
        let mut session = Session::new(&grant(3600), now);
        session.exp = now.timestamp() - 1;
        assert!(Session::decode(&session.encode(SECRET), SECRET).is_none());
    }
}
