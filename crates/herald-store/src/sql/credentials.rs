//! API tokens, portal grants and idempotency keys.

use crate::codec::{found, open_body, seal_body, IDEMPOTENCY_ABANDONED_MS};
use crate::model::*;
use crate::{Conflict, Result, StoreError};

use super::run::{Columns, Sql};
use super::{rows, Backend, SqlStore};

impl<DB: Backend> SqlStore<DB> {
    pub(crate) async fn idempotency_begin(
        &self,
        scope: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<IdempotencyState> {
        // Each step is one atomic statement, so requests racing on one key
        // (on several nodes, or beside SQLite's writer) see one winner. The
        // loop covers a key aborted between the steps.
        for _ in 0..3 {
            let inserted = Sql::new(
                "INSERT INTO idempotency (scope, key, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (scope, key) DO NOTHING",
            )
            .bind(scope)
            .bind(key)
            .bind(now)
            .execute(&self.writer)
            .await?;
            if inserted == 1 {
                return Ok(IdempotencyState::New);
            }
            // A request that never finished (the process died) is abandoned
            // after a while, so the client's retry can run.
            let taken = Sql::new(
                "UPDATE idempotency SET created_at = $1
                 WHERE scope = $2 AND key = $3 AND status IS NULL AND created_at < $4",
            )
            .bind(now)
            .bind(scope)
            .bind(key)
            .bind(crate::codec::ms(now) - IDEMPOTENCY_ABANDONED_MS)
            .execute(&self.writer)
            .await?;
            if taken == 1 {
                return Ok(IdempotencyState::New);
            }
            let row =
                Sql::new("SELECT status, body FROM idempotency WHERE scope = $1 AND key = $2")
                    .bind(scope)
                    .bind(key)
                    .fetch_optional(&self.writer)
                    .await?;
            let Some(r) = row else {
                continue;
            };
            return Ok(match r.opt_int("status")? {
                Some(status) => IdempotencyState::Done {
                    status: u16::try_from(status).unwrap_or(500),
                    body: match r.opt_bytes("body")? {
                        Some(stored) => open_body(&self.keyring, scope, key, &stored)?,
                        None => Vec::new(),
                    },
                },
                None => IdempotencyState::InProgress,
            });
        }
        Ok(IdempotencyState::InProgress)
    }

    pub(crate) async fn idempotency_finish(
        &self,
        scope: &str,
        key: &str,
        status: u16,
        body: &[u8],
    ) -> Result<()> {
        Sql::new("UPDATE idempotency SET status = $1, body = $2 WHERE scope = $3 AND key = $4")
            .bind(i64::from(status))
            .bind(seal_body(&self.keyring, scope, key, body))
            .bind(scope)
            .bind(key)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub(crate) async fn idempotency_abort(&self, scope: &str, key: &str) -> Result<()> {
        Sql::new("DELETE FROM idempotency WHERE scope = $1 AND key = $2 AND status IS NULL")
            .bind(scope)
            .bind(key)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub(crate) async fn create_api_token(&self, token: &ApiToken) -> Result<()> {
        Sql::new(
            "INSERT INTO api_token (id, org_id, app_id, name, created_at, expires_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&token.id)
        .bind(&token.org_id)
        .bind(&token.app_id)
        .bind(&token.name)
        .bind(token.created_at)
        .bind(token.expires_at)
        .bind(token.revoked_at)
        .on_conflict(Conflict::TokenId)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub(crate) async fn list_api_tokens(&self, org_id: Option<&str>) -> Result<Vec<ApiToken>> {
        Sql::new(
            "SELECT * FROM api_token WHERE CAST($1 AS TEXT) IS NULL OR org_id = $1
             ORDER BY created_at DESC, id DESC",
        )
        .bind(org_id)
        .fetch_all_as(&self.reader, rows::api_token)
        .await
    }

    pub(crate) async fn revoke_api_token(&self, id: &str, now: Timestamp) -> Result<ApiToken> {
        Sql::new(
            "UPDATE api_token SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 RETURNING *",
        )
        .bind(now)
        .bind(id)
        .fetch_optional_as(&self.writer, rows::api_token)
        .await?
        .ok_or(StoreError::NotFound)
    }

    pub(crate) async fn revoked_api_tokens(&self, now: Timestamp) -> Result<Vec<String>> {
        Sql::new(
            "SELECT id FROM api_token
             WHERE revoked_at IS NOT NULL AND (expires_at IS NULL OR expires_at > $1)",
        )
        .bind(now)
        .fetch_all_as(&self.reader, |r| r.text("id"))
        .await
    }

    pub(crate) async fn create_portal_grant(&self, grant: &PortalGrant) -> Result<()> {
        Sql::new(
            "INSERT INTO portal_grant (id, org_id, app_id, read_only, session_id, created_at,
                 link_expires_at, expires_at, used_at, ended_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&grant.id)
        .bind(&grant.org_id)
        .bind(&grant.app_id)
        .bind(grant.read_only)
        .bind(&grant.session_id)
        .bind(grant.created_at)
        .bind(grant.link_expires_at)
        .bind(grant.expires_at)
        .bind(grant.used_at)
        .bind(grant.ended_at)
        .on_conflict(Conflict::GrantId)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub(crate) async fn use_portal_grant(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<PortalGrant>> {
        Sql::new(
            "UPDATE portal_grant SET used_at = $1
             WHERE id = $2 AND used_at IS NULL AND ended_at IS NULL AND link_expires_at > $1
             RETURNING *",
        )
        .bind(now)
        .bind(id)
        .fetch_optional_as(&self.writer, rows::portal_grant)
        .await
    }

    pub(crate) async fn get_portal_grant(&self, id: &str) -> Result<Option<PortalGrant>> {
        Sql::new("SELECT * FROM portal_grant WHERE id = $1")
            .bind(id)
            .fetch_optional_as(&self.reader, rows::portal_grant)
            .await
    }

    pub(crate) async fn end_portal_grant(&self, id: &str, now: Timestamp) -> Result<()> {
        let done =
            Sql::new("UPDATE portal_grant SET ended_at = COALESCE(ended_at, $1) WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&self.writer)
                .await?;
        found(done)
    }

    /// Ends every portal link and session of `app_id` at `at` (now, or later
    /// when a grace is given); those ending sooner keep their time.
    pub(crate) async fn expire_portal_grants(&self, app_id: &str, at: Timestamp) -> Result<u64> {
        Sql::new(
            "UPDATE portal_grant SET
                 expires_at = CASE WHEN expires_at > $1 THEN $1 ELSE expires_at END,
                 link_expires_at = CASE WHEN link_expires_at > $1 THEN $1 ELSE link_expires_at END
             WHERE app_id = $2 AND ended_at IS NULL AND expires_at > $1",
        )
        .bind(at)
        .bind(app_id)
        .execute(&self.writer)
        .await
    }

    pub(crate) async fn save_task(&self, t: &BackgroundTask) -> Result<()> {
        Sql::new(
            "INSERT INTO background_task (id, org_id, task, status, data, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE SET status = excluded.status, data = excluded.data,
                 updated_at = excluded.updated_at",
        )
        .bind(&t.id)
        .bind(&t.org_id)
        .bind(&t.task)
        .bind(&t.status)
        .bind(t.data.to_string())
        .bind(t.created_at)
        .bind(t.updated_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub(crate) async fn get_task(&self, org_id: &str, id: &str) -> Result<Option<BackgroundTask>> {
        Sql::new("SELECT * FROM background_task WHERE org_id = $1 AND id = $2")
            .bind(org_id)
            .bind(id)
            .fetch_optional_as(&self.reader, rows::background_task)
            .await
    }

    pub(crate) async fn list_tasks(
        &self,
        org_id: &str,
        status: Option<&str>,
        task: Option<&str>,
        page: &Page,
    ) -> Result<PageOf<BackgroundTask>> {
        let mut sql = Sql::new(
            "SELECT * FROM background_task WHERE org_id = $1
               AND (CAST($2 AS TEXT) IS NULL OR status = $2)
               AND (CAST($3 AS TEXT) IS NULL OR task = $3)",
        )
        .bind(org_id)
        .bind(status)
        .bind(task);
        super::lists::paginate(&mut sql, "id", page);
        self.page(sql, page, rows::background_task).await
    }
}
