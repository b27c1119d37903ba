//! `transfer`: one large file to and from one host, fleetsh against OpenSSH's `scp`, `scp -O` and
//! `sftp` on a private loopback `sshd` (`crate::transfer` runs each client); then one small file
//! to many simulated hosts.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Result, bail};
use serde::Serialize;

use crate::bench::Bench;
use crate::measure::{self, Client};
use crate::print::cpu_resolution_note;
use crate::procfs;
use crate::report::Machine;
use crate::sshd;
use crate::stats;
use crate::table::{Table, num};
use crate::transfer;

/// Options of the single-file transfer runs.
pub struct SingleOpts<'a> {
    pub size: u64,
    pub rounds: usize,
    pub cipher: Option<String>,
    pub openssh: bool,
    pub sweep_chunks: &'a [u32],
    pub sweep_windows: &'a [usize],
    pub channel_windows: &'a [u32],
    pub engines: &'a [String],
    pub direction: &'a str,
}

/// The single-file runs' output.
#[derive(Debug, Serialize)]
struct TransferReport {
    scenario: &'static str,
    date: String,
    machine: Machine,
    load_before: [f64; 3],
    load_after: [f64; 3],
    bytes: u64,
    rounds: usize,
    cipher_forced: Option<String>,
    sftp_server: String,
    rows: Vec<TransferRowReport>,
}

/// One client in one direction, over the rounds.
#[derive(Debug, Serialize)]
struct TransferRowReport {
    label: String,
    direction: &'static str,
    cipher: String,
    median_mb_per_s: Option<f64>,
    median_wall_s: Option<f64>,
    median_client_cpu_s: Option<f64>,
    /// Median over the rounds of (this row's MB/s / scp's MB/s in the same round).
    vs_scp: Option<f64>,
    samples: Vec<transfer::XferSample>,
}

/// The clients of the single-file runs, in run order.
fn single_file_rows(o: &SingleOpts) -> Result<Vec<transfer::XferRow>> {
    use transfer::{XferClient, XferRow};
    let mut rows = vec![XferRow {
        label: "fleetsh".into(),
        client: XferClient::Engine {
            exe: None,
            channel_window: None,
        },
    }];
    for e in o.engines {
        let Some((label, path)) = e.split_once('=') else {
            bail!("--engine takes LABEL=PATH, not {e:?}");
        };
        rows.push(XferRow {
            label: format!("fleetsh {label}"),
            client: XferClient::Engine {
                exe: Some(PathBuf::from(path)),
                channel_window: None,
            },
        });
    }
    for &w in o.channel_windows {
        rows.push(XferRow {
            label: format!("fleetsh chan-window {w}K"),
            client: XferClient::Engine {
                exe: None,
                channel_window: Some(w.saturating_mul(1024)),
            },
        });
    }
    if o.openssh {
        rows.push(XferRow {
            label: "scp".into(),
            client: XferClient::Scp { legacy: false },
        });
        let legacy = Command::new("scp")
            .arg("-O")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map(|o| !String::from_utf8_lossy(&o.stderr).contains("illegal option"))
            .unwrap_or(false);
        if legacy {
            rows.push(XferRow {
                label: "scp -O".into(),
                client: XferClient::Scp { legacy: true },
            });
        }
        rows.push(XferRow {
            label: "sftp -b".into(),
            client: XferClient::Sftp,
        });
    }
    for &c in o.sweep_chunks {
        for &w in o.sweep_windows {
            for &cw in std::iter::once(&0).chain(o.channel_windows) {
                rows.push(XferRow {
                    label: if cw == 0 {
                        format!("plain {c}K x {w}")
                    } else {
                        format!("plain {c}K x {w} chan-window {cw}K")
                    },
                    client: XferClient::Plain {
                        chunk: c.saturating_mul(1024),
                        window: w.max(1),
                        channel_window: (cw > 0).then(|| cw.saturating_mul(1024)),
                    },
                });
            }
        }
    }
    Ok(rows)
}

