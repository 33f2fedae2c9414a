//! Request extractors that turn bad input into [`Error`]s naming the place:
//! JSON bodies with the path of the bad field, query parameters by name, and the
//! bearer token.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use herald_store::{ListFilter, MessageStatus, Page};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::auth::Principal;
use crate::service::Herald;
use crate::service::{Error, FieldError, Result};

/// A JSON body. A body that is not JSON, or of the wrong shape, is 422 with
/// the JSON path of the first bad field (`["body"]` for a syntax error), as
/// Svix's server answers both (its `value_error.jsondecode`).
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Herald> for Body<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &Herald) -> Result<Self, Self::Rejection> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse_json(&bytes).map(Body)
    }
}

/// A body's bytes, up to `HERALD_MAX_BODY_BYTES`. A larger one is 413 once
/// the client has sent it (read and dropped, up to [`DRAIN_AT_MOST`]), with
/// `Connection: close`: a client that writes its whole request before
/// reading, as most do, reads the 413 instead of a broken pipe.
pub struct RawBody(pub Bytes);

/// The most of a body over the limit read (and dropped) before the 413;
/// past it, or after [`DRAIN_FOR_AT_MOST`], the connection is just closed.
pub const DRAIN_AT_MOST: u64 = 64 << 20;
const DRAIN_FOR_AT_MOST: std::time::Duration = std::time::Duration::from_secs(30);

impl FromRequest<Herald> for RawBody {
    type Rejection = Error;

    async fn from_request(req: Request, state: &Herald) -> Result<Self, Self::Rejection> {
        use http_body_util::BodyExt;
        let limit = state.config.max_body_bytes;
        let too_large = Error::PayloadTooLarge(limit);
        let declared = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let mut body = req.into_body();
        if declared.is_some_and(|n| n > limit as u64) {
            if declared.is_some_and(|n| n <= DRAIN_AT_MOST) {
                drain(body).await;
            }
            return Err(too_large);
        }
        let mut read = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Error::BadRequest {
                code: "invalid_body",
                detail: format!("cannot read the request body: {e}"),
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if read.len() + data.len() > limit {
                drain(body).await;
                return Err(too_large);
            }
            read.extend_from_slice(&data);
        }
        Ok(RawBody(read.freeze()))
    }
}

/// Reads the rest of a body and drops it, up to [`DRAIN_AT_MOST`] bytes and
/// [`DRAIN_FOR_AT_MOST`].
pub async fn drain(mut body: axum::body::Body) {
    use http_body_util::BodyExt;
    let read_all = async {
        let mut left = DRAIN_AT_MOST;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                left = left.saturating_sub(data.len() as u64);
                if left == 0 {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_FOR_AT_MOST, read_all).await;
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut *de);
    // One JSON value and nothing after it: `{...} trailing` is not a body.
    if result.is_ok() {
        de.end().map_err(|inner| not_json(&inner))?;
    }
    result.map_err(|err| {
        let inner = err.inner();
        if inner.is_syntax() || inner.is_eof() {
            return not_json(inner);
        }
        let mut loc = vec!["body".to_string()];
        loc.extend(
            err.path()
                .iter()
                .map(|seg| seg.to_string())
                .filter(|s| s != "?"),
        );
        let msg = inner.to_string();
        // serde reports a missing field at its parent; name the field itself.
        if let Some(field) = msg
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            loc.push(field.to_string());
        }
        let msg = match msg.rfind(" at line ") {
            Some(i) => msg[..i].to_string(),
            None => msg,
        };
        Error::Validation(vec![FieldError {
            loc,
            msg,
            kind: "value_error",
        }])
    })
}

/// A body that is not one JSON value: 422 at `["body"]`, with serde's line
/// and column.
fn not_json(inner: &serde_json::Error) -> Error {
    Error::Validation(vec![FieldError {
        loc: vec!["body".to_string()],
        msg: format!("request body is not valid JSON: {inner}"),
        kind: "value_error.jsondecode",
    }])
}

