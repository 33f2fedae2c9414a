//! The catalog loader on a file from outside: whatever loads is sorted, has
//! valid unique names, schemas that compile and examples that match them, and
//! loads again to the same entries when written back.
//!
//! The loader reads files, so each input is written to one file under the
//! temporary directory first.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use herald::catalog::{from_path, Entry};
use herald_core::name::validate_name;
use herald_core::schema::{check_schema, validate};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

fn file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        std::env::temp_dir().join(format!("herald-fuzz-catalog-{}.json", std::process::id()))
    })
}

fn write_back(entry: &Entry) -> Value {
    json!({
        "name": entry.name,
        "description": entry.description,
        "public": entry.public,
        "deprecated": entry.deprecated,
        "archived": entry.archived,
        "validatePayload": entry.validate_payload,
        "featureFlag": entry.feature_flag,
        "schemas": entry.schemas,
    })
}

fuzz_target!(|data: &[u8]| {
    let path = file();
    std::fs::write(path, data).expect("the temporary directory is writable");
    let Ok(entries) = from_path(path) else {
        return;
    };
    for pair in entries.windows(2) {
        assert!(pair[0].name < pair[1].name, "not sorted or not unique");
    }
    for entry in &entries {
        assert_eq!(validate_name(&entry.name), Ok(()));
        let versions = entry
            .schemas
            .as_ref()
            .map(|s| s.as_object().expect("an object"));
        for schema in versions.into_iter().flat_map(|v| v.values()) {
            assert_eq!(check_schema(schema), Ok(()));
            for example in schema
                .get("examples")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                assert_eq!(validate(schema, example, 1), Ok(()));
            }
        }
    }
    let written = Value::Array(entries.iter().map(write_back).collect());
    std::fs::write(path, serde_json::to_vec(&written).expect("serializes")).expect("writable");
    assert_eq!(from_path(path).expect("what loaded loads again"), entries);
});
