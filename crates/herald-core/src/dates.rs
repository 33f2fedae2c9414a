//! The date format an endpoint chooses for timestamp fields.
//!
//! Senders such as Spot put UNIX seconds in their payloads, and many receiving
//! tools (spreadsheets, no-code automations, log pipelines) cannot read those.
//! An event type's schema marks which fields are UNIX timestamps with
//! `"format": "unix-time"`, and each endpoint picks how those fields are written
//! when Herald delivers to it. The schema is the only source of truth: Herald
//! never guesses that a number is a date.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// How a UNIX timestamp is written in a delivered payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateFormat {
    /// Seconds since the UNIX epoch, as sent: nothing is rewritten.
    #[default]
    Unix,
    /// Whole milliseconds since the UNIX epoch, as JavaScript's `Date` uses.
    UnixMs,
    /// `2024-05-07T15:28:34Z` in UTC, with `.250` milliseconds when the input
    /// had a fractional part.
    Iso8601,
    /// `Tue, 07 May 2024 15:28:34 +0000`, as in e-mail and HTTP headers.
    Rfc2822,
}

/// Why a string is not a date format.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown date format {found:?}: expected one of unix, unix_ms, iso8601, rfc2822")]
pub struct DateFormatError {
    pub found: String,
}

/// The JSON Schema `format` that marks a field as a UNIX timestamp in seconds.
pub const UNIX_TIME_FORMAT: &str = "unix-time";

/// The earliest instant any format can render: 0000-01-01T00:00:00Z. Both
/// ISO 8601 and RFC 2822 want a four-digit year, and a timestamp outside those
/// years is far more likely a unit mistake than a real date, so every format
/// shares this range rather than each having its own.
const MIN_MILLIS: f64 = -62_167_219_200_000.0;

/// The last millisecond any format can render: 9999-12-31T23:59:59.999Z.
const MAX_MILLIS: f64 = 253_402_300_799_999.0;

/// How deep the schema walk in [`convert_dates`] may recurse. Reference cycles
/// are already cut by remembering which (schema, value) pairs were visited; this
/// limit only keeps a pathological but acyclic schema (a very long chain of
/// `$ref`s) from exhausting the stack.
const MAX_WALK_DEPTH: usize = 512;

impl DateFormat {
    /// Every format, in the order they are offered to users.
    pub const ALL: [DateFormat; 4] = [
        DateFormat::Unix,
        DateFormat::UnixMs,
        DateFormat::Iso8601,
        DateFormat::Rfc2822,
    ];

    /// Reads the name used in the API and in configuration (see [`Self::as_str`]).
    /// Names are matched exactly, as serde does, so a value accepted here is also
    /// accepted in a JSON body and the other way round.
    pub fn parse(s: &str) -> Result<DateFormat, DateFormatError> {
        DateFormat::ALL
            .into_iter()
            .find(|format| format.as_str() == s)
            .ok_or_else(|| DateFormatError {
                found: s.to_owned(),
            })
    }

    /// The name used in the API and in configuration; the same as the serde name.
    pub fn as_str(self) -> &'static str {
        match self {
            DateFormat::Unix => "unix",
            DateFormat::UnixMs => "unix_ms",
            DateFormat::Iso8601 => "iso8601",
            DateFormat::Rfc2822 => "rfc2822",
        }
    }

    /// Renders a UNIX time in seconds (may be fractional) in this format.
    ///
    /// Returns `None` when the input is not finite or lies outside the years
    /// 0000 to 9999. Fractional input is rounded to the nearest millisecond;
    /// RFC 2822 has no fractions of a second, so it shows the whole second the
    /// instant falls in.
    pub fn render(self, unix_seconds: f64) -> Option<Value> {
        let millis = (unix_seconds * 1000.0).round();
        if !(MIN_MILLIS..=MAX_MILLIS).contains(&millis) {
            // NaN fails the range check too, so this covers non-finite input.
            return None;
        }
        // The range check above keeps `millis` well inside i64, and it is a
        // whole number, so the conversion is exact.
        let millis = millis as i64;
        let fractional = unix_seconds.fract() != 0.0;
        match self {
            DateFormat::Unix if fractional => {
                serde_json::Number::from_f64(unix_seconds).map(Value::Number)
            }
            // A whole number of seconds in range is exactly representable, so an
            // integer goes back out as the same integer.
            DateFormat::Unix => Some(Value::from(unix_seconds as i64)),
            DateFormat::UnixMs => Some(Value::from(millis)),
            DateFormat::Iso8601 => {
                let instant = DateTime::<Utc>::from_timestamp_millis(millis)?;
                let pattern = if fractional {
                    "%Y-%m-%dT%H:%M:%S%.3fZ"
                } else {
                    "%Y-%m-%dT%H:%M:%SZ"
                };
                Some(Value::String(instant.format(pattern).to_string()))
            }
            DateFormat::Rfc2822 => {
                let instant = DateTime::<Utc>::from_timestamp_millis(millis)?;
                let text = instant.format("%a, %d %b %Y %H:%M:%S +0000").to_string();
                Some(Value::String(text))
            }
        }
    }
}

