//! Herald's own OpenAPI document (issue 15), generated from the code: each
//! handler carries a `#[utoipa::path]` and each request and response type a
//! `ToSchema`, and `api::router` is built from those annotations by
//! utoipa-axum, so a route cannot be served without being described.
//!
//! What every operation may answer besides its own statuses (a missing token,
//! a bad query, a database that is down...) is added here, by rule, in
//! [`finish`]: those errors come from the extractors and the store, the same
//! for every handler, so writing them sixty times would only invite drift.

use std::sync::OnceLock;

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, Ref, RefOr};
use utoipa::{IntoParams, OpenApi, ToSchema};

/// The document's fixed parts; the paths come from the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Herald",
        description = "Herald's webhook API: Svix's routes and shapes, plus Herald's additive fields \
                       (an endpoint's `dateFormat`, `filters` and health, transformations, \
                       the OpenAPI import of event types).",
    ),
    components(schemas(ErrorBody, ValidationErrorBody, FieldErrorOut))
)]
pub struct ApiDoc;

/// Svix's error answer: a code and a sentence.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// A stable code: `not_found`, `conflict`, `authentication_failed`...
    code: String,
    detail: String,
}

/// The 422 answer: where each bad value is and what is wrong with it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ValidationErrorBody {
    code: String,
    detail: Vec<FieldErrorOut>,
}

#[derive(ToSchema)]
#[schema(as = FieldError)]
#[allow(dead_code)]
pub struct FieldErrorOut {
    /// `["body", "field", ...]` or `["query", "name"]`.
    loc: Vec<String>,
    msg: String,
    #[schema(rename = "type")]
    r#type: String,
}

/// `limit`, `iterator` and `order` of every list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageQuery {
    /// 1 to 250, 50 when absent.
    #[param(minimum = 1, maximum = 250)]
    limit: Option<i64>,
    /// The `iterator` of the previous page (the items after it), or its
    /// `prevIterator` (`-` and a key: the items just before that page).
    iterator: Option<String>,
    /// `ascending` or `descending`. Endpoints, messages, attempts and
    /// background tasks come newest first; applications and event types in
    /// ascending order of id and name.
    #[param(pattern = "^(ascending|descending)$")]
    order: Option<String>,
}

/// The filters of the message and attempt lists.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct FilterQuery {
    channel: Option<String>,
    tag: Option<String>,
    /// Repeated, or comma-separated.
    event_types: Option<Vec<String>>,
    before: Option<chrono::DateTime<chrono::Utc>>,
    after: Option<chrono::DateTime<chrono::Utc>>,
    /// 0 success, 1 pending, 2 fail, 3 sending.
    #[param(minimum = 0, maximum = 3)]
    status: Option<i64>,
    /// 0, 100, 200, 300, 400 or 500.
    #[param(minimum = 0, maximum = 500, multiple_of = 100)]
    status_code_class: Option<i64>,
    endpoint_id: Option<String>,
}

/// `with_content`: whether payloads (or schemas) are shown; true by default.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct WithContent {
    with_content: Option<bool>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct AppPath {
    /// The application's ID or uid.
    app_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct EndpointPath {
    /// The application's ID or uid.
    app_id: String,
    /// The endpoint's ID or uid.
    endpoint_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct MessagePath {
    /// The application's ID or uid.
    app_id: String,
    /// The message's ID or eventId.
    msg_id: String,
}

/// Redoc's standalone bundle (MIT, `assets/redoc/LICENSE`), vendored from
/// npm's `redoc` package so the reference page loads nothing from elsewhere.
static REDOC_JS: &[u8] = include_bytes!("../../assets/redoc/redoc.standalone.js");

/// The reference page: Redoc reading `/api/v1/openapi.json`, telemetry off.
const REFERENCE_HTML: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Herald API reference</title>
</head>
<body>
<div id="redoc"></div>
<script type="module">
import { init } from "/api/v1/docs/redoc.standalone.js";
init("/api/v1/openapi.json", { disableTelemetry: true }, document.getElementById("redoc"));
</script>
</body>
</html>
"#;

/// `GET /api/v1/openapi.json`: this document, rendered once.
#[utoipa::path(get, operation_id = "v1.herald.openapi-json", path = "/api/v1/openapi.json", tag = "Reference",
    summary = "This OpenAPI document",
    responses((status = 200, description = "The document (OpenAPI 3.1)", body = Object)))]
