//! Group commit for the two writes on the hot path: new messages (with their
//! deliveries) and attempt outcomes.
//!
//! Every statement on the single SQLite writer is a hand-off to sqlx's worker
//! thread and back, and that hand-off, not SQLite's work, was most of the cost
//! of a message (see the README's Performance section). So callers queue their
//! write here and one task writes whatever has queued meanwhile in one
//! transaction, with one multi-row statement per table: a handful of hand-offs
//! for the whole batch instead of several per message. Each caller is answered
//! only after the commit, so a 2xx still means "on disk"; a batch that fails is
//! written again one write at a time, so one bad write fails only its caller.

use std::collections::{HashMap, HashSet};

use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use crate::codec::{db_err, list_text, ms, Route};
use crate::model::{Attempt, Message, MessageStatus, Next, Targets};
use crate::{Result, StoreError};

/// Most writes in one transaction.
const MAX_BATCH: usize = 512;
/// Writes waiting for the batcher before callers wait to queue (backpressure).
const QUEUE: usize = 4096;
/// Rows per multi-row statement, under SQLite's bound-parameter limit (32,766)
/// for the widest row (11 columns).
const ROWS_PER_STATEMENT: usize = 1000;

pub(super) enum Write {
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
pub(super) struct Batcher {
    queue: mpsc::Sender<Write>,
}

impl Batcher {
    /// Starts the task that writes through `writer` (the one-connection pool).
    /// It ends when the last `Batcher` is dropped.
    pub(super) fn start(writer: SqlitePool) -> Batcher {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(writer, rx));
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
    StoreError::Unavailable("the SQLite write batcher has stopped".into())
}

async fn run(writer: SqlitePool, mut rx: mpsc::Receiver<Write>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let writes = std::mem::take(&mut batch);
        if writes.len() == 1 {
            write_and_answer(&writer, writes).await;
            continue;
        }
        match write_batch(&writer, &writes).await {
            Ok(outcomes) => answer(writes, outcomes),
            Err(e) => {
                // Something in the batch failed as a whole (a foreign key, the
                // disk): write each alone so only the culprit fails.
                tracing::debug!(error = %e, writes = writes.len(), "batch failed; writing one at a time");
                for write in writes {
                    write_and_answer(&writer, vec![write]).await;
                }
            }
        }
    }
}

async fn write_and_answer(writer: &SqlitePool, writes: Vec<Write>) {
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
type Outcome = Result<Vec<String>>;

fn answer(writes: Vec<Write>, outcomes: Vec<Outcome>) {
    for (write, outcome) in writes.into_iter().zip(outcomes) {
        match write {
            Write::Message { reply, .. } => drop(reply.send(outcome)),
            Write::Attempt { reply, .. } => drop(reply.send(outcome.map(|_| ()))),
        }
    }
}

/// Writes the batch in one transaction and commits it.
async fn write_batch(writer: &SqlitePool, writes: &[Write]) -> Result<Vec<Outcome>> {
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

/// Inserts the messages and their deliveries. A message whose `eventId` is
/// taken (by a stored message or an earlier one in this batch) is skipped and
/// answered with a conflict; the others go ahead.
async fn insert_messages(
    tx: &mut sqlx::SqliteConnection,
    messages: &[(&Message, &Targets)],
) -> Result<Vec<Outcome>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let mut inserted = HashSet::new();
    for chunk in messages.chunks(ROWS_PER_STATEMENT) {
        let mut qb: QueryBuilder<'_, Sqlite> = QueryBuilder::new(
            "INSERT INTO message (id, app_id, event_type, event_id, channels, payload, created_at,
                 expires_at) ",
        );
        qb.push_values(chunk, |mut row, (msg, _)| {
            row.push_bind(&msg.id)
                .push_bind(&msg.app_id)
                .push_bind(&msg.event_type)
                .push_bind(&msg.event_id)
                .push_bind(list_text(&msg.channels))
                .push_bind(&msg.payload)
                .push_bind(ms(msg.created_at))
                .push_bind(msg.expires_at.map(ms));
        });
        qb.push(" ON CONFLICT DO NOTHING RETURNING id");
        let rows = qb.build().fetch_all(&mut *tx).await.map_err(db_err)?;
        inserted.extend(rows.iter().map(|r| r.get::<String, _>("id")));
    }

    // The enabled endpoints of every application that a message goes to by
    // its filters, read once for the batch.
    let apps: HashSet<&str> = messages
        .iter()
        .filter(|(msg, targets)| targets.endpoint().is_none() && inserted.contains(&msg.id))
        .map(|(msg, _)| msg.app_id.as_str())
        .collect();
    let mut endpoints: HashMap<String, Vec<Route>> = HashMap::new();
    if !apps.is_empty() {
        let apps = serde_json::to_string(&apps).expect("strings serialize");
        let rows = sqlx::query(
            "SELECT id, app_id, event_types, channels FROM endpoint
             WHERE disabled = 0 AND app_id IN (SELECT value FROM json_each(?))",
        )
        .bind(apps)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        for r in &rows {
            let ep = Route::new(
                r.try_get("id").map_err(db_err)?,
                r.try_get("app_id").map_err(db_err)?,
                r.try_get("event_types").map_err(db_err)?,
                r.try_get("channels").map_err(db_err)?,
            )?;
            endpoints.entry(ep.app_id.clone()).or_default().push(ep);
        }
    }

    struct NewDelivery<'a> {
        msg: &'a Message,
        endpoint_id: &'a str,
        due: i64,
        manual: bool,
    }
    let mut deliveries = Vec::new();
    let mut outcomes = Vec::with_capacity(messages.len());
    for (msg, targets) in messages {
        if !inserted.contains(&msg.id) {
            outcomes.push(Err(StoreError::Conflict(format!(
                "a message with eventId {:?} already exists in this application",
                msg.event_id.as_deref().unwrap_or_default()
            ))));
            continue;
        }
        let due = ms(targets.due_at(msg.created_at));
        let before = deliveries.len();
        match targets.endpoint() {
            Some(endpoint_id) => deliveries.push(NewDelivery {
                msg,
                endpoint_id,
                due,
                manual: true,
            }),
            None => {
                for ep in endpoints.get(&msg.app_id).into_iter().flatten() {
                    if ep.accepts(&msg.event_type, msg.channels.as_deref()) {
                        deliveries.push(NewDelivery {
                            msg,
                            endpoint_id: &ep.id,
                            due,
                            manual: false,
                        });
                    }
                }
            }
        }
        outcomes.push(Ok(deliveries[before..]
            .iter()
            .map(|d| d.endpoint_id.to_string())
            .collect()));
    }
    for chunk in deliveries.chunks(ROWS_PER_STATEMENT) {
        let mut qb: QueryBuilder<'_, Sqlite> = QueryBuilder::new(
            "INSERT INTO delivery (msg_id, endpoint_id, app_id, status, attempts, next_attempt_at,
                 manual, created_at, updated_at) ",
        );
        qb.push_values(chunk, |mut row, d| {
            let created = ms(d.msg.created_at);
            row.push_bind(&d.msg.id)
                .push_bind(d.endpoint_id)
                .push_bind(&d.msg.app_id)
                .push_bind(MessageStatus::Pending as i64)
                .push_bind(0_i64)
                .push_bind(d.due)
                .push_bind(d.manual)
                .push_bind(created)
                .push_bind(created);
        });
        qb.build().execute(&mut *tx).await.map_err(db_err)?;
    }
    Ok(outcomes)
}

