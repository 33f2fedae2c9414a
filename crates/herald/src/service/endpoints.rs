//! Endpoints: the rules their fields follow (one place, for the API and the
//! portal), the Test button, and the changes that must reach the worker at
//! once (it reuses what it read of an endpoint for a moment).

use std::collections::BTreeMap;
use std::net::IpAddr;

use axum::http::{HeaderName, HeaderValue};
use chrono::{DateTime, Duration, Utc};
use herald_core::dates::DateFormat;
use herald_core::endpoint_url::EndpointUrl;
use herald_core::name::{validate_channel, validate_name};
use herald_core::net::{AllowList, TenantHost};
use herald_core::signing::{EndpointSecret, KeyKind};
use herald_store::{Application, Endpoint, ListFilter, Message, Targets};
use serde_json::Value;

use super::messages::{new_message, NewMessage, LOOKUP_FRESHNESS};
use super::{Error, FieldError, Herald, Result};
use crate::dispatch::Retries;

/// Svix keeps rotated-out keys valid for a day unless told otherwise.
pub const DEFAULT_GRACE_SECONDS: u32 = 24 * 3600;
const MAX_GRACE_SECONDS: u32 = 7 * 24 * 3600;
const MAX_CHANNELS: usize = 10;

/// Header names an endpoint may not set, compared without case: those Herald
/// sets itself, those HTTP owns (hop-by-hop, framing, the host), and those
/// Svix's server forbids (its `FORBIDDEN_KEYS`), so a header set that Svix
/// refuses is refused here too.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "content-language",
    "content-location",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "upgrade",
    "user-agent",
    "age",
    "cache-control",
    "clear-site-data",
    "expires",
    "pragma",
    "warning",
];
/// Prefixes of header names an endpoint may not set: the signature headers'
/// (`webhook-`, `svix-`), Svix's and the clouds' own (Svix's
/// `FORBIDDEN_PREFIXES`), and the forwarding headers proxies write.
const RESERVED_HEADER_PREFIXES: &[&str] = &[
    "webhook-",
    "svix-",
    "x-svix-",
    "x-forwarded-",
    "x-amz-",
    "x-amzn-",
    "x-google",
    "x-goog-",
    "x-gfe",
    "x-azure-",
    "x-fd-",
];

pub use herald_core::headers::is_sensitive;

pub fn check_url(url: &str) -> Result<String> {
    EndpointUrl::parse(url)
        .map(|u| u.as_str().to_string())
        .map_err(|e| Error::field(&["url"], format!("URL {e}")))
}

/// How long saving an endpoint waits for its URL's name to resolve.
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The one rule for an endpoint's URL, in the API and the portal alike: a
/// well-formed URL ([`check_url`]) that Herald would deliver to now
/// ([`unreachable`]); a 422 at `url` otherwise, worded for whoever saves it
/// (a Spot admin, or an app-scoped token): it names no operator setting.
pub async fn check_deliverable_url(herald: &Herald, url: &str) -> Result<String> {
    let url = check_url(url)?;
    match unreachable(&herald.config.allow_subnets, &url).await {
        None => Ok(url),
        Some(why) => Err(Error::field(&["url"], why)),
    }
}

/// Why Herald would refuse to deliver to this URL now, if it would: its
/// literal address, or every address its name resolves to now, is private or
/// loopback and not in `HERALD_ALLOW_SUBNETS` (delivery uses the allowed
/// addresses of an answer, so one is enough). A name that does not resolve
/// passes: it may resolve later, and every delivery checks again.
pub async fn unreachable(allow: &AllowList, url: &str) -> Option<String> {
    let parsed = EndpointUrl::parse(url).ok()?;
    let u = parsed.as_url();
    let port = u.port_or_known_default().unwrap_or(80);
    let (ips, host): (Vec<IpAddr>, TenantHost<'_>) = match u.host()? {
        url::Host::Ipv4(ip) => (vec![ip.into()], TenantHost::Literal),
        url::Host::Ipv6(ip) => (vec![ip.into()], TenantHost::Literal),
        url::Host::Domain(name) => {
            let lookup = tokio::net::lookup_host((name, port));
            let ips = match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
                _ => Vec::new(),
            };
            (ips, TenantHost::Name(name))
        }
    };
    let mut refusals = Vec::new();
    for ip in ips {
        match allow.check(ip) {
            Ok(()) => return None,
            Err(refusal) => refusals.push(refusal),
        }
    }
    let refusal = refusals.into_iter().next()?;
    Some(format!(
        "Webhooks cannot be used to reach private networks: {}.",
        refusal.tenant_text(&host)
    ))
}

