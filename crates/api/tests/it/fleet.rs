//! Connected fleets ([`Engine::connect`]): several jobs in turn on kept connections, eager
//! connection ([`ConnectedFleet::connect_all`]), jobs on a part of the fleet, hosts added and
//! removed, against the simulated fleet and against OpenSSH (whose session process a job can
//! kill, to lose the connection for real).

use std::time::{Duration, Instant};

use fleetsh::{ErrorKind, FleetError, HostTarget, Job, PutPlan, Report};
use fleetsh_sim::{Fault, SimConfig, SimFleet};

use crate::openssh::{job, sshd};

#[test]
fn sim_jobs_in_turn_reuse_the_connections() {
    let f = crate::engine::fleet(120, 11, None);
    for shards in [1, 3] {
        let engine = f.engine(shards).build().unwrap();
        let fleet = engine.connect(f.targets()).unwrap();
        assert_eq!(fleet.hosts().len(), 120);
        let first = fleet.run(job("echo one")).unwrap().join();
        assert!(first.all_ok(), "{:?}", first.outcome_counts());
        for r in &first.results {
            assert!(r.timings.connect.is_some(), "the first job connects");
        }
        for round in 0..3 {
            let again = fleet.run(job(&format!("echo {round}"))).unwrap().join();
            assert_eq!(again.results.len(), 120);
            for r in &again.results {
                assert!(r.is_ok(), "{r:?}");
                assert_eq!(String::from_utf8_lossy(&r.stdout), format!("{round}\n"));
                assert!(
                    r.timings.connect.is_none() && r.timings.handshake_auth.is_none(),
                    "round {round}: host {} reconnected: {:?}",
                    r.target,
                    r.timings
                );
            }
        }
        // A transfer over the same connections.
        let local = tempfile::tempdir().unwrap();
        let src = local.path().join("motd");
        std::fs::write(&src, b"welcome\n").unwrap();
        let plan = PutPlan::from_local(&[src], "/motd", false, false).unwrap();
        let report = fleet.copy_to(plan, &job("")).unwrap().join();
        assert!(report.all_ok(), "{:?}", report.outcome_counts());
        for r in &report.results {
            assert!(
                r.timings.connect.is_none(),
                "transfer reused the connection"
            );
        }
        assert_eq!(
            std::fs::read(f.sim.host_root(7).join("motd")).unwrap(),
            b"welcome\n"
        );
        fleet.close();
    }
}

#[test]
fn openssh_lost_connections_are_re_established() {
    let sshd = sshd();
    let engine = sshd.engine(2).build().unwrap();
    let fleet = engine.connect(sshd.targets()).unwrap();
    let r = fleet.run(job("echo first")).unwrap().join();
    for r in &r.results {
        sshd.assert_ok(r);
    }

    // Kill each host's sshd session process while its connection is kept, between jobs ($PPID
    // of the command's shell is sshd's session process; the kill comes a second after the job).
    let one = fleet.run(job("echo kept")).unwrap().join();
    for r in &one.results {
        sshd.assert_ok(r);
        assert!(r.timings.connect.is_none(), "reused: {:?}", r.timings);
    }
    let killer = fleet
        .run(job(
            "(sleep 1; kill $PPID) >/dev/null 2>&1 & echo scheduled",
        ))
        .unwrap()
        .join();
    for r in &killer.results {
        sshd.assert_ok(r);
    }
    std::thread::sleep(Duration::from_secs(3));
    let after = fleet.run(job("echo back")).unwrap().join();
    for r in &after.results {
        sshd.assert_ok(r);
        assert_eq!(String::from_utf8_lossy(&r.stdout), "back\n");
        assert!(
            r.timings.connect.is_some(),
            "{}: a lost connection is re-established: {:?}",
            r.target,
            r.timings
        );
    }

    // A connection lost while a command runs fails that host (disconnected), and the next job
    // reconnects it.
    let cut = fleet.run(job("kill $PPID; sleep 5")).unwrap().join();
    for r in &cut.results {
        let e = r.error.as_ref().expect("the connection was cut");
        assert_eq!(e.kind, ErrorKind::Disconnected, "{r:?}");
    }
    let healed = fleet.run(job("echo healed")).unwrap().join();
    for r in &healed.results {
        sshd.assert_ok(r);
    }
}

