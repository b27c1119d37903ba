//! A blocking program embedding fleetsh: results printed as they arrive from the `RunHandle`
//! iterator, then a second run joined into a `Report`. No async runtime of its own: fleetsh's
//! shards run theirs.
//!
//! Run with: `cargo run --bin batch -- STATE_DIR` (a `fleetsh sim --state-dir STATE_DIR`).

use std::path::PathBuf;
use std::process::ExitCode;

use fleetsh::{Engine, Event, HostList, Job};

fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let state = PathBuf::from(std::env::args().nth(1).ok_or("usage: batch STATE_DIR")?);
    let hosts = HostList::new()
        .include_file(&state.join("hosts"))?
        .build()?;
    let engine = Engine::builder()
        .no_agent()
        .identity_file(state.join("id_ed25519"))
        .known_hosts(state.join("known_hosts"))
        .build()?;

    let mut ok = 0usize;
    for event in engine.run(hosts.clone(), Job::new("hostname"))? {
        if let Event::Finished(r) = event {
            if r.is_ok() {
                ok += 1;
            } else {
                eprintln!("{}: {:?}", r.target, r.error);
            }
        }
    }
    println!("batch: iterator: {ok}/{} hosts ok", hosts.len());

    let report = engine
        .run(hosts.clone(), Job::new("echo 42; exit 3"))?
        .join();
    let exited_3 = report
        .results
        .iter()
        .filter(|r| r.exit_code == Some(3))
        .count();
    println!(
        "batch: join: {} results, {exited_3} exited 3, in {:.2}s",
        report.results.len(),
        report.wall.as_secs_f64()
    );

    let good = ok == hosts.len() && report.results.len() == hosts.len() && exited_3 == hosts.len();
    Ok(if good {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
