//! The portal embedded the way a platform embeds it: the example page in
//! `examples/embed/index.html`, served from a loopback server of the test's
//! own, frames a portal link. From an origin in
//! `HERALD_PORTAL_FRAME_ANCESTORS` the frame shows the Webhooks list and
//! the session holds from page to page inside it; from any other origin the
//! browser blocks the frame (CSP `frame-ancestors`) and no portal content
//! shows. The platform's page is on `127.0.0.1`, another port than Herald's:
//! another origin but the same site, as a platform serving Herald on a
//! subdomain of its own (the README's advice), so the session cookie is
//! first-party. Browsers that block third-party cookies (Safari; Chrome as
//! run here) would drop it in a cross-site frame.

use std::net::SocketAddr;

use axum::response::Html;
use fantoccini::{Client, Locator};
use serde_json::json;

use super::{poll, shot, wait_css, wait_text, with_browser};
use crate::support::{portal_link, Options, TestApp};

/// The example page, as committed.
const EXAMPLE: &str = include_str!("../../../../../examples/embed/index.html");

#[tokio::test(flavor = "multi_thread")]
async fn the_example_page_embeds_the_portal_and_other_origins_cannot() {
    with_browser("embed", embed).await;
}

/// Serves the example page on loopback; the handle stops it when dropped.
struct ExampleSite {
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl ExampleSite {
    async fn start() -> ExampleSite {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = axum::Router::new().route("/", axum::routing::get(|| async { Html(EXAMPLE) }));
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        ExampleSite { addr, server }
    }

    /// The example page on `host` (the same server under another name is
    /// another origin), framing `link`.
    fn page(&self, host: &str, link: &str) -> String {
        let link: String = url::form_urlencoded::byte_serialize(link.as_bytes()).collect();
        format!("http://{host}:{}/?portal={link}", self.addr.port())
    }
}

impl Drop for ExampleSite {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Opens `page` and waits until its frame has loaded (portal or not), then
/// switches into the frame.
async fn open_framed(b: &Client, page: &str) {
    b.goto(page).await.unwrap();
    wait_css(b, "#herald-portal[data-loaded]").await;
    let frame = wait_css(b, "#herald-portal").await;
    frame.enter_frame().await.unwrap();
}

async fn embed(b: Client) {
    let site = ExampleSite::start().await;
    let allowed = format!("http://127.0.0.1:{}", site.addr.port());
    let app = TestApp::spawn_with(Options {
        portal_frame_ancestors: vec![allowed.clone()],
        ..Options::seeded()
    })
    .await;
    let app_id = app.create_app("Design Club").await;
    app.create_endpoint(&app_id, json!({"url": "https://hooks.example.com/spot"}))
        .await;

    // The platform's origin frames the portal: the Webhooks list shows in it,
    // and the session holds from page to page inside the frame.
    let link = portal_link(&app, &app_id).await;
    open_framed(&b, &site.page("127.0.0.1", &link)).await;
    wait_text(&b, "#endpoints", "the endpoint in the framed list", |t| {
        t.contains("https://hooks.example.com/spot")
    })
    .await;
    let href = b.execute("return location.href", vec![]).await.unwrap();
    assert_eq!(
        href,
        json!(app.url("/portal/")),
        "the frame shows the portal"
    );
    super::click(&b, ".endpoint-link").await;
    wait_text(&b, "h1", "the endpoint page inside the frame", |t| {
        t.contains("hooks.example.com")
    })
    .await;
    b.enter_parent_frame().await.unwrap();
    shot(&b, "40-embedded-portal").await;

    // The same page on an origin not listed: the browser refuses to show
    // Herald's answer in the frame, so no portal content is there.
    let link = portal_link(&app, &app_id).await;
    open_framed(&b, &site.page("localhost", &link)).await;
    let portal_inside = poll(&b, "the blocked frame to settle", || async {
        let found = b
            .find_all(Locator::Css("#endpoints, #add-endpoint, .endpoint-link"))
            .await
            .ok()?;
        let href = b.execute("return location.href", vec![]).await.ok()?;
        Some((found.len(), href))
    })
    .await;
    assert_eq!(
        portal_inside.0, 0,
        "no portal content in a frame from an origin not listed (frame at {})",
        portal_inside.1
    );
    assert_ne!(
        portal_inside.1,
        json!(app.url("/portal/")),
        "the frame never reached the portal"
    );
    b.enter_parent_frame().await.unwrap();
    shot(&b, "41-embedding-refused").await;

    // Framed as a platform would with its own look: its colour, no header of
    // the portal's own (the platform's page has one).
    let (status, body) = app
        .post_json(
            &format!("/api/v1/auth/app-portal-access/{app_id}"),
            json!({"theme": {"primaryColor": "#0a7c4b"}, "hideHeader": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    open_framed(&b, &site.page("127.0.0.1", body["url"].as_str().unwrap())).await;
    wait_text(&b, "#endpoints", "the endpoint in the themed frame", |t| {
        t.contains("https://hooks.example.com/spot")
    })
    .await;
    let looks = b
        .execute(
            "return [document.querySelectorAll('header.topbar').length, \
             getComputedStyle(document.querySelector('.endpoint-link')).color]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        looks,
        json!([0, "rgb(10, 124, 75)"]),
        "no header, the platform's colour"
    );
    b.enter_parent_frame().await.unwrap();
    shot(&b, "42-embedded-themed").await;
    app.stop().await;
}
