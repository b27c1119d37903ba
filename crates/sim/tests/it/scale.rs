//! How long 10,000 hosts on a socket each and 100,000 hosts on one socket take to start
//! (measurements, run by hand with `--ignored`).

use fleetsh_sim::Listen;

use super::*;

/// Measures how long 10,000 hosts, a socket each, take to start (needs ~10,100 open files).
/// Run with `cargo test -p fleetsh-sim --release -- --ignored --nocapture start_10k`.
#[test]
#[ignore = "measurement: needs RLIMIT_NOFILE above 10,000"]
fn start_10k_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let fleet = SimFleet::start(SimConfig {
        count: 10_000,
        port: 0,
        listen: Listen::PerHost,
        state_dir: dir.path().to_path_buf(),
        ..SimConfig::default()
    })
    .unwrap();
    let elapsed = started.elapsed();
    println!("started 10,000 hosts in {elapsed:?}");
    last_host_answers(&fleet, "sim10000");
    let stopping = std::time::Instant::now();
    fleet.stop();
    println!("stopped in {:?}", stopping.elapsed());
    assert!(elapsed < Duration::from_secs(10));
}

/// Measures the start of 10,000 hosts, a socket each, with a host CA (10,000 certificates
/// signed).
/// Run with `cargo test -p fleetsh-sim --release -- --ignored --nocapture start_10k`.
#[test]
#[ignore = "measurement: needs RLIMIT_NOFILE above 10,000"]
fn start_10k_hosts_with_host_ca() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let fleet = SimFleet::start(SimConfig {
        count: 10_000,
        port: 0,
        listen: Listen::PerHost,
        state_dir: dir.path().to_path_buf(),
        host_ca: Some(fleetsh_sim::testing::ca_key(1)),
        ..SimConfig::default()
    })
    .unwrap();
    let elapsed = started.elapsed();
    println!("started 10,000 hosts with host certificates in {elapsed:?}");
    assert!(fleet.known_hosts_ca_file().exists());
    fleet.stop();
    assert!(elapsed < Duration::from_secs(10));
}

/// Open files of this process.
/// The fleet's last host is named `name` and answers `hostname` with it over SSH (the client
/// connection is closed on return).
fn last_host_answers(fleet: &SimFleet, name: &str) {
    let last = fleet.hosts().last().cloned().unwrap();
    assert_eq!(last.name, name);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let session = login(fleet, last.addr).await;
        let out = exec(&session, "hostname", usize::MAX).await;
        assert_eq!(out.stdout, format!("{name}\n").as_bytes());
    });
}

fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Measures how long 100,000 hosts on one socket take to start, and that they hold one
/// listening socket (a few open files of the runtime besides), whatever the open-files limit.
/// Run with `cargo test -p fleetsh-sim --release -- --ignored --nocapture start_100k`.
#[test]
#[ignore = "measurement: 100,000 host keys"]
fn start_100k_hosts_on_one_socket() {
    let dir = tempfile::tempdir().unwrap();
    let before = open_files();
    let started = std::time::Instant::now();
    let fleet = SimFleet::start(SimConfig {
        count: 100_000,
        port: 0,
        addr_base: "127.80.0.1".parse().unwrap(),
        listen: Listen::OneSocket,
        state_dir: dir.path().to_path_buf(),
        ..SimConfig::default()
    })
    .unwrap();
    let elapsed = started.elapsed();
    let opened = open_files().saturating_sub(before);
    println!("started 100,000 hosts on one socket in {elapsed:?}; {opened} more open files");
    last_host_answers(&fleet, "sim100000");
    fleet.stop();
    assert!(opened < 100, "{opened} open files for 100,000 hosts");
}
