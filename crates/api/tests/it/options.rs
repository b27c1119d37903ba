//! The engine's connection options (keepalive, inactivity timeout, channel window and packet
//! size, ciphers) end to end against the simulated fleet, their validation at `build()`, and
//! errors matched with `fleetsh::` paths only.

use std::time::{Duration, Instant};

use fleetsh::{Engine, ErrorKind, HostTarget, Job};
use fleetsh_sim::{Fault, SimConfig, SimFleet};

use crate::engine::fleet;

fn targets(sim: &SimFleet) -> Vec<HostTarget> {
    sim.hosts()
        .iter()
        .map(|h| HostTarget::new(h.addr.ip().to_string()).with_port(h.addr.port()))
        .collect()
}

fn builder(sim: &SimFleet) -> fleetsh::EngineBuilder {
    Engine::builder()
        .shards(1)
        .user("tester")
        .no_agent()
        .identity_file(sim.client_key_file())
        .known_hosts(sim.known_hosts_file())
}

/// The setting an `InvalidSetting` error names, matched through `fleetsh::` paths only.
fn invalid_setting(b: fleetsh::EngineBuilder) -> (&'static str, String) {
    match b.build() {
        Err(fleetsh::Error::Input(fleetsh::InputError::InvalidSetting { setting, reason })) => {
            (setting, reason)
        }
        other => panic!("expected an invalid setting, got {other:?}"),
    }
}

/// A server that stops answering after authentication (the sim's `freeze` fault: socket open,
/// nothing read or written) is detected by keepalives about `(count + 1) × interval` after
/// its last packet: the host ends `disconnected`, naming the keepalives, long before its
/// command timeout.
#[test]
fn keepalive_detects_a_server_that_stops_answering() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimFleet::start(SimConfig {
        count: 3,
        port: 0,
        state_dir: dir.path().to_path_buf(),
        faults: vec![(Fault::Freeze(Duration::from_millis(1000)), 100.0)],
        ..SimConfig::default()
    })
    .expect("the simulated fleet must start");
    let (interval, count) = (Duration::from_millis(400), 2);
    let engine = builder(&sim)
        .keepalive_interval(interval)
        .keepalive_count(count)
        .build()
        .unwrap();
    let mut job = Job::new("echo started; sleep 60");
    job.connect_timeout = Duration::from_secs(20);
    job.command_timeout = Some(Duration::from_secs(60));
    let started = Instant::now();
    let report = engine.run(targets(&sim), job).unwrap().join();
    assert_eq!(report.results.len(), 3);
    for r in &report.results {
        let e = r.error.as_ref().expect("a frozen server fails the host");
        assert_eq!(e.kind, ErrorKind::Disconnected, "{r:?}");
        assert!(e.message.contains("keepalive"), "{e}");
        // Frozen 1 s after authentication, then (count + 1) intervals: 2.2 s, with slack for
        // a loaded machine; the command timeout (60 s) is far away.
        assert!(
            r.timings.total < Duration::from_secs(15),
            "detected after {:?}",
            r.timings.total
        );
    }
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// Without keepalives the same frozen server holds the host until its command timeout: the
/// keepalive options are what detects it.
#[test]
fn without_keepalive_a_frozen_server_waits_for_the_command_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimFleet::start(SimConfig {
        count: 1,
        port: 0,
        state_dir: dir.path().to_path_buf(),
        faults: vec![(Fault::Freeze(Duration::from_millis(500)), 100.0)],
        ..SimConfig::default()
    })
    .expect("the simulated fleet must start");
    let engine = builder(&sim).build().unwrap();
    let mut job = Job::new("echo started; sleep 60");
    job.connect_timeout = Duration::from_secs(20);
    job.command_timeout = Some(Duration::from_secs(4));
    let report = engine.run(targets(&sim), job).unwrap().join();
    let e = report.results[0].error.as_ref().expect("fails");
    assert_eq!(e.kind, ErrorKind::CommandTimeout, "{e}");
}

