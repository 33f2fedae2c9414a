//! Statements and how they run, for any database sqlx speaks.
//!
//! A [`Sql`] is SQL text with `$1`, `$2`, ... placeholders and the values
//! bound to them, in order (sqlx's SQLite driver reads `$N` as PostgreSQL
//! does, so one text serves both; statements of many values use the
//! dialect's own, see [`Placeholders`]). It runs on a [`Handle`] — a pool or a
//! transaction — and rows are read by column name with `try_get` through
//! [`Columns`], so a missing or mistyped column is an error, never a panic.
//!
//! sqlx's trait bounds (how arguments are encoded, which executors exist, which
//! types decode) are written once, on the blanket impl of [`Run`]. Code that is
//! generic over the database asks only `DB: Run` (through `Backend`), because a
//! trait's supertraits are implied where its where-clauses are not.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::future::Future;

use sqlx::query::Query;
use sqlx::{ColumnIndex, Database, Decode, Encode, IntoArguments, Pool, Transaction, Type};

use crate::codec::{from_ms, ms, opt_ms, parse_json, parse_list};
use crate::model::{MessageStatus, Timestamp, TriggerType};
use crate::{Conflict, Result, StoreError};

use super::dialect::Dialect;

/// One value bound to a statement. Record fields are borrowed (sqlx copies
/// them once, as it encodes them); values made for the statement are owned.
#[derive(Debug)]
pub enum Arg<'a> {
    Int(Option<i64>),
    Bool(bool),
    Text(Option<Cow<'a, str>>),
    Bytes(Option<Cow<'a, [u8]>>),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}

impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}

/// Times are stored as UNIX milliseconds.
impl From<Timestamp> for Arg<'_> {
    fn from(t: Timestamp) -> Self {
        Arg::Int(Some(ms(t)))
    }
}

impl From<Option<Timestamp>> for Arg<'_> {
    fn from(t: Option<Timestamp>) -> Self {
        Arg::Int(t.map(ms))
    }
}

/// Statuses are stored as Svix's numbers, which their Rust types define.
impl From<MessageStatus> for Arg<'_> {
    fn from(s: MessageStatus) -> Self {
        Arg::Int(Some(s as i64))
    }
}

impl From<TriggerType> for Arg<'_> {
    fn from(t: TriggerType) -> Self {
        Arg::Int(Some(t as i64))
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Some(Cow::Borrowed(v)))
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(Some(Cow::Borrowed(v)))
    }
}

impl From<String> for Arg<'_> {
    fn from(v: String) -> Self {
        Arg::Text(Some(Cow::Owned(v)))
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::Text(v.map(Cow::Borrowed))
    }
}

impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Arg::Text(v.as_deref().map(Cow::Borrowed))
    }
}

impl From<Option<String>> for Arg<'_> {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v.map(Cow::Owned))
    }
}

impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(v: &'a [u8]) -> Self {
        Arg::Bytes(Some(Cow::Borrowed(v)))
    }
}

impl From<Vec<u8>> for Arg<'_> {
    fn from(v: Vec<u8>) -> Self {
        Arg::Bytes(Some(Cow::Owned(v)))
    }
}

/// A statement: SQL text whose placeholders take the bound values in order
/// (`$1`, `$2`, ..., or see [`Placeholders`]), and what a unique violation
/// means for it.
#[derive(Debug)]
pub struct Sql<'a> {
    text: Cow<'static, str>,
    args: Vec<Arg<'a>>,
    conflict: Option<Conflict>,
    placeholders: Placeholders,
}

/// How the builder writes the placeholders of the values it binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placeholders {
    /// `$1`, `$2`, ...: read by number, so text may use one twice.
    Numbered,
    /// `?`, in the order the values are bound; the text may hold no other.
    /// SQLite and sqlx look a numbered placeholder up by a linear scan per
    /// value, which in a statement of thousands of values (a batch of new
    /// deliveries) costs more than writing the rows.
    Positional,
}

