//! Svix's small contracts, as its clients can tell them: a retry's status,
//! the built-in ping, recovery's window, a body over the limit, bulk expunge,
//! a portal link that makes its application, and the event-type list.

use std::time::Duration;

use herald_core::schedule::RetrySchedule;
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Options, Receiver, Reply, TestApp};

const WAIT: Duration = Duration::from_secs(30);

/// A client that writes its whole request before reading the answer, as
/// most HTTP clients do: it must read a 413, not a broken pipe.
#[tokio::test]
async fn a_body_over_the_limit_is_answered_413_after_it_is_read() {
    let app = TestApp::spawn().await;
    let app_id = app.create_app("Design Club").await;
    // 8 MiB against the tests' 1 MiB limit: more than the sockets buffer.
    let payload = "x".repeat(8 << 20);
    let body = format!(r#"{{"eventType":"a","payload":{{"big":"{payload}"}}}}"#);
    // Without a key, both framings; then with an idempotency key twice, the
    // second answered from what the first was (replayed, the body still read).
    let rounds = [(false, ""), (true, ""), (false, "big-1"), (false, "big-1")];
    for (round, (chunked, key)) in rounds.into_iter().enumerate() {
        let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        let mut framing = if chunked {
            "Transfer-Encoding: chunked".to_string()
        } else {
            format!("Content-Length: {}", body.len())
        };
        if !key.is_empty() {
            framing.push_str(&format!("\r\nIdempotency-Key: {key}"));
        }
        let head = format!(
            "POST /api/v1/app/{app_id}/msg HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n{framing}\r\n\r\n",
            app.token
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let written = if chunked {
            let mut result = Ok(());
            for piece in body.as_bytes().chunks(64 << 10) {
                let framed = [
                    format!("{:x}\r\n", piece.len()).into_bytes(),
                    piece.to_vec(),
                    b"\r\n".to_vec(),
                ]
                .concat();
                result = stream.write_all(&framed).await;
                if result.is_err() {
                    break;
                }
            }
            match result {
                Ok(()) => stream.write_all(b"0\r\n\r\n").await,
                e => e,
            }
        } else {
            stream.write_all(body.as_bytes()).await
        };
        written.unwrap_or_else(|e| panic!("round {round}: the body could not be sent: {e}"));
        let mut answer = Vec::new();
        tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
            .await
            .expect("an answer")
            .unwrap_or_else(|e| panic!("round {round}: reading the answer: {e}"));
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "round {round}: {answer}"
        );
        assert!(answer.contains("payload_too_large"), "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
        assert_eq!(
            answer
                .to_ascii_lowercase()
                .contains("idempotent-replayed: true"),
            round == 3,
            "only the second request with the key is a replay: {answer}"
        );
    }
    // Nothing was accepted.
    let (_, list) = app.get_json(&format!("/api/v1/app/{app_id}/msg")).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
    app.stop().await;
}

/// A delivery waiting for its next retry is `sending` (3), as in Svix; one
/// not tried yet is `pending` (1); each status filters its own.
#[tokio::test]
async fn a_delivery_waiting_for_a_retry_is_sending() {
    let app = TestApp::spawn_with(Options {
        retry_schedule: RetrySchedule::from_delays(vec![Duration::from_secs(600)]).unwrap(),
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.set_default("/down", Reply::status(500));
    let app_id = app.create_app("Design Club").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/down")}))
        .await;
    let msg = app
        .send(&app_id, json!({"eventType": "a", "payload": {}}))
        .await;
    app.eventually(WAIT, "the first attempt to fail", || async {
        let (_, attempts) = app
            .get_json(&format!("/api/v1/app/{app_id}/attempt/msg/{msg}"))
            .await;
        (attempts["data"].as_array().unwrap().len() == 1).then_some(())
    })
    .await;
    let (_, dest) = app
        .get_json(&format!("/api/v1/app/{app_id}/msg/{msg}/endpoint"))
        .await;
    assert_eq!(dest["data"][0]["status"], 3, "{dest}");
    assert!(dest["data"][0]["nextAttempt"].is_string(), "{dest}");
    let listed = |status: i64| {
        let path = format!("/api/v1/app/{app_id}/endpoint/{ep}/msg?status={status}");
        let app = &app;
        async move {
            let (status, body) = app.get_json(&path).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["data"].as_array().unwrap().len()
        }
    };
    assert_eq!((listed(3).await, listed(1).await), (1, 0));
    let (_, stats) = app
        .get_json(&format!("/api/v1/app/{app_id}/endpoint/{ep}/stats"))
        .await;
    assert_eq!(
        (stats["sending"].as_i64(), stats["pending"].as_i64()),
        (Some(1), Some(0)),
        "{stats}"
    );
    app.stop().await;
}

/// Svix's built-in `svix.ping` works for send-example with no event type
/// of that name; other unknown types are still 404.
#[tokio::test]
async fn send_example_knows_svix_ping() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Design Club").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/hook")}))
        .await;
    let path = format!("/api/v1/app/{app_id}/endpoint/{ep}/send-example");
    let (status, body) = app
        .post_json(&path, json!({"eventType": "svix.ping"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["eventType"], "svix.ping");
    let got = receiver.wait_for("/hook", 1, WAIT).await;
    assert_eq!(got[0].json()["success"], true, "{}", got[0].json());
    let (status, body) = app
        .post_json(&path, json!({"eventType": "no.such.type"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    app.stop().await;
}

/// Recovery reaches back as far as attempts are kept, with five minutes'
/// grace for clocks; further is a 422 on `since`, as Svix answers.
#[tokio::test]
async fn recover_is_refused_beyond_the_attempts_kept() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Design Club").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/hook")}))
        .await;
    let path = format!("/api/v1/app/{app_id}/endpoint/{ep}/recover");
    // The tests' server keeps attempts 90 days, as by default.
    let days_ago = |days| chrono::Utc::now() - chrono::Duration::days(days);
    let (status, body) = app.post_json(&path, json!({"since": days_ago(91)})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "since"]));
    assert!(
        body["detail"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("90 days"),
        "{body}"
    );
    let (status, body) = app.post_json(&path, json!({"since": days_ago(89)})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    app.stop().await;
}

/// Svix's raw messages (`transformationsParams.rawPayload`, as its SDKs'
/// `messageInRaw` sends them): the text is the body, byte for byte, signed
/// as sent, with the Content-Type given (`application/json` without one);
/// the message reads back with `payload: {}` and the parameters.
#[tokio::test]
async fn a_raw_payload_is_delivered_as_given_with_its_content_type() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Design Club").await;
    let ep = app
        .create_endpoint(
            &app_id,
            json!({"url": receiver.url("/hook"), "dateFormat": "iso8601"}),
        )
        .await;
    let (_, secret) = app
        .get_json(&format!("/api/v1/app/{app_id}/endpoint/{ep}/secret"))
        .await;
    let verifier = standardwebhooks::Webhook::new(secret["key"].as_str().unwrap()).unwrap();
    let xml = "<member id=\"42\">Ada &amp; co</member>";
    let (status, out) = app
        .post_json(
            &format!("/api/v1/app/{app_id}/msg"),
            json!({"eventType": "member.created", "payload": {},
                   "transformationsParams": {"rawPayload": xml,
                                             "headers": {"Content-Type": "application/xml"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{out}");
    assert_eq!(out["payload"], json!({}));
    assert_eq!(out["transformationsParams"]["rawPayload"], xml);
    assert_eq!(
        out["transformationsParams"]["headers"]["content-type"],
        "application/xml"
    );
    let not_json = "a,b\n1,2\n";
    app.post_json(
        &format!("/api/v1/app/{app_id}/msg"),
        json!({"eventType": "member.created", "payload": {},
               "transformationsParams": {"rawPayload": not_json}}),
    )
    .await;
    let got = receiver.wait_for("/hook", 2, WAIT).await;
    let xml_got = got
        .iter()
        .find(|r| r.body.starts_with(b"<member"))
        .expect("the XML");
    assert_eq!(xml_got.body, xml.as_bytes());
    assert_eq!(xml_got.header("content-type"), "application/xml");
    verifier
        .verify(&xml_got.body, &xml_got.headers)
        .expect("signed over the raw bytes");
    let csv_got = got
        .iter()
        .find(|r| r.body.starts_with(b"a,b"))
        .expect("the CSV");
    assert_eq!(csv_got.body, not_json.as_bytes());
    assert_eq!(
        csv_got.header("content-type"),
        "application/json",
        "Svix's default"
    );

    let msg = out["id"].as_str().unwrap();
    let (_, read) = app
        .get_json(&format!("/api/v1/app/{app_id}/msg/{msg}"))
        .await;
    assert_eq!(read["payload"], json!({}), "{read}");
    assert_eq!(read["transformationsParams"]["rawPayload"], xml);

    let (status, body) = app
        .post_json(
            &format!("/api/v1/app/{app_id}/msg"),
            json!({"eventType": "member.created", "payload": {},
                   "transformationsParams": {"rawPayload": 42}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["body", "transformationsParams", "rawPayload"])
    );
    app.stop().await;
}

/// `PUT /app/{app}/endpoint/{uid}` creates the endpoint under that uid when
/// there is none (201), as Svix does; then updates it (200). An endpoint id
/// that is not there stays a 404.
#[tokio::test]
async fn put_creates_an_endpoint_under_its_uid() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Design Club").await;
    let path = format!("/api/v1/app/{app_id}/endpoint/crm-sync");
    let put = |url: String| {
        let path = path.clone();
        let app = &app;
        async move {
            app.call(
                Some(&app.token),
                reqwest::Method::PUT,
                &path,
                Some(json!({"url": url, "description": "CRM"})),
            )
            .await
        }
    };
    let (status, created) = put(receiver.url("/one")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["uid"], "crm-sync");
    assert_eq!(created["version"], 1);
    let (status, updated) = put(receiver.url("/two")).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["id"], created["id"], "the same endpoint");
    assert_eq!(updated["url"], receiver.url("/two"));
    let (_, list) = app
        .get_json(&format!("/api/v1/app/{app_id}/endpoint"))
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    let (status, body) = app
        .call(
            Some(&app.token),
            reqwest::Method::PUT,
            &format!("/api/v1/app/{app_id}/endpoint/ep_01M97J4270GFCE757VGMFM14HK"),
            Some(json!({"url": receiver.url("/x")})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    app.stop().await;
}

/// A message's attempted destinations still list an endpoint deleted after
/// the attempt (as Svix, which keeps deleted endpoints, lists them): with
/// the URL it was sent to and how it went, in id order with the others and
/// paged with them.
#[tokio::test]
async fn attempted_destinations_keep_an_endpoint_deleted_since() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Design Club").await;
    let mut eps = Vec::new();
    for n in 0..3 {
        eps.push(
            app.create_endpoint(&app_id, json!({"url": receiver.url(&format!("/ep{n}"))}))
                .await,
        );
    }
    let msg = app
        .send(&app_id, json!({"eventType": "a", "payload": {}}))
        .await;
    receiver.wait_for("/ep1", 1, WAIT).await;
    let destinations = format!("/api/v1/app/{app_id}/msg/{msg}/endpoint");
    app.eventually(WAIT, "three delivered", || async {
        let (_, body) = app.get_json(&destinations).await;
        let data = body["data"].as_array().unwrap().clone();
        (data.len() == 3 && data.iter().all(|d| d["status"] == 0)).then_some(())
    })
    .await;
    let (status, body) = app
        .call(
            Some(&app.token),
            reqwest::Method::DELETE,
            &format!("/api/v1/app/{app_id}/endpoint/{}", eps[1]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let (_, body) = app.get_json(&destinations).await;
    let data = body["data"].as_array().unwrap();
    let ids: Vec<&str> = data.iter().map(|d| d["id"].as_str().unwrap()).collect();
    let mut all = eps.clone();
    all.sort();
    assert_eq!(ids, all, "{body}");
    let gone = data.iter().find(|d| d["id"] == eps[1].as_str()).unwrap();
    assert_eq!(gone["url"], receiver.url("/ep1"));
    assert_eq!(gone["status"], 0, "{gone}");
    // Paged one at a time, it comes in its place.
    let mut paged = Vec::new();
    let mut iterator: Option<String> = None;
    loop {
        let it = iterator
            .as_deref()
            .map(|i| format!("&iterator={i}"))
            .unwrap_or_default();
        let (_, page) = app.get_json(&format!("{destinations}?limit=1{it}")).await;
        paged.push(page["data"][0]["id"].as_str().unwrap().to_string());
        if page["done"] == true {
            break;
        }
        iterator = page["iterator"].as_str().map(String::from);
        assert!(paged.len() <= 3, "{paged:?}");
    }
    assert_eq!(paged, all);
    app.stop().await;
}

/// `bulk-expunge` as Svix's newer servers answer it: each id or eventId
/// named, `expunged` or `not-found` (a second time, or no such message).
#[tokio::test]
async fn bulk_expunge_tells_each_message_named() {
    let app = TestApp::spawn().await;
    let app_id = app.create_app("Design Club").await;
    let by_id = app
        .send(&app_id, json!({"eventType": "a", "payload": {"n": 1}}))
        .await;
    app.send(
        &app_id,
        json!({"eventType": "a", "eventId": "evt-2", "payload": {"n": 2}}),
    )
    .await;
    let kept = app
        .send(&app_id, json!({"eventType": "a", "payload": {"n": 3}}))
        .await;
    let path = format!("/api/v1/app/{app_id}/msg/bulk-expunge");
    let (status, body) = app
        .post_json(&path, json!({"ids": [by_id, "evt-2", "msg_nothing"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["results"],
        json!({by_id.clone(): "expunged", "evt-2": "expunged", "msg_nothing": "not-found"})
    );
    let payload = |id: String| {
        let app = &app;
        let app_id = &app_id;
        async move {
            app.get_json(&format!("/api/v1/app/{app_id}/msg/{id}"))
                .await
                .1["payload"]
                .clone()
        }
    };
    assert_eq!(payload(by_id.clone()).await, json!({"expired": true}));
    assert_eq!(payload("evt-2".into()).await, json!({"expired": true}));
    assert_eq!(payload(kept).await, json!({"n": 3}), "not named, kept");
    // Already expunged: not found the second time.
    let (_, body) = app.post_json(&path, json!({"ids": [by_id.clone()]})).await;
    assert_eq!(body["results"], json!({by_id: "not-found"}));
    for (bad, loc) in [
        (json!({"ids": []}), json!(["body", "ids"])),
        (json!({"ids": ["no spaces"]}), json!(["body", "ids", "0"])),
    ] {
        let (status, body) = app.post_json(&path, bad.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(body["detail"][0]["loc"], loc, "{bad}");
    }
    app.stop().await;
}

/// `app-portal-access` that makes its application: the body's uid is the
/// path's, or a 422 (Svix's `application_uid_mismatch`), and nothing is made.
#[tokio::test]
async fn portal_access_making_an_application_checks_its_uid() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post_json(
            "/api/v1/auth/app-portal-access/spot-7",
            json!({"application": {"name": "Spot 7", "uid": "spot-8"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["body", "application", "uid"])
    );
    assert_eq!(body["detail"][0]["type"], "application_uid_mismatch");
    for uid in ["spot-7", "spot-8"] {
        let (status, _) = app.get_json(&format!("/api/v1/app/{uid}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uid} not made");
    }
    let (status, body) = app
        .post_json(
            "/api/v1/auth/app-portal-access/spot-7",
            json!({"application": {"name": "Spot 7", "uid": "spot-7"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, made) = app.get_json("/api/v1/app/spot-7").await;
    assert_eq!(made["name"], "Spot 7");
    app.stop().await;
}

/// The event-type list leaves schemas out unless `with_content=true`, as
/// Svix's does; one type read alone has them.
#[tokio::test]
async fn the_event_type_list_has_schemas_only_when_asked() {
    let app = TestApp::spawn().await;
    let schema = json!({"type": "object", "properties": {"n": {"type": "integer"}}});
    let (status, body) = app
        .post_json(
            "/api/v1/event-type",
            json!({"name": "a.b", "description": "A", "schemas": {"1": schema}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, list) = app.get_json("/api/v1/event-type").await;
    assert!(list["data"][0]["schemas"].is_null(), "{list}");
    let (_, list) = app.get_json("/api/v1/event-type?with_content=true").await;
    assert_eq!(list["data"][0]["schemas"]["1"], schema, "{list}");
    let (_, one) = app.get_json("/api/v1/event-type/a.b").await;
    assert_eq!(one["schemas"]["1"], schema, "{one}");
    app.stop().await;
}
