//! The name rule for uids, event type names, event ids and channels, against
//! the documented rule written again here: 1 to `max` of `A-Z a-z 0-9 - _ .`;
//! the first character outside that set is the one reported, and a bad
//! character is reported before the length.

use herald_core::name::{
    validate_channel, validate_name, NameError, MAX_CHANNEL_LEN, MAX_NAME_LEN,
};
use proptest::prelude::*;

const ALLOWED: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";

fn rule(s: &str, max: usize) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if let Some(found) = s.chars().find(|c| !ALLOWED.contains(*c)) {
        return Err(NameError::BadChar { found });
    }
    if s.chars().count() > max {
        return Err(NameError::TooLong { max });
    }
    Ok(())
}

/// Mostly good names of every length around both limits, some with one bad
/// character somewhere, and anything at all.
fn candidate() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9._-]{0,300}",
        (
            "[A-Za-z0-9._-]{0,300}",
            any::<char>(),
            any::<prop::sample::Index>()
        )
            .prop_map(|(s, bad, at)| {
                let at = at.index(s.len() + 1);
                format!("{}{bad}{}", &s[..at], &s[at..])
            }),
        any::<String>(),
    ]
}

proptest! {
    #[test]
    fn names_follow_the_rule(s in candidate()) {
        prop_assert_eq!(validate_name(&s), rule(&s, MAX_NAME_LEN), "{:?}", s);
    }

    #[test]
    fn channels_follow_the_rule(s in candidate()) {
        prop_assert_eq!(validate_channel(&s), rule(&s, MAX_CHANNEL_LEN), "{:?}", s);
    }

    /// Every channel is a name; a name is a channel when it is short enough.
    #[test]
    fn channels_are_short_names(s in candidate()) {
        if validate_channel(&s).is_ok() {
            prop_assert_eq!(validate_name(&s), Ok(()));
        }
        if validate_name(&s).is_ok() {
            prop_assert_eq!(validate_channel(&s).is_ok(), s.len() <= MAX_CHANNEL_LEN);
        }
    }
}
