//! Herald's persistence: the [`Store`] trait and its two implementations,
//! SQLite (one process owns the file) and PostgreSQL (shared by many nodes).
//!
//! Architecture invariant: this is the only crate that speaks SQL. Handlers and
//! the dispatcher see records from [`model`] and errors from [`StoreError`], never
//! a row or a connection, so a second backend fits behind the same trait.

mod cache;
mod codec;
pub mod model;
mod postgres;
pub mod sealing;
mod sql;
mod sqlite;
#[cfg(test)]
mod tests;

/// The keyring the store's own tests seal with.
#[cfg(test)]
fn test_keyring() -> Arc<Keyring> {
    Arc::new(Keyring::new(b"store tests' encryption key", &[]))
}

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
pub use herald_core::seal::Keyring;

pub use cache::{Destination, EventTypes};
pub use model::*;
pub use postgres::{PostgresOptions, PostgresStore};
pub use sqlite::{SqliteOptions, SqliteStore};

#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(Conflict),
    /// The database cannot be reached or answered with an error.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

/// Why a write was refused: something it names is taken. Decided by the
/// statement that failed, never read from the database's message, so its
/// text (a human sentence, for an API's `detail`) names no table or column.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("an application with this uid already exists")]
    ApplicationUid,
    #[error("an event type with this name already exists")]
    EventTypeName,
    #[error("an endpoint with this uid already exists")]
    EndpointUid,
    /// The message's `eventId` (as the client sent it) is taken in its
    /// application.
    #[error("a message with eventId {0:?} already exists in this application")]
    MessageEventId(String),
    #[error("a token with this id already exists")]
    TokenId,
    #[error("a portal link with this id already exists")]
    GrantId,
    /// A write that nothing should make conflict (its key is minted fresh).
    #[error("this record already exists")]
    Duplicate,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything Herald keeps: the five parts below, by who uses them. Methods
/// that take an `org_id` or `app_id` scope their lookups to it, so a caller
/// cannot reach another tenant's rows by id. Code that needs one part takes
/// that part (`Arc<dyn Queue>`: the worker); `Arc<dyn Store>` coerces to any.
pub trait Store: Resources + MessageLog + Queue + Credentials + Upkeep {}

impl<T: Resources + MessageLog + Queue + Credentials + Upkeep> Store for T {}

/// The records the API manages: applications, event types, endpoints (their keys and the state Herald sets on them), background tasks.
#[async_trait]
pub trait Resources: Send + Sync + 'static {
    async fn create_app(&self, app: &Application) -> Result<()>;
    /// By id or uid.
    async fn get_app(&self, org_id: &str, id_or_uid: &str) -> Result<Option<Application>>;
    async fn list_apps(&self, org_id: &str, page: &Page) -> Result<PageOf<Application>>;
    /// The organisation's applications whose name or uid contains `query`
    /// (any case), or whose id is `query`.
    async fn search_apps(
        &self,
        org_id: &str,
        query: &str,
        page: &Page,
    ) -> Result<PageOf<Application>>;
    async fn update_app(&self, app: &Application) -> Result<()>;
    async fn delete_app(&self, org_id: &str, id: &str) -> Result<()>;
    async fn create_event_type(&self, et: &EventType) -> Result<()>;
    async fn get_event_type(&self, org_id: &str, name: &str) -> Result<Option<EventType>>;
    async fn list_event_types(
        &self,
        org_id: &str,
        include_archived: bool,
        page: &Page,
    ) -> Result<PageOf<EventType>>;
    async fn update_event_type(&self, et: &EventType) -> Result<()>;
    async fn delete_event_type(&self, org_id: &str, name: &str) -> Result<()>;
    async fn create_endpoint(&self, ep: &Endpoint, secret: &str) -> Result<()>;
    /// By id or uid.
    async fn get_endpoint(&self, app_id: &str, id_or_uid: &str) -> Result<Option<Endpoint>>;
    async fn list_endpoints(&self, app_id: &str, page: &Page) -> Result<PageOf<Endpoint>>;
    async fn update_endpoint(&self, ep: &Endpoint) -> Result<()>;
    async fn delete_endpoint(&self, app_id: &str, id: &str) -> Result<()>;
    /// The keys that sign now: the current one first, then unexpired old ones.
    async fn secrets(&self, endpoint_id: &str, now: Timestamp) -> Result<Vec<SecretKey>>;
    /// Makes `new_key` current; the old current key keeps signing until `old_until`.
    async fn rotate_secret(
        &self,
        endpoint_id: &str,
        new_key: &str,
        old_until: Timestamp,
        now: Timestamp,
    ) -> Result<()>;
    /// Saves a background task (its first state or a later one).
    async fn save_task(&self, task: &BackgroundTask) -> Result<()>;
    async fn get_task(&self, org_id: &str, id: &str) -> Result<Option<BackgroundTask>>;
    /// The organisation's tasks, by id (time order), optionally of one
    /// status and one type.
    async fn list_tasks(
        &self,
        org_id: &str,
        status: Option<&str>,
        task: Option<&str>,
        page: &Page,
    ) -> Result<PageOf<BackgroundTask>>;
    /// The application as [`Resources::get_app`] answers it, reused from the
    /// store's cache while younger than `max_age` (every new message reads
    /// it); forgotten by this store's writes to the organisation's
    /// applications.
    async fn cached_app(
        &self,
        org_id: &str,
        id_or_uid: &str,
        max_age: Duration,
    ) -> Result<Option<Application>>;
    /// The organisation's event types by name, reused as
    /// [`Resources::cached_app`] is; `None` when it has too many to keep
    /// (read the one you need with [`Resources::get_event_type`]).
    async fn cached_event_types(
        &self,
        org_id: &str,
        max_age: Duration,
    ) -> Result<Option<EventTypes>>;
}

