//! Delivery behaviour: retries, Retry-After, 410, redirects, routing by event
//! type and channel, fan-out, per-endpoint isolation, the SSRF rule and dead
//! receivers.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use herald_core::net::AllowList;
use herald_core::schedule::RetrySchedule;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{Options, Receiver, Reply, TestApp};

const WAIT: Duration = Duration::from_secs(30);

/// The attempts of a message, oldest first.
async fn attempts(app: &TestApp, app_id: &str, msg_id: &str) -> Vec<Value> {
    let (status, body) = app
        .get_json(&format!(
            "/api/v1/app/{app_id}/attempt/msg/{msg_id}?limit=250"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut list = body["data"].as_array().unwrap().clone();
    list.reverse();
    list
}

/// The delivery status (0 success, 1 pending, 2 fail, 3 sending) of a message
/// to each endpoint it was meant for, by endpoint id.
async fn destinations(app: &TestApp, app_id: &str, msg_id: &str) -> BTreeMap<String, i64> {
    let (status, body) = app
        .get_json(&format!("/api/v1/app/{app_id}/msg/{msg_id}/endpoint"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_string(),
                d["status"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Waits until the delivery of `msg_id` to `endpoint_id` has this status.
async fn wait_status(app: &TestApp, app_id: &str, msg_id: &str, endpoint_id: &str, want: i64) {
    app.eventually(
        WAIT,
        &format!("delivery of {msg_id} to {endpoint_id} to reach status {want}"),
        || async {
            let d = destinations(app, app_id, msg_id).await;
            (d.get(endpoint_id) == Some(&want)).then_some(())
        },
    )
    .await
}

fn schedule(delays: Vec<Duration>) -> RetrySchedule {
    RetrySchedule::from_delays(delays).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_are_retried_with_the_same_webhook_id_until_success() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.script("/flaky", vec![Reply::status(500), Reply::status(500)]);
    let app_id = app.create_app("Retries").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/flaky")}))
        .await;
    let msg = app
        .send(
            &app_id,
            json!({"eventType": "t.retry", "payload": {"n": 1}}),
        )
        .await;

    let got = receiver.wait_for("/flaky", 3, WAIT).await;
    assert!(got.iter().all(|r| r.header("webhook-id") == msg));
    wait_status(&app, &app_id, &msg, &ep, 0).await;

    let list = attempts(&app, &app_id, &msg).await;
    let codes: Vec<i64> = list
        .iter()
        .map(|a| a["responseStatusCode"].as_i64().unwrap())
        .collect();
    let statuses: Vec<i64> = list.iter().map(|a| a["status"].as_i64().unwrap()).collect();
    assert_eq!(codes, vec![500, 500, 200], "{list:?}");
    assert_eq!(statuses, vec![2, 2, 0], "{list:?}");
    assert!(list
        .iter()
        .all(|a| a["msgId"] == msg && a["endpointId"] == ep));
    // Delivered: nothing more is sent.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.received_on("/flaky").len(), 3);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exhausted_retries_end_in_failure() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.set_default("/down", Reply::status(500).body("nope"));
    let app_id = app.create_app("Exhausted").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/down")}))
        .await;
    let msg = app
        .send(&app_id, json!({"eventType": "t.fail", "payload": {}}))
        .await;

    wait_status(&app, &app_id, &msg, &ep, 2).await;
    // The first attempt and one per delay of the schedule (3 delays).
    assert_eq!(receiver.received_on("/down").len(), 4);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        receiver.received_on("/down").len(),
        4,
        "retried after giving up"
    );
    let list = attempts(&app, &app_id, &msg).await;
    assert_eq!(list.len(), 4);
    for a in &list {
        assert_eq!(a["responseStatusCode"], 500);
        assert_eq!(a["status"], 2);
        assert_eq!(a["response"], "nope");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_on_429_and_503_sets_the_next_attempt() {
    // With the schedule alone the retry would come a minute later.
    let app = TestApp::spawn_with(Options {
        retry_schedule: schedule(vec![Duration::from_secs(60)]),
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.script("/busy", vec![Reply::status(429).header("retry-after", "1")]);
    receiver.script(
        "/unavailable",
        vec![Reply::status(503).header("retry-after", "1")],
    );
    // Retry-After is a hint of 429 and 503 only; a 500 gets the schedule.
    receiver.script(
        "/broken",
        vec![Reply::status(500).header("retry-after", "1")],
    );
    let app_id = app.create_app("RetryAfter").await;
    let busy = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/busy")}))
        .await;
    let unavailable = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/unavailable")}))
        .await;
    let broken = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/broken")}))
        .await;
    let msg = app
        .send(&app_id, json!({"eventType": "t.later", "payload": {}}))
        .await;

    let busy_got = receiver.wait_for("/busy", 2, WAIT).await;
    let unavailable_got = receiver.wait_for("/unavailable", 2, WAIT).await;
    for got in [&busy_got, &unavailable_got] {
        let gap = got[1].at - got[0].at;
        // Not before the receiver's second (minus clock granularity).
        assert!(gap >= Duration::from_millis(800), "retried after {gap:?}");
        assert_eq!(got[1].header("webhook-id"), msg);
    }
    wait_status(&app, &app_id, &msg, &busy, 0).await;
    wait_status(&app, &app_id, &msg, &unavailable, 0).await;
    let d = destinations(&app, &app_id, &msg).await;
    assert_eq!(
        d.get(&broken),
        Some(&3),
        "the 500 waits for its retry (sending): {d:?}"
    );
    assert_eq!(receiver.received_on("/broken").len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gone_disables_the_endpoint_without_retrying() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.set_default("/gone", Reply::status(410));
    let app_id = app.create_app("Gone").await;
    let gone = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/gone")}))
        .await;
    app.create_endpoint(&app_id, json!({"url": receiver.url("/ok")}))
        .await;
    let first = app
        .send(&app_id, json!({"eventType": "t.one", "payload": {}}))
        .await;
    receiver.wait_for("/gone", 1, WAIT).await;
    wait_status(&app, &app_id, &first, &gone, 2).await;

    let (status, ep) = app
        .get_json(&format!("/api/v1/app/{app_id}/endpoint/{gone}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ep["disabled"], true, "{ep}");
    let list = attempts(&app, &app_id, &first).await;
    let to_gone: Vec<&Value> = list.iter().filter(|a| a["endpointId"] == gone).collect();
    assert_eq!(to_gone.len(), 1, "{list:?}");
    assert_eq!(to_gone[0]["responseStatusCode"], 410);

    let second = app
        .send(&app_id, json!({"eventType": "t.two", "payload": {}}))
        .await;
    let ok = receiver.wait_for("/ok", 2, WAIT).await;
    assert!(ok.iter().any(|r| r.header("webhook-id") == second));
    // Longer than the whole retry schedule.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let got = receiver.received_on("/gone");
    assert_eq!(got.len(), 1, "the disabled endpoint was contacted again");
    assert_eq!(got[0].header("webhook-id"), first);
    let d = destinations(&app, &app_id, &second).await;
    assert!(!d.contains_key(&gone), "{d:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_are_not_followed() {
    let app = TestApp::spawn_with(Options {
        retry_schedule: schedule(vec![]),
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.set_default(
        "/moved",
        Reply::status(302).header("location", &receiver.url("/elsewhere")),
    );
    let app_id = app.create_app("Redirect").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/moved")}))
        .await;
    let msg = app
        .send(&app_id, json!({"eventType": "t.moved", "payload": {}}))
        .await;
    wait_status(&app, &app_id, &msg, &ep, 2).await;
    let list = attempts(&app, &app_id, &msg).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["responseStatusCode"], 302);
    assert_eq!(list[0]["status"], 2);
    assert_eq!(receiver.received_on("/moved").len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.received_on("/elsewhere").is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_go_to_endpoints_by_event_type_and_channel() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Routing").await;
    let endpoints: [(&str, Value); 6] = [
        ("/all", json!({})),
        ("/type-a", json!({"eventTypes": ["type.a"]})),
        ("/type-b", json!({"filterTypes": ["type.b"]})),
        ("/chan-x", json!({"channels": ["x"]})),
        (
            "/chan-y-type-a",
            json!({"channels": ["y"], "eventTypes": ["type.a"]}),
        ),
        ("/disabled", json!({"disabled": true})),
    ];
    for (path, extra) in &endpoints {
        let mut body = extra.clone();
        body["url"] = json!(receiver.url(path));
        app.create_endpoint(&app_id, body).await;
    }
    let messages: [(&str, Value, &[&str]); 7] = [
        ("type.a", json!(null), &["/all", "/type-a"]),
        ("type.a", json!(["x"]), &["/all", "/type-a", "/chan-x"]),
        ("type.b", json!(["y"]), &["/all", "/type-b"]),
        (
            "type.a",
            json!(["y", "x"]),
            &["/all", "/type-a", "/chan-x", "/chan-y-type-a"],
        ),
        ("type.c", json!(["z"]), &["/all"]),
        (
            "type.a",
            json!(["y"]),
            &["/all", "/type-a", "/chan-y-type-a"],
        ),
        ("type.b", json!(["x"]), &["/all", "/type-b", "/chan-x"]),
    ];
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, _) in &endpoints {
        expected.insert(path.to_string(), BTreeSet::new());
    }
    let mut total = 0;
    for (event_type, channels, targets) in &messages {
        let mut body = json!({"eventType": event_type, "payload": {"t": event_type}});
        if !channels.is_null() {
            body["channels"] = channels.clone();
        }
        let id = app.send(&app_id, body).await;
        for t in *targets {
            expected.get_mut(*t).unwrap().insert(id.clone());
            total += 1;
        }
    }

    app.eventually(WAIT, "every routed delivery", || async {
        (receiver.received().len() >= total).then_some(())
    })
    .await;
    // Anything misrouted would have had time to arrive too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut actual: BTreeMap<String, BTreeSet<String>> = expected
        .keys()
        .map(|k| (k.clone(), BTreeSet::new()))
        .collect();
    let received = receiver.received();
    assert_eq!(received.len(), total, "duplicates or misrouted deliveries");
    for r in received {
        actual
            .get_mut(&r.path)
            .unwrap()
            .insert(r.header("webhook-id").to_string());
    }
    assert_eq!(actual, expected);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fan_out_to_many_endpoints_delivers_each_exactly_once() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("FanOut").await;
    for i in 0..20 {
        app.create_endpoint(&app_id, json!({"url": receiver.url(&format!("/e{i}"))}))
            .await;
    }
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(
            app.send(&app_id, json!({"eventType": "t.fan", "payload": {"n": n}}))
                .await,
        );
    }
    app.eventually(WAIT, "200 deliveries", || async {
        (receiver.received().len() >= 200).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = receiver.received();
    assert_eq!(received.len(), 200);
    let pairs: BTreeSet<(String, String)> = received
        .iter()
        .map(|r| (r.path.clone(), r.header("webhook-id").to_string()))
        .collect();
    assert_eq!(pairs.len(), 200, "some delivery arrived twice");
    for i in 0..20 {
        for id in &ids {
            assert!(
                pairs.contains(&(format!("/e{i}"), id.clone())),
                "/e{i} {id}"
            );
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_endpoint_does_not_hold_up_a_healthy_one() {
    let app = TestApp::spawn_with(Options {
        endpoint_concurrency: 4,
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.set_default("/slow", Reply::status(200).delay(Duration::from_secs(3)));
    let app_id = app.create_app("Isolation").await;
    app.create_endpoint(&app_id, json!({"url": receiver.url("/slow")}))
        .await;
    app.create_endpoint(&app_id, json!({"url": receiver.url("/fast")}))
        .await;
    for n in 0..30 {
        app.send(&app_id, json!({"eventType": "t.iso", "payload": {"n": n}}))
            .await;
    }
    let fast = receiver.wait_for("/fast", 30, WAIT).await;
    // With at most 4 requests in flight to /slow, its 15th request cannot start
    // before three 3-second rounds have passed.
    let slow = receiver
        .wait_for("/slow", 15, Duration::from_secs(60))
        .await;
    let last_fast = fast.iter().map(|r| r.at).max().unwrap();
    assert!(
        last_fast < slow[14].at,
        "the healthy endpoint waited for the slow one"
    );
    // At most endpoint_concurrency requests to /slow were open at once: the
    // fifth can only arrive after the first has been answered.
    assert!(slow[4].at - slow[0].at >= Duration::from_millis(2500));
    let ids: BTreeSet<&str> = fast.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 30);
    app.stop().await;
}

/// An app with one endpoint per URL, one message, and no retries; returns the
/// app id, message id and endpoint ids.
async fn send_to_urls(app: &TestApp, urls: &[String]) -> (String, String, Vec<String>) {
    let app_id = app.create_app("Ssrf").await;
    let mut eps = Vec::new();
    for url in urls {
        eps.push(app.create_endpoint(&app_id, json!({"url": url})).await);
    }
    let msg = app
        .send(&app_id, json!({"eventType": "t.ssrf", "payload": {}}))
        .await;
    (app_id, msg, eps)
}

#[tokio::test(flavor = "multi_thread")]
async fn loopback_is_refused_unless_allowed() {
    let receiver = Receiver::start().await;
    let port = receiver.addr.port();
    let app = TestApp::spawn_with(Options {
        allow_subnets: AllowList::default(),
        retry_schedule: schedule(vec![]),
        ..Options::default()
    })
    .await;
    let urls = [
        format!("http://127.0.0.1:{port}/v4"),
        format!("http://localhost:{port}/name"),
        format!("http://[::1]:{port}/v6"),
        format!("http://[::ffff:127.0.0.1]:{port}/mapped"),
    ];
    // Refused when saved, by the API as by the portal (one rule): what can be
    // known then is said then. A name that resolves elsewhere later is
    // refused at delivery (ssrf.rs).
    let app_id = app.create_app("Spot").await;
    for url in &urls {
        let (status, out) = app
            .post_json(
                &format!("/api/v1/app/{app_id}/endpoint"),
                json!({"url": url}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {out}");
        assert_eq!(out["detail"][0]["loc"], json!(["body", "url"]), "{out}");
        let text = out["detail"][0]["msg"].as_str().unwrap();
        assert!(text.contains("SSRF"), "{text}");
        // Whoever saves it reads this: it must not tell the operator's
        // setting, nor what a name resolved to (that would let tenants map
        // internal names).
        assert!(!text.contains("HERALD_ALLOW_SUBNETS"), "{text}");
        if url.contains("localhost") {
            assert_eq!(
                text,
                "Webhooks cannot be used to reach private networks: localhost resolves to a non-public address; Herald delivers only to public internet addresses (SSRF protection).",
            );
        } else {
            assert!(text.contains("is not a public address"), "{text}");
        }
    }
    assert!(receiver.received().is_empty());
    app.stop().await;

    let app = TestApp::spawn_with(Options {
        allow_subnets: "127.0.0.1/32".parse().unwrap(),
        retry_schedule: schedule(vec![]),
        ..Options::default()
    })
    .await;
    let (app_id, msg, eps) = send_to_urls(&app, &urls[..1]).await;
    let got = receiver.wait_for("/v4", 1, WAIT).await;
    assert_eq!(got[0].header("webhook-id"), msg);
    wait_status(&app, &app_id, &msg, &eps[0], 0).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_endpoint_is_recorded_as_a_connection_failure() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let app = TestApp::spawn_with(Options {
        retry_schedule: schedule(vec![]),
        ..Options::default()
    })
    .await;
    let (app_id, msg, eps) = send_to_urls(&app, &[format!("http://127.0.0.1:{port}/nobody")]).await;
    wait_status(&app, &app_id, &msg, &eps[0], 2).await;
    let list = attempts(&app, &app_id, &msg).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["responseStatusCode"], 0);
    let text = list[0]["response"].as_str().unwrap().to_lowercase();
    assert!(text.contains("connection"), "{text}");
    app.stop().await;
}
