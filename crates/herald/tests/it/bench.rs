//! `herald bench --smoke`: the real binary runs a tiny version of every scenario
//! (its own receiver, a Herald child process per scenario) and fails if an
//! accepted message did not arrive. Nothing is killed in a smoke run, so a
//! duplicate is a bug too: the JSON reports them and these tests count them.
//! No timing is asserted.

use serde_json::Value;

use crate::support::{herald_binary, postgres_base_url};

/// Every accepted message arrived, once.
fn assert_phase_complete(name: &str, phase: &Value) {
    let expected = phase["deliveries_expected"].as_u64().unwrap();
    assert!(expected > 0, "{name}: {phase}");
    assert_eq!(
        phase["deliveries"].as_u64(),
        Some(expected),
        "{name}: {phase}"
    );
    assert_eq!(phase["lost"].as_u64(), Some(0), "{name}: {phase}");
    assert_eq!(phase["duplicates"].as_u64(), Some(0), "{name}: {phase}");
    assert_eq!(phase["send_errors"].as_u64(), Some(0), "{name}: {phase}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bench_smoke_runs_every_scenario_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let mut cmd = herald_binary();
    cmd.args(["bench", "--smoke", "--json"]).arg(&json);
    if let Ok(url) = std::env::var("HERALD_TEST_POSTGRES_URL") {
        cmd.args(["--database", &url]);
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(300), cmd.output())
        .await
        .expect("the smoke bench finishes within 5 minutes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("raw loopback"), "{stdout}");

    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(doc["machine"]["cores"].as_u64().unwrap() >= 1, "{doc}");
    assert!(doc["machine"]["git_commit"].is_string(), "{doc}");
    assert!(doc["baseline"]["posts"].as_u64().unwrap() > 0, "{doc}");
    for name in ["throughput", "fanout", "latency", "backlog", "isolation"] {
        let phases = doc["scenarios"][name]["phases"]
            .as_array()
            .unwrap_or_else(|| panic!("no scenario {name} in {doc}"));
        assert!(!phases.is_empty(), "{name}");
        for phase in phases {
            assert_phase_complete(name, phase);
        }
    }
}

/// `--workers N` starts one API process and N worker processes on one fresh
/// PostgreSQL database (on `HERALD_TEST_POSTGRES_URL` or the local server: this
/// test needs PostgreSQL in every run, and fails without it).
#[tokio::test(flavor = "multi_thread")]
async fn bench_smoke_with_separate_worker_processes_on_postgres() {
    let url = postgres_base_url();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(300),
        herald_binary()
            .args(["bench", "--smoke", "--scenario", "throughput,fanout"])
            .args(["--workers", "2", "--database", &url, "--json"])
            .arg(&json)
            .output(),
    )
    .await
    .expect("the smoke bench finishes within 5 minutes")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");

    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["machine"]["workers"].as_u64(), Some(2), "{doc}");
    for name in ["throughput", "fanout"] {
        for phase in doc["scenarios"][name]["phases"].as_array().unwrap() {
            assert_phase_complete(name, phase);
            let roles: Vec<&str> = phase["server_processes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["role"].as_str().unwrap())
                .collect();
            assert_eq!(roles, ["api", "worker 1", "worker 2"], "{name}: {phase}");
        }
    }
}

#[tokio::test]
async fn bench_refuses_worker_processes_on_sqlite() {
    let out = herald_binary()
        .args(["bench", "--smoke", "--workers", "1"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--workers needs"), "{stderr}");
}
