//! The URL an endpoint receives webhooks at, parsed once so the rest of Herald
//! never handles one it could not deliver to.
//!
//! This module only checks the URL's form. Whether its host resolves to an
//! address Herald may connect to is decided at delivery time (see
//! [`crate::net`]), because DNS answers change after the endpoint is saved.

use std::fmt;
use std::str::FromStr;

/// The longest endpoint URL Herald accepts, in bytes, matching Svix's limit.
pub const MAX_URL_LEN: usize = 65536;

/// An absolute `http` or `https` URL with a host, and without credentials or a
/// fragment.
///
/// The URL is kept in the normalised form the `url` crate writes (for example
/// `https://Example.com` becomes `https://example.com/`), so the same endpoint
/// always reads back the same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointUrl(url::Url);

/// Why a string is not a usable endpoint URL.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("is not a valid URL: {0}")]
    Invalid(url::ParseError),
    #[error("scheme must be http or https, not {scheme}")]
    BadScheme { scheme: String },
    #[error("has no host")]
    NoHost,
    #[error("port 0 is not a port anything listens on")]
    PortZero,
    #[error("must not contain credentials")]
    Credentials,
    #[error("must not contain a fragment")]
    Fragment,
    #[error("is longer than {max} characters", max = MAX_URL_LEN)]
    TooLong,
}

impl EndpointUrl {
    pub fn parse(s: &str) -> Result<EndpointUrl, UrlError> {
        // Checked before parsing so a huge body is refused without the work of
        // parsing it, and again after, because normalising (percent-encoding
        // spaces, for example) can make the URL longer.
        if s.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        let url = url::Url::parse(s).map_err(UrlError::Invalid)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(UrlError::BadScheme {
                scheme: url.scheme().to_owned(),
            });
        }
        // The url crate already refuses http(s) URLs without a host; this keeps
        // the type's promise even if that ever changes.
        if url.host().is_none() {
            return Err(UrlError::NoHost);
        }
        // Port 0 means "any port" to a listener; connecting to it fails on
        // some systems and means something else on others.
        if url.port() == Some(0) {
            return Err(UrlError::PortZero);
        }
        // Credentials in the URL would be sent to the receiver and shown in the
        // portal and logs; receivers that need them can use custom headers.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Credentials);
        }
        // A fragment is never sent over HTTP, so one here is a mistake that
        // would silently be ignored.
        if url.fragment().is_some() {
            return Err(UrlError::Fragment);
        }
        if url.as_str().len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        Ok(EndpointUrl(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn as_url(&self) -> &url::Url {
        &self.0
    }
}

impl fmt::Display for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EndpointUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EndpointUrl::parse(s)
    }
}

