//! Event types read from an OpenAPI 3.1 document's `webhooks` (or
//! `x-webhooks`) section, as Svix's `POST /api/v1/event-type/import/openapi`
//! reads them; the reverse of `openapi.rs`, so Herald's own
//! `/catalog?format=openapi` imports back into the same event types.
//!
//! Each webhook's key is the event type's name. Its operation (`post`, or the
//! one operation the path item has) gives the description (`description`, else
//! `summary`), `deprecated`, the request body's JSON schema (Svix's
//! `schemas: {"1": ...}`; none for a missing or empty `{}` schema) and Svix's
//! extensions `x-svix-feature-flags` / `x-svix-feature-flag` and
//! `x-svix-group-name`. `$ref`s to `#/components/...` are inlined; other
//! `$ref`s (`#/$defs/...` inside a schema) are left as the schema wrote them.
//! A schema without `$schema` gets the document's `jsonSchemaDialect` when that
//! names a JSON Schema draft.
//!
//! Errors carry their place in the document as path segments (`["webhooks",
//! "member.created", "post", "deprecated"]`); the API puts them under
//! `body.spec` or `body.specRaw`.

use herald_core::name::validate_name;
use serde_json::{Map, Value};

/// The dialect Herald's own documents declare (`jsonSchemaDialect`), and the
/// one a schema without `$schema` is read in.
pub const DIALECT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// How deep `$ref`s to components may nest before the document is refused
/// (a component that refers to itself never ends).
const MAX_REF_DEPTH: usize = 32;

/// Methods a path item may hold, `post` first: a webhook is a POST.
const METHODS: [&str; 8] = [
    "post", "put", "patch", "get", "delete", "options", "head", "trace",
];

/// One event type as the document describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Webhook {
    pub name: String,
    pub description: String,
    pub deprecated: bool,
    /// `{"1": schema}`, or none when the body has no schema.
    pub schemas: Option<Value>,
    pub feature_flag: Option<String>,
    /// Svix's `x-svix-group-name`: answered, not stored (Herald's event types
    /// have no group).
    pub group_name: Option<String>,
    /// Where the schema sits in the document (for errors about it).
    pub schema_path: Vec<String>,
}

/// What is wrong with the document, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocError {
    pub path: Vec<String>,
    pub message: String,
}

impl DocError {
    fn at(path: &[&str], message: impl Into<String>) -> DocError {
        DocError {
            path: path.iter().map(|s| s.to_string()).collect(),
            message: message.into(),
        }
    }
}

/// A document sent as text: JSON when it starts with `{`, YAML otherwise.
pub fn parse_raw(text: &str) -> Result<Value, DocError> {
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text).map_err(|e| {
            DocError::at(
                &[],
                format!(
                    "is not valid JSON (line {}, column {}): {e}",
                    e.line(),
                    e.column()
                ),
            )
        });
    }
    let yaml: serde_norway::Value = serde_norway::from_str(text).map_err(|e| {
        let place = e
            .location()
            .map(|l| format!(" (line {}, column {})", l.line(), l.column()))
            .unwrap_or_default();
        DocError::at(&[], format!("is neither JSON nor valid YAML{place}: {e}"))
    })?;
    yaml_to_json(yaml, &mut Vec::new())
}

/// YAML to JSON. Keys that are numbers or booleans (`200:` in `responses`)
/// become their text, as OpenAPI means them.
fn yaml_to_json(value: serde_norway::Value, path: &mut Vec<String>) -> Result<Value, DocError> {
    use serde_norway::Value as Y;
    Ok(match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| DocError {
                        path: path.clone(),
                        message: format!("{n} is not a number JSON can hold"),
                    })?
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                path.push(i.to_string());
                out.push(yaml_to_json(item, path)?);
                path.pop();
            }
            Value::Array(out)
        }
        Y::Mapping(mapping) => {
            let mut out = Map::new();
            for (key, item) in mapping {
                let key = match key {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    _ => {
                        return Err(DocError {
                            path: path.clone(),
                            message: "has a key that is not text, a number or a boolean"
                                .to_string(),
                        })
                    }
                };
                path.push(key.clone());
                let item = yaml_to_json(item, path)?;
                path.pop();
                out.insert(key, item);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => yaml_to_json(tagged.value, path)?,
    })
}

