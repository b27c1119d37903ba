//! The end-of-run summary on stderr, in every output mode:
//!
//! ```text
//! fleetsh: 20 hosts in 0.41s (49 hosts/s) on 2 shards; ok: 17, exit 3: 2, connect: 1
//! fleetsh: per-host time: p50 0.210s, p90 0.300s, p99 0.310s, max 0.310s
//! fleetsh: slowest: 127.1.0.4 0.310s, ...
//! fleetsh: exit 3 (2): 127.1.0.[3,7]:2222
//! fleetsh: connect (1): 127.1.0.250:1
//! ```

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::Duration;

use fleetsh::{HostResult, KexGuesses, Outcome, Report};
use fleetsh_core::fold::fold_items;

/// A failing-hosts list longer than this many characters is cut (at an item boundary).
const MAX_LIST: usize = 2000;

/// An outcome as the summary names it: `ok`, `exit 3`, `signal KILL`, `connect_timeout`.
pub fn outcome_name(o: &Outcome) -> String {
    match o {
        Outcome::Ok => "ok".to_string(),
        Outcome::Exit(c) => format!("exit {c}"),
        Outcome::Signal(s) => format!("signal {s}"),
        Outcome::Failed(k) => k.as_str().to_string(),
    }
}

/// `n noun` with the noun in the plural unless `n` is 1: `1 host`, `2 hosts`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Hosts in the slowest list.
const SLOWEST: usize = 5;

/// What the summary needs of every host's result, gathered as results arrive, so that a run
/// keeps no result after printing it: counts by outcome, files moved, the started hosts' times
/// (4 bytes each), the slowest hosts, and the failing hosts by outcome.
#[derive(Debug, Default)]
pub struct Tally {
    counts: fleetsh::Counts,
    moved: Option<(u64, u64)>,
    /// Started hosts' total times, in microseconds.
    times_us: Vec<u32>,
    /// The slowest started hosts: (time, index), slowest first, ties by host order.
    slowest: Vec<(Duration, usize)>,
    failing: BTreeMap<Outcome, Vec<usize>>,
    /// The largest remote exit status (`-S`).
    max_status: u8,
}

impl Tally {
    /// Counts `r`.
    pub fn add(&mut self, r: &HostResult) {
        self.counts.add(r);
        if let Some(t) = r.transfer {
            let (files, bytes) = self.moved.unwrap_or_default();
            self.moved = Some((files + t.files, bytes + t.bytes));
        }
        if !r.never_started() {
            let total = r.timings.total;
            self.times_us
                .push(u32::try_from(total.as_micros()).unwrap_or(u32::MAX));
            let key = (std::cmp::Reverse(total), r.index);
            let at = self
                .slowest
                .partition_point(|&(t, i)| (std::cmp::Reverse(t), i) < key);
            if at < SLOWEST {
                self.slowest.insert(at, (total, r.index));
                self.slowest.truncate(SLOWEST);
            }
        }
        let outcome = r.outcome();
        if outcome != Outcome::Ok {
            self.failing.entry(outcome).or_default().push(r.index);
        }
        self.max_status = self.max_status.max(super::status::remote_status(r));
    }

    /// Hosts counted.
    pub fn hosts(&self) -> usize {
        self.counts.hosts
    }

    /// Whether every host counted is OK.
    pub fn all_ok(&self) -> bool {
        self.counts.ok == self.counts.hosts
    }

    /// The largest remote exit status: 255 for a host that failed without one, 128+N for a
    /// command killed by signal N.
    pub fn max_status(&self) -> u8 {
        self.max_status
    }
}

