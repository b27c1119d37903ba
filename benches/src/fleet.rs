//! The simulated fleet, in separate processes: `fleetsh sim` started, awaited and stopped by PID.
//!
//! Each sim serves its hosts from one listening socket (`--listen one-socket`), so a fleet needs
//! one descriptor per connection it serves; when that does not fit one process's open-files
//! limit (more sessions held open at once than the limit), the fleet is split over several
//! `fleetsh sim` processes on disjoint loopback ranges. Their `hosts` and
//! `known_hosts` files are merged into one state directory for the client; every sim uses the
//! same seed, so one client key fits all.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Descriptors a sim keeps besides its listening socket and connections.
const SIM_FD_RESERVE: u64 = 256;
/// How long a sim may take to bind its listeners and report `ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a sim may take to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Running sim processes and the merged client state.
#[derive(Debug)]
pub struct Fleet {
    sims: Vec<Child>,
    dir: tempfile::TempDir,
}

/// How many sim processes `hosts` hosts with `in_flight` concurrent sessions need under an
/// open-files limit of `limit`.
pub fn processes_needed(hosts: usize, in_flight: usize, limit: u64) -> usize {
    (1..=64)
        .find(|&s| {
            let per = hosts.div_ceil(s) as u64;
            1 + per.min(in_flight as u64) + SIM_FD_RESERVE <= limit
        })
        .unwrap_or(64)
}

impl Fleet {
    /// Starts `processes` sims sharing `hosts` hosts, each with `threads` server threads, and
    /// waits for each to print `ready N`.
    /// `latency` (ms) is passed to `fleetsh sim --latency` when set.
    pub fn start(
        fleetsh: &Path,
        hosts: usize,
        processes: usize,
        threads: usize,
        latency: Option<u64>,
    ) -> Result<Fleet> {
        let dir = tempfile::Builder::new()
            .prefix("fleetsh-bench-")
            .tempdir()
            .context("creating the state directory")?;
        let mut fleet = Fleet {
            sims: Vec::new(),
            dir,
        };
        let per = hosts.div_ceil(processes.max(1));
        let mut left = hosts;
        let mut i = 0u8;
        while left > 0 {
            let count = per.min(left);
            left -= count;
            // 127.77.0.1, 127.78.0.1, ...: away from the sim's default 127.1.0.1 that other
            // runs on this machine may use.
            let base = format!("127.{}.0.1", 77u8.saturating_add(i));
            let state = fleet.dir.path().join(format!("sim{i}"));
            let log = std::fs::File::create(fleet.dir.path().join(format!("sim{i}.log")))?;
            let mut cmd = Command::new(fleetsh);
            cmd.args(["sim", "--count", &count.to_string(), "--port", "0"])
                .args(["--listen", "one-socket"]);
            if let Some(ms) = latency {
                cmd.args(["--latency", &ms.to_string()]);
            }
            let mut child = cmd
                .arg("--addr-base")
                .arg(&base)
                .arg("--state-dir")
                .arg(&state)
                .args(["--threads", &threads.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(log)
                .spawn()
                .with_context(|| format!("starting {}", fleetsh.display()))?;
            let stdout = child.stdout.take();
            fleet.sims.push(child);
            let Some(stdout) = stdout else {
                bail!("sim {i}: no stdout");
            };
            wait_ready(stdout, count).with_context(|| {
                format!(
                    "sim {i} did not report ready (log: {})",
                    fleet.dir.path().join(format!("sim{i}.log")).display()
                )
            })?;
            i = i.saturating_add(1);
        }
        fleet.merge_state()?;
        Ok(fleet)
    }

    /// Concatenates every sim's `hosts` and `known_hosts` into the state directory's root.
    fn merge_state(&self) -> Result<()> {
        let root = self.dir.path();
        let mut hosts = std::fs::File::create(root.join("hosts"))?;
        let mut known = std::fs::File::create(root.join("known_hosts"))?;
        for i in 0..self.sims.len() {
            let state = root.join(format!("sim{i}"));
            hosts.write_all(&std::fs::read(state.join("hosts"))?)?;
            known.write_all(&std::fs::read(state.join("known_hosts"))?)?;
        }
        Ok(())
    }

    /// The merged hosts file (host order: sim 0's hosts, then sim 1's, ...).
    pub fn hosts_file(&self) -> PathBuf {
        self.dir.path().join("hosts")
    }

    /// The merged known_hosts file.
    pub fn known_hosts_file(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// The client key every sim accepts.
    pub fn identity_file(&self) -> PathBuf {
        self.dir.path().join("sim0").join("id_ed25519")
    }

    /// The sims' PIDs.
    pub fn pids(&self) -> Vec<u32> {
        self.sims.iter().map(Child::id).collect()
    }

    /// Number of sim processes.
    pub fn processes(&self) -> usize {
        self.sims.len()
    }

    /// Stops every sim: SIGTERM by PID, then SIGKILL after a grace period.
    pub fn stop(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        for child in &self.sims {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        for child in &mut self.sims {
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        eprintln!(
                            "fleetsh-bench: sim {} ignored SIGTERM; killing it",
                            child.id()
                        );
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        self.sims.clear();
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Reads the sim's stdout until `ready N` (N must be `count`), within [`READY_TIMEOUT`]. The
/// reader thread ends when the sim closes its stdout (at exit).
fn wait_ready(stdout: std::process::ChildStdout, count: usize) -> Result<()> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(n) = line.strip_prefix("ready ") {
                    if n.trim() == count.to_string() {
                        return Ok(());
                    }
                    bail!("sim reported {line:?}, expected ready {count}");
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => bail!("no `ready` within {READY_TIMEOUT:?}"),
            Err(mpsc::RecvTimeoutError::Disconnected) => bail!("sim exited before `ready`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_only_when_the_fd_limit_requires_it() {
        assert_eq!(processes_needed(10_000, 1_000, 20_000), 1);
        // One listening socket each: the sessions decide.
        assert_eq!(processes_needed(10_000, 10_000, 20_000), 1);
        assert_eq!(processes_needed(200_000, 4_000, 20_000), 1);
        assert_eq!(processes_needed(100_000, 30_000, 20_000), 6);
        assert_eq!(processes_needed(200, 200, 1_024), 1);
    }
}
