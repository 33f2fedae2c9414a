//! The web portal at the HTTP level: portal links and sessions, CSRF, the
//! isolation of one application's session from another's data, and the forms
//! behind Add, Test and Delete. (The browser drives the same pages in
//! `browser.rs`.)

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{
    attr_after, no_redirects as client, portal_link, session_cookie, Options, PortalSession,
    Receiver, Reply, TestApp,
};

/// A seeded server that allows these subnets.
async fn seeded(allow_subnets: &str) -> TestApp {
    TestApp::spawn_with(Options {
        allow_subnets: allow_subnets.parse().unwrap(),
        ..Options::seeded()
    })
    .await
}

#[tokio::test]
async fn the_access_route_gives_a_link_that_starts_a_session() {
    let app = seeded("127.0.0.0/8").await;
    let app_id = app.create_app("Yoga Spot").await;
    let url = portal_link(&app, &app_id).await;

    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_string();
    for part in [
        "herald_portal=",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/portal",
        "Max-Age=28",
    ] {
        assert!(set.contains(part), "{part} missing from {set}");
    }

    // A fresh link for the session (a link is for opening the portal once).
    let portal = PortalSession::for_app(&app, &app_id).await;
    let (status, html) = portal.get("/portal/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Yoga Spot") && html.contains("id=\"add-endpoint\""),
        "{html}"
    );
    assert!(html.contains("No endpoints yet"), "the empty state: {html}");
    let (status, html) = portal.get("/portal/catalog").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"catalog\"") && html.contains("member.created"));
    let (status, css) = portal.get("/portal/assets/portal.css").await;
    assert_eq!(status, StatusCode::OK);
    assert!(css.contains("--accent"));

    // Without the cookie, every page is 401; with a forged one too.
    for path in [
        "/portal/",
        "/portal/catalog",
        "/portal/endpoints/new",
        "/portal/nope",
    ] {
        let r = client().get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let r = client()
        .get(app.url("/portal/"))
        .header(COOKIE, format!("herald_portal={}", app.token))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "an API token is not a session"
    );

    // An app token may ask for its own application's link, not another's.
    let other = app.create_app("Other Spot").await;
    let scoped = app.app_token(&app_id);
    for (target, want) in [(&app_id, StatusCode::OK), (&other, StatusCode::NOT_FOUND)] {
        let r = app
            .http
            .post(app.url(&format!("/api/v1/auth/app-portal-access/{target}")))
            .bearer_auth(&scoped)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want, "{target}");
    }
}