/// Writes the summary of the results `tally` counted (the run's wall time and shards from
/// `report`); `names` are the hosts as given, by index; `signal` the signal that cancelled the
/// run, if one did; `kex` the engine's key exchange guesses. Lines, in this order: totals;
/// files moved (transfers); with `verbose`, peak memory and key exchange guesses; per-host time
/// percentiles and the slowest hosts (of the hosts that started); failing hosts per outcome, in
/// a fixed order.
#[allow(clippy::too_many_arguments)]
pub fn write(
    tally: &Tally,
    report: &Report,
    signal: Option<i32>,
    names: &[String],
    kex: Option<KexGuesses>,
    verbose: bool,
    merged: Option<usize>,
    w: &mut impl Write,
) -> io::Result<()> {
    let n = tally.hosts();
    let counts: Vec<String> = tally
        .counts
        .outcomes
        .iter()
        .map(|(outcome, count)| format!("{}: {count}", outcome_name(outcome)))
        .collect();
    let secs = report.wall.as_secs_f64();
    let cancelled = match signal {
        Some(n) => format!(", cancelled by {}", signal_name(n)),
        None => String::new(),
    };
    match merged {
        // A merge of journals: the runs' own times are in their journals' results.
        Some(journals) => writeln!(
            w,
            "fleetsh: {} merged from {}; {}",
            count(n, "host"),
            count(journals, "journal"),
            counts.join(", ")
        )?,
        None => writeln!(
            w,
            "fleetsh: {} in {secs:.2}s ({:.0} hosts/s) on {}{cancelled}; {}",
            count(n, "host"),
            n as f64 / secs.max(1e-9),
            count(report.shards, "shard"),
            counts.join(", ")
        )?,
    }
    if let Some((moved_files, moved_bytes)) = tally.moved {
        let mib = moved_bytes as f64 / (1024.0 * 1024.0);
        let files = count(usize::try_from(moved_files).unwrap_or(usize::MAX), "file");
        if merged.is_some() {
            writeln!(w, "fleetsh: transferred {files}, {mib:.1} MiB")?;
        } else {
            writeln!(
                w,
                "fleetsh: transferred {files}, {mib:.1} MiB ({:.1} MiB/s)",
                mib / secs.max(1e-9)
            )?;
        }
    }
    if verbose {
        if let Some(rss) = fleetsh::limits::peak_rss_bytes() {
            writeln!(w, "fleetsh: peak RSS {} MiB", rss / (1024 * 1024))?;
        }
        if let Some(g) = kex.filter(|g| g.right + g.wrong > 0) {
            writeln!(
                w,
                "fleetsh: key exchange guessed right for {}, wrong for {}",
                count(usize::try_from(g.right).unwrap_or(usize::MAX), "host"),
                g.wrong
            )?;
        }
    }

    // Per-host times of the hosts that were started (skipped and unstarted hosts took no
    // time); ties in the slowest list go by host order, so the line is stable.
    let mut times: Vec<Duration> = tally
        .times_us
        .iter()
        .map(|&us| Duration::from_micros(u64::from(us)))
        .collect();
    times.sort_unstable();
    if let Some(max) = times.last() {
        writeln!(
            w,
            "fleetsh: per-host time: p50 {:.3}s, p90 {:.3}s, p99 {:.3}s, max {:.3}s",
            percentile(&times, 50).as_secs_f64(),
            percentile(&times, 90).as_secs_f64(),
            percentile(&times, 99).as_secs_f64(),
            max.as_secs_f64()
        )?;
    }
    let slow: Vec<String> = tally
        .slowest
        .iter()
        .map(|&(total, index)| {
            let name = names.get(index).map_or("?", String::as_str);
            format!("{name} {:.3}s", total.as_secs_f64())
        })
        .collect();
    if !slow.is_empty() {
        writeln!(w, "fleetsh: slowest: {}", slow.join(", "))?;
    }

    // Failing hosts, folded, per outcome (in the outcomes' order), each list in host order.
    for (outcome, indices) in &tally.failing {
        let mut indices = indices.clone();
        indices.sort_unstable();
        let hosts: Vec<&str> = indices
            .iter()
            .map(|&i| names.get(i).map_or("?", String::as_str))
            .collect();
        writeln!(
            w,
            "fleetsh: {} ({}): {}",
            outcome_name(outcome),
            hosts.len(),
            folded_list(&hosts, MAX_LIST)
        )?;
    }
    Ok(())
}

/// `SIGTERM` for 15.
pub fn signal_name(n: i32) -> String {
    match n {
        1 => "SIGHUP".into(),
        2 => "SIGINT".into(),
        15 => "SIGTERM".into(),
        n => format!("signal {n}"),
    }
}

/// The nearest-rank `p`th percentile of sorted, non-empty `times`.
pub fn percentile(times: &[Duration], p: usize) -> Duration {
    let rank = (times.len() * p).div_ceil(100).max(1);
    times
        .get(rank - 1)
        .or(times.last())
        .copied()
        .unwrap_or_default()
}

/// `hosts` folded; past `max` characters, cut after a whole item with `and N more`.
pub fn folded_list(hosts: &[&str], max: usize) -> String {
    let items = fold_items(hosts);
    let total: usize = items.iter().map(|i| i.count).sum();
    let mut out = String::new();
    let mut shown = 0;
    for item in &items {
        if !out.is_empty() && out.len() + item.spec.len() + 1 > max {
            out.push_str(&format!(" and {} more", total - shown));
            break;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&item.spec);
        shown += item.count;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let t: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&t, 50), Duration::from_millis(50));
        assert_eq!(percentile(&t, 90), Duration::from_millis(90));
        assert_eq!(percentile(&t, 99), Duration::from_millis(99));
        let one = [Duration::from_secs(2)];
        assert_eq!(percentile(&one, 50), Duration::from_secs(2));
        assert_eq!(percentile(&one, 99), Duration::from_secs(2));
        let three: Vec<Duration> = (1..=3).map(Duration::from_secs).collect();
        assert_eq!(percentile(&three, 50), Duration::from_secs(2));
        assert_eq!(percentile(&three, 90), Duration::from_secs(3));
    }

    #[test]
    fn long_lists_are_cut_at_an_item() {
        // Hosts that do not fold together: one item each.
        let hosts: Vec<String> = (0..100).map(|i| format!("n{i}-{i}")).collect();
        let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
        assert_eq!(folded_list(&hosts[..3], 100), "n0-0,n1-1,n2-2");
        let cut = folded_list(&hosts, 20);
        assert_eq!(cut, "n0-0,n1-1,n2-2,n3-3 and 96 more");
        let hosts = ["web1", "web2", "web3", "web5"];
        assert_eq!(
            folded_list(&hosts, 5),
            "web[1-3,5]",
            "one item is never cut"
        );
    }
}
