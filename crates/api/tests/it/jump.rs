//! Jump hosts: targets reached through bastions (`direct-tcpip` tunnels on one shared
//! connection per bastion), against OpenSSH's sshd as bastion and target, and against the
//! simulated fleet at scale.

use std::time::Duration;

use fleetsh::{ErrorKind, HostTarget, Job};

use crate::openssh::{ADDRS, sshd};

fn job(cmd: &str) -> Job {
    let mut j = Job::new(cmd);
    j.connect_timeout = Duration::from_secs(30);
    j.command_timeout = Some(Duration::from_secs(60));
    j
}

fn at(addr: &str, port: u16) -> HostTarget {
    HostTarget::new(addr).with_port(port)
}

#[test]
fn openssh_one_and_two_hops() {
    let sshd = sshd();
    let bastion = at(ADDRS[0], sshd.port);
    for shards in [1, 2] {
        let engine = sshd
            .engine(shards)
            .jump(vec![bastion.clone()])
            .build()
            .unwrap();
        let targets: Vec<HostTarget> = ADDRS[1..].iter().map(|a| HostTarget::new(*a)).collect();
        let report = engine.run(targets, job("echo via bastion")).unwrap().join();
        for r in &report.results {
            sshd.assert_ok(r);
            assert_eq!(String::from_utf8_lossy(&r.stdout), "via bastion\n");
        }
    }
    // Two hops: 127.0.0.1 → 127.0.0.2 → targets.
    let engine = sshd
        .engine(2)
        .jump(vec![bastion.clone(), at(ADDRS[1], sshd.port)])
        .build()
        .unwrap();
    let targets: Vec<HostTarget> = ADDRS[2..].iter().map(|a| HostTarget::new(*a)).collect();
    let report = engine.run(targets, job("echo two hops")).unwrap().join();
    for r in &report.results {
        sshd.assert_ok(r);
        assert_eq!(String::from_utf8_lossy(&r.stdout), "two hops\n");
    }
}

#[test]
fn openssh_bastion_failures_are_jump_errors_naming_the_bastion() {
    let sshd = sshd();
    // The bastion forwards, but nothing listens at the destination: the tunnel is refused by
    // the bastion (a direct connection would have been a `connect` error).
    let engine = sshd
        .engine(1)
        .jump(vec![at(ADDRS[0], sshd.port)])
        .build()
        .unwrap();
    let report = engine
        .run(vec![at(ADDRS[1], 1), at(ADDRS[2], 1)], job("true"))
        .unwrap()
        .join();
    for r in &report.results {
        let e = r.error.as_ref().expect("refused");
        assert_eq!(e.kind, ErrorKind::Jump, "{r:?}");
        assert!(
            e.message.contains(&format!("{}:{}", ADDRS[0], sshd.port))
                && e.message.contains("tunnel"),
            "{e:?}"
        );
    }
    // The bastion itself is unreachable: every host behind it fails at once, naming it.
    let engine = sshd.engine(2).jump(vec![at(ADDRS[0], 1)]).build().unwrap();
    let report = engine.run(sshd.targets(), job("true")).unwrap().join();
    for r in &report.results {
        let e = r.error.as_ref().expect("unreachable bastion");
        assert_eq!(e.kind, ErrorKind::Jump, "{r:?}");
        assert!(e.message.contains("bastion 127.0.0.1:1"), "{e:?}");
    }
    // Bad -J syntax is an input error.
    assert!(fleetsh::Engine::builder().jump_spec("a,,b").is_err());
    assert!(fleetsh::Engine::builder().jump_spec("a:notaport").is_err());
}
