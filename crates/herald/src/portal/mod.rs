//! The Spot admin portal: server-rendered pages where an application's admins
//! add, test, edit and delete their webhooks, and see what was delivered.
//!
//! A link from `POST /api/v1/auth/app-portal-access/{app}` (or `herald
//! portal-link`) opens it: `/portal/login` turns the short-lived token into a
//! signed session cookie ([`session`]). Pages are minijinja templates with one
//! layout; CSS and a little JavaScript are embedded in the binary and every page
//! works without the script. Handlers reach data through the `Store` trait only,
//! and everything is looked up inside the session's application, so one
//! application's session gets 404 for another's endpoints and messages.

mod actions;
mod chart;
mod endpoint;
mod form;
mod message;
mod pages;
mod request;
pub mod session;
mod test_button;
mod transform;

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::syntax::SyntaxConfig;
use minijinja::Environment;
use serde::Serialize;

use crate::service::Error;
use crate::service::{links, Herald};

pub fn router(state: Herald) -> Router {
    let headers = SecurityHeaders::new(&state.config.portal_frame_ancestors);
    Router::new()
        .route("/portal", get(|| async { Redirect::to("/portal/") }))
        .route("/portal/", get(pages::home))
        .route("/portal/login", get(pages::login))
        .route(session::LOGOUT_PATH, post(pages::logout))
        .route(pages::LOGGED_OUT_PATH, get(pages::logged_out))
        .route("/portal/apps", get(pages::apps))
        .route("/portal/apps/{app_id}", get(pages::switch_app))
        .route("/portal/catalog", get(pages::catalog))
        .route("/portal/endpoints", post(form::create))
        .route("/portal/endpoints/new", get(form::new))
        .route(
            "/portal/endpoints/preview",
            post(transform::preview_delivery),
        )
        .route(
            "/portal/endpoints/{id}",
            get(endpoint::endpoint).post(form::update),
        )
        .route("/portal/endpoints/{id}/edit", get(form::edit))
        .route(
            "/portal/endpoints/{id}/delete",
            get(actions::confirm_delete).post(actions::delete),
        )
        .route("/portal/endpoints/{id}/test", post(test_button::test))
        .route("/portal/endpoints/{id}/toggle", post(actions::toggle))
        .route(
            "/portal/endpoints/{id}/rotate-secret",
            post(actions::rotate),
        )
        .route("/portal/endpoints/{id}/recover", post(actions::recover))
        .route(
            "/portal/endpoints/{id}/messages/{msg_id}",
            get(message::message),
        )
        .route(
            "/portal/endpoints/{id}/messages/{msg_id}/resend",
            post(message::resend),
        )
        .route("/portal/assets/portal.css", get(css))
        .route("/portal/assets/portal.js", get(js))
        .route("/portal/assets/favicon.svg", get(favicon))
        .route("/portal/assets/theme.css", get(theme_css))
        .route("/favicon.ico", get(favicon))
        .route("/portal/{*rest}", get(pages::unknown).post(pages::unknown))
        .layer(axum::middleware::map_response(
            move |mut response: Response| {
                let headers = headers.clone();
                async move {
                    headers.apply(response.headers_mut());
                    response
                }
            },
        ))
        .with_state(state)
}

/// The headers every portal response carries: what the page may load and who
/// may frame it (CSP), no MIME sniffing, no `Referer` (a login URL carries its
/// one-time token), and no caching of pages that show an application's data.
#[derive(Clone)]
struct SecurityHeaders {
    csp: HeaderValue,
    /// `X-Frame-Options: DENY` for browsers without `frame-ancestors`, when no
    /// origin may frame the portal.
    deny_frames: bool,
}

impl SecurityHeaders {
    fn new(frame_ancestors: &[String]) -> SecurityHeaders {
        let ancestors = if frame_ancestors.is_empty() {
            "'none'".to_string()
        } else {
            frame_ancestors.join(" ")
        };
        let csp = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; \
             connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}"
        );
        SecurityHeaders {
            csp: HeaderValue::from_str(&csp).expect("origins are valid header text"),
            deny_frames: frame_ancestors.is_empty(),
        }
    }

    fn apply(&self, headers: &mut HeaderMap) {
        headers.insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        if self.deny_frames {
            headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        }
        headers
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
}

