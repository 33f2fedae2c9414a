//! Endpoint secrets and webhook signatures, as the Standard Webhooks
//! specification (and Svix) define them.
//!
//! A signature is `v1,` followed by the base64 of
//! HMAC-SHA256(secret, `"{msg_id}.{timestamp}."` followed by the body). During
//! secret rotation an endpoint has more than one valid secret, and the
//! `webhook-signature` header carries one signature per secret, separated by
//! spaces, so receivers holding either secret can verify the message.

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The prefix Svix and Standard Webhooks put before a base64 secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// The signature scheme Herald signs with; the only one Standard Webhooks
/// defines for symmetric keys.
pub const SIGNATURE_VERSION: &str = "v1";

/// A key Herald signs an endpoint's messages with.
#[derive(Clone)]
pub struct EndpointSecret {
    bytes: Vec<u8>,
}

/// Why a string is not a usable endpoint secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error(
        "must be {min} to {max} base64 characters, optionally after \"whsec_\" (found {len})",
        min = MIN_ENCODED_LEN,
        max = MAX_ENCODED_LEN
    )]
    BadLength { len: usize },
    #[error(
        "may contain only base64 characters (A-Z, a-z, 0-9, '+', '/' and '=') after the optional \"whsec_\" (found {found:?})"
    )]
    BadChar { found: char },
    #[error("is not valid base64: {0}")]
    NotBase64(base64::DecodeError),
    #[error(
        "must decode to {min} to {max} bytes (found {len})",
        min = MIN_KEY_LEN,
        max = MAX_KEY_LEN
    )]
    BadKeyLength { len: usize },
}

/// How many random bytes a generated secret has: Svix's choice, 192 bits.
const GENERATED_KEY_LEN: usize = 24;
const MIN_KEY_LEN: usize = 24;
const MAX_KEY_LEN: usize = 64;
const MIN_ENCODED_LEN: usize = 32;
const MAX_ENCODED_LEN: usize = 100;

/// Standard base64 that accepts the padding `=` or its absence, because secrets
/// created elsewhere are not always padded. Non-zero trailing bits are still
/// refused, so each key has exactly one accepted spelling per padding choice.
const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

impl EndpointSecret {
    /// A new random secret.
    pub fn generate() -> EndpointSecret {
        let mut bytes = vec![0u8; GENERATED_KEY_LEN];
        rand::thread_rng().fill_bytes(&mut bytes);
        EndpointSecret { bytes }
    }

    /// Reads a secret written as `whsec_` and base64, or as bare base64 (both
    /// forms Svix accepts when a user brings their own key).
    pub fn parse(s: &str) -> Result<EndpointSecret, SecretError> {
        let encoded = s.strip_prefix(SECRET_PREFIX).unwrap_or(s);
        if let Some(found) = encoded.chars().find(|&c| !is_base64_char(c)) {
            return Err(SecretError::BadChar { found });
        }
        // Every character is ASCII now, so bytes and characters agree.
        let len = encoded.len();
        if !(MIN_ENCODED_LEN..=MAX_ENCODED_LEN).contains(&len) {
            return Err(SecretError::BadLength { len });
        }
        let bytes = LENIENT_STANDARD
            .decode(encoded)
            .map_err(SecretError::NotBase64)?;
        if !(MIN_KEY_LEN..=MAX_KEY_LEN).contains(&bytes.len()) {
            return Err(SecretError::BadKeyLength { len: bytes.len() });
        }
        Ok(EndpointSecret { bytes })
    }

    /// The secret as users see it and as Herald stores it: `whsec_` and padded
    /// standard base64.
    pub fn to_whsec(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.bytes))
    }

    /// The signature of one message: `v1,` and the base64 HMAC-SHA256 of
    /// `"{msg_id}.{timestamp}."` followed by `body`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mac = self.mac(msg_id, timestamp, body).finalize().into_bytes();
        format!("{SIGNATURE_VERSION},{}", STANDARD.encode(mac))
    }

    /// Whether any `v1` signature in a `webhook-signature` header value was made
    /// with this secret for this message. Other versions are skipped, as the
    /// specification asks.
    ///
    /// This checks the signature only: a receiver must also refuse timestamps
    /// too far from its own clock to stop replays.
    pub fn verify(&self, msg_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        header.split(' ').any(|entry| {
            let Some((version, signature)) = entry.split_once(',') else {
                return false;
            };
            if version != SIGNATURE_VERSION {
                return false;
            }
            let Ok(signature) = STANDARD.decode(signature) else {
                return false;
            };
            // verify_slice compares in constant time, so a receiver built on
            // this does not leak how much of a forged signature was right.
            self.mac(msg_id, timestamp, body)
                .verify_slice(&signature)
                .is_ok()
        })
    }

    fn mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.bytes)
            .expect("HMAC takes keys of any length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl fmt::Debug for EndpointSecret {
    // The key must not reach logs through a `{:?}` of some larger struct.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EndpointSecret(<redacted>)")
    }
}

