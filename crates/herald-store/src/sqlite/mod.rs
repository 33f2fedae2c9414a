//! The embedded store. SQLite allows one writer at a time, so writes go through a
//! pool of exactly one connection (no `SQLITE_BUSY` between our own writers) and
//! reads through a separate pool that WAL lets run beside the writer.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};

use crate::model::*;
use crate::{Keyring, Result, Store, StoreError};

mod batch;
use batch::Batcher;

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

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Group commit of new messages and attempt outcomes (through `writer`).
    batch: Batcher,
    /// Seals and opens the secrets this store keeps.
    keyring: Arc<Keyring>,
}

use crate::codec::*;

fn row_app(r: &SqliteRow) -> Result<Application> {
    Ok(Application {
        id: r.get("id"),
        org_id: r.get("org_id"),
        uid: r.get("uid"),
        name: r.get("name"),
        metadata: parse_json(r.get("metadata"))?,
        throttle_rate: r.get("throttle_rate"),
        created_at: from_ms(r.get("created_at")),
        updated_at: from_ms(r.get("updated_at")),
    })
}

fn row_event_type(r: &SqliteRow) -> Result<EventType> {
    let schemas: Option<String> = r.get("schemas");
    Ok(EventType {
        org_id: r.get("org_id"),
        name: r.get("name"),
        description: r.get("description"),
        archived: r.get("archived"),
        deprecated: r.get("deprecated"),
        feature_flag: r.get("feature_flag"),
        schemas: schemas.as_deref().map(parse_json).transpose()?,
        public: r.get("public"),
        validate_payload: r.get("validate_payload"),
        created_at: from_ms(r.get("created_at")),
        updated_at: from_ms(r.get("updated_at")),
    })
}

fn row_endpoint(keyring: &Keyring, r: &SqliteRow) -> Result<Endpoint> {
    let id: String = r.get("id");
    let headers: String = r.get("headers");
    Ok(Endpoint {
        headers: open_headers(keyring, &id, &headers)?,
        id,
        app_id: r.get("app_id"),
        uid: r.get("uid"),
        url: r.get("url"),
        description: r.get("description"),
        disabled: r.get("disabled"),
        event_types: parse_list(r.get("event_types"))?,
        channels: parse_list(r.get("channels"))?,
        metadata: parse_json(r.get("metadata"))?,
        throttle_rate: r.get("throttle_rate"),
        date_format: r.get("date_format"),
        created_at: from_ms(r.get("created_at")),
        updated_at: from_ms(r.get("updated_at")),
    })
}

fn row_message(r: &SqliteRow) -> Result<Message> {
    Ok(Message {
        id: r.get("id"),
        app_id: r.get("app_id"),
        event_type: r.get("event_type"),
        event_id: r.get("event_id"),
        channels: parse_list(r.get("channels"))?,
        payload: r.get("payload"),
        created_at: from_ms(r.get("created_at")),
        expires_at: opt_ms(r.get("expires_at")),
    })
}

fn row_delivery(r: &SqliteRow) -> Delivery {
    Delivery {
        msg_id: r.get("d_msg_id"),
        endpoint_id: r.get("d_endpoint_id"),
        app_id: r.get("d_app_id"),
        status: MessageStatus::from_i64(r.get("d_status")),
        attempts: r.get("d_attempts"),
        next_attempt_at: opt_ms(r.get("d_next_attempt_at")),
        created_at: from_ms(r.get("d_created_at")),
        updated_at: from_ms(r.get("d_updated_at")),
    }
}

fn row_attempt(r: &SqliteRow) -> Attempt {
    let trigger: i64 = r.get("trigger_type");
    Attempt {
        id: r.get("id"),
        msg_id: r.get("msg_id"),
        endpoint_id: r.get("endpoint_id"),
        app_id: r.get("app_id"),
        url: r.get("url"),
        status: MessageStatus::from_i64(r.get("status")),
        response_status_code: r.get("response_status_code"),
        response: r.get("response"),
        response_duration_ms: r.get("response_duration_ms"),
        trigger_type: if trigger == 1 {
            TriggerType::Manual
        } else {
            TriggerType::Scheduled
        },
        created_at: from_ms(r.get("created_at")),
    }
}

/// The due deliveries a claim takes (binds: now, the endpoints to skip as a
/// JSON list, the limit, and a time they fell due after). It walks the partial index `delivery_due`, which
/// covers it (skipping a busy endpoint's rows reads no table row); the index
/// tests below keep it that way.
const CLAIM_DUE_SELECT: &str = "SELECT rowid FROM delivery
     WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ?1 AND next_attempt_at > ?4
       AND endpoint_id NOT IN (SELECT value FROM json_each(?2))
     ORDER BY next_attempt_at LIMIT ?3";

/// Everything a worker needs to send the deliveries whose rowids follow
/// (append a parenthesised subquery or list).
const JOB_SELECT: &str = "SELECT d.rowid AS rid, d.msg_id, d.endpoint_id, d.attempts, d.manual,
         m.app_id, a.org_id, m.event_type, m.payload, e.url, e.headers, e.disabled, e.date_format
     FROM delivery d
     JOIN message m ON m.id = d.msg_id
     JOIN endpoint e ON e.id = d.endpoint_id
     JOIN application a ON a.id = m.app_id
     WHERE d.rowid IN";

/// Payloads to expunge: up to `?2` that expired by `?1` and whose message has
/// no pending delivery (an accepted message must still be delivered as sent).
const PRUNE_PAYLOADS_SELECT: &str = "SELECT m.rowid FROM message m
     WHERE m.expires_at IS NOT NULL AND m.expires_at <= ?1
       AND NOT EXISTS (
           SELECT 1 FROM delivery d WHERE d.msg_id = m.id AND d.next_attempt_at IS NOT NULL)
     LIMIT ?2";

/// Attempts to delete: up to `?2` created before `?1`.
const PRUNE_ATTEMPTS_SELECT: &str = "SELECT rowid FROM attempt WHERE created_at < ?1 LIMIT ?2";

