//! The portal in a real browser: headless Chromium driven through chromedriver
//! walks the seed's story (add an endpoint, test it, edit it, read its delivery
//! log, resend, delete) and checks that one application's session cannot reach
//! another's pages. Screenshots of the main steps are kept in
//! `target/test-artifacts/portal/`.
//!
//! Chromium and chromedriver are required: without them these tests fail (CI
//! installs Debian's `chromium` and `chromium-driver`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{csrf_of, portal_link, Receiver, TestApp};

mod axe;
mod embed;
mod failing;
mod finding;
mod no_script;
mod phone;
mod read_only;
mod reference;

/// How long a page may take to show what a step waits for.
const WAIT: Duration = Duration::from_secs(30);

const CHROME_FLAGS: [&str; 10] = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1100",
    "--lang=en-US",
];

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_story_add_test_edit_read_resend_delete() {
    with_browser("seed-story", seed_story).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_portal_session_cannot_reach_another_applications_pages() {
    with_browser("isolation", isolation).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slack_format_webhook_is_added_previewed_and_tested() {
    with_browser("slack-format", slack_format).await;
}

/// A Spot admin adds a webhook for Slack: picks the ready-made format, sees
/// the message a member.created event becomes before saving, saves, and
/// presses Test; the receiver gets the Slack message, signed.
async fn slack_format(b: Client) {
    let app = TestApp::seeded().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Design Club").await;
    let link = portal_link(&app, &app_id).await;
    b.goto(&link).await.unwrap();
    wait_path(&b, "the Webhooks page", |p| p == "/portal/").await;

    click(&b, "#add-endpoint").await;
    let url_field = wait_css(&b, "#url").await;
    url_field.send_keys(&receiver.url("/slack")).await.unwrap();
    // Loopback is allowed on this server: the hint says so, no warning.
    wait_text(
        &b,
        "#url-hint",
        "the hint for an allowed local address",
        |t| t.contains("operator allows it"),
    )
    .await;
    click(&b, &event_box("member.created")).await;
    wait_css(&b, "#format")
        .await
        .select_by_value("slack")
        .await
        .unwrap();
    // The format's code fills the editor, for a developer to start from.
    let code = wait_css(&b, "#transformation_code")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(code.contains("function handler(webhook)"), "{code}");
    wait_css(&b, "#preview_event_type")
        .await
        .select_by_value("member.created")
        .await
        .unwrap();
    click(&b, "#preview-button").await;
    let preview = wait_text(&b, "#preview-body", "the Slack message", |t| {
        t.contains("\"blocks\"")
    })
    .await;
    let previewed: serde_json::Value = serde_json::from_str(&preview).unwrap();
    let sentence = previewed["text"].as_str().unwrap().to_string();
    assert!(sentence.contains("joined"), "{previewed}");
    let target = wait_css(&b, "#preview-target").await.text().await.unwrap();
    assert!(target.starts_with("POST "), "{target}");
    assert!(receiver.received().is_empty(), "a preview sends nothing");
    shot(&b, "10-slack-format-preview").await;

    click(&b, "#save-endpoint").await;
    wait_path(&b, "the new endpoint's page", is_endpoint_page).await;
    wait_text(&b, "#message-format", "the format on the page", |t| {
        t.contains("Slack")
    })
    .await;

    wait_css(&b, "#test-event-type")
        .await
        .select_by_value("member.created")
        .await
        .unwrap();
    click(&b, "#send-test").await;
    wait_text(&b, "#test-status", "status 200 of the test", |t| {
        t.trim().starts_with("200")
    })
    .await;
    let got = receiver.wait_for("/slack", 1, WAIT).await;
    let body = got[0].json();
    assert!(body["blocks"].is_array(), "{body}");
    assert_eq!(body["text"], sentence, "Test sends what the preview showed");
    shot(&b, "11-slack-format-tested").await;
    app.stop().await;
}

/// The name of the live in the story's real message.
const LIVE_NAME: &str = "Portfolio review: spring collection";

/// What the seed's story has made so far.
struct Story {
    b: Client,
    app: TestApp,
    receiver: Receiver,
    app_id: String,
    hook_url: String,
    endpoint_path: String,
    endpoint_id: String,
}

async fn seed_story(b: Client) {
    let app = TestApp::seeded().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Design Club").await;
    let hook_url = receiver.url("/spot");

    // The platform asks for a portal link and the person opens it.
    let link = portal_link(&app, &app_id).await;
    b.goto(&link).await.unwrap();
    wait_path(&b, "the Webhooks page", |p| p == "/portal/").await;
    let mut story = Story {
        b,
        app,
        receiver,
        app_id,
        hook_url,
        endpoint_path: String::new(),
        endpoint_id: String::new(),
    };
    story.add().await;
    story.test().await;
    story.edit().await;
    let (msg_id, link_css) = story.real_message().await;
    story.detail_and_resend(&msg_id, &link_css).await;
    story.delete().await;
}

impl Story {
    /// Add: URL, one event, ISO 8601 dates.
    async fn add(&mut self) {
        let (b, hook_url) = (&self.b, self.hook_url.as_str());
        click(b, "#add-endpoint").await;
        wait_css(b, "#endpoint-form").await;
        let url_field = wait_css(b, "#url").await;
        url_field.clear().await.unwrap();
        url_field.send_keys(hook_url).await.unwrap();
        click(b, &event_box("live.updated")).await;
        wait_css(b, "#date_format")
            .await
            .select_by_value("iso8601")
            .await
            .unwrap();
        // The preview follows the chosen format (JavaScript updates it).
        wait_text(
            b,
            "#date-preview",
            "an ISO 8601 date in the preview",
            looks_iso8601,
        )
        .await;
        shot(b, "02b-add-endpoint-date-format").await;
        b.execute("window.scrollTo(0, 0)", vec![]).await.unwrap();
        shot(b, "02-add-endpoint-form").await;
        click(b, "#save-endpoint").await;
        self.endpoint_path = wait_path(b, "the new endpoint's page", is_endpoint_page).await;
        self.endpoint_id = self.endpoint_path.rsplit('/').next().unwrap().to_string();
        wait_text(b, "h1", "the endpoint URL in the title", |t| {
            t.contains(hook_url)
        })
        .await;
    }

    /// Test: the example is really delivered and the page shows the 200.
    async fn test(&self) {
        let (b, receiver) = (&self.b, &self.receiver);
        wait_css(b, "#test-event-type")
            .await
            .select_by_value("live.updated")
            .await
            .unwrap();
        click(b, "#send-test").await;
        wait_text(b, "#test-status", "status 200 of the test", |t| {
            t.trim().starts_with("200")
        })
        .await;
        let got = receiver.wait_for("/spot", 1, WAIT).await;
        let test_body = got[0].json();
        assert_eq!(test_body["test"], true, "{test_body}");
        assert!(
            test_body["live"]["name"].is_string(),
            "the live.updated example was sent: {test_body}"
        );
        assert!(
            test_body["occurredAt"].as_str().is_some_and(looks_iso8601),
            "the endpoint's date format is applied: {test_body}"
        );
        shot(b, "03-endpoint-page-tested").await;
    }

    /// Edit: add member.created to the events.
    async fn edit(&self) {
        let (b, app, hook_url) = (&self.b, &self.app, self.hook_url.as_str());
        let (app_id, endpoint_id, endpoint_path) =
            (&self.app_id, &self.endpoint_id, &self.endpoint_path);
        click(b, "#edit-endpoint").await;
        wait_css(b, "#endpoint-form").await;
        let prefilled = wait_css(b, "#url").await.prop("value").await.unwrap();
        assert_eq!(prefilled.as_deref(), Some(hook_url));
        assert!(
            wait_css(b, &event_box("live.updated"))
                .await
                .is_selected()
                .await
                .unwrap(),
            "the edit form keeps the chosen event"
        );
        click(b, &event_box("member.created")).await;
        click(b, "#save-endpoint").await;
        wait_path(b, "the endpoint page after the edit", |p| {
            p == *endpoint_path
        })
        .await;
        let (status, ep) = app
            .get_json(&format!("/api/v1/app/{app_id}/endpoint/{endpoint_id}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{ep}");
        let mut types: Vec<&str> = ep["filterTypes"]
            .as_array()
            .unwrap_or_else(|| panic!("no filterTypes in {ep}"))
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        types.sort_unstable();
        assert_eq!(types, ["live.updated", "member.created"], "{ep}");
        assert_eq!(ep["dateFormat"], "iso8601", "{ep}");
    }

    /// A real message from the platform shows up in the delivery log, and the
    /// list shows the endpoint, its events and its health. Returns the
    /// message id and the CSS of its link in the log.
    async fn real_message(&self) -> (String, String) {
        let (b, app, receiver) = (&self.b, &self.app, &self.receiver);
        let hook_url = self.hook_url.as_str();
        let app_id = &self.app_id;
        let msg_id = app
        .send(
            app_id,
            json!({
                "eventType": "live.updated",
                "payload": {
                    "live": {
                        "id": "5f0c1e2a-7a43-4c5e-9d0b-3c1f2a9e8b71",
                        "name": LIVE_NAME,
                        "status": "Live",
                        "startsAt": 1_760_000_000
                    },
                    "spot": {"id": "0b9f3f7e-2d6a-4c41-8f3e-6a1d2c3b4e5f", "name": "Design Club"},
                    "occurredAt": 1_760_000_012,
                    "test": false
                }
            }),
        )
        .await;
        let real = receiver.wait_for("/spot", 2, WAIT).await;
        assert!(
            real.iter().any(|r| r.header("webhook-id") == msg_id),
            "the receiver got {msg_id}"
        );
        let link_css =
            format!("#delivery-log tr.delivery a.delivery-link[href$=\"/messages/{msg_id}\"]");
        reload_until(b, "the message in the delivery log", || async {
            b.find(Locator::Css(&link_css)).await.ok()
        })
        .await;

        // The list shows the endpoint, its events and its health.
        b.goto(&app.url("/portal/")).await.unwrap();
        let row = wait_text(b, "#endpoints tr.endpoint", "the endpoint row", |t| {
            t.contains(hook_url)
        })
        .await;
        for expected in ["live.updated", "member.created", "active", "%"] {
            assert!(
                row.to_lowercase().contains(expected),
                "{expected:?} in the row: {row}"
            );
        }
        shot(b, "01-webhooks-list").await;

        (msg_id, link_css)
    }

    /// The delivery's detail: the payload as sent and the 200; then Resend.
    async fn detail_and_resend(&self, msg_id: &str, link_css: &str) {
        let (b, app, receiver, endpoint_path) =
            (&self.b, &self.app, &self.receiver, &self.endpoint_path);
        b.goto(&app.url(endpoint_path)).await.unwrap();
        click(b, link_css).await;
        wait_path(b, "the delivery detail", |p| {
            p == format!("{endpoint_path}/messages/{msg_id}")
        })
        .await;
        wait_text(b, "#payload", "the payload", |t| t.contains(LIVE_NAME)).await;
        reload_until(b, "an attempt with status 200", || async {
            let attempts = b
                .find_all(Locator::Css("#attempts li.attempt"))
                .await
                .ok()?;
            for a in attempts {
                if a.text().await.ok()?.contains("200") {
                    return Some(());
                }
            }
            None
        })
        .await;
        wait_text(b, "#request-headers", "the signing headers", |t| {
            t.contains("webhook-id") && t.contains(msg_id)
        })
        .await;
        shot(b, "04-delivery-detail").await;

        // Resend: the receiver gets the same webhook-id again.
        click(b, "#resend").await;
        let same_id = |r: &crate::support::Received| r.header("webhook-id") == msg_id;
        let mut resent = || {
            let n = receiver
                .received_on("/spot")
                .iter()
                .filter(|r| same_id(r))
                .count();
            async move { (n >= 2).then_some(()) }
        };
        crate::support::eventually(WAIT, "the resent message", &mut resent).await;
        // The page the Resend landed on (it says so) shows the second attempt
        // by itself, without a reload (the marker set on this document
        // survives).
        wait_path(b, "the message page after Resend", |p| {
            p == format!("{endpoint_path}/messages/{msg_id}")
        })
        .await;
        wait_text(b, "p.notice", "the Resend's notice", |t| {
            t.contains("queued to be sent again")
        })
        .await;
        b.execute("window.heraldNoReload = true;", vec![])
            .await
            .unwrap();
        let mut two_in_place = || async {
            let n = b
                .find_all(Locator::Css("#attempts li.attempt"))
                .await
                .ok()?
                .len();
            (n >= 2).then_some(())
        };
        crate::support::eventually(WAIT, "two attempts, in place", &mut two_in_place).await;
        let same_page = b
            .execute("return window.heraldNoReload === true;", vec![])
            .await
            .unwrap();
        assert_eq!(same_page, serde_json::json!(true), "the page was reloaded");
    }

    /// Delete, with confirmation; the list and the API agree it is gone.
    async fn delete(&self) {
        let (b, app, endpoint_path) = (&self.b, &self.app, &self.endpoint_path);
        let (app_id, endpoint_id) = (&self.app_id, &self.endpoint_id);
        b.goto(&app.url(endpoint_path)).await.unwrap();
        click(b, "#delete-endpoint").await;
        click(b, "#confirm-delete").await;
        wait_path(b, "the Webhooks page after deleting", |p| p == "/portal/").await;
        wait_css(b, "#add-endpoint").await;
        let left = b
            .find_all(Locator::Css(&format!(
                "a.endpoint-link[href$=\"/portal/endpoints/{endpoint_id}\"]"
            )))
            .await
            .unwrap();
        assert!(left.is_empty(), "the deleted endpoint is still listed");
        shot(b, "05-webhooks-list-after-delete").await;
        let (status, body) = app
            .get_json(&format!("/api/v1/app/{app_id}/endpoint/{endpoint_id}"))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    }
}

async fn isolation(b: Client) {
    let app = TestApp::seeded().await;
    let receiver = Receiver::start().await;
    let mut spots = Vec::new();
    for name in ["a", "b"] {
        let app_id = app.create_app(&format!("Spot {name}")).await;
        let endpoint_id = app
            .create_endpoint(&app_id, json!({"url": receiver.url(&format!("/{name}"))}))
            .await;
        let msg_id = app
            .send(
                &app_id,
                json!({"eventType": "member.created", "payload": {"spot": name}}),
            )
            .await;
        receiver.wait_for(&format!("/{name}"), 1, WAIT).await;
        spots.push((app_id, endpoint_id, msg_id));
    }
    let (a_app, a_ep, a_msg) = &spots[0];
    let (b_app, b_ep, b_msg) = &spots[1];

    b.goto(&portal_link(&app, a_app).await).await.unwrap();
    wait_path(&b, "A's Webhooks page", |p| p == "/portal/").await;
    // A's own pages work (so a 404 below is about B, not a broken session).
    let own = format!("/portal/endpoints/{a_ep}/messages/{a_msg}");
    b.goto(&app.url(&own)).await.unwrap();
    wait_text(&b, "#payload", "A's own payload", |t| t.contains("\"a\"")).await;

    let foreign = [
        format!("/portal/endpoints/{b_ep}"),
        format!("/portal/endpoints/{b_ep}/edit"),
        format!("/portal/endpoints/{b_ep}/delete"),
        format!("/portal/endpoints/{b_ep}/messages/{b_msg}"),
        // A's endpoint with B's message.
        format!("/portal/endpoints/{a_ep}/messages/{b_msg}"),
    ];
    for path in &foreign {
        b.goto(&app.url(path)).await.unwrap();
        let text = body_text(&b).await.to_lowercase();
        assert!(
            text.contains("not found"),
            "{path} in A's session should say not found: {text}"
        );
        assert!(
            !text.contains(&receiver.url("/b")) && !text.contains("\"b\""),
            "{path} leaks B's data: {text}"
        );
    }

    // The same session cookie, outside the browser: the status codes.
    let cookie = b.get_named_cookie("herald_portal").await.unwrap();
    let cookie = format!("herald_portal={}", cookie.value());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str| http.get(app.url(path)).header("cookie", &cookie).send();
    assert_eq!(get(&own).await.unwrap().status(), StatusCode::OK);
    for path in &foreign {
        assert_eq!(
            get(path).await.unwrap().status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    // A form of A's, aimed at B's endpoint: 404, and B's endpoint stays.
    let page = get(&format!("/portal/endpoints/{a_ep}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_of(&page);
    let r = http
        .post(app.url(&format!("/portal/endpoints/{b_ep}/delete")))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (status, body) = app
        .get_json(&format!("/api/v1/app/{b_app}/endpoint/{b_ep}"))
        .await;
    assert_eq!(status, StatusCode::OK, "B's endpoint survives: {body}");

    // Without a session, or with a forged link: 401.
    let r = http.get(app.url("/portal/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = http
        .get(app.url("/portal/login?token=not-a-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// The checkbox of one event type; ids contain dots, so no `#id` selector.
fn event_box(name: &str) -> String {
    format!("[id=\"event-{name}\"]")
}

fn is_endpoint_page(path: &str) -> bool {
    path.strip_prefix("/portal/endpoints/")
        .is_some_and(|id| id.starts_with("ep_") && !id.contains('/'))
}

/// `2025-06-05T12:00:00...` somewhere in the text.
fn looks_iso8601(text: &str) -> bool {
    let b = text.as_bytes();
    b.windows(11).any(|w| {
        w[..4].iter().all(u8::is_ascii_digit)
            && w[4] == b'-'
            && w[5..7].iter().all(u8::is_ascii_digit)
            && w[7] == b'-'
            && w[8..10].iter().all(u8::is_ascii_digit)
            && w[10] == b'T'
    })
}

// ---- the browser ----

/// Chromedriver and its Chromium session.
struct Browser {
    client: Client,
    _driver: Driver,
    _profile: tempfile::TempDir,
}

/// The chromedriver child process, killed on drop (also when the session
/// cannot start).
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `story` with a fresh browser, and closes the browser whether the story
/// passes or panics (a panic is then re-raised).
async fn with_browser<F, Fut>(name: &str, story: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    with_browser_scripted(name, true, story).await;
}

/// Like [`with_browser`]; with `scripts` false, the browser runs no
/// JavaScript (the portal must work without it).
async fn with_browser_scripted<F, Fut>(name: &str, scripts: bool, story: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let browser = Browser::start(scripts).await;
    let outcome = tokio::spawn(story(browser.client.clone())).await;
    if outcome.is_err() {
        shot(&browser.client, &format!("failure-{name}")).await;
    }
    let _ = browser.client.clone().close().await;
    drop(browser);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

impl Browser {
    async fn start(scripts: bool) -> Browser {
        let chromium = find_program(&["chromium", "chromium-browser", "google-chrome"]).expect(
            "Chromium is needed for the portal tests: apt-get install chromium chromium-driver",
        );
        let chromedriver = find_program(&["chromedriver"])
            .expect("chromedriver is needed for the portal tests: apt-get install chromium-driver");
        let port = free_port();
        let profile = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(profile.path().join("chromedriver.log")).unwrap();
        let driver = Driver(
            Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("cannot start chromedriver"),
        );
        let driver_url = format!("http://127.0.0.1:{port}");
        let mut browser_args: Vec<String> = CHROME_FLAGS.iter().map(|s| s.to_string()).collect();
        browser_args.push(format!(
            "--user-data-dir={}",
            profile.path().join("chrome").display()
        ));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            if scripts {
                json!({"binary": chromium, "args": browser_args})
            } else {
                json!({
                    "binary": chromium,
                    "args": browser_args,
                    "prefs": {"profile.managed_default_content_settings.javascript": 2},
                })
            },
        );
        let deadline = Instant::now() + WAIT;
        let client = loop {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&driver_url)
                .await
            {
                Ok(c) => break c,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "cannot start a Chromium session: {e}; chromedriver log:\n{}",
                        crate::support::read(&profile.path().join("chromedriver.log"))
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        Browser {
            client,
            _driver: driver,
            _profile: profile,
        }
    }
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---- waiting for the page ----

/// Polls `check` until it returns Some; on timeout, fails with the page's URL
/// and text so the failure explains itself.
async fn poll<T, F, Fut>(b: &Client, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            let url = b
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            panic!(
                "timed out waiting for {what}\nat {url}\npage text:\n{}",
                body_text(b).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Like [`poll`], reloading the page between tries (for server-rendered state
/// that changes behind the page).
async fn reload_until<T, F, Fut>(b: &Client, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let mut first = true;
    poll(b, what, || {
        let reload = !std::mem::take(&mut first);
        let attempt = check();
        async move {
            if reload {
                tokio::time::sleep(Duration::from_millis(200)).await;
                b.refresh().await.ok()?;
            }
            attempt.await
        }
    })
    .await
}

async fn wait_css(b: &Client, css: &str) -> Element {
    poll(b, &format!("element {css}"), || async {
        b.find(Locator::Css(css)).await.ok()
    })
    .await
}

/// Waits until one element matching `css` has a text that `ok` accepts; returns
/// that text.
async fn wait_text(b: &Client, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let ok = &ok;
    poll(b, &format!("{what} ({css})"), || async move {
        for e in b.find_all(Locator::Css(css)).await.ok()? {
            let text = e.text().await.ok()?;
            if ok(&text) {
                return Some(text);
            }
        }
        None
    })
    .await
}

async fn wait_path(b: &Client, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let ok = &ok;
    poll(b, what, || async move {
        let url = b.current_url().await.ok()?;
        let ready = b.execute("return document.readyState", vec![]).await.ok()?;
        (ok(url.path()) && ready == "complete").then(|| url.path().to_string())
    })
    .await
}

/// Waits for the element, brings it into view and clicks it as a person would.
async fn click(b: &Client, css: &str) {
    poll(b, &format!("a clickable {css}"), || async {
        let e = b.find(Locator::Css(css)).await.ok()?;
        let arg = serde_json::to_value(&e).ok()?;
        b.execute("arguments[0].scrollIntoView({block: 'center'})", vec![arg])
            .await
            .ok()?;
        e.click().await.ok()
    })
    .await;
}

async fn body_text(b: &Client) -> String {
    match b.find(Locator::Css("body")).await {
        Ok(body) => body.text().await.unwrap_or_default(),
        Err(e) => format!("<no body: {e}>"),
    }
}

/// Saves a screenshot of the viewport as a test artifact.
async fn shot(b: &Client, name: &str) {
    let dir = artifacts_dir();
    std::fs::create_dir_all(&dir).unwrap();
    match b.screenshot().await {
        Ok(png) => std::fs::write(dir.join(format!("{name}.png")), png).unwrap(),
        Err(e) => eprintln!("no screenshot {name}: {e}"),
    }
}

fn artifacts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts/portal")
}
