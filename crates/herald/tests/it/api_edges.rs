//! The API at its edges, over raw HTTP: authentication, app-scoped tokens,
//! validation errors and where they point, body limits, idempotency, uid
//! conflicts, pagination, unknown routes and the `application` shortcut.

use std::time::Duration;

use herald::auth::Keys;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{mint_token, split, Options, Receiver, Scope, TestApp};

fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body.get("detail").is_some(), "{body}");
}

/// The `loc` of the first field error of a 422.
fn loc(status: StatusCode, body: &Value) -> Vec<String> {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "validation", "{body}");
    let first = &body["detail"][0];
    assert!(first["msg"].is_string(), "{body}");
    assert!(first["type"].is_string(), "{body}");
    first["loc"]
        .as_array()
        .unwrap_or_else(|| panic!("no loc in {body}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

async fn get_with(app: &TestApp, token: Option<&str>, path: &str) -> (StatusCode, Value) {
    let mut req = app.http.get(app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    split(req.send().await.unwrap()).await
}

async fn post_with(app: &TestApp, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let r = app
        .http
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    split(r).await
}

async fn list_data(app: &TestApp, path: &str) -> Vec<Value> {
    let (status, body) = app.get_json(path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401() {
    let app = TestApp::spawn().await;
    let (status, body) = get_with(&app, None, "/api/v1/app").await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "authentication_failed",
    );

    let (status, body) = get_with(&app, Some("not-a-token"), "/api/v1/app").await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "authentication_failed",
    );

    let foreign = mint_token(
        &Keys::new(b"some-other-secret-entirely-0000"),
        Scope::Org("org_herald"),
        None,
    );
    let (status, body) = get_with(&app, Some(&foreign), "/api/v1/app").await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "authentication_failed",
    );

    // Writes too, and nothing is created.
    let (status, body) = post_with(&app, &foreign, "/api/v1/app", json!({"name": "X"})).await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "authentication_failed",
    );
    assert!(list_data(&app, "/api/v1/app").await.is_empty());

    let (status, _) = get_with(&app, Some(&app.token), "/api/v1/app").await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn an_app_token_sees_only_its_application() {
    let app = TestApp::spawn().await;
    let a = app.create_app("A").await;
    let b = app.create_app("B").await;
    let ep_a = app
        .create_endpoint(&a, json!({"url": "https://example.com/a"}))
        .await;
    let ep_b = app
        .create_endpoint(&b, json!({"url": "https://example.com/b"}))
        .await;
    let token = app.app_token(&a);

    let (status, body) = get_with(&app, Some(&token), &format!("/api/v1/app/{a}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], a.as_str());
    let (status, _) = get_with(
        &app,
        Some(&token),
        &format!("/api/v1/app/{a}/endpoint/{ep_a}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = post_with(
        &app,
        &token,
        &format!("/api/v1/app/{a}/msg"),
        json!({"eventType": "t.ok", "payload": {}}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    for path in [
        format!("/api/v1/app/{b}"),
        format!("/api/v1/app/{b}/endpoint"),
        format!("/api/v1/app/{b}/endpoint/{ep_b}"),
        format!("/api/v1/app/{b}/msg"),
        // An endpoint of B reached through A's path is not A's either.
        format!("/api/v1/app/{a}/endpoint/{ep_b}"),
    ] {
        let (status, body) = get_with(&app, Some(&token), &path).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    }
    let (status, body) = post_with(
        &app,
        &token,
        &format!("/api/v1/app/{b}/msg"),
        json!({"eventType": "t.no", "payload": {}}),
    )
    .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    assert!(list_data(&app, &format!("/api/v1/app/{b}/msg"))
        .await
        .is_empty());

    let (status, body) = get_with(&app, Some(&token), "/api/v1/app").await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![a.as_str()]);

    let (status, body) = post_with(&app, &token, "/api/v1/app", json!({"name": "C"})).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(list_data(&app, "/api/v1/app").await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn validation_errors_name_the_bad_field() {
    let app = TestApp::spawn().await;
    let a = app.create_app("Valid").await;
    let ep_path = format!("/api/v1/app/{a}/endpoint");
    let msg_path = format!("/api/v1/app/{a}/msg");

    let (s, b) = app.post_json(&ep_path, json!({"url": "ftp://x"})).await;
    assert_eq!(loc(s, &b), ["body", "url"]);
    let (s, b) = app
        .post_json(
            &ep_path,
            json!({"url": "https://example.com", "channels": ["bad channel"]}),
        )
        .await;
    assert_eq!(loc(s, &b), ["body", "channels", "0"]);
    let (s, b) = app
        .post_json(
            &ep_path,
            json!({"url": "https://example.com", "eventTypes": ["ok", "not ok"]}),
        )
        .await;
    assert_eq!(loc(s, &b), ["body", "eventTypes", "1"]);
    let (s, b) = app.post_json(&ep_path, json!({"url": 5})).await;
    assert_eq!(loc(s, &b), ["body", "url"]);
    let (s, b) = app.post_json(&msg_path, json!({"payload": {}})).await;
    assert_eq!(loc(s, &b), ["body", "eventType"]);
    let (s, b) = app
        .post_json(&msg_path, json!({"eventType": "t.x", "payload": [1, 2]}))
        .await;
    assert_eq!(loc(s, &b), ["body", "payload"]);
    let (s, b) = app
        .post_json(&msg_path, json!({"eventType": "t.x", "payload": "text"}))
        .await;
    assert_eq!(loc(s, &b), ["body", "payload"]);
    let (s, b) = app
        .post_json(
            &msg_path,
            json!({"eventType": "t.x", "payload": {}, "channels": ["ok", "no way"]}),
        )
        .await;
    assert_eq!(loc(s, &b), ["body", "channels", "1"]);
    let (s, b) = app.get_json(&format!("{msg_path}?limit=0")).await;
    assert_eq!(loc(s, &b), ["query", "limit"]);
    let (s, b) = app.get_json("/api/v1/app?limit=251").await;
    assert_eq!(loc(s, &b), ["query", "limit"]);
    let (s, b) = app.get_json(&format!("{msg_path}?status=9")).await;
    assert_eq!(loc(s, &b), ["query", "status"]);

    let r = app
        .request(Method::POST, &msg_path)
        .header("content-type", "application/json")
        .body("{\"eventType\": ")
        .send()
        .await
        .unwrap();
    let (s, b) = split(r).await;
    // As Svix answers a body that is not JSON: 422 at the body.
    assert_eq!(loc(s, &b), ["body"]);
    assert_eq!(b["detail"][0]["type"], "value_error.jsondecode", "{b}");

    assert!(list_data(&app, &msg_path).await.is_empty());
    assert!(list_data(&app, &ep_path).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_stores_nothing() {
    let app = TestApp::spawn_with(Options {
        max_body_bytes: 1024,
        ..Options::default()
    })
    .await;
    let a = app.create_app("Big").await;
    let (s, b) = app
        .post_json(
            &format!("/api/v1/app/{a}/msg"),
            json!({"eventType": "t.big", "payload": {"blob": "x".repeat(2048)}}),
        )
        .await;
    assert_error(s, &b, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert!(list_data(&app, &format!("/api/v1/app/{a}/msg"))
        .await
        .is_empty());
    // A small one still goes through.
    app.send(&a, json!({"eventType": "t.small", "payload": {}}))
        .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_keys_and_event_ids_prevent_duplicates() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let a = app.create_app("Idem").await;
    app.create_endpoint(&a, json!({"url": receiver.url("/idem")}))
        .await;
    let path = format!("/api/v1/app/{a}/msg");
    let send = |key: &'static str, body: Value| {
        let req = app
            .request(Method::POST, &path)
            .header("idempotency-key", key)
            .json(&body);
        async move { split(req.send().await.unwrap()).await }
    };
    let body = json!({"eventType": "t.idem", "payload": {"n": 1}});
    let (s1, first) = send("key-1", body.clone()).await;
    assert_eq!(s1, StatusCode::ACCEPTED, "{first}");
    let (s2, again) = send("key-1", body.clone()).await;
    assert_eq!(s2, StatusCode::ACCEPTED, "{again}");
    assert_eq!(first["id"], again["id"]);
    let (s3, other) = send("key-2", body.clone()).await;
    assert_eq!(s3, StatusCode::ACCEPTED, "{other}");
    assert_ne!(first["id"], other["id"]);

    let messages = list_data(&app, &path).await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    let got = receiver.wait_for("/idem", 2, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received_on("/idem").len(), 2);
    let ids: std::collections::BTreeSet<&str> =
        got.iter().map(|r| r.header("webhook-id")).collect();
    assert!(ids.contains(first["id"].as_str().unwrap()));
    assert!(ids.contains(other["id"].as_str().unwrap()));

    let with_event_id = json!({"eventType": "t.idem", "eventId": "evt-1", "payload": {}});
    let (s, b) = app.post_json(&path, with_event_id.clone()).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    let (s, b) = app.post_json(&path, with_event_id).await;
    assert_error(s, &b, StatusCode::CONFLICT, "conflict");
    assert_eq!(list_data(&app, &path).await.len(), 3);
    app.stop().await;
}

#[tokio::test]
async fn uids_are_unique_and_usable_as_ids() {
    let app = TestApp::spawn().await;
    let (s, created) = app
        .post_json("/api/v1/app", json!({"name": "One", "uid": "spot-1"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let (s, b) = app
        .post_json("/api/v1/app", json!({"name": "Two", "uid": "spot-1"}))
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, "conflict");
    let (s, b) = app
        .post_json(
            "/api/v1/app?get_if_exists=true",
            json!({"name": "Two", "uid": "spot-1"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["id"], created["id"]);
    assert_eq!(b["name"], "One");
    let (s, b) = app.get_json("/api/v1/app/spot-1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["id"], created["id"]);
    assert_eq!(list_data(&app, "/api/v1/app").await.len(), 1);

    let ep_path = "/api/v1/app/spot-1/endpoint";
    let (s, ep) = app
        .post_json(
            ep_path,
            json!({"url": "https://example.com/1", "uid": "hook-1"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{ep}");
    let (s, b) = app
        .post_json(
            ep_path,
            json!({"url": "https://example.com/2", "uid": "hook-1"}),
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, "conflict");
    let (s, b) = app.get_json(&format!("{ep_path}/hook-1")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["id"], ep["id"]);
    assert_eq!(b["url"], "https://example.com/1");
    // The same endpoint uid in another application is fine.
    let other = app.create_app("Other").await;
    app.create_endpoint(
        &other,
        json!({"url": "https://example.com/3", "uid": "hook-1"}),
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn lists_page_with_iterators() {
    let app = TestApp::spawn().await;
    let a = app.create_app("Pages").await;
    let mut sent = Vec::new();
    for n in 0..5 {
        sent.push(
            app.send(&a, json!({"eventType": "t.page", "payload": {"n": n}}))
                .await,
        );
    }
    let mut seen = Vec::new();
    let mut dones = Vec::new();
    let mut sizes = Vec::new();
    let mut iterator: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/app/{a}/msg?limit=2");
        if let Some(it) = &iterator {
            path.push_str(&format!("&iterator={it}"));
        }
        let (s, b) = app.get_json(&path).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let data = b["data"].as_array().unwrap();
        sizes.push(data.len());
        seen.extend(data.iter().map(|m| m["id"].as_str().unwrap().to_string()));
        let done = b["done"].as_bool().unwrap();
        dones.push(done);
        if done {
            break;
        }
        assert!(dones.len() < 10, "pagination does not end");
        iterator = Some(b["iterator"].as_str().unwrap().to_string());
    }
    assert_eq!(sizes, vec![2, 2, 1]);
    assert_eq!(dones, vec![false, false, true]);
    let mut newest_first = sent.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    let mut eps = Vec::new();
    for n in 0..3 {
        eps.push(
            app.create_endpoint(&a, json!({"url": format!("https://example.com/{n}")}))
                .await,
        );
    }
    let (s, b) = app
        .get_json(&format!("/api/v1/app/{a}/endpoint?limit=2"))
        .await;
    assert_eq!(s, StatusCode::OK);
    let first: Vec<&str> = b["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    // Newest first, as Svix lists endpoints.
    assert_eq!(first, vec![eps[2].as_str(), eps[1].as_str()]);
    assert_eq!(b["done"], false);
    let it = b["iterator"].as_str().unwrap();
    let (_, b) = app
        .get_json(&format!("/api/v1/app/{a}/endpoint?limit=2&iterator={it}"))
        .await;
    assert_eq!(b["data"][0]["id"], eps[0].as_str());
    assert_eq!(b["data"].as_array().unwrap().len(), 1);
    assert_eq!(b["done"], true);
    app.stop().await;
}

#[tokio::test]
async fn unknown_routes_are_404_json() {
    let app = TestApp::spawn().await;
    let (s, b) = app.get_json("/api/v1/nothing-here").await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
    let (s, b) = app.get_json("/api/v1/app/app_missing").await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
    app.stop().await;
}

#[tokio::test]
async fn sending_with_application_creates_the_app() {
    let app = TestApp::spawn().await;
    let (s, b) = app
        .post_json(
            "/api/v1/app/new-uid/msg",
            json!({"eventType": "t.new", "payload": {}, "application": {"name": "Fresh"}}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    let (s, created) = app.get_json("/api/v1/app/new-uid").await;
    assert_eq!(s, StatusCode::OK, "{created}");
    assert_eq!(created["name"], "Fresh");
    assert_eq!(created["uid"], "new-uid");
    let msgs = list_data(&app, "/api/v1/app/new-uid/msg").await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["id"], b["id"]);
    // Without `application`, a missing app stays missing.
    let (s, b) = app
        .post_json(
            "/api/v1/app/other-uid/msg",
            json!({"eventType": "t.new", "payload": {}}),
        )
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
    // A second send with `application` uses the app made by the first.
    let (s, _) = app
        .post_json(
            "/api/v1/app/new-uid/msg",
            json!({"eventType": "t.new", "payload": {}, "application": {"name": "Again"}}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(list_data(&app, "/api/v1/app").await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn api_paths_with_a_trailing_slash_reach_the_same_routes() {
    let app = TestApp::spawn().await;
    let (status, created) = app
        .post_json("/api/v1/app/", json!({"name": "Slash", "uid": "slash"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, got) = app.get_json("/api/v1/app/slash/").await;
    assert_eq!(
        (status, got["id"].clone()),
        (StatusCode::OK, created["id"].clone())
    );
    let (status, list) = app.get_json("/api/v1/app/?limit=1").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(
        list["data"].as_array().map(Vec::len),
        Some(1),
        "the query survives"
    );
    let (status, _) = app
        .post_json(
            "/api/v1/app/slash/msg/",
            json!({"eventType": "a.b", "payload": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // The portal's own pages are not API paths: `/portal/` stays a page.
    let r = app.http.get(app.url("/portal/")).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "a page, not a redirect"
    );
    let (status, body) = app.get_json("/api/v1/nothing/").await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found"))
    );
}
