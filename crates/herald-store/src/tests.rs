//! The store's behaviour, checked on both backends: each scenario runs once on
//! SQLite (a file in a temporary directory) and once on PostgreSQL (a database
//! of its own, created for the test and dropped after it).
//!
//! PostgreSQL is found at `postgres://postgres@127.0.0.1:5432/postgres`, or at
//! `HERALD_TEST_POSTGRES_URL`: a URL of a database the tests may connect to and
//! create databases from.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Duration as Span, TimeZone, Utc};
use sqlx::Connection;

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty store of one backend.
struct TestStore {
    backend: Backend,
    store: Arc<dyn Store>,
    /// Holds the SQLite file.
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL database, dropped with this (passed or panicked).
    database: Option<TempDatabase>,
}

impl std::ops::Deref for TestStore {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        self.store.as_ref()
    }
}

impl TestStore {
    async fn open(backend: Backend) -> TestStore {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("t.db");
                let store = SqliteStore::open(
                    path.to_str().unwrap(),
                    &SqliteOptions::default(),
                    test_keyring(),
                )
                .await
                .unwrap();
                TestStore {
                    backend,
                    store: Arc::new(store),
                    _dir: Some(dir),
                    database: None,
                }
            }
            Backend::Postgres => {
                let database = create_database().await;
                let url = database.url.clone();
                // Small pools: tests run in parallel against one server.
                let options = PostgresOptions {
                    max_connections: 5,
                    ..PostgresOptions::default()
                };
                let store = PostgresStore::open(&url, &options, test_keyring())
                    .await
                    .unwrap();
                TestStore {
                    backend,
                    store: Arc::new(store),
                    _dir: None,
                    database: Some(database),
                }
            }
        }
    }

    /// Another store on the same database, as another node (or process)
    /// opens it.
    async fn other_node(&self) -> Arc<dyn Store> {
        match (&self._dir, &self.database) {
            (Some(dir), _) => {
                let path = dir.path().join("t.db");
                let options = SqliteOptions::default();
                let store = SqliteStore::open(path.to_str().unwrap(), &options, test_keyring());
                Arc::new(store.await.unwrap())
            }
            (None, Some(database)) => {
                let options = PostgresOptions {
                    max_connections: 2,
                    ..PostgresOptions::default()
                };
                let store = PostgresStore::open(&database.url, &options, test_keyring());
                Arc::new(store.await.unwrap())
            }
            (None, None) => unreachable!("a test store has a file or a database"),
        }
    }

    /// Disables the endpoint through [`TestStore::other_node`].
    async fn other_node_disables(&self, endpoint_id: &str) {
        let other = self.other_node().await;
        let disabled = other
            .disable_endpoint(endpoint_id, DisabledBy::Failing, now())
            .await;
        assert!(disabled.unwrap());
    }

    /// Ends the test: the store's connections close before its database is
    /// dropped. (A panicking test drops the database all the same.)
    async fn finish(self) {
        drop(self.store);
        drop(self.database);
    }
}

fn admin_url() -> String {
    std::env::var("HERALD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// `url` naming the database `database` instead of its own.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let mut out = format!("{}/{database}", &base[..path]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

fn random_hex() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.write_i64(Utc::now().timestamp_nanos_opt().unwrap_or_default());
    format!("{:016x}", h.finish())
}

/// A PostgreSQL database of one test, dropped (with `FORCE`, so connections
/// still open do not stop it) when this value is, whether the test passed or
/// panicked.
pub(crate) struct TempDatabase {
    pub name: String,
    pub url: String,
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        // Drop may run inside a runtime, which cannot block on another future:
        // a thread of its own with a runtime of its own.
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(drop_database(&name))
        })
        .join();
        if dropped.is_err() {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

/// Creates an empty database.
pub(crate) async fn create_database() -> TempDatabase {
    let admin = admin_url();
    let database = format!("herald_t_{}_{}", std::process::id(), random_hex());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL for tests at {}: {e}", redact_url(&admin)));
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let url = with_database(&admin, &database);
    TempDatabase {
        name: database,
        url,
    }
}

async fn drop_database(database: &str) {
    let mut conn = sqlx::PgConnection::connect(&admin_url()).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

/// Makes, for each scenario `name(&TestStore)`, a module `name` with the tests
/// `sqlite` and `postgres`.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let t = super::TestStore::open(super::Backend::Sqlite).await;
                super::$scenario(&t).await;
                t.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let t = super::TestStore::open(super::Backend::Postgres).await;
                super::$scenario(&t).await;
                t.finish().await;
            }
        }
    )*};
}

on_both_backends!(
    a_held_delivery_is_left_to_its_holder,
    a_scheduled_message_waits_for_its_time,
    a_lease_hides_a_delivery_until_it_expires,
    a_released_claim_is_due_again_unless_claimed_since,
    a_claim_given_back_for_a_disabled_endpoint_waits_until_it_is_enabled,
    a_recent_claim_leaves_older_due_deliveries,
    busy_endpoints_are_skipped_and_restarts_release_leases_only_on_sqlite,
    recording_an_attempt_moves_the_delivery_on,
    concurrent_claims_take_each_delivery_once,
    concurrent_writes_succeed_or_fail_one_by_one,
    idempotency_keys_begin_finish_replay_and_expire,
    pages_follow_bytewise_key_order,
    messages_are_routed_and_filtered,
    endpoints_rotate_disable_recover_and_resend,
    messages_keep_their_expiry,
    pruning_expunges_delivered_payloads_and_old_attempts_in_batches,
    secrets_are_sealed_at_rest_and_resealed_under_a_new_key,
    plaintext_left_by_an_older_herald_is_sealed_once,
    api_tokens_are_listed_and_revoked,
    portal_links_open_once_and_their_sessions_end,
    idempotency_records_and_ended_grants_are_pruned,
    conflicts_say_what_is_taken_in_words_of_their_own,
    transformations_and_filters_are_kept_and_skips_logged,
    gauges_count_due_deliveries_and_endpoints_by_state,
    send_slots_are_spaced_by_the_rate_and_a_slotted_delivery_keeps_its_slot,
    cached_reads_are_forgotten_by_the_stores_own_writes,
    messages_keep_tags_and_lists_filter_by_them,
    missing_messages_are_replayed_and_all_contents_expunged,
    bulk_replay_queues_again_what_its_filter_takes,
);

/// Now, to the millisecond the stores keep.
fn now() -> Timestamp {
    Utc.timestamp_millis_opt(Utc::now().timestamp_millis())
        .unwrap()
}

fn app(id: &str, uid: Option<&str>, now: Timestamp) -> Application {
    Application {
        id: id.into(),
        org_id: "org_1".into(),
        uid: uid.map(Into::into),
        name: "Spot".into(),
        metadata: serde_json::json!({}),
        throttle_rate: None,
        created_at: now,
        updated_at: now,
    }
}

fn endpoint(id: &str, now: Timestamp) -> Endpoint {
    Endpoint {
        id: id.into(),
        app_id: "app_1".into(),
        uid: None,
        url: "https://example.com/".into(),
        description: String::new(),
        disabled: false,
        event_types: None,
        channels: None,
        metadata: serde_json::json!({}),
        headers: BTreeMap::new(),
        throttle_rate: None,
        version: 1,
        date_format: "unix".into(),
        transformation: Transformation::default(),
        filters: Vec::new(),
        health: Default::default(),
        created_at: now,
        updated_at: now,
    }
}

fn message(id: &str, event_type: &str, channels: Option<&[&str]>, now: Timestamp) -> Message {
    Message {
        id: id.into(),
        app_id: "app_1".into(),
        event_type: event_type.into(),
        event_id: None,
        channels: channels.map(|l| l.iter().map(|c| c.to_string()).collect()),
        payload: "{}".into(),
        created_at: now,
        expires_at: Some(now + Span::days(90)),
        tags: None,
        deliver_at: None,
        content_type: None,
    }
}

fn page(limit: u32, iterator: Option<&str>, descending: bool) -> Page {
    Page {
        limit,
        iterator: iterator.map(Into::into),
        descending,
        backwards: false,
    }
}

/// app_1, its endpoint ep_1, and msg_1 queued to it.
async fn seed(store: &dyn Store, now: Timestamp) {
    store
        .create_app(&app("app_1", Some("spot"), now))
        .await
        .unwrap();
    store
        .create_endpoint(&endpoint("ep_1", now), "whsec_key")
        .await
        .unwrap();
    let msg = Message {
        event_id: Some("e1".into()),
        ..message("msg_1", "a", None, now)
    };
    assert_eq!(
        store
            .create_message(&msg, &Targets::Matching)
            .await
            .unwrap(),
        ["ep_1"]
    );
    let dup = Message {
        id: "msg_2".into(),
        ..msg
    };
    assert!(matches!(
        store.create_message(&dup, &Targets::Matching).await,
        Err(StoreError::Conflict(_))
    ));
}

fn attempt(now: Timestamp) -> Attempt {
    Attempt {
        request_headers: Vec::new(),
        response_headers: Vec::new(),
        id: "atmpt_1".into(),
        msg_id: "msg_1".into(),
        endpoint_id: "ep_1".into(),
        app_id: "app_1".into(),
        url: "https://example.com/".into(),
        status: MessageStatus::Fail,
        response_status_code: 500,
        response: String::new(),
        response_duration_ms: 1,
        trigger_type: TriggerType::Scheduled,
        skipped: None,
        created_at: now,
    }
}

async fn a_held_delivery_is_left_to_its_holder(t: &TestStore) {
    let now = now();
    t.create_app(&app("app_1", None, now)).await.unwrap();
    t.create_endpoint(&endpoint("ep_1", now), "whsec_key")
        .await
        .unwrap();
    let until = now + Span::seconds(60);
    let held = Targets::Held {
        endpoint_id: "ep_1".into(),
        until,
    };
    assert_eq!(
        t.create_message(&message("msg_1", "a", None, now), &held)
            .await
            .unwrap(),
        ["ep_1"]
    );
    // Workers do not see it before `until`...
    assert!(t
        .claim_due(now, now + Span::seconds(60), 10, &[])
        .await
        .unwrap()
        .is_empty());
    // ...its holder claims it as of `until`.
    let job = t
        .claim_delivery("msg_1", "ep_1", until, until + Span::seconds(60))
        .await
        .unwrap()
        .expect("the holder claims its delivery");
    assert_eq!(job.trigger, TriggerType::Manual);
}

async fn a_scheduled_message_waits_for_its_time(t: &TestStore) {
    let now = now();
    t.create_app(&app("app_1", None, now)).await.unwrap();
    t.create_endpoint(&endpoint("ep_1", now), "whsec_key")
        .await
        .unwrap();
    let at = now + Span::seconds(60);
    assert_eq!(
        t.create_message(
            &message("msg_1", "a", None, now),
            &Targets::Scheduled { at }
        )
        .await
        .unwrap(),
        ["ep_1"],
        "routed as any message"
    );
    // Not due before its time, and the worker knows when to look.
    let just_before = at - Span::milliseconds(1);
    assert!(t
        .claim_due(just_before, at + Span::seconds(60), 10, &[])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(t.next_due().await.unwrap(), Some(at));
    let jobs = t
        .claim_due(at, at + Span::seconds(60), 10, &[])
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].due_at, at);
    assert_eq!(jobs[0].trigger, TriggerType::Scheduled);
    // A time before the message is no time: it is due at once.
    t.create_message(
        &message("msg_2", "a", None, now),
        &Targets::Scheduled {
            at: now - Span::seconds(5),
        },
    )
    .await
    .unwrap();
    let jobs = t.claim_due(now, at, 10, &[]).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].due_at, now);
}

