//! The records the store keeps. They are plain data: the API layer turns them into
//! Svix's JSON shapes, the dispatcher turns them into HTTP requests.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use herald_core::filter::Rule;
use serde_json::Value;

pub type Timestamp = DateTime<Utc>;

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
    pub headers: BTreeMap<String, String>,
    pub throttle_rate: Option<i64>,
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

#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub id: String,
    pub app_id: String,
    pub event_type: String,
    pub event_id: Option<String>,
    pub channels: Option<Vec<String>>,
    /// The payload exactly as it will be sent (a JSON object, serialized).
    pub payload: String,
    pub created_at: Timestamp,
    /// When the payload may be expunged (replaced by `{}`), once no delivery
    /// of the message is pending. `None` once it has been, or for a message
    /// stored before retention existed and not yet given a date.
    pub expires_at: Option<Timestamp>,
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

/// What the whole database holds now, for the metrics: deliveries due and
/// endpoints by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Deliveries whose next attempt is due (leased ones included).
    pub due: i64,
    pub endpoints_active: i64,
    pub endpoints_failing: i64,
    pub endpoints_paused: i64,
    pub endpoints_disabled: i64,
    pub endpoints_auto_disabled: i64,
}

/// What one [`Store::prune`](crate::Store::prune) call removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Message payloads replaced by `{}`.
    pub payloads: u64,
    /// Attempts deleted.
    pub attempts: u64,
    /// Idempotency records older than [`IDEMPOTENCY_RETENTION`] deleted.
    pub idempotency: u64,
    /// Portal grants deleted after their sessions ended.
    pub grants: u64,
}

impl PruneReport {
    pub fn is_empty(&self) -> bool {
        *self == PruneReport::default()
    }
}

impl std::ops::AddAssign for PruneReport {
    fn add_assign(&mut self, other: PruneReport) {
        self.payloads += other.payloads;
        self.attempts += other.attempts;
        self.idempotency += other.idempotency;
        self.grants += other.grants;
    }
}

/// How long an idempotency key's response is kept (Svix and Stripe keep them
/// about a day). It is shorter than the shortest payload retention (5 days),
/// so a payload is never expunged while a copy of it waits in a remembered
/// response.
pub const IDEMPOTENCY_RETENTION: chrono::Duration = chrono::Duration::hours(24);

/// An API token's identity, so that it can be listed and revoked. The token
/// itself (a JWT signed with the main secret) is never stored.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiToken {
    /// The token's `jti`.
    pub id: String,
    pub org_id: String,
    /// Set for a token scoped to one application.
    pub app_id: Option<String>,
    /// What the operator called it.
    pub name: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A portal link and the sessions opened with it. The link's token carries
/// the grant's id; it opens the portal once, before `link_expires_at`, and the
/// session it opens carries the id too, so ending the grant ends the session.
#[derive(Clone, Debug, PartialEq)]
pub struct PortalGrant {
    pub id: String,
    pub org_id: String,
    /// The application shown; `None` for an operator's link to every one.
    pub app_id: Option<String>,
    /// The session may look but not change anything.
    pub read_only: bool,
    /// The platform's own name for the session (Svix's `sessionId`).
    pub session_id: Option<String>,
    pub created_at: Timestamp,
    pub link_expires_at: Timestamp,
    /// Sessions opened with the link end then at the latest.
    pub expires_at: Timestamp,
    /// When the link was opened; it opens nothing after that.
    pub used_at: Option<Timestamp>,
    /// When its sessions were ended (logout).
    pub ended_at: Option<Timestamp>,
}

impl PortalGrant {
    /// Whether a session opened with this grant may still be used at `now`.
    pub fn session_active(&self, now: Timestamp) -> bool {
        self.used_at.is_some() && self.ended_at.is_none() && now < self.expires_at
    }
}

/// The stored secrets, for re-sealing them under the current key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealedColumn {
    /// `endpoint_secret.key`: one value, owner = the endpoint id.
    EndpointSecret,
    /// `endpoint.headers`: a JSON object whose values are sealed one by one,
    /// owner = the endpoint id.
    EndpointHeaders,
    /// `idempotency.body`: owner = scope and key, joined by a newline.
    IdempotencyBody,
    /// `endpoint.transformation_variables`: a JSON object sealed whole,
    /// owner = the endpoint id.
    TransformationVariables,
}

impl SealedColumn {
    pub const ALL: [SealedColumn; 4] = [
        SealedColumn::EndpointSecret,
        SealedColumn::EndpointHeaders,
        SealedColumn::IdempotencyBody,
        SealedColumn::TransformationVariables,
    ];

    /// What a value of this column is bound to when sealed: its column and
    /// its owner, so a value copied to another row or column does not open.
    pub fn context(self, owner: &str) -> String {
        let column = match self {
            SealedColumn::EndpointSecret => "endpoint_secret.key",
            SealedColumn::EndpointHeaders => "endpoint.headers",
            SealedColumn::IdempotencyBody => "idempotency.body",
            SealedColumn::TransformationVariables => "endpoint.transformation_variables",
        };
        format!("{column}:{owner}")
    }
}

/// One stored value of a [`SealedColumn`], as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct SealedValue {
    pub owner: String,
    pub value: Vec<u8>,
}

/// Svix's `MessageStatus`: the numbers are part of the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageStatus {
    Success = 0,
    Pending = 1,
    Fail = 2,
    Sending = 3,
}