/// Messages and what became of them: writing a new message with its deliveries, and the log (attempts, destinations, stats) read back; resends, recovery and expunging.
#[async_trait]
pub trait MessageLog: Send + Sync + 'static {
    /// Writes the message and its deliveries in one transaction; returns the
    /// endpoints it was queued to. A duplicate `event_id` is a `Conflict`.
    async fn create_message(&self, msg: &Message, targets: &Targets) -> Result<Vec<String>>;
    /// By id or event id.
    async fn get_message(&self, app_id: &str, id_or_event_id: &str) -> Result<Option<Message>>;
    async fn list_messages(
        &self,
        app_id: &str,
        filter: &ListFilter,
        page: &Page,
    ) -> Result<PageOf<Message>>;
    /// Expunges a message's payload (to `{}`); `NotFound` if there is none.
    async fn expunge_message(&self, app_id: &str, msg_id: &str) -> Result<()>;
    /// Expunges the payload of every message of the application; returns how
    /// many there were to expunge.
    async fn expunge_all_contents(&self, app_id: &str) -> Result<u64>;
    /// Queues to the endpoint, now, every message of its application created
    /// in the window (`until`: now) that never went to it and that it takes,
    /// as manual attempts (Svix's `replay-missing`); returns how many.
    /// `NotFound` if there is no such endpoint in the application.
    async fn replay_missing(
        &self,
        app_id: &str,
        endpoint_id: &str,
        since: Timestamp,
        until: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<u64>;
    /// Queues again, now, as manual attempts, the endpoint's deliveries of
    /// messages created in the window that `filter` takes (event types,
    /// channel, tag, the delivery's status, an attempt's status-code class),
    /// delivered or not (Svix's `bulk-replay`); one in flight is left to
    /// finish. Returns how many.
    async fn bulk_replay(
        &self,
        app_id: &str,
        endpoint_id: &str,
        since: Timestamp,
        until: Option<Timestamp>,
        filter: &ListFilter,
        now: Timestamp,
    ) -> Result<u64>;
    /// Expunges the response kept for one attempt.
    async fn expunge_attempt(&self, app_id: &str, msg_id: &str, attempt_id: &str) -> Result<()>;
    /// Queues the message to the endpoint again, now, as a manual attempt.
    async fn resend(
        &self,
        app_id: &str,
        msg_id: &str,
        endpoint_id: &str,
        now: Timestamp,
    ) -> Result<()>;
    /// Queues failed deliveries of the endpoint created in the window again.
    async fn recover(
        &self,
        endpoint_id: &str,
        since: Timestamp,
        until: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<u64>;
    async fn endpoint_stats(
        &self,
        endpoint_id: &str,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
    ) -> Result<EndpointStats>;
    async fn get_attempt(
        &self,
        app_id: &str,
        msg_id: &str,
        attempt_id: &str,
    ) -> Result<Option<Attempt>>;
    async fn list_attempts_by_endpoint(
        &self,
        app_id: &str,
        endpoint_id: &str,
        filter: &ListFilter,
        page: &Page,
    ) -> Result<PageOf<Attempt>>;
    async fn list_attempts_by_msg(
        &self,
        app_id: &str,
        msg_id: &str,
        filter: &ListFilter,
        page: &Page,
    ) -> Result<PageOf<Attempt>>;
    /// The endpoints a message went to, with the state of each delivery.
    async fn list_attempted_destinations(
        &self,
        app_id: &str,
        msg_id: &str,
        page: &Page,
    ) -> Result<PageOf<(Endpoint, Delivery)>>;
    /// The messages that went to an endpoint, with the state of each delivery.
    async fn list_attempted_messages(
        &self,
        app_id: &str,
        endpoint_id: &str,
        filter: &ListFilter,
        page: &Page,
    ) -> Result<PageOf<(Message, Delivery)>>;
}

/// The delivery queue, as the worker sees it: claims and leases, send slots, the outcomes of attempts, and what a delivery needs of its endpoint.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Claims up to `limit` due deliveries for `lease_until`, skipping the given
    /// endpoints (those already busy in this worker).
    async fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
        skip_endpoints: &[String],
    ) -> Result<Vec<Job>>;
    /// Like [`Queue::claim_due`], but only deliveries that fell due after
    /// `since`: a worker told of new work claims it without walking the older
    /// backlog of endpoints it skips.
    async fn claim_recent(
        &self,
        now: Timestamp,
        since: Timestamp,
        lease_until: Timestamp,
        limit: u32,
        skip_endpoints: &[String],
    ) -> Result<Vec<Job>>;
    /// Claims one delivery, if it is due (the Test button sends it at once).
    async fn claim_delivery(
        &self,
        msg_id: &str,
        endpoint_id: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<Job>>;
    /// Gives back a claimed delivery that was not attempted, due at `due`, if
    /// the claim that ends at `lease_until` still holds it (another worker's
    /// later claim is left alone); parked instead if its endpoint is disabled
    /// (as [`Queue::disable_endpoint`] parks). `slotted`: it holds a send slot
    /// of its endpoint's rate limit starting at `due`.
    async fn release_claim(
        &self,
        msg_id: &str,
        endpoint_id: &str,
        lease_until: Timestamp,
        due: Timestamp,
        slotted: bool,
    ) -> Result<()>;
    /// Reserves the endpoint's next send slot, `interval` after the one
    /// before (its rate limit, held across every worker): when the send may
    /// start. `None`: the endpoint is gone.
    async fn reserve_slot(
        &self,
        endpoint_id: &str,
        interval: std::time::Duration,
        now: Timestamp,
    ) -> Result<Option<Timestamp>>;
    /// Holds the endpoint's rate-limited sends until `until` (a 429's
    /// `Retry-After`).
    async fn hold_endpoint(&self, endpoint_id: &str, until: Timestamp) -> Result<()>;
    /// Disables an enabled endpoint on Herald's own account (`by`: a 410, or
    /// failing too long), records who and when, and parks its pending
    /// deliveries until it is enabled again. `false`: it was disabled already.
    async fn disable_endpoint(
        &self,
        endpoint_id: &str,
        by: DisabledBy,
        now: Timestamp,
    ) -> Result<bool>;
    /// Records that a worker's breaker paused the endpoint until `until`
    /// (for the health model; the pause itself is the worker's).
    async fn pause_endpoint(&self, endpoint_id: &str, until: Timestamp) -> Result<()>;
    /// Records one attempt and moves its delivery on, in one transaction.
    async fn record_attempt(&self, attempt: &Attempt, next: &Next) -> Result<()>;
    /// Called once when a process starts. A store that one process owns
    /// (SQLite) clears every lease, so deliveries cut off by a crash are retried
    /// at once; a shared store (PostgreSQL) leaves leases to expire, since other
    /// nodes may hold them. Returns how many deliveries were re-queued.
    async fn recover_after_restart(&self) -> Result<u64>;
    /// Waits until another process may have queued work, or `timeout`. A store
    /// that one process owns has no other writers and just sleeps (that process
    /// wakes its own worker); PostgreSQL listens for NOTIFY.
    async fn wait_for_work(&self, timeout: std::time::Duration);
    /// When the earliest pending delivery is due, if any.
    async fn next_due(&self) -> Result<Option<Timestamp>>;
    /// The endpoint with the keys that sign now, reused from the store's
    /// cache while younger than `max_age` (`Duration::ZERO`: read now);
    /// forgotten by this store's writes to the endpoint or its keys. `None`:
    /// the endpoint is gone.
    async fn destination(
        &self,
        app_id: &str,
        endpoint_id: &str,
        max_age: Duration,
    ) -> Result<Option<Arc<Destination>>>;
}

