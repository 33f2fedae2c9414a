//! JSON Schema checks for event type schemas and the payloads sent against them.
//!
//! The work is done by the `jsonschema` crate; this module fixes how Herald uses
//! it. The draft is the one a schema names in `$schema`, or 2020-12 when it names
//! none. Nothing is fetched: a `$ref` to another document is an error rather than
//! a network request or a file read, because this crate does no I/O and a schema
//! uploaded by a user must not make the server reach out anywhere. `format` is an
//! annotation, never an assertion, so schemas may use formats of their own (such
//! as `unix-time`, which [`crate::dates`] reads) and a payload is not rejected
//! for a string a format checker happens to dislike.

use std::fmt;

use jsonschema::{Draft, ValidationError, Validator};
use serde_json::Value;

/// One problem: where (a JSON pointer like "/member/email", "" for the root) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaIssue {
    pub pointer: String,
    pub message: String,
}

/// A schema that has passed [`check_schema`], ready to validate many instances
/// without being compiled again for each.
#[derive(Debug)]
pub struct CompiledSchema(Validator);

impl CompiledSchema {
    /// Checks `schema` as [`check_schema`] does and compiles it.
    pub fn compile(schema: &Value) -> Result<CompiledSchema, SchemaIssue> {
        let draft = draft_of(schema)?;
        // The meta-schema check runs first, on its own, because its first error
        // points at the exact place in the schema (`/properties`), which is what
        // a user fixing their schema needs to see.
        jsonschema::meta::validate(schema).map_err(|error| issue(&error, error.to_string()))?;
        // Compiling finds what the meta-schema cannot: a `$ref` that resolves to
        // nothing or to another document, a `pattern` that is not a regex.
        jsonschema::options()
            .with_draft(draft)
            .offline()
            .should_validate_formats(false)
            .should_ignore_unknown_formats(true)
            .build(schema)
            .map(CompiledSchema)
            .map_err(|error| issue(&error, error.to_string()))
    }

    /// Validates `instance`; every failing place in it, in document order, at
    /// most `limit` issues. With a `limit` of 0 an invalid instance gives an
    /// empty list: the caller learns that it is invalid, and nothing more.
    pub fn validate(&self, instance: &Value, limit: usize) -> Result<(), Vec<SchemaIssue>> {
        if self.0.is_valid(instance) {
            return Ok(());
        }
        // The validator reports errors in the order of the schema's keywords,
        // which a reader of the payload cannot follow, so they are sorted by
        // where they sit in the instance. The sort is stable, so several errors
        // at one place keep the validator's order.
        let mut found: Vec<(Vec<usize>, SchemaIssue)> = self
            .0
            .iter_errors(instance)
            .map(|error| {
                // Masked: the message says what is wrong without quoting the
                // value, which may be large or private and whose place is
                // already in the pointer.
                let issue = issue(&error, error.masked().to_string());
                (document_position(instance, &issue.pointer), issue)
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Err(found
            .into_iter()
            .map(|(_, issue)| issue)
            .take(limit)
            .collect())
    }
}

/// Checks that `schema` is a valid JSON Schema (against its meta-schema). The pointer is the place IN THE SCHEMA.
pub fn check_schema(schema: &Value) -> Result<(), SchemaIssue> {
    CompiledSchema::compile(schema).map(drop)
}

/// Validates `instance` against `schema`; every failing place in the INSTANCE, in document order, at most `limit` issues.
///
/// A schema that does not pass [`check_schema`] gives one issue at the root that
/// describes the problem in the schema. To validate many instances against one
/// schema, compile it once with [`CompiledSchema::compile`].
pub fn validate(schema: &Value, instance: &Value, limit: usize) -> Result<(), Vec<SchemaIssue>> {
    match CompiledSchema::compile(schema) {
        Ok(compiled) => compiled.validate(instance, limit),
        Err(problem) => {
            let place = if problem.pointer.is_empty() {
                "its root".to_owned()
            } else {
                problem.pointer
            };
            Err(vec![SchemaIssue {
                pointer: String::new(),
                message: format!("the schema is invalid at {place}: {}", problem.message),
            }])
        }
    }
}

/// Pointer -> path segments for a 422 `loc` ("/answers/0/answer" -> ["answers", "0", "answer"]), unescaping ~1 and ~0.
///
/// The root, "", has no segments. A string without the leading "/" is read as
/// if it had one, so a malformed pointer still gives a usable location.
pub fn pointer_segments(pointer: &str) -> Vec<String> {
    if pointer.is_empty() {
        return Vec::new();
    }
    let pointer = pointer.strip_prefix('/').unwrap_or(pointer);
    // "~1" is replaced before "~0" as RFC 6901 asks, so "~01" becomes "~1"
    // rather than "/".
    pointer
        .split('/')
        .map(|segment| segment.replace("~1", "/").replace("~0", "~"))
        .collect()
}

impl fmt::Display for SchemaIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "at the root: {}", self.message)
        } else {
            write!(f, "at {}: {}", self.pointer, self.message)
        }
    }
}

