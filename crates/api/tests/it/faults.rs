//! Faults at fleet scale: 10,000 simulated hosts, 10% of them in each fault kind. Every host
//! ends with exactly one result, classified with the right kind, within its timeouts plus a
//! documented slack; output received before a drop is kept.

use std::time::Duration;

use fleetsh::{Engine, ErrorKind, HostTarget, Job};
use fleetsh_sim::{Fault, SimConfig, SimFleet};

/// How much later than its timeouts a host may end (a busy 2-core machine runs the simulator,
/// the shards and other tests at once; see docs/reliability.md).
const SLACK: Duration = Duration::from_secs(20);

#[test]
fn ten_thousand_hosts_ten_percent_of_each_fault() {
    fleetsh::limits::raise_nofile_limit().expect("open-files limit");
    let dir = tempfile::tempdir().unwrap();
    let faults = vec![
        (Fault::Refuse, 10.0),
        (Fault::Silent, 10.0),
        (Fault::SlowBanner(Duration::from_millis(200)), 10.0),
        (Fault::AuthFail, 10.0),
        (Fault::HostkeyMismatch, 10.0),
        (Fault::Drop, 10.0),
        (Fault::Hang, 10.0),
        (Fault::Flood, 10.0),
        (Fault::Exit(3), 10.0),
    ];
    let sim = SimFleet::start(SimConfig {
        count: 10_000,
        port: 0,
        addr_base: "127.20.0.1".parse().unwrap(),
        state_dir: dir.path().to_path_buf(),
        faults,
        threads: 2,
        ..SimConfig::default()
    })
    .expect("the simulated fleet must start (raise the open-files limit if this fails)");
    let targets: Vec<HostTarget> = sim
        .hosts()
        .iter()
        .map(|h| HostTarget::new(h.addr.ip().to_string()).with_port(h.addr.port()))
        .collect();
    // Generous: on a loaded 2-core machine, 1,000 handshakes in flight next to 1,000 floods wait
    // for CPU, and this test checks classification, not speed.
    let connect_timeout = Duration::from_secs(30);
    let command_timeout = Duration::from_secs(8);
    let mut job = Job::new("echo first; echo second");
    job.connect_timeout = connect_timeout;
    job.command_timeout = Some(command_timeout);
    job.output_cap = 64 * 1024;
    let engine = Engine::builder()
        .no_agent()
        .fanout(1000)
        .identity_file(sim.client_key_file())
        .known_hosts(sim.known_hosts_file())
        .build()
        .unwrap();
    let report = engine.run(targets, job).unwrap().join();
    assert_eq!(report.results.len(), 10_000);
    let mut by_kind = std::collections::BTreeMap::new();
    for r in &report.results {
        let fault = sim.fault_of(r.index);
        let kind = r.error.as_ref().map(|e| e.kind);
        *by_kind
            .entry(format!("{:?} -> {:?}", fault.map(Fault::kind), kind))
            .or_insert(0) += 1;
        let bound = match fault {
            Some(Fault::Silent) => connect_timeout,
            _ => connect_timeout + command_timeout,
        } + SLACK;
        assert!(
            r.timings.total <= bound,
            "host {} ({fault:?}) took {:?}, more than {bound:?}",
            r.target,
            r.timings.total
        );
        match fault {
            None | Some(Fault::SlowBanner(_)) => {
                assert!(r.is_ok(), "{fault:?}: {r:?}");
                assert_eq!(r.stdout, b"first\nsecond\n");
            }
            Some(Fault::Exit(3)) => {
                assert_eq!(r.exit_code, Some(3), "{r:?}");
                assert!(r.error.is_none());
            }
            Some(Fault::Refuse) => assert_eq!(kind, Some(ErrorKind::Handshake), "{r:?}"),
            Some(Fault::Silent) => assert_eq!(kind, Some(ErrorKind::ConnectTimeout), "{r:?}"),
            Some(Fault::AuthFail) => assert_eq!(kind, Some(ErrorKind::Auth), "{r:?}"),
            Some(Fault::HostkeyMismatch) => assert_eq!(kind, Some(ErrorKind::Hostkey), "{r:?}"),
            Some(Fault::Drop) => {
                assert_eq!(kind, Some(ErrorKind::Disconnected), "{r:?}");
                assert_eq!(r.stdout, b"first\n", "output before the drop is kept");
            }
            Some(Fault::Hang) => {
                assert_eq!(kind, Some(ErrorKind::CommandTimeout), "{r:?}");
                assert_eq!(r.stdout, b"first\nsecond\n");
            }
            Some(Fault::Flood) => {
                assert_eq!(kind, Some(ErrorKind::CommandTimeout), "{r:?}");
                assert!(r.truncated);
                assert_eq!(r.stdout.len(), 64 * 1024);
            }
            Some(other) => panic!("unexpected fault {other:?}"),
        }
    }
    eprintln!("classification: {by_kind:#?}");
    assert_eq!(
        by_kind.len(),
        10,
        "each fault kind and the healthy hosts: {by_kind:#?}"
    );
}
