//! Transformations and content filters, end to end: set through the official
//! Svix SDK (or Herald's additive fields), run by the worker before signing,
//! and seen by a real receiver on loopback, which verifies the signature over
//! the bytes it got.

use std::time::{Duration, Instant};

use js_option::JsOption;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use svix::models::{EndpointIn, EndpointTransformationPatch};

use crate::support::{Options, Received, Receiver, TestApp};

const WAIT: Duration = Duration::from_secs(30);

fn verifies(secret: &str, got: &Received) -> bool {
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(&got.body, &got.headers)
        .is_ok()
}

fn patch_code(code: &str, enabled: bool) -> EndpointTransformationPatch {
    EndpointTransformationPatch {
        code: JsOption::Some(code.into()),
        enabled: Some(enabled),
        variables: JsOption::Undefined,
    }
}

/// Polls the message's attempts until one exists; returns the newest.
async fn first_attempt(app: &TestApp, app_id: &str, msg_id: &str) -> Value {
    app.eventually(WAIT, "an attempt", || async {
        app.attempts(app_id, msg_id).await.last().cloned()
    })
    .await
}

fn transformation_path(app_id: &str, ep: &str) -> String {
    format!("/api/v1/app/{app_id}/endpoint/{ep}/transformation")
}

const RESHAPE: &str = r#"
function handler(webhook) {
  webhook.payload = { text: `${webhook.payload.member.firstName} joined`, type: webhook.eventType };
  webhook.url = webhook.url.replace("/hook", "/moved");
  webhook.method = "PUT";
  return webhook;
}"#;

#[tokio::test]
async fn the_sdk_sets_reads_and_disables_a_transformation_and_the_receiver_gets_signed_output() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let svix = app.svix();
    let app_id = app.create_app("Design Club").await;
    let ep = svix
        .endpoint()
        .create(app_id.clone(), EndpointIn::new(receiver.url("/hook")), None)
        .await
        .unwrap();
    let secret = app.endpoint_secret(&app_id, &ep.id).await;

    let before = svix
        .endpoint()
        .transformation()
        .get(app_id.clone(), ep.id.clone())
        .await
        .unwrap();
    assert_eq!((before.code, before.enabled), (None, Some(false)));

    svix.endpoint()
        .transformation()
        .patch(app_id.clone(), ep.id.clone(), patch_code(RESHAPE, true))
        .await
        .unwrap();
    let set = svix
        .endpoint()
        .transformation()
        .get(app_id.clone(), ep.id.clone())
        .await
        .unwrap();
    assert_eq!(set.code.as_deref(), Some(RESHAPE));
    assert_eq!(set.enabled, Some(true));
    assert!(set.updated_at.is_some());

    let msg = app
        .send(
            &app_id,
            json!({"eventType": "member.created", "payload": {"member": {"firstName": "Ada"}}}),
        )
        .await;
    let got = receiver.wait_for("/moved", 1, WAIT).await;
    assert_eq!(got[0].method, Method::PUT);
    assert_eq!(
        got[0].json(),
        json!({"text": "Ada joined", "type": "member.created"})
    );
    assert!(verifies(&secret, &got[0]), "signature over the sent bytes");
    assert_eq!(got[0].header("webhook-id"), msg);
    let attempt = first_attempt(&app, &app_id, &msg).await;
    assert_eq!(attempt["url"], receiver.url("/moved"));
    assert_eq!(attempt["status"], 0);

    // Disabled: the code is kept, and messages go out as sent.
    svix.endpoint()
        .transformation()
        .patch(
            app_id.clone(),
            ep.id.clone(),
            EndpointTransformationPatch {
                enabled: Some(false),
                ..EndpointTransformationPatch::new()
            },
        )
        .await
        .unwrap();
    let off = svix
        .endpoint()
        .transformation()
        .get(app_id.clone(), ep.id.clone())
        .await
        .unwrap();
    assert_eq!(
        (off.code.as_deref(), off.enabled),
        (Some(RESHAPE), Some(false))
    );
    app.send(
        &app_id,
        json!({"eventType": "member.created", "payload": {"member": {"firstName": "Grace"}}}),
    )
    .await;
    let got = receiver.wait_for("/hook", 1, WAIT).await;
    assert_eq!(got[0].method, Method::POST);
    assert_eq!(got[0].json(), json!({"member": {"firstName": "Grace"}}));
    app.stop().await;
}

