//! When to try a failed delivery again.
//!
//! A schedule is the list of delays between attempts: after the first failure
//! Herald waits the first delay, after the second failure the second, and so on
//! until the list runs out and the message is marked failed for that endpoint.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDateTime, Utc};

/// The delays between delivery attempts, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

/// Why a string is not a retry schedule.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("item {position} ({item:?}) is not a whole number of seconds")]
    NotWholeSeconds { position: usize, item: String },
    #[error(
        "item {position} ({item:?}) is longer than the maximum of 7 days ({max} seconds)",
        max = MAX_DELAY.as_secs()
    )]
    TooLong { position: usize, item: String },
}

/// The longest single delay a schedule may hold. Longer waits are almost
/// certainly a typo (milliseconds for seconds), and messages should not sit in
/// the queue for weeks.
pub const MAX_DELAY: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Svix's schedule: 5 seconds, 5 minutes, 30 minutes, 2 hours, 5 hours, and
/// 10 hours twice, so the last attempt comes about 27 hours after the first.
const DEFAULT_SECONDS: [u64; 7] = [5, 300, 1800, 7200, 18000, 36000, 36000];

impl RetrySchedule {
    /// A schedule from delays that need not be whole seconds (tests use
    /// milliseconds to run retries quickly). Each delay must be at most
    /// [`MAX_DELAY`]; the error names the first one that is not.
    pub fn from_delays(delays: Vec<Duration>) -> Result<RetrySchedule, ScheduleError> {
        if let Some(index) = delays.iter().position(|d| *d > MAX_DELAY) {
            return Err(ScheduleError::TooLong {
                position: index + 1,
                item: format!("{:?}", delays[index]),
            });
        }
        Ok(RetrySchedule(delays))
    }

    /// The delay before the next attempt, after `failed_attempts` attempts have
    /// failed; `None` when no attempt is left (or nothing has failed yet).
    pub fn delay_after(&self, failed_attempts: u32) -> Option<Duration> {
        let index = usize::try_from(failed_attempts).ok()?.checked_sub(1)?;
        self.0.get(index).copied()
    }

    /// How many attempts a message gets in all: the first, plus one per delay.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.0.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    /// The delays, in order.
    pub fn delays(&self) -> &[Duration] {
        &self.0
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule(DEFAULT_SECONDS.map(Duration::from_secs).to_vec())
    }
}

impl FromStr for RetrySchedule {
    type Err = ScheduleError;

    /// Reads comma-separated whole seconds such as `"5, 300, 1800"`. An empty
    /// (or all-blank) string is a schedule with no retries at all.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Ok(RetrySchedule(Vec::new()));
        }
        s.split(',')
            .enumerate()
            .map(|(index, raw)| parse_delay(index + 1, raw.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map(RetrySchedule)
    }
}

fn parse_delay(position: usize, item: &str) -> Result<Duration, ScheduleError> {
    // Digits only: `u64::from_str` would also take a leading `+`, which is not
    // how anyone writes a number of seconds on purpose.
    if item.is_empty() || !item.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ScheduleError::NotWholeSeconds {
            position,
            item: item.to_owned(),
        });
    }
    // All digits and still not a u64 means far more than 7 days.
    match item.parse::<u64>().map(Duration::from_secs) {
        Ok(delay) if delay <= MAX_DELAY => Ok(delay),
        _ => Err(ScheduleError::TooLong {
            position,
            item: item.to_owned(),
        }),
    }
}

