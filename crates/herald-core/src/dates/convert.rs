//! The rewrite of a payload's UNIX timestamps: the walk of an event type's
//! schema that finds the fields marked `"format": "unix-time"`, at any depth,
//! and writes each in the endpoint's [`DateFormat`].

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

use super::{DateFormat, UNIX_TIME_FORMAT};

/// How deep the schema walk in [`convert_dates`] may recurse. Reference cycles
/// are already cut by remembering which (schema, value) pairs were visited; this
/// limit only keeps a pathological but acyclic schema (a very long chain of
/// `$ref`s) from exhausting the stack.
const MAX_WALK_DEPTH: usize = 512;

/// Rewrites, in place, every value of `payload` that `schema` marks with
/// `"format": "unix-time"` (at any depth) into `format`. Returns how many values changed.
///
/// Only JSON numbers are rewritten; a marked field holding a string, `null` or
/// anything else is left as it is, as is a number [`DateFormat::render`] cannot
/// show. The schema is followed through `properties`, `additionalProperties`,
/// `items`, `prefixItems` (and the older array form of `items` with
/// `additionalItems`), every branch of `allOf`, `anyOf` and `oneOf`, and local
/// `$ref`s such as `#/$defs/Name`, resolved against the root of `schema`.
///
/// Two deliberate gaps, both on the side of leaving a value alone rather than
/// corrupting one that is not a date: `patternProperties` is not followed (this
/// crate has no regex engine of its own), and when a schema has
/// `patternProperties`, its `additionalProperties` is not followed either,
/// because without matching the patterns we cannot tell which keys it covers.
/// `if`/`then`/`else`, `not` and `dependentSchemas` are not followed.
pub fn convert_dates(payload: &mut Value, schema: &Value, format: DateFormat) -> usize {
    if format == DateFormat::Unix {
        // The payload already holds UNIX seconds.
        return 0;
    }
    // Marks are collected before anything is rewritten, as a set, so that a
    // value several branches mark (say `allOf` and `properties`) is converted
    // once: converting seconds to milliseconds twice would multiply by a million.
    let mut walker = Walker {
        root: schema,
        marked: BTreeSet::new(),
        visited: HashSet::new(),
    };
    walker.walk(schema, payload, &mut String::new(), 0);

    let mut changed = 0;
    for pointer in &walker.marked {
        let Some(value) = payload.pointer_mut(pointer) else {
            continue;
        };
        let Some(rendered) = value.as_f64().and_then(|seconds| format.render(seconds)) else {
            continue;
        };
        if *value != rendered {
            *value = rendered;
            changed += 1;
        }
    }
    changed
}

/// The state of one schema walk: which payload places are marked as UNIX times,
/// and which (schema node, payload place) pairs have been visited already.
struct Walker<'s> {
    root: &'s Value,
    /// JSON pointers into the payload.
    marked: BTreeSet<String>,
    /// Visiting the same schema node at the same payload place always marks the
    /// same things, so a second visit is skipped. This ends reference cycles
    /// (`{"$ref": "#"}`) and stops schemas that reach one definition along many
    /// paths from costing exponential time.
    visited: HashSet<(*const Value, String)>,
}

impl<'s> Walker<'s> {
    fn walk(&mut self, schema: &'s Value, instance: &Value, pointer: &mut String, depth: usize) {
        if depth > MAX_WALK_DEPTH {
            return;
        }
        // `true`, `false` and anything else that is not an object marks nothing.
        let Some(keywords) = schema.as_object() else {
            return;
        };
        if !self
            .visited
            .insert((schema as *const Value, pointer.clone()))
        {
            return;
        }

        if instance.is_number()
            && keywords.get("format").and_then(Value::as_str) == Some(UNIX_TIME_FORMAT)
        {
            self.marked.insert(pointer.clone());
        }

        if let Some(target) = keywords
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|reference| resolve_local(self.root, reference))
        {
            self.walk(target, instance, pointer, depth + 1);
        }

        for combinator in ["allOf", "anyOf", "oneOf"] {
            for branch in keywords
                .get(combinator)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                self.walk(branch, instance, pointer, depth + 1);
            }
        }

        match instance {
            Value::Object(members) => {
                let properties = keywords.get("properties").and_then(Value::as_object);
                let additional = if keywords.contains_key("patternProperties") {
                    None
                } else {
                    keywords.get("additionalProperties")
                };
                for (key, member) in members {
                    let declared = properties.and_then(|properties| properties.get(key));
                    if let Some(member_schema) = declared.or(additional) {
                        let len = pointer.len();
                        push_key(pointer, key);
                        self.walk(member_schema, member, pointer, depth + 1);
                        pointer.truncate(len);
                    }
                }
            }
            Value::Array(elements) => {
                // Draft 2020-12 spells a tuple `prefixItems` + `items`; drafts 4 to
                // 2019-09 spell it `items: [..]` + `additionalItems`.
                let (positional, rest): (&[Value], Option<&Value>) = match keywords.get("items") {
                    Some(Value::Array(tuple)) => (tuple, keywords.get("additionalItems")),
                    items => (
                        keywords
                            .get("prefixItems")
                            .and_then(Value::as_array)
                            .map_or(&[], Vec::as_slice),
                        items,
                    ),
                };
                for (index, element) in elements.iter().enumerate() {
                    if let Some(element_schema) = positional.get(index).or(rest) {
                        let len = pointer.len();
                        pointer.push('/');
                        pointer.push_str(&index.to_string());
                        self.walk(element_schema, element, pointer, depth + 1);
                        pointer.truncate(len);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Finds the target of a reference inside the same document: `#` or a JSON
/// pointer fragment such as `#/$defs/Name`. Anything else (another document, an
/// anchor) is not followed, since this crate does no I/O.
fn resolve_local<'s>(root: &'s Value, reference: &str) -> Option<&'s Value> {
    let fragment = reference.strip_prefix('#')?;
    if fragment.is_empty() {
        return Some(root);
    }
    if !fragment.starts_with('/') {
        return None;
    }
    root.pointer(fragment)
}

/// Appends one object key to a JSON pointer, escaping it as RFC 6901 asks.
fn push_key(pointer: &mut String, key: &str) {
    pointer.push('/');
    for c in key.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}
