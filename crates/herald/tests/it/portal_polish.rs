//! Small things a newcomer noticed (issue 14): a way in from `/`, a favicon,
//! one title, a way back from a 404, readable group headings, the ★ explained.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{PortalSession, TestApp};

#[tokio::test]
async fn the_root_the_favicon_the_title_and_the_404_page_lead_somewhere() {
    let app = TestApp::seeded().await;
    let r = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let home: serde_json::Value = r.json().await.unwrap();
    assert_eq!(home["portal"], "/portal/");
    assert_eq!(home["catalog"], "/catalog");

    let icon = app.http.get(app.url("/favicon.ico")).send().await.unwrap();
    assert_eq!(icon.status(), StatusCode::OK);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    assert!(icon.text().await.unwrap().starts_with("<svg"));

    let app_id = app.create_app("Design Club").await;
    let ep = app
        .create_endpoint(
            &app_id,
            json!({"url": "https://hooks.example.com/in", "filterTypes": ["member.created"]}),
        )
        .await;
    let portal = PortalSession::for_app(&app, &app_id).await;
    let (_, list) = portal.get("/portal/").await;
    assert!(
        list.contains("<title>Webhooks · Design Club</title>"),
        "one title: {}",
        list.lines()
            .find(|l| l.contains("<title>"))
            .unwrap_or_default()
    );
    assert!(list.contains(r#"<link rel="icon" href="/portal/assets/favicon.svg""#));

    let (status, missing) = portal.get("/portal/endpoints/ep_nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(missing.contains(r#"id="back-home""#) && missing.contains(r#"href="/portal/""#));

    let (_, form) = portal.get("/portal/endpoints/new").await;
    // Loopback is allowed on the tests' server: the URL hint is told so.
    assert!(
        form.contains(r#"data-loopback-allowed="true" data-private-allowed="false""#),
        "{}",
        form.lines()
            .find(|l| l.contains(r#"id="url""#))
            .unwrap_or_default()
    );
    assert!(
        form.contains(r#"<h2 class="group-name">Learning path</h2>"#),
        "humanised group headings"
    );
    assert!(!form.contains(">learning_path<") && !form.contains(">LEARNING_PATH<"));

    let (_, page) = portal.get(&format!("/portal/endpoints/{ep}")).await;
    assert!(page.contains("member.created ★"));
    assert!(page.contains("★ marks the events this endpoint receives."));
    app.stop().await;
}

#[tokio::test]
async fn the_operator_view_pages_newest_first_and_finds_an_application() {
    let app = TestApp::spawn().await;
    for n in 0..55 {
        let (status, _) = app
            .post_json("/api/v1/app", json!({"name": format!("Spot {n:03}")}))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, _) = app
        .post_json(
            "/api/v1/app",
            json!({"name": "Design Club", "uid": "design-club"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let link = app.cli_portal_link(None).await;
    let operator = PortalSession::open(&app.base_url, &link).await;

    let (status, first) = operator.get("/portal/apps").await;
    assert_eq!(status, StatusCode::OK);
    let names = |html: &str| -> Vec<String> {
        html.split("class=\"app-link\" href=\"")
            .skip(1)
            .map(|rest| {
                rest.split('>')
                    .nth(1)
                    .unwrap()
                    .split('<')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let page_one = names(&first);
    assert_eq!(page_one.len(), 50);
    assert_eq!(page_one[0], "Design Club", "newest first");
    assert_eq!(page_one[1], "Spot 054");
    let next = crate::support::attr_after(&first, "id=\"apps-next\" href=\"").replace("&amp;", "&");
    let (_, second) = operator.get(&next).await;
    let page_two = names(&second);
    assert_eq!(page_two.len(), 6);
    assert_eq!(page_two.last().unwrap(), "Spot 000");
    assert!(!second.contains("id=\"apps-next\""));

    let (_, found) = operator.get("/portal/apps?q=DESIGN").await;
    assert_eq!(names(&found), ["Design Club"]);
    let (_, by_uid) = operator.get("/portal/apps?q=club").await;
    assert_eq!(names(&by_uid), ["Design Club"]);
    // LIKE's wildcards are text here.
    let (_, none) = operator.get("/portal/apps?q=%25").await;
    assert!(names(&none).is_empty(), "% matched everything");
    assert!(none.contains("No application matches"));
    app.stop().await;
}

#[tokio::test]
async fn the_log_says_when_a_failed_delivery_is_tried_next_and_why_nothing_came_back() {
    let app = TestApp::spawn_with(crate::support::Options {
        retry_schedule: herald_core::schedule::RetrySchedule::from_delays(vec![
            std::time::Duration::from_secs(3600),
        ])
        .unwrap(),
        ..crate::support::Options::default()
    })
    .await;
    // Nothing listens there: connection refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let app_id = app.create_app("Design Club").await;
    let ep = app.create_endpoint(&app_id, json!({"url": url})).await;
    let msg = app
        .send(&app_id, json!({"eventType": "a", "payload": {}}))
        .await;
    app.eventually(
        std::time::Duration::from_secs(30),
        "the failed attempt",
        || async { (!app.attempts(&app_id, &msg).await.is_empty()).then_some(()) },
    )
    .await;
    let portal = PortalSession::for_app(&app, &app_id).await;
    let (_, page) = portal.get(&format!("/portal/endpoints/{ep}")).await;
    let row = page
        .split("<tr class=\"delivery\">")
        .nth(1)
        .expect("a log row")
        .split("</tr>")
        .next()
        .unwrap();
    assert!(row.contains("next try <time"), "{row}");
    assert!(
        row.contains("class=\"no-response\">connection failed"),
        "{row}"
    );
    // The list's success column says the delivery is not finished, rather
    // than a bare dash for an endpoint that is failing.
    let (_, list) = portal.get("/portal/").await;
    assert!(list.contains("· 1 pending</span>"), "{list}");

    let (status, _) = app
        .call(
            Some(&app.token),
            reqwest::Method::PATCH,
            &format!("/api/v1/app/{app_id}/endpoint/{ep}"),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, page) = portal.get(&format!("/portal/endpoints/{ep}")).await;
    assert!(
        page.contains("waits until the endpoint is enabled"),
        "parked"
    );
    app.stop().await;
}
