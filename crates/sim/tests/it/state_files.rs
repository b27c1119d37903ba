//! The state directory: keys, known_hosts, host keys kept across restarts.

use super::*;

#[test]
fn files_describe_the_fleet() {
    let (_dir, fleet) = start(50, None);
    let port = fleet.port();
    assert_ne!(port, 0);
    assert_eq!(fleet.hosts().len(), 50);
    assert_eq!(fleet.hosts()[0].name, "sim00001");
    assert_eq!(fleet.hosts()[49].name, "sim00050");
    assert_eq!(fleet.hosts()[49].index, 49);
    assert_eq!(
        fleet.hosts()[49].addr,
        format!("127.1.0.50:{port}").parse().unwrap()
    );

    let hosts = std::fs::read_to_string(fleet.hosts_file()).unwrap();
    let lines: Vec<&str> = hosts.lines().collect();
    assert_eq!(lines.len(), 50);
    assert_eq!(lines[0], format!("127.1.0.1:{port}"));
    assert_eq!(lines[49], format!("127.1.0.50:{port}"));

    let known = std::fs::read_to_string(fleet.known_hosts_file()).unwrap();
    let known: Vec<&str> = known.lines().collect();
    assert_eq!(known.len(), 50);
    assert!(
        known[0].starts_with(&format!("[127.1.0.1]:{port} ssh-ed25519 AAAA")),
        "{}",
        known[0]
    );
    // One key per host, all distinct, matching the API.
    let keys = known_hosts(&fleet);
    assert_eq!(keys.len(), 50);
    let distinct: std::collections::HashSet<_> = keys.values().collect();
    assert_eq!(distinct.len(), 50);
    for (i, host) in fleet.hosts().iter().enumerate() {
        let pattern = format!("[{}]:{}", host.addr.ip(), port);
        assert_eq!(
            &keys[&pattern],
            fleet.host_public_key(i).unwrap().key_data()
        );
    }

    let key = russh::keys::load_secret_key(fleet.client_key_file(), None).unwrap();
    assert_eq!(
        key.public_key().key_data(),
        fleet.client_public_key().key_data()
    );
    let public = std::fs::read_to_string(fleet.client_key_file().with_extension("pub")).unwrap();
    assert!(public.starts_with("ssh-ed25519 AAAA"), "{public}");
    let pem = std::fs::read_to_string(fleet.client_key_file()).unwrap();
    assert!(pem.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(fleet.client_key_file())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    fleet.stop();
}

#[test]
fn keys_are_deterministic() {
    let (_a, one) = start(3, None);
    let (_b, two) = start(3, None);
    assert_ne!(one.port(), two.port());
    for i in 0..3 {
        assert_eq!(one.host_public_key(i), two.host_public_key(i));
    }
    assert_eq!(
        std::fs::read_to_string(one.client_key_file().with_extension("pub")).unwrap(),
        std::fs::read_to_string(two.client_key_file().with_extension("pub")).unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    let other = SimFleet::start(SimConfig {
        count: 3,
        port: 0,
        seed: 1,
        state_dir: dir.path().to_path_buf(),
        ..SimConfig::default()
    })
    .unwrap();
    assert_ne!(one.host_public_key(0), other.host_public_key(0));
    assert_ne!(
        one.client_public_key().key_data(),
        other.client_public_key().key_data()
    );
}

#[test]
fn bad_configs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = |f: fn(&mut SimConfig)| {
        let mut c = SimConfig {
            port: 0,
            state_dir: dir.path().to_path_buf(),
            ..SimConfig::default()
        };
        f(&mut c);
        c
    };
    let err = SimFleet::start(config(|c| c.count = 0)).unwrap_err();
    assert!(matches!(err, SimError::BadCount { count: 0 }), "{err}");
    let err = SimFleet::start(config(|c| c.threads = 0)).unwrap_err();
    assert!(matches!(err, SimError::BadThreads { .. }), "{err}");
    let err = SimFleet::start(config(|c| c.addr_base = "10.0.0.1".parse().unwrap())).unwrap_err();
    assert_eq!(
        err.to_string(),
        "address base 10.0.0.1 is outside 127.0.0.0/8"
    );
    let err = SimFleet::start(config(|c| {
        c.addr_base = "127.255.255.250".parse().unwrap();
        c.count = 10;
    }))
    .unwrap_err();
    assert!(matches!(err, SimError::AddressOverflow { .. }), "{err}");
}

#[test]
fn taken_port_names_the_address() {
    let (_dir, fleet) = start(2, None);
    let dir = tempfile::tempdir().unwrap();
    let err = SimFleet::start(SimConfig {
        count: 2,
        port: fleet.port(),
        state_dir: dir.path().to_path_buf(),
        ..SimConfig::default()
    })
    .unwrap_err();
    let SimError::Bind { addr, source } = &err else {
        panic!("expected a bind error, got {err}");
    };
    assert_eq!(*addr, fleet.hosts()[0].addr);
    assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse);
    assert!(
        err.to_string().starts_with(&format!("cannot bind {addr}")),
        "{err}"
    );
}

#[test]
fn unwritable_state_dir_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = SimFleet::start(SimConfig {
        count: 1,
        port: 0,
        state_dir: file.join("state"),
        ..SimConfig::default()
    })
    .unwrap_err();
    assert!(matches!(err, SimError::StateWrite { .. }), "{err}");
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}
