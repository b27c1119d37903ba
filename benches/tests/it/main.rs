//! `fleetsh-bench peers` end to end: fleetsh and every tool it is compared with run `echo hello`
//! on the same simulated hosts, and every row ends with every host OK. Needs pdsh, pssh, clush
//! and a Python with parallel-ssh and asyncssh (`FLEETSH_BENCH_PYTHON`, else `python3`):
//! `.ci/run` installs them. A missing tool fails the test, naming how to install it.
// Test code: a failed unwrap, expect or index is the test failing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    unreachable_pub
)]

use std::process::Command;

#[test]
fn every_peer_runs_echo_on_every_host_beside_fleetsh() {
    let python = std::env::var("FLEETSH_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(env!("CARGO_BIN_EXE_fleetsh-bench"))
        .args([
            "--reps", "1", "--json", "peers", "--hosts", "12", "--fanout", "5",
        ])
        .arg("--python")
        .arg(&python)
        .output()
        .expect("running fleetsh-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "fleetsh-bench peers failed ({}):\n{stderr}\n{stdout}",
        out.status
    );
    let report: serde_json::Value = stdout
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON report in:\n{stdout}"));
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
