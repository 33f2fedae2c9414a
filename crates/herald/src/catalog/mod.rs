//! Event catalogs as data: a directory of JSON files, one event type each, loaded
//! into an organisation's event types. The Spot catalog (`catalog/spot/` in the
//! repository) is embedded in the binary as the default; any platform ships its
//! own directory the same way. `page` renders a catalog for people and tools
//! (`fields` its field tables, `openapi` its OpenAPI document);
//! `openapi_import` reads such a document (Herald's or any OpenAPI 3.1 one)
//! back into event types.

pub mod fields;
#[cfg(test)]
mod fixtures;
pub mod formats;
pub mod openapi;
pub mod openapi_import;
pub mod page;

use std::path::Path;

use anyhow::{bail, Context};
use chrono::Utc;
use herald_core::name::validate_name;
use herald_core::schema::{check_schema, validate};
use herald_store::{EventType, Page, Store};
use include_dir::{include_dir, Dir};
use serde::Deserialize;
use serde_json::Value;

/// The catalog Herald ships: the 14 event types of the Spot platform.
static SPOT: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../catalog/spot");

/// One event type as a catalog file describes it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    pub description: String,
    /// Listed on the public catalog page. Off unless the file says so.
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub deprecated: bool,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub validate_payload: bool,
    #[serde(default)]
    pub feature_flag: Option<String>,
    /// Svix's form: `{"1": <JSON Schema with "examples">}`.
    #[serde(default)]
    pub schemas: Option<Value>,
}

/// What an import changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} created, {} updated, {} unchanged",
            self.created, self.updated, self.unchanged
        )
    }
}

/// The embedded Spot catalog.
pub fn builtin() -> anyhow::Result<Vec<Entry>> {
    let mut files: Vec<(String, &[u8])> = SPOT
        .files()
        .filter(|f| f.path().extension().is_some_and(|e| e == "json"))
        .map(|f| (f.path().display().to_string(), f.contents()))
        .collect();
    files.sort();
    parse_all(files.iter().map(|(name, bytes)| (name.as_str(), *bytes)))
}

