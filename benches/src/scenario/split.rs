//! `split`: one host list run by one controller, and by N controllers at once (`--shard I/N`,
//! each with its journal) then merged (`fleetsh merge`): the client CPU per host of each, side by
//! side, and every host exactly once in the merge.

use std::path::Path;

use anyhow::Result;

use crate::bench::Bench;
use crate::measure::{Client, JournalSpec};
use crate::print::generic_table;
use crate::scenario::journal::cli_and_dir;

/// What to split.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Hosts.
    pub hosts: usize,
    /// Controllers of the split run.
    pub controllers: usize,
    /// Hosts in flight per controller.
    pub fanout: usize,
    /// The split run's controllers get `fanout / controllers` each.
    pub divide_fanout: bool,
}

/// Runs `echo hello` on the hosts by one controller and by several, each with a journal, with
/// the CLI at `cli` and the journals in `dir`.
pub fn run(bench: &Bench, o: &Options, cli: Option<&Path>, dir: Option<&Path>) -> Result<()> {
    let (cli, dir) = cli_and_dir(cli, dir)?;
    let Options {
        hosts,
        controllers,
        fanout,
        divide_fanout,
    } = *o;
    let controllers = controllers.max(1);
    let mut specs = Vec::new();
    for n in [1, controllers] {
        let fanout = if divide_fanout {
            (fanout / n).max(1)
        } else {
            fanout
        };
        let label = if n == 1 {
            "1 controller".to_string()
        } else {
            format!("{n} controllers + merge")
        };
        let mut s = bench.spec(
            label,
            Client::Engine { shards: 0 },
            hosts,
            fanout,
            "echo hello",
        );
        s.cli = Some(cli.clone());
        s.journal = Some(JournalSpec {
            dir: dir.clone(),
            sync: false,
            controllers: n,
        });
        specs.push(s);
    }
    let (rows, report) = bench.measure("split", specs, false)?;
    let table = generic_table(&rows, &[]);
    bench.emit(
        &format!(
            "echo hello on {hosts} hosts by 1 controller and by {controllers} at once \
             (--shard I/{controllers}, fanout {} each), each with a journal",
            if divide_fanout {
                format!("{fanout} / {controllers}")
            } else {
                fanout.to_string()
            }
        ),
        &report,
        &table.table,
        &[
            "the split row runs its controllers at once on this machine's cores and then \
             `fleetsh merge -o json` of their journals; its client CPU is theirs and the merge's, \
             its samples and `fail` the merged lines (a host missing or failed is a failure), \
             its peak RSS the controllers' summed"
                .into(),
        ],
    );
    Ok(())
}