/// The event filter, whichever of its two names it came under. An empty list
/// means "every event type", as no list does.
pub fn check_event_types(field: &str, types: Option<Vec<String>>) -> Result<Option<Vec<String>>> {
    let Some(mut types) = types else {
        return Ok(None);
    };
    for (i, t) in types.iter().enumerate() {
        validate_name(t).map_err(|e| {
            Error::Validation(vec![FieldError::body(
                &[field, &i.to_string()],
                e.to_string(),
            )])
        })?;
    }
    types.sort();
    types.dedup();
    Ok(if types.is_empty() { None } else { Some(types) })
}

pub fn check_channels(channels: Option<Vec<String>>) -> Result<Option<Vec<String>>> {
    let Some(mut channels) = channels else {
        return Ok(None);
    };
    if channels.len() > MAX_CHANNELS {
        return Err(Error::field(
            &["channels"],
            format!("at most {MAX_CHANNELS} channels"),
        ));
    }
    for (i, c) in channels.iter().enumerate() {
        validate_channel(c).map_err(|e| {
            Error::Validation(vec![FieldError::body(
                &["channels", &i.to_string()],
                e.to_string(),
            )])
        })?;
    }
    channels.sort();
    channels.dedup();
    Ok(if channels.is_empty() {
        None
    } else {
        Some(channels)
    })
}

pub fn check_date_format(s: &str) -> Result<String> {
    DateFormat::parse(s)
        .map(|f| f.as_str().to_string())
        .map_err(|e| Error::field(&["dateFormat"], e.to_string()))
}

/// An endpoint's own headers, checked: valid names and values, none that
/// Herald, HTTP or Svix reserves (without case: `X-Amzn-Trace-Id` is
/// `x-amzn-trace-id`). Names keep the case they were given, as Svix keeps
/// them: the API answers them so, and they are sent so (HTTP/1 sends them
/// lower-cased; their case never matters on the wire). Two names that differ
/// only in case are one header given twice, refused.
pub fn check_headers(headers: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        let bad = |msg: String| Error::Validation(vec![FieldError::body(&["headers", name], msg)]);
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(bad("is not a valid HTTP header name".into()));
        }
        if HeaderValue::from_str(value).is_err() {
            return Err(bad(
                "has a value that is not a valid HTTP header value".into()
            ));
        }
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(bad(
                "is a reserved header name (set by Herald or by HTTP itself), which an endpoint cannot set".into(),
            ));
        }
        if let Some(prefix) = RESERVED_HEADER_PREFIXES
            .iter()
            .find(|p| lower.starts_with(*p))
        {
            return Err(bad(format!(
                "starts with {prefix:?}, a prefix reserved for the platform's own headers"
            )));
        }
        if header_name(&out, name).is_some() {
            return Err(bad(
                "is given twice (header names do not differ by case)".into()
            ));
        }
        out.insert(name.clone(), value.clone());
    }
    Ok(out)
}

/// The name under which `headers` holds `name`, whatever its case.
fn header_name(headers: &BTreeMap<String, String>, name: &str) -> Option<String> {
    headers
        .keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
}

/// Removes the header `name` from `headers`, whatever the case of either.
pub fn remove_header(headers: &mut BTreeMap<String, String>, name: &str) {
    if let Some(stored) = header_name(headers, name) {
        headers.remove(&stored);
    }
}

/// The value of the header `name` in `headers`, whatever the case of either.
pub fn header_value<'a>(headers: &'a BTreeMap<String, String>, name: &str) -> Option<&'a String> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Sets checked headers over `headers`: each replaces the header of the same
/// name in any case, and takes the case it is given now.
pub fn set_headers(headers: &mut BTreeMap<String, String>, set: BTreeMap<String, String>) {
    for (name, value) in set {
        remove_header(headers, &name);
        headers.insert(name, value);
    }
}

