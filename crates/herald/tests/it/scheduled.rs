//! Scheduled delivery: a message's `deliverAt` (Svix's `MessageIn` field),
//! sent through the official SDK to a real receiver on loopback. It arrives
//! no earlier than that time, soon after it (the worker sleeps until the
//! earliest due delivery, not past it), shows as scheduled meanwhile, and
//! survives a restart in between.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::json;
use svix::models::{MessageIn, MessageStatus};

use crate::support::{Options, PortalSession, Receiver, TestApp};

/// How late after its `deliverAt` a delivery may arrive: the worker wakes for
/// the earliest due delivery, so this is the claim and the request, with
/// room for a loaded machine.
const MAX_LATENESS: Duration = Duration::from_millis(1500);

/// How late a delivery may be when the worker is woken for it.
const WAKE_LATENESS: Duration = Duration::from_millis(500);

/// `deliverAt` `ahead` from now, and the `Instant` it corresponds to.
fn at_ahead(ahead: Duration) -> (DateTime<Utc>, Instant) {
    let (wall, mono) = (Utc::now(), Instant::now());
    (
        wall + chrono::Duration::from_std(ahead).unwrap(),
        mono + ahead,
    )
}

/// A scheduled message through the SDK; returns its id.
async fn send_at(svix: &svix::api::Svix, app_id: &str, n: u32, at: DateTime<Utc>) -> String {
    let msg = MessageIn {
        deliver_at: Some(at),
        ..MessageIn::new("invoice.paid".into(), json!({"n": n}))
    };
    let out = svix
        .message()
        .create(app_id.into(), msg, None)
        .await
        .unwrap();
    // The answer says when (to the millisecond Herald keeps, rounded up).
    let said = out.deliver_at.expect("deliverAt in the answer");
    assert!(
        said >= at && said - at < chrono::Duration::milliseconds(1),
        "{said} vs {at}"
    );
    out.id
}

/// How late `arrived` is after `due` (panics if it is early).
fn lateness(arrived: Instant, due: Instant, what: &str) -> Duration {
    assert!(
        arrived >= due,
        "{what} arrived {:?} before its deliverAt",
        due - arrived
    );
    arrived - due
}