const DELIVERY_COLUMNS: &str = "d.msg_id AS d_msg_id, d.endpoint_id AS d_endpoint_id, \
     d.app_id AS d_app_id, d.status AS d_status, d.attempts AS d_attempts, \
     d.next_attempt_at AS d_next_attempt_at, d.created_at AS d_created_at, \
     d.updated_at AS d_updated_at";

/// Adds keyset pagination on `key_column` and the limit (one extra row to learn
/// whether the page is the last).
fn paginate(qb: &mut QueryBuilder<'_, Sqlite>, key_column: &str, page: &Page) {
    if let Some(it) = &page.iterator {
        qb.push(format!(
            " AND {key_column} {} ",
            if page.descending { "<" } else { ">" }
        ));
        qb.push_bind(it.clone());
    }
    qb.push(format!(
        " ORDER BY {key_column} {} LIMIT ",
        if page.descending { "DESC" } else { "ASC" }
    ));
    qb.push_bind(i64::from(page.limit) + 1);
}

fn page_of<T>(mut items: Vec<T>, page: &Page) -> PageOf<T> {
    let done = items.len() <= page.limit as usize;
    items.truncate(page.limit as usize);
    PageOf { items, done }
}

fn push_message_filter(qb: &mut QueryBuilder<'_, Sqlite>, alias: &str, filter: &ListFilter) {
    if let Some(channel) = &filter.channel {
        qb.push(format!(
            " AND EXISTS (SELECT 1 FROM json_each({alias}.channels) WHERE value = "
        ));
        qb.push_bind(channel.clone());
        qb.push(")");
    }
    if !filter.event_types.is_empty() {
        qb.push(format!(" AND {alias}.event_type IN ("));
        let mut sep = qb.separated(", ");
        for t in &filter.event_types {
            sep.push_bind(t.clone());
        }
        qb.push(")");
    }
}

/// The message list of an application (`list_messages`), after whatever
/// `qb` already holds (the index tests put `EXPLAIN QUERY PLAN` there).
fn push_list_messages(
    qb: &mut QueryBuilder<'_, Sqlite>,
    app_id: &str,
    filter: &ListFilter,
    page: &Page,
) {
    qb.push("SELECT * FROM message m WHERE m.app_id = ");
    qb.push_bind(app_id.to_string());
    push_message_filter(qb, "m", filter);
    push_time_window(qb, "m.created_at", filter);
    paginate(qb, "m.id", page);
}

/// The attempts to an endpoint (`list_attempts_by_endpoint`).
fn push_list_attempts_by_endpoint(
    qb: &mut QueryBuilder<'_, Sqlite>,
    app_id: &str,
    endpoint_id: &str,
    filter: &ListFilter,
    page: &Page,
) {
    qb.push("SELECT a.* FROM attempt a WHERE a.app_id = ");
    qb.push_bind(app_id.to_string());
    qb.push(" AND a.endpoint_id = ");
    qb.push_bind(endpoint_id.to_string());
    push_attempt_filter(qb, filter);
    paginate(qb, "a.id", page);
}

/// The attempts of a message (`list_attempts_by_msg`).
fn push_list_attempts_by_msg(
    qb: &mut QueryBuilder<'_, Sqlite>,
    app_id: &str,
    msg_id: &str,
    filter: &ListFilter,
    page: &Page,
) {
    qb.push("SELECT a.* FROM attempt a WHERE a.app_id = ");
    qb.push_bind(app_id.to_string());
    qb.push(" AND a.msg_id = ");
    qb.push_bind(msg_id.to_string());
    if let Some(ep) = &filter.endpoint_id {
        qb.push(" AND a.endpoint_id = ");
        qb.push_bind(ep.clone());
    }
    push_attempt_filter(qb, filter);
    paginate(qb, "a.id", page);
}

