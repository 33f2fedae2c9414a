//! The API reference page (`/api/v1/docs`) in a real browser: Redoc, served
//! from the binary, reads Herald's own OpenAPI document and shows its
//! operations, Herald's additive fields among them.

use fantoccini::Client;

use super::{shot, wait_text, with_browser};
use crate::support::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn the_reference_page_renders_herald_s_document() {
    with_browser("api-reference", reference).await;
}

async fn reference(b: Client) {
    let app = TestApp::spawn().await;
    b.goto(&app.url("/api/v1/docs")).await.unwrap();
    // The document's title and description, rendered by the vendored script
    // (the page itself has no text: nothing shows unless Redoc ran).
    wait_text(&b, "body", "Herald's document rendered", |t| {
        t.contains("Herald's webhook API") && t.contains("Operational webhook")
    })
    .await;
    shot(&b, "api-reference").await;
    app.stop().await;
}
