//! The message log's reads and expunges: one message, the message list,
//! attempts (one, by endpoint, by message), attempted destinations and
//! messages, and the expunging of payloads and attempt responses.

use crate::codec::found;
use crate::model::*;
use crate::Result;

use super::lists::{self, AttemptsOf};
use super::run::{Columns, Sql};
use super::{by_id_or, rows, Backend, SqlStore};

impl<DB: Backend> SqlStore<DB> {
    pub(crate) async fn get_message(
        &self,
        app_id: &str,
        id_or_event_id: &str,
    ) -> Result<Option<Message>> {
        Sql::new(by_id_or("message", "app_id", "event_id"))
            .bind(app_id)
            .bind(id_or_event_id)
            .fetch_optional_as(&self.reader, rows::message)
            .await
    }

    pub(crate) async fn list_messages(
        &self,
        app_id: &str,
        filter: &ListFilter,
        page: &Page,
    ) -> Result<PageOf<Message>> {
        let sql = lists::list_messages::<DB>(app_id, filter, page);
        self.page(sql, page, rows::message).await
    }

    /// Expunges the message's payload (to [`EXPUNGED_PAYLOAD`]), as Svix's
    /// `DELETE .../msg/{id}/content`.
    pub(crate) async fn expunge_message(&self, app_id: &str, msg_id: &str) -> Result<()> {
        let done = Sql::new(
            "UPDATE message SET payload = $1, content_type = NULL, expires_at = NULL
             WHERE app_id = $2 AND id = $3",
        )
        .bind(EXPUNGED_PAYLOAD)
        .bind(app_id)
        .bind(msg_id)
        .execute(&self.writer)
        .await?;
        found(done)
    }