/// Why a portal request was not answered with its page. Rendered as HTML.
#[derive(Debug)]
pub enum PortalError {
    /// No valid session cookie. (The cookie is SameSite=Lax, so the redirect
    /// after following a portal link from the platform's site carries it; the
    /// CSRF token protects the forms.)
    NoSession,
    /// The link's token is invalid or expired.
    BadLink,
    /// A form without this session's CSRF token.
    Csrf,
    /// A change asked of a read-only session.
    ReadOnly,
    NotFound,
    /// An operator who has not chosen an application yet.
    ChooseApp,
    Internal(String),
}

pub type PortalResult<T> = Result<T, PortalError>;

impl From<Error> for PortalError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(_) => PortalError::NotFound,
            other => PortalError::Internal(other.to_string()),
        }
    }
}

impl From<herald_store::StoreError> for PortalError {
    fn from(e: herald_store::StoreError) -> Self {
        match e {
            herald_store::StoreError::NotFound => PortalError::NotFound,
            other => PortalError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        let (status, title, text) = match self {
            PortalError::NoSession => (
                StatusCode::UNAUTHORIZED,
                "Please open the portal again",
                "Your portal session has ended or was never started. Open the webhooks portal again from your platform's settings page.",
            ),
            PortalError::BadLink => (
                StatusCode::UNAUTHORIZED,
                "This link has expired",
                "Portal links work for a short while only. Open the webhooks portal again from your platform's settings page to get a fresh link.",
            ),
            PortalError::Csrf => (
                StatusCode::FORBIDDEN,
                "This form has expired",
                "The form was not sent from this portal session (its security token is missing or stale). Go back, reload the page and try again.",
            ),
            PortalError::ReadOnly => (
                StatusCode::FORBIDDEN,
                "This portal is read-only",
                "You can look at these webhooks, but this portal session cannot change them. Ask your platform for a portal link that allows changes.",
            ),
            PortalError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here, or it belongs to another application.",
            ),
            PortalError::ChooseApp => return Redirect::to("/portal/apps").into_response(),
            PortalError::Internal(detail) => {
                tracing::error!(%detail, "portal request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Herald could not show this page. Try again in a moment.",
                )
            }
        };
        let body = render(
            "error.html",
            serde_json::json!({ "title": title, "text": text, "bare": true }),
        )
        .unwrap_or_else(|_| text.to_string());
        (status, Html(body)).into_response()
    }
}

/// The environment with every template, built once.
fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_syntax(
            SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .expect("static syntax config"),
        );
        crate::catalog::page::add_name_filters(&mut env);
        env.add_filter("pretty", |v: minijinja::Value| {
            serde_json::to_string_pretty(&v).unwrap_or_default()
        });
        // One date style everywhere: a `<time>` whose text is the exact UTC
        // time (what shows without JavaScript), kept in its `title` when the
        // script turns the text into a relative one ("3 min ago").
        env.add_filter("when", |iso: String| -> minijinja::Value {
            match chrono::DateTime::parse_from_rfc3339(&iso) {
                Ok(t) => {
                    let t = t.with_timezone(&chrono::Utc);
                    let exact = pages::time(t);
                    minijinja::Value::from_safe_string(format!(
                        "<time class=\"when\" datetime=\"{}\" title=\"{exact}\">{exact}</time>",
                        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    ))
                }
                Err(_) => minijinja::Value::from(iso),
            }
        });
        // HTML escaping of the five characters that matter in text and quoted
        // attributes; minijinja's default also escapes `/`, which makes URLs
        // unreadable in the page source for no gain.
        env.set_formatter(|out, state, value| {
            if value.kind() == minijinja::value::ValueKind::String && !value.is_safe() {
                let s = value.as_str().unwrap_or_default();
                let mut escaped = String::with_capacity(s.len());
                for c in s.chars() {
                    match c {
                        '&' => escaped.push_str("&amp;"),
                        '<' => escaped.push_str("&lt;"),
                        '>' => escaped.push_str("&gt;"),
                        '"' => escaped.push_str("&quot;"),
                        '\'' => escaped.push_str("&#39;"),
                        c => escaped.push(c),
                    }
                }
                out.write_str(&escaped).map_err(minijinja::Error::from)
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        // Names end in `.html`, which turns auto-escaping on: URLs, descriptions
        // and response bodies come from users and receivers.
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("portal template {name}: {e}"));
        }
        env
    })
}