impl SqliteStore {
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
        let batch = Batcher::start(writer.clone());
        Ok(SqliteStore {
            writer,
            reader,
            batch,
            keyring,
        })
    }

    /// Claims due deliveries (those that fell due after `since`, if given).
    async fn claim(
        &self,
        now: Timestamp,
        since: Option<Timestamp>,
        lease_until: Timestamp,
        limit: u32,
        skip_endpoints: &[String],
    ) -> Result<Vec<Job>> {
        let skip = serde_json::to_string(skip_endpoints).expect("strings serialize");
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        // A claimed delivery's next attempt is its lease's end: if this worker
        // dies, the delivery falls due again by itself, and one index on
        // next_attempt_at finds both new and abandoned work.
        // Two statements whatever the batch size (the writer is single, so
        // nothing else moves between them): read the due deliveries with all
        // they need, then lease them.
        let rows = sqlx::query(&format!("{JOB_SELECT} ({CLAIM_DUE_SELECT})"))
            .bind(ms(now))
            .bind(&skip)
            .bind(i64::from(limit))
            .bind(since.map_or(i64::MIN, ms))
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        let rowids: Vec<i64> = rows.iter().map(|r| r.get("rid")).collect();
        if !rowids.is_empty() {
            // A claimed delivery's next attempt is its lease's end: if this
            // worker dies, the delivery falls due again by itself, and one index
            // on next_attempt_at finds both new and abandoned work.
            sqlx::query(
                "UPDATE delivery SET status = 3, lease_until = ?, next_attempt_at = ?, updated_at = ?
                 WHERE rowid IN (SELECT value FROM json_each(?))",
            )
            .bind(ms(lease_until))
            .bind(ms(lease_until))
            .bind(ms(now))
            .bind(serde_json::to_string(&rowids).expect("integers serialize"))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        let jobs = rows
            .iter()
            .map(|r| row_job(&self.keyring, r))
            .collect::<Result<Vec<_>>>()?;
        tx.commit().await.map_err(db_err)?;
        Ok(jobs)
    }

    async fn fetch_secrets(&self, endpoint_id: &str, now: Timestamp) -> Result<Vec<SecretKey>> {
        let rows = sqlx::query(
            "SELECT key, expires_at FROM endpoint_secret
             WHERE endpoint_id = ? AND (expires_at IS NULL OR expires_at > ?)
             ORDER BY expires_at IS NOT NULL, created_at DESC",
        )
        .bind(endpoint_id)
        .bind(ms(now))
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(SecretKey {
                    key: open_secret(&self.keyring, endpoint_id, r.get("key"))?,
                    expires_at: opt_ms(r.get("expires_at")),
                })
            })
            .collect()
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn create_app(&self, app: &Application) -> Result<()> {
        sqlx::query(
            "INSERT INTO application (id, org_id, uid, name, metadata, throttle_rate, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&app.id)
        .bind(&app.org_id)
        .bind(&app.uid)
        .bind(&app.name)
        .bind(json_text(&app.metadata))
        .bind(app.throttle_rate)
        .bind(ms(app.created_at))
        .bind(ms(app.updated_at))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn get_app(&self, org_id: &str, id_or_uid: &str) -> Result<Option<Application>> {
        let row = sqlx::query(
            "SELECT * FROM application WHERE org_id = ? AND (id = ? OR uid = ?)
             ORDER BY id = ? DESC LIMIT 1",
        )
        .bind(org_id)
        .bind(id_or_uid)
        .bind(id_or_uid)
        .bind(id_or_uid)
        .fetch_optional(&self.reader)
        .await
        .map_err(db_err)?;
        row.as_ref().map(row_app).transpose()
    }

    async fn list_apps(&self, org_id: &str, page: &Page) -> Result<PageOf<Application>> {
        let mut qb = QueryBuilder::new("SELECT * FROM application WHERE org_id = ");
        qb.push_bind(org_id.to_string());
        paginate(&mut qb, "id", page);
        let rows = qb.build().fetch_all(&self.reader).await.map_err(db_err)?;
        let items = rows.iter().map(row_app).collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, page))
    }

    async fn update_app(&self, app: &Application) -> Result<()> {
        let done = sqlx::query(
            "UPDATE application SET uid = ?, name = ?, metadata = ?, throttle_rate = ?, updated_at = ?
             WHERE id = ? AND org_id = ?",
        )
        .bind(&app.uid)
        .bind(&app.name)
        .bind(json_text(&app.metadata))
        .bind(app.throttle_rate)
        .bind(ms(app.updated_at))
        .bind(&app.id)
        .bind(&app.org_id)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        found(done.rows_affected())
    }

    async fn delete_app(&self, org_id: &str, id: &str) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        // Attempts have no foreign key to their endpoint (they outlive it), so the
        // application's are removed here.
        sqlx::query(
            "DELETE FROM attempt WHERE app_id = ? AND app_id IN (SELECT id FROM application WHERE org_id = ?)",
        )
        .bind(id)
        .bind(org_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let done = sqlx::query("DELETE FROM application WHERE id = ? AND org_id = ?")
            .bind(id)
            .bind(org_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await.map_err(db_err)
    }

    async fn create_event_type(&self, et: &EventType) -> Result<()> {
        sqlx::query(
            "INSERT INTO event_type (org_id, name, description, archived, deprecated, feature_flag, schemas,
                 public, validate_payload, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&et.org_id)
        .bind(&et.name)
        .bind(&et.description)
        .bind(et.archived)
        .bind(et.deprecated)
        .bind(&et.feature_flag)
        .bind(et.schemas.as_ref().map(json_text))
        .bind(et.public)
        .bind(et.validate_payload)
        .bind(ms(et.created_at))
        .bind(ms(et.updated_at))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn get_event_type(&self, org_id: &str, name: &str) -> Result<Option<EventType>> {
        let row = sqlx::query("SELECT * FROM event_type WHERE org_id = ? AND name = ?")
            .bind(org_id)
            .bind(name)
            .fetch_optional(&self.reader)
            .await
            .map_err(db_err)?;
        row.as_ref().map(row_event_type).transpose()
    }

    async fn list_event_types(
        &self,
        org_id: &str,
        include_archived: bool,
        page: &Page,
    ) -> Result<PageOf<EventType>> {
        let mut qb = QueryBuilder::new("SELECT * FROM event_type WHERE org_id = ");
        qb.push_bind(org_id.to_string());
        if !include_archived {
            qb.push(" AND archived = 0");
        }
        paginate(&mut qb, "name", page);
        let rows = qb.build().fetch_all(&self.reader).await.map_err(db_err)?;
        let items = rows
            .iter()
            .map(row_event_type)
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, page))
    }

    async fn update_event_type(&self, et: &EventType) -> Result<()> {
        let done = sqlx::query(
            "UPDATE event_type SET description = ?, archived = ?, deprecated = ?, feature_flag = ?,
                 schemas = ?, public = ?, validate_payload = ?, updated_at = ?
             WHERE org_id = ? AND name = ?",
        )
        .bind(&et.description)
        .bind(et.archived)
        .bind(et.deprecated)
        .bind(&et.feature_flag)
        .bind(et.schemas.as_ref().map(json_text))
        .bind(et.public)
        .bind(et.validate_payload)
        .bind(ms(et.updated_at))
        .bind(&et.org_id)
        .bind(&et.name)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        found(done.rows_affected())
    }

    async fn delete_event_type(&self, org_id: &str, name: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM event_type WHERE org_id = ? AND name = ?")
            .bind(org_id)
            .bind(name)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        found(done.rows_affected())
    }

    async fn create_endpoint(&self, ep: &Endpoint, secret: &str) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO endpoint (id, app_id, uid, url, description, disabled, event_types, channels,
                 metadata, headers, throttle_rate, date_format, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&ep.id)
        .bind(&ep.app_id)
        .bind(&ep.uid)
        .bind(&ep.url)
        .bind(&ep.description)
        .bind(ep.disabled)
        .bind(list_text(&ep.event_types))
        .bind(list_text(&ep.channels))
        .bind(json_text(&ep.metadata))
        .bind(seal_headers(&self.keyring, &ep.id, &ep.headers))
        .bind(ep.throttle_rate)
        .bind(&ep.date_format)
        .bind(ms(ep.created_at))
        .bind(ms(ep.updated_at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query("INSERT INTO endpoint_secret (endpoint_id, key, created_at) VALUES (?, ?, ?)")
            .bind(&ep.id)
            .bind(seal_secret(&self.keyring, &ep.id, secret))
            .bind(ms(ep.created_at))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn get_endpoint(&self, app_id: &str, id_or_uid: &str) -> Result<Option<Endpoint>> {
        let row = sqlx::query(
            "SELECT * FROM endpoint WHERE app_id = ? AND (id = ? OR uid = ?)
             ORDER BY id = ? DESC LIMIT 1",
        )
        .bind(app_id)
        .bind(id_or_uid)
        .bind(id_or_uid)
        .bind(id_or_uid)
        .fetch_optional(&self.reader)
        .await
        .map_err(db_err)?;
        row.as_ref()
            .map(|r| row_endpoint(&self.keyring, r))
            .transpose()
    }

    async fn list_endpoints(&self, app_id: &str, page: &Page) -> Result<PageOf<Endpoint>> {
        let mut qb = QueryBuilder::new("SELECT * FROM endpoint WHERE app_id = ");
        qb.push_bind(app_id.to_string());
        paginate(&mut qb, "id", page);
        let rows = qb.build().fetch_all(&self.reader).await.map_err(db_err)?;
        let items = rows
            .iter()
            .map(|r| row_endpoint(&self.keyring, r))
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, page))
    }

    async fn update_endpoint(&self, ep: &Endpoint) -> Result<()> {
        let done = sqlx::query(
            "UPDATE endpoint SET uid = ?, url = ?, description = ?, disabled = ?, event_types = ?,
                 channels = ?, metadata = ?, headers = ?, throttle_rate = ?, date_format = ?,
                 updated_at = ?
             WHERE id = ? AND app_id = ?",
        )
        .bind(&ep.uid)
        .bind(&ep.url)
        .bind(&ep.description)
        .bind(ep.disabled)
        .bind(list_text(&ep.event_types))
        .bind(list_text(&ep.channels))
        .bind(json_text(&ep.metadata))
        .bind(seal_headers(&self.keyring, &ep.id, &ep.headers))
        .bind(ep.throttle_rate)
        .bind(&ep.date_format)
        .bind(ms(ep.updated_at))
        .bind(&ep.id)
        .bind(&ep.app_id)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        found(done.rows_affected())
    }

    async fn delete_endpoint(&self, app_id: &str, id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM endpoint WHERE id = ? AND app_id = ?")
            .bind(id)
            .bind(app_id)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        found(done.rows_affected())
    }

    async fn disable_endpoint(&self, endpoint_id: &str) -> Result<()> {
        let now = ms(Utc::now());
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query("UPDATE endpoint SET disabled = 1, updated_at = ? WHERE id = ?")
            .bind(now)
            .bind(endpoint_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "UPDATE delivery SET status = 2, next_attempt_at = NULL, lease_until = NULL, updated_at = ?
             WHERE endpoint_id = ? AND next_attempt_at IS NOT NULL",
        )
        .bind(now)
        .bind(endpoint_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn secrets(&self, endpoint_id: &str, now: Timestamp) -> Result<Vec<SecretKey>> {
        self.fetch_secrets(endpoint_id, now).await
    }

    async fn rotate_secret(
        &self,
        endpoint_id: &str,
        new_key: &str,
        old_until: Timestamp,
        now: Timestamp,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        // Keys already rotated out end no later than the one being rotated out now:
        // at most two keys sign at once.
        sqlx::query(
            "UPDATE endpoint_secret SET expires_at = MIN(expires_at, ?)
             WHERE endpoint_id = ? AND expires_at IS NOT NULL",
        )
        .bind(ms(old_until))
        .bind(endpoint_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "UPDATE endpoint_secret SET expires_at = ? WHERE endpoint_id = ? AND expires_at IS NULL",
        )
        .bind(ms(old_until))
        .bind(endpoint_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query("DELETE FROM endpoint_secret WHERE endpoint_id = ? AND expires_at <= ?")
            .bind(endpoint_id)
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query("INSERT INTO endpoint_secret (endpoint_id, key, created_at) VALUES (?, ?, ?)")
            .bind(endpoint_id)
            .bind(seal_secret(&self.keyring, endpoint_id, new_key))
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn endpoint_stats(
        &self,
        endpoint_id: &str,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
    ) -> Result<EndpointStats> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM delivery
             WHERE endpoint_id = ? AND created_at >= ? AND created_at < ?
             GROUP BY status",
        )
        .bind(endpoint_id)
        .bind(since.map(ms).unwrap_or(i64::MIN))
        .bind(until.map(ms).unwrap_or(i64::MAX))
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        let mut stats = EndpointStats::default();
        for r in rows {
            let n: i64 = r.get("n");
            match MessageStatus::from_i64(r.get("status")) {
                MessageStatus::Success => stats.success += n,
                MessageStatus::Pending => stats.pending += n,
                MessageStatus::Fail => stats.fail += n,
                MessageStatus::Sending => stats.sending += n,
            }
        }
        Ok(stats)
    }

    async fn recover(
        &self,
        endpoint_id: &str,
        since: Timestamp,
        until: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE delivery SET status = 1, next_attempt_at = ?, lease_until = NULL, manual = 1,
                 updated_at = ?
             WHERE endpoint_id = ? AND status = 2 AND created_at >= ? AND created_at < ?",
        )
        .bind(ms(now))
        .bind(ms(now))
        .bind(endpoint_id)
        .bind(ms(since))
        .bind(until.map(ms).unwrap_or(i64::MAX))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn create_message(&self, msg: &Message, targets: &Targets) -> Result<Vec<String>> {
        self.batch.create_message(msg, targets).await
    }

    async fn get_message(&self, app_id: &str, id_or_event_id: &str) -> Result<Option<Message>> {
        let row = sqlx::query(
            "SELECT * FROM message WHERE app_id = ? AND (id = ? OR event_id = ?)
             ORDER BY id = ? DESC LIMIT 1",
        )
        .bind(app_id)
        .bind(id_or_event_id)
        .bind(id_or_event_id)
        .bind(id_or_event_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(db_err)?;
        row.as_ref().map(row_message).transpose()
    }

    async fn list_messages(
        &self,
        app_id: &str,
        filter: &ListFilter,
        page: &Page,
    ) -> Result<PageOf<Message>> {
        let mut qb = QueryBuilder::new("");
        push_list_messages(&mut qb, app_id, filter, page);
        let rows = qb.build().fetch_all(&self.reader).await.map_err(db_err)?;
        let items = rows.iter().map(row_message).collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, page))
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
        skip_endpoints: &[String],
    ) -> Result<Vec<Job>> {
        self.claim(now, None, lease_until, limit, skip_endpoints)
            .await
    }

    async fn claim_recent(
        &self,
        now: Timestamp,
        since: Timestamp,
        lease_until: Timestamp,
        limit: u32,
        skip_endpoints: &[String],
    ) -> Result<Vec<Job>> {
        self.claim(now, Some(since), lease_until, limit, skip_endpoints)
            .await
    }

    async fn claim_delivery(
        &self,
        msg_id: &str,
        endpoint_id: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<Job>> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let row = sqlx::query(&format!(
            "{JOB_SELECT} (SELECT rowid FROM delivery
                 WHERE msg_id = ? AND endpoint_id = ? AND next_attempt_at <= ?)"
        ))
        .bind(msg_id)
        .bind(endpoint_id)
        .bind(ms(now))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(row) = row else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE delivery SET status = 3, lease_until = ?, next_attempt_at = ?, updated_at = ?
             WHERE rowid = ?",
        )
        .bind(ms(lease_until))
        .bind(ms(lease_until))
        .bind(ms(now))
        .bind(row.get::<i64, _>("rid"))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let job = row_job(&self.keyring, &row)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some(job))
    }

    async fn record_attempt(&self, attempt: &Attempt, next: &Next) -> Result<()> {
        self.batch.record_attempt(attempt, next).await
    }

    async fn release_claim(
        &self,
        msg_id: &str,
        endpoint_id: &str,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE delivery SET status = 1, lease_until = NULL, next_attempt_at = ?, updated_at = ?
             WHERE msg_id = ? AND endpoint_id = ? AND lease_until = ?",
        )
        .bind(ms(now))
        .bind(ms(now))
        .bind(msg_id)
        .bind(endpoint_id)
        .bind(ms(lease_until))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn recover_after_restart(&self) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE delivery SET lease_until = NULL, status = 1,
                 next_attempt_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000
             WHERE lease_until IS NOT NULL AND next_attempt_at IS NOT NULL",
        )
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn wait_for_work(&self, timeout: Duration) {
        tokio::time::sleep(timeout).await;
    }

    async fn next_due(&self) -> Result<Option<Timestamp>> {
        let row = sqlx::query(
            "SELECT MIN(next_attempt_at) AS due FROM delivery WHERE next_attempt_at IS NOT NULL",
        )
        .fetch_one(&self.reader)
        .await
        .map_err(db_err)?;
        Ok(opt_ms(row.get("due")))
    }

    async fn resend(
        &self,
        app_id: &str,
        msg_id: &str,
        endpoint_id: &str,
        now: Timestamp,
    ) -> Result<()> {
        // An existing delivery is queued again (unless one is already in flight);
        // a message that never went to this endpoint gets a new delivery.
        sqlx::query(
            "INSERT INTO delivery (msg_id, endpoint_id, app_id, status, attempts, next_attempt_at,
                 manual, created_at, updated_at)
             VALUES (?, ?, ?, 1, 0, ?, 1, ?, ?)
             ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET
                 status = CASE WHEN lease_until IS NULL THEN 1 ELSE status END,
                 next_attempt_at = excluded.next_attempt_at, manual = 1,
                 updated_at = excluded.updated_at",
        )
        .bind(msg_id)
        .bind(endpoint_id)
        .bind(app_id)
        .bind(ms(now))
        .bind(ms(now))
        .bind(ms(now))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn get_attempt(
        &self,
        app_id: &str,
        msg_id: &str,
        attempt_id: &str,
    ) -> Result<Option<Attempt>> {
        let row = sqlx::query("SELECT * FROM attempt WHERE app_id = ? AND msg_id = ? AND id = ?")
            .bind(app_id)
            .bind(msg_id)
            .bind(attempt_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(db_err)?;
        Ok(row.as_ref().map(row_attempt))
    }

    async fn list_attempts_by_endpoint(
        &self,
        app_id: &str,
        endpoint_id: &str,
        filter: &ListFilter,
        page: &Page,
    ) -> Result<PageOf<Attempt>> {
        let mut qb = QueryBuilder::new("");
        push_list_attempts_by_endpoint(&mut qb, app_id, endpoint_id, filter, page);
        let rows = qb.build().fetch_all(&self.reader).await.map_err(db_err)?;
        Ok(page_of(rows.iter().map(row_attempt).collect(), page))
    }

    async fn list_attempts_by_msg(
        &self,
        app_id: &str,
        msg_id: &str,
        filter: &ListFilter,
        page: &Page,
    ) -> Result<PageOf<Attempt>> {
        let mut qb = QueryBuilder::new("");
        push_list_attempts_by_msg(&mut qb, app_id, msg_id, filter, page);
        let rows = qb.build().fetch_all(&self.reader).await.map_err(db_err)?;
        Ok(page_of(rows.iter().map(row_attempt).collect(), page))
    }

    async fn list_attempted_destinations(
        &self,
        app_id: &str,
        msg_id: &str,
        page: &Page,
    ) -> Result<PageOf<(Endpoint, Delivery)>> {
        let mut qb = QueryBuilder::new(format!(
            "SELECT e.*, {DELIVERY_COLUMNS} FROM delivery d JOIN endpoint e ON e.id = d.endpoint_id
             WHERE d.app_id = "
        ));
        qb.push_bind(app_id.to_string());
        qb.push(" AND d.msg_id = ");
        qb.push_bind(msg_id.to_string());
        paginate(&mut qb, "e.id", page);
        let rows = qb.build().fetch_all(&self.reader).await.map_err(db_err)?;
        let items = rows
            .iter()
            .map(|r| Ok((row_endpoint(&self.keyring, r)?, row_delivery(r))))
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, page))
    }

    async fn list_attempted_messages(
        &self,
        app_id: &str,
        endpoint_id: &str,
        filter: &ListFilter,
        page: &Page,
    ) -> Result<PageOf<(Message, Delivery)>> {
        let mut qb = QueryBuilder::new(format!(
            "SELECT m.*, {DELIVERY_COLUMNS} FROM delivery d JOIN message m ON m.id = d.msg_id
             WHERE d.app_id = "
        ));
        qb.push_bind(app_id.to_string());
        qb.push(" AND d.endpoint_id = ");
        qb.push_bind(endpoint_id.to_string());
        if let Some(status) = filter.status {
            qb.push(" AND d.status = ");
            qb.push_bind(status as i64);
        }
        push_message_filter(&mut qb, "m", filter);
        push_time_window(&mut qb, "m.created_at", filter);
        paginate(&mut qb, "d.msg_id", page);
        let rows = qb.build().fetch_all(&self.reader).await.map_err(db_err)?;
        let items = rows
            .iter()
            .map(|r| Ok((row_message(r)?, row_delivery(r))))
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, page))
    }

    async fn idempotency_begin(
        &self,
        scope: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<IdempotencyState> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let row = sqlx::query(
            "SELECT status, body, created_at FROM idempotency WHERE scope = ? AND key = ?",
        )
        .bind(scope)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let state = match row {
            Some(r) => match r.get::<Option<i64>, _>("status") {
                Some(status) => IdempotencyState::Done {
                    status: u16::try_from(status).unwrap_or(500),
                    body: match r.get::<Option<Vec<u8>>, _>("body") {
                        Some(stored) => open_body(&self.keyring, scope, key, &stored)?,
                        None => Vec::new(),
                    },
                },
                // A request that never finished (the process died) is abandoned
                // after a while, so the client's retry can run.
                None if r.get::<i64, _>("created_at") < ms(now) - IDEMPOTENCY_ABANDONED_MS => {
                    sqlx::query(
                        "UPDATE idempotency SET created_at = ? WHERE scope = ? AND key = ?",
                    )
                    .bind(ms(now))
                    .bind(scope)
                    .bind(key)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    IdempotencyState::New
                }
                None => IdempotencyState::InProgress,
            },
            None => {
                sqlx::query("INSERT INTO idempotency (scope, key, created_at) VALUES (?, ?, ?)")
                    .bind(scope)
                    .bind(key)
                    .bind(ms(now))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                IdempotencyState::New
            }
        };
        tx.commit().await.map_err(db_err)?;
        Ok(state)
    }

    async fn idempotency_finish(
        &self,
        scope: &str,
        key: &str,
        status: u16,
        body: &[u8],
    ) -> Result<()> {
        sqlx::query("UPDATE idempotency SET status = ?, body = ? WHERE scope = ? AND key = ?")
            .bind(i64::from(status))
            .bind(seal_body(&self.keyring, scope, key, body))
            .bind(scope)
            .bind(key)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn idempotency_abort(&self, scope: &str, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM idempotency WHERE scope = ? AND key = ? AND status IS NULL")
            .bind(scope)
            .bind(key)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn prune(
        &self,
        now: Timestamp,
        attempts_before: Timestamp,
        batch: u32,
    ) -> Result<PruneReport> {
        // Two statements, not one transaction: each holds the single writer
        // only as long as one batch takes.
        let expunge = format!(
            "UPDATE message SET payload = '{{}}', expires_at = NULL
             WHERE rowid IN ({PRUNE_PAYLOADS_SELECT})"
        );
        let payloads = sqlx::query(&expunge)
            .bind(ms(now))
            .bind(i64::from(batch))
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        let delete = format!("DELETE FROM attempt WHERE rowid IN ({PRUNE_ATTEMPTS_SELECT})");
        let attempts = sqlx::query(&delete)
            .bind(ms(attempts_before))
            .bind(i64::from(batch))
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        let idempotency = sqlx::query(
            "DELETE FROM idempotency WHERE rowid IN
                 (SELECT rowid FROM idempotency WHERE created_at < ? LIMIT ?)",
        )
        .bind(ms(now - IDEMPOTENCY_RETENTION))
        .bind(i64::from(batch))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        let grants = sqlx::query(
            "DELETE FROM portal_grant WHERE rowid IN
                 (SELECT rowid FROM portal_grant WHERE expires_at < ? LIMIT ?)",
        )
        .bind(ms(now))
        .bind(i64::from(batch))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(PruneReport {
            payloads: payloads.rows_affected(),
            attempts: attempts.rows_affected(),
            idempotency: idempotency.rows_affected(),
            grants: grants.rows_affected(),
        })
    }
    async fn create_api_token(&self, token: &ApiToken) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_token (id, org_id, app_id, name, created_at, expires_at, revoked_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&token.id)
        .bind(&token.org_id)
        .bind(&token.app_id)
        .bind(&token.name)
        .bind(ms(token.created_at))
        .bind(token.expires_at.map(ms))
        .bind(token.revoked_at.map(ms))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn list_api_tokens(&self, org_id: Option<&str>) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query(
            "SELECT * FROM api_token WHERE ?1 IS NULL OR org_id = ?1
             ORDER BY created_at DESC, id DESC",
        )
        .bind(org_id)
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        rows.iter().map(row_api_token).collect()
    }

    async fn revoke_api_token(&self, id: &str, now: Timestamp) -> Result<ApiToken> {
        let row = sqlx::query(
            "UPDATE api_token SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? RETURNING *",
        )
        .bind(ms(now))
        .bind(id)
        .fetch_optional(&self.writer)
        .await
        .map_err(db_err)?;
        row.as_ref()
            .map(row_api_token)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    async fn revoked_api_tokens(&self, now: Timestamp) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT id FROM api_token
             WHERE revoked_at IS NOT NULL AND (expires_at IS NULL OR expires_at > ?)",
        )
        .bind(ms(now))
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| r.try_get("id").map_err(db_err))
            .collect()
    }

    async fn create_portal_grant(&self, grant: &PortalGrant) -> Result<()> {
        sqlx::query(
            "INSERT INTO portal_grant (id, org_id, app_id, read_only, session_id, created_at,
                 link_expires_at, expires_at, used_at, ended_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&grant.id)
        .bind(&grant.org_id)
        .bind(&grant.app_id)
        .bind(grant.read_only)
        .bind(&grant.session_id)
        .bind(ms(grant.created_at))
        .bind(ms(grant.link_expires_at))
        .bind(ms(grant.expires_at))
        .bind(grant.used_at.map(ms))
        .bind(grant.ended_at.map(ms))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn use_portal_grant(&self, id: &str, now: Timestamp) -> Result<Option<PortalGrant>> {
        let row = sqlx::query(
            "UPDATE portal_grant SET used_at = ?1
             WHERE id = ?2 AND used_at IS NULL AND ended_at IS NULL AND link_expires_at > ?1
             RETURNING *",
        )
        .bind(ms(now))
        .bind(id)
        .fetch_optional(&self.writer)
        .await
        .map_err(db_err)?;
        row.as_ref().map(row_portal_grant).transpose()
    }

    async fn get_portal_grant(&self, id: &str) -> Result<Option<PortalGrant>> {
        let row = sqlx::query("SELECT * FROM portal_grant WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .map_err(db_err)?;
        row.as_ref().map(row_portal_grant).transpose()
    }

    async fn end_portal_grant(&self, id: &str, now: Timestamp) -> Result<()> {
        let done =
            sqlx::query("UPDATE portal_grant SET ended_at = COALESCE(ended_at, ?) WHERE id = ?")
                .bind(ms(now))
                .bind(id)
                .execute(&self.writer)
                .await
                .map_err(db_err)?;
        found(done.rows_affected())
    }

    async fn read_sealed(
        &self,
        column: SealedColumn,
        current_key: &str,
        limit: u32,
    ) -> Result<Vec<SealedValue>> {
        let sql = match column {
            SealedColumn::EndpointSecret => {
                "SELECT endpoint_id AS owner, CAST(key AS BLOB) AS value FROM endpoint_secret
                 WHERE key NOT LIKE ?1 LIMIT ?2"
            }
            SealedColumn::EndpointHeaders => {
                "SELECT id AS owner, CAST(headers AS BLOB) AS value FROM endpoint
                 WHERE headers <> '{}' AND headers NOT LIKE ?1 LIMIT ?2"
            }
            SealedColumn::IdempotencyBody => {
                "SELECT scope || char(10) || key AS owner, body AS value FROM idempotency
                 WHERE body IS NOT NULL AND body NOT LIKE ?1 LIMIT ?2"
            }
        };
        let rows = sqlx::query(sql)
            .bind(sealed_with_pattern(current_key))
            .bind(i64::from(limit))
            .fetch_all(&self.writer)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(SealedValue {
                    owner: r.try_get("owner").map_err(db_err)?,
                    value: r.try_get("value").map_err(db_err)?,
                })
            })
            .collect()
    }

    async fn replace_sealed(
        &self,
        column: SealedColumn,
        owner: &str,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool> {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let done = match column {
            SealedColumn::EndpointSecret => {
                sqlx::query("UPDATE endpoint_secret SET key = ? WHERE endpoint_id = ? AND key = ?")
                    .bind(text(new))
                    .bind(owner)
                    .bind(text(old))
                    .execute(&self.writer)
                    .await
            }
            SealedColumn::EndpointHeaders => {
                sqlx::query("UPDATE endpoint SET headers = ? WHERE id = ? AND headers = ?")
                    .bind(text(new))
                    .bind(owner)
                    .bind(text(old))
                    .execute(&self.writer)
                    .await
            }
            SealedColumn::IdempotencyBody => {
                let (scope, key) = owner.split_once('\n').ok_or(StoreError::NotFound)?;
                sqlx::query(
                    "UPDATE idempotency SET body = ? WHERE scope = ? AND key = ? AND body = ?",
                )
                .bind(new)
                .bind(scope)
                .bind(key)
                .bind(old)
                .execute(&self.writer)
                .await
            }
        }
        .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn meta(&self, name: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM herald_meta WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.writer)
            .await
            .map_err(db_err)?;
        row.map(|r| r.try_get("value").map_err(db_err)).transpose()
    }

    async fn set_meta(&self, name: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO herald_meta (name, value) VALUES (?, ?)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }
}

