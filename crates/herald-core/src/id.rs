//! Prefixed, time-sortable identifiers such as `msg_01JDK3V8Q4ZJ6T9W2E5XKXH1BN`.
//!
//! The prefix tells a human (and the API) what kind of object an ID names; the
//! ULID after it sorts by creation time, so "newest first" listings and cursor
//! pagination can order by ID alone.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use ulid::{Generator, Ulid};

/// The kind of object an ID names; its string form is the ID's prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdPrefix {
    App,
    Endpoint,
    Message,
    Attempt,
    EventType,
    Org,
    Task,
    /// An API token's record (its `jti`).
    Token,
    /// A portal link and the sessions it opens.
    PortalGrant,
}

impl IdPrefix {
    /// The prefix as it appears before the `_` in an ID. These match Svix's
    /// prefixes where Svix has one, so IDs look familiar to its users.
    pub fn as_str(self) -> &'static str {
        match self {
            IdPrefix::App => "app",
            IdPrefix::Endpoint => "ep",
            IdPrefix::Message => "msg",
            IdPrefix::Attempt => "atmpt",
            IdPrefix::EventType => "evtype",
            IdPrefix::Org => "org",
            IdPrefix::Task => "qtask",
            IdPrefix::Token => "tok",
            IdPrefix::PortalGrant => "pgrant",
        }
    }
}

impl std::fmt::Display for IdPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Returns a new ID: the prefix, `_`, and a 26-character ULID.
///
/// IDs from one process are strictly increasing, even when many are made within
/// the same millisecond, because queue ordering and pagination cursors compare
/// IDs as strings and must never see two in the "wrong" order.
pub fn new_id(prefix: IdPrefix) -> String {
    format!("{}_{}", prefix.as_str(), next_ulid())
}

/// Whether `s` is `prefix`, `_`, and a ULID in the canonical form [`new_id`]
/// writes.
///
/// Only the canonical form (upper-case Crockford base32, first character at most
/// `7`) is accepted: IDs are compared and looked up as strings, so a lower-case
/// or overflowing spelling of "the same" ULID would name nothing.
pub fn looks_like_id(prefix: IdPrefix, s: &str) -> bool {
    let Some(rest) = s.strip_prefix(prefix.as_str()) else {
        return false;
    };
    let Some(ulid) = rest.strip_prefix('_') else {
        return false;
    };
    is_canonical_ulid(ulid)
}

/// The alphabet ULIDs are written in: Crockford's base32, without I, L, O and U.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

fn is_canonical_ulid(s: &str) -> bool {
    let bytes = s.as_bytes();
    // 26 characters carry 130 bits; a ULID has 128, so the first character can
    // only be 0-7.
    bytes.len() == ulid::ULID_LEN && bytes[0] <= b'7' && bytes.iter().all(|b| CROCKFORD.contains(b))
}

/// The generator and the last ULID it handed out, shared by the whole process.
struct State {
    generator: Generator,
    last: Ulid,
}

static STATE: Mutex<State> = Mutex::new(State {
    generator: Generator::new(),
    last: Ulid::nil(),
});

fn next_ulid() -> Ulid {
    // A panic elsewhere while the lock was held cannot leave `State` half
    // updated (both fields are plain values), so a poisoned lock is still usable.
    let mut state = STATE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let ulid = match state.generator.generate() {
        Ok(ulid) => ulid,
        Err(_) => {
            let last = state.last;
            after_overflow(&mut state.generator, last)
        }
    };
    state.last = ulid;
    ulid
}

