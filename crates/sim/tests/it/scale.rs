//! How long 10,000 hosts take to start (measurements, run by hand with `--ignored`).

use super::*;

/// Measures how long 10,000 hosts take to start (needs ~10,100 open files).
/// Run with `cargo test -p fleetsh-sim --release -- --ignored --nocapture start_10k`.
#[test]
#[ignore = "measurement: needs RLIMIT_NOFILE above 10,000"]
fn start_10k_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let fleet = SimFleet::start(SimConfig {
        count: 10_000,
        port: 0,
        state_dir: dir.path().to_path_buf(),
        ..SimConfig::default()
    })
    .unwrap();
    let elapsed = started.elapsed();
    println!("started 10,000 hosts in {elapsed:?}");
    let last = fleet.hosts()[9_999].clone();
    assert_eq!(last.name, "sim10000");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let session = login(&fleet, last.addr).await;
        let out = exec(&session, "hostname", usize::MAX).await;
        assert_eq!(out.stdout, b"sim10000\n");
    });
    drop(runtime); // closes the client connection
    let stopping = std::time::Instant::now();
    fleet.stop();
    println!("stopped in {:?}", stopping.elapsed());
    assert!(elapsed < Duration::from_secs(10));
}

/// Measures the start of 10,000 hosts with a host CA (10,000 certificates signed).
/// Run with `cargo test -p fleetsh-sim --release -- --ignored --nocapture start_10k`.
#[test]
#[ignore = "measurement: needs RLIMIT_NOFILE above 10,000"]
fn start_10k_hosts_with_host_ca() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let fleet = SimFleet::start(SimConfig {
        count: 10_000,
        port: 0,
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
