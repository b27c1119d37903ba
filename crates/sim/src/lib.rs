//! A simulated SSH fleet: a real russh SSH server serving N simulated hosts on loopback.
//!
//! Each host has its own listener on its own loopback address (`127.1.0.1`, `127.1.0.2`, ...,
//! all on the same port; Linux routes all of 127.0.0.0/8 to `lo`), its own Ed25519 host key
//! and its own name (`sim00001`, ...), so a client sees what it would see in a real fleet.
//! Exec requests run a small built-in shell (`echo`, `hostname`, `cat`, `head -c N /dev/zero`,
//! `seq`, `sleep`, `exit N`, `kill -9 $$`, `;`/`&&`/`||`, `>&2`, ...) whose output streams
//! with SSH flow control, so a fleet of 10,000 hosts costs little more than its sockets.
//!
//! - [`SimConfig`]: how many hosts, where, which port, where the state files go, the key seed.
//! - [`SimFleet`]: [`SimFleet::start`] binds every listener and writes the state files
//!   (`hosts`, `known_hosts`, `id_ed25519`); the fleet serves on its own runtime and threads
//!   until [`SimFleet::stop`] or drop.
//! - [`SimHost`]: one host's index, name and address.
//! - [`SimError`]: why a fleet could not start.
//!
//! Used by tests, benches, `fleetsh sim` and `fleetsh run --sim N`.
//!
//! # Example
//!
//! ```
//! use fleetsh_sim::{SimConfig, SimFleet};
//!
//! let dir = tempfile::tempdir()?;
//! let fleet = SimFleet::start(SimConfig {
//!     count: 3,
//!     port: 0, // any free port, the same on every host address
//!     state_dir: dir.path().to_path_buf(),
//!     ..SimConfig::default()
//! })?;
//! assert_eq!(fleet.hosts()[2].name, "sim00003");
//! let targets = std::fs::read_to_string(fleet.hosts_file())?;
//! assert_eq!(targets.lines().count(), 3);
//! assert!(targets.starts_with(&format!("127.1.0.1:{}\n", fleet.port())));
//! // Connect with any SSH client: known_hosts and id_ed25519 are in the state dir.
//! fleet.stop();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod error;
mod fleet;
mod keys;
mod layout;
mod server;
mod shell;
mod state;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

pub use error::SimError;
pub use fleet::SimFleet;

/// How to start a [`SimFleet`].
#[derive(Clone)]
pub struct SimConfig {
    /// Number of hosts, at least 1.
    pub count: usize,
    /// Address of host 0; host `i` gets `addr_base + i`, skipping addresses ending in `.0`
    /// or `.255`. Must stay inside 127.0.0.0/8. Default `127.1.0.1`.
    pub addr_base: Ipv4Addr,
    /// Port every host listens on. Default 2222. `0` picks a free port: the first listener
    /// binds port 0, every other host binds the port it got (retried on another port if that
    /// one is taken on some address).
    pub port: u16,
    /// Where the state files go (created if missing). Default `fleetsh-sim` in the system
    /// temporary directory.
    pub state_dir: PathBuf,
    /// Seed of the host keys and the client key (derived from `(seed, index)`). Default 0.
    pub seed: u64,
    /// Worker threads of the sim's own tokio runtime. Default 1.
    pub threads: usize,
    /// If set, password authentication with this password is accepted too (any user name).
    pub password: Option<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            count: 1,
            addr_base: Ipv4Addr::new(127, 1, 0, 1),
            port: 2222,
            state_dir: std::env::temp_dir().join("fleetsh-sim"),
            seed: 0,
            threads: 1,
            password: None,
        }
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("count", &self.count)
            .field("addr_base", &self.addr_base)
            .field("port", &self.port)
            .field("state_dir", &self.state_dir)
            .field("seed", &self.seed)
            .field("threads", &self.threads)
            // Never print the password.
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// One simulated host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SimHost {
    /// 0-based index in the fleet.
    pub index: usize,
    /// Host name: `sim` and `index + 1` with at least 5 digits (`sim00001`).
    pub name: String,
    /// The address its SSH server listens on.
    pub addr: SocketAddr,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + std::fmt::Debug>() {}

    #[test]
    fn public_types_are_send_sync_debug() {
        assert_send_sync::<SimConfig>();
        assert_send_sync::<SimFleet>();
        assert_send_sync::<SimHost>();
        assert_send_sync::<SimError>();
    }

    #[test]
    fn config_debug_hides_password() {
        let config = SimConfig {
            password: Some("hunter2".into()),
            ..SimConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
}