/// The inactivity timeout closes a connection on which nothing was sent or received for that
/// long: a silent command is cut off (`disconnected`, naming the timeout, output kept), a
/// quick one is not affected.
#[test]
fn inactivity_timeout_closes_a_silent_connection() {
    let f = fleet(2, 41, None);
    let engine = f
        .engine(1)
        .inactivity_timeout(Duration::from_millis(800))
        .build()
        .unwrap();
    let mut job = Job::new("echo started; sleep 30");
    job.connect_timeout = Duration::from_secs(20);
    job.command_timeout = Some(Duration::from_secs(60));
    let report = engine.run(f.targets(), job).unwrap().join();
    for r in &report.results {
        let e = r.error.as_ref().expect("a silent connection is closed");
        assert_eq!(e.kind, ErrorKind::Disconnected, "{r:?}");
        assert!(e.message.contains("inactivity timeout"), "{e}");
        assert_eq!(r.stdout, b"started\n", "output before the close is kept");
        assert!(r.timings.total < Duration::from_secs(15), "{r:?}");
    }
    let mut quick = Job::new("echo hi");
    quick.connect_timeout = Duration::from_secs(20);
    let report = engine.run(f.targets(), quick).unwrap().join();
    assert!(report.all_ok(), "{report:?}");
}

/// Out-of-range values are refused at `build()`, each naming its setting and what is allowed.
#[test]
fn bad_option_values_are_refused_at_build_naming_the_setting() {
    let b = || Engine::builder().no_agent();
    let (setting, reason) = invalid_setting(b().max_packet_size(100));
    assert_eq!(setting, "max_packet_size");
    assert!(reason.contains("1024..=65535"), "{reason}");
    let (setting, reason) = invalid_setting(b().max_packet_size(70_000));
    assert_eq!(setting, "max_packet_size");
    assert!(reason.contains("70000"), "{reason}");
    let (setting, reason) = invalid_setting(b().window_size(8192));
    assert_eq!(setting, "window_size");
    assert!(reason.contains("32768"), "{reason}");
    let (setting, _) = invalid_setting(b().max_packet_size(4096).window_size(2048));
    assert_eq!(setting, "window_size");
    let (setting, _) = invalid_setting(b().keepalive_interval(Duration::ZERO));
    assert_eq!(setting, "keepalive_interval");
    let (setting, _) = invalid_setting(
        b().keepalive_interval(Duration::from_secs(5))
            .keepalive_count(0),
    );
    assert_eq!(setting, "keepalive_count");
    let (setting, _) = invalid_setting(b().inactivity_timeout(Duration::ZERO));
    assert_eq!(setting, "inactivity_timeout");
    let (setting, reason) = invalid_setting(b().ciphers(["rot13"]));
    assert_eq!(setting, "ciphers");
    assert!(
        reason.contains("rot13") && reason.contains("aes256-gcm"),
        "{reason}"
    );
    let (setting, _) = invalid_setting(b().ciphers(Vec::<String>::new()));
    assert_eq!(setting, "ciphers");
    let (setting, _) = invalid_setting(
        b().cipher(fleetsh::Cipher::Chacha20)
            .ciphers(["aes128-gcm@openssh.com"]),
    );
    assert_eq!(setting, "ciphers");
}

/// A run with every option at a non-default valid value completes, output intact: a small
/// window and packet size make the server send `seq`'s 100 KiB in many small packets.
#[test]
fn non_default_options_complete_a_run() {
    let f = fleet(4, 43, None);
    let engine = f
        .engine(2)
        .window_size(8192)
        .max_packet_size(1024)
        .keepalive_interval(Duration::from_millis(500))
        .keepalive_count(5)
        .inactivity_timeout(Duration::from_secs(30))
        .ciphers(["aes128-gcm@openssh.com", "aes256-ctr"])
        .kex(fleetsh::Kex::Curve25519)
        .build()
        .unwrap();
    let mut job = Job::new("seq 1 20000; sleep 1; echo done");
    job.connect_timeout = Duration::from_secs(20);
    let report = engine.run(f.targets(), job).unwrap().join();
    let mut want: String = (1..=20000).map(|i| format!("{i}\n")).collect();
    want.push_str("done\n");
    for r in &report.results {
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(r.stdout.len(), want.len());
        assert!(r.stdout == want.as_bytes());
    }
}

/// Every error of `fleetsh` is matched with `fleetsh::` paths only: an empty host list is
/// `Error::Input(InputError::NoHosts)`, a missing key file `Error::Engine(EngineError::Key)`.
#[test]
fn errors_match_with_fleetsh_paths_only() {
    let engine = Engine::builder()
        .no_agent()
        .password(fleetsh::Secret::new("unused"))
        .host_key_check(fleetsh::HostKeyCheck::AcceptNew)
        .known_hosts(std::env::temp_dir().join("fleetsh-no-such-known-hosts"))
        .build()
        .unwrap();
    match engine.run(Vec::<HostTarget>::new(), Job::new("true")) {
        Err(fleetsh::Error::Input(fleetsh::InputError::NoHosts)) => {}
        other => panic!("expected NoHosts, got {other:?}"),
    }
    let missing = std::env::temp_dir().join("fleetsh-no-such-key-file");
    match Engine::builder().no_agent().identity_file(&missing).build() {
        Err(fleetsh::Error::Engine(fleetsh::EngineError::Key { path, reason })) => {
            assert_eq!(path, missing);
            assert!(!reason.is_empty());
        }
        other => panic!("expected a key error, got {other:?}"),
    }
}

