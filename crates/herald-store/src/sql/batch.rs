//! Group commit for the two writes on the hot path: new messages (with their
//! deliveries) and attempt outcomes, on both backends.
//!
//! Every statement is a round trip (to sqlx's SQLite worker thread, or over
//! the wire to PostgreSQL) and every transaction a commit, and those, not the
//! database's work on a row, were most of the cost of a message (see the
//! README's Performance section). So callers queue their write here and a
//! writer task writes whatever has queued meanwhile in one transaction, with
//! one multi-row statement per table and, where other processes must hear of
//! new work, one NOTIFY: a handful of round trips for the whole batch instead
//! of several per message. Each caller is answered only after the commit, so
//! a 2xx still means "committed"; a batch that fails is written again one
//! write at a time, so one bad write fails only its caller.
//!
//! SQLite has one writer task (it has one writer connection). PostgreSQL
//! commits concurrently, so it may have several: while one waits for its
//! commit, the next collects and writes the writes that queued meanwhile.
//! They take turns at the queue, so each write is in exactly one batch.

use std::sync::Arc;

use sqlx::Pool;
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::codec::db_err;
use crate::model::{Attempt, Message, Next, Targets};
use crate::{Result, StoreError};

use super::dialect::Dialect;
use super::queue::{insert_messages, notify_work, record_attempts, Queued};
use super::run::{Run, Sql};

/// Most writes in one transaction.
const MAX_BATCH: usize = 512;
/// Writes waiting for the batcher before callers wait to queue (backpressure).
const QUEUE: usize = 4096;

enum Write {
    Message {
        msg: Message,
        targets: Targets,
        reply: oneshot::Sender<Result<Vec<String>>>,
    },
    Attempt {
        attempt: Attempt,
        next: Next,
        reply: oneshot::Sender<Result<()>>,
    },
}

impl Write {
    fn fail(self, e: StoreError) {
        // A caller that went away no longer needs its answer.
        match self {
            Write::Message { reply, .. } => drop(reply.send(Err(e))),
            Write::Attempt { reply, .. } => drop(reply.send(Err(e))),
        }
    }
}

/// The queue to the batching task. Cloning shares the task.
#[derive(Clone)]
pub struct Batcher {
    queue: mpsc::Sender<Write>,
}

impl Batcher {
    /// Starts `writers` tasks (at least one) that write through `writer`
    /// (SQLite's one-connection pool, or PostgreSQL's pool). They end when
    /// the last `Batcher` is dropped.
    pub fn start<DB: Dialect + Run>(writer: Pool<DB>, writers: usize) -> Batcher {
        let (queue, rx) = mpsc::channel(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..writers.max(1) {
            tokio::spawn(run(writer.clone(), rx.clone()));
        }
        Batcher { queue }
    }

    pub(super) async fn create_message(
        &self,
        msg: &Message,
        targets: &Targets,
    ) -> Result<Vec<String>> {
        self.submit(|reply| Write::Message {
            msg: msg.clone(),
            targets: targets.clone(),
            reply,
        })
        .await
    }

    pub(super) async fn record_attempt(&self, attempt: &Attempt, next: &Next) -> Result<()> {
        self.submit(|reply| Write::Attempt {
            attempt: attempt.clone(),
            next: next.clone(),
            reply,
        })
        .await
    }

    /// Queues the write `make` builds around its reply channel, and waits
    /// for the answer (after the commit).
    async fn submit<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Write) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(make(reply)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the write batcher has stopped".into())
}

async fn run<DB: Dialect + Run>(writer: Pool<DB>, rx: Arc<Mutex<mpsc::Receiver<Write>>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        // The queue is held only while taking a batch, not while writing it:
        // another writer collects the next one meanwhile.
        if rx.lock().await.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let writes = std::mem::take(&mut batch);
        if writes.len() == 1 {
            write_and_answer(&writer, writes).await;
            continue;
        }
        match write_batch(&writer, &writes).await {
            Ok(outcomes) => answer(writes, outcomes),
            // Something in the batch failed as a whole (a foreign key, a value
            // the database refuses): write each alone so only the culprit
            // fails. Unless the database cannot be reached at all: then each
            // write alone would wait out the pool's timeout in turn, for the
            // same answer.
            Err(e) if reachable(&writer).await => {
                tracing::debug!(error = %e, writes = writes.len(), "batch failed; writing one at a time");
                for write in writes {
                    write_and_answer(&writer, vec![write]).await;
                }
            }
            Err(e) => {
                for write in writes {
                    write.fail(e.clone());
                }
            }
        }
    }
}

/// Whether the database answers a trivial statement.
async fn reachable<DB: Dialect + Run>(writer: &Pool<DB>) -> bool {
    Sql::new("SELECT 1").execute(writer).await.is_ok()
}

async fn write_and_answer<DB: Dialect + Run>(writer: &Pool<DB>, writes: Vec<Write>) {
    match write_batch(writer, &writes).await {
        Ok(outcomes) => answer(writes, outcomes),
        Err(e) => {
            for write in writes {
                write.fail(e.clone());
            }
        }
    }
}

/// What became of each write of a committed batch, in order: the endpoints a
/// message was queued to (or why it was refused), nothing for an attempt.
type Outcome = Queued;

fn answer(writes: Vec<Write>, outcomes: Vec<Outcome>) {
    for (write, outcome) in writes.into_iter().zip(outcomes) {
        match write {
            Write::Message { reply, .. } => drop(reply.send(outcome)),
            Write::Attempt { reply, .. } => drop(reply.send(outcome.map(|_| ()))),
        }
    }
}

/// Writes the batch in one transaction, with the statements of a single
/// write (`queue.rs`), and commits it.
async fn write_batch<DB: Dialect + Run>(
    writer: &Pool<DB>,
    writes: &[Write],
) -> Result<Vec<Outcome>> {
    let mut tx = writer.begin().await.map_err(db_err)?;
    let messages: Vec<(&Message, &Targets)> = writes
        .iter()
        .filter_map(|w| match w {
            Write::Message { msg, targets, .. } => Some((msg, targets)),
            Write::Attempt { .. } => None,
        })
        .collect();
    let attempts: Vec<(&Attempt, &Next)> = writes
        .iter()
        .filter_map(|w| match w {
            Write::Attempt { attempt, next, .. } => Some((attempt, next)),
            Write::Message { .. } => None,
        })
        .collect();
    let queued = insert_messages(&mut tx, &messages).await?;
    record_attempts(&mut tx, &attempts).await?;
    if queued
        .iter()
        .any(|q| q.as_ref().is_ok_and(|to| !to.is_empty()))
    {
        notify_work(&mut tx).await?;
    }
    tx.commit().await.map_err(db_err)?;
    let mut queued = queued.into_iter();
    Ok(writes
        .iter()
        .map(|w| match w {
            Write::Message { .. } => queued.next().expect("one outcome per message"),
            Write::Attempt { .. } => Ok(Vec::new()),
        })
        .collect())
}
