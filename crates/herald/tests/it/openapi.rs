//! Herald's own OpenAPI document (`GET /api/v1/openapi.json`, issue 15): it
//! describes exactly the routes the server serves, it is OpenAPI 3.1, real
//! answers match the schemas it gives them, and the reference page that reads
//! it is served from the binary.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{Receiver, TestApp};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn document(app: &TestApp) -> Value {
    // No token: the document is public.
    let (status, doc) = app
        .call(None, Method::GET, "/api/v1/openapi.json", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    doc
}

/// The (method, path template) pairs the document describes.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                ops.insert((method.to_string(), path.clone()));
            }
        }
    }
    ops
}

/// A concrete path for a template: each `{param}` becomes a value no
/// resource has.
fn concrete(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').unwrap() + open;
        out.push_str("nosuchthing");
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

fn is_route_not_found(status: StatusCode, body: &Value) -> bool {
    status == StatusCode::METHOD_NOT_ALLOWED
        || (status == StatusCode::NOT_FOUND && body["detail"] == "route not found")
}

/// Both ways: every operation of the document is served (its answer is never
/// the router's "route not found" or 405), and on every documented path each
/// method the document does not list is refused by the router (405). Paths
/// the document does not name at all reach the fallback, which the last check
/// pins: the API router is built only from the documented handlers.
#[tokio::test]
async fn the_document_and_the_router_list_the_same_routes() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let ops = operations(&doc);
    assert!(ops.len() >= 60, "only {} operations: {ops:?}", ops.len());
    for path in doc["paths"].as_object().unwrap().keys() {
        let url = concrete(path);
        for method in METHODS {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let token = Some(app.token.as_str());
            let (status, body) = app.call(token, m, &url, None).await;
            if ops.contains(&(method.to_string(), path.clone())) {
                assert!(
                    !is_route_not_found(status, &body),
                    "{method} {path} is documented but not served: {status} {body}"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is served ({status} {body}) but not documented"
                );
            }
        }
    }
    // A path the document does not name is not served.
    let (status, body) = app
        .call(Some(&app.token), Method::GET, "/api/v1/undocumented", None)
        .await;
    assert!(is_route_not_found(status, &body), "{status} {body}");

    // The router has no route of its own besides the documented ones: every
    // route of `api::router` comes from `documented_routes()`.
    let source = include_str!("../../src/api/mod.rs");
    let router = &source[source.find("pub fn router(").unwrap()..];
    let router = &router[..router.find("\n}\n").unwrap()];
    for call in [".route(", ".nest(", ".merge(", ".route_service("] {
        assert!(
            !router.contains(call),
            "api::router adds a route with `{call}` outside the documented ones"
        );
    }
    app.stop().await;
}

