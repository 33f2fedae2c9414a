//! The embedded store. SQLite allows one writer at a time, so writes go through a
//! pool of exactly one connection (no `SQLITE_BUSY` between our own writers) and
//! reads through a separate pool that WAL lets run beside the writer.
//!
//! The SQL is the shared layer's (`crate::sql`); this module opens the file,
//! with group commit of the hot writes (`sql/batch.rs`), and does what only
//! SQLite does: claims inside the single writer, and clearing leases at
//! start-up (one process owns the file).

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, Transaction};

use crate::codec::db_err;
use crate::model::*;
use crate::sql::{
    commit, row_job, Backend, Batcher, Claim, ClaimTexts, Columns, Sql, SqlStore, JOB_COLUMNS,
    JOB_JOINS,
};
use crate::{Keyring, Result, StoreError};

/// Knobs of the embedded store.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// `FULL` survives power loss; `NORMAL` (the default) survives a crash of the
    /// process, which is what a 2xx promises, and is much faster in WAL mode.
    pub synchronous_full: bool,
    pub read_connections: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous_full: false,
            read_connections: 4,
        }
    }
}

/// The store on a SQLite file.
pub type SqliteStore = SqlStore<Sqlite>;

impl SqlStore<Sqlite> {
    /// Opens (creating if missing) the database file and runs migrations;
    /// secrets are sealed and opened with `keyring`.
    pub async fn open(
        path: &str,
        options: &SqliteOptions,
        keyring: Arc<Keyring>,
    ) -> Result<SqliteStore> {
        if let Some(dir) = Path::new(path).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
        }
        private_file(Path::new(path.split('?').next().unwrap_or(path)))?;
        let connect = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .map_err(db_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if options.synchronous_full {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(connect.clone())
            .await
            .map_err(db_err)?;
        // Another process may be migrating the same file right now (a
        // `herald token create` beside a starting `serve`); SQLite's migrator
        // takes no lock, so the loser sees a half-applied state once. It
        // retries after the winner's transaction is done, and then finds the
        // migrations applied.
        let mut tries = 0;
        loop {
            match sqlx::migrate!("./migrations/sqlite").run(&writer).await {
                Ok(()) => break,
                Err(_) if tries < 5 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100 * tries)).await;
                }
                Err(e) => return Err(StoreError::Unavailable(format!("migration failed: {e}"))),
            }
        }
        let reader = SqlitePoolOptions::new()
            .max_connections(options.read_connections.max(1))
            .connect_with(connect.read_only(true))
            .await
            .map_err(db_err)?;
        // One writer task: SQLite has one writer connection.
        let batch = Batcher::start(writer.clone(), 1);
        Ok(SqlStore {
            reader,
            writer,
            keyring,
            batch,
            cache: Default::default(),
            backend: (),
        })
    }
}

/// Leases the deliveries with these rowids until `lease_until`. A claimed
/// delivery's next attempt is its lease's end: if this worker dies, the
/// delivery falls due again by itself, and one index on `next_attempt_at`
/// finds both new and abandoned work.
async fn lease(
    tx: &mut Transaction<'_, Sqlite>,
    rowids: &[i64],
    lease_until: Timestamp,
    now: Timestamp,
) -> Result<()> {
    Sql::new(
        "UPDATE delivery SET status = $1, lease_until = $2, next_attempt_at = $2, updated_at = $3
         WHERE rowid IN (SELECT value FROM json_each($4))",
    )
    .bind(MessageStatus::Sending)
    .bind(lease_until)
    .bind(now)
    .bind(serde_json::to_string(rowids).expect("integers serialize"))
    .execute(tx)
    .await?;
    Ok(())
}

#[async_trait]
impl Backend for Sqlite {
    type Extra = ();

