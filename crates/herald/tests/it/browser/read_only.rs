//! A `readOnly` portal link in a real browser: no page shows a button, link
//! or form that changes anything, and a change forged from the page (a form
//! built by script, with the session's own CSRF token) is refused.

use std::time::Duration;

use fantoccini::Client;
use serde_json::{json, Value};

use super::{shot, wait_path, wait_text, with_browser};
use crate::support::{Receiver, TestApp};

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_portal_shows_nothing_that_changes_and_refuses_a_forged_change() {
    with_browser("read-only", read_only).await;
}

/// What on the page could change something: POST forms other than logout,
/// and buttons or links whose words are an action.
const CHANGERS: &str = r#"
const forms = [...document.querySelectorAll('form')]
  .filter(f => f.method.toLowerCase() === 'post' && new URL(f.action).pathname !== '/portal/logout')
  .map(f => f.action);
const words = /\b(add|edit|delete|test|send|resend|rotate|recover|enable|disable|save|replay)\b/i;
const controls = [...document.querySelectorAll('a, button, input[type=submit]')]
  .map(e => (e.textContent || e.value || '').trim())
  .filter(t => words.test(t));
return {forms, controls};
"#;

async fn assert_nothing_changes(b: &Client, page: &str) {
    let found = b.execute(CHANGERS, vec![]).await.unwrap();
    assert_eq!(
        found,
        json!({"forms": [], "controls": []}),
        "{page}: a read-only portal shows nothing that changes"
    );
    // The page says why.
    wait_text(b, "#read-only", "the read-only notice", |t| {
        t.contains("read-only")
    })
    .await;
}

async fn read_only(b: Client) {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Design Club").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/ro")}))
        .await;
    let msg = app
        .send(&app_id, json!({"eventType": "a", "payload": {"n": 1}}))
        .await;
    receiver.wait_for("/ro", 1, Duration::from_secs(30)).await;

    let (status, body) = app
        .post_json(
            &format!("/api/v1/auth/app-portal-access/{app_id}"),
            json!({"readOnly": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    b.goto(body["url"].as_str().unwrap()).await.unwrap();
    wait_path(&b, "the Webhooks page", |p| p == "/portal/").await;
    wait_text(&b, "#endpoints", "the endpoint in the list", |t| {
        t.contains("/ro")
    })
    .await;
    assert_nothing_changes(&b, "the Webhooks list").await;

    b.goto(&app.url(&format!("/portal/endpoints/{ep}")))
        .await
        .unwrap();
    wait_text(&b, "#delivery-log", "the message in the log", |t| {
        t.contains("a")
    })
    .await;
    assert_nothing_changes(&b, "the endpoint page").await;
    shot(&b, "50-read-only-endpoint").await;

    b.goto(&app.url(&format!("/portal/endpoints/{ep}/messages/{msg}")))
        .await
        .unwrap();
    wait_text(&b, "h1", "the message page", |t| t.contains("a")).await;
    assert_nothing_changes(&b, "the message page").await;

    // The forms' own pages are refused, not shown without their buttons.
    for path in [
        "/portal/endpoints/new".to_string(),
        format!("/portal/endpoints/{ep}/edit"),
        format!("/portal/endpoints/{ep}/delete"),
    ] {
        b.goto(&app.url(&path)).await.unwrap();
        wait_text(&b, "h1", "the read-only refusal", |t| {
            t.contains("This portal is read-only")
        })
        .await;
    }

    // A change forged from the page, with the session's CSRF token: refused,
    // and the endpoint is still enabled.
    b.goto(&app.url(&format!("/portal/endpoints/{ep}")))
        .await
        .unwrap();
    wait_path(&b, "the endpoint page", |p| {
        p.starts_with("/portal/endpoints/")
    })
    .await;
    let forged = format!(
        r#"const csrf = document.querySelector('form[action="/portal/logout"] input[name=csrf]').value;
        const f = document.createElement('form');
        f.method = 'post';
        f.action = '/portal/endpoints/{ep}/toggle';
        const i = document.createElement('input');
        i.name = 'csrf'; i.value = csrf; f.appendChild(i);
        document.body.appendChild(f);
        f.submit();
        return csrf.length;"#
    );
    let csrf_len = b.execute(&forged, vec![]).await.unwrap();
    assert!(
        csrf_len.as_u64().unwrap_or(0) > 0,
        "the session's CSRF token was used"
    );
    wait_text(&b, "h1", "the read-only refusal of the forged POST", |t| {
        t.contains("This portal is read-only")
    })
    .await;
    let (_, endpoint): (_, Value) = app
        .get_json(&format!("/api/v1/app/{app_id}/endpoint/{ep}"))
        .await;
    assert_eq!(endpoint["disabled"], json!(false), "{endpoint}");
    app.stop().await;
}