    /// Expunges the payload of every message of the application (Svix's
    /// `expunge-all-contents`), a range of ids at a time so no statement is
    /// long; returns how many payloads it expunged (those already expunged
    /// are not counted).
    pub(crate) async fn expunge_all_contents(&self, app_id: &str) -> Result<u64> {
        const BATCH: i64 = 1000;
        let mut after = String::new();
        let mut expunged = 0;
        loop {
            let last = Sql::new(
                "SELECT MAX(id) AS last FROM (SELECT id FROM message
                     WHERE app_id = $1 AND id > $2 ORDER BY id LIMIT $3) AS page",
            )
            .bind(app_id)
            .bind(after.as_str())
            .bind(BATCH)
            .fetch_optional(&self.reader)
            .await?
            .map(|r| r.opt_text("last"))
            .transpose()?
            .flatten();
            let Some(last) = last else {
                return Ok(expunged);
            };
            expunged += Sql::new(
                "UPDATE message SET payload = $1, content_type = NULL, expires_at = NULL
                 WHERE app_id = $2 AND id > $3 AND id <= $4 AND payload <> $1",
            )
            .bind(EXPUNGED_PAYLOAD)
            .bind(app_id)
            .bind(after.as_str())
            .bind(last.as_str())
            .execute(&self.writer)
            .await?;
            after = last;
        }
    }

    /// Expunges what the receiver answered to one attempt.
    pub(crate) async fn expunge_attempt(
        &self,
        app_id: &str,
        msg_id: &str,
        attempt_id: &str,
    ) -> Result<()> {
        let done = Sql::new(
            "UPDATE attempt SET response = $1, response_headers = NULL
             WHERE app_id = $2 AND msg_id = $3 AND id = $4",
        )
        .bind(EXPUNGED_RESPONSE)
        .bind(app_id)
        .bind(msg_id)
        .bind(attempt_id)
        .execute(&self.writer)
        .await?;
        found(done)
    }

    pub(crate) async fn get_attempt(
        &self,
        app_id: &str,
        msg_id: &str,
        attempt_id: &str,
    ) -> Result<Option<Attempt>> {
        Sql::new("SELECT * FROM attempt WHERE app_id = $1 AND msg_id = $2 AND id = $3")
            .bind(app_id)
            .bind(msg_id)
            .bind(attempt_id)
            .fetch_optional_as(&self.reader, rows::attempt)
            .await
    }

    pub(crate) async fn list_attempts_by_endpoint(
        &self,
        app_id: &str,
        endpoint_id: &str,
        filter: &ListFilter,
        page: &Page,
    ) -> Result<PageOf<Attempt>> {
        let of = AttemptsOf::Endpoint(endpoint_id);
        let sql = lists::list_attempts::<DB>(app_id, of, filter, page);
        self.page(sql, page, rows::attempt).await
    }

    pub(crate) async fn list_attempts_by_msg(
        &self,
        app_id: &str,
        msg_id: &str,
        filter: &ListFilter,
        page: &Page,
    ) -> Result<PageOf<Attempt>> {
        let of = AttemptsOf::Message(msg_id);
        let sql = lists::list_attempts::<DB>(app_id, of, filter, page);
        self.page(sql, page, rows::attempt).await
    }

    pub(crate) async fn list_attempted_destinations(
        &self,
        app_id: &str,
        msg_id: &str,
        page: &Page,
    ) -> Result<PageOf<(Endpoint, Delivery)>> {
        let sql = lists::list_attempted_destinations(app_id, msg_id, page);
        let mut items = sql
            .fetch_all_as(&self.reader, |r| {
                Ok((rows::endpoint(&self.keyring, r)?, rows::delivery(r)?))
            })
            .await?;
        // Endpoints deleted since (their deliveries went with them): still
        // destinations the message was attempted at, as Svix lists them,
        // told by their attempts, which outlive them.
        let gone = Sql::new(
            "SELECT a.endpoint_id, a.url, a.status, a.created_at FROM attempt a
             WHERE a.app_id = $1 AND a.msg_id = $2
               AND NOT EXISTS (SELECT 1 FROM endpoint e WHERE e.id = a.endpoint_id)
             ORDER BY a.created_at, a.id",
        )
        .bind(app_id)
        .bind(msg_id)
        .fetch_all_as(&self.reader, |r| {
            Ok((
                r.text("endpoint_id")?,
                r.text("url")?,
                MessageStatus::from_i64(r.int("status")?),
                r.time("created_at")?,
            ))
        })
        .await?;
        if gone.is_empty() {
            return Ok(super::page_of(items, page));
        }
        let mut deleted: Vec<(Endpoint, Delivery)> = Vec::new();
        for (endpoint_id, url, status, at) in gone {
            match deleted.iter_mut().find(|(e, _)| e.id == endpoint_id) {
                Some((e, d)) => {
                    e.url = url;
                    e.updated_at = at;
                    d.status = status;
                    d.attempts += 1;
                    d.updated_at = at;
                }
                None => deleted.push(deleted_destination(
                    app_id,
                    msg_id,
                    endpoint_id,
                    url,
                    status,
                    at,
                )),
            }
        }
        // In the page's order, after (or before) its iterator, as the query
        // reads the others: merged, then cut as one list.
        let descending = page.descending != page.backwards;
        deleted.retain(|(e, _)| match &page.iterator {
            None => true,
            Some(it) if descending => e.id.as_str() < it.as_str(),
            Some(it) => e.id.as_str() > it.as_str(),
        });
        items.extend(deleted);
        items.sort_by(|(a, _), (b, _)| {
            if descending {
                b.id.cmp(&a.id)
            } else {
                a.id.cmp(&b.id)
            }
        });
        items.truncate(page.limit as usize + 1);
        Ok(super::page_of(items, page))
    }

    pub(crate) async fn list_attempted_messages(
        &self,
        app_id: &str,
        endpoint_id: &str,
        filter: &ListFilter,
        page: &Page,
    ) -> Result<PageOf<(Message, Delivery)>> {
        let sql = lists::list_attempted_messages::<DB>(app_id, endpoint_id, filter, page);
        self.page(sql, page, |r| Ok((rows::message(r)?, rows::delivery(r)?)))
            .await
    }
}

/// A destination whose endpoint was deleted, as its first attempt at the
/// message says (the later ones move it on): disabled, with the URL it was
/// last sent to.
fn deleted_destination(
    app_id: &str,
    msg_id: &str,
    endpoint_id: String,
    url: String,
    status: MessageStatus,
    at: Timestamp,
) -> (Endpoint, Delivery) {
    let endpoint = Endpoint {
        id: endpoint_id.clone(),
        app_id: app_id.to_string(),
        uid: None,
        url,
        description: String::new(),
        disabled: true,
        event_types: None,
        channels: None,
        metadata: serde_json::json!({}),
        headers: Default::default(),
        throttle_rate: None,
        version: 1,
        date_format: herald_core::dates::DateFormat::default()
            .as_str()
            .to_string(),
        transformation: Transformation::default(),
        filters: Vec::new(),
        health: Health::default(),
        created_at: at,
        updated_at: at,
    };
    let delivery = Delivery {
        msg_id: msg_id.to_string(),
        endpoint_id,
        app_id: app_id.to_string(),
        status,
        attempts: 1,
        next_attempt_at: None,
        created_at: at,
        updated_at: at,
    };
    (endpoint, delivery)
}