/// A catalog from disk: a directory of `*.json` files (one event type each, or a
/// list of them), or one such file.
pub fn from_path(path: &Path) -> anyhow::Result<Vec<Entry>> {
    let mut files = Vec::new();
    if path.is_dir() {
        for entry in
            std::fs::read_dir(path).with_context(|| format!("cannot read {}", path.display()))?
        {
            let p = entry?.path();
            if p.extension().is_some_and(|e| e == "json") {
                files.push(p);
            }
        }
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    let contents = files
        .iter()
        .map(|p| {
            std::fs::read(p)
                .map(|bytes| (p.display().to_string(), bytes))
                .with_context(|| format!("cannot read {}", p.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    parse_all(contents.iter().map(|(n, b)| (n.as_str(), b.as_slice())))
}

fn parse_all<'a>(files: impl Iterator<Item = (&'a str, &'a [u8])>) -> anyhow::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for (file, bytes) in files {
        let value: Value =
            serde_json::from_slice(bytes).with_context(|| format!("{file} is not valid JSON"))?;
        let list = match value {
            Value::Array(items) => items,
            one => vec![one],
        };
        for item in list {
            let entry: Entry = serde_json::from_value(item)
                .with_context(|| format!("{file} is not a catalog entry"))?;
            entry
                .check()
                .with_context(|| format!("{file}: {}", entry.name))?;
            entries.push(entry);
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = entries.windows(2).find(|w| w[0].name == w[1].name) {
        bail!("event type {} is defined twice", w[0].name);
    }
    Ok(entries)
}

impl Entry {
    /// The name is valid, every schema is a JSON Schema, and every example
    /// matches the schema it sits in.
    pub fn check(&self) -> anyhow::Result<()> {
        validate_name(&self.name).context("invalid name")?;
        let Some(schemas) = &self.schemas else {
            return Ok(());
        };
        let versions = schemas
            .as_object()
            .context("schemas must be an object of versions, e.g. {\"1\": {...}}")?;
        for (version, schema) in versions {
            check_schema(schema).map_err(|issue| {
                anyhow::anyhow!(
                    "schema {version} is invalid at {:?}: {}",
                    issue.pointer,
                    issue.message
                )
            })?;
            let examples = schema.get("examples").and_then(Value::as_array);
            for (i, example) in examples.into_iter().flatten().enumerate() {
                if let Err(issues) = validate(schema, example, 3) {
                    let issue = &issues[0];
                    bail!(
                        "example {i} of schema {version} does not match it at {:?}: {}",
                        issue.pointer,
                        issue.message
                    );
                }
            }
        }
        Ok(())
    }

    /// The event type this entry makes in organisation `org_id`.
    pub fn to_event_type(&self, org_id: &str, now: chrono::DateTime<Utc>) -> EventType {
        EventType {
            org_id: org_id.to_string(),
            name: self.name.clone(),
            description: self.description.clone(),
            archived: self.archived,
            deprecated: self.deprecated,
            feature_flag: self.feature_flag.clone(),
            schemas: self.schemas.clone(),
            public: self.public,
            validate_payload: self.validate_payload,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Loads the entries into the organisation's event types: new ones are created,
/// changed ones updated, the rest left alone, so importing twice changes nothing.
/// Event types the catalog does not name are kept.
pub async fn import(
    store: &dyn Store,
    org_id: &str,
    entries: &[Entry],
) -> anyhow::Result<ImportReport> {
    let mut report = ImportReport::default();
    let now = Utc::now();
    for entry in entries {
        let wanted = entry.to_event_type(org_id, now);
        match store.get_event_type(org_id, &entry.name).await? {
            None => {
                store.create_event_type(&wanted).await?;
                report.created += 1;
            }
            Some(existing) => {
                let same = EventType {
                    created_at: existing.created_at,
                    updated_at: existing.updated_at,
                    ..wanted.clone()
                } == existing;
                if same {
                    report.unchanged += 1;
                } else {
                    store
                        .update_event_type(&EventType {
                            created_at: existing.created_at,
                            ..wanted
                        })
                        .await?;
                    report.updated += 1;
                }
            }
        }
    }
    Ok(report)
}

/// Imports the built-in catalog when the organisation has no event types yet
/// (`herald serve --seed-catalog`). Returns what it did, if anything.
pub async fn seed_if_empty(
    store: &dyn Store,
    org_id: &str,
) -> anyhow::Result<Option<ImportReport>> {
    let page = Page {
        limit: 1,
        iterator: None,
        descending: false,
        backwards: false,
    };
    if !store
        .list_event_types(org_id, true, &page)
        .await?
        .items
        .is_empty()
    {
        return Ok(None);
    }
    let entries = builtin()?;
    Ok(Some(import(store, org_id, &entries).await?))
}

/// Every event type of the organisation, archived ones included.
pub async fn all_event_types(store: &dyn Store, org_id: &str) -> anyhow::Result<Vec<EventType>> {
    let mut all = Vec::new();
    let mut page = Page {
        limit: 250,
        iterator: None,
        descending: false,
        backwards: false,
    };
    loop {
        let batch = store.list_event_types(org_id, true, &page).await?;
        page.iterator = batch.items.last().map(|et| et.name.clone());
        all.extend(batch.items);
        if batch.done {
            return Ok(all);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spot_catalog_has_14_types_whose_examples_match_their_schemas() {
        // builtin() checks every schema and every example; this test fails if any
        // shipped example does not validate.
        let entries = builtin().unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "course.participant.created",
                "course.participant.status.updated",
                "course.step.completed",
                "document.updated",
                "forum.topic.created",
                "learning_path.participant.created",
                "learning_path.participant.updated",
                "learning_path.step.completed",
                "live.participant.created",
                "live.participant.updated",
                "live.updated",
                "member.created",
                "member.updated",
                "registration_form.answered",
            ]
        );
        for e in &entries {
            assert!(e.public, "{} ships public", e.name);
            let schema = e.schemas.as_ref().and_then(|s| s.get("1")).unwrap();
            let example = &schema["examples"][0];
            assert_eq!(example["test"], true, "{}", e.name);
            assert!(example["occurredAt"].is_i64(), "{}", e.name);
            assert_eq!(
                schema["properties"]["occurredAt"]["format"], "unix-time",
                "{}",
                e.name
            );
        }
    }

    #[test]
    fn a_bad_entry_is_refused_with_its_file_and_reason() {
        let bad_example = br#"{"name": "a.b", "description": "d", "schemas": {"1": {
            "type": "object", "properties": {"n": {"type": "integer"}},
            "examples": [{"n": "not a number"}]}}}"#;
        let err = parse_all([("x.json", &bad_example[..])].into_iter()).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("x.json") && text.contains("/n"), "{text}");

        let bad_schema =
            br#"{"name": "a.b", "description": "d", "schemas": {"1": {"type": "strnig"}}}"#;
        assert!(parse_all([("y.json", &bad_schema[..])].into_iter()).is_err());

        let unknown_field = br#"{"name": "a.b", "description": "d", "colour": "red"}"#;
        assert!(parse_all([("z.json", &unknown_field[..])].into_iter()).is_err());

        let twice =
            br#"[{"name": "a.b", "description": "d"}, {"name": "a.b", "description": "e"}]"#;
        assert!(parse_all([("w.json", &twice[..])].into_iter()).is_err());
    }
}