impl MessageStatus {
    pub fn from_i64(n: i64) -> MessageStatus {
        match n {
            0 => MessageStatus::Success,
            2 => MessageStatus::Fail,
            3 => MessageStatus::Sending,
            _ => MessageStatus::Pending,
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            MessageStatus::Success => "success",
            MessageStatus::Pending => "pending",
            MessageStatus::Fail => "fail",
            MessageStatus::Sending => "sending",
        }
    }
}

/// Svix's `MessageAttemptTriggerType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerType {
    Scheduled = 0,
    Manual = 1,
}

/// The state of one message's delivery to one endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub msg_id: String,
    pub endpoint_id: String,
    pub app_id: String,
    pub status: MessageStatus,
    pub attempts: i64,
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    pub id: String,
    pub msg_id: String,
    pub endpoint_id: String,
    pub app_id: String,
    pub url: String,
    pub status: MessageStatus,
    /// 0 when no response came back (refused, timed out, connection failed).
    pub response_status_code: i64,
    /// A bounded prefix of the response body, or why there was none.
    pub response: String,
    pub response_duration_ms: i64,
    pub trigger_type: TriggerType,
    /// Set when nothing was sent, by the endpoint's own choice.
    pub skipped: Option<Skip>,
    pub created_at: Timestamp,
}

/// Why an attempt sent nothing although nothing failed. Such an attempt
/// finishes its delivery as a success would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// The endpoint's content filter did not take the message.
    Filtered,
    /// The endpoint's transformation set `webhook.cancel`.
    Cancelled,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Filtered => "filtered",
            Skip::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Skip> {
        match s {
            "filtered" => Some(Skip::Filtered),
            "cancelled" => Some(Skip::Cancelled),
            _ => None,
        }
    }
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

/// A delivery claimed by a worker, with everything needed to send it.
#[derive(Clone, Debug)]
pub struct Job {
    pub msg_id: String,
    pub app_id: String,
    pub org_id: String,
    pub event_type: String,
    pub payload: String,
    /// What the delivery needs of its endpoint (URL, headers, keys, ...)
    /// is not here: it is read once, through [`Queue::destination`](crate::Queue::destination).
    pub endpoint_id: String,
    /// Attempts made before this one.
    pub attempts: i64,
    /// When the delivery fell due (the claim's lease replaces it in the
    /// database): the start of its lag.
    pub due_at: Timestamp,
    /// It waited for a send slot of its endpoint's rate limit, reserved
    /// already: it sends without reserving another.
    pub slotted: bool,
    pub trigger: TriggerType,
}

/// What became of one attempt, and so of the delivery.
#[derive(Clone, Debug)]
pub enum Next {
    /// Delivered: the delivery is done.
    Done,
    /// Try again at this time.
    RetryAt(Timestamp),
    /// No more attempts.
    GiveUp,
}

impl Next {
    /// The delivery's status after it, and when it is next due (none: it is
    /// finished).
    pub fn delivery_state(&self) -> (MessageStatus, Option<Timestamp>) {
        match self {
            Next::Done => (MessageStatus::Success, None),
            Next::RetryAt(t) => (MessageStatus::Pending, Some(*t)),
            Next::GiveUp => (MessageStatus::Fail, None),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    pub success: i64,
    pub pending: i64,
    pub sending: i64,
    pub fail: i64,
}

/// Which endpoints a new message goes to.
#[derive(Clone, Debug)]
pub enum Targets {
    /// Every enabled endpoint of the application whose filters accept it.
    Matching,
    /// As `Matching`, but not due before `at` (a message's `deliverAt`): the
    /// deliveries wait in the database, so a restart in between changes
    /// nothing.
    Scheduled { at: Timestamp },
    /// Exactly this endpoint, whatever its filters.
    Only(String),
    /// Exactly this endpoint, held for the caller until `until`: no worker takes
    /// it before then, so the caller can claim and send it itself (the Test
    /// button). If the caller dies, a worker sends it after `until`.
    Held {
        endpoint_id: String,
        until: Timestamp,
    },
}

impl Targets {
    /// The one endpoint named, if any.
    pub fn endpoint(&self) -> Option<&str> {
        match self {
            Targets::Matching | Targets::Scheduled { .. } => None,
            Targets::Only(id)
            | Targets::Held {
                endpoint_id: id, ..
            } => Some(id),
        }
    }

    /// When the new deliveries fall due.
    pub fn due_at(&self, now: Timestamp) -> Timestamp {
        match self {
            Targets::Held { until, .. } => *until,
            // Never before the message itself exists.
            Targets::Scheduled { at } => (*at).max(now),
            _ => now,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Page {
    pub limit: u32,
    /// Continue after (or before, when descending) this key.
    pub iterator: Option<String>,
    pub descending: bool,
}

#[derive(Clone, Debug)]
pub struct PageOf<T> {
    pub items: Vec<T>,
    pub done: bool,
}

/// Filters shared by the message and attempt lists.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub channel: Option<String>,
    pub event_types: Vec<String>,
    pub before: Option<Timestamp>,
    pub after: Option<Timestamp>,
    pub status: Option<MessageStatus>,
    /// 0, 100, 200, ...: keep attempts whose status code is in [class, class+99].
    pub status_code_class: Option<i64>,
    pub endpoint_id: Option<String>,
}

/// A remembered response for an idempotency key.
#[derive(Clone, Debug, PartialEq)]
pub enum IdempotencyState {
    /// First time this key is seen: the caller runs the request.
    New,
    /// Another request with this key is still running.
    InProgress,
    /// The response the first request got.
    Done { status: u16, body: Vec<u8> },
}

#[cfg(test)]
mod tests {
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
