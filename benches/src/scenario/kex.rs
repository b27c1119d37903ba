//! `kex`: `echo hello` with russh's default key exchange (ML-KEM hybrid) and with curve25519,
//! each row beside the crypto floor of its exchange.

use anyhow::Result;

use crate::bench::Bench;
use crate::floor;
use crate::measure::{Client, Kex};
use crate::print::{cpu_resolution_note, floor_note, floor_table};

/// Runs `echo hello` on `hosts` hosts with each key exchange.
pub fn run(bench: &Bench, hosts: usize, fanout: usize) -> Result<()> {
    let cmd = "echo hello";
    let mut specs = Vec::new();
    for kex in [Kex::Default, Kex::Curve25519] {
        let mut s = bench.spec(
            format!("kex {}", kex.name()),
            Client::Engine { shards: 0 },
            hosts,
            fanout,
            cmd,
        );
        s.kex = kex;
        specs.push(s);
    }
    let floor = floor::measure(floor::ITERS)?;
    let (rows, report) = bench.measure("kex", specs, true)?;
    let table = floor_table(&rows);
    bench.emit(
        &format!("key exchange: echo hello on {hosts} hosts, fanout {fanout}"),
        &report,
        &table.table,
        &[floor_note(&floor), cpu_resolution_note(&rows)],
    );
    Ok(())
}