impl std::error::Error for SchemaIssue {}

/// The draft `schema` is written for. A `$schema` that names none of the drafts
/// the `jsonschema` crate bundles is refused here: reading its meta-schema would
/// mean fetching it.
fn draft_of(schema: &Value) -> Result<Draft, SchemaIssue> {
    match Draft::default().detect(schema) {
        draft @ (Draft::Draft4
        | Draft::Draft6
        | Draft::Draft7
        | Draft::Draft201909
        | Draft::Draft202012) => Ok(draft),
        _ => Err(SchemaIssue {
            pointer: "/$schema".to_owned(),
            message: "unsupported $schema: use a JSON Schema draft from 4 to 2020-12, \
                      such as \"https://json-schema.org/draft/2020-12/schema\""
                .to_owned(),
        }),
    }
}

/// An issue at the place the error names. For a meta-schema or compile error
/// that place is in the schema; for a validation error it is in the instance.
fn issue(error: &ValidationError<'_>, message: String) -> SchemaIssue {
    SchemaIssue {
        pointer: error.instance_path().as_str().to_owned(),
        message,
    }
}

/// Where `pointer` sits in a pre-order walk of `instance`, as the position of
/// each step among its siblings. Sorting by this puts parents before their
/// children and earlier members before later ones. A step that does not exist
/// sorts last among its siblings.
fn document_position(instance: &Value, pointer: &str) -> Vec<usize> {
    let mut current = Some(instance);
    pointer_segments(pointer)
        .into_iter()
        .map(|segment| match current {
            Some(Value::Object(members)) => {
                let position = members.keys().position(|key| *key == segment);
                current = members.get(&segment);
                position.unwrap_or(usize::MAX)
            }
            Some(Value::Array(elements)) => {
                let index = segment.parse::<usize>().ok();
                current = index.and_then(|index| elements.get(index));
                index.unwrap_or(usize::MAX)
            }
            _ => {
                current = None;
                usize::MAX
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn good_schemas() {
        let table = [
            json!({}),
            json!(true),
            json!(false),
            json!({"type": "string"}),
            json!({
                "type": "object",
                "properties": {
                    "at": {"type": "integer", "format": "unix-time", "examples": [1715095714]},
                    "email": {"type": "string", "format": "email"},
                    "tags": {"type": "array", "items": {"type": "string"}}
                },
                "required": ["at"],
                "examples": [{"at": 1715095714, "email": "a@example.com"}]
            }),
            json!({"format": "something-nobody-defined"}),
            json!({"$defs": {"stamp": {"format": "unix-time"}}, "properties": {"at": {"$ref": "#/$defs/stamp"}}}),
            json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "prefixItems": [{"type": "integer"}]}),
            json!({"$schema": "http://json-schema.org/draft-07/schema#", "definitions": {"a": {}}, "properties": {"a": {"$ref": "#/definitions/a"}}}),
            json!({"$schema": "http://json-schema.org/draft-04/schema#", "type": "object"}),
            json!({"$schema": "https://json-schema.org/draft/2019-09/schema", "type": "object"}),
            json!({"pattern": "^[a-z]+$"}),
        ];
        for schema in table {
            assert_eq!(check_schema(&schema), Ok(()), "{schema}");
        }
    }

    #[test]
    fn bad_schemas_point_at_the_bad_place() {
        let table = [
            (json!({"type": "strnig"}), "/type"),
            (json!({"properties": 5}), "/properties"),
            (
                json!({"properties": {"a": {"type": "strnig"}}}),
                "/properties/a/type",
            ),
            (json!({"required": "a"}), "/required"),
            (json!({"minLength": -1}), "/minLength"),
            (json!({"items": {"type": 3}}), "/items/type"),
            (json!(5), ""),
            (json!("a schema"), ""),
            (
                json!({"$schema": "https://example.com/my-meta-schema"}),
                "/$schema",
            ),
            (json!({"$schema": 5}), "/$schema"),
        ];
        for (schema, pointer) in table {
            let issue = check_schema(&schema).expect_err(&schema.to_string());
            assert_eq!(issue.pointer, pointer, "{schema}: {}", issue.message);
            assert!(!issue.message.is_empty(), "{schema}");
        }
    }

    #[test]
    fn schemas_that_do_not_compile() {
        // These pass the meta-schema but cannot be used: the reference leads
        // nowhere, or somewhere Herald will not fetch, or the pattern is no regex.
        let table = [
            json!({"$ref": "#/$defs/missing"}),
            json!({"properties": {"a": {"$ref": "https://example.com/schema.json"}}}),
            json!({"$ref": "other.json"}),
            json!({"pattern": "(unclosed"}),
        ];
        for schema in table {
            let issue = check_schema(&schema).expect_err(&schema.to_string());
            assert!(!issue.message.is_empty(), "{schema}");
        }
    }

    #[test]
    fn validation() {
        let schema = json!({
            "type": "object",
            "properties": {
                "at": {"type": "integer", "format": "unix-time", "examples": [1715095714]},
                "email": {"type": "string", "format": "email"},
                "member": {
                    "type": "object",
                    "properties": {"email": {"type": "string"}, "age": {"minimum": 0}},
                    "required": ["email"]
                },
                "answers": {
                    "type": "array",
                    "items": {"properties": {"answer": {"type": "string"}}}
                }
            },
            "required": ["at"],
            "examples": [{"at": 1715095714}]
        });
        // An empty list of pointers means the instance is valid.
        let table: &[(&str, Value, &[&str])] = &[
            ("minimal", json!({"at": 1715095714}), &[]),
            (
                "formats are annotations, not assertions",
                json!({"at": 1715095714, "email": "not an e-mail address"}),
                &[],
            ),
            (
                "full",
                json!({"at": 1, "member": {"email": "a@b.c", "age": 3}, "answers": [{"answer": "yes"}]}),
                &[],
            ),
            ("missing required", json!({}), &[""]),
            ("wrong type at the root", json!([1]), &[""]),
            (
                "wrong type for a timestamp",
                json!({"at": "yesterday"}),
                &["/at"],
            ),
            (
                "nested",
                json!({"at": 1, "member": {"email": 5}}),
                &["/member/email"],
            ),
            (
                "in an array",
                json!({"at": 1, "answers": [{"answer": "a"}, {"answer": 2}]}),
                &["/answers/1/answer"],
            ),
            (
                "several places, and a missing property",
                json!({
                    "answers": [{"answer": 1}, {"answer": 2}],
                    "member": {"age": -1, "email": false}
                }),
                &[
                    "",
                    "/answers/0/answer",
                    "/answers/1/answer",
                    "/member/age",
                    "/member/email",
                ],
            ),
        ];
        for (name, instance, expected) in table {
            let got: Vec<String> = match validate(&schema, instance, 100) {
                Ok(()) => Vec::new(),
                Err(issues) => issues.into_iter().map(|i| i.pointer).collect(),
            };
            assert_eq!(got, *expected, "{name}");
        }
    }

    #[test]
    fn issues_come_in_document_order() {
        // The validator reports `properties` before `additionalProperties` and
        // both before `allOf`; the instance's own order (kept as written) is
        // z, m, a.
        let schema = json!({
            "allOf": [{"properties": {"a": {"type": "string"}}}],
            "properties": {"z": {"type": "string"}, "m": {"items": {"type": "string"}}},
            "additionalProperties": false
        });
        let instance = json!({"z": 1, "m": [1, "x", 3], "a": 1});
        let issues = validate(&schema, &instance, 10).expect_err("invalid");
        let pointers: Vec<&str> = issues.iter().map(|i| i.pointer.as_str()).collect();
        assert_eq!(pointers, ["", "/z", "/m/0", "/m/2", "/a"]);
    }

    #[test]
    fn validation_messages() {
        let schema = json!({
            "properties": {"n": {"type": "integer"}, "secret": {"const": "open sesame"}},
            "required": ["n"]
        });
        let table = [
            (json!({}), "", "\"n\" is a required property"),
            (json!({"n": "x"}), "/n", "value is not of type \"integer\""),
            // The value sent is not repeated back.
            (
                json!({"n": 1, "secret": "my password"}),
                "/secret",
                "\"open sesame\" was expected",
            ),
        ];
        for (instance, pointer, message) in table {
            let issues = validate(&schema, &instance, 10).expect_err(&instance.to_string());
            assert_eq!(
                issues,
                vec![SchemaIssue {
                    pointer: pointer.to_owned(),
                    message: message.to_owned()
                }],
                "{instance}"
            );
        }
    }

    #[test]
    fn limit() {
        let schema = json!({"items": {"type": "string"}});
        let instance = json!([1, 2, 3, 4, 5]);
        let table: &[(usize, &[&str])] = &[
            (0, &[]),
            (1, &["/0"]),
            (3, &["/0", "/1", "/2"]),
            (5, &["/0", "/1", "/2", "/3", "/4"]),
            (50, &["/0", "/1", "/2", "/3", "/4"]),
        ];
        for (limit, expected) in table {
            let issues = validate(&schema, &instance, *limit).expect_err("invalid");
            let pointers: Vec<&str> = issues.iter().map(|i| i.pointer.as_str()).collect();
            assert_eq!(&pointers, expected, "limit {limit}");
        }
        // A valid instance is valid whatever the limit.
        assert_eq!(validate(&schema, &json!(["a"]), 0), Ok(()));
    }

    #[test]
    fn validating_against_a_bad_schema_gives_one_issue() {
        let table = [
            (
                json!({"type": "strnig"}),
                "the schema is invalid at /type: ",
            ),
            (
                json!({"properties": 5}),
                "the schema is invalid at /properties: ",
            ),
            (json!(5), "the schema is invalid at its root: "),
            (
                json!({"$ref": "#/$defs/missing"}),
                "the schema is invalid at ",
            ),
            (
                json!({"$schema": "https://example.com/meta"}),
                "the schema is invalid at /$schema: ",
            ),
        ];
        for (schema, prefix) in table {
            let issues = validate(&schema, &json!({"a": 1}), 10).expect_err(&schema.to_string());
            assert_eq!(issues.len(), 1, "{schema}");
            assert_eq!(issues[0].pointer, "", "{schema}");
            assert!(
                issues[0].message.starts_with(prefix),
                "{schema}: {}",
                issues[0].message
            );
        }
    }

    #[test]
    fn the_schema_draft_is_respected() {
        // `prefixItems` means something in 2020-12 only; in draft 7 it is an
        // unknown keyword and checks nothing.
        let instance = json!([1]);
        let table = [
            (json!({"prefixItems": [{"type": "string"}]}), false),
            (
                json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "prefixItems": [{"type": "string"}]}),
                false,
            ),
            (
                json!({"$schema": "http://json-schema.org/draft-07/schema#", "prefixItems": [{"type": "string"}]}),
                true,
            ),
            (
                json!({"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "string"}]}),
                false,
            ),
        ];
        for (schema, valid) in table {
            assert_eq!(validate(&schema, &instance, 10).is_ok(), valid, "{schema}");
        }
    }

    #[test]
    fn compiled_once_validated_many_times() {
        let compiled = CompiledSchema::compile(&json!({"type": "integer", "format": "unix-time"}))
            .expect("valid schema");
        let table = [(json!(1), true), (json!(1.5), false), (json!("1"), false)];
        for (instance, valid) in table {
            assert_eq!(
                compiled.validate(&instance, 10).is_ok(),
                valid,
                "{instance}"
            );
        }
    }

    #[test]
    fn segments() {
        let table: &[(&str, &[&str])] = &[
            ("", &[]),
            ("/", &[""]),
            ("/answers/0/answer", &["answers", "0", "answer"]),
            ("/member/email", &["member", "email"]),
            ("/a~1b", &["a/b"]),
            ("/c~0d", &["c~d"]),
            ("/~01", &["~1"]),
            ("/~10", &["/0"]),
            ("//x", &["", "x"]),
            ("/x/", &["x", ""]),
            ("no/slash", &["no", "slash"]),
        ];
        for (pointer, expected) in table {
            assert_eq!(&pointer_segments(pointer), expected, "{pointer:?}");
        }
    }

    #[test]
    fn issues_display() {
        let table = [
            (
                SchemaIssue {
                    pointer: "".into(),
                    message: "bad".into(),
                },
                "at the root: bad",
            ),
            (
                SchemaIssue {
                    pointer: "/a/0".into(),
                    message: "bad".into(),
                },
                "at /a/0: bad",
            ),
        ];
        for (issue, expected) in table {
            assert_eq!(issue.to_string(), expected);
        }
    }
}
