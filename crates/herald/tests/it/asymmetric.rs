//! Asymmetric signatures (Standard Webhooks `v1a`, ed25519): an endpoint
//! whose secret is a `whsk_` key signs with it, and a real receiver verifies
//! with the `whpk_` public key through `ed25519-dalek`, which Herald's own
//! verifier is not. (The `standardwebhooks` and `svix` crates in Cargo.lock
//! verify only `v1`; they check the `v1` half of a migration's header.)

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use reqwest::StatusCode;
use serde_json::json;
use svix::models::EndpointSecretRotateIn;

use crate::support::{PortalSession, Received, Receiver, TestApp};

const WAIT: Duration = Duration::from_secs(30);

/// A receiver's check: some `v1a` signature in the header verifies, with
/// the public key given as `whpk_…`, over `{id}.{timestamp}.{body}`.
fn dalek_verify(whpk: &str, got: &Received, body: &[u8]) -> bool {
    let bytes: [u8; 32] = STANDARD
        .decode(whpk.strip_prefix("whpk_").expect("a whpk_ key"))
        .unwrap()
        .try_into()
        .unwrap();
    let key = VerifyingKey::from_bytes(&bytes).unwrap();
    let mut content = format!(
        "{}.{}.",
        got.header("webhook-id"),
        got.header("webhook-timestamp")
    )
    .into_bytes();
    content.extend_from_slice(body);
    got.header("webhook-signature")
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1a,"))
        .any(|sig| {
            let sig = Signature::from_slice(&STANDARD.decode(sig).unwrap()).unwrap();
            key.verify_strict(&content, &sig).is_ok()
        })
}

/// The signature versions in the header, sorted (the current key signs
/// first).
fn versions(got: &Received) -> Vec<String> {
    let mut versions: Vec<String> = got
        .header("webhook-signature")
        .split(' ')
        .map(|entry| entry.split_once(',').unwrap().0.to_string())
        .collect();
    versions.sort();
    versions
}

