//! A portal link's look (issue 14): `app-portal-access` takes `theme`
//! (`primaryColor`, `logoUrl`, `fontFamily`, `mode`) and `hideHeader`, the
//! link carries them to the session, and the pages apply them; a value that
//! is not a colour, an https URL, a font name or a mode is 422 with its
//! location, so none can carry CSS or HTML.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{PortalSession, TestApp};

async fn access(app: &TestApp, app_id: &str, body: Value) -> (StatusCode, Value) {
    app.post_json(&format!("/api/v1/auth/app-portal-access/{app_id}"), body)
        .await
}

#[tokio::test]
async fn a_links_theme_colours_its_portal_and_hides_the_header() {
    let app = TestApp::spawn().await;
    let app_id = app.create_app("Design Club").await;
    let (status, body) = access(
        &app,
        &app_id,
        json!({
            "theme": {
                "primaryColor": "#0A7C4B",
                "logoUrl": "https://cdn.spot.example/logo.svg",
                "fontFamily": "Inter, sans-serif",
                "mode": "dark"
            },
            "hideHeader": true
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let portal = PortalSession::open(&app.base_url, body["url"].as_str().unwrap()).await;
    let (status, page) = portal.get("/portal/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(r#"<html lang="en" data-mode="dark">"#),
        "{page}"
    );
    assert!(
        page.contains(r#"href="/portal/assets/theme.css""#),
        "{page}"
    );
    assert!(
        !page.contains("class=\"topbar\""),
        "hideHeader: no header\n{page}"
    );
    let (status, css) = portal.get("/portal/assets/theme.css").await;
    assert_eq!(status, StatusCode::OK);
    assert!(css.contains("--accent: #0a7c4b;"), "{css}");
    assert!(css.contains("--accent-text: #ffffff;"), "{css}");
    assert!(
        css.contains(r#"font-family: "Inter", sans-serif, system-ui, sans-serif;"#),
        "{css}"
    );

    // With the header, the logo is in it; the CSP lets an https image load.
    let (_, body) = access(
        &app,
        &app_id,
        json!({"theme": {"logoUrl": "https://cdn.spot.example/logo.svg"}}),
    )
    .await;
    let portal = PortalSession::open(&app.base_url, body["url"].as_str().unwrap()).await;
    let (_, page) = portal.get("/portal/").await;
    assert!(page.contains("class=\"topbar\""), "{page}");
    assert!(
        page.contains(
            r#"id="brand-logo" class="brand-logo" src="https://cdn.spot.example/logo.svg""#
        ),
        "{page}"
    );
    assert!(
        !page.contains("data-mode"),
        "no mode asked: the reader's preference"
    );
    let r = portal
        .http
        .get(app.url("/portal/"))
        .header("cookie", &portal.cookie)
        .send()
        .await
        .unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("img-src 'self' data: https:;"), "{csp}");

    // A link without a theme: no theme sheet, and the sheet itself is empty.
    let plain = PortalSession::for_app(&app, &app_id).await;
    let (_, page) = plain.get("/portal/").await;
    assert!(!page.contains("theme.css"), "{page}");
    let (_, css) = plain.get("/portal/assets/theme.css").await;
    assert_eq!(css, "");
    app.stop().await;
}

#[tokio::test]
async fn theme_values_that_could_inject_are_422_with_their_location() {
    let app = TestApp::spawn().await;
    let app_id = app.create_app("Design Club").await;
    for (theme, field) in [
        (
            json!({"primaryColor": "red; } body { display: none"}),
            "primaryColor",
        ),
        (json!({"primaryColor": "#12345"}), "primaryColor"),
        (
            json!({"logoUrl": "http://cdn.spot.example/logo.svg"}),
            "logoUrl",
        ),
        (json!({"logoUrl": "javascript:alert(1)"}), "logoUrl"),
        (
            json!({"fontFamily": "Inter; } * { color: red"}),
            "fontFamily",
        ),
        (json!({"fontFamily": "x\"></style><script>"}), "fontFamily"),
        (json!({"mode": "sepia"}), "mode"),
    ] {
        let (status, body) = access(&app, &app_id, json!({ "theme": theme })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{theme}: {body}");
        assert_eq!(
            body["detail"][0]["loc"],
            json!(["body", "theme", field]),
            "{theme}: {body}"
        );
    }
    let (status, body) = access(&app, &app_id, json!({"theme": {"css": "body{}"}})).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an unknown theme field: {body}"
    );
    let (status, body) = access(&app, &app_id, json!({"hideHeader": "yes"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    app.stop().await;
}

/// Svix's `featureFlags`: an event type behind a flag is offered only to a
/// portal whose link carried that flag; one behind none, to every portal.
#[tokio::test]
async fn event_types_behind_a_feature_flag_show_only_with_that_flag() {
    let app = TestApp::spawn().await;
    let app_id = app.create_app("Design Club").await;
    for (name, flag) in [("member.created", None), ("course.beta", Some("beta"))] {
        let (status, body) = app
            .post_json(
                "/api/v1/event-type",
                json!({"name": name, "description": name, "featureFlag": flag}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let offered = |flags: Value| {
        let app = &app;
        let app_id = &app_id;
        async move {
            let (status, body) = access(app, app_id, json!({ "featureFlags": flags })).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let portal = PortalSession::open(&app.base_url, body["url"].as_str().unwrap()).await;
            let (status, form) = portal.get("/portal/endpoints/new").await;
            assert_eq!(status, StatusCode::OK);
            (
                form.contains(r#"value="member.created""#),
                form.contains(r#"value="course.beta""#),
            )
        }
    };
    assert_eq!(offered(json!([])).await, (true, false), "no flag");
    assert_eq!(
        offered(json!(["other"])).await,
        (true, false),
        "another flag"
    );
    assert_eq!(offered(json!(["beta"])).await, (true, true), "its flag");

    // A form forged to name the flagged type is refused by a session
    // without the flag, and nothing is saved; with the flag it is saved.
    let add = |flags: Value| {
        let app = &app;
        let app_id = &app_id;
        async move {
            let (_, body) = access(app, app_id, json!({ "featureFlags": flags })).await;
            let portal = PortalSession::open(&app.base_url, body["url"].as_str().unwrap()).await;
            let csrf = portal.csrf().await;
            portal
                .post(
                    "/portal/endpoints",
                    &[
                        ("csrf", csrf.as_str()),
                        ("url", "https://example.com/hook"),
                        ("event_types", "member.created"),
                        ("event_types", "course.beta"),
                        ("date_format", "unix"),
                    ],
                )
                .await
        }
    };
    let refused = add(json!([])).await;
    assert_eq!(
        refused.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "the form again"
    );
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("These events can&#39;t be chosen here: course.beta"),
        "{page}"
    );
    let (_, list) = app
        .get_json(&format!("/api/v1/app/{app_id}/endpoint"))
        .await;
    assert_eq!(list["data"], json!([]), "nothing saved");
    assert_eq!(add(json!(["beta"])).await.status(), StatusCode::SEE_OTHER);
    let (_, list) = app
        .get_json(&format!("/api/v1/app/{app_id}/endpoint"))
        .await;
    assert_eq!(
        list["data"][0]["filterTypes"],
        json!(["course.beta", "member.created"])
    );

    let (status, body) = access(&app, &app_id, json!({"featureFlags": ["not a flag"]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["body", "featureFlags", "0"])
    );
    app.stop().await;
}
