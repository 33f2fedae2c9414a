//! Opening the database a configuration names: migrations, and sealing what
//! an older Herald (or a rotated key) left unsealed. Every command that
//! touches the database opens it here.

use std::sync::Arc;

use anyhow::Context;
use herald_store::{Keyring, SqliteOptions, Store};

/// Opens the store a configuration names and runs migrations, nothing more
/// (`herald rekey` re-seals by itself).
pub async fn connect_store(
    database_url: &str,
    synchronous_full: bool,
    keyring: Arc<Keyring>,
) -> anyhow::Result<Arc<dyn Store>> {
    let options = SqliteOptions {
        synchronous_full,
        ..SqliteOptions::default()
    };
    herald_store::connect(database_url, &options, keyring)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                herald_store::redact_url(database_url)
            )
        })
}

/// Opens the store a configuration names, running migrations, and seals
/// whatever secrets are not yet sealed with `keyring`'s current key (after an
/// upgrade from a Herald that kept them in plaintext, or a key rotation).
pub async fn open_store(
    database_url: &str,
    synchronous_full: bool,
    keyring: Arc<Keyring>,
) -> anyhow::Result<Arc<dyn Store>> {
    let redacted = || herald_store::redact_url(database_url);
    let store = connect_store(database_url, synchronous_full, keyring.clone()).await?;
    let sealed = herald_store::sealing::seal_all(store.as_ref(), &keyring)
        .await
        .with_context(|| format!("cannot seal the secrets in {}", redacted()))?;
    if sealed.total() > 0 {
        tracing::info!(
            secrets = sealed.secrets,
            headers = sealed.headers,
            idempotency = sealed.idempotency,
            variables = sealed.variables,
            key = keyring.current_id(),
            "sealed stored secrets under the current encryption key"
        );
    }
    Ok(store)
}
