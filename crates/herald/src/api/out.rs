//! Svix's response shapes, built from store records.

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, Utc};
use herald_store::{
    Application, Attempt, Delivery, DisabledBy, Endpoint, EventType, Message, MessageStatus, PageOf,
};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// `ListResponse_*`: a page, the iterator to continue with, and whether it is the
/// last page.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T> {
    pub data: Vec<T>,
    pub iterator: Option<String>,
    pub prev_iterator: Option<String>,
    pub done: bool,
}

impl<T> ListResponse<T> {
    /// `key` gives the iterator of an item: the last item's continues the list.
    pub fn from_page<R>(
        page: PageOf<R>,
        key: impl Fn(&R) -> String,
        render: impl Fn(R) -> T,
    ) -> Self {
        let iterator = page.items.last().map(&key);
        let prev_iterator = page.items.first().map(|r| format!("-{}", key(r)));
        ListResponse {
            data: page.items.into_iter().map(render).collect(),
            iterator,
            prev_iterator,
            done: page.done,
        }
    }
}

/// Times as the store keeps them, to the millisecond: the answer to a create
/// shows the same `createdAt` as every later read.
pub fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(3)
}

/// Metadata is a string map in Svix's clients; anything else stored is shown as
/// an empty map rather than breaking them.
fn metadata_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationOut {
    pub id: String,
    pub uid: Option<String>,
    pub name: String,
    pub metadata: BTreeMap<String, String>,
    /// Most messages per second to the application's endpoints (kept, not
    /// enforced yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_rate: Option<i64>,
    /// The same limit under Svix's older name, `null` when there is none.
    pub rate_limit: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Application> for ApplicationOut {
    fn from(a: Application) -> Self {
        ApplicationOut {
            metadata: metadata_map(&a.metadata),
            id: a.id,
            uid: a.uid,
            name: a.name,
            throttle_rate: a.throttle_rate,
            rate_limit: a.throttle_rate,
            created_at: ms(a.created_at),
            updated_at: ms(a.updated_at),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeOut {
    pub name: String,
    pub description: String,
    pub archived: bool,
    pub deprecated: bool,
    pub schemas: Option<Value>,
    pub feature_flag: Option<String>,
    /// Herald's: listed on the public catalog page.
    pub public: bool,
    /// Herald's: messages must match the schema.
    pub validate_payload: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EventTypeOut {
    pub fn new(et: EventType, with_content: bool) -> Self {
        EventTypeOut {
            name: et.name,
            description: et.description,
            archived: et.archived,
            deprecated: et.deprecated,
            schemas: if with_content { et.schemas } else { None },
            feature_flag: et.feature_flag,
            public: et.public,
            validate_payload: et.validate_payload,
            created_at: ms(et.created_at),
            updated_at: ms(et.updated_at),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointOut {
    pub id: String,
    pub uid: Option<String>,
    pub url: String,
    pub description: String,
    pub disabled: bool,
    /// The SDKs' name for the event filter.
    pub event_types: Option<Vec<String>>,
    /// The open-source spec's name for the same filter.
    pub filter_types: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
    pub metadata: BTreeMap<String, String>,
    /// Most messages per second this endpoint receives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_rate: Option<i64>,
    /// The same limit under Svix's older name (Svix's server always sends
    /// it, `null` when there is none).
    pub rate_limit: Option<i64>,
    /// Svix's endpoint version (deprecated there), as it was given; 1 by
    /// default.
    pub version: i64,
    /// Herald's: how timestamp fields are sent to this endpoint.
    pub date_format: String,
    /// Herald's: the content filter (empty: every message is sent).
    #[schema(value_type = Vec<Object>)]
    pub filters: Vec<herald_core::filter::Rule>,
    /// Herald's: `active`, `failing`, `paused` (failing, held back by a
    /// worker's breaker), `disabled` (by a person) or `auto_disabled` (by
    /// Herald), with the facts behind it.
    pub state: &'static str,
    /// Herald's: while failing, the first failed attempt of the run.
    pub failing_since: Option<DateTime<Utc>>,
    /// Herald's: failed attempts in a row.
    pub consecutive_failures: i64,
    /// Herald's: while failing, what the last attempt got.
    pub last_error: Option<String>,
    /// Herald's: while `paused`, until when a worker holds its deliveries
    /// back after failures in a row.
    pub paused_until: Option<DateTime<Utc>>,
    /// Herald's: while disabled, why (`manual`, `gone`: answered 410,
    /// `failing`: failed every attempt for too long) and when.
    pub disabled_reason: Option<&'static str>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Endpoint> for EndpointOut {
    fn from(e: Endpoint) -> Self {
        let state = e.state().as_str();
        EndpointOut {
            metadata: metadata_map(&e.metadata),
            filter_types: e.event_types.clone(),
            event_types: e.event_types,
            id: e.id,
            uid: e.uid,
            url: e.url,
            description: e.description,
            disabled: e.disabled,
            channels: e.channels,
            throttle_rate: e.throttle_rate,
            rate_limit: e.throttle_rate,
            version: e.version,
            date_format: e.date_format,
            state,
            failing_since: e.health.failing_since.map(ms),
            consecutive_failures: e.health.consecutive_failures,
            last_error: e.health.last_error.clone(),
            paused_until: e.health.paused_until.map(ms),
            disabled_reason: e
                .disabled
                .then(|| e.health.disabled_by.unwrap_or(DisabledBy::Manual).as_str()),
            disabled_at: e.health.disabled_at.map(ms),
            filters: e.filters,
            created_at: ms(e.created_at),
            updated_at: ms(e.updated_at),
        }
    }
}

/// The stored payload, sent back byte for byte (or `{}` without content).
fn payload(raw: String, with_content: bool) -> Box<RawValue> {
    let text = if with_content { raw } else { "{}".to_string() };
    RawValue::from_string(text)
        .unwrap_or_else(|_| RawValue::from_string("{}".to_string()).expect("{} is JSON"))
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageOut {
    pub id: String,
    pub event_type: String,
    pub event_id: Option<String>,
    pub channels: Option<Vec<String>>,
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    pub timestamp: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// The time a scheduled message's deliveries were due at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliver_at: Option<DateTime<Utc>>,
    /// A message sent raw: `{rawPayload, headers: {"content-type"}}` as it
    /// was given (its `payload` is then `{}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub transformations_params: Option<Value>,
}

impl MessageOut {
    pub fn new(m: Message, with_content: bool) -> Self {
        let (payload, transformations_params) = match m.content_type {
            None => (payload(m.payload, with_content), None),
            Some(content_type) => (
                payload("{}".to_string(), false),
                Some(serde_json::json!({
                    "rawPayload": if with_content { Some(m.payload) } else { None },
                    "headers": {"content-type": content_type},
                })),
            ),
        };
        MessageOut {
            id: m.id,
            event_type: m.event_type,
            event_id: m.event_id,
            channels: m.channels,
            payload,
            timestamp: ms(m.created_at),
            tags: m.tags,
            deliver_at: m.deliver_at,
            transformations_params,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageAttemptOut {
    pub id: String,
    pub msg_id: String,
    pub endpoint_id: String,
    pub url: String,
    pub response: String,
    pub response_status_code: i64,
    pub response_duration_ms: i64,
    pub status: i64,
    pub status_text: &'static str,
    pub trigger_type: i64,
    /// Herald's: set when nothing was sent by the endpoint's own choice
    /// (`filtered` by its content filter, `cancelled` by its transformation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<&'static str>,
    pub timestamp: DateTime<Utc>,
}

impl From<Attempt> for MessageAttemptOut {
    fn from(a: Attempt) -> Self {
        MessageAttemptOut {
            id: a.id,
            msg_id: a.msg_id,
            endpoint_id: a.endpoint_id,
            url: a.url,
            response: a.response,
            response_status_code: a.response_status_code,
            response_duration_ms: a.response_duration_ms,
            status: a.status as i64,
            status_text: a.status.text(),
            trigger_type: a.trigger_type as i64,
            skipped: a.skipped.map(|s| s.as_str()),
            timestamp: ms(a.created_at),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageEndpointOut {
    #[serde(flatten)]
    pub endpoint: EndpointOut,
    pub status: i64,
    pub status_text: &'static str,
    pub next_attempt: Option<DateTime<Utc>>,
}

impl From<(Endpoint, Delivery)> for MessageEndpointOut {
    fn from((e, d): (Endpoint, Delivery)) -> Self {
        MessageEndpointOut {
            endpoint: e.into(),
            status: d.status as i64,
            status_text: d.status.text(),
            next_attempt: next_attempt(&d),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointMessageOut {
    pub id: String,
    pub event_type: String,
    pub event_id: Option<String>,
    pub channels: Option<Vec<String>>,
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    pub timestamp: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    pub status: i64,
    pub status_text: &'static str,
    pub next_attempt: Option<DateTime<Utc>>,
}

impl EndpointMessageOut {
    pub fn new((m, d): (Message, Delivery), with_content: bool) -> Self {
        let next_attempt = next_attempt(&d);
        EndpointMessageOut {
            id: m.id,
            event_type: m.event_type,
            event_id: m.event_id,
            channels: m.channels,
            // A raw payload is not JSON: `{}`, as on the message itself.
            payload: payload(m.payload, with_content && m.content_type.is_none()),
            timestamp: ms(m.created_at),
            tags: m.tags,
            status: d.status as i64,
            status_text: d.status.text(),
            next_attempt,
        }
    }
}

fn next_attempt(d: &Delivery) -> Option<DateTime<Utc>> {
    match d.status {
        MessageStatus::Pending | MessageStatus::Sending => d.next_attempt_at,
        _ => None,
    }
}
