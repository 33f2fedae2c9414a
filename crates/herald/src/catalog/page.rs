//! The public event catalog page: the event types an organisation publishes,
//! rendered from one model as an HTML page for people and as JSON for tools.
//! (The third rendering, the OpenAPI document, is `openapi.rs`; the field
//! tables, `fields.rs`.)
//!
//! Callers pass the types already filtered to the public, non-archived ones; this
//! module only decides how they look.

use std::collections::BTreeMap;

use herald_store::EventType;
use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::Environment;
use serde::Serialize;
use serde_json::Value;

use super::fields::{field_rows, FieldRow};

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
    add_name_filters(&mut env);
    let ctx = HtmlContext {
        title,
        groups,
        type_count: types.len(),
    };
    env.get_template(TEMPLATE_NAME)?.render(Serde(&ctx))
}

/// A name's segment as a heading: `learning_path` → "Learning path".
pub fn humanise(segment: &str) -> String {
    let words = segment.replace(['_', '-'], " ").to_lowercase();
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// An event type's name as HTML that may break after its dots, underscores
/// and hyphens, never inside a word (`learning_path.step.completed` in a
/// narrow column); the rest escaped.
pub fn breakable(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 16);
    for c in name.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
        if matches!(c, '.' | '_' | '-') {
            out.push_str("<wbr>");
        }
    }
    out
}

/// The filters both catalog pages (public and the portal's) name things
/// with: `humanise` for group headings, `breakable` for event type names.
pub fn add_name_filters(env: &mut Environment) {
    env.add_filter("humanise", |s: String| humanise(&s));
    env.add_filter("breakable", |s: String| {
        minijinja::Value::from_safe_string(breakable(&s))
    });
}

/// The same content as the page, as JSON:
/// `{"title", "groups": [{"name", "eventTypes": [{"name", "description",
/// "deprecated", "group", "schema", "example", "fields"}]}]}`.
pub fn render_json(title: &str, types: &[EventType]) -> Value {
    serde_json::to_value(Catalog::new(title, types))
        .expect("the catalog is plain strings, booleans and JSON values")
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
pub(super) fn latest_schema(et: &EventType) -> Option<&Value> {
    et.schemas
        .as_ref()?
        .as_object()?
        .iter()
        .filter_map(|(k, v)| Some((k.parse::<u64>().ok()?, v)))
        .max_by_key(|(version, _)| *version)
        .map(|(_, v)| v)
}

pub(super) fn first_example(schema: &Value) -> Option<&Value> {
    schema.get("examples")?.as_array()?.first()
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("a JSON value always serialises")
}

#[cfg(test)]
mod tests {

    #[test]
    fn names_break_between_words_and_groups_read_as_words() {
        assert_eq!(
            super::breakable("learning_path.step<x>"),
            "learning_<wbr>path.<wbr>step&lt;x&gt;"
        );
        assert_eq!(super::humanise("LEARNING_PATH"), "Learning path");
        assert_eq!(super::humanise("registration-form"), "Registration form");
    }

    use super::*;
    use crate::catalog::fixtures::{catalog_types, event_type, live_schema};
    use serde_json::json;

    /// The slice of the page holding one event type's article.
    fn article<'a>(html: &'a str, name: &str) -> &'a str {
        let start = html
            .find(&format!("<article class=\"event\" id=\"{name}\""))
            .unwrap_or_else(|| panic!("no article for {name}"));
        let end = html[start..].find("</article>").expect("article is closed");
        &html[start..start + end]
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
        let live = html.find("<h2>Live</h2>").expect("live group heading");
        let member = html.find("<h2>Member</h2>").expect("member group heading");
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
}
