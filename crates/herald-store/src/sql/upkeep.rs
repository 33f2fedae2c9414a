//! Keeping the database in shape: pruning, re-sealing secrets, and the facts
//! the database keeps about itself (`herald_meta`).

use crate::codec::{idempotency_owner, sealed_with_pattern};
use crate::model::*;
use crate::{Result, StoreError};

use super::dialect::Dialect;
use super::run::{Arg, Columns, Sql};
use super::{Backend, SqlStore};

/// Payloads to expunge: up to `$2` that expired by `$1` and whose message has
/// no pending delivery (an accepted message must still be delivered as sent).
/// Nodes pruning at the same time skip each other's rows.
pub fn prune_payloads_select<DB: Dialect>() -> String {
    format!(
        "SELECT m.id FROM message m
         WHERE m.expires_at IS NOT NULL AND m.expires_at <= $1
           AND NOT EXISTS (
               SELECT 1 FROM delivery d WHERE d.msg_id = m.id AND d.next_attempt_at IS NOT NULL)
         LIMIT $2{}",
        DB::SKIP_LOCKED
    )
}

/// Attempts to delete: up to `$2` created before `$1`.
pub fn prune_attempts_select<DB: Dialect>() -> String {
    format!(
        "SELECT id FROM attempt WHERE created_at < $1 LIMIT $2{}",
        DB::SKIP_LOCKED
    )
}

impl<DB: Backend> SqlStore<DB> {
    pub(crate) async fn prune(
        &self,
        now: Timestamp,
        attempts_before: Timestamp,
        batch: u32,
    ) -> Result<PruneReport> {
        // One statement per table, each its own short transaction: it holds
        // SQLite's writer, or PostgreSQL's row locks, only as long as one
        // batch takes.
        let limit = i64::from(batch);
        let payloads = format!(
            "UPDATE message SET payload = '{EXPUNGED_PAYLOAD}', content_type = NULL,
                 expires_at = NULL
             WHERE id IN ({})",
            prune_payloads_select::<DB>()
        );
        let attempts = format!(
            "DELETE FROM attempt WHERE id IN ({})",
            prune_attempts_select::<DB>()
        );
        let idempotency = format!(
            "DELETE FROM idempotency WHERE (scope, key) IN
                 (SELECT scope, key FROM idempotency WHERE created_at < $1 LIMIT $2{})",
            DB::SKIP_LOCKED
        );
        let grants = format!(
            "DELETE FROM portal_grant WHERE id IN
                 (SELECT id FROM portal_grant WHERE expires_at < $1 LIMIT $2{})",
            DB::SKIP_LOCKED
        );
        let mut report = PruneReport::default();
        for (sql, before, count) in [
            (payloads, now, &mut report.payloads),
            (attempts, attempts_before, &mut report.attempts),
            (
                idempotency,
                now - IDEMPOTENCY_RETENTION,
                &mut report.idempotency,
            ),
            (grants, now, &mut report.grants),
        ] {
            *count = Sql::new(sql)
                .bind(before)
                .bind(limit)
                .execute(&self.writer)
                .await?;
        }
        Ok(report)
    }

    pub(crate) async fn read_sealed(
        &self,
        column: SealedColumn,
        current_key: &str,
        limit: u32,
    ) -> Result<Vec<SealedValue>> {
        let pattern = sealed_with_pattern(current_key);
        let (text, pattern) = match column {
            SealedColumn::EndpointSecret => (
                "SELECT endpoint_id AS owner, key AS value FROM endpoint_secret
                 WHERE key NOT LIKE $1 LIMIT $2",
                Arg::from(pattern),
            ),
            SealedColumn::EndpointHeaders => (
                "SELECT id AS owner, headers AS value FROM endpoint
                 WHERE headers <> '{}' AND headers NOT LIKE $1 LIMIT $2",
                Arg::from(pattern),
            ),
            SealedColumn::TransformationVariables => (
                "SELECT id AS owner, transformation_variables AS value FROM endpoint
                 WHERE transformation_variables <> '{}' AND transformation_variables NOT LIKE $1
                 LIMIT $2",
                Arg::from(pattern),
            ),
            // The body is bytes, and so is the pattern it is matched with.
            SealedColumn::IdempotencyBody => (
                "SELECT scope, key, body FROM idempotency
                 WHERE body IS NOT NULL AND body NOT LIKE $1 LIMIT $2",
                Arg::from(pattern.into_bytes()),
            ),
        };
        let read = |r: &DB::Row| match column {
            SealedColumn::EndpointSecret
            | SealedColumn::EndpointHeaders
            | SealedColumn::TransformationVariables => Ok(SealedValue {
                owner: r.text("owner")?,
                value: r.text("value")?.into_bytes(),
            }),
            SealedColumn::IdempotencyBody => Ok(SealedValue {
                owner: idempotency_owner(&r.text("scope")?, &r.text("key")?),
                value: r.opt_bytes("body")?.unwrap_or_default(),
            }),
        };
        Sql::new(text)
            .bind(pattern)
            .bind(i64::from(limit))
            .fetch_all_as(&self.writer, read)
            .await
    }

