//! The shared store. Several Herald nodes may use one database: workers claim
//! due deliveries with `FOR UPDATE SKIP LOCKED`, so no two claim the same one,
//! and a new message wakes idle workers on every node through NOTIFY.
//!
//! The SQL is the shared layer's (`crate::sql`), as for SQLite (timestamps are
//! UNIX milliseconds, JSON is TEXT); this module connects and migrates, claims
//! in one statement, and listens for new work. New messages and attempt
//! outcomes go through the shared group commit (`sql/batch.rs`) with several
//! writer tasks, since PostgreSQL commits concurrently: one transaction and
//! one NOTIFY per batch.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, Postgres};
use tokio::time::Instant;

use crate::codec::db_err;
use crate::model::*;
use crate::sql::{
    row_job, Backend, Batcher, Claim, ClaimTexts, Sql, SqlStore, JOB_COLUMNS, JOB_JOINS,
    WORK_CHANNEL,
};
use crate::{Keyring, Result, StoreError};

/// Knobs of the shared store.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// The size of the query pool (the NOTIFY listener has a connection of its
    /// own on top).
    pub max_connections: u32,
    /// Run pending migrations when the store opens. Off when a separate
    /// `migrate` step owns the schema.
    pub run_migrations: bool,
    /// Group-commit writer tasks (at least one), each writing one batch at a
    /// time on a connection of the pool: while one waits for its commit,
    /// another writes what queued meanwhile.
    pub batch_writers: usize,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 10,
            run_migrations: true,
            batch_writers: 2,
        }
    }
}

/// The store on a PostgreSQL database.
pub type PostgresStore = SqlStore<Postgres>;

/// Where `wait_for_work` listens for other nodes' NOTIFY.
pub struct Listener {
    /// LISTEN holds its connection for as long as it listens, so the listener
    /// takes it from a pool of its own and the query pool keeps its full size.
    pool: PgPool,
    /// One long-lived listener, made on first use and dropped after an error
    /// (the next wait makes a new one). Waiters take turns.
    current: tokio::sync::Mutex<Option<PgListener>>,
}

const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

impl SqlStore<Postgres> {
    /// Connects to the database a `postgres://` URL names and, unless told not
    /// to, runs migrations.
    pub async fn open(
        url: &str,
        options: &PostgresOptions,
        keyring: Arc<Keyring>,
    ) -> Result<PostgresStore> {
        let connect = PgConnectOptions::from_str(url).map_err(db_err)?;
        // A short acquire timeout: while the database is away, requests fail
        // fast with Unavailable (503) instead of hanging.
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(connect.clone())
            .await
            .map_err(db_err)?;
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(connect);
        let batch = Batcher::start(pool.clone(), options.batch_writers);
        let store = SqlStore {
            reader: pool.clone(),
            writer: pool,
            keyring,
            batch,
            cache: Default::default(),
            backend: Listener {
                pool: listen_pool,
                current: tokio::sync::Mutex::new(None),
            },
        };
        if options.run_migrations {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Brings the schema up to date. Nodes starting together are safe: sqlx
    /// holds an advisory lock while it migrates.
    pub async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.writer)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))
    }

    async fn listen(&self) -> std::result::Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.backend.pool).await?;
        listener.listen(WORK_CHANNEL).await?;
        Ok(listener)
    }
}

/// Claims the rows of a `due` CTE (locked `FOR UPDATE SKIP LOCKED`, with their
/// `next_attempt_at`) and returns everything needed to send them, in the order
/// they fell due. `lease`, `now` and `sending` name the caller's placeholders.
///
/// A claimed delivery's next attempt is its lease's end: if this worker dies,
/// the delivery falls due again by itself, and one index on next_attempt_at
/// finds both new and abandoned work.
fn claimed_jobs(lease: &str, now: &str, sending: &str) -> String {
    format!(
        ", claimed AS (
             UPDATE delivery d SET status = {sending}, lease_until = {lease},
                 next_attempt_at = {lease}, updated_at = {now}
             FROM due WHERE d.msg_id = due.msg_id AND d.endpoint_id = due.endpoint_id
             RETURNING d.msg_id, d.endpoint_id, d.attempts, d.manual, d.slotted,
                 due.next_attempt_at AS next_attempt_at)
         SELECT {JOB_COLUMNS}
         FROM claimed d {JOB_JOINS}
         ORDER BY d.next_attempt_at, d.msg_id, d.endpoint_id"
    )
}

/// What the claim's `due` CTE selects of the due deliveries.
const DUE_COLUMNS: &str = "msg_id, endpoint_id, next_attempt_at";

#[async_trait]
impl Backend for Postgres {
    type Extra = Listener;

