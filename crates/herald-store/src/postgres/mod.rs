//! The shared store. Several Herald nodes may use one database: workers claim
//! due deliveries with `FOR UPDATE SKIP LOCKED`, so no two claim the same one,
//! and a new message wakes idle workers on every node through NOTIFY.
//!
//! The schema and the SQL mirror the SQLite store method by method (timestamps
//! are UNIX milliseconds, JSON is TEXT), so both behave the same behind the trait.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow, Postgres};
use sqlx::{QueryBuilder, Row};
use tokio::time::Instant;

use crate::model::*;
use crate::{Keyring, Result, Store, StoreError};

/// Knobs of the shared store.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// The size of the query pool (the NOTIFY listener has a connection of its
    /// own on top).
    pub max_connections: u32,
    /// Run pending migrations when the store opens. Off when a separate
    /// `migrate` step owns the schema.
    pub run_migrations: bool,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 10,
            run_migrations: true,
        }
    }
}

pub struct PostgresStore {
    pool: PgPool,
    /// LISTEN holds its connection for as long as it listens, so the listener
    /// takes it from a pool of its own and the query pool keeps its full size.
    listen_pool: PgPool,
    /// One long-lived listener, made on first use and dropped after an error
    /// (the next wait makes a new one). Waiters take turns.
    listener: tokio::sync::Mutex<Option<PgListener>>,
    /// Seals and opens the secrets this store keeps.
    keyring: Arc<Keyring>,
}

/// The channel new work is announced on.
const WORK_CHANNEL: &str = "herald_work";

use crate::codec::*;