    pub(crate) async fn replace_sealed(
        &self,
        column: SealedColumn,
        owner: &str,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool> {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let sql = match column {
            SealedColumn::EndpointSecret => {
                Sql::new("UPDATE endpoint_secret SET key = $1 WHERE endpoint_id = $2 AND key = $3")
                    .bind(text(new))
                    .bind(owner)
                    .bind(text(old))
            }
            SealedColumn::EndpointHeaders => {
                Sql::new("UPDATE endpoint SET headers = $1 WHERE id = $2 AND headers = $3")
                    .bind(text(new))
                    .bind(owner)
                    .bind(text(old))
            }
            SealedColumn::TransformationVariables => Sql::new(
                "UPDATE endpoint SET transformation_variables = $1
                 WHERE id = $2 AND transformation_variables = $3",
            )
            .bind(text(new))
            .bind(owner)
            .bind(text(old)),
            SealedColumn::IdempotencyBody => {
                let (scope, key) = owner.split_once('\n').ok_or(StoreError::NotFound)?;
                Sql::new(
                    "UPDATE idempotency SET body = $1 WHERE scope = $2 AND key = $3 AND body = $4",
                )
                .bind(new)
                .bind(scope)
                .bind(key)
                .bind(old)
            }
        };
        Ok(sql.execute(&self.writer).await? > 0)
    }

    pub(crate) async fn gauges(&self, now: Timestamp) -> Result<Gauges> {
        let due = Sql::new(
            "SELECT COUNT(*) AS n FROM delivery
             WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= $1",
        )
        .bind(now)
        .fetch_optional_as(&self.reader, |r| r.int("n"))
        .await?
        .unwrap_or(0);
        // The state [`Endpoint::state`] gives, counted in the database.
        let by_state = Sql::new(
            "SELECT CASE WHEN disabled AND disabled_by IN ($1, $2) THEN $3
                         WHEN disabled THEN $4
                         WHEN paused_until > $8 THEN $7
                         WHEN failing_since IS NOT NULL THEN $5
                         ELSE $6 END AS state,
                    COUNT(*) AS n
             FROM endpoint GROUP BY 1",
        )
        .bind(DisabledBy::Gone.as_str())
        .bind(DisabledBy::Failing.as_str())
        .bind(EndpointState::AutoDisabled.as_str())
        .bind(EndpointState::Disabled.as_str())
        .bind(EndpointState::Failing.as_str())
        .bind(EndpointState::Active.as_str())
        .bind(EndpointState::Paused.as_str())
        .bind(now)
        .fetch_all_as(&self.reader, |r| Ok((r.text("state")?, r.int("n")?)))
        .await?;
        let count = |state: EndpointState| {
            by_state
                .iter()
                .filter(|(s, _)| s == state.as_str())
                .map(|(_, n)| n)
                .sum()
        };
        Ok(Gauges {
            due,
            endpoints_active: count(EndpointState::Active),
            endpoints_failing: count(EndpointState::Failing),
            endpoints_paused: count(EndpointState::Paused),
            endpoints_disabled: count(EndpointState::Disabled),
            endpoints_auto_disabled: count(EndpointState::AutoDisabled),
        })
    }

    pub(crate) async fn meta(&self, name: &str) -> Result<Option<String>> {
        Sql::new("SELECT value FROM herald_meta WHERE name = $1")
            .bind(name)
            .fetch_optional_as(&self.writer, |r| r.text("value"))
            .await
    }

    pub(crate) async fn set_meta(&self, name: &str, value: &str) -> Result<()> {
        Sql::new(
            "INSERT INTO herald_meta (name, value) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}
