//! `fleetsh sim`: a simulated fleet of SSH hosts on loopback addresses, served until SIGINT or
//! SIGTERM.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use fleetsh_sim::{Listen, SimConfig, SimFleet};

use crate::args::SimArgs;
use crate::error::usage;

/// `fleetsh sim --count N --state-dir DIR [--listen per-host|one-socket|auto]`.
pub fn sim(a: SimArgs) -> Result<ExitCode> {
    let count = usize::try_from(a.count).map_err(usage)?;
    let listen = Listen::from(a.listen).for_count(count);
    // One descriptor per connection served, and per host with a listener each.
    let limit = fleetsh::limits::raise_nofile_limit().unwrap_or(1024);
    if listen == Listen::PerHost && (count as u64) + fleetsh::limits::FD_RESERVE > limit {
        return Err(usage(anyhow::anyhow!(
            "--count {count}: the open-files limit ({limit}) is too low for that many listeners \
             (--listen one-socket serves any number of hosts from one)"
        )));
    }
    let fleet = SimFleet::start(SimConfig {
        count,
        addr_base: a.addr_base,
        port: a.port,
        listen,
        state_dir: a.state_dir.clone(),
        seed: a.seed,
        threads: a.threads.max(1),
        password: std::env::var("FLEETSH_SIM_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty()),
        sudo_password: std::env::var("FLEETSH_SIM_SUDO_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty()),
        faults: match &a.fault {
            Some(spec) => fleetsh_sim::parse_faults(spec).map_err(usage)?,
            None => Vec::new(),
        },
        latency: a.latency.map(Duration::from_millis),
        ..SimConfig::default()
    })
    .map_err(usage)?;
    let sockets = match fleet.listen() {
        Listen::OneSocket => format!("one socket on 0.0.0.0:{}", fleet.port()),
        _ => "a socket per host".to_string(),
    };
    eprintln!(
        "fleetsh sim: {} hosts on port {} from {} ({sockets}); state in {}",
        fleet.hosts().len(),
        fleet.port(),
        a.addr_base,
        a.state_dir.display()
    );
    {
        let mut out = io::stdout().lock();
        writeln!(out, "ready {}", fleet.hosts().len())?;
        out.flush()?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    })?;
    eprintln!("fleetsh sim: stopping");
    fleet.stop();
    Ok(ExitCode::SUCCESS)
}
