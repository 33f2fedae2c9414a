//! Who may call Herald: API tokens and portal links, both HS256 JWTs signed
//! with the main secret.
//!
//! - An **API token** is in the form Svix's server issues: `sub` is the
//!   organisation, or the application for a token scoped to one (with an `org`
//!   claim). Its `jti` names its record in the store (`herald token create`,
//!   `list`, `revoke`); a revoked token is refused on every node within
//!   [`REVOCATION_FRESHNESS`]. Tokens made before tokens had ids carry no `jti`
//!   ("legacy"): they still work, and are revoked by giving the token itself
//!   to `herald token revoke`.
//! - A **portal link** carries the audience [`LINK_AUDIENCE`] and the id of its
//!   grant: it opens the portal once (`/portal/login`) and is never an API
//!   token. Portal sessions are cookies of a third kind (`portal::session`).
//!
//! No token is accepted a second after its `exp`: there is no leeway.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use herald_core::id::{new_id, IdPrefix};
use herald_store::{ApiToken, PortalGrant, Store, StoreError};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The organisation every token made without `--org` belongs to.
pub const DEFAULT_ORG: &str = "org_herald";
/// The audience of a portal link's token: it opens the portal, nothing else.
pub const LINK_AUDIENCE: &str = "herald-portal-link";
/// How long a node may go on accepting a token after it was revoked: each
/// node re-reads the list of revoked tokens at most this long after it last
/// read it.
pub const REVOCATION_FRESHNESS: Duration = Duration::from_secs(1);

const ISSUER: &str = "herald";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    iss: String,
    /// The organisation id, or the application id for an app-scoped token
    /// (or the application a portal link opens).
    sub: String,
    /// The organisation of an app-scoped token or link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    org: Option<String>,
    /// The token's record (API token) or grant (portal link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    /// A portal link's look (`app-portal-access`'s `theme`), for its session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    theme: Option<crate::service::theme::Theme>,
    /// A portal link's feature flags (`app-portal-access`'s `featureFlags`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ff: Vec<String>,
}

/// What a portal link asks its session to show: the portal's look, and the
/// feature flags whose event types it may see (Svix's `featureFlags`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkView {
    pub theme: Option<crate::service::theme::Theme>,
    pub feature_flags: Vec<String>,
}

/// Who a request speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub org_id: String,
    /// Set for a token scoped to one application: it sees nothing else.
    pub app_id: Option<String>,
}

impl Principal {
    /// Whether this principal may touch the application with this id.
    pub fn can_see_app(&self, app_id: &str) -> bool {
        self.app_id.as_deref().is_none_or(|own| own == app_id)
    }
}

/// An API token whose signature and expiry are good; whether it was revoked
/// is for [`Revocations`] to say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub principal: Principal,
    /// The id revocation looks up: the token's `jti`, or for a legacy token
    /// one derived from the token itself ([`legacy_id`]).
    pub id: String,
    pub legacy: bool,
}

