//! The endpoint page's delivery log, found through its filters (status, event
//! type) and search (message id or eventId): query parameters a form without
//! JavaScript sends, answered by the server.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{PortalSession, Receiver, Reply, TestApp};

const WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The message ids the log on this page lists, in order.
fn logged(html: &str) -> Vec<String> {
    html.split("class=\"delivery-link\" href=\"")
        .skip(1)
        .map(|rest| {
            let href = &rest[..rest.find('"').unwrap()];
            href.rsplit('/').next().unwrap().to_string()
        })
        .collect()
}

#[tokio::test]
async fn the_delivery_log_is_filtered_by_status_and_event_type_and_searched() {
    let app = TestApp::seeded().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Spot").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/hook")}))
        .await;

    // Delivered: a member.created with the platform's own eventId.
    let delivered = app
        .send(
            &app_id,
            json!({"eventType": "member.created", "eventId": "evt-alpha-1", "payload": {"n": 1}}),
        )
        .await;
    receiver.wait_for("/hook", 1, WAIT).await;
    // Pending: a live.updated scheduled an hour ahead.
    let pending = app
        .send(
            &app_id,
            json!({
                "eventType": "live.updated",
                "payload": {"n": 2},
                "deliverAt": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
            }),
        )
        .await;
    // Failed: a Test the receiver answers 500 (a Test is not retried).
    receiver.script("/hook", vec![Reply::status(500)]);
    let portal = PortalSession::for_app(&app, &app_id).await;
    let csrf = portal.csrf().await;
    let (_, _, html) = portal
        .post_and_follow(
            &format!("/portal/endpoints/{ep}/test"),
            &[("csrf", &csrf), ("event_type", "member.created")],
        )
        .await;
    assert!(html.contains("class=\"status bad\">500</span>"), "{html}");

    let log = |query: &str| {
        let path = format!("/portal/endpoints/{ep}?{query}");
        let portal = &portal;
        async move {
            let (status, html) = portal.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {html}");
            (logged(&html), html)
        }
    };
    let (all, _) = log("").await;
    assert_eq!(all.len(), 3, "{all:?}");
    let failed = all
        .iter()
        .find(|id| **id != delivered && **id != pending)
        .unwrap()
        .clone();

    for (query, expected) in [
        ("status=delivered", vec![delivered.clone()]),
        ("status=failed", vec![failed.clone()]),
        ("status=pending", vec![pending.clone()]),
        ("event_type=live.updated", vec![pending.clone()]),
        (
            "event_type=member.created",
            vec![failed.clone(), delivered.clone()],
        ),
        (
            "status=failed&event_type=member.created",
            vec![failed.clone()],
        ),
        ("status=failed&event_type=live.updated", vec![]),
        ("q=evt-alpha-1", vec![delivered.clone()]),
        (&format!("q={pending}")[..], vec![pending.clone()]),
        (
            &format!("q=+{failed}+&status=failed")[..],
            vec![failed.clone()],
        ),
        ("q=evt-alpha-1&status=failed", vec![]),
        ("q=evt-alpha-1&event_type=live.updated", vec![]),
        ("q=no-such-message", vec![]),
    ] {
        let (ids, html) = log(query).await;
        assert_eq!(ids, expected, "?{query}");
        if expected.is_empty() {
            assert!(html.contains("id=\"log-empty\""), "?{query}: {html}");
        }
        // The form shows what was asked, and a way back to everything.
        assert!(html.contains("id=\"log-filter-clear\""), "?{query}");
    }
    let (_, html) = log("status=delivered").await;
    assert!(
        html.contains("<option value=\"delivered\" selected>"),
        "{html}"
    );
    let (_, html) = log("q=evt-alpha-1").await;
    assert!(html.contains("value=\"evt-alpha-1\""), "{html}");

    // An unknown status is said in words, and the log is not filtered by it.
    let (ids, html) = log("status=bogus").await;
    assert_eq!(ids.len(), 3);
    assert!(
        html.contains("id=\"log-filter-error\"") && html.contains("“bogus” is not a status"),
        "{html}"
    );

    // Another endpoint's message is not found in this endpoint's log.
    let other = app
        .create_endpoint(
            &app_id,
            json!({"url": receiver.url("/other"), "filterTypes": ["live.updated"]}),
        )
        .await;
    let (status, html) = portal
        .get(&format!("/portal/endpoints/{other}?q={delivered}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(logged(&html).is_empty(), "{html}");
    app.stop().await;
}

#[tokio::test]
async fn the_log_pages_keep_their_filters() {
    let app = TestApp::seeded().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Spot").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/hook")}))
        .await;
    // 25 member.created (more than a page of 20) and 3 live.updated.
    for n in 0..28 {
        let event_type = if n < 3 {
            "live.updated"
        } else {
            "member.created"
        };
        app.send(
            &app_id,
            json!({"eventType": event_type, "payload": {"n": n}}),
        )
        .await;
    }
    receiver.wait_for("/hook", 28, WAIT).await;
    let portal = PortalSession::for_app(&app, &app_id).await;
    let (_, html) = portal
        .get(&format!("/portal/endpoints/{ep}?event_type=member.created"))
        .await;
    assert_eq!(logged(&html).len(), 20);
    let older = crate::support::attr_after(&html, "id=\"older\" href=\"").replace("&amp;", "&");
    assert!(older.contains("event_type=member.created"), "{older}");
    let (_, html) = portal.get(&older).await;
    assert_eq!(
        logged(&html).len(),
        5,
        "the rest of the member.created: {html}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_message_page_tells_its_status_and_where_each_attempt_went() {
    let app = TestApp::seeded().await;
    let receiver = Receiver::start().await;
    receiver.set_default("/down", Reply::status(500).body("down for maintenance"));
    receiver.set_default("/old", Reply::status(200).header("X-Receipt", "r-42"));
    let app_id = app.create_app("Spot").await;
    let ep = app
        .create_endpoint(
            &app_id,
            json!({"url": receiver.url("/old"), "headers": {"Authorization": "Bearer s3cret", "X-Team": "blue"}}),
        )
        .await;
    app.create_endpoint(&app_id, json!({"url": receiver.url("/down")}))
        .await;
    let msg = app
        .send(
            &app_id,
            json!({"eventType": "member.created", "payload": {"member": {"name": "Ada"}}}),
        )
        .await;
    receiver.wait_for("/old", 1, WAIT).await;
    receiver.wait_for("/down", 1, WAIT).await;
    // The endpoint moves to a new URL after its first attempt.
    let (status, body) = app
        .call(
            Some(&app.token),
            reqwest::Method::PUT,
            &format!("/api/v1/app/{app_id}/endpoint/{ep}"),
            Some(json!({"url": receiver.url("/new")})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let portal = PortalSession::for_app(&app, &app_id).await;
    let path = format!("/portal/endpoints/{ep}/messages/{msg}");
    let html = app
        .eventually(WAIT, "the failing endpoint's attempt recorded", || {
            let (portal, path) = (&portal, &path);
            async move {
                let (_, html) = portal.get(path).await;
                html.contains("1 failing and being retried").then_some(html)
            }
        })
        .await;
    // One line at the top: over both endpoints, it is failing.
    let overall = crate::support::attr_after(&html, "<p id=\"overall-status\" class=\"overall\">");
    assert!(
        html.contains("class=\"badge badge-failing\">failing</span> Failing: delivered to 1 of 2 endpoints; 1 failing and being retried."),
        "{overall} in {html}"
    );
    // The attempt went to the old URL, and says so after the edit.
    let old = receiver.url("/old");
    assert!(
        html.contains(&format!(
            "<span class=\"muted\">to</span> <code>{old}</code>"
        )),
        "{html}"
    );
    assert!(html.contains("<span class=\"duration\">"), "{html}");
    // Each attempt keeps the headers it was sent with and got back; a
    // credential shows as its name only, here and in the store.
    let request = html
        .split_once("headers-box request-headers")
        .expect("the attempt's request headers")
        .1
        .split_once("</details>")
        .unwrap()
        .0;
    for pair in [
        "<dt><code>authorization</code></dt><dd><code>••••••••</code></dd>",
        "<dt><code>x-team</code></dt><dd><code>blue</code></dd>",
        &format!("<dt><code>webhook-id</code></dt><dd><code>{msg}</code></dd>"),
        "<dt><code>webhook-signature</code></dt><dd><code>v1,",
    ] {
        assert!(request.contains(pair), "{pair} in {request}");
    }
    let response = html
        .split_once("headers-box response-headers")
        .expect("the attempt's response headers")
        .1
        .split_once("</details>")
        .unwrap()
        .0;
    assert!(
        response.contains("<dt><code>x-receipt</code></dt><dd><code>r-42</code></dd>"),
        "{response}"
    );
    assert!(!html.contains("s3cret"), "no credential on the page");
    // The payload, pretty and folding; the time exact without the script.
    assert!(html.contains("<details id=\"payload-box\" open>"), "{html}");
    assert!(html.contains("&quot;name&quot;: &quot;Ada&quot;"), "{html}");
    let time = crate::support::attr_after(&html, "<time class=\"when\" datetime=\"");
    assert!(time.ends_with('Z') && time.contains('T'), "{time}");
    let title = crate::support::attr_after(&html, "\" title=\"");
    assert!(
        title.ends_with(" UTC") && html.contains(&format!("title=\"{title}\">{title}</time>")),
        "{title}"
    );
    // Copy buttons are hidden without the script; the ids are selectable.
    assert!(
        html.contains("<code id=\"msg-id\" class=\"copyable\">"),
        "{html}"
    );
    assert!(html.contains("data-copy=\"msg-id\" hidden>"), "{html}");

    // Resend: 303 to the message page, which says it is queued; the new
    // attempt goes to the new URL and is marked as resent.
    let csrf = portal.csrf().await;
    let (location, status, html) = portal
        .post_and_follow(&format!("{path}/resend"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(location, format!("{path}?notice=resent"));
    assert!(html.contains("Message queued to be sent again."), "{html}");
    receiver.wait_for("/new", 1, WAIT).await;
    let new = receiver.url("/new");
    let html = app
        .eventually(WAIT, "the resent attempt on the page", || {
            let (portal, path, new) = (&portal, &path, &new);
            async move {
                let (_, html) = portal.get(path).await;
                html.contains(&format!("<code>{new}</code>"))
                    .then_some(html)
            }
        })
        .await;
    assert!(html.contains("trigger-resent\">resent</span>"), "{html}");
    assert!(!html.contains("trigger-test"), "{html}");
    app.stop().await;
}
