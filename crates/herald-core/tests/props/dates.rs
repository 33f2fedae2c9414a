//! `herald_core::dates`: the conversion a delivery applies to a payload.

use chrono::DateTime;
use herald_core::dates::{convert_dates, DateFormat};
use herald_core::json::check_strict;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::gen::{self, MAX_SECONDS, MIN_SECONDS};

fn format() -> impl Strategy<Value = DateFormat> {
    prop::sample::select(DateFormat::ALL.to_vec())
}

/// A schema that marks every number at any depth as a UNIX time.
fn everything() -> Value {
    json!({
        "format": "unix-time",
        "additionalProperties": {"$ref": "#"},
        "items": {"$ref": "#"}
    })
}

/// Seconds a payload may carry: whole, to the millisecond, and finer.
fn seconds() -> impl Strategy<Value = f64> {
    prop_oneof![
        (MIN_SECONDS..=MAX_SECONDS).prop_map(|s| s as f64),
        (MIN_SECONDS * 1000..=MAX_SECONDS * 1000).prop_map(|ms| ms as f64 / 1000.0),
        MIN_SECONDS as f64..MAX_SECONDS as f64,
    ]
}

/// The millisecond a number of seconds names, as `render` rounds it.
fn millis(seconds: f64) -> i64 {
    (seconds * 1000.0).round() as i64
}

/// Checks that `after` has the shape of `before` (the same keys in the same
/// order, arrays of the same length) and returns how many leaves differ.
fn differing_leaves(before: &Value, after: &Value) -> usize {
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            assert!(a.keys().eq(b.keys()), "keys changed: {before} -> {after}");
            a.values()
                .zip(b.values())
                .map(|(x, y)| differing_leaves(x, y))
                .sum()
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{before} -> {after}");
            a.iter().zip(b).map(|(x, y)| differing_leaves(x, y)).sum()
        }
        (x, y) => usize::from(x != y),
    }
}

