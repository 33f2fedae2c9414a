//! Applications, event types, endpoints (their health, transformation and
//! routing rule, their signing keys) and background tasks.

use std::collections::BTreeMap;

use herald_core::filter::Rule;
use serde_json::Value;

use super::Timestamp;

#[derive(Clone, Debug, PartialEq)]
pub struct Application {
    pub id: String,
    pub org_id: String,
    pub uid: Option<String>,
    pub name: String,
    pub metadata: Value,
    pub throttle_rate: Option<i64>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventType {
    pub org_id: String,
    pub name: String,
    pub description: String,
    pub archived: bool,
    pub deprecated: bool,
    pub feature_flag: Option<String>,
    pub schemas: Option<Value>,
    /// Listed on the public catalog page.
    pub public: bool,
    /// Messages of this type must match its schema.
    pub validate_payload: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl EventType {
    /// The newest schema version (`schemas` is Svix's `{"1": schema, "2": ...}`).
    pub fn latest_schema(&self) -> Option<&Value> {
        let schemas = self.schemas.as_ref()?.as_object()?;
        schemas
            .iter()
            .filter_map(|(k, v)| k.parse::<u32>().ok().map(|n| (n, v)))
            .max_by_key(|(n, _)| *n)
            .map(|(_, v)| v)
    }

    /// The example at `index` of the newest schema (its `examples` array).
    pub fn example(&self, index: usize) -> Option<&Value> {
        self.latest_schema()?.get("examples")?.get(index)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    pub id: String,
    pub app_id: String,
    pub uid: Option<String>,
    pub url: String,
    pub description: String,
    pub disabled: bool,
    /// `None` (or empty) subscribes to every event type.
    pub event_types: Option<Vec<String>>,
    /// `None` (or empty) receives messages on any channel, or none.
    pub channels: Option<Vec<String>>,
    pub metadata: Value,
    /// Header names as they were given (their case kept), values in clear.
    pub headers: BTreeMap<String, String>,
    /// Most messages per second it receives (Svix's `throttleRate`, also
    /// answered as `rateLimit`, the older name of the same limit).
    pub throttle_rate: Option<i64>,
    /// Svix's endpoint `version` (deprecated there, kept and answered as
    /// given; 1 by default). Nothing in Herald depends on it.
    pub version: i64,
    /// How timestamp fields are sent (`unix`, `unix_ms`, `iso8601`, `rfc2822`).
    pub date_format: String,
    /// JavaScript run on each delivery before it is signed (Svix's
    /// transformation); kept when disabled.
    pub transformation: Transformation,
    /// Content filter: a message is sent only when every rule holds for its
    /// payload (empty: always).
    pub filters: Vec<Rule>,
    /// What its attempts say of it, kept by the store as they are recorded
    /// (an update of the endpoint never writes it).
    pub health: Health,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An endpoint's health: exactly one [`EndpointState`] at any moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Health {
    /// The first failed attempt of the current run of failures; `None`
    /// when the last attempt succeeded (or none was made).
    pub failing_since: Option<Timestamp>,
    /// Failed attempts in a row.
    pub consecutive_failures: i64,
    /// What the last failed attempt said (a status and body prefix, or why
    /// there was no response), while failing.
    pub last_error: Option<String>,
    /// Until when a worker's breaker paused its deliveries after failures
    /// in a row (the latest pause; a success clears it).
    pub paused_until: Option<Timestamp>,
    /// Who disabled it, while disabled.
    pub disabled_by: Option<DisabledBy>,
    pub disabled_at: Option<Timestamp>,
}

/// Who disabled an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisabledBy {
    /// A person, through the API or the portal.
    Manual,
    /// Its receiver answered 410 Gone.
    Gone,
    /// Herald, after it failed every attempt for `HERALD_ENDPOINT_DISABLE_AFTER`.
    Failing,
}

impl DisabledBy {
    pub fn as_str(self) -> &'static str {
        match self {
            DisabledBy::Manual => "manual",
            DisabledBy::Gone => "gone",
            DisabledBy::Failing => "failing",
        }
    }

    pub fn parse(s: &str) -> Option<DisabledBy> {
        match s {
            "manual" => Some(DisabledBy::Manual),
            "gone" => Some(DisabledBy::Gone),
            "failing" => Some(DisabledBy::Failing),
            _ => None,
        }
    }

    /// Whether Herald did it rather than a person.
    pub fn automatic(self) -> bool {
        self != DisabledBy::Manual
    }
}

/// The one state an endpoint is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointState {
    /// Enabled, and its last attempt succeeded (or none was made).
    Active,
    /// Enabled, and every attempt since `failing_since` failed.
    Failing,
    /// Failing, and a worker holds its deliveries back until `paused_until`.
    Paused,
    /// Disabled by a person.
    Disabled,
    /// Disabled by Herald (410 Gone, or failing too long).
    AutoDisabled,
}

impl EndpointState {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointState::Active => "active",
            EndpointState::Failing => "failing",
            EndpointState::Paused => "paused",
            EndpointState::Disabled => "disabled",
            EndpointState::AutoDisabled => "auto_disabled",
        }
    }
}

impl Endpoint {
    /// The endpoint's state now, from its `disabled` flag and its health.
    pub fn state(&self) -> EndpointState {
        self.state_at(chrono::Utc::now())
    }

