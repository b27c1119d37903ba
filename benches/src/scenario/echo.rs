//! `echo`: `echo hello` on N hosts with the engine's defaults, each row beside the crypto floor
//! measured just before it; or, with `--engine`, `fleetsh` binaries side by side.

use std::path::PathBuf;

use anyhow::Result;

use crate::bench::Bench;
use crate::floor;
use crate::measure::Client;
use crate::print::{cpu_resolution_note, floor_note, floor_table};

/// Runs `echo hello` on each of `hosts` (a fleet of the largest), with the engine in the
/// measuring process or, when `engines` is not empty, with each of those binaries.
pub fn run(
    bench: &Bench,
    hosts: &[usize],
    fanout: usize,
    shards: usize,
    engines: &[(String, PathBuf)],
) -> Result<()> {
    let mut specs = Vec::new();
    for &n in hosts {
        let spec = bench.spec(
            format!("echo {n}"),
            Client::Engine { shards },
            n,
            fanout,
            "echo hello",
        );
        for (label, path) in engines {
            let mut s = spec.clone();
            s.label = format!("echo {n} {label}");
            s.cli = Some(path.clone());
            specs.push(s);
        }
        if engines.is_empty() {
            specs.push(spec);
        }
    }
    // Measured before the simulator starts, on the same machine in the same hour.
    let floor = floor::measure(floor::ITERS)?;
    let (rows, report) = bench.measure("echo", specs, true)?;
    let table = floor_table(&rows);
    bench.emit(
        &format!("echo hello, fanout {fanout}"),
        &report,
        &table.table,
        &[floor_note(&floor), cpu_resolution_note(&rows)],
    );
    Ok(())
}
