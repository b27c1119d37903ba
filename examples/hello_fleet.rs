//! Run with: `cargo run --release -p fleetsh-examples --example hello_fleet`
//!
//! Starts an embedded simulated fleet of 1,000 hosts on loopback, runs `hostname` on all of them
//! through the fleetsh engine, prints results as they arrive (blocking iterator), then the same
//! through the async stream.

use fleetsh::{Engine, Event, HostList, Job};
use fleetsh_sim::{SimConfig, SimFleet};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("fleetsh-example-{}", std::process::id()));
    let fleet = SimFleet::start(SimConfig {
        count: 1000,
        port: 0,
        state_dir: dir.clone(),
        ..SimConfig::default()
    })?;

    let hosts = HostList::new().include_file(&fleet.hosts_file())?.build()?;
    let engine = Engine::builder()
        .no_agent()
        .identity_file(fleet.client_key_file())
        .known_hosts(fleet.known_hosts_file())
        .build()?;

    // Blocking: results as they arrive.
    let mut ok = 0;
    for event in engine.run(hosts.clone(), Job::new("hostname"))? {
        if let Event::Finished(r) = event {
            if r.is_ok() {
                ok += 1;
            } else {
                eprintln!("{}: {:?}", r.target, r.error);
            }
        }
    }
    println!("blocking iterator: {ok}/{} hosts ok", hosts.len());

    // Async: the same run as a Stream, joined into a report.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(engine.run(hosts, Job::new("echo hello"))?.stream().join());
    println!(
        "async stream: {}/{} hosts ok in {:.2}s",
        report.ok_count(),
        report.results.len(),
        report.wall.as_secs_f64(),
    );
    if let Some(first) = report.results.first() {
        println!(
            "first: {} said {:?}",
            first.target,
            String::from_utf8_lossy(&first.stdout)
        );
    }

    fleet.stop();
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