async fn a_lease_hides_a_delivery_until_it_expires(t: &TestStore) {
    let now = now();
    seed(&**t, now).await;
    let lease = now + Span::seconds(60);

    let jobs = t.claim_due(now, lease, 10, &[]).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].msg_id, "msg_1");
    assert_eq!(jobs[0].org_id, "org_1");
    assert_eq!(jobs[0].trigger, TriggerType::Scheduled);
    // Leased: nobody else gets it, until the lease runs out.
    assert!(t.claim_due(now, lease, 10, &[]).await.unwrap().is_empty());
    assert!(t
        .claim_delivery("msg_1", "ep_1", now, lease)
        .await
        .unwrap()
        .is_none());
    let later = lease + Span::seconds(1);
    let again = t
        .claim_due(later, later + Span::seconds(60), 10, &[])
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "an expired lease is claimed again");
    assert_eq!(again[0].attempts, 0);
}

async fn a_released_claim_is_due_again_unless_claimed_since(t: &TestStore) {
    let now = now();
    seed(&**t, now).await;
    let lease = now + Span::seconds(60);
    assert_eq!(t.claim_due(now, lease, 10, &[]).await.unwrap().len(), 1);
    // Another lease than the holder's: not this claim's to give back.
    t.release_claim("msg_1", "ep_1", lease + Span::seconds(1), now, false)
        .await
        .unwrap();
    assert!(t.claim_due(now, lease, 10, &[]).await.unwrap().is_empty());
    t.release_claim("msg_1", "ep_1", lease, now, false)
        .await
        .unwrap();
    assert_eq!(t.next_due().await.unwrap(), Some(now));
    let again = t.claim_due(now, lease, 10, &[]).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 0, "giving back is not an attempt");
}