/// A PATCH field: absent (leave alone), `null` (reset), or a value.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            None => Patch::Null,
            Some(v) => Patch::Value(v),
        })
    }
}

impl<T> Patch<T> {
    /// Applies the patch to an optional field.
    pub fn apply_opt(self, current: Option<T>) -> Option<T> {
        match self {
            Patch::Absent => current,
            Patch::Null => None,
            Patch::Value(v) => Some(v),
        }
    }
}

/// The query string, read by hand so that lists may come as repeated keys,
/// comma-separated (the SDKs send the latter), as `name[]=` (many HTTP
/// clients' form of a list) or as `name[0]=` (the indexed form some send).
pub struct Params(HashMap<String, Vec<String>>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        if let Some(q) = parts.uri.query() {
            for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
                let key = list_key(&k).to_string();
                map.entry(key).or_default().push(v.into_owned());
            }
        }
        Ok(Params(map))
    }
}

/// A list parameter's name without its brackets: `a[]` and `a[3]` are `a`.
fn list_key(key: &str) -> &str {
    match key.strip_suffix(']').and_then(|k| k.rsplit_once('[')) {
        Some((name, index)) if index.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => key,
    }
}

impl Params {
    pub fn str(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    pub fn list(&self, name: &str) -> Vec<String> {
        self.0
            .get(name)
            .into_iter()
            .flatten()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    pub fn bool(&self, name: &str, default: bool) -> Result<bool> {
        match self.str(name) {
            None => Ok(default),
            Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(_) => Err(invalid(name, "must be true or false")),
        }
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>> {
        self.str(name)
            .map(|s| s.parse().map_err(|_| invalid(name, "must be an integer")))
            .transpose()
    }

    pub fn datetime(&self, name: &str) -> Result<Option<DateTime<Utc>>> {
        self.str(name)
            .map(|s| {
                query_time(s).ok_or_else(|| {
                    invalid(
                        name,
                        "must be a date-time such as 2026-11-30T12:00:00Z (RFC 3339 or ISO 8601)",
                    )
                })
            })
            .transpose()
    }

    /// `limit` (1..=250, default 50), `iterator` and `order`.
    pub fn page(&self, descending_by_default: bool) -> Result<Page> {
        let limit = match self.int("limit")? {
            None => 50,
            Some(n) if (1..=250).contains(&n) => n as u32,
            Some(_) => return Err(invalid("limit", "must be between 1 and 250")),
        };
        let descending = match self.str("order") {
            None => descending_by_default,
            Some("ascending") => false,
            Some("descending") => true,
            Some(_) => return Err(invalid("order", "must be ascending or descending")),
        };
        // Svix's `prevIterator` is the first item's key after a `-`.
        let (iterator, backwards) = match self.str("iterator") {
            Some(it) => match it.strip_prefix('-') {
                Some(key) => (Some(key.to_string()), true),
                None => (Some(it.to_string()), false),
            },
            None => (None, false),
        };
        // Every list's key is an id or a name: anything else was not given
        // by a list (Svix answers 422 too).
        if let Some(key) = &iterator {
            if herald_core::name::validate_name(key).is_err() {
                return Err(invalid(
                    "iterator",
                    "is not an iterator a list answered with",
                ));
            }
        }
        Ok(Page {
            limit,
            iterator,
            descending,
            backwards,
        })
    }

    /// The filters of the message and attempt lists.
    pub fn filter(&self) -> Result<ListFilter> {
        let status = match self.int("status")? {
            None => None,
            Some(n @ 0..=3) => Some(MessageStatus::from_i64(n)),
            Some(_) => return Err(invalid("status", "must be 0, 1, 2 or 3")),
        };
        let status_code_class = match self.int("status_code_class")? {
            None => None,
            Some(n) if n % 100 == 0 && (0..=500).contains(&n) => Some(n),
            Some(_) => {
                return Err(invalid(
                    "status_code_class",
                    "must be one of 0, 100, 200, 300, 400, 500",
                ))
            }
        };
        Ok(ListFilter {
            channel: self.str("channel").map(String::from),
            tag: self.str("tag").map(String::from),
            event_types: self.list("event_types"),
            before: self.datetime("before")?,
            after: self.datetime("after")?,
            status,
            unfinished: false,
            status_code_class,
            endpoint_id: self.str("endpoint_id").map(String::from),
        })
    }
}

/// A time in a query string, in the forms Svix's server takes (chrono's
/// relaxed RFC 3339: a space for the `T`, any fraction of a second) and the
/// ones clients send without meaning anything else: a `+hh:mm` offset whose
/// `+` the query string turned into a space, a time without an offset
/// (UTC), or a bare date (its midnight, UTC).
fn query_time(s: &str) -> Option<DateTime<Utc>> {
    use chrono::{NaiveDate, NaiveDateTime};
    let s = s.trim();
    let utc = |t: DateTime<chrono::FixedOffset>| t.with_timezone(&Utc);
    if let Ok(t) = s.parse::<DateTime<chrono::FixedOffset>>() {
        return Some(utc(t));
    }
    // `...T12:00:00 01:00`: an unescaped `+` read as a space.
    if let Some((time, offset)) = s.rsplit_once(' ') {
        if offset.len() == 5 && offset.as_bytes()[2] == b':' {
            if let Ok(t) = format!("{time}+{offset}").parse::<DateTime<chrono::FixedOffset>>() {
                return Some(utc(t));
            }
        }
    }
    for form in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, form) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

fn invalid(name: &str, msg: &str) -> Error {
    Error::Validation(vec![FieldError::query(name, msg)])
}

impl FromRequestParts<Herald> for Principal {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &Herald) -> Result<Self> {
        principal_of(parts, state).await
    }
}

/// The bearer token of a request, as sent.
pub fn bearer(headers: &axum::http::HeaderMap) -> Result<&str> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| Error::Unauthorized("missing Authorization header".into()))?;
    let header = header
        .to_str()
        .map_err(|_| Error::Unauthorized("malformed Authorization header".into()))?;
    Ok(header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .unwrap_or(header)
        .trim())
}