/// The event types of `doc`'s `webhooks` and `x-webhooks`, in the document's
/// order. Names follow Svix's rule; a name in both sections is refused.
pub fn webhooks(doc: &Value) -> Result<Vec<Webhook>, DocError> {
    let Some(root) = doc.as_object() else {
        return Err(DocError::at(&[], "must be an OpenAPI document (an object)"));
    };
    let dialect = match root.get("jsonSchemaDialect") {
        None => None,
        Some(Value::String(d)) => Some(d.as_str()),
        Some(_) => return Err(DocError::at(&["jsonSchemaDialect"], "must be a string")),
    };
    let sections: Vec<&str> = ["webhooks", "x-webhooks"]
        .into_iter()
        .filter(|s| root.contains_key(*s))
        .collect();
    if sections.is_empty() {
        return Err(DocError::at(
            &["webhooks"],
            "the document has no webhooks (neither `webhooks` nor `x-webhooks`)",
        ));
    }
    let mut out: Vec<Webhook> = Vec::new();
    for section in sections {
        let Some(entries) = root[section].as_object() else {
            return Err(DocError::at(
                &[section],
                "must be an object of webhooks by name",
            ));
        };
        for (name, item) in entries {
            if out.iter().any(|w| &w.name == name) {
                return Err(DocError::at(
                    &[section, name],
                    "is defined in both `webhooks` and `x-webhooks`",
                ));
            }
            out.push(webhook(doc, dialect, section, name, item)?);
        }
    }
    Ok(out)
}

fn webhook(
    doc: &Value,
    dialect: Option<&str>,
    section: &str,
    name: &str,
    item: &Value,
) -> Result<Webhook, DocError> {
    let here = [section, name];
    validate_name(name)
        .map_err(|e| DocError::at(&here, format!("is not a valid event type name: {e}")))?;
    let item = resolve(doc, item, &here)?;
    let Some(item) = item.as_object() else {
        return Err(DocError::at(&here, "must be a path item (an object)"));
    };
    let Some(method) = METHODS.into_iter().find(|m| item.contains_key(*m)) else {
        return Err(DocError::at(
            &here,
            "has no operation: a webhook is described by its `post`",
        ));
    };
    let op_path = [section, name, method];
    let Some(op) = item[method].as_object() else {
        return Err(DocError::at(&op_path, "must be an operation (an object)"));
    };
    let text = |key: &str| -> Result<Option<String>, DocError> {
        match op.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(DocError::at(
                &[section, name, method, key],
                "must be a string",
            )),
        }
    };
    let description = match text("description")? {
        Some(d) if !d.is_empty() => d,
        _ => text("summary")?.unwrap_or_default(),
    };
    let deprecated = match op.get("deprecated") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(DocError::at(
                &[section, name, method, "deprecated"],
                "must be a boolean",
            ))
        }
    };
    let feature_flag = feature_flag(op, &op_path)?;
    let group_name = text("x-svix-group-name")?;
    if let Some(group) = &group_name {
        validate_name(group).map_err(|e| {
            DocError::at(
                &[section, name, method, "x-svix-group-name"],
                format!("is not a valid group name: {e}"),
            )
        })?;
    }
    let (schema, schema_path) = body_schema(doc, op, &op_path)?;
    let schemas = schema.map(|mut schema| {
        if let (Some(d), Value::Object(s)) = (dialect, &mut schema) {
            if is_json_schema_draft(d) && !s.contains_key("$schema") {
                s.insert("$schema".to_string(), Value::String(d.to_string()));
            }
        }
        let mut versions = Map::new();
        versions.insert("1".to_string(), schema);
        Value::Object(versions)
    });
    Ok(Webhook {
        name: name.to_string(),
        description,
        deprecated,
        schemas,
        feature_flag,
        group_name,
        schema_path,
    })
}

