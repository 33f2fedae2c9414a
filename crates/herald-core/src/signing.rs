//! Endpoint secrets and webhook signatures, as the Standard Webhooks
//! specification (and Svix) define them.
//!
//! A signature is `v1,` followed by the base64 of
//! HMAC-SHA256(secret, `"{msg_id}.{timestamp}."` followed by the body). During
//! secret rotation an endpoint has more than one valid secret, and the
//! `webhook-signature` header carries one signature per secret, separated by
//! spaces, so receivers holding either secret can verify the message.
//!
//! An asymmetric secret (`whsk_`, the specification's ed25519 scheme) signs
//! the same content with ed25519 instead, as `v1a,` followed by the base64
//! signature; its receivers verify with the public key (`whpk_`). During a
//! rotation between the two kinds each key signs with its own scheme, so the
//! header carries a `v1` and a `v1a` signature.

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The prefix Svix and Standard Webhooks put before a base64 secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// The prefix Standard Webhooks puts before a base64 ed25519 secret key.
pub const ASYMMETRIC_SECRET_PREFIX: &str = "whsk_";

/// The prefix Standard Webhooks puts before a base64 ed25519 public key.
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";

/// The signature scheme of symmetric keys (HMAC-SHA256).
pub const SIGNATURE_VERSION: &str = "v1";

/// The signature scheme of asymmetric keys (ed25519).
pub const ASYMMETRIC_SIGNATURE_VERSION: &str = "v1a";

/// A key Herald signs an endpoint's messages with.
#[derive(Clone)]
pub struct EndpointSecret {
    key: Key,
}

#[derive(Clone)]
enum Key {
    /// `whsec_`: HMAC-SHA256 with these bytes.
    Hmac(Vec<u8>),
    /// `whsk_`: ed25519 (zeroized on drop by the crate).
    Ed25519(SigningKey),
}

/// The two kinds of key an endpoint can sign with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// `whsec_`, `v1` signatures.
    Hmac,
    /// `whsk_`, `v1a` signatures; receivers verify with the `whpk_` key.
    Ed25519,
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
    #[error(
        "a \"whsk_\" key must be the base64 of a 32-byte ed25519 secret key or a 64-byte key pair (found {len} bytes)"
    )]
    BadAsymmetricLength { len: usize },
    #[error(
        "the second half of this 64-byte \"whsk_\" key pair is not the public key of the first"
    )]
    KeyPairMismatch,
    #[error("a \"whpk_\" key must be the base64 of a 32-byte ed25519 public key")]
    BadPublicKey,
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
    /// A new random `whsec_` secret.
    pub fn generate() -> EndpointSecret {
        let mut bytes = vec![0u8; GENERATED_KEY_LEN];
        rand::thread_rng().fill_bytes(&mut bytes);
        EndpointSecret {
            key: Key::Hmac(bytes),
        }
    }

    /// A new random secret of this kind.
    pub fn generate_kind(kind: KeyKind) -> EndpointSecret {
        match kind {
            KeyKind::Hmac => EndpointSecret::generate(),
            KeyKind::Ed25519 => {
                let mut seed = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut seed);
                let key = SigningKey::from_bytes(&seed);
                seed.fill(0);
                EndpointSecret {
                    key: Key::Ed25519(key),
                }
            }
        }
    }

    /// Which kind of key this is.
    pub fn kind(&self) -> KeyKind {
        match self.key {
            Key::Hmac(_) => KeyKind::Hmac,
            Key::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    /// Reads a secret written as `whsec_` and base64, or as bare base64 (both
    /// forms Svix accepts when a user brings their own key), or an ed25519
    /// secret written as `whsk_` and the base64 of its 32-byte secret key or
    /// of its 64-byte key pair (secret key, then public key: Svix's form).
    pub fn parse(s: &str) -> Result<EndpointSecret, SecretError> {
        if let Some(encoded) = s.strip_prefix(ASYMMETRIC_SECRET_PREFIX) {
            return parse_ed25519(encoded);
        }
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
        Ok(EndpointSecret {
            key: Key::Hmac(bytes),
        })
    }

    /// The secret as users see it and as Herald stores it: `whsec_` and padded
    /// standard base64, or `whsk_` and the base64 of the 64-byte key pair.
    /// It reveals the secret: never log it.
    pub fn reveal(&self) -> String {
        match &self.key {
            Key::Hmac(bytes) => format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes)),
            Key::Ed25519(key) => format!(
                "{ASYMMETRIC_SECRET_PREFIX}{}",
                STANDARD.encode(key.to_keypair_bytes())
            ),
        }
    }

    /// What a receiver verifies `v1a` signatures with, `whpk_` and the base64
    /// of the 32-byte public key; none for a symmetric secret.
    pub fn public_key(&self) -> Option<String> {
        match &self.key {
            Key::Hmac(_) => None,
            Key::Ed25519(key) => Some(format!(
                "{PUBLIC_KEY_PREFIX}{}",
                STANDARD.encode(key.verifying_key().as_bytes())
            )),
        }
    }

    /// The signature of one message over `"{msg_id}.{timestamp}."` followed
    /// by `body`: `v1,` and the base64 HMAC-SHA256, or `v1a,` and the base64
    /// ed25519 signature.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        match &self.key {
            Key::Hmac(bytes) => {
                let mac = mac(bytes, msg_id, timestamp, body).finalize().into_bytes();
                format!("{SIGNATURE_VERSION},{}", STANDARD.encode(mac))
            }
            Key::Ed25519(key) => {
                let signature = key.sign(&signed_content(msg_id, timestamp, body));
                format!(
                    "{ASYMMETRIC_SIGNATURE_VERSION},{}",
                    STANDARD.encode(signature.to_bytes())
                )
            }
        }
    }

    /// Whether any signature of this secret's scheme (`v1` or `v1a`) in a
    /// `webhook-signature` header value was made with this secret for this
    /// message. Other versions are skipped, as the specification asks.
    ///
    /// This checks the signature only: a receiver must also refuse timestamps
    /// too far from its own clock to stop replays.
    pub fn verify(&self, msg_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        match &self.key {
            Key::Hmac(bytes) => signatures(header, SIGNATURE_VERSION).any(|signature| {
                // verify_slice compares in constant time, so a receiver built
                // on this does not leak how much of a forged signature was
                // right.
                mac(bytes, msg_id, timestamp, body)
                    .verify_slice(&signature)
                    .is_ok()
            }),
            Key::Ed25519(key) => {
                verify_ed25519(&key.verifying_key(), msg_id, timestamp, body, header)
            }
        }
    }
}

