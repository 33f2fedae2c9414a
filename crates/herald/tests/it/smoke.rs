//! The shortest path through Herald: an event in, a signed delivery out.

use std::time::Duration;

use serde_json::json;

use crate::support::{Receiver, TestApp};

#[tokio::test]
async fn a_message_reaches_its_endpoint_signed() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Spot").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/hook")}))
        .await;
    let secret = app.endpoint_secret(&app_id, &ep).await;
    let msg_id = app
        .send(
            &app_id,
            json!({"eventType": "member.created", "payload": {"member": {"id": "m1"}}}),
        )
        .await;
    let got = receiver.wait_for("/hook", 1, Duration::from_secs(30)).await;
    assert_eq!(got[0].header("webhook-id"), msg_id);
    assert_eq!(got[0].json(), json!({"member": {"id": "m1"}}));
    let key = herald_core::signing::EndpointSecret::parse(&secret).unwrap();
    let ts: i64 = got[0].header("webhook-timestamp").parse().unwrap();
    assert!(key.verify(
        &msg_id,
        ts,
        &got[0].body,
        got[0].header("webhook-signature")
    ));
    app.stop().await;
}
