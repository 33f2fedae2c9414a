//! Deliveries checked by verifiers Herald did not write: the `standardwebhooks`
//! crate and the Svix SDK's `webhooks` module.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Received, Receiver, TestApp};

const WAIT: Duration = Duration::from_secs(30);

fn std_verify(secret: &str, body: &[u8], headers: &HeaderMap) -> bool {
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(body, headers)
        .is_ok()
}

fn svix_verify(secret: &str, body: &[u8], headers: &HeaderMap) -> bool {
    svix::webhooks::Webhook::new(secret)
        .unwrap()
        .verify(body, headers)
        .is_ok()
}

/// A copy of the received headers with only the names starting with `prefix`.
fn only(got: &Received, prefix: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in &got.headers {
        if name.as_str().starts_with(prefix) {
            h.insert(name.clone(), value.clone());
        }
    }
    h
}

/// One delivery of `payload` to a fresh endpoint; returns the endpoint's secret,
/// the message id and the request received.
async fn one_delivery(
    app: &TestApp,
    receiver: &Receiver,
    path: &str,
) -> (String, String, String, Received) {
    let app_id = app.create_app("Spot").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": receiver.url(path)}))
        .await;
    let secret = app.endpoint_secret(&app_id, &ep).await;
    // Not canonical JSON: spacing, key order and unicode kept as sent.
    let msg_id = app
        .send(
            &app_id,
            json!({"eventType": "member.created",
                   "payload": {"z": 1, "a": "é ☃", "nested": {"list": [1, 2.5, null]}}}),
        )
        .await;
    let got = receiver.wait_for(path, 1, WAIT).await.remove(0);
    (app_id, secret, msg_id, got)
}

#[tokio::test]
async fn standardwebhooks_crate_verifies_deliveries() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let (_app_id, secret, msg_id, got) = one_delivery(&app, &receiver, "/std").await;
    assert_eq!(got.header("webhook-id"), msg_id);
    assert_eq!(got.header("content-type"), "application/json");
    let ts: i64 = got.header("webhook-timestamp").parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);

    assert!(std_verify(&secret, &got.body, &got.headers));

    // A changed body, id or timestamp fails.
    let mut tampered = got.body.to_vec();
    let last = tampered.len() - 2;
    tampered[last] ^= 0x01;
    assert!(!std_verify(&secret, &tampered, &got.headers));
    let mut body_ws = got.body.to_vec();
    body_ws.push(b' ');
    assert!(!std_verify(&secret, &body_ws, &got.headers));
    let mut headers = got.headers.clone();
    headers.insert("webhook-id", HeaderValue::from_static("msg_forged"));
    assert!(!std_verify(&secret, &got.body, &headers));
    let mut headers = got.headers.clone();
    headers.insert(
        "webhook-timestamp",
        HeaderValue::from_str(&(ts + 1).to_string()).unwrap(),
    );
    assert!(!std_verify(&secret, &got.body, &headers));
    // Another key fails.
    assert!(!std_verify(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        &got.body,
        &got.headers
    ));
    app.stop().await;
}

#[tokio::test]
async fn svix_sdk_verifier_accepts_both_header_families() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let (_app_id, secret, msg_id, got) = one_delivery(&app, &receiver, "/svix").await;

    // The svix- twins carry the same values.
    for name in ["id", "timestamp", "signature"] {
        assert_eq!(
            got.header(&format!("svix-{name}")),
            got.header(&format!("webhook-{name}")),
            "{name}"
        );
    }
    assert_eq!(got.header("svix-id"), msg_id);

    assert!(svix_verify(&secret, &got.body, &got.headers));
    let svix_only = only(&got, "svix-");
    assert_eq!(svix_only.len(), 3);
    assert!(svix_verify(&secret, &got.body, &svix_only));
    let webhook_only = only(&got, "webhook-");
    assert_eq!(webhook_only.len(), 3);
    assert!(svix_verify(&secret, &got.body, &webhook_only));
    // The standard verifier reads only webhook-*.
    assert!(std_verify(&secret, &got.body, &webhook_only));
    assert!(!std_verify(&secret, &got.body, &svix_only));

    let mut tampered = got.body.to_vec();
    tampered.insert(1, b' ');
    assert!(!svix_verify(&secret, &tampered, &svix_only));
    assert!(!svix_verify(&secret, &tampered, &webhook_only));
    app.stop().await;
}

/// A secret given by the caller at endpoint creation is the one that signs.
#[tokio::test]
async fn a_chosen_endpoint_secret_signs() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let app_id = app.create_app("Spot").await;
    let ep = app
        .create_endpoint(
            &app_id,
            json!({"url": receiver.url("/chosen"), "secret": secret}),
        )
        .await;
    assert_eq!(app.endpoint_secret(&app_id, &ep).await, secret);
    app.send(&app_id, json!({"eventType": "a.b", "payload": {"x": 1}}))
        .await;
    let got = receiver.wait_for("/chosen", 1, WAIT).await.remove(0);
    assert!(std_verify(secret, &got.body, &got.headers));
    assert!(svix_verify(secret, &got.body, &got.headers));
    app.stop().await;
}

/// Which of `keys` verify one signature entry on its own.
fn keys_verifying_entry(keys: &[&str], got: &Received, entry: &str) -> Vec<usize> {
    let mut headers = only(got, "webhook-");
    headers.insert("webhook-signature", HeaderValue::from_str(entry).unwrap());
    keys.iter()
        .enumerate()
        .filter(|(_, k)| std_verify(k, &got.body, &headers))
        .map(|(i, _)| i)
        .collect()
}

