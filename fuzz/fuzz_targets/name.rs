//! The name rule for uids, event type names, event ids and channels, against
//! an independent statement of it: 1 to max bytes of `A-Z a-z 0-9 - _ .`.
#![no_main]

use herald_core::name::{
    validate_channel, validate_name, NameError, MAX_CHANNEL_LEN, MAX_NAME_LEN,
};
use libfuzzer_sys::fuzz_target;

fn rule(s: &str, max: usize) -> Result<(), NameError> {
    let allowed = |c: char| matches!(c, 'A'..='Z' | 'a'..='z' | '0'..='9' | '-' | '_' | '.');
    match s.chars().find(|&c| !allowed(c)) {
        _ if s.is_empty() => Err(NameError::Empty),
        Some(found) => Err(NameError::BadChar { found }),
        None if s.chars().count() > max => Err(NameError::TooLong { max }),
        None => Ok(()),
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    assert_eq!(validate_name(&text), rule(&text, MAX_NAME_LEN), "{text:?}");
    assert_eq!(
        validate_channel(&text),
        rule(&text, MAX_CHANNEL_LEN),
        "{text:?}"
    );
});