/// Whether any `v1a` signature in a `webhook-signature` header value was made
/// for this message by the holder of the secret key of `public_key` (`whpk_`
/// and base64): what a receiver does. A key that is not a `whpk_` key is an
/// error, a signature that does not verify is `false`.
pub fn verify_with_public_key(
    public_key: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
) -> Result<bool, SecretError> {
    let bytes = public_key
        .strip_prefix(PUBLIC_KEY_PREFIX)
        .and_then(|encoded| LENIENT_STANDARD.decode(encoded).ok())
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or(SecretError::BadPublicKey)?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| SecretError::BadPublicKey)?;
    Ok(verify_ed25519(&key, msg_id, timestamp, body, header))
}

fn verify_ed25519(
    key: &VerifyingKey,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
) -> bool {
    let content = signed_content(msg_id, timestamp, body);
    signatures(header, ASYMMETRIC_SIGNATURE_VERSION).any(|signature| {
        ed25519_dalek::Signature::from_slice(&signature)
            .is_ok_and(|signature| key.verify_strict(&content, &signature).is_ok())
    })
}

/// The decoded signatures of one version in a header value.
fn signatures<'a>(header: &'a str, want: &'a str) -> impl Iterator<Item = Vec<u8>> + 'a {
    header.split(' ').filter_map(move |entry| {
        let (version, signature) = entry.split_once(',')?;
        (version == want)
            .then(|| STANDARD.decode(signature).ok())
            .flatten()
    })
}

/// `"{msg_id}.{timestamp}."` followed by `body`, in one buffer (ed25519 signs
/// a whole message).
fn signed_content(msg_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let timestamp = timestamp.to_string();
    let mut content = Vec::with_capacity(msg_id.len() + timestamp.len() + 2 + body.len());
    content.extend_from_slice(msg_id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp.as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    content
}

fn parse_ed25519(encoded: &str) -> Result<EndpointSecret, SecretError> {
    if let Some(found) = encoded.chars().find(|&c| !is_base64_char(c)) {
        return Err(SecretError::BadChar { found });
    }
    let mut bytes = LENIENT_STANDARD
        .decode(encoded)
        .map_err(SecretError::NotBase64)?;
    let key = match bytes.len() {
        32 => {
            let seed: [u8; 32] = bytes[..].try_into().expect("32 bytes");
            Ok(SigningKey::from_bytes(&seed))
        }
        64 => {
            let pair: [u8; 64] = bytes[..].try_into().expect("64 bytes");
            SigningKey::from_keypair_bytes(&pair).map_err(|_| SecretError::KeyPairMismatch)
        }
        len => Err(SecretError::BadAsymmetricLength { len }),
    };
    bytes.fill(0);
    Ok(EndpointSecret {
        key: Key::Ed25519(key?),
    })
}

fn mac(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
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
mod tests;