/// Strict host-key checking with a known_hosts file that does not exist would fail every
/// host: `build()` says so, naming the file; with an ssh_config (which may name a
/// `UserKnownHostsFile` per host) it is a warning; in accept-new mode it is normal.
#[test]
fn missing_known_hosts_is_an_error_at_build_with_strict_checking() {
    let f = fleet(1, 44, None);
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("known_hosts");
    let b = || {
        Engine::builder()
            .no_agent()
            .identity_file(f.sim.client_key_file())
            .known_hosts(&missing)
    };
    match b().build() {
        Err(fleetsh::Error::Engine(fleetsh::EngineError::NoKnownHosts { path })) => {
            assert_eq!(path, missing);
        }
        other => panic!("expected NoKnownHosts, got {other:?}"),
    }
    let msg = b().build().unwrap_err().to_string();
    assert!(
        msg.contains(&missing.display().to_string()) && msg.contains("accept-new"),
        "{msg}"
    );
    b().host_key_check(fleetsh::HostKeyCheck::AcceptNew)
        .build()
        .expect("accept-new learns hosts into a new file");
    let config = dir.path().join("ssh_config");
    std::fs::write(&config, "Host *\n  User tester\n").unwrap();
    let log = crate::lifecycle::capture_warnings(|| {
        b().ssh_config_file(&config)
            .build()
            .expect("a warning only");
    });
    assert!(
        log.contains("does not exist") && log.contains(&missing.display().to_string()),
        "{log}"
    );
}

const NO_CREDENTIALS_CHILD: &str = "FLEETSH_TEST_NO_CREDENTIALS_CHILD";

/// No key file, no agent, no password: `build()` fails naming what it looked for and how to
/// give one; with an ssh_config (which may name an `IdentityFile` per host) it warns; a
/// password alone is enough. Run in a child process with `HOME` set to an empty directory,
/// so that the default key files are certainly absent.
#[test]
fn no_credentials_is_an_error_at_build() {
    if let Some(home) = std::env::var_os(NO_CREDENTIALS_CHILD) {
        return no_credentials_child(std::path::Path::new(&home));
    }
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "options::no_credentials_is_an_error_at_build",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(NO_CREDENTIALS_CHILD, home.path())
        .env("HOME", home.path())
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .expect("the test binary runs again as a child");
    assert!(
        out.status.success(),
        "the child failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no-credentials child: done"),
        "the child ran its checks"
    );
}

fn no_credentials_child(home: &std::path::Path) {
    let known_hosts = home.join("known_hosts");
    std::fs::write(&known_hosts, "").unwrap();
    let b = || Engine::builder().known_hosts(&known_hosts);
    match b().no_agent().build() {
        Err(fleetsh::Error::Engine(fleetsh::EngineError::NoCredentials { detail })) => {
            assert!(
                detail.contains("id_ed25519"),
                "names the key files: {detail}"
            );
            assert!(detail.contains("identity_file"), "says how: {detail}");
            assert!(detail.contains("turned off"), "{detail}");
        }
        other => panic!("expected NoCredentials, got {other:?}"),
    }
    // SSH_AUTH_SOCK is unset in the child: the agent from the environment is none.
    let msg = b().build().unwrap_err().to_string();
    assert!(msg.contains("SSH_AUTH_SOCK"), "{msg}");
    // An agent socket that does not exist is no agent either.
    let msg = b()
        .agent_socket(home.join("no-agent.sock"))
        .build()
        .unwrap_err()
        .to_string();
    assert!(msg.contains("no-agent.sock"), "{msg}");
    b().no_agent()
        .password(fleetsh::Secret::new("pw"))
        .build()
        .expect("a password is a credential");
    let config = home.join("ssh_config");
    std::fs::write(&config, "Host web\n  IdentityFile ~/web_key\n").unwrap();
    let log = crate::lifecycle::capture_warnings(|| {
        b().no_agent()
            .ssh_config_file(&config)
            .build()
            .expect("a warning only");
    });
    assert!(log.contains("no credentials outside ssh_config"), "{log}");
    println!("no-credentials child: done");
}
