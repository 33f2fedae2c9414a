//! Messages, their deliveries and attempts: the writes on the hot path (which
//! group commit, `batch.rs`, runs for many writes at once), the parts of a
//! claim both backends use, and the delivery queue's own reads and writes
//! (release, send slots, holds, the next due time). The log's reads and
//! expunges are `log.rs`.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use sqlx::Transaction;

use crate::codec::{list_text, ms, Route};
use crate::model::*;
use crate::{Conflict, Result, StoreError};

use super::dialect::Dialect;
use super::run::{Columns, Run, Sql};
use super::{rows, Backend, SqlStore};

/// Rows per multi-row statement, under SQLite's bound-parameter limit
/// (32,766) for the widest row (14 columns).
const ROWS_PER_STATEMENT: usize = 1000;

/// What a worker needs to send a delivery `d`, read with [`JOB_JOINS`] (see
/// [`rows::job`]). `d.next_attempt_at` is read as it was before the claim:
/// when the delivery fell due.
pub const JOB_COLUMNS: &str = "d.msg_id, d.endpoint_id, d.attempts, d.manual, d.slotted,
     d.next_attempt_at AS due_at, m.app_id, a.org_id,
     m.event_type, m.payload, m.content_type";

/// The joins [`JOB_COLUMNS`] reads from, after a delivery `d`.
pub const JOB_JOINS: &str = "JOIN message m ON m.id = d.msg_id
     JOIN application a ON a.id = m.app_id";

/// Which deliveries a claim takes.
#[derive(Clone, Copy, Debug)]
pub enum Claiming<'a> {
    /// Up to `limit` due deliveries, oldest first, that fell due after
    /// `since` if given, of endpoints other than `skip_endpoints` (those
    /// already busy in this worker).
    Due {
        since: Option<Timestamp>,
        limit: u32,
        skip_endpoints: &'a [String],
    },
    /// One delivery, if it is due (the Test button sends it at once).
    One {
        msg_id: &'a str,
        endpoint_id: &'a str,
    },
}

/// A claim: which deliveries, at what time, leased until when.
#[derive(Clone, Copy, Debug)]
pub struct Claim<'a> {
    pub what: Claiming<'a>,
    pub now: Timestamp,
    pub lease_until: Timestamp,
}

impl<'a> Claim<'a> {
    /// The deliveries the claim takes, as `columns` of `delivery` (locked,
    /// where the dialect locks, skipping rows others hold), with the
    /// placeholders [`Claim::bind`] fills: `$1` now, then `$2` the endpoints
    /// to skip, `$3` the limit and `$4` a time they fell due after, or `$2`
    /// the message and `$3` the endpoint. The text depends only on the kind
    /// of claim, so a backend may build it once. Due deliveries are found
    /// through the partial index `delivery_due` (on SQLite it covers the
    /// query, so skipping a busy endpoint's rows reads no table row); the
    /// index tests keep it that way.
    pub fn rows<DB: Dialect>(&self, columns: &str) -> String {
        match self.what {
            Claiming::Due { .. } => format!(
                "SELECT {columns} FROM delivery
                 WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= $1
                   AND next_attempt_at > $4 AND NOT ({})
                 ORDER BY next_attempt_at LIMIT $3{}",
                DB::in_json_list("endpoint_id", "$2"),
                DB::SKIP_LOCKED
            ),
            Claiming::One { .. } => format!(
                "SELECT {columns} FROM delivery
                 WHERE next_attempt_at <= $1 AND msg_id = $2 AND endpoint_id = $3{}",
                DB::SKIP_LOCKED
            ),
        }
    }

    /// How many placeholders [`Claim::rows`] holds.
    pub fn params(&self) -> usize {
        match self.what {
            Claiming::Due { .. } => 4,
            Claiming::One { .. } => 3,
        }
    }

