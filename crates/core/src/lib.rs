//! Plain types of [fleetsh](https://docs.rs/fleetsh): host targets and ranges, jobs, run
//! configuration, events and per-host results. This crate has no async runtime and no SSH code,
//! so every other crate (and programs that only parse or report) can depend on it cheaply.
//!
//! Main types:
//! - [`HostTarget`] — `[user@]host[:port]`, IPv6 as `[::1]:2222`;
//! - [`hosts::expand`] and [`HostList`] — pdsh/clush ranges (`web[01-12,20].dc[1-2]`), hosts files,
//!   exclusions, de-duplication and a size limit;
//! - [`Job`] and [`RunConfig`] — what to run and how, loadable from TOML ([`FileConfig`]);
//! - [`SshConfig`] — OpenSSH client configuration (`~/.ssh/config`) and per-host resolution;
//! - [`Event`], [`HostResult`], [`HostError`] and [`ErrorKind`] — what a run reports.
//!
//! ```
//! use fleetsh_core::hosts::expand;
//! let hosts = expand("web[01-03].dc[1-2]", 1000).unwrap();
//! assert_eq!(hosts.len(), 6);
//! assert_eq!(hosts[0], "web01.dc1");
//! ```
#![deny(missing_docs)]

pub mod clock;
pub mod config;
mod error;
pub mod event;
pub mod fold;
pub mod groups;
pub mod hosts;
pub mod journal;
pub mod partition;
pub mod per_host;
pub mod record;
mod secret;
pub mod ssh_config;
pub mod transfer;

pub use config::{
    Amount, Cipher, FileConfig, HostKeyCheck, Job, Kex, RunConfig, StdinData, Sudo,
    aes_gcm_in_hardware,
};
pub use error::Error;
pub use event::{
    ErrorKind, Event, HostError, HostResult, Outcome, ServerInfo, StreamKind, Timings,
};
pub use groups::Groups;
pub use hosts::{HostList, HostTarget};
pub use partition::Part;
pub use per_host::{PerHost, PerHostFn};
pub use secret::Secret;
pub use ssh_config::SshConfig;
pub use transfer::{Action, GetPlan, PutPlan, TransferStats};