async fn rotate(app: &TestApp, app_id: &str, ep: &str, body: serde_json::Value) -> String {
    let (status, out) = app
        .post_json(
            &format!("/api/v1/app/{app_id}/endpoint/{ep}/secret/rotate"),
            body,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    out["key"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn rotation_signs_with_old_and_new_keys_during_the_grace_period() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Spot").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/rot")}))
        .await;
    let old = app.endpoint_secret(&app_id, &ep).await;

    let new = rotate(&app, &app_id, &ep, json!({"gracePeriodSeconds": 3600})).await;
    assert_ne!(new, old);
    assert_eq!(app.endpoint_secret(&app_id, &ep).await, new);
    app.send(&app_id, json!({"eventType": "a.b", "payload": {"n": 1}}))
        .await;
    let got = receiver.wait_for("/rot", 1, WAIT).await.remove(0);
    let sig = got.header("webhook-signature").to_string();
    let entries: Vec<&str> = sig.split(' ').collect();
    assert_eq!(entries.len(), 2, "{sig}");
    assert!(entries.iter().all(|e| e.starts_with("v1,")), "{sig}");
    // Either key alone verifies the whole header.
    assert!(std_verify(&old, &got.body, &got.headers));
    assert!(std_verify(&new, &got.body, &got.headers));
    assert!(svix_verify(&old, &got.body, &got.headers));
    assert!(svix_verify(&new, &got.body, &got.headers));
    // And each entry is the signature of exactly one of them.
    let keys = [old.as_str(), new.as_str()];
    let mut owners: Vec<Vec<usize>> = entries
        .iter()
        .map(|e| keys_verifying_entry(&keys, &got, e))
        .collect();
    owners.sort();
    assert_eq!(owners, vec![vec![0], vec![1]], "{sig}");

    // Rotating with no grace period: the old keys stop signing at once.
    let newest = rotate(&app, &app_id, &ep, json!({"gracePeriodSeconds": 0})).await;
    app.send(&app_id, json!({"eventType": "a.b", "payload": {"n": 2}}))
        .await;
    let got = receiver.wait_for("/rot", 2, WAIT).await.remove(1);
    let sig = got.header("webhook-signature");
    assert_eq!(sig.split(' ').count(), 1, "{sig}");
    assert!(sig.starts_with("v1,"), "{sig}");
    assert!(std_verify(&newest, &got.body, &got.headers));
    assert!(!std_verify(&new, &got.body, &got.headers));
    assert!(!std_verify(&old, &got.body, &got.headers));

    // An empty body rotates too (default grace): two signatures again.
    let last = rotate(&app, &app_id, &ep, json!({})).await;
    app.send(&app_id, json!({"eventType": "a.b", "payload": {"n": 3}}))
        .await;
    let got = receiver.wait_for("/rot", 3, WAIT).await.remove(2);
    let keys = [newest.as_str(), last.as_str()];
    let mut owners: Vec<Vec<usize>> = got
        .header("webhook-signature")
        .split(' ')
        .map(|e| keys_verifying_entry(&keys, &got, e))
        .collect();
    owners.sort();
    assert_eq!(owners, vec![vec![0], vec![1]]);

    // A grace period over a week is refused.
    let (status, out) = app
        .post_json(
            &format!("/api/v1/app/{app_id}/endpoint/{ep}/secret/rotate"),
            json!({"gracePeriodSeconds": 8 * 24 * 3600}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
    app.stop().await;
}

#[tokio::test]
async fn custom_headers_are_delivered_and_reserved_ones_refused() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Spot").await;
    let ep = app
        .create_endpoint(
            &app_id,
            json!({"url": receiver.url("/hdr"),
                   "headers": {"X-Tenant": "acme", "Authorization": "Bearer abc"}}),
        )
        .await;
    let secret = app.endpoint_secret(&app_id, &ep).await;
    app.send(&app_id, json!({"eventType": "a.b", "payload": {}}))
        .await;
    let got = receiver.wait_for("/hdr", 1, WAIT).await.remove(0);
    assert_eq!(got.header("x-tenant"), "acme");
    assert_eq!(got.header("authorization"), "Bearer abc");
    // Custom headers do not disturb the signature.
    assert!(std_verify(&secret, &got.body, &got.headers));

    for name in [
        "webhook-id",
        "Webhook-Signature",
        "webhook-timestamp",
        "svix-id",
        "SVIX-SIGNATURE",
        "content-type",
        "Host",
        "Content-Length",
        "X-Forwarded-For",
    ] {
        let (status, out) = app
            .post_json(
                &format!("/api/v1/app/{app_id}/endpoint"),
                json!({"url": receiver.url("/hdr"), "headers": {name: "x"}}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {out}");
        assert_eq!(out["code"], "validation", "{out}");
        assert_eq!(out["detail"][0]["loc"], json!(["body", "headers", name]));
    }
    // Through the SDK too, as a validation error.
    let err = app
        .svix()
        .endpoint()
        .create(
            app_id.clone(),
            svix::models::EndpointIn {
                headers: Some([("webhook-id".to_string(), "forged".to_string())].into()),
                ..svix::models::EndpointIn::new(receiver.url("/hdr"))
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, svix::error::Error::Validation(_)), "{err:?}");
    // Nothing was created by the refused requests.
    let (status, out) = app
        .get_json(&format!("/api/v1/app/{app_id}/endpoint"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(out["data"].as_array().unwrap().len(), 1, "{out}");
    app.stop().await;
}
