//! Where a Svix client can tell Herald from Svix's server (issue 17): the
//! 422s Svix answers for endpoint filters, reserved header names and a
//! message's `application`, header names kept as given, and the endpoint and
//! application fields Svix's server always sends (`version`, `rateLimit`).
//! Each 422 is checked at the `loc` Svix gives it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{Receiver, TestApp};

/// The `loc` and `msg` of the only field error of a 422.
fn field_error(status: StatusCode, body: &Value) -> (Vec<String>, String) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let detail = body["detail"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(detail.len(), 1, "{body}");
    let loc = detail[0]["loc"]
        .as_array()
        .unwrap_or_else(|| panic!("no loc in {body}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    (loc, detail[0]["msg"].as_str().unwrap().to_string())
}

fn loc(status: StatusCode, body: &Value) -> Vec<String> {
    field_error(status, body).0
}

fn at(path: &[&str]) -> Vec<String> {
    path.iter().map(|s| s.to_string()).collect()
}

/// An application and one endpoint of it (to PUT and PATCH), by id.
async fn app_with_endpoint(app: &TestApp, name: &str) -> (String, String) {
    let app_id = app.create_app(name).await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": "https://example.com/hook"}))
        .await;
    (app_id, ep)
}

#[tokio::test]
async fn empty_filter_types_and_channels_are_422() {
    let app = TestApp::spawn().await;
    let (app_id, ep) = app_with_endpoint(&app, "Empty lists").await;
    let list = format!("/api/v1/app/{app_id}/endpoint");
    let one = format!("{list}/{ep}");
    let url = "https://example.com/hook";
    for (field, value) in [
        ("filterTypes", json!([])),
        ("eventTypes", json!([])),
        ("channels", json!([])),
    ] {
        let mut body = json!({"url": url});
        body[field] = value.clone();
        let (s, b) = app.post_json(&list, body.clone()).await;
        assert_eq!(loc(s, &b), at(&["body", field]), "create {field}");
        let (s, b) = app
            .call(Some(&app.token), Method::PUT, &one, Some(body))
            .await;
        assert_eq!(loc(s, &b), at(&["body", field]), "PUT {field}");
        let (s, b) = app
            .call(
                Some(&app.token),
                Method::PATCH,
                &one,
                Some(json!({field: value})),
            )
            .await;
        assert_eq!(loc(s, &b), at(&["body", field]), "PATCH {field}");
    }
    // No list, or null, is every type and any channel.
    let (s, b) = app
        .call(
            Some(&app.token),
            Method::PATCH,
            &one,
            Some(json!({"filterTypes": null, "channels": null})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = app
        .post_json(
            &list,
            json!({"url": url, "filterTypes": ["a.b"], "channels": ["c"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    app.stop().await;
}

#[tokio::test]
async fn unknown_filter_types_are_422_once_the_org_has_event_types() {
    let app = TestApp::spawn().await;
    let (app_id, ep) = app_with_endpoint(&app, "Known types").await;
    let list = format!("/api/v1/app/{app_id}/endpoint");
    let one = format!("{list}/{ep}");
    let url = "https://example.com/hook";
    // Without a catalog, any name is taken (as any message type is).
    let (s, b) = app
        .post_json(
            &list,
            json!({"url": url, "filterTypes": ["anything.at.all"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    for (name, archived) in [("user.created", false), ("user.gone", true)] {
        let (s, b) = app
            .post_json(
                "/api/v1/event-type",
                json!({"name": name, "description": name}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        if archived {
            let (s, b) = app
                .call(
                    Some(&app.token),
                    Method::DELETE,
                    &format!("/api/v1/event-type/{name}"),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
        }
    }

    let cases = [
        (
            "filterTypes",
            json!(["user.created", "nope.one", "nope.two"]),
        ),
        ("eventTypes", json!(["nope.one"])),
        ("filterTypes", json!(["user.gone"])),
    ];
    for (field, types) in cases {
        let mut body = json!({"url": url});
        body[field] = types.clone();
        let (s, b) = app.post_json(&list, body.clone()).await;
        let (where_, msg) = field_error(s, &b);
        assert_eq!(where_, at(&["body", field]), "create {types}");
        assert!(
            msg.starts_with("The following event types don't exist: "),
            "{msg}"
        );
        assert!(!msg.contains("user.created"), "{msg}");
        let (s, b) = app
            .call(Some(&app.token), Method::PUT, &one, Some(body))
            .await;
        assert_eq!(loc(s, &b), at(&["body", field]), "PUT {types}");
        let (s, b) = app
            .call(
                Some(&app.token),
                Method::PATCH,
                &one,
                Some(json!({field: types})),
            )
            .await;
        assert_eq!(loc(s, &b), at(&["body", field]), "PATCH {types}");
    }
    let (s, b) = app
        .post_json(
            &list,
            json!({"url": url, "filterTypes": ["nope.one", "nope.two"]}),
        )
        .await;
    assert_eq!(
        field_error(s, &b).1,
        "The following event types don't exist: nope.one, nope.two"
    );
    // Known types are taken, on every route.
    let (s, b) = app
        .post_json(&list, json!({"url": url, "filterTypes": ["user.created"]}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = app
        .call(
            Some(&app.token),
            Method::PATCH,
            &one,
            Some(json!({"filterTypes": ["user.created"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["filterTypes"], json!(["user.created"]));
    app.stop().await;
}

#[tokio::test]
async fn reserved_header_names_are_422_on_every_route() {
    let app = TestApp::spawn().await;
    let (app_id, ep) = app_with_endpoint(&app, "Reserved headers").await;
    let list = format!("/api/v1/app/{app_id}/endpoint");
    let one = format!("{list}/{ep}");
    let headers = format!("{one}/headers");
    let url = "https://example.com/hook";
    for name in [
        "X-Svix-Thing",
        "svix-id",
        "Webhook-Signature",
        "X-Amzn-Trace-Id",
        "x-amz-date",
        "Connection",
        "keep-alive",
        "Proxy-Authenticate",
        "proxy-authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "upgrade",
        "Host",
        "Content-Length",
        "User-Agent",
        "Cache-Control",
    ] {
        let want = at(&["body", "headers", name]);
        let set = json!({ name: "v" });
        let (s, b) = app
            .post_json(&list, json!({"url": url, "headers": set}))
            .await;
        assert_eq!(loc(s, &b), want, "create {name}");
        let (s, b) = app
            .call(
                Some(&app.token),
                Method::PUT,
                &one,
                Some(json!({"url": url, "headers": set})),
            )
            .await;
        assert_eq!(loc(s, &b), want, "PUT endpoint {name}");
        let (s, b) = app
            .call(
                Some(&app.token),
                Method::PUT,
                &headers,
                Some(json!({"headers": set})),
            )
            .await;
        assert_eq!(loc(s, &b), want, "PUT headers {name}");
        let (s, b) = app
            .call(
                Some(&app.token),
                Method::PATCH,
                &headers,
                Some(json!({"headers": set})),
            )
            .await;
        assert_eq!(loc(s, &b), want, "PATCH headers {name}");
    }
    let (s, b) = app.get_json(&headers).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["headers"], json!({}), "nothing was saved");
    app.stop().await;
}

#[tokio::test]
async fn header_names_keep_the_case_they_were_given() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Header case").await;
    let ep = app
        .create_endpoint(
            &app_id,
            json!({"url": receiver.url("/case"), "headers": {"X-Custom-Thing": "one"}}),
        )
        .await;
    let headers = format!("/api/v1/app/{app_id}/endpoint/{ep}/headers");
    let (s, b) = app.get_json(&headers).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["headers"], json!({"X-Custom-Thing": "one"}));

    // PUT replaces, as given; a credential is listed by its name as given.
    let (s, b) = app
        .call(
            Some(&app.token),
            Method::PUT,
            &headers,
            Some(json!({"headers": {"X-Custom-Thing": "two", "X-Team-ID": "t1", "Authorization": "Bearer s"}})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (_, b) = app.get_json(&headers).await;
    assert_eq!(
        b["headers"],
        json!({"X-Custom-Thing": "two", "X-Team-ID": "t1"})
    );
    assert_eq!(b["sensitive"], json!(["Authorization"]));

    // PATCH finds a header whatever the case it is named in, and keeps the
    // case it is given now.
    let (s, b) = app
        .call(
            Some(&app.token),
            Method::PATCH,
            &headers,
            Some(json!({"headers": {"x-team-id": "t2", "X-CUSTOM-THING": null}})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (_, b) = app.get_json(&headers).await;
    assert_eq!(b["headers"], json!({"x-team-id": "t2"}));

    // One header given twice, in two cases, is refused.
    let (s, b) = app
        .call(
            Some(&app.token),
            Method::PUT,
            &headers,
            Some(json!({"headers": {"X-Twice": "a", "x-twice": "b"}})),
        )
        .await;
    assert_eq!(loc(s, &b)[..2], at(&["body", "headers"]));

    // And it is sent (HTTP/1 writes names in lower case on the wire).
    app.send(&app_id, json!({"eventType": "t.case", "payload": {}}))
        .await;
    let got = receiver.wait_for("/case", 1, Duration::from_secs(30)).await;
    assert_eq!(got[0].header("x-team-id"), "t2");
    assert_eq!(got[0].header("authorization"), "Bearer s");
    app.stop().await;
}

#[tokio::test]
async fn message_application_uid_must_be_the_paths() {
    let app = TestApp::spawn().await;
    let (s, b) = app
        .post_json(
            "/api/v1/app/path-uid/msg",
            json!({"eventType": "t.new", "payload": {}, "application": {"name": "Fresh", "uid": "body-uid"}}),
        )
        .await;
    assert_eq!(loc(s, &b), at(&["body", "application", "uid"]));
    assert_eq!(b["detail"][0]["type"], "application_uid_mismatch", "{b}");
    assert_eq!(
        b["detail"][0]["msg"],
        "Application UID in the path and body must match"
    );
    for uid in ["path-uid", "body-uid"] {
        let (s, _) = app.get_json(&format!("/api/v1/app/{uid}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{uid} was not made");
    }
    // The same uid makes the application.
    let (s, b) = app
        .post_json(
            "/api/v1/app/path-uid/msg",
            json!({"eventType": "t.new", "payload": {}, "application": {"name": "Fresh", "uid": "path-uid"}}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    // Once it exists, `application` is ignored, as Svix does.
    let (s, b) = app
        .post_json(
            "/api/v1/app/path-uid/msg",
            json!({"eventType": "t.new", "payload": {}, "application": {"name": "Other", "uid": "body-uid"}}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    app.stop().await;
}

#[tokio::test]
async fn endpoints_carry_their_version() {
    let app = TestApp::spawn().await;
    let app_id = app.create_app("Versions").await;
    let list = format!("/api/v1/app/{app_id}/endpoint");
    let url = "https://example.com/hook";
    let (s, made) = app.post_json(&list, json!({"url": url})).await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    assert_eq!(made["version"], 1, "{made}");
    let (s, b) = app
        .post_json(&list, json!({"url": url, "version": 3}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["version"], 3);
    let one = format!("{list}/{}", b["id"].as_str().unwrap());
    let (_, got) = app.get_json(&one).await;
    assert_eq!(got["version"], 3, "{got}");
    let (_, listed) = app.get_json(&list).await;
    let versions: Vec<&Value> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["version"])
        .collect();
    assert_eq!(versions.len(), 2);
    assert!(
        versions.contains(&&json!(1)) && versions.contains(&&json!(3)),
        "{listed}"
    );

    let patch = |body: Value| app.call(Some(&app.token), Method::PATCH, &one, Some(body));
    let (s, b) = patch(json!({"version": 5})).await;
    assert_eq!((s, b["version"].clone()), (StatusCode::OK, json!(5)), "{b}");
    let (s, b) = patch(json!({"description": "kept"})).await;
    assert_eq!((s, b["version"].clone()), (StatusCode::OK, json!(5)), "{b}");
    let (s, b) = patch(json!({"version": null})).await;
    assert_eq!(loc(s, &b), at(&["body", "version"]));
    let (s, b) = patch(json!({"version": 0})).await;
    assert_eq!(loc(s, &b), at(&["body", "version"]));
    // PUT replaces it: absent is 1 again, as Svix's update has it.
    let put = |body: Value| app.call(Some(&app.token), Method::PUT, &one, Some(body));
    let (s, b) = put(json!({"url": url, "version": 2})).await;
    assert_eq!((s, b["version"].clone()), (StatusCode::OK, json!(2)), "{b}");
    let (s, b) = put(json!({"url": url})).await;
    assert_eq!((s, b["version"].clone()), (StatusCode::OK, json!(1)), "{b}");
    let (s, b) = app
        .post_json(&list, json!({"url": url, "version": 0}))
        .await;
    assert_eq!(loc(s, &b), at(&["body", "version"]));
    app.stop().await;
}

#[tokio::test]
async fn rate_limit_is_kept_on_endpoints_and_applications() {
    let app = TestApp::spawn().await;
    // Applications: `rateLimit` is `throttleRate`'s older name.
    let (s, made) = app
        .post_json("/api/v1/app", json!({"name": "Limited", "rateLimit": 5}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    assert_eq!(
        (&made["rateLimit"], &made["throttleRate"]),
        (&json!(5), &json!(5))
    );
    let app_path = format!("/api/v1/app/{}", made["id"].as_str().unwrap());
    let (_, got) = app.get_json(&app_path).await;
    assert_eq!(got["rateLimit"], 5, "{got}");
    let (s, b) = app
        .call(
            Some(&app.token),
            Method::PUT,
            &app_path,
            Some(json!({"name": "Limited", "rateLimit": 8})),
        )
        .await;
    assert_eq!(
        (s, b["rateLimit"].clone()),
        (StatusCode::OK, json!(8)),
        "{b}"
    );
    let app_patch = |body: Value| app.call(Some(&app.token), Method::PATCH, &app_path, Some(body));
    let (s, b) = app_patch(json!({"name": "Still"})).await;
    assert_eq!(
        (s, b["rateLimit"].clone()),
        (StatusCode::OK, json!(8)),
        "{b}"
    );
    let (s, b) = app_patch(json!({"rateLimit": null})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(
        b.get("rateLimit").is_some_and(Value::is_null),
        "null, and sent: {b}"
    );
    let (s, b) = app_patch(json!({"rateLimit": 0})).await;
    assert_eq!(loc(s, &b), at(&["body", "rateLimit"]));
    let (s, b) = app
        .post_json(
            "/api/v1/app",
            json!({"name": "Both", "rateLimit": 5, "throttleRate": 6}),
        )
        .await;
    assert_eq!(loc(s, &b), at(&["body", "rateLimit"]));

    // Endpoints: the same, over the limit the worker keeps (messages per second).
    let app_id = made["id"].as_str().unwrap();
    let list = format!("/api/v1/app/{app_id}/endpoint");
    let url = "https://example.com/hook";
    let (s, ep) = app.post_json(&list, json!({"url": url})).await;
    assert_eq!(s, StatusCode::CREATED, "{ep}");
    assert!(
        ep.get("rateLimit").is_some_and(Value::is_null),
        "null, and sent: {ep}"
    );
    let (s, ep) = app
        .post_json(&list, json!({"url": url, "rateLimit": 7}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{ep}");
    assert_eq!(
        (&ep["rateLimit"], &ep["throttleRate"]),
        (&json!(7), &json!(7))
    );
    let one = format!("{list}/{}", ep["id"].as_str().unwrap());
    let (_, got) = app.get_json(&one).await;
    assert_eq!(got["rateLimit"], 7, "{got}");
    let (s, b) = app
        .call(
            Some(&app.token),
            Method::PUT,
            &one,
            Some(json!({"url": url, "rateLimit": 9})),
        )
        .await;
    assert_eq!(
        (s, b["rateLimit"].clone()),
        (StatusCode::OK, json!(9)),
        "{b}"
    );
    let patch = |body: Value| app.call(Some(&app.token), Method::PATCH, &one, Some(body));
    let (s, b) = patch(json!({"throttleRate": 4})).await;
    assert_eq!(
        (s, b["rateLimit"].clone()),
        (StatusCode::OK, json!(4)),
        "{b}"
    );
    let (s, b) = patch(json!({"rateLimit": 3, "throttleRate": 3})).await;
    assert_eq!(
        (s, b["throttleRate"].clone()),
        (StatusCode::OK, json!(3)),
        "{b}"
    );
    let (s, b) = patch(json!({"rateLimit": 2, "throttleRate": 3})).await;
    assert_eq!(loc(s, &b), at(&["body", "rateLimit"]));
    let (s, b) = patch(json!({"rateLimit": 0})).await;
    assert_eq!(loc(s, &b), at(&["body", "rateLimit"]));
    // throttleRate: at least 1 on a create or PUT (Svix's EndpointIn and
    // ApplicationIn); a PATCH may set 0, which means no limit.
    let (s, b) = app
        .post_json(&list, json!({"url": url, "throttleRate": 0}))
        .await;
    assert_eq!(loc(s, &b), at(&["body", "throttleRate"]));
    let (s, b) = app
        .post_json("/api/v1/app", json!({"name": "Zero", "throttleRate": 0}))
        .await;
    assert_eq!(loc(s, &b), at(&["body", "throttleRate"]));
    let (s, b) = patch(json!({"throttleRate": 0})).await;
    assert_eq!(
        (s, b["throttleRate"].clone()),
        (StatusCode::OK, json!(0)),
        "{b}"
    );
    let (s, b) = patch(json!({"rateLimit": null})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(
        b["rateLimit"].is_null() && b.get("throttleRate").is_none(),
        "{b}"
    );
    app.stop().await;
}
