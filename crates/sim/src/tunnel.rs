//! Bastion hosts: `direct-tcpip` channels to the fleet's own hosts, piped to real TCP
//! connections.
//!
//! Every host accepts `direct-tcpip` (what `ssh -J` and `ProxyJump` open) when the
//! destination is one of the fleet's listeners, named by IP literal or host name, and
//! refuses anything else without connecting. An accepted channel is piped both ways to a
//! new TCP connection to that listener, so the target host sees an ordinary client.
//!
//! # Flow control
//!
//! Both directions are bounded; nothing is buffered beyond one read per direction:
//!
//! 1. **target → client**: one read of at most [`PIPE_CHUNK`] bytes from the TCP socket is
//!    sent with `ChannelWriteHalf::data_bytes`, which waits for the client's SSH window;
//!    the socket is not read meanwhile, so the target's own TCP send buffer fills and it
//!    stops writing.
//! 2. **client → target**: russh re-opens the client's window as soon as data arrives and
//!    queues it on the channel (a 100-message queue; when full, the bastion's session
//!    waits). The pipe takes one message at a time and writes it to the socket before
//!    taking the next, so what is in flight is bounded by that queue, the socket buffers
//!    and, end to end, by the target's own SSH window.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use russh::server::Msg;
use russh::{Channel, ChannelMsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::layout;

/// Largest piece read from the target's socket and sent as one channel data message.
pub(crate) const PIPE_CHUNK: usize = 32 * 1024;

/// Longest wait for the TCP connection to a target (all on loopback: a wait this long
/// means the target's accept queue is full).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The fleet's listeners, by address and by name: the only destinations a bastion
/// connects to.
#[derive(Debug)]
pub(crate) struct Directory {
    /// The port every host listens on.
    port: u16,
    /// Host index by listener address.
    by_ip: HashMap<Ipv4Addr, usize>,
    /// Listener addresses by host index.
    addrs: Vec<Ipv4Addr>,
}

/// Why a destination is refused (the text goes to the client in the channel open failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal(pub(crate) String);

impl Directory {
    /// The directory of a fleet whose host `i` listens on `addrs[i]:port`.
    pub(crate) fn new(addrs: &[Ipv4Addr], port: u16) -> Directory {
        Directory {
            port,
            by_ip: addrs.iter().enumerate().map(|(i, ip)| (*ip, i)).collect(),
            addrs: addrs.to_vec(),
        }
    }

    /// The listener `host:port` names, if it is one of the fleet's: `host` is an IPv4
    /// literal of a host or a host name (`sim00042`), `port` the fleet's port.
    pub(crate) fn resolve(&self, host: &str, port: u32) -> Result<(usize, SocketAddr), Refusal> {
        let index = match host.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => self.by_ip.get(&ip).copied(),
            Ok(IpAddr::V6(_)) => None,
            Err(_) => self.index_of_name(host),
        };
        let Some((index, ip)) = index.and_then(|i| Some((i, *self.addrs.get(i)?))) else {
            return Err(Refusal(format!(
                "fleetsh-sim: {host}:{port} is not a host of this fleet; only the fleet's own hosts are reachable"
            )));
        };
        if port != u32::from(self.port) {
            return Err(Refusal(format!(
                "fleetsh-sim: {host} listens on port {} only, not {port}",
                self.port
            )));
        }
        Ok((index, SocketAddr::V4(SocketAddrV4::new(ip, self.port))))
    }

    /// The index of the host listening at `addr`, if it is one of the fleet's (its port
    /// included).
    pub(crate) fn index_of_addr(&self, addr: SocketAddrV4) -> Option<usize> {
        if addr.port() != self.port {
            return None;
        }
        self.by_ip.get(addr.ip()).copied()
    }

    /// The index of the host named exactly `name` (`sim00001` is 0).
    fn index_of_name(&self, name: &str) -> Option<usize> {
        let number: usize = name.strip_prefix("sim")?.parse().ok()?;
        let index = number.checked_sub(1)?;
        (index < self.addrs.len() && layout::host_name(index) == name).then_some(index)
    }
}