/// A delivery of a disabled endpoint can be claimed (resent to it, or moved
/// on by an attempt that read the endpoint before it was disabled); the
/// worker gives it back, and it waits for the endpoint, not for its lease.
async fn a_claim_given_back_for_a_disabled_endpoint_waits_until_it_is_enabled(t: &TestStore) {
    let now = now();
    seed(&**t, now).await;
    let ep = t.get_endpoint("app_1", "ep_1").await.unwrap().unwrap();
    t.update_endpoint(&Endpoint {
        disabled: true,
        ..ep.clone()
    })
    .await
    .unwrap();
    assert_eq!(t.next_due().await.unwrap(), None, "parked by the disable");
    t.resend("app_1", "msg_1", "ep_1", now).await.unwrap();
    let lease = now + Span::seconds(60);
    assert_eq!(t.claim_due(now, lease, 10, &[]).await.unwrap().len(), 1);
    t.release_claim("msg_1", "ep_1", lease, now, false)
        .await
        .unwrap();
    assert_eq!(t.next_due().await.unwrap(), None, "parked, not due");
    let later = lease + Span::seconds(1);
    assert!(t
        .claim_due(later, later + Span::seconds(60), 10, &[])
        .await
        .unwrap()
        .is_empty());
    // Enabled: due at once.
    let enabled_at = now + Span::seconds(2);
    t.update_endpoint(&Endpoint {
        disabled: false,
        updated_at: enabled_at,
        ..ep
    })
    .await
    .unwrap();
    assert_eq!(t.next_due().await.unwrap(), Some(enabled_at));
    assert_eq!(
        t.claim_due(enabled_at, enabled_at + Span::seconds(60), 10, &[])
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn a_recent_claim_leaves_older_due_deliveries(t: &TestStore) {
    let now = now();
    t.create_app(&app("app_1", None, now)).await.unwrap();
    t.create_endpoint(&endpoint("ep_1", now), "whsec_key")
        .await
        .unwrap();
    let old = now - Span::seconds(10);
    for (id, at) in [("msg_old", old), ("msg_new", now)] {
        t.create_message(&message(id, "a", None, at), &Targets::Matching)
            .await
            .unwrap();
    }
    let lease = now + Span::seconds(60);
    let since = now - Span::seconds(5);
    let recent = t.claim_recent(now, since, lease, 10, &[]).await.unwrap();
    assert_eq!(
        recent.iter().map(|j| j.msg_id.as_str()).collect::<Vec<_>>(),
        ["msg_new"]
    );
    let rest = t.claim_due(now, lease, 10, &[]).await.unwrap();
    assert_eq!(
        rest.iter().map(|j| j.msg_id.as_str()).collect::<Vec<_>>(),
        ["msg_old"]
    );
}

async fn busy_endpoints_are_skipped_and_restarts_release_leases_only_on_sqlite(t: &TestStore) {
    let now = now();
    seed(&**t, now).await;
    let lease = now + Span::seconds(60);
    let busy = ["ep_1".to_string()];
    assert!(t.claim_due(now, lease, 10, &busy).await.unwrap().is_empty());
    assert_eq!(t.claim_due(now, lease, 10, &[]).await.unwrap().len(), 1);
    match t.backend {
        // The only process that could hold the lease is the one restarting.
        Backend::Sqlite => {
            assert_eq!(t.recover_after_restart().await.unwrap(), 1);
            let due = t.next_due().await.unwrap().unwrap();
            assert!(due <= Utc::now());
            assert_eq!(
                t.claim_due(Utc::now(), lease, 10, &[]).await.unwrap().len(),
                1
            );
        }
        // Another node may hold it: it stays hidden until it expires.
        Backend::Postgres => {
            assert_eq!(t.recover_after_restart().await.unwrap(), 0);
            assert_eq!(t.next_due().await.unwrap(), Some(lease));
            assert!(t.claim_due(now, lease, 10, &[]).await.unwrap().is_empty());
            let later = lease + Span::seconds(1);
            assert_eq!(t.claim_due(later, later, 10, &[]).await.unwrap().len(), 1);
        }
    }
}

async fn recording_an_attempt_moves_the_delivery_on(t: &TestStore) {
    let now = now();
    seed(&**t, now).await;
    t.claim_due(now, now + Span::seconds(60), 10, &[])
        .await
        .unwrap();
    let retry_at = now + Span::seconds(5);
    t.record_attempt(&attempt(now), &Next::RetryAt(retry_at))
        .await
        .unwrap();
    assert_eq!(t.next_due().await.unwrap(), Some(retry_at));
    // Waiting for its retry: `sending`, as Svix says; the portal's
    // "pending" (unfinished) takes it, `status=1` (pending) does not.
    assert_eq!(
        t.endpoint_stats("ep_1", None, None).await.unwrap(),
        EndpointStats {
            sending: 1,
            ..EndpointStats::default()
        }
    );
    let listed = |filter: ListFilter| async move {
        t.list_attempted_messages("app_1", "ep_1", &filter, &page(10, None, true))
            .await
            .unwrap()
            .items
            .len()
    };
    let unfinished = ListFilter {
        unfinished: true,
        ..ListFilter::default()
    };
    let pending = ListFilter {
        status: Some(MessageStatus::Pending),
        ..ListFilter::default()
    };
    assert_eq!((listed(unfinished).await, listed(pending).await), (1, 0));
    assert!(t
        .claim_due(now, now + Span::seconds(60), 10, &[])
        .await
        .unwrap()
        .is_empty());
    let jobs = t
        .claim_due(retry_at, retry_at + Span::seconds(60), 10, &[])
        .await
        .unwrap();
    assert_eq!(jobs[0].attempts, 1);
    // Given back untried: still waiting for its retry, `sending`.
    let lease = retry_at + Span::seconds(60);
    t.release_claim("msg_1", "ep_1", lease, retry_at, false)
        .await
        .unwrap();
    assert_eq!(
        t.endpoint_stats("ep_1", None, None).await.unwrap().sending,
        1
    );
    assert_eq!(
        t.claim_due(retry_at, lease, 10, &[]).await.unwrap().len(),
        1
    );
    // Its headers come back as kept, in order (the first attempt has none).
    let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
    let done = Attempt {
        request_headers: vec![
            pair("content-type", "application/json"),
            pair("authorization", "••••••••"),
            pair("webhook-id", "msg_1"),
        ],
        response_headers: vec![pair("x-receipt", "r-42"), pair("date", "now")],
        id: "atmpt_2".into(),
        status: MessageStatus::Success,
        ..attempt(retry_at)
    };
    t.record_attempt(&done, &Next::Done).await.unwrap();
    assert_eq!(t.next_due().await.unwrap(), None);
    let stats = t.endpoint_stats("ep_1", None, None).await.unwrap();
    assert_eq!(stats.success, 1);
    let attempts = t
        .list_attempts_by_msg(
            "app_1",
            "msg_1",
            &ListFilter::default(),
            &page(10, None, true),
        )
        .await
        .unwrap();
    assert_eq!(attempts.items.len(), 2);
    assert_eq!(attempts.items[0].id, "atmpt_2", "newest first");
    let failed = ListFilter {
        status_code_class: Some(500),
        ..ListFilter::default()
    };
    let by_endpoint = t
        .list_attempts_by_endpoint("app_1", "ep_1", &failed, &page(10, None, false))
        .await
        .unwrap();
    assert_eq!(by_endpoint.items.len(), 2, "both answered 500");
    let got = t
        .get_attempt("app_1", "msg_1", "atmpt_2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, done);
    let first = t
        .get_attempt("app_1", "msg_1", "atmpt_1")
        .await
        .unwrap()
        .unwrap();
    assert!(first.request_headers.is_empty() && first.response_headers.is_empty());
}

async fn concurrent_claims_take_each_delivery_once(t: &TestStore) {
    let now = now();
    t.create_app(&app("app_1", None, now)).await.unwrap();
    for id in ["ep_1", "ep_2"] {
        t.create_endpoint(&endpoint(id, now), "whsec_key")
            .await
            .unwrap();
    }
    for i in 0..100 {
        let msg = message(&format!("msg_{i:03}"), "a", None, now);
        assert_eq!(
            t.create_message(&msg, &Targets::Matching)
                .await
                .unwrap()
                .len(),
            2
        );
    }
    let lease = now + Span::seconds(60);
    let workers = (0..4)
        .map(|_| {
            let store = t.store.clone();
            tokio::spawn(async move {
                let mut claimed = Vec::new();
                loop {
                    let jobs = store.claim_due(now, lease, 10, &[]).await.unwrap();
                    if jobs.is_empty() {
                        return claimed;
                    }
                    claimed.extend(jobs.into_iter().map(|j| (j.msg_id, j.endpoint_id)));
                }
            })
        })
        .collect::<Vec<_>>();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), 200, "every delivery claimed once");
    assert_eq!(distinct.len(), 200, "no delivery claimed twice");
    assert!(t.claim_due(now, lease, 10, &[]).await.unwrap().is_empty());
}

/// Many writes at once (on SQLite they share a transaction): a duplicate
/// `eventId` or a missing application fails only its own write, and every
/// other message, delivery and attempt is stored.
async fn concurrent_writes_succeed_or_fail_one_by_one(t: &TestStore) {
    let now = now();
    t.create_app(&app("app_1", None, now)).await.unwrap();
    for id in ["ep_1", "ep_2"] {
        t.create_endpoint(&endpoint(id, now), "whsec_key")
            .await
            .unwrap();
    }
    // 60 messages, three per eventId, plus one for an application that does
    // not exist, all sent at once.
    let writes = (0..61)
        .map(|i| {
            let store = t.store.clone();
            let msg = Message {
                event_id: Some(format!("evt_{}", i / 3)),
                app_id: if i == 60 { "app_missing" } else { "app_1" }.into(),
                ..message(&format!("msg_{i:03}"), "a", None, now)
            };
            tokio::spawn(async move { store.create_message(&msg, &Targets::Matching).await })
        })
        .collect::<Vec<_>>();
    let mut queued = 0;
    let mut conflicts = 0;
    let mut others = Vec::new();
    for w in writes {
        match w.await.unwrap() {
            Ok(endpoints) => queued += endpoints.len(),
            Err(StoreError::Conflict(_)) => conflicts += 1,
            Err(e) => others.push(e),
        }
    }
    assert_eq!(queued, 40, "one message per eventId, to both endpoints");
    assert_eq!(conflicts, 40, "two duplicates of each of 20 eventIds");
    assert_eq!(
        others.len(),
        1,
        "only the message of the missing app: {others:?}"
    );

    let jobs = t
        .claim_due(now, now + Span::seconds(60), 100, &[])
        .await
        .unwrap();
    assert_eq!(jobs.len(), 40);
    let records = jobs
        .iter()
        .enumerate()
        .map(|(i, job)| {
            let store = t.store.clone();
            let attempt = Attempt {
                request_headers: Vec::new(),
                response_headers: Vec::new(),
                id: format!("atmpt_{i:03}"),
                msg_id: job.msg_id.clone(),
                endpoint_id: job.endpoint_id.clone(),
                status: MessageStatus::Success,
                response_status_code: 200,
                ..attempt(now)
            };
            // Half succeed, half are retried in a minute.
            let next = if i % 2 == 0 {
                Next::Done
            } else {
                Next::RetryAt(now + Span::seconds(60))
            };
            tokio::spawn(async move { store.record_attempt(&attempt, &next).await })
        })
        .collect::<Vec<_>>();
    for r in records {
        r.await.unwrap().unwrap();
    }
    let mut success = 0;
    for ep in ["ep_1", "ep_2"] {
        let stats = t.endpoint_stats(ep, None, None).await.unwrap();
        success += stats.success;
        let attempts = t
            .list_attempts_by_endpoint("app_1", ep, &ListFilter::default(), &page(100, None, false))
            .await
            .unwrap();
        assert_eq!(attempts.items.len(), 20, "every attempt stored for {ep}");
    }
    assert_eq!(success, 20);
    assert_eq!(
        t.next_due().await.unwrap(),
        Some(now + Span::seconds(60)),
        "the retried half waits for its retry, not for its lease"
    );
}

async fn idempotency_keys_begin_finish_replay_and_expire(t: &TestStore) {
    let t0 = now();
    let at = |secs: i64| t0 + Span::seconds(secs);
    assert_eq!(
        t.idempotency_begin("s", "k", t0).await.unwrap(),
        IdempotencyState::New
    );
    assert_eq!(
        t.idempotency_begin("s", "k", at(1)).await.unwrap(),
        IdempotencyState::InProgress
    );
    assert_eq!(
        t.idempotency_begin("other", "k", at(1)).await.unwrap(),
        IdempotencyState::New,
        "keys are per scope"
    );
    t.idempotency_finish("s", "k", 201, b"{\"id\":1}")
        .await
        .unwrap();
    let done = IdempotencyState::Done {
        status: 201,
        body: b"{\"id\":1}".to_vec(),
    };
    assert_eq!(t.idempotency_begin("s", "k", at(2)).await.unwrap(), done);
    // A finished key is not forgotten by an abort, nor after 30 s.
    t.idempotency_abort("s", "k").await.unwrap();
    assert_eq!(t.idempotency_begin("s", "k", at(60)).await.unwrap(), done);

    // An aborted key may be tried again at once.
    assert_eq!(
        t.idempotency_begin("s", "k2", t0).await.unwrap(),
        IdempotencyState::New
    );
    t.idempotency_abort("s", "k2").await.unwrap();
    assert_eq!(
        t.idempotency_begin("s", "k2", t0).await.unwrap(),
        IdempotencyState::New
    );

    // A key whose request never finished is taken over after 30 s.
    assert_eq!(
        t.idempotency_begin("s", "k3", t0).await.unwrap(),
        IdempotencyState::New
    );
    assert_eq!(
        t.idempotency_begin("s", "k3", at(29)).await.unwrap(),
        IdempotencyState::InProgress
    );
    assert_eq!(
        t.idempotency_begin("s", "k3", at(31)).await.unwrap(),
        IdempotencyState::New
    );
    assert_eq!(
        t.idempotency_begin("s", "k3", at(32)).await.unwrap(),
        IdempotencyState::InProgress,
        "the takeover holds the key again"
    );
}

async fn pages_follow_bytewise_key_order(t: &TestStore) {
    let now = now();
    for id in ["app_b", "app_A", "app__", "app_a", "app_B"] {
        t.create_app(&app(id, None, now)).await.unwrap();
    }
    let ids = |p: &PageOf<Application>| p.items.iter().map(|a| a.id.clone()).collect::<Vec<_>>();
    let mut seen = Vec::new();
    let mut iterator: Option<String> = None;
    loop {
        let p = t
            .list_apps("org_1", &page(2, iterator.as_deref(), false))
            .await
            .unwrap();
        seen.extend(ids(&p));
        if p.done {
            break;
        }
        iterator = seen.last().cloned();
    }
    assert_eq!(seen, ["app_A", "app_B", "app__", "app_a", "app_b"]);

    let first = t.list_apps("org_1", &page(2, None, true)).await.unwrap();
    assert_eq!(ids(&first), ["app_b", "app_a"]);
    assert!(!first.done);
    let second = t
        .list_apps("org_1", &page(2, Some("app_a"), true))
        .await
        .unwrap();
    assert_eq!(ids(&second), ["app__", "app_B"]);
    let last = t
        .list_apps("org_1", &page(2, Some("app_B"), true))
        .await
        .unwrap();
    assert_eq!(ids(&last), ["app_A"]);
    assert!(last.done);
    let exact = t.list_apps("org_1", &page(5, None, false)).await.unwrap();
    assert!(exact.done, "a full last page is done");
    assert!(t
        .list_apps("org_2", &page(5, None, false))
        .await
        .unwrap()
        .items
        .is_empty());

    for (name, archived) in [("b.x", false), ("a.y", true), ("c.z", false)] {
        t.create_event_type(&EventType {
            org_id: "org_1".into(),
            name: name.into(),
            description: String::new(),
            archived,
            deprecated: false,
            feature_flag: None,
            schemas: Some(serde_json::json!({"1": {"type": "object"}})),
            public: true,
            validate_payload: false,
            created_at: now,
            updated_at: now,
        })
        .await
        .unwrap();
    }
    let names = |archived| async move {
        t.list_event_types("org_1", archived, &page(10, None, false))
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|et| et.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(false).await, ["b.x", "c.z"]);
    assert_eq!(names(true).await, ["a.y", "b.x", "c.z"]);
    let et = t.get_event_type("org_1", "a.y").await.unwrap().unwrap();
    assert!(et.archived && et.public);
    assert!(et.latest_schema().is_some());
}

async fn messages_are_routed_and_filtered(t: &TestStore) {
    let t0 = now();
    t.create_app(&app("app_1", None, t0)).await.unwrap();
    let eps = [
        endpoint("ep_all", t0),
        Endpoint {
            channels: Some(vec!["x".into()]),
            ..endpoint("ep_ch", t0)
        },
        Endpoint {
            event_types: Some(vec!["b".into()]),
            ..endpoint("ep_type", t0)
        },
        Endpoint {
            disabled: true,
            ..endpoint("ep_off", t0)
        },
    ];
    for ep in &eps {
        t.create_endpoint(ep, "whsec_key").await.unwrap();
    }
    let at = |secs: i64| t0 + Span::seconds(secs);
    let queued = [
        (message("msg_1", "a", Some(&["x"]), at(1)), 2),
        (message("msg_2", "b", None, at(2)), 2),
        (message("msg_3", "a", Some(&["y", "z"]), at(3)), 1),
    ];
    for (msg, want) in &queued {
        assert_eq!(
            t.create_message(msg, &Targets::Matching)
                .await
                .unwrap()
                .len(),
            *want,
            "{}",
            msg.id
        );
    }
    let msg_ids = |p: PageOf<Message>| p.items.into_iter().map(|m| m.id).collect::<Vec<_>>();
    let list = |filter: ListFilter| async move {
        msg_ids(
            t.list_messages("app_1", &filter, &page(10, None, false))
                .await
                .unwrap(),
        )
    };
    let channel = |c: &str| ListFilter {
        channel: Some(c.into()),
        ..ListFilter::default()
    };
    let types = |l: &[&str]| ListFilter {
        event_types: l.iter().map(|s| s.to_string()).collect(),
        ..ListFilter::default()
    };
    assert_eq!(list(channel("x")).await, ["msg_1"]);
    assert_eq!(list(channel("z")).await, ["msg_3"]);
    assert!(list(channel("w")).await.is_empty());
    assert_eq!(list(types(&["b"])).await, ["msg_2"]);
    assert_eq!(list(types(&["a", "b"])).await, ["msg_1", "msg_2", "msg_3"]);
    // Svix's window: `after` takes a message made at that very time,
    // `before` does not.
    let window = ListFilter {
        after: Some(at(2)),
        before: Some(at(3)),
        ..ListFilter::default()
    };
    assert_eq!(list(window).await, ["msg_2"]);
    let window = ListFilter {
        after: Some(at(1)),
        before: Some(at(3)),
        ..ListFilter::default()
    };
    assert_eq!(list(window).await, ["msg_1", "msg_2"]);

    let got = t.get_message("app_1", "msg_3").await.unwrap().unwrap();
    assert_eq!(got, queued[2].0);

    let destinations = t
        .list_attempted_destinations("app_1", "msg_1", &page(10, None, false))
        .await
        .unwrap();
    let dest_ids: Vec<_> = destinations
        .items
        .iter()
        .map(|(e, d)| (e.id.as_str(), d.status))
        .collect();
    assert_eq!(
        dest_ids,
        [
            ("ep_all", MessageStatus::Pending),
            ("ep_ch", MessageStatus::Pending)
        ]
    );
    let sent = t
        .list_attempted_messages("app_1", "ep_all", &channel("x"), &page(10, None, true))
        .await
        .unwrap();
    assert_eq!(sent.items.len(), 1);
    assert_eq!(sent.items[0].0.id, "msg_1");
    assert_eq!(sent.items[0].1.next_attempt_at, Some(at(1)));
    let pending = ListFilter {
        status: Some(MessageStatus::Pending),
        ..ListFilter::default()
    };
    let all = t
        .list_attempted_messages("app_1", "ep_all", &pending, &page(10, None, true))
        .await
        .unwrap();
    assert_eq!(
        all.items
            .iter()
            .map(|(m, _)| m.id.as_str())
            .collect::<Vec<_>>(),
        ["msg_3", "msg_2", "msg_1"]
    );

    // Send-example: to one endpoint whatever its filters, as a manual attempt.
    let example = message("msg_4", "a", None, at(4));
    assert_eq!(
        t.create_message(&example, &Targets::Only("ep_type".into()))
            .await
            .unwrap(),
        ["ep_type"]
    );
    let job = t
        .claim_delivery("msg_4", "ep_type", at(4), at(64))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.trigger, TriggerType::Manual);
    assert_eq!(job.endpoint_id, "ep_type");
    assert!(
        t.claim_delivery("msg_1", "ep_all", at(0), at(60))
            .await
            .unwrap()
            .is_none(),
        "not due yet"
    );
}

