//! `Retry-After` parsing: never more than the cap, the number form read as
//! seconds, and a date read against the clock (one second earlier, one second
//! longer to wait).
#![no_main]

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use herald_core::schedule::retry_after_delay;
use libfuzzer_sys::fuzz_target;

const MAX: Duration = Duration::from_secs(7 * 24 * 3600);

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    let now = DateTime::<Utc>::from_timestamp(1_445_412_480, 0).expect("in range");
    let Some(delay) = retry_after_delay(header, now, MAX) else {
        return;
    };
    assert!(delay <= MAX, "{header:?} -> {delay:?}");
    let value = header.trim();
    if value.bytes().all(|b| b.is_ascii_digit()) {
        let expected = value
            .parse::<u64>()
            .map_or(MAX, |s| Duration::from_secs(s).min(MAX));
        assert_eq!(delay, expected, "{header:?}");
        return;
    }
    // A date: asked one second earlier, the wait is one second longer, unless
    // the cap or "already past" cuts it.
    let earlier = retry_after_delay(header, now - TimeDelta::seconds(1), MAX)
        .unwrap_or_else(|| panic!("{header:?} read as a date once but not twice"));
    if delay.is_zero() {
        assert!(earlier <= Duration::from_secs(1), "{header:?}: {earlier:?}");
    } else if delay + Duration::from_secs(1) <= MAX {
        assert_eq!(earlier, delay + Duration::from_secs(1), "{header:?}");
    } else {
        assert_eq!(earlier, MAX, "{header:?}");
    }
});
