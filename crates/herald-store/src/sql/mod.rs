//! The one SQL layer: every query, list builder, row mapping and write of the
//! store, written once and generic over the database.
//!
//! [`SqlStore<DB>`] implements [`Store`](crate::Store) for any `DB: Backend`.
//! What differs in SQL text lives in [`Dialect`] (`dialect.rs`, both impls side
//! by side); what differs in behaviour — how claims lock and lease, leases at
//! start-up, waiting for work — is a [`Backend`] hook that `sqlite/` and
//! `postgres/` implement, besides opening their database. Those two modules
//! import this one; nothing here imports them.
//!
//! Layout: `run.rs` (statements, bound values, rows read with `try_get`, and
//! sqlx's bounds, met once), `rows.rs` (records from rows), `lists.rs`
//! (pagination and the list queries the index tests EXPLAIN), `resources.rs`
//! (applications, event types, endpoints), `cached.rs` (the reads kept in
//! the store's `Cache`), `queue.rs` (messages, deliveries,
//! attempts, claims), `replay.rs` (work queued again: recover, resend,
//! replay-missing), `batch.rs` (group commit), `credentials.rs` (tokens,
//! portal grants, idempotency keys), `upkeep.rs` (pruning, re-sealing,
//! `herald_meta`), `store.rs` (the `Store` impl, which only lists them) and
//! `explained.rs` (the statements the index tests EXPLAIN).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::{Pool, Transaction};

use crate::cache::Cache;
use crate::model::{Job, Page, PageOf};
use crate::{Keyring, Result};

mod batch;
mod cached;
mod credentials;
mod dialect;
#[cfg(test)]
pub mod explained;
mod lists;
mod log;
mod queue;
mod replay;
mod resources;
mod rows;
mod run;
mod store;
mod upkeep;

pub use batch::Batcher;
pub use dialect::{Dialect, WORK_CHANNEL};
pub use queue::{Claim, ClaimTexts, Claiming, JOB_COLUMNS, JOB_JOINS};
pub use rows::job as row_job;
pub use run::{Columns, Run, Sql};

/// The store on one database. For PostgreSQL `reader` and `writer` are the
/// same pool; SQLite reads through a pool of read-only connections beside its
/// one writer (WAL), so no read waits for a write.
pub struct SqlStore<DB: Backend> {
    pub(crate) reader: Pool<DB>,
    pub(crate) writer: Pool<DB>,
    /// Seals and opens the secrets this store keeps.
    pub(crate) keyring: Arc<Keyring>,
    /// Group commit of new messages and attempt outcomes.
    pub(crate) batch: Batcher,
    /// The reads the hot paths repeat, forgotten by this store's writes.
    pub(crate) cache: Cache,
    /// What the backend keeps besides (PostgreSQL's listener).
    pub(crate) backend: DB::Extra,
}

/// What each database does its own way, beyond SQL text: the hooks the shared
/// layer calls. Implemented by `sqlite/` and `postgres/`.
#[async_trait]
pub trait Backend: Dialect + Run {
    /// What the store keeps beside its pools.
    type Extra: Send + Sync + 'static;

    /// Claims deliveries, in the order they fell due: SQLite reads and
    /// leases them with two statements inside its single writer; PostgreSQL
    /// locks and leases them in one statement, skipping rows other nodes
    /// hold.
    async fn claim(store: &SqlStore<Self>, claim: Claim<'_>) -> Result<Vec<Job>>;

    /// See [`Store::recover_after_restart`](crate::Store::recover_after_restart).
    async fn recover_after_restart(store: &SqlStore<Self>) -> Result<u64>;

    /// See [`Store::wait_for_work`](crate::Store::wait_for_work).
    async fn wait_for_work(store: &SqlStore<Self>, timeout: Duration);
}

impl<DB: Backend> SqlStore<DB> {
    /// Runs a statement that queues work. Where other processes must be told
    /// (PostgreSQL's NOTIFY), the statement and the notice share a
    /// transaction, so the notice goes out when the work is visible.
    pub(crate) async fn queue_work(&self, sql: Sql<'_>) -> Result<u64> {
        if DB::NOTIFY_WORK.is_none() {
            return sql.execute(&self.writer).await;
        }
        let mut tx = self.begin().await?;
        let queued = sql.execute(&mut tx).await?;
        if queued > 0 {
            queue::notify_work(&mut tx).await?;
        }
        commit(tx).await?;
        Ok(queued)
    }

    /// A page of the list `sql` selects (with one row more than the page, see
    /// [`paginate`](lists::paginate)), read with `read`.
    pub(crate) async fn page<T>(
        &self,
        sql: Sql<'_>,
        page: &Page,
        read: impl Fn(&DB::Row) -> Result<T> + Send,
    ) -> Result<PageOf<T>> {
        let items = sql.fetch_all_as(&self.reader, read).await?;
        Ok(page_of(items, page))
    }

    pub(crate) async fn begin(&self) -> Result<Transaction<'static, DB>> {
        self.writer.begin().await.map_err(crate::codec::db_err)
    }
}

pub(crate) async fn commit<DB: Run>(tx: Transaction<'_, DB>) -> Result<()> {
    tx.commit().await.map_err(crate::codec::db_err)
}

/// The one row of `table` in the scope `$1` whose id, or else whose `alt`
/// column, is `$2`: an id wins over another row's uid that equals it.
pub(crate) fn by_id_or(table: &str, scope: &str, alt: &str) -> String {
    format!(
        "SELECT * FROM {table} WHERE {scope} = $1 AND (id = $2 OR {alt} = $2)
         ORDER BY id = $2 DESC LIMIT 1"
    )
}

/// A page of a list read with one row more than asked, so that `done` says
/// whether more follow (on a page back: whether more come before it). A page
/// back was read from its iterator backwards: it is turned to the list's
/// order.
fn page_of<T>(mut items: Vec<T>, page: &Page) -> PageOf<T> {
    let done = items.len() <= page.limit as usize;
    items.truncate(page.limit as usize);
    if page.backwards {
        items.reverse();
    }
    PageOf { items, done }
}
