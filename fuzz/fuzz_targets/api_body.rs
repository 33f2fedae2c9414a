//! A `POST /api/v1/app/{app}/msg` body, through the API's own JSON reader
//! (`herald::api::extract::parse_json`) and the checks `messages::create`
//! makes, then through delivery's date conversion. The body type mirrors
//! `MessageIn`, which is private to the API.
//!
//! What must hold: text that is not JSON is never accepted (a 422 at
//! `body`); a 422 names a place under `body`; and a payload the API accepts is one delivery can
//! read, so the conversion never falls back to the unconverted bytes, and
//! what it sends is strict JSON that reads back as what it converted.
#![no_main]

use herald::api::extract::parse_json;
use herald::service::Error as ApiError;
use herald_core::dates::{convert_dates, DateFormat};
use herald_core::json::check_strict;
use herald_core::name::{validate_channel, validate_name};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

/// The fields of the API's `MessageIn`, with the same serde attributes.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct MessageIn {
    event_type: String,
    payload: Box<RawValue>,
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    channels: Option<Vec<String>>,
    #[serde(default)]
    application: Option<Value>,
    #[serde(default)]
    payload_retention_period: Option<i64>,
}

fuzz_target!(|data: &[u8]| {
    let is_json = serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok();
    let input = match parse_json::<MessageIn>(data) {
        Ok(input) => input,
        Err(ApiError::Validation(fields)) => {
            assert_eq!(fields.len(), 1);
            assert_eq!(fields[0].loc.first().map(String::as_str), Some("body"));
            // Not JSON at all: 422 at the body itself, with serde's position.
            if fields[0].kind == "value_error.jsondecode" {
                assert!(!is_json, "JSON refused as not JSON: {:?}", fields[0].msg);
                assert_eq!(fields[0].loc, ["body"]);
                return;
            }
            // serde_json's position is cut off the message (the text sent may
            // itself say " at line ", as the first run of this target found).
            assert!(!ends_with_position(&fields[0].msg), "{:?}", fields[0].msg);
            return;
        }
        Err(other) => panic!("parse_json answered {other:?}"),
    };
    assert!(is_json, "a body that is not JSON was accepted");

    // The checks `messages::create` makes before it stores anything.
    let payload = input.payload.get();
    if validate_name(&input.event_type).is_err()
        || input
            .event_id
            .as_deref()
            .is_some_and(|id| validate_name(id).is_err())
        || input
            .channels
            .iter()
            .flatten()
            .any(|c| validate_channel(c).is_err())
        || !payload.trim_start().starts_with('{')
        || check_strict(payload).is_err()
    {
        return;
    }

    // Delivery (`Deliverer::body_for`) parses the stored text; it must succeed.
    let value: Value = serde_json::from_str(payload)
        .unwrap_or_else(|e| panic!("accepted payload {payload:?} does not parse: {e}"));
    assert!(value.is_object());
    let everything = json!({
        "format": "unix-time",
        "additionalProperties": {"$ref": "#"},
        "items": {"$ref": "#"}
    });
    for format in [DateFormat::UnixMs, DateFormat::Iso8601, DateFormat::Rfc2822] {
        let mut converted = value.clone();
        convert_dates(&mut converted, &everything, format);
        let sent = serde_json::to_string(&converted).expect("serializes");
        assert_eq!(check_strict(&sent), Ok(()), "{sent}");
        assert_eq!(serde_json::from_str::<Value>(&sent).ok(), Some(converted));
    }
});

/// Whether `msg` ends as serde_json's errors do: " at line N column M".
fn ends_with_position(msg: &str) -> bool {
    let Some(at) = msg.rfind(" at line ") else {
        return false;
    };
    let rest = &msg[at + " at line ".len()..];
    let Some((line, column)) = rest.split_once(" column ") else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(line) && digits(column)
}