#[tokio::test]
async fn an_expired_link_does_not_log_in() {
    let app = TestApp::spawn().await;
    let app_id = app.create_app("Spot").await;
    let now = chrono::Utc::now();
    let grant = herald_store::PortalGrant {
        id: "pgrant_expired".into(),
        org_id: "org_herald".into(),
        app_id: Some(app_id.clone()),
        read_only: false,
        session_id: None,
        created_at: now - chrono::Duration::seconds(120),
        link_expires_at: now - chrono::Duration::seconds(1),
        expires_at: now + chrono::Duration::hours(8),
        used_at: None,
        ended_at: None,
    };
    app.open_store()
        .await
        .create_portal_grant(&grant)
        .await
        .unwrap();
    let expired = app.keys.portal_link(&grant);
    for token in [expired.as_str(), "garbage"] {
        let r = client()
            .get(app.url(&format!("/portal/login?token={token}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.headers().get(SET_COOKIE).is_none());
        assert!(r.text().await.unwrap().contains("expired"));
    }
}

#[tokio::test]
async fn one_applications_session_cannot_reach_another_applications_data() {
    let app = seeded("127.0.0.0/8").await;
    let a = app.create_app("Spot A").await;
    let b = app.create_app("Spot B").await;
    let receiver = Receiver::start().await;
    let ep_b = app
        .create_endpoint(&b, json!({"url": receiver.url("/b")}))
        .await;
    let msg_b = app
        .send(
            &b,
            json!({"eventType": "member.created", "payload": {"x": 1}}),
        )
        .await;
    receiver
        .wait_for("/b", 1, std::time::Duration::from_secs(30))
        .await;

    let portal = PortalSession::for_app(&app, &a).await;
    let csrf = portal.csrf().await;
    for path in [
        format!("/portal/endpoints/{ep_b}"),
        format!("/portal/endpoints/{ep_b}/edit"),
        format!("/portal/endpoints/{ep_b}/delete"),
        format!("/portal/endpoints/{ep_b}/messages/{msg_b}"),
        format!("/portal/apps/{b}"),
        "/portal/apps".to_string(),
    ] {
        let (status, _) = portal.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    for path in [
        format!("/portal/endpoints/{ep_b}/delete"),
        format!("/portal/endpoints/{ep_b}/toggle"),
        format!("/portal/endpoints/{ep_b}/test"),
        format!("/portal/endpoints/{ep_b}/messages/{msg_b}/resend"),
    ] {
        let r = portal
            .post(&path, &[("csrf", &csrf), ("event_type", "member.created")])
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = app
        .get_json(&format!("/api/v1/app/{b}/endpoint/{ep_b}"))
        .await;
    assert_eq!(status, StatusCode::OK, "B's endpoint is untouched");
    let (_, html) = portal.get("/portal/").await;
    assert!(!html.contains(&ep_b));
}

/// Add, through the form with every field; returns the page it redirects to
/// and the new endpoint's id.
async fn add_endpoint(portal: &PortalSession, csrf: &str, url: &str) -> (String, String) {
    let r = portal
        .post(
            "/portal/endpoints",
            &[
                ("csrf", csrf),
                ("url", url),
                ("event_types", "member.created"),
                ("event_types", "live.updated"),
                ("description", "CRM sync"),
                ("date_format", "iso8601"),
                ("channels", "eu, project-1"),
                ("headers", "X-Team: blue\nAuthorization: Bearer s3cret"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()[LOCATION].to_str().unwrap().to_string();
    let ep_id = location
        .strip_prefix("/portal/endpoints/")
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    (location, ep_id)
}

#[tokio::test]
async fn add_an_endpoint_through_the_form() {
    let app = seeded("127.0.0.0/8").await;
    let app_id = app.create_app("Spot").await;
    let portal = PortalSession::for_app(&app, &app_id).await;
    let csrf = portal.csrf().await;
    let url = "http://127.0.0.1:9/hook";

    // Add: the form's fields become the endpoint.
    let (location, ep_id) = add_endpoint(&portal, &csrf, url).await;
    let (_, ep) = app
        .get_json(&format!("/api/v1/app/{app_id}/endpoint/{ep_id}"))
        .await;
    assert_eq!(ep["url"], url);
    assert_eq!(ep["filterTypes"], json!(["live.updated", "member.created"]));
    assert_eq!(ep["channels"], json!(["eu", "project-1"]));
    assert_eq!(ep["description"], "CRM sync");

    let (status, html) = portal.get(&location).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(&format!("<h1 class=\"break\">{url}</h1>")),
        "{html}"
    );
    assert!(html.contains("id=\"secret-value\">whsec_"));
    assert!(html.contains("id=\"delivery-chart\""));
    assert!(
        !html.contains("s3cret"),
        "sensitive header values are masked"
    );

    // A bad URL is refused next to the field, with what was typed kept.
    let r = portal
        .post(
            "/portal/endpoints",
            &[("csrf", &csrf), ("url", "ftp://x"), ("description", "kept")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("role=\"alert\" class=\"error\"") && html.contains("kept"),
        "{html}"
    );
}

#[tokio::test]
async fn test_read_the_log_and_delete_through_the_forms() {
    let app = seeded("127.0.0.0/8").await;
    let app_id = app.create_app("Spot").await;
    let portal = PortalSession::for_app(&app, &app_id).await;
    let csrf = portal.csrf().await;
    let receiver = Receiver::start().await;
    receiver.set_default("/hook", Reply::status(200).body("thanks from the receiver"));
    let (_, ep_id) = add_endpoint(&portal, &csrf, &receiver.url("/hook")).await;

    // Test: the receiver's status and body come back on the page the POST
    // redirects to (303: a reload of that page sends nothing again).
    let (location, status, html) = portal
        .post_and_follow(
            &format!("/portal/endpoints/{ep_id}/test"),
            &[("csrf", &csrf), ("event_type", "member.created")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        location.starts_with(&format!("/portal/endpoints/{ep_id}?tested=msg_")),
        "{location}"
    );
    assert!(
        html.contains("<span id=\"test-status\" class=\"status ok\">200</span>"),
        "{html}"
    );
    assert!(html.contains("thanks from the receiver"));
    let (status, reloaded) = portal.get(&location).await;
    assert_eq!(status, StatusCode::OK);
    assert!(reloaded.contains("<span id=\"test-status\" class=\"status ok\">200</span>"));
    // A made-up message id shows no outcome.
    let (_, html) = portal
        .get(&format!(
            "/portal/endpoints/{ep_id}?tested=msg_2abcdefghijklmnopqrstuvwx"
        ))
        .await;
    assert!(!html.contains("id=\"test-status\""), "{html}");
    let got = receiver.received_on("/hook");
    assert_eq!(got.len(), 1, "a reload sent nothing");
    assert_eq!(got[0].json()["test"], true);
    assert_eq!(got[0].header("x-team"), "blue");

    // A Test that sends nothing says why, through a flash the page removes.
    let (location, status, html) = portal
        .post_and_follow(
            &format!("/portal/endpoints/{ep_id}/test"),
            &[("csrf", &csrf), ("event_type", "no.such.type")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(location.contains("tested=none"), "{location}");
    assert!(
        html.contains("<span id=\"test-status\" class=\"status bad\">not sent</span>")
            && html.contains("event type not found"),
        "{html}"
    );
    assert_eq!(receiver.received_on("/hook").len(), 1);

    // The delivery log lists it, and its detail shows the payload as sent.
    let (_, html) = portal.get(&format!("/portal/endpoints/{ep_id}")).await;
    assert!(html.contains("<tr class=\"delivery\">"), "{html}");
    let detail = attr_after(&html, "class=\"delivery-link\" href=\"");
    let (status, html) = portal.get(&detail).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"payload\"") && html.contains("<li class=\"attempt\">"));
    assert!(
        html.contains("&quot;occurredAt&quot;: &quot;"),
        "dates as the endpoint gets them: {html}"
    );

    // Delete, after the confirmation page.
    let (status, html) = portal
        .get(&format!("/portal/endpoints/{ep_id}/delete"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"confirm-delete\""));
    let r = portal
        .post(
            &format!("/portal/endpoints/{ep_id}/delete"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (status, _) = app
        .get_json(&format!("/api/v1/app/{app_id}/endpoint/{ep_id}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_private_address_is_refused_with_the_ssrf_rule_explained() {
    let app = seeded("").await;
    let app_id = app.create_app("Spot").await;
    let portal = PortalSession::for_app(&app, &app_id).await;
    let csrf = portal.csrf().await;
    let r = portal
        .post(
            "/portal/endpoints",
            &[("csrf", &csrf), ("url", "http://127.0.0.1:9/hook")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    let error = attr_after(&html, "role=\"alert\" class=\"error\" id=\"url-error\">");
    assert!(
        error.contains("127.0.0.1 is not a public address") && error.contains("SSRF"),
        "{html}"
    );
    assert!(!html.contains("HERALD_ALLOW_SUBNETS"), "{html}");
    // A name: the page says it resolves to a non-public address, never which.
    let r = portal
        .post(
            "/portal/endpoints",
            &[("csrf", &csrf), ("url", "http://localhost:9/hook")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    let error = attr_after(&html, "role=\"alert\" class=\"error\" id=\"url-error\">");
    assert!(
        error.contains("localhost resolves to a non-public address"),
        "{html}"
    );
    assert!(
        !html.contains("127.0.0.1") && !html.contains("::1"),
        "{html}"
    );
    let (_, list): (_, Value) = app
        .get_json(&format!("/api/v1/app/{app_id}/endpoint"))
        .await;
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn an_operator_link_lists_the_applications_and_opens_one() {
    let app = TestApp::spawn().await;
    let first = app.create_app("First Spot").await;
    let second = app.create_app("Second Spot").await;
    let portal = PortalSession::open(&app.base_url, &app.cli_portal_link(None).await).await;
    let (status, html) = portal.get("/portal/").await;
    assert_eq!(status, StatusCode::OK);
    for (id, name) in [(&first, "First Spot"), (&second, "Second Spot")] {
        assert!(
            html.contains(&format!(
                "<a class=\"app-link\" href=\"/portal/apps/{id}\">{name}</a>"
            )),
            "{html}"
        );
    }

    let r = portal
        .http
        .get(app.url(&format!("/portal/apps/{second}")))
        .header(COOKIE, &portal.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let switched = PortalSession {
        cookie: session_cookie(&r),
        http: client(),
        base: app.base_url.clone(),
    };
    let (status, html) = switched.get("/portal/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Second Spot") && html.contains("id=\"add-endpoint\""));
    let (status, _) = switched.get("/portal/apps").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "an operator can go back to the list"
    );
}
