//! The identifier rule Svix applies to `uid`s, event type names, channels and
//! event IDs: one or more of `a-z A-Z 0-9 - _ .`, with a length limit.
//!
//! Keeping the same rule as Svix means anything a Svix client sends that Svix
//! accepts, Herald accepts too, and names stay safe to put in URLs and logs.

/// Why a string is not a valid name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
    #[error("may contain only letters, digits, '-', '_' and '.' (found {found:?})")]
    BadChar { found: char },
    #[error(
        "may contain only letters, digits, '-', '_', '.', '/', '\\' and '#' (found {found:?})"
    )]
    BadTagChar { found: char },
}

/// The longest `uid`, event type name or event ID Svix accepts.
pub const MAX_NAME_LEN: usize = 256;

/// The longest channel name Svix accepts.
pub const MAX_CHANNEL_LEN: usize = 128;

/// The longest message tag Svix accepts.
pub const MAX_TAG_LEN: usize = 128;

/// Checks a message tag: Svix's rule for tags, the characters of
/// [`validate_name`] and `/`, `\` and `#`.
pub fn validate_tag(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if let Some(found) = s
        .chars()
        .find(|&c| !is_name_char(c) && !matches!(c, '/' | '\\' | '#'))
    {
        return Err(NameError::BadTagChar { found });
    }
    if s.len() > MAX_TAG_LEN {
        return Err(NameError::TooLong { max: MAX_TAG_LEN });
    }
    Ok(())
}

/// Checks a `uid`, event type name or event ID.
pub fn validate_name(s: &str) -> Result<(), NameError> {
    validate(s, MAX_NAME_LEN)
}

/// Checks a channel name: the same characters as [`validate_name`], but shorter.
pub fn validate_channel(s: &str) -> Result<(), NameError> {
    validate(s, MAX_CHANNEL_LEN)
}

fn validate(s: &str, max: usize) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    // Characters are checked before the length so that the byte length below is
    // also the character count (every allowed character is one byte), and so a
    // long string of bad characters is reported for what is actually wrong.
    if let Some(found) = s.chars().find(|&c| !is_name_char(c)) {
        return Err(NameError::BadChar { found });
    }
    if s.len() > max {
        return Err(NameError::TooLong { max });
    }
    Ok(())
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let long_ok = "a".repeat(256);
        let too_long = "a".repeat(257);
        let table: &[(&str, Result<(), NameError>)] = &[
            ("a", Ok(())),
            ("Z", Ok(())),
            ("0", Ok(())),
            ("-", Ok(())),
            ("_", Ok(())),
            (".", Ok(())),
            ("user.signup", Ok(())),
            ("invoice-paid_v2.1", Ok(())),
            ("ABCxyz0189", Ok(())),
            (&long_ok, Ok(())),
            ("", Err(NameError::Empty)),
            (&too_long, Err(NameError::TooLong { max: 256 })),
            ("user signup", Err(NameError::BadChar { found: ' ' })),
            ("user/signup", Err(NameError::BadChar { found: '/' })),
            ("user:signup", Err(NameError::BadChar { found: ':' })),
            ("a*", Err(NameError::BadChar { found: '*' })),
            ("naïve", Err(NameError::BadChar { found: 'ï' })),
            ("tab\there", Err(NameError::BadChar { found: '\t' })),
            ("line\n", Err(NameError::BadChar { found: '\n' })),
            (" ", Err(NameError::BadChar { found: ' ' })),
            ("émoji🦀", Err(NameError::BadChar { found: 'é' })),
        ];
        for (input, expected) in table {
            assert_eq!(&validate_name(input), expected, "{input:?}");
        }
    }

    #[test]
    fn tags() {
        let long_ok = "a".repeat(128);
        let too_long = "a".repeat(129);
        let table: &[(&str, Result<(), NameError>)] = &[
            ("project_1337", Ok(())),
            ("team/red", Ok(())),
            ("a\\b", Ok(())),
            ("#launch", Ok(())),
            ("v1.2-x", Ok(())),
            (&long_ok, Ok(())),
            ("", Err(NameError::Empty)),
            (&too_long, Err(NameError::TooLong { max: 128 })),
            ("a b", Err(NameError::BadTagChar { found: ' ' })),
            ("a:b", Err(NameError::BadTagChar { found: ':' })),
            ("ü", Err(NameError::BadTagChar { found: 'ü' })),
        ];
        for (input, expected) in table {
            assert_eq!(&validate_tag(input), expected, "{input:?}");
        }
    }

    #[test]
    fn bad_characters_win_over_length() {
        // 200 two-byte characters are 400 bytes but only 200 characters: the
        // problem is the characters, not the length.
        let s = "é".repeat(200);
        assert_eq!(validate_name(&s), Err(NameError::BadChar { found: 'é' }));
    }

    #[test]
    fn channels() {
        let long_ok = "c".repeat(128);
        let too_long = "c".repeat(129);
        let table: &[(&str, Result<(), NameError>)] = &[
            ("project_123", Ok(())),
            ("eu.west-1", Ok(())),
            (&long_ok, Ok(())),
            ("", Err(NameError::Empty)),
            (&too_long, Err(NameError::TooLong { max: 128 })),
            ("a,b", Err(NameError::BadChar { found: ',' })),
            ("#general", Err(NameError::BadChar { found: '#' })),
        ];
        for (input, expected) in table {
            assert_eq!(&validate_channel(input), expected, "{input:?}");
        }
    }

    #[test]
    fn messages() {
        let table = [
            (NameError::Empty, "must not be empty"),
            (
                NameError::TooLong { max: 256 },
                "must be at most 256 characters",
            ),
            (
                NameError::BadChar { found: '/' },
                "may contain only letters, digits, '-', '_' and '.' (found '/')",
            ),
        ];
        for (error, expected) in table {
            assert_eq!(error.to_string(), expected);
        }
    }
}
