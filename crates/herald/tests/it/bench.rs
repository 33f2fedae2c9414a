//! `herald bench --smoke`: the real binary runs a tiny version of every scenario
//! (its own receiver, a Herald child process per scenario) and fails if an
//! accepted message did not arrive. Nothing is killed in a smoke run, so a
//! duplicate is a bug too: the JSON reports them and these tests count them.
//! No timing is asserted.

use serde_json::Value;

use crate::support::{herald_binary, postgres_base_url, suite_on_postgres};

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

/// The PostgreSQL databases one bench process makes (`herald_bench_<pid>_<n>`;
/// it drops each after its scenario): dropped here too, so that a bench that
/// failed half-way leaves none behind.
struct BenchDatabases {
    base: String,
    pid: u32,
}

impl Drop for BenchDatabases {
    fn drop(&mut self) {
        let admin = format!("{}/postgres", self.base);
        let sql = format!(
            "SELECT datname FROM pg_database WHERE datname LIKE 'herald\\_bench\\_{}\\_%'",
            self.pid
        );
        let Ok(out) = std::process::Command::new("psql")
            .args(["-tAc", &sql, "-d", &admin])
            .output()
        else {
            return;
        };
        for name in String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
        {
            let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            let _ = std::process::Command::new("psql")
                .args(["-qc", &drop, "-d", &admin])
                .output();
        }
    }
}

/// Runs `herald bench ARGS` (on the PostgreSQL server at `postgres`, if any)
/// to its end, within five minutes.
async fn bench(args: &[&str], postgres: Option<&str>) -> std::process::Output {
    let mut cmd = herald_binary();
    cmd.arg("bench").args(args);
    if let Some(url) = postgres {
        cmd.args(["--database", url]);
    }
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let _databases = postgres.map(|base| BenchDatabases {
        base: base.trim_end_matches('/').to_string(),
        pid: child.id().unwrap(),
    });
    tokio::time::timeout(
        std::time::Duration::from_secs(300),
        child.wait_with_output(),
    )
    .await
    .expect("the smoke bench finishes within 5 minutes")
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn bench_smoke_runs_every_scenario_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let postgres = suite_on_postgres().then(postgres_base_url);
    let args = ["--smoke", "--json", json.to_str().unwrap()];
    let out = bench(&args, postgres.as_deref()).await;
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
    let args = [
        "--smoke",
        "--scenario",
        "throughput,fanout",
        "--workers",
        "2",
        "--json",
        json.to_str().unwrap(),
    ];
    let out = bench(&args, Some(&url)).await;
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