impl fmt::Display for DateFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DateFormat {
    type Err = DateFormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DateFormat::parse(s)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_round_trip() {
        for format in DateFormat::ALL {
            assert_eq!(DateFormat::parse(format.as_str()), Ok(format));
            assert_eq!(format.as_str().parse::<DateFormat>(), Ok(format));
            assert_eq!(format.to_string(), format.as_str());
            // The serde name and the API name are the same string.
            assert_eq!(
                serde_json::to_value(format).expect("serializes"),
                json!(format.as_str())
            );
            assert_eq!(
                serde_json::from_value::<DateFormat>(json!(format.as_str())).expect("parses"),
                format
            );
        }
        assert_eq!(DateFormat::default(), DateFormat::Unix);
    }

    #[test]
    fn parse() {
        let table: &[(&str, Result<DateFormat, DateFormatError>)] = &[
            ("unix", Ok(DateFormat::Unix)),
            ("unix_ms", Ok(DateFormat::UnixMs)),
            ("iso8601", Ok(DateFormat::Iso8601)),
            ("rfc2822", Ok(DateFormat::Rfc2822)),
            ("", Err(DateFormatError { found: "".into() })),
            (
                "UNIX",
                Err(DateFormatError {
                    found: "UNIX".into(),
                }),
            ),
            (
                " unix",
                Err(DateFormatError {
                    found: " unix".into(),
                }),
            ),
            (
                "unix-ms",
                Err(DateFormatError {
                    found: "unix-ms".into(),
                }),
            ),
            (
                "iso-8601",
                Err(DateFormatError {
                    found: "iso-8601".into(),
                }),
            ),
            (
                "rfc3339",
                Err(DateFormatError {
                    found: "rfc3339".into(),
                }),
            ),
        ];
        for (input, expected) in table {
            assert_eq!(&DateFormat::parse(input), expected, "{input:?}");
        }
    }

    #[test]
    fn error_message_lists_the_valid_values() {
        let error = DateFormat::parse("epoch").expect_err("not a format");
        assert_eq!(
            error.to_string(),
            r#"unknown date format "epoch": expected one of unix, unix_ms, iso8601, rfc2822"#
        );
    }