#[tokio::test]
async fn code_that_does_not_compile_is_refused_with_the_compilers_message() {
    let app = TestApp::spawn().await;
    let app_id = app.create_app("Design Club").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": "http://127.0.0.1:9/hook"}))
        .await;
    let path = transformation_path(&app_id, &ep);

    let (status, body) = app
        .call(
            Some(&app.token),
            Method::PATCH,
            &path,
            Some(json!({"code": "function handler(webhook) {\n  return webhook +;\n}", "enabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "code"]));
    let msg = body["detail"][0]["msg"].as_str().unwrap();
    assert!(msg.contains("does not compile"), "{msg}");
    assert!(msg.contains("line 2"), "{msg}");

    let (status, body) = app
        .call(
            Some(&app.token),
            Method::PATCH,
            &path,
            Some(json!({"code": "const x = 1; // no handler here"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("handler"), "{body}");

    // Enabling without code is refused too; nothing was saved.
    let (status, body) = app
        .call(
            Some(&app.token),
            Method::PATCH,
            &path,
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "enabled"]));
    let (status, body) = app.get_json(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["code"], Value::Null);
    assert_eq!(body["enabled"], false);
    app.stop().await;
}

#[tokio::test]
async fn cancel_sends_nothing_and_the_log_says_so() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Design Club").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/hook")}))
        .await;
    let code = "function handler(webhook) {\n  webhook.cancel = webhook.payload.quiet === true;\n  return webhook;\n}";
    let (status, body) = app
        .call(
            Some(&app.token),
            Method::PATCH,
            &transformation_path(&app_id, &ep),
            Some(json!({"code": code, "enabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let quiet = app
        .send(
            &app_id,
            json!({"eventType": "a", "payload": {"quiet": true}}),
        )
        .await;
    let loud = app
        .send(
            &app_id,
            json!({"eventType": "a", "payload": {"quiet": false}}),
        )
        .await;
    let got = receiver.wait_for("/hook", 1, WAIT).await;
    let attempt = first_attempt(&app, &app_id, &quiet).await;
    assert_eq!(attempt["skipped"], "cancelled", "{attempt}");
    assert_eq!(attempt["status"], 0, "a cancel is not a failure");
    assert!(attempt["response"].as_str().unwrap().contains("cancel"));
    // Only the loud one arrived, and the quiet one is finished, not retried.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let got_all = receiver.received_on("/hook");
    assert_eq!(got_all.len(), 1);
    assert_eq!(got[0].header("webhook-id"), loud);
    assert_eq!(app.attempts(&app_id, &quiet).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn failing_transformations_stop_within_their_limits_and_others_keep_going() {
    let app = TestApp::spawn_with(Options {
        transformation_limits: herald_transform::Limits {
            time: Duration::from_millis(300),
            memory_bytes: 8 * 1024 * 1024,
        },
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Design Club").await;
    let cases = [
        (
            "throws",
            "function handler(webhook) {\n  const m = webhook.payload.member;\n  return m.missing.name;\n}",
            "TypeError",
        ),
        (
            "endless",
            "function handler(webhook) {\n  while (true) {}\n}",
            "ran longer than 300 ms",
        ),
        (
            "hungry",
            // One allocation past the limit: refused at once, however
            // busy the machine (a loop of small ones may run out of time
            // first).
            "function handler(webhook) {\n  const hoard = new ArrayBuffer(64 << 20);\n  return webhook;\n}",
            "more than 8 MiB of memory",
        ),
        (
            "garbage",
            "function handler(webhook) {\n  return 42;\n}",
            "unusable result",
        ),
    ];
    for (name, code, _) in &cases {
        let ep = app
            .create_endpoint(
                &app_id,
                json!({"url": receiver.url(&format!("/{name}")), "filterTypes": [name]}),
            )
            .await;
        let (status, body) = app
            .call(
                Some(&app.token),
                Method::PATCH,
                &transformation_path(&app_id, &ep),
                Some(json!({"code": code, "enabled": true})),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{name}: {body}");
    }
    // A healthy endpoint, with a transformation of its own, beside them.
    let healthy = app
        .create_endpoint(
            &app_id,
            json!({"url": receiver.url("/healthy"), "filterTypes": ["fine"]}),
        )
        .await;
    let (status, _) = app
        .call(
            Some(&app.token),
            Method::PATCH,
            &transformation_path(&app_id, &healthy),
            Some(json!({"code": "function handler(webhook) { webhook.payload.seen = true; return webhook; }", "enabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let mut failing = Vec::new();
    for (name, _, _) in &cases {
        let msg = app
            .send(
                &app_id,
                json!({"eventType": name, "payload": {"member": {}}}),
            )
            .await;
        failing.push(msg);
    }
    let started = Instant::now();
    for i in 0..20 {
        app.send(&app_id, json!({"eventType": "fine", "payload": {"n": i}}))
            .await;
    }
    let got = receiver.wait_for("/healthy", 20, WAIT).await;
    assert!(got.iter().all(|r| r.json()["seen"] == true));
    let healthy_took = started.elapsed();

    for ((name, _, expected), msg) in cases.iter().zip(&failing) {
        let attempt = first_attempt(&app, &app_id, msg).await;
        let response = attempt["response"].as_str().unwrap();
        assert_eq!(attempt["status"], 2, "{name}: {attempt}");
        assert_eq!(attempt["responseStatusCode"], 0, "{name}");
        assert!(
            response.contains(expected),
            "{name}: {response:?} should say {expected:?}"
        );
        assert!(receiver.received_on(&format!("/{name}")).is_empty());
    }
    let thrown = first_attempt(&app, &app_id, &failing[0]).await;
    assert!(
        thrown["response"].as_str().unwrap().contains("line 3"),
        "{thrown}"
    );
    // The failures are retried on the schedule (the message is kept), and the
    // server still answers.
    app.eventually(WAIT, "the throwing endpoint's retries", || async {
        (app.attempts(&app_id, &failing[0]).await.len() >= 2).then_some(())
    })
    .await;
    let (status, _) = app.get_json("/api/v1/health").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    println!(
        "healthy endpoint: 20 transformed deliveries in {healthy_took:?} beside the failing ones"
    );
    app.stop().await;
}

#[tokio::test]
async fn content_filters_skip_messages_and_log_them_as_filtered() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Design Club").await;

    // A rule without its value is refused, with where it is.
    let (status, body) = app
        .post_json(
            &format!("/api/v1/app/{app_id}/endpoint"),
            json!({"url": receiver.url("/hook"), "filters": [
                {"field": "member.status", "op": "equals", "value": "active"},
                {"field": "member.email", "op": "contains"}
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "filters", "1"]));

    let rules = json!([{"field": "member.status", "op": "equals", "value": "active"}]);
    let (status, ep) = app
        .post_json(
            &format!("/api/v1/app/{app_id}/endpoint"),
            json!({"url": receiver.url("/hook"), "filters": rules}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ep}");
    assert_eq!(ep["filters"], rules);

    let skipped = app
        .send(
            &app_id,
            json!({"eventType": "member.updated", "payload": {"member": {"status": "banned"}}}),
        )
        .await;
    let sent = app
        .send(
            &app_id,
            json!({"eventType": "member.updated", "payload": {"member": {"status": "active"}}}),
        )
        .await;
    let got = receiver.wait_for("/hook", 1, WAIT).await;
    assert_eq!(got[0].header("webhook-id"), sent);
    let attempt = first_attempt(&app, &app_id, &skipped).await;
    assert_eq!(attempt["skipped"], "filtered", "{attempt}");
    assert_eq!(attempt["status"], 0);
    assert!(
        attempt["response"]
            .as_str()
            .unwrap()
            .contains(r#"member.status equals "active""#),
        "{attempt}"
    );

    // PATCH null removes the filter; the next message goes out.
    let (status, body) = app
        .call(
            Some(&app.token),
            Method::PATCH,
            &format!(
                "/api/v1/app/{app_id}/endpoint/{}",
                ep["id"].as_str().unwrap()
            ),
            Some(json!({"filters": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["filters"], json!([]));
    app.send(
        &app_id,
        json!({"eventType": "member.updated", "payload": {"member": {"status": "banned"}}}),
    )
    .await;
    receiver.wait_for("/hook", 2, WAIT).await;
    app.stop().await;
}

#[tokio::test]
async fn simulate_answers_what_would_be_sent_and_sends_nothing() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Design Club").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/hook")}))
        .await;
    let path = format!("{}/simulate", transformation_path(&app_id, &ep));
    let (status, out) = app
        .post_json(
            &path,
            json!({"code": RESHAPE, "eventType": "member.created",
                   "payload": {"member": {"firstName": "Ada"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["url"], receiver.url("/moved"));
    assert_eq!(out["method"], "PUT");
    assert_eq!(out["cancel"], false);
    let payload: Value = serde_json::from_str(out["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload["text"], "Ada joined");

    let (status, out) = app
        .post_json(
            &path,
            json!({"code": "function handler(webhook) { throw new Error('nope'); }",
                   "eventType": "a", "payload": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
    assert!(out.to_string().contains("Error: nope"), "{out}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.received().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_ready_made_format_turns_catalog_events_into_a_slack_message_and_test_sends_it() {
    let app = TestApp::seeded().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Design Club").await;
    let ep = app
        .create_endpoint(
            &app_id,
            json!({"url": receiver.url("/slack"), "dateFormat": "iso8601"}),
        )
        .await;
    let path = transformation_path(&app_id, &ep);
    let (status, body) = app
        .call(
            Some(&app.token),
            Method::PATCH,
            &path,
            Some(json!({"format": "fax"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.to_string().contains("slack"), "{body}");
    let (status, body) = app
        .call(
            Some(&app.token),
            Method::PATCH,
            &path,
            Some(json!({"format": "slack", "enabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, t) = app.get_json(&path).await;
    assert!(t["code"]
        .as_str()
        .unwrap()
        .contains("function handler(webhook)"));

    // The Test button sends the catalog's example through the format.
    let (status, out) = app
        .post_json(
            &format!("/api/v1/app/{app_id}/endpoint/{ep}/send-example"),
            json!({"eventType": "member.created"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let got = receiver.wait_for("/slack", 1, WAIT).await;
    let body = got[0].json();
    let text = body["text"].as_str().unwrap_or_default();
    assert!(!text.is_empty() && body["blocks"].is_array(), "{body}");
    assert!(text.contains("joined"), "{text}");
    assert_eq!(out["attempt"]["status"], 0, "{out}");
    app.stop().await;
}
