//! Secrets at rest: endpoint signing keys, custom header values and remembered
//! idempotent responses are stored sealed, so a copy of the database without
//! Herald's key reveals none of them.
//!
//! A sealed value is text: `hrld1:` + the key's id (8 hex digits) + `:` +
//! base64 of a random 24-byte nonce followed by the XChaCha20-Poly1305
//! ciphertext. The nonce is random per value (XChaCha's nonce is long enough
//! for that to be safe), and each value is bound to where it is stored (its
//! *context*, e.g. the endpoint it belongs to), so a sealed value copied to
//! another row does not open there.
//!
//! Keys come from text (the main secret, or `HERALD_ENCRYPTION_KEY`) through
//! HKDF-SHA256. A [`Keyring`] seals with its current key and opens with any of
//! its keys, picked by the id in the value: that is how a key is rotated (give
//! the new key as current and the old one as previous, re-seal, drop the old).

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// What every sealed value starts with.
pub const PREFIX: &str = "hrld1:";
const NONCE_LEN: usize = 24;
const ID_LEN: usize = 8;

/// Why a stored value could not be opened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("sealed with key {0}, which is neither HERALD_ENCRYPTION_KEY nor one of HERALD_PREVIOUS_ENCRYPTION_KEYS")]
    UnknownKey(String),
    #[error("a sealed value is malformed")]
    Malformed,
    #[error("a sealed value does not open with its key (altered, or moved from another row)")]
    Forged,
}

struct SealKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl SealKey {
    fn derive(secret: &[u8]) -> SealKey {
        let mut key = [0u8; 32];
        hkdf::Hkdf::<Sha256>::new(Some(b"herald at-rest v1"), secret)
            .expand(b"encryption key", &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let digest = Sha256::new()
            .chain_update(b"herald key id")
            .chain_update(key)
            .finalize();
        let id = digest[..ID_LEN / 2]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        SealKey {
            id,
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }
}

/// The keys Herald seals and opens stored secrets with.
pub struct Keyring {
    current: SealKey,
    previous: Vec<SealKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current.id)
            .field(
                "previous",
                &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Keyring {
    /// Seals with the key derived from `current`; also opens what was sealed
    /// with the keys derived from `previous`.
    pub fn new(current: &[u8], previous: &[&[u8]]) -> Keyring {
        Keyring {
            current: SealKey::derive(current),
            previous: previous.iter().map(|s| SealKey::derive(s)).collect(),
        }
    }

    /// The id of the key new values are sealed with.
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// Whether `id` names one of this keyring's keys.
    pub fn knows(&self, id: &str) -> bool {
        self.key(id).is_some()
    }

    fn key(&self, id: &str) -> Option<&SealKey> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
    }

    /// `plaintext` sealed with the current key, bound to `context`.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .current
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption of a slice cannot fail");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!(
            "{PREFIX}{}:{}",
            self.current.id,
            STANDARD_NO_PAD.encode(bytes)
        )
    }

    /// The plaintext of a stored value. A value that is not sealed (written
    /// before Herald sealed secrets, and not yet re-sealed) is its own
    /// plaintext.
    pub fn open(&self, stored: &[u8], context: &str) -> Result<Vec<u8>, SealError> {
        let Some(rest) = stored.strip_prefix(PREFIX.as_bytes()) else {
            return Ok(stored.to_vec());
        };
        let rest = std::str::from_utf8(rest).map_err(|_| SealError::Malformed)?;
        let (id, data) = rest.split_once(':').ok_or(SealError::Malformed)?;
        let key = self
            .key(id)
            .ok_or_else(|| SealError::UnknownKey(id.to_string()))?;
        let bytes = STANDARD_NO_PAD
            .decode(data)
            .map_err(|_| SealError::Malformed)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        key.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Forged)
    }

    /// [`Keyring::open`] for a value that must be text.
    pub fn open_text(&self, stored: &str, context: &str) -> Result<String, SealError> {
        String::from_utf8(self.open(stored.as_bytes(), context)?).map_err(|_| SealError::Malformed)
    }

    /// Whether `stored` is sealed with the current key (else it is plaintext,
    /// or sealed with a previous key, and re-sealing would change it).
    pub fn is_current(&self, stored: &[u8]) -> bool {
        key_id(stored) == Some(self.current.id.as_str())
    }
}

/// The id of the key a stored value is sealed with; `None` for plaintext.
pub fn key_id(stored: &[u8]) -> Option<&str> {
    let rest = stored.strip_prefix(PREFIX.as_bytes())?;
    let id = rest.get(..ID_LEN)?;
    std::str::from_utf8(id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let ring = Keyring::new(b"main secret of this server", &[]);
        let sealed = ring.seal(b"whsec_c2VjcmV0", "endpoint_secret:ep_1");
        assert!(sealed.starts_with("hrld1:"), "{sealed}");
        assert!(!sealed.contains("whsec_"), "{sealed}");
        assert_eq!(key_id(sealed.as_bytes()), Some(ring.current_id()));
        assert!(ring.is_current(sealed.as_bytes()));
        assert_eq!(
            ring.open_text(&sealed, "endpoint_secret:ep_1").as_deref(),
            Ok("whsec_c2VjcmV0")
        );
        // The same plaintext seals differently each time (random nonce).
        assert_ne!(sealed, ring.seal(b"whsec_c2VjcmV0", "endpoint_secret:ep_1"));

        let table = [
            (
                ring.open(sealed.as_bytes(), "endpoint_secret:ep_2"),
                SealError::Forged,
            ),
            (
                Keyring::new(b"another server's secret", &[])
                    .open(sealed.as_bytes(), "endpoint_secret:ep_1"),
                SealError::UnknownKey(ring.current_id().into()),
            ),
            (ring.open(b"hrld1:nocolon", "x"), SealError::Malformed),
            (
                ring.open(format!("hrld1:{}:!!!", ring.current_id()).as_bytes(), "x"),
                SealError::Malformed,
            ),
            (
                ring.open(format!("hrld1:{}:AAAA", ring.current_id()).as_bytes(), "x"),
                SealError::Malformed,
            ),
        ];
        for (got, want) in table {
            assert_eq!(got, Err(want));
        }
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            ring.open(&altered, "endpoint_secret:ep_1"),
            Err(SealError::Forged)
        );
    }

    #[test]
    fn plaintext_passes_through_and_previous_keys_still_open() {
        let old = Keyring::new(b"old key text", &[]);
        let sealed_old = old.seal(b"value", "ctx");
        let ring = Keyring::new(b"new key text", &[b"old key text"]);
        assert_ne!(ring.current_id(), old.current_id());
        assert!(ring.knows(old.current_id()));
        assert_eq!(
            ring.open(sealed_old.as_bytes(), "ctx"),
            Ok(b"value".to_vec())
        );
        assert!(!ring.is_current(sealed_old.as_bytes()));
        assert_eq!(ring.open(b"{\"a\":1}", "ctx"), Ok(b"{\"a\":1}".to_vec()));
        assert!(!ring.is_current(b"plaintext"));
        assert_eq!(key_id(b"plaintext"), None);
        // Derivation is stable: the same text is the same key on every node.
        assert_eq!(
            Keyring::new(b"new key text", &[]).current_id(),
            ring.current_id()
        );
    }
}