/// Who may call: API tokens, portal grants (links and their sessions), idempotency keys.
#[async_trait]
pub trait Credentials: Send + Sync + 'static {
    async fn idempotency_begin(
        &self,
        scope: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<IdempotencyState>;
    async fn idempotency_finish(
        &self,
        scope: &str,
        key: &str,
        status: u16,
        body: &[u8],
    ) -> Result<()>;
    /// Forgets a key whose request failed, so the client may try again.
    async fn idempotency_abort(&self, scope: &str, key: &str) -> Result<()>;
    async fn create_api_token(&self, token: &ApiToken) -> Result<()>;
    /// Newest first; every organisation's when `org_id` is `None`.
    async fn list_api_tokens(&self, org_id: Option<&str>) -> Result<Vec<ApiToken>>;
    /// Marks the token revoked at `now` (one already revoked keeps its time)
    /// and returns it; `NotFound` if there is no such token.
    async fn revoke_api_token(&self, id: &str, now: Timestamp) -> Result<ApiToken>;
    /// The ids of revoked tokens that had not expired by `now`.
    async fn revoked_api_tokens(&self, now: Timestamp) -> Result<Vec<String>>;
    async fn create_portal_grant(&self, grant: &PortalGrant) -> Result<()>;
    /// Uses a portal link: if it is unused, not ended and its link has not
    /// expired at `now`, marks it used and returns it; otherwise `None`. Of
    /// two concurrent uses exactly one succeeds.
    async fn use_portal_grant(&self, id: &str, now: Timestamp) -> Result<Option<PortalGrant>>;
    async fn get_portal_grant(&self, id: &str) -> Result<Option<PortalGrant>>;
    /// Ends every portal link and session of the application at `at`;
    /// returns how many grants it shortened.
    async fn expire_portal_grants(&self, app_id: &str, at: Timestamp) -> Result<u64>;
    /// Ends the grant: its link opens nothing and its sessions end (one
    /// already ended keeps its time). `NotFound` if there is no such grant.
    async fn end_portal_grant(&self, id: &str, now: Timestamp) -> Result<()>;
}