    async fn claim(store: &SqliteStore, claim: Claim<'_>) -> Result<Vec<Job>> {
        // Two statements whatever the batch size (the writer is single, so
        // nothing else moves between them): read the claimed deliveries with
        // all they need, then lease them. Each kind of claim's text is built
        // once.
        static TEXTS: ClaimTexts = ClaimTexts::new();
        let select = TEXTS.get(&claim, || {
            format!(
                "SELECT d.rowid AS rid, {JOB_COLUMNS} FROM delivery d {JOB_JOINS}
                 WHERE d.rowid IN ({})",
                claim.rows::<Sqlite>("rowid")
            )
        });
        let mut tx = store.begin().await?;
        let rows = claim.bind(Sql::new(select)).fetch_all(&mut tx).await?;
        let rowids = rows
            .iter()
            .map(|r| r.int("rid"))
            .collect::<Result<Vec<_>>>()?;
        if !rowids.is_empty() {
            lease(&mut tx, &rowids, claim.lease_until, claim.now).await?;
        }
        let jobs = rows.iter().map(row_job).collect::<Result<Vec<_>>>()?;
        commit(tx).await?;
        Ok(jobs)
    }

    /// One process owns the file, so every lease is this process's own, from
    /// before it restarted: the cut-off deliveries are due at once.
    async fn recover_after_restart(store: &SqliteStore) -> Result<u64> {
        Sql::new(
            "UPDATE delivery SET lease_until = NULL,
                 status = CASE WHEN attempts > 0 THEN $3 ELSE $1 END, next_attempt_at = $2
             WHERE lease_until IS NOT NULL AND next_attempt_at IS NOT NULL",
        )
        .bind(MessageStatus::Pending)
        .bind(Utc::now())
        .bind(MessageStatus::Sending)
        .execute(&store.writer)
        .await
    }

    /// No other process writes: this one wakes its own worker.
    async fn wait_for_work(_store: &SqliteStore, timeout: Duration) {
        tokio::time::sleep(timeout).await;
    }
}

/// Creates the database file readable by its owner only (SQLite gives its
/// `-wal` and `-shm` files the same mode), and takes away what others could
/// read of one an older Herald created.
#[cfg(unix)]
fn private_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |e: std::io::Error| StoreError::Unavailable(format!("{}: {e}", path.display()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700))
                .map_err(io)?;
            tracing::warn!(file = %file.display(), "the database file was readable by others; it is now readable by its owner only");
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn private_file(_path: &Path) -> Result<()> {
    Ok(())
}

/// The queries behind the lists, the claim and pruning must walk an index, not
/// the table: these grow without bound, and a full scan per page or per claim
/// would slow Herald down as its history grows.
#[cfg(test)]
mod index_tests {
    use super::*;
    use crate::sql::explained::{statements, Inputs, CLAIM};

    async fn open() -> (SqliteStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(
            path.to_str().unwrap(),
            &SqliteOptions::default(),
            crate::test_keyring(),
        )
        .await
        .unwrap();
        (store, dir)
    }

    /// The plan SQLite reports for `sql`, one step a line.
    async fn plan_of(store: &SqliteStore, sql: Sql<'_>) -> String {
        let rows = sql
            .prefixed("EXPLAIN QUERY PLAN ")
            .fetch_all(&store.reader)
            .await
            .unwrap();
        rows.iter()
            .map(|r| r.text("detail").unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// An index is searched, no table of ours is scanned (SQLite names a table
    /// by its alias when it has one), and no sort is needed for the order.
    fn assert_indexed(what: &str, plan: &str) {
        assert!(
            plan.contains("USING INDEX") || plan.contains("USING COVERING INDEX"),
            "{what}: no index in the plan:\n{plan}"
        );
        for line in plan.lines() {
            let scanned = line.strip_prefix("SCAN ").unwrap_or_default();
            let table = scanned.split_whitespace().next().unwrap_or_default();
            assert!(
                !["message", "attempt", "delivery", "m", "a", "d"].contains(&table)
                    && !line.contains("SCAN TABLE"),
                "{what}: a full scan:\n{plan}"
            );
        }
        assert!(
            !plan.contains("TEMP B-TREE"),
            "{what}: sorts instead of reading in index order:\n{plan}"
        );
    }

    #[tokio::test]
    async fn lists_claims_and_pruning_use_indexes() {
        let (store, _dir) = open().await;
        let inputs = Inputs::default();
        for statement in statements::<Sqlite>("rowid", &inputs) {
            let what = statement.what;
            let plan = plan_of(&store, statement.sql).await;
            assert_indexed(what, &plan);
            if let Some(index) = statement.index {
                assert!(plan.contains(index), "{what}: {plan}");
            }
            // Skipping a busy endpoint's due rows reads only the index.
            if what == CLAIM {
                assert!(plan.contains("COVERING INDEX delivery_due"), "{plan}");
            }
        }
    }
}