    #[test]
    fn render() {
        use DateFormat::*;
        let table: &[(DateFormat, f64, Option<Value>)] = &[
            (Unix, 1715095714.0, Some(json!(1715095714))),
            (UnixMs, 1715095714.0, Some(json!(1715095714000_i64))),
            (Iso8601, 1715095714.0, Some(json!("2024-05-07T15:28:34Z"))),
            (
                Rfc2822,
                1715095714.0,
                Some(json!("Tue, 07 May 2024 15:28:34 +0000")),
            ),
            // Fractional seconds.
            (Unix, 1715095714.25, Some(json!(1715095714.25))),
            (UnixMs, 1715095714.25, Some(json!(1715095714250_i64))),
            (
                Iso8601,
                1715095714.25,
                Some(json!("2024-05-07T15:28:34.250Z")),
            ),
            (
                Rfc2822,
                1715095714.75,
                Some(json!("Tue, 07 May 2024 15:28:34 +0000")),
            ),
            // Rounded to the nearest millisecond, in both directions.
            (UnixMs, 1715095714.0004, Some(json!(1715095714000_i64))),
            (UnixMs, 1715095714.0006, Some(json!(1715095714001_i64))),
            (
                Iso8601,
                1715095714.0006,
                Some(json!("2024-05-07T15:28:34.001Z")),
            ),
            // The epoch, and the instant before it.
            (Unix, 0.0, Some(json!(0))),
            (UnixMs, 0.0, Some(json!(0))),
            (Iso8601, 0.0, Some(json!("1970-01-01T00:00:00Z"))),
            (Rfc2822, 0.0, Some(json!("Thu, 01 Jan 1970 00:00:00 +0000"))),
            (Unix, -1.0, Some(json!(-1))),
            (UnixMs, -1.0, Some(json!(-1000))),
            (Iso8601, -1.0, Some(json!("1969-12-31T23:59:59Z"))),
            (Iso8601, -0.5, Some(json!("1969-12-31T23:59:59.500Z"))),
            (
                Rfc2822,
                -0.5,
                Some(json!("Wed, 31 Dec 1969 23:59:59 +0000")),
            ),
            // A leap day, and the 2038 boundary of 32-bit time.
            (Iso8601, 951782400.0, Some(json!("2000-02-29T00:00:00Z"))),
            (Iso8601, 2147483648.0, Some(json!("2038-01-19T03:14:08Z"))),
            // The ends of the range.
            (Iso8601, -62167219200.0, Some(json!("0000-01-01T00:00:00Z"))),
            (Iso8601, 253402300799.0, Some(json!("9999-12-31T23:59:59Z"))),
            (
                Rfc2822,
                253402300799.0,
                Some(json!("Fri, 31 Dec 9999 23:59:59 +0000")),
            ),
            (UnixMs, 253402300799.0, Some(json!(253402300799000_i64))),
            (Iso8601, -62167219201.0, None),
            (Rfc2822, 253402300800.0, None),
            (Unix, 253402300800.0, None),
            (UnixMs, 1e300, None),
            (Iso8601, f64::INFINITY, None),
            (UnixMs, f64::NEG_INFINITY, None),
            (Unix, f64::NAN, None),
        ];
        for (format, seconds, expected) in table {
            assert_eq!(&format.render(*seconds), expected, "{format:?} {seconds}");
        }
    }

    /// One row of the `convert_dates` table.
    struct Case {
        name: &'static str,
        schema: Value,
        payload: Value,
        format: DateFormat,
        expected: Value,
        changed: usize,
    }

