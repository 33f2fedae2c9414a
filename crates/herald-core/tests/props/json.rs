//! `herald_core::json::check_strict`: the door every payload passes before it
//! is stored as sent.

use std::collections::BTreeSet;
use std::fmt;

use herald_core::json::check_strict;
use proptest::prelude::*;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{json, Value};

use crate::gen;

/// The key serde_json's `raw_value` feature reads as "the JSON text in my value"
/// when it comes first in an object.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// The oracle: serde_json reads the text into a value, and that value, written
/// and read again, is the same. That is what a delivery (and a receiver) does.
/// And the value is the text's own: no object in it starts with the key that
/// makes serde_json read something else (the json_strict fuzz target's find).
fn round_trips(text: &str) -> bool {
    let read_as_written = first_keys(text).is_some_and(|keys| !keys.contains(RAW_VALUE_TOKEN));
    read_as_written
        && serde_json::from_str::<Value>(text).is_ok_and(|value| {
            let written = serde_json::to_string(&value).expect("a Value serializes");
            serde_json::from_str::<Value>(&written).is_ok_and(|again| again == value)
        })
}

/// The first key of every object in `text`, decoded, read without `Value`.
fn first_keys(text: &str) -> Option<BTreeSet<String>> {
    let mut keys = BTreeSet::new();
    let mut de = serde_json::Deserializer::from_str(text);
    FirstKeys(&mut keys).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(keys)
}

struct FirstKeys<'a>(&'a mut BTreeSet<String>);

impl<'de> DeserializeSeed<'de> for FirstKeys<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FirstKeys<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(FirstKeys(&mut *self.0))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut first = true;
        while let Some(key) = map.next_key::<String>()? {
            if std::mem::take(&mut first) {
                self.0.insert(key);
            }
            map.next_value_seed(FirstKeys(&mut *self.0))?;
        }
        Ok(())
    }
}

/// Text made of JSON's own characters, so that many candidates are almost JSON.
fn jsonish() -> impl Strategy<Value = String> {
    prop_oneof![
        r#"[\[\]{}:, "\\/0-9.eE+\-tfnrulasdbx]{0,40}"#,
        // A string with escapes, surrogates among them.
        r#""(\\u[dD][89abAB][0-9a-fA-F]{2}|\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}|\\[nrtbf"\\/]|[a-z ]){0,6}""#,
        // Numbers, out of range among them.
        r#"-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,4})?"#,
        // Valid JSON with a change somewhere.
        (
            gen::value(),
            any::<prop::sample::Index>(),
            any::<char>(),
            any::<bool>()
        )
            .prop_map(|(value, at, c, insert)| {
                let mut text = serde_json::to_string(&value).expect("serializes");
                let places: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
                if places.is_empty() {
                    return text;
                }
                let place = places[at.index(places.len())];
                if insert {
                    text.insert(place, c);
                } else {
                    text.remove(place);
                }
                text
            }),
    ]
}

proptest! {
    /// Accepted exactly when serde_json reads the text into a value that
    /// survives being written and read again.
    #[test]
    fn agrees_with_a_serde_json_round_trip(text in prop_oneof![jsonish(), any::<String>()]) {
        prop_assert_eq!(check_strict(&text).is_ok(), round_trips(&text), "{:?}", text);
    }

    /// Whatever serde_json writes, compact or pretty, is accepted. (An object
    /// built in code to start with the reserved key would not be, rightly: it
    /// does not read back; no parsed value has one.)
    #[test]
    fn accepts_what_serde_json_writes(value in gen::value()) {
        let compact = serde_json::to_string(&value).expect("serializes");
        prop_assert_eq!(check_strict(&compact), Ok(()), "{}", compact);
        let pretty = serde_json::to_string_pretty(&value).expect("serializes");
        prop_assert_eq!(check_strict(&pretty), Ok(()), "{}", pretty);
    }

    /// A lone surrogate escape is refused wherever it sits; a pair is accepted.
    #[test]
    fn lone_surrogates_are_refused(
        high in 0xD800u32..0xDC00,
        low in 0xDC00u32..0xE000,
        as_key in any::<bool>(),
    ) {
        let place = |s: String| if as_key { format!("{{{s}: 1}}") } else { format!("[{s}]") };
        let lone_high = place(format!(r#""\u{high:04x}""#));
        let lone_low = place(format!(r#""x\u{low:04X}""#));
        let pair = place(format!(r#""\u{high:04x}\u{low:04x}""#));
        prop_assert!(check_strict(&lone_high).is_err(), "{}", lone_high);
        prop_assert!(check_strict(&lone_low).is_err(), "{}", lone_low);
        prop_assert_eq!(check_strict(&pair), Ok(()), "{}", pair);
    }

    /// An object that starts with serde_json's reserved key is refused, at any
    /// depth and however the key is escaped: serde_json would read it as the
    /// JSON in its value. Anywhere but first, the key is an ordinary one.
    #[test]
    fn the_reserved_first_key_is_refused(
        inner in gen::value(),
        escaped in any::<bool>(),
        depth in 0usize..4,
    ) {
        let key = if escaped { r"\u0024serde_json::private::RawValue" } else { RAW_VALUE_TOKEN };
        let inner = serde_json::to_string(&serde_json::to_string(&inner).expect("serializes"))
            .expect("serializes");
        let mut first = format!(r#"{{"{key}": {inner}}}"#);
        let mut later = format!(r#"{{"a": 1, "{key}": {inner}}}"#);
        for _ in 0..depth {
            first = format!(r#"{{"x": [{first}]}}"#);
            later = format!(r#"{{"x": [{later}]}}"#);
        }
        prop_assert!(check_strict(&first).is_err(), "{}", first);
        prop_assert_eq!(check_strict(&later), Ok(()), "{}", later);
        let mut read: Value = serde_json::from_str(&later).expect("parses");
        for _ in 0..depth {
            read = read["x"][0].take();
        }
        prop_assert_eq!(&read[RAW_VALUE_TOKEN], &json!(serde_json::from_str::<String>(&inner).expect("a string")));
    }

    /// A number is accepted exactly when it is a finite f64.
    #[test]
    fn numbers_beyond_f64_are_refused(mantissa in 1u32..10, exponent in 0u32..1000) {
        let text = format!("{{\"n\": {mantissa}e{exponent}}}");
        let finite = format!("{mantissa}e{exponent}").parse::<f64>().expect("a float").is_finite();
        prop_assert_eq!(check_strict(&text).is_ok(), finite, "{}", text);
    }
}