/// Svix's rule for an endpoint's event filter: every type it names is one
/// of the organisation's event types, not archived (Svix archives by
/// deleting), or a 422 at `field` naming those that are not, in Svix's
/// words. Herald's exception: an organisation without any event type takes
/// any name, as it takes a message of any type (see
/// [`super::messages::check_event_type`]).
pub async fn check_known_event_types(
    herald: &Herald,
    org_id: &str,
    field: &str,
    types: Option<&[String]>,
) -> Result<()> {
    let Some(types) = types.filter(|t| !t.is_empty()) else {
        return Ok(());
    };
    let catalog = herald
        .store
        .cached_event_types(org_id, LOOKUP_FRESHNESS)
        .await?;
    let mut missing = Vec::new();
    match catalog {
        Some(catalog) if catalog.is_empty() => return Ok(()),
        Some(catalog) => {
            for name in types {
                if catalog.get(name).is_none_or(|et| et.archived) {
                    missing.push(name.as_str());
                }
            }
        }
        // Too many to keep in the cache: it has some; read the ones named.
        None => {
            for name in types {
                let et = herald.store.get_event_type(org_id, name).await?;
                if et.is_none_or(|et| et.archived) {
                    missing.push(name.as_str());
                }
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::field(
        &[field],
        format!(
            "The following event types don't exist: {}",
            missing.join(", ")
        ),
    ))
}

/// Saves a new endpoint of `app` with its first signing key, and tells the
/// operator (`endpoint.created`).
pub async fn create(herald: &Herald, app: &Application, ep: &Endpoint, secret: &str) -> Result<()> {
    herald
        .store
        .create_endpoint(ep, secret)
        .await
        .map_err(uid_conflict)?;
    herald
        .operational
        .endpoint_event("endpoint.created", app, ep)
        .await;
    Ok(())
}

/// Saves a changed endpoint; the next delivery from this process uses it.
/// The operator hears `endpoint.updated`, and `endpoint.disabled` or
/// `endpoint.enabled` when that changed.
pub async fn update(herald: &Herald, app: &Application, ep: &Endpoint) -> Result<()> {
    let before = herald.store.get_endpoint(&app.id, &ep.id).await?;
    herald
        .store
        .update_endpoint(ep)
        .await
        .map_err(uid_conflict)?;
    let ops = &herald.operational;
    ops.endpoint_event("endpoint.updated", app, ep).await;
    match before.map(|b| b.disabled) {
        Some(false) if ep.disabled => {
            ops.endpoint_disabled(app, ep, herald_store::DisabledBy::Manual, None)
                .await
        }
        Some(true) if !ep.disabled => ops.endpoint_event("endpoint.enabled", app, ep).await,
        _ => {}
    }
    Ok(())
}

/// Deletes an endpoint of `app`; its queued deliveries go with it.
pub async fn delete(herald: &Herald, app: &Application, ep: &Endpoint) -> Result<()> {
    herald.store.delete_endpoint(&app.id, &ep.id).await?;
    herald
        .operational
        .endpoint_event("endpoint.deleted", app, ep)
        .await;
    Ok(())
}

/// Makes `key` (or a new key of `kind`, HMAC by default) current; the old
/// one keeps signing for
/// `grace_seconds`, so receivers can switch without losing a message.
/// Returns the new key.
pub async fn rotate_secret(
    herald: &Herald,
    ep: &Endpoint,
    key: Option<&str>,
    kind: Option<KeyKind>,
    grace_seconds: u32,
) -> Result<String> {
    let secret = match key {
        Some(s) => EndpointSecret::parse(s).map_err(|e| Error::field(&["key"], e.to_string()))?,
        None => EndpointSecret::generate_kind(kind.unwrap_or(KeyKind::Hmac)),
    };
    if kind.is_some_and(|kind| kind != secret.kind()) {
        return Err(Error::field(
            &["keyType"],
            "names another kind of key than the key given (\"whsec_\" is hmac, \"whsk_\" is ed25519)",
        ));
    }
    if grace_seconds > MAX_GRACE_SECONDS {
        return Err(Error::field(
            &["gracePeriodSeconds"],
            format!("must be at most {MAX_GRACE_SECONDS}"),
        ));
    }
    let now = Utc::now();
    let key = secret.reveal();
    herald
        .store
        .rotate_secret(
            &ep.id,
            &key,
            now + Duration::seconds(i64::from(grace_seconds)),
            now,
        )
        .await?;
    Ok(key)
}

/// The endpoint's current signing key (the one without an expiry), if it
/// has one: what `GET …/secret` answers, what the portal shows, and whose
/// kind a rotation keeps.
pub async fn current_key(herald: &Herald, ep: &Endpoint) -> Result<Option<String>> {
    let keys = herald.store.secrets(&ep.id, Utc::now()).await?;
    Ok(keys
        .into_iter()
        .find(|k| k.expires_at.is_none())
        .map(|k| k.key))
}

/// Queues the endpoint's failed deliveries created in the window again, now.
/// Returns how many.
pub async fn recover(
    herald: &Herald,
    ep: &Endpoint,
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
) -> Result<u64> {
    let queued = herald
        .store
        .recover(&ep.id, since, until, Utc::now())
        .await?;
    herald.wake.any();
    tracing::info!(endpoint = %ep.id, queued, "recover queued failed deliveries");
    Ok(queued)
}

/// Queues to `ep`, now, the messages of the window it never got and takes.
/// Returns how many.
pub async fn replay_missing(
    herald: &Herald,
    ep: &Endpoint,
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
) -> Result<u64> {
    let queued = herald
        .store
        .replay_missing(&ep.app_id, &ep.id, since, until, Utc::now())
        .await?;
    herald.wake.endpoints(vec![ep.id.clone()]);
    tracing::info!(endpoint = %ep.id, queued, "replayed missing messages");
    Ok(queued)
}

/// Queues again, now, `ep`'s deliveries of the window that `filter` takes,
/// delivered or not. Returns how many.
pub async fn bulk_replay(
    herald: &Herald,
    ep: &Endpoint,
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    filter: &ListFilter,
) -> Result<u64> {
    let queued = herald
        .store
        .bulk_replay(&ep.app_id, &ep.id, since, until, filter, Utc::now())
        .await?;
    herald.wake.endpoints(vec![ep.id.clone()]);
    tracing::info!(endpoint = %ep.id, queued, "bulk replay queued deliveries");
    Ok(queued)
}

/// Queues `msg` to `ep` again, now, as a manual attempt.
pub async fn resend(
    herald: &Herald,
    app: &Application,
    msg: &Message,
    ep: &Endpoint,
) -> Result<()> {
    herald
        .store
        .resend(&app.id, &msg.id, &ep.id, Utc::now())
        .await?;
    herald.wake.any();
    Ok(())
}

/// The event type Svix's send-example knows without a catalog.
pub const PING_EVENT_TYPE: &str = "svix.ping";

/// The Test button's work, shared by the API and the portal: the example (or the
/// given payload) marked `"test": true`, held for this caller, claimed and sent
/// once. Returns the message and the attempt, if one could be made. Beyond the
/// endpoint's Test rate, or when its delivery slots stay taken, nothing is
/// stored or sent: 429 with `Retry-After`.
pub async fn send_test(
    herald: &Herald,
    app: &Application,
    ep: &Endpoint,
    event_type: String,
    example_index: Option<usize>,
    payload: Option<Value>,
) -> Result<(Message, Option<herald_store::Attempt>)> {
    validate_name(&event_type).map_err(|e| Error::field(&["eventType"], e.to_string()))?;
    let mut payload = match payload {
        Some(p @ Value::Object(_)) => p,
        Some(_) => return Err(Error::field(&["payload"], "must be a JSON object")),
        None => {
            let et = herald
                .store
                .get_event_type(&app.org_id, &event_type)
                .await?;
            match et {
                Some(et) => {
                    let index = example_index.unwrap_or(0);
                    et.example(index).cloned().ok_or_else(|| {
                        Error::field(
                            &["eventType"],
                            format!(
                                "event type {:?} has no example at index {index} (schemas.<version>.examples)",
                                et.name
                            ),
                        )
                    })?
                }
                // Svix's built-in ping needs no event type (unless the
                // catalog has its own `svix.ping`).
                None if event_type == PING_EVENT_TYPE => serde_json::json!({"success": true}),
                None => return Err(Error::NotFound("event type")),
            }
        }
    };
    if let Some(object) = payload.as_object_mut() {
        object.insert("test".into(), Value::Bool(true));
    }
    // Within the endpoint's Test rate and in one of its delivery slots (the
    // worker's too), held until the attempt is made: Tests cannot flood it.
    let _slot = herald.deliverer.limits().test_slot(&ep.id).await?;
    let msg = new_message(app, NewMessage::own(event_type, payload.to_string()));
    // Held for this request, so no worker sends it (with retries) first.
    let lease = Duration::from_std(herald.config.lease).unwrap_or(Duration::MAX);
    let until = msg.created_at + lease;
    let held = Targets::Held {
        endpoint_id: ep.id.clone(),
        until,
    };
    herald.store.create_message(&msg, &held).await?;
    let attempt = match herald
        .store
        .claim_delivery(&msg.id, &ep.id, until, until + lease)
        .await?
    {
        Some(job) => herald.deliverer.deliver(job, Retries::None).await,
        None => None,
    };
    Ok((msg, attempt))
}

/// A new message whose payload is kept `retention_days` (already checked to be
/// one Svix accepts) before it may be expunged.
pub(crate) fn uid_conflict(e: herald_store::StoreError) -> Error {
    match e {
        herald_store::StoreError::Conflict(_) => {
            Error::Conflict("an endpoint with this uid already exists in this application".into())
        }
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn private_addresses_are_refused_unless_allowed() {
        let none = AllowList::default();
        let why = unreachable(&none, "http://127.0.0.1:8080/hook")
            .await
            .unwrap();
        assert!(why.contains("127.0.0.1 is not a public address"), "{why}");
        assert!(
            !why.contains("HERALD_ALLOW_SUBNETS"),
            "the operator's setting: {why}"
        );
        let by_name = unreachable(&none, "http://localhost:8080/hook")
            .await
            .unwrap();
        assert!(
            by_name.contains("localhost resolves to a non-public address"),
            "{by_name}"
        );
        assert!(
            !by_name.contains("127.0.0.1") && !by_name.contains("::1"),
            "{by_name}"
        );
        assert!(unreachable(&none, "http://[::1]/hook").await.is_some());
        let loopback: AllowList = "127.0.0.0/8".parse().unwrap();
        // localhost also resolves to ::1, refused: one allowed address is
        // enough, as delivery uses the allowed ones.
        assert!(unreachable(&loopback, "http://localhost:8080/hook")
            .await
            .is_none());
        assert!(unreachable(&loopback, "http://127.0.0.1:8080/hook")
            .await
            .is_none());
        assert!(unreachable(&none, "https://93.184.215.14/hook")
            .await
            .is_none());
        assert!(unreachable(&none, "https://does-not-exist.invalid/hook")
            .await
            .is_none());
    }

    #[test]
    fn reserved_and_bad_headers_are_refused() {
        let ok: BTreeMap<_, _> = [("X-Team".to_string(), "a".to_string())].into();
        assert_eq!(
            check_headers(&ok)
                .unwrap()
                .get("X-Team")
                .map(String::as_str),
            Some("a"),
            "kept as given"
        );
        for name in [
            "Host",
            "webhook-id",
            "Svix-Signature",
            "content-length",
            "X-Amzn-Trace-Id",
            "x-svix-foo",
            "Proxy-Authorization",
            "Connection",
            "bad name",
        ] {
            let h: BTreeMap<_, _> = [(name.to_string(), "v".to_string())].into();
            assert!(check_headers(&h).is_err(), "{name} should be refused");
        }
        let twice: BTreeMap<_, _> = [
            ("X-Team".to_string(), "a".to_string()),
            ("x-team".to_string(), "b".to_string()),
        ]
        .into();
        assert!(check_headers(&twice).is_err());
    }
}
