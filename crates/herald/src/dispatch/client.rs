//! The HTTP client deliveries go out through. The SSRF rule is enforced on the
//! address actually connected to: names resolve through [`GuardedResolver`], which
//! drops every non-global address the allow list does not cover, and IP literals
//! are checked before the request, so DNS rebinding has no gap to use.
//!
//! [`HostsOverride`] is a test seam: tests give a name the addresses they want
//! it to have (and change them between deliveries) without touching the
//! machine's resolver. Herald's own configuration never sets it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_core::net::{AllowList, TenantHost};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

/// Addresses for names, asked before the system resolver: `Some` answers for
/// the name, `None` leaves it to the system. A test seam (see the module
/// comment); the answers go through the same address check as the system's.
pub type HostsOverride = Arc<dyn Fn(&str) -> Option<Vec<IpAddr>> + Send + Sync>;

/// How much of a response body is kept on the attempt.
pub const RESPONSE_PREFIX_BYTES: usize = 4096;

#[derive(Clone)]
pub struct DeliveryClient {
    http: reqwest::Client,
    allow: Arc<AllowList>,
    timeout: Duration,
}

/// What came back from one POST.
#[derive(Debug)]
pub enum Outcome {
    /// The receiver answered (any status).
    Response {
        status: u16,
        body: String,
        /// The response's headers, as [`header_pairs`] keeps them.
        headers: Vec<(String, String)>,
        retry_after: Option<String>,
        duration: Duration,
    },
    /// No answer: refused by the SSRF rule, connection failed, timed out.
    NoResponse { reason: String, duration: Duration },
}

/// The most headers, and the longest value, an attempt keeps of each side.
const KEPT_HEADERS: usize = 50;
const KEPT_HEADER_VALUE: usize = 512;

/// Headers as the delivery log keeps them: `(name, value)` in order, the
/// first [`KEPT_HEADERS`], values cut to [`KEPT_HEADER_VALUE`] characters,
/// credentials masked (`Authorization`, `Cookie`, API keys).
pub fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .take(KEPT_HEADERS)
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes());
            let value = herald_core::headers::loggable(name.as_str(), &value);
            (
                name.as_str().to_string(),
                value.chars().take(KEPT_HEADER_VALUE).collect(),
            )
        })
        .collect()
}

struct GuardedResolver {
    allow: Arc<AllowList>,
    hosts: Option<HostsOverride>,
}

/// A name that resolved only to refused addresses. Its text is what the
/// tenant reads in the attempt log, so it does not name those addresses
/// ([`herald_core::net::Refusal::tenant_text`]); the operator's log does.
#[derive(Debug)]
struct HostRefused(String);

impl std::fmt::Display for HostRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HostRefused {}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        let overridden = self.hosts.as_ref().and_then(|hosts| hosts(name.as_str()));
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = match overridden {
                Some(ips) => ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect(),
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
            let mut refusal = None;
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match allow.check(a.ip()) {
                    Ok(()) => true,
                    Err(r) => {
                        refusal.get_or_insert(r);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                return Err(match refusal {
                    Some(r) => {
                        tracing::info!(%host, refusal = %r, "delivery refused by the address rule");
                        let text = r.tenant_text(&TenantHost::Name(&host));
                        Box::new(HostRefused(text)) as Box<dyn std::error::Error + Send + Sync>
                    }
                    None => format!("{host} did not resolve to any address").into(),
                });
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

impl DeliveryClient {
    pub fn new(
        allow: AllowList,
        timeout: Duration,
        hosts: Option<HostsOverride>,
    ) -> anyhow::Result<DeliveryClient> {
        let allow = Arc::new(allow);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            // A proxy from the environment would connect on our behalf and
            // bypass the address check.
            .no_proxy()
            .user_agent(concat!("Herald-Webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver {
                allow: allow.clone(),
                hosts,
            }))
            .build()?;
        Ok(DeliveryClient {
            http,
            allow,
            timeout,
        })
    }

    /// Sends `body` to `url` with `method` (POST unless a transformation
    /// chose PUT or PATCH) and `headers`, and reports what happened. Never
    /// fails: every problem becomes an [`Outcome::NoResponse`] with its reason.
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: HeaderMap,
        body: bytes::Bytes,
    ) -> Outcome {
        let start = Instant::now();
        let no_response = |reason: String| Outcome::NoResponse {
            reason,
            duration: start.elapsed(),
        };
        let parsed = match reqwest::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => u,
            Ok(u) => {
                return no_response(format!(
                    "invalid URL: the scheme must be http or https, not {}",
                    u.scheme()
                ))
            }
            Err(e) => return no_response(format!("invalid URL: {e}")),
        };
        if let Some(ip) = literal_ip(&parsed) {
            if let Err(refusal) = self.allow.check(ip) {
                tracing::info!(%refusal, "delivery refused by the address rule");
                return no_response(refusal.tenant_text(&TenantHost::Literal));
            }
        }
        let sent = self
            .http
            .request(method, parsed)
            .headers(headers)
            .body(body)
            .send()
            .await;
        let mut response = match sent {
            Ok(r) => r,
            Err(e) => return no_response(self.describe(&e)),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let response_headers = header_pairs(response.headers());
        let mut prefix = Vec::new();
        // Read only the prefix we keep; a huge body is not our problem.
        while prefix.len() < RESPONSE_PREFIX_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => prefix.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        prefix.truncate(RESPONSE_PREFIX_BYTES);
        Outcome::Response {
            status,
            body: String::from_utf8_lossy(&prefix).into_owned(),
            headers: response_headers,
            retry_after,
            duration: start.elapsed(),
        }
    }

    fn describe(&self, e: &reqwest::Error) -> String {
        let chain = || {
            std::iter::successors(Some(e as &(dyn std::error::Error + 'static)), |err| {
                err.source()
            })
        };
        if let Some(refused) = chain().find_map(|err| err.downcast_ref::<HostRefused>()) {
            return refused.to_string();
        }
        if e.is_timeout() {
            return format!("timed out after {} s", self.timeout.as_secs());
        }
        if let Some(io) = chain().find_map(|err| err.downcast_ref::<std::io::Error>()) {
            return format!("connection failed: {io}");
        }
        if e.is_connect() {
            return format!("connection failed: {e}");
        }
        format!("request failed: {e}")
    }
}

fn literal_ip(url: &reqwest::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

/// Adds a header built from trusted parts (our own names, checked values).
pub fn insert(headers: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        headers.insert(n, v);
    }
}
