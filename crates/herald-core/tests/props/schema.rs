//! `herald_core::schema`: schemas an operator uploads and payloads a platform
//! sends, both from outside.

use herald_core::schema::{check_schema, pointer_segments, validate, CompiledSchema};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::gen;

/// A schema from JSON Schema's common keywords, with an instance that matches
/// it, built side by side.
fn schema_and_instance() -> impl Strategy<Value = (Value, Value)> {
    let leaf = prop_oneof![
        Just((json!({"type": "null"}), Value::Null)),
        any::<bool>().prop_map(|b| (json!({"type": "boolean"}), json!(b))),
        (-1000i64..1000, 0i64..1000).prop_map(|(min, span)| (
            json!({"type": "integer", "minimum": min, "maximum": min + span}),
            json!(min + span / 2)
        )),
        any::<i64>().prop_map(|n| (json!({"type": "integer", "format": "unix-time"}), json!(n))),
        (-1e9f64..1e9).prop_map(|x| (json!({"type": "number"}), json!(x))),
        "[a-z]{0,8}".prop_map(|s| (
            json!({"type": "string", "minLength": 0, "maxLength": 8, "pattern": "^[a-z]*$"}),
            json!(s)
        )),
        any::<String>().prop_map(|s| (json!({"type": "string", "format": "email"}), json!(s))),
        prop::collection::vec("[a-z]{1,4}", 1..4).prop_map(|options| {
            let pick = options[0].clone();
            (json!({"enum": options}), json!(pick))
        }),
        gen::value().prop_map(|v| (json!({"const": v.clone()}), v)),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|items| {
                // Every element matches the first element's schema: repeat it.
                let schema = items.first().map_or(json!({}), |(s, _)| s.clone());
                let instance: Vec<Value> = items.iter().map(|_| items[0].1.clone()).collect();
                (
                    json!({"type": "array", "items": schema, "maxItems": 4}),
                    Value::Array(instance),
                )
            }),
            prop::collection::btree_map("[a-z]{1,6}", (inner.clone(), any::<bool>()), 0..5)
                .prop_map(|members| {
                    let mut properties = Map::new();
                    let mut required = Vec::new();
                    let mut instance = Map::new();
                    for (key, ((schema, value), present)) in members {
                        properties.insert(key.clone(), schema);
                        if present {
                            required.push(key.clone());
                            instance.insert(key, value);
                        }
                    }
                    (
                        json!({
                            "type": "object",
                            "properties": properties,
                            "required": required,
                            "additionalProperties": false
                        }),
                        Value::Object(instance),
                    )
                }),
            (inner.clone(), inner).prop_map(|((a, x), (b, _))| { (json!({"anyOf": [a, b]}), x) }),
        ]
    })
}

/// Objects with schema keywords, right and wrong, at several levels.
fn schema_like() -> impl Strategy<Value = Value> {
    let keyword = prop::sample::select(vec![
        "type",
        "properties",
        "items",
        "prefixItems",
        "required",
        "enum",
        "const",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "format",
        "$ref",
        "$defs",
        "allOf",
        "anyOf",
        "oneOf",
        "not",
        "if",
        "then",
        "else",
        "additionalProperties",
        "$schema",
        "multipleOf",
        "uniqueItems",
        "dependentRequired",
        "patternProperties",
    ]);
    let value = prop_oneof![
        gen::value(),
        prop::sample::select(vec![
            json!("string"),
            json!("integer"),
            json!(["string", "null"]),
            json!("#"),
            json!("#/$defs/a"),
            json!("^a+$"),
            json!("(unclosed"),
            json!(0.1),
            json!(-1),
            json!({"a": {"type": "string"}}),
            json!(["a"]),
            json!({"type": "integer"}),
            json!("http://json-schema.org/draft-07/schema#"),
            json!("https://json-schema.org/draft/2020-12/schema"),
        ]),
    ];
    let level = prop::collection::btree_map(keyword, value, 0..5);
    level
        .prop_recursive(3, 20, 3, |inner| {
            (
                inner.clone(),
                prop::collection::btree_map("[a-c]", inner, 0..3),
            )
                .prop_map(|(mut top, nested)| {
                    top.insert("properties", json!(nested));
                    top
                })
        })
        .prop_map(|map| json!(map))
}

/// A JSON pointer written the way RFC 6901 asks.
fn pointer(segments: &[String]) -> String {
    segments
        .iter()
        .map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1")))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// A payload built to match a schema validates, whatever the limit.
    #[test]
    fn a_matching_payload_validates((schema, instance) in schema_and_instance()) {
        prop_assert_eq!(check_schema(&schema), Ok(()), "{}", schema);
        prop_assert_eq!(validate(&schema, &instance, 10), Ok(()), "{} / {}", schema, instance);
        prop_assert_eq!(validate(&schema, &instance, 0), Ok(()));
    }

    /// A required member of the wrong type is reported, at that member.
    #[test]
    fn a_wrong_member_is_reported_where_it_is(
        (schema, instance) in schema_and_instance(),
        key in "[A-Z]{1,4}",
    ) {
        // Wrap so there is always a required integer member to spoil.
        let schema = json!({
            "type": "object",
            "properties": {key.clone(): {"type": "integer"}, "rest": schema},
            "required": [key.clone(), "rest"]
        });
        let instance = json!({key.clone(): "not an integer", "rest": instance});
        let issues = validate(&schema, &instance, 10).expect_err("invalid");
        prop_assert_eq!(issues.len(), 1, "{:?}", issues);
        prop_assert_eq!(&issues[0].pointer, &format!("/{key}"));
    }

    /// Arbitrary schemas and payloads: no panic; `check_schema` and `compile`
    /// agree; the limit holds; an invalid payload always gets a reason, and
    /// every reason points at a place that is in the payload.
    #[test]
    fn any_schema_and_payload(schema in prop_oneof![schema_like(), gen::value()], instance in gen::value()) {
        let compiled = CompiledSchema::compile(&schema);
        prop_assert_eq!(check_schema(&schema).is_ok(), compiled.is_ok());
        match compiled {
            Err(_) => {
                let issues = validate(&schema, &instance, 10).expect_err("a bad schema");
                prop_assert_eq!(issues.len(), 1);
                prop_assert_eq!(issues[0].pointer.as_str(), "");
            }
            Ok(compiled) => {
                let silent = compiled.validate(&instance, 0);
                let told = compiled.validate(&instance, 3);
                prop_assert_eq!(silent.is_ok(), told.is_ok());
                if let (Err(none), Err(issues)) = (silent, told) {
                    prop_assert!(none.is_empty());
                    prop_assert!((1..=3).contains(&issues.len()), "{:?}", issues);
                    for issue in issues {
                        prop_assert!(
                            instance.pointer(&issue.pointer).is_some(),
                            "{:?} is not in {}", issue, instance
                        );
                    }
                }
            }
        }
    }

    /// `pointer_segments` (the 422 `loc`) undoes RFC 6901's escaping.
    #[test]
    fn pointer_segments_undo_escaping(
        segments in prop::collection::vec(prop_oneof!["[a~/01]{0,4}", any::<String>()], 0..5),
    ) {
        prop_assert_eq!(pointer_segments(&pointer(&segments)), segments);
    }
}