/// The next ULID after `last` once the generator has used up the random part
/// within `last`'s millisecond (about 2^80 IDs, so practically never).
///
/// Moving to the next millisecond starts a fresh random part that is still
/// greater than every ID before it, without waiting, and leaves the generator
/// counting from there. That cannot fail, as the time is past `last`'s; if it
/// somehow did, a fresh ULID is better than a panic.
fn after_overflow(generator: &mut Generator, last: Ulid) -> Ulid {
    let next_ms = last.timestamp_ms().saturating_add(1);
    let when = SystemTime::UNIX_EPOCH + Duration::from_millis(next_ms);
    generator
        .generate_from_datetime(when)
        .unwrap_or_else(|_| Ulid::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let table = [
            (IdPrefix::App, "app"),
            (IdPrefix::Endpoint, "ep"),
            (IdPrefix::Message, "msg"),
            (IdPrefix::Attempt, "atmpt"),
            (IdPrefix::EventType, "evtype"),
            (IdPrefix::Org, "org"),
            (IdPrefix::Task, "qtask"),
            (IdPrefix::Token, "tok"),
            (IdPrefix::PortalGrant, "pgrant"),
        ];
        for (prefix, expected) in table {
            assert_eq!(prefix.as_str(), expected);
            assert_eq!(prefix.to_string(), expected);
            let id = new_id(prefix);
            assert_eq!(id.len(), expected.len() + 1 + 26, "{id}");
            assert!(id.starts_with(&format!("{expected}_")), "{id}");
            assert!(looks_like_id(prefix, &id), "{id}");
        }
    }

    #[test]
    fn ten_thousand_ids_strictly_increase() {
        let ids: Vec<String> = (0..10_000).map(|_| new_id(IdPrefix::Message)).collect();
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{} then {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn ids_carry_the_current_time() {
        let before = SystemTime::now();
        let id = new_id(IdPrefix::App);
        let ulid = Ulid::from_string(&id["app_".len()..]).expect("a ULID");
        // A ULID keeps whole milliseconds, so it may read up to 1 ms before
        // `before`; the margin allows for that and nothing more.
        let created = ulid.datetime() + Duration::from_millis(2);
        assert!(created >= before, "{id} is older than the test");
    }

    #[test]
    fn looks_like_id_table() {
        let good = "01JDK3V8Q4ZJ6T9W2E5XKXH1BN";
        let table: &[(IdPrefix, String, bool)] = &[
            (IdPrefix::Message, format!("msg_{good}"), true),
            (
                IdPrefix::Message,
                "msg_00000000000000000000000000".into(),
                true,
            ),
            (
                IdPrefix::Message,
                "msg_7ZZZZZZZZZZZZZZZZZZZZZZZZZ".into(),
                true,
            ),
            (IdPrefix::Endpoint, format!("ep_{good}"), true),
            // Wrong prefix, or a prefix that merely starts the same way.
            (IdPrefix::Endpoint, format!("msg_{good}"), false),
            (IdPrefix::Attempt, format!("at_{good}"), false),
            (IdPrefix::App, format!("apps_{good}"), false),
            // Missing or doubled separator.
            (IdPrefix::App, format!("app{good}"), false),
            (IdPrefix::App, format!("app__{good}"), false),
            (IdPrefix::App, format!("app-{good}"), false),
            // Wrong length.
            (IdPrefix::App, format!("app_{}", &good[1..]), false),
            (IdPrefix::App, format!("app_{good}0"), false),
            (IdPrefix::App, "app_".into(), false),
            (IdPrefix::App, "".into(), false),
            // Not canonical: lower case, letters outside the alphabet, overflow.
            (IdPrefix::App, format!("app_{}", good.to_lowercase()), false),
            (
                IdPrefix::App,
                "app_01JDK3V8Q4ZJ6T9W2E5XKXH1BU".into(),
                false,
            ),
            (
                IdPrefix::App,
                "app_01JDK3V8Q4ZJ6T9W2E5XKXH1BI".into(),
                false,
            ),
            (
                IdPrefix::App,
                "app_8ZZZZZZZZZZZZZZZZZZZZZZZZZ".into(),
                false,
            ),
            (
                IdPrefix::App,
                "app_01JDK3V8Q4ZJ6T9W2E5XKXH1B!".into(),
                false,
            ),
            (
                IdPrefix::App,
                "app_01JDK3V8Q4ZJ6T9W2E5XKXH1Bé".into(),
                false,
            ),
        ];
        for (prefix, s, expected) in table {
            assert_eq!(looks_like_id(*prefix, s), *expected, "{prefix:?} {s:?}");
        }
    }

    #[test]
    fn overflow_moves_to_the_next_millisecond() {
        let max_random = (1u128 << 80) - 1;
        // Times in the future, so the generator cannot be ahead of them.
        let future_ms = 4_000_000_000_000;
        let table = [
            Ulid::from_parts(future_ms, max_random),
            Ulid::from_parts(future_ms + 12_345, max_random),
            Ulid::from_parts(future_ms, 0),
        ];
        for last in table {
            let mut generator = Generator::new();
            let next = after_overflow(&mut generator, last);
            assert!(next > last, "{last} then {next}");
            assert_eq!(next.timestamp_ms(), last.timestamp_ms() + 1);
            // The generator carries on from the new ID.
            let when = SystemTime::UNIX_EPOCH + Duration::from_millis(last.timestamp_ms());
            let after = generator
                .generate_from_datetime(when)
                .expect("room to increment");
            assert!(after > next, "{next} then {after}");
        }
    }
}
