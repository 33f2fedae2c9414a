//! Portal sessions: stateless, signed cookies. A session is a JWT of its own
//! kind (audience `herald-portal`, no `sub`), signed with the main secret, so
//! an API token is never a session and a session is never an API token. It
//! carries a random CSRF secret that every form echoes back.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::PortalError;
use crate::api::AppState;

pub const COOKIE: &str = "herald_portal";
/// How long a session lasts once a link was opened.
pub const LIFETIME_SECONDS: i64 = 8 * 3600;
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
    /// Opened with an organisation token: may switch applications.
    #[serde(default)]
    pub operator: bool,
    /// Echoed by every form; compared in constant time.
    pub csrf: String,
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
    pub fn new(org: String, app: Option<String>, operator: bool) -> Session {
        let mut bytes = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut bytes);
        Session {
            org,
            app,
            operator,
            csrf: bytes.iter().map(|b| format!("{b:02x}")).collect(),
            exp: chrono::Utc::now().timestamp() + LIFETIME_SECONDS,
        }
    }

    /// The same session looking at another application (an operator's switch);
    /// it keeps its expiry and CSRF secret.
    pub fn with_app(&self, app: String) -> Session {
        Session {
            app: Some(app),
            ..self.clone()
        }
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

    /// The `Set-Cookie` value that stores this session.
    pub fn cookie(&self, secret: &[u8], secure: bool) -> HeaderValue {
        let secure = if secure { "; Secure" } else { "" };
        let value = format!(
            "{COOKIE}={}; HttpOnly; SameSite=Lax; Path=/portal; Max-Age={LIFETIME_SECONDS}{secure}",
            self.encode(secret)
        );
        HeaderValue::from_str(&value).expect("a JWT is a valid header value")
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
}

/// The session of a request, from its cookie; without one, the portal's 401.
impl FromRequestParts<AppState> for Session {
    type Rejection = PortalError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PortalError> {
        let cookie = parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == COOKIE)
            .map(|(_, v)| v.to_string());
        cookie
            .and_then(|c| Session::decode(&c, state.config.secret_bytes()))
            .ok_or(PortalError::NoSession)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Keys;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn sessions_and_api_tokens_are_not_interchangeable() {
        let keys = Keys::new(SECRET);
        let session = Session::new("org_1".into(), Some("app_1".into()), false);
        let encoded = session.encode(SECRET);
        assert_eq!(Session::decode(&encoded, SECRET), Some(session.clone()));
        assert!(
            keys.verify(&encoded).is_err(),
            "a session is not an API token"
        );
        assert!(Session::decode(&keys.org_token("org_1"), SECRET).is_none());
        assert!(Session::decode(&keys.app_token("org_1", "app_1", None), SECRET).is_none());
        assert!(Session::decode(&encoded, b"another secret, not the same one").is_none());

        assert!(session.csrf_ok(Some(&session.csrf.clone())));
        assert!(!session.csrf_ok(Some("nope")));
        assert!(!session.csrf_ok(None));
    }

    #[test]
    fn an_expired_session_is_refused() {
        let mut session = Session::new("org_1".into(), None, true);
        session.exp = chrono::Utc::now().timestamp() - 5;
        assert!(Session::decode(&session.encode(SECRET), SECRET).is_none());
    }
}