fn row_app(r: &PgRow) -> Result<Application> {
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

fn row_event_type(r: &PgRow) -> Result<EventType> {
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

fn row_endpoint(keyring: &Keyring, r: &PgRow) -> Result<Endpoint> {
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

fn row_message(r: &PgRow) -> Result<Message> {
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

fn row_delivery(r: &PgRow) -> Delivery {
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

fn row_attempt(r: &PgRow) -> Attempt {
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

/// A row of [`CLAIMED_JOBS`].
fn row_job(keyring: &Keyring, r: &PgRow) -> Result<Job> {
    let headers: String = r.get("headers");
    let endpoint_id: String = r.get("endpoint_id");
    let manual: bool = r.get("manual");
    Ok(Job {
        headers: open_headers(keyring, &endpoint_id, &headers)?,
        msg_id: r.get("msg_id"),
        app_id: r.get("app_id"),
        org_id: r.get("org_id"),
        event_type: r.get("event_type"),
        payload: r.get("payload"),
        endpoint_id,
        url: r.get("url"),
        disabled: r.get("disabled"),
        date_format: r.get("date_format"),
        attempts: r.get("attempts"),
        trigger: if manual {
            TriggerType::Manual
        } else {
            TriggerType::Scheduled
        },
    })
}

/// The due deliveries a claim takes (`$1` now, `$2` the endpoints to skip, `$3`
/// the limit, `$4` a time they fell due after), locked for the claim; rows other nodes are claiming are
/// skipped, not waited for. It walks the partial index `delivery_due`; the
/// index tests below keep it that way.
const CLAIM_DUE_SELECT: &str = "SELECT msg_id, endpoint_id, next_attempt_at FROM delivery
     WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= $1 AND next_attempt_at > $4
       AND NOT (endpoint_id = ANY($2))
     ORDER BY next_attempt_at
     LIMIT $3
     FOR UPDATE SKIP LOCKED";

/// Payloads to expunge: up to `$2` that expired by `$1` and whose message has
/// no pending delivery (an accepted message must still be delivered as sent).
/// Nodes pruning at the same time skip each other's rows.
const PRUNE_PAYLOADS_SELECT: &str = "SELECT m.id FROM message m
     WHERE m.expires_at IS NOT NULL AND m.expires_at <= $1
       AND NOT EXISTS (
           SELECT 1 FROM delivery d WHERE d.msg_id = m.id AND d.next_attempt_at IS NOT NULL)
     LIMIT $2
     FOR UPDATE SKIP LOCKED";

/// Attempts to delete: up to `$2` created before `$1`.
const PRUNE_ATTEMPTS_SELECT: &str = "SELECT id FROM attempt WHERE created_at < $1
     LIMIT $2
     FOR UPDATE SKIP LOCKED";

const DELIVERY_COLUMNS: &str = "d.msg_id AS d_msg_id, d.endpoint_id AS d_endpoint_id, \
     d.app_id AS d_app_id, d.status AS d_status, d.attempts AS d_attempts, \
     d.next_attempt_at AS d_next_attempt_at, d.created_at AS d_created_at, \
     d.updated_at AS d_updated_at";

/// Claims the rows of a `due` CTE (locked `FOR UPDATE SKIP LOCKED`, with their
/// `next_attempt_at`) and returns everything needed to send them, in the order
/// they fell due. `lease` and `now` name the caller's placeholders (`$4`, ...).
///
/// A claimed delivery's next attempt is its lease's end: if this worker dies,
/// the delivery falls due again by itself, and one index on next_attempt_at
/// finds both new and abandoned work.
fn claimed_jobs(lease: &str, now: &str) -> String {
    format!(
        ", claimed AS (
             UPDATE delivery d SET status = 3, lease_until = {lease}, next_attempt_at = {lease},
                 updated_at = {now}
             FROM due WHERE d.msg_id = due.msg_id AND d.endpoint_id = due.endpoint_id
             RETURNING d.msg_id, d.endpoint_id, d.attempts, d.manual, due.next_attempt_at AS due_at)
         SELECT c.msg_id, c.endpoint_id, c.attempts, c.manual, m.app_id, a.org_id, m.event_type,
             m.payload, e.url, e.headers, e.disabled, e.date_format
         FROM claimed c
         JOIN message m ON m.id = c.msg_id
         JOIN endpoint e ON e.id = c.endpoint_id
         JOIN application a ON a.id = m.app_id
         ORDER BY c.due_at, c.msg_id, c.endpoint_id"
    )
}

/// Adds keyset pagination on `key_column` and the limit (one extra row to learn
/// whether the page is the last).
fn paginate(qb: &mut QueryBuilder<'_, Postgres>, key_column: &str, page: &Page) {
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

fn push_message_filter(qb: &mut QueryBuilder<'_, Postgres>, alias: &str, filter: &ListFilter) {
    if let Some(channel) = &filter.channel {
        qb.push(format!(
            " AND EXISTS (SELECT 1 FROM jsonb_array_elements_text({alias}.channels::jsonb) AS c(value)
                 WHERE c.value = "
        ));
        qb.push_bind(channel.clone());
        qb.push(")");
    }
    if !filter.event_types.is_empty() {
        qb.push(format!(" AND {alias}.event_type = ANY("));
        qb.push_bind(filter.event_types.clone());
        qb.push(")");
    }
}

fn push_time_window(qb: &mut QueryBuilder<'_, Postgres>, column: &str, filter: &ListFilter) {
    if let Some(before) = filter.before {
        qb.push(format!(" AND {column} < "));
        qb.push_bind(ms(before));
    }
    if let Some(after) = filter.after {
        qb.push(format!(" AND {column} > "));
        qb.push_bind(ms(after));
    }
}

fn push_attempt_filter(qb: &mut QueryBuilder<'_, Postgres>, filter: &ListFilter) {
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
        qb.push(" AND a.msg_id IN (SELECT m.id FROM message m WHERE TRUE");
        push_message_filter(qb, "m", filter);
        qb.push(")");
    }
    push_time_window(qb, "a.created_at", filter);
}

/// The message list of an application (`list_messages`), after whatever
/// `qb` already holds (the index tests put `EXPLAIN` there).
fn push_list_messages(
    qb: &mut QueryBuilder<'_, Postgres>,
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
    qb: &mut QueryBuilder<'_, Postgres>,
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
    qb: &mut QueryBuilder<'_, Postgres>,
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

/// Wakes the workers of every node; PostgreSQL delivers it when `tx` commits.
async fn notify_work(tx: &mut sqlx::Transaction<'_, Postgres>) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(WORK_CHANNEL)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(())
}

const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl PostgresStore {
    /// Claims due deliveries (those that fell due after `since`, if given).
    async fn claim(
        &self,
        now: Timestamp,
        since: Option<Timestamp>,
        lease_until: Timestamp,
        limit: u32,
        skip_endpoints: &[String],
    ) -> Result<Vec<Job>> {
        // One statement: the rows it locks are the rows it claims, and rows other
        // nodes are claiming at the same moment are skipped, not waited for.
        let sql = format!(
            "WITH due AS ({CLAIM_DUE_SELECT}){}",
            claimed_jobs("$5", "$1")
        );
        let rows = sqlx::query(&sql)
            .bind(ms(now))
            .bind(skip_endpoints)
            .bind(i64::from(limit))
            .bind(since.map_or(i64::MIN, ms))
            .bind(ms(lease_until))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| row_job(&self.keyring, r)).collect()
    }

    /// Connects to the database a `postgres://` URL names and, unless told not
    /// to, runs migrations.
    pub async fn open(
        url: &str,
        options: &PostgresOptions,
        keyring: Arc<Keyring>,
    ) -> Result<PostgresStore> {
        let connect = PgConnectOptions::from_str(url).map_err(db_err)?;
        // A short acquire timeout: while the database is away, requests fail
        // fast with Unavailable (503) instead of hanging.
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(connect.clone())
            .await
            .map_err(db_err)?;
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(connect);
        let store = PostgresStore {
            pool,
            listen_pool,
            listener: tokio::sync::Mutex::new(None),
            keyring,
        };
        if options.run_migrations {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Brings the schema up to date. Nodes starting together are safe: sqlx
    /// holds an advisory lock while it migrates.
    pub async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))
    }

    async fn listen(&self) -> std::result::Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.listen_pool).await?;
        listener.listen(WORK_CHANNEL).await?;
        Ok(listener)
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn create_app(&self, app: &Application) -> Result<()> {
        sqlx::query(
            "INSERT INTO application (id, org_id, uid, name, metadata, throttle_rate, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&app.id)
        .bind(&app.org_id)
        .bind(&app.uid)
        .bind(&app.name)
        .bind(json_text(&app.metadata))
        .bind(app.throttle_rate)
        .bind(ms(app.created_at))
        .bind(ms(app.updated_at))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn get_app(&self, org_id: &str, id_or_uid: &str) -> Result<Option<Application>> {
        let row = sqlx::query(
            "SELECT * FROM application WHERE org_id = $1 AND (id = $2 OR uid = $2)
             ORDER BY id = $2 DESC LIMIT 1",
        )
        .bind(org_id)
        .bind(id_or_uid)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(row_app).transpose()
    }

    async fn list_apps(&self, org_id: &str, page: &Page) -> Result<PageOf<Application>> {
        let mut qb = QueryBuilder::new("SELECT * FROM application WHERE org_id = ");
        qb.push_bind(org_id.to_string());
        paginate(&mut qb, "id", page);
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db_err)?;
        let items = rows.iter().map(row_app).collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, page))
    }

    async fn update_app(&self, app: &Application) -> Result<()> {
        let done = sqlx::query(
            "UPDATE application SET uid = $1, name = $2, metadata = $3, throttle_rate = $4, updated_at = $5
             WHERE id = $6 AND org_id = $7",
        )
        .bind(&app.uid)
        .bind(&app.name)
        .bind(json_text(&app.metadata))
        .bind(app.throttle_rate)
        .bind(ms(app.updated_at))
        .bind(&app.id)
        .bind(&app.org_id)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        found(done.rows_affected())
    }

    async fn delete_app(&self, org_id: &str, id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // Attempts have no foreign key to their endpoint (they outlive it), so the
        // application's are removed here.
        sqlx::query(
            "DELETE FROM attempt WHERE app_id = $1
                 AND app_id IN (SELECT id FROM application WHERE org_id = $2)",
        )
        .bind(id)
        .bind(org_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let done = sqlx::query("DELETE FROM application WHERE id = $1 AND org_id = $2")
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn get_event_type(&self, org_id: &str, name: &str) -> Result<Option<EventType>> {
        let row = sqlx::query("SELECT * FROM event_type WHERE org_id = $1 AND name = $2")
            .bind(org_id)
            .bind(name)
            .fetch_optional(&self.pool)
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
            qb.push(" AND NOT archived");
        }
        paginate(&mut qb, "name", page);
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db_err)?;
        let items = rows
            .iter()
            .map(row_event_type)
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, page))
    }

    async fn update_event_type(&self, et: &EventType) -> Result<()> {
        let done = sqlx::query(
            "UPDATE event_type SET description = $1, archived = $2, deprecated = $3, feature_flag = $4,
                 schemas = $5, public = $6, validate_payload = $7, updated_at = $8
             WHERE org_id = $9 AND name = $10",
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
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        found(done.rows_affected())
    }

    async fn delete_event_type(&self, org_id: &str, name: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM event_type WHERE org_id = $1 AND name = $2")
            .bind(org_id)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        found(done.rows_affected())
    }

    async fn create_endpoint(&self, ep: &Endpoint, secret: &str) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO endpoint (id, app_id, uid, url, description, disabled, event_types, channels,
                 metadata, headers, throttle_rate, date_format, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
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
        sqlx::query(
            "INSERT INTO endpoint_secret (endpoint_id, key, created_at) VALUES ($1, $2, $3)",
        )
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
            "SELECT * FROM endpoint WHERE app_id = $1 AND (id = $2 OR uid = $2)
             ORDER BY id = $2 DESC LIMIT 1",
        )
        .bind(app_id)
        .bind(id_or_uid)
        .fetch_optional(&self.pool)
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
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db_err)?;
        let items = rows
            .iter()
            .map(|r| row_endpoint(&self.keyring, r))
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, page))
    }

    async fn update_endpoint(&self, ep: &Endpoint) -> Result<()> {
        let done = sqlx::query(
            "UPDATE endpoint SET uid = $1, url = $2, description = $3, disabled = $4, event_types = $5,
                 channels = $6, metadata = $7, headers = $8, throttle_rate = $9, date_format = $10,
                 updated_at = $11
             WHERE id = $12 AND app_id = $13",
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
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        found(done.rows_affected())
    }

    async fn delete_endpoint(&self, app_id: &str, id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM endpoint WHERE id = $1 AND app_id = $2")
            .bind(id)
            .bind(app_id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        found(done.rows_affected())
    }

    async fn disable_endpoint(&self, endpoint_id: &str) -> Result<()> {
        let now = ms(Utc::now());
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query("UPDATE endpoint SET disabled = TRUE, updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(endpoint_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "UPDATE delivery SET status = 2, next_attempt_at = NULL, lease_until = NULL, updated_at = $1
             WHERE endpoint_id = $2 AND next_attempt_at IS NOT NULL",
        )
        .bind(now)
        .bind(endpoint_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn secrets(&self, endpoint_id: &str, now: Timestamp) -> Result<Vec<SecretKey>> {
        let rows = sqlx::query(
            "SELECT key, expires_at FROM endpoint_secret
             WHERE endpoint_id = $1 AND (expires_at IS NULL OR expires_at > $2)
             ORDER BY expires_at IS NOT NULL, created_at DESC",
        )
        .bind(endpoint_id)
        .bind(ms(now))
        .fetch_all(&self.pool)
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

    async fn rotate_secret(
        &self,
        endpoint_id: &str,
        new_key: &str,
        old_until: Timestamp,
        now: Timestamp,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // Keys already rotated out end no later than the one being rotated out now:
        // at most two keys sign at once.
        sqlx::query(
            "UPDATE endpoint_secret SET expires_at = LEAST(expires_at, $1)
             WHERE endpoint_id = $2 AND expires_at IS NOT NULL",
        )
        .bind(ms(old_until))
        .bind(endpoint_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "UPDATE endpoint_secret SET expires_at = $1 WHERE endpoint_id = $2 AND expires_at IS NULL",
        )
        .bind(ms(old_until))
        .bind(endpoint_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query("DELETE FROM endpoint_secret WHERE endpoint_id = $1 AND expires_at <= $2")
            .bind(endpoint_id)
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO endpoint_secret (endpoint_id, key, created_at) VALUES ($1, $2, $3)",
        )
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
             WHERE endpoint_id = $1 AND created_at >= $2 AND created_at < $3
             GROUP BY status",
        )
        .bind(endpoint_id)
        .bind(since.map(ms).unwrap_or(i64::MIN))
        .bind(until.map(ms).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let done = sqlx::query(
            "UPDATE delivery SET status = 1, next_attempt_at = $1, lease_until = NULL, manual = TRUE,
                 updated_at = $1
             WHERE endpoint_id = $2 AND status = 2 AND created_at >= $3 AND created_at < $4",
        )
        .bind(ms(now))
        .bind(endpoint_id)
        .bind(ms(since))
        .bind(until.map(ms).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if done.rows_affected() > 0 {
            notify_work(&mut tx).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn create_message(&self, msg: &Message, targets: &Targets) -> Result<Vec<String>> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO message (id, app_id, event_type, event_id, channels, payload, created_at,
                 expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&msg.id)
        .bind(&msg.app_id)
        .bind(&msg.event_type)
        .bind(&msg.event_id)
        .bind(list_text(&msg.channels))
        .bind(&msg.payload)
        .bind(ms(msg.created_at))
        .bind(msg.expires_at.map(ms))
        .execute(&mut *tx)
        .await
        .map_err(|e| match db_err(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!(
                "a message with eventId {:?} already exists in this application",
                msg.event_id.as_deref().unwrap_or_default()
            )),
            other => other,
        })?;
        let endpoint_ids: Vec<String> = match targets.endpoint() {
            Some(id) => vec![id.to_string()],
            None => {
                let rows = sqlx::query(
                    "SELECT id, app_id, event_types, channels FROM endpoint
                     WHERE app_id = $1 AND NOT disabled",
                )
                .bind(&msg.app_id)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
                let mut ids = Vec::new();
                for r in &rows {
                    let ep = Route::new(
                        r.try_get("id").map_err(db_err)?,
                        r.try_get("app_id").map_err(db_err)?,
                        r.try_get("event_types").map_err(db_err)?,
                        r.try_get("channels").map_err(db_err)?,
                    )?;
                    if ep.accepts(&msg.event_type, msg.channels.as_deref()) {
                        ids.push(ep.id);
                    }
                }
                ids
            }
        };
        if !endpoint_ids.is_empty() {
            let manual = targets.endpoint().is_some();
            let now = ms(msg.created_at);
            let due = ms(targets.due_at(msg.created_at));
            let mut qb = QueryBuilder::<Postgres>::new(
                "INSERT INTO delivery (msg_id, endpoint_id, app_id, status, attempts, next_attempt_at,
                     manual, created_at, updated_at) ",
            );
            qb.push_values(&endpoint_ids, |mut row, endpoint_id| {
                row.push_bind(&msg.id)
                    .push_bind(endpoint_id)
                    .push_bind(&msg.app_id)
                    .push_bind(MessageStatus::Pending as i64)
                    .push_bind(0_i64)
                    .push_bind(due)
                    .push_bind(manual)
                    .push_bind(now)
                    .push_bind(now);
            });
            qb.build().execute(&mut *tx).await.map_err(db_err)?;
            notify_work(&mut tx).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(endpoint_ids)
    }

    async fn get_message(&self, app_id: &str, id_or_event_id: &str) -> Result<Option<Message>> {
        let row = sqlx::query(
            "SELECT * FROM message WHERE app_id = $1 AND (id = $2 OR event_id = $2)
             ORDER BY id = $2 DESC LIMIT 1",
        )
        .bind(app_id)
        .bind(id_or_event_id)
        .fetch_optional(&self.pool)
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
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db_err)?;
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
        let sql = format!(
            "WITH due AS (
                 SELECT msg_id, endpoint_id, next_attempt_at FROM delivery
                 WHERE msg_id = $1 AND endpoint_id = $2 AND next_attempt_at <= $3
                 FOR UPDATE SKIP LOCKED){}",
            claimed_jobs("$4", "$3")
        );
        let row = sqlx::query(&sql)
            .bind(msg_id)
            .bind(endpoint_id)
            .bind(ms(now))
            .bind(ms(lease_until))
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(|r| row_job(&self.keyring, r)).transpose()
    }

    async fn record_attempt(&self, attempt: &Attempt, next: &Next) -> Result<()> {
        let (status, next_at) = next.delivery_state();
        let next_at = next_at.map(ms);
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO attempt (id, msg_id, endpoint_id, app_id, url, status, response_status_code,
                 response, response_duration_ms, trigger_type, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&attempt.id)
        .bind(&attempt.msg_id)
        .bind(&attempt.endpoint_id)
        .bind(&attempt.app_id)
        .bind(&attempt.url)
        .bind(attempt.status as i64)
        .bind(attempt.response_status_code)
        .bind(&attempt.response)
        .bind(attempt.response_duration_ms)
        .bind(attempt.trigger_type as i64)
        .bind(ms(attempt.created_at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            // An endpoint disabled while this attempt was in flight (a 410 to
            // another delivery, or the API) gets no retry.
            "UPDATE delivery SET
                 status = CASE WHEN $1 = 1 AND (SELECT disabled FROM endpoint WHERE id = delivery.endpoint_id)
                               THEN 2 ELSE $1 END,
                 next_attempt_at = CASE WHEN (SELECT disabled FROM endpoint WHERE id = delivery.endpoint_id)
                                        THEN NULL ELSE $2 END,
                 attempts = attempts + 1, lease_until = NULL, manual = FALSE, updated_at = $3
             WHERE msg_id = $4 AND endpoint_id = $5",
        )
        .bind(status as i64)
        .bind(next_at)
        .bind(ms(attempt.created_at))
        .bind(&attempt.msg_id)
        .bind(&attempt.endpoint_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn release_claim(
        &self,
        msg_id: &str,
        endpoint_id: &str,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(
            "UPDATE delivery SET status = 1, lease_until = NULL, next_attempt_at = $1, updated_at = $1
             WHERE msg_id = $2 AND endpoint_id = $3 AND lease_until = $4",
        )
        .bind(ms(now))
        .bind(msg_id)
        .bind(endpoint_id)
        .bind(ms(lease_until))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        notify_work(&mut tx).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn recover_after_restart(&self) -> Result<u64> {
        // Other nodes may hold leases right now; an expired lease falls due by
        // itself (claiming sets next_attempt_at to the lease's end).
        Ok(0)
    }

    async fn wait_for_work(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        // Waiters take turns; one that cannot get the listener in time just
        // times out, which is all a wait promises.
        let Ok(mut slot) = tokio::time::timeout_at(deadline, self.listener.lock()).await else {
            return;
        };
        if slot.is_none() {
            match tokio::time::timeout_at(deadline, self.listen()).await {
                Ok(Ok(listener)) => *slot = Some(listener),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot LISTEN for new work; polling instead");
                    tokio::time::sleep_until(deadline).await;
                    return;
                }
                Err(_) => return,
            }
        }
        let listener = slot.as_mut().expect("the listener was just made");
        match tokio::time::timeout_at(deadline, listener.try_recv()).await {
            Err(_) => {}
            Ok(Ok(Some(_))) => {
                // One wake-up is enough for a burst of messages: take the
                // notifications that already arrived too, without waiting.
                for _ in 0..1000 {
                    match tokio::time::timeout(Duration::ZERO, listener.try_recv()).await {
                        Ok(Ok(Some(_))) => {}
                        Ok(Err(_)) => {
                            *slot = None;
                            break;
                        }
                        _ => break,
                    }
                }
            }
            // The connection was lost and made again; work queued meanwhile went
            // unannounced, so the caller should look now.
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "LISTEN connection failed; polling until the next wait");
                *slot = None;
                tokio::time::sleep_until(deadline).await;
            }
        }
    }

    async fn next_due(&self) -> Result<Option<Timestamp>> {
        let row = sqlx::query(
            "SELECT MIN(next_attempt_at) AS due FROM delivery WHERE next_attempt_at IS NOT NULL",
        )
        .fetch_one(&self.pool)
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
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // An existing delivery is queued again (unless one is already in flight);
        // a message that never went to this endpoint gets a new delivery.
        sqlx::query(
            "INSERT INTO delivery (msg_id, endpoint_id, app_id, status, attempts, next_attempt_at,
                 manual, created_at, updated_at)
             VALUES ($1, $2, $3, 1, 0, $4, TRUE, $4, $4)
             ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET
                 status = CASE WHEN delivery.lease_until IS NULL THEN 1 ELSE delivery.status END,
                 next_attempt_at = excluded.next_attempt_at, manual = TRUE,
                 updated_at = excluded.updated_at",
        )
        .bind(msg_id)
        .bind(endpoint_id)
        .bind(app_id)
        .bind(ms(now))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        notify_work(&mut tx).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn get_attempt(
        &self,
        app_id: &str,
        msg_id: &str,
        attempt_id: &str,
    ) -> Result<Option<Attempt>> {
        let row =
            sqlx::query("SELECT * FROM attempt WHERE app_id = $1 AND msg_id = $2 AND id = $3")
                .bind(app_id)
                .bind(msg_id)
                .bind(attempt_id)
                .fetch_optional(&self.pool)
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
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db_err)?;
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
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db_err)?;
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
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db_err)?;
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
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db_err)?;
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
        // SQLite's single writer makes read-then-write safe there; here two
        // nodes may race, so each step is one atomic statement. The loop covers
        // a key aborted between the steps.
        for _ in 0..3 {
            let inserted = sqlx::query(
                "INSERT INTO idempotency (scope, key, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (scope, key) DO NOTHING",
            )
            .bind(scope)
            .bind(key)
            .bind(ms(now))
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
            if inserted.rows_affected() == 1 {
                return Ok(IdempotencyState::New);
            }
            // A request that never finished (the process died) is abandoned
            // after a while, so the client's retry can run.
            let taken = sqlx::query(
                "UPDATE idempotency SET created_at = $1
                 WHERE scope = $2 AND key = $3 AND status IS NULL AND created_at < $4",
            )
            .bind(ms(now))
            .bind(scope)
            .bind(key)
            .bind(ms(now) - IDEMPOTENCY_ABANDONED_MS)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
            if taken.rows_affected() == 1 {
                return Ok(IdempotencyState::New);
            }
            let row =
                sqlx::query("SELECT status, body FROM idempotency WHERE scope = $1 AND key = $2")
                    .bind(scope)
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
            match row {
                Some(r) => {
                    return Ok(match r.get::<Option<i64>, _>("status") {
                        Some(status) => IdempotencyState::Done {
                            status: u16::try_from(status).unwrap_or(500),
                            body: match r.get::<Option<Vec<u8>>, _>("body") {
                                Some(stored) => open_body(&self.keyring, scope, key, &stored)?,
                                None => Vec::new(),
                            },
                        },
                        None => IdempotencyState::InProgress,
                    })
                }
                None => continue,
            }
        }
        Ok(IdempotencyState::InProgress)
    }

    async fn idempotency_finish(
        &self,
        scope: &str,
        key: &str,
        status: u16,
        body: &[u8],
    ) -> Result<()> {
        sqlx::query("UPDATE idempotency SET status = $1, body = $2 WHERE scope = $3 AND key = $4")
            .bind(i64::from(status))
            .bind(seal_body(&self.keyring, scope, key, body))
            .bind(scope)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn idempotency_abort(&self, scope: &str, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM idempotency WHERE scope = $1 AND key = $2 AND status IS NULL")
            .bind(scope)
            .bind(key)
            .execute(&self.pool)
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
        // Two statements, each its own short transaction, so the rows they lock
        // are few and held briefly.
        let expunge = format!(
            "UPDATE message SET payload = '{{}}', expires_at = NULL
             WHERE id IN ({PRUNE_PAYLOADS_SELECT})"
        );
        let payloads = sqlx::query(&expunge)
            .bind(ms(now))
            .bind(i64::from(batch))
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        let delete = format!("DELETE FROM attempt WHERE id IN ({PRUNE_ATTEMPTS_SELECT})");
        let attempts = sqlx::query(&delete)
            .bind(ms(attempts_before))
            .bind(i64::from(batch))
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        let idempotency = sqlx::query(
            "DELETE FROM idempotency WHERE (scope, key) IN
                 (SELECT scope, key FROM idempotency WHERE created_at < $1 LIMIT $2
                  FOR UPDATE SKIP LOCKED)",
        )
        .bind(ms(now - IDEMPOTENCY_RETENTION))
        .bind(i64::from(batch))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        let grants = sqlx::query(
            "DELETE FROM portal_grant WHERE id IN
                 (SELECT id FROM portal_grant WHERE expires_at < $1 LIMIT $2
                  FOR UPDATE SKIP LOCKED)",
        )
        .bind(ms(now))
        .bind(i64::from(batch))
        .execute(&self.pool)
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
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&token.id)
        .bind(&token.org_id)
        .bind(&token.app_id)
        .bind(&token.name)
        .bind(ms(token.created_at))
        .bind(token.expires_at.map(ms))
        .bind(token.revoked_at.map(ms))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn list_api_tokens(&self, org_id: Option<&str>) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query(
            "SELECT * FROM api_token WHERE $1::text IS NULL OR org_id = $1
             ORDER BY created_at DESC, id DESC",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(row_api_token).collect()
    }

    async fn revoke_api_token(&self, id: &str, now: Timestamp) -> Result<ApiToken> {
        let row = sqlx::query(
            "UPDATE api_token SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 RETURNING *",
        )
        .bind(ms(now))
        .bind(id)
        .fetch_optional(&self.pool)
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
             WHERE revoked_at IS NOT NULL AND (expires_at IS NULL OR expires_at > $1)",
        )
        .bind(ms(now))
        .fetch_all(&self.pool)
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn use_portal_grant(&self, id: &str, now: Timestamp) -> Result<Option<PortalGrant>> {
        let row = sqlx::query(
            "UPDATE portal_grant SET used_at = $1
             WHERE id = $2 AND used_at IS NULL AND ended_at IS NULL AND link_expires_at > $1
             RETURNING *",
        )
        .bind(ms(now))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(row_portal_grant).transpose()
    }

    async fn get_portal_grant(&self, id: &str) -> Result<Option<PortalGrant>> {
        let row = sqlx::query("SELECT * FROM portal_grant WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(row_portal_grant).transpose()
    }

    async fn end_portal_grant(&self, id: &str, now: Timestamp) -> Result<()> {
        let done =
            sqlx::query("UPDATE portal_grant SET ended_at = COALESCE(ended_at, $1) WHERE id = $2")
                .bind(ms(now))
                .bind(id)
                .execute(&self.pool)
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
                "SELECT endpoint_id AS owner, convert_to(key, 'UTF8') AS value FROM endpoint_secret
                 WHERE key NOT LIKE $1 LIMIT $2"
            }
            SealedColumn::EndpointHeaders => {
                "SELECT id AS owner, convert_to(headers, 'UTF8') AS value FROM endpoint
                 WHERE headers <> '{}' AND headers NOT LIKE $1 LIMIT $2"
            }
            SealedColumn::IdempotencyBody => {
                "SELECT scope || chr(10) || key AS owner, body AS value FROM idempotency
                 WHERE body IS NOT NULL AND body NOT LIKE convert_to($1, 'UTF8') LIMIT $2"
            }
        };
        let rows = sqlx::query(sql)
            .bind(sealed_with_pattern(current_key))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
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
                sqlx::query(
                    "UPDATE endpoint_secret SET key = $1 WHERE endpoint_id = $2 AND key = $3",
                )
                .bind(text(new))
                .bind(owner)
                .bind(text(old))
                .execute(&self.pool)
                .await
            }
            SealedColumn::EndpointHeaders => {
                sqlx::query("UPDATE endpoint SET headers = $1 WHERE id = $2 AND headers = $3")
                    .bind(text(new))
                    .bind(owner)
                    .bind(text(old))
                    .execute(&self.pool)
                    .await
            }
            SealedColumn::IdempotencyBody => {
                let (scope, key) = owner.split_once('\n').ok_or(StoreError::NotFound)?;
                sqlx::query(
                    "UPDATE idempotency SET body = $1 WHERE scope = $2 AND key = $3 AND body = $4",
                )
                .bind(new)
                .bind(scope)
                .bind(key)
                .bind(old)
                .execute(&self.pool)
                .await
            }
        }
        .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn meta(&self, name: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM herald_meta WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| r.try_get("value").map_err(db_err)).transpose()
    }

    async fn set_meta(&self, name: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO herald_meta (name, value) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }
}

