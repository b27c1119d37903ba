//! Reaching a server: the name looked up, a TCP connection with `TCP_NODELAY` and a small read
//! buffer, and the segment size of its path; and [`Progress`], how far connecting a host got.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use fleetsh_core::{ErrorKind, HostError, ServerInfo, Timings};
use tokio::net::TcpStream;

use super::readbuf::ReadBuffered;
use super::settings::UNKNOWN_PATH_SEGMENT;

/// Read buffer of a direct TCP connection (see [`tcp`]); reads at least this large (file
/// transfers) bypass it.
const READ_BUFFER: usize = 4096;

/// The step a host's connection is at (what a connect timeout names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Resolve,
    Tcp,
    Tunnel,
    Proxy,
    Handshake,
    Auth,
}

impl Phase {
    /// The step, as a connect timeout's message names it.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Phase::Resolve => "resolving the name",
            Phase::Tcp => "tcp connect",
            Phase::Proxy => "waiting for the ProxyCommand",
            Phase::Tunnel => "opening a tunnel through the jump host",
            Phase::Handshake => "ssh handshake",
            Phase::Auth => "authentication",
        }
    }
}

/// How far connecting one host got, and when: the step a connect timeout names, and the
/// timings its result reports.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    /// When the host started (timings count from here).
    pub start: Instant,
    /// The current step.
    pub phase: Phase,
    /// The timings so far.
    pub timings: Timings,
    /// The server as the key exchange showed it, once done.
    pub server: Option<ServerInfo>,
}

impl Progress {
    /// A host that starts connecting now, at step `phase`.
    pub(crate) fn new(start: Instant, phase: Phase) -> Self {
        Progress {
            start,
            phase,
            timings: Timings::default(),
            server: None,
        }
    }

    /// The byte stream to the server is there (TCP connected, tunnel or proxy ready).
    pub(crate) fn connected(&mut self) {
        self.timings.connect = Some(self.start.elapsed());
    }

    /// Time from the start to the stream being there.
    pub(crate) fn connect_time(&self) -> Duration {
        self.timings.connect.unwrap_or_default()
    }
}

/// A byte stream to a server and the TCP segment size of its path (for whether the first
/// flight of the key exchange fits in one segment).
pub(crate) struct Link<S> {
    pub stream: S,
    pub segment: usize,
}

impl<S> Link<S> {
    /// A stream whose path's segment size is not known here (a tunnel, a proxy).
    pub(crate) fn unknown_path(stream: S) -> Self {
        Link {
            stream,
            segment: UNKNOWN_PATH_SEGMENT,
        }
    }
}

/// The addresses of `host` (a literal address is used as it is, without a lookup).
pub(crate) async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, HostError> {
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    match super::resolve::lookup(host, port).await {
        Ok(v) if v.is_empty() => Err(HostError::new(
            ErrorKind::Resolve,
            format!("{host} resolves to no address"),
        )),
        Ok(v) => Ok(v),
        Err(e) => Err(HostError::new(
            ErrorKind::Resolve,
            format!("cannot resolve {host}: {e}"),
        )),
    }
}

/// A TCP connection to `host:port` (each address in turn until one answers), with
/// `TCP_NODELAY` and a read buffer.
pub(crate) async fn tcp(
    host: &str,
    port: u16,
    progress: &mut Progress,
) -> Result<Link<ReadBuffered<TcpStream>>, HostError> {
    progress.phase = Phase::Resolve;
    let addrs = resolve(host, port).await?;
    progress.phase = Phase::Tcp;
    let mut last_err = None;
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_err = Some((addr, e)),
        }
    }
    let Some(stream) = stream else {
        let msg = match last_err {
            Some((addr, e)) => format!("tcp connect to {addr}: {e}"),
            None => "no address to connect to".to_string(),
        };
        return Err(HostError::new(ErrorKind::Connect, msg));
    };
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("set_nodelay: {e}");
    }
    // The segment size this connection's peer accepts (from its SYN-ACK).
    let segment = socket2::SockRef::from(&stream)
        .tcp_mss()
        .map_or(UNKNOWN_PATH_SEGMENT, |m| m as usize);
    progress.connected();
    // russh reads each packet in two exact reads (its length, then the rest): unbuffered,
    // that was ~33 recvfrom calls per `echo` host. A small buffer takes whatever has arrived
    // in one call, and holds no memory while the session is idle (readbuf.rs).
    Ok(Link {
        stream: ReadBuffered::new(READ_BUFFER, stream),
        segment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literal_addresses_skip_the_resolver() {
        let v = resolve("127.0.0.1", 22).await.unwrap();
        assert_eq!(v, vec!["127.0.0.1:22".parse().unwrap()]);
        let v = resolve("::1", 2222).await.unwrap();
        assert_eq!(v, vec!["[::1]:2222".parse().unwrap()]);
    }
}
