//! The public event catalog: the event types an organisation publishes, rendered
//! three ways from one model — an HTML page for people, JSON for tools, and an
//! OpenAPI 3.1 document whose `webhooks` section code generators understand.
//!
//! Callers pass the types already filtered to the public, non-archived ones; this
//! module only decides how they look.

use std::collections::BTreeMap;

use herald_store::EventType;
use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::Environment;
use serde::Serialize;
use serde_json::{json, Map, Value};

/// One row of a field table: a payload field flattened from the schema.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldRow {
    /// Dotted path from the payload root; array items add `[]`, as in
    /// `answers[].question.label`.
    pub path: String,
    /// A short human description of the type: `string (uuid)`, `unix time`,
    /// `enum: Planned | Live | Ended`, `array of object`, `number or null`.
    pub kind: String,
    pub required: bool,
    pub description: String,
}

/// Flattens a JSON Schema's `properties` into table rows, depth first, parents
/// before their children. `$ref`s are not followed: the catalog shows what the
/// publisher wrote, and resolving references would need the whole document.
pub fn field_rows(schema: &Value) -> Vec<FieldRow> {
    let mut rows = Vec::new();
    walk_properties(schema, "", &mut rows);
    rows
}

/// The human page: event types grouped by the first segment of their name, with
/// a table of contents, each type's field table and its first example.
pub fn render_html(title: &str, types: &[EventType]) -> Result<String, minijinja::Error> {
    let catalog = Catalog::new(title, types);
    let groups: Vec<HtmlGroup> = catalog
        .groups
        .iter()
        .map(|g| HtmlGroup {
            name: g.name,
            event_types: g
                .event_types
                .iter()
                .map(|entry| HtmlEntry {
                    entry,
                    example_json: entry.example.map(pretty),
                })
                .collect(),
        })
        .collect();

    let mut env = Environment::new();
    // Block tags on their own lines leave no blank lines behind.
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()?,
    );
    // The name ends in `.html`, which is what turns minijinja's auto-escaping on:
    // descriptions and examples are the publisher's text and may contain markup.
    env.add_template(TEMPLATE_NAME, TEMPLATE)?;
    let ctx = HtmlContext {
        title,
        groups,
        type_count: types.len(),
    };
    env.get_template(TEMPLATE_NAME)?.render(Serde(&ctx))
}

/// The same content as the page, as JSON:
/// `{"title", "groups": [{"name", "eventTypes": [{"name", "description",
/// "deprecated", "group", "schema", "example", "fields"}]}]}`.
pub fn render_json(title: &str, types: &[EventType]) -> Value {
    serde_json::to_value(Catalog::new(title, types))
        .expect("the catalog is plain strings, booleans and JSON values")
}

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
        "paths": {},
        "webhooks": webhooks,
        "components": {},
    })
}

const TEMPLATE_NAME: &str = "catalog.html";
const TEMPLATE: &str = include_str!("../../templates/catalog.html");

/// The page's model, shared by the HTML and JSON renderings so they cannot
/// drift apart.
#[derive(Serialize)]
struct Catalog<'a> {
    title: &'a str,
    groups: Vec<Group<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Group<'a> {
    name: &'a str,
    event_types: Vec<Entry<'a>>,
}

#[derive(Serialize)]
struct Entry<'a> {
    name: &'a str,
    description: &'a str,
    deprecated: bool,
    group: &'a str,
    schema: Option<&'a Value>,
    example: Option<&'a Value>,
    fields: Vec<FieldRow>,
}

/// What the template needs beyond the shared model: the example already
/// pretty-printed, so the template only has to escape it.
#[derive(Serialize)]
struct HtmlContext<'a> {
    title: &'a str,
    groups: Vec<HtmlGroup<'a>>,
    type_count: usize,
}

#[derive(Serialize)]
struct HtmlGroup<'a> {
    name: &'a str,
    event_types: Vec<HtmlEntry<'a>>,
}

#[derive(Serialize)]
struct HtmlEntry<'a> {
    #[serde(flatten)]
    entry: &'a Entry<'a>,
    example_json: Option<String>,
}

impl<'a> Catalog<'a> {
    fn new(title: &'a str, types: &'a [EventType]) -> Self {
        let mut by_group: BTreeMap<&str, Vec<Entry>> = BTreeMap::new();
        for et in types {
            let entry = Entry::new(et);
            by_group.entry(entry.group).or_default().push(entry);
        }
        let groups = by_group
            .into_iter()
            .map(|(name, mut event_types)| {
                event_types.sort_by(|a, b| a.name.cmp(b.name));
                Group { name, event_types }
            })
            .collect();
        Catalog { title, groups }
    }
}

