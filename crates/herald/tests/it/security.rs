//! Attacks one tenant, or one anonymous client, could make on the others, each
//! made against the real server on loopback: a tenant renaming its uid to catch
//! another's events, JSON that a later parse would mangle, portal pages that
//! could be framed or sniffed, and an application deleted under its deliveries.

use std::time::Duration;

use herald::auth::DEFAULT_ORG;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{
    herald_command, herald_stdout, read, split, HeraldProcess, Options, Receiver, Reply, TestApp,
    TestDatabase,
};

async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    split(req.send().await.unwrap()).await
}

#[tokio::test]
async fn a_tenant_cannot_take_over_another_tenants_future_uid() {
    let app = TestApp::spawn().await;
    let (_, own) = app
        .post_json("/api/v1/app", json!({"name": "Spot 42", "uid": "spot-42"}))
        .await;
    let own_id = own["id"].as_str().unwrap().to_string();
    let tenant = app.keys.app_token(DEFAULT_ORG, &own_id);

    // Every way an app-scoped token could write an application record.
    let attempts = [
        (
            Method::PATCH,
            "/api/v1/app/spot-42",
            json!({"uid": "spot-43"}),
        ),
        (
            Method::PUT,
            "/api/v1/app/spot-42",
            json!({"name": "Spot 42", "uid": "spot-43"}),
        ),
        (Method::PUT, "/api/v1/app/spot-43", json!({"name": "Mine"})),
        (
            Method::POST,
            "/api/v1/app",
            json!({"name": "x", "uid": "spot-43"}),
        ),
        (
            Method::POST,
            "/api/v1/app?get_if_exists=true",
            json!({"name": "x", "uid": "spot-43"}),
        ),
        (Method::DELETE, "/api/v1/app/spot-42", Value::Null),
    ];
    for (method, path, body) in attempts {
        let body = (!body.is_null()).then_some(body);
        let (status, out) = call(&app, &tenant, method.clone(), path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {out}");
        assert_eq!(out["code"], "forbidden", "{out}");
    }
    // The record is untouched, and the tenant still reads it.
    let (status, read_back) = call(&app, &tenant, Method::GET, "/api/v1/app/spot-42", None).await;
    assert_eq!(status, StatusCode::OK, "{read_back}");
    assert_eq!(read_back["uid"], "spot-42");

    // When the platform later creates Spot 43, its events go to Spot 43.
    let receiver = Receiver::start().await;
    let spot43 = app
        .post_json(
            "/api/v1/app?get_if_exists=true",
            json!({"name": "Spot 43", "uid": "spot-43"}),
        )
        .await
        .1["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(spot43, own_id);
    app.create_endpoint("spot-43", json!({"url": receiver.url("/43")}))
        .await;
    app.send(
        "spot-43",
        json!({"eventType": "member.created", "payload": {}}),
    )
    .await;
    receiver.wait_for("/43", 1, Duration::from_secs(20)).await;
    let (_, theirs) = call(&app, &tenant, Method::GET, "/api/v1/app/spot-43/msg", None).await;
    assert_eq!(theirs["code"], "not_found", "{theirs}");
}

#[tokio::test]
async fn json_a_later_parse_would_refuse_or_mangle_is_refused_at_the_door() {
    let app = TestApp::spawn().await;
    let app_id = app.create_app("Spot").await;
    let path = format!("/api/v1/app/{app_id}/msg");
    let raw = |body: &'static str| {
        app.request(Method::POST, &path)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let (status, body) = split(
        raw(r#"{"eventType": "a.b", "payload": {}} trailing"#)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["detail"][0]["loc"],
        serde_json::json!(["body"]),
        "{body}"
    );
    assert!(
        body["detail"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("trailing"),
        "{body}"
    );

    for (payload_body, says) in [
        (
            r#"{"eventType": "a.b", "payload": {"name": "\ud800"}}"#,
            "hex escape",
        ),
        (
            r#"{"eventType": "a.b", "payload": {"n": 1e400}}"#,
            "number out of range",
        ),
        // serde_json would read this object as the JSON text in its value,
        // so a schema check would see something other than what is sent
        // (found by fuzzing).
        (
            r#"{"eventType": "a.b", "payload": {"$serde_json::private::RawValue": "{\"at\":1}"}}"#,
            "RawValue",
        ),
    ] {
        let (status, body) = split(raw(payload_body).await.unwrap()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(
            body["detail"][0]["loc"],
            json!(["body", "payload"]),
            "{body}"
        );
        let msg = body["detail"][0]["msg"].as_str().unwrap();
        assert!(msg.contains(says), "{msg}");
    }
    let (_, list) = app.get_json(&path).await;
    assert_eq!(list["data"], json!([]), "nothing was stored");
}

#[tokio::test]
async fn port_zero_is_not_an_endpoint() {
    let app = TestApp::spawn().await;
    let app_id = app.create_app("Spot").await;
    let (status, body) = app
        .post_json(
            &format!("/api/v1/app/{app_id}/endpoint"),
            json!({"url": "http://example.com:0/hook"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "url"]), "{body}");
    assert!(body["detail"][0]["msg"]
        .as_str()
        .unwrap()
        .contains("port 0"));
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

#[tokio::test]
async fn portal_pages_cannot_be_framed_sniffed_or_leak_a_referrer() {
    let app = TestApp::spawn().await;
    for path in [
        "/portal/login?token=nope",
        "/portal/",
        "/portal/assets/portal.js",
    ] {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        let csp = header(&r, "content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert_eq!(header(&r, "x-frame-options"), "DENY", "{path}");
        assert_eq!(header(&r, "x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header(&r, "referrer-policy"), "no-referrer", "{path}");
    }
    app.stop().await;

    // The operator may let named origins embed it.
    let app = TestApp::spawn_with(Options {
        portal_frame_ancestors: vec!["https://admin.example.com".into()],
        ..Options::default()
    })
    .await;
    let r = app.http.get(app.url("/portal/")).send().await.unwrap();
    let csp = header(&r, "content-security-policy");
    assert!(
        csp.contains("frame-ancestors https://admin.example.com"),
        "{csp}"
    );
    assert_eq!(
        header(&r, "x-frame-options"),
        "",
        "no DENY when framing is allowed"
    );
}

/// The main secret of the servers these tests start as a child process.
pub const SECRET: &str = "security-test-secret-0123456789abcdef";

/// `herald serve` on `db`, logging at `rust_log` to a file in `dir`.
pub async fn spawn_binary(
    db: &TestDatabase,
    dir: &std::path::Path,
    rust_log: &str,
) -> HeraldProcess {
    spawn_binary_with(db, dir, rust_log, &[]).await
}

/// [`spawn_binary`] with more environment (which may override the secret).
pub async fn spawn_binary_with(
    db: &TestDatabase,
    dir: &std::path::Path,
    rust_log: &str,
    env: &[(&str, &str)],
) -> HeraldProcess {
    let mut cmd = herald(db);
    cmd.arg("serve")
        .env("RUST_LOG", rust_log)
        .envs(env.iter().copied());
    let n = LOGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    HeraldProcess::spawn(cmd, dir.join(format!("herald-{n}.log"))).await
}

static LOGS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The `herald` binary on `db` with [`SECRET`].
pub fn herald(db: &TestDatabase) -> tokio::process::Command {
    herald_command(db.url(), SECRET)
}

/// Runs a `herald` command on `db` to its end; returns its stdout, or fails
/// the test with its stderr.
pub async fn run(db: &TestDatabase, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = herald(db);
    cmd.args(args).envs(env.iter().copied());
    herald_stdout(cmd).await
}

#[tokio::test]
async fn deleting_an_application_under_its_deliveries_ends_them_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::for_suite(dir.path());
    let server = spawn_binary(&db, dir.path(), "info").await;
    let token = herald::auth::Keys::new(SECRET.as_bytes()).org_token(DEFAULT_ORG);
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(server.url(path))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let receiver = Receiver::start().await;
    receiver.set_default(
        "/slow",
        Reply::status(200).delay(Duration::from_millis(1500)),
    );
    post("/api/v1/app", json!({"name": "Doomed", "uid": "doomed"}))
        .await
        .unwrap();
    post(
        "/api/v1/app/doomed/endpoint",
        json!({"url": receiver.url("/slow")}),
    )
    .await
    .unwrap();
    for _ in 0..20 {
        let r = post(
            "/api/v1/app/doomed/msg",
            json!({"eventType": "a.b", "payload": {}}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    // Deliveries are in flight (the receiver holds each for 1.5 s) ...
    receiver.wait_for("/slow", 1, Duration::from_secs(20)).await;
    let r = http
        .delete(server.url("/api/v1/app/doomed"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // ... and end after the application is gone.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log = read(&server.log);
    let in_flight = receiver.received_on("/slow").len();
    assert!(in_flight >= 1, "some deliveries were in flight");
    assert!(
        !log.contains("ERROR") && !log.contains("database unavailable"),
        "{in_flight} deliveries ended after the delete; the log says:\n{log}"
    );
}
