//! Ready-made formats: transformations that turn any event of a catalog into a
//! message for Slack, Discord, Microsoft Teams, Google Chat, or a flat sheet
//! row for Zapier, Make and Google Sheets. They are data, like the catalog:
//! JavaScript files in `catalog/formats/` (embedded in the binary), one per
//! format, sharing `_lib.js`. Each event type's sentence comes from the
//! catalog itself (`"x-herald-summary"` in its schema), so a platform that
//! ships its own catalog gets sentences of its own.
//!
//! A format picked for an endpoint becomes that endpoint's transformation
//! code ([`code`]): the sentences, the shared helpers and the format, all
//! visible and editable — a developer starts from it.

use std::collections::BTreeMap;

use herald_store::EventType;
use include_dir::{include_dir, Dir};

static FORMATS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../catalog/formats");
const LIB: &str = "_lib.js";
/// The schema keyword holding an event type's sentence template.
pub const SUMMARY_KEYWORD: &str = "x-herald-summary";

/// One ready-made format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Format {
    /// Its file's name without `.js` (`slack`, `google-chat`): how the API
    /// and the portal name it.
    pub id: String,
    /// The first line of its file, without `//` ("Slack: an incoming
    /// webhook's message, ...").
    pub title: String,
    source: &'static str,
}

/// The formats Herald ships, by id.
pub fn builtin() -> Vec<Format> {
    let mut formats: Vec<Format> = FORMATS
        .files()
        .filter(|f| f.path().extension().is_some_and(|e| e == "js"))
        .filter(|f| f.path().file_name().is_some_and(|n| n != LIB))
        .filter_map(|f| {
            let source = f.contents_utf8()?;
            let id = f.path().file_stem()?.to_str()?.to_string();
            let title = source
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("//")
                .trim()
                .to_string();
            Some(Format { id, title, source })
        })
        .collect();
    formats.sort_by(|a, b| a.id.cmp(&b.id));
    formats
}

/// The format named `id`, if Herald ships one.
pub fn find(id: &str) -> Option<Format> {
    builtin().into_iter().find(|f| f.id == id)
}

/// The event types' sentence templates, from their newest schemas.
pub fn summaries(event_types: &[EventType]) -> BTreeMap<String, String> {
    event_types
        .iter()
        .filter_map(|et| {
            let template = et.latest_schema()?.get(SUMMARY_KEYWORD)?.as_str()?;
            Some((et.name.clone(), template.to_string()))
        })
        .collect()
}

/// The transformation code of `format` for a catalog with these sentences.
pub fn code(format: &Format, summaries: &BTreeMap<String, String>) -> String {
    let lib = FORMATS
        .get_file(LIB)
        .and_then(|f| f.contents_utf8())
        .unwrap_or_default();
    let table = serde_json::to_string_pretty(summaries).expect("strings serialize");
    format!(
        "// {title}\n// Made by Herald from the \"{id}\" format; edit it as you like.\n\nconst SUMMARIES = {table};\n\n{lib}\n{source}",
        title = format.title,
        id = format.id,
        source = format.source,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_is_found_with_a_title() {
        let ids: Vec<String> = builtin().into_iter().map(|f| f.id).collect();
        assert_eq!(
            ids,
            ["discord", "google-chat", "sheet-row", "slack", "teams"]
        );
        for f in builtin() {
            assert!(!f.title.is_empty() && !f.title.starts_with('/'), "{f:?}");
            assert!(f.source.contains("function handler(webhook)"), "{}", f.id);
        }
        assert!(find("slack").is_some() && find("fax").is_none());
    }
}