/// Housekeeping: health checks, metrics' counts, re-sealing secrets, facts about the database, retention.
#[async_trait]
pub trait Upkeep: Send + Sync + 'static {
    async fn ping(&self) -> Result<()>;
    /// Up to `limit` values of `column` that are not sealed with the key
    /// `current_key` (plaintext, or sealed with another key).
    async fn read_sealed(
        &self,
        column: SealedColumn,
        current_key: &str,
        limit: u32,
    ) -> Result<Vec<SealedValue>>;
    /// Replaces one value, if it is still `old`; whether it was.
    async fn replace_sealed(
        &self,
        column: SealedColumn,
        owner: &str,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool>;
    /// A fact about the database itself (`herald_meta`).
    async fn meta(&self, name: &str) -> Result<Option<String>>;
    async fn set_meta(&self, name: &str, value: &str) -> Result<()>;
    /// Counts for the metrics, as of `now` (two small aggregate reads).
    async fn gauges(&self, now: Timestamp) -> Result<Gauges>;
    /// One bounded round of clean-up, each part its own short statement so no
    /// lock is held for long: expunges (sets to `{}`) up to `batch` payloads
    /// that expired by `now`, deletes up to `batch` attempts created before
    /// `attempts_before`, up to `batch` idempotency records older than
    /// [`IDEMPOTENCY_RETENTION`], and up to `batch` portal grants whose
    /// sessions ended by `now`. A message with a pending delivery keeps its
    /// payload whatever its date: an accepted message is still delivered.
    /// Callers repeat until a round removes nothing.
    async fn prune(
        &self,
        now: Timestamp,
        attempts_before: Timestamp,
        batch: u32,
    ) -> Result<PruneReport>;
}

/// Opens the store a database URL names, running migrations: `sqlite://PATH`
/// (or `sqlite:PATH`) with `options`, or `postgres://...` (`postgresql://...`)
/// with the default [`PostgresOptions`]. Secrets are sealed and opened with
/// `keyring`; [`sealing::seal_all`] seals what an older Herald left in
/// plaintext.
pub async fn connect(
    url: &str,
    options: &SqliteOptions,
    keyring: Arc<Keyring>,
) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = PostgresStore::open(url, &PostgresOptions::default(), keyring).await?;
        return Ok(Arc::new(store));
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| {
            StoreError::Unavailable(format!(
                "unsupported database URL scheme (expected sqlite://PATH or postgres://...): {}",
                redact_url(url)
            ))
        })?;
    let store = SqliteStore::open(path, options, keyring).await?;
    Ok(Arc::new(store))
}

/// A database URL with any password replaced, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
