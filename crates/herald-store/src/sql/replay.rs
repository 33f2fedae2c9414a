//! Work queued again: failed deliveries recovered, one message resent, the
//! messages an endpoint never got replayed to it, and the ones it got
//! replayed in bulk. Each queues through
//! [`SqlStore::queue_work`], so other nodes hear of it.

use crate::codec::{ms, Route};
use crate::model::{ListFilter, MessageStatus, Timestamp};
use crate::{Result, StoreError};

use super::lists::message_filter;
use super::run::{Columns, Sql};
use super::{Backend, SqlStore};

/// Messages read, and deliveries written, per statement of a replay.
const REPLAY_BATCH: i64 = 500;

impl<DB: Backend> SqlStore<DB> {
    /// Queues again, now, as manual attempts, the endpoint's deliveries of
    /// messages created in the window that the filter takes (their event
    /// types, channel, tag; the delivery's status; an attempt's status-code
    /// class), delivered or not: Svix's `bulk-replay`. One in flight is left
    /// to finish. Returns how many.
    pub(crate) async fn bulk_replay(
        &self,
        app_id: &str,
        endpoint_id: &str,
        since: Timestamp,
        until: Option<Timestamp>,
        filter: &ListFilter,
        now: Timestamp,
    ) -> Result<u64> {
        let mut sql = Sql::new(
            "UPDATE delivery SET status = $1, next_attempt_at = $2, manual = TRUE, updated_at = $2
             WHERE app_id = $3 AND endpoint_id = $4 AND created_at >= $5 AND created_at < $6
               AND lease_until IS NULL",
        )
        .bind(MessageStatus::Pending)
        .bind(now)
        .bind(app_id)
        .bind(endpoint_id)
        .bind(since)
        .bind(until.map_or(i64::MAX, ms));
        if let Some(status) = filter.status {
            sql.push(" AND status = ").push_bind(status);
        }
        if let Some(class) = filter.status_code_class {
            sql.push(
                " AND EXISTS (SELECT 1 FROM attempt a WHERE a.msg_id = delivery.msg_id
                     AND a.endpoint_id = delivery.endpoint_id AND a.response_status_code BETWEEN ",
            )
            .push_bind(class)
            .push(" AND ")
            .push_bind(class + 99)
            .push(")");
        }
        if filter.channel.is_some() || filter.tag.is_some() || !filter.event_types.is_empty() {
            sql.push(" AND msg_id IN (SELECT m.id FROM message m WHERE m.app_id = ")
                .push_bind(app_id);
            message_filter::<DB>(&mut sql, "m", filter);
            sql.push(")");
        }
        self.queue_work(sql).await
    }

    pub(crate) async fn recover(
        &self,
        endpoint_id: &str,
        since: Timestamp,
        until: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<u64> {
        let sql = Sql::new(
            "UPDATE delivery SET status = $1, next_attempt_at = $2, lease_until = NULL,
                 manual = TRUE, updated_at = $2
             WHERE endpoint_id = $3 AND status = $4 AND created_at >= $5 AND created_at < $6",
        )
        .bind(MessageStatus::Pending)
        .bind(now)
        .bind(endpoint_id)
        .bind(MessageStatus::Fail)
        .bind(since)
        .bind(until.map_or(i64::MAX, ms));
        self.queue_work(sql).await
    }

    pub(crate) async fn resend(
        &self,
        app_id: &str,
        msg_id: &str,
        endpoint_id: &str,
        now: Timestamp,
    ) -> Result<()> {
        // An existing delivery is queued again (unless one is already in flight);
        // a message that never went to this endpoint gets a new delivery.
        let sql = Sql::new(
            "INSERT INTO delivery (msg_id, endpoint_id, app_id, status, attempts, next_attempt_at,
                 manual, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 0, $5, TRUE, $5, $5)
             ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET
                 status = CASE WHEN delivery.lease_until IS NULL THEN $4 ELSE delivery.status END,
                 next_attempt_at = excluded.next_attempt_at, manual = TRUE,
                 updated_at = excluded.updated_at",
        )
        .bind(msg_id)
        .bind(endpoint_id)
        .bind(app_id)
        .bind(MessageStatus::Pending)
        .bind(now);
        self.queue_work(sql).await?;
        Ok(())
    }

    /// Queues to the endpoint, now, every message of its application created
    /// in the window that never went to it and that it takes (its event
    /// types and channels), as manual attempts: Svix's `replay-missing`.
    /// Returns how many. A message it already got, however that ended, is
    /// left alone. Read and written in batches, so no statement is long.
    pub(crate) async fn replay_missing(
        &self,
        app_id: &str,
        endpoint_id: &str,
        since: Timestamp,
        until: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<u64> {
        let row = Sql::new(
            "SELECT id, app_id, event_types, channels FROM endpoint WHERE app_id = $1 AND id = $2",
        )
        .bind(app_id)
        .bind(endpoint_id)
        .fetch_optional(&self.reader)
        .await?
        .ok_or(StoreError::NotFound)?;
        let route = Route::new(
            row.text("id")?,
            row.text("app_id")?,
            row.opt_text("event_types")?,
            row.opt_text("channels")?,
        )?;
        let until = until.map_or(i64::MAX, ms);
        let mut after = String::new();
        let mut queued = 0;
        loop {
            let rows = Sql::new(
                "SELECT m.id, m.event_type, m.channels FROM message m
                 WHERE m.app_id = $1 AND m.created_at >= $2 AND m.created_at < $3
                   AND m.id > $4
                   AND NOT EXISTS (SELECT 1 FROM delivery d
                                   WHERE d.msg_id = m.id AND d.endpoint_id = $5)
                 ORDER BY m.id LIMIT $6",
            )
            .bind(app_id)
            .bind(since)
            .bind(until)
            .bind(after.as_str())
            .bind(endpoint_id)
            .bind(REPLAY_BATCH)
            .fetch_all(&self.reader)
            .await?;
            let Some(last) = rows.last() else {
                return Ok(queued);
            };
            after = last.text("id")?;
            let mut missing = Vec::new();
            for r in &rows {
                let channels: Option<Vec<String>> = r.list("channels")?;
                if route.accepts(&r.text("event_type")?, channels.as_deref()) {
                    missing.push(r.text("id")?);
                }
            }
            if missing.is_empty() {
                continue;
            }
            let mut sql = Sql::bulk::<DB>(
                "INSERT INTO delivery (msg_id, endpoint_id, app_id, status, attempts,
                     next_attempt_at, manual, created_at, updated_at) VALUES ",
            );
            sql.push_values(&missing, |row, msg_id| {
                row.bind(msg_id.as_str())
                    .bind(endpoint_id)
                    .bind(app_id)
                    .bind(MessageStatus::Pending)
                    .bind(0_i64)
                    .bind(now)
                    .bind(true)
                    .bind(now)
                    .bind(now);
            });
            // A delivery made meanwhile (a resend) stays as it is.
            sql.push(" ON CONFLICT (msg_id, endpoint_id) DO NOTHING");
            queued += self.queue_work(sql).await?;
        }
    }
}
