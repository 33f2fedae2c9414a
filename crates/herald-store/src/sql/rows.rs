//! Records from rows, by column name, for either database. Each function names
//! the columns it reads; a column missing or of another type is
//! [`StoreError::Corrupt`](crate::StoreError::Corrupt), never a panic.

use crate::codec::{open_headers, open_map};
use crate::model::*;
use crate::{Keyring, Result, StoreError};

use super::run::Columns;

/// The delivery columns of a row that also holds another record, prefixed
/// `d_` so they do not clash with its columns (see [`delivery`]).
pub const DELIVERY_COLUMNS: &str = "d.msg_id AS d_msg_id, d.endpoint_id AS d_endpoint_id, \
     d.app_id AS d_app_id, d.status AS d_status, d.attempts AS d_attempts, \
     d.next_attempt_at AS d_next_attempt_at, d.created_at AS d_created_at, \
     d.updated_at AS d_updated_at";

/// What set an attempt off: a manual request, or the schedule.
fn trigger(manual: bool) -> TriggerType {
    if manual {
        TriggerType::Manual
    } else {
        TriggerType::Scheduled
    }
}

pub fn app(r: &impl Columns) -> Result<Application> {
    Ok(Application {
        id: r.text("id")?,
        org_id: r.text("org_id")?,
        uid: r.opt_text("uid")?,
        name: r.text("name")?,
        metadata: r.json("metadata")?,
        throttle_rate: r.opt_int("throttle_rate")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

pub fn event_type(r: &impl Columns) -> Result<EventType> {
    Ok(EventType {
        org_id: r.text("org_id")?,
        name: r.text("name")?,
        description: r.text("description")?,
        archived: r.flag("archived")?,
        deprecated: r.flag("deprecated")?,
        feature_flag: r.opt_text("feature_flag")?,
        schemas: r
            .opt_text("schemas")?
            .as_deref()
            .map(crate::codec::parse_json)
            .transpose()?,
        public: r.flag("public")?,
        validate_payload: r.flag("validate_payload")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

/// An endpoint, its headers opened with `keyring`.
pub fn endpoint(keyring: &Keyring, r: &impl Columns) -> Result<Endpoint> {
    let id = r.text("id")?;
    let variables = open_map(
        keyring,
        SealedColumn::TransformationVariables,
        &id,
        &r.text("transformation_variables")?,
    )?;
    Ok(Endpoint {
        headers: open_headers(keyring, &id, &r.text("headers")?)?,
        id,
        app_id: r.text("app_id")?,
        uid: r.opt_text("uid")?,
        url: r.text("url")?,
        description: r.text("description")?,
        disabled: r.flag("disabled")?,
        event_types: r.list("event_types")?,
        channels: r.list("channels")?,
        metadata: r.json("metadata")?,
        throttle_rate: r.opt_int("throttle_rate")?,
        version: r.int("version")?,
        date_format: r.text("date_format")?,
        transformation: Transformation {
            code: r.opt_text("transformation_code")?,
            enabled: r.flag("transformation_enabled")?,
            variables,
            updated_at: r.opt_time("transformation_updated_at")?,
        },
        filters: serde_json::from_str(&r.text("filters")?)
            .map_err(|e| StoreError::Corrupt(format!("endpoint.filters: {e}")))?,
        health: Health {
            failing_since: r.opt_time("failing_since")?,
            consecutive_failures: r.int("consecutive_failures")?,
            last_error: r.opt_text("last_error")?,
            paused_until: r.opt_time("paused_until")?,
            disabled_by: r
                .opt_text("disabled_by")?
                .as_deref()
                .and_then(DisabledBy::parse),
            disabled_at: r.opt_time("disabled_at")?,
        },
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

pub fn message(r: &impl Columns) -> Result<Message> {
    Ok(Message {
        id: r.text("id")?,
        app_id: r.text("app_id")?,
        event_type: r.text("event_type")?,
        event_id: r.opt_text("event_id")?,
        channels: r.list("channels")?,
        payload: r.text("payload")?,
        created_at: r.time("created_at")?,
        expires_at: r.opt_time("expires_at")?,
        tags: r.list("tags")?,
        deliver_at: r.opt_time("deliver_at")?,
        content_type: r.opt_text("content_type")?,
    })
}

/// A delivery from [`DELIVERY_COLUMNS`].
pub fn delivery(r: &impl Columns) -> Result<Delivery> {
    Ok(Delivery {
        msg_id: r.text("d_msg_id")?,
        endpoint_id: r.text("d_endpoint_id")?,
        app_id: r.text("d_app_id")?,
        status: r.status("d_status")?,
        attempts: r.int("d_attempts")?,
        next_attempt_at: r.opt_time("d_next_attempt_at")?,
        created_at: r.time("d_created_at")?,
        updated_at: r.time("d_updated_at")?,
    })
}

pub fn attempt(r: &impl Columns) -> Result<Attempt> {
    Ok(Attempt {
        id: r.text("id")?,
        msg_id: r.text("msg_id")?,
        endpoint_id: r.text("endpoint_id")?,
        app_id: r.text("app_id")?,
        url: r.text("url")?,
        status: r.status("status")?,
        response_status_code: r.int("response_status_code")?,
        response: r.text("response")?,
        response_duration_ms: r.int("response_duration_ms")?,
        trigger_type: trigger(r.int("trigger_type")? == TriggerType::Manual as i64),
        skipped: r.opt_text("skipped")?.as_deref().and_then(Skip::parse),
        request_headers: header_list(r, "request_headers")?,
        response_headers: header_list(r, "response_headers")?,
        created_at: r.time("created_at")?,
    })
}

/// An attempt's headers, kept as a JSON array of `[name, value]` pairs
/// (NULL: none).
fn header_list(r: &impl Columns, column: &str) -> Result<Vec<(String, String)>> {
    match r.opt_text(column)? {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("attempt.{column}: {e}"))),
    }
}

/// The column value of an attempt's headers (see [`header_list`]).
pub fn header_text(headers: &[(String, String)]) -> Option<String> {
    (!headers.is_empty())
        .then(|| serde_json::to_string(headers).expect("pairs of strings serialize"))
}

/// A claimed delivery, from [`JOB_COLUMNS`](super::queue::JOB_COLUMNS).
pub fn job(r: &impl Columns) -> Result<Job> {
    Ok(Job {
        msg_id: r.text("msg_id")?,
        app_id: r.text("app_id")?,
        org_id: r.text("org_id")?,
        event_type: r.text("event_type")?,
        payload: r.text("payload")?,
        content_type: r.opt_text("content_type")?,
        endpoint_id: r.text("endpoint_id")?,
        attempts: r.int("attempts")?,
        due_at: r.time("due_at")?,
        slotted: r.flag("slotted")?,
        trigger: trigger(r.flag("manual")?),
    })
}

pub fn api_token(r: &impl Columns) -> Result<ApiToken> {
    Ok(ApiToken {
        id: r.text("id")?,
        org_id: r.text("org_id")?,
        app_id: r.opt_text("app_id")?,
        name: r.text("name")?,
        created_at: r.time("created_at")?,
        expires_at: r.opt_time("expires_at")?,
        revoked_at: r.opt_time("revoked_at")?,
    })
}

pub fn portal_grant(r: &impl Columns) -> Result<PortalGrant> {
    Ok(PortalGrant {
        id: r.text("id")?,
        org_id: r.text("org_id")?,
        app_id: r.opt_text("app_id")?,
        read_only: r.flag("read_only")?,
        session_id: r.opt_text("session_id")?,
        created_at: r.time("created_at")?,
        link_expires_at: r.time("link_expires_at")?,
        expires_at: r.time("expires_at")?,
        used_at: r.opt_time("used_at")?,
        ended_at: r.opt_time("ended_at")?,
    })
}

pub fn background_task(r: &impl Columns) -> Result<BackgroundTask> {
    Ok(BackgroundTask {
        id: r.text("id")?,
        org_id: r.text("org_id")?,
        task: r.text("task")?,
        status: r.text("status")?,
        data: r.json("data")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}
