//! Run one command on tens of thousands of hosts over SSH and consume each host's result as it
//! arrives.
//!
//! fleetsh partitions a run's hosts across shard threads; each shard runs its own single-threaded
//! tokio runtime with its hosts' SSH sessions (russh), so one busy event loop never stalls the
//! others. Events come back through lock-free crossbeam channels.
//!
//! Main types:
//! - [`Engine`], built with [`Engine::builder`]: shards, fanout, user, keys, agent, known_hosts,
//!   ssh_config, jump hosts, keepalive;
//! - [`Job`]: the command (the same on every host, a template, or one per host) and its
//!   timeouts, retries and output cap;
//! - [`RunHandle`], returned by [`Engine::run`]: a blocking iterator of [`Event`]s, an async
//!   [`EventStream`] ([`RunHandle::stream`]), complete lines ([`RunHandle::lines`]),
//!   [`RunHandle::join`] (or [`RunHandle::join_timeout`]) into a [`Report`], and
//!   [`RunHandle::cancel`];
//! - [`Engine::connect`] → [`ConnectedFleet`]: several jobs in turn on kept connections, on
//!   all hosts or some, with hosts added and removed;
//! - [`Engine::copy_to`] and [`Engine::copy_from`]: SFTP uploads ([`PutPlan`]) and downloads
//!   ([`GetPlan`]) on every host, atomic per file;
//! - [`Error`], with [`InputError`], [`EngineError`] and [`FleetError`] inside: what stops a
//!   run from starting.
//!
//! Every host ends with exactly one [`HostResult`]: exit code or signal, captured output, a typed
//! [`HostError`] if it failed, and per-phase timings. The [`guide`] shows the main flows with
//! examples that run, the rules for async programs, and how parallel-ssh's and asyncssh's calls
//! map to fleetsh's.
//!
//! ```
//! use fleetsh::{Engine, HostList, Job};
//! # let fleet = fleetsh_sim::SimFleet::start_temp(fleetsh_sim::SimConfig { count: 10, port: 0, ..Default::default() })?;
//! # let (key, known_hosts, hosts_file) = (fleet.client_key_file(), fleet.known_hosts_file(), fleet.hosts_file());
//!
//! // Real fleets: HostList::new().include_spec("web[01-99].dc[1-2]")?; here, a simulated one.
//! let hosts = HostList::new().include_file(&hosts_file)?.build()?;
//! let engine = Engine::builder()
//!     .identity_file(key)
//!     .known_hosts(known_hosts)
//!     .build()?;
//! let report = engine.run(hosts, Job::new("echo hello"))?.join();
//! for r in report.failures() {
//!     eprintln!("{}: {}", r.target, r.error.as_ref().map_or("exited non-zero".into(), |e| e.to_string()));
//! }
//! assert!(report.all_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The `examples/` directory of the repository has programs that run against the simulated fleet
//! (`fleetsh-sim`), and `examples/embedder/` is a program outside the workspace that depends on
//! fleetsh as any program would.
#![deny(missing_docs)]

mod engine;
#[doc = include_str!("guide.md")]
pub mod guide {}
/// The repository README's examples, run as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
mod fleet;
pub mod journal;
mod lines;
mod per_host;
pub mod resolve;
mod run;

pub use engine::{Engine, EngineBuilder, KexGuesses};
pub use fleet::{ConnectedFleet, FleetError};
/// Errors in what a program gives fleetsh: host specs, hosts files, the TOML config file,
/// ssh_config, settings, local files to copy ([`Error::Input`]). Every variant names the
/// offending input.
pub use fleetsh_core::Error as InputError;
pub use fleetsh_core::config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_FANOUT, DEFAULT_KEEPALIVE_COUNT, DEFAULT_OUTPUT_CAP,
    DEFAULT_PACKET_SIZE, DEFAULT_WINDOW_SIZE, MAX_PACKET_SIZE, MIN_PACKET_SIZE,
};
pub use fleetsh_core::record;
pub use fleetsh_core::{Action, GetPlan, PutPlan, TransferStats, transfer};
pub use fleetsh_core::{
    Amount, Cipher, ErrorKind, Event, FileConfig, HostError, HostKeyCheck, HostList, HostResult,
    HostTarget, Job, Kex, Outcome, PerHost, PerHostFn, RunConfig, ServerInfo, StdinData,
    StreamKind, Sudo, Timings, hosts,
};
pub use fleetsh_core::{Groups, SshConfig, clock, config, fold, groups, ssh_config};
pub use fleetsh_core::{Part, partition};
/// Errors of the engine that concern a whole run rather than one host: key files,
/// known_hosts, the open-files limit, shard start-up ([`Error::Engine`]).
pub use fleetsh_shard::Error as EngineError;
pub use fleetsh_shard::Secret;
pub use fleetsh_shard::limits;
pub use fleetsh_shard::ssh::auth::PassphrasePrompt;
pub use lines::{DEFAULT_MAX_LINE, Line, LineEnd, LineEvent, LineStream, Lines};
pub use resolve::{HostSettings, Origin, Setting};
pub use run::{Canceller, Counts, EventStream, Report, RunHandle};

/// Errors that stop an engine from being built or a run from starting (a host's failure is
/// never one of these: it is data in that host's [`HostResult`]). Match the inner errors
/// through [`InputError`] and [`EngineError`]:
///
/// ```
/// # fn main() {
/// let engine = fleetsh::Engine::builder()
///     .no_agent()
///     .password(fleetsh::Secret::new("unused"))
///     .host_key_check(fleetsh::HostKeyCheck::AcceptNew)
///     .known_hosts(std::env::temp_dir().join("fleetsh-doc-known-hosts"))
///     .build()
///     .unwrap();
/// match engine.run(Vec::new(), fleetsh::Job::new("true")) {
///     Err(fleetsh::Error::Input(fleetsh::InputError::NoHosts)) => {}
///     other => panic!("{other:?}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad host spec, hosts file, config file or setting.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Keys, known_hosts, missing credentials, the open-files limit, shard start-up.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A selection of a connected fleet's hosts that cannot be used (unknown or removed
    /// host, a host twice, no host).
    #[error(transparent)]
    Fleet(#[from] FleetError),
}

#[cfg(test)]
mod send_sync {
    use super::*;
    fn is_send_sync<T: Send + Sync>() {}
    fn is_send<T: Send>() {}

    #[test]
    fn public_types_are_send_and_sync() {
        is_send_sync::<Engine>();
        is_send_sync::<EngineBuilder>();
        is_send_sync::<Report>();
        is_send_sync::<HostResult>();
        is_send_sync::<Event>();
        is_send_sync::<Canceller>();
        is_send_sync::<Error>();
        is_send::<RunHandle>();
        is_send::<EventStream>();
        is_send_sync::<ConnectedFleet>();
        is_send_sync::<FleetError>();
        is_send::<Lines>();
        is_send::<LineStream>();
        is_send_sync::<LineEvent>();
        is_send_sync::<Job>();
    }
}
