//! The event catalog: the built-in Spot catalog and `herald catalog import`, schema
//! checks on event types and opt-in payload validation, the endpoint date format
//! applied before signing, the Test button, and the public catalog page.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{
    herald_command, split, Received, Receiver, Reply, Scope, TestApp, TestDatabase, TEST_SECRET,
};

const WAIT: Duration = Duration::from_secs(30);

/// The 14 event types Spot ships, in name order.
const SPOT_TYPES: [&str; 14] = [
    "course.participant.created",
    "course.participant.status.updated",
    "course.step.completed",
    "document.updated",
    "forum.topic.created",
    "learning_path.participant.created",
    "learning_path.participant.updated",
    "learning_path.step.completed",
    "live.participant.created",
    "live.participant.updated",
    "live.updated",
    "member.created",
    "member.updated",
    "registration_form.answered",
];

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = app.request(method, path);
    if let Some(body) = body {
        r = r.json(&body);
    }
    split(r.send().await.unwrap()).await
}

/// A request without any token, as a visitor of the public page makes it.
async fn public_get(app: &TestApp, path: &str) -> (StatusCode, String, String) {
    let r = app.http.get(app.url(path)).send().await.unwrap();
    let status = r.status();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, content_type, r.text().await.unwrap())
}

/// The `loc` of the first validation error of a 422.
fn first_loc(body: &Value) -> Vec<String> {
    assert_eq!(body["code"], "validation", "{body}");
    body["detail"][0]["loc"]
        .as_array()
        .unwrap_or_else(|| panic!("no loc in {body}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn anchor(name: &str) -> String {
    format!("id=\"{name}\"")
}

/// Every event type name on the JSON rendering of the public catalog.
fn json_catalog_names(catalog: &Value) -> Vec<String> {
    catalog["groups"]
        .as_array()
        .unwrap_or_else(|| panic!("no groups in {catalog}"))
        .iter()
        .flat_map(|g| g["eventTypes"].as_array().unwrap().iter())
        .map(|et| et["name"].as_str().unwrap().to_string())
        .collect()
}

async fn event_type_names(app: &TestApp) -> Vec<String> {
    let (status, body) = app.get_json("/api/v1/event-type?limit=250").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|et| et["name"].as_str().unwrap().to_string())
        .collect()
}

fn spot_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../catalog/spot")
        .join(format!("{name}.json"))
}

/// The first example of a shipped catalog file.
fn spot_example(name: &str) -> Value {
    let entry: Value = serde_json::from_slice(&std::fs::read(spot_file(name)).unwrap()).unwrap();
    entry["schemas"]["1"]["examples"][0].clone()
}

/// Waits a little and checks that `path` received exactly `n` requests.
async fn settle_and_count(receiver: &Receiver, path: &str, n: usize) {
    tokio::time::sleep(Duration::from_millis(700)).await;
    let got = receiver.received_on(path);
    assert_eq!(got.len(), n, "requests on {path}: {got:?}");
}

fn std_verify(secret: &str, got: &Received) -> bool {
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(&got.body, &got.headers)
        .is_ok()
}

// 1. --seed-catalog

#[tokio::test]
async fn seed_catalog_loads_the_14_spot_types_and_publishes_them() {
    let app = TestApp::seeded().await;
    let (status, body) = app
        .get_json("/api/v1/event-type?limit=250&with_content=true")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let types = body["data"].as_array().unwrap();
    let names: Vec<&str> = types.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, SPOT_TYPES);
    for t in types {
        let name = t["name"].as_str().unwrap();
        let schema = &t["schemas"]["1"];
        assert_eq!(schema["type"], "object", "{name}");
        let example = &schema["examples"][0];
        assert!(example.is_object(), "{name} has no example: {t}");
        assert_eq!(example, &spot_example(name), "{name}");
        assert_eq!(t["public"], true, "{name}");
        assert_eq!(t["archived"], false, "{name}");
    }

    let (status, content_type, html) = public_get(&app, "/catalog").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    for name in SPOT_TYPES {
        assert!(html.contains(&anchor(name)), "no anchor for {name}");
    }
    app.stop().await;
}

