//! Lists: keyset pagination and the filters of the message and attempt logs.
//! The list statements are built here for both the store and the index tests,
//! which EXPLAIN the very SQL the store runs.

use crate::model::{ListFilter, MessageStatus, Page};

use super::dialect::Dialect;
use super::rows::DELIVERY_COLUMNS;
use super::run::Sql;

/// Adds keyset pagination on `key_column` and the limit (one extra row to learn
/// whether the page is the last). A page back reads the other way from the
/// iterator; [`page_of`](super::page_of) turns it round.
pub fn paginate<'a>(sql: &mut Sql<'a>, key_column: &str, page: &'a Page) {
    let descending = page.descending != page.backwards;
    if let Some(it) = &page.iterator {
        let op = if descending { "<" } else { ">" };
        sql.push(&format!(" AND {key_column} {op} ")).push_bind(it);
    }
    let order = if descending { "DESC" } else { "ASC" };
    sql.push(&format!(" ORDER BY {key_column} {order} LIMIT "))
        .push_bind(i64::from(page.limit) + 1);
}

/// The channel, tag and event-type filters on the messages `alias` names.
pub(crate) fn message_filter<'a, DB: Dialect>(
    sql: &mut Sql<'a>,
    alias: &str,
    filter: &'a ListFilter,
) {
    if let Some(channel) = &filter.channel {
        let channel = sql.param(channel);
        let listed = DB::in_json_list(&channel, &format!("{alias}.channels"));
        sql.push(&format!(" AND {listed}"));
    }
    if let Some(tag) = &filter.tag {
        let tag = sql.param(tag);
        let listed = DB::in_json_list(&tag, &format!("{alias}.tags"));
        sql.push(&format!(" AND {listed}"));
    }
    if !filter.event_types.is_empty() {
        let types = serde_json::to_string(&filter.event_types).expect("strings serialize");
        let types = sql.param(types);
        let listed = DB::in_json_list(&format!("{alias}.event_type"), &types);
        sql.push(&format!(" AND {listed}"));
    }
}

/// Svix's window: `before` is strict, `after` takes an item made at that
/// very time (a client pages on from an item's own timestamp).
fn time_window(sql: &mut Sql<'_>, column: &str, filter: &ListFilter) {
    if let Some(before) = filter.before {
        sql.push(&format!(" AND {column} < ")).push_bind(before);
    }
    if let Some(after) = filter.after {
        sql.push(&format!(" AND {column} >= ")).push_bind(after);
    }
}

fn attempt_filter<'a, DB: Dialect>(sql: &mut Sql<'a>, filter: &'a ListFilter) {
    if let Some(status) = filter.status {
        sql.push(" AND a.status = ").push_bind(status);
    }
    if let Some(class) = filter.status_code_class {
        sql.push(" AND a.response_status_code BETWEEN ")
            .push_bind(class)
            .push(" AND ")
            .push_bind(class + 99);
    }
    if filter.channel.is_some() || filter.tag.is_some() || !filter.event_types.is_empty() {
        sql.push(" AND a.msg_id IN (SELECT m.id FROM message m WHERE TRUE");
        message_filter::<DB>(sql, "m", filter);
        sql.push(")");
    }
    time_window(sql, "a.created_at", filter);
}

/// The message log of an application (`list_messages`).
pub fn list_messages<'a, DB: Dialect>(
    app_id: &'a str,
    filter: &'a ListFilter,
    page: &'a Page,
) -> Sql<'a> {
    let mut sql = Sql::new("SELECT * FROM message m WHERE m.app_id = $1").bind(app_id);
    message_filter::<DB>(&mut sql, "m", filter);
    time_window(&mut sql, "m.created_at", filter);
    paginate(&mut sql, "m.id", page);
    sql
}

/// Whose attempts a list shows.
#[derive(Clone, Copy, Debug)]
pub enum AttemptsOf<'a> {
    /// The attempts to an endpoint (`list_attempts_by_endpoint`).
    Endpoint(&'a str),
    /// The attempts of a message (`list_attempts_by_msg`), to the filter's
    /// endpoint if it names one.
    Message(&'a str),
}

/// The attempt log of an endpoint or a message.
pub fn list_attempts<'a, DB: Dialect>(
    app_id: &'a str,
    of: AttemptsOf<'a>,
    filter: &'a ListFilter,
    page: &'a Page,
) -> Sql<'a> {
    let (column, id) = match of {
        AttemptsOf::Endpoint(id) => ("endpoint_id", id),
        AttemptsOf::Message(id) => ("msg_id", id),
    };
    let mut sql = Sql::new(format!(
        "SELECT a.* FROM attempt a WHERE a.app_id = $1 AND a.{column} = $2"
    ))
    .bind(app_id)
    .bind(id);
    if let (AttemptsOf::Message(_), Some(ep)) = (of, &filter.endpoint_id) {
        sql.push(" AND a.endpoint_id = ").push_bind(ep);
    }
    attempt_filter::<DB>(&mut sql, filter);
    paginate(&mut sql, "a.id", page);
    sql
}

/// The endpoints a message went to, with each delivery's state.
pub fn list_attempted_destinations<'a>(
    app_id: &'a str,
    msg_id: &'a str,
    page: &'a Page,
) -> Sql<'a> {
    let mut sql = Sql::new(format!(
        "SELECT e.*, {DELIVERY_COLUMNS} FROM delivery d JOIN endpoint e ON e.id = d.endpoint_id
         WHERE d.app_id = $1 AND d.msg_id = $2"
    ))
    .bind(app_id)
    .bind(msg_id);
    paginate(&mut sql, "e.id", page);
    sql
}

/// The messages that went to an endpoint, with each delivery's state.
pub fn list_attempted_messages<'a, DB: Dialect>(
    app_id: &'a str,
    endpoint_id: &'a str,
    filter: &'a ListFilter,
    page: &'a Page,
) -> Sql<'a> {
    let mut sql = Sql::new(format!(
        "SELECT m.*, {DELIVERY_COLUMNS} FROM delivery d JOIN message m ON m.id = d.msg_id
         WHERE d.app_id = $1 AND d.endpoint_id = $2"
    ))
    .bind(app_id)
    .bind(endpoint_id);
    if filter.unfinished {
        sql.push(" AND d.status IN (")
            .push_bind(MessageStatus::Pending)
            .push(", ")
            .push_bind(MessageStatus::Sending)
            .push(")");
    }
    if let Some(status) = filter.status {
        sql.push(" AND d.status = ").push_bind(status);
    }
    message_filter::<DB>(&mut sql, "m", filter);
    time_window(&mut sql, "m.created_at", filter);
    paginate(&mut sql, "d.msg_id", page);
    sql
}