/// Svix's `x-svix-feature-flags` (a list) or `x-svix-feature-flag` (one).
/// Herald keeps one flag per event type, so a list of more is refused.
fn feature_flag(op: &Map<String, Value>, op_path: &[&str]) -> Result<Option<String>, DocError> {
    let at = |key: &str| {
        let mut p = op_path.to_vec();
        p.push(key);
        p.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let mut flags: Vec<(Vec<String>, String)> = Vec::new();
    match op.get("x-svix-feature-flags") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let mut path = at("x-svix-feature-flags");
                path.push(i.to_string());
                let Some(flag) = item.as_str() else {
                    return Err(DocError {
                        path,
                        message: "must be a string".to_string(),
                    });
                };
                flags.push((path, flag.to_string()));
            }
        }
        Some(_) => {
            return Err(DocError {
                path: at("x-svix-feature-flags"),
                message: "must be a list of strings".to_string(),
            })
        }
    }
    match op.get("x-svix-feature-flag") {
        None | Some(Value::Null) => {}
        Some(Value::String(flag)) => flags.push((at("x-svix-feature-flag"), flag.clone())),
        Some(_) => {
            return Err(DocError {
                path: at("x-svix-feature-flag"),
                message: "must be a string".to_string(),
            })
        }
    }
    flags.dedup_by(|a, b| a.1 == b.1);
    for (path, flag) in &flags {
        validate_name(flag).map_err(|e| DocError {
            path: path.clone(),
            message: format!("is not a valid feature flag: {e}"),
        })?;
    }
    match flags.len() {
        0 => Ok(None),
        1 => Ok(flags.pop().map(|(_, f)| f)),
        _ => Err(DocError {
            path: flags[1].0.clone(),
            message: "Herald keeps one feature flag per event type; this one is a second"
                .to_string(),
        }),
    }
}

/// The JSON schema of the request body (`application/json`, else the first
/// JSON media type), components inlined; none for no body, no schema, `{}` or
/// `true` (any JSON).
fn body_schema(
    doc: &Value,
    op: &Map<String, Value>,
    op_path: &[&str],
) -> Result<(Option<Value>, Vec<String>), DocError> {
    let mut path: Vec<&str> = op_path.to_vec();
    let owned = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let Some(body) = op.get("requestBody") else {
        return Ok((None, owned(&path)));
    };
    path.push("requestBody");
    let body = resolve(doc, body, &path)?;
    let Some(body) = body.as_object() else {
        return Err(DocError::at(&path, "must be a request body (an object)"));
    };
    let Some(content) = body.get("content") else {
        return Ok((None, owned(&path)));
    };
    path.push("content");
    let Some(content) = content.as_object() else {
        return Err(DocError::at(&path, "must be an object of media types"));
    };
    let media_type = if content.contains_key("application/json") {
        Some("application/json")
    } else {
        content
            .keys()
            .find(|k| k.contains("json"))
            .map(String::as_str)
    };
    let Some(media_type) = media_type else {
        return Ok((None, owned(&path)));
    };
    path.push(media_type);
    let Some(media) = content[media_type].as_object() else {
        return Err(DocError::at(&path, "must be a media type object"));
    };
    let Some(schema) = media.get("schema") else {
        return Ok((None, owned(&path)));
    };
    path.push("schema");
    let schema = inline_refs(doc, schema, &path)?;
    let any = match &schema {
        Value::Object(s) => s.is_empty(),
        Value::Bool(true) => true,
        _ => false,
    };
    Ok((if any { None } else { Some(schema) }, owned(&path)))
}

/// `value` itself, or what its `$ref` (to `#/components/...` or any local
/// pointer) points at, for path items and request bodies.
fn resolve<'a>(doc: &'a Value, value: &'a Value, path: &[&str]) -> Result<&'a Value, DocError> {
    let mut current = value;
    for _ in 0..MAX_REF_DEPTH {
        match current.get("$ref") {
            Some(Value::String(r)) => current = follow(doc, r, path)?,
            Some(_) => {
                let mut p = path.to_vec();
                p.push("$ref");
                return Err(DocError::at(&p, "must be a string"));
            }
            None => return Ok(current),
        }
    }
    Err(DocError::at(
        path,
        "has $refs nested too deep (or in a cycle)",
    ))
}