/// Reads and checks the bearer token of a request: signed by this server,
/// not expired, an API token (not a portal link), and not revoked.
pub async fn principal_of(parts: &Parts, state: &Herald) -> Result<Principal> {
    let verified = state
        .keys
        .verify(bearer(&parts.headers)?)
        .map_err(|why| Error::Unauthorized(why.into()))?;
    if !state.revocations.allows(&verified).await? {
        return Err(Error::Unauthorized("the token has been revoked".into()));
    }
    Ok(verified.principal)
}

#[cfg(test)]
mod tests {

    #[test]
    fn list_parameters_lose_their_brackets_and_index() {
        for (key, name) in [
            ("event_types[]", "event_types"),
            ("event_types[0]", "event_types"),
            ("event_types[12]", "event_types"),
            ("event_types", "event_types"),
            ("a[b]", "a[b]"),
            ("[]", ""),
        ] {
            assert_eq!(super::list_key(key), name, "{key}");
        }
    }

    use super::*;

    #[test]
    fn query_times_come_in_the_forms_clients_send() {
        let noon = "2026-11-30T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
        for s in [
            "2026-11-30T12:00:00Z",
            "2026-11-30T12:00:00.000Z",
            "2026-11-30T13:00:00+01:00",
            "2026-11-30 12:00:00Z",
            "2026-11-30T13:00:00 01:00",
            "2026-11-30T12:00:00",
            "2026-11-30 12:00:00",
        ] {
            assert_eq!(query_time(s), Some(noon), "{s}");
        }
        assert_eq!(
            query_time("2026-11-30"),
            "2026-11-30T00:00:00Z".parse::<DateTime<Utc>>().ok()
        );
        for s in ["yesterday", "1764504000", "2026-13-01", "12:00"] {
            assert_eq!(query_time(s), None, "{s}");
        }
    }
}
