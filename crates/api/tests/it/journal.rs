//! Runs that keep a journal: every host's start and final result recorded, read back as each
//! host stands; a cancelled host that never started is left to run again.

use std::sync::Arc;

use fleetsh::journal::{Header, HostState, JournalFile};
use fleetsh::{ErrorKind, Job};

use crate::engine::fleet;

fn job(cmd: &str) -> Job {
    let mut j = Job::new(cmd);
    j.connect_timeout = std::time::Duration::from_secs(20);
    j
}

#[test]
fn every_host_started_and_finished_is_recorded() {
    let f = fleet(20, 31, None);
    let hosts = f.targets();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    let header = Header::new("echo hi", None, &hosts);
    let (journal, replay) = JournalFile::open(&path, &header).unwrap();
    assert!(replay.is_none(), "a new journal");
    let all: Vec<usize> = (0..hosts.len()).collect();
    let report = f
        .engine(2)
        .build()
        .unwrap()
        .run_journaled(hosts.clone(), &all, job("echo hi"), Arc::new(journal))
        .unwrap()
        .join();
    assert!(report.results.iter().all(|r| r.is_ok()), "{report:?}");

    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 1 + 2 * hosts.len(), "{text}");
    let (_, replay) = JournalFile::open(&path, &header).unwrap();
    let replay = replay.expect("the journal reads back");
    for (i, host) in hosts.iter().enumerate() {
        assert_eq!(replay.state(i), HostState::Done);
        let r = replay.results[&i].clone().into_host_result(i);
        assert_eq!(r.stdout, b"hi\n");
        assert_eq!(r.target.host, host.host);
    }
    // Another run's journal is refused, naming what differs.
    let other = Header::new("echo other", None, &hosts);
    let e = JournalFile::open(&path, &other).unwrap_err().to_string();
    assert!(
        e.contains("journal of another run") && e.contains("\"echo other\""),
        "{e}"
    );
}

#[test]
fn a_host_cancelled_before_it_started_is_left_to_run_again() {
    let f = fleet(30, 32, None);
    let hosts = f.targets();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    let header = Header::new("sleep 30", None, &hosts);
    let (journal, _) = JournalFile::open(&path, &header).unwrap();
    let all: Vec<usize> = (0..hosts.len()).collect();
    // Fanout 2: most hosts never start before the run is cancelled.
    let handle = f
        .engine(1)
        .fanout(2)
        .build()
        .unwrap()
        .run_journaled(hosts.clone(), &all, job("sleep 30"), Arc::new(journal))
        .unwrap();
    // Wait (bounded) until two hosts have started their command, then cancel.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::read_to_string(&path)
        .unwrap()
        .matches("\"started\"")
        .count()
        < 2
    {
        assert!(std::time::Instant::now() < deadline, "no host started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    handle.cancel();
    let report = handle.join();
    assert!(
        report
            .results
            .iter()
            .all(|r| r.error.as_ref().map(|e| e.kind) == Some(ErrorKind::Cancelled)),
        "{report:?}"
    );
    let (_, replay) = JournalFile::open(&path, &header).unwrap();
    let replay = replay.unwrap();
    let states: Vec<HostState> = (0..hosts.len()).map(|i| replay.state(i)).collect();
    let done = states.iter().filter(|s| **s == HostState::Done).count();
    let not_started = states
        .iter()
        .filter(|s| **s == HostState::NotStarted)
        .count();
    assert_eq!(
        done, 2,
        "the two started hosts have their cancelled result: {states:?}"
    );
    assert_eq!(not_started, hosts.len() - 2, "{states:?}");
}

#[test]
fn a_torn_last_line_is_dropped_when_the_journal_is_opened_again() {
    let f = fleet(3, 33, None);
    let hosts = f.targets();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    let header = Header::new("true", None, &hosts);
    let mut text = header.line();
    text.extend(started_line(1));
    text.extend(b"{\"i\":1,\"result\":{\"host\":");
    std::fs::write(&path, &text).unwrap();
    let (journal, replay) = JournalFile::open(&path, &header).unwrap();
    let replay = replay.unwrap();
    assert_eq!(replay.torn, Some(3));
    assert_eq!(replay.state(1), HostState::Unknown, "started, no result");
    assert_eq!(replay.state(0), HostState::NotStarted);
    // Only the hosts that never started run.
    let report = f
        .engine(1)
        .build()
        .unwrap()
        .run_journaled(hosts.clone(), &[0, 2], job("true"), Arc::new(journal))
        .unwrap()
        .join();
    assert_eq!(report.results.len(), 2, "only the hosts asked for run");
    let (_, replay) = JournalFile::open(&path, &header).unwrap();
    let replay = replay.unwrap();
    assert_eq!(replay.torn, None, "the torn line was dropped");
    assert_eq!(
        (0..3).map(|i| replay.state(i)).collect::<Vec<_>>(),
        [HostState::Done, HostState::Unknown, HostState::Done]
    );
}

fn started_line(i: usize) -> Vec<u8> {
    format!("{{\"started\":{i}}}\n").into_bytes()
}