#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Keys {
    pub fn new(secret: &[u8]) -> Keys {
        Keys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// The token of an API token record (`herald token create`).
    pub fn api_token(&self, record: &ApiToken) -> String {
        let (sub, org) = match &record.app_id {
            Some(app) => (app.clone(), Some(record.org_id.clone())),
            None => (record.org_id.clone(), None),
        };
        self.sign(Claims {
            iat: record.created_at.timestamp(),
            exp: record.expires_at.map(|t| t.timestamp()),
            iss: ISSUER.into(),
            sub,
            org,
            jti: Some(record.id.clone()),
            aud: None,
            theme: None,
            ff: Vec::new(),
        })
    }

    /// An organisation token with an id of its own but no record: for the
    /// process's own use (tests, `herald demo`, `herald bench`).
    pub fn org_token(&self, org_id: &str) -> String {
        self.api_token(&unlisted(org_id, None))
    }

    /// An app-scoped token with an id of its own but no record.
    pub fn app_token(&self, org_id: &str, app_id: &str) -> String {
        self.api_token(&unlisted(org_id, Some(app_id)))
    }

    /// The token of a portal link: it names its grant, and opens the portal
    /// until the grant's link expires.
    pub fn portal_link(&self, grant: &PortalGrant) -> String {
        self.portal_link_themed(grant, &LinkView::default())
    }

    /// A portal link that carries what the portal it opens shows.
    pub fn portal_link_themed(&self, grant: &PortalGrant, view: &LinkView) -> String {
        let (sub, org) = match &grant.app_id {
            Some(app) => (app.clone(), Some(grant.org_id.clone())),
            None => (grant.org_id.clone(), None),
        };
        self.sign(Claims {
            iat: grant.created_at.timestamp(),
            exp: Some(grant.link_expires_at.timestamp()),
            iss: ISSUER.into(),
            sub,
            org,
            jti: Some(grant.id.clone()),
            aud: Some(LINK_AUDIENCE.into()),
            theme: view.theme.clone(),
            ff: view.feature_flags.clone(),
        })
    }

    fn sign(&self, claims: Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// Checks an API bearer token; the error says what is wrong without
    /// echoing it. A portal link or session is not an API token.
    pub fn verify(&self, token: &str) -> Result<Verified, &'static str> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims.clear();
        validation.leeway = 0;
        let claims = self.decode(token, &validation).map_err(|e| match e {
            "the token is for another audience" => {
                "this is a portal link, not an API token: open it in a browser"
            }
            BAD_SIGNATURE => {
                "the token's signature is not valid for this server: it may have been made with another \
                 main secret (e.g. by `herald token create` run against another database or secret file \
                 than this server's HERALD_DATABASE_URL and HERALD_SECRET)"
            }
            other => other,
        })?;
        let principal = principal(&claims);
        match claims.jti {
            Some(id) => Ok(Verified {
                principal,
                id,
                legacy: false,
            }),
            // Tokens without an id were made by `herald token create` before
            // tokens had one, and never expired; an expiring one without an
            // id is an old portal link, which is not an API token.
            None if claims.exp.is_some() => {
                Err("this token is an old portal link, not an API token")
            }
            None => Ok(Verified {
                principal,
                id: legacy_id(token),
                legacy: true,
            }),
        }
    }

    /// Checks a portal link's token and returns its grant id. `expired_ok`
    /// accepts one whose link has expired (logout ends the sessions it
    /// opened, which outlive the link).
    pub fn verify_link(&self, token: &str, expired_ok: bool) -> Result<String, &'static str> {
        self.verify_themed_link(token, expired_ok)
            .map(|(grant, _)| grant)
    }

    /// Like [`Keys::verify_link`], with what the link asks its session to show.
    pub fn verify_themed_link(
        &self,
        token: &str,
        expired_ok: bool,
    ) -> Result<(String, LinkView), &'static str> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[LINK_AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        validation.leeway = 0;
        validation.validate_exp = !expired_ok;
        let claims = self.decode(token, &validation)?;
        let grant = claims.jti.ok_or("the link names no grant")?;
        let view = LinkView {
            theme: claims.theme,
            feature_flags: claims.ff,
        };
        Ok((grant, view))
    }

    fn decode(&self, token: &str, validation: &Validation) -> Result<Claims, &'static str> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "the token has expired",
                jsonwebtoken::errors::ErrorKind::InvalidSignature => BAD_SIGNATURE,
                jsonwebtoken::errors::ErrorKind::InvalidAudience => {
                    "the token is for another audience"
                }
                jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(_) => {
                    "the token is not a portal link"
                }
                _ => "the token is not a valid Herald API token",
            })
    }
}

/// What [`Keys::decode`] says of a token signed with another secret.
const BAD_SIGNATURE: &str = "the token's signature is not valid for this server";

fn principal(claims: &Claims) -> Principal {
    match &claims.org {
        Some(org_id) => Principal {
            org_id: org_id.clone(),
            app_id: Some(claims.sub.clone()),
        },
        None => Principal {
            org_id: claims.sub.clone(),
            app_id: None,
        },
    }
}

fn unlisted(org_id: &str, app_id: Option<&str>) -> ApiToken {
    ApiToken {
        id: new_id(IdPrefix::Token),
        org_id: org_id.into(),
        app_id: app_id.map(Into::into),
        name: String::new(),
        created_at: chrono::Utc::now(),
        expires_at: None,
        revoked_at: None,
    }
}

