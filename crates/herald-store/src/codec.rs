//! What both backends share: how records become columns and back (timestamps
//! as UNIX milliseconds, JSON as text), and how sqlx errors become
//! [`StoreError`]s.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use crate::model::Timestamp;
use crate::{Result, StoreError};

/// How long a request holding an idempotency key may run before the key is
/// taken as abandoned.
pub(crate) const IDEMPOTENCY_ABANDONED_MS: i64 = 30_000;

pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        if d.is_unique_violation() {
            return StoreError::Conflict(d.message().to_string());
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
