//! One health model: an endpoint failing every attempt is `failing` (since
//! when, how many, the last error), is disabled once it has failed for
//! `HERALD_ENDPOINT_DISABLE_AFTER` (the operator hears it), its pending
//! deliveries wait, and enabling it again delivers them.

use std::time::Duration;

use herald_core::schedule::RetrySchedule;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{Options, Receiver, Reply, TestApp};

const WAIT: Duration = Duration::from_secs(30);

async fn endpoint(app: &TestApp, app_id: &str, ep: &str) -> Value {
    let (status, body) = app
        .get_json(&format!("/api/v1/app/{app_id}/endpoint/{ep}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn an_endpoint_failing_too_long_is_disabled_and_enabling_it_delivers_what_waited() {
    let app = TestApp::spawn_with(Options {
        retry_schedule: RetrySchedule::from_delays(vec![Duration::from_millis(150); 40]).unwrap(),
        endpoint_disable_after: Duration::from_millis(1500),
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.set_default("/down", Reply::status(500).body("database unavailable"));

    // The operator listens.
    let (status, ops) = app
        .post_json(
            "/api/v1/operational-webhook/endpoint",
            json!({"url": receiver.url("/ops")}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ops}");
    let (_, secret) = app
        .get_json(&format!(
            "/api/v1/operational-webhook/endpoint/{}/secret",
            ops["id"].as_str().unwrap()
        ))
        .await;
    let secret = secret["key"].as_str().unwrap().to_string();

    let app_id = app.create_app("Design Club").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/down")}))
        .await;
    let mut msgs = Vec::new();
    for i in 0..3 {
        msgs.push(
            app.send(
                &app_id,
                json!({"eventType": "member.created", "payload": {"n": i}}),
            )
            .await,
        );
    }

    // Failing: since when, how many, what it said.
    let failing = app
        .eventually(WAIT, "the endpoint to be failing", || async {
            let e = endpoint(&app, &app_id, &ep).await;
            (e["state"] == "failing").then_some(e)
        })
        .await;
    assert!(failing["failingSince"].is_string(), "{failing}");
    assert!(failing["consecutiveFailures"].as_i64().unwrap() >= 1);
    assert!(
        failing["lastError"]
            .as_str()
            .unwrap()
            .contains("500 database unavailable"),
        "{failing}"
    );
    assert_eq!(failing["disabled"], false);

    // Five failures in a row: the worker's breaker holds it back a while.
    let paused = app
        .eventually(WAIT, "the endpoint to be paused", || async {
            let e = endpoint(&app, &app_id, &ep).await;
            (e["state"] == "paused").then_some(e)
        })
        .await;
    assert!(paused["pausedUntil"].is_string(), "{paused}");
    assert!(paused["consecutiveFailures"].as_i64().unwrap() >= 5);

    // Past the limit: disabled by Herald, and the operator is told.
    let disabled = app
        .eventually(WAIT, "the endpoint to be disabled", || async {
            let e = endpoint(&app, &app_id, &ep).await;
            (e["disabled"] == true).then_some(e)
        })
        .await;
    assert_eq!(disabled["state"], "auto_disabled", "{disabled}");
    assert_eq!(disabled["disabledReason"], "failing");
    assert!(disabled["disabledAt"].is_string());
    let event = app
        .eventually(WAIT, "endpoint.disabled to reach the operator", || async {
            receiver
                .received_on("/ops")
                .into_iter()
                .find(|r| r.json()["type"] == "endpoint.disabled")
        })
        .await;
    standardwebhooks::Webhook::new(&secret)
        .unwrap()
        .verify(&event.body, &event.headers)
        .expect("signed with the operational endpoint's secret");
    let data = &event.json()["data"];
    assert_eq!(data["endpointId"], ep);
    assert_eq!(data["trigger"], "automatic");
    assert_eq!(data["reason"], "failing");
    assert!(data["failSince"].is_string(), "{data}");

    // Disabled: nothing more is sent, nothing is given up.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let sent_before = receiver.received_on("/down").len();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(receiver.received_on("/down").len(), sent_before);
    for msg in &msgs {
        let (_, dest) = app
            .get_json(&format!("/api/v1/app/{app_id}/msg/{msg}/endpoint"))
            .await;
        assert_ne!(dest["data"][0]["status"], 2, "not failed: {dest}");
    }

    // The receiver is fixed and a person enables the endpoint: what waited
    // is delivered, and the endpoint is active again.
    receiver.set_default("/down", Reply::status(200));
    let (status, body) = app
        .call(
            Some(&app.token),
            Method::PATCH,
            &format!("/api/v1/app/{app_id}/endpoint/{ep}"),
            Some(json!({"disabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "active");
    assert_eq!(body["failingSince"], Value::Null);
    for msg in &msgs {
        app.eventually(WAIT, "the waiting message to be delivered", || async {
            let (_, dest) = app
                .get_json(&format!("/api/v1/app/{app_id}/msg/{msg}/endpoint"))
                .await;
            (dest["data"][0]["status"] == 0).then_some(())
        })
        .await;
    }
    assert_eq!(endpoint(&app, &app_id, &ep).await["state"], "active");
    app.stop().await;
}

#[tokio::test]
async fn the_portal_list_the_endpoint_page_and_the_api_tell_one_state() {
    // One failed attempt, then a retry far off: the pages read a steady state.
    let app = TestApp::spawn_with(Options {
        retry_schedule: RetrySchedule::from_delays(vec![Duration::from_secs(600)]).unwrap(),
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.set_default("/down", Reply::status(503).body("maintenance"));
    let app_id = app.create_app("Design Club").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/down")}))
        .await;
    let msg = app
        .send(&app_id, json!({"eventType": "a", "payload": {}}))
        .await;
    app.eventually(WAIT, "the endpoint to be failing", || async {
        (endpoint(&app, &app_id, &ep).await["state"] == "failing").then_some(())
    })
    .await;
    let portal = crate::support::PortalSession::for_app(&app, &app_id).await;
    let (_, list) = portal.get("/portal/").await;
    assert!(list.contains("badge badge-failing\">failing<"), "{list}");
    // The list says since when, and the last error.
    let line = part_after(&list, "class=\"state-line");
    assert!(
        line.starts_with(" muted\">since <time class=\"when\""),
        "{line}"
    );
    assert!(line.contains("503 maintenance"), "{line}");
    // The message page: failing, with this endpoint's next try.
    let msg_page = format!("/portal/endpoints/{ep}/messages/{msg}");
    let (_, page) = portal.get(&msg_page).await;
    assert!(
        part_after(&page, "id=\"overall-status\"").contains("1 failing and being retried"),
        "{page}"
    );
    let this = part_after(&page, "id=\"this-status\"");
    assert!(
        this.contains("1 attempt failed so far; next try <time class=\"when\""),
        "{this}"
    );
    assert!(page.contains("data-live=\"true\""), "refreshes itself");
    let (_, page) = portal.get(&format!("/portal/endpoints/{ep}")).await;
    assert!(
        page.contains("id=\"endpoint-state\" class=\"badge badge-failing\">failing<"),
        "{page}"
    );
    let detail = page
        .split("id=\"state-detail\"")
        .nth(1)
        .expect("the page says why");
    assert!(detail.contains("Failing since"), "{detail}");
    assert!(detail.contains("503 maintenance"), "{detail}");

    let (status, _) = app
        .call(
            Some(&app.token),
            Method::PATCH,
            &format!("/api/v1/app/{app_id}/endpoint/{ep}"),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(endpoint(&app, &app_id, &ep).await["state"], "disabled");
    let (_, list) = portal.get("/portal/").await;
    assert!(list.contains("badge badge-disabled\">disabled<"), "{list}");
    let (_, page) = portal.get(&format!("/portal/endpoints/{ep}")).await;
    assert!(page.contains("badge badge-disabled\">disabled<"));
    assert!(
        part_after(&page, "id=\"state-detail\"")
            .starts_with(" class=\"state-detail\">Disabled by a person on <time class=\"when\""),
        "{page}"
    );
    // The message page no longer calls it retried: it waits for the endpoint.
    let (_, page) = portal.get(&msg_page).await;
    let overall = part_after(&page, "id=\"overall-status\"");
    assert!(
        overall.contains("1 waiting for its endpoint to be enabled")
            && !overall.contains("being retried"),
        "{overall}"
    );
    assert!(
        part_after(&page, "id=\"this-status\"")
            .contains("waiting, because the endpoint is disabled"),
        "{page}"
    );
    assert!(
        !page.contains("data-live"),
        "nothing to refresh for: {page}"
    );
    app.stop().await;
}

/// What follows `marker` in `page`, to the end of its line.
fn part_after<'a>(page: &'a str, marker: &str) -> &'a str {
    let rest = page
        .split_once(marker)
        .unwrap_or_else(|| panic!("{marker} in {page}"))
        .1;
    rest.split('\n').next().unwrap_or_default()
}

/// A delivery of a disabled endpoint can fall due: an attempt that read the
/// endpoint just before another node disabled it moves its delivery on. The
/// worker that claims it finds the endpoint disabled: it waits for the
/// endpoint, and enabling it delivers it at once (not when the worker's claim
/// would have run out, a minute on). The race is staged through the store,
/// since the API refuses to resend to a disabled endpoint.
#[tokio::test]
async fn a_delivery_due_for_a_disabled_endpoint_goes_out_when_it_is_enabled() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Design Club").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/hook")}))
        .await;
    let msg = app
        .send(
            &app_id,
            json!({"eventType": "member.created", "payload": {}}),
        )
        .await;
    app.eventually(WAIT, "the first delivery", || async {
        (receiver.received_on("/hook").len() == 1).then_some(())
    })
    .await;
    let path = format!("/api/v1/app/{app_id}/endpoint/{ep}");
    let patch = |disabled: bool| {
        app.call(
            Some(&app.token),
            Method::PATCH,
            &path,
            Some(json!({ "disabled": disabled })),
        )
    };
    let (status, body) = patch(true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.open_store()
        .await
        .resend(&app_id, &msg, &ep, chrono::Utc::now())
        .await
        .unwrap();
    // A worker claims it (at most a poll later), finds the endpoint
    // disabled, and sends nothing.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(receiver.received_on("/hook").len(), 1);

    let (status, body) = patch(false).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.eventually(WAIT, "the delivery once enabled", || async {
        (receiver.received_on("/hook").len() == 2).then_some(())
    })
    .await;
    app.stop().await;
}
