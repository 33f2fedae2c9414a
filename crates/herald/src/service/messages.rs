//! Messages: what every new message gets (its id, its retention), and the
//! event catalog's say on one.

use chrono::{DateTime, Duration, DurationRound, Utc};
use herald_core::id::{new_id, IdPrefix};
use herald_core::schema::{pointer_segments, validate};
use herald_store::{Application, Message, Targets};
use serde_json::value::RawValue;
use serde_json::Value;

use super::{Error, FieldError, Herald, Result};

/// Validation errors reported for one payload.
const MAX_PAYLOAD_ISSUES: usize = 10;

/// How long a new message reuses the application and the organisation's
/// event types the store last read (its cache forgets them on any change
/// made through this process; a change made on another node applies here
/// within this time).
pub const LOOKUP_FRESHNESS: std::time::Duration = std::time::Duration::from_secs(1);

/// Days a payload is kept when the message does not say (Svix's default).
pub const DEFAULT_RETENTION_DAYS: i64 = 90;

/// What a new message is made of, besides its application.
pub struct NewMessage {
    pub event_type: String,
    pub payload: String,
    pub event_id: Option<String>,
    pub channels: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub retention_days: i64,
    /// When its deliveries are scheduled for (see [`schedule`]).
    pub deliver_at: Option<DateTime<Utc>>,
    /// `Some` for a raw payload ([`RawPayload`]): its Content-Type.
    pub content_type: Option<String>,
}

impl NewMessage {
    /// A message of Herald's own (a Test, an operational event): no ids,
    /// channels or tags, kept the default time.
    pub fn own(event_type: String, payload: String) -> NewMessage {
        NewMessage {
            event_type,
            payload,
            event_id: None,
            channels: None,
            tags: None,
            retention_days: DEFAULT_RETENTION_DAYS,
            deliver_at: None,
            content_type: None,
        }
    }
}

/// A new message of `app`.
pub fn new_message(app: &Application, new: NewMessage) -> Message {
    let created_at = Utc::now();
    Message {
        id: new_id(IdPrefix::Message),
        app_id: app.id.clone(),
        event_type: new.event_type,
        event_id: new.event_id,
        channels: new.channels,
        payload: new.payload,
        created_at,
        expires_at: Some(created_at + Duration::days(new.retention_days)),
        tags: new.tags,
        deliver_at: new.deliver_at,
        content_type: new.content_type,
    }
}

/// A message sent as raw text instead of JSON: Svix's
/// `transformationsParams: {rawPayload, headers: {"content-type"}}` (what its
/// SDKs' `messageInRaw` sends, with `payload: {}`). The text is delivered
/// byte for byte, with that Content-Type (`application/json` when none is
/// given, as Svix sends).
#[derive(Debug, PartialEq, Eq)]
pub struct RawPayload {
    pub text: String,
    pub content_type: String,
}

impl RawPayload {
    /// The raw payload `transformationsParams` asks for, if any.
    pub fn from_params(params: Option<&Value>) -> Result<Option<RawPayload>> {
        let Some(params) = params else {
            return Ok(None);
        };
        if !params.is_object() {
            return Err(Error::field(
                &["transformationsParams"],
                "must be an object",
            ));
        }
        let text = match params.get("rawPayload") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(text)) => text.clone(),
            Some(_) => {
                return Err(Error::field(
                    &["transformationsParams", "rawPayload"],
                    "must be a string",
                ))
            }
        };
        let headers = params.get("headers").and_then(Value::as_object);
        let content_type = headers
            .and_then(|h| {
                h.iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
            })
            .map(|(_, value)| {
                value.as_str().map(str::to_string).ok_or_else(|| {
                    Error::field(
                        &["transformationsParams", "headers", "content-type"],
                        "must be a string",
                    )
                })
            })
            .transpose()?
            .unwrap_or_else(|| "application/json".to_string());
        if content_type
            .parse::<reqwest::header::HeaderValue>()
            .is_err()
            || content_type.is_empty()
        {
            return Err(Error::field(
                &["transformationsParams", "headers", "content-type"],
                "is not a header value",
            ));
        }
        Ok(Some(RawPayload { text, content_type }))
    }
}

