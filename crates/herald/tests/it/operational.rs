//! Operational webhooks through the official Svix SDK: an operator registers
//! an endpoint, and hears (signed with that endpoint's secret, through the
//! same retried path as any message) what happens to a tenant's endpoints.

use std::collections::BTreeMap;
use std::time::Duration;

use herald_core::schedule::RetrySchedule;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use svix::models::{
    OperationalWebhookEndpointHeadersIn, OperationalWebhookEndpointIn,
    OperationalWebhookEndpointSecretIn, OperationalWebhookEndpointUpsertIn,
};

use crate::support::{Options, Received, Receiver, Reply, TestApp};

const WAIT: Duration = Duration::from_secs(30);

/// The operational events received so far, verified with `secret`, as
/// (type, data).
fn events(receiver: &Receiver, secret: &str) -> Vec<(String, Value)> {
    receiver
        .received_on("/ops")
        .iter()
        .map(|r: &Received| {
            standardwebhooks::Webhook::new(secret)
                .unwrap()
                .verify(&r.body, &r.headers)
                .expect("an operational webhook verifies with its endpoint's secret");
            let body = r.json();
            (
                body["type"].as_str().unwrap().to_string(),
                body["data"].clone(),
            )
        })
        .collect()
}

/// Waits until an event of `event_type` about `endpoint_id` arrived; its data.
async fn wait_event(
    app: &TestApp,
    receiver: &Receiver,
    secret: &str,
    event_type: &str,
    endpoint_id: &str,
) -> Value {
    app.eventually(WAIT, event_type, || async {
        events(receiver, secret)
            .into_iter()
            .find(|(t, d)| t == event_type && d["endpointId"] == endpoint_id)
            .map(|(_, d)| d)
    })
    .await
}