const TEMPLATES: [(&str, &str); 9] = [
    (
        "layout.html",
        include_str!("../../templates/portal/layout.html"),
    ),
    (
        "error.html",
        include_str!("../../templates/portal/error.html"),
    ),
    (
        "webhooks.html",
        include_str!("../../templates/portal/webhooks.html"),
    ),
    (
        "form.html",
        include_str!("../../templates/portal/form.html"),
    ),
    (
        "endpoint.html",
        include_str!("../../templates/portal/endpoint.html"),
    ),
    (
        "message.html",
        include_str!("../../templates/portal/message.html"),
    ),
    (
        "delete.html",
        include_str!("../../templates/portal/delete.html"),
    ),
    (
        "apps.html",
        include_str!("../../templates/portal/apps.html"),
    ),
    (
        "catalog.html",
        include_str!("../../templates/portal/catalog.html"),
    ),
];

fn render(name: &str, ctx: impl Serialize) -> Result<String, minijinja::Error> {
    env()
        .get_template(name)?
        .render(minijinja::value::Serde(&ctx))
}

/// A page as an HTML response.
fn page(name: &str, ctx: impl Serialize) -> PortalResult<Response> {
    render(name, ctx)
        .map(|html| Html(html).into_response())
        .map_err(|e| PortalError::Internal(format!("rendering {name}: {e:#}")))
}

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("../../assets/portal/portal.css"),
    )
}

/// The session's look over `portal.css` (empty without one): its own
/// sheet, so the CSP needs no inline style.
async fn theme_css(session: session::Session) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        session.theme.map(|t| t.css()).unwrap_or_default(),
    )
}

async fn favicon() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../../assets/portal/favicon.svg"),
    )
}

async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("../../assets/portal/portal.js"),
    )
}

/// `herald portal-link`: a link that opens the portal, printed for an operator.
#[derive(clap::Args, Clone, Debug)]
pub struct LinkArgs {
    #[command(flatten)]
    pub common: crate::config::CommonArgs,
    /// The organisation whose portal opens (the operator view: every application).
    #[arg(long, default_value = crate::auth::DEFAULT_ORG)]
    pub org: String,
    /// Open this application's portal instead (its id or uid).
    #[arg(long)]
    pub app: Option<String>,
    /// The address people reach Herald at; default http:// and HERALD_LISTEN.
    #[arg(long, env = "HERALD_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The address `herald serve` listens on (used when no public URL is set).
    #[arg(long, env = "HERALD_LISTEN", default_value = "127.0.0.1:8071")]
    pub listen: std::net::SocketAddr,
    /// Seconds the link can be opened (once).
    #[arg(long, env = "HERALD_PORTAL_TOKEN_TTL_SECONDS", default_value_t = 3600)]
    pub portal_token_ttl_seconds: u64,
    /// Open a portal that can look but not change anything.
    #[arg(long)]
    pub read_only: bool,
}

/// The link `herald portal-link` prints: an organisation's operator view, or
/// one application's portal.
pub async fn link(args: &LinkArgs) -> anyhow::Result<String> {
    use anyhow::Context;
    let config = args.common.resolve()?;
    let link_ttl = crate::config::portal_token_ttl(args.portal_token_ttl_seconds)?;
    let base = crate::config::public_url(args.public_url.as_deref())?
        .unwrap_or_else(|| format!("http://{}", args.listen));
    let keys = crate::auth::Keys::new(config.secret_bytes());
    let store = crate::database::open_store(
        &config.database_url,
        config.sqlite_synchronous_full,
        config.keyring.clone(),
    )
    .await?;
    let app_id = match &args.app {
        None => None,
        Some(app) => {
            let found = store
                .get_app(&args.org, app)
                .await?
                .with_context(|| format!("no application {app:?} in organisation {}", args.org))?;
            Some(found.id)
        }
    };
    let request = links::LinkRequest {
        org_id: args.org.clone(),
        app_id,
        read_only: args.read_only,
        session_id: None,
        link_ttl,
        expiry: None,
        theme: None,
        feature_flags: Vec::new(),
    };
    let token = links::issue(store.as_ref(), &keys, &request).await?;
    Ok(links::url(&base, &token))
}
