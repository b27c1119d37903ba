//! A host's accept loop: counts every connection, closes it at once on a `refuse` host,
//! keeps it open and quiet on a `silent` host, and otherwise serves it as an SSH
//! connection ([`serve_connection`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

use super::connection::serve_connection;
use super::host::{Host, HostCounters, Lifeline, Shared};
use crate::Fault;

/// Counts its connection as closed when dropped (at the end of the connection's task).
struct Open(Arc<HostCounters>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.closed.fetch_add(1, Ordering::Relaxed);
    }
}

/// Accepts connections on one host's listener until the fleet stops.
///
/// russh's `run_on_socket` returns on the first `accept()` error (EMFILE included); a fleet
/// must outlive such bursts, so this loop logs, pauses 10 ms and goes on.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    host: Arc<Host>,
    shared: Arc<Shared>,
    mut lifeline: Lifeline,
) {
    loop {
        let accepted = tokio::select! {
            () = lifeline.stopping() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
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
                        let served = serve_connection(
                            host.clone(),
                            shared.clone(),
                            stream,
                            lifeline.clone(),
                        );
                        tokio::spawn(async move {
                            served.await;
                            drop(open);
                        });
                    }
                }
            }
            Err(e) => {
                tracing::warn!(
                    host = %host.shell.name,
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
