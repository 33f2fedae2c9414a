//! The rest of Svix's API a client may call, through the official Svix SDK:
//! expunging a message's content and an attempt's response, and ending every
//! portal session of an application.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use svix::models::{ApplicationTokenExpireIn, MessageIn};

use crate::support::{PortalSession, Receiver, Reply, TestApp};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn content_is_expunged_from_a_message_and_an_attempt() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.set_default("/hook", Reply::status(200).body("secret-looking response"));
    let svix = app.svix();
    let app_id = app.create_app("Spot").await;
    app.create_endpoint(&app_id, json!({"url": receiver.url("/hook")}))
        .await;
    let msg = svix
        .message()
        .create(
            app_id.clone(),
            MessageIn::new("member.created".into(), json!({"email": "ada@example.com"})),
            None,
        )
        .await
        .unwrap();
    receiver.wait_for("/hook", 1, WAIT).await;
    let attempt = app
        .eventually(WAIT, "the attempt", || async {
            app.attempts(&app_id, &msg.id).await.pop()
        })
        .await;
    let attempt_id = attempt["id"].as_str().unwrap().to_string();
    assert_eq!(attempt["response"], "secret-looking response");

    svix.message()
        .expunge_content(app_id.clone(), msg.id.clone())
        .await
        .unwrap();
    // The SDK leaves payloads out unless asked (its v2 default).
    let with_content = || {
        Some(svix::api::MessageGetOptions {
            with_content: Some(true),
        })
    };
    let got = svix
        .message()
        .get(app_id.clone(), msg.id.clone(), with_content())
        .await
        .unwrap();
    // As Svix answers an expunged (or expired) payload.
    assert_eq!(got.payload, json!({"expired": true}));

    svix.message_attempt()
        .expunge_content(app_id.clone(), msg.id.clone(), attempt_id.clone())
        .await
        .unwrap();
    let (status, kept) = app
        .get_json(&format!(
            "/api/v1/app/{app_id}/msg/{}/attempt/{attempt_id}",
            msg.id
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kept["response"], "EXPUNGED");
    assert_eq!(kept["responseStatusCode"], 200, "the attempt stays");

    // Unknown ones are 404s.
    let (status, _) = app
        .call(
            Some(&app.token),
            reqwest::Method::DELETE,
            &format!("/api/v1/app/{app_id}/msg/msg_nope/content"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .call(
            Some(&app.token),
            reqwest::Method::DELETE,
            &format!(
                "/api/v1/app/{app_id}/msg/{}/attempt/atmpt_nope/content",
                msg.id
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn expire_all_ends_every_portal_session_of_the_application() {
    let app = TestApp::spawn().await;
    let app_id = app.create_app("Spot").await;
    let other_id = app.create_app("Another Spot").await;
    let first = PortalSession::for_app(&app, &app_id).await;
    let second = PortalSession::for_app(&app, &app_id).await;
    let other = PortalSession::for_app(&app, &other_id).await;
    for s in [&first, &second, &other] {
        assert_eq!(s.get("/portal/").await.0, StatusCode::OK);
    }
    // An unused link of the application ends too.
    let (status, link) = app
        .post_json(
            &format!("/api/v1/auth/app-portal-access/{app_id}"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{link}");

    app.svix()
        .authentication()
        .expire_all(app_id.clone(), ApplicationTokenExpireIn::new(), None)
        .await
        .unwrap();
    for s in [&first, &second] {
        let (status, _) = s.get("/portal/").await;
        assert_ne!(
            status,
            StatusCode::OK,
            "a session of the application still works"
        );
    }
    assert_eq!(
        other.get("/portal/").await.0,
        StatusCode::OK,
        "another application's session"
    );
    let unused = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(link["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        !unused.headers().contains_key("set-cookie"),
        "an unused link still opens a session"
    );

    // Only an organisation token may do it.
    let (status, _) = app
        .call(
            Some(&app.app_token(&app_id)),
            reqwest::Method::POST,
            &format!("/api/v1/auth/app/{app_id}/expire-all"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn recover_is_a_background_task_that_finishes_behind() {
    use svix::models::{BackgroundTaskStatus, RecoverIn};
    let app = TestApp::spawn_with(crate::support::Options {
        retry_schedule: herald_core::schedule::RetrySchedule::from_delays(vec![]).unwrap(),
        ..crate::support::Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.script("/hook", vec![Reply::status(500), Reply::status(500)]);
    let svix = app.svix();
    let app_id = app.create_app("Spot").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/hook")}))
        .await;
    let since = chrono::Utc::now() - chrono::Duration::minutes(1);
    for n in 0..2 {
        app.send(&app_id, json!({"eventType": "a", "payload": {"n": n}}))
            .await;
    }
    // No retries: both fail once and are finished.
    receiver.wait_for("/hook", 2, WAIT).await;
    app.eventually(WAIT, "both deliveries to have failed", || async {
        let s = svix
            .endpoint()
            .get_stats(app_id.clone(), ep.clone(), None)
            .await
            .ok()?;
        (s.fail == 2).then_some(())
    })
    .await;

    let started = svix
        .endpoint()
        .recover(app_id.clone(), ep.clone(), RecoverIn::new(since), None)
        .await
        .unwrap();
    assert_eq!(started.status, BackgroundTaskStatus::Running);
    assert!(started.id.starts_with("qtask_"), "{}", started.id);
    let finished = app
        .eventually(WAIT, "the recover task to finish", || async {
            let t = svix.background_task().get(started.id.clone()).await.ok()?;
            (t.status == BackgroundTaskStatus::Finished).then_some(t)
        })
        .await;
    assert_eq!(finished.data["recovered"], 2, "{:?}", finished.data);
    receiver.wait_for("/hook", 4, WAIT).await;
    let listed = svix.background_task().list(None).await.unwrap();
    assert!(listed.data.iter().any(|t| t.id == started.id));
    app.stop().await;
}

#[tokio::test]
async fn messages_keep_their_tags_and_lists_filter_by_them() {
    use svix::api::MessageListOptions;

    let app = TestApp::spawn().await;
    let svix = app.svix();
    let app_id = app.create_app("Spot").await;
    let message = svix.message();
    let send = |tags: Option<Vec<&str>>| {
        let msg = MessageIn {
            tags: tags.map(|t| t.into_iter().map(String::from).collect()),
            ..MessageIn::new("member.created".into(), json!({"n": 1}))
        };
        message.create(app_id.clone(), msg, None)
    };
    let red = send(Some(vec!["team/red", "#launch"])).await.unwrap();
    let plain = send(None).await.unwrap();
    let blue = send(Some(vec!["team/blue"])).await.unwrap();
    let want = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect());
    assert_eq!(red.tags, want(&["team/red", "#launch"]));
    assert_eq!(plain.tags, None);

    let got = svix
        .message()
        .get(app_id.clone(), red.id.clone(), None)
        .await
        .unwrap();
    assert_eq!(got.tags, want(&["team/red", "#launch"]));

    for (tag, ids) in [
        ("team/red", vec![red.id.clone()]),
        ("#launch", vec![red.id.clone()]),
        ("team/blue", vec![blue.id.clone()]),
        ("team", vec![]),
    ] {
        let options = MessageListOptions {
            tag: Some(tag.into()),
            ..Default::default()
        };
        let listed = svix
            .message()
            .list(app_id.clone(), Some(options))
            .await
            .unwrap();
        let got: Vec<_> = listed.data.into_iter().map(|m| m.id).collect();
        assert_eq!(got, ids, "tag {tag}");
    }

    // Svix's rule: at most 5, each of its characters, none twice.
    for (tags, loc) in [
        (
            json!(["a", "b", "c", "d", "e", "f"]),
            json!(["body", "tags"]),
        ),
        (json!(["ok", "not ok"]), json!(["body", "tags", "1"])),
        (json!(["x", "x"]), json!(["body", "tags", "1"])),
    ] {
        let (status, body) = app
            .call(
                Some(&app.token),
                reqwest::Method::POST,
                &format!("/api/v1/app/{app_id}/msg"),
                Some(json!({"eventType": "member.created", "payload": {}, "tags": tags})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{tags}");
        assert_eq!(body["detail"][0]["loc"], loc, "{body}");
    }
    app.stop().await;
}

#[tokio::test]
async fn replay_missing_sends_what_an_endpoint_never_got_and_contents_expunge_all() {
    use svix::models::{BackgroundTaskStatus, BackgroundTaskType, ReplayIn};

    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let svix = app.svix();
    let app_id = app.create_app("Spot").await;
    let since = chrono::Utc::now() - chrono::Duration::minutes(1);
    let first = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/first")}))
        .await;
    for n in 0..3 {
        app.send(&app_id, json!({"eventType": "a", "payload": {"n": n}}))
            .await;
    }
    receiver.wait_for("/first", 3, WAIT).await;
    // Added after them, and one of them resent to it already.
    let late = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/late")}))
        .await;
    let msgs = svix.message().list(app_id.clone(), None).await.unwrap();
    let resent = &msgs.data[0].id;
    svix.message_attempt()
        .resend(app_id.clone(), resent.clone(), late.clone(), None)
        .await
        .unwrap();
    receiver.wait_for("/late", 1, WAIT).await;

    let started = svix
        .endpoint()
        .replay_missing(app_id.clone(), late.clone(), ReplayIn::new(since), None)
        .await
        .unwrap();
    assert_eq!(started.status, BackgroundTaskStatus::Running);
    assert_eq!(started.task, BackgroundTaskType::EndpointReplay);
    let done = finished(&app, &svix, started.id).await;
    assert_eq!(done.data["replayed"], 2, "{:?}", done.data);
    // Each message reached the late endpoint once; the first got nothing new.
    let got = receiver.wait_for("/late", 3, WAIT).await;
    let mut ids: Vec<_> = got.iter().map(|r| r.header("webhook-id")).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "three distinct messages");
    let again = svix
        .endpoint()
        .replay_missing(app_id.clone(), first.clone(), ReplayIn::new(since), None)
        .await
        .unwrap();
    assert_eq!(finished(&app, &svix, again.id).await.data["replayed"], 0);
    assert_eq!(receiver.received_on("/first").len(), 3);

    let purge = svix
        .message()
        .expunge_all_contents(app_id.clone(), None)
        .await
        .unwrap();
    assert_eq!(purge.task, BackgroundTaskType::ApplicationPurgeContent);
    let done = finished(&app, &svix, purge.id).await;
    assert_eq!(done.data["messagesPurged"], 3, "{:?}", done.data);
    let msgs = svix
        .message()
        .list(
            app_id.clone(),
            Some(svix::api::MessageListOptions {
                with_content: Some(true),
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    assert!(msgs
        .data
        .iter()
        .all(|m| m.payload == json!({"expired": true})));
    app.stop().await;
}

/// The background task once it has finished.
async fn finished(
    app: &TestApp,
    svix: &svix::api::Svix,
    id: String,
) -> svix::models::BackgroundTaskOut {
    use svix::models::BackgroundTaskStatus;
    app.eventually(WAIT, "the task to finish", || async {
        let t = svix.background_task().get(id.clone()).await.ok()?;
        (t.status == BackgroundTaskStatus::Finished).then_some(t)
    })
    .await
}

#[tokio::test]
async fn bulk_replay_sends_again_what_its_filter_takes() {
    use svix::models::{BackgroundTaskType, BulkReplayIn};

    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let svix = app.svix();
    let app_id = app.create_app("Spot").await;
    let since = chrono::Utc::now() - chrono::Duration::minutes(1);
    let ep = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/hook")}))
        .await;
    for event_type in ["member.created", "member.updated"] {
        app.send(&app_id, json!({"eventType": event_type, "payload": {}}))
            .await;
    }
    receiver.wait_for("/hook", 2, WAIT).await;
    // Both delivered (a delivery in flight is left out of a replay).
    let both_done = || async {
        app.eventually(WAIT, "both deliveries to be done", || async {
            let s = svix
                .endpoint()
                .get_stats(app_id.clone(), ep.clone(), None)
                .await
                .ok()?;
            (s.success == 2).then_some(())
        })
        .await
    };
    both_done().await;

    let only_updates = BulkReplayIn {
        event_types: Some(["member.updated".to_string()].into()),
        ..BulkReplayIn::new(since)
    };
    let started = svix
        .endpoint()
        .bulk_replay(app_id.clone(), ep.clone(), only_updates, None)
        .await
        .unwrap();
    assert_eq!(started.task, BackgroundTaskType::EndpointBulkReplay);
    let done = finished(&app, &svix, started.id).await;
    assert_eq!(done.data["messagesSent"], 1, "{:?}", done.data);
    let got = receiver.wait_for("/hook", 3, WAIT).await;
    let updates = svix::api::MessageListOptions {
        event_types: Some(["member.updated".to_string()].into()),
        ..Default::default()
    };
    let update = svix.message().list(app_id.clone(), Some(updates)).await;
    let update_id = update.unwrap().data.remove(0).id;
    assert_eq!(
        got[2].header("webhook-id"),
        update_id,
        "the update again, under its own id"
    );

    both_done().await;
    let everything = svix
        .endpoint()
        .bulk_replay(app_id.clone(), ep.clone(), BulkReplayIn::new(since), None)
        .await
        .unwrap();
    assert_eq!(
        finished(&app, &svix, everything.id).await.data["messagesSent"],
        2
    );
    receiver.wait_for("/hook", 5, WAIT).await;

    // A bad filter is a 422 at its field, before any task starts.
    let (status, body) = app
        .post_json(
            &format!("/api/v1/app/{app_id}/endpoint/{ep}/bulk-replay"),
            json!({"since": since, "statusCodeClass": 250}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "statusCodeClass"]));
    app.stop().await;
}

#[tokio::test]
async fn endpoint_stats_count_the_window_asked_for() {
    use svix::api::EndpointGetStatsOptions;

    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let svix = app.svix();
    let app_id = app.create_app("Spot").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/hook")}))
        .await;
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    for n in 0..2 {
        app.send(&app_id, json!({"eventType": "a", "payload": {"n": n}}))
            .await;
    }
    receiver.wait_for("/hook", 2, WAIT).await;
    let endpoint = svix.endpoint();
    let stats = |since, until| {
        let options = EndpointGetStatsOptions { since, until };
        endpoint.get_stats(app_id.clone(), ep.clone(), Some(options))
    };
    let all = app
        .eventually(WAIT, "both counted as delivered", || async {
            let s = stats(None, None).await.ok()?;
            (s.success == 2).then_some(s)
        })
        .await;
    assert_eq!((all.pending, all.fail), (0, 0));
    let after = chrono::Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(stats(Some(before), None).await.unwrap().success, 2);
    assert_eq!(stats(Some(after), None).await.unwrap().success, 0);
    assert_eq!(stats(None, Some(before)).await.unwrap().success, 0);
    assert_eq!(stats(Some(before), Some(after)).await.unwrap().success, 2);
    app.stop().await;
}
