//! Connected fleets ([`Engine::connect`]): several jobs in turn on kept connections, against
//! the simulated fleet and against OpenSSH (whose session process a job can kill, to lose the
//! connection for real).

use std::time::Duration;

use fleetsh::{ErrorKind, PutPlan};

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
