//! The fleetsh executor: shard threads, one current-thread tokio runtime per shard, crossbeam
//! channels back to the caller, and the SSH transport (russh) each host runs on.
//!
//! Most programs use the public crate `fleetsh` instead; this crate is its engine room.
//! Main items:
//! - [`executor::start`] starts the shards of a run and returns an [`Executor`] whose event
//!   channel yields every [`fleetsh_core::Event`];
//! - [`SshSettings`] holds what every host shares: russh client config, [`AuthMaterial`],
//!   [`KnownHosts`];
//! - [`limits::raise_nofile_limit`] raises the open-files limit.
//!
//! See `docs/architecture.md` for the threads, partitioning, channels and shutdown order.
#![deny(missing_docs)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod auth;
pub mod command;
pub mod executor;
pub mod jump;
pub mod known_hosts;
pub mod limits;
pub(crate) mod proxy;
mod readbuf;
pub(crate) mod resolve;
pub mod sftp;
pub mod shared;
pub mod transport;

use std::path::PathBuf;

pub use auth::{AuthMaterial, LoadedKey, Secret};
pub use executor::{EventSink, Executor, Pool, ShardConfig};
pub use known_hosts::{HostKeys, KeyPrefs, KnownHosts, Verdict};
pub use shared::RunShared;
pub use transport::{
    CIPHER_NAMES, ClientOptions, ClientVariants, HostPlan, HostProfile, Keepalive, SshSettings,
    ciphers_for, client_config_with, clone_config, curve25519_first, default_client_config,
};

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
