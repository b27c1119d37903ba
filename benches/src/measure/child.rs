//! A client in a child process over the measured interval: its CPU (that of the children this
//! process waited for), its peak RSS polled from `/proc`, and its output read line by line.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};

use super::interval::{Interval, Measured};
use super::spec::Spec;
use crate::procfs;

/// How [`run_child_client`] watches its child beyond CPU and stdout.
#[derive(Debug, Clone, Copy, Default)]
pub struct Watch {
    /// Also sample the summed RSS of the child's process tree (tools that spawn `ssh`).
    pub tree_rss: bool,
    /// Collect the child's stderr lines (still echoed to ours) instead of inheriting it.
    pub stderr: bool,
}

/// Runs `cmd` as the client over the measured interval and hands each line of its stdout
/// (decoded lossily) to `line`, which says whether the line was a host's result: the first one
/// sets the first finish. The client's CPU is the child's and that of its children it waited
/// for (the `ssh` processes of pdsh, pssh and clush); its peak RSS the child's own `VmHWM`, or
/// with `watch.tree_rss` the larger of that and the peak of its process tree's summed `VmRSS`
/// (shared pages counted in each process: an upper bound), sampled every 10 ms. Returns the
/// stderr lines when `watch.stderr`.
pub fn run_child_client(
    spec: &Spec,
    mut cmd: std::process::Command,
    threads: usize,
    watch: Watch,
    mut line: impl FnMut(&str) -> bool,
) -> Result<(Measured, std::process::ExitStatus, Vec<String>)> {
    use std::io::Write;
    use std::process::Stdio;

    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if watch.stderr {
            Stdio::piped()
        } else {
            Stdio::inherit()
        });
    let cpu0 = procfs::children_cpu_ticks()?;
    let interval = Interval::begin(spec)?;
    let t0 = interval.t0;
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    let pid = child.id();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let sample_rss = spec.sample_rss;
    let hwm = std::thread::spawn(move || {
        let mut peak = 0;
        let mut rss = Vec::new();
        while !flag.load(Ordering::Relaxed) {
            match procfs::pid_status_kib(pid, "VmHWM") {
                Some(k) => peak = peak.max(k),
                None if peak > 0 => break,
                None => {}
            }
            if watch.tree_rss {
                peak = peak.max(procfs::tree_rss_kib(pid));
            }
            if sample_rss && let Some(k) = procfs::pid_status_kib(pid, "VmRSS") {
                rss.push((t0.elapsed(), k));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        (peak, rss)
    });
    let errors = child.stderr.take().map(|e| {
        std::thread::spawn(move || {
            let mut lines = Vec::new();
            for l in lossy_lines(e) {
                let _ = writeln!(std::io::stderr(), "{l}");
                lines.push(l);
            }
            lines
        })
    });
    let stdout = child.stdout.take().context("no stdout")?;
    let mut first = None;
    for l in lossy_lines(stdout) {
        if line(&l) {
            first.get_or_insert_with(|| t0.elapsed());
        }
    }
    let status = child.wait()?;
    stop.store(true, Ordering::Relaxed);
    let (peak, rss) = hwm.join().unwrap_or_default();
    let errors = errors
        .map(|t| t.join().unwrap_or_default())
        .unwrap_or_default();
    let cpu = procfs::children_cpu_ticks()?.saturating_sub(cpu0);
    let mut m = interval.end(threads, Duration::ZERO, Vec::new(), first)?;
    // This process only waited; the client's CPU is the child's.
    m.cpu_ticks = cpu;
    m.peak_rss_kib = Some(peak);
    // RSS before the run: the child's first sample (its start-up, before any session).
    m.rss = spec
        .sample_rss
        .then(|| (rss.first().map_or(0, |&(_, k)| k), rss));
    Ok((m, status, errors))
}

/// The lines of `r`, each decoded lossily (a client's output need not be UTF-8), until the end
/// or a read error.
fn lossy_lines(r: impl std::io::Read) -> impl Iterator<Item = String> {
    use std::io::BufRead;
    let mut r = std::io::BufReader::new(r);
    std::iter::from_fn(move || {
        let mut buf = Vec::new();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    buf.pop();
                }
                Some(String::from_utf8_lossy(&buf).into_owned())
            }
        }
    })
}
