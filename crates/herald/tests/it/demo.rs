//! `herald demo`: the real binary starts Herald, its receiver and the simulated
//! platform; within seconds the API shows a message delivered with a 200, and
//! the printed portal link logs in, as does the operator view's.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_prints_a_portal_link_and_delivers_spot_events() {
    let mut child = crate::support::herald_binary()
        .args(["demo", "--listen", "127.0.0.1:0", "--interval-seconds", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot start the herald binary");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = next_line(&mut lines).await;
    let base = first
        .strip_prefix("Herald listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    let (mut portal, mut operator, mut token) = (None, None, None);
    while portal.is_none() || operator.is_none() || token.is_none() {
        let line = next_line(&mut lines).await;
        if let Some(url) = line.strip_prefix("Portal: ") {
            portal = Some(url.to_string());
        } else if let Some(url) = line.strip_prefix("Operator view: ") {
            operator = Some(url.to_string());
        } else if let Some(t) = line.strip_prefix("API token: ") {
            token = Some(t.to_string());
        }
    }
    let (portal, operator, token) = (portal.unwrap(), operator.unwrap(), token.unwrap());
    for link in [&portal, &operator] {
        assert!(
            link.starts_with(&format!("{base}/portal/login?token=")),
            "{link}"
        );
    }
    // Keep draining stdout (the receiver prints a line per delivery).
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: String| {
        let r = http.get(format!("{base}{path}")).bearer_auth(&token).send();
        async move {
            let r = r.await.unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // A message of the simulated platform, delivered with a 200.
    let deadline = Instant::now() + Duration::from_secs(20);
    let delivered = loop {
        let (status, msgs) = get("/api/v1/app/demo-spot/msg".into()).await;
        assert_eq!(status, StatusCode::OK, "{msgs}");
        let mut found = None;
        for msg in msgs["data"].as_array().into_iter().flatten() {
            let id = msg["id"].as_str().unwrap();
            let (_, attempts) = get(format!("/api/v1/app/demo-spot/attempt/msg/{id}")).await;
            let ok = attempts["data"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| a["responseStatusCode"] == 200);
            if ok {
                found = Some(msg.clone());
                break;
            }
        }
        if let Some(msg) = found {
            break msg;
        }
        assert!(
            Instant::now() < deadline,
            "no delivered message within 20 s: {msgs}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(delivered["payload"]["test"], false, "{delivered}");
    assert_eq!(
        delivered["payload"]["spot"]["name"], "Design Club",
        "{delivered}"
    );

    // The printed links open the portal: the demo Spot's, and the operator
    // view, which lists the organisation's applications (the Spot's does not).
    let mut apps_pages = Vec::new();
    for link in [&portal, &operator] {
        let r = http.get(link).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{link}");
        let cookie = r.headers()[reqwest::header::SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let r = http
            .get(format!("{base}/portal/apps"))
            .header(reqwest::header::COOKIE, cookie)
            .send()
            .await
            .unwrap();
        apps_pages.push((r.status(), r.text().await.unwrap()));
    }
    assert_eq!(
        apps_pages[0].0,
        StatusCode::NOT_FOUND,
        "{}",
        apps_pages[0].1
    );
    assert_eq!(apps_pages[1].0, StatusCode::OK, "{}", apps_pages[1].1);
    assert!(
        apps_pages[1].1.contains(herald::demo::DEMO_APP_NAME),
        "{}",
        apps_pages[1].1
    );

    // SIGTERM stops the demo cleanly.
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the demo stops within 30 s of SIGTERM")
        .unwrap();
    assert!(exit.success(), "{exit}");
}

async fn next_line(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> String {
    tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the demo keeps talking")
        .unwrap()
        .expect("the demo exited")
}