impl serde::Serialize for EndpointUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for EndpointUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        EndpointUrl::parse(&s).map_err(|e| serde::de::Error::custom(format!("url {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_and_normalised() {
        let table = [
            ("https://example.com/webhook", "https://example.com/webhook"),
            ("http://example.com", "http://example.com/"),
            ("HTTPS://Example.COM/Path", "https://example.com/Path"),
            (
                "https://example.com:8443/a?b=c&d",
                "https://example.com:8443/a?b=c&d",
            ),
            ("https://example.com:443/", "https://example.com/"),
            ("http://127.0.0.1:8080/hook", "http://127.0.0.1:8080/hook"),
            ("http://[::1]:9000/", "http://[::1]:9000/"),
            ("https://bücher.example/", "https://xn--bcher-kva.example/"),
            ("https://example.com/a b", "https://example.com/a%20b"),
            ("  https://example.com/  ", "https://example.com/"),
            ("http://localhost/", "http://localhost/"),
            ("https://@example.com/", "https://example.com/"),
            // The url crate reads a missing host as the first path segment.
            ("http:///hook", "http://hook/"),
        ];
        for (input, expected) in table {
            let url = EndpointUrl::parse(input).expect(input);
            assert_eq!(url.as_str(), expected, "{input:?}");
            assert_eq!(url.to_string(), expected);
            assert_eq!(url.as_url().as_str(), expected);
        }
    }

    #[test]
    fn refused() {
        let long_path = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        // Under the limit as written, over it once each space becomes `%20`.
        let grows = format!("https://example.com/{}x", " ".repeat(MAX_URL_LEN / 2));
        let table: Vec<(&str, UrlError)> = vec![
            (
                "",
                UrlError::Invalid(url::ParseError::RelativeUrlWithoutBase),
            ),
            (
                "/relative/path",
                UrlError::Invalid(url::ParseError::RelativeUrlWithoutBase),
            ),
            (
                "example.com/webhook",
                UrlError::Invalid(url::ParseError::RelativeUrlWithoutBase),
            ),
            ("https://", UrlError::Invalid(url::ParseError::EmptyHost)),
            (
                "https://exa mple.com/",
                UrlError::Invalid(url::ParseError::IdnaError),
            ),
            (
                "https://example.com:99999/",
                UrlError::Invalid(url::ParseError::InvalidPort),
            ),
            (
                "ftp://example.com/",
                UrlError::BadScheme {
                    scheme: "ftp".into(),
                },
            ),
            (
                "file:///etc/passwd",
                UrlError::BadScheme {
                    scheme: "file".into(),
                },
            ),
            (
                "mailto:ops@example.com",
                UrlError::BadScheme {
                    scheme: "mailto".into(),
                },
            ),
            (
                "wss://example.com/",
                UrlError::BadScheme {
                    scheme: "wss".into(),
                },
            ),
            ("https://user@example.com/", UrlError::Credentials),
            ("https://user:pw@example.com/", UrlError::Credentials),
            ("https://:pw@example.com/", UrlError::Credentials),
            ("http://example.com:0/hook", UrlError::PortZero),
            ("https://127.0.0.1:0/", UrlError::PortZero),
            ("https://example.com/#frag", UrlError::Fragment),
            ("https://example.com/#", UrlError::Fragment),
            (&long_path, UrlError::TooLong),
            (&grows, UrlError::TooLong),
        ];
        for (input, expected) in table {
            let shown: String = input.chars().take(60).collect();
            assert_eq!(EndpointUrl::parse(input), Err(expected), "{shown:?}");
        }
    }

    #[test]
    fn longest_accepted() {
        let prefix = "https://example.com/";
        let s = format!("{prefix}{}", "a".repeat(MAX_URL_LEN - prefix.len()));
        assert_eq!(
            EndpointUrl::parse(&s).map(|u| u.as_str().len()),
            Ok(MAX_URL_LEN)
        );
    }

    #[test]
    fn messages() {
        let table = [
            (
                EndpointUrl::parse("nope").err(),
                "is not a valid URL: relative URL without a base",
            ),
            (
                EndpointUrl::parse("ftp://example.com").err(),
                "scheme must be http or https, not ftp",
            ),
            (
                EndpointUrl::parse("https://a:b@example.com").err(),
                "must not contain credentials",
            ),
            (
                EndpointUrl::parse("https://example.com/#x").err(),
                "must not contain a fragment",
            ),
            (Some(UrlError::TooLong), "is longer than 65536 characters"),
            (Some(UrlError::NoHost), "has no host"),
            (
                EndpointUrl::parse("http://example.com:0/").err(),
                "port 0 is not a port anything listens on",
            ),
        ];
        for (error, expected) in table {
            assert_eq!(error.map(|e| e.to_string()).as_deref(), Some(expected));
        }
    }

    #[test]
    fn serde_round_trip() {
        let url: Result<EndpointUrl, _> = serde_json::from_str("\"https://Example.com\"");
        let json = url
            .as_ref()
            .ok()
            .and_then(|u| serde_json::to_string(u).ok());
        assert_eq!(json.as_deref(), Some("\"https://example.com/\""));

        let bad: Result<EndpointUrl, _> = serde_json::from_str("\"ftp://example.com\"");
        let message = bad.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("url scheme must be http or https, not ftp"),
            "{message}"
        );
    }
}