impl<'a> Entry<'a> {
    fn new(et: &'a EventType) -> Self {
        let schema = latest_schema(et);
        Entry {
            name: &et.name,
            description: &et.description,
            deprecated: et.deprecated,
            group: group_of(&et.name),
            schema,
            example: schema.and_then(first_example),
            fields: schema.map(field_rows).unwrap_or_default(),
        }
    }
}

/// `member.created` belongs to `member`; a name without a dot is its own group.
fn group_of(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// Svix keeps schemas by version, `{"1": {...}, "2": {...}}`; the catalog shows
/// the newest. Keys that are not numbers are not versions and are skipped.
fn latest_schema(et: &EventType) -> Option<&Value> {
    et.schemas
        .as_ref()?
        .as_object()?
        .iter()
        .filter_map(|(k, v)| Some((k.parse::<u64>().ok()?, v)))
        .max_by_key(|(version, _)| *version)
        .map(|(_, v)| v)
}

fn first_example(schema: &Value) -> Option<&Value> {
    schema.get("examples")?.as_array()?.first()
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("a JSON value always serialises")
}

fn walk_properties(node: &Value, prefix: &str, rows: &mut Vec<FieldRow>) {
    let Some(properties) = node.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required: Vec<&str> = node
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();

    for (name, child) in properties {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        rows.push(FieldRow {
            path: path.clone(),
            kind: kind_of(child),
            required: required.contains(&name.as_str()),
            description: child
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        });
        if child.get("$ref").is_none() {
            walk_children(child, path, rows);
        }
    }
}

/// An object's fields continue the path with `.`; an array's items (or items of
/// items) continue it with `[]`.
fn walk_children(node: &Value, mut path: String, rows: &mut Vec<FieldRow>) {
    let mut node = node;
    while let Some(items) = node.get("items").filter(|_| has_type(node, "array")) {
        if items.get("$ref").is_some() {
            return;
        }
        path.push_str("[]");
        node = items;
    }
    walk_properties(node, &path, rows);
}

fn has_type(node: &Value, wanted: &str) -> bool {
    match node.get("type") {
        Some(Value::String(t)) => t == wanted,
        Some(Value::Array(ts)) => ts.iter().any(|t| t.as_str() == Some(wanted)),
        // Items without a declared type are still items.
        None => wanted == "array" && node.get("items").is_some(),
        Some(_) => false,
    }
}

fn kind_of(node: &Value) -> String {
    if node.get("$ref").is_some() {
        return "see schema".to_string();
    }
    if let Some(values) = node.get("enum").and_then(Value::as_array) {
        let values: Vec<String> = values.iter().map(literal).collect();
        return format!("enum: {}", values.join(" | "));
    }
    if let Some(value) = node.get("const") {
        return format!("const: {}", literal(value));
    }
    match node.get("type") {
        Some(Value::String(t)) => kind_of_type(t, node),
        Some(Value::Array(ts)) => {
            let kinds: Vec<String> = ts
                .iter()
                .filter_map(Value::as_str)
                .map(|t| kind_of_type(t, node))
                .collect();
            kinds.join(" or ")
        }
        _ => {
            if let Some(variants) = node
                .get("oneOf")
                .or_else(|| node.get("anyOf"))
                .and_then(Value::as_array)
            {
                let kinds: Vec<String> = variants.iter().map(kind_of).collect();
                kinds.join(" or ")
            } else if node.get("properties").is_some() {
                "object".to_string()
            } else if node.get("items").is_some() {
                kind_of_type("array", node)
            } else {
                "any".to_string()
            }
        }
    }
}

fn kind_of_type(t: &str, node: &Value) -> String {
    match (t, node.get("format").and_then(Value::as_str)) {
        ("array", _) => match node.get("items") {
            Some(items) if items.get("$ref").is_some() => "array (see schema)".to_string(),
            Some(items) => format!("array of {}", kind_of(items)),
            None => "array".to_string(),
        },
        // Svix's own schemas mark epoch seconds this way, on strings and integers.
        ("string" | "integer" | "number", Some("unix-time")) => "unix time".to_string(),
        ("string" | "integer" | "number", Some(format)) => format!("{t} ({format})"),
        _ => t.to_string(),
    }
}

/// Enum values as a reader would write them: strings bare, anything else as JSON.
fn literal(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn webhook_operation(et: &EventType) -> Value {
    let schema = latest_schema(et);
    let mut media = Map::new();
    let body_schema = match schema {
        Some(Value::Object(s)) => {
            let mut s = s.clone();
            // OpenAPI 3.1 fixes the dialect for the whole document.
            s.remove("$schema");
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

    fn event_type(name: &str, description: &str, schemas: Option<Value>) -> EventType {
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

    fn live_schema() -> Value {
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
    fn catalog_types() -> Vec<EventType> {
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

    /// The slice of the page holding one event type's article.
    fn article<'a>(html: &'a str, name: &str) -> &'a str {
        let start = html
            .find(&format!("<article class=\"event\" id=\"{name}\""))
            .unwrap_or_else(|| panic!("no article for {name}"));
        let end = html[start..].find("</article>").expect("article is closed");
        &html[start..start + end]
    }

    #[test]
    fn field_rows_flatten_nested_objects_and_arrays() {
        let rows = field_rows(&live_schema());
        let got: Vec<(&str, &str, bool)> = rows
            .iter()
            .map(|r| (r.path.as_str(), r.kind.as_str(), r.required))
            .collect();
        // Rows follow the schema's own order, each parent before its children.
        let want = vec![
            ("id", "string (uuid)", true),
            ("status", "enum: Planned | Live | Ended", true),
            ("startsAt", "unix time", false),
            ("viewers", "number or null", false),
            ("host", "object", false),
            ("host.email", "string (email)", true),
            ("host.avatar", "see schema", false),
            ("answers", "array of object", false),
            ("answers[].question", "object", true),
            ("answers[].question.label", "string", false),
            ("tags", "array of string", false),
        ];
        assert_eq!(got, want);
        assert_eq!(rows[0].description, "The live session.");
        assert_eq!(rows[1].description, "");
    }

    #[test]
    fn field_kinds() {
        let cases = [
            (json!({ "type": "string" }), "string"),
            (
                json!({ "type": "string", "format": "date-time" }),
                "string (date-time)",
            ),
            (
                json!({ "type": "string", "format": "unix-time" }),
                "unix time",
            ),
            (
                json!({ "type": ["string", "null"], "format": "uuid" }),
                "string (uuid) or null",
            ),
            (json!({ "enum": [1, 2, null] }), "enum: 1 | 2 | null"),
            (json!({ "const": "v1" }), "const: v1"),
            (
                json!({ "type": "array", "items": { "type": "array", "items": { "type": "integer" } } }),
                "array of array of integer",
            ),
            (
                json!({ "type": "array", "items": { "$ref": "#/$defs/x" } }),
                "array (see schema)",
            ),
            (json!({ "type": "array" }), "array"),
            (
                json!({ "oneOf": [{ "type": "string" }, { "type": "integer" }] }),
                "string or integer",
            ),
            (json!({ "properties": {} }), "object"),
            (json!({}), "any"),
            (
                json!({ "$ref": "#/$defs/x", "type": "object" }),
                "see schema",
            ),
        ];
        for (schema, want) in cases {
            assert_eq!(kind_of(&schema), want, "kind of {schema}");
        }
    }

    #[test]
    fn field_rows_without_properties_are_empty() {
        for schema in [
            json!({}),
            json!({ "type": "string" }),
            json!(null),
            json!({ "properties": 3 }),
        ] {
            assert_eq!(field_rows(&schema), vec![], "rows of {schema}");
        }
    }

    #[test]
    fn field_rows_do_not_follow_refs_or_walk_into_them() {
        let schema = json!({
            "properties": {
                "a": { "$ref": "#/$defs/a", "properties": { "hidden": { "type": "string" } } },
                "b": { "type": "array", "items": { "$ref": "#/$defs/b" } },
                "c": { "type": "array", "items": { "type": "array", "items": { "properties": { "d": { "type": "boolean" } } } } }
            }
        });
        let paths: Vec<String> = field_rows(&schema).into_iter().map(|r| r.path).collect();
        assert_eq!(paths, ["a", "b", "c", "c[][].d"]);
    }

    #[test]
    fn the_newest_numbered_schema_is_shown() {
        let cases = [
            (
                Some(json!({ "1": { "a": 1 }, "2": { "a": 2 } })),
                Some(json!({ "a": 2 })),
            ),
            (
                Some(json!({ "10": { "a": 10 }, "9": { "a": 9 } })),
                Some(json!({ "a": 10 })),
            ),
            (
                Some(json!({ "draft": { "a": 0 }, "1": { "a": 1 } })),
                Some(json!({ "a": 1 })),
            ),
            (Some(json!({})), None),
            (None, None),
        ];
        for (schemas, want) in cases {
            let et = event_type("a.b", "", schemas.clone());
            assert_eq!(latest_schema(&et), want.as_ref(), "schemas {schemas:?}");
        }
    }

    #[test]
    fn html_has_anchors_groups_tables_and_escaped_examples() {
        let html = render_html("Acme <events>", &catalog_types()).unwrap();

        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<html lang=\"en\">"));
        assert!(html.contains("<meta name=\"viewport\""));
        assert!(html.contains("<title>Acme &lt;events&gt;</title>"));
        assert!(html.contains("<h1>Acme &lt;events&gt;</h1>"));
        assert!(
            !html.contains("<script"),
            "no markup from the publisher survives"
        );

        // Groups in name order, each with a heading and a table-of-contents entry.
        let live = html.find("<h2>live</h2>").expect("live group heading");
        let member = html.find("<h2>member</h2>").expect("member group heading");
        assert!(live < member);
        for name in ["live.ended", "live.updated", "member.created"] {
            assert!(
                html.contains(&format!("id=\"{name}\"")),
                "anchor for {name}"
            );
            assert!(
                html.contains(&format!("<a href=\"#{name}\">")),
                "link to {name}"
            );
        }
        assert!(html.find("id=\"live.ended\"") < html.find("id=\"live.updated\""));

        let updated = article(&html, "live.updated");
        assert!(updated.contains("A live session changed."));
        assert!(updated.contains("<code>answers[].question.label</code>"));
        assert!(updated.contains("enum: Planned | Live | Ended"));
        // The first example only, pretty-printed and escaped.
        assert!(updated
            .contains("&quot;note&quot;: &quot;&lt;script&gt;alert(1)&lt;&#x2f;script&gt;&quot;"));
        assert!(updated.contains("  &quot;status&quot;: &quot;Live&quot;"));
        assert!(!updated.contains("second"));

        let member = article(&html, "member.created");
        assert!(member.contains("A member &lt;script&gt;joined&lt;&#x2f;script&gt;."));

        let ended = article(&html, "live.ended");
        assert!(ended.contains("No schema published."));
        assert!(!ended.contains("<table"));
        assert!(!updated.contains("No schema published."));
    }

    #[test]
    fn html_marks_only_deprecated_types() {
        let html = render_html("Events", &catalog_types()).unwrap();
        let cases = [
            ("live.ended", true),
            ("live.updated", false),
            ("member.created", false),
        ];
        for (name, deprecated) in cases {
            assert_eq!(
                article(&html, name).contains("class=\"badge\""),
                deprecated,
                "badge on {name}"
            );
        }
    }

    #[test]
    fn html_of_an_empty_catalog_says_so() {
        let html = render_html("Events", &[]).unwrap();
        assert!(html.contains("No event types are published yet."));
        assert!(html.contains("0 event types"));
    }

    #[test]
    fn json_groups_types_by_first_name_segment() {
        let doc = render_json("Events", &catalog_types());
        assert_eq!(doc["title"], "Events");

        let groups: Vec<(&str, Vec<&str>)> = doc["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                let names = g["eventTypes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|et| et["name"].as_str().unwrap())
                    .collect();
                (g["name"].as_str().unwrap(), names)
            })
            .collect();
        assert_eq!(
            groups,
            [
                ("live", vec!["live.ended", "live.updated"]),
                ("member", vec!["member.created"]),
            ]
        );

        let updated = &doc["groups"][0]["eventTypes"][1];
        assert_eq!(updated["group"], "live");
        assert_eq!(updated["deprecated"], false);
        assert_eq!(updated["description"], "A live session changed.");
        assert_eq!(updated["schema"], live_schema());
        assert_eq!(updated["example"], live_schema()["examples"][0]);
        assert_eq!(
            updated["fields"][0],
            json!({
                "path": "id", "kind": "string (uuid)", "required": true,
                "description": "The live session."
            })
        );

        let ended = &doc["groups"][0]["eventTypes"][0];
        assert_eq!(ended["deprecated"], true);
        assert_eq!(ended["schema"], Value::Null);
        assert_eq!(ended["example"], Value::Null);
        assert_eq!(ended["fields"], json!([]));
    }

    #[test]
    fn openapi_has_one_webhook_per_type() {
        let doc = render_openapi("Events", &catalog_types());
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"], json!({ "title": "Events", "version": "1" }));
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
