//! The date conversion of a payload, as delivery runs it: a schema and a
//! payload from the input, every format. The result has the payload's shape
//! (same keys in the same order), differs only where a number became its
//! rendering, counts those places, stays JSON that reads back strictly, and a
//! second conversion to a text format changes nothing.
//!
//! Input: one format byte, then the schema's JSON text, a 0xFF byte (never in
//! UTF-8), and the payload's JSON text.
#![no_main]

use herald_core::dates::{convert_dates, DateFormat};
use herald_core::json::check_strict;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let format = DateFormat::ALL[usize::from(selector) % DateFormat::ALL.len()];
    let (schema, payload) = match rest.iter().position(|&b| b == 0xFF) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &b"{}"[..]),
    };
    let (Ok(schema), Ok(original)) = (
        serde_json::from_slice::<Value>(schema),
        serde_json::from_slice::<Value>(payload),
    ) else {
        return;
    };

    let mut converted = original.clone();
    let changed = convert_dates(&mut converted, &schema, format);
    assert_eq!(changed, differences(&original, &converted, format));
    if format == DateFormat::Unix {
        assert_eq!(changed, 0);
    }

    // What is sent is the serialization of the result: strict JSON that reads
    // back as the same value.
    let sent = serde_json::to_string(&converted).expect("serializes");
    assert_eq!(check_strict(&sent), Ok(()), "{sent}");
    assert_eq!(
        serde_json::from_str::<Value>(&sent).ok(),
        Some(converted.clone())
    );

    if matches!(format, DateFormat::Iso8601 | DateFormat::Rfc2822) {
        let mut twice = converted.clone();
        assert_eq!(convert_dates(&mut twice, &schema, format), 0);
        assert_eq!(twice, converted);
    }
});

/// How many leaves differ between the payload and its conversion, checking on
/// the way that the shape is the same and each difference is a rendering.
fn differences(before: &Value, after: &Value, format: DateFormat) -> usize {
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            let keys_a: Vec<&String> = a.keys().collect();
            let keys_b: Vec<&String> = b.keys().collect();
            assert_eq!(keys_a, keys_b, "keys or their order changed");
            a.values()
                .zip(b.values())
                .map(|(x, y)| differences(x, y, format))
                .sum()
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "an array changed length");
            a.iter()
                .zip(b)
                .map(|(x, y)| differences(x, y, format))
                .sum()
        }
        (x, y) if x == y => 0,
        (Value::Number(n), rendered) => {
            let seconds = n.as_f64().expect("every number reads as f64");
            assert_eq!(format.render(seconds).as_ref(), Some(rendered), "{n}");
            1
        }
        (x, y) => panic!("{x} became {y}, which is no date rendering"),
    }
}