#[tokio::test]
async fn the_operator_hears_endpoint_changes_failures_and_recoveries() {
    let app = TestApp::spawn_with(Options {
        // Six attempts: the fourth failure is "failing", the sixth "exhausted".
        retry_schedule: RetrySchedule::from_delays(vec![Duration::from_millis(100); 5]).unwrap(),
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    let svix = app.svix();
    let ops = svix.operational_webhook().endpoint();

    let created = ops
        .create(
            OperationalWebhookEndpointIn::new(receiver.url("/ops")),
            None,
        )
        .await
        .unwrap();
    assert!(created.id.starts_with("ep_"));
    let listed = ops.list(None).await.unwrap();
    assert_eq!(listed.data.len(), 1);
    assert_eq!(listed.data[0].url, receiver.url("/ops"));
    let secret = ops.get_secret(created.id.clone()).await.unwrap().key;
    assert!(secret.starts_with("whsec_"));
    ops.set_headers(
        created.id.clone(),
        OperationalWebhookEndpointHeadersIn::new(BTreeMap::from([(
            "X-Team".to_string(),
            "ops".to_string(),
        )])),
    )
    .await
    .unwrap();
    let headers = ops.get_headers(created.id.clone()).await.unwrap();
    assert_eq!(
        headers.headers.get("X-Team").map(String::as_str),
        Some("ops")
    );

    // The operational application is not one of the organisation's.
    let (_, apps) = app.get_json("/api/v1/app").await;
    assert_eq!(apps["data"].as_array().unwrap().len(), 0, "{apps}");

    // A tenant's endpoint: created, disabled, enabled, deleted.
    let app_id = app.create_app("Design Club").await;
    let ep = app
        .create_endpoint(
            &app_id,
            json!({"url": receiver.url("/tenant"), "uid": "crm"}),
        )
        .await;
    let data = wait_event(&app, &receiver, &secret, "endpoint.created", &ep).await;
    assert_eq!(data["appId"], app_id);
    assert_eq!(data["endpointUid"], "crm");
    let got = receiver.received_on("/ops");
    assert_eq!(got[0].header("x-team"), "ops");

    let path = format!("/api/v1/app/{app_id}/endpoint/{ep}");
    let (status, _) = app
        .call(
            Some(&app.token),
            Method::PATCH,
            &path,
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let disabled = wait_event(&app, &receiver, &secret, "endpoint.disabled", &ep).await;
    assert_eq!(disabled["trigger"], "manual");
    wait_event(&app, &receiver, &secret, "endpoint.updated", &ep).await;
    let (status, _) = app
        .call(
            Some(&app.token),
            Method::PATCH,
            &path,
            Some(json!({"disabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    wait_event(&app, &receiver, &secret, "endpoint.enabled", &ep).await;

    // A delivery failing four times, then succeeding: failing, then recovered.
    receiver.script("/tenant", vec![Reply::status(500); 4]);
    let msg = app
        .send(
            &app_id,
            json!({"eventType": "member.created", "payload": {}}),
        )
        .await;
    let failing = wait_event(&app, &receiver, &secret, "message.attempt.failing", &ep).await;
    assert_eq!(failing["msgId"], msg);
    assert_eq!(failing["lastAttempt"]["responseStatusCode"], 500);
    let recovered = wait_event(&app, &receiver, &secret, "message.attempt.recovered", &ep).await;
    assert_eq!(recovered["msgId"], msg);
    assert_eq!(recovered["lastAttempt"]["responseStatusCode"], 200);

    // One failing to the end: exhausted.
    receiver.script("/tenant", vec![Reply::status(503); 6]);
    let doomed = app
        .send(
            &app_id,
            json!({"eventType": "member.created", "payload": {}}),
        )
        .await;
    let exhausted = wait_event(&app, &receiver, &secret, "message.attempt.exhausted", &ep).await;
    assert_eq!(exhausted["msgId"], doomed);

    // 410 Gone disables it automatically.
    receiver.script("/tenant", vec![Reply::status(410)]);
    app.send(
        &app_id,
        json!({"eventType": "member.created", "payload": {}}),
    )
    .await;
    let gone = app
        .eventually(WAIT, "an automatic endpoint.disabled", || async {
            events(&receiver, &secret)
                .into_iter()
                .find(|(t, d)| t == "endpoint.disabled" && d["trigger"] == "automatic")
                .map(|(_, d)| d)
        })
        .await;
    assert_eq!(gone["endpointId"], ep);

    let (status, _) = app
        .call(Some(&app.token), Method::DELETE, &path, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    wait_event(&app, &receiver, &secret, "endpoint.deleted", &ep).await;

    // Upsert creates by uid, then replaces; rotate answers 204 and the new
    // key is what GET .../secret reads; delete removes it.
    let upserted = ops
        .upsert(
            "pager".into(),
            OperationalWebhookEndpointUpsertIn::new(receiver.url("/pager")),
        )
        .await
        .unwrap();
    assert_eq!(upserted.uid.as_deref(), Some("pager"));
    let again = ops
        .upsert(
            "pager".into(),
            OperationalWebhookEndpointUpsertIn {
                description: Some("PagerDuty".into()),
                ..OperationalWebhookEndpointUpsertIn::new(receiver.url("/pager"))
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (again.id.as_str(), again.description.as_str()),
        (upserted.id.as_str(), "PagerDuty")
    );
    let before = ops.get_secret(upserted.id.clone()).await.unwrap().key;
    ops.rotate_secret(
        upserted.id.clone(),
        OperationalWebhookEndpointSecretIn::new(),
        None,
    )
    .await
    .unwrap();
    let after = ops.get_secret(upserted.id.clone()).await.unwrap().key;
    assert_ne!(before, after);
    ops.delete(upserted.id.clone()).await.unwrap();
    assert_eq!(ops.list(None).await.unwrap().data.len(), 1);

    // Only an organisation token may manage them.
    let app_token = app.app_token(&app_id);
    let (status, _) = app
        .call(
            Some(&app_token),
            Method::GET,
            "/api/v1/operational-webhook/endpoint",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.stop().await;
}
