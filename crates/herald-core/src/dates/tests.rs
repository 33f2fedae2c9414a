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
