//! The field table of an event type: a JSON Schema's `properties` flattened
//! into rows (path, kind, required, description) for the catalog page and its
//! JSON.

use serde::Serialize;
use serde_json::Value;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::fixtures::live_schema;
    use serde_json::json;

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
}