/// The `webhook-signature` header value: the signature made with each secret,
/// separated by single spaces.
pub fn signature_header(
    secrets: &[EndpointSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let signatures: Vec<String> = secrets
        .iter()
        .map(|secret| secret.sign(msg_id, timestamp, body))
        .collect();
    signatures.join(" ")
}

fn is_base64_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the Standard Webhooks specification.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: i64 = 1614265330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    /// The bytes 0, 1, .., 31 as a key; its signature below was computed
    /// separately with Python's hmac module.
    const COUNTING_SECRET: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn secret(s: &str) -> EndpointSecret {
        EndpointSecret::parse(s).expect(s)
    }

    #[test]
    fn known_signatures() {
        let table: &[(&str, &str, i64, &[u8], &str)] = &[
            (
                SPEC_SECRET,
                SPEC_MSG_ID,
                SPEC_TIMESTAMP,
                SPEC_BODY,
                SPEC_SIGNATURE,
            ),
            // The same key written without the prefix.
            (
                "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                SPEC_MSG_ID,
                SPEC_TIMESTAMP,
                SPEC_BODY,
                SPEC_SIGNATURE,
            ),
            (
                COUNTING_SECRET,
                "msg_2",
                1700000000,
                b"hello",
                "v1,nC2u59QUICY1hVVphSENxNLGjEL7/9PT5cv1HtWEHLY=",
            ),
        ];
        for (key, msg_id, timestamp, body, expected) in table {
            assert_eq!(secret(key).sign(msg_id, *timestamp, body), *expected);
        }
    }

    #[test]
    fn every_input_changes_the_signature() {
        let key = secret(SPEC_SECRET);
        let other_key = secret(COUNTING_SECRET);
        let table = [
            key.sign("msg_p5jXN8AQM9LWM0D4loKWxJeK", SPEC_TIMESTAMP, SPEC_BODY),
            key.sign(SPEC_MSG_ID, SPEC_TIMESTAMP + 1, SPEC_BODY),
            key.sign(SPEC_MSG_ID, SPEC_TIMESTAMP, br#"{"test": 2432232315}"#),
            other_key.sign(SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY),
        ];
        for signature in table {
            assert_ne!(signature, SPEC_SIGNATURE);
        }
    }

    #[test]
    fn whsec_round_trip() {
        let generated = EndpointSecret::generate();
        let table = [
            (SPEC_SECRET.to_owned(), SPEC_SECRET.to_owned()),
            (
                "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
                SPEC_SECRET.to_owned(),
            ),
            (COUNTING_SECRET.to_owned(), COUNTING_SECRET.to_owned()),
            // Missing padding is accepted and written back padded.
            (
                "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8".to_owned(),
                COUNTING_SECRET.to_owned(),
            ),
            (generated.to_whsec(), generated.to_whsec()),
        ];
        for (input, expected) in table {
            assert_eq!(secret(&input).to_whsec(), expected, "{input}");
        }
    }

    #[test]
    fn generated_secrets() {
        let a = EndpointSecret::generate();
        let b = EndpointSecret::generate();
        assert_ne!(a.to_whsec(), b.to_whsec());
        // 24 bytes are 32 base64 characters with no padding.
        let whsec = a.to_whsec();
        assert_eq!(whsec.len(), SECRET_PREFIX.len() + 32, "{whsec}");
        assert!(whsec.starts_with(SECRET_PREFIX));
        assert!(!whsec.contains('='));
    }

    #[test]
    fn bad_secrets() {
        let too_long = "A".repeat(101);
        let ninety_six = "A".repeat(96); // 72 bytes
        let table: Vec<(&str, SecretError)> = vec![
            ("", SecretError::BadLength { len: 0 }),
            ("whsec_", SecretError::BadLength { len: 0 }),
            ("whsec_c2hvcnQ=", SecretError::BadLength { len: 8 }),
            (
                "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",
                SecretError::BadLength { len: 31 },
            ),
            (&too_long, SecretError::BadLength { len: 101 }),
            (
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-w",
                SecretError::BadChar { found: '-' },
            ),
            (
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa_w",
                SecretError::BadChar { found: '_' },
            ),
            (
                " whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                SecretError::BadChar { found: ' ' },
            ),
            (
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
                SecretError::BadChar { found: '\n' },
            ),
            (
                "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                SecretError::BadChar { found: '_' },
            ),
            (
                "whsec_whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                SecretError::BadChar { found: '_' },
            ),
            (
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwé",
                SecretError::BadChar { found: 'é' },
            ),
            // 33 characters cannot be base64 of anything.
            (
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwA",
                SecretError::NotBase64(base64::DecodeError::InvalidLength(33)),
            ),
            // Padding in the middle.
            (
                "whsec_MfKQ9r8GKYqr=wjUPD8ILPZIo2LaLaSw",
                SecretError::NotBase64(base64::DecodeError::InvalidByte(12, b'=')),
            ),
            // 34 characters end with four bits that must be zero.
            (
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAB",
                SecretError::NotBase64(base64::DecodeError::InvalidLastSymbol(33, b'B')),
            ),
            (&ninety_six, SecretError::BadKeyLength { len: 72 }),
            // 32 characters of which 4 are padding decode to 22 bytes.
            (
                "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
                SecretError::BadKeyLength { len: 22 },
            ),
        ];
        for (input, expected) in table {
            assert_eq!(
                EndpointSecret::parse(input).err(),
                Some(expected),
                "{input:?}"
            );
        }
    }

    #[test]
    fn key_length_limits() {
        // Byte counts around both limits, written as padded standard base64.
        let table = [
            (23, Err(SecretError::BadKeyLength { len: 23 })),
            (24, Ok(24)),
            (48, Ok(48)),
            (64, Ok(64)),
            (65, Err(SecretError::BadKeyLength { len: 65 })),
            // 75 bytes are exactly 100 characters: a legal length, too big a key.
            (75, Err(SecretError::BadKeyLength { len: 75 })),
            (76, Err(SecretError::BadLength { len: 104 })),
        ];
        for (len, expected) in table {
            let encoded = STANDARD.encode(vec![7u8; len]);
            let got = EndpointSecret::parse(&encoded).map(|s| s.bytes.len());
            assert_eq!(got, expected, "{len} bytes");
        }
    }

    #[test]
    fn header_has_one_signature_per_secret() {
        let first = secret(SPEC_SECRET);
        let second = secret(COUNTING_SECRET);
        let both = [first.clone(), second.clone()];
        let table: [(&[EndpointSecret], Vec<String>); 3] = [
            (&[], vec![]),
            (
                &both[..1],
                vec![first.sign(SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY)],
            ),
            (
                &both,
                vec![
                    first.sign(SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY),
                    second.sign(SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY),
                ],
            ),
        ];
        for (secrets, expected) in table {
            let header = signature_header(secrets, SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY);
            assert_eq!(header, expected.join(" "));
            let entries: Vec<&str> = header.split(' ').filter(|e| !e.is_empty()).collect();
            assert_eq!(entries.len(), secrets.len(), "{header}");
        }
    }

    #[test]
    fn verify() {
        let key = secret(SPEC_SECRET);
        let other = secret(COUNTING_SECRET);
        let other_sig = other.sign(SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY);
        let table: Vec<(String, bool)> = vec![
            (SPEC_SIGNATURE.to_owned(), true),
            (format!("{other_sig} {SPEC_SIGNATURE}"), true),
            (format!("v1a,xyz {SPEC_SIGNATURE}"), true),
            (other_sig.clone(), false),
            (SPEC_SIGNATURE.replace("v1,", "v2,"), false),
            (SPEC_SIGNATURE.replace("v1,", ""), false),
            ("v1,not base64!".to_owned(), false),
            ("v1,".to_owned(), false),
            (String::new(), false),
        ];
        for (header, expected) in table {
            assert_eq!(
                key.verify(SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY, &header),
                expected,
                "{header:?}"
            );
        }
        assert!(!key.verify(SPEC_MSG_ID, SPEC_TIMESTAMP + 1, SPEC_BODY, SPEC_SIGNATURE));
    }

    #[test]
    fn debug_does_not_leak() {
        let key = secret(SPEC_SECRET);
        let shown = format!("{key:?} {:?} {key:#?}", std::slice::from_ref(&key));
        assert!(
            !shown.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            "{shown}"
        );
        assert_eq!(format!("{key:?}"), "EndpointSecret(<redacted>)");
    }

    #[test]
    fn messages() {
        let table = [
            (
                SecretError::BadLength { len: 8 },
                "must be 32 to 100 base64 characters, optionally after \"whsec_\" (found 8)",
            ),
            (
                SecretError::BadChar { found: '-' },
                "may contain only base64 characters (A-Z, a-z, 0-9, '+', '/' and '=') after the optional \"whsec_\" (found '-')",
            ),
            (
                SecretError::BadKeyLength { len: 72 },
                "must decode to 24 to 64 bytes (found 72)",
            ),
        ];
        for (error, expected) in table {
            assert_eq!(error.to_string(), expected);
        }
    }
}
