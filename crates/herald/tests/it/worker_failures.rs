//! The worker's failure branches, end to end: the breaker pausing an endpoint
//! that keeps failing (its deliveries delayed, never dropped), the delivery
//! timeout, the response-body prefix, `HERALD_MAX_RETRY_AFTER_SECONDS`, an
//! endpoint deleted with deliveries queued, and a claim handed back because it
//! waited for its endpoint's slot so long that its lease could run out.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use herald_core::schedule::RetrySchedule;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{Options, Receiver, Reply, TestApp};

const WAIT: Duration = Duration::from_secs(30);

fn schedule(delays: &[Duration]) -> RetrySchedule {
    RetrySchedule::from_delays(delays.to_vec()).unwrap()
}

/// An app with one endpoint per receiver path; returns the app id and the
/// endpoint ids in order.
async fn app_with(app: &TestApp, receiver: &Receiver, paths: &[&str]) -> (String, Vec<String>) {
    let app_id = app.create_app("Failures").await;
    let mut eps = Vec::new();
    for path in paths {
        let body = json!({"url": receiver.url(path)});
        eps.push(app.create_endpoint(&app_id, body).await);
    }
    (app_id, eps)
}

async fn send_n(app: &TestApp, app_id: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let body = json!({"eventType": "t.fail", "payload": {"n": i}});
        ids.push(app.send(app_id, body).await);
    }
    ids
}