/// Where the local reference `r` points in `doc`.
fn follow<'a>(doc: &'a Value, r: &str, path: &[&str]) -> Result<&'a Value, DocError> {
    let mut p = path.to_vec();
    p.push("$ref");
    let Some(pointer) = r.strip_prefix('#') else {
        return Err(DocError::at(
            &p,
            format!("{r:?} is not a reference inside this document; only `#/...` ones are read"),
        ));
    };
    doc.pointer(pointer)
        .ok_or_else(|| DocError::at(&p, format!("{r:?} points at nothing in the document")))
}

/// A copy of `schema` with every `$ref` to `#/components/...` replaced by what
/// it points at (its siblings kept beside it, as JSON Schema 2020-12 allows).
/// Other `$ref`s belong to the schema (`#/$defs/...`) and stay.
fn inline_refs(doc: &Value, schema: &Value, path: &[&str]) -> Result<Value, DocError> {
    let mut inliner = Inliner {
        doc,
        path,
        budget: MAX_INLINED_VALUES,
    };
    inliner.copy(schema, 0, 0)
}

/// How many JSON values one schema may hold once its `$ref`s are inlined: a
/// component used twice by one used twice, 32 deep, would be billions.
const MAX_INLINED_VALUES: usize = 100_000;

/// How deep the inlined schema may nest (the copy recurses once per level).
const MAX_NESTING: usize = 256;

struct Inliner<'a> {
    doc: &'a Value,
    path: &'a [&'a str],
    budget: usize,
}

impl Inliner<'_> {
    fn copy(&mut self, schema: &Value, refs: usize, level: usize) -> Result<Value, DocError> {
        if self.budget == 0 {
            return Err(DocError::at(
                self.path,
                format!(
                    "is too large once its $refs are inlined (more than {MAX_INLINED_VALUES} values)"
                ),
            ));
        }
        self.budget -= 1;
        if level > MAX_NESTING {
            return Err(DocError::at(
                self.path,
                format!("nests deeper than {MAX_NESTING} levels once its $refs are inlined"),
            ));
        }
        match schema {
            Value::Object(members) => {
                if let Some(Value::String(r)) = members.get("$ref") {
                    if r.starts_with("#/components/") {
                        if refs >= MAX_REF_DEPTH {
                            return Err(DocError::at(
                                self.path,
                                format!(
                                    "{r:?} nests too deep (a schema that contains itself \
                                     cannot be imported)"
                                ),
                            ));
                        }
                        let target = follow(self.doc, r, self.path)?;
                        let mut inlined = self.copy(target, refs + 1, level)?;
                        if let Value::Object(out) = &mut inlined {
                            for (k, v) in members {
                                if k != "$ref" {
                                    let v = self.copy(v, refs, level + 1)?;
                                    out.insert(k.clone(), v);
                                }
                            }
                        }
                        return Ok(inlined);
                    }
                }
                let mut out = Map::new();
                for (k, v) in members {
                    out.insert(k.clone(), self.copy(v, refs, level + 1)?);
                }
                Ok(Value::Object(out))
            }
            Value::Array(items) => items
                .iter()
                .map(|v| self.copy(v, refs, level + 1))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            other => Ok(other.clone()),
        }
    }
}