/// Every `$ref` in `value` names something that exists in `doc`.
fn check_refs(doc: &Value, value: &Value, at: &str) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("{at}: {r}"));
                assert!(
                    doc.pointer(pointer).is_some(),
                    "{at}: $ref {r} names nothing"
                );
            }
            for (k, v) in map {
                check_refs(doc, v, &format!("{at}/{k}"));
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                check_refs(doc, v, &format!("{at}/{i}"));
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_heralds_own_fields() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let text = serde_json::to_string(&doc).unwrap();
    let parsed = oas3::from_json(&text).expect("a valid OpenAPI 3.1 document");
    assert!(parsed.openapi.starts_with("3.1"), "{}", parsed.openapi);
    check_refs(&doc, &doc, "#");
    // Each operation has its own id (generators name methods after them).
    let mut ids = BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                let id = op["operationId"].as_str().expect("an operationId");
                assert!(ids.insert(id.to_string()), "operationId {id} twice");
            }
        }
    }

    // Links from each create to the operations on what it made, by
    // operationId (OpenAPI's spelling), with every path parameter filled.
    let mut links = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            for response in op["responses"].as_object().unwrap().values() {
                let Some(map) = response.get("links").and_then(Value::as_object) else {
                    continue;
                };
                for (name, link) in map {
                    let id = link["operationId"].as_str();
                    assert!(
                        id.is_some_and(|id| ids.contains(id)),
                        "{method} {path}: link {name}: {link}"
                    );
                    links += 1;
                }
            }
        }
    }
    let create_app = &doc["paths"]["/api/v1/app"]["post"]["responses"]["201"]["links"];
    assert_eq!(
        create_app["get /api/v1/app/{app_id}/endpoint"],
        json!({"operationId": "v1.endpoint.list", "parameters": {"app_id": "$response.body#/id"}})
    );
    let create_endpoint =
        &doc["paths"]["/api/v1/app/{app_id}/endpoint"]["post"]["responses"]["201"]["links"];
    assert_eq!(
        create_endpoint["get /api/v1/app/{app_id}/endpoint/{endpoint_id}"]["parameters"],
        json!({"endpoint_id": "$response.body#/id", "app_id": "$request.path.app_id"})
    );
    assert!(links >= 40, "{links} links");

    // The bearer scheme, on every route that takes a token.
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer", "description": "An organisation's token from `herald token create`, or an application's"})
    );
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let public = path == "/"
                || path.starts_with("/catalog")
                || path.starts_with("/api/v1/health")
                || path.starts_with("/api/v1/docs")
                || path == "/api/v1/openapi.json"
                || path == "/metrics";
            assert_eq!(
                op.get("security").is_some(),
                !public,
                "{method} {path}: security {:?}",
                op.get("security")
            );
            if !public {
                assert!(op["responses"]["401"].is_object(), "{method} {path}");
            }
            // Every operation documents at least one success.
            assert!(
                op["responses"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .any(|s| s.starts_with('2')),
                "{method} {path}"
            );
        }
    }
    // Herald's additive fields and routes.
    let endpoint = &doc["components"]["schemas"]["EndpointOut"]["properties"];
    for field in [
        "dateFormat",
        "filters",
        "state",
        "failingSince",
        "consecutiveFailures",
    ] {
        assert!(
            endpoint[field].is_object(),
            "EndpointOut.{field}: {endpoint}"
        );
    }
    assert!(doc["components"]["schemas"]["EndpointIn"]["properties"]["dateFormat"].is_object());
    for path in [
        "/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation",
        "/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation/simulate",
        "/api/v1/health",
        "/api/v1/event-type/import/openapi",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
    let errors = &doc["paths"]["/api/v1/app/{app_id}"]["get"]["responses"];
    assert!(
        errors["404"].is_object() && errors["401"].is_object(),
        "{errors}"
    );
    app.stop().await;
}

/// The schema of `method path`'s answer with `status`, as a JSON Schema
/// whose `$ref`s resolve inside the document (its components ride along).
fn response_schema(doc: &Value, method: &str, path: &str, status: u16) -> Value {
    let op = &doc["paths"][path][method];
    let response = &op["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "{method} {path} documents no {status}"
    );
    let mut schema = response["content"]["application/json"]["schema"].clone();
    assert!(schema.is_object(), "{method} {path} {status}: {response}");
    let map = schema.as_object_mut().unwrap();
    map.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    map.insert("components".into(), doc["components"].clone());
    schema
}

fn assert_matches(doc: &Value, method: &str, path: &str, status: StatusCode, body: &Value) {
    let schema = response_schema(doc, method, path, status.as_u16());
    let validator = jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("{method} {path}: the schema does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: the answer does not match its schema: {errors:?}\n{body}"
    );
}