// 2. The public page

#[tokio::test]
async fn the_public_catalog_shows_only_public_unarchived_types() {
    let app = TestApp::seeded().await;
    let (status, out) = app
        .post_json(
            "/api/v1/event-type",
            json!({"name": "extra.thing", "description": "Something extra"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    assert_eq!(out["public"], false, "{out}");
    assert_eq!(out["validatePayload"], false, "{out}");

    let (status, _, html) = public_get(&app, "/catalog").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains(&anchor("extra.thing")));
    assert!(html.contains(&anchor("live.updated")));
    let (status, ct, text) = public_get(&app, "/catalog?format=json").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(ct.starts_with("application/json"), "{ct}");
    let names = json_catalog_names(&serde_json::from_str(&text).unwrap());
    assert_eq!(names.len(), 14, "{names:?}");
    assert!(!names.iter().any(|n| n == "extra.thing"));

    // Made public: listed.
    let (status, out) = call(
        &app,
        Method::PATCH,
        "/api/v1/event-type/extra.thing",
        Some(json!({"public": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["public"], true);
    let (_, _, html) = public_get(&app, "/catalog").await;
    assert!(html.contains(&anchor("extra.thing")));
    let (_, _, text) = public_get(&app, "/catalog?format=json").await;
    let names = json_catalog_names(&serde_json::from_str(&text).unwrap());
    assert!(names.iter().any(|n| n == "extra.thing"), "{names:?}");
    assert_eq!(names.len(), 15);

    // Archived: gone from every rendering.
    let (status, out) = call(
        &app,
        Method::DELETE,
        "/api/v1/event-type/forum.topic.created",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{out}");
    let (_, _, html) = public_get(&app, "/catalog").await;
    assert!(!html.contains(&anchor("forum.topic.created")));
    let (_, _, text) = public_get(&app, "/catalog?format=json").await;
    let names = json_catalog_names(&serde_json::from_str(&text).unwrap());
    assert!(!names.iter().any(|n| n == "forum.topic.created"));
    let (_, _, text) = public_get(&app, "/catalog?format=openapi").await;
    let openapi: Value = serde_json::from_str(&text).unwrap();
    assert!(openapi["webhooks"].get("forum.topic.created").is_none());

    // OpenAPI 3.1 with one webhook per public type, carrying the example.
    assert_eq!(openapi["openapi"], "3.1.0");
    assert_eq!(openapi["webhooks"].as_object().unwrap().len(), 14);
    let media =
        &openapi["webhooks"]["live.updated"]["post"]["requestBody"]["content"]["application/json"];
    assert_eq!(media["example"]["test"], true, "{media}");
    assert_eq!(media["example"], spot_example("live.updated"));
    assert!(media["schema"].get("$schema").is_none());

    // The same catalog by organisation id.
    let (status, _, html) = public_get(&app, "/catalog/org_herald").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&anchor("live.updated")));
    app.stop().await;
}

#[tokio::test]
async fn a_catalog_with_nothing_public_is_a_json_404_and_formats_are_checked() {
    let app = TestApp::seeded().await;
    // An organisation with event types, none public: 404 JSON.
    let other = app.token_for(Scope::Org("org_other"));
    let r = app
        .http
        .post(app.url("/api/v1/event-type"))
        .bearer_auth(&other)
        .json(&json!({"name": "private.thing", "description": "Not for the world"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    for path in [
        "/catalog/org_other",
        "/catalog/org_other?format=json",
        "/catalog/org_nobody",
    ] {
        let (status, ct, text) = public_get(&app, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {text}");
        assert!(ct.starts_with("application/json"), "{path}: {ct}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["code"], "not_found", "{path}: {body}");
    }

    // An unknown format.
    let (status, _, text) = public_get(&app, "/catalog?format=xml").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(first_loc(&body), ["query", "format"]);
    app.stop().await;
}

// 3. herald catalog import

/// `herald catalog import ARGS` on `db`: its output, whether it failed or not.
async fn catalog_import(db: &TestDatabase, args: &[&str]) -> std::process::Output {
    herald_command(db.url(), TEST_SECRET)
        .args(["catalog", "import"])
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap()
}

fn stdout_of(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "herald failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A catalog directory: Spot's live.updated with another description, a new
/// type, and a file that is not a catalog file.
fn my_catalog(dir: &std::path::Path) -> String {
    let cat = dir.join("mine");
    std::fs::create_dir(&cat).unwrap();
    let mut live: Value =
        serde_json::from_slice(&std::fs::read(spot_file("live.updated")).unwrap()).unwrap();
    live["description"] = json!("A live changed (our wording).");
    std::fs::write(
        cat.join("live.updated.json"),
        serde_json::to_vec_pretty(&live).unwrap(),
    )
    .unwrap();
    std::fs::write(
        cat.join("invoice.paid.json"),
        serde_json::to_vec_pretty(&json!({
            "name": "invoice.paid",
            "description": "An invoice was paid.",
            "public": true,
            "validatePayload": true,
            "schemas": {"1": {
                "type": "object",
                "properties": {"amount": {"type": "integer"}, "paidAt": {"type": "integer", "format": "unix-time"}},
                "required": ["amount"],
                "examples": [{"amount": 1200, "paidAt": 1715095714}]
            }}
        }))
        .unwrap(),
    )
    .unwrap();
    std::fs::write(cat.join("README.txt"), "notes").unwrap();
    cat.display().to_string()
}

#[tokio::test]
async fn catalog_import_creates_then_changes_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::for_suite(dir.path());

    let first = stdout_of(&catalog_import(&db, &[]).await);
    assert!(first.contains("14 created"), "{first}");
    assert!(first.contains("0 updated, 0 unchanged"), "{first}");
    let again = stdout_of(&catalog_import(&db, &[]).await);
    assert!(
        again.contains("0 created, 0 updated, 14 unchanged"),
        "{again}"
    );

    let cat = my_catalog(dir.path());
    let third = stdout_of(&catalog_import(&db, &[&cat]).await);
    assert!(
        third.contains("1 created, 1 updated, 0 unchanged"),
        "{third}"
    );

    // What the database now holds, read in-process.
    {
        let store = herald::database::open_store(db.url(), false, crate::support::test_keyring())
            .await
            .unwrap();
        let org = herald::auth::DEFAULT_ORG;
        let live = store.get_event_type(org, "live.updated").await.unwrap();
        assert_eq!(live.unwrap().description, "A live changed (our wording).");
        let paid = store.get_event_type(org, "invoice.paid").await.unwrap();
        let paid = paid.unwrap();
        assert!(paid.validate_payload && paid.public);
        assert_eq!(
            paid.example(0),
            Some(&json!({"amount": 1200, "paidAt": 1715095714}))
        );
        // Types the catalog does not name are kept.
        let all = herald::catalog::all_event_types(store.as_ref(), org)
            .await
            .unwrap();
        assert_eq!(all.len(), 15);
    }

    // Re-importing the built-in catalog puts Spot's description back.
    let fourth = stdout_of(&catalog_import(&db, &[]).await);
    assert!(
        fourth.contains("0 created, 1 updated, 13 unchanged"),
        "{fourth}"
    );
    // Another organisation gets its own copy.
    let other = stdout_of(&catalog_import(&db, &["--org", "org_other"]).await);
    assert!(
        other.contains("14 created") && other.contains("org_other"),
        "{other}"
    );
}

#[tokio::test]
async fn a_catalog_file_whose_example_breaks_its_schema_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::for_suite(dir.path());
    let bad = dir.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(
        bad.join("broken.example.json"),
        serde_json::to_vec(&json!({
            "name": "broken.example",
            "description": "d",
            "schemas": {"1": {
                "type": "object",
                "properties": {"n": {"type": "integer"}},
                "examples": [{"n": "not a number"}]
            }}
        }))
        .unwrap(),
    )
    .unwrap();
    let out = catalog_import(&db, &[&bad.display().to_string()]).await;
    assert!(!out.status.success(), "a bad catalog was imported");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.example.json"), "{stderr}");
    // And nothing of it was loaded.
    let store = herald::database::open_store(db.url(), false, crate::support::test_keyring())
        .await
        .unwrap();
    assert!(store
        .get_event_type(herald::auth::DEFAULT_ORG, "broken.example")
        .await
        .unwrap()
        .is_none());
}

// 4. Schema checks and ingest validation

#[tokio::test]
async fn event_type_schemas_are_checked_on_create_update_and_patch() {
    let app = TestApp::spawn().await;
    let bad_schema = json!({"1": {"type": "strnig"}});
    let bad_example = json!({"1": {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "examples": [{"n": "not a number"}]
    }});

    // A boolean schema is valid JSON Schema, but Svix's EventTypeIn takes
    // objects only (schemathesis found Herald echoing one back).
    let boolean_schema = json!({"1": false});

    let examples_loc: &[&str] = &["body", "schemas", "1", "examples", "0"];
    let schema_loc: &[&str] = &["body", "schemas", "1"];
    for (schemas, loc) in [
        (&bad_schema, schema_loc),
        (&bad_example, examples_loc),
        (&boolean_schema, schema_loc),
    ] {
        let body = json!({"name": "a.b", "description": "d", "schemas": schemas});
        let (status, out) = app.post_json("/api/v1/event-type", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
        assert_eq!(first_loc(&out)[..loc.len()], *loc, "{out}");
    }
    // Nothing was created.
    assert!(event_type_names(&app).await.is_empty());

    // A good one, then bad updates of it.
    let good = json!({"1": {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "examples": [{"n": 1}]
    }});
    let (status, out) = app
        .post_json(
            "/api/v1/event-type",
            json!({"name": "a.b", "description": "d", "schemas": good,
                   "public": true, "validatePayload": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    assert_eq!(out["public"], true);
    assert_eq!(out["validatePayload"], true);

    for (method, schemas, loc) in [
        (Method::PUT, &bad_example, examples_loc),
        (Method::PATCH, &bad_example, examples_loc),
        (Method::PUT, &bad_schema, schema_loc),
        (Method::PATCH, &bad_schema, schema_loc),
    ] {
        let body = json!({"description": "d", "schemas": schemas});
        let (status, out) = call(&app, method.clone(), "/api/v1/event-type/a.b", Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{method}: {out}");
        assert_eq!(first_loc(&out)[..loc.len()], *loc, "{method}: {out}");
    }
    // The event type is as it was.
    let (status, out) = app.get_json("/api/v1/event-type/a.b").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(out["schemas"], good);
    assert_eq!(out["validatePayload"], true);

    // PUT without the Herald fields turns them off (a replace); PATCH sets one.
    let (status, out) = call(
        &app,
        Method::PUT,
        "/api/v1/event-type/a.b",
        Some(json!({"description": "d2", "schemas": good})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["public"], false);
    assert_eq!(out["validatePayload"], false);
    let (_, out) = call(
        &app,
        Method::PATCH,
        "/api/v1/event-type/a.b",
        Some(json!({"validatePayload": true})),
    )
    .await;
    assert_eq!(out["validatePayload"], true);
    assert_eq!(out["public"], false);
    assert_eq!(out["description"], "d2");
    app.stop().await;
}

#[tokio::test]
async fn ingest_takes_anything_while_an_organisation_has_no_event_types() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Spot").await;
    app.create_endpoint(&app_id, json!({"url": receiver.url("/all")}))
        .await;
    app.send(
        &app_id,
        json!({"eventType": "anything.goes", "payload": {"x": 1}}),
    )
    .await;
    receiver.wait_for("/all", 1, WAIT).await;
    app.stop().await;
}

/// `invoice.paid` (validatePayload, a schema that wants an amount and a
/// customer's email) and `invoice.sent` (a schema, not enforced); then a
/// fresh application with an endpoint at `/two`, whose message path it returns.
async fn invoice_types(app: &TestApp, receiver: &Receiver) -> String {
    let paid = json!({"name": "invoice.paid", "description": "Paid", "validatePayload": true,
    "schemas": {"1": {
        "type": "object",
        "properties": {
            "amount": {"type": "integer"},
            "customer": {"type": "object",
                         "properties": {"email": {"type": "string"}},
                         "required": ["email"]}
        },
        "required": ["amount", "customer"]
    }}});
    let sent = json!({"name": "invoice.sent", "description": "Sent (not validated)",
        "schemas": {"1": {"type": "object", "required": ["amount"]}}});
    for body in [paid, sent] {
        let (status, out) = app.post_json("/api/v1/event-type", body).await;
        assert_eq!(status, StatusCode::CREATED, "{out}");
    }
    let app2 = app.create_app("Other").await;
    app.create_endpoint(&app2, json!({"url": receiver.url("/two")}))
        .await;
    format!("/api/v1/app/{app2}/msg")
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_refuses_unknown_types_and_payloads_that_break_their_schema() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let msg_path = invoice_types(&app, &receiver).await;
    let refused: [(Value, &[&str]); 4] = [
        // Now that types exist, an unknown one is refused.
        (
            json!({"eventType": "anything.goes", "payload": {"x": 1}}),
            &["body", "eventType"],
        ),
        // A payload not matching the schema: 422 at the payload path.
        (
            json!({"eventType": "invoice.paid",
                   "payload": {"amount": "ten", "customer": {"email": "a@b.c"}}}),
            &["body", "payload", "amount"],
        ),
        (
            json!({"eventType": "invoice.paid",
                   "payload": {"amount": 10, "customer": {"email": 42}}}),
            &["body", "payload", "customer", "email"],
        ),
        // A missing required field is reported too (where it is missing).
        (
            json!({"eventType": "invoice.paid", "payload": {"amount": 10}}),
            &["body", "payload"],
        ),
    ];
    for (body, loc) in refused {
        let (status, out) = app.post_json(&msg_path, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
        assert_eq!(first_loc(&out)[..loc.len()], *loc, "{out}");
    }
    // Nothing was stored or delivered.
    let (status, list) = app.get_json(&msg_path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["data"], json!([]), "{list}");
    settle_and_count(&receiver, "/two", 0).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_takes_matching_and_unvalidated_payloads_and_refuses_archived_types() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let msg_path = invoice_types(&app, &receiver).await;
    let send = |body: Value| {
        let (app, path) = (&app, &msg_path);
        async move { app.post_json(path, body).await }
    };
    // A type without validatePayload takes a payload its schema would refuse.
    let (status, out) = send(json!({"eventType": "invoice.sent", "payload": {"x": 1}})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{out}");
    // A matching payload goes through and out.
    let good = json!({"amount": 10, "customer": {"email": "a@b.c"}});
    let (status, out) = send(json!({"eventType": "invoice.paid", "payload": good})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{out}");
    let got = receiver.wait_for("/two", 2, WAIT).await;
    let paid = got.iter().find(|r| r.header("webhook-id") == out["id"]);
    assert_eq!(paid.unwrap().json(), good);

    // Archived: refused.
    let archive = call(
        &app,
        Method::DELETE,
        "/api/v1/event-type/invoice.paid",
        None,
    );
    assert_eq!(archive.await.0, StatusCode::NO_CONTENT);
    let (status, out) = send(json!({"eventType": "invoice.paid", "payload": good})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
    assert_eq!(first_loc(&out), ["body", "eventType"]);
    let (_, list) = app.get_json(&msg_path).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2, "{list}");
    settle_and_count(&receiver, "/two", 2).await;
    app.stop().await;
}

// 5. Date formats

#[tokio::test]
async fn endpoint_date_format_is_checked_and_kept() {
    let app = TestApp::spawn().await;
    let app_id = app.create_app("Spot").await;
    let url = "http://127.0.0.1:9/hook";
    let base = format!("/api/v1/app/{app_id}/endpoint");

    let (status, out) = app.post_json(&base, json!({"url": url})).await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    assert_eq!(out["dateFormat"], "unix");
    let ep = out["id"].as_str().unwrap().to_string();

    for bad in ["ISO8601", "unix-ms", "", "iso"] {
        let (status, out) = app
            .post_json(&base, json!({"url": url, "dateFormat": bad}))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {out}");
        assert_eq!(first_loc(&out), ["body", "dateFormat"], "{bad}");
    }
    for good in ["unix", "unix_ms", "iso8601", "rfc2822"] {
        let (status, out) = app
            .post_json(&base, json!({"url": url, "dateFormat": good}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{good}: {out}");
        assert_eq!(out["dateFormat"], good);
    }

    let path = format!("{base}/{ep}");
    let (status, out) = call(
        &app,
        Method::PATCH,
        &path,
        Some(json!({"dateFormat": "iso8601"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["dateFormat"], "iso8601");
    let (status, out) = call(
        &app,
        Method::PATCH,
        &path,
        Some(json!({"dateFormat": "nope"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
    assert_eq!(first_loc(&out), ["body", "dateFormat"]);
    // PUT without it keeps it.
    let (status, out) = call(
        &app,
        Method::PUT,
        &path,
        Some(json!({"url": url, "description": "put"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["dateFormat"], "iso8601");
    assert_eq!(out["description"], "put");
    let (status, out) = call(
        &app,
        Method::PUT,
        &path,
        Some(json!({"url": url, "dateFormat": "rfc2822"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["dateFormat"], "rfc2822");
    let (status, out) = call(
        &app,
        Method::PUT,
        &path,
        Some(json!({"url": url, "dateFormat": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
    assert_eq!(first_loc(&out), ["body", "dateFormat"]);
    let (_, out) = app.get_json(&path).await;
    assert_eq!(out["dateFormat"], "rfc2822");
    app.stop().await;
}

#[tokio::test]
async fn unix_time_fields_are_converted_per_endpoint_and_signed_as_sent() {
    let app = TestApp::seeded().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Spot").await;
    let formats = ["unix", "unix_ms", "iso8601", "rfc2822"];
    let mut secrets = Vec::new();
    for f in formats {
        let ep = app
            .create_endpoint(
                &app_id,
                json!({"url": receiver.url(&format!("/{f}")), "eventTypes": ["live.updated"],
                       "dateFormat": f}),
            )
            .await;
        secrets.push(app.endpoint_secret(&app_id, &ep).await);
    }
    let payload = json!({
        "live": {"id": "3a6f462c-261e-4f29-980c-55c6d5a8e288", "name": "Q&A",
                 "status": "Live", "startsAt": 1715099314},
        "spot": {"id": "7ad3b34a-ac58-4780-8c28-04c06fc78854", "name": "Club"},
        "occurredAt": 1715095714,
        "test": false,
        "extra": {"occurredAt": 5, "count": 1715095714}
    });
    let msg_id = app
        .send(
            &app_id,
            json!({"eventType": "live.updated", "payload": payload}),
        )
        .await;

    let expected = [
        (json!(1715095714), json!(1715099314)),
        (json!(1715095714000_i64), json!(1715099314000_i64)),
        (json!("2024-05-07T15:28:34Z"), json!("2024-05-07T16:28:34Z")),
        (
            json!("Tue, 07 May 2024 15:28:34 +0000"),
            json!("Tue, 07 May 2024 16:28:34 +0000"),
        ),
    ];
    for ((f, (occurred, starts)), secret) in formats.iter().zip(expected).zip(&secrets) {
        let got = receiver.wait_for(&format!("/{f}"), 1, WAIT).await.remove(0);
        assert_eq!(got.header("webhook-id"), msg_id);
        let mut want = payload.clone();
        want["occurredAt"] = occurred;
        want["live"]["startsAt"] = starts;
        assert_eq!(got.json(), want, "{f}");
        // Byte for byte: the sender's field order is kept.
        assert_eq!(
            std::str::from_utf8(&got.body).unwrap(),
            serde_json::to_string(&want).unwrap(),
            "{f}"
        );
        // Signed over the converted bytes that were sent.
        assert!(std_verify(secret, &got), "{f}: signature does not verify");
        let mut other = got.clone();
        other.body = serde_json::to_vec(&payload).unwrap().into();
        if *f != "unix" {
            assert!(
                !std_verify(secret, &other),
                "{f}: the unconverted body verifies"
            );
        } else {
            // unix sends the payload exactly as accepted.
            assert_eq!(got.body, serde_json::to_vec(&payload).unwrap());
        }
    }

    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payload_whose_type_has_no_schema_goes_out_byte_for_byte() {
    let app = TestApp::seeded().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Spot").await;
    // A type without a schema goes out byte for byte, whatever the format.
    let (status, out) = app
        .post_json(
            "/api/v1/event-type",
            json!({"name": "plain.event", "description": "No schema"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    let ep = app
        .create_endpoint(
            &app_id,
            json!({"url": receiver.url("/plain"), "eventTypes": ["plain.event"],
                   "dateFormat": "iso8601"}),
        )
        .await;
    let secret = app.endpoint_secret(&app_id, &ep).await;
    let raw_payload = r#"{"z": 1,   "occurredAt": 1715095714, "a": "é"}"#;
    let r = app
        .request(Method::POST, &format!("/api/v1/app/{app_id}/msg"))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"eventType": "plain.event", "payload": {raw_payload}}}"#
        ))
        .send()
        .await
        .unwrap();
    let (status, out) = split(r).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{out}");
    let got = receiver.wait_for("/plain", 1, WAIT).await.remove(0);
    assert_eq!(std::str::from_utf8(&got.body).unwrap(), raw_payload);
    assert!(std_verify(&secret, &got));
    app.stop().await;
}

// 6. The Test button

async fn send_example(app: &TestApp, app_id: &str, ep: &str, event_type: &str) -> Value {
    let (status, out) = app
        .post_json(
            &format!("/api/v1/app/{app_id}/endpoint/{ep}/send-example"),
            json!({"eventType": event_type}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    out
}

#[tokio::test]
async fn the_test_button_sends_the_example_once_and_reports_the_attempt() {
    let app = TestApp::seeded().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Spot").await;
    // Filtered to another type: the Test still reaches it.
    let ep = app
        .create_endpoint(
            &app_id,
            json!({"url": receiver.url("/ok"), "eventTypes": ["member.created"]}),
        )
        .await;
    // Another endpoint that would take anything: the Test does not go there.
    app.create_endpoint(&app_id, json!({"url": receiver.url("/bystander")}))
        .await;
    receiver.set_default("/ok", Reply::status(200).body("thanks"));
    let secret = app.endpoint_secret(&app_id, &ep).await;

    let out = send_example(&app, &app_id, &ep, "live.updated").await;
    let example = spot_example("live.updated");
    assert_eq!(out["eventType"], "live.updated");
    assert_eq!(out["payload"], example);
    assert_eq!(out["payload"]["test"], true);
    let msg_id = out["id"].as_str().unwrap();
    let attempt = &out["attempt"];
    assert_eq!(attempt["responseStatusCode"], 200, "{out}");
    assert_eq!(attempt["response"], "thanks");
    assert_eq!(attempt["status"], 0);
    assert_eq!(attempt["endpointId"], ep.as_str());
    assert_eq!(attempt["msgId"], msg_id);
    assert!(attempt["responseDurationMs"].is_i64(), "{attempt}");

    // Already delivered when the API answered.
    let got = receiver.received_on("/ok");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("webhook-id"), msg_id);
    assert_eq!(got[0].json(), example);
    assert_eq!(got[0].json()["test"], true);
    assert!(std_verify(&secret, &got[0]));

    // In the attempt log.
    let (status, log) = app
        .get_json(&format!("/api/v1/app/{app_id}/attempt/msg/{msg_id}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let items = log["data"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{log}");
    assert_eq!(items[0]["id"], attempt["id"]);
    assert_eq!(items[0]["responseStatusCode"], 200);
    assert_eq!(items[0]["response"], "thanks");

    // Once: no second delivery, and nothing to the other endpoint.
    settle_and_count(&receiver, "/ok", 1).await;
    settle_and_count(&receiver, "/bystander", 0).await;

    // The example of another type, by index.
    let (status, out) = app
        .post_json(
            &format!("/api/v1/app/{app_id}/endpoint/{ep}/send-example"),
            json!({"eventType": "registration_form.answered", "exampleIndex": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["payload"], spot_example("registration_form.answered"));
    // A type with no such example, and an unknown type.
    let (status, out) = app
        .post_json(
            &format!("/api/v1/app/{app_id}/endpoint/{ep}/send-example"),
            json!({"eventType": "live.updated", "exampleIndex": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
    let (status, out) = app
        .post_json(
            &format!("/api/v1/app/{app_id}/endpoint/{ep}/send-example"),
            json!({"eventType": "no.such.type"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{out}");
    app.stop().await;
}

#[tokio::test]
async fn a_failed_test_is_reported_and_not_retried() {
    let app = TestApp::seeded().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Spot").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/fail")}))
        .await;
    receiver.set_default("/fail", Reply::status(500).body("boom"));

    let out = send_example(&app, &app_id, &ep, "member.created").await;
    let attempt = &out["attempt"];
    assert_eq!(attempt["responseStatusCode"], 500, "{out}");
    assert_eq!(attempt["response"], "boom");
    assert_eq!(attempt["status"], 2, "{out}");
    assert_eq!(receiver.received_on("/fail").len(), 1);
    // The retry schedule is 200 ms: a retry would have come by now.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(receiver.received_on("/fail").len(), 1);
    let msg_id = out["id"].as_str().unwrap();
    let (_, log) = app
        .get_json(&format!("/api/v1/app/{app_id}/attempt/msg/{msg_id}"))
        .await;
    assert_eq!(log["data"].as_array().unwrap().len(), 1, "{log}");

    // Nothing listening: no response, and the reason says so.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dead = app
        .create_endpoint(&app_id, json!({"url": format!("http://{closed}/gone")}))
        .await;
    let out = send_example(&app, &app_id, &dead, "member.created").await;
    let attempt = &out["attempt"];
    assert_eq!(attempt["responseStatusCode"], 0, "{out}");
    assert_eq!(attempt["status"], 2, "{out}");
    let reason = attempt["response"].as_str().unwrap().to_lowercase();
    assert!(reason.contains("connection"), "{reason}");
    app.stop().await;
}

// 7. Routing registration forms by channel

#[tokio::test]
async fn registration_form_answers_go_to_the_endpoint_of_their_form() {
    let app = TestApp::seeded().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Spot").await;
    for form in ["f1", "f2"] {
        app.create_endpoint(
            &app_id,
            json!({"url": receiver.url(&format!("/{form}")),
                   "eventTypes": ["registration_form.answered"],
                   "channels": [format!("registration-form.{form}")]}),
        )
        .await;
    }
    let mut example = spot_example("registration_form.answered");
    example["test"] = json!(false);
    let mut ids = Vec::new();
    for form in ["f1", "f2"] {
        let mut payload = example.clone();
        payload["form"]["name"] = json!(format!("Form {form}"));
        ids.push(
            app.send(
                &app_id,
                json!({"eventType": "registration_form.answered", "payload": payload,
                       "channels": [format!("registration-form.{form}")]}),
            )
            .await,
        );
    }
    // Another channel, and another type on the right channel: neither goes out.
    app.send(
        &app_id,
        json!({"eventType": "registration_form.answered", "payload": example,
               "channels": ["registration-form.f3"]}),
    )
    .await;
    app.send(
        &app_id,
        json!({"eventType": "member.created", "payload": spot_example("member.created"),
               "channels": ["registration-form.f1"]}),
    )
    .await;
    for (form, id) in ["f1", "f2"].iter().zip(&ids) {
        let got = receiver.wait_for(&format!("/{form}"), 1, WAIT).await;
        assert_eq!(got[0].header("webhook-id"), id.as_str());
        assert_eq!(got[0].json()["form"]["name"], format!("Form {form}"));
    }
    settle_and_count(&receiver, "/f1", 1).await;
    settle_and_count(&receiver, "/f2", 1).await;
    app.stop().await;
}
