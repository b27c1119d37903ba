//! How a fleet's hosts listen: one socket per host address, or one socket for them all. See
//! the crate docs, [Listening](crate#listening-one-socket-per-host-or-one-for-all).

use std::fmt;

/// With [`Listen::Auto`], fleets of more hosts than this listen on one socket; smaller
/// ones get a socket per host.
pub const ONE_SOCKET_ABOVE: usize = 1_000;

/// How a fleet's hosts listen ([`SimConfig::listen`](crate::SimConfig::listen)). Either
/// way every host keeps its own address, host key, name, fault, files and counters; see
/// [Listening](crate#listening-one-socket-per-host-or-one-for-all) for what differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Listen {
    /// [`Listen::PerHost`] for fleets of up to [`ONE_SOCKET_ABOVE`] hosts,
    /// [`Listen::OneSocket`] for larger ones. The default.
    #[default]
    Auto,
    /// One listening socket per host, bound to the host's own address and the fleet's
    /// port: one open file per host (a fleet of 100,000 hosts needs an open-files limit
    /// above 100,000), and a connection to an address outside the fleet is refused by the
    /// kernel.
    PerHost,
    /// One listening socket for every host, bound to `0.0.0.0` and the fleet's port (and,
    /// where the system allows it, to the loopback interface only). A connection is served
    /// as the host whose address it arrived on (its local address); one that arrived on any
    /// other address, inside or outside 127.0.0.0/8, is reset at once, before a byte is
    /// sent. The port is taken on every address of the machine.
    OneSocket,
}

impl Listen {
    /// What this choice means for a fleet of `count` hosts: [`Listen::PerHost`] or
    /// [`Listen::OneSocket`] ([`Listen::Auto`] decided by [`ONE_SOCKET_ABOVE`]).
    ///
    /// ```
    /// use fleetsh_sim::Listen;
    ///
    /// assert_eq!(Listen::Auto.for_count(1_000), Listen::PerHost);
    /// assert_eq!(Listen::Auto.for_count(1_001), Listen::OneSocket);
    /// assert_eq!(Listen::PerHost.for_count(100_000), Listen::PerHost);
    /// assert_eq!(Listen::OneSocket.for_count(1), Listen::OneSocket);
    /// ```
    pub fn for_count(self, count: usize) -> Listen {
        match self {
            Listen::Auto if count > ONE_SOCKET_ABOVE => Listen::OneSocket,
            Listen::Auto => Listen::PerHost,
            other => other,
        }
    }

    /// The name `fleetsh sim --listen` takes: `auto`, `per-host` or `one-socket`.
    pub fn name(self) -> &'static str {
        match self {
            Listen::Auto => "auto",
            Listen::PerHost => "per-host",
            Listen::OneSocket => "one-socket",
        }
    }
}

/// Formats as [`Listen::name`].
impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
