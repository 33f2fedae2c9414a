//! Portal links as an attacker would use them: as an API token, twice, a
//! moment after they expire, read-only sessions asked to change things, and
//! sessions after logout (through the portal and through Svix's
//! `POST /api/v1/auth/logout`).

use std::time::Duration;

use reqwest::header::{LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{
    no_redirects as client, portal_link as portal_url, split, Options, PortalSession, TestApp,
};

async fn access(app: &TestApp, app_id: &str, body: Value) -> (StatusCode, Value) {
    app.post_json(&format!("/api/v1/auth/app-portal-access/{app_id}"), body)
        .await
}

async fn open_link(url: &str) -> reqwest::Response {
    client().get(url).send().await.unwrap()
}

#[tokio::test]
async fn a_portal_link_opens_the_portal_once_and_is_never_an_api_token() {
    let app = TestApp::spawn().await;
    let app_id = app.create_app("Spot").await;
    let (_, out) = access(&app, &app_id, json!({})).await;
    let (url, token) = (out["url"].as_str().unwrap(), out["token"].as_str().unwrap());

    // As a bearer token, before and after it was used: 401 on every route.
    for path in [
        format!("/api/v1/app/{app_id}"),
        format!("/api/v1/app/{app_id}/endpoint"),
        "/api/v1/app".to_string(),
    ] {
        let r = app.http.get(app.url(&path)).bearer_auth(token).send().await;
        let (status, body) = split(r.unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains("portal link"),
            "{body}"
        );
    }
    let r = open_link(url).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers().get(SET_COOKIE).is_some());
    // The second time, it opens nothing.
    let again = open_link(url).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert!(again.headers().get(SET_COOKIE).is_none());
    // Nor does the session cookie it made pass as an API token.
    let cookie = r.headers()[SET_COOKIE].to_str().unwrap();
    let session = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    let r = app
        .http
        .get(app.url("/api/v1/app"))
        .bearer_auth(session)
        .send()
        .await;
    assert_eq!(r.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_link_is_refused_the_moment_it_expires() {
    let app = TestApp::spawn_with(Options {
        portal_token_ttl: Duration::from_secs(1),
        ..Options::default()
    })
    .await;
    let app_id = app.create_app("Spot").await;
    let url = portal_url(&app, &app_id).await;
    // `exp` has whole seconds: wait past the next one, well inside what a
    // 60 s leeway would still accept.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = open_link(&url).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("expired"));
}

#[tokio::test]
async fn app_portal_access_checks_expiry_capabilities_and_session_id() {
    let app = TestApp::spawn().await;
    let app_id = app.create_app("Spot").await;
    let table = [
        (json!({"expiry": 60}), vec!["body", "expiry"]),
        (json!({"expiry": 604_801}), vec!["body", "expiry"]),
        (
            json!({"capabilities": ["ViewBase", "Root"]}),
            vec!["body", "capabilities", "1"],
        ),
        (json!({"sessionId": "has space"}), vec!["body", "sessionId"]),
    ];
    for (body, loc) in table {
        let (status, out) = access(&app, &app_id, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {out}");
        assert_eq!(out["detail"][0]["loc"], json!(loc), "{out}");
    }
    let (status, out) = access(
        &app,
        &app_id,
        json!({"expiry": 3600, "sessionId": "user_1"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    // `application` creates the one named in the path, as Svix does.
    let (status, out) = access(
        &app,
        "spot-new",
        json!({"application": {"name": "New Spot"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let (status, created) = app.get_json("/api/v1/app/spot-new").await;
    assert_eq!(
        (status, created["name"].clone()),
        (StatusCode::OK, json!("New Spot"))
    );
}

#[tokio::test]
async fn a_read_only_session_can_look_but_every_change_is_refused() {
    let app = TestApp::spawn_with(Options {
        seed_catalog: true,
        ..Options::default()
    })
    .await;
    let app_id = app.create_app("Spot").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": "https://example.com/hook"}))
        .await;
    for body in [
        json!({"readOnly": true}),
        json!({"capabilities": ["ViewBase", "ViewEndpointSecret"]}),
    ] {
        let (_, out) = access(&app, &app_id, body).await;
        let portal = PortalSession::open(&app.base_url, out["url"].as_str().unwrap()).await;
        let (status, html) = portal.get(&format!("/portal/endpoints/{ep}")).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert!(html.contains("id=\"read-only\""), "{html}");
        assert!(!html.contains("id=\"toggle-endpoint\"") && !html.contains("id=\"rotate-secret\""));
        let csrf = portal.csrf().await;
        for path in [
            "/portal/endpoints".to_string(),
            format!("/portal/endpoints/{ep}"),
            format!("/portal/endpoints/{ep}/toggle"),
            format!("/portal/endpoints/{ep}/delete"),
            format!("/portal/endpoints/{ep}/test"),
            format!("/portal/endpoints/{ep}/rotate-secret"),
            format!("/portal/endpoints/{ep}/recover"),
        ] {
            let r = portal
                .post(&path, &[("csrf", &csrf), ("url", "https://evil.example/")])
                .await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
            assert!(r.text().await.unwrap().contains("read-only"), "{path}");
        }
        for path in [
            "/portal/endpoints/new".to_string(),
            format!("/portal/endpoints/{ep}/edit"),
        ] {
            assert_eq!(portal.get(&path).await.0, StatusCode::FORBIDDEN, "{path}");
        }
        let (_, endpoint) = app
            .get_json(&format!("/api/v1/app/{app_id}/endpoint/{ep}"))
            .await;
        assert_eq!(endpoint["url"], "https://example.com/hook");
        assert_eq!(endpoint["disabled"], false);
    }
}

#[tokio::test]
async fn logging_out_ends_the_session_on_the_server() {
    let app = TestApp::spawn().await;
    let app_id = app.create_app("Spot").await;

    // Through the portal's button.
    let portal = PortalSession::open(&app.base_url, &portal_url(&app, &app_id).await).await;
    let csrf = portal.csrf().await;
    assert_eq!(
        portal.post("/portal/logout", &[]).await.status(),
        StatusCode::FORBIDDEN
    );
    let r = portal.post("/portal/logout", &[("csrf", &csrf)]).await;
    // Redirect after POST: a reload of the page it lands on posts nothing.
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/portal/logged-out");
    assert!(r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let (status, html) = portal.get("/portal/logged-out").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("You have logged out"), "{html}");
    // The old cookie, replayed, is no session any more.
    assert_eq!(portal.get("/portal/").await.0, StatusCode::UNAUTHORIZED);

    // Through Svix's route, with the link's token, after the link was used.
    let (_, out) = access(&app, &app_id, json!({})).await;
    let portal = PortalSession::open(&app.base_url, out["url"].as_str().unwrap()).await;
    assert_eq!(portal.get("/portal/").await.0, StatusCode::OK);
    let logout = |token: String| {
        app.http
            .post(app.url("/api/v1/auth/logout"))
            .bearer_auth(token)
            .send()
    };
    let r = logout(out["token"].as_str().unwrap().to_string())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(portal.get("/portal/").await.0, StatusCode::UNAUTHORIZED);
    // An API token cannot be logged out; garbage is not a token.
    let (status, body) = split(logout(app.token.clone()).await.unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        logout("garbage".into()).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    // A link logged out before it was opened opens nothing.
    let (_, out) = access(&app, &app_id, json!({})).await;
    logout(out["token"].as_str().unwrap().to_string())
        .await
        .unwrap();
    assert_eq!(
        open_link(out["url"].as_str().unwrap()).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_portal_link_never_reaches_a_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::support::TestDatabase::for_suite(dir.path());
    let server = crate::security::spawn_binary(&db, dir.path(), "trace").await;
    let token = herald::auth::Keys::new(crate::security::SECRET.as_bytes())
        .org_token(herald::auth::DEFAULT_ORG);
    let http = reqwest::Client::new();
    let (status, app) = split(
        http.post(server.url("/api/v1/app"))
            .bearer_auth(&token)
            .json(&json!({"name": "Spot"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{app}");
    let (_, out) = split(
        http.post(server.url(&format!(
            "/api/v1/auth/app-portal-access/{}",
            app["id"].as_str().unwrap()
        )))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    let link_token = out["token"].as_str().unwrap();
    let path = format!("/portal/login?token={link_token}");
    let r = client().get(server.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    // Used a second time (refused), and mistyped into the API: still no trace.
    client().get(server.url(&path)).send().await.unwrap();
    http.get(server.url("/api/v1/app"))
        .bearer_auth(link_token)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = crate::support::read(&server.log);
    assert!(
        log.contains("/portal/login"),
        "the trace log shows requests:\n{log}"
    );
    // The signature part alone is enough to replay a token: look for it.
    let signature = link_token.rsplit('.').next().unwrap();
    assert!(!log.contains(signature), "the link's token is in the log");
}

/// Svix's older `dashboard-access` gives the same kind of link as
/// `app-portal-access`, with no body: it opens the application's portal
/// once; an unknown application is 404.
#[tokio::test]
async fn dashboard_access_gives_a_portal_link_as_svix_s_older_clients_ask() {
    let app = TestApp::spawn().await;
    let app_id = app.create_app("Spot").await;
    let r = app
        .http
        .post(app.url(&format!("/api/v1/auth/dashboard-access/{app_id}")))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    let (status, out) = split(r).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let (url, token) = (out["url"].as_str().unwrap(), out["token"].as_str());
    assert!(token.is_some_and(|t| !t.is_empty()), "{out}");
    let r = open_link(url).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers().get(SET_COOKIE).is_some());
    assert_eq!(open_link(url).await.status(), StatusCode::UNAUTHORIZED);

    let (status, body) = app
        .post_json("/api/v1/auth/dashboard-access/app_missing", json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    app.stop().await;
}
