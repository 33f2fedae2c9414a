//! Applications, event types and endpoints with their signing keys.

use crate::codec::{found, json_text, list_text, open_secret, seal_headers, seal_map, seal_secret};
use crate::model::*;
use crate::{Conflict, Keyring, Result};

use super::lists::paginate;
use super::run::{Columns, Sql};
use super::{by_id_or, commit, rows, Backend, SqlStore};

impl<DB: Backend> SqlStore<DB> {
    pub(crate) async fn ping(&self) -> Result<()> {
        Sql::new("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    pub(crate) async fn create_app(&self, app: &Application) -> Result<()> {
        let sql = Sql::new(
            "INSERT INTO application (uid, name, metadata, throttle_rate, updated_at, id, org_id,
                 created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        );
        app_fields(sql, app)
            .bind(&app.id)
            .bind(&app.org_id)
            .bind(app.created_at)
            .on_conflict(Conflict::ApplicationUid)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub(crate) async fn get_app(
        &self,
        org_id: &str,
        id_or_uid: &str,
    ) -> Result<Option<Application>> {
        Sql::new(by_id_or("application", "org_id", "uid"))
            .bind(org_id)
            .bind(id_or_uid)
            .fetch_optional_as(&self.reader, rows::app)
            .await
    }

    pub(crate) async fn list_apps(&self, org_id: &str, page: &Page) -> Result<PageOf<Application>> {
        let mut sql = Sql::new("SELECT * FROM application WHERE org_id = $1").bind(org_id);
        paginate(&mut sql, "id", page);
        self.page(sql, page, rows::app).await
    }

    pub(crate) async fn search_apps(
        &self,
        org_id: &str,
        query: &str,
        page: &Page,
    ) -> Result<PageOf<Application>> {
        // The query is matched as text: LIKE's wildcards in it are escaped.
        let escaped = query
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let mut sql = Sql::new(
            "SELECT * FROM application WHERE org_id = $1
               AND (LOWER(name) LIKE $2 ESCAPE '\\' OR LOWER(COALESCE(uid, '')) LIKE $2 ESCAPE '\\'
                    OR id = $3)",
        )
        .bind(org_id)
        .bind(format!("%{escaped}%"))
        .bind(query.to_string());
        paginate(&mut sql, "id", page);
        self.page(sql, page, rows::app).await
    }

    pub(crate) async fn update_app(&self, app: &Application) -> Result<()> {
        let sql = Sql::new(
            "UPDATE application SET uid = $1, name = $2, metadata = $3, throttle_rate = $4,
                 updated_at = $5
             WHERE id = $6 AND org_id = $7",
        );
        let done = app_fields(sql, app)
            .bind(&app.id)
            .bind(&app.org_id)
            .on_conflict(Conflict::ApplicationUid)
            .execute(&self.writer)
            .await?;
        found(done)
    }

    pub(crate) async fn delete_app(&self, org_id: &str, id: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        // Attempts have no foreign key to their endpoint (they outlive it), so the
        // application's are removed here.
        Sql::new(
            "DELETE FROM attempt WHERE app_id = $1
                 AND app_id IN (SELECT id FROM application WHERE org_id = $2)",
        )
        .bind(id)
        .bind(org_id)
        .execute(&mut tx)
        .await?;
        let done = Sql::new("DELETE FROM application WHERE id = $1 AND org_id = $2")
            .bind(id)
            .bind(org_id)
            .execute(&mut tx)
            .await?;
        found(done)?;
        commit(tx).await
    }

    pub(crate) async fn create_event_type(&self, et: &EventType) -> Result<()> {
        let sql = Sql::new(
            "INSERT INTO event_type (description, archived, deprecated, feature_flag, schemas,
                 public, validate_payload, updated_at, org_id, name, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        );
        event_type_fields(sql, et)
            .bind(&et.org_id)
            .bind(&et.name)
            .bind(et.created_at)
            .on_conflict(Conflict::EventTypeName)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub(crate) async fn get_event_type(
        &self,
        org_id: &str,
        name: &str,
    ) -> Result<Option<EventType>> {
        Sql::new("SELECT * FROM event_type WHERE org_id = $1 AND name = $2")
            .bind(org_id)
            .bind(name)
            .fetch_optional_as(&self.reader, rows::event_type)
            .await
    }

    pub(crate) async fn list_event_types(
        &self,
        org_id: &str,
        include_archived: bool,
        page: &Page,
    ) -> Result<PageOf<EventType>> {
        let mut sql = Sql::new("SELECT * FROM event_type WHERE org_id = $1").bind(org_id);
        if !include_archived {
            sql.push(" AND archived = FALSE");
        }
        paginate(&mut sql, "name", page);
        self.page(sql, page, rows::event_type).await
    }

    pub(crate) async fn update_event_type(&self, et: &EventType) -> Result<()> {
        let sql = Sql::new(
            "UPDATE event_type SET description = $1, archived = $2, deprecated = $3,
                 feature_flag = $4, schemas = $5, public = $6, validate_payload = $7,
                 updated_at = $8
             WHERE org_id = $9 AND name = $10",
        );
        let done = event_type_fields(sql, et)
            .bind(&et.org_id)
            .bind(&et.name)
            .execute(&self.writer)
            .await?;
        found(done)
    }

    pub(crate) async fn delete_event_type(&self, org_id: &str, name: &str) -> Result<()> {
        let done = Sql::new("DELETE FROM event_type WHERE org_id = $1 AND name = $2")
            .bind(org_id)
            .bind(name)
            .execute(&self.writer)
            .await?;
        found(done)
    }

    pub(crate) async fn create_endpoint(&self, ep: &Endpoint, secret: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        let sql = Sql::new(
            "INSERT INTO endpoint (uid, url, description, disabled, event_types, channels,
                 metadata, headers, throttle_rate, date_format, updated_at,
                 transformation_code, transformation_enabled, transformation_variables,
                 transformation_updated_at, filters, id, app_id, created_at, version)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                 $17, $18, $19, $20)",
        );
        endpoint_fields(sql, ep, &self.keyring)
            .bind(&ep.id)
            .bind(&ep.app_id)
            .bind(ep.created_at)
            .bind(ep.version)
            .on_conflict(Conflict::EndpointUid)
            .execute(&mut tx)
            .await?;
        self.add_secret(&mut tx, &ep.id, secret, ep.created_at)
            .await?;
        commit(tx).await
    }

    /// Adds a current signing key.
    async fn add_secret(
        &self,
        tx: &mut sqlx::Transaction<'_, DB>,
        endpoint_id: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<()> {
        Sql::new("INSERT INTO endpoint_secret (endpoint_id, key, created_at) VALUES ($1, $2, $3)")
            .bind(endpoint_id)
            .bind(seal_secret(&self.keyring, endpoint_id, key))
            .bind(now)
            .execute(tx)
            .await?;
        Ok(())
    }

    pub(crate) async fn get_endpoint(
        &self,
        app_id: &str,
        id_or_uid: &str,
    ) -> Result<Option<Endpoint>> {
        Sql::new(by_id_or("endpoint", "app_id", "uid"))
            .bind(app_id)
            .bind(id_or_uid)
            .fetch_optional_as(&self.reader, |r| rows::endpoint(&self.keyring, r))
            .await
    }

    pub(crate) async fn list_endpoints(
        &self,
        app_id: &str,
        page: &Page,
    ) -> Result<PageOf<Endpoint>> {
        let mut sql = Sql::new("SELECT * FROM endpoint WHERE app_id = $1").bind(app_id);
        paginate(&mut sql, "id", page);
        self.page(sql, page, |r| rows::endpoint(&self.keyring, r))
            .await
    }

    /// Saves the endpoint's own fields (never its health). Disabling it
    /// records who and when, and parks its pending deliveries; enabling it
    /// clears its failure run and makes what was parked due now.
    pub(crate) async fn update_endpoint(&self, ep: &Endpoint) -> Result<()> {
        let mut tx = self.begin().await?;
        let sql = Sql::new(
            "UPDATE endpoint SET uid = $1, url = $2, description = $3,
                 disabled_by = CASE WHEN NOT $4 THEN NULL WHEN disabled THEN disabled_by
                     ELSE $19 END,
                 disabled_at = CASE WHEN NOT $4 THEN NULL WHEN disabled THEN disabled_at
                     ELSE $11 END,
                 failing_since = CASE WHEN disabled AND NOT $4 THEN NULL ELSE failing_since END,
                 consecutive_failures = CASE WHEN disabled AND NOT $4 THEN 0
                     ELSE consecutive_failures END,
                 last_error = CASE WHEN disabled AND NOT $4 THEN NULL ELSE last_error END,
                 paused_until = CASE WHEN disabled AND NOT $4 THEN NULL ELSE paused_until END,
                 disabled = $4,
                 event_types = $5, channels = $6, metadata = $7, headers = $8,
                 throttle_rate = $9, date_format = $10, updated_at = $11,
                 transformation_code = $12, transformation_enabled = $13,
                 transformation_variables = $14, transformation_updated_at = $15, filters = $16,
                 version = $20
             WHERE id = $17 AND app_id = $18",
        );
        let done = endpoint_fields(sql, ep, &self.keyring)
            .bind(&ep.id)
            .bind(&ep.app_id)
            .bind(DisabledBy::Manual.as_str())
            .bind(ep.version)
            .on_conflict(Conflict::EndpointUid)
            .execute(&mut tx)
            .await?;
        found(done)?;
        if ep.disabled {
            park(&mut tx, &ep.id).await?;
        } else {
            unpark(&mut tx, &ep.id, ep.updated_at).await?;
        }
        commit(tx).await
    }

    pub(crate) async fn delete_endpoint(&self, app_id: &str, id: &str) -> Result<()> {
        let done = Sql::new("DELETE FROM endpoint WHERE id = $1 AND app_id = $2")
            .bind(id)
            .bind(app_id)
            .execute(&self.writer)
            .await?;
        found(done)
    }

    /// Disables an enabled endpoint on Herald's own account, parking its
    /// pending deliveries. `false`: it was already disabled (or is gone).
    pub(crate) async fn disable_endpoint(
        &self,
        endpoint_id: &str,
        by: DisabledBy,
        now: Timestamp,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = Sql::new(
            "UPDATE endpoint SET disabled = TRUE, disabled_by = $1, disabled_at = $2, updated_at = $2
             WHERE id = $3 AND disabled = FALSE",
        )
        .bind(by.as_str())
        .bind(now)
        .bind(endpoint_id)
        .execute(&mut tx)
        .await?;
        if done == 0 {
            return Ok(false);
        }
        park(&mut tx, endpoint_id).await?;
        commit(tx).await?;
        Ok(true)
    }

    pub(crate) async fn secrets(
        &self,
        endpoint_id: &str,
        now: Timestamp,
    ) -> Result<Vec<SecretKey>> {
        Sql::new(
            "SELECT key, expires_at FROM endpoint_secret
             WHERE endpoint_id = $1 AND (expires_at IS NULL OR expires_at > $2)
             ORDER BY expires_at IS NOT NULL, created_at DESC",
        )
        .bind(endpoint_id)
        .bind(now)
        .fetch_all_as(&self.reader, |r| {
            Ok(SecretKey {
                key: open_secret(&self.keyring, endpoint_id, &r.text("key")?)?,
                expires_at: r.opt_time("expires_at")?,
            })
        })
        .await
    }

    pub(crate) async fn rotate_secret(
        &self,
        endpoint_id: &str,
        new_key: &str,
        old_until: Timestamp,
        now: Timestamp,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        // Keys already rotated out end no later than the one being rotated out
        // now, which ends at `old_until`: at most two keys sign at once.
        Sql::new(
            "UPDATE endpoint_secret
             SET expires_at = CASE WHEN expires_at IS NULL OR expires_at > $1 THEN $1
                                   ELSE expires_at END
             WHERE endpoint_id = $2",
        )
        .bind(old_until)
        .bind(endpoint_id)
        .execute(&mut tx)
        .await?;
        Sql::new("DELETE FROM endpoint_secret WHERE endpoint_id = $1 AND expires_at <= $2")
            .bind(endpoint_id)
            .bind(now)
            .execute(&mut tx)
            .await?;
        self.add_secret(&mut tx, endpoint_id, new_key, now).await?;
        commit(tx).await
    }

    pub(crate) async fn endpoint_stats(
        &self,
        endpoint_id: &str,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
    ) -> Result<EndpointStats> {
        let rows = Sql::new(
            "SELECT status, COUNT(*) AS n FROM delivery
             WHERE endpoint_id = $1 AND created_at >= $2 AND created_at < $3
             GROUP BY status",
        )
        .bind(endpoint_id)
        .bind(since.map_or(i64::MIN, crate::codec::ms))
        .bind(until.map_or(i64::MAX, crate::codec::ms))
        .fetch_all(&self.reader)
        .await?;
        let mut stats = EndpointStats::default();
        for r in rows {
            let n = r.int("n")?;
            match r.status("status")? {
                MessageStatus::Success => stats.success += n,
                MessageStatus::Pending => stats.pending += n,
                MessageStatus::Fail => stats.fail += n,
                MessageStatus::Sending => stats.sending += n,
            }
        }
        Ok(stats)
    }
}

/// The application's fields an update sets, as `$1` to `$5` (an insert binds
/// its key after them).
fn app_fields<'a>(sql: Sql<'a>, app: &'a Application) -> Sql<'a> {
    sql.bind(&app.uid)
        .bind(&app.name)
        .bind(json_text(&app.metadata))
        .bind(app.throttle_rate)
        .bind(app.updated_at)
}

/// The event type's fields an update sets, as `$1` to `$8`.
fn event_type_fields<'a>(sql: Sql<'a>, et: &'a EventType) -> Sql<'a> {
    sql.bind(&et.description)
        .bind(et.archived)
        .bind(et.deprecated)
        .bind(&et.feature_flag)
        .bind(et.schemas.as_ref().map(json_text))
        .bind(et.public)
        .bind(et.validate_payload)
        .bind(et.updated_at)
}

/// The endpoint's fields an update sets, as `$1` to `$16`, its headers and
/// transformation variables sealed with `keyring`.
fn endpoint_fields<'a>(sql: Sql<'a>, ep: &'a Endpoint, keyring: &Keyring) -> Sql<'a> {
    sql.bind(&ep.uid)
        .bind(&ep.url)
        .bind(&ep.description)
        .bind(ep.disabled)
        .bind(list_text(&ep.event_types))
        .bind(list_text(&ep.channels))
        .bind(json_text(&ep.metadata))
        .bind(seal_headers(keyring, &ep.id, &ep.headers))
        .bind(ep.throttle_rate)
        .bind(&ep.date_format)
        .bind(ep.updated_at)
        .bind(&ep.transformation.code)
        .bind(ep.transformation.enabled)
        .bind(seal_map(
            keyring,
            SealedColumn::TransformationVariables,
            &ep.id,
            &ep.transformation.variables,
        ))
        .bind(ep.transformation.updated_at)
        .bind(serde_json::to_string(&ep.filters).expect("rules serialize"))
}

impl<DB: Backend> SqlStore<DB> {
    /// Records a worker's breaker pause (the latest wins).
    pub(crate) async fn pause_endpoint(&self, endpoint_id: &str, until: Timestamp) -> Result<()> {
        Sql::new(
            "UPDATE endpoint SET paused_until = $1
             WHERE id = $2 AND (paused_until IS NULL OR paused_until < $1)",
        )
        .bind(until)
        .bind(endpoint_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}

/// Parks a disabled endpoint's pending deliveries: nothing claims them (no
/// `next_attempt_at`) and they keep their status, pending or sending, so
/// [`unpark`] finds them. One in flight is parked when its attempt is
/// recorded.
async fn park<DB: Backend>(tx: &mut sqlx::Transaction<'_, DB>, endpoint_id: &str) -> Result<()> {
    Sql::new(
        "UPDATE delivery SET next_attempt_at = NULL, lease_until = NULL
         WHERE endpoint_id = $1 AND next_attempt_at IS NOT NULL",
    )
    .bind(endpoint_id)
    .execute(tx)
    .await?;
    Ok(())
}

/// Makes a re-enabled endpoint's parked deliveries due at `now`.
async fn unpark<DB: Backend>(
    tx: &mut sqlx::Transaction<'_, DB>,
    endpoint_id: &str,
    now: Timestamp,
) -> Result<()> {
    Sql::new(
        "UPDATE delivery SET next_attempt_at = $1, updated_at = $1
         WHERE endpoint_id = $2 AND next_attempt_at IS NULL AND status IN ($3, $4)",
    )
    .bind(now)
    .bind(endpoint_id)
    .bind(MessageStatus::Pending)
    .bind(MessageStatus::Sending)
    .execute(tx)
    .await?;
    Ok(())
}