async fn endpoints_rotate_disable_recover_and_resend(t: &TestStore) {
    let t0 = now();
    let at = |secs: i64| t0 + Span::seconds(secs);
    seed(&**t, t0).await;
    assert!(matches!(
        t.create_app(&app("app_2", Some("spot"), t0)).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        t.get_app("org_1", "spot").await.unwrap().unwrap().id,
        "app_1"
    );
    assert!(t.get_app("org_2", "app_1").await.unwrap().is_none());

    // Rotation: the old key signs until its time runs out, and at most two sign.
    t.rotate_secret("ep_1", "whsec_2", at(3600), at(1))
        .await
        .unwrap();
    t.rotate_secret("ep_1", "whsec_3", at(7200), at(2))
        .await
        .unwrap();
    let keys = |secs| async move {
        t.secrets("ep_1", at(secs))
            .await
            .unwrap()
            .into_iter()
            .map(|k| (k.key, k.expires_at))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(3).await,
        [
            ("whsec_3".to_string(), None),
            ("whsec_2".to_string(), Some(at(7200))),
            ("whsec_key".to_string(), Some(at(3600))),
        ]
    );
    assert_eq!(keys(3601).await.len(), 2);

    // Disabled while an attempt is in flight: the delivery is parked (no next
    // attempt, still unfinished), not failed.
    assert_eq!(t.claim_due(t0, at(60), 10, &[]).await.unwrap().len(), 1);
    assert!(t
        .disable_endpoint("ep_1", DisabledBy::Gone, at(1))
        .await
        .unwrap());
    assert!(
        !t.disable_endpoint("ep_1", DisabledBy::Gone, at(1))
            .await
            .unwrap(),
        "already disabled"
    );
    let ep = t.get_endpoint("app_1", "ep_1").await.unwrap().unwrap();
    assert!(ep.disabled);
    assert_eq!(ep.state(), EndpointState::AutoDisabled);
    assert_eq!(ep.health.disabled_at, Some(at(1)));
    t.record_attempt(&attempt(at(1)), &Next::RetryAt(at(5)))
        .await
        .unwrap();
    assert_eq!(t.next_due().await.unwrap(), None);
    // Tried and to be tried again: `sending`, as Svix says of a retry.
    assert_eq!(
        t.endpoint_stats("ep_1", None, None).await.unwrap(),
        EndpointStats {
            sending: 1,
            ..EndpointStats::default()
        }
    );
    let ep = t.get_endpoint("app_1", "ep_1").await.unwrap().unwrap();
    assert_eq!(ep.health.consecutive_failures, 1);
    assert_eq!(ep.health.failing_since, Some(at(1)));
    assert_eq!(ep.health.last_error.as_deref(), Some("500"));

    // Enabled again: what was parked is due at once, the failure run starts
    // over, and who disabled it is forgotten.
    let enabled = Endpoint {
        disabled: false,
        updated_at: at(2),
        ..ep
    };
    t.update_endpoint(&enabled).await.unwrap();
    assert_eq!(t.next_due().await.unwrap(), Some(at(2)));
    let ep = t.get_endpoint("app_1", "ep_1").await.unwrap().unwrap();
    assert_eq!(
        (ep.state(), ep.health),
        (EndpointState::Active, Health::default())
    );

    // Its last try fails: no more retries.
    assert_eq!(t.claim_due(at(2), at(62), 10, &[]).await.unwrap().len(), 1);
    let last = Attempt {
        request_headers: Vec::new(),
        response_headers: Vec::new(),
        id: "atmpt_2".into(),
        ..attempt(at(3))
    };
    t.record_attempt(&last, &Next::GiveUp).await.unwrap();
    let stats = t.endpoint_stats("ep_1", None, None).await.unwrap();
    assert_eq!(
        stats,
        EndpointStats {
            fail: 1,
            ..EndpointStats::default()
        }
    );
    assert_eq!(
        t.endpoint_stats("ep_1", Some(at(1)), None).await.unwrap(),
        EndpointStats::default(),
        "the delivery was created before the window"
    );
    assert_eq!(
        t.get_endpoint("app_1", "ep_1")
            .await
            .unwrap()
            .unwrap()
            .state(),
        EndpointState::Failing
    );

    // Recover queues failed deliveries again, as manual attempts.
    assert_eq!(t.recover("ep_1", at(-1), None, at(10)).await.unwrap(), 1);
    assert_eq!(t.next_due().await.unwrap(), Some(at(10)));
    let job = t
        .claim_delivery("msg_1", "ep_1", at(10), at(70))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.trigger, TriggerType::Manual);
    assert_eq!(job.endpoint_id, "ep_1");

    // Resend during a lease keeps the delivery sending; a new endpoint gets a
    // new delivery.
    t.resend("app_1", "msg_1", "ep_1", at(11)).await.unwrap();
    let mut ep_2 = endpoint("ep_2", t0);
    ep_2.uid = Some("second".into());
    t.create_endpoint(&ep_2, "whsec_x").await.unwrap();
    t.resend("app_1", "msg_1", "ep_2", at(12)).await.unwrap();
    let destinations = t
        .list_attempted_destinations("app_1", "msg_1", &page(10, None, false))
        .await
        .unwrap();
    let states: Vec<_> = destinations
        .items
        .iter()
        .map(|(e, d)| (e.id.as_str(), d.status, d.next_attempt_at))
        .collect();
    assert_eq!(
        states,
        [
            ("ep_1", MessageStatus::Sending, Some(at(11))),
            ("ep_2", MessageStatus::Pending, Some(at(12))),
        ]
    );
    assert_eq!(
        t.get_endpoint("app_1", "second").await.unwrap().unwrap().id,
        "ep_2"
    );

    // Deleting the application takes its attempts along.
    t.delete_app("org_2", "app_1").await.unwrap_err();
    t.delete_app("org_1", "app_1").await.unwrap();
    assert!(t.get_app("org_1", "app_1").await.unwrap().is_none());
    assert!(t
        .get_attempt("app_1", "msg_1", "atmpt_1")
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        t.delete_app("org_1", "app_1").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(t.next_due().await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_notify_wakes_a_waiting_worker() {
    let t = TestStore::open(Backend::Postgres).await;
    let t0 = now();
    t.create_app(&app("app_1", None, t0)).await.unwrap();
    t.create_endpoint(&endpoint("ep_1", t0), "whsec_key")
        .await
        .unwrap();
    // The first wait starts listening; with nothing queued it lasts its timeout.
    let start = Instant::now();
    t.wait_for_work(Duration::from_millis(300)).await;
    assert!(start.elapsed() >= Duration::from_millis(300));

    // Woken by NOTIFY, not by the 30 s timeout: the bound below leaves a
    // loaded machine room and still tells the two apart.
    let store = t.store.clone();
    let waiter = tokio::spawn(async move {
        let start = Instant::now();
        store.wait_for_work(Duration::from_secs(30)).await;
        start.elapsed()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    t.create_message(&message("msg_1", "a", None, t0), &Targets::Matching)
        .await
        .unwrap();
    let waited = waiter.await.unwrap();
    assert!(waited < Duration::from_secs(10), "woke after {waited:?}");

    // A resend wakes workers too.
    let store = t.store.clone();
    let waiter = tokio::spawn(async move {
        let start = Instant::now();
        store.wait_for_work(Duration::from_secs(30)).await;
        start.elapsed()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    t.resend("app_1", "msg_1", "ep_1", t0).await.unwrap();
    let waited = waiter.await.unwrap();
    assert!(waited < Duration::from_secs(10), "woke after {waited:?}");

    // The listening connection dies: the next wait neither fails nor spins,
    // and listening resumes.
    let url = &t.database.as_ref().unwrap().url;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(killed, [true]);
    conn.close().await.unwrap();
    t.wait_for_work(Duration::from_millis(500)).await;
    let store = t.store.clone();
    let waiter = tokio::spawn(async move {
        let start = Instant::now();
        store.wait_for_work(Duration::from_secs(30)).await;
        start.elapsed()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    t.create_message(&message("msg_2", "a", None, t0), &Targets::Matching)
        .await
        .unwrap();
    let waited = waiter.await.unwrap();
    assert!(
        waited < Duration::from_secs(10),
        "woke after {waited:?} once listening again"
    );
    t.finish().await;
}

/// Holds PostgreSQL's `delivery` table against writes, from a connection of its
/// own, until [`WritesHeld::release`]: both hot-path writes touch it (a new
/// message inserts its deliveries, an outcome moves its delivery on), so group
/// commit's writers stop there, and what is sent meanwhile queues up for them.
struct WritesHeld {
    holder: sqlx::PgConnection,
    /// Watches the writers, outside any transaction (pg_stat_activity is read
    /// once per transaction).
    watcher: sqlx::PgConnection,
}

impl WritesHeld {
    async fn start(url: &str) -> WritesHeld {
        let mut holder = sqlx::PgConnection::connect(url).await.unwrap();
        for sql in ["BEGIN", "LOCK TABLE delivery IN SHARE ROW EXCLUSIVE MODE"] {
            sqlx::query(sql).execute(&mut holder).await.unwrap();
        }
        let watcher = sqlx::PgConnection::connect(url).await.unwrap();
        WritesHeld { holder, watcher }
    }

    /// Waits until `n` transactions wait for the lock.
    async fn until_waiting(&mut self, n: i64) {
        let start = Instant::now();
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&mut self.watcher)
            .await
            .unwrap();
            if waiting >= n {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{waiting} writes wait for the lock, not {n}: \
                 fewer batches are in flight at once than expected"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn release(mut self) {
        sqlx::query("ROLLBACK")
            .execute(&mut self.holder)
            .await
            .unwrap();
    }
}

/// A message to app_1 (or `app`) with an `eventId`.
fn message_with(id: &str, app: &str, event_id: Option<String>, now: Timestamp) -> Message {
    Message {
        app_id: app.into(),
        event_id,
        ..message(id, "a", None, now)
    }
}

/// Two batches commit at once on PostgreSQL, and one batch holds many writes,
/// some of which cannot be written: a message to an application that does not
/// exist, an outcome of a message that does not exist, duplicate eventIds.
/// Only those fail, each with its own typed error; every other write commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_group_commit_fails_only_the_culprits_of_a_batch() {
    let t = TestStore::open(Backend::Postgres).await;
    let now = now();
    t.create_app(&app("app_1", None, now)).await.unwrap();
    for id in ["ep_1", "ep_2"] {
        t.create_endpoint(&endpoint(id, now), "whsec_key")
            .await
            .unwrap();
    }
    t.create_message(&message("msg_0", "a", None, now), &Targets::Matching)
        .await
        .unwrap();
    let jobs = t
        .claim_due(now, now + Span::seconds(60), 10, &[])
        .await
        .unwrap();
    assert_eq!(jobs.len(), 2);

    let mut held = WritesHeld::start(&t.database.as_ref().unwrap().url).await;
    let send = |msg: Message| {
        let store = t.store.clone();
        tokio::spawn(async move { store.create_message(&msg, &Targets::Matching).await })
    };
    // One write each to the two writers, both held: two batches in flight.
    let first = send(message_with("msg_first_1", "app_1", None, now));
    held.until_waiting(1).await;
    let second = send(message_with("msg_first_2", "app_1", None, now));
    held.until_waiting(2).await;

    // What queues meanwhile is the next batch: ten messages on five eventIds,
    // one to a missing application, two outcomes and one of a missing message.
    let messages = (0..10)
        .map(|i| {
            let event_id = Some(format!("evt_{}", i / 2));
            send(message_with(&format!("msg_{i:02}"), "app_1", event_id, now))
        })
        .collect::<Vec<_>>();
    let missing_app = send(message_with("msg_lost", "app_missing", None, now));
    let record = |id: &str, msg_id: &str, endpoint_id: &str| {
        let store = t.store.clone();
        let attempt = Attempt {
            request_headers: Vec::new(),
            response_headers: Vec::new(),
            id: id.into(),
            msg_id: msg_id.into(),
            endpoint_id: endpoint_id.into(),
            status: MessageStatus::Success,
            response_status_code: 200,
            ..attempt(now)
        };
        tokio::spawn(async move { store.record_attempt(&attempt, &Next::Done).await })
    };
    let outcomes = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| record(&format!("atmpt_{i}"), &j.msg_id, &j.endpoint_id))
        .collect::<Vec<_>>();
    let missing_msg = record("atmpt_lost", "msg_missing", "ep_1");
    tokio::time::sleep(Duration::from_millis(300)).await;
    held.release().await;

    for w in [first, second] {
        assert_eq!(w.await.unwrap().unwrap().len(), 2);
    }
    let mut taken = Vec::new();
    let mut queued = 0;
    for w in messages {
        match w.await.unwrap() {
            Ok(endpoints) => queued += endpoints.len(),
            Err(StoreError::Conflict(Conflict::MessageEventId(e))) => taken.push(e),
            Err(e) => panic!("only duplicates fail: {e:?}"),
        }
    }
    taken.sort();
    assert_eq!(taken, ["evt_0", "evt_1", "evt_2", "evt_3", "evt_4"]);
    assert_eq!(queued, 10, "one message per eventId, to both endpoints");
    assert!(matches!(
        missing_app.await.unwrap(),
        Err(StoreError::NotFound)
    ));
    for w in outcomes {
        w.await.unwrap().unwrap();
    }
    assert!(matches!(
        missing_msg.await.unwrap(),
        Err(StoreError::NotFound)
    ));

    // Everything else is stored: 1 + 2 + 5 messages, and msg_0's outcomes.
    let stored = t
        .list_messages("app_1", &ListFilter::default(), &page(100, None, false))
        .await
        .unwrap();
    assert_eq!(stored.items.len(), 8);
    let stats = t.endpoint_stats("ep_1", None, None).await.unwrap();
    assert_eq!(stats.success, 1);
    let due = t
        .claim_due(now, now + Span::seconds(60), 100, &[])
        .await
        .unwrap();
    assert_eq!(due.len(), 14, "7 new messages to 2 endpoints each");
    t.finish().await;
}

/// On PostgreSQL, writes sent while the writers are busy go in together: one
/// transaction, and one NOTIFY, for many messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_group_commit_writes_a_batch_in_one_transaction_with_one_notify() {
    let t = TestStore::open(Backend::Postgres).await;
    let now = now();
    t.create_app(&app("app_1", None, now)).await.unwrap();
    t.create_endpoint(&endpoint("ep_1", now), "whsec_key")
        .await
        .unwrap();
    let url = t.database.as_ref().unwrap().url.clone();
    let mut listener = sqlx::postgres::PgListener::connect(&url).await.unwrap();
    listener.listen(crate::sql::WORK_CHANNEL).await.unwrap();

    let mut held = WritesHeld::start(&url).await;
    let send = |i: usize| {
        let store = t.store.clone();
        let msg = message(&format!("msg_{i:02}"), "a", None, now);
        tokio::spawn(async move { store.create_message(&msg, &Targets::Matching).await })
    };
    let mut writes = vec![send(0)];
    held.until_waiting(1).await;
    writes.push(send(1));
    held.until_waiting(2).await;
    writes.extend((2..42).map(send));
    tokio::time::sleep(Duration::from_millis(300)).await;
    held.release().await;
    for w in writes {
        assert_eq!(w.await.unwrap().unwrap(), ["ep_1"]);
    }

    // Each row's xmin is the transaction that inserted it.
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let transactions: i64 = sqlx::query_scalar("SELECT count(DISTINCT xmin::text) FROM message")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    assert!(
        (3..=10).contains(&transactions),
        "42 messages in {transactions} transactions"
    );
    let mut notices = 0;
    while let Ok(notice) = tokio::time::timeout(Duration::from_millis(500), listener.recv()).await {
        notice.unwrap();
        notices += 1;
    }
    assert_eq!(notices, transactions, "one NOTIFY per transaction");
    t.finish().await;
}

#[tokio::test]
async fn connect_chooses_the_backend_by_scheme() {
    let database = create_database().await;
    let store = connect(&database.url, &SqliteOptions::default(), test_keyring())
        .await
        .unwrap();
    store.ping().await.unwrap();
    drop(store);
    drop(database);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = connect(
        &format!("sqlite://{}", path.display()),
        &SqliteOptions::default(),
        test_keyring(),
    )
    .await
    .unwrap();
    store.ping().await.unwrap();

    let err = connect(
        "mysql://u:pw@h/db",
        &SqliteOptions::default(),
        test_keyring(),
    )
    .await
    .err()
    .unwrap();
    assert!(!err.to_string().contains("pw"), "{err}");
}

#[test]
fn test_urls_name_their_database() {
    let cases = [
        ("postgres://u@h:5432/postgres", "postgres://u@h:5432/x"),
        ("postgres://u@h:5432", "postgres://u@h:5432/x"),
        (
            "postgres://u:p@h/postgres?sslmode=disable",
            "postgres://u:p@h/x?sslmode=disable",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(with_database(input, "x"), want, "{input}");
    }
}

#[test]
fn redacts_passwords() {
    let cases = [
        ("sqlite://herald.db", "sqlite://herald.db"),
        ("postgres://u:pw@h/db", "postgres://u:***@h/db"),
        ("postgres://u@h/db", "postgres://u@h/db"),
    ];
    for (input, want) in cases {
        assert_eq!(redact_url(input), want, "{input}");
    }
}

async fn messages_keep_their_expiry(t: &TestStore) {
    let now = now();
    seed(&**t, now).await;
    let five_days = Message {
        expires_at: Some(now + Span::days(5)),
        ..message("msg_5", "a", None, now)
    };
    t.create_message(&five_days, &Targets::Matching)
        .await
        .unwrap();
    let got = t.get_message("app_1", "msg_5").await.unwrap().unwrap();
    assert_eq!(got, five_days);
    let listed = t
        .list_messages("app_1", &ListFilter::default(), &page(10, None, false))
        .await
        .unwrap();
    let expiries: Vec<_> = listed.items.iter().map(|m| m.expires_at).collect();
    assert_eq!(
        expiries,
        [Some(now + Span::days(90)), Some(now + Span::days(5))]
    );
}

async fn pruning_expunges_delivered_payloads_and_old_attempts_in_batches(t: &TestStore) {
    let now = now();
    t.create_app(&app("app_1", None, now)).await.unwrap();
    t.create_endpoint(&endpoint("ep_1", now), "whsec_key")
        .await
        .unwrap();
    let payload = r#"{"member":{"email":"ada@example.com"}}"#;
    let expired = Some(now - Span::hours(1));
    let old = now - Span::days(100);
    let attempts_before = now - Span::days(90);
    // (message, expires_at, next step, attempt made at)
    let cases = [
        ("msg_a", expired, Next::Done, old),
        ("msg_b", expired, Next::GiveUp, old),
        ("msg_c", expired, Next::Done, old),
        // Expired but still retrying: it must be sent as it was accepted.
        ("msg_p", expired, Next::RetryAt(now + Span::hours(1)), now),
        ("msg_f", Some(now + Span::days(1)), Next::Done, now),
    ];
    for (id, expires_at, next, at) in &cases {
        let msg = Message {
            payload: payload.into(),
            expires_at: *expires_at,
            ..message(id, "a", None, now - Span::days(100))
        };
        t.create_message(&msg, &Targets::Matching).await.unwrap();
        let made = Attempt {
            request_headers: Vec::new(),
            response_headers: Vec::new(),
            id: format!("atmpt_{id}"),
            msg_id: id.to_string(),
            ..attempt(*at)
        };
        t.record_attempt(&made, next).await.unwrap();
    }

    // Batches of two: three expired, delivered payloads and three old attempts.
    let round = || t.prune(now, attempts_before, 2);
    assert_eq!(
        round().await.unwrap(),
        PruneReport {
            payloads: 2,
            attempts: 2,
            ..PruneReport::default()
        }
    );
    assert_eq!(
        round().await.unwrap(),
        PruneReport {
            payloads: 1,
            attempts: 1,
            ..PruneReport::default()
        }
    );
    assert_eq!(round().await.unwrap(), PruneReport::default());

    let get = |id: &'static str| async move { t.get_message("app_1", id).await.unwrap().unwrap() };
    for id in ["msg_a", "msg_b", "msg_c"] {
        let msg = get(id).await;
        assert_eq!(msg.payload, EXPUNGED_PAYLOAD, "{id}");
        assert_eq!(msg.expires_at, None, "{id}");
    }
    let pending = get("msg_p").await;
    assert_eq!(
        pending.payload, payload,
        "a pending delivery keeps its payload"
    );
    assert_eq!(pending.expires_at, expired);
    let fresh = get("msg_f").await;
    assert_eq!(fresh.payload, payload);
    // The messages stay listed; only their payloads went.
    let listed = t
        .list_messages("app_1", &ListFilter::default(), &page(10, None, false))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), cases.len());
    let attempts_of = |id: &'static str| async move {
        t.list_attempts_by_msg("app_1", id, &ListFilter::default(), &page(10, None, false))
            .await
            .unwrap()
            .items
            .len()
    };
    assert_eq!(attempts_of("msg_a").await, 0);
    assert_eq!(attempts_of("msg_p").await, 1, "recent attempts stay");

    // Once its delivery finishes, the pending message's payload goes too.
    let last = Attempt {
        request_headers: Vec::new(),
        response_headers: Vec::new(),
        id: "atmpt_msg_p_2".into(),
        msg_id: "msg_p".into(),
        status: MessageStatus::Success,
        ..attempt(now)
    };
    t.record_attempt(&last, &Next::Done).await.unwrap();
    assert_eq!(
        t.prune(now, attempts_before, 1000).await.unwrap(),
        PruneReport {
            payloads: 1,
            attempts: 0,
            ..PruneReport::default()
        }
    );
    assert_eq!(get("msg_p").await.payload, EXPUNGED_PAYLOAD);
    assert_eq!(
        t.prune(now, attempts_before, 1000).await.unwrap(),
        PruneReport::default()
    );
}

/// Every value of `column` exactly as stored (no value is sealed with the key
/// id `ffffffff`, so `read_sealed` returns them all).
async fn stored(t: &TestStore, column: SealedColumn) -> Vec<String> {
    t.read_sealed(column, "ffffffff", 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|v| String::from_utf8(v.value).unwrap())
        .collect()
}

async fn secrets_are_sealed_at_rest_and_resealed_under_a_new_key(t: &TestStore) {
    let now = now();
    t.create_app(&app("app_1", None, now)).await.unwrap();
    let ep = Endpoint {
        headers: BTreeMap::from([("authorization".into(), "Bearer s3cret-token".into())]),
        transformation: Transformation {
            code: Some("function handler(webhook) { return webhook; }".into()),
            enabled: true,
            variables: BTreeMap::from([("apiKey".into(), "s3cret-variable".into())]),
            updated_at: Some(now),
        },
        ..endpoint("ep_1", now)
    };
    t.create_endpoint(&ep, "whsec_Zmlyc3Q=").await.unwrap();
    t.rotate_secret("ep_1", "whsec_c2Vjb25k", now + Span::hours(1), now)
        .await
        .unwrap();
    t.idempotency_begin("org_1::/api/v1/x", "k", now)
        .await
        .unwrap();
    t.idempotency_finish(
        "org_1::/api/v1/x",
        "k",
        200,
        b"{\"key\":\"whsec_c2Vjb25k\"}",
    )
    .await
    .unwrap();

    // Read through the store: plaintext.
    let keys: Vec<String> = t
        .secrets("ep_1", now)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.key)
        .collect();
    assert_eq!(keys, ["whsec_c2Vjb25k", "whsec_Zmlyc3Q="]);
    let read = t.get_endpoint("app_1", "ep_1").await.unwrap().unwrap();
    assert_eq!(read.headers, ep.headers);
    assert_eq!(read.transformation, ep.transformation);
    let claimed = t
        .claim_due(now, now + Span::seconds(60), 10, &[])
        .await
        .unwrap();
    assert!(claimed.is_empty());
    // As stored: sealed, nothing readable.
    let raw = [
        stored(t, SealedColumn::EndpointSecret).await,
        stored(t, SealedColumn::EndpointHeaders).await,
        stored(t, SealedColumn::IdempotencyBody).await,
        stored(t, SealedColumn::TransformationVariables).await,
    ];
    assert_eq!(raw.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1, 1, 1]);
    for value in raw.iter().flatten() {
        assert!(value.starts_with("hrld1:"), "{value}");
        for secret in ["whsec_", "s3cret", "authorization", "apiKey"] {
            assert!(!value.contains(secret), "{value}");
        }
    }

    // A new key: what is sealed under the old one is re-sealed, once.
    let new = Keyring::new(b"the new encryption key", &[b"store tests' encryption key"]);
    let report = sealing::reseal(&**t, &new).await.unwrap();
    assert_eq!(
        report,
        sealing::ResealReport {
            secrets: 2,
            headers: 1,
            idempotency: 1,
            variables: 1,
        }
    );
    assert_eq!(sealing::reseal(&**t, &new).await.unwrap().total(), 0);
    assert_eq!(sealing::seal_all(&**t, &new).await.unwrap().total(), 0);
    for column in SealedColumn::ALL {
        assert!(t
            .read_sealed(column, new.current_id(), 10)
            .await
            .unwrap()
            .is_empty());
    }
    // This store still holds only the old key: it can no longer open them.
    assert!(matches!(
        t.secrets("ep_1", now).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        t.get_endpoint("app_1", "ep_1").await,
        Err(StoreError::Corrupt(_))
    ));
    // Without the key they were sealed with, re-sealing refuses to go on.
    let stranger = Keyring::new(b"a key that never sealed anything", &[]);
    let refused = sealing::reseal(&**t, &stranger).await.unwrap_err();
    assert!(
        refused.to_string().contains("HERALD_ENCRYPTION_KEY"),
        "{refused}"
    );
}

async fn plaintext_left_by_an_older_herald_is_sealed_once(t: &TestStore) {
    let now = now();
    t.create_app(&app("app_1", None, now)).await.unwrap();
    let ep = Endpoint {
        headers: BTreeMap::from([("x-api-key".into(), "k3y".into())]),
        ..endpoint("ep_1", now)
    };
    t.create_endpoint(&ep, "whsec_b2xk").await.unwrap();
    // Put the plaintext an older Herald wrote back in place.
    let ring = crate::test_keyring();
    for (column, plain) in [
        (SealedColumn::EndpointSecret, "whsec_b2xk".to_string()),
        (
            SealedColumn::EndpointHeaders,
            r#"{"x-api-key":"k3y"}"#.to_string(),
        ),
    ] {
        let sealed = stored(t, column).await.pop().unwrap();
        assert!(t
            .replace_sealed(column, "ep_1", sealed.as_bytes(), plain.as_bytes())
            .await
            .unwrap());
    }
    assert!(stored(t, SealedColumn::EndpointSecret).await[0].contains("whsec_b2xk"));
    // Plaintext still reads (nothing breaks between upgrade and sealing) ...
    assert_eq!(t.secrets("ep_1", now).await.unwrap()[0].key, "whsec_b2xk");
    // ... and opening with a keyring seals it, once.
    let report = sealing::seal_all(&**t, &ring).await.unwrap();
    assert_eq!((report.secrets, report.headers), (1, 1));
    assert_eq!(sealing::seal_all(&**t, &ring).await.unwrap().total(), 0);
    assert!(!stored(t, SealedColumn::EndpointSecret).await[0].contains("whsec_"));
    assert!(!stored(t, SealedColumn::EndpointHeaders).await[0].contains("k3y"));
    assert_eq!(t.secrets("ep_1", now).await.unwrap()[0].key, "whsec_b2xk");
    assert_eq!(
        t.get_endpoint("app_1", "ep_1")
            .await
            .unwrap()
            .unwrap()
            .headers,
        ep.headers
    );
}

async fn api_tokens_are_listed_and_revoked(t: &TestStore) {
    let now = now();
    let token = |id: &str, org: &str, at: Timestamp, expires: Option<Timestamp>| ApiToken {
        id: id.into(),
        org_id: org.into(),
        app_id: None,
        name: format!("{id} for {org}"),
        created_at: at,
        expires_at: expires,
        revoked_at: None,
    };
    let first = token("tok_1", "org_1", now - Span::seconds(2), None);
    let second = ApiToken {
        app_id: Some("app_1".into()),
        ..token(
            "tok_2",
            "org_2",
            now - Span::seconds(1),
            Some(now + Span::days(1)),
        )
    };
    let short = token("tok_3", "org_1", now, Some(now + Span::seconds(1)));
    for tok in [&first, &second, &short] {
        t.create_api_token(tok).await.unwrap();
    }
    let ids = |list: Vec<ApiToken>| list.into_iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(
        ids(t.list_api_tokens(None).await.unwrap()),
        ["tok_3", "tok_2", "tok_1"]
    );
    assert_eq!(
        ids(t.list_api_tokens(Some("org_1")).await.unwrap()),
        ["tok_3", "tok_1"]
    );
    assert_eq!(
        t.list_api_tokens(Some("org_2")).await.unwrap(),
        std::slice::from_ref(&second)
    );
    assert!(t.revoked_api_tokens(now).await.unwrap().is_empty());

    let revoked = t.revoke_api_token("tok_2", now).await.unwrap();
    assert_eq!(
        revoked,
        ApiToken {
            revoked_at: Some(now),
            ..second
        }
    );
    // Revoking again keeps the first time.
    let again = t
        .revoke_api_token("tok_2", now + Span::seconds(5))
        .await
        .unwrap();
    assert_eq!(again.revoked_at, Some(now));
    t.revoke_api_token("tok_3", now).await.unwrap();
    assert!(matches!(
        t.revoke_api_token("tok_404", now).await,
        Err(StoreError::NotFound)
    ));
    let mut list = t.revoked_api_tokens(now).await.unwrap();
    list.sort();
    assert_eq!(list, ["tok_2", "tok_3"]);
    // An expired token is refused anyway: it leaves the revoked list.
    assert_eq!(
        t.revoked_api_tokens(now + Span::seconds(2)).await.unwrap(),
        ["tok_2"]
    );
}

fn grant(id: &str, now: Timestamp) -> PortalGrant {
    PortalGrant {
        id: id.into(),
        org_id: "org_1".into(),
        app_id: Some("app_1".into()),
        read_only: true,
        session_id: Some("user_1".into()),
        created_at: now,
        link_expires_at: now + Span::seconds(60),
        expires_at: now + Span::hours(8),
        used_at: None,
        ended_at: None,
    }
}

async fn portal_links_open_once_and_their_sessions_end(t: &TestStore) {
    let now = now();
    t.create_portal_grant(&grant("pg_1", now)).await.unwrap();
    let used = t.use_portal_grant("pg_1", now).await.unwrap().unwrap();
    assert_eq!(
        used,
        PortalGrant {
            used_at: Some(now),
            ..grant("pg_1", now)
        }
    );
    assert!(used.session_active(now));
    assert_eq!(
        t.use_portal_grant("pg_1", now).await.unwrap(),
        None,
        "a link opens once"
    );
    assert_eq!(
        t.get_portal_grant("pg_1").await.unwrap(),
        Some(used.clone())
    );

    t.end_portal_grant("pg_1", now + Span::seconds(1))
        .await
        .unwrap();
    let ended = t.get_portal_grant("pg_1").await.unwrap().unwrap();
    assert_eq!(ended.ended_at, Some(now + Span::seconds(1)));
    assert!(!ended.session_active(now + Span::seconds(2)));
    assert!(
        !used.session_active(now + Span::hours(8)),
        "sessions end at expires_at"
    );
    assert!(matches!(
        t.end_portal_grant("pg_404", now).await,
        Err(StoreError::NotFound)
    ));

    // An expired link, and one ended before it was used, open nothing.
    t.create_portal_grant(&grant("pg_2", now)).await.unwrap();
    assert_eq!(
        t.use_portal_grant("pg_2", now + Span::seconds(60))
            .await
            .unwrap(),
        None
    );
    t.create_portal_grant(&grant("pg_3", now)).await.unwrap();
    t.end_portal_grant("pg_3", now).await.unwrap();
    assert_eq!(t.use_portal_grant("pg_3", now).await.unwrap(), None);

    // Of many concurrent uses of one link, exactly one opens it.
    t.create_portal_grant(&grant("pg_4", now)).await.unwrap();
    let tries = (0..8)
        .map(|_| {
            let store = t.store.clone();
            tokio::spawn(async move { store.use_portal_grant("pg_4", now).await.unwrap() })
        })
        .collect::<Vec<_>>();
    let mut opened = 0;
    for try_ in tries {
        opened += usize::from(try_.await.unwrap().is_some());
    }
    assert_eq!(opened, 1);
}

async fn idempotency_records_and_ended_grants_are_pruned(t: &TestStore) {
    let now = now();
    let day_ago = now - IDEMPOTENCY_RETENTION;
    t.idempotency_begin("s", "old", day_ago - Span::seconds(1))
        .await
        .unwrap();
    t.idempotency_finish("s", "old", 202, b"{}").await.unwrap();
    t.idempotency_begin("s", "new", day_ago + Span::seconds(5))
        .await
        .unwrap();
    t.idempotency_finish("s", "new", 202, b"{}").await.unwrap();
    t.create_portal_grant(&grant("pg_old", now - Span::hours(9)))
        .await
        .unwrap();
    t.create_portal_grant(&grant("pg_new", now)).await.unwrap();

    let report = t.prune(now, now - Span::days(90), 1000).await.unwrap();
    assert_eq!((report.idempotency, report.grants), (1, 1));
    assert!(matches!(
        t.idempotency_begin("s", "new", now).await.unwrap(),
        IdempotencyState::Done { status: 202, .. }
    ));
    assert_eq!(
        t.idempotency_begin("s", "old", now).await.unwrap(),
        IdempotencyState::New
    );
    assert_eq!(t.get_portal_grant("pg_old").await.unwrap(), None);
    assert!(t.get_portal_grant("pg_new").await.unwrap().is_some());
}

/// Each write that can find its key taken says which, as a typed reason whose
/// text is ours: no table, column or constraint of the database in it.
async fn conflicts_say_what_is_taken_in_words_of_their_own(t: &TestStore) {
    let now = now();
    seed(&**t, now).await;
    let conflict = |result: Result<()>| match result {
        Err(StoreError::Conflict(why)) => why,
        other => panic!("not a conflict: {other:?}"),
    };
    let mut seen = Vec::new();

    let other_app = app("app_2", Some("spot"), now);
    seen.push(conflict(t.create_app(&other_app).await));
    t.create_app(&app("app_2", None, now)).await.unwrap();
    seen.push(conflict(t.update_app(&other_app).await));

    let et = EventType {
        org_id: "org_1".into(),
        name: "a".into(),
        description: String::new(),
        archived: false,
        deprecated: false,
        feature_flag: None,
        schemas: None,
        public: false,
        validate_payload: false,
        created_at: now,
        updated_at: now,
    };
    t.create_event_type(&et).await.unwrap();
    seen.push(conflict(t.create_event_type(&et).await));

    let hook = |id: &str| Endpoint {
        uid: Some("hook".into()),
        ..endpoint(id, now)
    };
    t.create_endpoint(&hook("ep_2"), "whsec_a").await.unwrap();
    seen.push(conflict(t.create_endpoint(&hook("ep_3"), "whsec_a").await));
    t.create_endpoint(&endpoint("ep_3", now), "whsec_a")
        .await
        .unwrap();
    seen.push(conflict(t.update_endpoint(&hook("ep_3")).await));

    let dup = Message {
        event_id: Some("e1".into()),
        ..message("msg_3", "a", None, now)
    };
    seen.push(conflict(
        t.create_message(&dup, &Targets::Matching).await.map(drop),
    ));

    let token = ApiToken {
        id: "tok_1".into(),
        org_id: "org_1".into(),
        app_id: None,
        name: String::new(),
        created_at: now,
        expires_at: None,
        revoked_at: None,
    };
    t.create_api_token(&token).await.unwrap();
    seen.push(conflict(t.create_api_token(&token).await));
    t.create_portal_grant(&grant("pg_1", now)).await.unwrap();
    seen.push(conflict(t.create_portal_grant(&grant("pg_1", now)).await));

    assert_eq!(
        seen,
        [
            Conflict::ApplicationUid,
            Conflict::ApplicationUid,
            Conflict::EventTypeName,
            Conflict::EndpointUid,
            Conflict::EndpointUid,
            Conflict::MessageEventId("e1".into()),
            Conflict::TokenId,
            Conflict::GrantId,
        ]
    );
    for why in seen {
        let text = why.to_string();
        for database_word in [
            "UNIQUE",
            "unique",
            "constraint",
            "duplicate key",
            "_pkey",
            ".",
        ] {
            assert!(!text.contains(database_word), "{text}");
        }
    }
}

async fn transformations_and_filters_are_kept_and_skips_logged(t: &TestStore) {
    use herald_core::filter::{Op, Rule};
    let now = now();
    seed(&**t, now).await;
    let mut ep = t.get_endpoint("app_1", "ep_1").await.unwrap().unwrap();
    assert_eq!(ep.transformation, Transformation::default());
    assert!(ep.filters.is_empty());

    ep.transformation = Transformation {
        code: Some("function handler(webhook) { return webhook; }".into()),
        enabled: false,
        variables: BTreeMap::new(),
        updated_at: Some(now),
    };
    ep.filters = vec![
        Rule {
            field: "member.status".into(),
            op: Op::Equals,
            value: Some(serde_json::json!("active")),
        },
        Rule {
            field: "tags".into(),
            op: Op::Exists,
            value: None,
        },
    ];
    t.update_endpoint(&ep).await.unwrap();
    let read = t.get_endpoint("app_1", "ep_1").await.unwrap().unwrap();
    assert_eq!(read.transformation, ep.transformation);
    assert_eq!(
        read.transformation.active_code(),
        None,
        "kept while disabled"
    );
    assert_eq!(read.filters, ep.filters);

    // A skipped attempt finishes its delivery and says why.
    let job = t
        .claim_due(now, now + Span::seconds(60), 10, &[])
        .await
        .unwrap()
        .pop()
        .expect("the seeded delivery is due");
    let skipped = Attempt {
        request_headers: Vec::new(),
        response_headers: Vec::new(),
        status: MessageStatus::Success,
        response_status_code: 0,
        response: "filtered: member.status equals \"active\" does not hold".into(),
        skipped: Some(Skip::Filtered),
        ..attempt(now)
    };
    assert_eq!(job.msg_id, skipped.msg_id);
    t.record_attempt(&skipped, &Next::Done).await.unwrap();
    let logged = t
        .list_attempts_by_msg(
            "app_1",
            "msg_1",
            &ListFilter::default(),
            &page(10, None, false),
        )
        .await
        .unwrap();
    assert_eq!(logged.items.len(), 1);
    assert_eq!(logged.items[0].skipped, Some(Skip::Filtered));
    assert_eq!(logged.items[0].response, skipped.response);
    assert!(t
        .claim_due(now, now + Span::seconds(60), 10, &[])
        .await
        .unwrap()
        .is_empty());
}

async fn gauges_count_due_deliveries_and_endpoints_by_state(t: &TestStore) {
    let now = now();
    assert_eq!(t.gauges(now).await.unwrap(), Gauges::default());
    seed(&**t, now).await;
    t.create_endpoint(&endpoint("ep_2", now), "whsec_key")
        .await
        .unwrap();
    t.disable_endpoint("ep_2", DisabledBy::Failing, now)
        .await
        .unwrap();
    let mut ep_3 = endpoint("ep_3", now);
    ep_3.disabled = true;
    t.create_endpoint(&ep_3, "whsec_key").await.unwrap();
    let g = t.gauges(now).await.unwrap();
    assert_eq!(
        g,
        Gauges {
            due: 1,
            endpoints_active: 1,
            endpoints_failing: 0,
            endpoints_paused: 0,
            endpoints_disabled: 1,
            endpoints_auto_disabled: 1,
        }
    );
    // Not yet due a second before.
    assert_eq!(t.gauges(now - Span::seconds(1)).await.unwrap().due, 0);

    // Failures make ep_1 failing, since the first of them, counted; a
    // success ends the run; skipped attempts say nothing.
    let try_at = |n: i64, status, skipped| Attempt {
        request_headers: Vec::new(),
        response_headers: Vec::new(),
        id: format!("atmpt_h{n}"),
        status,
        skipped,
        ..attempt(now + Span::seconds(n))
    };
    for n in 1..=3 {
        t.record_attempt(&try_at(n, MessageStatus::Fail, None), &Next::RetryAt(now))
            .await
            .unwrap();
    }
    t.record_attempt(
        &try_at(4, MessageStatus::Success, Some(Skip::Filtered)),
        &Next::Done,
    )
    .await
    .unwrap();
    let ep = t.get_endpoint("app_1", "ep_1").await.unwrap().unwrap();
    assert_eq!(ep.state(), EndpointState::Failing);
    assert_eq!(ep.health.failing_since, Some(now + Span::seconds(1)));
    assert_eq!(ep.health.consecutive_failures, 3);
    assert_eq!(t.gauges(now).await.unwrap().endpoints_failing, 1);
    // A worker's breaker pauses it: paused until then, failing after.
    let until = now + Span::seconds(30);
    t.pause_endpoint("ep_1", until).await.unwrap();
    t.pause_endpoint("ep_1", now + Span::seconds(5))
        .await
        .unwrap();
    let ep = t.get_endpoint("app_1", "ep_1").await.unwrap().unwrap();
    assert_eq!(ep.health.paused_until, Some(until), "the latest pause wins");
    assert_eq!(ep.state_at(now), EndpointState::Paused);
    assert_eq!(ep.state_at(until), EndpointState::Failing);
    let g = t.gauges(now).await.unwrap();
    assert_eq!((g.endpoints_paused, g.endpoints_failing), (1, 0));
    t.record_attempt(&try_at(5, MessageStatus::Success, None), &Next::Done)
        .await
        .unwrap();
    let ep = t.get_endpoint("app_1", "ep_1").await.unwrap().unwrap();
    assert_eq!(
        (ep.state(), ep.health),
        (EndpointState::Active, Health::default())
    );
}

async fn send_slots_are_spaced_by_the_rate_and_a_slotted_delivery_keeps_its_slot(t: &TestStore) {
    let now = now();
    seed(&**t, now).await;
    let step = Duration::from_millis(200);
    let slots: Vec<Timestamp> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(t.reserve_slot("ep_1", step, now).await.unwrap().unwrap());
        }
        v
    };
    assert_eq!(
        slots,
        [
            now,
            now + Span::milliseconds(200),
            now + Span::milliseconds(400)
        ]
    );
    // Later, past the reserved slots: the next one is now.
    let later = now + Span::seconds(5);
    assert_eq!(
        t.reserve_slot("ep_1", step, later).await.unwrap(),
        Some(later)
    );
    assert_eq!(t.reserve_slot("ep_gone", step, later).await.unwrap(), None);
    // A 429 holds the slots back.
    t.hold_endpoint("ep_1", later + Span::seconds(10))
        .await
        .unwrap();
    assert_eq!(
        t.reserve_slot("ep_1", step, later).await.unwrap(),
        Some(later + Span::seconds(10))
    );

    // A delivery given back with a slot is claimed as slotted then, and its
    // attempt clears the mark.
    let lease = now + Span::seconds(60);
    let job = t
        .claim_due(now, lease, 10, &[])
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert!(!job.slotted);
    let slot = now + Span::seconds(2);
    t.release_claim("msg_1", "ep_1", lease, slot, true)
        .await
        .unwrap();
    assert!(t.claim_due(now, lease, 10, &[]).await.unwrap().is_empty());
    let job = t
        .claim_due(slot, slot + Span::seconds(60), 10, &[])
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert!(job.slotted);
    assert_eq!(job.due_at, slot);
    t.record_attempt(&attempt(slot), &Next::RetryAt(slot + Span::seconds(1)))
        .await
        .unwrap();
    let job = t
        .claim_due(slot + Span::seconds(1), slot + Span::seconds(61), 10, &[])
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert!(!job.slotted, "a retry reserves a slot of its own");
}

