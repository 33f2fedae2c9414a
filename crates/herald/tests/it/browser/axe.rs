//! Accessibility: axe-core (vendored from npm in `tests/assets/axe-core/`) is
//! injected into each main portal page (the operator's list of applications,
//! the Webhooks list, the Add form, the endpoint page with a failing
//! delivery, the message page, the event catalog) and no `serious` or
//! `critical` violation may be found; then the same pages in the dark
//! palette and with a platform's primary colour (a link's `theme`).

use fantoccini::Client;
use serde_json::{json, Value};

use super::{wait_css, wait_path, with_browser, WAIT};
use crate::support::{Receiver, Reply, TestApp};

/// axe-core 4.14.1, as npm ships it.
const AXE: &str = include_str!("../../assets/axe-core/axe.min.js");

#[tokio::test(flavor = "multi_thread")]
async fn axe_finds_no_serious_or_critical_violation_on_the_main_pages() {
    with_browser("axe", axe_pages).await;
}

/// Runs axe on the page and returns its serious and critical violations,
/// each with the first nodes it names (the test's failure message).
async fn serious_violations(b: &Client) -> Vec<Value> {
    let script = format!(
        "{AXE}\n;const done = arguments[arguments.length - 1];
        axe.run(document, {{resultTypes: ['violations']}})
          .then(r => done(r.violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => ({{id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + n.failureSummary)}}))))
          .catch(e => done([{{error: String(e)}}]));"
    );
    let found = b.execute_async(&script, vec![]).await.unwrap();
    found.as_array().cloned().unwrap_or_else(|| vec![found])
}

async fn check(b: &Client, page: &str, checked: &mut Vec<String>) {
    let violations = serious_violations(b).await;
    assert!(
        violations.is_empty(),
        "{page}: axe found serious or critical violations:\n{}",
        serde_json::to_string_pretty(&violations).unwrap()
    );
    checked.push(page.to_string());
}

async fn axe_pages(b: Client) {
    let app = TestApp::seeded().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Design Club").await;
    receiver.set_default("/failing", Reply::status(500).body("no"));
    let ep = app
        .create_endpoint(
            &app_id,
            json!({
                "url": receiver.url("/failing"),
                "description": "The members' CRM",
                "filterTypes": ["member.created"],
            }),
        )
        .await;
    let msg = app
        .send(
            &app_id,
            json!({
                "eventType": "member.created",
                "eventId": "evt-axe-1",
                "payload": {"member": {"id": "m1", "name": "Ada"}, "test": false}
            }),
        )
        .await;
    receiver.wait_for("/failing", 1, WAIT).await;
    let mut checked = Vec::new();

    b.goto(&app.cli_portal_link(None).await).await.unwrap();
    wait_path(&b, "the operator's list", |p| p == "/portal/").await;
    b.goto(&app.url("/portal/apps")).await.unwrap();
    wait_path(&b, "the operator's list", |p| p == "/portal/apps").await;
    check(&b, "the operator's list of applications", &mut checked).await;

    b.goto(&app.url(&format!("/portal/apps/{app_id}")))
        .await
        .unwrap();
    wait_css(&b, "#endpoints").await;
    check(&b, "the Webhooks list", &mut checked).await;

    b.goto(&app.url("/portal/endpoints/new")).await.unwrap();
    wait_css(&b, "#endpoint-form").await;
    check(&b, "the Add form", &mut checked).await;

    b.goto(&app.url(&format!("/portal/endpoints/{ep}")))
        .await
        .unwrap();
    wait_css(&b, "#delivery-log").await;
    check(&b, "the endpoint page", &mut checked).await;

    b.goto(&app.url(&format!("/portal/endpoints/{ep}/messages/{msg}")))
        .await
        .unwrap();
    wait_css(&b, "#resend").await;
    check(&b, "the message page", &mut checked).await;

    b.goto(&app.url("/portal/catalog")).await.unwrap();
    wait_path(&b, "the catalog", |p| p == "/portal/catalog").await;
    check(&b, "the event catalog", &mut checked).await;

    b.goto(&app.url(&format!("/portal/endpoints/{ep}/edit")))
        .await
        .unwrap();
    wait_css(&b, "#endpoint-form").await;
    check(&b, "the Edit form", &mut checked).await;

    b.goto(&app.url(&format!("/portal/endpoints/{ep}/delete")))
        .await
        .unwrap();
    wait_css(&b, "main h1").await;
    check(&b, "the Delete page", &mut checked).await;

    b.goto(&app.url("/portal/endpoints/ep_nothing"))
        .await
        .unwrap();
    wait_css(&b, "main h1").await;
    check(&b, "the not-found page", &mut checked).await;

    b.goto(&app.url("/catalog")).await.unwrap();
    wait_path(&b, "the public catalog", |p| p == "/catalog").await;
    wait_css(&b, "nav.toc").await;
    check(&b, "the public catalog", &mut checked).await;

    // The dark palette (forced by a link's theme: the headless browser
    // prefers light), and a platform's primary colour.
    for (theme, name, background, link) in [
        (
            json!({"mode": "dark"}),
            "dark",
            "rgb(15, 18, 22)",
            "rgb(165, 180, 252)",
        ),
        (
            json!({"mode": "light", "primaryColor": "#0a7c4b"}),
            "a primary colour",
            "rgb(255, 255, 255)",
            "rgb(10, 124, 75)",
        ),
        // Dark keeps its own accent: a colour chosen for a light page
        // would not contrast with a dark one.
        (
            json!({"mode": "dark", "primaryColor": "#0a7c4b"}),
            "dark with a primary colour",
            "rgb(15, 18, 22)",
            "rgb(165, 180, 252)",
        ),
    ] {
        let (status, body) = app
            .post_json(
                &format!("/api/v1/auth/app-portal-access/{app_id}"),
                json!({ "theme": theme }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        b.goto(body["url"].as_str().unwrap()).await.unwrap();
        wait_css(&b, "#endpoints").await;
        // The theme is applied: the page's background and its links' colour.
        let colours = b
            .execute(
                "return [getComputedStyle(document.body).backgroundColor, \
                 getComputedStyle(document.querySelector('.endpoint-link')).color]",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(colours, json!([background, link]), "{name}");
        check(&b, &format!("the Webhooks list, {name}"), &mut checked).await;
        b.goto(&app.url(&format!("/portal/endpoints/{ep}")))
            .await
            .unwrap();
        wait_css(&b, "#delivery-log").await;
        check(&b, &format!("the endpoint page, {name}"), &mut checked).await;
        b.goto(&app.url(&format!("/portal/endpoints/{ep}/messages/{msg}")))
            .await
            .unwrap();
        wait_css(&b, "#resend").await;
        check(&b, &format!("the message page, {name}"), &mut checked).await;
    }
    // A read-only link's endpoint page (no controls, a notice instead),
    // and the page a logged-out session lands on.
    let (status, body) = app
        .post_json(
            &format!("/api/v1/auth/app-portal-access/{app_id}"),
            json!({"readOnly": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    b.goto(body["url"].as_str().unwrap()).await.unwrap();
    wait_css(&b, "#endpoints").await;
    b.goto(&app.url(&format!("/portal/endpoints/{ep}")))
        .await
        .unwrap();
    wait_css(&b, "#read-only").await;
    check(&b, "the endpoint page, read-only", &mut checked).await;
    b.goto(&app.url("/portal/logged-out")).await.unwrap();
    wait_css(&b, "main h1").await;
    check(&b, "the logged-out page", &mut checked).await;
    assert_eq!(checked.len(), 21, "{checked:?}");
    app.stop().await;
}
