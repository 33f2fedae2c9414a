//! Messages: what every new message gets (its id, its retention), and the
//! event catalog's say on one.

use chrono::{Duration, Utc};
use herald_core::id::{new_id, IdPrefix};
use herald_core::schema::{pointer_segments, validate};
use herald_store::{Application, Message};
use serde_json::value::RawValue;
use serde_json::Value;

use super::{Error, FieldError, Herald, Result};

/// Validation errors reported for one payload.
const MAX_PAYLOAD_ISSUES: usize = 10;

/// Days a payload is kept when the message does not say (Svix's default).
pub const DEFAULT_RETENTION_DAYS: i64 = 90;

/// A new message of `app`, kept `retention_days`.
pub fn new_message(
    app: &Application,
    event_type: String,
    payload: String,
    event_id: Option<String>,
    channels: Option<Vec<String>>,
    retention_days: i64,
) -> Message {
    let created_at = Utc::now();
    Message {
        id: new_id(IdPrefix::Message),
        app_id: app.id.clone(),
        event_type,
        event_id,
        channels,
        payload,
        created_at,
        expires_at: Some(created_at + Duration::days(retention_days)),
    }
}

/// The catalog's say on a message: an archived type is refused; once an
/// organisation has event types, an unknown one is refused too (a typo caught at
/// the door, not discovered as silence); a type that asks for it has its payload
/// validated against its schema. Nothing is stored when this fails.
pub async fn check_event_type(
    herald: &Herald,
    org_id: &str,
    name: &str,
    payload: &RawValue,
) -> Result<()> {
    let catalog = herald
        .lookups
        .catalog(herald.store.as_ref(), org_id)
        .await?;
    let looked_up;
    let et = match &catalog {
        // An organisation without event types accepts any (as Svix does).
        Some(catalog) if catalog.is_empty() => return Ok(()),
        Some(catalog) => catalog.get(name),
        None => {
            looked_up = herald.store.get_event_type(org_id, name).await?;
            looked_up.as_ref()
        }
    };
    let Some(et) = et else {
        return Err(Error::field(
            &["eventType"],
            format!("unknown event type {name:?}: create it (POST /api/v1/event-type) or import a catalog first"),
        ));
    };
    if et.archived {
        return Err(Error::field(
            &["eventType"],
            format!("event type {name:?} is archived; unarchive it to send it again"),
        ));
    }
    let Some(schema) = et.latest_schema().filter(|_| et.validate_payload) else {
        return Ok(());
    };
    let value: Value = serde_json::from_str(payload.get())
        .map_err(|e| Error::field(&["payload"], e.to_string()))?;
    validate(schema, &value, MAX_PAYLOAD_ISSUES).map_err(|issues| {
        Error::Validation(
            issues
                .into_iter()
                .map(|issue| {
                    let segments = pointer_segments(&issue.pointer);
                    let mut path = vec!["payload"];
                    path.extend(segments.iter().map(String::as_str));
                    FieldError::body(&path, issue.message)
                })
                .collect(),
        )
    })
}
