//! The commands around `serve`, as the real binary: `herald migrate` on a
//! database that already has its schema and data, `herald portal-link`, the
//! generated secret's file and mode, `HERALD_PRUNE_INTERVAL_SECONDS=0`,
//! `--role` refused on SQLite, `serve` on a database it cannot open, each
//! subcommand's flags, and a token made with a freshly generated secret.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{
    herald_binary, herald_command, herald_stdout, HeraldProcess, PortalSession, TestApp,
    TestDatabase, TEST_SECRET,
};

#[tokio::test]
async fn migrate_on_an_existing_database_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::for_suite(dir.path());
    let mut cmd = herald_command(db.url(), TEST_SECRET);
    cmd.arg("migrate");
    assert_eq!(herald_stdout(cmd).await.trim(), "migrations applied");
    // Data, written the way `serve` writes it.
    let app = TestApp::spawn_on(dir, db, Default::default()).await;
    let app_id = app.create_app("Kept").await;
    let msg = app
        .send(&app_id, json!({"eventType": "t.kept", "payload": {"n": 1}}))
        .await;
    // Again, on the database with its schema and data (and its server up).
    let mut cmd = herald_command(app.db.url(), TEST_SECRET);
    cmd.arg("migrate");
    assert_eq!(herald_stdout(cmd).await.trim(), "migrations applied");
    let (status, got) = app
        .get_json(&format!("/api/v1/app/{app_id}/msg/{msg}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["payload"], json!({"n": 1}));
    app.stop().await;
}

/// `herald portal-link ARGS` for the server `app`: the link it prints.
async fn portal_link_cli(app: &TestApp, args: &[&str]) -> String {
    let mut cmd = herald_command(app.db.url(), TEST_SECRET);
    cmd.arg("portal-link")
        .args(["--public-url", &app.base_url])
        .args(args);
    let out = herald_stdout(cmd).await;
    out.lines().last().unwrap().trim().to_string()
}

#[tokio::test]
async fn portal_link_opens_one_applications_portal_or_the_operator_view() {
    let app = TestApp::spawn().await;
    let yoga = app.create_app("Yoga Spot").await;
    app.create_app("Chess Spot").await;

    let link = portal_link_cli(&app, &["--app", &yoga]).await;
    assert!(link.starts_with(&app.url("/portal/login?token=")), "{link}");
    let portal = PortalSession::open(&app.base_url, &link).await;
    let (status, html) = portal.get("/portal/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Yoga Spot") && !html.contains("Chess Spot"),
        "{html}"
    );

    let operator = PortalSession::open(&app.base_url, &portal_link_cli(&app, &[]).await).await;
    let (status, html) = operator.get("/portal/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Yoga Spot") && html.contains("Chess Spot"),
        "{html}"
    );

    let mut cmd = herald_command(app.db.url(), TEST_SECRET);
    cmd.args(["portal-link", "--app", "no-such-spot"]);
    let out = cmd.output().await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-spot"), "{stderr}");
    app.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_generated_secret_is_kept_beside_the_database_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::sqlite(dir.path());
    let token = || {
        let mut cmd = herald_command(db.url(), TEST_SECRET);
        cmd.env_remove("HERALD_SECRET").args(["token", "create"]);
        herald_stdout(cmd)
    };
    let first = token().await;
    let file = dir.path().join("herald.db.secret");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let secret = std::fs::read_to_string(&file).unwrap();
    assert!(secret.trim().len() >= 32);
    token().await;
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        secret,
        "kept, not regenerated"
    );

    // A server started without HERALD_SECRET uses it: the first token works.
    let mut cmd = herald_command(db.url(), TEST_SECRET);
    cmd.env_remove("HERALD_SECRET").arg("serve");
    let server = HeraldProcess::spawn(cmd, dir.path().join("serve.log")).await;
    let r = reqwest::Client::new()
        .get(server.url("/api/v1/app"))
        .bearer_auth(first.lines().last().unwrap().trim())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn role_api_or_worker_is_refused_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::sqlite(dir.path());
    for role in ["api", "worker"] {
        let mut cmd = herald_command(db.url(), TEST_SECRET);
        cmd.args(["serve", "--role", role]);
        let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
            .await
            .expect("refused at once, not served")
            .unwrap();
        assert!(!out.status.success(), "--role {role} started on SQLite");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("--role {role} needs")) && stderr.contains("postgres://"),
            "{stderr}"
        );
    }
    // `all` is what SQLite runs.
    let mut cmd = herald_command(db.url(), TEST_SECRET);
    cmd.args(["serve", "--role", "all"]);
    HeraldProcess::spawn(cmd, dir.path().join("all.log")).await;
}

#[tokio::test]
async fn an_unknown_database_scheme_is_named_as_such() {
    let mut cmd = herald_command("mysql://root@127.0.0.1:3306/test", TEST_SECRET);
    cmd.env_remove("HERALD_SECRET").args(["token", "create"]);
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("refused at once")
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unsupported database URL scheme") && !stderr.contains("secret"),
        "{stderr}"
    );
}