    /// The endpoint's state at `now`.
    pub fn state_at(&self, now: Timestamp) -> EndpointState {
        match (self.disabled, self.health.disabled_by) {
            (true, Some(by)) if by.automatic() => EndpointState::AutoDisabled,
            (true, _) => EndpointState::Disabled,
            (false, _) if self.health.paused_until.is_some_and(|until| until > now) => {
                EndpointState::Paused
            }
            (false, _) if self.health.failing_since.is_some() => EndpointState::Failing,
            (false, _) => EndpointState::Active,
        }
    }
}

/// An endpoint's transformation, as Svix's API reads and writes it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transformation {
    pub code: Option<String>,
    pub enabled: bool,
    /// Values the code may read (`webhook.variables`); sealed at rest, as they
    /// are often credentials.
    pub variables: BTreeMap<String, String>,
    /// When it was last changed; `None`: never set.
    pub updated_at: Option<Timestamp>,
}

impl Transformation {
    /// The code to run on a delivery, when there is code and it is enabled.
    pub fn active_code(&self) -> Option<&str> {
        self.code.as_deref().filter(|_| self.enabled)
    }
}

impl Endpoint {
    /// Svix's routing rule: an endpoint takes a message when its event-type filter
    /// is empty or names the type, and when it has no channels or shares one with
    /// the message.
    pub fn accepts(&self, event_type: &str, msg_channels: Option<&[String]>) -> bool {
        routes(
            self.event_types.as_deref(),
            self.channels.as_deref(),
            event_type,
            msg_channels,
        )
    }
}

/// Svix's routing rule ([`Endpoint::accepts`]) on an endpoint's filters alone.
pub fn routes(
    event_types: Option<&[String]>,
    channels: Option<&[String]>,
    event_type: &str,
    msg_channels: Option<&[String]>,
) -> bool {
    let type_ok = match event_types {
        Some(types) if !types.is_empty() => types.iter().any(|t| t == event_type),
        _ => true,
    };
    let channel_ok = match channels {
        Some(ours) if !ours.is_empty() => {
            msg_channels.is_some_and(|theirs| theirs.iter().any(|c| ours.contains(c)))
        }
        _ => true,
    };
    type_ok && channel_ok
}

/// Work the API answered at once and finishes behind (Svix's background
/// tasks).
#[derive(Clone, Debug, PartialEq)]
pub struct BackgroundTask {
    /// `qtask_...`
    pub id: String,
    pub org_id: String,
    /// Svix's task type (`endpoint.recover`).
    pub task: String,
    /// `running`, `finished` or `failed`.
    pub status: String,
    /// What it did, or why it failed.
    pub data: Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A signing key of an endpoint. The current key has no expiry; a rotated-out key
/// keeps signing until `expires_at`.
#[derive(Clone, PartialEq)]
pub struct SecretKey {
    pub key: String,
    pub expires_at: Option<Timestamp>,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKey")
            .field("key", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;

    fn endpoint(types: Option<&[&str]>, channels: Option<&[&str]>) -> Endpoint {
        let list = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Endpoint {
            id: "ep_1".into(),
            app_id: "app_1".into(),
            uid: None,
            url: "https://example.com/".into(),
            description: String::new(),
            disabled: false,
            event_types: types.map(list),
            channels: channels.map(list),
            metadata: Value::Null,
            headers: BTreeMap::new(),
            throttle_rate: None,
            version: 1,
            date_format: "unix".into(),
            transformation: Transformation::default(),
            filters: Vec::new(),
            health: Health::default(),
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
        }
    }

    /// Endpoint types, endpoint channels, message type, message channels, accepted.
    type Case<'a> = (
        Option<&'a [&'a str]>,
        Option<&'a [&'a str]>,
        &'a str,
        Option<&'a [String]>,
        bool,
    );

    #[test]
    fn examples_come_from_the_latest_schema_version() {
        let et = |schemas: Option<Value>| EventType {
            org_id: "org".into(),
            name: "a".into(),
            description: String::new(),
            archived: false,
            deprecated: false,
            feature_flag: None,
            schemas,
            public: false,
            validate_payload: false,
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
        };
        let two = et(Some(serde_json::json!({
            "1": {"examples": [{"v": 1}]},
            "2": {"examples": [{"v": 2}, {"v": 3}]},
            "10": {"examples": [{"v": 10}]},
        })));
        assert_eq!(two.example(0), Some(&serde_json::json!({"v": 10})));
        let one = et(Some(
            serde_json::json!({"1": {"examples": [{"v": 1}, {"v": 3}]}}),
        ));
        assert_eq!(one.example(1), Some(&serde_json::json!({"v": 3})));
        assert_eq!(one.example(2), None);
        assert_eq!(et(None).example(0), None);
        assert_eq!(et(Some(serde_json::json!({"1": {}}))).example(0), None);
    }

    #[test]
    fn routing_follows_svix() {
        let x = ["x".to_string()];
        let y = ["y".to_string()];
        let cases: &[Case] = &[
            (None, None, "a", None, true),
            (Some(&[]), None, "a", Some(&x), true),
            (Some(&["a"]), None, "a", None, true),
            (Some(&["b"]), None, "a", None, false),
            (None, Some(&["x"]), "a", Some(&x), true),
            (None, Some(&["x"]), "a", Some(&y), false),
            (None, Some(&["x"]), "a", None, false),
            (None, Some(&[]), "a", None, true),
            (Some(&["a"]), Some(&["y"]), "a", Some(&y), true),
            (Some(&["b"]), Some(&["y"]), "a", Some(&y), false),
        ];
        for (i, (types, channels, msg_type, msg_channels, want)) in cases.iter().enumerate() {
            let ep = endpoint(*types, *channels);
            assert_eq!(ep.accepts(msg_type, *msg_channels), *want, "case {i}");
        }
    }
}
