//! `read26k`: `cat` of a 26,000-byte file (parallel-ssh's published client benchmark) with the
//! concurrency stepped, the median time of each connection phase per step.

use anyhow::Result;

use crate::bench::Bench;
use crate::measure::Client;
use crate::table::{Table, num};

/// Runs the read at each concurrency of `steps` on max(`min_hosts`, 4 × concurrency) hosts.
pub fn run(bench: &Bench, steps: &[usize], min_hosts: usize, shards: usize) -> Result<()> {
    let nproc = bench.machine.nproc;
    let specs = steps
        .iter()
        .map(|&c| {
            let c = c.max(1);
            let s = if shards == 0 { nproc.min(c) } else { shards };
            bench.spec(
                format!("concurrency {c}"),
                Client::Engine { shards: s },
                min_hosts.max(4 * c),
                c,
                "cat /srv/data/26k.txt",
            )
        })
        .collect();
    let (rows, report) = bench.measure("read26k", specs, false)?;
    let mut t = Table::new(&[
        "concurrency",
        "hosts",
        "shards",
        "connect+auth ms",
        "channel open ms",
        "execute ms",
        "read ms",
        "close+exit ms",
        "total/host ms",
        "p99 ms",
        "hosts/s",
        "CPU us/host",
        "bytes/host",
        "others' cores",
        "fail",
    ]);
    for r in &rows {
        let p = &r.phases;
        t.row(vec![
            r.fanout.to_string(),
            r.hosts.to_string(),
            r.threads.to_string(),
            num(p.connect_auth_ms, 2),
            num(p.channel_open_ms, 2),
            num(p.exec_ms, 2),
            num(p.read_ms, 2),
            num(p.close_ms, 2),
            num(p.total_p50_ms, 2),
            num(p.total_p99_ms, 2),
            num(Some(r.hosts_per_s), 0),
            num(Some(r.client_cpu_us_per_host), 0),
            num(Some(r.output_bytes_per_host), 0),
            num(Some(r.other_cores), 2),
            r.failures.to_string(),
        ]);
    }
    bench.emit(
        "cat /srv/data/26k.txt (26,000 bytes), medians per phase",
        &report,
        &t,
        &[
            "phases are medians over successful hosts; total/host is the median of timings.total"
                .into(),
        ],
    );
    Ok(())
}
