//! Process accounting from `/proc` (no `unsafe`, no libc): CPU ticks, resident memory, machine
//! facts.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// User + system CPU of a process (all its threads, exited ones included), in clock ticks.
pub fn cpu_ticks(pid: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat_cpu(&text).with_context(|| format!("parsing {path}"))
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line. The command name (field 2)
/// is in parentheses and may contain spaces, so fields are counted after the last `)`.
fn parse_stat_cpu(text: &str) -> Result<u64> {
    let Some((_, rest)) = text.rsplit_once(')') else {
        bail!("no ')' in stat line");
    };
    // `rest` starts at field 3 (state): field n is token n - 3.
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next().context("no utime")?.parse()?;
    let stime: u64 = fields.next().context("no stime")?.parse()?;
    Ok(utime + stime)
}

/// User + system CPU of a process and of its children it has waited for (`utime + stime +
/// cutime + cstime`), in clock ticks: a server that forks per connection (OpenSSH's `sshd`)
/// counts its reaped sessions.
pub fn cpu_ticks_with_children(pid: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let Some((_, rest)) = text.rsplit_once(')') else {
        bail!("no ')' in {path}");
    };
    rest.split_ascii_whitespace()
        .skip(11)
        .take(4)
        .map(|f| f.parse::<u64>().with_context(|| format!("parsing {path}")))
        .sum()
}

/// User + system CPU of this process's children that have been waited for (`cutime + cstime`,
/// fields 16 and 17 of `/proc/self/stat`; grandchildren count once their parent waited for
/// them), in clock ticks.
pub fn children_cpu_ticks() -> Result<u64> {
    let text = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    let Some((_, rest)) = text.rsplit_once(')') else {
        bail!("no ')' in stat line");
    };
    let mut fields = rest.split_ascii_whitespace().skip(13);
    let cutime: u64 = fields.next().context("no cutime")?.parse()?;
    let cstime: u64 = fields.next().context("no cstime")?.parse()?;
    Ok(cutime + cstime)
}

/// Machine-wide CPU time from the first line of `/proc/stat`, in clock ticks: `(busy, steal)`,
/// where busy is everything but idle, iowait and steal.
pub fn machine_ticks() -> Result<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_machine_ticks(&text).context("parsing /proc/stat")
}

fn parse_machine_ticks(text: &str) -> Result<(u64, u64)> {
    let line = text.lines().next().context("empty")?;
    let v: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    let busy = get(0) + get(1) + get(2) + get(5) + get(6);
    Ok((busy, get(7)))
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux unless the kernel says otherwise).
pub fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t: &u64| t > 0)
        .unwrap_or(100)
}

/// A `kB` line of `/proc/self/status` (`VmRSS`, `VmHWM`), in KiB.
pub fn status_kib(field: &str) -> Result<u64> {
    let text = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    parse_status_kib(&text, field).with_context(|| format!("no {field} in /proc/self/status"))
}

/// A `kB` line of `/proc/<pid>/status`, in KiB (none once the process has exited).
pub fn pid_status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&text, field)
}

/// The resident memory of `pid` and all its descendants, in KiB (0 once it has exited): the
/// children come from `/proc/PID/task/TID/children`. Bounded to 100,000 processes.
pub fn tree_rss_kib(pid: u32) -> u64 {
    let mut total = 0;
    let mut todo = vec![pid];
    let mut seen = 0;
    while let Some(p) = todo.pop() {
        seen += 1;
        if seen > 100_000 {
            break;
        }
        total += pid_status_kib(p, "VmRSS").unwrap_or(0);
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
                todo.extend(
                    text.split_ascii_whitespace()
                        .filter_map(|c| c.parse::<u32>().ok()),
                );
            }
        }
    }
    total
}

fn parse_status_kib(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_ascii_whitespace().next()?.parse().ok()
    })
}

/// The CPU model (first `model name` of `/proc/cpuinfo`).
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The 1, 5 and 15-minute load averages.
pub fn loadavg() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text
        .split_ascii_whitespace()
        .map(|v| v.parse().unwrap_or(f64::NAN));
    [
        it.next().unwrap_or(f64::NAN),
        it.next().unwrap_or(f64::NAN),
        it.next().unwrap_or(f64::NAN),
    ]
}

/// Logical CPUs this process may run on.
pub fn nproc() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The hard open-files limit (from `/proc/self/limits`).
pub fn nofile_hard_limit() -> Option<u64> {
    let text = std::fs::read_to_string(Path::new("/proc/self/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let mut it = line
        .trim_start_matches("Max open files")
        .split_ascii_whitespace();
    let _soft = it.next()?;
    it.next()?.parse().ok()
}

/// Now, as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    fleetsh::clock::utc_text(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_counts_fields_after_the_command_name() {
        let line = "4242 (a b) c) S 1 2 3 4 5 6 7 8 9 10 123 45 0 0 20 0 3 0";
        assert_eq!(parse_stat_cpu(line).ok(), Some(168));
    }

    #[test]
    fn machine_ticks_leave_out_idle_iowait_and_steal() {
        let text = "cpu  10 1 5 1000 7 2 3 4 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(parse_machine_ticks(text).ok(), Some((21, 4)));
    }

    #[test]
    fn status_fields_are_read_in_kib() {
        let text = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(parse_status_kib(text, "VmRSS"), Some(1024));
        assert_eq!(parse_status_kib(text, "VmHWM"), Some(2048));
        assert_eq!(parse_status_kib(text, "VmSwap"), None);
    }

    #[test]
    fn own_process_is_readable() {
        assert!(cpu_ticks("self").is_ok());
        assert!(status_kib("VmRSS").is_ok_and(|k| k > 0));
        assert!(clock_ticks_per_second() > 0);
    }

    #[test]
    fn dates_are_civil() {
        let s = utc_now();
        assert!(s.starts_with("20") && s.ends_with(" UTC"), "{s}");
    }
}
