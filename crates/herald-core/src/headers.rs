//! Which request headers carry credentials: their values are never shown or
//! kept in the delivery log, only their names.

/// Header names whose values are credentials (compared without case).
const SENSITIVE: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "x-auth-token",
    "x-access-token",
];

/// What a credential's value shows as.
pub const MASK: &str = "••••••••";

/// Whether a header's value is a credential, shown as its name only
/// (whatever the case of the name).
pub fn is_sensitive(name: &str) -> bool {
    SENSITIVE.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// A header's value as the log may keep it: a credential's is masked.
pub fn loggable<'a>(name: &str, value: &'a str) -> &'a str {
    if is_sensitive(name) {
        MASK
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_masked_whatever_the_case_of_their_name() {
        for (name, value, kept) in [
            ("Authorization", "Bearer s3cret", MASK),
            ("X-API-KEY", "k", MASK),
            ("cookie", "a=b", MASK),
            ("Set-Cookie", "session=s3cret", MASK),
            ("X-Team", "blue", "blue"),
            ("webhook-signature", "v1,abc", "v1,abc"),
        ] {
            assert_eq!(loggable(name, value), kept, "{name}");
        }
    }
}
