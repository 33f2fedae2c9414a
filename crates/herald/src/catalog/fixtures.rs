//! Event types the catalog's renderings are tested on (tests only).

use herald_store::EventType;
use serde_json::{json, Value};

pub(super) fn event_type(name: &str, description: &str, schemas: Option<Value>) -> EventType {
    let now = chrono::Utc::now();
    EventType {
        org_id: "org_test".to_string(),
        name: name.to_string(),
        description: description.to_string(),
        archived: false,
        deprecated: false,
        feature_flag: None,
        schemas,
        public: true,
        validate_payload: false,
        created_at: now,
        updated_at: now,
    }
}

pub(super) fn live_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["id", "status"],
        "properties": {
            "id": { "type": "string", "format": "uuid", "description": "The live session." },
            "status": { "enum": ["Planned", "Live", "Ended"] },
            "startsAt": { "type": "integer", "format": "unix-time" },
            "viewers": { "type": ["number", "null"] },
            "host": {
                "type": "object",
                "required": ["email"],
                "properties": {
                    "email": { "type": "string", "format": "email" },
                    "avatar": { "$ref": "#/$defs/image" }
                }
            },
            "answers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["question"],
                    "properties": {
                        "question": {
                            "type": "object",
                            "properties": { "label": { "type": "string" } }
                        }
                    }
                }
            },
            "tags": { "type": "array", "items": { "type": "string" } }
        },
        "examples": [
            { "id": "5f0c", "status": "Live", "note": "<script>alert(1)</script>" },
            { "id": "second" }
        ]
    })
}

/// A small catalog: two groups, one deprecated type, one without a schema,
/// given out of order.
pub(super) fn catalog_types() -> Vec<EventType> {
    let mut ended = event_type("live.ended", "A live session ended.", None);
    ended.deprecated = true;
    vec![
        event_type(
            "member.created",
            "A member <script>joined</script>.",
            Some(
                json!({ "1": { "type": "object", "properties": { "email": { "type": "string" } } } }),
            ),
        ),
        event_type(
            "live.updated",
            "A live session changed.",
            Some(json!({ "1": { "type": "object" }, "2": live_schema() })),
        ),
        ended,
    ]
}
