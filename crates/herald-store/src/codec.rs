//! What both backends share: how records become columns and back (timestamps
//! as UNIX milliseconds, JSON as text, secrets sealed), and how sqlx errors
//! become [`StoreError`]s.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use herald_core::seal::Keyring;
use serde_json::Value;

use crate::model::{SealedColumn, Timestamp};
use crate::{Conflict, Result, StoreError};

/// How long a request holding an idempotency key may run before the key is
/// taken as abandoned.
pub(crate) const IDEMPOTENCY_ABANDONED_MS: i64 = 30_000;

pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        if d.is_unique_violation() {
            return StoreError::Conflict(Conflict::Duplicate);
        }
        // A write that refers to a row deleted meanwhile (an attempt whose
        // message went with its application, a message for an application
        // deleted on another node): the thing is gone, the database is fine.
        if d.is_foreign_key_violation() {
            return StoreError::NotFound;
        }
    }
    StoreError::Unavailable(e.to_string())
}

/// An update or delete that touched no row names something that does not exist.
pub(crate) fn found(rows_affected: u64) -> Result<()> {
    if rows_affected == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) fn ms(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(n: i64) -> Timestamp {
    Utc.timestamp_millis_opt(n)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

pub(crate) fn opt_ms(n: Option<i64>) -> Option<Timestamp> {
    n.map(from_ms)
}

pub(crate) fn json_text(v: &Value) -> String {
    v.to_string()
}

pub(crate) fn parse_json(s: &str) -> Result<Value> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn list_text(v: &Option<Vec<String>>) -> Option<String> {
    v.as_ref()
        .map(|l| serde_json::to_string(l).expect("a list of strings serializes"))
}

pub(crate) fn parse_list(s: Option<String>) -> Result<Option<Vec<String>>> {
    s.map(|s| serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

/// A stored secret that does not open: the database holds a value sealed with
/// a key this process was not given, or one that was altered.
pub(crate) fn seal_err(e: herald_core::seal::SealError) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// An endpoint signing key as stored: sealed, bound to its endpoint.
pub(crate) fn seal_secret(keyring: &Keyring, endpoint_id: &str, key: &str) -> String {
    keyring.seal(
        key.as_bytes(),
        &SealedColumn::EndpointSecret.context(endpoint_id),
    )
}

pub(crate) fn open_secret(keyring: &Keyring, endpoint_id: &str, stored: &str) -> Result<String> {
    keyring
        .open_text(stored, &SealedColumn::EndpointSecret.context(endpoint_id))
        .map_err(seal_err)
}

/// Custom headers as stored: the JSON object sealed whole (values such as
/// `authorization` are credentials), or `{}` when there are none.
pub(crate) fn seal_headers(
    keyring: &Keyring,
    endpoint_id: &str,
    headers: &BTreeMap<String, String>,
) -> String {
    seal_map(keyring, SealedColumn::EndpointHeaders, endpoint_id, headers)
}

pub(crate) fn open_headers(
    keyring: &Keyring,
    endpoint_id: &str,
    stored: &str,
) -> Result<BTreeMap<String, String>> {
    open_map(keyring, SealedColumn::EndpointHeaders, endpoint_id, stored)
}

/// A string map as stored in `column`: the JSON object sealed whole, or `{}`
/// when it is empty.
pub(crate) fn seal_map(
    keyring: &Keyring,
    column: SealedColumn,
    owner: &str,
    map: &BTreeMap<String, String>,
) -> String {
    if map.is_empty() {
        return "{}".to_string();
    }
    let json = serde_json::to_string(map).expect("a string map serializes");
    keyring.seal(json.as_bytes(), &column.context(owner))
}

pub(crate) fn open_map(
    keyring: &Keyring,
    column: SealedColumn,
    owner: &str,
    stored: &str,
) -> Result<BTreeMap<String, String>> {
    let json = keyring
        .open_text(stored, &column.context(owner))
        .map_err(seal_err)?;
    serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The owner of an idempotency record, as [`SealedColumn::IdempotencyBody`]
/// names it.
pub(crate) fn idempotency_owner(scope: &str, key: &str) -> String {
    format!("{scope}\n{key}")
}

pub(crate) fn seal_body(keyring: &Keyring, scope: &str, key: &str, body: &[u8]) -> Vec<u8> {
    let context = SealedColumn::IdempotencyBody.context(&idempotency_owner(scope, key));
    keyring.seal(body, &context).into_bytes()
}

pub(crate) fn open_body(
    keyring: &Keyring,
    scope: &str,
    key: &str,
    stored: &[u8],
) -> Result<Vec<u8>> {
    let context = SealedColumn::IdempotencyBody.context(&idempotency_owner(scope, key));
    keyring.open(stored, &context).map_err(seal_err)
}

/// The `LIKE` pattern of values sealed with the key `key_id`.
pub(crate) fn sealed_with_pattern(key_id: &str) -> String {
    format!("{}{key_id}:%", herald_core::seal::PREFIX)
}

/// What routing a new message needs of an endpoint (never its secrets): the
/// columns `id, app_id, event_types, channels`.
pub(crate) struct Route {
    pub id: String,
    pub app_id: String,
    event_types: Option<Vec<String>>,
    channels: Option<Vec<String>>,
}

impl Route {
    pub fn new(
        id: String,
        app_id: String,
        event_types: Option<String>,
        channels: Option<String>,
    ) -> Result<Route> {
        Ok(Route {
            id,
            app_id,
            event_types: parse_list(event_types)?,
            channels: parse_list(channels)?,
        })
    }

    pub fn accepts(&self, event_type: &str, msg_channels: Option<&[String]>) -> bool {
        crate::model::routes(
            self.event_types.as_deref(),
            self.channels.as_deref(),
            event_type,
            msg_channels,
        )
    }
}
