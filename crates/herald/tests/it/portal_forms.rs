//! The portal's state-changing forms: every one refuses a post without this
//! session's CSRF token (each handler checks it separately, so each is tried),
//! and Rotate, Recover and Disable/Enable do what they say.

use std::time::Duration;

use reqwest::header::LOCATION;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{Options, PortalSession, Receiver, Reply, TestApp};

const WAIT: Duration = Duration::from_secs(30);

/// A seeded server without retries, one application with an endpoint whose
/// first delivery failed (500), and its portal session.
struct Fixture {
    app: TestApp,
    receiver: Receiver,
    app_id: String,
    ep: String,
    msg: String,
    portal: PortalSession,
}

impl Fixture {
    async fn new() -> Fixture {
        let app = TestApp::spawn_with(Options {
            retry_schedule: herald_core::schedule::RetrySchedule::from_delays(vec![]).unwrap(),
            ..Options::seeded()
        })
        .await;
        let receiver = Receiver::start().await;
        receiver.script("/hook", vec![Reply::status(500)]);
        let app_id = app.create_app("Spot").await;
        let ep = app
            .create_endpoint(&app_id, json!({"url": receiver.url("/hook")}))
            .await;
        let msg = app
            .send(
                &app_id,
                json!({"eventType": "member.created", "payload": {}}),
            )
            .await;
        let fixture = Fixture {
            portal: PortalSession::for_app(&app, &app_id).await,
            app,
            receiver,
            app_id,
            ep,
            msg,
        };
        fixture.wait_status(&fixture.msg, 2).await;
        fixture
    }

    fn api(&self, rest: &str) -> String {
        format!("/api/v1/app/{}{rest}", self.app_id)
    }

    async fn endpoint(&self) -> Value {
        let (status, ep) = self
            .app
            .get_json(&self.api(&format!("/endpoint/{}", self.ep)))
            .await;
        assert_eq!(status, StatusCode::OK, "{ep}");
        ep
    }

    /// The delivery status of `msg` to the endpoint (0 success, 2 failed),
    /// if it has a delivery there.
    async fn status(&self, msg: &str) -> Option<i64> {
        let (_, d) = self
            .app
            .get_json(&self.api(&format!("/msg/{msg}/endpoint")))
            .await;
        let data = d["data"].as_array().unwrap();
        data.iter().find(|d| d["id"] == self.ep.as_str())?["status"].as_i64()
    }

    async fn wait_status(&self, msg: &str, status: i64) {
        let what = format!("{msg} to reach status {status}");
        self.app
            .eventually(WAIT, &what, || async {
                (self.status(msg).await == Some(status)).then_some(())
            })
            .await
    }

