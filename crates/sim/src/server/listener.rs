//! An accept loop: a host's own listener, or the one socket every host shares, whose
//! connections go to the host whose address they arrived on ([`Route`]). Each connection is
//! counted for its host, closed at once on a `refuse` host, kept open and quiet on a
//! `silent` host, and otherwise served as an SSH connection ([`serve_connection`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

use super::connection::serve_connection;
use super::host::{Host, HostCounters, Lifeline, Shared};
use crate::Fault;

/// Which host a listener's connections are for.
#[derive(Debug)]
pub(crate) enum Route {
    /// A host's own listener: every connection is that host's.
    Host(Arc<Host>),
    /// The one socket every host shares: a connection is for the host whose address (and
    /// port) it arrived on, by the fleet's [`Directory`](crate::tunnel::Directory); one that
    /// arrived anywhere else is reset at once and counted in `turned_away`.
    Fleet {
        /// Host `i`, as indexed by the directory.
        hosts: Arc<[Arc<Host>]>,
        /// Connections reset because they arrived on no host's address.
        turned_away: Arc<AtomicU64>,
    },
}

impl Route {
    /// The host `stream` is for (`None`: no host of the fleet).
    fn host_of(&self, stream: &TcpStream, shared: &Shared) -> Option<Arc<Host>> {
        match self {
            Route::Host(host) => Some(host.clone()),
            Route::Fleet { hosts, .. } => {
                let SocketAddr::V4(local) = stream.local_addr().ok()? else {
                    return None;
                };
                let index = shared.directory.get()?.index_of_addr(local)?;
                hosts.get(index).cloned()
            }
        }
    }

    /// What the accept loop's log lines name.
    fn label(&self) -> &str {
        match self {
            Route::Host(host) => &host.shell.name,
            Route::Fleet { .. } => "every host",
        }
    }
}

/// Counts its connection as closed when dropped (at the end of the connection's task).
struct Open(Arc<HostCounters>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.closed.fetch_add(1, Ordering::Relaxed);
    }
}

/// Accepts connections on one listener until the fleet stops.
///
/// russh's `run_on_socket` returns on the first `accept()` error (EMFILE included); a fleet
/// must outlive such bursts, so this loop logs, pauses 10 ms and goes on.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    route: Route,
    shared: Arc<Shared>,
    mut lifeline: Lifeline,
) {
    loop {
        let accepted = tokio::select! {
            () = lifeline.stopping() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => match route.host_of(&stream, &shared) {
                Some(host) => serve_accepted(stream, peer, host, &shared, &lifeline),
                None => {
                    if let Route::Fleet { turned_away, .. } = &route {
                        turned_away.fetch_add(1, Ordering::Relaxed);
                    }
                    turn_away(stream, peer);
                }
            },
            Err(e) => {
                tracing::warn!(
                    host = route.label(),
                    addr = ?listener.local_addr().ok(),
                    "accept failed: {e}; retrying in 10 ms"
                );
                tokio::select! {
                    () = lifeline.stopping() => return,
                    () = tokio::time::sleep(Duration::from_millis(10)) => {}
                }
            }
        }
    }
}

/// Counts a connection for `host` and serves it as the host's fault says.
fn serve_accepted(
    stream: TcpStream,
    peer: SocketAddr,
    host: Arc<Host>,
    shared: &Arc<Shared>,
    lifeline: &Lifeline,
) {
    host.counters.accepted.fetch_add(1, Ordering::Relaxed);
    let open = Open(host.counters.clone());
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(host = %host.shell.name, %peer, "set_nodelay failed: {e}");
    }
    match host.behaviour.fault {
        // Closed before a single byte is sent.
        Some(Fault::Refuse) => drop((stream, open)),
        Some(Fault::Silent) => {
            let lifeline = lifeline.clone();
            tokio::spawn(async move {
                silent(stream, lifeline).await;
                drop(open);
            });
        }
        _ => {
            let served = serve_connection(host, shared.clone(), stream, lifeline.clone());
            tokio::spawn(async move {
                served.await;
                drop(open);
            });
        }
    }
}

/// Closes a connection that arrived on no host's address at once, with a reset
/// (`SO_LINGER` 0) and without sending a byte, as near as an accepted connection gets to
/// the refusal of a port nobody listens on.
fn turn_away(stream: TcpStream, peer: SocketAddr) {
    let local = stream.local_addr().ok();
    tracing::debug!(%peer, ?local, "connection on an address outside the fleet: reset");
    if let Err(e) = stream.set_zero_linger() {
        tracing::debug!(%peer, "cannot set SO_LINGER 0; closing without it: {e}");
    }
    drop(stream);
}

/// A `silent` host's connection: never writes; reads and discards until the client closes
/// the connection or the fleet stops.
async fn silent(mut stream: TcpStream, mut lifeline: Lifeline) {
    let mut buf = vec![0u8; 1024];
    loop {
        tokio::select! {
            () = lifeline.stopping() => return,
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
        }
    }
}
