//! Finding things: the delivery log's filters and search, the Test updating
//! the log in place, the message page's status, attempts and copy buttons,
//! and relative times with the exact one on hover.

use fantoccini::{Client, Locator};
use serde_json::json;

use super::{click, poll, reload_until, shot, wait_css, wait_path, wait_text, with_browser, WAIT};
use crate::support::{portal_link, Receiver, Reply, TestApp};

#[tokio::test(flavor = "multi_thread")]
async fn the_log_is_filtered_searched_and_a_message_read_and_copied() {
    with_browser("finding", finding_things).await;
}

/// A Spot admin looks for one delivery: the Test updates the log in place,
/// the log filters by status and finds a message by its eventId, and the
/// message page says its status, where each attempt went, and copies ids.
async fn finding_things(b: Client) {
    let app = TestApp::seeded().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Design Club").await;
    let endpoint_id = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/crm")}))
        .await;
    let msg_id = app
        .send(
            &app_id,
            json!({"eventType": "member.created", "eventId": "evt-find-me", "payload": {"member": {"name": "Ada"}}}),
        )
        .await;
    receiver.wait_for("/crm", 1, WAIT).await;
    b.goto(&portal_link(&app, &app_id).await).await.unwrap();
    wait_path(&b, "the Webhooks page", |p| p == "/portal/").await;
    let endpoint_path = format!("/portal/endpoints/{endpoint_id}");
    b.goto(&app.url(&endpoint_path)).await.unwrap();
    reload_until(&b, "the message in the log", || async {
        b.find(Locator::Css("#delivery-log tr.delivery")).await.ok()
    })
    .await;

    // On a desktop the log is a table: its header cells sit over its cells
    // (the phone's cards are for narrow windows only).
    let layout = b
        .execute(
            "var t = document.getElementById('delivery-log'); \
             var th = t.querySelector('th'), td = t.querySelector('tbody td'); \
             return [getComputedStyle(t).display, Math.round(th.getBoundingClientRect().left), \
                     Math.round(td.getBoundingClientRect().left), Math.round(th.getBoundingClientRect().width), \
                     Math.round(td.getBoundingClientRect().width)];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(layout[0], "table", "{layout}");
    assert_eq!(layout[1], layout[2], "columns line up: {layout}");
    assert_eq!(layout[3], layout[4], "columns line up: {layout}");

    // Times read relative, the exact UTC time on hover.
    let when = wait_css(&b, "#delivery-log time.when").await;
    let text = when.text().await.unwrap();
    assert!(
        text.contains("ago") || text == "just now",
        "a relative time: {text}"
    );
    let title = when.attr("title").await.unwrap().unwrap_or_default();
    assert!(looks_utc(&title), "the exact time in the title: {title}");

    // A failing Test: the result, and the log and chart updated in place.
    receiver.script("/crm", vec![Reply::status(500).body("crm is down")]);
    wait_css(&b, "#test-event-type")
        .await
        .select_by_value("member.created")
        .await
        .unwrap();
    click(&b, "#send-test").await;
    wait_text(&b, "#test-status", "status 500 of the test", |t| {
        t.trim() == "500"
    })
    .await;
    poll(&b, "the Test's row in the log without a reload", || async {
        let n = b
            .find_all(Locator::Css("#delivery-log tr.delivery"))
            .await
            .ok()?
            .len();
        (n == 2).then_some(())
    })
    .await;
    wait_text(&b, "#chart-panel .stats", "the failure in the chart", |t| {
        t.contains("1 failed")
    })
    .await;
    // The endpoint's state too: failing, and why, without a reload.
    wait_text(&b, "#endpoint-state", "the failing badge", |t| {
        t.trim() == "failing"
    })
    .await;
    wait_text(&b, "#state-detail", "why it is failing", |t| {
        t.contains("Failing since") && t.contains("crm is down")
    })
    .await;

    // Filter by status: only the failed Test.
    wait_css(&b, "#log-status")
        .await
        .select_by_value("failed")
        .await
        .unwrap();
    click(&b, "#log-filter-apply").await;
    poll(&b, "the failed delivery only", || async {
        let url = b.current_url().await.ok()?;
        let rows = b
            .find_all(Locator::Css("#delivery-log tr.delivery"))
            .await
            .ok()?;
        (url.query().is_some_and(|q| q.contains("status=failed")) && rows.len() == 1).then_some(())
    })
    .await;
    let row = wait_css(&b, "#delivery-log tr.delivery")
        .await
        .text()
        .await
        .unwrap();
    assert!(row.contains("failed"), "{row}");
    shot(&b, "20-log-filtered-failed").await;
    // A Test that goes through: the state is active again, and the log
    // refreshed in place keeps its filter (still the failed one only).
    click(&b, "#send-test").await;
    wait_text(&b, "#test-status", "status 200 of the test", |t| {
        t.trim() == "200"
    })
    .await;
    wait_text(&b, "#endpoint-state", "the active badge", |t| {
        t.trim() == "active"
    })
    .await;
    let rows = b
        .find_all(Locator::Css("#delivery-log tr.delivery"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "the filter kept after the Test");
    assert!(rows[0].text().await.unwrap().contains("failed"));
    let hidden = b
        .execute(
            "return document.getElementById('state-detail').hidden",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(hidden, json!(true), "nothing to explain once active");

    // Search by the platform's eventId.
    click(&b, "#log-filter-clear").await;
    let search = wait_css(&b, "#log-q").await;
    search.send_keys("evt-find-me").await.unwrap();
    click(&b, "#log-filter-apply").await;
    let link_css = format!("#delivery-log a.delivery-link[href$=\"/messages/{msg_id}\"]");
    poll(&b, "the message found by its eventId", || async {
        let rows = b
            .find_all(Locator::Css("#delivery-log tr.delivery"))
            .await
            .ok()?;
        let found = b.find(Locator::Css(&link_css)).await.ok();
        (rows.len() == 1 && found.is_some()).then_some(())
    })
    .await;
    click(&b, &link_css).await;
    wait_path(&b, "the message page", |p| p.ends_with(&msg_id)).await;

    // The message page: its status in one line, where it went, the body.
    wait_text(&b, "#overall-status", "the overall status", |t| {
        t.contains("Delivered to its one endpoint")
    })
    .await;
    wait_text(&b, "#attempts .attempt-url", "the attempt's URL", |t| {
        t.contains(&receiver.url("/crm"))
    })
    .await;
    wait_text(&b, "#payload", "the pretty payload", |t| {
        t.contains("\"name\": \"Ada\"")
    })
    .await;
    // The payload folds away.
    click(&b, "#payload-box > summary").await;
    poll(&b, "the payload folded", || async {
        let open = b
            .execute("return document.getElementById('payload-box').open", vec![])
            .await
            .ok()?;
        (open == json!(false)).then_some(())
    })
    .await;
    // Copy the message id: the button says it was copied (the clipboard
    // itself is not read: headless Chromium asks a permission for that).
    click(&b, "button.copy[data-copy=\"msg-id\"]").await;
    wait_text(
        &b,
        "button.copy[data-copy=\"msg-id\"]",
        "the copy confirmed",
        |t| t == "Copied",
    )
    .await;
    // And the payload.
    click(&b, "button.copy[data-copy=\"payload\"]").await;
    wait_text(
        &b,
        "button.copy[data-copy=\"payload\"]",
        "the payload copy confirmed",
        |t| t == "Copied",
    )
    .await;
    shot(&b, "21-message-page").await;

    // The Test's message page marks its attempt as a test.
    b.goto(&app.url(&format!("{endpoint_path}?status=failed")))
        .await
        .unwrap();
    let test_link = wait_css(&b, "#delivery-log a.delivery-link").await;
    let href = test_link.attr("href").await.unwrap().unwrap();
    b.goto(&app.url(&href)).await.unwrap();
    wait_text(&b, "#attempts .badge-trigger", "the test marker", |t| {
        t.trim() == "test"
    })
    .await;
    wait_text(&b, "#overall-status", "the failing status", |t| {
        t.contains("Failing")
    })
    .await;
    wait_text(&b, "#attempts pre.response", "the response body", |t| {
        t.contains("crm is down")
    })
    .await;
    app.stop().await;
}

/// `2026-11-30 03:59:08 UTC`: the portal's one exact date style.
pub(super) fn looks_utc(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 23
        && text.ends_with(" UTC")
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b' '
        && b[13] == b':'
        && b[16] == b':'
}