fn row_api_token(r: &PgRow) -> Result<ApiToken> {
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

fn row_portal_grant(r: &PgRow) -> Result<PortalGrant> {
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

/// The queries behind the lists, the claim and pruning must walk an index, not
/// the table: these grow without bound. With sequential scans priced out, an
/// empty table shows whether an index *can* serve each query.
#[cfg(test)]
mod index_tests {
    use sqlx::postgres::PgArguments;
    use sqlx::query::Query;

    use super::*;

    /// The plan of `query` (an `EXPLAIN`), with sequential scans and sorts
    /// priced out for this transaction only. On an empty table the planner
    /// would otherwise pick either as cheapest; priced out, one still in the
    /// plan means no index can serve the filter or the order.
    async fn plan_of(store: &PostgresStore, query: Query<'_, Postgres, PgArguments>) -> String {
        let mut tx = store.pool.begin().await.unwrap();
        for setting in ["enable_seqscan", "enable_sort"] {
            sqlx::query(&format!("SET LOCAL {setting} = off"))
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        let rows = query.fetch_all(&mut *tx).await.unwrap();
        tx.rollback().await.unwrap();
        rows.iter()
            .map(|r| r.get::<String, _>(0))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn explain() -> QueryBuilder<'static, Postgres> {
        QueryBuilder::new("EXPLAIN ")
    }

    fn assert_indexed(what: &str, plan: &str) {
        assert!(plan.contains("Index"), "{what}: no index scan:\n{plan}");
        assert!(!plan.contains("Seq Scan"), "{what}: a full scan:\n{plan}");
        assert!(
            !plan.contains("Sort"),
            "{what}: sorts instead of reading in index order:\n{plan}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lists_claims_and_pruning_use_indexes() {
        let database = crate::tests::create_database().await;
        let url = database.url.clone();
        let options = PostgresOptions {
            max_connections: 2,
            ..PostgresOptions::default()
        };
        let store = PostgresStore::open(&url, &options, crate::test_keyring())
            .await
            .unwrap();
        let filter = ListFilter::default();
        let first = Page {
            limit: 50,
            iterator: None,
            descending: true,
        };
        let next = Page {
            iterator: Some("x_2".into()),
            ..first.clone()
        };
        for page in [first, next] {
            let mut qb = explain();
            push_list_messages(&mut qb, "app_1", &filter, &page);
            assert_indexed("messages by app", &plan_of(&store, qb.build()).await);

            let mut qb = explain();
            push_list_attempts_by_endpoint(&mut qb, "app_1", "ep_1", &filter, &page);
            assert_indexed("attempts by endpoint", &plan_of(&store, qb.build()).await);

            let mut qb = explain();
            push_list_attempts_by_msg(&mut qb, "app_1", "msg_1", &filter, &page);
            assert_indexed("attempts by message", &plan_of(&store, qb.build()).await);
        }

        let sql = format!("EXPLAIN {CLAIM_DUE_SELECT}");
        let query = sqlx::query(&sql)
            .bind(0_i64)
            .bind(vec!["ep_1".to_string()])
            .bind(10_i64)
            .bind(0_i64);
        let claim = plan_of(&store, query).await;
        assert_indexed("the due-delivery claim", &claim);
        assert!(claim.contains("delivery_due"), "{claim}");

        for (what, select, index) in [
            (
                "expired payloads",
                PRUNE_PAYLOADS_SELECT,
                "message_expires_at",
            ),
            ("old attempts", PRUNE_ATTEMPTS_SELECT, "attempt_created_at"),
        ] {
            let sql = format!("EXPLAIN {select}");
            let query = sqlx::query(&sql).bind(0_i64).bind(1000_i64);
            let got = plan_of(&store, query).await;
            assert_indexed(what, &got);
            assert!(got.contains(index), "{what}: {got}");
        }

        drop(store);
        drop(database);
    }
}