/// The id under which a legacy token (one without `jti`) is revoked: derived
/// from the token, so `herald token revoke TOKEN` and every node agree on it
/// without the token being stored.
pub fn legacy_id(token: &str) -> String {
    let digest = Sha256::digest(token.trim().as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("legacy_{hex}")
}

/// The revoked API tokens, as this node last read them. Every check uses a
/// list at most [`REVOCATION_FRESHNESS`] old; the first check after that reads
/// it again (one at a time: the others wait for that read).
pub struct Revocations {
    store: Arc<dyn Store>,
    list: RwLock<Option<(Instant, Arc<HashSet<String>>)>>,
    reading: tokio::sync::Mutex<()>,
    /// A legacy token was seen: said once in the log.
    legacy_seen: std::sync::atomic::AtomicBool,
}

impl Revocations {
    pub fn new(store: Arc<dyn Store>) -> Revocations {
        Revocations {
            store,
            list: RwLock::new(None),
            reading: tokio::sync::Mutex::new(()),
            legacy_seen: Default::default(),
        }
    }

    /// Whether the token may be used: `Ok(false)` when it was revoked. Fails
    /// (closed) when the list cannot be read.
    pub async fn allows(&self, token: &Verified) -> Result<bool, StoreError> {
        if token.legacy
            && !self
                .legacy_seen
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(
                "an API token without an id (made before Herald 0.2) was used; such tokens \
                 cannot be listed: replace it with one from `herald token create`"
            );
        }
        let list = self.current().await?;
        Ok(!list.contains(&token.id))
    }

    async fn current(&self) -> Result<Arc<HashSet<String>>, StoreError> {
        if let Some(list) = self.fresh() {
            return Ok(list);
        }
        let _reading = self.reading.lock().await;
        // Another check may have read it while this one waited.
        if let Some(list) = self.fresh() {
            return Ok(list);
        }
        let read_at = Instant::now();
        let ids = self.store.revoked_api_tokens(chrono::Utc::now()).await?;
        let list = Arc::new(ids.into_iter().collect::<HashSet<_>>());
        *self.list.write().expect("revocation list lock") = Some((read_at, list.clone()));
        Ok(list)
    }

    fn fresh(&self) -> Option<Arc<HashSet<String>>> {
        let guard = self.list.read().expect("revocation list lock");
        guard
            .as_ref()
            .filter(|(at, _)| at.elapsed() < REVOCATION_FRESHNESS)
            .map(|(_, list)| list.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new(b"0123456789abcdef0123456789abcdef")
    }

    fn legacy(keys: &Keys, exp: Option<i64>) -> String {
        keys.sign(Claims {
            iat: chrono::Utc::now().timestamp(),
            exp,
            iss: ISSUER.into(),
            sub: "org_1".into(),
            org: None,
            jti: None,
            aud: None,
            theme: None,
            ff: Vec::new(),
        })
    }

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let keys = keys();
        let org = keys.verify(&keys.org_token("org_1")).unwrap();
        assert_eq!(
            org.principal,
            Principal {
                org_id: "org_1".into(),
                app_id: None
            }
        );
        assert!(org.id.starts_with("tok_") && !org.legacy);
        let app = keys.verify(&keys.app_token("org_1", "app_1")).unwrap();
        assert_eq!(app.principal.app_id.as_deref(), Some("app_1"));
        assert!(app.principal.can_see_app("app_1"));
        assert!(!app.principal.can_see_app("app_2"));

        let other = Keys::new(b"another secret, not the same one");
        assert!(other.verify(&keys.org_token("org_1")).is_err());
        assert!(keys.verify("not.a.jwt").is_err());
    }

    #[test]
    fn expiry_has_no_leeway() {
        let keys = keys();
        let now = chrono::Utc::now();
        let record = |secs: i64| ApiToken {
            expires_at: Some(now + chrono::Duration::seconds(secs)),
            ..unlisted("org_1", None)
        };
        assert!(keys.verify(&keys.api_token(&record(30))).is_ok());
        // jsonwebtoken's default would accept this for another minute.
        assert_eq!(
            keys.verify(&keys.api_token(&record(-1))),
            Err("the token has expired")
        );
    }

    #[test]
    fn legacy_tokens_work_and_old_portal_links_do_not() {
        let keys = keys();
        let token = legacy(&keys, None);
        let verified = keys.verify(&token).unwrap();
        assert!(verified.legacy);
        assert_eq!(verified.id, legacy_id(&token));
        assert_eq!(legacy_id(&format!(" {token}\n")), verified.id);
        let old_link = legacy(&keys, Some(chrono::Utc::now().timestamp() + 600));
        assert_eq!(
            keys.verify(&old_link),
            Err("this token is an old portal link, not an API token")
        );
    }

    #[test]
    fn a_portal_link_is_not_an_api_token_and_an_api_token_is_not_a_link() {
        let keys = keys();
        let now = chrono::Utc::now();
        let grant = PortalGrant {
            id: "pg_1".into(),
            org_id: "org_1".into(),
            app_id: Some("app_1".into()),
            read_only: false,
            session_id: None,
            created_at: now,
            link_expires_at: now + chrono::Duration::seconds(60),
            expires_at: now + chrono::Duration::hours(8),
            used_at: None,
            ended_at: None,
        };
        let link = keys.portal_link(&grant);
        assert_eq!(keys.verify_link(&link, false).as_deref(), Ok("pg_1"));
        assert_eq!(
            keys.verify(&link),
            Err("this is a portal link, not an API token: open it in a browser")
        );
        assert!(keys.verify_link(&keys.org_token("org_1"), false).is_err());

        let expired = keys.portal_link(&PortalGrant {
            link_expires_at: now - chrono::Duration::seconds(1),
            ..grant
        });
        assert_eq!(
            keys.verify_link(&expired, false),
            Err("the token has expired")
        );
        assert_eq!(keys.verify_link(&expired, true).as_deref(), Ok("pg_1"));
    }
}