/// Pipes an accepted `direct-tcpip` channel and the TCP connection to its target both
/// ways until both directions have ended (EOF each way) or either side is gone; see the
/// [module docs](self#flow-control) for the bounds.
pub(crate) async fn pipe(channel: Channel<Msg>, tcp: TcpStream) {
    let (mut from_client, to_client) = channel.split();
    let (mut from_target, mut to_target) = tcp.into_split();

    let upstream = async {
        // Client -> target, one message at a time.
        while let Some(msg) = from_client.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    // The next message is not taken until this one is in the socket.
                    let written = to_target.write_all(&data).await;
                    if written.is_err() {
                        return false;
                    }
                }
                ChannelMsg::Eof => {
                    let _ = to_target.shutdown().await;
                    return true;
                }
                ChannelMsg::Close => return false,
                _ => {}
            }
        }
        false
    };
    let downstream = async {
        // Target -> client, each piece waiting for window space.
        let mut buf = vec![0u8; PIPE_CHUNK];
        loop {
            match from_target.read(&mut buf).await {
                Ok(0) => return to_client.eof().await.is_ok(),
                Ok(n) => {
                    let piece = buf.get(..n).unwrap_or_default().to_vec();
                    if to_client.data_bytes(piece).await.is_err() {
                        return false;
                    }
                }
                Err(_) => return false,
            }
        }
    };
    tokio::pin!(upstream, downstream);
    // Stop as soon as either side fails; otherwise wait for both EOFs.
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        tokio::select! {
            ok = &mut upstream, if !up_done => {
                if !ok { break; }
                up_done = true;
            }
            ok = &mut downstream, if !down_done => {
                if !ok { break; }
                down_done = true;
            }
        }
    }
    let _ = to_client.close().await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn resolves_only_fleet_hosts() {
        let addrs = [Ipv4Addr::new(127, 1, 0, 1), Ipv4Addr::new(127, 1, 0, 2)];
        let dir = Directory::new(&addrs, 2222);
        let b = "127.1.0.2:2222".parse().unwrap();
        assert_eq!(dir.resolve("127.1.0.2", 2222), Ok((1, b)));
        assert_eq!(dir.resolve("sim00002", 2222), Ok((1, b)));
        assert_eq!(
            dir.resolve("sim00001", 2222),
            Ok((0, "127.1.0.1:2222".parse().unwrap()))
        );
        for (host, port) in [
            ("127.1.0.3", 2222),
            ("sim00003", 2222),
            ("sim2", 2222),
            ("sim000002", 2222),
            ("sim00000", 2222),
            ("localhost", 2222),
            ("127.0.0.1", 22),
            ("::1", 2222),
            ("example.com", 443),
            ("127.1.0.2", 22),
            ("sim00002", 2223),
        ] {
            let refused = dir.resolve(host, port).unwrap_err();
            assert!(refused.0.contains(host), "{host}:{port}: {}", refused.0);
        }
    }

    #[test]
    fn finds_hosts_by_address_and_port() {
        let addrs = [Ipv4Addr::new(127, 1, 0, 254), Ipv4Addr::new(127, 1, 1, 1)];
        let dir = Directory::new(&addrs, 2222);
        let at = |a: &str| dir.index_of_addr(a.parse().unwrap());
        assert_eq!(at("127.1.0.254:2222"), Some(0));
        assert_eq!(at("127.1.1.1:2222"), Some(1));
        for outside in [
            "127.1.0.255:2222",
            "127.1.1.0:2222",
            "127.1.1.2:2222",
            "127.0.0.1:2222",
            "10.0.0.1:2222",
            "127.1.0.254:22",
        ] {
            assert_eq!(at(outside), None, "{outside}");
        }
    }
}