/// How far in the past a `deliverAt` may be (a client's clock running
/// behind, a request that waited): such a message is delivered now. Further
/// back is more likely a mistake than a wish, and is refused.
pub const DELIVER_AT_PAST_TOLERANCE: Duration = Duration::minutes(5);

/// Where a new message's deliveries go and when they fall due, given its
/// `deliverAt` (Svix's `MessageIn` field). Svix's cloud takes 1 minute to 24
/// hours ahead; Herald takes anything from now to the message's payload
/// retention ahead (so every time Svix takes is taken), a time up to
/// [`DELIVER_AT_PAST_TOLERANCE`] ago as now, and refuses the rest. The time is
/// rounded up to the millisecond the store keeps, so a delivery never goes
/// out before it.
pub fn schedule(
    deliver_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    retention_days: i64,
) -> Result<Targets> {
    let Some(at) = deliver_at else {
        return Ok(Targets::Matching);
    };
    if at < now - DELIVER_AT_PAST_TOLERANCE {
        return Err(Error::field(
            &["deliverAt"],
            format!(
                "is more than {} minutes in the past",
                DELIVER_AT_PAST_TOLERANCE.num_minutes()
            ),
        ));
    }
    if at > now + Duration::days(retention_days) {
        return Err(Error::field(
            &["deliverAt"],
            format!("may be at most the payload retention ({retention_days} days) ahead"),
        ));
    }
    let ms = Duration::milliseconds(1);
    let at = match at.duration_trunc(ms) {
        Ok(t) if t < at => t + ms,
        _ => at,
    };
    if at <= now {
        return Ok(Targets::Matching);
    }
    Ok(Targets::Scheduled { at })
}

/// The catalog's say on a message: an archived type is refused; once an
/// organisation has event types, an unknown one is refused too (a typo caught at
/// the door, not discovered as silence); a type that asks for it has its payload
/// validated against its schema. Nothing is stored when this fails.
pub async fn check_event_type(
    herald: &Herald,
    org_id: &str,
    name: &str,
    payload: Option<&RawValue>,
) -> Result<()> {
    let catalog = herald
        .store
        .cached_event_types(org_id, LOOKUP_FRESHNESS)
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
    // A raw payload (`None`) is not JSON to validate.
    let (Some(schema), Some(payload)) =
        (et.latest_schema().filter(|_| et.validate_payload), payload)
    else {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + Duration::milliseconds(ms)
    }

    #[test]
    fn deliver_at_rule() {
        let now = at(1_800_000_000_000);
        let day = 86_400_000;
        let minute = 60_000;
        // deliverAt as ms after now (or none) -> what becomes of it.
        // Ok(None): sent at once; Ok(Some(ms)): scheduled ms after now;
        // Err(()): refused.
        type Outcome = Result<Option<i64>, ()>;
        let table: [(Option<i64>, Outcome); 9] = [
            (None, Ok(None)),
            (Some(2_000), Ok(Some(2_000))),
            (Some(90 * day), Ok(Some(90 * day))),
            (Some(90 * day + 1), Err(())),
            (Some(0), Ok(None)),
            (Some(-minute), Ok(None)),
            (Some(-5 * minute), Ok(None)),
            (Some(-5 * minute - 1), Err(())),
            (Some(-400 * day), Err(())),
        ];
        for (offset, want) in table {
            let got = schedule(offset.map(|o| now + Duration::milliseconds(o)), now, 90);
            let got = match got {
                Ok(Targets::Matching) => Ok(None),
                Ok(Targets::Scheduled { at }) => Ok(Some((at - now).num_milliseconds())),
                Ok(other) => panic!("{other:?}"),
                Err(Error::Validation(fields)) => {
                    assert_eq!(fields[0].loc, ["body", "deliverAt"]);
                    Err(())
                }
                Err(e) => panic!("{e:?}"),
            };
            assert_eq!(got, want, "{offset:?}");
        }
        // A shorter retention is a shorter horizon.
        assert!(schedule(Some(now + Duration::days(6)), now, 5).is_err());
        // Sub-millisecond times round up, never down.
        let odd = now + Duration::nanoseconds(1_500_001);
        let Ok(Targets::Scheduled { at: got }) = schedule(Some(odd), now, 90) else {
            panic!("not scheduled");
        };
        assert_eq!(got, now + Duration::milliseconds(2));
    }
}
