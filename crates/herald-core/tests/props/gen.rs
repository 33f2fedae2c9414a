//! Generators shared by the property tests.

use proptest::prelude::*;
use serde_json::{Map, Number, Value};

/// The first and last whole second every date format can show:
/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
pub const MIN_SECONDS: i64 = -62_167_219_200;
pub const MAX_SECONDS: i64 = 253_402_300_799;

/// Object keys: a few that collide often, and any string at all.
pub fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["at", "a", "b", "items", "", "a/b", "c~d", "~1"])
            .prop_map(String::from),
        1 => any::<String>(),
    ]
}

/// Numbers as payloads carry them: timestamps in and out of range, fractions,
/// tiny and huge magnitudes, integers past 2^53.
pub fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        (MIN_SECONDS - 10..=MAX_SECONDS + 10).prop_map(Number::from),
        any::<i64>().prop_map(Number::from),
        any::<u64>().prop_map(Number::from),
        (MIN_SECONDS as f64..MAX_SECONDS as f64).prop_filter_map("finite", Number::from_f64),
        any::<f64>().prop_filter_map("finite", Number::from_f64),
    ]
}

pub fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number().prop_map(Value::Number),
        any::<String>().prop_map(Value::String),
    ]
}

/// Any JSON value, a few levels deep.
pub fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Any JSON object.
pub fn object() -> impl Strategy<Value = Value> {
    prop::collection::vec((key(), value()), 0..8)
        .prop_map(|members| Value::Object(members.into_iter().collect()))
}
