//! The crate's error type.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// Why a [`SimFleet`](crate::SimFleet) could not start.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// `count` was 0.
    #[error("bad host count {count}: a fleet needs at least one host")]
    BadCount {
        /// The count asked for.
        count: usize,
    },
    /// `threads` was 0.
    #[error("bad thread count {threads}: the sim needs at least one worker thread")]
    BadThreads {
        /// The thread count asked for.
        threads: usize,
    },
    /// `addr_base` is not a loopback address.
    #[error("address base {addr} is outside 127.0.0.0/8")]
    AddressOutsideLoopback {
        /// The address asked for.
        addr: Ipv4Addr,
    },
    /// There are not enough usable addresses between `addr_base` and 127.255.255.254.
    #[error("{count} hosts starting at {base} overflow 127.0.0.0/8")]
    AddressOverflow {
        /// The address base.
        base: Ipv4Addr,
        /// The host count.
        count: usize,
    },
    /// A listener could not be bound.
    #[error("cannot bind {addr}{}", bind_hint(source))]
    Bind {
        /// The address that could not be bound.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// With `port: 0`, no port was free on every host address after several tries.
    #[error("no port is free on all {count} host addresses after {tries} tries")]
    NoCommonPort {
        /// The host count.
        count: usize,
        /// How many ports were tried.
        tries: usize,
    },
    /// A state file (or the state directory) could not be written.
    #[error("cannot write {path}")]
    StateWrite {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A key could not be encoded.
    #[error("cannot encode a sim key")]
    Key {
        /// The encoding error.
        #[source]
        source: russh::keys::ssh_key::Error,
    },
    /// A certificate could not be made or encoded ([`crate::testing`]).
    #[error("cannot make the certificate")]
    Cert {
        /// The ssh-key error.
        #[source]
        source: russh::keys::ssh_key::Error,
    },
    /// [`SimConfig::host_cert_override`](crate::SimConfig::host_cert_override) names no
    /// host of the fleet, or certifies another key than that host's.
    #[error("bad host certificate override for host index {index}: {reason}")]
    BadHostCert {
        /// The host index of the override.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// An item of a fault spec (or a `SimConfig::faults` entry) is malformed.
    #[error("bad fault `{token}`: {reason}")]
    BadFault {
        /// The offending item, as written.
        token: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The fault percentages add up to more than 100.
    #[error("fault shares add up to {total}% of the hosts, more than 100%")]
    FaultShares {
        /// The sum of the percentages.
        total: f64,
    },
    /// The sim's runtime or its thread could not be started.
    #[error("cannot start the sim runtime")]
    Runtime {
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A hint for the common bind failures, appended to the message.
fn bind_hint(source: &std::io::Error) -> &'static str {
    match source.kind() {
        std::io::ErrorKind::AddrInUse => " (address in use: pick another port, or port 0)",
        std::io::ErrorKind::AddrNotAvailable => " (address not available on this machine)",
        _ if source.raw_os_error() == Some(EMFILE) || source.raw_os_error() == Some(ENFILE) => {
            " (too many open files: raise RLIMIT_NOFILE, one descriptor per host is needed, or listen on one socket for every host)"
        }
        _ => "",
    }
}

/// `EMFILE` on Linux (and most Unixes): this process has too many open files.
const EMFILE: i32 = 24;
/// `ENFILE`: the system as a whole has too many open files.
const ENFILE: i32 = 23;