/// Spreads `delay` by a random factor between 0.8 and 1.2, so that messages
/// that failed together (say, while an endpoint was down) do not all retry in
/// the same instant and knock it over again.
pub fn jittered(delay: Duration, rng: &mut impl rand::Rng) -> Duration {
    if delay.is_zero() {
        return Duration::ZERO;
    }
    let factor: f64 = rng.gen_range(0.8..=1.2);
    // The factor is positive and finite, so the only failure is overflow on an
    // absurdly long delay; saturating is the honest answer there.
    Duration::try_from_secs_f64(delay.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

/// Whole seconds for a `Retry-After` header Herald sends: rounded up, at
/// least 1.
pub fn retry_seconds(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

/// How long a receiver asked Herald to wait, from its `Retry-After` header,
/// capped at `max` so a receiver cannot park a message forever.
///
/// The value is either a number of seconds or an HTTP date; a date in the past
/// means "now". Anything else is `None`, and the caller falls back to its
/// schedule.
pub fn retry_after_delay(header: &str, now: DateTime<Utc>, max: Duration) -> Option<Duration> {
    let value = header.trim();
    if value.is_empty() {
        return None;
    }
    let delay = if value.bytes().all(|b| b.is_ascii_digit()) {
        // A number too large for u64 is still a valid (very long) delay.
        value
            .parse()
            .map(Duration::from_secs)
            .unwrap_or(Duration::MAX)
    } else {
        let at = parse_http_date(value, now)?;
        // A negative difference (a date in the past) fails to convert: wait zero.
        (at - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(delay.min(max))
}

/// Reads the three date formats HTTP allows in `Retry-After`: the preferred
/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), and the obsolete RFC 850
/// (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`)
/// forms, which RFC 9110 says recipients must still accept.
fn parse_http_date(value: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc2822(value) {
        return Some(at.with_timezone(&Utc));
    }
    if let Some(at) = parse_rfc850(value, now) {
        return Some(at);
    }
    NaiveDateTime::parse_from_str(value, "%a %b %e %H:%M:%S %Y")
        .ok()
        .map(|at| at.and_utc())
}

/// RFC 850's `Sunday, 06-Nov-94 08:49:37 GMT`, whose two-digit year is read
/// as RFC 9110 (5.6.7) says: the year with those digits nearest `now`, and a
/// year more than 50 years ahead is the most recent past one instead.
fn parse_rfc850(value: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let (weekday, rest) = value.split_once(", ")?;
    let (date, time) = rest.split_once(' ')?;
    let (day_month, yy) = date.rsplit_once('-')?;
    if yy.len() != 2 {
        return None;
    }
    let yy: i32 = yy.parse().ok()?;
    let this_year = now.year();
    let mut year = this_year - this_year.rem_euclid(100) + yy;
    if year > this_year + 50 {
        year -= 100;
    } else if year < this_year - 50 {
        year += 100;
    }
    let full = format!("{weekday}, {day_month}-{year} {time}");
    NaiveDateTime::parse_from_str(&full, "%A, %d-%b-%Y %H:%M:%S GMT")
        .ok()
        .map(|at| at.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc850_two_digit_years_are_read_near_now() {
        use chrono::TimeZone;
        let at = |y, m, d| Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap();
        for (now, date, year) in [
            // Found by the property test: 69 is 1969 just after the epoch.
            (at(1970, 1, 1), "Wednesday, 31-Dec-69 23:59:59 GMT", 1969),
            (at(2026, 12, 7), "Sunday, 06-Nov-94 08:49:37 GMT", 1994),
            (at(2026, 12, 7), "Friday, 01-Jan-27 00:00:00 GMT", 2027),
            (at(2099, 6, 1), "Friday, 01-Jan-06 00:00:00 GMT", 2106),
        ] {
            let got = parse_http_date(date, now).map(|t| t.year());
            assert_eq!(got, Some(year), "{date} at {now}");
        }
        // A weekday that is not the date's is not a date.
        assert_eq!(
            parse_http_date("Monday, 06-Nov-94 08:49:37 GMT", at(2026, 1, 1)),
            None
        );
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        let cases = [(0, 1), (1, 1), (999, 1), (1000, 1), (1001, 2), (5999, 6)];
        for (ms, want) in cases {
            assert_eq!(retry_seconds(Duration::from_millis(ms)), want, "{ms} ms");
        }
    }
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn secs(list: &[u64]) -> Vec<Duration> {
        list.iter().copied().map(Duration::from_secs).collect()
    }

    #[test]
    fn default_is_svix_schedule() {
        let schedule = RetrySchedule::default();
        assert_eq!(
            schedule.delays(),
            secs(&[5, 300, 1800, 7200, 18000, 36000, 36000])
        );
        assert_eq!(schedule.max_attempts(), 8);
    }

    #[test]
    fn parse() {
        let table: &[(&str, Result<Vec<Duration>, ScheduleError>)] = &[
            ("", Ok(vec![])),
            ("   ", Ok(vec![])),
            ("0", Ok(secs(&[0]))),
            ("1,2,3", Ok(secs(&[1, 2, 3]))),
            ("1, 2,3", Ok(secs(&[1, 2, 3]))),
            (" 5 ,  300 , 1800 ", Ok(secs(&[5, 300, 1800]))),
            ("1,1,1", Ok(secs(&[1, 1, 1]))),
            ("007", Ok(secs(&[7]))),
            ("604800", Ok(secs(&[604800]))),
            (
                "5,300,1800,7200,18000,36000,36000",
                Ok(RetrySchedule::default().0),
            ),
            (
                "1,x,3",
                Err(ScheduleError::NotWholeSeconds {
                    position: 2,
                    item: "x".into(),
                }),
            ),
            (
                "1.5",
                Err(ScheduleError::NotWholeSeconds {
                    position: 1,
                    item: "1.5".into(),
                }),
            ),
            (
                "1,2,-3",
                Err(ScheduleError::NotWholeSeconds {
                    position: 3,
                    item: "-3".into(),
                }),
            ),
            (
                "+4",
                Err(ScheduleError::NotWholeSeconds {
                    position: 1,
                    item: "+4".into(),
                }),
            ),
            (
                "5s",
                Err(ScheduleError::NotWholeSeconds {
                    position: 1,
                    item: "5s".into(),
                }),
            ),
            (
                "1 2",
                Err(ScheduleError::NotWholeSeconds {
                    position: 1,
                    item: "1 2".into(),
                }),
            ),
            (
                "1,,3",
                Err(ScheduleError::NotWholeSeconds {
                    position: 2,
                    item: "".into(),
                }),
            ),
            (
                "1,2,",
                Err(ScheduleError::NotWholeSeconds {
                    position: 3,
                    item: "".into(),
                }),
            ),
            (
                "1;2",
                Err(ScheduleError::NotWholeSeconds {
                    position: 1,
                    item: "1;2".into(),
                }),
            ),
            (
                "5,604801",
                Err(ScheduleError::TooLong {
                    position: 2,
                    item: "604801".into(),
                }),
            ),
            (
                "99999999999999999999999",
                Err(ScheduleError::TooLong {
                    position: 1,
                    item: "99999999999999999999999".into(),
                }),
            ),
        ];
        for (input, expected) in table {
            let got = input.parse::<RetrySchedule>().map(|s| s.0);
            assert_eq!(&got, expected, "{input:?}");
        }
    }

    #[test]
    fn error_messages() {
        let table = [
            ("1,x", "item 2 (\"x\") is not a whole number of seconds"),
            (
                "700000",
                "item 1 (\"700000\") is longer than the maximum of 7 days (604800 seconds)",
            ),
        ];
        for (input, expected) in table {
            let message = input.parse::<RetrySchedule>().err().map(|e| e.to_string());
            assert_eq!(message.as_deref(), Some(expected), "{input:?}");
        }
    }

    #[test]
    fn from_delays() {
        let table = [
            (vec![], true),
            (
                vec![Duration::from_millis(10), Duration::from_millis(20)],
                true,
            ),
            (vec![MAX_DELAY], true),
            (
                vec![Duration::ZERO, MAX_DELAY + Duration::from_nanos(1)],
                false,
            ),
        ];
        for (delays, ok) in table {
            let got = RetrySchedule::from_delays(delays.clone());
            assert_eq!(got.is_ok(), ok, "{delays:?}");
            if let Ok(schedule) = got {
                assert_eq!(schedule.delays(), delays);
            }
        }
        assert_eq!(
            RetrySchedule::from_delays(vec![Duration::ZERO, Duration::from_secs(604801)]),
            Err(ScheduleError::TooLong {
                position: 2,
                item: "604801s".into(),
            })
        );
    }

    #[test]
    fn delay_after_and_max_attempts() {
        let schedule: RetrySchedule = "5,300,1800".parse().expect("valid schedule");
        let table = [
            (0, None),
            (1, Some(5)),
            (2, Some(300)),
            (3, Some(1800)),
            (4, None),
            (100, None),
            (u32::MAX, None),
        ];
        for (failed, expected) in table {
            let expected = expected.map(Duration::from_secs);
            assert_eq!(schedule.delay_after(failed), expected, "{failed}");
        }
        assert_eq!(schedule.max_attempts(), 4);

        let none: RetrySchedule = "".parse().expect("valid schedule");
        assert_eq!(none.max_attempts(), 1);
        for failed in [0, 1, 2] {
            assert_eq!(none.delay_after(failed), None);
        }
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let mut rng = StdRng::seed_from_u64(7);
        let table = [
            Duration::from_millis(1),
            Duration::from_secs(5),
            Duration::from_secs(300),
            Duration::from_secs(36000),
            MAX_DELAY,
        ];
        for delay in table {
            let low = delay.mul_f64(0.8);
            let high = delay.mul_f64(1.2);
            let samples: Vec<Duration> = (0..2000).map(|_| jittered(delay, &mut rng)).collect();
            for sample in &samples {
                assert!(*sample >= low && *sample <= high, "{delay:?} -> {sample:?}");
            }
            // The spread is real: both sides of the delay get used.
            assert!(
                samples.iter().any(|s| *s < delay.mul_f64(0.85)),
                "{delay:?}"
            );
            assert!(
                samples.iter().any(|s| *s > delay.mul_f64(1.15)),
                "{delay:?}"
            );
        }
    }

    #[test]
    fn jitter_edge_cases() {
        let mut rng = StdRng::seed_from_u64(11);
        let table = [
            (Duration::ZERO, Duration::ZERO, Duration::ZERO),
            (
                Duration::from_nanos(1),
                Duration::ZERO,
                Duration::from_nanos(2),
            ),
            (Duration::MAX, Duration::MAX.mul_f64(0.79), Duration::MAX),
        ];
        for (delay, low, high) in table {
            for _ in 0..200 {
                let got = jittered(delay, &mut rng);
                assert!(got >= low && got <= high, "{delay:?} -> {got:?}");
            }
        }
    }

    #[test]
    fn retry_after() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .expect("valid date")
            .with_timezone(&Utc);
        let max = Duration::from_secs(3600);
        let table: &[(&str, Option<u64>)] = &[
            // Delta-seconds.
            ("0", Some(0)),
            ("120", Some(120)),
            (" 120 ", Some(120)),
            ("3600", Some(3600)),
            ("3601", Some(3600)),
            ("99999999999999999999999999", Some(3600)),
            // IMF-fixdate.
            ("Wed, 21 Oct 2015 07:28:00 GMT", Some(0)),
            ("Wed, 21 Oct 2015 07:30:30 GMT", Some(150)),
            ("Wed, 21 Oct 2015 09:00:00 GMT", Some(3600)),
            ("Wed, 21 Oct 2015 07:00:00 GMT", Some(0)),
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(0)),
            // RFC 850 and asctime, which HTTP still asks recipients to read.
            ("Wednesday, 21-Oct-15 07:29:00 GMT", Some(60)),
            ("Wed Oct 21 07:28:10 2015", Some(10)),
            ("Thu Oct  1 07:28:10 2015", Some(0)),
            // A weekday that does not match the date.
            ("Wed Oct  1 07:28:10 2015", None),
            ("Thu, 21 Oct 2015 07:28:00 GMT", None),
            // Garbage.
            ("", None),
            ("   ", None),
            ("soon", None),
            ("-5", None),
            ("+5", None),
            ("1.5", None),
            ("120 seconds", None),
            ("2015-10-21T07:30:00Z", None),
            ("Wed, 32 Oct 2015 07:28:00 GMT", None),
        ];
        for (header, expected) in table {
            let expected = expected.map(Duration::from_secs);
            assert_eq!(retry_after_delay(header, now, max), expected, "{header:?}");
        }
    }
}