#[tokio::test]
async fn whsk_endpoint_signs_v1a_and_a_receiver_verifies_with_the_public_key() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Spot").await;
    // The receiver's side made the key pair; the platform was given the
    // 32-byte secret key.
    let signing = SigningKey::from_bytes(&[7u8; 32]);
    let whsk = format!("whsk_{}", STANDARD.encode(signing.to_bytes()));
    let whpk = format!(
        "whpk_{}",
        STANDARD.encode(signing.verifying_key().as_bytes())
    );
    let ep = app
        .create_endpoint(
            &app_id,
            json!({"url": receiver.url("/hook"), "secret": whsk}),
        )
        .await;
    let (status, secret) = app
        .get_json(&format!("/api/v1/app/{app_id}/endpoint/{ep}/secret"))
        .await;
    assert_eq!(status, StatusCode::OK, "{secret}");
    assert_eq!(secret["publicKey"], json!(whpk), "{secret}");
    // As Svix answers: the public key, never the private one.
    assert_eq!(secret["key"], json!(whpk), "{secret}");
    assert!(!secret.to_string().contains("whsk_"), "{secret}");

    let msg_id = app
        .send(
            &app_id,
            json!({"eventType": "a", "payload": {"z": 1, "a": "é"}}),
        )
        .await;
    let got = receiver.wait_for("/hook", 1, WAIT).await.remove(0);
    assert_eq!(got.header("webhook-id"), msg_id);
    assert_eq!(versions(&got), ["v1a"]);
    assert_eq!(
        got.header("svix-signature"),
        got.header("webhook-signature")
    );
    assert!(dalek_verify(&whpk, &got, &got.body));
    // A changed body, or another key, fails.
    let mut tampered = got.body.to_vec();
    tampered.push(b' ');
    assert!(!dalek_verify(&whpk, &got, &tampered));
    let other = SigningKey::from_bytes(&[8u8; 32]).verifying_key();
    let other = format!("whpk_{}", STANDARD.encode(other.as_bytes()));
    assert!(!dalek_verify(&other, &got, &got.body));
    // Herald's own verifier agrees.
    let ts: i64 = got.header("webhook-timestamp").parse().unwrap();
    assert_eq!(
        herald_core::signing::verify_with_public_key(
            &whpk,
            &msg_id,
            ts,
            &got.body,
            got.header("webhook-signature")
        ),
        Ok(true)
    );

    // The portal shows the public key, and only it.
    let portal = PortalSession::for_app(&app, &app_id).await;
    let (status, page) = portal.get(&format!("/portal/endpoints/{ep}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&whpk), "{page}");
    assert!(page.contains("id=\"public-key\""), "{page}");
    assert!(
        !page.contains("whsk_") && !page.contains("id=\"secret-value\""),
        "no private key on the page"
    );
    // The message page names the scheme the endpoint's requests carry.
    let (status, page) = portal
        .get(&format!("/portal/endpoints/{ep}/messages/{msg_id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("v1a,…"), "{page}");
}

/// A rotation from `whsec_` to a generated `whsk_` key: while the old key
/// lasts, both signatures are sent, and receivers of either kind verify.
#[tokio::test]
async fn rotating_from_whsec_to_whsk_sends_v1_and_v1a() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let app_id = app.create_app("Spot").await;
    let ep = app
        .create_endpoint(&app_id, json!({"url": receiver.url("/hook")}))
        .await;
    let old = app.endpoint_secret(&app_id, &ep).await;
    assert!(old.starts_with("whsec_"), "{old}");
    let rotate = format!("/api/v1/app/{app_id}/endpoint/{ep}/secret/rotate");

    // Bad requests are 422s naming the field; nothing changes.
    let whsk = format!(
        "whsk_{}",
        STANDARD.encode(SigningKey::from_bytes(&[9u8; 32]).to_bytes())
    );
    let table = [
        (json!({"key": whsk, "keyType": "hmac"}), "keyType"),
        (json!({"key": old, "keyType": "ed25519"}), "keyType"),
        (json!({"keyType": "rsa"}), "keyType"),
        (json!({"key": "whsk_AAAA"}), "key"),
        (json!({"key": format!("{whsk}AAAA")}), "key"),
    ];
    for (body, field) in table {
        let (status, out) = app.post_json(&rotate, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {out}");
        assert_eq!(out["detail"][0]["loc"], json!(["body", field]), "{out}");
    }
    assert_eq!(app.endpoint_secret(&app_id, &ep).await, old);

    let (status, out) = app.post_json(&rotate, json!({"keyType": "ed25519"})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let new = out["key"].as_str().unwrap().to_string();
    let whpk = out["publicKey"].as_str().unwrap().to_string();
    assert!(new == whpk && whpk.starts_with("whpk_"), "{out}");

    app.send(&app_id, json!({"eventType": "a", "payload": {"n": 1}}))
        .await;
    let got = receiver.wait_for("/hook", 1, WAIT).await.remove(0);
    assert_eq!(versions(&got), ["v1", "v1a"]);
    // The old key's receivers verify the v1 signature with the verifiers
    // they have; the new key's with the public key.
    assert!(svix::webhooks::Webhook::new(&old)
        .unwrap()
        .verify(&got.body, &got.headers)
        .is_ok());
    assert!(standardwebhooks::Webhook::new(&old)
        .unwrap()
        .verify(&got.body, &got.headers)
        .is_ok());
    assert!(dalek_verify(&whpk, &got, &got.body));

    // Through the SDK, a key of the caller's choosing, and the old ones
    // expired at once: only v1a is left.
    let out = app
        .svix()
        .endpoint()
        .rotate_secret(
            app_id.clone(),
            ep.clone(),
            EndpointSecretRotateIn {
                key: Some(whsk.clone()),
                grace_period_seconds: Some(0),
            },
            None,
        )
        .await
        .unwrap();
    let whpk = herald_core::signing::EndpointSecret::parse(&whsk)
        .unwrap()
        .public_key()
        .unwrap();
    assert_eq!(out.key, whpk, "the public half of the key given");
    app.send(&app_id, json!({"eventType": "a", "payload": {"n": 2}}))
        .await;
    let got = receiver.wait_for("/hook", 2, WAIT).await.remove(1);
    assert_eq!(versions(&got), ["v1a"]);
    assert!(dalek_verify(&whpk, &got, &got.body));
    // Without a keyType, a generated key is whsec_ (as Svix's).
    let (status, out) = app.post_json(&rotate, json!({"key": null})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert!(out["key"].as_str().unwrap().starts_with("whsec_"), "{out}");
    assert!(out.get("publicKey").is_none(), "{out}");
}
