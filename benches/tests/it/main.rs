//! `fleetsh-bench peers` and `fleetsh-bench python` end to end: fleetsh and every tool it is
//! compared with run `echo hello` on the same simulated hosts, and every row ends with every
//! host OK. Needs pdsh, pssh, clush and a Python with parallel-ssh and asyncssh
//! (`FLEETSH_BENCH_PYTHON`, else `python3`): `.ci/run` installs them. `python` also needs a
//! Python with fleetsh's package (`FLEETSH_BENCH_FLEETSH_PYTHON`, else target/python-venv),
//! which `.ci/run` builds after the workspace's tests: its test is ignored by default and run by
//! `.ci/run` once the package is built. A missing tool fails the test, naming how to install it.
// Test code: a failed unwrap, expect or index is the test failing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    unreachable_pub
)]

use std::process::Command;

/// Runs `fleetsh-bench ARGS` and returns its stdout and the first JSON report in it.
fn bench(args: &[&str]) -> (String, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_fleetsh-bench"))
        .args(args)
        .output()
        .expect("running fleetsh-bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "fleetsh-bench {args:?} failed ({}):\n{stderr}\n{stdout}",
        out.status
    );
    let report: serde_json::Value = stdout
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON report in:\n{stdout}"));
    (stdout, report)
}

#[test]
fn every_peer_runs_echo_on_every_host_beside_fleetsh() {
    let python = std::env::var("FLEETSH_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let (stdout, report) = bench(&[
        "--reps", "1", "--json", "peers", "--hosts", "12", "--fanout", "5", "--python", &python,
    ]);
    let rows = report["rows"].as_array().expect("rows");
    let labels: Vec<&str> = rows.iter().filter_map(|r| r["label"].as_str()).collect();
    assert_eq!(
        labels,
        [
            "fleetsh mlkem768x25519",
            "fleetsh curve25519",
            "parallel-ssh",
            "asyncssh",
            "pdsh",
            "pssh",
            "clush"
        ]
    );
    for r in rows {
        assert_eq!(r["hosts"], 12, "{r}");
        assert_eq!(r["ok"], 12, "every host of {} OK: {r}", r["label"]);
        assert_eq!(r["failures"], 0, "{r}");
        assert!(r["peak_rss_kib"].as_u64().unwrap_or(0) > 0, "{r}");
    }
    // A peer's per-host CPU is counted: one `ssh` process per host costs milliseconds.
    let pdsh = rows
        .iter()
        .find(|r| r["label"] == "pdsh")
        .expect("pdsh row");
    assert!(pdsh["client_cpu_s"].as_f64().unwrap_or(0.0) > 0.0, "{pdsh}");
    assert!(stdout.contains("CPU x fleetsh"), "{stdout}");
}

#[test]
#[ignore = "needs fleetsh's Python package: .ci/run runs it once the package is built"]
fn python_scenario_runs_every_client_on_every_host() {
    // The interpreters: FLEETSH_BENCH_PYTHON and FLEETSH_BENCH_FLEETSH_PYTHON, else the
    // harness's defaults (target/peers-venv, target/python-venv).
    let (stdout, report) = bench(&[
        "--reps", "1", "--json", "python", "--hosts", "8", "--fanout", "4",
    ]);
    let rows = report["rows"].as_array().expect("rows");
    let labels: Vec<&str> = rows.iter().filter_map(|r| r["label"].as_str()).collect();
    assert_eq!(
        labels,
        [
            "fleetsh-python",
            "fleetsh-python (pssh compat)",
            "parallel-ssh",
            "asyncssh",
            "fleetsh CLI mlkem768x25519",
            "fleetsh CLI curve25519",
        ]
    );
    for r in rows {
        assert_eq!(r["hosts"], 8, "{r}");
        assert_eq!(r["ok"], 8, "every host of {} OK: {r}", r["label"]);
        assert_eq!(r["failures"], 0, "{r}");
        assert!(r["peak_rss_kib"].as_u64().unwrap_or(0) > 0, "{r}");
    }
    assert!(stdout.contains("CPU x parallel-ssh"), "{stdout}");
    assert!(
        stdout.contains("fleetsh-python (pssh compat): "),
        "the summary names each fleetsh row: {stdout}"
    );
}
