//! Property tests for the catalog loader (`herald::catalog::from_path`): files
//! from outside, written to a temporary directory because the loader reads
//! files. The `catalog` fuzz target hunts the same properties for longer.

use std::path::Path;

use herald::catalog::{from_path, Entry};
use herald_core::name::validate_name;
use proptest::prelude::*;
use serde_json::{json, Value};

/// A small schema with an example that matches it.
fn schema_with_example() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| (json!({"type": "integer", "format": "unix-time"}), json!(n))),
        any::<String>().prop_map(|s| (json!({"type": "string"}), json!(s))),
        any::<bool>().prop_map(|b| (json!({"type": "boolean"}), json!(b))),
    ];
    prop::collection::btree_map("[a-zA-Z]{1,8}", leaf, 0..5).prop_map(|members| {
        let properties: serde_json::Map<String, Value> = members
            .iter()
            .map(|(k, (s, _))| (k.clone(), s.clone()))
            .collect();
        let example: serde_json::Map<String, Value> = members
            .iter()
            .map(|(k, (_, v))| (k.clone(), v.clone()))
            .collect();
        let required: Vec<&String> = members.keys().collect();
        json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "examples": [example]
        })
    })
}

fn entries() -> impl Strategy<Value = Vec<Entry>> {
    let fields = (
        any::<String>(),
        any::<[bool; 4]>(),
        prop::option::of("[a-z0-9._-]{1,20}"),
        prop::option::of(schema_with_example()),
    );
    prop::collection::btree_map("[A-Za-z0-9._-]{1,40}", fields, 0..6).prop_map(|by_name| {
        by_name
            .into_iter()
            .map(|(name, (description, flags, feature_flag, schema))| Entry {
                name,
                description,
                public: flags[0],
                deprecated: flags[1],
                archived: flags[2],
                validate_payload: flags[3],
                feature_flag,
                schemas: schema.map(|s| json!({"1": s})),
            })
            .collect()
    })
}

/// An entry as a catalog file writes it; defaults are sometimes left out.
fn to_json(entry: &Entry, terse: bool) -> Value {
    let mut out = json!({"name": entry.name, "description": entry.description});
    let fields = [
        ("public", json!(entry.public), !entry.public),
        ("deprecated", json!(entry.deprecated), !entry.deprecated),
        ("archived", json!(entry.archived), !entry.archived),
        (
            "validatePayload",
            json!(entry.validate_payload),
            !entry.validate_payload,
        ),
        (
            "featureFlag",
            json!(entry.feature_flag),
            entry.feature_flag.is_none(),
        ),
        ("schemas", json!(entry.schemas), entry.schemas.is_none()),
    ];
    for (key, value, is_default) in fields {
        if !(terse && is_default) {
            out[key] = value;
        }
    }
    out
}

/// Writes the entries as one file each, or all in one list.
fn write(dir: &Path, entries: &[Entry], one_file: bool, terse: bool) {
    if one_file {
        let all: Vec<Value> = entries.iter().map(|e| to_json(e, terse)).collect();
        std::fs::write(dir.join("all.json"), serde_json::to_vec(&all).unwrap()).unwrap();
    } else {
        for (i, entry) in entries.iter().enumerate() {
            let text = serde_json::to_vec_pretty(&to_json(entry, terse)).unwrap();
            std::fs::write(dir.join(format!("{i}.json")), text).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Good entries, written in either layout, load back as themselves, sorted
    /// by name.
    #[test]
    fn good_entries_load_back(entries in entries(), one_file: bool, terse: bool) {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &entries, one_file, terse);
        prop_assert_eq!(from_path(dir.path()).map_err(|e| format!("{e:#}")), Ok(entries));
    }

    /// One spoiled entry spoils the load, and the error names its file.
    #[test]
    fn a_spoiled_entry_is_refused(
        entries in entries().prop_filter("something to spoil", |e| !e.is_empty()),
        which: prop::sample::Index,
        how in 0..5u8,
        bad in "[^A-Za-z0-9._-]",
    ) {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &entries, false, false);
        let i = which.index(entries.len());
        let mut spoiled = to_json(&entries[i], false);
        match how {
            0 => spoiled["name"] = json!(format!("{}{bad}", entries[i].name)),
            1 => spoiled["colour"] = json!("red"),
            2 => spoiled["schemas"] = json!({"1": {"type": "integer", "examples": ["x"]}}),
            3 => spoiled["schemas"] = json!([{"type": "object"}]),
            _ => spoiled["schemas"] = json!({"1": {"type": "strnig"}}),
        }
        let file = format!("{i}.json");
        std::fs::write(dir.path().join(&file), serde_json::to_vec(&spoiled).unwrap()).unwrap();
        let error = from_path(dir.path()).map(|_| ()).map_err(|e| format!("{e:#}"));
        prop_assert!(
            error.as_ref().is_err_and(|e| e.contains(&file)),
            "{:?} ({})", error, how
        );
    }

    /// The same name in two files is refused.
    #[test]
    fn a_name_defined_twice_is_refused(
        entries in entries().prop_filter("something to repeat", |e| !e.is_empty()),
        which: prop::sample::Index,
    ) {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &entries, false, true);
        let again = to_json(&entries[which.index(entries.len())], true);
        std::fs::write(dir.path().join("again.json"), serde_json::to_vec(&again).unwrap()).unwrap();
        let error = from_path(dir.path()).map(|_| ()).map_err(|e| e.to_string());
        prop_assert!(
            error.as_ref().is_err_and(|e| e.contains("defined twice")),
            "{:?}", error
        );
    }

    /// Any bytes at all in a catalog file: no panic, and whatever loads has
    /// valid, sorted, unique names.
    #[test]
    fn any_bytes(bytes in prop_oneof![
        any::<Vec<u8>>(),
        entries().prop_map(|e| {
            let all: Vec<Value> = e.iter().map(|e| to_json(e, true)).collect();
            serde_json::to_vec(&all).unwrap()
        }).prop_flat_map(|text| (Just(text.clone()), any::<prop::sample::Index>(), any::<u8>()))
            .prop_map(|(mut text, at, byte)| {
                if !text.is_empty() {
                    let at = at.index(text.len());
                    text[at] = byte;
                }
                text
            }),
    ]) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("catalog.json");
        std::fs::write(&file, &bytes).unwrap();
        if let Ok(loaded) = from_path(&file) {
            for entry in &loaded {
                prop_assert_eq!(validate_name(&entry.name), Ok(()));
            }
            for pair in loaded.windows(2) {
                prop_assert!(pair[0].name < pair[1].name);
            }
        }
    }
}
