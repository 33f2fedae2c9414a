//! What a stolen copy of the database gives away: nothing of the endpoints'
//! signing keys, custom header credentials or remembered responses, on SQLite
//! (its files, byte for byte, which are readable by their owner only) and on
//! PostgreSQL (`pg_dump`). And the key that seals them can be rotated.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::security::{herald, run, spawn_binary, spawn_binary_with, SECRET};
use crate::support::{split, HeraldProcess, TestDatabase};

const CREDENTIAL: &str = "Bearer cred-s3cret-4f9a";

struct Client {
    http: reqwest::Client,
    token: String,
}

impl Client {
    fn new() -> Client {
        Client {
            http: reqwest::Client::new(),
            token: herald::auth::Keys::new(SECRET.as_bytes()).org_token("org_herald"),
        }
    }

    async fn call(
        &self,
        server: &HeraldProcess,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, server.url(path))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        if let Some(key) = key {
            req = req.header("idempotency-key", key);
        }
        split(req.send().await.unwrap()).await
    }
}

/// An endpoint with a credential header whose key was rotated through an
/// idempotent request (so the new key is in a remembered response too).
/// Returns every key it signed with.
async fn endpoint_with_secrets(server: &HeraldProcess) -> Vec<String> {
    use reqwest::Method;
    let c = Client::new();
    let (s, _) = c
        .call(
            server,
            Method::POST,
            "/api/v1/app",
            Some(json!({"name": "Spot", "uid": "spot"})),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, ep) = c
        .call(
            server,
            Method::POST,
            "/api/v1/app/spot/endpoint",
            Some(json!({"url": "https://example.com/hook", "uid": "ep",
                        "headers": {"Authorization": CREDENTIAL}})),
            Some("create-endpoint-1"),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{ep}");
    let (_, first) = c
        .call(
            server,
            Method::GET,
            "/api/v1/app/spot/endpoint/ep/secret",
            None,
            None,
        )
        .await;
    let (s, rotated) = c
        .call(
            server,
            Method::POST,
            "/api/v1/app/spot/endpoint/ep/secret/rotate",
            Some(json!({})),
            Some("rotate-1"),
        )
        .await;
    assert!(s.is_success(), "{rotated}");
    let (_, second) = c
        .call(
            server,
            Method::GET,
            "/api/v1/app/spot/endpoint/ep/secret",
            None,
            None,
        )
        .await;
    let keys = [&first["key"], &second["key"]].map(|k| k.as_str().unwrap().to_string());
    assert_ne!(keys[0], keys[1]);
    keys.to_vec()
}

/// Everything the database holds, as a thief with the files (or a dump) has
/// it. SQLite: the raw bytes of the database, its WAL and shared memory.
fn stolen(db: &TestDatabase) -> String {
    let url = db.url();
    if db.is_postgres() {
        let out = std::process::Command::new("pg_dump")
            .args(["--data-only", url])
            .output()
            .expect("pg_dump, from PostgreSQL's client, reads the test database");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return String::from_utf8_lossy(&out.stdout).into_owned();
    }
    let db = url.trim_start_matches("sqlite://");
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| std::fs::read(format!("{db}{suffix}")).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stolen_database_reveals_no_signing_key_and_no_credential() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::for_suite(dir.path());
    let server = spawn_binary(&db, dir.path(), "info").await;
    let keys = endpoint_with_secrets(&server).await;
    let dump = stolen(&db);
    assert!(
        dump.contains("https://example.com/hook"),
        "the dump holds the data"
    );
    assert_eq!(
        dump.matches("whsec_").count(),
        0,
        "a signing key is readable"
    );
    for secret in keys.iter().map(|k| k.trim_start_matches("whsec_")) {
        assert!(!dump.contains(secret), "a signing key is readable");
    }
    assert!(
        !dump.contains("cred-s3cret"),
        "the header credential is readable"
    );

    #[cfg(unix)]
    if !db.is_postgres() {
        use std::os::unix::fs::PermissionsExt;
        for file in ["herald.db", "herald.db-wal", "herald.db-shm"] {
            let mode =
                std::fs::metadata(dir.path().join(file)).map(|m| m.permissions().mode() & 0o777);
            assert_eq!(mode.ok(), Some(0o600), "{file}");
        }
    }
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_encryption_key_rotates_with_rekey() {
    let dir = tempfile::tempdir().unwrap();
    let d = &TestDatabase::for_suite(dir.path());
    let old_key = "the-first-encryption-key-0123";
    let new_key = "the-second-encryption-key-456";
    let server =
        spawn_binary_with(d, dir.path(), "info", &[("HERALD_ENCRYPTION_KEY", old_key)]).await;
    let keys = endpoint_with_secrets(&server).await;
    drop(server);

    // The new key alone cannot open what the old one sealed: Herald says so
    // and does not start.
    let out = herald(d)
        .args(["migrate"])
        .env("HERALD_ENCRYPTION_KEY", new_key)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("HERALD_PREVIOUS_ENCRYPTION_KEYS"), "{said}");

    let both = [
        ("HERALD_ENCRYPTION_KEY", new_key),
        ("HERALD_PREVIOUS_ENCRYPTION_KEYS", old_key),
    ];
    let report = run(d, &["rekey"], &both).await;
    assert!(report.contains("re-sealed"), "{report}");
    // Afterwards the new key alone opens everything.
    let server =
        spawn_binary_with(d, dir.path(), "info", &[("HERALD_ENCRYPTION_KEY", new_key)]).await;
    let (status, secret) = Client::new()
        .call(
            &server,
            reqwest::Method::GET,
            "/api/v1/app/spot/endpoint/ep/secret",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{secret}");
    assert_eq!(secret["key"], keys[1]);
    let (_, headers) = Client::new()
        .call(
            &server,
            reqwest::Method::GET,
            "/api/v1/app/spot/endpoint/ep/headers",
            None,
            None,
        )
        .await;
    assert_eq!(
        headers["sensitive"],
        serde_json::json!(["Authorization"]),
        "{headers}"
    );
    assert!(!stolen(d).contains("cred-s3cret"));
}
