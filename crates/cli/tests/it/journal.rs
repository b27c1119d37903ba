//! `--journal`: a run whose controller is killed mid-run, run again with the same journal,
//! never sends a command twice; hosts whose command may have run are reported `unknown`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use fleetsh_sim::{SimConfig, SimFleet};
use serde_json::Value;

use super::*;

fn args(sim: &SimFleet, journal: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "run".into(),
        "-H".into(),
        sim.hosts_file().display().to_string(),
        "-i".into(),
        sim.client_key_file().display().to_string(),
        "--known-hosts".into(),
        sim.known_hosts_file().display().to_string(),
        "-o".into(),
        "json".into(),
        "--no-progress".into(),
        "-f".into(),
        "2".into(),
        "--journal".into(),
        journal.display().to_string(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v.extend(["--".into(), "sleep 0.5; echo done".into()]);
    v
}

fn by_host(out: &Output) -> HashMap<String, Value> {
    json_lines(out)
        .into_iter()
        .map(|l| (l["host"].as_str().unwrap().to_string(), l))
        .collect()
}

#[test]
fn a_killed_run_resumed_from_its_journal_runs_no_command_twice() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimFleet::start(SimConfig {
        count: 12,
        port: 0,
        state_dir: dir.path().join("fleet"),
        ..SimConfig::default()
    })
    .expect("the simulated fleet must start for this test");
    let journal = dir.path().join("journal");

    // The first run is killed (SIGKILL, by PID) once a few hosts have started.
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleetsh"))
        .args(args(&sim, &journal, &[]))
        .env_remove("SSH_AUTH_SOCK")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&journal).unwrap_or_default();
        if text.matches("\"started\"").count() >= 5 {
            break;
        }
        assert!(Instant::now() < deadline, "the run did not start: {text}");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let sent_before: Vec<u64> = (0..12).map(|i| sim.commands_run(i)).collect();
    assert!(sent_before.iter().all(|&n| n <= 1), "{sent_before:?}");
    let ran: usize = sent_before.iter().filter(|&&n| n == 1).count();
    assert!((5..12).contains(&ran), "{sent_before:?}");

    // Run again: no command twice; every host reported once.
    let out = fleetsh(
        &args(&sim, &journal, &[])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let sent: Vec<u64> = (0..12).map(|i| sim.commands_run(i)).collect();
    assert!(
        sent.iter().all(|&n| n == 1),
        "every host sent its command exactly once: {sent:?}"
    );
    let lines = by_host(&out);
    assert_eq!(lines.len(), 12, "{}", text(&out.stdout));
    let unknown: Vec<&Value> = lines
        .values()
        .filter(|l| l["error"]["kind"] == "unknown")
        .collect();
    // Hosts killed mid-command have no result: their command may have run.
    for l in &unknown {
        assert!(l["exit_code"].is_null(), "{l}");
    }
    let done = lines.values().filter(|l| l["exit_code"] == 0).count();
    assert_eq!(done + unknown.len(), 12, "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("are reported from it"),
        "{}",
        text(&out.stderr)
    );
    // The host killed mid-command (sleeping half a second when the run was killed) is one.
    assert!(!unknown.is_empty(), "{}", text(&out.stdout));
    assert_ne!(
        out.status.code(),
        Some(0),
        "unknown hosts are not a success: {}",
        text(&out.stderr)
    );

    // --rerun-unknown runs exactly those again.
    let out = fleetsh(
        &args(&sim, &journal, &["--rerun-unknown"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let again: Vec<u64> = (0..12).map(|i| sim.commands_run(i)).collect();
    let twice = again.iter().filter(|&&n| n == 2).count();
    assert_eq!(twice, unknown.len(), "{again:?}");
    assert!(by_host(&out).values().all(|l| l["exit_code"] == 0));

    // Another command with this journal is refused, naming why.
    let mut other = args(&sim, &journal, &[]);
    other.pop();
    other.push("true".into());
    let out = fleetsh(&other.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("journal of another run"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_synced_journal_records_every_host_and_resumes_like_any_other() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimFleet::start(SimConfig {
        count: 6,
        port: 0,
        state_dir: dir.path().join("fleet"),
        ..SimConfig::default()
    })
    .expect("the simulated fleet must start for this test");
    let journal = dir.path().join("journal");
    let mut a = args(&sim, &journal, &["--journal-sync"]);
    a.pop();
    a.push("echo synced".into());
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = fleetsh(&a);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let replay = fleetsh::journal::read(&std::fs::read_to_string(&journal).unwrap()).unwrap();
    assert_eq!((replay.started.len(), replay.results.len()), (6, 6));
    // Run again: every host is reported from the journal, none runs twice.
    let out = fleetsh(&a);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(by_host(&out).len(), 6);
    assert!((0..6).all(|i| sim.commands_run(i) == 1));
    // --journal-sync needs a journal.
    let out = fleetsh(&["run", "-w", "h1", "--journal-sync", "--", "true"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}
