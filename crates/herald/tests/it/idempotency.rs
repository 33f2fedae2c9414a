//! `idempotency-key` on every POST: the first response is kept and replayed
//! (marked `idempotent-replayed: true`) to retries with the same key, by the
//! same caller on the same path; a request still running answers 409; a 5xx
//! is not kept, so a retry runs again; keys are 1 to 256 characters.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{split, Receiver, Reply, TestApp};

/// A POST with `token` and `key`; the status, body and whether it was marked
/// as a replay.
async fn post_keyed(
    app: &TestApp,
    token: &str,
    key: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value, bool) {
    let r = app
        .http
        .request(Method::POST, app.url(path))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let replayed = match r.headers().get("idempotent-replayed") {
        None => false,
        Some(v) => {
            assert_eq!(v, "true");
            true
        }
    };
    let (status, body) = split(r).await;
    (status, body, replayed)
}

async fn count(app: &TestApp, path: &str) -> usize {
    let (status, body) = app.get_json(path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_still_in_flight_answers_409_and_then_replays_the_first_answer() {
    let app = TestApp::seeded().await;
    let receiver = Receiver::start().await;
    receiver.set_default("/slow", Reply::status(200).delay(Duration::from_secs(2)));
    let app_id = app.create_app("Idem").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/slow")}))
        .await;
    // The Test button waits for the receiver: a request that takes a while.
    let path = format!("/api/v1/app/{app_id}/endpoint/{ep}/send-example");
    let body = json!({"eventType": "member.created"});
    let first = {
        let (app, path, body) = (&app, path.clone(), body.clone());
        async move { post_keyed(app, &app.token, "test-1", &path, body).await }
    };
    let second = async {
        receiver.wait_for("/slow", 1, Duration::from_secs(20)).await;
        post_keyed(&app, &app.token, "test-1", &path, body.clone()).await
    };
    let ((s1, b1, r1), (s2, b2, r2)) = tokio::join!(first, second);
    assert_eq!((s1, r1), (StatusCode::OK, false), "{b1}");
    assert_eq!((s2, r2), (StatusCode::CONFLICT, false), "{b2}");
    assert_eq!(b2["code"], "conflict");
    assert!(
        b2["detail"].as_str().unwrap().contains("in progress"),
        "{b2}"
    );

    // Once it is done, the same key gets the first answer, and nothing is sent.
    let (s3, b3, r3) = post_keyed(&app, &app.token, "test-1", &path, body).await;
    assert_eq!((s3, r3), (StatusCode::OK, true), "{b3}");
    assert_eq!(b3, b1);
    assert_eq!(receiver.received_on("/slow").len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_error_is_not_kept_and_the_retry_runs_again() {
    let app = TestApp::spawn().await;
    let app_id = app.create_app("Idem").await;
    let path = format!("/api/v1/app/{app_id}/msg");
    let body = json!({"eventType": "fail.me", "payload": {}});
    // A fault the API cannot cause: the database refuses this message.
    let (install, remove) = if app.db.is_postgres() {
        (
            "CREATE FUNCTION fail_me() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN IF NEW.event_type = 'fail.me' THEN RAISE EXCEPTION 'injected'; END IF; \
             RETURN NEW; END $$; \
             CREATE TRIGGER fail_me BEFORE INSERT ON message FOR EACH ROW EXECUTE FUNCTION fail_me();",
            "DROP TRIGGER fail_me ON message; DROP FUNCTION fail_me();",
        )
    } else {
        (
            "CREATE TRIGGER fail_me BEFORE INSERT ON message WHEN NEW.event_type = 'fail.me' \
             BEGIN SELECT RAISE(ABORT, 'injected'); END;",
            "DROP TRIGGER fail_me;",
        )
    };
    app.db.execute(install);
    let (s, b, replayed) = post_keyed(&app, &app.token, "k-5xx", &path, body.clone()).await;
    assert!(s.is_server_error(), "{s}: {b}");
    assert!(!replayed);
    app.db.execute(remove);

    let (s, first, replayed) = post_keyed(&app, &app.token, "k-5xx", &path, body.clone()).await;
    assert_eq!((s, replayed), (StatusCode::ACCEPTED, false), "{first}");
    let (s, again, replayed) = post_keyed(&app, &app.token, "k-5xx", &path, body).await;
    assert_eq!((s, replayed), (StatusCode::ACCEPTED, true), "{again}");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(count(&app, &path).await, 1);
    app.stop().await;
}

#[tokio::test]
async fn keys_are_one_to_256_characters() {
    let app = TestApp::spawn().await;
    let app_id = app.create_app("Idem").await;
    let path = format!("/api/v1/app/{app_id}/msg");
    let body = json!({"eventType": "t.key", "payload": {}});
    for bad in [String::new(), "k".repeat(257)] {
        let (s, b, _) = post_keyed(&app, &app.token, &bad, &path, body.clone()).await;
        assert_eq!(
            s,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{} chars: {b}",
            bad.len()
        );
        assert_eq!(b["detail"][0]["loc"], json!(["header", "idempotency-key"]));
    }
    assert_eq!(count(&app, &path).await, 0, "a refused key stores nothing");
    let longest = "k".repeat(256);
    for replay in [false, true] {
        let (s, b, replayed) = post_keyed(&app, &app.token, &longest, &path, body.clone()).await;
        assert_eq!((s, replayed), (StatusCode::ACCEPTED, replay), "{b}");
    }
    assert_eq!(count(&app, &path).await, 1);
    app.stop().await;
}

#[tokio::test]
async fn keys_are_scoped_to_the_token_and_the_path() {
    let app = TestApp::spawn().await;
    let a = app.create_app("A").await;
    let b = app.create_app("B").await;
    let scoped = app.app_token(&a);
    let body = json!({"eventType": "t.scope", "payload": {}});
    let (to_a, to_b) = (
        format!("/api/v1/app/{a}/msg"),
        format!("/api/v1/app/{b}/msg"),
    );

    let (_, first, _) = post_keyed(&app, &app.token, "same", &to_a, body.clone()).await;
    // Another caller (an app token) with the same key and path: its own request.
    let (s, by_app, replayed) = post_keyed(&app, &scoped, "same", &to_a, body.clone()).await;
    assert_eq!((s, replayed), (StatusCode::ACCEPTED, false), "{by_app}");
    assert_ne!(by_app["id"], first["id"]);
    // The same caller and key on another path: its own request too.
    let (s, on_b, replayed) = post_keyed(&app, &app.token, "same", &to_b, body.clone()).await;
    assert_eq!((s, replayed), (StatusCode::ACCEPTED, false), "{on_b}");
    // The same caller, key and path: the first answer, whatever the body.
    let other_body = json!({"eventType": "t.other", "payload": {"x": 1}});
    let (s, again, replayed) = post_keyed(&app, &app.token, "same", &to_a, other_body).await;
    assert_eq!((s, replayed), (StatusCode::ACCEPTED, true), "{again}");
    assert_eq!(again, first);
    assert_eq!(count(&app, &to_a).await, 2);
    assert_eq!(count(&app, &to_b).await, 1);
    app.stop().await;
}

#[tokio::test]
async fn every_post_replays_not_only_messages() {
    let app = TestApp::spawn().await;
    let app_id = app.create_app("Idem").await;
    let cases = [
        ("/api/v1/app".to_string(), json!({"name": "Twice"})),
        (
            format!("/api/v1/app/{app_id}/endpoint"),
            json!({"url": "https://example.com/hook"}),
        ),
        (
            "/api/v1/event-type".to_string(),
            json!({"name": "t.kept", "description": "d"}),
        ),
    ];
    for (path, body) in &cases {
        let (s, first, replayed) =
            post_keyed(&app, &app.token, "create-1", path, body.clone()).await;
        assert_eq!(
            (s, replayed),
            (StatusCode::CREATED, false),
            "{path}: {first}"
        );
        let (s, again, replayed) =
            post_keyed(&app, &app.token, "create-1", path, body.clone()).await;
        assert_eq!(
            (s, replayed),
            (StatusCode::CREATED, true),
            "{path}: {again}"
        );
        assert_eq!(again, first, "{path}");
    }
    assert_eq!(count(&app, "/api/v1/app").await, 2, "Idem and one Twice");
    assert_eq!(count(&app, &cases[1].0).await, 1);
    assert_eq!(count(&app, "/api/v1/event-type").await, 1);
    // Without the header, the same create runs again.
    let (s, _) = app.post_json("/api/v1/app", json!({"name": "Twice"})).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(count(&app, "/api/v1/app").await, 3);
    app.stop().await;
}
