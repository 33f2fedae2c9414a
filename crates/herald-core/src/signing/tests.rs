//! The signing module's tables: known signatures, key forms, and what
//! must fail.

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
        (generated.reveal(), generated.reveal()),
    ];
    for (input, expected) in table {
        assert_eq!(secret(&input).reveal(), expected, "{input}");
    }
}

#[test]
fn generated_secrets() {
    let a = EndpointSecret::generate();
    let b = EndpointSecret::generate();
    assert_ne!(a.reveal(), b.reveal());
    // 24 bytes are 32 base64 characters with no padding.
    let whsec = a.reveal();
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
        let got = EndpointSecret::parse(&encoded).map(|s| match s.key {
            Key::Hmac(bytes) => bytes.len(),
            Key::Ed25519(_) => 0,
        });
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

/// RFC 8032's first test key: its secret key and the public key the RFC
/// derives from it, as hex.
const RFC_SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const RFC_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn rfc_whsk() -> String {
    format!("whsk_{}", STANDARD.encode(hex(RFC_SECRET)))
}

#[test]
fn ed25519_keys() {
    let whpk = format!("whpk_{}", STANDARD.encode(hex(RFC_PUBLIC)));
    let pair = [hex(RFC_SECRET), hex(RFC_PUBLIC)].concat();
    let pair_whsk = format!("whsk_{}", STANDARD.encode(&pair));
    // The 32-byte secret key and the 64-byte pair are one key, written
    // back as the pair; the public key is the RFC's.
    for input in [rfc_whsk(), pair_whsk.clone()] {
        let key = secret(&input);
        assert_eq!(key.kind(), KeyKind::Ed25519);
        assert_eq!(key.reveal(), pair_whsk, "{input}");
        assert_eq!(key.public_key().as_deref(), Some(whpk.as_str()));
    }
    assert_eq!(secret(SPEC_SECRET).public_key(), None);
    assert_eq!(secret(SPEC_SECRET).kind(), KeyKind::Hmac);
    let a = EndpointSecret::generate_kind(KeyKind::Ed25519);
    let b = EndpointSecret::generate_kind(KeyKind::Ed25519);
    assert_ne!(a.reveal(), b.reveal());
    assert!(a.reveal().starts_with("whsk_"));
    assert_eq!(secret(&a.reveal()).reveal(), a.reveal());
    assert_eq!(
        EndpointSecret::generate_kind(KeyKind::Hmac).kind(),
        KeyKind::Hmac
    );
}

#[test]
fn ed25519_sign_and_verify() {
    let key = secret(&rfc_whsk());
    let whpk = key.public_key().unwrap();
    let signature = key.sign(SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY);
    assert!(signature.starts_with("v1a,"), "{signature}");
    // 64 bytes of signature are 88 base64 characters.
    assert_eq!(signature.len(), 4 + 88, "{signature}");
    // Deterministic, as ed25519 is.
    assert_eq!(signature, key.sign(SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY));
    let hmac = secret(SPEC_SECRET);
    let both = signature_header(
        &[hmac.clone(), key.clone()],
        SPEC_MSG_ID,
        SPEC_TIMESTAMP,
        SPEC_BODY,
    );
    assert_eq!(both, format!("{SPEC_SIGNATURE} {signature}"));
    let other = EndpointSecret::generate_kind(KeyKind::Ed25519);
    // (message id, timestamp, body, header) -> verifies with the key
    let table: Vec<(&str, i64, &[u8], String, bool)> = vec![
        (
            SPEC_MSG_ID,
            SPEC_TIMESTAMP,
            SPEC_BODY,
            signature.clone(),
            true,
        ),
        (SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY, both.clone(), true),
        (
            SPEC_MSG_ID,
            SPEC_TIMESTAMP + 1,
            SPEC_BODY,
            signature.clone(),
            false,
        ),
        (
            "msg_other",
            SPEC_TIMESTAMP,
            SPEC_BODY,
            signature.clone(),
            false,
        ),
        (SPEC_MSG_ID, SPEC_TIMESTAMP, b"{}", signature.clone(), false),
        // A v1a signature presented as v1 is not checked as ed25519.
        (
            SPEC_MSG_ID,
            SPEC_TIMESTAMP,
            SPEC_BODY,
            signature.replace("v1a,", "v1,"),
            false,
        ),
        (
            SPEC_MSG_ID,
            SPEC_TIMESTAMP,
            SPEC_BODY,
            SPEC_SIGNATURE.to_owned(),
            false,
        ),
        (
            SPEC_MSG_ID,
            SPEC_TIMESTAMP,
            SPEC_BODY,
            other.sign(SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY),
            false,
        ),
        (
            SPEC_MSG_ID,
            SPEC_TIMESTAMP,
            SPEC_BODY,
            "v1a,AAAA".to_owned(),
            false,
        ),
        (
            SPEC_MSG_ID,
            SPEC_TIMESTAMP,
            SPEC_BODY,
            "v1a,not base64!".to_owned(),
            false,
        ),
    ];
    for (msg_id, timestamp, body, header, want) in table {
        assert_eq!(
            key.verify(msg_id, timestamp, body, &header),
            want,
            "{header}"
        );
        assert_eq!(
            verify_with_public_key(&whpk, msg_id, timestamp, body, &header),
            Ok(want),
            "{header}"
        );
    }
    // The HMAC key of a mixed header still finds its own signature.
    assert!(hmac.verify(SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY, &both));
    for bad in [
        "",
        "whpk_",
        "whpk_AAAA",
        "whsk_AAAA",
        &whpk[5..],
        &format!("{whpk}A"),
    ] {
        assert_eq!(
            verify_with_public_key(bad, SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY, &signature),
            Err(SecretError::BadPublicKey),
            "{bad}"
        );
    }
}

#[test]
fn bad_ed25519_secrets() {
    let mut mismatched = [hex(RFC_SECRET), hex(RFC_PUBLIC)].concat();
    mismatched[40] ^= 1;
    let table: Vec<(String, SecretError)> = vec![
        (
            "whsk_".to_owned(),
            SecretError::BadAsymmetricLength { len: 0 },
        ),
        (
            format!("whsk_{}", STANDARD.encode([1u8; 31])),
            SecretError::BadAsymmetricLength { len: 31 },
        ),
        (
            format!("whsk_{}", STANDARD.encode([1u8; 48])),
            SecretError::BadAsymmetricLength { len: 48 },
        ),
        (
            format!("whsk_{}", STANDARD.encode(&mismatched)),
            SecretError::KeyPairMismatch,
        ),
        (
            format!("{}-", rfc_whsk()),
            SecretError::BadChar { found: '-' },
        ),
        (
            format!("whsk_{}", rfc_whsk()),
            SecretError::BadChar { found: '_' },
        ),
        (
            "whsk_A".to_owned(),
            SecretError::NotBase64(base64::DecodeError::InvalidLength(1)),
        ),
    ];
    for (input, expected) in table {
        assert_eq!(
            EndpointSecret::parse(&input).err(),
            Some(expected),
            "{input:?}"
        );
    }
    let key = secret(&rfc_whsk());
    let shown = format!("{key:?}");
    assert_eq!(shown, "EndpointSecret(<redacted>)");
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