impl<'a> Sql<'a> {
    /// A statement whose text already holds the placeholders of the values
    /// [`Sql::bind`] adds.
    pub fn new(text: impl Into<Cow<'static, str>>) -> Sql<'a> {
        Sql {
            text: text.into(),
            args: Vec::new(),
            conflict: None,
            placeholders: Placeholders::Numbered,
        }
    }

    /// A statement of many values (a multi-row insert), whose text holds no
    /// placeholder: every value is bound with [`Sql::push_values`] or
    /// [`Sql::push_bind`], in the placeholders the dialect reads fastest.
    pub fn bulk<DB: Dialect>(text: &'static str) -> Sql<'a> {
        Sql {
            placeholders: DB::BULK_PLACEHOLDERS,
            ..Sql::new(text)
        }
    }

    /// Binds the value of the next placeholder written in the text.
    pub fn bind(mut self, value: impl Into<Arg<'a>>) -> Sql<'a> {
        self.args.push(value.into());
        self
    }

    /// What a unique violation of this statement means (otherwise the
    /// generic [`Conflict::Duplicate`]).
    pub fn on_conflict(mut self, conflict: Conflict) -> Sql<'a> {
        self.conflict = Some(conflict);
        self
    }

    /// Makes room for `more` bound values.
    pub fn reserve(&mut self, more: usize) {
        self.args.reserve(more);
    }

    /// Appends text.
    pub fn push(&mut self, text: &str) -> &mut Sql<'a> {
        self.text.to_mut().push_str(text);
        self
    }

    /// Binds a value and returns its placeholder, for the caller to write.
    pub fn param(&mut self, value: impl Into<Arg<'a>>) -> String {
        debug_assert_eq!(self.placeholders, Placeholders::Numbered);
        self.args.push(value.into());
        format!("${}", self.args.len())
    }

    /// Binds a value and appends its placeholder.
    pub fn push_bind(&mut self, value: impl Into<Arg<'a>>) -> &mut Sql<'a> {
        self.args.push(value.into());
        let text = self.text.to_mut();
        match self.placeholders {
            Placeholders::Numbered => {
                write!(text, "${}", self.args.len()).expect("writing to a String cannot fail");
            }
            Placeholders::Positional => text.push('?'),
        }
        self
    }

    /// Appends `(v1, v2, ...), (...)`: one tuple of placeholders per item,
    /// with the values `row` binds for it.
    pub fn push_values<T>(
        &mut self,
        items: impl IntoIterator<Item = T>,
        mut row: impl FnMut(&mut Tuple<'_, 'a>, T),
    ) -> &mut Sql<'a> {
        for (i, item) in items.into_iter().enumerate() {
            self.push(if i == 0 { "(" } else { ", (" });
            let mut tuple = Tuple {
                sql: self,
                first: true,
            };
            row(&mut tuple, item);
            self.push(")");
        }
        self
    }

    /// The statement with `prefix` before its text (the index tests put
    /// `EXPLAIN` there).
    #[cfg(test)]
    pub fn prefixed(mut self, prefix: &str) -> Sql<'a> {
        self.text = Cow::Owned(format!("{prefix}{}", self.text));
        self
    }

    pub fn execute<'e, H: Handle<'e>>(self, on: H) -> impl Future<Output = Result<u64>> + Send + 'e
    where
        'a: 'e,
    {
        H::Db::execute(on.exec(), self)
    }

    pub fn fetch_all<'e, H: Handle<'e>>(
        self,
        on: H,
    ) -> impl Future<Output = Result<Vec<<H::Db as Database>::Row>>> + Send + 'e
    where
        'a: 'e,
    {
        H::Db::fetch_all(on.exec(), self)
    }

    pub fn fetch_optional<'e, H: Handle<'e>>(
        self,
        on: H,
    ) -> impl Future<Output = Result<Option<<H::Db as Database>::Row>>> + Send + 'e
    where
        'a: 'e,
    {
        H::Db::fetch_optional(on.exec(), self)
    }

    /// Every row, as a record `read` makes of it.
    pub async fn fetch_all_as<'e, H: Handle<'e>, T>(
        self,
        on: H,
        read: impl Fn(&<H::Db as Database>::Row) -> Result<T> + Send,
    ) -> Result<Vec<T>>
    where
        'a: 'e,
    {
        self.fetch_all(on).await?.iter().map(read).collect()
    }

