//! The open-files limit: a run whose fanout does not fit lowers it instead of failing hosts
//! with "Too many open files". The constrained part runs in a child process (this test binary
//! again), so the limit of the shared test process is never lowered; the simulated fleet,
//! which needs a descriptor per host, stays in the parent.

use std::process::Command;
use std::time::Duration;

use fleetsh::{Engine, HostTarget, Job};
use fleetsh_sim::{SimConfig, SimFleet};

const CHILD: &str = "FLEETSH_TEST_NOFILE_CHILD";
const HOSTS: &str = "FLEETSH_TEST_NOFILE_HOSTS";
const KEY: &str = "FLEETSH_TEST_NOFILE_KEY";
const KNOWN_HOSTS: &str = "FLEETSH_TEST_NOFILE_KNOWN_HOSTS";
const LIMIT: u64 = 256;
const COUNT: usize = 1000;

#[test]
fn fanout_is_lowered_to_fit_a_low_open_files_limit() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    fleetsh::limits::raise_nofile_limit().expect("open-files limit");
    let dir = tempfile::tempdir().unwrap();
    let sim = SimFleet::start(SimConfig {
        count: COUNT,
        port: 0,
        addr_base: "127.30.0.1".parse().unwrap(),
        state_dir: dir.path().to_path_buf(),
        ..SimConfig::default()
    })
    .expect("the simulated fleet must start (raise the open-files limit if this fails)");
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "--exact",
            "limits::fanout_is_lowered_to_fit_a_low_open_files_limit",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env(HOSTS, sim.hosts_file())
        .env(KEY, sim.client_key_file())
        .env(KNOWN_HOSTS, sim.known_hosts_file())
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .expect("the test binary runs again as a child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the child failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(&format!("child: {COUNT} of {COUNT} ok")),
        "{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("lowering fanout from 1000 to"),
        "the child warns once: {stderr}"
    );
    assert_eq!(stderr.matches("lowering fanout").count(), 1, "{stderr}");
}

/// The child: soft and hard limits lowered to 256, then 1,000 hosts at fanout 1,000, twice
/// (the warning is logged once per engine).
fn child() {
    rlimit::Resource::NOFILE
        .set(LIMIT, LIMIT)
        .expect("lower the open-files limit");
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    let var = |name: &str| std::env::var_os(name).unwrap_or_else(|| panic!("{name} is not set"));
    let hosts: Vec<HostTarget> = std::fs::read_to_string(var(HOSTS))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| HostTarget::parse(l.trim()).unwrap())
        .collect();
    assert_eq!(hosts.len(), COUNT);
    let engine = Engine::builder()
        .shards(2)
        .fanout(1000)
        .user("tester")
        .no_agent()
        .identity_file(var(KEY))
        .known_hosts(var(KNOWN_HOSTS))
        .build()
        .unwrap();
    let mut job = Job::new("echo hi");
    job.connect_timeout = Duration::from_secs(60);
    for _ in 0..2 {
        let report = engine.run(hosts.clone(), job.clone()).unwrap().join();
        let failures: Vec<String> = report
            .failures()
            .take(3)
            .map(|r| format!("{}: {:?}", r.target, r.error))
            .collect();
        println!("child: {} of {COUNT} ok", report.ok_count());
        assert_eq!(report.ok_count(), COUNT, "{failures:?}");
    }
}
