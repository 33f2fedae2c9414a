//! Herald driven by the official Svix Rust SDK: what a client written against
//! Svix gets when pointed at Herald.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use herald_core::schedule::RetrySchedule;
use reqwest::{Method, StatusCode};
use serde_json::json;
use svix::api::{
    ApplicationListOptions, EndpointListOptions, EventTypeListOptions, MessageAttemptResendOptions,
    MessageGetOptions, MessageListOptions, Svix,
};
use svix::error::Error as SvixError;
use svix::models::{
    ApplicationIn, ApplicationPatch, EndpointHeadersIn, EndpointHeadersPatchIn, EndpointIn,
    EndpointPatch, EndpointSecretRotateIn, EndpointUpsertIn, EventExampleIn, EventTypeIn,
    EventTypePatch, EventTypeUpsertIn, MessageAttemptTriggerType, MessageIn, MessageStatus,
    RecoverIn,
};

use crate::support::{eventually, Options, Receiver, Reply, TestApp};

const WAIT: Duration = Duration::from_secs(30);

/// The HTTP status of an SDK error; panics on transport errors.
fn status_of(e: &SvixError) -> u16 {
    match e {
        SvixError::Http(c) => c.status.as_u16(),
        SvixError::Validation(c) => c.status.as_u16(),
        other => panic!("expected an HTTP error, got {other:?}"),
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn map(items: &[(&str, &str)]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn app_in(name: &str, uid: &str) -> ApplicationIn {
    ApplicationIn {
        uid: Some(uid.into()),
        ..ApplicationIn::new(name.into())
    }
}

async fn sdk_endpoint(svix: &Svix, app_id: &str, url: String) -> String {
    svix.endpoint()
        .create(app_id.into(), EndpointIn::new(url), None)
        .await
        .unwrap()
        .id
}

/// Alpha (with metadata), Beta and Gamma, created through the SDK.
async fn three_apps(apps: &svix::api::Application<'_>) -> [svix::models::ApplicationOut; 3] {
    let mut a = app_in("Alpha", "spot-alpha");
    a.metadata = Some(map(&[("plan", "pro")]));
    let alpha = apps.create(a, None).await.unwrap();
    assert!(alpha.id.starts_with("app_"), "{}", alpha.id);
    assert_eq!(alpha.uid.as_deref(), Some("spot-alpha"));
    assert_eq!(alpha.name, "Alpha");
    assert_eq!(alpha.metadata, map(&[("plan", "pro")]));
    let beta = apps
        .create(app_in("Beta", "spot-beta"), None)
        .await
        .unwrap();
    let gamma = apps
        .create(app_in("Gamma", "spot-gamma"), None)
        .await
        .unwrap();
    [alpha, beta, gamma]
}

#[tokio::test]
async fn applications_create_get_and_list_in_pages() {
    let app = TestApp::spawn().await;
    let svix = app.svix();
    let apps = svix.application();
    let [alpha, beta, gamma] = three_apps(&apps).await;

    // By id and by uid.
    assert_eq!(apps.get(alpha.id.clone()).await.unwrap(), alpha);
    assert_eq!(apps.get("spot-alpha".into()).await.unwrap(), alpha);

    // A uid already taken is a conflict.
    let err = apps
        .create(app_in("Again", "spot-alpha"), None)
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 409, "{err}");

    // One at a time, following the iterator.
    let mut seen = Vec::new();
    let mut dones = Vec::new();
    let mut iterator = None;
    for _ in 0..5 {
        let page = apps
            .list(Some(ApplicationListOptions {
                limit: Some(1),
                iterator: iterator.clone(),
                ..Default::default()
            }))
            .await
            .unwrap();
        assert!(page.data.len() <= 1);
        seen.extend(page.data.iter().map(|a| a.id.clone()));
        dones.push(page.done);
        if page.done {
            break;
        }
        iterator = page.iterator.clone();
        assert!(
            iterator.is_some(),
            "a page that is not done has an iterator"
        );
    }
    assert_eq!(dones, vec![false, false, true]);
    let mut expected = vec![alpha.id.clone(), beta.id.clone(), gamma.id.clone()];
    expected.sort();
    assert_eq!(seen, expected, "ascending by id, each app once");
    let all = apps.list(None).await.unwrap();
    assert_eq!(all.data.len(), 3);
    assert!(all.done);
    app.stop().await;
}

#[tokio::test]
async fn applications_get_or_create_upsert_patch_delete() {
    let app = TestApp::spawn().await;
    let svix = app.svix();
    let apps = svix.application();
    let [alpha, beta, gamma] = three_apps(&apps).await;

    // get_or_create: the existing app by uid, or a new one.
    let same = apps
        .get_or_create(app_in("Other name", "spot-alpha"), None)
        .await
        .unwrap();
    assert_eq!(same.id, alpha.id);
    assert_eq!(same.name, "Alpha");
    let delta = apps
        .get_or_create(app_in("Delta", "spot-delta"), None)
        .await
        .unwrap();
    assert_ne!(delta.id, alpha.id);
    assert_eq!(apps.get("spot-delta".into()).await.unwrap().id, delta.id);

    // PUT (upsert) replaces; on a missing id it creates with that uid.
    let updated = apps
        .upsert(
            beta.id.clone(),
            ApplicationIn {
                metadata: Some(map(&[("k", "v")])),
                ..app_in("Beta 2", "spot-beta-2")
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.id, beta.id);
    assert_eq!(updated.name, "Beta 2");
    assert_eq!(updated.uid.as_deref(), Some("spot-beta-2"));
    assert_eq!(updated.metadata, map(&[("k", "v")]));
    assert!(apps.get("spot-beta".into()).await.is_err());
    let created = apps
        .upsert("spot-epsilon".into(), ApplicationIn::new("Epsilon".into()))
        .await
        .unwrap();
    assert_eq!(created.uid.as_deref(), Some("spot-epsilon"));

    // PATCH changes what it names only.
    let patched = apps
        .patch(
            alpha.id.clone(),
            ApplicationPatch {
                name: Some("Alpha 2".into()),
                ..ApplicationPatch::new()
            },
        )
        .await
        .unwrap();
    assert_eq!(patched.name, "Alpha 2");
    assert_eq!(patched.uid.as_deref(), Some("spot-alpha"));
    assert_eq!(patched.metadata, map(&[("plan", "pro")]));
    let patched = apps
        .patch(
            "spot-alpha".into(),
            ApplicationPatch {
                metadata: Some(map(&[("plan", "free")])),
                ..ApplicationPatch::new()
            },
        )
        .await
        .unwrap();
    assert_eq!(patched.name, "Alpha 2");
    assert_eq!(patched.metadata, map(&[("plan", "free")]));

    // Delete, then it is gone.
    apps.delete(gamma.id.clone()).await.unwrap();
    let err = apps.get(gamma.id.clone()).await.unwrap_err();
    assert_eq!(status_of(&err), 404, "{err}");
    let err = apps.delete(gamma.id.clone()).await.unwrap_err();
    assert_eq!(status_of(&err), 404, "{err}");
    let ids: Vec<String> = apps
        .list(None)
        .await
        .unwrap()
        .data
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert!(!ids.contains(&gamma.id));
    assert_eq!(ids.len(), 4);
    app.stop().await;
}

fn invoice_schemas() -> serde_json::Value {
    json!({"1": {"type": "object", "examples": [{"invoice": "inv_1"}]}})
}

#[tokio::test]
async fn event_types_create_get_list_update_patch() {
    let app = TestApp::spawn().await;
    let svix = app.svix();
    let ets = svix.event_type();

    let schemas = invoice_schemas();
    let created = ets
        .create(
            EventTypeIn {
                schemas: Some(schemas.clone()),
                ..EventTypeIn::new("invoice.paid".into(), "An invoice was paid".into())
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(created.name, "invoice.paid");
    assert_eq!(created.description, "An invoice was paid");
    assert!(!created.deprecated);
    assert_eq!(created.archived, Some(false));
    assert_eq!(created.schemas, Some(schemas.clone()));
    ets.create(
        EventTypeIn::new("invoice.voided".into(), "Voided".into()),
        None,
    )
    .await
    .unwrap();

    // Creating it again is a conflict.
    let err = ets
        .create(
            EventTypeIn::new("invoice.paid".into(), "again".into()),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 409, "{err}");

    let got = ets.get("invoice.paid".into()).await.unwrap();
    assert_eq!(got.description, "An invoice was paid");
    assert_eq!(got.schemas, Some(schemas.clone()));

    let list = ets.list(None).await.unwrap();
    let names: Vec<&str> = list.data.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["invoice.paid", "invoice.voided"]);
    assert!(list.done);
    let page = ets
        .list(Some(EventTypeListOptions {
            limit: Some(1),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_eq!(page.data.len(), 1);
    assert!(!page.done);

    // PUT replaces the description.
    let updated = ets
        .upsert(
            "invoice.paid".into(),
            EventTypeUpsertIn {
                schemas: Some(schemas.clone()),
                ..EventTypeUpsertIn::new("Paid in full".into())
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.description, "Paid in full");
    // PUT of a missing name creates it.
    let upserted = ets
        .upsert(
            "invoice.refunded".into(),
            EventTypeUpsertIn::new("Refunded".into()),
        )
        .await
        .unwrap();
    assert_eq!(upserted.name, "invoice.refunded");

    // PATCH touches what it names only.
    let patched = ets
        .patch(
            "invoice.paid".into(),
            EventTypePatch {
                deprecated: Some(true),
                ..EventTypePatch::new()
            },
        )
        .await
        .unwrap();
    assert!(patched.deprecated);
    assert_eq!(patched.description, "Paid in full");
    assert_eq!(patched.schemas, Some(schemas.clone()));
    app.stop().await;
}

#[tokio::test]
async fn event_types_delete_archives_and_expunge_removes() {
    let app = TestApp::spawn().await;
    let svix = app.svix();
    let ets = svix.event_type();
    for (name, description) in [
        ("invoice.paid", "Paid"),
        ("invoice.voided", "Voided"),
        ("invoice.refunded", "Refunded"),
    ] {
        let type_in = EventTypeIn::new(name.into(), description.into());
        ets.create(type_in, None).await.unwrap();
    }

    // Delete archives: hidden from the default list, shown with include_archived.
    ets.delete("invoice.voided".into(), None).await.unwrap();
    let names: Vec<String> = ets
        .list(None)
        .await
        .unwrap()
        .data
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["invoice.paid", "invoice.refunded"]);
    let all = ets
        .list(Some(EventTypeListOptions {
            include_archived: Some(true),
            ..Default::default()
        }))
        .await
        .unwrap();
    let voided = all
        .data
        .iter()
        .find(|e| e.name == "invoice.voided")
        .expect("archived event type listed with include_archived");
    assert_eq!(voided.archived, Some(true));
    assert_eq!(
        ets.get("invoice.voided".into()).await.unwrap().archived,
        Some(true)
    );
    // Creating an archived type again brings it back.
    let back = ets
        .create(
            EventTypeIn::new("invoice.voided".into(), "Back".into()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(back.archived, Some(false));
    assert_eq!(back.description, "Back");

    // expunge removes it for good.
    ets.delete(
        "invoice.refunded".into(),
        Some(svix::api::EventTypeDeleteOptions {
            expunge: Some(true),
        }),
    )
    .await
    .unwrap();
    let err = ets.get("invoice.refunded".into()).await.unwrap_err();
    assert_eq!(status_of(&err), 404, "{err}");
    app.stop().await;
}

/// Application `spot-1` with endpoint `ep-main` (every field set), through
/// the SDK; returns the app id and the endpoint.
async fn main_endpoint(svix: &Svix) -> (String, svix::models::EndpointOut) {
    let app_id = svix
        .application()
        .create(app_in("Spot", "spot-1"), None)
        .await
        .unwrap()
        .id;
    let created = svix
        .endpoint()
        .create(
            "spot-1".into(),
            EndpointIn {
                uid: Some("ep-main".into()),
                description: Some("main".into()),
                event_types: Some(set(&["member.created", "member.deleted"])),
                channels: Some(set(&["project.1"])),
                metadata: Some(map(&[("team", "core")])),
                headers: Some(map(&[("X-Team", "core")])),
                ..EndpointIn::new("http://127.0.0.1:9/hook".into())
            },
            None,
        )
        .await
        .unwrap();
    assert!(created.id.starts_with("ep_"), "{}", created.id);
    assert_eq!(created.uid.as_deref(), Some("ep-main"));
    assert_eq!(created.url, "http://127.0.0.1:9/hook");
    assert_eq!(created.description, "main");
    assert_eq!(created.disabled, Some(false));
    assert_eq!(
        created.event_types,
        Some(set(&["member.created", "member.deleted"]))
    );
    assert_eq!(created.channels, Some(set(&["project.1"])));
    assert_eq!(created.metadata, map(&[("team", "core")]));
    (app_id, created)
}

#[tokio::test]
async fn endpoints_create_get_and_list() {
    let app = TestApp::spawn().await;
    let svix = app.svix();
    let (app_id, created) = main_endpoint(&svix).await;
    let eps = svix.endpoint();

    // By id and by uid (and the app by its uid).
    assert_eq!(
        eps.get(app_id.clone(), created.id.clone()).await.unwrap(),
        created
    );
    assert_eq!(
        eps.get("spot-1".into(), "ep-main".into()).await.unwrap(),
        created
    );
    let headers = eps
        .get_headers(app_id.clone(), created.id.clone())
        .await
        .unwrap();
    assert_eq!(headers.headers, map(&[("X-Team", "core")]));

    let second = sdk_endpoint(&svix, &app_id, "http://127.0.0.1:9/two".into()).await;
    let list = eps.list(app_id.clone(), None).await.unwrap();
    let mut ids: Vec<String> = list.data.iter().map(|e| e.id.clone()).collect();
    ids.sort();
    let mut expected = vec![created.id.clone(), second.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(list.done);
    let page = eps
        .list(
            app_id.clone(),
            Some(EndpointListOptions {
                limit: Some(1),
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    assert_eq!(page.data.len(), 1);
    assert!(!page.done);
    app.stop().await;
}

#[tokio::test]
async fn endpoints_upsert_patch_validate_and_delete() {
    let app = TestApp::spawn().await;
    let svix = app.svix();
    let (app_id, created) = main_endpoint(&svix).await;
    let eps = svix.endpoint();
    sdk_endpoint(&svix, &app_id, "http://127.0.0.1:9/two".into()).await;

    // PUT replaces the fields it carries.
    let replaced = eps
        .upsert(
            app_id.clone(),
            created.id.clone(),
            EndpointUpsertIn {
                uid: Some("ep-main".into()),
                description: Some("replaced".into()),
                event_types: Some(set(&["member.updated"])),
                ..EndpointUpsertIn::new("http://127.0.0.1:9/replaced".into())
            },
        )
        .await
        .unwrap();
    assert_eq!(replaced.id, created.id);
    assert_eq!(replaced.url, "http://127.0.0.1:9/replaced");
    assert_eq!(replaced.description, "replaced");
    assert_eq!(replaced.event_types, Some(set(&["member.updated"])));
    assert_eq!(replaced.channels, None);
    assert!(replaced.metadata.is_empty());
    // Headers survive a PUT without them.
    let headers = eps
        .get_headers(app_id.clone(), created.id.clone())
        .await
        .unwrap();
    assert_eq!(headers.headers, map(&[("X-Team", "core")]));

    // PATCH: only the named fields change. JsOption fields come from JSON since
    // the SDK does not re-export `JsOption`.
    let mut patch: EndpointPatch = serde_json::from_value(json!({
        "eventTypes": ["a.b", "c.d"],
        "channels": ["x"],
    }))
    .unwrap();
    patch.disabled = Some(true);
    let patched = eps
        .patch(app_id.clone(), created.id.clone(), patch)
        .await
        .unwrap();
    assert_eq!(patched.disabled, Some(true));
    assert_eq!(patched.event_types, Some(set(&["a.b", "c.d"])));
    assert_eq!(patched.channels, Some(set(&["x"])));
    assert_eq!(patched.description, "replaced");
    assert_eq!(patched.url, "http://127.0.0.1:9/replaced");
    let patch: EndpointPatch = serde_json::from_value(json!({"eventTypes": null})).unwrap();
    let patched = eps
        .patch(app_id.clone(), "ep-main".into(), patch)
        .await
        .unwrap();
    assert_eq!(patched.event_types, None);
    assert_eq!(patched.channels, Some(set(&["x"])));

    // Bad input is a validation error the SDK understands.
    let err = eps
        .create(app_id.clone(), EndpointIn::new("not a url".into()), None)
        .await
        .unwrap_err();
    assert!(matches!(err, SvixError::Validation(_)), "{err:?}");

    eps.delete(app_id.clone(), created.id.clone())
        .await
        .unwrap();
    let err = eps
        .get(app_id.clone(), created.id.clone())
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 404, "{err}");
    assert_eq!(eps.list(app_id.clone(), None).await.unwrap().data.len(), 1);
    app.stop().await;
}

/// PATCH semantics the SDK cannot express: `null` resets, absent leaves alone,
/// and the spec's `filterTypes` works like the SDKs' `eventTypes`.
#[tokio::test]
async fn endpoint_patch_null_absent_and_filter_types_over_raw_http() {
    let app = TestApp::spawn().await;
    let app_id = app.create_app("Spot").await;
    let ep = app
        .create_endpoint(
            &app_id,
            json!({"url": "http://127.0.0.1:9/hook", "description": "keep me",
                   "channels": ["c1"], "eventTypes": ["a.b"]}),
        )
        .await;
    let path = format!("/api/v1/app/{app_id}/endpoint/{ep}");
    let patch = |body: serde_json::Value| {
        let req = app.request(Method::PATCH, &path).json(&body);
        async move { crate::support::split(req.send().await.unwrap()).await }
    };

    // Absent: untouched.
    let (status, out) = patch(json!({"disabled": true})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["description"], "keep me");
    assert_eq!(out["eventTypes"], json!(["a.b"]));
    assert_eq!(out["channels"], json!(["c1"]));
    assert_eq!(out["disabled"], true);

    // The spec's name for the filter.
    let (status, out) = patch(json!({"filterTypes": ["x.y", "w.z"]})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["eventTypes"], json!(["w.z", "x.y"]));
    assert_eq!(out["filterTypes"], json!(["w.z", "x.y"]));
    assert_eq!(out["description"], "keep me");

    // null resets.
    let (status, out) = patch(json!({"description": null})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["description"], "");
    assert_eq!(out["eventTypes"], json!(["w.z", "x.y"]));
    let (status, out) = patch(json!({"filterTypes": null, "channels": null})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["eventTypes"], serde_json::Value::Null);
    assert_eq!(out["channels"], serde_json::Value::Null);
    assert_eq!(out["disabled"], true);

    // A bad filter entry is named by the field it came under.
    let (status, out) = patch(json!({"filterTypes": ["ok.type", "bad type!"]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
    assert_eq!(out["detail"][0]["loc"], json!(["body", "filterTypes", "1"]));

    // filterTypes on create, too.
    let ep2 = app
        .create_endpoint(
            &app_id,
            json!({"url": "http://127.0.0.1:9/two", "filterTypes": ["only.this"]}),
        )
        .await;
    let out = app
        .svix()
        .endpoint()
        .get(app_id.clone(), ep2)
        .await
        .unwrap();
    assert_eq!(out.event_types, Some(set(&["only.this"])));
    app.stop().await;
}

#[tokio::test]
async fn endpoint_secret_get_and_rotate() {
    let app = TestApp::spawn().await;
    let svix = app.svix();
    let app_id = app.create_app("Spot").await;
    let ep = sdk_endpoint(&svix, &app_id, "http://127.0.0.1:9/hook".into()).await;
    let eps = svix.endpoint();

    let first = eps
        .get_secret(app_id.clone(), ep.clone())
        .await
        .unwrap()
        .key;
    assert!(first.starts_with("whsec_"), "{first}");
    svix::webhooks::Webhook::new(&first).expect("a usable key");

    let rotated = eps
        .rotate_secret(
            app_id.clone(),
            ep.clone(),
            EndpointSecretRotateIn::default(),
            None,
        )
        .await
        .unwrap()
        .key;
    assert!(rotated.starts_with("whsec_"), "{rotated}");
    assert_ne!(rotated, first);
    assert_eq!(
        eps.get_secret(app_id.clone(), ep.clone())
            .await
            .unwrap()
            .key,
        rotated
    );

    // A key of the caller's choosing.
    let chosen = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string();
    let out = eps
        .rotate_secret(
            app_id.clone(),
            ep.clone(),
            EndpointSecretRotateIn {
                key: Some(chosen.clone()),
                grace_period_seconds: Some(60),
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(out.key, chosen);
    assert_eq!(
        eps.get_secret(app_id.clone(), ep.clone())
            .await
            .unwrap()
            .key,
        chosen
    );
    let err = eps
        .rotate_secret(
            app_id.clone(),
            ep.clone(),
            EndpointSecretRotateIn {
                key: Some("not-a-key".into()),
                grace_period_seconds: None,
            },
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 422, "{err}");
    app.stop().await;
}

#[tokio::test]
async fn endpoint_headers_get_set_patch() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let svix = app.svix();
    let app_id = app.create_app("Spot").await;
    let eps = svix.endpoint();
    let ep = eps
        .create(
            app_id.clone(),
            EndpointIn {
                headers: Some(map(&[("X-One", "1"), ("Authorization", "Bearer s3cret")])),
                ..EndpointIn::new(receiver.url("/hook"))
            },
            None,
        )
        .await
        .unwrap()
        .id;

    let got = eps.get_headers(app_id.clone(), ep.clone()).await.unwrap();
    // Names as given (Svix keeps their case).
    assert_eq!(got.headers, map(&[("X-One", "1")]));
    assert_eq!(got.sensitive, set(&["Authorization"]));

    eps.set_headers(
        app_id.clone(),
        ep.clone(),
        EndpointHeadersIn {
            headers: map(&[("X-Two", "2"), ("X-Three", "3")]),
        },
    )
    .await
    .unwrap();
    let got = eps.get_headers(app_id.clone(), ep.clone()).await.unwrap();
    assert_eq!(got.headers, map(&[("X-Three", "3"), ("X-Two", "2")]));
    assert!(got.sensitive.is_empty());

    eps.patch_headers(
        app_id.clone(),
        ep.clone(),
        EndpointHeadersPatchIn {
            headers: map(&[("X-Four", "4"), ("X-Two", "two")]),
            delete_headers: Some(vec!["X-Three".into()]),
        },
    )
    .await
    .unwrap();
    let got = eps.get_headers(app_id.clone(), ep.clone()).await.unwrap();
    assert_eq!(got.headers, map(&[("X-Four", "4"), ("X-Two", "two")]));

    // Reserved names are refused.
    let err = eps
        .set_headers(
            app_id.clone(),
            ep.clone(),
            EndpointHeadersIn {
                headers: map(&[("svix-id", "forged")]),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 422, "{err}");

    // And what is set is what the receiver gets.
    app.send(&app_id, json!({"eventType": "a.b", "payload": {}}))
        .await;
    let got = receiver.wait_for("/hook", 1, WAIT).await;
    assert_eq!(got[0].header("x-two"), "two");
    assert_eq!(got[0].header("x-four"), "4");
    assert_eq!(got[0].header("x-three"), "");
    assert_eq!(got[0].header("x-one"), "");
    app.stop().await;
}

#[tokio::test]
async fn send_example_reaches_the_endpoint_and_stats_count_it() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let svix = app.svix();
    let app_id = app.create_app("Spot").await;
    for (name, examples) in [
        (
            "member.created",
            json!([{"member": {"id": "m_example"}}, {"member": {"id": "m_second"}}]),
        ),
        ("other.type", json!([])),
    ] {
        svix.event_type()
            .create(
                EventTypeIn {
                    schemas: Some(json!({"1": {"type": "object", "examples": examples}})),
                    ..EventTypeIn::new(name.into(), name.into())
                },
                None,
            )
            .await
            .unwrap();
    }
    // A filter that does not match: the example is sent anyway.
    let ep = svix
        .endpoint()
        .create(
            app_id.clone(),
            EndpointIn {
                event_types: Some(set(&["other.type"])),
                ..EndpointIn::new(receiver.url("/hook"))
            },
            None,
        )
        .await
        .unwrap()
        .id;

    // The Test button: the example at an index (the first by default).
    let endpoints = svix.endpoint();
    let example = |index: Option<u64>| {
        let example_in = EventExampleIn {
            example_index: index,
            ..EventExampleIn::new("member.created".into())
        };
        endpoints.send_example(app_id.clone(), ep.clone(), example_in, None)
    };
    let msg = example(None).await.unwrap();
    assert_eq!(msg.event_type, "member.created");
    let got = receiver.wait_for("/hook", 1, WAIT).await;
    assert_eq!(got[0].header("webhook-id"), msg.id);
    // The Test button marks the example as a test.
    let want = json!({"member": {"id": "m_example"}, "test": true});
    assert_eq!(got[0].json(), want);

    let msg2 = example(Some(1)).await.unwrap();
    let got = receiver.wait_for("/hook", 2, WAIT).await;
    assert_eq!(got[1].header("webhook-id"), msg2.id);
    let want = json!({"member": {"id": "m_second"}, "test": true});
    assert_eq!(got[1].json(), want);

    // No example there: a validation error.
    let err = example(Some(7)).await.unwrap_err();
    assert_eq!(status_of(&err), 422, "{err}");

    let eps = svix.endpoint();
    let mut check = || {
        let eps = &eps;
        let (app_id, ep) = (app_id.clone(), ep.clone());
        async move {
            let s = eps.get_stats(app_id, ep, None).await.unwrap();
            (s.success == 2).then_some(s)
        }
    };
    let stats = eventually(WAIT, "two successes in the stats", &mut check).await;
    assert_eq!(
        (stats.pending, stats.sending, stats.fail, stats.canceled),
        (0, 0, 0, 0)
    );
    app.stop().await;
}

#[tokio::test]
async fn recover_resends_failed_deliveries() {
    let app = TestApp::spawn_with(Options {
        retry_schedule: RetrySchedule::from_delays(vec![Duration::from_millis(100)]).unwrap(),
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.set_default("/hook", Reply::status(500));
    let svix = app.svix();
    let app_id = app.create_app("Spot").await;
    let ep = sdk_endpoint(&svix, &app_id, receiver.url("/hook")).await;
    let since = chrono::Utc::now() - chrono::Duration::minutes(1);

    let msg = svix
        .message()
        .create(
            app_id.clone(),
            MessageIn::new("a.b".into(), json!({"n": 1})),
            None,
        )
        .await
        .unwrap();
    // The first attempt and its one retry.
    receiver.wait_for("/hook", 2, WAIT).await;
    let eps = svix.endpoint();
    let mut failed = || {
        let eps = &eps;
        let (app_id, ep) = (app_id.clone(), ep.clone());
        async move {
            let s = eps.get_stats(app_id, ep, None).await.unwrap();
            (s.fail == 1).then_some(s)
        }
    };
    let stats = eventually(WAIT, "the delivery to fail for good", &mut failed).await;
    assert_eq!((stats.success, stats.pending), (0, 0));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received_on("/hook").len(), 2, "no third attempt");

    receiver.set_default("/hook", Reply::status(200));
    let out = eps
        .recover(app_id.clone(), ep.clone(), RecoverIn::new(since), None)
        .await
        .unwrap();
    assert_eq!(
        out.task,
        svix::models::BackgroundTaskType::EndpointRecover,
        "{out:?}"
    );
    let got = receiver.wait_for("/hook", 3, WAIT).await;
    assert_eq!(got[2].header("webhook-id"), msg.id);
    let mut succeeded = || {
        let eps = &eps;
        let (app_id, ep) = (app_id.clone(), ep.clone());
        async move {
            let s = eps.get_stats(app_id, ep, None).await.unwrap();
            (s.success == 1).then_some(s)
        }
    };
    let stats = eventually(WAIT, "the recovered delivery to succeed", &mut succeeded).await;
    assert_eq!(stats.fail, 0);

    // Recover again: nothing failed, nothing is sent.
    eps.recover(app_id.clone(), ep.clone(), RecoverIn::new(since), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received_on("/hook").len(), 3);
    app.stop().await;
}

/// Two messages through the SDK: the first with an eventId and a channel.
async fn two_messages(
    svix: &Svix,
    app_id: &str,
) -> (svix::models::MessageOut, svix::models::MessageOut) {
    let msgs = svix.message();
    let first = msgs
        .create(
            app_id.into(),
            MessageIn {
                event_id: Some("evt-1".into()),
                channels: Some(set(&["project.1"])),
                ..MessageIn::new("member.created".into(), json!({"member": "m1"}))
            },
            None,
        )
        .await
        .unwrap();
    assert!(first.id.starts_with("msg_"), "{}", first.id);
    assert_eq!(first.event_id.as_deref(), Some("evt-1"));
    assert_eq!(first.channels, Some(set(&["project.1"])));
    assert_eq!(first.event_type, "member.created");
    let second = msgs
        .create(
            app_id.into(),
            MessageIn::new("member.deleted".into(), json!({"member": "m2"})),
            None,
        )
        .await
        .unwrap();
    (first, second)
}

#[tokio::test]
async fn messages_are_delivered_and_an_event_id_is_taken_once() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let svix = app.svix();
    let app_id = app.create_app("Spot").await;
    sdk_endpoint(&svix, &app_id, receiver.url("/hook")).await;
    let (first, second) = two_messages(&svix, &app_id).await;

    let got = receiver.wait_for("/hook", 2, WAIT).await;
    let by_id: BTreeMap<String, serde_json::Value> = got
        .iter()
        .map(|r| (r.header("webhook-id").to_string(), r.json()))
        .collect();
    assert_eq!(by_id[&first.id], json!({"member": "m1"}));
    assert_eq!(by_id[&second.id], json!({"member": "m2"}));

    // The same eventId again is refused.
    let again = MessageIn {
        event_id: Some("evt-1".into()),
        ..MessageIn::new("member.created".into(), json!({}))
    };
    let err = svix
        .message()
        .create(app_id.clone(), again, None)
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 409, "{err}");
    app.stop().await;
}

/// The ids a message list answers, and whether it is done.
async fn listed(svix: &Svix, app_id: &str, options: MessageListOptions) -> (Vec<String>, bool) {
    let page = svix
        .message()
        .list(app_id.into(), Some(options))
        .await
        .unwrap();
    (page.data.into_iter().map(|m| m.id).collect(), page.done)
}

#[tokio::test]
async fn messages_list_with_filters_and_pages_and_get_by_id_or_event_id() {
    let app = TestApp::spawn().await;
    let svix = app.svix();
    let app_id = app.create_app("Spot").await;
    let (first, second) = two_messages(&svix, &app_id).await;
    let msgs = svix.message();

    // Newest first.
    let all = msgs.list(app_id.clone(), None).await.unwrap();
    let ids: Vec<&str> = all.data.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, [second.id.as_str(), first.id.as_str()]);
    assert!(all.done);
    // The SDK asks for no content by default.
    assert_eq!(all.data[0].payload, json!({}));
    let with_content = MessageListOptions {
        with_content: Some(true),
        ..Default::default()
    };
    let listed_with = msgs.list(app_id.clone(), Some(with_content)).await.unwrap();
    assert_eq!(listed_with.data[0].payload, json!({"member": "m2"}));

    let types = |names: &[&str]| MessageListOptions {
        event_types: Some(set(names)),
        ..Default::default()
    };
    let (ids, _) = listed(&svix, &app_id, types(&["member.deleted"])).await;
    assert_eq!(ids, vec![second.id.clone()]);
    let (ids, _) = listed(&svix, &app_id, types(&["member.deleted", "member.created"])).await;
    assert_eq!(ids.len(), 2);
    let channel = MessageListOptions {
        channel: Some("project.1".into()),
        ..Default::default()
    };
    assert_eq!(
        listed(&svix, &app_id, channel).await.0,
        vec![first.id.clone()]
    );
    let one = |iterator| MessageListOptions {
        limit: Some(1),
        iterator,
        ..Default::default()
    };
    let page = msgs.list(app_id.clone(), Some(one(None))).await.unwrap();
    assert_eq!((page.data.len(), page.done), (1, false));
    let rest = listed(&svix, &app_id, one(page.iterator.clone())).await;
    assert_eq!(rest, (vec![first.id.clone()], true));

    let content = || {
        Some(MessageGetOptions {
            with_content: Some(true),
        })
    };
    let got = msgs
        .get(app_id.clone(), first.id.clone(), content())
        .await
        .unwrap();
    assert_eq!(got.id, first.id);
    assert_eq!(got.payload, json!({"member": "m1"}));
    assert_eq!(got.channels, Some(set(&["project.1"])));
    let by_event = msgs
        .get(app_id.clone(), "evt-1".into(), content())
        .await
        .unwrap();
    assert_eq!(by_event.id, first.id);
    let err = msgs
        .get(app_id.clone(), "msg_nope".into(), None)
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 404, "{err}");
    app.stop().await;
}

/// One message delivered to one endpoint, its attempt recorded; returns the
/// app id, the endpoint id, the message and the attempts at the endpoint.
async fn delivered_once(
    app: &TestApp,
    receiver: &Receiver,
) -> (
    String,
    String,
    svix::models::MessageOut,
    svix::models::ListResponseMessageAttemptOut,
) {
    let svix = app.svix();
    let app_id = app.create_app("Spot").await;
    let ep = sdk_endpoint(&svix, &app_id, receiver.url("/hook")).await;
    let msg = svix
        .message()
        .create(
            app_id.clone(),
            MessageIn::new("a.b".into(), json!({"k": "v"})),
            None,
        )
        .await
        .unwrap();
    receiver.wait_for("/hook", 1, WAIT).await;
    let attempts = svix.message_attempt();

    let mut recorded = || {
        let attempts = &attempts;
        let (app_id, ep) = (app_id.clone(), ep.clone());
        async move {
            let l = attempts.list_by_endpoint(app_id, ep, None).await.unwrap();
            (l.data.len() == 1).then_some(l)
        }
    };
    let by_ep = eventually(WAIT, "the attempt to be recorded", &mut recorded).await;
    (app_id, ep, msg, by_ep)
}

#[tokio::test]
async fn attempts_list_by_endpoint_and_message_get_and_destinations() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let (app_id, ep, msg, by_ep) = delivered_once(&app, &receiver).await;
    let svix = app.svix();
    let attempts = svix.message_attempt();
    let attempt = &by_ep.data[0];
    assert_eq!(attempt.msg_id, msg.id);
    assert_eq!(attempt.endpoint_id, ep);
    assert_eq!(attempt.status, MessageStatus::Success);
    assert_eq!(attempt.response_status_code, 200);
    assert_eq!(attempt.response, "ok");
    assert_eq!(attempt.trigger_type, MessageAttemptTriggerType::Scheduled);
    assert_eq!(attempt.url, receiver.url("/hook"));
    assert!(by_ep.done);

    let by_msg = attempts
        .list_by_msg(app_id.clone(), msg.id.clone(), None)
        .await
        .unwrap();
    assert_eq!(by_msg.data.len(), 1);
    assert_eq!(by_msg.data[0].id, attempt.id);

    let one = attempts
        .get(app_id.clone(), msg.id.clone(), attempt.id.clone(), None)
        .await
        .unwrap();
    assert_eq!(one.id, attempt.id);
    assert_eq!(one.status, MessageStatus::Success);

    let dests = attempts
        .list_attempted_destinations(app_id.clone(), msg.id.clone(), None)
        .await
        .unwrap();
    assert_eq!(dests.data.len(), 1);
    assert_eq!(dests.data[0].id, ep);
    assert_eq!(dests.data[0].status, MessageStatus::Success);
    assert_eq!(dests.data[0].next_attempt, None);

    let msgs = attempts
        .list_attempted_messages(app_id.clone(), ep.clone(), None)
        .await
        .unwrap();
    assert_eq!(msgs.data.len(), 1);
    assert_eq!(msgs.data[0].id, msg.id);
    assert_eq!(msgs.data[0].status, MessageStatus::Success);
    assert_eq!(msgs.data[0].event_type, "a.b");
    app.stop().await;
}

#[tokio::test]
async fn resend_makes_a_manual_attempt_with_the_same_webhook_id() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let (app_id, ep, msg, _) = delivered_once(&app, &receiver).await;
    let svix = app.svix();
    let attempts = svix.message_attempt();

    // Resend: a second, manual attempt with the same webhook-id.
    attempts
        .resend(
            app_id.clone(),
            msg.id.clone(),
            ep.clone(),
            Some(MessageAttemptResendOptions::default()),
        )
        .await
        .unwrap();
    let got = receiver.wait_for("/hook", 2, WAIT).await;
    assert_eq!(got[0].header("webhook-id"), msg.id);
    assert_eq!(got[1].header("webhook-id"), msg.id);
    assert_eq!(got[0].body, got[1].body);
    let mut two = || {
        let attempts = &attempts;
        let (app_id, msg_id) = (app_id.clone(), msg.id.clone());
        async move {
            let l = attempts.list_by_msg(app_id, msg_id, None).await.unwrap();
            (l.data.len() == 2).then_some(l)
        }
    };
    let by_msg = eventually(WAIT, "the manual attempt to be recorded", &mut two).await;
    let triggers: BTreeSet<i64> = by_msg.data.iter().map(|a| a.trigger_type as i64).collect();
    assert_eq!(triggers, BTreeSet::from([0, 1]));
    // Newest first.
    assert_eq!(
        by_msg.data[0].trigger_type,
        MessageAttemptTriggerType::Manual
    );
    assert!(by_msg
        .data
        .iter()
        .all(|a| a.status == MessageStatus::Success));

    // Unknown ids are 404s.
    let err = attempts
        .get(app_id.clone(), msg.id.clone(), "atmpt_nope".into(), None)
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 404, "{err}");
    let err = attempts
        .resend(app_id.clone(), "msg_nope".into(), ep.clone(), None)
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 404, "{err}");
    app.stop().await;
}

#[tokio::test]
async fn health_via_sdk() {
    let app = TestApp::spawn().await;
    app.svix().health().get().await.unwrap();
    // Health needs no token.
    app.svix_with_token("not-a-token")
        .health()
        .get()
        .await
        .unwrap();
    // Other calls do.
    let err = app
        .svix_with_token("not-a-token")
        .application()
        .list(None)
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 401, "{err}");
    app.stop().await;
}
