//! Process limits that decide how many hosts can be in flight.

use crate::Error;

/// File descriptors the process needs besides one per host in flight (stdio, runtime, files).
pub const FD_RESERVE: u64 = 64;

/// Raises the open-files soft limit to the hard limit and returns the new soft limit.
pub fn raise_nofile_limit() -> Result<u64, Error> {
    let (soft, hard) = rlimit::Resource::NOFILE.get().map_err(Error::Limit)?;
    if soft < hard {
        rlimit::Resource::NOFILE
            .set(hard, hard)
            .map_err(Error::Limit)?;
        return Ok(hard);
    }
    Ok(soft)
}

/// The largest fanout that fits in `limit` open files when `other` descriptors are needed
/// elsewhere (e.g. an in-process simulated fleet's listeners).
pub fn max_fanout(limit: u64, other: u64) -> usize {
    usize::try_from(limit.saturating_sub(other + FD_RESERVE)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raise_returns_at_least_the_old_soft_limit() {
        let (soft, _) = rlimit::Resource::NOFILE.get().unwrap();
        assert!(raise_nofile_limit().unwrap() >= soft);
    }

    #[test]
    fn max_fanout_keeps_a_reserve() {
        assert_eq!(max_fanout(1000, 100), 836);
        assert_eq!(max_fanout(10, 100), 0);
    }
}

/// The process's peak resident set size in bytes (Linux `VmHWM`), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// CPU time (user + system) this process has used so far, from `/proc/self/stat` (in
/// USER_HZ ticks, 100 per second on Linux's user ABI: 10 ms resolution).
pub fn cpu_time() -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5), i.e. 11 and 12 after the name.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(std::time::Duration::from_millis((utime + stime) * 10))
}

#[cfg(test)]
mod rss_tests {
    #[test]
    fn cpu_time_grows_with_work() {
        let a = super::cpu_time().unwrap();
        let mut x = 0u64;
        let t = std::time::Instant::now();
        while t.elapsed() < std::time::Duration::from_millis(60) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let b = super::cpu_time().unwrap();
        assert!(b > a, "{a:?} {b:?}");
    }

    #[test]
    fn peak_rss_is_known_on_linux() {
        let rss = super::peak_rss_bytes().unwrap();
        assert!(rss > 1024 * 1024, "{rss}");
    }
}