    /// Binds the values of [`Claim::rows`].
    pub fn bind(&self, sql: Sql<'a>) -> Sql<'a> {
        let sql = sql.bind(self.now);
        match self.what {
            Claiming::Due {
                since,
                limit,
                skip_endpoints,
            } => {
                let skip = serde_json::to_string(skip_endpoints).expect("strings serialize");
                sql.bind(skip)
                    .bind(i64::from(limit))
                    .bind(since.map_or(i64::MIN, ms))
            }
            Claiming::One {
                msg_id,
                endpoint_id,
            } => sql.bind(msg_id).bind(endpoint_id),
        }
    }
}

/// The statement text of each kind of claim, built on first use: a backend
/// keeps one in a `static`, so a claim formats no SQL.
pub struct ClaimTexts {
    due: OnceLock<String>,
    one: OnceLock<String>,
}

impl ClaimTexts {
    pub const fn new() -> ClaimTexts {
        ClaimTexts {
            due: OnceLock::new(),
            one: OnceLock::new(),
        }
    }

    /// The text for `claim`'s kind, made by `build` the first time.
    pub fn get(&'static self, claim: &Claim<'_>, build: impl FnOnce() -> String) -> &'static str {
        let text = match claim.what {
            Claiming::Due { .. } => &self.due,
            Claiming::One { .. } => &self.one,
        };
        text.get_or_init(build)
    }
}

/// Tells other processes that `tx` queues work, where there are any
/// (PostgreSQL's NOTIFY, delivered when `tx` commits).
pub async fn notify_work<DB: Dialect + Run>(tx: &mut Transaction<'_, DB>) -> Result<()> {
    if let Some(notify) = DB::NOTIFY_WORK {
        Sql::new(notify).execute(tx).await?;
    }
    Ok(())
}

/// What became of each message of [`insert_messages`].
pub type Queued = Result<Vec<String>>;

/// Inserts the messages and their deliveries in `tx`, and answers for each,
/// in order, the endpoints it was queued to. A message whose `eventId` is
/// taken (by a stored message or an earlier one here) is skipped and
/// answered with a conflict; the others go ahead.
pub async fn insert_messages<DB: Dialect + Run>(
    tx: &mut Transaction<'_, DB>,
    messages: &[(&Message, &Targets)],
) -> Result<Vec<Queued>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    // Rows go in in eventId order: two batches committing at once (several
    // PostgreSQL writers) that carry the same eventIds then wait for each
    // other in one order, instead of each holding one the other waits for (a
    // deadlock, which would fail both batches).
    let mut in_order: Vec<&(&Message, &Targets)> = messages.iter().collect();
    in_order.sort_by(|(a, _), (b, _)| (&a.app_id, &a.event_id).cmp(&(&b.app_id, &b.event_id)));
    let mut inserted = HashSet::new();
    for chunk in in_order.chunks(ROWS_PER_STATEMENT) {
        let mut sql = Sql::bulk::<DB>(
            "INSERT INTO message (id, app_id, event_type, event_id, channels, payload, created_at,
                 expires_at, tags, deliver_at, content_type) VALUES ",
        );
        sql.reserve(chunk.len() * 11);
        sql.push_values(chunk, |row, (msg, _)| {
            row.bind(&msg.id)
                .bind(&msg.app_id)
                .bind(&msg.event_type)
                .bind(&msg.event_id)
                .bind(list_text(&msg.channels))
                .bind(&msg.payload)
                .bind(msg.created_at)
                .bind(msg.expires_at)
                .bind(list_text(&msg.tags))
                .bind(msg.deliver_at)
                .bind(&msg.content_type);
        });
        sql.push(" ON CONFLICT DO NOTHING RETURNING id");
        for r in sql.fetch_all(&mut *tx).await? {
            inserted.insert(r.text("id")?);
        }
    }

    // The enabled endpoints of every application that a message goes to by
    // its filters, read once.
    let apps: HashSet<&str> = messages
        .iter()
        .filter(|(msg, targets)| targets.endpoint().is_none() && inserted.contains(&msg.id))
        .map(|(msg, _)| msg.app_id.as_str())
        .collect();
    let mut endpoints: HashMap<String, Vec<Route>> = HashMap::new();
    if !apps.is_empty() {
        let rows = Sql::new(format!(
            "SELECT id, app_id, event_types, channels FROM endpoint
             WHERE disabled = FALSE AND {}",
            DB::in_json_list("app_id", "$1")
        ))
        .bind(serde_json::to_string(&apps).expect("strings serialize"))
        .fetch_all(&mut *tx)
        .await?;
        for r in &rows {
            let ep = Route::new(
                r.text("id")?,
                r.text("app_id")?,
                r.opt_text("event_types")?,
                r.opt_text("channels")?,
            )?;
            endpoints.entry(ep.app_id.clone()).or_default().push(ep);
        }
    }

    struct NewDelivery<'a> {
        msg: &'a Message,
        endpoint_id: &'a str,
        due: Timestamp,
        manual: bool,
    }
    let mut deliveries = Vec::new();
    let mut outcomes = Vec::with_capacity(messages.len());
    for (msg, targets) in messages {
        if !inserted.contains(&msg.id) {
            let event_id = msg.event_id.clone().unwrap_or_default();
            outcomes.push(Err(StoreError::Conflict(Conflict::MessageEventId(
                event_id,
            ))));
            continue;
        }
        let due = targets.due_at(msg.created_at);
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
        let mut sql = Sql::bulk::<DB>(
            "INSERT INTO delivery (msg_id, endpoint_id, app_id, status, attempts, next_attempt_at,
                 manual, created_at, updated_at) VALUES ",
        );
        sql.reserve(chunk.len() * 9);
        sql.push_values(chunk, |row, d| {
            row.bind(&d.msg.id)
                .bind(d.endpoint_id)
                .bind(&d.msg.app_id)
                .bind(MessageStatus::Pending)
                .bind(0_i64)
                .bind(d.due)
                .bind(d.manual)
                .bind(d.msg.created_at)
                .bind(d.msg.created_at);
        });
        sql.execute(&mut *tx).await?;
    }
    Ok(outcomes)
}

