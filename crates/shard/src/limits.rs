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

/// Descriptors open in this process now (Linux: the entries of `/proc/self/fd`), if known.
pub fn open_fds() -> Option<u64> {
    let dir = std::fs::read_dir("/proc/self/fd").ok()?;
    // The directory handle itself is one of the entries.
    Some((dir.count() as u64).saturating_sub(1))
}

/// What [`fit_fanout`] found: the open-files limit, and the hosts in flight asked for and
/// used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FanoutFit {
    /// The open-files soft limit after raising it.
    pub limit: u64,
    /// Descriptors already open in the process (0 when unknown).
    pub open: u64,
    /// Hosts in flight asked for.
    pub asked: usize,
    /// Hosts in flight that fit (at most `asked`).
    pub used: usize,
}

/// Raises the open-files soft limit to the hard one where allowed ([`raise_nofile_limit`]),
/// then the most hosts in flight, at most `asked`, that fit next to the descriptors open now
/// ([`open_fds`]), `other` more (bastion connections, descriptors another part of the
/// process will open) and [`FD_RESERVE`], with `per_host` descriptors each. The engine does
/// this when a run or a connected fleet starts; the CLI also does it for its in-process
/// simulated fleet (whose side of each connection is another descriptor per host).
pub fn fit_fanout(asked: usize, per_host: u64, other: u64) -> Result<FanoutFit, Error> {
    let limit = raise_nofile_limit()?;
    let open = open_fds().unwrap_or(0);
    let room = max_fanout(limit, open.saturating_add(other)) as u64 / per_host.max(1);
    let used = usize::try_from(room).unwrap_or(usize::MAX).min(asked);
    Ok(FanoutFit {
        limit,
        open,
        asked,
        used,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_fds_counts_a_new_file() {
        let before = open_fds().unwrap();
        let files: Vec<std::fs::File> = (0..200)
            .map(|_| std::fs::File::open("/proc/self/status").unwrap())
            .collect();
        let after = open_fds().unwrap();
        drop(files);
        // Other tests of this process open and close files meanwhile: a margin for them.
        assert!(
            after >= before + 150,
            "{before} open before, {after} with 200 more"
        );
    }

    #[test]
    fn fit_fanout_keeps_what_fits() {
        let fit = fit_fanout(10, 1, 0).unwrap();
        assert_eq!(fit.used, 10, "{fit:?}");
        let fit = fit_fanout(usize::MAX, 2, 0).unwrap();
        assert!(fit.used < usize::MAX, "{fit:?}");
        assert!(
            fit.used as u64 * 2 + fit.open + FD_RESERVE <= fit.limit,
            "{fit:?}"
        );
    }

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