    /// The row, if any, as a record `read` makes of it.
    pub async fn fetch_optional_as<'e, H: Handle<'e>, T>(
        self,
        on: H,
        read: impl Fn(&<H::Db as Database>::Row) -> Result<T> + Send,
    ) -> Result<Option<T>>
    where
        'a: 'e,
    {
        self.fetch_optional(on)
            .await?
            .as_ref()
            .map(read)
            .transpose()
    }
}

/// The values of one row of [`Sql::push_values`].
pub struct Tuple<'s, 'a> {
    sql: &'s mut Sql<'a>,
    first: bool,
}

impl<'a> Tuple<'_, 'a> {
    pub fn bind(&mut self, value: impl Into<Arg<'a>>) -> &mut Self {
        if !self.first {
            self.sql.push(", ");
        }
        self.first = false;
        self.sql.push_bind(value);
        self
    }
}

/// Where a statement runs: a pool (each statement on a connection of its own)
/// or one transaction's connection.
pub enum Exec<'e, DB: Database> {
    Pool(&'e Pool<DB>),
    Conn(&'e mut DB::Connection),
}

/// A pool or a transaction, as a place to run statements.
pub trait Handle<'e>: Send {
    type Db: Run;
    fn exec(self) -> Exec<'e, Self::Db>;
}

impl<'e, DB: Run> Handle<'e> for &'e Pool<DB> {
    type Db = DB;
    fn exec(self) -> Exec<'e, DB> {
        Exec::Pool(self)
    }
}

impl<'e, DB: Run> Handle<'e> for &'e mut Transaction<'_, DB> {
    type Db = DB;
    fn exec(self) -> Exec<'e, DB> {
        Exec::Conn(&mut **self)
    }
}

/// How many rows a write touched (sqlx has no trait for it).
pub trait RowsAffected {
    fn rows_affected(&self) -> u64;
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows_affected(&self) -> u64 {
        self.rows_affected()
    }
}

/// Reading a row's columns by name: a missing column, or one that does not
/// decode as asked, is [`StoreError::Corrupt`].
pub trait Columns {
    fn text(&self, column: &str) -> Result<String>;
    fn opt_text(&self, column: &str) -> Result<Option<String>>;
    fn int(&self, column: &str) -> Result<i64>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>>;
    fn flag(&self, column: &str) -> Result<bool>;
    fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>>;

    /// A time stored as UNIX milliseconds.
    fn time(&self, column: &str) -> Result<Timestamp> {
        Ok(from_ms(self.int(column)?))
    }

    fn opt_time(&self, column: &str) -> Result<Option<Timestamp>> {
        Ok(opt_ms(self.opt_int(column)?))
    }

    /// JSON stored as text.
    fn json(&self, column: &str) -> Result<serde_json::Value> {
        parse_json(&self.text(column)?)
    }

    /// A list of strings stored as JSON text, or NULL.
    fn list(&self, column: &str) -> Result<Option<Vec<String>>> {
        parse_list(self.opt_text(column)?)
    }

    fn status(&self, column: &str) -> Result<MessageStatus> {
        Ok(MessageStatus::from_i64(self.int(column)?))
    }
}

fn decode_err(column: &str, e: sqlx::Error) -> StoreError {
    StoreError::Corrupt(format!("column {column}: {e}"))
}

impl<R> Columns for R
where
    R: sqlx::Row,
    for<'c> &'c str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, column: &str) -> Result<String> {
        self.try_get(column).map_err(|e| decode_err(column, e))
    }

    fn opt_text(&self, column: &str) -> Result<Option<String>> {
        self.try_get(column).map_err(|e| decode_err(column, e))
    }

    fn int(&self, column: &str) -> Result<i64> {
        self.try_get(column).map_err(|e| decode_err(column, e))
    }

    fn opt_int(&self, column: &str) -> Result<Option<i64>> {
        self.try_get(column).map_err(|e| decode_err(column, e))
    }

    fn flag(&self, column: &str) -> Result<bool> {
        self.try_get(column).map_err(|e| decode_err(column, e))
    }

    fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>> {
        self.try_get(column).map_err(|e| decode_err(column, e))
    }
}