#[tokio::test]
async fn real_answers_match_their_documented_schemas() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let doc = document(&app).await;

    let (status, created) = app
        .post_json(
            "/api/v1/app",
            json!({"name": "Spot", "uid": "spot", "metadata": {"k": "v"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_matches(&doc, "post", "/api/v1/app", status, &created);
    // The check bites: an answer without its id, or with a number for it, fails.
    let schema = response_schema(&doc, "post", "/api/v1/app", 201);
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut broken = created.clone();
    broken.as_object_mut().unwrap().remove("id");
    assert!(!validator.is_valid(&broken), "{schema}");
    broken["id"] = json!(5);
    assert!(!validator.is_valid(&broken), "{schema}");
    let app_id = created["id"].as_str().unwrap().to_string();

    let (status, list) = app.get_json("/api/v1/app").await;
    assert_matches(&doc, "get", "/api/v1/app", status, &list);

    let (status, ep) = app
        .post_json(
            &format!("/api/v1/app/{app_id}/endpoint"),
            json!({"url": receiver.url("/hook"), "dateFormat": "unix", "filters": [], "channels": ["a"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ep}");
    assert_matches(&doc, "post", "/api/v1/app/{app_id}/endpoint", status, &ep);
    let ep_id = ep["id"].as_str().unwrap().to_string();

    let (status, msg) = app
        .post_json(
            &format!("/api/v1/app/{app_id}/msg"),
            json!({"eventType": "member.created", "payload": {"id": 1}, "channels": ["a"], "tags": ["t"]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{msg}");
    assert_matches(&doc, "post", "/api/v1/app/{app_id}/msg", status, &msg);
    let msg_id = msg["id"].as_str().unwrap().to_string();

    receiver.wait_for("/hook", 1, Duration::from_secs(30)).await;
    let attempts_path = format!("/api/v1/app/{app_id}/attempt/msg/{msg_id}");
    let attempts = app
        .eventually(
            Duration::from_secs(30),
            "an attempt is recorded",
            || async {
                let (status, body) = app.get_json(&attempts_path).await;
                (status == StatusCode::OK && !body["data"].as_array().unwrap().is_empty())
                    .then_some(body)
            },
        )
        .await;
    assert_matches(
        &doc,
        "get",
        "/api/v1/app/{app_id}/attempt/msg/{msg_id}",
        StatusCode::OK,
        &attempts,
    );

    for (template, url) in [
        (
            "/api/v1/app/{app_id}/endpoint/{endpoint_id}",
            format!("/api/v1/app/{app_id}/endpoint/{ep_id}"),
        ),
        (
            "/api/v1/app/{app_id}/msg",
            format!("/api/v1/app/{app_id}/msg"),
        ),
        (
            "/api/v1/app/{app_id}/msg/{msg_id}/endpoint",
            format!("/api/v1/app/{app_id}/msg/{msg_id}/endpoint"),
        ),
        (
            "/api/v1/app/{app_id}/endpoint/{endpoint_id}/msg",
            format!("/api/v1/app/{app_id}/endpoint/{ep_id}/msg"),
        ),
        (
            "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret",
            format!("/api/v1/app/{app_id}/endpoint/{ep_id}/secret"),
        ),
        (
            "/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation",
            format!("/api/v1/app/{app_id}/endpoint/{ep_id}/transformation"),
        ),
    ] {
        let (status, body) = app.get_json(&url).await;
        assert_eq!(status, StatusCode::OK, "{url}: {body}");
        assert_matches(&doc, "get", template, status, &body);
    }

    // The public catalog answers HTML or JSON: both media types are listed.
    let (status, et) = app
        .post_json(
            "/api/v1/event-type",
            json!({"name": "member.created", "description": "A member joined", "public": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{et}");
    assert_matches(&doc, "post", "/api/v1/event-type", status, &et);
    let content = &doc["paths"]["/catalog"]["get"]["responses"]["200"]["content"];
    for (query, media) in [("", "text/html"), ("?format=json", "application/json")] {
        let answer = app
            .http
            .get(app.url(&format!("/catalog{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        let got = answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(got.starts_with(media), "/catalog{query}: {got}");
        assert!(
            content[media].is_object(),
            "/catalog documents no {media}: {content}"
        );
    }

    // The errors: Svix's {code, detail}, and 422's list of fields.
    let (status, body) = app.get_json("/api/v1/app/nosuchapp").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_matches(&doc, "get", "/api/v1/app/{app_id}", status, &body);
    let (status, body) = app.get_json("/api/v1/app?limit=0").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_matches(&doc, "get", "/api/v1/app", status, &body);
    let (status, body) = app.call(None, Method::GET, "/api/v1/app", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_matches(&doc, "get", "/api/v1/app", status, &body);
    app.stop().await;
}

#[tokio::test]
async fn the_reference_page_and_its_script_are_served_from_the_binary() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();
    let page = http.get(app.url("/api/v1/docs")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("/api/v1/docs/redoc.standalone.js"), "{html}");
    assert!(html.contains("/api/v1/openapi.json"), "{html}");
    assert!(html.contains("disableTelemetry: true"), "{html}");
    // Nothing is loaded from elsewhere.
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );

    let script = http
        .get(app.url("/api/v1/docs/redoc.standalone.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(script.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let body = script.bytes().await.unwrap();
    let vendored = include_bytes!("../../assets/redoc/redoc.standalone.js");
    assert_eq!(body.len(), vendored.len());
    assert!(body.starts_with(b"/** \n* @license MIT"));
    app.stop().await;
}
