//! `Retry-After` as a receiver sends it, and the retry schedule as an operator
//! writes it.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use herald_core::schedule::{retry_after_delay, RetrySchedule, MAX_DELAY};
use proptest::prelude::*;

/// A clock somewhere in the years RFC 850's two-digit years can name
/// (1970 to 2068), so every date form can be asked about it.
fn now() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..3_124_137_600).prop_map(|s| DateTime::from_timestamp(s, 0).expect("in range"))
}

fn cap() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(MAX_DELAY),
        (0u64..100_000).prop_map(Duration::from_secs),
        Just(Duration::MAX),
    ]
}

/// The three forms RFC 9110 allows for an HTTP date.
fn http_dates(at: DateTime<Utc>) -> Vec<String> {
    let mut forms = vec![
        at.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
        at.format("%a %b %e %H:%M:%S %Y").to_string(),
    ];
    // RFC 850 has two-digit years, read as 1969 to 2068.
    if (1969..=2068).contains(&at.format("%Y").to_string().parse::<i32>().unwrap_or(0)) {
        forms.push(at.format("%A, %d-%b-%y %H:%M:%S GMT").to_string());
    }
    forms
}

proptest! {
    /// Anything at all: no panic, and never longer than the cap.
    #[test]
    fn never_more_than_the_cap(header in any::<String>(), now in now(), max in cap()) {
        if let Some(delay) = retry_after_delay(&header, now, max) {
            prop_assert!(delay <= max);
        }
    }

    /// Date-shaped text reaches the date parser far more often than any string.
    #[test]
    fn date_shaped_text_never_exceeds_the_cap(
        header in "[A-Za-z]{0,9},? ?[0-9]{0,3}[ -]?[A-Za-z]{0,4}[ -]?[0-9]{0,5} [0-9]{0,2}:[0-9]{0,2}:[0-9]{0,2} ?[A-Z+0-9-]{0,5}",
        now in now(),
        max in cap(),
    ) {
        if let Some(delay) = retry_after_delay(&header, now, max) {
            prop_assert!(delay <= max);
        }
    }

    /// Delta-seconds are seconds, capped; numbers too long for u64 are the cap.
    #[test]
    fn numbers_are_seconds(
        seconds in prop_oneof![0u64..1_000_000, any::<u64>()],
        pad in prop::sample::select(vec!["", " ", "\t", "  "]),
        now in now(),
        max in cap(),
    ) {
        let header = format!("{pad}{seconds}{pad}");
        prop_assert_eq!(
            retry_after_delay(&header, now, max),
            Some(Duration::from_secs(seconds).min(max))
        );
        let huge = format!("{seconds}{}", "9".repeat(20));
        prop_assert_eq!(retry_after_delay(&huge, now, max), Some(max));
    }

    /// An HTTP date n seconds ahead, in any of its three forms, asks for the
    /// same wait as the number n; a date in the past asks for none.
    #[test]
    fn dates_agree_with_numbers(
        now in now(),
        ahead in prop_oneof![0i64..4000, 0i64..1_000_000],
        past in 1i64..1_000_000,
        max in cap(),
    ) {
        let by_number = retry_after_delay(&ahead.to_string(), now, max);
        for form in http_dates(now + TimeDelta::seconds(ahead)) {
            prop_assert_eq!(retry_after_delay(&form, now, max), by_number, "{}", form);
        }
        for form in http_dates(now - TimeDelta::seconds(past)) {
            prop_assert_eq!(retry_after_delay(&form, now, max), Some(Duration::ZERO), "{}", form);
        }
    }

    /// A schedule written as the operator writes it reads back as the same
    /// delays; anything else is refused, never a panic.
    #[test]
    fn schedules_read_back(
        delays in prop::collection::vec(0..=MAX_DELAY.as_secs(), 0..10),
        separator in prop::sample::select(vec![",", ", ", " , "]),
        junk in any::<String>(),
    ) {
        let text = delays.iter().map(u64::to_string).collect::<Vec<_>>().join(separator);
        let schedule: RetrySchedule = text.parse().expect("a valid schedule");
        let expected: Vec<Duration> = delays.iter().copied().map(Duration::from_secs).collect();
        prop_assert_eq!(schedule.delays(), expected.as_slice());
        prop_assert_eq!(schedule.max_attempts() as usize, delays.len() + 1);
        if let Ok(read) = junk.parse::<RetrySchedule>() {
            prop_assert!(read.delays().iter().all(|d| *d <= MAX_DELAY));
        }
    }
}
