//! The strict reading of JSON that Herald keeps as the client's text.
//!
//! Payloads are stored and signed as the bytes the client sent (serde_json's
//! `RawValue`), and reading a `RawValue` only checks the syntax: a lone UTF-16
//! surrogate (`"\ud800"`) or a number no `f64` can hold (`1e400`) passes, and is
//! then refused or mangled the first time anything parses the payload (a date
//! conversion, a schema check, the receiver). So does an object whose first
//! key is serde_json's reserved `$serde_json::private::RawValue`, which our own
//! parse would read as something else than the object sent. [`check_strict`] reads the text
//! the way those will, without building a value, so such a payload is refused
//! at the door with the place it went wrong.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// The key serde_json's `raw_value` feature (which Herald uses) gives a meaning
/// of its own: a `Value` read from an object whose first key is this one is the
/// JSON text in that key's value, not the object. Such a payload would be
/// validated and date-converted as something other than what is stored and
/// sent, so it is refused.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// Why a JSON text is not one Herald accepts, with serde_json's line and column.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StrictError(String);

/// Reads `text` as one JSON value, decoding every string and number: `Ok` only
/// if any JSON parser will read it back as the same value.
pub fn check_strict(text: &str) -> Result<(), StrictError> {
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_any(Strict)
        .and_then(|()| de.end())
        .map_err(|e| StrictError(e.to_string()))
}

/// A visitor that asks the deserializer to decode everything and keeps nothing.
struct Strict;

impl<'de> de::Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Strict).map(|()| Strict)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
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

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        // serde_json already refuses overflow; keep the rule explicit.
        if v.is_finite() {
            Ok(())
        } else {
            Err(E::custom("number out of range"))
        }
    }

    // Strings arrive decoded, so a bad escape has already been refused.
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<Strict>()?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            return Ok(());
        };
        if first == RAW_VALUE_TOKEN {
            return Err(de::Error::custom(format_args!(
                "the key {RAW_VALUE_TOKEN:?} is reserved as the first key of an object"
            )));
        }
        map.next_value::<Strict>()?;
        while map.next_key::<Strict>()?.is_some() {
            map.next_value::<Strict>()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_any_parser_reads_back_is_accepted_and_the_rest_refused() {
        let table: [(&str, Option<&str>); 17] = [
            (r#"{"a": [1, -2, 3.5, true, null, "x"]}"#, None),
            (r#"{"emoji": "\ud83d\ude00", "nul": "\u0000"}"#, None),
            (
                r#"{"big": 1e300, "small": -1e-300, "int": 18446744073709551615}"#,
                None,
            ),
            (r#"{"k\u00e9y": {"deep": [[[]]]}}"#, None),
            ("  {}  ", None),
            (r#"{"a": "\ud800"}"#, Some("hex escape")),
            (r#"{"a": "\udc00x"}"#, Some("lone leading surrogate")),
            (r#"{"\ud800": 1}"#, Some("hex escape")),
            (r#"{"a": 1e400}"#, Some("number out of range")),
            (r#"{"a": [-1e400]}"#, Some("number out of range")),
            (r#"{"a": 1} trailing"#, Some("trailing characters")),
            (r#"{"a": 1}{"b": 2}"#, Some("trailing characters")),
            // Found by the json_strict fuzz target: serde_json reads these as
            // `""` (an error), `1` and `{"at": 1}`, not as the objects they are.
            (
                r#"{"$serde_json::private::RawValue": ""}"#,
                Some("reserved"),
            ),
            (
                r#"{"$serde_json::private::RawValue": "1"}"#,
                Some("reserved"),
            ),
            (
                r#"{"a": [{"\u0024serde_json::private::RawValue": "{\"at\": 1}", "b": 2}]}"#,
                Some("reserved"),
            ),
            // Anywhere but first it is an ordinary key.
            (r#"{"a": 1, "$serde_json::private::RawValue": "1"}"#, None),
            (r#"{"$serde_json::private::Number": "1"}"#, None),
        ];
        for (text, want) in table {
            match (check_strict(text), want) {
                (Ok(()), None) => {}
                (Err(e), Some(part)) => assert!(e.0.contains(part), "{text}: {e}"),
                (got, want) => panic!("{text}: got {got:?}, wanted an error with {want:?}"),
            }
        }
    }
}
