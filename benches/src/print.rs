//! What several scenarios print: the table of the columns every throughput run has, the same
//! with the crypto floor beside each row, and the notes under their tables.

use crate::floor::Floor;
use crate::measure::Sample;
use crate::table::{Table, num};

/// A table of the columns every throughput run has, plus up to three extra headers.
pub struct GenericTable {
    /// The table.
    pub table: Table,
    rows: usize,
}

/// The generic table of `rows`, with the non-empty headers of `extra` after its columns.
pub fn generic_table(rows: &[Sample], extra: &[(&str, &str, &str)]) -> GenericTable {
    let mut headers = vec![
        "run",
        "kex",
        "hosts",
        "fanout",
        "threads",
        "wall s",
        "hosts/s",
        "client CPU us/host",
        "sim CPU us/host",
        "client/sim",
        "peak RSS MiB",
        "p50 ms",
        "p99 ms",
        "others' cores",
        "fail",
    ];
    for (a, b, c) in extra {
        headers.extend([*a, *b, *c].into_iter().filter(|h| !h.is_empty()));
    }
    let mut t = Table::new(&headers);
    for r in rows {
        t.row(vec![
            r.label.clone(),
            r.kex.clone(),
            r.hosts.to_string(),
            r.fanout.to_string(),
            r.threads.to_string(),
            num(Some(r.wall_s), 2),
            num(Some(r.hosts_per_s), 0),
            num(Some(r.client_cpu_us_per_host), 0),
            num(Some(r.sim_cpu_us_per_host), 0),
            num(r.client_sim_cpu_ratio, 2),
            num(Some(r.peak_rss_kib as f64 / 1024.0), 1),
            num(r.phases.total_p50_ms, 1),
            num(r.phases.total_p99_ms, 1),
            num(Some(r.other_cores), 2),
            r.failures.to_string(),
        ]);
    }
    GenericTable {
        table: t,
        rows: rows.len(),
    }
}

impl GenericTable {
    /// Appends `extra[i]` to data row `i`.
    pub fn with_extra(mut self, extra: &[Vec<String>]) -> Self {
        debug_assert!(extra.len() <= self.rows);
        self.table.extend_rows(extra);
        self
    }
}

/// Says how coarse the CPU counters are relative to the smallest measured CPU.
pub fn cpu_resolution_note(rows: &[Sample]) -> String {
    let tck = rows.first().map_or(100, |r| r.clk_tck);
    let min_cpu = rows
        .iter()
        .map(|r| r.client_cpu_s)
        .fold(f64::INFINITY, f64::min);
    let step = 1.0 / tck as f64;
    format!(
        "CPU counters tick at {tck} Hz ({:.0} ms); the smallest client CPU here is {:.2} s, so \
         per-host CPU is good to about {:.1}%",
        step * 1e3,
        min_cpu,
        if min_cpu > 0.0 {
            100.0 * step / min_cpu
        } else {
            100.0
        }
    )
}

/// The generic table with each row's crypto floor (measured just before its sample, for its
/// key exchange) and its distance to it.
pub fn floor_table(rows: &[Sample]) -> GenericTable {
    let extra: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                num(r.floor_us, 0),
                r.floor_us.map_or("-".into(), |f| {
                    format!("{:.2}x", r.client_cpu_us_per_host / f)
                }),
            ]
        })
        .collect();
    generic_table(rows, &[("floor us", "x floor", "")]).with_extra(&extra)
}

/// The note under a table with floor columns: the floor measured before the run, part by part.
pub fn floor_note(f: &Floor) -> String {
    format!(
        "floor: the client's crypto per handshake measured in this process before the run \
         (`fleetsh-bench floor`): {:.0} us curve25519 (x25519 {:.0}, host signature check {:.0}, \
         user signature {:.0}, hashes {:.0}), {:.0} us mlkem768x25519 (+ ML-KEM {:.0}). The \
         `floor us` column is the floor measured again just before the row's sample, the \
         machine's speed in that minute; `x floor` divides by it",
        f.curve25519(),
        f.x25519,
        f.host_sig_check,
        f.user_sig,
        f.hash,
        f.mlkem768x25519(),
        f.mlkem
    )
}
