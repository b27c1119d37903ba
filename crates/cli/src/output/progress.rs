//! The progress bar on stderr (indicatif): hosts done of the total, ok and failed counts, rate
//! and ETA. Shown only when stderr is a terminal and `--no-progress` is not given.
//!
//! It never cuts a line of output: the printer writes everything that reaches the terminal
//! inside [`Progress::suspend`], which clears the bar, writes, and draws it again.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use fleetsh::HostResult;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
    ok: Arc<AtomicUsize>,
    /// Files and bytes moved so far (file transfers).
    moved: Arc<(AtomicU64, AtomicU64)>,
}

impl Progress {
    pub fn new(total: usize) -> Self {
        Self::with_target(total, ProgressDrawTarget::stderr())
    }

    fn with_target(total: usize, target: ProgressDrawTarget) -> Self {
        let ok = Arc::new(AtomicUsize::new(0));
        let ok_seen = ok.clone();
        let moved = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let moved_seen = moved.clone();
        let status = move |s: &ProgressState, w: &mut dyn fmt::Write| {
            let done = usize::try_from(s.pos()).unwrap_or(usize::MAX);
            let ok = ok_seen.load(Ordering::Relaxed);
            let _ = w.write_str(&message(done, total, ok, s.elapsed()));
            let files = moved_seen.0.load(Ordering::Relaxed);
            let bytes = moved_seen.1.load(Ordering::Relaxed);
            if files > 0 || bytes > 0 {
                let _ = w.write_str(&moved_message(files, bytes, s.elapsed()));
            }
        };
        let style = ProgressStyle::with_template("{bar:25} {status}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key("status", status)
            .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(Some(total as u64), target);
        bar.set_style(style);
        // Redraws (elapsed time, rate, ETA) while no host finishes.
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar, ok, moved }
    }

    /// Counts files and bytes a transfer moved.
    pub fn transferred(&self, files: u64, bytes: u64) {
        self.moved.0.fetch_add(files, Ordering::Relaxed);
        self.moved.1.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts a finished host.
    pub fn record(&self, r: &HostResult) {
        if r.is_ok() {
            self.ok.fetch_add(1, Ordering::Relaxed);
        }
        self.bar.inc(1);
    }

    /// Runs `f` (which writes to the terminal) with the bar cleared, then draws it again.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Removes the bar before the summary.
    pub fn finish(self) {
        drop(self);
    }
}

impl Drop for Progress {
    /// Also on an early return (a broken pipe): the bar never stays on the screen.
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// What transfers moved: `; 240 files, 120.0 MiB (40.0 MiB/s)`.
pub fn moved_message(files: u64, bytes: u64, elapsed: Duration) -> String {
    let mib = bytes as f64 / (1024.0 * 1024.0);
    format!(
        "; {files} files, {mib:.1} MiB ({:.1} MiB/s)",
        mib / elapsed.as_secs_f64().max(1e-3)
    )
}

/// The text next to the bar: `120/1000 hosts, 118 ok, 2 failed, 40 hosts/s, eta 22s`.
pub fn message(done: usize, total: usize, ok: usize, elapsed: Duration) -> String {
    let failed = done.saturating_sub(ok);
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let eta = if done >= total {
        "0s".to_string()
    } else if rate > 0.0 {
        short_duration((total - done) as f64 / rate)
    } else {
        "?".to_string()
    };
    let precision = usize::from(rate < 10.0);
    format!("{done}/{total} hosts, {ok} ok, {failed} failed, {rate:.precision$} hosts/s, eta {eta}")
}

/// `42s`, `3m05s`, `2h07m`.
fn short_duration(secs: f64) -> String {
    let s = secs.ceil().min(1e9) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_counts_rate_and_eta() {
        assert_eq!(
            message(120, 1000, 118, Duration::from_secs(3)),
            "120/1000 hosts, 118 ok, 2 failed, 40 hosts/s, eta 22s"
        );
        assert_eq!(
            message(0, 10, 0, Duration::ZERO),
            "0/10 hosts, 0 ok, 0 failed, 0.0 hosts/s, eta ?"
        );
        assert_eq!(
            message(10, 10, 7, Duration::from_millis(500)),
            "10/10 hosts, 7 ok, 3 failed, 20 hosts/s, eta 0s"
        );
        assert_eq!(
            message(1, 10_000, 1, Duration::from_secs(2)),
            "1/10000 hosts, 1 ok, 0 failed, 0.5 hosts/s, eta 5h33m"
        );
    }

    #[test]
    fn moved_message_has_files_bytes_and_rate() {
        assert_eq!(
            moved_message(3, 4 * 1024 * 1024, Duration::from_secs(2)),
            "; 3 files, 4.0 MiB (2.0 MiB/s)"
        );
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(short_duration(0.2), "1s");
        assert_eq!(short_duration(59.0), "59s");
        assert_eq!(short_duration(185.0), "3m05s");
        assert_eq!(short_duration(7620.0), "2h07m");
    }

    #[test]
    fn a_hidden_bar_still_counts() {
        // Drawn nowhere (as when stderr is not a terminal), counting and suspend still work.
        let p = Progress::with_target(2, ProgressDrawTarget::hidden());
        let mut r = HostResult::failed(
            0,
            fleetsh::HostTarget::new("h"),
            fleetsh::HostError::new(fleetsh::ErrorKind::Auth, ""),
        );
        p.record(&r);
        r.error = None;
        r.exit_code = Some(0);
        p.record(&r);
        assert_eq!(p.ok.load(Ordering::Relaxed), 1);
        assert_eq!(p.bar.position(), 2);
        assert_eq!(p.suspend(|| 7), 7);
        p.finish();
    }
}