/// Inserts the attempts and moves each one's delivery on, in `tx`.
pub async fn record_attempts<DB: Dialect + Run>(
    tx: &mut Transaction<'_, DB>,
    attempts: &[(&Attempt, &Next)],
) -> Result<()> {
    for chunk in attempts.chunks(ROWS_PER_STATEMENT) {
        let mut sql = Sql::bulk::<DB>(
            "INSERT INTO attempt (id, msg_id, endpoint_id, app_id, url, status,
                 response_status_code, response, response_duration_ms, trigger_type, skipped,
                 request_headers, response_headers, created_at)
             VALUES ",
        );
        sql.reserve(chunk.len() * 14);
        sql.push_values(chunk, |row, (a, _)| {
            row.bind(&a.id)
                .bind(&a.msg_id)
                .bind(&a.endpoint_id)
                .bind(&a.app_id)
                .bind(&a.url)
                .bind(a.status)
                .bind(a.response_status_code)
                .bind(&a.response)
                .bind(a.response_duration_ms)
                .bind(a.trigger_type)
                .bind(a.skipped.map(Skip::as_str))
                .bind(rows::header_text(&a.request_headers))
                .bind(rows::header_text(&a.response_headers))
                .bind(a.created_at);
        });
        sql.execute(&mut *tx).await?;

        // One statement moves every delivery of the chunk on. One whose
        // endpoint was disabled while this attempt was in flight (a 410 to
        // another delivery, the API, failing too long) is parked: its status
        // stays, with no next attempt, until the endpoint is enabled. A
        // disabled endpoint is read locked (`LOCK_ENDPOINT`), so an enable
        // committing meanwhile is seen, or waits and then unparks. The
        // endpoint is looked up by key, and the moves are a VALUES list,
        // whose length the planner knows (a list bound as JSON is guessed at
        // 100 rows, and PostgreSQL would hash the whole delivery table to
        // join it).
        let mut sql = Sql::bulk::<DB>("UPDATE delivery SET status = u.status,");
        sql.push(&format!(
            "
                 next_attempt_at = CASE WHEN u.disabled THEN NULL ELSE u.next_at END,
                 attempts = attempts + 1, lease_until = NULL, manual = FALSE, slotted = FALSE,
                 updated_at = u.at
             FROM (SELECT v.column1 AS msg_id, v.column2 AS endpoint_id, v.column3 AS status,
                          v.column4 AS next_at, v.column5 AS at,
                          EXISTS (SELECT 1 FROM endpoint e
                                  WHERE e.id = v.column2 AND e.disabled{}) AS disabled
                   FROM (VALUES ",
            DB::LOCK_ENDPOINT
        ));
        sql.reserve(chunk.len() * 5);
        sql.push_values(chunk, |row, (a, next)| {
            let (status, next_at) = next.delivery_state();
            row.bind(&a.msg_id)
                .bind(&a.endpoint_id)
                .bind(status)
                .bind(next_at)
                .bind(a.created_at);
        });
        sql.push(
            ") AS v) AS u
             WHERE delivery.msg_id = u.msg_id AND delivery.endpoint_id = u.endpoint_id",
        );
        sql.execute(&mut *tx).await?;
        record_health::<DB>(tx, chunk).await?;
    }
    Ok(())
}

/// What a chunk of attempts says of one endpoint's health.
struct HealthMove<'a> {
    endpoint_id: &'a str,
    /// An attempt succeeded: the failure run starts over after it.
    reset: bool,
    /// Failed attempts after the last success (or all, without one).
    fails: i64,
    first_fail: Option<Timestamp>,
    error: Option<String>,
}

