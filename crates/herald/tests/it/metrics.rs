//! `GET /metrics` after real traffic: its counters match what the receivers
//! saw, its gauges what the database holds, and it asks for its token.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{Options, Receiver, Reply, TestApp};

const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "metrics-scraper-token";

/// The value of the sample `name` (with its labels, as written) in `text`.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn scrape(app: &TestApp, token: Option<&str>) -> (StatusCode, String) {
    let mut req = app.http.get(app.url("/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.text().await.unwrap())
}

#[tokio::test]
async fn metrics_count_what_the_receivers_saw_and_ask_for_their_token() {
    let app = TestApp::spawn_with(Options {
        metrics_token: Some(TOKEN.into()),
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.set_default("/down", Reply::status(500));
    let app_id = app.create_app("Design Club").await;
    app.create_endpoint(
        &app_id,
        json!({"url": receiver.url("/up"), "filterTypes": ["up"]}),
    )
    .await;
    app.create_endpoint(
        &app_id,
        json!({"url": receiver.url("/down"), "filterTypes": ["down"]}),
    )
    .await;
    let disabled = app
        .create_endpoint(
            &app_id,
            json!({"url": receiver.url("/off"), "filterTypes": ["off"], "disabled": true}),
        )
        .await;
    assert!(disabled.starts_with("ep_"));

    for i in 0..5 {
        app.send(&app_id, json!({"eventType": "up", "payload": {"n": i}}))
            .await;
    }
    let down = app
        .send(&app_id, json!({"eventType": "down", "payload": {}}))
        .await;
    receiver.wait_for("/up", 5, WAIT).await;
    // The first attempt and three retries (the tests' schedule), then it
    // gives up.
    receiver.wait_for("/down", 4, WAIT).await;
    app.eventually(WAIT, "the failing delivery to give up", || async {
        let (_, m) = app
            .get_json(&format!("/api/v1/app/{app_id}/msg/{down}/endpoint"))
            .await;
        (m["data"][0]["nextAttempt"].is_null() && m["data"][0]["status"] == 2).then_some(())
    })
    .await;

    let (status, body) = scrape(&app, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = scrape(&app, Some("not-the-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, text) = scrape(&app, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    let seen_up = receiver.received_on("/up").len() as f64;
    let seen_down = receiver.received_on("/down").len() as f64;
    let expect = [
        ("herald_messages_accepted_total", 6.0),
        (
            "herald_delivery_attempts_total{outcome=\"success\"}",
            seen_up,
        ),
        (
            "herald_delivery_attempts_total{outcome=\"failure\"}",
            seen_down,
        ),
        (
            "herald_delivery_duration_seconds_count",
            seen_up + seen_down,
        ),
        ("herald_delivery_lag_seconds_count", seen_up + seen_down),
        ("herald_deliveries_in_flight", 0.0),
        ("herald_queue_due", 0.0),
        ("herald_endpoints{state=\"failing\"}", 1.0),
        ("herald_endpoints{state=\"active\"}", 1.0),
        ("herald_endpoints{state=\"disabled\"}", 1.0),
    ];
    for (name, want) in expect {
        assert_eq!(sample(&text, name), Some(want), "{name} in\n{text}");
    }
    assert!(text.contains("# TYPE herald_delivery_lag_seconds histogram"));
    // Nothing is labelled by application or endpoint.
    assert!(!text.contains("ep_") && !text.contains("app_"), "{text}");

    // An idempotent retry of a message is not counted twice.
    for _ in 0..2 {
        let r = app
            .request(Method::POST, &format!("/api/v1/app/{app_id}/msg"))
            .header("idempotency-key", "once")
            .json(&json!({"eventType": "up", "payload": {}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let (_, text) = scrape(&app, Some(TOKEN)).await;
    assert_eq!(sample(&text, "herald_messages_accepted_total"), Some(7.0));
    app.stop().await;
}
