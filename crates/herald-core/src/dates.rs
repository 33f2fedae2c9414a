//! The date format an endpoint chooses for timestamp fields.
//!
//! Senders such as Spot put UNIX seconds in their payloads, and many receiving
//! tools (spreadsheets, no-code automations, log pipelines) cannot read those.
//! An event type's schema marks which fields are UNIX timestamps with
//! `"format": "unix-time"`, and each endpoint picks how those fields are written
//! when Herald delivers to it. The schema is the only source of truth: Herald
//! never guesses that a number is a date.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::Value;

mod convert;
pub use convert::convert_dates;

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

#[cfg(test)]
mod tests;