proptest! {
    /// Converting to `unix` is the identity: the payload already holds UNIX
    /// seconds, whatever the schema marks.
    #[test]
    fn unix_is_the_identity(payload in gen::value()) {
        let mut converted = payload.clone();
        prop_assert_eq!(convert_dates(&mut converted, &everything(), DateFormat::Unix), 0);
        prop_assert_eq!(converted, payload);
    }

    /// `render(Unix)` writes back the number it was given.
    #[test]
    fn rendering_unix_seconds_gives_them_back(seconds in seconds()) {
        let rendered = DateFormat::Unix.render(seconds).expect("in range");
        prop_assert_eq!(rendered.as_f64(), Some(seconds));
        if seconds.fract() == 0.0 {
            prop_assert_eq!(rendered.as_i64(), Some(seconds as i64));
        }
    }

    /// Any object in, valid JSON out: whatever a conversion produces, with every
    /// number marked, serializes to text the strict check accepts and that reads
    /// back as the same value; the shape is kept, and the count is the number of
    /// leaves that changed.
    #[test]
    fn any_object_in_valid_json_out(payload in gen::object(), format in format()) {
        let mut converted = payload.clone();
        let changed = convert_dates(&mut converted, &everything(), format);
        prop_assert_eq!(changed, differing_leaves(&payload, &converted));
        let sent = serde_json::to_string(&converted).expect("serializes");
        prop_assert_eq!(check_strict(&sent), Ok(()));
        prop_assert_eq!(serde_json::from_str::<Value>(&sent).expect("parses"), converted);
    }

    /// Only the fields the schema marks change, and each marked number becomes
    /// its rendering (or stays, when it cannot be shown).
    #[test]
    fn unmarked_fields_are_unchanged(
        fields in prop::collection::vec((gen::key(), any::<bool>(), gen::value()), 0..10),
        format in format(),
    ) {
        let payload = Value::Object(
            fields.iter().map(|(k, _, v)| (k.clone(), v.clone())).collect::<Map<_, _>>(),
        );
        // A later duplicate key wins in the payload; let it win in the marks too.
        let marked: Map<String, Value> = fields
            .iter()
            .map(|(k, mark, _)| (k.clone(), Value::Bool(*mark)))
            .collect();
        let properties: Map<String, Value> = marked
            .iter()
            .map(|(k, mark)| {
                let schema = if mark == &Value::Bool(true) {
                    json!({"format": "unix-time"})
                } else {
                    json!({"type": "integer", "format": "date-time"})
                };
                (k.clone(), schema)
            })
            .collect();
        let schema = json!({"type": "object", "properties": properties});

        let mut converted = payload.clone();
        let changed = convert_dates(&mut converted, &schema, format);

        let mut expected_changes = 0;
        for (key, before) in payload.as_object().expect("an object") {
            let after = &converted[key];
            let is_marked = marked[key] == Value::Bool(true);
            let rendered = before
                .as_f64()
                .filter(|_| is_marked)
                .and_then(|seconds| format.render(seconds));
            match (format, rendered) {
                (DateFormat::Unix, _) | (_, None) => prop_assert_eq!(after, before, "{}", key),
                (_, Some(rendered)) => {
                    prop_assert_eq!(after, &rendered, "{}", key);
                    expected_changes += usize::from(before != &rendered);
                }
            }
        }
        prop_assert_eq!(changed, expected_changes);
    }

    /// Converting to a text format twice changes nothing the second time: what
    /// was converted is a string now, and what could not be still cannot.
    #[test]
    fn text_formats_are_idempotent(
        payload in gen::object(),
        format in prop::sample::select(vec![DateFormat::Iso8601, DateFormat::Rfc2822]),
    ) {
        let mut once = payload;
        convert_dates(&mut once, &everything(), format);
        let mut twice = once.clone();
        prop_assert_eq!(convert_dates(&mut twice, &everything(), format), 0);
        prop_assert_eq!(twice, once);
    }

    /// `unix_ms` is the same instant to the millisecond, and whole seconds
    /// become exactly a thousand times as many milliseconds.
    #[test]
    fn unix_ms_round_trips(seconds in seconds()) {
        let rendered = DateFormat::UnixMs.render(seconds).expect("in range");
        prop_assert_eq!(rendered.as_i64(), Some(millis(seconds)));
        if seconds.fract() == 0.0 {
            prop_assert_eq!(rendered.as_i64(), Some(seconds as i64 * 1000));
        }
    }

    /// `iso8601` reads back (as RFC 3339) as the same millisecond.
    #[test]
    fn iso8601_round_trips(seconds in seconds()) {
        let rendered = DateFormat::Iso8601.render(seconds).expect("in range");
        let text = rendered.as_str().expect("a string");
        let read = DateTime::parse_from_rfc3339(text).expect("RFC 3339");
        prop_assert_eq!(read.timestamp_millis(), millis(seconds), "{}", text);
        prop_assert_eq!(text.contains('.'), seconds.fract() != 0.0, "{}", text);
    }

    /// `rfc2822` reads back as the whole second the instant falls in (it has
    /// no fractions), over the whole range, years before 1900 included.
    #[test]
    fn rfc2822_round_trips(seconds in seconds()) {
        let rendered = DateFormat::Rfc2822.render(seconds).expect("in range");
        let text = rendered.as_str().expect("a string");
        let read = DateTime::parse_from_rfc2822(text).expect("RFC 2822");
        prop_assert_eq!(read.timestamp(), millis(seconds).div_euclid(1000), "{}", text);
    }

    /// Outside the years 0000 to 9999 nothing is rendered, in any format.
    #[test]
    fn out_of_range_is_never_rendered(
        seconds in prop_oneof![
            (MAX_SECONDS + 1) as f64..1e300,
            -1e300..(MIN_SECONDS - 1) as f64,
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
        ],
        format in format(),
    ) {
        prop_assert_eq!(format.render(seconds), None);
    }
}
