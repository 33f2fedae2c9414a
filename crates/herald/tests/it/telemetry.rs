//! Traces over OTLP: the real binary (a global subscriber cannot be installed
//! per in-process test) with `HERALD_OTLP_ENDPOINT` pointing at a recording
//! collector on loopback; the export is decoded as OTLP protobuf.

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::security::{spawn_binary_with, SECRET};
use crate::support::{read, split, HeraldProcess, Receiver, TestDatabase};

/// A string in the payload and in the endpoint URL's query, which no span
/// may carry.
const MARKER: &str = "payload-marker-7c1e";
const QUERY_SECRET: &str = "query-s3cret-91ab";

/// An exported span's attributes, as text.
fn attributes(attrs: &[KeyValue]) -> HashMap<String, String> {
    attrs
        .iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                Some(any_value::Value::IntValue(i)) => i.to_string(),
                Some(any_value::Value::BoolValue(b)) => b.to_string(),
                Some(any_value::Value::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

/// An application, an endpoint on `receiver`, and one message to it that is
/// delivered; returns the message id, the endpoint id, and the endpoint's
/// secret and the API token (one a line).
async fn deliver_one(server: &HeraldProcess, receiver: &Receiver) -> (String, String, String) {
    let token = herald::auth::Keys::new(SECRET.as_bytes()).org_token("org_herald");
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(server.url(path))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let (s, app) = split(
        post(
            "/api/v1/app",
            json!({"name": "Spot", "uid": "spot", "metadata": {"k": MARKER}}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{app}");
    let url = receiver.url(&format!("/hook?token={QUERY_SECRET}"));
    let (s, ep) = split(
        post("/api/v1/app/spot/endpoint", json!({"url": url}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{ep}");
    let ep_id = ep["id"].as_str().unwrap().to_string();
    let (s, secret) = split(
        http.get(server.url(&format!("/api/v1/app/spot/endpoint/{ep_id}/secret")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{secret}");
    let secret = secret["key"].as_str().unwrap().to_string();
    let (s, msg) = split(
        post(
            "/api/v1/app/spot/msg",
            json!({"eventType": "spot.updated", "payload": {"marker": MARKER}}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{msg}");
    receiver.wait_for("/hook", 1, Duration::from_secs(20)).await;
    let msg_id = msg["id"].as_str().unwrap().to_string();
    // Secrets the export must not carry: the signing key, the token.
    assert!(secret.starts_with("whsec_"));
    (msg_id, ep_id, format!("{secret}\n{token}"))
}

/// SIGTERM and a clean exit: the graceful shutdown flushes the spans.
async fn stop(mut server: HeraldProcess) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), server.child.wait())
        .await
        .unwrap_or_else(|_| panic!("no exit after SIGTERM; log:\n{}", read(&server.log)))
        .unwrap();
    assert!(exit.success(), "{exit:?}; log:\n{}", read(&server.log));
}

#[tokio::test]
async fn spans_of_the_accepted_message_and_its_attempt_go_to_the_otlp_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::for_suite(dir.path());
    let collector = Receiver::start().await;
    let receiver = Receiver::start().await;
    let endpoint = collector.url("");
    let server = spawn_binary_with(
        &db,
        dir.path(),
        "info",
        &[
            ("HERALD_OTLP_ENDPOINT", endpoint.as_str()),
            ("HERALD_OTLP_SERVICE_NAME", "herald-under-test"),
        ],
    )
    .await;
    let (msg_id, ep_id, secrets) = deliver_one(&server, &receiver).await;
    let log = server.log.clone();
    stop(server).await;

    let posts = collector.received();
    assert!(!posts.is_empty(), "nothing exported; log:\n{}", read(&log));
    let mut spans: Vec<(HashMap<String, String>, Span)> = Vec::new();
    for post in &posts {
        assert_eq!(post.path, "/v1/traces");
        assert_eq!(post.header("content-type"), "application/x-protobuf");
        let raw = String::from_utf8_lossy(&post.body);
        for secret in secrets.lines().chain([MARKER, QUERY_SECRET, "/hook"]) {
            assert!(!raw.contains(secret), "{secret:?} exported");
        }
        let request = ExportTraceServiceRequest::decode(post.body.as_ref()).unwrap();
        for resource in request.resource_spans {
            let res = attributes(&resource.resource.unwrap_or_default().attributes);
            assert_eq!(res["service.name"], "herald-under-test");
            for scope in resource.scope_spans {
                spans.extend(
                    scope
                        .spans
                        .into_iter()
                        .map(|s| (attributes(&s.attributes), s)),
                );
            }
        }
    }
    let named = |name: &str| -> Vec<&HashMap<String, String>> {
        spans
            .iter()
            .filter(|(a, s)| s.name == name && a.get("herald.msg_id") == Some(&msg_id))
            .map(|(a, _)| a)
            .collect()
    };
    let accepted = named("message.accepted");
    assert_eq!(accepted.len(), 1, "{spans:?}");
    assert_eq!(accepted[0]["herald.event_type"], "spot.updated");
    assert!(accepted[0]["herald.app_id"].starts_with("app_"));
    assert_eq!(accepted[0]["herald.endpoints"], "1");
    let attempts = named("delivery.attempt");
    assert_eq!(attempts.len(), 1, "{spans:?}");
    let attempt = attempts[0];
    assert_eq!(attempt["herald.endpoint_id"], ep_id);
    assert_eq!(attempt["herald.app_id"], accepted[0]["herald.app_id"]);
    assert_eq!(attempt["http.response.status_code"], "200");
    assert_eq!(attempt["herald.outcome"], "success");
    assert_eq!(attempt["herald.attempt"], "1");
    assert!(attempt.contains_key("herald.duration_ms"), "{attempt:?}");
    // The log lines do not show the exported spans.
    assert!(!read(&log).contains("delivery.attempt"));
}

#[tokio::test]
async fn without_herald_otlp_endpoint_nothing_is_exported() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::for_suite(dir.path());
    let collector = Receiver::start().await;
    let receiver = Receiver::start().await;
    let endpoint = collector.url("");
    // The SDK's own variable is not Herald's switch.
    let server = spawn_binary_with(
        &db,
        dir.path(),
        "info",
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())],
    )
    .await;
    deliver_one(&server, &receiver).await;
    let log = server.log.clone();
    stop(server).await;
    assert!(collector.received().is_empty());
    assert!(!read(&log).contains("OTLP"), "{}", read(&log));
}
