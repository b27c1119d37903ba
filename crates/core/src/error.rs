//! The one error type of `fleetsh-core`.

use std::path::PathBuf;

/// Everything that can go wrong while parsing host specs, hosts files and configuration.
///
/// Every variant names the offending input so that a user can fix it without guessing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A host target (`[user@]host[:port]`) or host range spec could not be parsed.
    #[error("bad host spec {spec:?} at column {column}: {reason}")]
    HostSpec {
        /// The spec as given.
        spec: String,
        /// 1-based column (in characters) where the problem was found.
        column: usize,
        /// What is wrong.
        reason: String,
    },
    /// A line of a hosts file could not be parsed.
    #[error("{}:{line}: {reason}", path.display())]
    HostsFile {
        /// The hosts file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong (includes the bad spec).
        reason: String,
    },
    /// A host spec or host list grew past the configured limit.
    #[error(
        "host list {what} expands to more than {limit} hosts (the limit: raise it with --max-hosts, max_hosts in the fleetsh config file, or HostList::limit)"
    )]
    TooManyHosts {
        /// The spec or file that overflowed.
        what: String,
        /// The limit in force.
        limit: usize,
    },
    /// The host list is empty after expansion and exclusions.
    #[error("no hosts to run on (after expansion and exclusions)")]
    NoHosts,
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A TOML configuration file is invalid (syntax, unknown key, wrong type).
    #[error("config {}: {message}", path.display())]
    Config {
        /// The config file (or `<inline>`).
        path: PathBuf,
        /// The parser's message, which names the line, column and key.
        message: String,
    },
    /// An OpenSSH client configuration (`ssh_config`) line is invalid.
    #[error("{}:{line}: {message}", path.display())]
    SshConfig {
        /// The file.
        path: PathBuf,
        /// 1-based line (0: the file as a whole).
        line: usize,
        /// What is wrong, naming the directive.
        message: String,
    },
    /// A setting has a value that cannot work.
    #[error("invalid {setting}: {reason}")]
    InvalidSetting {
        /// The setting's name, as in the config file.
        setting: &'static str,
        /// What is wrong with the value.
        reason: String,
    },
    /// A local file or directory cannot be transferred.
    #[error("cannot copy {}: {reason}", path.display())]
    Transfer {
        /// The local path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A partition of the host list (`--shard`) that cannot work, or a scheduler's
    /// environment that does not give one.
    #[error("bad shard {spec:?}: {reason}")]
    Partition {
        /// The partition as given (`I/N`, `auto`, `auto/N`).
        spec: String,
        /// What is wrong, naming the variables read from the environment.
        reason: String,
    },
}