/// A database that statements run on: the one place sqlx's bounds are met.
pub trait Run: Database<Row: Columns, QueryResult: RowsAffected> {
    fn execute<'e>(
        on: Exec<'e, Self>,
        sql: Sql<'e>,
    ) -> impl Future<Output = Result<u64>> + Send + 'e;

    fn fetch_all<'e>(
        on: Exec<'e, Self>,
        sql: Sql<'e>,
    ) -> impl Future<Output = Result<Vec<Self::Row>>> + Send + 'e;

    fn fetch_optional<'e>(
        on: Exec<'e, Self>,
        sql: Sql<'e>,
    ) -> impl Future<Output = Result<Option<Self::Row>>> + Send + 'e;

    /// sqlx's query for the text, with the arguments bound in order.
    fn query<'q>(text: &'q str, args: Vec<Arg<'q>>) -> Query<'q, Self, Self::Arguments<'q>>;
}

/// A failed statement as a [`StoreError`], a unique violation as what the
/// statement says it means.
fn failed(e: sqlx::Error, conflict: Option<Conflict>) -> StoreError {
    match (crate::codec::db_err(e), conflict) {
        (StoreError::Conflict(_), Some(meant)) => StoreError::Conflict(meant),
        (other, _) => other,
    }
}

impl<DB> Run for DB
where
    DB: Database<Row: Columns, QueryResult: RowsAffected>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Cow<'q, str>>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q [u8]>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Vec<u8>>: Encode<'q, DB> + Type<DB>,
{
    async fn execute<'e>(on: Exec<'e, Self>, sql: Sql<'e>) -> Result<u64> {
        let query = DB::query(&sql.text, sql.args);
        let done = match on {
            Exec::Pool(pool) => query.execute(pool).await,
            Exec::Conn(conn) => query.execute(conn).await,
        };
        done.map(|r| r.rows_affected())
            .map_err(|e| failed(e, sql.conflict))
    }

    async fn fetch_all<'e>(on: Exec<'e, Self>, sql: Sql<'e>) -> Result<Vec<Self::Row>> {
        let query = DB::query(&sql.text, sql.args);
        let rows = match on {
            Exec::Pool(pool) => query.fetch_all(pool).await,
            Exec::Conn(conn) => query.fetch_all(conn).await,
        };
        rows.map_err(|e| failed(e, sql.conflict))
    }

    async fn fetch_optional<'e>(on: Exec<'e, Self>, sql: Sql<'e>) -> Result<Option<Self::Row>> {
        let query = DB::query(&sql.text, sql.args);
        let row = match on {
            Exec::Pool(pool) => query.fetch_optional(pool).await,
            Exec::Conn(conn) => query.fetch_optional(conn).await,
        };
        row.map_err(|e| failed(e, sql.conflict))
    }

    fn query<'q>(text: &'q str, args: Vec<Arg<'q>>) -> Query<'q, DB, DB::Arguments<'q>> {
        let mut query = sqlx::query::<DB>(text);
        for arg in args {
            query = match arg {
                Arg::Int(v) => query.bind(v),
                Arg::Bool(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
                Arg::Bytes(Some(Cow::Borrowed(v))) => query.bind(Some(v)),
                Arg::Bytes(Some(Cow::Owned(v))) => query.bind(Some(v)),
                Arg::Bytes(None) => query.bind(None::<Vec<u8>>),
            };
        }
        query
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::rows;

    /// A column the record needs that the row lacks, or holds as another
    /// type, is an error that names it, not a panic.
    #[tokio::test]
    async fn a_bad_column_is_a_corrupt_record() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        let missing = Sql::new("SELECT 'tok_1' AS id")
            .fetch_optional_as(&pool, rows::api_token)
            .await;
        assert!(
            matches!(&missing, Err(StoreError::Corrupt(why)) if why.contains("org_id")),
            "{missing:?}"
        );
        let mistyped = Sql::new("SELECT $1 AS n")
            .bind("three")
            .fetch_optional_as(&pool, |r| r.int("n"))
            .await;
        assert!(
            matches!(&mistyped, Err(StoreError::Corrupt(why)) if why.contains("column n")),
            "{mistyped:?}"
        );
        let fine = Sql::new("SELECT $2 AS a, $1 AS b, $2 AS c")
            .bind(1_i64)
            .bind(2_i64)
            .fetch_optional_as(&pool, |r| Ok((r.int("a")?, r.int("b")?, r.int("c")?)))
            .await
            .unwrap();
        assert_eq!(fine, Some((2, 1, 2)), "$N placeholders bind by number");
    }
}
