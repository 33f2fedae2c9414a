//! `POST /api/v1/event-type/import/openapi` through the official Svix SDK:
//! event types from an OpenAPI document's webhooks, a dry run, `replaceAll`,
//! a bad document's 422, and the round trip of Herald's own
//! `/catalog?format=openapi` into another organisation.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use svix::api::{EventTypeListOptions, Svix};
use svix::error::Error as SvixError;
use svix::models::{EventTypeImportOpenApiIn, EventTypeIn, EventTypeOut};

use crate::support::{Scope, TestApp};

/// Every event type of the organisation, archived ones included, by name.
async fn all_types(svix: &Svix) -> Vec<EventTypeOut> {
    let out = svix
        .event_type()
        .list(Some(EventTypeListOptions {
            include_archived: Some(true),
            with_content: Some(true),
            limit: Some(250),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert!(out.done);
    out.data
}

fn find<'a>(types: &'a [EventTypeOut], name: &str) -> &'a EventTypeOut {
    types
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no event type {name}"))
}

fn import(spec: Value) -> EventTypeImportOpenApiIn {
    EventTypeImportOpenApiIn {
        spec: Some(spec),
        ..Default::default()
    }
}

/// Two webhooks: one with a schema behind `$ref`s and Svix's extensions, one
/// deprecated with no body.
fn small_document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Pets", "version": "1"},
        "webhooks": {
            "pet.created": {"post": {
                "summary": "Short",
                "description": "A pet was created.",
                "x-svix-feature-flags": ["beta-pets"],
                "x-svix-group-name": "pets",
                "requestBody": {"content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Pet"}}}},
                "responses": {"200": {"description": "ok"}}
            }},
            "pet.gone": {"post": {
                "summary": "A pet left.",
                "deprecated": true,
                "responses": {"200": {"description": "ok"}}
            }}
        },
        "components": {"schemas": {"Pet": {
            "type": "object",
            "required": ["id"],
            "properties": {"id": {"type": "string"}},
            "examples": [{"id": "p1"}]
        }}}
    })
}

