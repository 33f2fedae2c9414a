//! Tenant isolation over HTTP, route by route: another organisation's token
//! finds none of this organisation's data, and an application's token finds
//! none of another application's (attempts, resend, recover, rotate, headers,
//! and its endpoints reached through its own path) and may not write event
//! types. Every refusal is checked to have changed nothing.

use std::time::Duration;

use herald_core::schedule::RetrySchedule;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{Options, Receiver, Reply, Scope, TestApp};

/// Application B of the default organisation: an endpoint whose receiver
/// always fails (so Recover and Resend would send again), one message with
/// its failed attempt, and an event type. Application A beside it.
struct Tenants {
    app: TestApp,
    receiver: Receiver,
    a: String,
    b: String,
    ep_b: String,
    msg_b: String,
    attempt_b: String,
}

impl Tenants {
    async fn new() -> Tenants {
        let app = TestApp::spawn_with(Options {
            retry_schedule: RetrySchedule::from_delays(vec![]).unwrap(),
            ..Options::default()
        })
        .await;
        let receiver = Receiver::start().await;
        receiver.set_default("/b", Reply::status(500));
        let a = app.create_app("A").await;
        let b = app.create_app("B").await;
        let ep_b = app
            .create_endpoint(
                &b,
                json!({"url": receiver.url("/b"), "headers": {"X-B": "1"}}),
            )
            .await;
        let (status, et) = app
            .post_json(
                "/api/v1/event-type",
                json!({"name": "b.happened", "description": "d", "schemas": {"1": {
                    "type": "object", "examples": [{"secret": "example"}]}}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{et}");
        let msg_b = app
            .send(
                &b,
                json!({"eventType": "b.happened", "payload": {"secret": "of B"}}),
            )
            .await;
        let attempts = app
            .eventually(Duration::from_secs(20), "B's attempt", || async {
                let list = app.attempts(&b, &msg_b).await;
                (!list.is_empty()).then_some(list)
            })
            .await;
        let attempt_b = attempts[0]["id"].as_str().unwrap().to_string();
        Tenants {
            app,
            receiver,
            a,
            b,
            ep_b,
            msg_b,
            attempt_b,
        }
    }

    /// Everything of B's that a request could change.
    async fn state(&self) -> Value {
        let (b, ep) = (&self.b, &self.ep_b);
        let mut state = Vec::new();
        for path in [
            "/api/v1/app".to_string(),
            "/api/v1/event-type".to_string(),
            format!("/api/v1/app/{b}/endpoint"),
            format!("/api/v1/app/{b}/endpoint/{ep}/secret"),
            format!("/api/v1/app/{b}/endpoint/{ep}/headers"),
            format!("/api/v1/app/{b}/msg"),
            format!("/api/v1/app/{b}/attempt/msg/{}", self.msg_b),
        ] {
            let (status, body) = self.app.get_json(&path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            state.push(body);
        }
        state.push(json!(self.receiver.received().len()));
        Value::Array(state)
    }

    /// Calls every route in `routes` with `token`, expecting `want` each time,
    /// then checks that B is as it was.
    async fn refused(
        &self,
        token: &str,
        routes: &[(Method, String, Option<Value>)],
        want: StatusCode,
    ) {
        let before = self.state().await;
        for (method, path, body) in routes {
            let (status, out) = self
                .app
                .call(Some(token), method.clone(), path, body.clone())
                .await;
            assert_eq!(status, want, "{method} {path}: {out}");
        }
        // A resend or recover let through would have reached the receiver.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(self.state().await, before);
    }

    /// The control: the same routes with the organisation's own token
    /// succeed, so each refusal above was about the token, not the route.
    async fn allowed(&self, routes: &[(Method, String, Option<Value>)]) {
        for (method, path, body) in routes {
            let (status, out) = self
                .app
                .call(Some(&self.app.token), method.clone(), path, body.clone())
                .await;
            assert!(status.is_success(), "{method} {path}: {status} {out}");
        }
    }
}

/// B's routes below the application, with bodies that would succeed.
fn routes_below_app(
    app_path: &str,
    ep: &str,
    msg: &str,
    attempt: &str,
) -> Vec<(Method, String, Option<Value>)> {
    let e = format!("{app_path}/endpoint/{ep}");
    let m = format!("{app_path}/msg/{msg}");
    let since = json!({"since": chrono::Utc::now() - chrono::Duration::days(1)});
    vec![
        (Method::GET, e.clone(), None),
        (
            Method::PATCH,
            e.clone(),
            Some(json!({"description": "taken"})),
        ),
        (
            Method::PUT,
            e.clone(),
            Some(json!({"url": "https://example.com/taken"})),
        ),
        (Method::GET, format!("{e}/secret"), None),
        (Method::POST, format!("{e}/secret/rotate"), Some(json!({}))),
        (Method::GET, format!("{e}/headers"), None),
        (
            Method::PUT,
            format!("{e}/headers"),
            Some(json!({"headers": {"X-Taken": "1"}})),
        ),
        (
            Method::PATCH,
            format!("{e}/headers"),
            Some(json!({"headers": {"X-Taken": "1"}})),
        ),
        (Method::GET, format!("{e}/stats"), None),
        (
            Method::POST,
            format!("{e}/send-example"),
            Some(json!({"eventType": "b.happened"})),
        ),
        (Method::POST, format!("{e}/recover"), Some(since)),
        (Method::GET, format!("{e}/msg"), None),
        (Method::GET, m.clone(), None),
        (Method::GET, format!("{m}/endpoint"), None),
        (
            Method::POST,
            format!("{m}/endpoint/{ep}/resend"),
            Some(json!({})),
        ),
        (Method::GET, format!("{m}/attempt/{attempt}"), None),
        (
            Method::GET,
            format!("{app_path}/attempt/endpoint/{ep}"),
            None,
        ),
        (Method::GET, format!("{app_path}/attempt/msg/{msg}"), None),
        (Method::DELETE, e, None),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn another_organisations_token_finds_nothing_of_this_one() {
    let t = Tenants::new().await;
    let other = t.app.token_for(Scope::Org("org_other"));
    let b_path = format!("/api/v1/app/{}", t.b);
    let mut routes = routes_below_app(&b_path, &t.ep_b, &t.msg_b, &t.attempt_b);
    routes.extend([
        (Method::GET, b_path.clone(), None),
        (
            Method::PATCH,
            b_path.clone(),
            Some(json!({"name": "taken"})),
        ),
        (Method::DELETE, b_path.clone(), None),
        (Method::GET, format!("{b_path}/endpoint"), None),
        (
            Method::POST,
            format!("{b_path}/endpoint"),
            Some(json!({"url": "https://example.com/x"})),
        ),
        (Method::GET, format!("{b_path}/msg"), None),
        (
            Method::POST,
            format!("{b_path}/msg"),
            Some(json!({"eventType": "x", "payload": {}})),
        ),
        (
            Method::POST,
            format!("/api/v1/auth/app-portal-access/{}", t.b),
            Some(json!({})),
        ),
        (
            Method::GET,
            "/api/v1/event-type/b.happened".to_string(),
            None,
        ),
    ]);
    t.refused(&other, &routes, StatusCode::NOT_FOUND).await;
    t.allowed(&routes_below_app(&b_path, &t.ep_b, &t.msg_b, &t.attempt_b))
        .await;
    // Its own lists are empty.
    for path in ["/api/v1/app", "/api/v1/event-type"] {
        let (status, body) = t.app.call(Some(&other), Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"], json!([]), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_token_reaches_nothing_of_another_application() {
    let t = Tenants::new().await;
    let token_a = t.app.app_token(&t.a);
    let (b_path, a_path) = (
        format!("/api/v1/app/{}", t.b),
        format!("/api/v1/app/{}", t.a),
    );
    // B's resources under B's path, and under A's own path.
    let mut routes = routes_below_app(&b_path, &t.ep_b, &t.msg_b, &t.attempt_b);
    routes.extend(routes_below_app(&a_path, &t.ep_b, &t.msg_b, &t.attempt_b));
    t.refused(&token_a, &routes, StatusCode::NOT_FOUND).await;
    t.allowed(&routes_below_app(&b_path, &t.ep_b, &t.msg_b, &t.attempt_b))
        .await;
}

/// An application's own token reads its application but may not change or
/// delete it (Svix: organisation-level only).
#[tokio::test(flavor = "multi_thread")]
async fn an_app_token_may_not_change_its_own_application() {
    let t = Tenants::new().await;
    let token_a = t.app.app_token(&t.a);
    let a_path = format!("/api/v1/app/{}", t.a);
    let (status, body) = t.app.call(Some(&token_a), Method::GET, &a_path, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let routes = [
        (
            Method::PUT,
            a_path.clone(),
            Some(json!({"name": "renamed by its portal"})),
        ),
        (
            Method::PATCH,
            a_path.clone(),
            Some(json!({"name": "renamed by its portal"})),
        ),
        (Method::DELETE, a_path.clone(), None),
    ];
    t.refused(&token_a, &routes, StatusCode::FORBIDDEN).await;
    let (_, body) = t.app.get_json(&a_path).await;
    assert_ne!(body["name"], "renamed by its portal");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_token_may_not_write_event_types() {
    let t = Tenants::new().await;
    let token_a = t.app.app_token(&t.a);
    let et = "/api/v1/event-type/b.happened".to_string();
    let routes = [
        (
            Method::POST,
            "/api/v1/event-type".to_string(),
            Some(json!({"name": "a.new", "description": "d"})),
        ),
        (
            Method::PUT,
            et.clone(),
            Some(json!({"description": "taken"})),
        ),
        (
            Method::PATCH,
            et.clone(),
            Some(json!({"description": "taken"})),
        ),
        (Method::DELETE, et, None),
    ];
    t.refused(&token_a, &routes, StatusCode::FORBIDDEN).await;
    t.allowed(&routes).await;
    // Reading them is allowed: messages need their names.
    let (status, body) = t
        .app
        .call(Some(&token_a), Method::GET, "/api/v1/event-type", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"].as_array().unwrap().len(),
        1,
        "a.new, b.happened archived"
    );
}
