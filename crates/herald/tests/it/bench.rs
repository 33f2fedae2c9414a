//! `herald bench --smoke`: the real binary runs a tiny version of every scenario
//! (its own receiver, a Herald child process per scenario) and fails if an
//! accepted message did not arrive. No timing is asserted.

use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn bench_smoke_runs_every_scenario_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"));
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
            let expected = phase["deliveries_expected"].as_u64().unwrap();
            assert!(expected > 0, "{name}: {phase}");
            assert_eq!(
                phase["deliveries"].as_u64(),
                Some(expected),
                "{name}: {phase}"
            );
            assert_eq!(phase["lost"].as_u64(), Some(0), "{name}: {phase}");
            assert_eq!(phase["send_errors"].as_u64(), Some(0), "{name}: {phase}");
        }
    }
}
