//! Host name lookups that a run never waits for beyond its hosts' bounds.
//!
//! `getaddrinfo` blocks, and a lookup cannot be cancelled: against name servers that drop
//! queries it returns only after the resolver's own timeouts (tens of seconds). tokio's
//! `lookup_host` runs it on the runtime's blocking pool, and a runtime waits for its blocking
//! threads when it shuts down, so every shard (and every batch, and the process exit) waited for
//! lookups whose hosts had long been reported `connect_timeout`.
//!
//! Lookups here run on a process-wide pool of detached threads that nothing joins: a host's
//! connect timeout abandons its lookup (the answer, when it comes, is dropped), a lookup whose
//! host was abandoned before a thread took it is skipped, and the pool grows on demand up to
//! [`MAX_THREADS`] (further lookups queue, still bounded by their hosts' timeouts) and shrinks
//! when idle. Results are the same as `getaddrinfo`'s: `/etc/hosts`, NSS and `resolv.conf` as
//! the system configures them.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use tokio::sync::oneshot;

/// Most lookup threads at once.
pub(crate) const MAX_THREADS: usize = 64;

/// How long an idle lookup thread waits for work before it exits.
const IDLE: Duration = Duration::from_secs(10);

type Answer = io::Result<Vec<SocketAddr>>;

struct Lookup {
    host: String,
    port: u16,
    reply: oneshot::Sender<Answer>,
}

struct Pool {
    tx: Sender<Lookup>,
    rx: Receiver<Lookup>,
    /// Threads alive.
    threads: AtomicUsize,
    /// Threads waiting for work.
    idle: AtomicUsize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = crossbeam_channel::unbounded();
        Pool {
            tx,
            rx,
            threads: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
        }
    })
}

/// The addresses of `host` (a name) with `port`, looked up on the pool. Dropping the future
/// abandons the lookup.
pub(crate) async fn lookup(host: &str, port: u16) -> Answer {
    let p = pool();
    let (reply, answer) = oneshot::channel();
    p.tx.send(Lookup {
        host: host.to_string(),
        port,
        reply,
    })
    .map_err(|_| io::Error::other("the name lookup pool is gone"))?;
    if p.idle.load(Ordering::SeqCst) == 0 {
        grow(p);
    }
    answer
        .await
        .map_err(|_| io::Error::other("the name lookup thread stopped"))?
}

/// Starts one more thread unless the pool is at its limit (or the thread cannot start: the
/// threads alive take the queue).
fn grow(p: &'static Pool) {
    let claimed = p
        .threads
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < MAX_THREADS).then_some(n + 1)
        })
        .is_ok();
    if !claimed {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("fleetsh-resolve".into())
        .stack_size(256 * 1024)
        .spawn(move || work(p));
    if let Err(e) = spawned {
        p.threads.fetch_sub(1, Ordering::SeqCst);
        tracing::debug!("cannot start a name lookup thread: {e}");
    }
}

fn work(p: &'static Pool) {
    loop {
        p.idle.fetch_add(1, Ordering::SeqCst);
        let next = p.rx.recv_timeout(IDLE);
        p.idle.fetch_sub(1, Ordering::SeqCst);
        match next {
            Ok(job) => {
                // Its host gave up before this thread got to it: nothing to do.
                if job.reply.is_closed() {
                    continue;
                }
                let answer = (job.host.as_str(), job.port)
                    .to_socket_addrs()
                    .map(Iterator::collect);
                let _ = job.reply.send(answer);
            }
            Err(RecvTimeoutError::Timeout) => {
                // Exit unless that would leave queued work without a thread.
                p.threads.fetch_sub(1, Ordering::SeqCst);
                if p.rx.is_empty() {
                    return;
                }
                p.threads.fetch_add(1, Ordering::SeqCst);
            }
            Err(RecvTimeoutError::Disconnected) => {
                p.threads.fetch_sub(1, Ordering::SeqCst);
                return;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_names_the_system_knows() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let addrs = rt.block_on(lookup("localhost", 22)).unwrap();
        assert!(addrs.iter().all(|a| a.port() == 22 && a.ip().is_loopback()));
        assert!(!addrs.is_empty());
    }
}