fn row_api_token(r: &SqliteRow) -> Result<ApiToken> {
    Ok(ApiToken {
        id: r.try_get("id").map_err(db_err)?,
        org_id: r.try_get("org_id").map_err(db_err)?,
        app_id: r.try_get("app_id").map_err(db_err)?,
        name: r.try_get("name").map_err(db_err)?,
        created_at: from_ms(r.try_get("created_at").map_err(db_err)?),
        expires_at: opt_ms(r.try_get("expires_at").map_err(db_err)?),
        revoked_at: opt_ms(r.try_get("revoked_at").map_err(db_err)?),
    })
}

fn row_portal_grant(r: &SqliteRow) -> Result<PortalGrant> {
    Ok(PortalGrant {
        id: r.try_get("id").map_err(db_err)?,
        org_id: r.try_get("org_id").map_err(db_err)?,
        app_id: r.try_get("app_id").map_err(db_err)?,
        read_only: r.try_get("read_only").map_err(db_err)?,
        session_id: r.try_get("session_id").map_err(db_err)?,
        created_at: from_ms(r.try_get("created_at").map_err(db_err)?),
        link_expires_at: from_ms(r.try_get("link_expires_at").map_err(db_err)?),
        expires_at: from_ms(r.try_get("expires_at").map_err(db_err)?),
        used_at: opt_ms(r.try_get("used_at").map_err(db_err)?),
        ended_at: opt_ms(r.try_get("ended_at").map_err(db_err)?),
    })
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

/// Everything needed to send a claimed delivery (`claimed` is the row the claim
/// returned).
/// A job from a row of [`JOB_SELECT`].
fn row_job(keyring: &Keyring, row: &SqliteRow) -> Result<Job> {
    let headers: String = row.get("headers");
    let endpoint_id: String = row.get("endpoint_id");
    let manual: bool = row.get("manual");
    Ok(Job {
        headers: open_headers(keyring, &endpoint_id, &headers)?,
        msg_id: row.get("msg_id"),
        app_id: row.get("app_id"),
        org_id: row.get("org_id"),
        event_type: row.get("event_type"),
        payload: row.get("payload"),
        endpoint_id,
        url: row.get("url"),
        disabled: row.get("disabled"),
        date_format: row.get("date_format"),
        attempts: row.get("attempts"),
        trigger: if manual {
            TriggerType::Manual
        } else {
            TriggerType::Scheduled
        },
    })
}

fn push_time_window(qb: &mut QueryBuilder<'_, Sqlite>, column: &str, filter: &ListFilter) {
    if let Some(before) = filter.before {
        qb.push(format!(" AND {column} < "));
        qb.push_bind(ms(before));
    }
    if let Some(after) = filter.after {
        qb.push(format!(" AND {column} > "));
        qb.push_bind(ms(after));
    }
}

fn push_attempt_filter(qb: &mut QueryBuilder<'_, Sqlite>, filter: &ListFilter) {
    if let Some(status) = filter.status {
        qb.push(" AND a.status = ");
        qb.push_bind(status as i64);
    }
    if let Some(class) = filter.status_code_class {
        qb.push(" AND a.response_status_code BETWEEN ");
        qb.push_bind(class);
        qb.push(" AND ");
        qb.push_bind(class + 99);
    }
    if filter.channel.is_some() || !filter.event_types.is_empty() {
        qb.push(" AND a.msg_id IN (SELECT m.id FROM message m WHERE 1 = 1");
        push_message_filter(qb, "m", filter);
        qb.push(")");
    }
    push_time_window(qb, "a.created_at", filter);
}

/// The queries behind the lists, the claim and pruning must walk an index, not
/// the table: these grow without bound, and a full scan per page or per claim
/// would slow Herald down as its history grows.
#[cfg(test)]
mod index_tests {
    use super::*;

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

    /// The plan SQLite reports, one step a line.
    fn plan(rows: &[SqliteRow]) -> String {
        rows.iter()
            .map(|r| r.get::<String, _>("detail"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The plan of the query in `qb`, which starts with `EXPLAIN QUERY PLAN`.
    async fn plan_of(store: &SqliteStore, mut qb: QueryBuilder<'_, Sqlite>) -> String {
        plan(&qb.build().fetch_all(&store.reader).await.unwrap())
    }

    fn explain() -> QueryBuilder<'static, Sqlite> {
        QueryBuilder::new("EXPLAIN QUERY PLAN ")
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

    fn pages() -> [Page; 2] {
        let first = Page {
            limit: 50,
            iterator: None,
            descending: true,
        };
        let next = Page {
            iterator: Some("x_2".into()),
            ..first.clone()
        };
        [first, next]
    }

    #[tokio::test]
    async fn lists_claims_and_pruning_use_indexes() {
        let (store, _dir) = open().await;
        let filter = ListFilter::default();
        for page in pages() {
            let mut qb = explain();
            push_list_messages(&mut qb, "app_1", &filter, &page);
            assert_indexed("messages by app", &plan_of(&store, qb).await);

            let mut qb = explain();
            push_list_attempts_by_endpoint(&mut qb, "app_1", "ep_1", &filter, &page);
            assert_indexed("attempts by endpoint", &plan_of(&store, qb).await);

            let mut qb = explain();
            push_list_attempts_by_msg(&mut qb, "app_1", "msg_1", &filter, &page);
            assert_indexed("attempts by message", &plan_of(&store, qb).await);
        }

        let sql = format!("EXPLAIN QUERY PLAN {CLAIM_DUE_SELECT}");
        let rows = sqlx::query(&sql)
            .bind(0_i64)
            .bind(r#"["ep_1"]"#)
            .bind(10_i64)
            .bind(0_i64)
            .fetch_all(&store.reader)
            .await
            .unwrap();
        let claim = plan(&rows);
        assert_indexed("the due-delivery claim", &claim);
        // Skipping a busy endpoint's due rows reads only the index.
        assert!(claim.contains("COVERING INDEX delivery_due"), "{claim}");

        for (what, select, index) in [
            (
                "expired payloads",
                PRUNE_PAYLOADS_SELECT,
                "message_expires_at",
            ),
            ("old attempts", PRUNE_ATTEMPTS_SELECT, "attempt_created_at"),
        ] {
            let sql = format!("EXPLAIN QUERY PLAN {select}");
            let rows = sqlx::query(&sql)
                .bind(0_i64)
                .bind(1000_i64)
                .fetch_all(&store.reader)
                .await
                .unwrap();
            let got = plan(&rows);
            assert_indexed(what, &got);
            assert!(got.contains(index), "{what}: {got}");
        }
    }
}
