//! Messages, their deliveries and attempts: what the message log holds and
//! the delivery queue moves on.

use super::Timestamp;

/// What a message's payload reads as once expunged or expired, as Svix
/// answers it; stored as such (a JSON payload), so reads need no case.
pub const EXPUNGED_PAYLOAD: &str = r#"{"expired":true}"#;

/// What an attempt's response reads as once expunged, as Svix answers it.
pub const EXPUNGED_RESPONSE: &str = "EXPUNGED";

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
    /// Svix's free-form tags, which the logs filter by.
    pub tags: Option<Vec<String>>,
    /// The time its deliveries were scheduled for (`deliverAt`), if any.
    pub deliver_at: Option<Timestamp>,
    /// `None`: the payload is JSON. Otherwise it is raw text (Svix's
    /// `transformationsParams.rawPayload`), delivered with this
    /// Content-Type.
    pub content_type: Option<String>,
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
    /// The request's headers as sent, credentials masked (empty when no
    /// request was made), and the response's (empty when none came back);
    /// `(name, value)` in order, a bounded number of each.
    pub request_headers: Vec<(String, String)>,
    pub response_headers: Vec<(String, String)>,
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

/// A delivery claimed by a worker, with everything needed to send it.
#[derive(Clone, Debug)]
pub struct Job {
    pub msg_id: String,
    pub app_id: String,
    pub org_id: String,
    pub event_type: String,
    pub payload: String,
    /// The message's Content-Type when its payload is not JSON.
    pub content_type: Option<String>,
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
            // Tried and failing, to be tried again: Svix's `sending`.
            Next::RetryAt(t) => (MessageStatus::Sending, Some(*t)),
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