    #[test]
    fn convert() {
        let flat = json!({
            "type": "object",
            "properties": {
                "at": {"type": "integer", "format": "unix-time"},
                "count": {"type": "integer"}
            }
        });
        let cases = vec![
            Case {
                name: "unix leaves everything alone",
                schema: flat.clone(),
                payload: json!({"at": 1715095714, "count": 3}),
                format: DateFormat::Unix,
                expected: json!({"at": 1715095714, "count": 3}),
                changed: 0,
            },
            Case {
                name: "unix_ms on a flat field",
                schema: flat.clone(),
                payload: json!({"at": 1715095714, "count": 3}),
                format: DateFormat::UnixMs,
                expected: json!({"at": 1715095714000_i64, "count": 3}),
                changed: 1,
            },
            Case {
                name: "iso8601 on a flat field",
                schema: flat.clone(),
                payload: json!({"at": 1715095714, "count": 3}),
                format: DateFormat::Iso8601,
                expected: json!({"at": "2024-05-07T15:28:34Z", "count": 3}),
                changed: 1,
            },
            Case {
                name: "rfc2822 on a flat field",
                schema: flat.clone(),
                payload: json!({"at": 1715095714, "count": 3}),
                format: DateFormat::Rfc2822,
                expected: json!({"at": "Tue, 07 May 2024 15:28:34 +0000", "count": 3}),
                changed: 1,
            },
            Case {
                name: "fractional seconds",
                schema: flat.clone(),
                payload: json!({"at": 1715095714.25}),
                format: DateFormat::Iso8601,
                expected: json!({"at": "2024-05-07T15:28:34.250Z"}),
                changed: 1,
            },
            Case {
                name: "a whole number written as a float has no fraction",
                schema: flat.clone(),
                payload: json!({"at": 1715095714.0}),
                format: DateFormat::Iso8601,
                expected: json!({"at": "2024-05-07T15:28:34Z"}),
                changed: 1,
            },
            Case {
                name: "zero in milliseconds is still zero, so nothing changed",
                schema: flat.clone(),
                payload: json!({"at": 0}),
                format: DateFormat::UnixMs,
                expected: json!({"at": 0}),
                changed: 0,
            },
            Case {
                name: "a number out of range is left alone",
                schema: flat.clone(),
                payload: json!({"at": 1e20}),
                format: DateFormat::Iso8601,
                expected: json!({"at": 1e20}),
                changed: 0,
            },
            Case {
                name: "non-number values are untouched",
                schema: json!({
                    "properties": {
                        "a": {"format": "unix-time"},
                        "b": {"format": "unix-time"},
                        "c": {"format": "unix-time"},
                        "d": {"format": "unix-time"},
                        "e": {"format": "unix-time"},
                        "f": {"format": "unix-time"}
                    }
                }),
                payload: json!({
                    "a": "1715095714",
                    "b": null,
                    "c": true,
                    "d": [1715095714],
                    "e": {"seconds": 1715095714},
                    "f": 1715095714
                }),
                format: DateFormat::UnixMs,
                expected: json!({
                    "a": "1715095714",
                    "b": null,
                    "c": true,
                    "d": [1715095714],
                    "e": {"seconds": 1715095714},
                    "f": 1715095714000_i64
                }),
                changed: 1,
            },
            Case {
                name: "unmarked fields are untouched",
                schema: json!({
                    "properties": {
                        "a": {"type": "integer"},
                        "b": {"format": "date-time"},
                        "c": {"format": "unix-time-ms"},
                        "d": {"description": "format: unix-time"},
                        "e": true
                    }
                }),
                payload: json!({"a": 1715095714, "b": 1715095714, "c": 1715095714, "d": 1, "e": 1, "f": 1715095714}),
                format: DateFormat::Iso8601,
                expected: json!({"a": 1715095714, "b": 1715095714, "c": 1715095714, "d": 1, "e": 1, "f": 1715095714}),
                changed: 0,
            },
            Case {
                name: "nested objects",
                schema: json!({
                    "properties": {
                        "order": {
                            "properties": {
                                "created": {"format": "unix-time"},
                                "shipping": {
                                    "properties": {"eta": {"format": "unix-time"}}
                                }
                            }
                        }
                    }
                }),
                payload: json!({
                    "order": {"created": 0, "id": 7, "shipping": {"eta": 86400, "carrier": "post"}}
                }),
                format: DateFormat::Iso8601,
                expected: json!({
                    "order": {
                        "created": "1970-01-01T00:00:00Z",
                        "id": 7,
                        "shipping": {"eta": "1970-01-02T00:00:00Z", "carrier": "post"}
                    }
                }),
                changed: 2,
            },
            Case {
                name: "arrays of objects",
                schema: json!({
                    "properties": {
                        "events": {
                            "type": "array",
                            "items": {"properties": {"at": {"format": "unix-time"}}}
                        }
                    }
                }),
                payload: json!({"events": [{"at": 1}, {"at": 2, "n": 2}, {"other": 3}, 4]}),
                format: DateFormat::UnixMs,
                expected: json!({"events": [{"at": 1000}, {"at": 2000, "n": 2}, {"other": 3}, 4]}),
                changed: 2,
            },
            Case {
                name: "an array of timestamps",
                schema: json!({"items": {"format": "unix-time"}}),
                payload: json!([1, "2", 3]),
                format: DateFormat::UnixMs,
                expected: json!([1000, "2", 3000]),
                changed: 2,
            },
            Case {
                name: "prefixItems is positional and items covers the rest",
                schema: json!({
                    "prefixItems": [{"format": "unix-time"}, {"type": "integer"}],
                    "items": {"format": "unix-time"}
                }),
                payload: json!([1, 2, 3, 4]),
                format: DateFormat::UnixMs,
                expected: json!([1000, 2, 3000, 4000]),
                changed: 3,
            },
            Case {
                name: "the older tuple form of items with additionalItems",
                schema: json!({
                    "items": [{"type": "integer"}, {"format": "unix-time"}],
                    "additionalItems": {"format": "unix-time"}
                }),
                payload: json!([1, 2, 3]),
                format: DateFormat::UnixMs,
                expected: json!([1, 2000, 3000]),
                changed: 2,
            },
            Case {
                name: "a field marked twice is converted once",
                schema: json!({
                    "properties": {"at": {"format": "unix-time"}},
                    "allOf": [
                        {"properties": {"at": {"format": "unix-time"}}},
                        {"properties": {"at": {"$ref": "#/$defs/time"}}}
                    ],
                    "anyOf": [{"properties": {"at": {"format": "unix-time"}}}],
                    "$defs": {"time": {"format": "unix-time"}}
                }),
                payload: json!({"at": 1715095714}),
                format: DateFormat::UnixMs,
                expected: json!({"at": 1715095714000_i64}),
                changed: 1,
            },
            Case {
                name: "every branch of anyOf and oneOf applies",
                schema: json!({
                    "anyOf": [{"properties": {"a": {"format": "unix-time"}}}, {"required": ["b"]}],
                    "oneOf": [{"properties": {"b": {"format": "unix-time"}}}]
                }),
                payload: json!({"a": 1, "b": 2, "c": 3}),
                format: DateFormat::UnixMs,
                expected: json!({"a": 1000, "b": 2000, "c": 3}),
                changed: 2,
            },
            Case {
                name: "$ref into $defs",
                schema: json!({
                    "$defs": {
                        "stamp": {"type": "integer", "format": "unix-time"},
                        "period": {
                            "properties": {
                                "start": {"$ref": "#/$defs/stamp"},
                                "end": {"$ref": "#/$defs/stamp"}
                            }
                        }
                    },
                    "properties": {"period": {"$ref": "#/$defs/period"}}
                }),
                payload: json!({"period": {"start": 0, "end": 60}}),
                format: DateFormat::Iso8601,
                expected: json!({"period": {"start": "1970-01-01T00:00:00Z", "end": "1970-01-01T00:01:00Z"}}),
                changed: 2,
            },
            Case {
                name: "$ref into definitions",
                schema: json!({
                    "definitions": {"stamp": {"format": "unix-time"}},
                    "properties": {"at": {"$ref": "#/definitions/stamp"}}
                }),
                payload: json!({"at": 60}),
                format: DateFormat::UnixMs,
                expected: json!({"at": 60000}),
                changed: 1,
            },
            Case {
                name: "a recursive schema follows the payload down",
                schema: json!({
                    "$defs": {
                        "node": {
                            "properties": {
                                "at": {"format": "unix-time"},
                                "children": {"items": {"$ref": "#/$defs/node"}}
                            }
                        }
                    },
                    "$ref": "#/$defs/node"
                }),
                payload: json!({"at": 1, "children": [{"at": 2, "children": [{"at": 3}]}, {"at": 4}]}),
                format: DateFormat::UnixMs,
                expected: json!({"at": 1000, "children": [{"at": 2000, "children": [{"at": 3000}]}, {"at": 4000}]}),
                changed: 4,
            },
            Case {
                name: "reference cycles end",
                schema: json!({
                    "$defs": {
                        "a": {"$ref": "#/$defs/b"},
                        "b": {"allOf": [{"$ref": "#/$defs/a"}, {"$ref": "#"}]}
                    },
                    "$ref": "#/$defs/a",
                    "properties": {"at": {"format": "unix-time"}}
                }),
                payload: json!({"at": 1}),
                format: DateFormat::UnixMs,
                expected: json!({"at": 1000}),
                changed: 1,
            },
            Case {
                name: "unresolvable and non-local references are ignored",
                schema: json!({
                    "properties": {
                        "a": {"$ref": "#/$defs/missing"},
                        "b": {"$ref": "https://example.com/stamp.json"},
                        "c": {"$ref": "#stamp"},
                        "d": {"$ref": 5}
                    }
                }),
                payload: json!({"a": 1, "b": 2, "c": 3, "d": 4}),
                format: DateFormat::UnixMs,
                expected: json!({"a": 1, "b": 2, "c": 3, "d": 4}),
                changed: 0,
            },
            Case {
                name: "additionalProperties covers keys not in properties",
                schema: json!({
                    "properties": {"name": {"type": "string"}, "count": {"type": "integer"}},
                    "additionalProperties": {"format": "unix-time"}
                }),
                payload: json!({"name": "x", "count": 5, "opened": 60, "closed": 120}),
                format: DateFormat::UnixMs,
                expected: json!({"name": "x", "count": 5, "opened": 60000, "closed": 120000}),
                changed: 2,
            },
            Case {
                name: "additionalProperties is not guessed at beside patternProperties",
                schema: json!({
                    "patternProperties": {"^n_": {"type": "integer"}},
                    "additionalProperties": {"format": "unix-time"}
                }),
                payload: json!({"n_count": 5, "opened": 60}),
                format: DateFormat::UnixMs,
                expected: json!({"n_count": 5, "opened": 60}),
                changed: 0,
            },
            Case {
                name: "keys that need escaping in a JSON pointer",
                schema: json!({
                    "properties": {"a/b": {"format": "unix-time"}, "c~d": {"format": "unix-time"}}
                }),
                payload: json!({"a/b": 1, "c~d": 2}),
                format: DateFormat::UnixMs,
                expected: json!({"a/b": 1000, "c~d": 2000}),
                changed: 2,
            },
            Case {
                name: "a marked root value",
                schema: json!({"format": "unix-time"}),
                payload: json!(1715095714),
                format: DateFormat::Iso8601,
                expected: json!("2024-05-07T15:28:34Z"),
                changed: 1,
            },
            Case {
                name: "a payload without the schema's structure",
                schema: json!({
                    "properties": {
                        "order": {"properties": {"at": {"format": "unix-time"}}},
                        "list": {"items": {"format": "unix-time"}}
                    }
                }),
                payload: json!({"order": [1, 2], "list": {"at": 3}, "at": 4}),
                format: DateFormat::UnixMs,
                expected: json!({"order": [1, 2], "list": {"at": 3}, "at": 4}),
                changed: 0,
            },
            Case {
                name: "a payload that is not an object",
                schema: flat.clone(),
                payload: json!([1715095714]),
                format: DateFormat::UnixMs,
                expected: json!([1715095714]),
                changed: 0,
            },
            Case {
                name: "boolean and null schemas mark nothing",
                schema: json!({"properties": {"a": true, "b": false, "c": null}, "allOf": [true]}),
                payload: json!({"a": 1, "b": 2, "c": 3}),
                format: DateFormat::UnixMs,
                expected: json!({"a": 1, "b": 2, "c": 3}),
                changed: 0,
            },
        ];
        for case in cases {
            let mut payload = case.payload;
            let changed = convert_dates(&mut payload, &case.schema, case.format);
            assert_eq!(payload, case.expected, "{}", case.name);
            assert_eq!(changed, case.changed, "{}", case.name);
        }
    }

    #[test]
    fn non_object_schemas_mark_nothing() {
        for schema in [
            json!(true),
            json!(false),
            json!(null),
            json!("unix-time"),
            json!([]),
        ] {
            let mut payload = json!({"at": 1});
            assert_eq!(convert_dates(&mut payload, &schema, DateFormat::UnixMs), 0);
            assert_eq!(payload, json!({"at": 1}), "{schema}");
        }
    }

    #[test]
    fn many_paths_to_one_definition_stay_cheap() {
        // Each level reaches the next along two paths; without remembering
        // visits, 40 levels would be 2^40 walks.
        let mut defs = serde_json::Map::new();
        for level in 0..40 {
            let next = format!("#/$defs/l{}", level + 1);
            defs.insert(
                format!("l{level}"),
                json!({"allOf": [{"$ref": next}, {"$ref": next}]}),
            );
        }
        defs.insert("l40".into(), json!({"format": "unix-time"}));
        let schema = json!({"$defs": defs, "$ref": "#/$defs/l0"});
        let mut payload = json!(60);
        assert_eq!(convert_dates(&mut payload, &schema, DateFormat::UnixMs), 1);
        assert_eq!(payload, json!(60000));
    }
}