/// Two signing keys that parse (32 bytes each, base64).
const KEY_1: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwq2P0Sp2ftNI=";
const KEY_2: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD0cGfK+y6Yxs=";

async fn cached_reads_are_forgotten_by_the_stores_own_writes(t: &TestStore) {
    let now = now();
    let long = Duration::from_secs(3600);
    t.create_app(&app("app_1", Some("spot"), now))
        .await
        .unwrap();
    t.create_endpoint(&endpoint("ep_1", now), KEY_1)
        .await
        .unwrap();

    // An application, by id and by uid; a change through the store is seen
    // at once however long the caller allows.
    let read = t.cached_app("org_1", "spot", long).await.unwrap().unwrap();
    assert_eq!(read.name, "Spot");
    let mut renamed = read.clone();
    renamed.name = "Renamed".into();
    t.update_app(&renamed).await.unwrap();
    let read = t.cached_app("org_1", "spot", long).await.unwrap().unwrap();
    assert_eq!(read.name, "Renamed");
    // A missing one is kept as missing until one is created.
    assert!(t
        .cached_app("org_1", "later", long)
        .await
        .unwrap()
        .is_none());
    t.create_app(&app("app_2", Some("later"), now))
        .await
        .unwrap();
    assert!(t
        .cached_app("org_1", "later", long)
        .await
        .unwrap()
        .is_some());

    // Event types: the organisation's, by name.
    assert!(t
        .cached_event_types("org_1", long)
        .await
        .unwrap()
        .unwrap()
        .is_empty());
    let et = EventType {
        name: "member.created".into(),
        org_id: "org_1".into(),
        description: String::new(),
        archived: false,
        deprecated: false,
        schemas: None,
        feature_flag: None,
        public: true,
        validate_payload: false,
        created_at: now,
        updated_at: now,
    };
    t.create_event_type(&et).await.unwrap();
    let types = t.cached_event_types("org_1", long).await.unwrap().unwrap();
    assert!(types.contains_key("member.created"));
    t.delete_event_type("org_1", "member.created")
        .await
        .unwrap();
    let types = t.cached_event_types("org_1", long).await.unwrap().unwrap();
    assert!(types.is_empty());

    // An endpoint with its keys: an edit, a rotation, a disable and a delete
    // are each seen by the next read.
    let d = t.destination("app_1", "ep_1", long).await.unwrap().unwrap();
    assert_eq!(d.endpoint.url, "https://example.com/");
    assert_eq!(d.secrets.len(), 1);
    // Only within its application.
    assert!(t
        .destination("app_2", "ep_1", long)
        .await
        .unwrap()
        .is_none());
    let mut moved = d.endpoint.clone();
    moved.url = "https://example.org/moved".into();
    t.update_endpoint(&moved).await.unwrap();
    let d = t.destination("app_1", "ep_1", long).await.unwrap().unwrap();
    assert_eq!(d.endpoint.url, "https://example.org/moved");
    t.rotate_secret("ep_1", KEY_2, now + Span::hours(1), now)
        .await
        .unwrap();
    let d = t.destination("app_1", "ep_1", long).await.unwrap().unwrap();
    assert_eq!(
        d.secrets.len(),
        2,
        "the new key and the old one until it expires"
    );
    t.disable_endpoint("ep_1", DisabledBy::Gone, now)
        .await
        .unwrap();
    let d = t.destination("app_1", "ep_1", long).await.unwrap().unwrap();
    assert!(d.endpoint.disabled);
    t.delete_endpoint("app_1", "ep_1").await.unwrap();
    assert!(t
        .destination("app_1", "ep_1", long)
        .await
        .unwrap()
        .is_none());

    // Within the allowed age a read is answered from the cache: a write the
    // store did not make (another node's) is not seen until it is older.
    t.create_endpoint(&endpoint("ep_3", now), KEY_1)
        .await
        .unwrap();
    let d = t.destination("app_1", "ep_3", long).await.unwrap().unwrap();
    assert!(!d.endpoint.disabled);
    t.other_node_disables("ep_3").await;
    let d = t.destination("app_1", "ep_3", long).await.unwrap().unwrap();
    assert!(!d.endpoint.disabled, "answered from the cache");
    let d = t
        .destination("app_1", "ep_3", Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert!(d.endpoint.disabled, "read afresh");
}

async fn messages_keep_tags_and_lists_filter_by_them(t: &TestStore) {
    let now = now();
    t.create_app(&app("app_1", None, now)).await.unwrap();
    t.create_endpoint(&endpoint("ep_1", now), "whsec_key")
        .await
        .unwrap();
    let later = now + Span::hours(1);
    let tagged = Message {
        tags: Some(vec!["team/red".into(), "#launch".into()]),
        deliver_at: Some(later),
        ..message("msg_1", "a", None, now)
    };
    let untagged = message("msg_2", "a", None, now);
    let other = Message {
        tags: Some(vec!["team/blue".into()]),
        ..message("msg_3", "a", None, now)
    };
    for msg in [&tagged, &untagged, &other] {
        t.create_message(msg, &Targets::Matching).await.unwrap();
    }
    let read = t.get_message("app_1", "msg_1").await.unwrap().unwrap();
    assert_eq!(read.tags, tagged.tags);
    assert_eq!(read.deliver_at, Some(later));
    let read = t.get_message("app_1", "msg_2").await.unwrap().unwrap();
    assert_eq!((read.tags, read.deliver_at), (None, None));

    let by_tag = |tag: &str| ListFilter {
        tag: Some(tag.into()),
        ..ListFilter::default()
    };
    let ids = |items: Vec<Message>| items.into_iter().map(|m| m.id).collect::<Vec<_>>();
    let page = page(10, None, false);
    for (tag, want) in [
        ("team/red", vec!["msg_1"]),
        ("#launch", vec!["msg_1"]),
        ("team/blue", vec!["msg_3"]),
        ("team", vec![]),
    ] {
        let listed = t.list_messages("app_1", &by_tag(tag), &page).await.unwrap();
        assert_eq!(ids(listed.items), want, "{tag}");
        let listed = t
            .list_attempted_messages("app_1", "ep_1", &by_tag(tag), &page)
            .await
            .unwrap();
        let got: Vec<_> = listed.items.into_iter().map(|(m, _)| m.id).collect();
        assert_eq!(got, want, "{tag}, to the endpoint");
    }
}

async fn missing_messages_are_replayed_and_all_contents_expunged(t: &TestStore) {
    let now = now();
    t.create_app(&app("app_1", None, now)).await.unwrap();
    t.create_endpoint(&endpoint("ep_1", now), "whsec_key")
        .await
        .unwrap();
    for (id, event_type) in [("msg_1", "a"), ("msg_2", "b"), ("msg_3", "a")] {
        let msg = Message {
            payload: r#"{"n":1}"#.into(),
            ..message(id, event_type, None, now)
        };
        t.create_message(&msg, &Targets::Matching).await.unwrap();
    }
    // Added later, for type "a" only: it never got any of them.
    let late = Endpoint {
        event_types: Some(vec!["a".into()]),
        ..endpoint("ep_2", now)
    };
    t.create_endpoint(&late, "whsec_key").await.unwrap();
    // One of them was resent to it already: not replayed again.
    t.resend("app_1", "msg_3", "ep_2", now).await.unwrap();

    let since = now - Span::hours(1);
    let replay = |ep: &'static str, since, until| t.replay_missing("app_1", ep, since, until, now);
    assert_eq!(replay("ep_2", since, None).await.unwrap(), 1, "msg_1 only");
    assert_eq!(
        replay("ep_2", since, None).await.unwrap(),
        0,
        "nothing missing now"
    );
    assert_eq!(
        replay("ep_1", since, None).await.unwrap(),
        0,
        "ep_1 got them all"
    );
    let destinations = t
        .list_attempted_destinations("app_1", "msg_1", &page(10, None, false))
        .await
        .unwrap();
    let ep_2 = destinations
        .items
        .iter()
        .find(|(ep, _)| ep.id == "ep_2")
        .map(|(_, d)| d)
        .expect("a delivery of msg_1 to ep_2");
    assert_eq!(ep_2.status, MessageStatus::Pending);
    // A window that holds none of them; an endpoint of another application.
    let ep_3 = endpoint("ep_3", now);
    t.create_endpoint(&ep_3, "whsec_key").await.unwrap();
    assert_eq!(
        replay("ep_3", now + Span::seconds(1), None).await.unwrap(),
        0
    );
    assert_eq!(replay("ep_3", since, Some(since)).await.unwrap(), 0);
    assert!(matches!(
        t.replay_missing("app_2", "ep_3", since, None, now).await,
        Err(StoreError::NotFound)
    ));

    assert_eq!(t.expunge_all_contents("app_1").await.unwrap(), 3);
    assert_eq!(t.expunge_all_contents("app_1").await.unwrap(), 0);
    let msg = t.get_message("app_1", "msg_2").await.unwrap().unwrap();
    assert_eq!(msg.payload, EXPUNGED_PAYLOAD);
}

async fn bulk_replay_queues_again_what_its_filter_takes(t: &TestStore) {
    let now = now();
    t.create_app(&app("app_1", None, now)).await.unwrap();
    t.create_endpoint(&endpoint("ep_1", now), "whsec_key")
        .await
        .unwrap();
    let failed = Message {
        tags: Some(vec!["t1".into()]),
        ..message("msg_1", "a", None, now)
    };
    let delivered = message("msg_2", "b", None, now);
    for msg in [&failed, &delivered] {
        t.create_message(msg, &Targets::Matching).await.unwrap();
    }
    // msg_1 failed for good with a 500; msg_2 was delivered.
    t.record_attempt(&attempt(now), &Next::GiveUp)
        .await
        .unwrap();
    let ok = Attempt {
        request_headers: Vec::new(),
        response_headers: Vec::new(),
        id: "atmpt_2".into(),
        msg_id: "msg_2".into(),
        status: MessageStatus::Success,
        response_status_code: 200,
        ..attempt(now)
    };
    t.record_attempt(&ok, &Next::Done).await.unwrap();

    let since = now - Span::hours(1);
    let replay = |filter: ListFilter| async move {
        t.bulk_replay("app_1", "ep_1", since, None, &filter, now)
            .await
            .unwrap()
    };
    let status_of = |msg: &'static str| async move {
        let page = page(10, None, false);
        let listed = t.list_attempted_destinations("app_1", msg, &page).await;
        listed.unwrap().items[0].1.status
    };
    let by_status = ListFilter {
        status: Some(MessageStatus::Success),
        ..ListFilter::default()
    };
    assert_eq!(replay(by_status).await, 1, "the delivered one only");
    assert_eq!(status_of("msg_2").await, MessageStatus::Pending);
    assert_eq!(status_of("msg_1").await, MessageStatus::Fail);
    let by_class = ListFilter {
        status_code_class: Some(500),
        ..ListFilter::default()
    };
    assert_eq!(replay(by_class).await, 1, "the one answered 500");
    assert_eq!(status_of("msg_1").await, MessageStatus::Pending);
    let by_tag = ListFilter {
        tag: Some("t1".into()),
        ..ListFilter::default()
    };
    assert_eq!(replay(by_tag).await, 1);
    let by_type = ListFilter {
        event_types: vec!["b".into()],
        ..ListFilter::default()
    };
    assert_eq!(replay(by_type).await, 1);
    let window = t
        .bulk_replay(
            "app_1",
            "ep_1",
            now + Span::seconds(1),
            None,
            &ListFilter::default(),
            now,
        )
        .await
        .unwrap();
    assert_eq!(window, 0, "a window after both");
    // One in flight is left to finish.
    let claimed = t.claim_delivery("msg_1", "ep_1", now, now + Span::seconds(60));
    assert!(claimed.await.unwrap().is_some());
    assert_eq!(replay(ListFilter::default()).await, 1, "msg_2 only");
}