/// The attempts made at one endpoint, newest first.
async fn attempts_at(app: &TestApp, app_id: &str, ep: &str) -> Vec<Value> {
    let path = format!("/api/v1/app/{app_id}/attempt/endpoint/{ep}?limit=250");
    let (status, body) = app.get_json(&path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().unwrap().clone()
}

/// The single attempt of a message that is never retried, once recorded.
async fn only_attempt(app: &TestApp, app_id: &str, msg: &str) -> Value {
    let list = app
        .eventually(WAIT, "the attempt to be recorded", || async {
            let list = app.attempts(app_id, msg).await;
            (!list.is_empty()).then_some(list)
        })
        .await;
    assert_eq!(list.len(), 1, "{list:?}");
    list[0].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn five_failures_in_a_row_pause_an_endpoint_whose_deliveries_wait_and_arrive() {
    // Retries an hour away: every attempt below is a message's first.
    let app = TestApp::spawn_with(Options {
        retry_schedule: schedule(&[Duration::from_secs(3600)]),
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.script("/failing", vec![Reply::status(500); 5]);
    let (app_id, eps) = app_with(&app, &receiver, &["/failing", "/healthy"]).await;
    send_n(&app, &app_id, 5).await;
    app.eventually(WAIT, "five failed attempts", || async {
        (attempts_at(&app, &app_id, &eps[0]).await.len() == 5).then_some(())
    })
    .await;
    let fifth_failure = receiver.received_on("/failing")[4].at;

    // The endpoint answers again, but it is paused: for a second nothing is
    // tried; then every delivery goes out, once.
    let later = send_n(&app, &app_id, 5).await;
    let got = receiver.wait_for("/failing", 10, WAIT).await;
    let resumed = got[5].at - fifth_failure;
    assert!(
        resumed >= Duration::from_millis(950),
        "tried {resumed:?} after the fifth failure"
    );
    receiver.wait_for("/healthy", 10, WAIT).await;
    // Delayed, not retried: each has one attempt there, a success.
    for id in &later {
        let ep = eps[0].as_str();
        let there = app
            .eventually(WAIT, "the attempt to be recorded", || async {
                let list = app.attempts(&app_id, id).await;
                let there: Vec<Value> =
                    list.into_iter().filter(|a| a["endpointId"] == ep).collect();
                (!there.is_empty()).then_some(there)
            })
            .await;
        assert_eq!(there.len(), 1, "{there:?}");
        assert_eq!(there[0]["status"], 0, "{there:?}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_slower_than_the_timeout_fails_as_timed_out() {
    let app = TestApp::spawn_with(Options {
        delivery_timeout: Duration::from_secs(1),
        retry_schedule: schedule(&[]),
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.set_default("/slow", Reply::status(200).delay(Duration::from_secs(5)));
    let (app_id, _) = app_with(&app, &receiver, &["/slow"]).await;
    let msg = send_n(&app, &app_id, 1).await.remove(0);
    let attempt = only_attempt(&app, &app_id, &msg).await;
    assert_eq!(attempt["responseStatusCode"], 0, "{attempt}");
    assert_eq!(attempt["status"], 2, "{attempt}");
    assert_eq!(attempt["response"], "timed out after 1 s", "{attempt}");
    assert!(
        attempt["responseDurationMs"].as_i64().unwrap() >= 1000,
        "{attempt}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_first_4_kib_of_a_response_body_are_kept() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let body: String = (0..1000).map(|i| format!("{i:09}\n")).collect();
    receiver.set_default("/chatty", Reply::status(200).body(&body));
    let (app_id, _) = app_with(&app, &receiver, &["/chatty"]).await;
    let msg = send_n(&app, &app_id, 1).await.remove(0);
    let attempt = only_attempt(&app, &app_id, &msg).await;
    assert_eq!(attempt["status"], 0, "{attempt}");
    let kept = attempt["response"].as_str().unwrap();
    assert_eq!(kept.len(), 4096);
    assert!(body.starts_with(kept), "not the body's first bytes");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_is_capped_by_the_configured_maximum() {
    // Without the cap the retry would come an hour later.
    let app = TestApp::spawn_with(Options {
        retry_schedule: schedule(&[Duration::from_secs(3600)]),
        max_retry_after: Duration::from_secs(1),
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.script(
        "/busy",
        vec![Reply::status(429).header("retry-after", "3600")],
    );
    let (app_id, _) = app_with(&app, &receiver, &["/busy"]).await;
    let msg = send_n(&app, &app_id, 1).await.remove(0);
    let got = receiver.wait_for("/busy", 2, WAIT).await;
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(800), "retried after {gap:?}");
    assert_eq!(got[1].header("webhook-id"), msg);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_an_endpoint_drops_its_queued_deliveries_and_the_rest_flow() {
    let app = TestApp::spawn_with(Options {
        endpoint_concurrency: 2,
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.set_default("/doomed", Reply::status(200).delay(Duration::from_secs(1)));
    let (app_id, eps) = app_with(&app, &receiver, &["/doomed", "/kept"]).await;
    send_n(&app, &app_id, 20).await;
    receiver.wait_for("/doomed", 2, WAIT).await;
    let path = format!("/api/v1/app/{app_id}/endpoint/{}", eps[0]);
    let r = app
        .request(reqwest::Method::DELETE, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let deleted_at = Instant::now();

    // The worker keeps going: what is sent after the delete arrives too.
    send_n(&app, &app_id, 5).await;
    receiver.wait_for("/kept", 25, WAIT).await;
    // Longer than the requests in flight at the delete.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let doomed = receiver.received_on("/doomed");
    // At most the two in flight, and two that had just taken their slot;
    // not the 16 or so claimed ahead, nor the rest of the 20.
    assert!(
        doomed.len() <= 4,
        "{} requests to the deleted endpoint",
        doomed.len()
    );
    let late = doomed
        .iter()
        .filter(|r| r.at > deleted_at + Duration::from_secs(1))
        .count();
    assert_eq!(late, 0, "requests started after the delete");
    let (status, _) = app.get_json(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claim_that_waited_too_long_for_its_slot_is_given_back_not_sent_late() {
    // One request at a time, 1.5 s each, four claimed ahead; a lease of 4 s
    // less a 2 s timeout leaves a claim 1 s to start. Sent later, the last of
    // a batch would still be under way when its lease ran out, and be claimed
    // and sent a second time.
    let app = TestApp::spawn_with(Options {
        delivery_timeout: Duration::from_secs(2),
        lease: Some(Duration::from_secs(4)),
        endpoint_concurrency: 1,
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.set_default(
        "/narrow",
        Reply::status(200).delay(Duration::from_millis(1500)),
    );
    let (app_id, _) = app_with(&app, &receiver, &["/narrow"]).await;
    let sent = send_n(&app, &app_id, 4).await;
    receiver
        .wait_for("/narrow", 4, Duration::from_secs(60))
        .await;
    // Long enough for any lease of these to run out and be claimed again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in receiver.received_on("/narrow") {
        *counts
            .entry(r.header("webhook-id").to_string())
            .or_default() += 1;
    }
    let want: BTreeMap<String, usize> = sent.iter().map(|id| (id.clone(), 1)).collect();
    assert_eq!(counts, want, "each message exactly once");
    // Giving a claim back is not an attempt.
    for id in &sent {
        let attempt = only_attempt(&app, &app_id, id).await;
        assert_eq!(attempt["status"], 0, "{attempt}");
    }
    app.stop().await;
}