pub async fn openapi_json() -> crate::service::Result<axum::response::Response> {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = match JSON.get() {
        Some(json) => json,
        None => {
            let json = render(&super::openapi()).map_err(|e| {
                crate::service::Error::Internal(format!("rendering the OpenAPI document: {e}"))
            })?;
            JSON.get_or_init(|| json)
        }
    };
    Ok(([(CONTENT_TYPE, "application/json")], json.as_str()).into_response())
}

/// `GET /api/v1/docs`: the API reference, readable in a browser.
#[utoipa::path(get, operation_id = "v1.herald.reference-page", path = "/api/v1/docs", tag = "Reference",
    summary = "The API reference page",
    responses((status = 200, description = "An HTML page", body = String, content_type = "text/html")))]
pub async fn reference_page() -> axum::response::Html<&'static str> {
    axum::response::Html(REFERENCE_HTML)
}

/// `GET /api/v1/docs/redoc.standalone.js`: the page's script, from the binary.
#[utoipa::path(get, operation_id = "v1.herald.reference-script", path = "/api/v1/docs/redoc.standalone.js", tag = "Reference",
    summary = "The reference page's script (Redoc)",
    responses((status = 200, description = "JavaScript", body = String, content_type = "text/javascript")))]
pub async fn reference_script() -> axum::response::Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=86400"),
        ],
        REDOC_JS,
    )
        .into_response()
}

/// The routes that take no API token: the health checks, the home page,
/// this document and its reference page, and the public catalog (`/metrics` checks its own token, when one is set).
const PUBLIC: &[&str] = &[
    "/",
    "/api/v1/openapi.json",
    "/api/v1/docs",
    "/api/v1/docs/redoc.standalone.js",
    "/api/v1/health",
    "/api/v1/health/ping",
    "/metrics",
    "/catalog",
    "/catalog/{org_id}",
];

/// The document as served: the bearer scheme, applied to every route that
/// takes a token, and the errors every operation of a kind may answer.
pub fn finish(mut doc: Document) -> Document {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "An organisation's token from `herald token create`, or an application's",
                ))
                .build(),
        ),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        let public = PUBLIC.contains(&path.as_str());
        let has_path_params = path.contains('{');
        for (method, op) in [
            ("get", &mut item.get),
            ("post", &mut item.post),
            ("put", &mut item.put),
            ("patch", &mut item.patch),
            ("delete", &mut item.delete),
        ] {
            let Some(op) = op.as_mut() else { continue };
            if !public {
                op.security = Some(vec![SecurityRequirement::new(
                    "bearer",
                    Vec::<String>::new(),
                )]);
                add(op, "401", "No token, or not a valid one", "ErrorBody");
                add(op, "403", "The token may not do this", "ErrorBody");
            }
            if has_path_params {
                add(op, "404", "Not found", "ErrorBody");
            }
            let has_query = op
                .parameters
                .iter()
                .flatten()
                .any(|p| p.parameter_in == ParameterIn::Query);
            if op.request_body.is_some() {
                add(op, "400", "The body is not JSON", "ErrorBody");
                add(op, "413", "The body is larger than the limit", "ErrorBody");
            }
            if !public || op.request_body.is_some() || has_query {
                add(op, "422", "A value is not valid", "ValidationErrorBody");
            }
            if method != "get" && method != "delete" {
                // A uid taken, or a request with the same idempotency-key
                // still in progress.
                add(op, "409", "Conflict", "ErrorBody");
            }
            add(op, "500", "Internal error", "ErrorBody");
            add(op, "503", "The database is unavailable", "ErrorBody");
        }
    }
    link_created_resources(&mut doc);
    doc
}