/// A `$schema` Herald reads (drafts 4 to 2020-12), not OpenAPI's own dialect.
fn is_json_schema_draft(dialect: &str) -> bool {
    dialect.starts_with("https://json-schema.org/draft/")
        || dialect.starts_with("http://json-schema.org/draft-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::fixtures::catalog_types;
    use crate::catalog::openapi::render_openapi;
    use serde_json::json;

    fn doc(webhooks: Value) -> Value {
        json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "webhooks": webhooks})
    }

    #[test]
    fn herald_s_own_document_reads_back_into_its_event_types() {
        let types = catalog_types();
        let read = webhooks(&render_openapi("Events", &types)).unwrap();
        let mut sorted = types.clone();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(read.len(), sorted.len());
        for (w, et) in read.iter().zip(&sorted) {
            assert_eq!(w.name, et.name);
            assert_eq!(w.description, et.description);
            assert_eq!(w.deprecated, et.deprecated, "{}", w.name);
            // The document declares 2020-12, so a schema without `$schema`
            // reads back naming it.
            let latest = et.latest_schema().filter(|s| *s != &json!({})).map(|s| {
                let mut s = s.clone();
                s.as_object_mut()
                    .unwrap()
                    .entry("$schema")
                    .or_insert(json!(DIALECT_2020_12));
                s
            });
            assert_eq!(
                w.schemas.as_ref().map(|s| &s["1"]),
                latest.as_ref(),
                "{}",
                w.name
            );
        }
    }

    #[test]
    fn svix_s_extensions_components_and_yaml_are_read() {
        let yaml = r#"
openapi: 3.1.0
info: {title: t, version: "1"}
x-webhooks:
  pet.new:
    post:
      summary: A pet was added
      x-svix-feature-flags: [beta]
      x-svix-group-name: pets
      requestBody:
        $ref: '#/components/requestBodies/Pet'
      responses:
        200: {description: ok}
components:
  requestBodies:
    Pet:
      content:
        application/json:
          schema: {$ref: '#/components/schemas/Pet'}
  schemas:
    Pet:
      type: object
      properties:
        owner: {$ref: '#/components/schemas/Owner', description: who}
    Owner: {type: string}
"#;
        let read = webhooks(&parse_raw(yaml).unwrap()).unwrap();
        assert_eq!(read.len(), 1);
        let w = &read[0];
        assert_eq!(w.name, "pet.new");
        assert_eq!(w.description, "A pet was added");
        assert_eq!(w.feature_flag.as_deref(), Some("beta"));
        assert_eq!(w.group_name.as_deref(), Some("pets"));
        assert_eq!(
            w.schemas,
            Some(json!({"1": {"type": "object", "properties": {
                "owner": {"type": "string", "description": "who"}}}}))
        );
    }

    #[test]
    fn bad_documents_say_where() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (json!([]), vec![]),
            (json!({"openapi": "3.1.0"}), vec!["webhooks"]),
            (doc(json!([])), vec!["webhooks"]),
            (
                doc(json!({"bad name!": {"post": {}}})),
                vec!["webhooks", "bad name!"],
            ),
            (doc(json!({"a.b": {}})), vec!["webhooks", "a.b"]),
            (
                doc(json!({"a.b": {"post": {"deprecated": "yes"}}})),
                vec!["webhooks", "a.b", "post", "deprecated"],
            ),
            (
                doc(json!({"a.b": {"post": {"x-svix-feature-flags": ["x", "y"]}}})),
                vec!["webhooks", "a.b", "post", "x-svix-feature-flags", "1"],
            ),
            (
                doc(
                    json!({"a.b": {"post": {"requestBody": {"content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Nope"}}}}}}}),
                ),
                vec![
                    "webhooks",
                    "a.b",
                    "post",
                    "requestBody",
                    "content",
                    "application/json",
                    "schema",
                    "$ref",
                ],
            ),
        ];
        for (document, path) in cases {
            let err = webhooks(&document).unwrap_err();
            assert_eq!(err.path, path, "{document}: {}", err.message);
        }
        // A schema that contains itself is refused, not followed for ever.
        let mut cyclic = doc(json!({"a.b": {"post": {"requestBody": {"content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}}}}}));
        cyclic["components"] = json!({"schemas": {"Node": {"type": "object",
            "properties": {"next": {"$ref": "#/components/schemas/Node"}}}}});
        assert!(webhooks(&cyclic)
            .unwrap_err()
            .message
            .contains("nests too deep"));

        assert!(parse_raw("{not json")
            .unwrap_err()
            .message
            .contains("line 1"));
        assert!(parse_raw("a: [unclosed").is_err());
    }
}
