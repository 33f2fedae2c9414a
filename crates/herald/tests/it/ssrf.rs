//! The SSRF rule end to end, beyond IP literals: names that resolve to
//! loopback are refused (through the system resolver and through the server's
//! hosts seam), only the allowed addresses of an answer are used, and a name
//! whose answer changes between two deliveries is checked again at the second
//! (DNS rebinding). Every address is in 127.0.0.0/8: 127.0.0.2 plays the
//! "allowed" one.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald::dispatch::client::HostsOverride;
use herald_core::schedule::RetrySchedule;
use serde_json::json;

use crate::support::{Options, Receiver, Reply, TestApp};

const WAIT: Duration = Duration::from_secs(30);

/// Names and the addresses the server resolves them to; changeable mid-test.
#[derive(Clone, Default)]
struct Hosts(Arc<Mutex<HashMap<String, Vec<IpAddr>>>>);

impl Hosts {
    fn set(&self, name: &str, ips: &[&str]) {
        let ips = ips.iter().map(|ip| ip.parse().unwrap()).collect();
        self.0.lock().unwrap().insert(name.into(), ips);
    }

    fn seam(&self) -> HostsOverride {
        let map = self.0.clone();
        Arc::new(move |name: &str| map.lock().unwrap().get(name).cloned())
    }
}

/// A server that allows only `allow`, resolves through `hosts` first, and
/// never retries.
async fn server(allow: &str, hosts: &Hosts) -> TestApp {
    TestApp::spawn_with(Options {
        allow_subnets: allow.parse().unwrap(),
        retry_schedule: RetrySchedule::from_delays(vec![]).unwrap(),
        hosts: Some(hosts.seam()),
        ..Options::default()
    })
    .await
}

/// Receivers on 127.0.0.1 and 127.0.0.2 with the same port, so that one URL
/// reaches either, depending on what its name resolves to. Each closes every
/// connection after answering: a pooled connection would skip resolution.
async fn receivers_on_one_port() -> (Receiver, Receiver) {
    for _ in 0..20 {
        let second = Receiver::start_on("127.0.0.2:0".parse().unwrap()).await;
        let port = second.addr.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if std::net::TcpListener::bind(addr).is_ok() {
            let first = Receiver::start_on(addr).await;
            for r in [&first, &second] {
                r.set_default("/hook", Reply::status(200).header("connection", "close"));
            }
            return (first, second);
        }
        second.stop();
    }
    panic!("no port free on both 127.0.0.1 and 127.0.0.2");
}

