//! Phones: every portal page at 390 px wide is no wider than the window.

use fantoccini::Client;
use serde_json::json;

use super::{shot, wait_css, wait_path, with_browser, WAIT};
use crate::support::{Receiver, Reply, TestApp};

#[tokio::test(flavor = "multi_thread")]
async fn no_portal_page_scrolls_sideways_on_a_phone() {
    with_browser("phone", phone_width).await;
}

/// The width of a phone (an iPhone's 390 CSS pixels).
const PHONE_WIDTH: u64 = 390;

/// Every portal page at 390 px wide, with the longest things a page shows (a
/// long URL, description and event id, several events, a delivered and a
/// failing message): the page is no wider than the window.
async fn phone_width(b: Client) {
    let app = TestApp::seeded().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Design Club of the Spring Collection").await;
    let long_path = format!("/hooks/{}", "a1b2c3d4e5f6".repeat(8));
    receiver.set_default(&long_path, Reply::status(500).body(&"x".repeat(300)));
    let endpoint_id = app
        .create_endpoint(
            &app_id,
            json!({
                "url": receiver.url(&long_path),
                "description": "The members' CRM, synchronised every time something changes in the spot",
                "filterTypes": ["live.updated", "member.created", "member.updated"],
            }),
        )
        .await;
    let ok_id = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/ok")}))
        .await;
    let msg_id = app
        .send(
            &app_id,
            json!({
                "eventType": "member.created",
                "eventId": format!("evt-{}", "0123456789".repeat(6)),
                "payload": {"member": {"id": "m1", "name": "A".repeat(120)}, "test": false}
            }),
        )
        .await;
    receiver.wait_for(&long_path, 1, WAIT).await;
    receiver.wait_for("/ok", 1, WAIT).await;

    // The operator's view first, then one application's pages.
    b.goto(&app.cli_portal_link(None).await).await.unwrap();
    wait_path(&b, "the operator's list", |p| p == "/portal/").await;
    b.set_window_size(PHONE_WIDTH as u32, 900).await.unwrap();
    let width = b.execute("return window.innerWidth", vec![]).await.unwrap();
    assert!(
        width.as_u64().is_some_and(|w| w <= PHONE_WIDTH),
        "the window is a phone's width: {width}"
    );
    let pages = vec![
        ("apps".to_string(), "/portal/apps".to_string()),
        ("apps-search".into(), "/portal/apps?q=Spring".into()),
        ("switch".into(), format!("/portal/apps/{app_id}")),
        ("webhooks".into(), "/portal/".into()),
        ("add".into(), "/portal/endpoints/new".into()),
        (
            "endpoint".into(),
            format!("/portal/endpoints/{endpoint_id}"),
        ),
        (
            "edit".into(),
            format!("/portal/endpoints/{endpoint_id}/edit"),
        ),
        (
            "delete".into(),
            format!("/portal/endpoints/{endpoint_id}/delete"),
        ),
        (
            "message".into(),
            format!("/portal/endpoints/{endpoint_id}/messages/{msg_id}"),
        ),
        (
            "message-ok".into(),
            format!("/portal/endpoints/{ok_id}/messages/{msg_id}"),
        ),
        ("endpoint-ok".into(), format!("/portal/endpoints/{ok_id}")),
        ("catalog".into(), "/portal/catalog".into()),
        (
            "log-filtered".into(),
            format!("/portal/endpoints/{endpoint_id}?status=pending&event_type=member.created"),
        ),
        (
            "log-empty".into(),
            format!("/portal/endpoints/{ok_id}?q=no-such-message"),
        ),
        (
            "tested-none".into(),
            format!("/portal/endpoints/{ok_id}?tested=none"),
        ),
        ("not-found".into(), "/portal/endpoints/ep_nothing".into()),
        ("unknown-path".into(), "/portal/nowhere".into()),
        ("public-catalog".into(), "/catalog".into()),
        ("logged-out".into(), "/portal/logged-out".into()),
    ];
    for (name, path) in &pages {
        b.goto(&app.url(path)).await.unwrap();
        // The public catalog has its own layout, its heading in a header.
        wait_css(
            &b,
            if name == "public-catalog" {
                "h1"
            } else {
                "main h1"
            },
        )
        .await;
        let measured = b
            .execute(
                "var w = window.innerWidth; \
                 var wide = Array.from(document.querySelectorAll('body *')) \
                   .filter(function (e) { var r = e.getBoundingClientRect(); return r.right > w + 0.5 && r.width > 0; }) \
                   .slice(-5).map(function (e) { return e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right); }); \
                 return [document.documentElement.scrollWidth, w, wide.join(', ')];",
                vec![],
            )
            .await
            .unwrap();
        let (scroll, inner) = (measured[0].as_u64().unwrap(), measured[1].as_u64().unwrap());
        shot(&b, &format!("30-phone-{name}")).await;
        assert!(
            scroll <= inner,
            "{path} is {scroll} px wide in a {inner} px window; too wide: {}",
            measured[2]
        );
    }
    // A time in the delivery log stays on one or two lines.
    b.goto(&app.url(&format!("/portal/endpoints/{endpoint_id}")))
        .await
        .unwrap();
    let time = wait_css(&b, "#delivery-log tr.delivery time").await;
    let arg = serde_json::to_value(&time).unwrap();
    let lines = b
        .execute(
            "var e = arguments[0]; var lh = parseFloat(getComputedStyle(e).lineHeight) || 20; \
             return Math.round(e.getBoundingClientRect().height / lh);",
            vec![arg],
        )
        .await
        .unwrap();
    assert!(
        lines.as_u64().is_some_and(|n| n <= 2),
        "a log time wraps over {lines} lines"
    );
    app.stop().await;
}