/// OpenAPI links from each create (`POST` on a collection) to the operations
/// on the resource it made (`{collection}/{id}/...`), the id taken from the
/// answer and the collection's own path parameters from the request: how a
/// client (or schemathesis's stateful phase) goes from a new application to
/// its endpoints, messages and attempts.
fn link_created_resources(doc: &mut Document) {
    let schemas = doc
        .components
        .as_ref()
        .map(|c| c.schemas.clone())
        .unwrap_or_default();
    let targets: Vec<(String, Vec<(String, String)>)> = doc
        .paths
        .paths
        .iter()
        .map(|(path, item)| {
            let ops = [
                ("get", &item.get),
                ("post", &item.post),
                ("put", &item.put),
                ("patch", &item.patch),
                ("delete", &item.delete),
            ]
            .into_iter()
            .filter_map(|(m, op)| {
                let id = op.as_ref()?.operation_id.clone()?;
                Some((m.to_string(), id))
            })
            .collect();
            (path.clone(), ops)
        })
        .collect();
    for (path, item) in doc.paths.paths.iter_mut() {
        let Some(create) = item.post.as_mut() else {
            continue;
        };
        if path.ends_with('}') {
            continue;
        }
        let own = path_params(path);
        for (status, response) in create.responses.responses.iter_mut() {
            let RefOr::T(response) = response else {
                continue;
            };
            if !status.starts_with('2') {
                continue;
            }
            let Some(name) =
                response
                    .content
                    .get("application/json")
                    .and_then(|c| match &c.schema {
                        Some(RefOr::Ref(r)) => r.ref_location.rsplit('/').next().map(String::from),
                        _ => None,
                    })
            else {
                continue;
            };
            let Some(RefOr::T(utoipa::openapi::Schema::Object(schema))) = schemas.get(&name) else {
                continue;
            };
            for (target, ops) in &targets {
                let Some(rest) = target.strip_prefix(&format!("{path}/{{")) else {
                    continue;
                };
                let Some(end) = rest.find('}') else { continue };
                let param = &rest[..end];
                let field = if schema.properties.contains_key("id") {
                    "id"
                } else {
                    param
                };
                if !schema.properties.contains_key(field) {
                    continue;
                }
                // Only targets whose every parameter this link can fill.
                let needs = path_params(target);
                if needs.iter().any(|p| p != param && !own.contains(p)) {
                    continue;
                }
                for (method, operation_id) in ops {
                    let mut link = LinkBuilder::new()
                        .operation_id(operation_id.clone())
                        .parameter(param, format!("$response.body#/{field}"));
                    for p in &own {
                        link = link.parameter(p.clone(), format!("$request.path.{p}"));
                    }
                    response
                        .links
                        .insert(format!("{method} {target}"), RefOr::T(link.build()));
                }
            }
        }
    }
}

/// The document as JSON. utoipa 5 writes a link's fields in snake case
/// (`operation_id`), where OpenAPI spells them `operationId`,
/// `operationRef`, `requestBody`: they are renamed here.
pub fn render(doc: &Document) -> serde_json::Result<String> {
    let mut value = serde_json::to_value(doc)?;
    if let Some(paths) = value.get_mut("paths").and_then(|p| p.as_object_mut()) {
        let operations = paths
            .values_mut()
            .filter_map(|item| item.as_object_mut())
            .flat_map(|item| item.values_mut());
        let responses = operations
            .filter_map(|op| op.get_mut("responses")?.as_object_mut())
            .flat_map(|r| r.values_mut());
        let links = responses
            .filter_map(|r| r.get_mut("links")?.as_object_mut())
            .flat_map(|l| l.values_mut())
            .filter_map(|l| l.as_object_mut());
        for link in links {
            for (from, to) in [
                ("operation_id", "operationId"),
                ("operation_ref", "operationRef"),
                ("request_body", "requestBody"),
            ] {
                if let Some(v) = link.remove(from) {
                    link.insert(to.to_string(), v);
                }
            }
        }
    }
    serde_json::to_string(&value)
}

fn path_params(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(String::from)
        .collect()
}

fn add(op: &mut Operation, status: &str, description: &str, schema: &str) {
    if op.responses.responses.contains_key(status) {
        return;
    }
    let response = ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(RefOr::Ref(Ref::from_schema_name(schema)))),
        )
        .build();
    op.responses
        .responses
        .insert(status.to_string(), RefOr::T(response));
}
