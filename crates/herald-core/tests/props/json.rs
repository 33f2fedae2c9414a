//! `herald_core::json::check_strict`: the door every payload passes before it
//! is stored as sent.

use herald_core::json::check_strict;
use proptest::prelude::*;
use serde_json::Value;

use crate::gen;

/// The oracle: serde_json reads the text into a value, and that value, written
/// and read again, is the same. That is what a delivery (and a receiver) does.
fn round_trips(text: &str) -> bool {
    serde_json::from_str::<Value>(text).is_ok_and(|value| {
        let written = serde_json::to_string(&value).expect("a Value serializes");
        serde_json::from_str::<Value>(&written).is_ok_and(|again| again == value)
    })
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

    /// Whatever serde_json writes, compact or pretty, is accepted.
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

    /// A number is accepted exactly when it is a finite f64.
    #[test]
    fn numbers_beyond_f64_are_refused(mantissa in 1u32..10, exponent in 0u32..1000) {
        let text = format!("{{\"n\": {mantissa}e{exponent}}}");
        let finite = format!("{mantissa}e{exponent}").parse::<f64>().expect("a float").is_finite();
        prop_assert_eq!(check_strict(&text).is_ok(), finite, "{}", text);
    }
}
