//! The catalog as an OpenAPI 3.1 document: one `webhooks` entry per event
//! type, which code generators understand, and which
//! `POST /api/v1/event-type/import/openapi` reads back (`openapi_import.rs`).

use herald_store::EventType;
use serde_json::{json, Map, Value};

use super::openapi_import::DIALECT_2020_12;
use super::page::{first_example, latest_schema};

/// An OpenAPI 3.1 document with one `webhooks` entry per event type: the request
/// Herald sends, its signature headers, and what the receiver must answer.
pub fn render_openapi(title: &str, types: &[EventType]) -> Value {
    let mut sorted: Vec<&EventType> = types.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));

    let mut webhooks = Map::new();
    for et in sorted {
        webhooks.insert(et.name.clone(), json!({ "post": webhook_operation(et) }));
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": title, "version": "1" },
        "jsonSchemaDialect": DIALECT_2020_12,
        "paths": {},
        "webhooks": webhooks,
        "components": {},
    })
}

fn webhook_operation(et: &EventType) -> Value {
    let schema = latest_schema(et);
    let mut media = Map::new();
    let body_schema = match schema {
        Some(Value::Object(s)) => {
            let mut s = s.clone();
            // The document declares 2020-12 for all its schemas; a schema
            // written for another draft keeps its own `$schema`.
            if s.get("$schema").and_then(Value::as_str) == Some(DIALECT_2020_12) {
                s.remove("$schema");
            }
            Value::Object(s)
        }
        Some(other) => other.clone(),
        // Nothing published: say "any JSON" rather than invent a shape.
        None => json!({}),
    };
    media.insert("schema".to_string(), body_schema);
    if let Some(example) = schema.and_then(first_example) {
        media.insert("example".to_string(), example.clone());
    }

    json!({
        "summary": et.description,
        "operationId": et.name,
        "deprecated": et.deprecated,
        "parameters": signature_headers(),
        "requestBody": {
            "required": true,
            "content": { "application/json": Value::Object(media) },
        },
        "responses": {
            "2XX": { "description": "Any 2xx acknowledges the delivery; anything else is retried" },
        },
    })
}

/// The Standard Webhooks headers on every delivery.
fn signature_headers() -> Value {
    let header = |name: &str, description: &str| {
        json!({
            "name": name,
            "in": "header",
            "required": true,
            "schema": { "type": "string" },
            "description": description,
        })
    };
    json!([
        header(
            "webhook-id",
            "The message ID; the same on every retry of one message, so receivers can drop duplicates.",
        ),
        header(
            "webhook-timestamp",
            "When this attempt was sent, in seconds since the Unix epoch; reject ones too far from now.",
        ),
        header(
            "webhook-signature",
            "Space-separated signatures of `{webhook-id}.{webhook-timestamp}.{body}`: `v1,<base64>` for an HMAC-SHA256 (`whsec_`) secret, `v1a,<base64>` for an ed25519 (`whsk_`) one, verified with its `whpk_` public key.",
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::fixtures::{catalog_types, live_schema};

    #[test]
    fn openapi_has_one_webhook_per_type() {
        let doc = render_openapi("Events", &catalog_types());
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"], json!({ "title": "Events", "version": "1" }));
        assert_eq!(doc["jsonSchemaDialect"], DIALECT_2020_12);
        assert_eq!(doc["components"], json!({}));

        let webhooks = doc["webhooks"].as_object().unwrap();
        let names: Vec<&String> = webhooks.keys().collect();
        assert_eq!(names, ["live.ended", "live.updated", "member.created"]);

        let post = &webhooks["live.updated"]["post"];
        assert_eq!(post["operationId"], "live.updated");
        assert_eq!(post["summary"], "A live session changed.");
        assert_eq!(post["deprecated"], false);
        assert_eq!(post["requestBody"]["required"], true);
        let body = &post["requestBody"]["content"]["application/json"];
        assert_eq!(body["example"], live_schema()["examples"][0]);
        assert!(body["schema"].get("$schema").is_none());
        assert_eq!(body["schema"]["required"], json!(["id", "status"]));
        assert!(post["responses"]["2XX"]["description"].is_string());

        let headers: Vec<(&str, &str, bool)> = post["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap(),
                    p["in"].as_str().unwrap(),
                    p["required"] == true,
                )
            })
            .collect();
        assert_eq!(
            headers,
            [
                ("webhook-id", "header", true),
                ("webhook-timestamp", "header", true),
                ("webhook-signature", "header", true),
            ]
        );

        let ended = &webhooks["live.ended"]["post"];
        assert_eq!(ended["deprecated"], true);
        let ended_body = &ended["requestBody"]["content"]["application/json"];
        assert_eq!(ended_body["schema"], json!({}));
        assert!(ended_body.get("example").is_none());
    }
}