    /// Everything a refused form could have changed.
    async fn state(&self) -> Value {
        let (_, endpoints) = self.app.get_json(&self.api("/endpoint")).await;
        let secret = self.app.endpoint_secret(&self.app_id, &self.ep).await;
        let (_, attempts) = self
            .app
            .get_json(&self.api(&format!("/attempt/msg/{}", self.msg)))
            .await;
        json!({
            "endpoints": endpoints["data"],
            "secret": secret,
            "attempts": attempts["data"],
            "received": self.receiver.received().len(),
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_state_changing_form_refuses_a_missing_or_wrong_csrf_token() {
    let f = Fixture::new().await;
    let hook = f.receiver.url("/hook");
    let other = f.receiver.url("/other");
    let (ep, msg) = (&f.ep, &f.msg);
    // Each form as it would succeed with the right token.
    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/portal/endpoints".into(), vec![("url", other.as_str())]),
        (
            format!("/portal/endpoints/{ep}"),
            vec![("url", other.as_str()), ("description", "changed")],
        ),
        (format!("/portal/endpoints/{ep}/delete"), vec![]),
        (
            format!("/portal/endpoints/{ep}/test"),
            vec![("event_type", "member.created")],
        ),
        (format!("/portal/endpoints/{ep}/toggle"), vec![]),
        (format!("/portal/endpoints/{ep}/rotate-secret"), vec![]),
        (
            format!("/portal/endpoints/{ep}/recover"),
            vec![("since", "2000-01-01T00:00")],
        ),
        (
            format!("/portal/endpoints/{ep}/messages/{msg}/resend"),
            vec![],
        ),
    ];
    let before = f.state().await;
    let wrong = "0123456789abcdef0123456789abcdef";
    for (path, fields) in &forms {
        for csrf in [None, Some(wrong), Some("")] {
            let mut form = fields.clone();
            form.extend(csrf.map(|c| ("csrf", c)));
            let r = f.portal.post(path, &form).await;
            assert_eq!(
                r.status(),
                StatusCode::FORBIDDEN,
                "{path} with csrf {csrf:?}"
            );
            let html = r.text().await.unwrap();
            assert!(html.contains("This form has expired"), "{path}: {html}");
        }
    }
    // Anything a form let through would have reached the receiver by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(f.state().await, before);
    assert_eq!(f.endpoint().await["url"], hook);
}

/// Posts a form with the session's token; returns where it redirects.
async fn submit(f: &Fixture, path: &str, fields: &[(&str, &str)]) -> String {
    let csrf = f.portal.csrf().await;
    let mut form = fields.to_vec();
    form.push(("csrf", &csrf));
    let r = f.portal.post(path, &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
    r.headers()[LOCATION].to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_makes_a_new_key_and_the_old_one_keeps_signing() {
    let f = Fixture::new().await;
    let old = f.app.endpoint_secret(&f.app_id, &f.ep).await;
    let to = submit(
        &f,
        &format!("/portal/endpoints/{}/rotate-secret", f.ep),
        &[],
    )
    .await;
    assert_eq!(
        to,
        format!("/portal/endpoints/{}?notice=rotated#secret", f.ep)
    );
    let new = f.app.endpoint_secret(&f.app_id, &f.ep).await;
    assert_ne!(new, old);
    let (_, html) = f.portal.get(&to).await;
    assert!(html.contains("Signing secret rotated"), "{html}");
    assert!(html.contains(&new), "the page shows the new key");

    // The next delivery is signed with both keys (the old one's grace period).
    let id = f
        .app
        .send(
            &f.app_id,
            json!({"eventType": "member.created", "payload": {}}),
        )
        .await;
    let got = f.receiver.wait_for("/hook", 2, WAIT).await;
    let delivery = &got[1];
    assert_eq!(delivery.header("webhook-id"), id);
    let ts: i64 = delivery.header("webhook-timestamp").parse().unwrap();
    for key in [&old, &new] {
        let key = herald_core::signing::EndpointSecret::parse(key).unwrap();
        assert!(key.verify(
            &id,
            ts,
            &delivery.body,
            delivery.header("webhook-signature")
        ));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn recover_sends_failed_deliveries_since_the_chosen_time_again() {
    let f = Fixture::new().await;
    let path = format!("/portal/endpoints/{}/recover", f.ep);
    // A time after the failure: nothing to recover.
    let to = submit(&f, &path, &[("since", "2999-01-01T00:00")]).await;
    assert!(to.contains("notice=recovered&n=0"), "{to}");
    let since = (chrono::Utc::now() - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M");
    let to = submit(&f, &path, &[("since", &since.to_string())]).await;
    assert!(to.contains("notice=recovered&n=1"), "{to}");
    let got = f.receiver.wait_for("/hook", 2, WAIT).await;
    assert_eq!(
        got[1].header("webhook-id"),
        f.msg,
        "the same message, again"
    );
    f.wait_status(&f.msg, 0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn disable_stops_deliveries_and_enable_resumes_them() {
    let f = Fixture::new().await;
    let path = format!("/portal/endpoints/{}/toggle", f.ep);
    let to = submit(&f, &path, &[]).await;
    assert_eq!(to, format!("/portal/endpoints/{}?notice=disabled", f.ep));
    assert_eq!(f.endpoint().await["disabled"], true);
    let unsent = f
        .app
        .send(
            &f.app_id,
            json!({"eventType": "member.created", "payload": {}}),
        )
        .await;
    assert_eq!(
        f.status(&unsent).await,
        None,
        "no delivery for a disabled endpoint"
    );

    let to = submit(&f, &path, &[]).await;
    assert_eq!(to, format!("/portal/endpoints/{}?notice=enabled", f.ep));
    assert_eq!(f.endpoint().await["disabled"], false);
    let id = f
        .app
        .send(
            &f.app_id,
            json!({"eventType": "member.created", "payload": {}}),
        )
        .await;
    let got = f.receiver.wait_for("/hook", 2, WAIT).await;
    assert_eq!(got[1].header("webhook-id"), id);
    // What was sent while it was disabled never goes out.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(f.receiver.received_on("/hook").len(), 2);
    assert_eq!(f.status(&unsent).await, None);
}