/// The longest last error kept on an endpoint.
const LAST_ERROR_CHARS: usize = 300;

/// Moves the health of the chunk's endpoints on: a success ends a failure
/// run, failures extend it (since the first of them). An endpoint that was
/// healthy and stays so is not written (nor locked): the hot path of a
/// healthy endpoint costs nothing here. Endpoints are updated in id order, so
/// concurrent batches lock them in one order. Skipped attempts (filtered,
/// cancelled) say nothing of the endpoint.
async fn record_health<DB: Dialect + Run>(
    tx: &mut Transaction<'_, DB>,
    chunk: &[(&Attempt, &Next)],
) -> Result<()> {
    let mut moves: Vec<HealthMove<'_>> = Vec::new();
    let mut order: Vec<&(&Attempt, &Next)> =
        chunk.iter().filter(|(a, _)| a.skipped.is_none()).collect();
    order.sort_by(|(a, _), (b, _)| {
        (&a.endpoint_id, a.created_at).cmp(&(&b.endpoint_id, b.created_at))
    });
    for (a, _) in order {
        if moves.last().is_none_or(|m| m.endpoint_id != a.endpoint_id) {
            moves.push(HealthMove {
                endpoint_id: &a.endpoint_id,
                reset: false,
                fails: 0,
                first_fail: None,
                error: None,
            });
        }
        let m = moves.last_mut().expect("pushed above");
        if a.status == MessageStatus::Success {
            *m = HealthMove {
                endpoint_id: m.endpoint_id,
                reset: true,
                fails: 0,
                first_fail: None,
                error: None,
            };
        } else {
            m.fails += 1;
            m.first_fail.get_or_insert(a.created_at);
            let said = if a.response_status_code > 0 {
                format!("{} {}", a.response_status_code, a.response)
            } else {
                a.response.clone()
            };
            m.error = Some(said.trim().chars().take(LAST_ERROR_CHARS).collect());
        }
    }
    if moves.is_empty() {
        return Ok(());
    }
    let mut sql = Sql::bulk::<DB>(
        "UPDATE endpoint SET
             consecutive_failures = CASE WHEN u.reset THEN u.fails
                 ELSE consecutive_failures + u.fails END,
             failing_since = CASE WHEN u.fails = 0 THEN NULL WHEN u.reset THEN u.first_fail
                 ELSE COALESCE(failing_since, u.first_fail) END,
             last_error = CASE WHEN u.fails = 0 THEN NULL ELSE u.error END,
             paused_until = CASE WHEN u.fails = 0 THEN NULL ELSE paused_until END
         FROM (SELECT v.column1 AS id, v.column2 AS reset, v.column3 AS fails,
                      v.column4 AS first_fail, v.column5 AS error
               FROM (VALUES ",
    );
    sql.reserve(moves.len() * 5);
    sql.push_values(&moves, |row, m| {
        row.bind(m.endpoint_id)
            .bind(m.reset)
            .bind(m.fails)
            .bind(m.first_fail)
            .bind(m.error.clone());
    });
    sql.push(
        ") AS v) AS u
         WHERE endpoint.id = u.id
           AND (u.fails > 0 OR endpoint.failing_since IS NOT NULL
                OR endpoint.consecutive_failures <> 0 OR endpoint.paused_until IS NOT NULL)",
    );
    sql.execute(&mut *tx).await?;
    Ok(())
}

impl<DB: Backend> SqlStore<DB> {
    /// Writes the message and its deliveries (group commit, `batch.rs`).
    pub(crate) async fn create_message(
        &self,
        msg: &Message,
        targets: &Targets,
    ) -> Result<Vec<String>> {
        self.batch.create_message(msg, targets).await
    }

    /// Records the attempt and moves its delivery on (group commit).
    pub(crate) async fn record_attempt(&self, attempt: &Attempt, next: &Next) -> Result<()> {
        self.batch.record_attempt(attempt, next).await
    }

    pub(crate) async fn release_claim(
        &self,
        msg_id: &str,
        endpoint_id: &str,
        lease_until: Timestamp,
        due: Timestamp,
        slotted: bool,
    ) -> Result<()> {
        // A delivery of a disabled endpoint is parked instead (as
        // `record_attempts` parks one), its endpoint read locked. One tried
        // before waits for a retry: `sending`, as after its failed attempt.
        let sql = Sql::new(format!(
            "UPDATE delivery SET status = CASE WHEN attempts > 0 THEN $7 ELSE $1 END,
                 lease_until = NULL,
                 next_attempt_at = CASE WHEN EXISTS (
                     SELECT 1 FROM endpoint e WHERE e.id = $4 AND e.disabled{}) THEN NULL ELSE $2 END,
                 slotted = $6, updated_at = $2
             WHERE msg_id = $3 AND endpoint_id = $4 AND lease_until = $5",
            DB::LOCK_ENDPOINT
        ))
        .bind(MessageStatus::Pending)
        .bind(due)
        .bind(msg_id)
        .bind(endpoint_id)
        .bind(lease_until)
        .bind(slotted)
        .bind(MessageStatus::Sending);
        self.queue_work(sql).await?;
        Ok(())
    }

    /// Reserves the endpoint's next send slot at `interval` from the last
    /// (its rate limit, on every worker): the time it starts, now or later.
    /// `None`: the endpoint is gone.
    pub(crate) async fn reserve_slot(
        &self,
        endpoint_id: &str,
        interval: std::time::Duration,
        now: Timestamp,
    ) -> Result<Option<Timestamp>> {
        let step = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        Sql::new(
            "UPDATE endpoint SET rate_next_at =
                 CASE WHEN rate_next_at IS NULL OR rate_next_at < $1 THEN $1
                      ELSE rate_next_at END + $2
             WHERE id = $3
             RETURNING rate_next_at - $2 AS slot",
        )
        .bind(now)
        .bind(step)
        .bind(endpoint_id)
        .fetch_optional_as(&self.writer, |r| r.time("slot"))
        .await
    }

    /// Holds the endpoint's sends until `until` (a 429's `Retry-After`), unless
    /// they were held longer already.
    pub(crate) async fn hold_endpoint(&self, endpoint_id: &str, until: Timestamp) -> Result<()> {
        Sql::new(
            "UPDATE endpoint SET rate_next_at = $1
             WHERE id = $2 AND (rate_next_at IS NULL OR rate_next_at < $1)",
        )
        .bind(until)
        .bind(endpoint_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub(crate) async fn next_due(&self) -> Result<Option<Timestamp>> {
        let row = Sql::new(
            "SELECT MIN(next_attempt_at) AS due FROM delivery WHERE next_attempt_at IS NOT NULL",
        )
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|r| r.opt_time("due")).transpose()?.flatten())
    }
}