/// Sends one message to a new endpoint at `url`; returns the app, message and
/// the outcome of its one attempt (`responseStatusCode`, `response`).
async fn deliver_once(app: &TestApp, app_id: &str, url: &str) -> (String, i64, String) {
    let ep = app.create_endpoint(app_id, json!({"url": url})).await;
    let msg = app
        .send(app_id, json!({"eventType": "t.ssrf", "payload": {}}))
        .await;
    let attempt = app
        .eventually(WAIT, "the attempt", || async {
            let list = app.attempts(app_id, &msg).await;
            list.into_iter().find(|a| a["endpointId"] == ep.as_str())
        })
        .await;
    let code = attempt["responseStatusCode"].as_i64().unwrap();
    (msg, code, attempt["response"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn names_that_resolve_to_loopback_are_refused() {
    let (on_1, _on_2) = receivers_on_one_port().await;
    let port = on_1.addr.port();
    let hosts = Hosts::default();
    hosts.set("internal.example", &["127.0.0.1", "::1"]);
    let app = server("", &hosts).await;
    let app_id = app.create_app("Ssrf").await;
    // The system resolver's answer for localhost is loopback when the
    // endpoint is saved: refused then, as the portal refuses it.
    let (status, out) = app
        .post_json(
            &format!("/api/v1/app/{app_id}/endpoint"),
            json!({"url": format!("http://localhost:{port}/hook")}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{out}");
    assert_eq!(
        out["detail"][0]["msg"],
        "Webhooks cannot be used to reach private networks: localhost resolves to a non-public address; Herald delivers only to public internet addresses (SSRF protection)."
    );
    // A private address written as such is refused when saved, by the API
    // as by the portal (one rule), each network in its words.
    for url in [
        "http://10.0.0.5/hook",
        "https://192.168.1.20/hook",
        "http://172.16.3.4:8080/hook",
        "http://[fd00::1]/hook",
    ] {
        let (status, out) = app
            .post_json(
                &format!("/api/v1/app/{app_id}/endpoint"),
                json!({ "url": url }),
            )
            .await;
        assert_eq!(
            status,
            reqwest::StatusCode::UNPROCESSABLE_ENTITY,
            "{url}: {out}"
        );
        assert_eq!(out["detail"][0]["loc"], json!(["body", "url"]), "{url}");
        let msg = out["detail"][0]["msg"].as_str().unwrap_or_default();
        assert!(
            msg.starts_with("Webhooks cannot be used to reach private networks"),
            "{url}: {msg}"
        );
    }
    // A public-looking name whose answer is loopback only when Herald
    // delivers (it does not resolve when saved): refused at delivery.
    let name = "internal.example";
    let url = format!("http://{name}:{port}/hook");
    let (_, code, response) = deliver_once(&app, &app_id, &url).await;
    assert_eq!(code, 0, "{name}: {response}");
    // The tenant is told, without the address the name resolved to.
    assert_eq!(
        response,
        format!("{name} resolves to a non-public address; Herald delivers only to public internet addresses (SSRF protection)"),
    );
    assert!(on_1.received().is_empty(), "a refused address was reached");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_allowed_addresses_of_an_answer_are_used() {
    let (on_1, on_2) = receivers_on_one_port().await;
    let port = on_1.addr.port();
    let hosts = Hosts::default();
    hosts.set("mixed.example", &["127.0.0.1", "127.0.0.2"]);
    let app = server("127.0.0.2/32", &hosts).await;
    let app_id = app.create_app("Ssrf").await;
    for _ in 0..3 {
        let url = format!("http://mixed.example:{port}/hook");
        let (msg, code, response) = deliver_once(&app, &app_id, &url).await;
        assert_eq!(code, 200, "{response}");
        assert!(on_2
            .received()
            .iter()
            .any(|r| r.header("webhook-id") == msg));
    }
    assert!(on_1.received().is_empty(), "127.0.0.1 is not allowed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_whose_answer_changes_is_checked_again_at_the_next_delivery() {
    let (on_1, on_2) = receivers_on_one_port().await;
    let port = on_1.addr.port();
    let hosts = Hosts::default();
    hosts.set("rebind.example", &["127.0.0.2"]);
    let app = server("127.0.0.2/32", &hosts).await;
    let app_id = app.create_app("Ssrf").await;
    let url = format!("http://rebind.example:{port}/hook");
    let ep = app.create_endpoint(&app_id, json!({"url": url})).await;

    let first = app
        .send(&app_id, json!({"eventType": "t.ssrf", "payload": {}}))
        .await;
    let got = on_2.wait_for("/hook", 1, WAIT).await;
    assert_eq!(got[0].header("webhook-id"), first);

    // The same name now answers with a refused address.
    hosts.set("rebind.example", &["127.0.0.1"]);
    let second = app
        .send(&app_id, json!({"eventType": "t.ssrf", "payload": {}}))
        .await;
    let attempt = app
        .eventually(WAIT, "the second attempt", || async {
            let list = app.attempts(&app_id, &second).await;
            list.into_iter().find(|a| a["endpointId"] == ep.as_str())
        })
        .await;
    assert_eq!(attempt["responseStatusCode"], 0, "{attempt}");
    let response = attempt["response"].as_str().unwrap();
    assert!(
        response.starts_with("rebind.example resolves to a non-public address")
            && !response.contains("127.0.0.1"),
        "{response}"
    );
    assert!(
        on_1.received().is_empty(),
        "the rebound address was reached"
    );
    assert_eq!(on_2.received().len(), 1);
    app.stop().await;
}