#[tokio::test]
async fn a_document_s_webhooks_become_event_types() {
    let app = TestApp::spawn().await;
    let svix = app.svix();
    // An archived event type the document names is brought back.
    svix.event_type()
        .create(
            EventTypeIn {
                archived: Some(true),
                ..EventTypeIn::new("pet.gone".into(), "old".into())
            },
            None,
        )
        .await
        .unwrap();

    let out = svix
        .event_type()
        .import_openapi(import(small_document()), None)
        .await
        .unwrap();
    assert_eq!(out.data.modified, ["pet.created", "pet.gone"]);
    assert!(out.data.to_modify.is_none());

    let types = all_types(&svix).await;
    assert_eq!(types.len(), 2);
    let created = find(&types, "pet.created");
    assert_eq!(created.description, "A pet was created.");
    assert!(!created.deprecated);
    assert_eq!(created.archived, Some(false));
    assert_eq!(
        created.schemas,
        Some(json!({"1": {
            "type": "object",
            "required": ["id"],
            "properties": {"id": {"type": "string"}},
            "examples": [{"id": "p1"}]
        }}))
    );
    assert_eq!(created.feature_flag.as_deref(), Some("beta-pets"));
    let gone = find(&types, "pet.gone");
    assert_eq!(gone.description, "A pet left.");
    assert!(gone.deprecated);
    assert_eq!(gone.archived, Some(false));
    assert_eq!(gone.schemas, None);

    // The same document again changes nothing; as YAML text too.
    let out = svix
        .event_type()
        .import_openapi(import(small_document()), None)
        .await
        .unwrap();
    assert!(out.data.modified.is_empty(), "{:?}", out.data.modified);
    let yaml = "openapi: 3.1.0\ninfo: {title: Pets, version: '1'}\nwebhooks:\n  pet.gone:\n    post:\n      summary: A pet left for good.\n      deprecated: true\n";
    let out = svix
        .event_type()
        .import_openapi(
            EventTypeImportOpenApiIn {
                spec_raw: Some(yaml.into()),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(out.data.modified, ["pet.gone"]);
    let gone = svix.event_type().get("pet.gone".into()).await.unwrap();
    assert_eq!(gone.description, "A pet left for good.");
    app.stop().await;
}

#[tokio::test]
async fn a_dry_run_answers_what_would_change_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let svix = app.svix();
    svix.event_type()
        .create(
            EventTypeIn::new("other.thing".into(), "Not in the document".into()),
            None,
        )
        .await
        .unwrap();

    let out = svix
        .event_type()
        .import_openapi(
            EventTypeImportOpenApiIn {
                spec: Some(small_document()),
                dry_run: Some(true),
                replace_all: Some(true),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        out.data.modified,
        ["pet.created", "pet.gone", "other.thing"]
    );
    let to_modify = out.data.to_modify.expect("a dry run answers to_modify");
    let names: Vec<&str> = to_modify.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["pet.created", "pet.gone"]);
    assert_eq!(to_modify[0].group_name.as_deref(), Some("pets"));
    assert_eq!(to_modify[0].description, "A pet was created.");
    assert_eq!(
        to_modify[0].schemas.as_ref().unwrap()["1"]["required"],
        json!(["id"])
    );
    assert!(to_modify[1].deprecated);

    // Nothing written: the one event type there was, as it was.
    let types = all_types(&svix).await;
    assert_eq!(types.len(), 1);
    assert_eq!(types[0].name, "other.thing");
    assert_eq!(types[0].archived, Some(false));
    app.stop().await;
}

#[tokio::test]
async fn replace_all_archives_the_event_types_the_document_does_not_name() {
    let app = TestApp::spawn().await;
    let svix = app.svix();
    for name in ["other.thing", "pet.created"] {
        svix.event_type()
            .create(EventTypeIn::new(name.into(), "before".into()), None)
            .await
            .unwrap();
    }
    // Without replaceAll the others stay.
    svix.event_type()
        .import_openapi(import(small_document()), None)
        .await
        .unwrap();
    assert_eq!(
        find(&all_types(&svix).await, "other.thing").archived,
        Some(false)
    );

    let out = svix
        .event_type()
        .import_openapi(
            EventTypeImportOpenApiIn {
                spec: Some(small_document()),
                replace_all: Some(true),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(out.data.modified, ["other.thing"]);
    let types = all_types(&svix).await;
    assert_eq!(find(&types, "other.thing").archived, Some(true));
    assert_eq!(find(&types, "pet.created").archived, Some(false));
    assert_eq!(
        find(&types, "pet.created").description,
        "A pet was created."
    );
    assert_eq!(find(&types, "pet.gone").archived, Some(false));
    app.stop().await;
}

#[tokio::test]
async fn a_bad_document_is_a_422_that_says_where() {
    let app = TestApp::spawn().await;
    let svix = app.svix();
    let loc_of = |e: SvixError| -> Vec<String> {
        match e {
            SvixError::Validation(c) => {
                assert_eq!(c.status.as_u16(), 422);
                c.payload.unwrap().detail[0].loc.clone()
            }
            other => panic!("expected a 422, got {other:?}"),
        }
    };

    let mut bad_example = small_document();
    bad_example["components"]["schemas"]["Pet"]["examples"] = json!([{"id": 7}]);
    let mut bad_name = small_document();
    bad_name["webhooks"]["pet created!"] = json!({"post": {}});
    let mut bad_flag = small_document();
    bad_flag["webhooks"]["pet.gone"]["post"]["deprecated"] = json!("yes");
    let cases: Vec<(EventTypeImportOpenApiIn, Vec<&str>)> = vec![
        (
            import(bad_example),
            vec![
                "body",
                "spec",
                "webhooks",
                "pet.created",
                "post",
                "requestBody",
                "content",
                "application/json",
                "schema",
                "examples",
                "0",
                "id",
            ],
        ),
        (
            import(bad_name),
            vec!["body", "spec", "webhooks", "pet created!"],
        ),
        (
            import(bad_flag),
            vec!["body", "spec", "webhooks", "pet.gone", "post", "deprecated"],
        ),
        (
            import(json!({"openapi": "3.1.0"})),
            vec!["body", "spec", "webhooks"],
        ),
        (
            EventTypeImportOpenApiIn {
                spec_raw: Some("webhooks: [unclosed".into()),
                ..Default::default()
            },
            vec!["body", "specRaw"],
        ),
        (EventTypeImportOpenApiIn::default(), vec!["body", "spec"]),
    ];
    for (input, want) in cases {
        let err = svix
            .event_type()
            .import_openapi(input, None)
            .await
            .unwrap_err();
        assert_eq!(loc_of(err), want);
    }
    // An application's token may not import.
    let app_id = app.create_app("one").await;
    let (status, body) = app
        .call(
            Some(&app.app_token(&app_id)),
            Method::POST,
            "/api/v1/event-type/import/openapi",
            Some(json!({"spec": small_document()})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // Nothing was written by any of them.
    assert!(all_types(&svix).await.is_empty());

    // Sending both is refused the same way, with a sentence saying so.
    let (status, body) = app
        .post_json(
            "/api/v1/event-type/import/openapi",
            json!({"spec": small_document(), "specRaw": "{}"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "spec"]));
    assert!(body["detail"][0]["msg"]
        .as_str()
        .unwrap()
        .contains("exactly one"));
    app.stop().await;
}

#[tokio::test]
async fn herald_s_own_catalog_document_imports_into_the_same_event_types() {
    let app = TestApp::seeded().await;
    let source = app.svix();
    // Make the catalog say more than the seed does: a deprecated type, and one
    // whose schema is written for draft 7.
    svix_patch_deprecated(&app, "member.updated").await;
    source
        .event_type()
        .create(
            EventTypeIn {
                schemas: Some(json!({"1": {
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object",
                    "definitions": {"n": {"type": "integer"}},
                    "properties": {"n": {"$ref": "#/definitions/n"}},
                    "examples": [{"n": 1}]
                }})),
                ..EventTypeIn::new("legacy.ping".into(), "An old ping.".into())
            },
            None,
        )
        .await
        .unwrap();
    let (status, _) = app
        .call(
            Some(&app.token),
            Method::PATCH,
            "/api/v1/event-type/legacy.ping",
            Some(json!({"public": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let r = app
        .http
        .get(app.url("/catalog?format=openapi"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let document: Value = r.json().await.unwrap();

    let target = app.svix_with_token(&app.token_for(Scope::Org("org_imported")));
    let out = target
        .event_type()
        .import_openapi(import(document.clone()), None)
        .await
        .unwrap();
    assert_eq!(out.data.modified.len(), 15);

    let mut want = all_types(&source).await;
    want.retain(|t| t.archived != Some(true));
    let got = all_types(&target).await;
    let summary = |types: &[EventTypeOut]| -> Vec<Value> {
        types
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "description": t.description,
                    "deprecated": t.deprecated,
                    "archived": t.archived,
                    "schemas": t.schemas,
                    "groupName": t.group_name,
                    "featureFlag": t.feature_flag,
                })
            })
            .collect()
    };
    assert_eq!(summary(&got), summary(&want));
    assert!(find(&got, "member.updated").deprecated);

    // And the imported organisation's own document is the same document.
    // Imported event types are not public (Herald's own flag; Svix has none),
    // so publish them, then compare the documents.
    for t in &got {
        let (status, body) = app
            .call(
                Some(&app.token_for(Scope::Org("org_imported"))),
                Method::PATCH,
                &format!("/api/v1/event-type/{}", t.name),
                Some(json!({"public": true})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let again: Value = app
        .http
        .get(app.url("/catalog/org_imported?format=openapi"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again, document);
    app.stop().await;
}

async fn svix_patch_deprecated(app: &TestApp, name: &str) {
    let (status, body) = app
        .call(
            Some(&app.token),
            Method::PATCH,
            &format!("/api/v1/event-type/{name}"),
            Some(json!({"deprecated": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