/// Inserts the attempts and moves each one's delivery on.
async fn record_attempts(
    tx: &mut sqlx::SqliteConnection,
    attempts: &[(&Attempt, &Next)],
) -> Result<()> {
    for chunk in attempts.chunks(ROWS_PER_STATEMENT) {
        let mut qb: QueryBuilder<'_, Sqlite> = QueryBuilder::new(
            "INSERT INTO attempt (id, msg_id, endpoint_id, app_id, url, status,
                 response_status_code, response, response_duration_ms, trigger_type, created_at) ",
        );
        qb.push_values(chunk, |mut row, (a, _)| {
            row.push_bind(&a.id)
                .push_bind(&a.msg_id)
                .push_bind(&a.endpoint_id)
                .push_bind(&a.app_id)
                .push_bind(&a.url)
                .push_bind(a.status as i64)
                .push_bind(a.response_status_code)
                .push_bind(&a.response)
                .push_bind(a.response_duration_ms)
                .push_bind(a.trigger_type as i64)
                .push_bind(ms(a.created_at));
        });
        qb.build().execute(&mut *tx).await.map_err(db_err)?;

        let moves: Vec<serde_json::Value> = chunk
            .iter()
            .map(|(a, next)| {
                let (status, next_at) = next.delivery_state();
                let next_at = next_at.map(ms);
                serde_json::json!([
                    a.msg_id,
                    a.endpoint_id,
                    status as i64,
                    next_at,
                    ms(a.created_at)
                ])
            })
            .collect();
        sqlx::query(
            // An endpoint disabled while this attempt was in flight (a 410 to
            // another delivery, or the API) gets no retry.
            "UPDATE delivery SET
                 status = CASE WHEN u.status = 1 AND e.disabled THEN 2 ELSE u.status END,
                 next_attempt_at = CASE WHEN e.disabled THEN NULL ELSE u.next_at END,
                 attempts = attempts + 1, lease_until = NULL, manual = 0, updated_at = u.at
             FROM (SELECT value ->> 0 AS msg_id, value ->> 1 AS endpoint_id,
                          value ->> 2 AS status, value ->> 3 AS next_at, value ->> 4 AS at
                   FROM json_each(?)) AS u
             JOIN endpoint e ON e.id = u.endpoint_id
             WHERE delivery.msg_id = u.msg_id AND delivery.endpoint_id = u.endpoint_id",
        )
        .bind(serde_json::Value::Array(moves).to_string())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}
