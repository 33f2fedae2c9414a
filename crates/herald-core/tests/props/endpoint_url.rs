//! `EndpointUrl::parse`, the one way a URL from a client becomes an endpoint.

use herald_core::endpoint_url::{EndpointUrl, UrlError, MAX_URL_LEN};
use proptest::prelude::*;

/// Strings shaped like URLs, built from parts that are each sometimes wrong.
fn url_like() -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(vec![
        "http://", "https://", "HTTPS://", "hTtP:", "http:/", "ftp://", "ws://", "file://",
        "mailto:", "", "//",
    ]);
    let userinfo =
        prop::sample::select(vec!["", "", "", "user@", "user:pw@", ":pw@", "@", "a%40b@"]);
    let host = prop_oneof![
        prop::sample::select(vec![
            "example.com",
            "EXAMPLE.com.",
            "localhost",
            "127.0.0.1",
            "0x7f.1",
            "[::1]",
            "[::ffff:10.0.0.1]",
            "bücher.example",
            "xn--bcher-kva.example",
            "",
            "%41.com",
            "a..b",
            "[::1",
            "999.1.1.1",
            "exa mple.com",
        ])
        .prop_map(String::from),
        "[a-zA-Z0-9.%\\[\\]:-]{0,20}",
    ];
    let port = prop_oneof![
        Just(String::new()),
        prop::sample::select(vec![
            ":", ":0", ":00", ":80", ":443", ":65535", ":65536", ":-1"
        ])
        .prop_map(String::from),
        any::<u16>().prop_map(|p| format!(":{p}")),
    ];
    let rest = "[ -~\\t\\n]{0,30}";
    let padding = prop::sample::select(vec!["", " ", "\t", "\n", " \u{0}"]);
    (padding.clone(), scheme, userinfo, host, port, rest, padding).prop_map(
        |(lead, scheme, user, host, port, rest, trail)| {
            format!("{lead}{scheme}{user}{host}{port}{rest}{trail}")
        },
    )
}

/// The promises of the type, and that its text parses back to itself.
fn check_accepted(input: &str, url: &EndpointUrl) -> Result<(), TestCaseError> {
    let parsed = url.as_url();
    prop_assert!(matches!(parsed.scheme(), "http" | "https"), "{:?}", input);
    prop_assert!(parsed.host().is_some(), "{:?}", input);
    prop_assert!(parsed.username().is_empty(), "{:?}", input);
    prop_assert!(parsed.password().is_none(), "{:?}", input);
    prop_assert!(parsed.fragment().is_none(), "{:?}", input);
    prop_assert_ne!(parsed.port(), Some(0), "{:?}", input);
    prop_assert!(url.as_str().len() <= MAX_URL_LEN, "{:?}", input);
    let again = EndpointUrl::parse(url.as_str());
    prop_assert_eq!(again.as_ref(), Ok(url), "{:?} -> {:?}", input, url.as_str());
    Ok(())
}

proptest! {
    /// Anything at all: no panic, and what is accepted keeps the promises.
    #[test]
    fn any_string(input in any::<String>()) {
        if let Ok(url) = EndpointUrl::parse(&input) {
            check_accepted(&input, &url)?;
        }
    }

    /// URL-shaped strings reach the interesting checks far more often.
    #[test]
    fn url_shaped_strings(input in url_like()) {
        if let Ok(url) = EndpointUrl::parse(&input) {
            check_accepted(&input, &url)?;
        }
    }

    /// Credentials, a fragment or port 0 on an otherwise good URL are each
    /// refused, and with the reason that names them.
    #[test]
    fn each_forbidden_part_is_refused_for_what_it_is(
        scheme in prop::sample::select(vec!["http", "https"]),
        host in prop::sample::select(vec!["example.com", "127.0.0.1", "[::1]", "localhost"]),
        path in "(/[a-z0-9]{0,5}){0,3}",
        user in "[a-z]{1,5}",
        fragment in "[a-z]{0,5}",
    ) {
        let table = [
            (format!("{scheme}://{user}@{host}{path}"), UrlError::Credentials),
            (format!("{scheme}://:{user}@{host}{path}"), UrlError::Credentials),
            (format!("{scheme}://{host}{path}#{fragment}"), UrlError::Fragment),
            (format!("{scheme}://{host}:0{path}"), UrlError::PortZero),
        ];
        for (input, error) in table {
            prop_assert_eq!(EndpointUrl::parse(&input), Err(error), "{}", input);
        }
        let good = format!("{scheme}://{host}{path}");
        prop_assert!(EndpointUrl::parse(&good).is_ok(), "{}", good);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Around the limit: accepted exactly when the normalised URL fits.
    #[test]
    fn the_length_limit_is_on_the_normalised_url(
        extra in 0usize..64,
        spaces in 0usize..4,
    ) {
        let prefix = "https://example.com/";
        let fill = MAX_URL_LEN - prefix.len() - 32 + extra - spaces;
        let input = format!("{prefix}{}{}", " ".repeat(spaces), "a".repeat(fill));
        // Each space becomes %20: two bytes longer.
        let normalised = input.len() + 2 * spaces;
        match EndpointUrl::parse(&input) {
            Ok(url) => {
                prop_assert_eq!(url.as_str().len(), normalised);
                prop_assert!(normalised <= MAX_URL_LEN);
            }
            Err(error) => {
                prop_assert_eq!(error, UrlError::TooLong);
                prop_assert!(normalised > MAX_URL_LEN);
            }
        }
    }
}
