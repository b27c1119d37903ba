//! The SSH side of the sim: the listeners (a host's own, or the one every host shares),
//! their connections, the russh handler and the commands its exec requests run.
//!
//! - [`host`]: what one host serves with ([`Host`], its [`HostCounters`]) and what all
//!   hosts share ([`Shared`], the fleet's [`Lifeline`]).
//! - [`listener`]: a listener's accept loop ([`accept_loop`]) and which host a connection
//!   is for ([`Route`]).
//! - [`connection`]: one SSH connection, from its banner to its end.
//! - [`handler`]: the per-connection russh handler: session channels and their requests,
//!   `direct-tcpip` tunnels, the `sftp` subsystem.
//! - [`auth`]: which keys, passwords and user certificates a host accepts.
//! - [`exec`]: one exec request's command, its exit status and the faults around it.
//! - [`pump`]: a channel's stdin pump.
//! - [`output`]: command output as channel data.
//! - [`drop_fault`]: the `drop` fault's cut after a command's first line.
//!
//! Per-host faults ([`Fault`](crate::Fault)) act here: at accept (`refuse`, `silent`,
//! `slow-banner`), in the handler (`auth-fail`), in the host's russh config
//! (`hostkey-mismatch`), around the command (`drop`, `hang`, `flood`, `exit`), in the SFTP
//! subsystem (`sftp-evil`, `sftp-cut`, see [`crate::sftp`]), and in the connection's stream
//! (`freeze`, armed at authentication, see [`crate::stream::Freeze`]).
//!
//! # Subsystems
//!
//! A session channel waits in the handler's pending map, unsplit, until its exec or
//! subsystem request. Exec splits it and starts the stdin pump; the `sftp` subsystem
//! turns it into a stream for russh-sftp's server loop with an
//! [`SftpServer`](crate::sftp::SftpServer) on the host's root directory
//! (`state_dir/root/<host name>`, created then). Other subsystems are refused.

mod auth;
mod connection;
mod drop_fault;
mod exec;
mod handler;
mod host;
mod listener;
mod output;
mod pump;

pub(crate) use host::{Host, HostBehaviour, HostCounters, Lifeline, Shared};
pub(crate) use listener::{Route, accept_loop};
