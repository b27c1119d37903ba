//! SIGINT, SIGTERM and SIGHUP: the first one cancels the run (no new host starts, hosts in
//! flight end `cancelled` with their output kept and their remote command sent SIGTERM, and the
//! run ends with its summary and exit status 128 + the signal's number); a second one exits at
//! once with that status.
//!
//! The watcher starts before the run is set up, so a signal that arrives while the engine is
//! being built still ends every host as `cancelled` (and none starts).

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use std::sync::Mutex;

/// The signals a run ends on, with their names.
const SIGNALS: [(i32, &str); 3] = [(2, "SIGINT"), (15, "SIGTERM"), (1, "SIGHUP")];

/// What the signal watcher shares with the run.
#[derive(Clone, Default)]
pub struct Signals {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The first signal's number, 0 before any.
    first: AtomicI32,
    /// The run to cancel, once it exists.
    canceller: Mutex<Option<fleetsh::Canceller>>,
}

impl Signals {
    /// Starts watching SIGINT, SIGTERM and SIGHUP on a thread of its own. Without the thread
    /// (it cannot start), the signals keep their default action, with a warning.
    pub fn watch() -> Self {
        let signals = Signals::default();
        let inner = signals.inner.clone();
        let spawned = std::thread::Builder::new()
            .name("fleetsh-signals".into())
            .spawn(move || watcher(&inner));
        if let Err(e) = spawned {
            tracing::warn!("cannot watch for signals: {e}");
        }
        signals
    }

    /// The run to cancel on a signal; cancelled at once if a signal came first.
    pub fn attach(&self, c: fleetsh::Canceller) {
        let mut slot = self
            .inner
            .canceller
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.received().is_some() {
            c.cancel();
        }
        *slot = Some(c);
    }

    /// The number of the first signal received, if any.
    pub fn received(&self) -> Option<i32> {
        match self.inner.first.load(Ordering::SeqCst) {
            0 => None,
            n => Some(n),
        }
    }
}

fn watcher(inner: &Inner) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        tracing::warn!("cannot watch for signals: no runtime");
        return;
    };
    rt.block_on(async {
        let mut streams = Vec::new();
        for (n, name) in SIGNALS {
            match signal(SignalKind::from_raw(n)) {
                Ok(s) => streams.push((n, name, s)),
                Err(e) => tracing::warn!("cannot watch for {name}: {e}"),
            }
        }
        let [(n0, m0, mut s0), (n1, m1, mut s1), (n2, m2, mut s2)] = match <[_; 3]>::try_from(streams) {
            Ok(a) => a,
            Err(_) => return,
        };
        loop {
            let (n, name) = tokio::select! {
                Some(()) = s0.recv() => (n0, m0),
                Some(()) = s1.recv() => (n1, m1),
                Some(()) = s2.recv() => (n2, m2),
                else => return,
            };
            if inner
                .first
                .compare_exchange(0, n, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                eprintln!("fleetsh: {name} again; exiting at once");
                std::process::exit(128 + inner.first.load(Ordering::SeqCst));
            }
            let again = if n == 2 {
                "press Ctrl-C again"
            } else {
                "send it again"
            };
            eprintln!(
                "fleetsh: {name} received; cancelling: no new host starts, hosts in flight end cancelled ({again} to exit at once)"
            );
            if let Some(c) = inner
                .canceller
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_ref()
            {
                c.cancel();
            }
        }
    });
}
