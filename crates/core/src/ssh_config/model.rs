//! The parsed configuration ([`SshConfig`]: blocks of settings under their conditions), what
//! a host is resolved for ([`Query`]), and what it resolves to ([`Resolved`]), each value with
//! where it was set ([`Sourced`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::HostKeyCheck;

/// Where a value was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The file.
    pub file: Arc<Path>,
    /// 1-based line.
    pub line: usize,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A value with where it was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Where it was set.
    pub source: Source,
}

/// One directive's parsed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    HostName(String),
    User(String),
    Port(u16),
    IdentityFile(String),
    CertificateFile(String),
    IdentitiesOnly(bool),
    ProxyJump(String),
    /// The command line as written (the rest of the line; `none` included).
    ProxyCommand(String),
    ConnectTimeout(Duration),
    StrictHostKeyChecking(HostKeyCheck),
    UserKnownHostsFile(String),
    ServerAliveInterval(Duration),
    ServerAliveCountMax(u32),
    HashKnownHosts(bool),
    /// A directive fleetsh does not use (its keyword as written).
    Ignored(String),
}

#[derive(Debug, Clone)]
pub(super) struct Setting {
    pub(super) value: Value,
    pub(super) source: Source,
}

/// A pattern list item: `pattern` or `!pattern`.
#[derive(Debug, Clone)]
pub(super) struct Pattern {
    pub(super) negated: bool,
    pub(super) glob: String,
}

#[derive(Debug, Clone)]
pub(super) enum Criterion {
    All,
    Host(Vec<Pattern>),
    OriginalHost(Vec<Pattern>),
    User(Vec<Pattern>),
    LocalUser(Vec<Pattern>),
    /// Not evaluated: the block never applies.
    Unsupported(String),
}

#[derive(Debug, Clone)]
pub(super) enum Condition {
    /// `Host` line: any positive pattern matches the name as typed and no negated one does.
    Host(Vec<Pattern>),
    /// `Match` line: every criterion holds (each possibly negated).
    Match(Vec<(bool, Criterion)>),
}

#[derive(Debug, Clone)]
pub(super) struct Block {
    /// All must hold (an `Include` inside a block adds the block's condition to the included
    /// blocks).
    pub(super) conditions: Vec<Condition>,
    pub(super) settings: Vec<Setting>,
}

/// A parsed OpenSSH client configuration.
#[derive(Debug, Clone, Default)]
pub struct SshConfig {
    pub(super) blocks: Vec<Block>,
    pub(super) files: Vec<PathBuf>,
    pub(super) home: Option<PathBuf>,
    pub(super) local_user: String,
}

/// The effective settings of one host (`None`/empty: not set by the configuration).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// `HostName`, with `%h` expanded.
    pub hostname: Option<Sourced<String>>,
    /// `User`.
    pub user: Option<Sourced<String>>,
    /// `Port`.
    pub port: Option<Sourced<u16>>,
    /// `IdentityFile`s, in order, `~` and `%` tokens expanded.
    pub identity_files: Vec<Sourced<PathBuf>>,
    /// `CertificateFile`s, in order, expanded.
    pub certificate_files: Vec<Sourced<PathBuf>>,
    /// `IdentitiesOnly`.
    pub identities_only: Option<Sourced<bool>>,
    /// `ProxyJump` as written (`none` included). As in OpenSSH, `ProxyJump` and
    /// `ProxyCommand` compete: the first one that applies wins, the other is not set.
    pub proxy_jump: Option<Sourced<String>>,
    /// `ProxyCommand` as written, tokens unexpanded (`none` included).
    pub proxy_command: Option<Sourced<String>>,
    /// `ConnectTimeout`.
    pub connect_timeout: Option<Sourced<Duration>>,
    /// `StrictHostKeyChecking`, mapped (see [`parse_strict`](super::parse_strict)).
    pub host_key_check: Option<Sourced<HostKeyCheck>>,
    /// The first `UserKnownHostsFile`, expanded.
    pub known_hosts_file: Option<Sourced<PathBuf>>,
    /// `ServerAliveInterval` (zero: off).
    pub server_alive_interval: Option<Sourced<Duration>>,
    /// `ServerAliveCountMax`.
    pub server_alive_count_max: Option<Sourced<u32>>,
    /// `HashKnownHosts`.
    pub hash_known_hosts: Option<Sourced<bool>>,
    /// Directives of the applying blocks that fleetsh does not use.
    pub ignored: Vec<Sourced<String>>,
}

/// What a host is resolved for.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// The host name as typed (what `Host` patterns match).
    pub host: &'a str,
    /// The remote user given for this host (`user@host` or a flag), if any.
    pub user: Option<&'a str>,
}
