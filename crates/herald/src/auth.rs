//! API tokens: HS256 JWTs in the form Svix's server issues (`sub` is the
//! organisation, or the application for a token scoped to one), signed with the
//! main secret.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The organisation every token made without `--org` belongs to.
pub const DEFAULT_ORG: &str = "org_herald";

const ISSUER: &str = "herald";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    iss: String,
    /// The organisation id, or the application id for an app-scoped token.
    sub: String,
    /// The organisation of an app-scoped token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    org: Option<String>,
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

    pub fn org_token(&self, org_id: &str) -> String {
        self.sign(Claims {
            iat: chrono::Utc::now().timestamp(),
            exp: None,
            iss: ISSUER.into(),
            sub: org_id.into(),
            org: None,
        })
    }

    /// An organisation token that expires after `ttl` (a portal link).
    pub fn org_token_expiring(&self, org_id: &str, ttl: chrono::Duration) -> String {
        let now = chrono::Utc::now();
        self.sign(Claims {
            iat: now.timestamp(),
            exp: Some((now + ttl).timestamp()),
            iss: ISSUER.into(),
            sub: org_id.into(),
            org: None,
        })
    }

    /// A token that sees one application only; `ttl` bounds its life if given.
    pub fn app_token(&self, org_id: &str, app_id: &str, ttl: Option<chrono::Duration>) -> String {
        let now = chrono::Utc::now();
        self.sign(Claims {
            iat: now.timestamp(),
            exp: ttl.map(|t| (now + t).timestamp()),
            iss: ISSUER.into(),
            sub: app_id.into(),
            org: Some(org_id.into()),
        })
    }

    fn sign(&self, claims: Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// Checks a bearer token; the error says what is wrong without echoing it.
    pub fn verify(&self, token: &str) -> Result<Principal, &'static str> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims.clear();
        self.decode(token, &validation)
    }

    /// Checks a token that must expire, as a portal link's must: a long-lived
    /// API token pasted into a link does not open the portal.
    pub fn verify_expiring(&self, token: &str) -> Result<Principal, &'static str> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp"]);
        self.decode(token, &validation)
    }

    fn decode(&self, token: &str, validation: &Validation) -> Result<Principal, &'static str> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "the token has expired",
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    "the token's signature is not valid for this server"
                }
                jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(_) => {
                    "the token does not expire, so it cannot be used here"
                }
                _ => "the token is not a valid Herald API token",
            },
        )?;
        let claims = data.claims;
        match claims.org {
            Some(org_id) => Ok(Principal {
                org_id,
                app_id: Some(claims.sub),
            }),
            None => Ok(Principal {
                org_id: claims.sub,
                app_id: None,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let keys = Keys::new(b"0123456789abcdef0123456789abcdef");
        let org = keys.verify(&keys.org_token("org_1")).unwrap();
        assert_eq!(
            org,
            Principal {
                org_id: "org_1".into(),
                app_id: None
            }
        );
        let app = keys
            .verify(&keys.app_token("org_1", "app_1", None))
            .unwrap();
        assert_eq!(app.app_id.as_deref(), Some("app_1"));
        assert!(app.can_see_app("app_1"));
        assert!(!app.can_see_app("app_2"));

        let other = Keys::new(b"another secret, not the same one");
        assert!(other.verify(&keys.org_token("org_1")).is_err());
        assert!(keys.verify("not.a.jwt").is_err());

        let expired = keys.app_token("org_1", "app_1", Some(chrono::Duration::seconds(-120)));
        assert_eq!(keys.verify(&expired), Err("the token has expired"));

        // Links must expire: a token without `exp` opens no portal.
        let link = keys.app_token("org_1", "app_1", Some(chrono::Duration::seconds(60)));
        assert!(keys.verify_expiring(&link).is_ok());
        assert!(keys.verify_expiring(&keys.org_token("org_1")).is_err());
        assert!(keys
            .verify_expiring(&keys.app_token("org_1", "app_1", None))
            .is_err());
    }
}
