//! Lists as Svix's clients page them: forward by `iterator`, back by
//! `prevIterator` to the same items in the same order, on every list; the
//! default order of each; `name[]=` lists; and the time forms `before` and
//! `after` take.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{Receiver, Reply, TestApp};

const WAIT: Duration = Duration::from_secs(30);

/// One page: its items' keys, and what it says of the pages around it.
struct PageSeen {
    keys: Vec<String>,
    iterator: Option<String>,
    prev_iterator: Option<String>,
    done: bool,
}

async fn page(app: &TestApp, path: &str, iterator: Option<&str>, key: &str) -> PageSeen {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut url = format!("{path}{sep}limit=2");
    if let Some(it) = iterator {
        url.push_str(&format!("&iterator={}", urlencode(it)));
    }
    let (status, body) = app.get_json(&url).await;
    assert_eq!(status, StatusCode::OK, "{url}: {body}");
    let text = |v: &Value| v.as_str().map(String::from);
    PageSeen {
        keys: body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item[key].as_str().unwrap().to_string())
            .collect(),
        iterator: text(&body["iterator"]),
        prev_iterator: text(&body["prevIterator"]),
        done: body["done"].as_bool().unwrap(),
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Pages through `path` two items at a time, then back from every page by
/// its `prevIterator`: each step back gives the page before it, item for
/// item. Returns every key in the list's order.
async fn pages_back_as_they_came(
    app: &TestApp,
    path: &str,
    key: &str,
    total: usize,
) -> Vec<String> {
    let mut pages = vec![page(app, path, None, key).await];
    while !pages.last().unwrap().done {
        let next = pages.last().unwrap().iterator.clone().unwrap();
        pages.push(page(app, path, Some(&next), key).await);
        assert!(pages.len() <= total, "{path}: more pages than items");
    }
    let all: Vec<String> = pages.iter().flat_map(|p| p.keys.clone()).collect();
    assert_eq!(all.len(), total, "{path}: {all:?}");
    for (n, later) in pages.iter().enumerate().skip(1) {
        let prev = later.prev_iterator.as_deref().expect("a prevIterator");
        let back = page(app, path, Some(prev), key).await;
        assert_eq!(back.keys, pages[n - 1].keys, "{path}: back from page {n}");
        assert_eq!(back.done, n == 1, "{path}: nothing before the first page");
        // And forward again from the page reached backwards.
        let again = page(app, path, back.iterator.as_deref(), key).await;
        assert_eq!(
            again.keys,
            later.keys,
            "{path}: forward from page {}",
            n - 1
        );
    }
    all
}

#[tokio::test]
async fn every_list_pages_back_to_the_same_items_in_the_same_order() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.set_default("/down", Reply::status(500));

    let mut apps = Vec::new();
    for n in 0..5 {
        apps.push(app.create_app(&format!("Spot {n}")).await);
    }
    let listed = pages_back_as_they_came(&app, "/api/v1/app", "id", 5).await;
    let mut ascending = apps.clone();
    ascending.sort();
    assert_eq!(listed, ascending, "applications in ascending order of id");

    for name in ["a.one", "a.two", "b.one", "b.two", "c.one"] {
        let (status, body) = app
            .post_json(
                "/api/v1/event-type",
                json!({"name": name, "description": name}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let types = pages_back_as_they_came(&app, "/api/v1/event-type", "name", 5).await;
    assert_eq!(types, ["a.one", "a.two", "b.one", "b.two", "c.one"]);

    let app_id = &apps[0];
    let mut endpoints = Vec::new();
    for n in 0..5 {
        endpoints.push(
            app.create_endpoint(app_id, json!({"url": receiver.url(&format!("/ok{n}"))}))
                .await,
        );
    }
    let eps_path = format!("/api/v1/app/{app_id}/endpoint");
    let listed = pages_back_as_they_came(&app, &eps_path, "id", 5).await;
    let newest_first: Vec<String> = endpoints.iter().rev().cloned().collect();
    assert_eq!(listed, newest_first, "endpoints newest first, as in Svix");
    let ascending =
        pages_back_as_they_came(&app, &format!("{eps_path}?order=ascending"), "id", 5).await;
    assert_eq!(ascending, endpoints, "order=ascending: oldest first");

    // Five messages to every endpoint.
    let mut msgs = Vec::new();
    for n in 0..5 {
        msgs.push(
            app.send(app_id, json!({"eventType": "a.one", "payload": {"n": n}}))
                .await,
        );
    }
    app.eventually(WAIT, "25 deliveries", || async {
        (receiver.received().len() >= 25).then_some(())
    })
    .await;
    let listed = pages_back_as_they_came(&app, &format!("/api/v1/app/{app_id}/msg"), "id", 5).await;
    let newest_first: Vec<String> = msgs.iter().rev().cloned().collect();
    assert_eq!(listed, newest_first, "messages newest first");
    let ep = &endpoints[0];
    pages_back_as_they_came(
        &app,
        &format!("/api/v1/app/{app_id}/attempt/endpoint/{ep}"),
        "id",
        5,
    )
    .await;
    pages_back_as_they_came(
        &app,
        &format!("/api/v1/app/{app_id}/endpoint/{ep}/msg"),
        "id",
        5,
    )
    .await;
    let msg = &msgs[0];
    pages_back_as_they_came(
        &app,
        &format!("/api/v1/app/{app_id}/msg/{msg}/endpoint"),
        "id",
        5,
    )
    .await;

    // One message tried four times (a first attempt and three retries).
    let other = &apps[1];
    app.create_endpoint(other, json!({"url": receiver.url("/down")}))
        .await;
    let failing = app
        .send(other, json!({"eventType": "a.one", "payload": {}}))
        .await;
    let attempts = format!("/api/v1/app/{other}/attempt/msg/{failing}");
    app.eventually(WAIT, "four attempts", || async {
        let (_, body) = app.get_json(&attempts).await;
        (body["data"].as_array().unwrap().len() == 4).then_some(())
    })
    .await;
    pages_back_as_they_came(&app, &attempts, "id", 4).await;
    app.stop().await;
}

#[tokio::test]
async fn lists_take_bracketed_names_and_the_time_forms_clients_send() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Design Club").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/ok")}))
        .await;
    for event_type in ["a", "b", "c"] {
        app.send(&app_id, json!({"eventType": event_type, "payload": {}}))
            .await;
    }
    app.eventually(WAIT, "three deliveries", || async {
        (receiver.received().len() == 3).then_some(())
    })
    .await;
    let types_of = |body: &Value, field: &str| -> Vec<String> {
        let mut types: Vec<String> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item[field].as_str().unwrap_or_default().to_string())
            .collect();
        types.sort();
        types
    };

    // `event_types[]=` as many clients send a list, the same as repeated or
    // comma-separated names.
    for query in [
        "event_types[]=a&event_types[]=b",
        "event_types%5B%5D=a&event_types%5B%5D=b",
        "event_types=a&event_types=b",
        "event_types=a,b",
        // The indexed form some clients send.
        "event_types[0]=a&event_types[1]=b",
    ] {
        let (status, body) = app
            .get_json(&format!("/api/v1/app/{app_id}/msg?{query}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(types_of(&body, "eventType"), ["a", "b"], "{query}");
        let (status, body) = app
            .get_json(&format!(
                "/api/v1/app/{app_id}/attempt/endpoint/{ep}?{query}"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["data"].as_array().unwrap().len(),
            2,
            "attempts, {query}: {body}"
        );
    }

    // `before` and `after`: RFC 3339 and the looser forms.
    let count = |query: String| {
        let app = &app;
        let app_id = &app_id;
        async move {
            let (status, body) = app
                .get_json(&format!("/api/v1/app/{app_id}/msg?{query}"))
                .await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            body["data"].as_array().unwrap().len()
        }
    };
    for (query, expected) in [
        ("after=2000-01-01T00:00:00Z", 3),
        ("after=2000-01-01", 3),
        ("after=2000-01-01 00:00:00", 3),
        ("before=2000-01-01T00:00:00.000+00:00", 0),
        // An unescaped `+` in a query string reads as a space.
        ("before=2999-01-01T00:00:00+01:00", 3),
        ("before=2999-01-01T00:00:00%2B01:00", 3),
    ] {
        assert_eq!(count(query.to_string()).await, expected, "{query}");
    }
    let (status, body) = app
        .get_json(&format!("/api/v1/app/{app_id}/msg?after=last+tuesday"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["query", "after"]));

    // `after` takes an item made at that very time (a client pages on from
    // an item's own timestamp), `before` does not; as Svix's lists.
    let (_, all) = app
        .get_json(&format!("/api/v1/app/{app_id}/msg?order=ascending"))
        .await;
    let middle = all["data"][1]["timestamp"].as_str().unwrap().to_string();
    let (_, from) = app
        .get_json(&format!(
            "/api/v1/app/{app_id}/msg?after={}",
            urlencode(&middle)
        ))
        .await;
    let ids = |body: &Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        ids(&from).contains(&all["data"][1]["id"].as_str().unwrap().to_string()),
        "after={middle} takes the message made then: {from}"
    );
    let (_, before) = app
        .get_json(&format!(
            "/api/v1/app/{app_id}/msg?before={}",
            urlencode(&middle)
        ))
        .await;
    assert!(
        !ids(&before).contains(&all["data"][1]["id"].as_str().unwrap().to_string()),
        "before={middle} does not: {before}"
    );

    // An iterator no list gave is a 422 at it, on every list.
    for path in [
        "/api/v1/app".to_string(),
        "/api/v1/event-type".to_string(),
        format!("/api/v1/app/{app_id}/endpoint"),
        format!("/api/v1/app/{app_id}/msg"),
        format!("/api/v1/app/{app_id}/attempt/endpoint/{ep}"),
    ] {
        for bad in ["BAD-$$$ITERATOR", "-%20space"] {
            let (status, body) = app.get_json(&format!("{path}?iterator={bad}")).await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{path} {bad}: {body}"
            );
            assert_eq!(
                body["detail"][0]["loc"],
                json!(["query", "iterator"]),
                "{path}"
            );
        }
    }
    app.stop().await;
}
