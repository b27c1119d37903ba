//! `journal`: what `--journal` costs. `echo hello` on N hosts by the `fleetsh` CLI without a
//! journal, with one, and with one synced line by line (`--journal-sync`), interleaved.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::bench::Bench;
use crate::measure::{Client, JournalSpec};
use crate::print::generic_table;

/// Runs the three rows on each of `hosts`, with the CLI at `cli` (default: `fleetsh` beside
/// this binary) and the journals in `dir` (default: `target/bench-journals`).
pub fn run(
    bench: &Bench,
    hosts: &[usize],
    fanout: usize,
    cli: Option<&Path>,
    dir: Option<&Path>,
) -> Result<()> {
    let (cli, dir) = cli_and_dir(cli, dir)?;
    let mut specs = Vec::new();
    for &n in hosts {
        for (label, journal) in [
            ("no journal", None),
            (
                "--journal",
                Some(JournalSpec {
                    dir: dir.clone(),
                    sync: false,
                    controllers: 1,
                }),
            ),
            (
                "--journal --journal-sync",
                Some(JournalSpec {
                    dir: dir.clone(),
                    sync: true,
                    controllers: 1,
                }),
            ),
        ] {
            let mut s = bench.spec(
                format!("{n} {label}"),
                Client::Engine { shards: 0 },
                n,
                fanout,
                "echo hello",
            );
            s.cli = Some(cli.clone());
            s.journal = journal;
            specs.push(s);
        }
    }
    let (rows, report) = bench.measure("journal", specs, false)?;
    let table = generic_table(&rows, &[]);
    bench.emit(
        &format!("echo hello by the fleetsh CLI, fanout {fanout}: without and with a journal"),
        &report,
        &table.table,
        &[format!(
            "journals written to {} (a new file each run); --journal-sync calls fdatasync after \
             every line, two lines per host",
            dir.display()
        )],
    );
    Ok(())
}

/// The `fleetsh` CLI to measure (`cli`, default: `fleetsh` beside this binary) and where its
/// journals go (`dir`, default: `target/bench-journals`, created if missing).
pub fn cli_and_dir(cli: Option<&Path>, dir: Option<&Path>) -> Result<(PathBuf, PathBuf)> {
    let exe = std::env::current_exe().context("locating this binary")?;
    let cli = match cli {
        Some(p) => p.to_path_buf(),
        None => exe.with_file_name("fleetsh"),
    };
    if !cli.is_file() {
        bail!(
            "no fleetsh binary at {} (build it, or give --cli PATH)",
            cli.display()
        );
    }
    let dir: PathBuf = match dir {
        Some(d) => d.to_path_buf(),
        None => exe
            .parent()
            .and_then(Path::parent)
            .map(|target| target.join("bench-journals"))
            .context("locating the target directory")?,
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok((cli, dir))
}