#[tokio::test]
async fn deliver_at_through_the_sdk_arrives_on_time_and_shows_as_scheduled() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let svix = app.svix();
    let app_id = app.create_app("Spot").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/hook")}))
        .await;

    // Far enough ahead that the checks below run before it is due, even on a
    // loaded machine.
    let (at, due) = at_ahead(Duration::from_secs(5));
    let msg_id = send_at(&svix, &app_id, 1, at).await;
    // The message keeps its deliverAt.
    let kept = svix
        .message()
        .get(app_id.clone(), msg_id.clone(), None)
        .await
        .unwrap();
    let kept = kept.deliver_at.expect("deliverAt on the message");
    assert!(kept >= at && kept - at < chrono::Duration::milliseconds(1));

    // Meanwhile: pending, next attempt at deliverAt, nothing sent.
    let destinations = svix
        .message_attempt()
        .list_attempted_destinations(app_id.clone(), msg_id.clone(), None)
        .await
        .unwrap()
        .data;
    assert_eq!(destinations.len(), 1);
    assert_eq!(destinations[0].id, ep);
    assert_eq!(destinations[0].status, MessageStatus::Pending);
    let next = destinations[0].next_attempt.expect("a next attempt");
    assert!((next - at).num_milliseconds().abs() <= 1, "{next} vs {at}");
    let portal = PortalSession::for_app(&app, &app_id).await;
    let (status, page) = portal.get(&format!("/portal/endpoints/{ep}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("scheduled for"), "{page}");
    assert!(
        page.contains(&at.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        "{page}"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // On a loaded machine the checks above may outlast the 2 s: what arrived
    // must not have arrived early.
    assert!(
        receiver.received().iter().all(|r| r.at >= due),
        "delivered before deliverAt"
    );

    let got = receiver.wait_for("/hook", 1, Duration::from_secs(10)).await;
    let late = lateness(got[0].at, due, "the message");
    assert!(late < MAX_LATENESS, "arrived {late:?} after deliverAt");
    assert_eq!(got[0].header("webhook-id"), msg_id);
    assert_eq!(got[0].json(), json!({"n": 1}));
    // Once sent, the log no longer says scheduled.
    app.eventually(Duration::from_secs(10), "the attempt recorded", || async {
        (app.attempts(&app_id, &msg_id).await.len() == 1).then_some(())
    })
    .await;
    let (_, page) = portal.get(&format!("/portal/endpoints/{ep}")).await;
    assert!(!page.contains("scheduled for"), "{page}");
}

/// The worker wakes for each due time, not on its next poll: three messages
/// due at staggered times, sent before any falls due, each arrive within
/// `WAKE_LATENESS` of their own time and never before. (They arrive some
/// 10-30 ms after it; a worker that found them only on its 1 s idle poll
/// would be late by up to a second, past this for most of the three.)
#[tokio::test]
async fn the_worker_wakes_when_each_scheduled_delivery_falls_due() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let svix = app.svix();
    let app_id = app.create_app("Spot").await;
    app.create_endpoint(&app_id, json!({"url": receiver.url("/hook")}))
        .await;

    let mut due = Vec::new();
    for (n, ms) in [(0, 1300), (1, 1750), (2, 2600)] {
        let (at, instant) = at_ahead(Duration::from_millis(ms));
        send_at(&svix, &app_id, n, at).await;
        due.push(instant);
    }
    let got = receiver.wait_for("/hook", 3, Duration::from_secs(15)).await;
    for r in &got {
        let n = r.json()["n"].as_u64().unwrap() as usize;
        let late = lateness(r.at, due[n], &format!("message {n}"));
        eprintln!("message {n}: {late:?} after its deliverAt");
        assert!(late < WAKE_LATENESS, "message {n} arrived {late:?} late");
    }
}

/// The schedule is in the database: a restart before deliverAt changes
/// nothing but the process that sends it.
#[tokio::test]
async fn deliver_at_survives_a_restart() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Spot").await;
    app.create_endpoint(&app_id, json!({"url": receiver.url("/hook")}))
        .await;
    let (at, due) = at_ahead(Duration::from_secs(3));
    let msg_id = send_at(&app.svix(), &app_id, 7, at).await;

    let app = app.restart(Options::default()).await;
    assert!(
        receiver.received().iter().all(|r| r.at >= due),
        "delivered before deliverAt"
    );
    let got = receiver.wait_for("/hook", 1, Duration::from_secs(15)).await;
    let late = lateness(got[0].at, due, "the message");
    assert!(late < MAX_LATENESS, "arrived {late:?} after deliverAt");
    assert_eq!(got[0].header("webhook-id"), msg_id);
    // The attempt is recorded just after the request is answered.
    let attempts = app
        .eventually(
            Duration::from_secs(10),
            "the attempt to be recorded",
            || async {
                let a = app.attempts(&app_id, &msg_id).await;
                (!a.is_empty()).then_some(a)
            },
        )
        .await;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
}

/// What `deliverAt` may be: up to 5 minutes in the past is now, further back
/// or beyond the payload retention ahead is a 422 naming the field, as is a
/// time that is not RFC 3339.
#[tokio::test]
async fn deliver_at_limits() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Spot").await;
    app.create_endpoint(&app_id, json!({"url": receiver.url("/hook")}))
        .await;
    let path = format!("/api/v1/app/{app_id}/msg");
    let now = Utc::now();
    let refused = [
        json!((now - chrono::Duration::minutes(10)).to_rfc3339()),
        json!((now + chrono::Duration::days(91)).to_rfc3339()),
        json!("tomorrow"),
        json!(12),
    ];
    for deliver_at in refused {
        let body = json!({"eventType": "a", "payload": {}, "deliverAt": deliver_at});
        let (status, out) = app.post_json(&path, body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{deliver_at}: {out}"
        );
        assert_eq!(
            out["detail"][0]["loc"],
            json!(["body", "deliverAt"]),
            "{out}"
        );
    }
    // A shorter retention is a nearer horizon.
    let body = json!({
        "eventType": "a", "payload": {}, "payloadRetentionPeriod": 5,
        "deliverAt": (now + chrono::Duration::days(6)).to_rfc3339(),
    });
    let (status, out) = app.post_json(&path, body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
    assert!(receiver.received().is_empty());

    // A minute ago (a slow clock) is now; 89 days ahead is accepted.
    let body = json!({
        "eventType": "a", "payload": {"late": true},
        "deliverAt": (now - chrono::Duration::minutes(1)).to_rfc3339(),
    });
    let (status, out) = app.post_json(&path, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{out}");
    assert!(out.get("deliverAt").is_none(), "{out}");
    receiver.wait_for("/hook", 1, Duration::from_secs(10)).await;
    let far = (now + chrono::Duration::days(89)).to_rfc3339();
    let body = json!({"eventType": "a", "payload": {}, "deliverAt": far});
    let (status, out) = app.post_json(&path, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{out}");
    assert!(out["deliverAt"].is_string(), "{out}");
}
