//! JSON Schema checks on schemas and payloads from outside: compiling and
//! validating never panic, `check_schema` and `compile` agree, the limit is
//! honoured, an invalid payload is always told at least one reason, and each
//! reason points at a place that exists in the payload.
//!
//! Input: the schema's JSON text, a 0xFF byte (never in UTF-8), and the
//! payload's JSON text.
#![no_main]

use herald_core::schema::{check_schema, pointer_segments, validate, CompiledSchema};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let (schema, instance) = match data.iter().position(|&b| b == 0xFF) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b"{}"[..]),
    };
    let (Ok(schema), Ok(instance)) = (
        serde_json::from_slice::<Value>(schema),
        serde_json::from_slice::<Value>(instance),
    ) else {
        return;
    };

    let compiled = CompiledSchema::compile(&schema);
    assert_eq!(check_schema(&schema).is_ok(), compiled.is_ok());
    let Ok(compiled) = compiled else {
        let issues = validate(&schema, &instance, 10).expect_err("a bad schema validates nothing");
        assert_eq!(issues.len(), 1);
        return;
    };

    let silent = compiled.validate(&instance, 0);
    let told = compiled.validate(&instance, 3);
    assert_eq!(silent.is_ok(), told.is_ok());
    assert_eq!(validate(&schema, &instance, 3), told);
    if let (Err(none), Err(issues)) = (silent, told) {
        assert!(none.is_empty());
        assert!((1..=3).contains(&issues.len()), "{issues:?}");
        for issue in issues {
            assert!(
                issue.pointer.is_empty() || issue.pointer.starts_with('/'),
                "{issue:?}"
            );
            // The segments a 422 reports lead to a real place in the payload.
            let mut at = Some(&instance);
            for segment in pointer_segments(&issue.pointer) {
                at = match at {
                    Some(Value::Object(members)) => members.get(&segment),
                    Some(Value::Array(items)) => {
                        segment.parse::<usize>().ok().and_then(|i| items.get(i))
                    }
                    _ => None,
                };
            }
            assert!(at.is_some(), "{issue:?} is not a place in {instance}");
        }
    }
});
