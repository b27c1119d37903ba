//! Jump hosts: targets reached through bastions (`direct-tcpip` tunnels on one shared
//! connection per bastion), against OpenSSH's sshd as bastion and target, and against the
//! simulated fleet at scale.

use fleetsh::{ErrorKind, HostTarget};

use crate::openssh::{ADDRS, job, sshd};

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

#[test]
fn sim_a_thousand_hosts_through_one_bastion_connection() {
    let f = crate::engine::fleet(1001, 21, None);
    let all = f.targets();
    let bastion = all[0].clone();
    let behind: Vec<HostTarget> = all[1..].to_vec();
    for shards in [1, 3] {
        let before_conns = f.sim.connections_accepted(0);
        let before_tunnels = f.sim.tunnels_opened(0);
        let engine = f
            .engine(shards)
            .jump(vec![bastion.clone()])
            .jump_fanout(300)
            .build()
            .unwrap();
        let report = engine.run(behind.clone(), job("hostname")).unwrap().join();
        assert_eq!(report.results.len(), 1000);
        for r in &report.results {
            assert!(r.is_ok(), "{r:?}");
        }
        assert_eq!(
            f.sim.connections_accepted(0) - before_conns,
            1,
            "one connection to the bastion for 1,000 hosts ({shards} shards)"
        );
        assert_eq!(f.sim.tunnels_opened(0) - before_tunnels, 1000);
    }
    // A connected fleet keeps its tunnels: a second job opens none.
    let engine = f.engine(2).jump(vec![bastion.clone()]).build().unwrap();
    let fleet = engine.connect(behind[..50].to_vec()).unwrap();
    for round in 0..2 {
        let tunnels = f.sim.tunnels_opened(0);
        let report = fleet.run(job("true")).unwrap().join();
        let failed: Vec<_> = report.results.iter().filter(|r| !r.is_ok()).collect();
        assert!(failed.is_empty(), "round {round}: {failed:?}");
        if round == 1 {
            assert_eq!(
                f.sim.tunnels_opened(0),
                tunnels,
                "kept connections, kept tunnels"
            );
        }
    }
}

#[test]
fn sim_bastion_refusing_to_forward_fails_every_host_with_jump() {
    let dir = tempfile::tempdir().unwrap();
    let sim = fleetsh_sim::SimFleet::start(fleetsh_sim::SimConfig {
        count: 20,
        port: 0,
        state_dir: dir.path().to_path_buf(),
        faults: fleetsh_sim::parse_faults("no-forward=100").unwrap(),
        ..fleetsh_sim::SimConfig::default()
    })
    .unwrap();
    let targets: Vec<HostTarget> = sim
        .hosts()
        .iter()
        .map(|h| HostTarget::new(h.addr.ip().to_string()).with_port(h.addr.port()))
        .collect();
    let engine = fleetsh::Engine::builder()
        .no_agent()
        .identity_file(sim.client_key_file())
        .known_hosts(sim.known_hosts_file())
        .jump(vec![targets[0].clone()])
        .build()
        .unwrap();
    let report = engine
        .run(targets[1..].to_vec(), job("true"))
        .unwrap()
        .join();
    for r in &report.results {
        let e = r.error.as_ref().expect("refused");
        assert_eq!(e.kind, ErrorKind::Jump, "{r:?}");
        assert!(e.message.contains(&targets[0].to_string()), "{e:?}");
    }
}

#[test]
fn sim_proxy_jump_from_ssh_config_per_host() {
    let f = crate::engine::fleet(30, 23, None);
    let all = f.targets();
    let bastion = &all[0];
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ssh_config");
    // Hosts 2..=20 go through host 1; the others connect directly; first value wins.
    let mut text = format!("Host {}\n  ProxyJump none\n", bastion.host);
    for t in &all[1..20] {
        text += &format!("Host {}\n  ProxyJump {bastion}\n", t.host);
    }
    std::fs::write(&config, text).unwrap();
    let before = f.sim.tunnels_opened(0);
    let engine = f.engine(2).ssh_config_file(&config).build().unwrap();
    let report = engine.run(all.clone(), job("hostname")).unwrap().join();
    for r in &report.results {
        assert!(r.is_ok(), "{r:?}");
    }
    assert_eq!(
        f.sim.tunnels_opened(0) - before,
        19,
        "only the ProxyJump hosts are tunnelled"
    );

    // A bad chain in ssh_config fails those hosts with a jump error naming it.
    std::fs::write(&config, format!("Host {}\n  ProxyJump a,,b\n", all[3].host)).unwrap();
    let engine = f.engine(1).ssh_config_file(&config).build().unwrap();
    let report = engine.run(all[2..5].to_vec(), job("true")).unwrap().join();
    let e = report.results[1].error.as_ref().expect("bad chain");
    assert_eq!(e.kind, ErrorKind::Jump, "{e:?}");
    assert!(e.message.contains("a,,b"), "{e:?}");
    assert!(report.results[0].is_ok() && report.results[2].is_ok());
}