    async fn claim(store: &PostgresStore, claim: Claim<'_>) -> Result<Vec<Job>> {
        // One statement: the rows it locks are the rows it claims, and rows other
        // nodes are claiming at the same moment are skipped, not waited for.
        // Each kind of claim's text is built once.
        static TEXTS: ClaimTexts = ClaimTexts::new();
        let sql = TEXTS.get(&claim, || {
            let n = claim.params();
            let (lease, sending) = (format!("${}", n + 1), format!("${}", n + 2));
            format!(
                "WITH due AS ({}){}",
                claim.rows::<Postgres>(DUE_COLUMNS),
                claimed_jobs(&lease, "$1", &sending)
            )
        });
        claim
            .bind(Sql::new(sql))
            .bind(claim.lease_until)
            .bind(MessageStatus::Sending)
            .fetch_all_as(&store.writer, row_job)
            .await
    }

    /// Other nodes may hold leases right now; an expired lease falls due by
    /// itself (claiming sets next_attempt_at to the lease's end).
    async fn recover_after_restart(_store: &PostgresStore) -> Result<u64> {
        Ok(0)
    }

    async fn wait_for_work(store: &PostgresStore, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        // Waiters take turns; one that cannot get the listener in time just
        // times out, which is all a wait promises.
        let Ok(mut slot) = tokio::time::timeout_at(deadline, store.backend.current.lock()).await
        else {
            return;
        };
        if slot.is_none() {
            match tokio::time::timeout_at(deadline, store.listen()).await {
                Ok(Ok(listener)) => *slot = Some(listener),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot LISTEN for new work; polling instead");
                    tokio::time::sleep_until(deadline).await;
                    return;
                }
                Err(_) => return,
            }
        }
        let listener = slot.as_mut().expect("the listener was just made");
        match tokio::time::timeout_at(deadline, listener.try_recv()).await {
            Err(_) => {}
            Ok(Ok(Some(_))) => {
                // One wake-up is enough for a burst of messages: take the
                // notifications that already arrived too, without waiting.
                for _ in 0..1000 {
                    match tokio::time::timeout(Duration::ZERO, listener.try_recv()).await {
                        Ok(Ok(Some(_))) => {}
                        Ok(Err(_)) => {
                            *slot = None;
                            break;
                        }
                        _ => break,
                    }
                }
            }
            // The connection was lost and made again; work queued meanwhile went
            // unannounced, so the caller should look now.
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "LISTEN connection failed; polling until the next wait");
                *slot = None;
                tokio::time::sleep_until(deadline).await;
            }
        }
    }
}

/// The queries behind the lists, the claim and pruning must walk an index, not
/// the table: these grow without bound. With sequential scans priced out, an
/// empty table shows whether an index *can* serve each query.
#[cfg(test)]
mod index_tests {
    use super::*;
    use crate::sql::explained::{statements, Inputs};
    use crate::sql::Columns;

    /// The plan of `sql`, with sequential scans and sorts priced out for this
    /// transaction only. On an empty table the planner would otherwise pick
    /// either as cheapest; priced out, one still in the plan means no index can
    /// serve the filter or the order.
    async fn plan_of(store: &PostgresStore, sql: Sql<'_>) -> String {
        let mut tx = store.begin().await.unwrap();
        for setting in ["enable_seqscan", "enable_sort"] {
            Sql::new(format!("SET LOCAL {setting} = off"))
                .execute(&mut tx)
                .await
                .unwrap();
        }
        let rows = sql.prefixed("EXPLAIN ").fetch_all(&mut tx).await.unwrap();
        tx.rollback().await.unwrap();
        rows.iter()
            .map(|r| r.text("QUERY PLAN").unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn assert_indexed(what: &str, plan: &str) {
        assert!(plan.contains("Index"), "{what}: no index scan:\n{plan}");
        assert!(!plan.contains("Seq Scan"), "{what}: a full scan:\n{plan}");
        assert!(
            !plan.contains("Sort"),
            "{what}: sorts instead of reading in index order:\n{plan}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lists_claims_and_pruning_use_indexes() {
        let database = crate::tests::create_database().await;
        let url = database.url.clone();
        let options = PostgresOptions {
            max_connections: 2,
            ..PostgresOptions::default()
        };
        let store = PostgresStore::open(&url, &options, crate::test_keyring())
            .await
            .unwrap();
        let inputs = Inputs::default();
        for statement in statements::<Postgres>(DUE_COLUMNS, &inputs) {
            let what = statement.what;
            let plan = plan_of(&store, statement.sql).await;
            assert_indexed(what, &plan);
            if let Some(index) = statement.index {
                assert!(plan.contains(index), "{what}: {plan}");
            }
        }
        drop(store);
        drop(database);
    }
}
