//! Secrets at rest. Both backends seal endpoint signing keys, custom header
//! values and remembered idempotent responses as they write them, with the
//! store's [`Keyring`] (`herald_core::seal`), and open them as they read them.
//!
//! This module re-seals what is stored under another key, or in plaintext (a
//! database written before Herald sealed secrets): [`seal_all`] runs when a
//! process opens the store, and does the work only when the database says it
//! was last sealed with another key; [`reseal`] does it unconditionally
//! (`herald rekey`). Re-sealing is one short statement per value, each
//! replacing the value only if it is still what was read, so nodes doing it
//! at once, or writers beside it, lose nothing.

use herald_core::seal::{Keyring, SealError};

use crate::{Result, SealedColumn, Store, StoreError};

/// The `herald_meta` entry naming the key everything was last sealed with.
const SEALED_WITH: &str = "sealed_with";
/// Values read per round.
const BATCH: u32 = 500;

/// How many values each column had re-sealed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResealReport {
    pub secrets: u64,
    pub headers: u64,
    pub idempotency: u64,
    pub variables: u64,
}

impl ResealReport {
    pub fn total(&self) -> u64 {
        self.secrets + self.headers + self.idempotency + self.variables
    }
}

/// Re-seals everything under the keyring's current key, unless the database
/// records that this was done with that key already. Fails if a value is
/// sealed with a key the keyring does not have: Herald could not sign for
/// that endpoint, so it must not start.
pub async fn seal_all(store: &dyn Store, keyring: &Keyring) -> Result<ResealReport> {
    if store.meta(SEALED_WITH).await?.as_deref() == Some(keyring.current_id()) {
        return Ok(ResealReport::default());
    }
    reseal(store, keyring).await
}

/// Re-seals every stored secret that is not sealed with the current key, then
/// records the key.
pub async fn reseal(store: &dyn Store, keyring: &Keyring) -> Result<ResealReport> {
    let mut report = ResealReport::default();
    for column in SealedColumn::ALL {
        let count = reseal_column(store, keyring, column).await?;
        match column {
            SealedColumn::EndpointSecret => report.secrets = count,
            SealedColumn::EndpointHeaders => report.headers = count,
            SealedColumn::IdempotencyBody => report.idempotency = count,
            SealedColumn::TransformationVariables => report.variables = count,
        }
    }
    store.set_meta(SEALED_WITH, keyring.current_id()).await?;
    Ok(report)
}

async fn reseal_column(store: &dyn Store, keyring: &Keyring, column: SealedColumn) -> Result<u64> {
    let mut done = 0;
    loop {
        let values = store
            .read_sealed(column, keyring.current_id(), BATCH)
            .await?;
        if values.is_empty() {
            return Ok(done);
        }
        let mut replaced_any = false;
        for value in values {
            let context = column.context(&value.owner);
            let plain = keyring.open(&value.value, &context).map_err(|e| match e {
                SealError::UnknownKey(_) => StoreError::Corrupt(format!(
                    "a stored secret is {e}: start Herald with that key (as HERALD_ENCRYPTION_KEY, or in HERALD_PREVIOUS_ENCRYPTION_KEYS)"
                )),
                other => StoreError::Corrupt(format!("{} of {}: {other}", column.context(""), value.owner)),
            })?;
            let sealed = keyring.seal(&plain, &context);
            if store
                .replace_sealed(column, &value.owner, &value.value, sealed.as_bytes())
                .await?
            {
                done += 1;
                replaced_any = true;
            }
        }
        // Every value changed under us since it was read: someone else is
        // re-sealing; what is left is theirs.
        if !replaced_any {
            return Ok(done);
        }
    }
}
