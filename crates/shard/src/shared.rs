//! State shared by every shard (and every batch) of one run: the failure count behind max-fail
//! and the connection-rate limiter.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fleetsh_core::{ErrorKind, HostResult};
use parking_lot::Mutex;

/// Bytes of upload data copied into SFTP write requests and not yet acknowledged, across all
/// hosts of a run: each host has up to `sftp::WINDOW × sftp::CHUNK` (2 MiB) in flight, so
/// without this bound a large file sent to 1,000 hosts at once would hold 2 GiB of copies.
pub const UPLOAD_BUDGET_BYTES: usize = 256 * 1024 * 1024;

/// Shared by all shards of a run.
#[derive(Debug)]
pub struct RunShared {
    failures: AtomicUsize,
    max_fail: Option<usize>,
    rate: Option<RateLimiter>,
    upload_budget: tokio::sync::Semaphore,
}

impl RunShared {
    /// `max_fail`: the most failed hosts tolerated (more trips the threshold); `rate`: new
    /// connections per second.
    pub fn new(max_fail: Option<usize>, rate: Option<f64>) -> Self {
        RunShared {
            failures: AtomicUsize::new(0),
            max_fail,
            rate: rate.map(RateLimiter::new),
            upload_budget: tokio::sync::Semaphore::new(UPLOAD_BUDGET_BYTES),
        }
    }

    /// Room for upload data in flight (see [`UPLOAD_BUDGET_BYTES`]); one permit per byte.
    pub fn upload_budget(&self) -> &tokio::sync::Semaphore {
        &self.upload_budget
    }

    /// Counts `r` if it is a failure (an error other than cancelled/skipped, a non-zero exit,
    /// or a signal).
    pub fn record(&self, r: &HostResult) {
        let counts = match &r.error {
            Some(e) => !matches!(e.kind, ErrorKind::Cancelled | ErrorKind::Skipped),
            None => !r.is_ok(),
        };
        if counts {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Failed hosts so far.
    pub fn failures(&self) -> usize {
        self.failures.load(Ordering::Relaxed)
    }

    /// The max-fail threshold, if any.
    pub fn max_fail(&self) -> Option<usize> {
        self.max_fail
    }

    /// Whether more hosts than the threshold have failed: no new host may start.
    pub fn tripped(&self) -> bool {
        self.max_fail.is_some_and(|m| self.failures() > m)
    }

    /// The rate limiter, if any.
    pub fn rate(&self) -> Option<&RateLimiter> {
        self.rate.as_ref()
    }
}

/// Spaces connection attempts evenly across all shards: at most `rate` per second.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// A limiter for `per_second` attempts per second (must be positive and finite).
    pub fn new(per_second: f64) -> Self {
        RateLimiter {
            interval: Duration::from_secs_f64(1.0 / per_second.max(1e-6)),
            next: Mutex::new(None),
        }
    }

    /// Reserves the next slot and returns when it starts (now or later).
    pub fn reserve(&self) -> Instant {
        let now = Instant::now();
        let mut next = self.next.lock();
        let slot = match *next {
            Some(n) if n > now => n,
            _ => now,
        };
        *next = Some(slot + self.interval);
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetsh_core::{HostError, HostTarget};

    #[test]
    fn rate_limiter_spaces_slots() {
        let rl = RateLimiter::new(10.0);
        let a = rl.reserve();
        let b = rl.reserve();
        let c = rl.reserve();
        assert_eq!(b - a, Duration::from_millis(100));
        assert_eq!(c - b, Duration::from_millis(100));
    }

    #[test]
    fn failures_trip_the_threshold_after_passing_it() {
        let s = RunShared::new(Some(1), None);
        let t = HostTarget::new("h");
        let mut ok = HostResult::failed(0, t.clone(), HostError::new(ErrorKind::Auth, "x"));
        ok.error = None;
        ok.exit_code = Some(0);
        s.record(&ok);
        assert_eq!(s.failures(), 0);
        s.record(&HostResult::failed(
            0,
            t.clone(),
            HostError::new(ErrorKind::Cancelled, "x"),
        ));
        assert_eq!(s.failures(), 0, "cancelled hosts are not failures");
        let mut bad = ok.clone();
        bad.exit_code = Some(2);
        s.record(&bad);
        assert!(!s.tripped(), "1 failure does not pass a threshold of 1");
        s.record(&HostResult::failed(
            0,
            t,
            HostError::new(ErrorKind::Auth, "x"),
        ));
        assert!(s.tripped());
    }
}