/// The single-file runs: every client of `o` once per round and direction, interleaved, on a
/// private loopback `sshd`.
pub fn single_file(bench: &Bench, o: &SingleOpts) -> Result<()> {
    let directions: Vec<bool> = match o.direction {
        "up" => vec![true],
        "down" => vec![false],
        "both" => vec![true, false],
        d => bail!("--direction takes up, down or both, not {d:?}"),
    };
    let rows = single_file_rows(o)?;
    eprintln!(
        "fleetsh-bench transfer: {} MiB file, {} clients, {} round(s)",
        o.size >> 20,
        rows.len(),
        o.rounds
    );
    let single = transfer::SingleFile::prepare(
        o.size,
        bench.exe.clone(),
        o.cipher.clone(),
        bench.child_timeout,
    )?;
    let date = procfs::utc_now();
    let load_before = procfs::loadavg();
    // samples[d][r]: direction d, row r, one per round.
    let mut samples: Vec<Vec<Vec<transfer::XferSample>>> =
        vec![vec![Vec::new(); rows.len()]; directions.len()];
    for round in 0..o.rounds.max(1) {
        for (d, &up) in directions.iter().enumerate() {
            for (r, row) in rows.iter().enumerate() {
                let s = single.run(row, up)?;
                eprintln!(
                    "  round {}/{} {} {}: {:.1} MB/s ({:.2} s, client CPU {:.2} s, {})",
                    round + 1,
                    o.rounds,
                    if up { "put" } else { "get" },
                    row.label,
                    s.mb_per_s,
                    s.wall_s,
                    s.client_cpu_s,
                    s.cipher
                );
                if let Some(v) = samples.get_mut(d).and_then(|v| v.get_mut(r)) {
                    v.push(s);
                }
            }
        }
    }
    let load_after = procfs::loadavg();
    let scp = rows
        .iter()
        .position(|r| r.client == transfer::XferClient::Scp { legacy: false });
    let mut report = TransferReport {
        scenario: "transfer",
        date,
        machine: bench.machine.clone(),
        load_before,
        load_after,
        bytes: o.size,
        rounds: o.rounds,
        cipher_forced: o.cipher.clone(),
        sftp_server: sshd::sftp_server(),
        rows: Vec::new(),
    };
    let mut t = Table::new(&[
        "direction",
        "client",
        "cipher",
        "MB/s median",
        "MB/s range",
        "wall s",
        "client CPU s",
        "CPU s/GB",
        "server+other cores",
        "vs scp",
    ]);
    for (d, &up) in directions.iter().enumerate() {
        let Some(per_row) = samples.get(d) else {
            continue;
        };
        for (r, row) in rows.iter().enumerate() {
            let Some(v) = per_row.get(r) else { continue };
            let col = |f: fn(&transfer::XferSample) -> f64| {
                stats::median(&v.iter().map(f).collect::<Vec<_>>())
            };
            let mbs = col(|s| s.mb_per_s);
            let lo = v.iter().map(|s| s.mb_per_s).fold(f64::INFINITY, f64::min);
            let hi = v.iter().map(|s| s.mb_per_s).fold(0.0, f64::max);
            let cpu = col(|s| s.client_cpu_s);
            let vs_scp = scp.and_then(|i| per_row.get(i)).and_then(|base| {
                let ratios: Vec<f64> = v
                    .iter()
                    .zip(base)
                    .map(|(a, b)| a.mb_per_s / b.mb_per_s)
                    .collect();
                stats::median(&ratios)
            });
            let cipher = v.first().map_or("?".into(), |s| s.cipher.clone());
            t.row(vec![
                if up { "put" } else { "get" }.into(),
                row.label.clone(),
                cipher.clone(),
                num(mbs, 1),
                format!("{lo:.0}-{hi:.0}"),
                num(col(|s| s.wall_s), 2),
                num(cpu, 2),
                num(cpu.map(|c| c / (o.size as f64 / 1e9)), 2),
                num(col(|s| s.server_and_other_cores), 2),
                vs_scp.map_or("-".into(), |x| format!("{x:.2}x")),
            ]);
            report.rows.push(TransferRowReport {
                label: row.label.clone(),
                direction: if up { "put" } else { "get" },
                cipher,
                median_mb_per_s: mbs,
                median_wall_s: col(|s| s.wall_s),
                median_client_cpu_s: cpu,
                vs_scp,
                samples: v.clone(),
            });
        }
    }
    println!(
        "== transfer: one {} MiB file to/from one host (loopback OpenSSH sshd, {}) ==\n\
         date {}; machine {} x {}; load {:.2} -> {:.2}; {} round(s), interleaved",
        o.size >> 20,
        report.sftp_server,
        report.date,
        bench.machine.nproc,
        bench.machine.cpu_model,
        load_before[0],
        load_after[0],
        o.rounds,
    );
    print!("{}", t.render());
    println!(
        "MB = 10^6 bytes; wall = spawn to exit (process start, handshake, auth included); \
         vs scp = median over rounds of the per-round ratio to scp (SFTP protocol)"
    );
    println!();
    if bench.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}

/// The fleet upload: one `size`-byte file to `hosts` simulated hosts.
pub fn fleet_upload(bench: &Bench, hosts: usize, size: u64) -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("fleetsh-bench-put-")
        .tempdir()?;
    let local = dir.path().join("file.bin");
    std::fs::write(&local, transfer::pseudo_random(size))?;
    let fanout = fleetsh::DEFAULT_FANOUT;
    let mut spec = bench.spec(
        format!("put {} KiB to {hosts}", size >> 10),
        Client::Engine { shards: 0 },
        hosts,
        fanout,
        "",
    );
    spec.put = Some(measure::PutSpec {
        local,
        remote: "/file.bin".into(),
    });
    let (rows, report) = bench.measure("transfer-fleet", vec![spec], false)?;
    let mut t = Table::new(&[
        "hosts",
        "fanout",
        "shards",
        "wall s",
        "hosts/s",
        "MB/s",
        "client CPU us/host",
        "sim CPU us/host",
        "peak RSS MiB",
        "bytes/host",
        "p50 ms",
        "p99 ms",
        "others' cores",
        "fail",
    ]);
    for r in &rows {
        t.row(vec![
            r.hosts.to_string(),
            r.fanout.to_string(),
            r.threads.to_string(),
            num(Some(r.wall_s), 2),
            num(Some(r.hosts_per_s), 0),
            num(
                Some(r.ok as f64 * size as f64 / 1e6 / r.wall_s.max(1e-9)),
                1,
            ),
            num(Some(r.client_cpu_us_per_host), 0),
            num(Some(r.sim_cpu_us_per_host), 0),
            num(Some(r.peak_rss_kib as f64 / 1024.0), 1),
            num(Some(r.output_bytes_per_host), 0),
            num(r.phases.total_p50_ms, 1),
            num(r.phases.total_p99_ms, 1),
            num(Some(r.other_cores), 2),
            r.failures.to_string(),
        ]);
    }
    bench.emit(
        &format!(
            "put: one {} KiB file to {hosts} simulated hosts (copy_to, fanout {fanout})",
            size >> 10
        ),
        &report,
        &t,
        &[
            "MB/s = hosts that succeeded x file size / wall (10^6 bytes); bytes/host = bytes the \
             engine reports moved per host"
                .into(),
            cpu_resolution_note(&rows),
        ],
    );
    Ok(())
}
