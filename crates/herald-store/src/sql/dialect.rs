//! Where SQLite's and PostgreSQL's SQL differ, side by side. Everything else is
//! written once: both read `$N` placeholders, `TRUE`/`FALSE`, `RETURNING`,
//! `ON CONFLICT`, multi-row `VALUES` and row values, and the schema gives
//! both the same column types as far as Rust can tell (integers are `i64`,
//! JSON is text, times are UNIX milliseconds).

use sqlx::{Postgres, Sqlite};

use super::run::Placeholders;

/// The channel PostgreSQL announces new work on.
pub const WORK_CHANNEL: &str = "herald_work";

/// The differences in SQL text.
pub trait Dialect: Sized {
    /// Ends a `SELECT` of the rows a statement is about to change, so that
    /// nodes doing it at once skip each other's rows instead of waiting
    /// (PostgreSQL). Empty where one writer does everything (SQLite).
    const SKIP_LOCKED: &'static str;

    /// Ends a sub-`SELECT` of an endpoint whose `disabled` decides whether a
    /// delivery is parked: the endpoint row stays locked until the
    /// transaction ends, so enabling it (which unparks) waits for the park,
    /// or the park reads the endpoint as enabled (PostgreSQL re-reads a row
    /// it waited for). Empty where one writer does everything (SQLite).
    const LOCK_ENDPOINT: &'static str;

    /// The statement that tells other processes work was queued, run in the
    /// transaction that queues it; `None` where there are no other processes.
    const NOTIFY_WORK: Option<&'static str>;

    /// The placeholders of a statement of many values
    /// ([`Sql::bulk`](super::run::Sql::bulk)).
    const BULK_PLACEHOLDERS: Placeholders;

    /// Whether `expr` is one of the strings of the JSON array `json` (a
    /// placeholder, or a column holding a list). Lists are bound as one JSON
    /// text, so a statement's text is the same whatever the list's length.
    /// PostgreSQL gets an array (`= ANY`), which an index scan takes as its
    /// condition; joined as a table, the list would be guessed at 100 rows
    /// and the planner would scan the whole endpoint table instead.
    fn in_json_list(expr: &str, json: &str) -> String;
}

impl Dialect for Sqlite {
    const SKIP_LOCKED: &'static str = "";
    const LOCK_ENDPOINT: &'static str = "";
    const NOTIFY_WORK: Option<&'static str> = None;
    const BULK_PLACEHOLDERS: Placeholders = Placeholders::Positional;

    fn in_json_list(expr: &str, json: &str) -> String {
        format!("{expr} IN (SELECT value FROM json_each({json}))")
    }
}

impl Dialect for Postgres {
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    const LOCK_ENDPOINT: &'static str = " FOR NO KEY UPDATE";
    const NOTIFY_WORK: Option<&'static str> = Some("SELECT pg_notify('herald_work', '')");
    const BULK_PLACEHOLDERS: Placeholders = Placeholders::Numbered;

    fn in_json_list(expr: &str, json: &str) -> String {
        format!("{expr} = ANY(ARRAY(SELECT json_array_elements_text(CAST({json} AS json))))")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notice_names_the_work_channel() {
        assert!(Postgres::NOTIFY_WORK.unwrap().contains(WORK_CHANNEL));
    }
}
