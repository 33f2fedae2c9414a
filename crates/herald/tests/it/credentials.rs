//! API tokens with an identity, through the real binary: `herald token
//! create`, `list` and `revoke` beside a running server, which refuses a
//! revoked or expired token within the documented bound.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::security::{run, spawn_binary, SECRET};
use crate::support::{split, HeraldProcess, TestDatabase};

async fn apps(server: &HeraldProcess, token: &str) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .get(server.url("/api/v1/app"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    split(r).await
}

/// Waits until the server refuses `token`; returns how long that took.
async fn refused_within(server: &HeraldProcess, token: &str, bound: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let (status, body) = apps(server, token).await;
        if status == StatusCode::UNAUTHORIZED {
            return start.elapsed();
        }
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(start.elapsed() < bound, "still accepted after {bound:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Now, in seconds since the UNIX epoch.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The `exp` claim of one of Herald's tokens.
fn expiry_of(token: &str) -> f64 {
    let mut validation = jsonwebtoken::Validation::default();
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
        &validation,
    )
    .expect("a token signed with the test secret")
    .claims;
    claims["exp"].as_f64().expect("an expiring token has exp")
}

fn last_line(out: &str) -> String {
    out.lines().last().unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_token_is_refused_by_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let d = &TestDatabase::for_suite(dir.path());
    let server = spawn_binary(d, dir.path(), "info").await;
    let token = last_line(&run(d, &["token", "create", "--name", "ci deploys"], &[]).await);
    let other = last_line(&run(d, &["token", "create"], &[]).await);
    assert_eq!(apps(&server, &token).await.0, StatusCode::OK);

    let list = run(d, &["token", "list"], &[]).await;
    let line = list.lines().find(|l| l.contains("ci deploys")).unwrap();
    assert!(
        line.contains("(active)") && line.contains("org_herald"),
        "{list}"
    );
    let id = line.split_whitespace().next().unwrap().to_string();
    assert!(id.starts_with("tok_"), "{list}");
    assert!(
        !list.contains(&token),
        "a token is never stored or shown again"
    );

    let said = run(d, &["token", "revoke", &id], &[]).await;
    assert!(said.contains(&id), "{said}");
    // The documented bound is one second; the poll allows for a loaded machine.
    let took = refused_within(&server, &token, Duration::from_secs(10)).await;
    eprintln!("revoked token refused {took:?} after `herald token revoke`");
    let (_, body) = apps(&server, &token).await;
    assert_eq!(body["detail"], "the token has been revoked");
    assert_eq!(
        apps(&server, &other).await.0,
        StatusCode::OK,
        "only that one"
    );
    let list = run(d, &["token", "list"], &[]).await;
    assert!(
        list.lines()
            .any(|l| l.starts_with(&id) && l.contains("revoked")),
        "{list}"
    );

    // A token given as itself (here one made by a process for its own use,
    // which has no record) is revoked all the same.
    let unlisted = herald::auth::Keys::new(SECRET.as_bytes()).org_token("org_herald");
    assert_eq!(apps(&server, &unlisted).await.0, StatusCode::OK);
    run(d, &["token", "revoke", &unlisted], &[]).await;
    refused_within(&server, &unlisted, Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_expire_and_legacy_ones_can_be_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let d = &TestDatabase::for_suite(dir.path());
    let server = spawn_binary(d, dir.path(), "info").await;
    let brief = last_line(&run(d, &["token", "create", "--expires-in", "5s"], &[]).await);
    // Judged by the token's own `exp` against the clock the server shares,
    // not by how long the machine takes: accepted while the second of its
    // `exp` lasts, refused from the next one on (no leeway).
    let exp = expiry_of(&brief);
    let mut accepted = 0;
    loop {
        let sent = unix_now();
        let (status, body) = apps(&server, &brief).await;
        let answered = unix_now();
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(body["detail"], "the token has expired");
            assert!(
                answered >= exp,
                "refused {:.2}s before its exp",
                exp - answered
            );
            break;
        }
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            sent < exp + 1.0,
            "no leeway: accepted {:.2}s after its exp",
            sent - exp
        );
        accepted += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(accepted > 0, "the token was never accepted while it lived");

    // A token as `herald token create` made them before tokens had ids.
    let legacy = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"iat": 1_700_000_000, "iss": "herald", "sub": "org_herald"}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(apps(&server, &legacy).await.0, StatusCode::OK);
    run(d, &["token", "revoke", &legacy], &[]).await;
    refused_within(&server, &legacy, Duration::from_secs(10)).await;
    let list = run(d, &["token", "list"], &[]).await;
    assert!(
        list.contains("legacy_") && list.contains("a token without an id"),
        "{list}"
    );
    // An old portal link (an expiring token without an id) is no API token.
    let old_link = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"iat": 1, "exp": 4_000_000_000_u64, "iss": "herald", "sub": "app_x", "org": "org_herald"}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(apps(&server, &old_link).await.0, StatusCode::UNAUTHORIZED);
}
