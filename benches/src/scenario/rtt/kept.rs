//! The kept-connection client of `rtt`: a later command over a connection a connected fleet
//! keeps open (channel open, then exec: two round trips at the protocol's floor, since the
//! exec needs the server's channel number). Run as `fleetsh-bench kept-client` inside the
//! near namespace, so that the engine's own timing of each command is free of process start.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::stats;

/// What one kept-connection client prints (one JSON line).
#[derive(Debug, Serialize, Deserialize)]
pub struct KeptWalls {
    /// Connecting and authenticating (`connect_all`), ms.
    pub connect_ms: f64,
    /// Each later command's run, start to report, ms.
    pub later_ms: Vec<f64>,
    /// How many later commands ended OK.
    pub ok: usize,
}

/// Connects to `host` once, then runs `command` `runs` times over the kept connection, and
/// prints the times as one JSON line.
pub fn client(
    host: &str,
    user: &str,
    identity: &Path,
    known_hosts: &Path,
    command: &str,
    runs: usize,
) -> Result<()> {
    let engine = fleetsh::Engine::builder()
        .user(user)
        .no_agent()
        .identity_file(identity)
        .known_hosts(known_hosts)
        .build()
        .context("building the engine")?;
    let target = fleetsh::HostTarget {
        user: None,
        host: host.into(),
        port: Some(22),
    };
    let fleet = engine.connect([target]).context("connecting")?;
    let start = Instant::now();
    let connected = fleet.connect_all()?.join();
    let connect_ms = stats::ms(start.elapsed());
    if let Some(r) = connected.failures().next() {
        bail!("{host}: {:?}", r.error);
    }
    let mut later_ms = Vec::with_capacity(runs);
    let mut ok = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let report = fleet.run(fleetsh::Job::new(command))?.join();
        later_ms.push(stats::ms(start.elapsed()));
        ok += usize::from(report.all_ok());
    }
    let walls = KeptWalls {
        connect_ms,
        later_ms,
        ok,
    };
    println!("{}", serde_json::to_string(&walls)?);
    Ok(())
}
