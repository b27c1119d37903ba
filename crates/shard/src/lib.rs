//! The fleetsh executor: shard threads, one current-thread tokio runtime per shard, crossbeam
//! channels back to the caller, and the SSH client (russh) each host runs on.
//!
//! Most programs use the public crate `fleetsh` instead; this crate is its engine room. Its
//! modules follow the data path, each depending only on those after it:
//! - [`executor`]: shard threads for a run ([`executor::start`], returning an [`Executor`]
//!   whose event channel yields every [`fleetsh_core::Event`]) or a connected fleet
//!   ([`Pool`]);
//! - `host`: one host end to end (retries, then the command or the file transfer);
//! - [`ssh`]: from an address to an authenticated session ([`SshSettings`] holds what every
//!   host shares: russh client config, [`AuthMaterial`], [`KnownHosts`]);
//! - [`sink`], [`shared`], [`command`], [`limits`]: the event channel's sending side, what a
//!   run's hosts share, command rendering, the open-files limit.
//!
//! See `docs/architecture.md` for the threads, partitioning, channels and shutdown order.
#![deny(missing_docs)]

pub mod command;
pub mod executor;
pub(crate) mod host;
pub mod limits;
pub mod shared;
pub mod sink;
pub mod ssh;

use std::path::PathBuf;

pub use executor::{Executor, Pool, ShardConfig};
pub use shared::RunShared;
pub use sink::EventSink;
pub use ssh::auth::{AuthMaterial, LoadedKey, Secret};
pub use ssh::client_config::{
    CIPHER_NAMES, ClientConfig, ClientOptions, Keepalive, ciphers_for, client_config_with,
    clone_config, curve25519_first, default_client_config,
};
pub use ssh::known_hosts::{HostKeys, KeyPrefs, KnownHosts, Verdict};
pub use ssh::settings::{ClientVariants, HostPlan, HostProfile, SshSettings, effective_target};

/// Errors of the executor that concern the whole run (a host's failure is never one of these:
/// it is a [`fleetsh_core::HostError`] in that host's result).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A shard thread could not be started; no shard ran.
    #[error("cannot start the shards: {reason}")]
    ShardStart {
        /// What failed.
        reason: String,
    },
    /// The known_hosts file exists but cannot be read.
    #[error("cannot read known_hosts file {}", path.display())]
    KnownHosts {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A private key file named explicitly cannot be used.
    #[error("private key {}: {reason}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A certificate file named explicitly cannot be used.
    #[error("certificate {}: {reason}", path.display())]
    Certificate {
        /// The certificate file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The open-files limit cannot be read or changed.
    #[error("open-files limit")]
    Limit(#[source] std::io::Error),
    /// The open-files limit leaves no room for a single host in flight.
    #[error(
        "the open-files limit ({limit}) leaves no room for a host: {open} descriptors are open \
         and {reserve} are kept in reserve (raise it with `ulimit -n`)"
    )]
    NoFiles {
        /// The soft limit (after raising it to the hard limit where allowed).
        limit: u64,
        /// Descriptors already open.
        open: u64,
        /// Descriptors kept for the process besides its hosts.
        reserve: u64,
    },
    /// No credentials at all: no key file, no ssh-agent, no password, nothing from
    /// ssh_config: every host would fail authentication.
    #[error("no credentials to authenticate with: {detail}")]
    NoCredentials {
        /// What was looked for, and how to give one.
        detail: String,
    },
    /// Strict host-key checking with a known_hosts file that does not exist: every host
    /// would fail its host-key check.
    #[error(
        "known_hosts file {} does not exist, and strict host-key checking would refuse every \
         host: create it (ssh-keyscan HOST >> FILE), name another file, or use accept-new \
         host-key checking to learn hosts on first contact",
        path.display()
    )]
    NoKnownHosts {
        /// The file.
        path: PathBuf,
    },
}