#[tokio::test]
async fn herald_seed_catalog_takes_the_usual_truthy_words() {
    let dir = tempfile::tempdir().unwrap();
    for word in ["1", "yes", "on"] {
        std::fs::create_dir_all(dir.path().join(word)).unwrap();
        let db = TestDatabase::sqlite(&dir.path().join(word));
        let mut cmd = herald_command(db.url(), TEST_SECRET);
        cmd.env("HERALD_SEED_CATALOG", word).arg("serve");
        let node = HeraldProcess::spawn(cmd, dir.path().join(format!("{word}.log"))).await;
        let token = crate::support::mint_token(
            &herald::auth::Keys::new(TEST_SECRET.as_bytes()),
            crate::support::Scope::Org("org_herald"),
            None,
        );
        let types: serde_json::Value = reqwest::Client::new()
            .get(node.url("/api/v1/event-type?limit=250"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            types["data"].as_array().unwrap().len(),
            14,
            "HERALD_SEED_CATALOG={word}"
        );
    }
}

#[tokio::test]
async fn serve_says_it_listens_only_once_its_database_is_open() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    // A path under a regular file: no database can be made there.
    let url = format!("sqlite://{}/a-file/herald.db", dir.path().display());
    let mut cmd = herald_command(&url, TEST_SECRET);
    cmd.arg("serve");
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("gives up, not serves")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains("listening"), "{stdout}");
    assert!(
        stderr.contains(&format!("cannot open the database {url}")),
        "{stderr}"
    );
}

/// `herald <args> --help`, without any HERALD_* variable.
async fn help(args: &[&str]) -> String {
    let out = herald_binary()
        .args(args)
        .arg("--help")
        .env_clear()
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{args:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn each_subcommand_offers_only_the_flags_it_uses() {
    // The server's durability is the server's; the one-shot commands always
    // write with "full".
    let serve = help(&["serve"]).await;
    assert!(serve.contains("--sqlite-synchronous"), "{serve}");
    assert!(serve.contains("--secret"), "{serve}");
    assert!(serve.contains("postgres://"), "{serve}");
    // Each signs or checks tokens or links with the main secret, or opens
    // the database with the key derived from it.
    let one_shot: [&[&str]; 8] = [
        &["migrate"],
        &["rekey"],
        &["prune"],
        &["token", "create"],
        &["token", "list"],
        &["token", "revoke"],
        &["catalog", "import"],
        &["portal-link"],
    ];
    for args in one_shot {
        let text = help(args).await;
        assert!(!text.contains("--sqlite-synchronous"), "{args:?}: {text}");
        assert!(text.contains("--secret"), "{args:?}: {text}");
        assert!(text.contains("postgres://"), "{args:?}: {text}");
    }
    // These bring their own database and secret.
    for args in [&["demo"][..], &["bench"]] {
        let text = help(args).await;
        for flag in ["--secret", "--sqlite-synchronous", "--database-url"] {
            assert!(!text.contains(flag), "{args:?} offers {flag}: {text}");
        }
    }
    let import = help(&["catalog", "import"]).await;
    assert!(
        import.contains("A catalog directory (one JSON file per event type) or one such"),
        "{import}"
    );
}

#[tokio::test]
async fn a_token_made_with_a_new_secret_says_so_and_the_server_says_why_it_refuses_it() {
    let app = TestApp::spawn().await;
    // `herald token create` run in another directory: another database, and
    // no secret yet.
    let dir = tempfile::tempdir().unwrap();
    let other = TestDatabase::sqlite(dir.path());
    let create = || {
        let mut cmd = herald_command(other.url(), TEST_SECRET);
        cmd.env_remove("HERALD_SECRET").args(["token", "create"]);
        cmd.output()
    };
    let out = create().await.unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = dir.path().join("herald.db.secret");
    let secret = std::fs::read_to_string(&file).unwrap();
    assert!(
        stderr.contains(&format!(
            "a new one was generated into {} for the database {}",
            file.display(),
            other.url()
        )) && stderr.contains("refuses this token"),
        "{stderr}"
    );
    assert!(!stderr.contains(secret.trim()), "the secret is never shown");
    let token = String::from_utf8(out.stdout).unwrap();
    let token = token.lines().last().unwrap().trim().to_string();

    // The secret exists now: nothing more to say.
    let again = create().await.unwrap();
    assert!(again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!stderr.contains("generated into"), "{stderr}");

    // The server has another secret: 401, and the detail says why.
    let r = reqwest::Client::new()
        .get(app.url("/api/v1/app"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = r.json().await.unwrap();
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("made with another main secret")
            && detail.contains("`herald token create` run against another database"),
        "{detail}"
    );
    assert!(!detail.contains(secret.trim()) && !detail.contains(TEST_SECRET));
    app.stop().await;
}
