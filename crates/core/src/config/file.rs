//! The fleetsh config file: where it is ([`config_dir`], [`default_config_file`]) and the
//! values it holds ([`FileConfig`]), typed and checked.

use std::path::PathBuf;
use std::time::Duration;

use super::connection::{Cipher, HostKeyCheck, Kex};
use super::run::Amount;

/// fleetsh's configuration directory: `$XDG_CONFIG_HOME/fleetsh`, else `~/.config/fleetsh`.
pub fn config_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("fleetsh"))
}

/// The default config file, `config.toml` in [`config_dir`], if any.
pub fn default_config_file() -> Option<PathBuf> {
    config_dir().map(|d| d.join("config.toml"))
}

/// Defaults read from a TOML config file (`--config FILE`). Every key is optional; unknown keys
/// are rejected by name. Durations are in seconds (fractions allowed).
///
/// ```toml
/// user = "deploy"
/// port = 22
/// shards = 2
/// fanout = 1000
/// pin = false
/// connect_timeout = 10
/// command_timeout = 300
/// idle_timeout = 60
/// retries = 1
/// retry_delay = 0.5
/// output_cap = 1048576
/// identity_files = ["~/.ssh/id_ed25519"]
/// known_hosts = "~/.ssh/known_hosts"
/// host_key_check = "strict"
/// ```
///
/// [`FileConfig::parse`] and [`FileConfig::load`] read a file; deserializing a `FileConfig`
/// any other way (`toml::from_str`, say) checks it the same way. A duration that is negative,
/// not finite, over 1e9 seconds, or zero where zero cannot work is rejected while the file is
/// read, with an error naming the key: the `Duration` fields only hold values a run can use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileConfig {
    /// Remote user name.
    pub user: Option<String>,
    /// Remote port.
    pub port: Option<u16>,
    /// Most hosts one run may target (`--max-hosts`).
    pub max_hosts: Option<usize>,
    /// Shard threads (0 = one per CPU).
    pub shards: Option<usize>,
    /// Hosts in flight.
    pub fanout: Option<usize>,
    /// Pin shards to cores.
    pub pin: Option<bool>,
    /// Connect timeout (`connect_timeout`, in seconds in the file).
    pub connect_timeout: Option<Duration>,
    /// Command timeout (`command_timeout`, in seconds in the file).
    pub command_timeout: Option<Duration>,
    /// Idle timeout (`idle_timeout`, in seconds in the file): the longest a command may go
    /// without output.
    pub idle_timeout: Option<Duration>,
    /// Extra connection attempts.
    pub retries: Option<u32>,
    /// Delay between attempts (`retry_delay`, in seconds in the file; zero allowed).
    pub retry_delay: Option<Duration>,
    /// Per-host output cap in bytes.
    pub output_cap: Option<usize>,
    /// Private key files.
    pub identity_files: Option<Vec<PathBuf>>,
    /// known_hosts file.
    pub known_hosts: Option<PathBuf>,
    /// Host-key checking mode.
    pub host_key_check: Option<HostKeyCheck>,
    /// Batch size (`10` or `"25%"`).
    pub batch: Option<Amount>,
    /// Failure threshold (`10` or `"25%"`).
    pub max_fail: Option<Amount>,
    /// New connections per second.
    pub rate: Option<f64>,
    /// Request a pseudo-terminal.
    pub pty: Option<bool>,
    /// Environment variables set on each channel.
    pub env: Option<std::collections::BTreeMap<String, String>>,
    /// User to run commands as through sudo (with `--sudo`).
    pub sudo_user: Option<String>,
    /// Key exchange preference: `"default"` (post-quantum hybrid first) or `"curve25519"`.
    pub kex: Option<Kex>,
    /// Session cipher preference: `"auto"` (AES-256-GCM first with hardware AES, else
    /// ChaCha20-Poly1305), `"aes-gcm"` or `"chacha20"`.
    pub cipher: Option<Cipher>,
    /// Guess the key exchange packet with the KEXINIT (default true; one round trip less per
    /// host when the servers put the same algorithms first).
    pub kex_guess: Option<bool>,
    /// Exactly these session ciphers, in order (OpenSSH names; see the engine's `ciphers`).
    pub ciphers: Option<Vec<String>>,
    /// Time without data from a server before a keepalive request (`keepalive_interval`, in
    /// seconds in the file; default: off).
    pub keepalive_interval: Option<Duration>,
    /// Unanswered keepalive requests before the connection is dropped (default 3).
    pub keepalive_count: Option<u32>,
    /// Time without any traffic before a connection is closed (`inactivity_timeout`, in
    /// seconds in the file; default: off).
    pub inactivity_timeout: Option<Duration>,
    /// SSH channel window in bytes (default 2 MiB; at least `max_packet_size`).
    pub window_size: Option<u32>,
    /// Largest channel data packet accepted, in bytes
    /// ([`MIN_PACKET_SIZE`](super::MIN_PACKET_SIZE)..=[`MAX_PACKET_SIZE`](super::MAX_PACKET_SIZE),
    /// default [`DEFAULT_PACKET_SIZE`](super::DEFAULT_PACKET_SIZE)).
    pub max_packet_size: Option<u32>,
}
