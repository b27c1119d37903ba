//! A tool fleetsh replaces (`crate::peers`) as the client, in a child process: one outcome per
//! host, from the tool's output and its error lines.

use std::collections::HashMap;

use anyhow::{Context, Result};
use fleetsh::{HostTarget, Timings};

use super::child::{Watch, run_child_client};
use super::interval::Measured;
use super::spec::Spec;
use crate::peers::{self, Peer};
use crate::sample::HostSample;

/// Runs a tool fleetsh replaces (`crate::peers`) as the client: one outcome per host, in the
/// order of `targets`; a host the tool said nothing about failed.
pub fn run_peer(spec: &Spec, peer: Peer, targets: &[HostTarget]) -> Result<Measured> {
    let dir = tempfile::tempdir().context("temporary directory")?;
    let python = spec.python.clone().unwrap_or_else(|| "python3".into());
    let inv = peers::Invocation {
        user: spec.user(),
        identity: &spec.identity,
        known_hosts: &spec.known_hosts,
        fanout: spec.fanout,
        connect_timeout_s: spec.connect_timeout_s,
        command_timeout_s: spec.command_timeout_s,
        command: &spec.command,
        python: &python,
    };
    let cmd = peers::command(peer, targets, dir.path(), &inv)?;
    let mut seen = HashMap::new();
    // Processes for the ssh spawners, the engine's shard threads (one per CPU) for fleetsh's
    // Python package, one thread for the other Python peers.
    let threads = if peer.spawns_ssh() {
        spec.fanout
    } else if peer.is_fleetsh() {
        crate::procfs::nproc()
    } else {
        1
    };
    let watch = Watch {
        tree_rss: peer.spawns_ssh(),
        stderr: true,
    };
    let (mut m, status, errors) = run_child_client(spec, cmd, threads, watch, |line| {
        let before = seen.len();
        peers::parse_line(peer, line, &mut seen);
        seen.len() > before
    })?;
    // Failures the tool reports on stderr override output a host printed first.
    for l in &errors {
        peers::parse_error_line(peer, l, &mut seen);
    }
    m.samples = targets
        .iter()
        .map(|t| match seen.remove(&t.host) {
            Some(peers::Outcome::Ok(bytes)) => HostSample {
                error: None,
                output_bytes: bytes,
                timings: Timings::default(),
            },
            Some(peers::Outcome::Failed(why)) => HostSample::failed(why),
            None => HostSample::failed(format!("no result from {} ({status})", peer.name())),
        })
        .collect();
    Ok(m)
}
