//! The failing-endpoint story: a Spot admin whose receiver is down sees the
//! same truth on the Webhooks list, the endpoint page and the message page —
//! the state, why, and when Herald tries next — and the API says the same.

use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::json;

use super::{shot, wait_css, wait_path, wait_text, with_browser, WAIT};
use crate::support::{portal_link, Options, TestApp};

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_endpoint_reads_the_same_on_every_page() {
    with_browser("failing", failing_story).await;
}

async fn failing_story(b: Client) {
    // One retry, an hour later: the delivery stays failing and pending.
    let app = TestApp::spawn_with(Options {
        retry_schedule: herald_core::schedule::RetrySchedule::from_delays(vec![
            Duration::from_secs(3600),
        ])
        .unwrap(),
        ..Options::default()
    })
    .await;
    // Nothing listens there: the connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/crm", closed.local_addr().unwrap());
    drop(closed);
    let app_id = app.create_app("Design Club").await;
    let ep = app.create_endpoint(&app_id, json!({"url": url})).await;
    let msg = app
        .send(
            &app_id,
            json!({"eventType": "member.created", "payload": {}}),
        )
        .await;
    app.eventually(WAIT, "the failed attempt", || async {
        (!app.attempts(&app_id, &msg).await.is_empty()).then_some(())
    })
    .await;
    // The API's state.
    let (_, out) = app
        .get_json(&format!("/api/v1/app/{app_id}/endpoint/{ep}"))
        .await;
    let api_state = out["state"]
        .as_str()
        .expect("the endpoint's state")
        .to_string();

    // The Webhooks list: the badge, and a delivery not finished.
    b.goto(&portal_link(&app, &app_id).await).await.unwrap();
    wait_path(&b, "the Webhooks page", |p| p == "/portal/").await;
    let row = wait_css(&b, "tr.endpoint").await;
    let badge = row
        .find(Locator::Css(".badge"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(badge, "failing");
    let success = row
        .find(Locator::Css("td.num"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(success.contains("1 pending"), "{success}");
    shot(&b, "failing-01-list").await;

    // The endpoint page: the same state, why, and the next try.
    b.goto(&app.url(&format!("/portal/endpoints/{ep}")))
        .await
        .unwrap();
    let state = wait_css(&b, "#endpoint-state").await.text().await.unwrap();
    assert_eq!(state, badge);
    assert_eq!(api_state, state, "the API and the portal agree");
    wait_text(&b, "#state-detail", "why it is failing", |t| {
        t.contains("Failing since") && t.contains("1 attempt in a row failed")
    })
    .await;
    let log_row = wait_text(&b, "#delivery-log tr.delivery", "the log row", |t| {
        t.contains("next try")
    })
    .await;
    assert!(log_row.contains("connection failed"), "{log_row}");
    shot(&b, "failing-02-endpoint").await;

    // The message page: failing overall, the attempt and why.
    b.goto(&app.url(&format!("/portal/endpoints/{ep}/messages/{msg}")))
        .await
        .unwrap();
    wait_text(&b, "#overall-status", "the message's status", |t| {
        t.contains("Failing") && t.contains("being retried")
    })
    .await;
    let attempt = wait_css(&b, "#attempts li.attempt")
        .await
        .text()
        .await
        .unwrap();
    assert!(attempt.contains("no response"), "{attempt}");
    assert!(attempt.contains("connection failed"), "{attempt}");
    shot(&b, "failing-03-message").await;
    app.stop().await;
}