/// A simulated fleet of `count` hosts, with these faults, and an engine builder for it.
fn faulty(count: usize, faults: Vec<(Fault, f64)>) -> (crate::engine::Fleet, fleetsh::Engine) {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = SimFleet::start(SimConfig {
        count,
        port: 0,
        seed: 5,
        state_dir: dir.path().to_path_buf(),
        faults,
        ..SimConfig::default()
    })
    .expect("the simulated fleet must start for these tests");
    let f = crate::engine::Fleet::new(sim, dir);
    let engine = f
        .engine(2)
        .connect_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    (f, engine)
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> HostTarget {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = l.local_addr().unwrap().port();
    drop(l);
    HostTarget::new("127.0.0.1").with_port(port)
}

/// Waits up to 20 s for `cond`, polling.
pub(crate) fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn indices(report: &Report) -> Vec<usize> {
    report.results.iter().map(|r| r.index).collect()
}

#[test]
fn sim_connect_all_gives_one_result_per_host_and_jobs_reuse_the_connections() {
    let (f, engine) = faulty(
        10,
        vec![(Fault::AuthFail, 20.0), (Fault::HostkeyMismatch, 20.0)],
    );
    let mut targets = f.targets();
    targets.push(closed_port());
    let fleet = engine.connect(targets.clone()).unwrap();
    let expected = |i: usize| match f.sim.fault_of(i) {
        _ if i == 10 => Some(ErrorKind::Connect),
        Some(Fault::AuthFail) => Some(ErrorKind::Auth),
        Some(Fault::HostkeyMismatch) => Some(ErrorKind::Hostkey),
        _ => None,
    };
    assert_eq!((0..11).filter(|&i| expected(i).is_none()).count(), 6);

    let report = fleet.connect_all().unwrap().join();
    assert_eq!(indices(&report), (0..11).collect::<Vec<_>>());
    for r in &report.results {
        assert!(r.connect_only, "{r:?}");
        assert_eq!(r.exit_code, None, "no command ran");
        match expected(r.index) {
            None => {
                assert!(r.is_ok(), "{r:?}");
                assert!(r.timings.connect.is_some() && r.timings.handshake_auth.is_some());
                assert!(r.timings.channel_open.is_none(), "no channel: {r:?}");
            }
            Some(kind) => {
                assert_eq!(r.error.as_ref().map(|e| e.kind), Some(kind), "{r:?}");
                assert!(!r.is_ok());
            }
        }
    }
    for i in 0..10 {
        assert_eq!(f.sim.connections_accepted(i), 1, "host {i}");
    }

    // Again: the connected hosts report OK without connecting; the others fail again.
    let again = fleet.connect_all().unwrap().join();
    for r in &again.results {
        match expected(r.index) {
            None => {
                assert!(r.is_ok(), "{r:?}");
                assert!(r.timings.connect.is_none(), "reconnected: {r:?}");
            }
            Some(kind) => assert_eq!(r.error.as_ref().map(|e| e.kind), Some(kind)),
        }
    }

    // A command over the connections connect_all made.
    let run = fleet.run(job("echo ran")).unwrap().join();
    assert_eq!(run.results.len(), 11);
    for r in &run.results {
        if expected(r.index).is_none() {
            assert!(r.is_ok(), "{r:?}");
            assert!(!r.connect_only);
            assert_eq!(String::from_utf8_lossy(&r.stdout), "ran\n");
            assert!(r.timings.connect.is_none(), "reconnected: {r:?}");
            assert_eq!(f.sim.connections_accepted(r.index), 1);
        } else {
            assert!(!r.is_ok(), "{r:?}");
        }
    }
}

#[test]
fn sim_run_on_runs_only_the_selected_hosts() {
    let f = crate::engine::fleet(6, 21, None);
    let engine = f.engine(3).build().unwrap();
    let targets = f.targets();
    let fleet = engine.connect(targets.clone()).unwrap();

    let picked = fleet.indices_of([&targets[4], &targets[1]]).unwrap();
    assert_eq!(picked, [4, 1]);
    let handle = fleet.run_on(&picked, job("echo picked")).unwrap();
    assert_eq!(handle.hosts().len(), 6, "the fleet's host table");
    assert_eq!(handle.remaining(), 2);
    let report = handle.join();
    assert_eq!(indices(&report), [1, 4], "fleet indices, in index order");
    for r in &report.results {
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(String::from_utf8_lossy(&r.stdout), "picked\n");
        assert_eq!(r.target.host, targets[r.index].host);
    }
    for i in 0..6 {
        let want = u64::from(i == 1 || i == 4);
        assert_eq!(f.sim.connections_accepted(i), want, "host {i}");
    }

    // The whole fleet next: the selected hosts' connections were kept.
    let all = fleet.run(job("echo all")).unwrap().join();
    assert_eq!(indices(&all), (0..6).collect::<Vec<_>>());
    for r in &all.results {
        assert!(r.is_ok(), "{r:?}");
        let reused = r.index == 1 || r.index == 4;
        assert_eq!(r.timings.connect.is_none(), reused, "{r:?}");
        assert_eq!(f.sim.connections_accepted(r.index), 1);
    }
}

#[test]
fn sim_bad_selections_are_refused_with_clear_errors() {
    let f = crate::engine::fleet(4, 22, None);
    let engine = f.engine(2).build().unwrap();
    let targets = f.targets();
    let fleet = engine.connect(targets.clone()).unwrap();
    let fleet_err = |e: fleetsh::Error| match e {
        fleetsh::Error::Fleet(e) => e,
        other => panic!("not a fleet selection error: {other}"),
    };

    let e = fleet_err(fleet.run_on(&[], job("true")).unwrap_err());
    assert_eq!(e, FleetError::NoHosts { fleet_empty: false });
    let e = fleet_err(fleet.run_on(&[0, 9], job("true")).unwrap_err());
    assert_eq!(e, FleetError::NoSuchIndex { index: 9, len: 4 });
    assert!(e.to_string().contains("host index 9"), "{e}");
    let e = fleet_err(fleet.run_on(&[2, 1, 2], job("true")).unwrap_err());
    assert_eq!(e, FleetError::Duplicate { index: 2 });

    // Removal is all or nothing.
    let e = fleet_err(fleet.remove_hosts(&[0, 7]).unwrap_err());
    assert_eq!(e, FleetError::NoSuchIndex { index: 7, len: 4 });
    assert_eq!(fleet.indices(), [0, 1, 2, 3]);

    fleet.remove_hosts(&[2]).unwrap();
    assert!(!fleet.contains(2));
    assert_eq!(fleet.len(), 3);
    let e = fleet_err(fleet.run_on(&[2], job("true")).unwrap_err());
    let host = targets[2].to_string();
    assert_eq!(
        e,
        FleetError::Removed {
            index: 2,
            host: host.clone()
        }
    );
    assert!(e.to_string().contains(&host), "names the host: {e}");
    let e = fleet_err(fleet.remove_hosts(&[2]).unwrap_err());
    assert!(matches!(e, FleetError::Removed { index: 2, .. }), "{e}");
    let e = fleet_err(fleet.indices_of([&targets[2]]).unwrap_err());
    assert_eq!(e, FleetError::NotInFleet { host: host.clone() });
    let stranger = HostTarget::new("192.0.2.1");
    let e = fleet_err(fleet.indices_of([&targets[0], &stranger]).unwrap_err());
    assert!(e.to_string().contains("192.0.2.1"), "{e}");

    // Nothing ran on any host.
    for i in 0..4 {
        assert_eq!(f.sim.connections_accepted(i), 0, "host {i}");
    }

    fleet.remove_hosts(&[0, 1, 3]).unwrap();
    assert!(fleet.is_empty());
    let e = fleet_err(fleet.run(job("true")).unwrap_err());
    assert_eq!(e, FleetError::NoHosts { fleet_empty: true });
    assert!(fleet.connect_all().is_err());
}

#[test]
fn sim_added_hosts_get_the_next_indices_and_old_connections_are_kept() {
    let f = crate::engine::fleet(6, 23, None);
    let engine = f.engine(2).build().unwrap();
    let targets = f.targets();
    let fleet = engine.connect(targets[..3].to_vec()).unwrap();
    let first = fleet.run(job("echo first")).unwrap().join();
    assert!(first.all_ok(), "{:?}", first.outcome_counts());

    // New hosts after the existing ones; a host already there keeps its index.
    let added = fleet.add_hosts([
        targets[3].clone(),
        targets[1].clone(),
        targets[4].clone(),
        targets[5].clone(),
        targets[4].clone(),
    ]);
    assert_eq!(added, [3, 1, 4, 5, 4]);
    assert_eq!(fleet.hosts().len(), 6);
    assert_eq!(fleet.indices(), (0..6).collect::<Vec<_>>());
    assert_eq!(fleet.hosts()[5], targets[5]);

    let report = fleet.run(job("echo both")).unwrap().join();
    assert_eq!(indices(&report), (0..6).collect::<Vec<_>>());
    for r in &report.results {
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(String::from_utf8_lossy(&r.stdout), "both\n");
        assert_eq!(r.target.host, targets[r.index].host);
        let old = r.index < 3;
        assert_eq!(r.timings.connect.is_none(), old, "{r:?}");
        assert_eq!(f.sim.connections_accepted(r.index), 1, "host {}", r.index);
    }
}

#[test]
fn sim_removed_hosts_leave_later_jobs_and_are_disconnected() {
    let f = crate::engine::fleet(6, 24, None);
    for shards in [1, 3] {
        let engine = f.engine(shards).build().unwrap();
        let targets = f.targets();
        let fleet = engine.connect(targets.clone()).unwrap();
        let before: Vec<u64> = (0..6).map(|i| f.sim.connections_accepted(i)).collect();
        let first = fleet.connect_all().unwrap().join();
        assert!(first.all_ok(), "{:?}", first.outcome_counts());
        eventually("every host has one open connection", || {
            (0..6).all(|i| f.sim.connections_open(i) == 1)
        });

        // A removal while a job runs: the job completes on every host it started with.
        let running = fleet.run(job("sleep 0.5; echo done")).unwrap();
        fleet.remove_hosts(&[1, 3]).unwrap();
        assert_eq!(fleet.indices(), [0, 2, 4, 5]);
        let done = running.join();
        assert_eq!(indices(&done), (0..6).collect::<Vec<_>>());
        for r in &done.results {
            assert!(r.is_ok(), "{r:?}");
            assert_eq!(String::from_utf8_lossy(&r.stdout), "done\n");
            assert!(r.timings.connect.is_none(), "{r:?}");
        }
        // Then the removed hosts' connections are closed, and only theirs.
        eventually("the removed hosts are disconnected", || {
            f.sim.connections_open(1) == 0 && f.sim.connections_open(3) == 0
        });
        for i in [0, 2, 4, 5] {
            assert_eq!(f.sim.connections_open(i), 1, "host {i} stays connected");
        }

        let after = fleet.run(job("echo after")).unwrap().join();
        assert_eq!(indices(&after), [0, 2, 4, 5]);
        for r in &after.results {
            assert!(r.is_ok(), "{r:?}");
            assert!(r.timings.connect.is_none(), "{r:?}");
        }

        // A removed host added again comes back under a new index, connected anew.
        assert_eq!(fleet.add_hosts([targets[3].clone()]), [6]);
        let back = fleet.run(job("echo back")).unwrap().join();
        assert_eq!(indices(&back), [0, 2, 4, 5, 6]);
        for r in &back.results {
            assert!(r.is_ok(), "{r:?}");
            assert_eq!(r.timings.connect.is_some(), r.index == 6, "{r:?}");
        }
        for (i, was) in before.iter().enumerate() {
            let want = was + 1 + u64::from(i == 3);
            assert_eq!(f.sim.connections_accepted(i), want, "host {i}");
        }
        fleet.close();
        eventually("every host is disconnected after close", || {
            (0..6).all(|i| f.sim.connections_open(i) == 0)
        });
    }
}

#[test]
fn sim_dropping_the_fleet_lets_a_running_job_finish() {
    let f = crate::engine::fleet(5, 25, None);
    let engine = f.engine(2).build().unwrap();
    let fleet = engine.connect(f.targets()).unwrap();
    let handle = fleet.run(job("sleep 0.5; echo finished")).unwrap();
    fleet.close();
    let report = handle.join();
    assert_eq!(report.results.len(), 5);
    for r in &report.results {
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(String::from_utf8_lossy(&r.stdout), "finished\n");
    }
    // The handle was the last owner of the connections: they are closed now.
    eventually("every host is disconnected", || {
        (0..5).all(|i| f.sim.connections_open(i) == 0)
    });

    // Dropped (not closed) with a job not yet consumed: the same.
    let fleet = engine.connect(f.targets()).unwrap();
    let handle = fleet.run(job("echo again")).unwrap();
    drop(fleet);
    let report = handle.join();
    assert!(report.all_ok(), "{:?}", report.outcome_counts());
    eventually("every host is disconnected", || {
        (0..5).all(|i| f.sim.connections_open(i) == 0)
    });
}

#[test]
fn sim_a_one_off_connect_only_run_checks_reachability_and_disconnects() {
    let (f, engine) = faulty(5, vec![(Fault::AuthFail, 20.0)]);
    let mut targets = f.targets();
    targets.push(closed_port());
    let report = engine.run(targets, Job::connect_only()).unwrap().join();
    assert_eq!(report.results.len(), 6);
    for r in &report.results {
        assert!(r.connect_only && r.exit_code.is_none(), "{r:?}");
        let want = match f.sim.fault_of(r.index) {
            _ if r.index == 5 => Some(ErrorKind::Connect),
            Some(Fault::AuthFail) => Some(ErrorKind::Auth),
            _ => None,
        };
        assert_eq!(r.error.as_ref().map(|e| e.kind), want, "{r:?}");
        assert_eq!(r.is_ok(), want.is_none());
    }
    assert_eq!(report.ok_count(), 4);
    eventually("every host is disconnected", || {
        (0..5).all(|i| f.sim.connections_open(i) == 0)
    });
    // Commands only: a connect-only job takes no command settings.
    let mut bad = Job::connect_only();
    bad.pty = true;
    let e = engine.run(f.targets(), bad).unwrap_err();
    assert!(e.to_string().contains("pty"), "{e}");
}
