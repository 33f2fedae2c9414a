//! `herald token create | list | revoke`: API tokens with an identity. Each
//! token made here has a record in the store (its `jti`), so an operator can
//! see what was handed out and revoke one without changing the main secret;
//! every node refuses a revoked token within [`auth::REVOCATION_FRESHNESS`].
//!
//! [`auth::REVOCATION_FRESHNESS`]: crate::auth::REVOCATION_FRESHNESS

use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use herald_core::id::{new_id, IdPrefix};
use herald_store::{ApiToken, Store, StoreError};

use crate::auth::{legacy_id, Keys};

/// Makes a token for `org` (scoped to `app`, an id or uid, if given) that
/// expires after `expires_in` if given; returns its record and the token.
pub async fn create(
    store: &dyn Store,
    keys: &Keys,
    org: &str,
    app: Option<&str>,
    name: &str,
    expires_in: Option<Duration>,
) -> anyhow::Result<(ApiToken, String)> {
    let app_id = match app {
        None => None,
        Some(app) => {
            let found = store
                .get_app(org, app)
                .await?
                .with_context(|| format!("no application {app:?} in organisation {org}"))?;
            Some(found.id)
        }
    };
    let now = Utc::now();
    let expires_at = expires_in
        .map(|d| chrono::Duration::from_std(d).map(|d| now + d))
        .transpose()
        .context("the expiry is too far away")?;
    let record = ApiToken {
        id: new_id(IdPrefix::Token),
        org_id: org.to_string(),
        app_id,
        name: name.to_string(),
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    store.create_api_token(&record).await?;
    let token = keys.api_token(&record);
    Ok((record, token))
}

/// Revokes a token given by its id (`tok_...`) or as the token itself. A
/// token without a record (one made before tokens had ids, or by a process
/// for its own use) gets a revoked record, so it is refused all the same.
pub async fn revoke(store: &dyn Store, keys: &Keys, given: &str) -> anyhow::Result<ApiToken> {
    let given = given.trim();
    let now = Utc::now();
    if given.starts_with(IdPrefix::Token.as_str()) && !given.contains('.') {
        return store
            .revoke_api_token(given, now)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => anyhow::anyhow!("no token with the id {given}"),
                other => other.into(),
            });
    }
    let verified = keys.verify(given).map_err(|why| {
        anyhow::anyhow!("not a token id (tok_...) nor a token of this server: {why}")
    })?;
    match store.revoke_api_token(&verified.id, now).await {
        Err(StoreError::NotFound) => {}
        other => return Ok(other?),
    }
    let record = ApiToken {
        id: verified.id.clone(),
        org_id: verified.principal.org_id,
        app_id: verified.principal.app_id,
        name: if verified.legacy {
            "a token without an id".into()
        } else {
            "a token without a record".into()
        },
        created_at: now,
        expires_at: None,
        revoked_at: Some(now),
    };
    debug_assert!(!verified.legacy || record.id == legacy_id(given));
    store.create_api_token(&record).await?;
    Ok(record)
}

/// The tokens as `herald token list` prints them: one line each, newest
/// first, under a header.
pub fn table(tokens: &[ApiToken]) -> String {
    let now = Utc::now();
    let time = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let mut out = format!(
        "{:<30}  {:<16}  {:<30}  {:<20}  {:<20}  {}\n",
        "ID", "ORG", "APPLICATION", "CREATED", "EXPIRES", "NAME / STATE"
    );
    for t in tokens {
        let state = match (t.revoked_at, t.expires_at) {
            (Some(at), _) => format!("revoked {}", time(at)),
            (None, Some(exp)) if exp <= now => "expired".to_string(),
            _ => "active".to_string(),
        };
        out.push_str(&format!(
            "{:<30}  {:<16}  {:<30}  {:<20}  {:<20}  {} ({state})\n",
            t.id,
            t.org_id,
            t.app_id.as_deref().unwrap_or("(all)"),
            time(t.created_at),
            t.expires_at.map_or("never".to_string(), time),
            if t.name.is_empty() { "-" } else { &t.name },
        ));
    }
    out
}
