//! The portal without JavaScript: pressing Test lands on the endpoint page,
//! not on the POST's URL (redirect after POST), so a reload sends nothing
//! again; times show exactly; copy buttons stay hidden.

use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::json;

use super::{click, wait_css, wait_path, wait_text, with_browser_scripted, WAIT};
use crate::support::{portal_link, Receiver, TestApp};

#[tokio::test(flavor = "multi_thread")]
async fn without_javascript_test_redirects_and_a_reload_sends_nothing() {
    with_browser_scripted("no-script", false, no_script).await;
}

async fn no_script(b: Client) {
    let app = TestApp::seeded().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Design Club").await;
    let endpoint_id = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/crm")}))
        .await;
    b.goto(&portal_link(&app, &app_id).await).await.unwrap();
    wait_path(&b, "the Webhooks page", |p| p == "/portal/").await;
    let endpoint_path = format!("/portal/endpoints/{endpoint_id}");
    b.goto(&app.url(&endpoint_path)).await.unwrap();
    wait_css(&b, "#send-test").await;
    // The script does not run: its copy buttons stay hidden.
    let copy = wait_css(&b, "button.copy[data-copy=\"endpoint-id\"]").await;
    assert!(
        !copy.is_displayed().await.unwrap(),
        "no script, no copy button"
    );

    wait_css(&b, "#test-event-type")
        .await
        .select_by_value("member.created")
        .await
        .unwrap();
    click(&b, "#send-test").await;
    // Redirected to the endpoint page, which shows the outcome.
    wait_path(&b, "the endpoint page after Test", |p| p == endpoint_path).await;
    let url = b.current_url().await.unwrap();
    assert!(
        url.query().is_some_and(|q| q.starts_with("tested=msg_")),
        "{url}"
    );
    wait_text(&b, "#test-status", "status 200 of the test", |t| {
        t.trim() == "200"
    })
    .await;
    receiver.wait_for("/crm", 1, WAIT).await;
    // A reload shows the same outcome and sends nothing again.
    b.refresh().await.unwrap();
    wait_text(&b, "#test-status", "the outcome after a reload", |t| {
        t.trim() == "200"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.received_on("/crm").len(),
        1,
        "a reload sent a test"
    );
    // Times are the exact UTC time without the script.
    let when = b
        .find(Locator::Css("#delivery-log time.when"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(super::finding::looks_utc(&when), "{when}");
    app.stop().await;
}
