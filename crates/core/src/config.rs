//! What to run ([`Job`]), how to run it ([`RunConfig`]), and the TOML file that gives defaults
//! for both ([`FileConfig`]).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::{Error, HostTarget, Secret};

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

/// Default number of hosts in flight across all shards.
///
/// 1,000 keeps a 10,000-host run about ten waves deep while staying well inside common open-file
/// limits (one socket per host in flight, and the default hard limit is often 4,096 or more), inside
/// what one controller core can handshake per second with headroom (each handshake costs about
/// 0.3–1 ms of client CPU, so 1,000 in flight hide up to ~1 s of network and server latency per
/// host), and below the accept backlogs of typical servers and bastions.
pub const DEFAULT_FANOUT: usize = 1000;
/// Default connect timeout (TCP connect, SSH handshake and authentication).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default per-host cap on captured stdout and on captured stderr (each), in bytes.
pub const DEFAULT_OUTPUT_CAP: usize = 1024 * 1024;
/// Default delay between connection attempts of one host.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);

/// What to run on every host, and its per-host limits.
///
/// Build one with a constructor ([`Job::new`], [`Job::template`], [`Job::per_host`],
/// [`Job::per_host_map`], [`Job::per_host_list`], [`Job::put`], [`Job::get`]) and the builder
/// methods named after the fields ([`Job::command_timeout`], [`Job::retries`], ...). The
/// fields stay public for reading and for setting in place; new fields may be added in any
/// release, so the struct cannot be built with a literal outside this crate.
///
/// ```
/// use std::time::Duration;
/// use fleetsh_core::Job;
///
/// let job = Job::new("systemctl is-active nginx")
///     .connect_timeout(Duration::from_secs(5))
///     .command_timeout(Duration::from_secs(60))
///     .idle_timeout(Duration::from_secs(20))
///     .retries(2)
///     .env("LC_ALL", "C");
/// assert_eq!(job.retries, 2);
/// assert!(job.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Job {
    /// The command line, sent as the SSH exec request (the remote shell interprets it). Sent
    /// as it is unless [`Job::template`] is set; ignored when [`Job::per_host`] is set.
    pub command: String,
    /// Whether `command` is a template: `{host}` is replaced by each host's name
    /// (shell-quoted when it holds anything but letters, digits and `._-:@%+=,/`) and
    /// `{index}` by the host's position in the run's host list. Other braces are sent as
    /// they are (`${VAR}`, `{}`, `{{.Names}}`); there is no escape for a literal `{host}`
    /// (write it in a way the shell joins, like `'{'host}`). Default `false`: the command is
    /// sent literally. See [`Job::template`].
    pub template: bool,
    /// A different command for each host (the function, map or list forms of
    /// [`Job::per_host`], [`Job::per_host_map`], [`Job::per_host_list`]); `command` and
    /// `template` are then not used.
    pub per_host: Option<crate::PerHost>,
    /// Limit for TCP connect + SSH handshake + authentication, per attempt.
    pub connect_timeout: Duration,
    /// Limit for the command, from the exec request to the exit status. `None`: no limit.
    pub command_timeout: Option<Duration>,
    /// Limit on a command's silence: a host whose command sends no output (stdout or
    /// stderr) for this long, from the exec request or from its last output, ends with a
    /// [`crate::ErrorKind::CommandTimeout`] error saying it was the idle timeout, keeping the
    /// output received; its command is sent SIGTERM and its channel closed, as with
    /// `command_timeout`. `None` (the default): no limit. Commands only: file transfers are
    /// bounded by `command_timeout`.
    pub idle_timeout: Option<Duration>,
    /// Extra connection attempts after a connect or handshake failure (never after the command
    /// started).
    pub retries: u32,
    /// The base delay before a failed connection attempt is retried: exponential backoff with
    /// jitter ([`retry_backoff`]), so that hosts refused together (sshd's `MaxStartups`, a
    /// busy bastion) do not come back together.
    pub retry_delay: Duration,
    /// Per-host cap on captured stdout and on captured stderr (each), in bytes. Output beyond the
    /// cap is still read from the channel (so the server never stalls) and dropped, and the result
    /// is flagged `truncated`.
    pub output_cap: usize,
    /// Whether to stream output chunks as [`crate::Event::Output`] events while hosts run
    /// (needed to print lines as they arrive; not needed when only results are used).
    pub stream_output: bool,
    /// Bytes sent to every host's command on its standard input, followed by end-of-file. Read
    /// once, shared by all hosts. Without it the command's stdin is closed at once (as with
    /// `ssh host cmd </dev/null`).
    pub stdin: Option<StdinData>,
    /// Run the command through `sudo -S`, feeding the password on stdin (never in the command
    /// line, never echoed in results).
    pub sudo: Option<Sudo>,
    /// Request a pseudo-terminal for the command (stderr is then merged into stdout by the
    /// remote terminal).
    pub pty: bool,
    /// Environment variables set on the channel before the command (the server must accept
    /// them, e.g. OpenSSH `AcceptEnv`; a refusal fails the host with a `channel` error naming
    /// the variable, and the command is not run).
    pub env: Vec<(String, String)>,
    /// What the job does on each host: run `command` (the default), or copy files over SFTP
    /// ([`Job::put`], [`Job::get`]).
    pub action: crate::Action,
}

/// Standard input for every host's command: shared bytes whose `Debug` shows only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct StdinData(pub std::sync::Arc<[u8]>);

impl std::fmt::Debug for StdinData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StdinData({} bytes)", self.0.len())
    }
}

impl From<Vec<u8>> for StdinData {
    fn from(v: Vec<u8>) -> Self {
        StdinData(v.into())
    }
}

impl From<&[u8]> for StdinData {
    fn from(v: &[u8]) -> Self {
        StdinData(v.into())
    }
}

impl From<&str> for StdinData {
    fn from(v: &str) -> Self {
        StdinData(v.as_bytes().into())
    }
}

impl From<std::sync::Arc<[u8]>> for StdinData {
    fn from(v: std::sync::Arc<[u8]>) -> Self {
        StdinData(v)
    }
}

/// How to run the command through sudo.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sudo {
    /// Run as this user (`sudo -u`); default root.
    pub user: Option<String>,
    /// The sudo password, fed on stdin before any other input.
    pub password: Option<Secret>,
}

/// A number of hosts, or a percentage of the run's hosts (`10` or `25%`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    /// A number of hosts.
    Count(usize),
    /// A percentage (0–100] of the run's hosts.
    Percent(f64),
}

impl Amount {
    /// The percentage of `total`, rounded down (a threshold); counts are returned as they are.
    pub fn floor_of(self, total: usize) -> usize {
        match self {
            Amount::Count(n) => n,
            Amount::Percent(p) => ((total as f64) * p / 100.0).floor() as usize,
        }
    }

    /// The percentage of `total`, rounded up and at least 1 (a batch size).
    pub fn ceil_of(self, total: usize) -> usize {
        match self {
            Amount::Count(n) => n.max(1),
            Amount::Percent(p) => (((total as f64) * p / 100.0).ceil() as usize).max(1),
        }
    }
}

impl FromStr for Amount {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if let Some(p) = t.strip_suffix('%') {
            let v: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("{s:?} is not a number or a percentage"))?;
            if !(v > 0.0 && v <= 100.0) {
                return Err(format!("{s:?}: a percentage must be in (0, 100]"));
            }
            Ok(Amount::Percent(v))
        } else {
            t.parse::<usize>()
                .map(Amount::Count)
                .map_err(|_| format!("{s:?} is not a number or a percentage (like 10 or 25%)"))
        }
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Amount::Count(n) => write!(f, "{n}"),
            Amount::Percent(p) => write!(f, "{p}%"),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AmountRepr {
    Count(usize),
    Text(String),
}

fn de_amount<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Amount>, D::Error> {
    match Option::<AmountRepr>::deserialize(d)? {
        None => Ok(None),
        Some(AmountRepr::Count(n)) => Ok(Some(Amount::Count(n))),
        Some(AmountRepr::Text(t)) => t.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

impl Job {
    /// A job running `command` on every host with default limits. The command is sent as it is,
    /// braces included (`echo '{index}'` prints `{index}`); see [`Job::template`] for per-host
    /// `{host}`/`{index}` expansion.
    pub fn new(command: impl Into<String>) -> Self {
        Job {
            command: command.into(),
            template: false,
            per_host: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: None,
            idle_timeout: None,
            retries: 0,
            retry_delay: DEFAULT_RETRY_DELAY,
            output_cap: DEFAULT_OUTPUT_CAP,
            stream_output: false,
            stdin: None,
            sudo: None,
            pty: false,
            env: Vec::new(),
            action: crate::Action::Exec,
        }
    }

    /// A job running `command` as a template: on each host `{host}` is replaced by the host's
    /// name (as written in the host list, without user and port; shell-quoted when it holds
    /// anything but letters, digits and `._-:@%+=,/`) and `{index}` by its position in the
    /// run's host list (from 0). Every other brace is sent as it is (`${HOME}`, `find -exec
    /// {} \;`, `docker ps --format '{{.Names}}'`); there is no escape for a literal `{host}`
    /// or `{index}` (split it for the shell, `'{'host}`, or use [`Job::per_host`]).
    ///
    /// ```
    /// let job = fleetsh_core::Job::template("echo {host} is number {index}");
    /// assert!(job.template);
    /// ```
    pub fn template(command: impl Into<String>) -> Self {
        Job {
            template: true,
            ..Job::new(command)
        }
    }

    /// A job whose command is worked out for each host by `f`, from the host (user and port
    /// filled in with the values the run uses) and its index in the run's host list
    /// (parallel-ssh's `host_args`).
    ///
    /// `f` is called once per host, in host order, on the thread that starts the run
    /// (`Engine::run`, `ConnectedFleet::run`), before anything connects: a panic in it is
    /// the caller's own and no shard is involved; an empty command stops the run from
    /// starting with an error naming the host. The commands are sent as they are (no
    /// `{host}`/`{index}` expansion), through sudo when asked.
    ///
    /// ```
    /// use fleetsh_core::{HostTarget, Job};
    /// let job = Job::per_host(|host: &HostTarget, index: usize| {
    ///     format!("echo shard {} of {}", index % 4, host.host)
    /// });
    /// assert_eq!(format!("{:?}", job.per_host.unwrap()), "<per-host closure>");
    /// ```
    pub fn per_host(f: impl Fn(&HostTarget, usize) -> String + Send + Sync + 'static) -> Self {
        Job {
            per_host: Some(crate::PerHost::from_fn(f)),
            ..Job::new("")
        }
    }

    /// A job whose command for each host is looked up in `map`, keyed by the host as written
    /// in the run's host list (`deploy@web1:2222`) or by its bare name (`web1`); the first
    /// form wins. A host of the run that the map does not cover stops the run from starting
    /// with an error naming the host (nothing connects); keys naming no host of the run are
    /// ignored.
    pub fn per_host_map<K: Into<String>, V: Into<String>>(
        map: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Job {
            per_host: Some(crate::PerHost::from_map(map)),
            ..Job::new("")
        }
    }

    /// A job with one command per host, in the order of the run's host list (parallel-ssh's
    /// `host_args` list). A list whose length is not the number of hosts stops the run from
    /// starting.
    pub fn per_host_list<V: Into<String>>(list: impl IntoIterator<Item = V>) -> Self {
        Job {
            per_host: Some(crate::PerHost::from_list(list)),
            ..Job::new("")
        }
    }

    /// A job uploading `plan` to every host over SFTP (the command timeout, if set, bounds
    /// the whole transfer).
    pub fn put(plan: crate::PutPlan) -> Self {
        Job::new("").action(crate::Action::Put(std::sync::Arc::new(plan)))
    }

    /// A job downloading `plan` from every host over SFTP into `plan.local_dir/HOST/`.
    pub fn get(plan: crate::GetPlan) -> Self {
        Job::new("").action(crate::Action::Get(std::sync::Arc::new(plan)))
    }

    /// Sets [`Job::action`]: what the job does on each host. With a job used as a template
    /// of limits, `template.clone().action(...)` keeps its timeouts and retries.
    #[must_use]
    pub fn action(mut self, action: crate::Action) -> Self {
        self.action = action;
        self
    }

    /// Sets [`Job::connect_timeout`] (per attempt; default 10 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`Job::command_timeout`]: a `Duration`, or `None` for no limit (the default).
    #[must_use]
    pub fn command_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.command_timeout = timeout.into();
        self
    }

    /// Sets [`Job::idle_timeout`]: the longest a command may go without sending output, or
    /// `None` for no limit (the default).
    #[must_use]
    pub fn idle_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.idle_timeout = timeout.into();
        self
    }

    /// Sets [`Job::retries`]: extra connection attempts after a connect or handshake failure.
    #[must_use]
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Sets [`Job::retry_delay`], the base of the retry backoff (default 1 s).
    #[must_use]
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    /// Sets [`Job::output_cap`]: bytes of stdout and of stderr kept per host (default 1 MiB).
    #[must_use]
    pub fn output_cap(mut self, bytes: usize) -> Self {
        self.output_cap = bytes;
        self
    }

    /// Sets [`Job::stream_output`]: whether output chunks arrive as events while hosts run.
    #[must_use]
    pub fn stream_output(mut self, on: bool) -> Self {
        self.stream_output = on;
        self
    }

    /// Sets [`Job::stdin`]: bytes sent to every host's command on its standard input.
    #[must_use]
    pub fn stdin(mut self, data: impl Into<StdinData>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    /// Sets [`Job::sudo`]: run the command through sudo.
    #[must_use]
    pub fn sudo(mut self, sudo: Sudo) -> Self {
        self.sudo = Some(sudo);
        self
    }

    /// Sets [`Job::pty`]: request a pseudo-terminal.
    #[must_use]
    pub fn pty(mut self, on: bool) -> Self {
        self.pty = on;
        self
    }

    /// Adds an environment variable to [`Job::env`].
    #[must_use]
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// A job that only connects and authenticates to every host and runs nothing
    /// ([`Action::Connect`](crate::Action::Connect)).
    pub fn connect_only() -> Self {
        Job {
            action: crate::Action::Connect,
            ..Job::new("")
        }
    }

    /// Checks that the limits can work.
    pub fn validate(&self) -> Result<(), Error> {
        if self.action == crate::Action::Exec && self.command.is_empty() && self.per_host.is_none()
        {
            return Err(Error::InvalidSetting {
                setting: "command",
                reason: "the command is empty".into(),
            });
        }
        if self.action != crate::Action::Exec {
            let what = if self.sudo.is_some() {
                Some("sudo")
            } else if self.pty {
                Some("pty")
            } else if !self.env.is_empty() {
                Some("env")
            } else if self.stdin.is_some() {
                Some("stdin")
            } else if self.per_host.is_some() {
                Some("per_host")
            } else if self.template {
                Some("template")
            } else {
                None
            };
            if let Some(setting) = what {
                return Err(Error::InvalidSetting {
                    setting,
                    reason: "applies to commands only, not to file transfers or connect-only jobs"
                        .into(),
                });
            }
        }
        if self.connect_timeout.is_zero() {
            return Err(Error::InvalidSetting {
                setting: "connect_timeout",
                reason: "must be greater than zero".into(),
            });
        }
        for (k, _) in &self.env {
            if k.is_empty() || k.contains(['=', '\0']) {
                return Err(Error::InvalidSetting {
                    setting: "env",
                    reason: format!("{k:?} is not a variable name"),
                });
            }
        }
        if let Some(u) = self.sudo.as_ref().and_then(|s| s.user.as_deref())
            && (u.is_empty()
                || !u
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)))
        {
            return Err(Error::InvalidSetting {
                setting: "sudo_user",
                reason: format!("{u:?} is not a user name"),
            });
        }
        if self.command_timeout.is_some_and(|d| d.is_zero()) {
            return Err(Error::InvalidSetting {
                setting: "command_timeout",
                reason: "must be greater than zero".into(),
            });
        }
        if self.idle_timeout.is_some_and(|d| d.is_zero()) {
            return Err(Error::InvalidSetting {
                setting: "idle_timeout",
                reason: "must be greater than zero".into(),
            });
        }
        if self.per_host.is_some() && self.template {
            return Err(Error::InvalidSetting {
                setting: "template",
                reason: "per-host commands are sent as they are; {host}/{index} expansion applies to a single command".into(),
            });
        }
        Ok(())
    }
}

/// How a run is executed: shards, fanout, pinning, batches, failure threshold, connection rate.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    /// Number of shard threads. `0` means one per CPU.
    pub shards: usize,
    /// Hosts in flight across all shards; each shard keeps at most its share in flight.
    pub fanout: usize,
    /// Pin each shard thread to a core (`core_affinity`). A failed pin is logged, not fatal.
    pub pin: bool,
    /// Run the hosts in successive batches of this size (rolling changes, Ansible's `serial`):
    /// a batch starts only when the previous one has finished.
    pub batch: Option<Amount>,
    /// Once more hosts than this have failed (error, non-zero exit or signal), start no new
    /// host; the rest end as `skipped` (Ansible's `max_fail_percentage`; a percentage is of all
    /// the run's hosts).
    pub max_fail: Option<Amount>,
    /// At most this many new connections per second across all shards.
    pub rate: Option<f64>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            shards: 0,
            fanout: DEFAULT_FANOUT,
            pin: false,
            batch: None,
            max_fail: None,
            rate: None,
        }
    }
}

impl RunConfig {
    /// Checks that the settings can work.
    pub fn validate(&self) -> Result<(), Error> {
        if self.fanout == 0 {
            return Err(Error::InvalidSetting {
                setting: "fanout",
                reason: "must be at least 1".into(),
            });
        }
        if let Some(r) = self.rate
            && !(r.is_finite() && (MIN_RATE..=MAX_RATE).contains(&r))
        {
            return Err(Error::InvalidSetting {
                setting: "rate",
                reason: format!(
                    "{} is not a number of connections per second from {MIN_RATE:.6} (one an hour) to {MAX_RATE:e}",
                    short_number(r)
                ),
            });
        }
        if self.batch == Some(Amount::Count(0)) {
            return Err(Error::InvalidSetting {
                setting: "batch",
                reason: "must be at least 1".into(),
            });
        }
        if self.shards > 1024 {
            return Err(Error::InvalidSetting {
                setting: "shards",
                reason: format!("{} is more than the maximum of 1024", self.shards),
            });
        }
        Ok(())
    }
}

/// Which key exchange a connection prefers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kex {
    /// The post-quantum hybrid `mlkem768x25519-sha256` first (as OpenSSH 9.9+), then
    /// `curve25519-sha256`, then the Diffie-Hellman groups.
    #[default]
    Default,
    /// `curve25519-sha256` first: less client CPU per handshake (see docs/benchmarks.md, "Key
    /// exchange: ML-KEM hybrid and curve25519"), without the post-quantum protection. For very
    /// large fleets.
    Curve25519,
}

impl Kex {
    /// The name as written on the command line and in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            Kex::Default => "default",
            Kex::Curve25519 => "curve25519",
        }
    }
}

impl FromStr for Kex {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "default" => Ok(Kex::Default),
            "curve25519" => Ok(Kex::Curve25519),
            other => Err(Error::InvalidSetting {
                setting: "kex",
                reason: format!("{other:?} is not one of default, curve25519"),
            }),
        }
    }
}

/// Which session cipher a connection prefers. Every choice offers the same set (russh's safe
/// list: AES-256-GCM, ChaCha20-Poly1305, AES-CTR with SHA-2 MACs); only the first differs, and
/// the server takes the first of ours it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cipher {
    /// `aes256-gcm@openssh.com` first when this CPU has AES and carry-less multiply
    /// instructions (AES-NI and PCLMULQDQ, or ARMv8's AES and PMULL), else
    /// `chacha20-poly1305@openssh.com` first.
    #[default]
    Auto,
    /// `aes256-gcm@openssh.com` first.
    AesGcm,
    /// `chacha20-poly1305@openssh.com` first (OpenSSH's order): for servers without AES
    /// instructions (small ARM boards), which decrypt AES-GCM far slower than ChaCha20.
    Chacha20,
}

impl Cipher {
    /// What this preference means on this machine: [`Cipher::Auto`] becomes
    /// [`Cipher::AesGcm`] when [`aes_gcm_in_hardware`], else [`Cipher::Chacha20`].
    pub fn resolve(self) -> Cipher {
        match self {
            Cipher::Auto if aes_gcm_in_hardware() => Cipher::AesGcm,
            Cipher::Auto => Cipher::Chacha20,
            other => other,
        }
    }

    /// The name as written on the command line and in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            Cipher::Auto => "auto",
            Cipher::AesGcm => "aes-gcm",
            Cipher::Chacha20 => "chacha20",
        }
    }
}

impl FromStr for Cipher {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "auto" => Ok(Cipher::Auto),
            "aes-gcm" => Ok(Cipher::AesGcm),
            "chacha20" => Ok(Cipher::Chacha20),
            other => Err(Error::InvalidSetting {
                setting: "cipher",
                reason: format!("{other:?} is not one of auto, aes-gcm, chacha20"),
            }),
        }
    }
}

/// Whether this CPU has the instructions AES-GCM runs fast and in constant time on: AES and
/// carry-less multiply (x86-64: AES-NI and PCLMULQDQ; AArch64: AES and PMULL).
pub fn aes_gcm_in_hardware() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// How the server's host key is checked against known_hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyCheck {
    /// Unknown or changed keys fail the host with `hostkey` (OpenSSH `StrictHostKeyChecking yes`).
    #[default]
    Strict,
    /// Unknown keys are accepted and appended to known_hosts; changed keys still fail.
    AcceptNew,
    /// No check at all (insecure; warned about).
    Off,
}

impl HostKeyCheck {
    /// The name as written on the command line and in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            HostKeyCheck::Strict => "strict",
            HostKeyCheck::AcceptNew => "accept-new",
            HostKeyCheck::Off => "off",
        }
    }
}

impl FromStr for HostKeyCheck {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "strict" | "yes" => Ok(HostKeyCheck::Strict),
            "accept-new" => Ok(HostKeyCheck::AcceptNew),
            "off" | "no" => Ok(HostKeyCheck::Off),
            other => Err(Error::InvalidSetting {
                setting: "host_key_check",
                reason: format!("{other:?} is not one of strict, accept-new, off"),
            }),
        }
    }
}

/// The smallest maximum packet size an engine accepts (1 KiB).
pub const MIN_PACKET_SIZE: u32 = 1024;
/// The largest maximum packet size an engine accepts (65,535 bytes: an SSH packet must fit a
/// TCP segment).
pub const MAX_PACKET_SIZE: u32 = 65_535;
/// The default maximum packet size (32 KiB, as OpenSSH).
pub const DEFAULT_PACKET_SIZE: u32 = 32_768;
/// The default SSH channel window (2 MiB).
pub const DEFAULT_WINDOW_SIZE: u32 = 2 * 1024 * 1024;

/// Checks an SSH channel's window and maximum packet size, each `None` for its default, and
/// returns both with the defaults filled in: the packet size within
/// [`MIN_PACKET_SIZE`]..=[`MAX_PACKET_SIZE`], the window at least one packet. The error names
/// the setting (`max_packet_size`, `window_size`) and the allowed range.
pub fn channel_sizes(window: Option<u32>, packet: Option<u32>) -> Result<(u32, u32), Error> {
    let packet = packet.unwrap_or(DEFAULT_PACKET_SIZE);
    if !(MIN_PACKET_SIZE..=MAX_PACKET_SIZE).contains(&packet) {
        return Err(Error::InvalidSetting {
            setting: "max_packet_size",
            reason: format!(
                "{packet} bytes is outside {MIN_PACKET_SIZE}..={MAX_PACKET_SIZE} (an SSH packet must fit a 65,535-byte TCP segment)"
            ),
        });
    }
    let window = window.unwrap_or(DEFAULT_WINDOW_SIZE);
    if window < packet {
        return Err(Error::InvalidSetting {
            setting: "window_size",
            reason: format!(
                "{window} bytes is smaller than the maximum packet size ({packet} bytes): allowed {packet}..={}",
                u32::MAX
            ),
        });
    }
    Ok((window, packet))
}
/// The default number of unanswered keepalives before a connection is dropped (3, as
/// OpenSSH's `ServerAliveCountMax`).
pub const DEFAULT_KEEPALIVE_COUNT: u32 = 3;

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
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// Connect timeout in seconds.
    pub connect_timeout: Option<f64>,
    /// Command timeout in seconds.
    pub command_timeout: Option<f64>,
    /// Idle timeout in seconds: the longest a command may go without output.
    pub idle_timeout: Option<f64>,
    /// Extra connection attempts.
    pub retries: Option<u32>,
    /// Delay between attempts in seconds.
    pub retry_delay: Option<f64>,
    /// Per-host output cap in bytes.
    pub output_cap: Option<usize>,
    /// Private key files.
    pub identity_files: Option<Vec<PathBuf>>,
    /// known_hosts file.
    pub known_hosts: Option<PathBuf>,
    /// Host-key checking mode.
    pub host_key_check: Option<HostKeyCheck>,
    /// Batch size (`10` or `"25%"`).
    #[serde(default, deserialize_with = "de_amount")]
    pub batch: Option<Amount>,
    /// Failure threshold (`10` or `"25%"`).
    #[serde(default, deserialize_with = "de_amount")]
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
    /// Seconds without data from a server before a keepalive request (default: off).
    pub keepalive_interval: Option<f64>,
    /// Unanswered keepalive requests before the connection is dropped (default 3).
    pub keepalive_count: Option<u32>,
    /// Seconds without any traffic before a connection is closed (default: off).
    pub inactivity_timeout: Option<f64>,
    /// SSH channel window in bytes (default 2 MiB; at least `max_packet_size`).
    pub window_size: Option<u32>,
    /// Largest channel data packet accepted, in bytes
    /// ([`MIN_PACKET_SIZE`]..=[`MAX_PACKET_SIZE`], default [`DEFAULT_PACKET_SIZE`]).
    pub max_packet_size: Option<u32>,
}

impl FileConfig {
    /// Parses TOML text; `path` is used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, Error> {
        let cfg: FileConfig = toml::from_str(text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " | "),
        })?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Reads and parses a TOML config file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    fn validate(&self, path: &Path) -> Result<(), Error> {
        let bad = |key: &str, reason: String| Error::Config {
            path: path.to_path_buf(),
            message: format!("key `{key}`: {reason}"),
        };
        for (key, v) in [
            ("connect_timeout", self.connect_timeout),
            ("command_timeout", self.command_timeout),
            ("idle_timeout", self.idle_timeout),
            ("retry_delay", self.retry_delay),
            ("keepalive_interval", self.keepalive_interval),
            ("inactivity_timeout", self.inactivity_timeout),
        ] {
            if let Some(v) = v {
                if !v.is_finite() || !(0.0..=1e9).contains(&v) {
                    return Err(bad(key, format!("{v} is not a duration in seconds")));
                }
                if v == 0.0 && key != "retry_delay" {
                    return Err(bad(key, "must be greater than zero".into()));
                }
            }
        }
        if self.fanout == Some(0) {
            return Err(bad("fanout", "must be at least 1".into()));
        }
        if self.keepalive_count == Some(0) {
            return Err(bad("keepalive_count", "must be at least 1".into()));
        }
        channel_sizes(self.window_size, self.max_packet_size).map_err(|e| match e {
            Error::InvalidSetting { setting, reason } => bad(setting, reason),
            other => other,
        })?;
        if self.batch == Some(Amount::Count(0)) {
            return Err(bad("batch", "must be at least 1".into()));
        }
        if let Some(r) = self.rate
            && !(r.is_finite() && (MIN_RATE..=MAX_RATE).contains(&r))
        {
            return Err(bad(
                "rate",
                format!(
                    "{} is not a number of connections per second from {MIN_RATE:.6} (one an hour) to {MAX_RATE:e}",
                    short_number(r)
                ),
            ));
        }
        if self.port == Some(0) {
            return Err(bad("port", "must be 1-65535".into()));
        }
        // Whatever the job and run settings would reject (a sudo user, shards, env names, a
        // duration that rounds to zero) is reported now, naming this file and key. The checks
        // above keep `apply_to_job` from panicking on a bad duration.
        let mut job = Job::new("true");
        self.apply_to_job(&mut job);
        if self.sudo_user.is_some() {
            job.sudo = Some(Sudo {
                user: self.sudo_user.clone(),
                password: None,
            });
        }
        let mut run = RunConfig::default();
        self.apply_to_run(&mut run);
        job.validate()
            .and_then(|()| run.validate())
            .map_err(|e| match e {
                Error::InvalidSetting { setting, reason } => bad(setting, reason),
                other => other,
            })
    }

    /// Applies the file's values to a job (command-line flags are applied after, and win).
    pub fn apply_to_job(&self, job: &mut Job) {
        if let Some(v) = self.connect_timeout {
            job.connect_timeout = Duration::from_secs_f64(v);
        }
        if let Some(v) = self.command_timeout {
            job.command_timeout = Some(Duration::from_secs_f64(v));
        }
        if let Some(v) = self.idle_timeout {
            job.idle_timeout = Some(Duration::from_secs_f64(v));
        }
        if let Some(v) = self.retries {
            job.retries = v;
        }
        if let Some(v) = self.retry_delay {
            job.retry_delay = Duration::from_secs_f64(v);
        }
        if let Some(v) = self.output_cap {
            job.output_cap = v;
        }
        if let Some(v) = self.pty {
            job.pty = v;
        }
        if let Some(env) = &self.env {
            job.env = env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        }
    }

    /// Applies the file's values to a run config.
    pub fn apply_to_run(&self, run: &mut RunConfig) {
        if let Some(v) = self.shards {
            run.shards = v;
        }
        if let Some(v) = self.fanout {
            run.fanout = v;
        }
        if let Some(v) = self.pin {
            run.pin = v;
        }
        if self.batch.is_some() {
            run.batch = self.batch;
        }
        if self.max_fail.is_some() {
            run.max_fail = self.max_fail;
        }
        if self.rate.is_some() {
            run.rate = self.rate;
        }
    }
}

/// The lowest connection rate (`rate`): one connection an hour. Below it a run would wait
/// longer than any operator does for one host.
pub const MIN_RATE: f64 = 1.0 / 3600.0;

/// The highest connection rate (`rate`).
pub const MAX_RATE: f64 = 1e9;

/// A number as an operator would write it: `1e308`, not three hundred digits.
pub fn short_number(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e6 || v.abs() < 1e-3) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// The longest wait before a retry, in multiples of the base delay.
pub const MAX_BACKOFF_FACTOR: u32 = 32;

/// How long to wait before connection attempt `attempt + 1` after attempt `attempt` (1-based)
/// failed: exponential backoff with jitter. The ceiling doubles with each failure, from
/// `base` up to [`MAX_BACKOFF_FACTOR`] × `base`, and the wait is uniform between half the
/// ceiling and the ceiling (`unit`, in `[0, 1)`, picks the point). With the default 1 s: 0.5–1 s,
/// 1–2 s, 2–4 s, ... and at most 32 s.
pub fn retry_backoff(base: Duration, attempt: u32, unit: f64) -> Duration {
    let doublings = attempt
        .saturating_sub(1)
        .min(MAX_BACKOFF_FACTOR.trailing_zeros());
    let ceiling = base.saturating_mul(1 << doublings);
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.0
    };
    ceiling.mul_f64(0.5 + unit / 2.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn retry_backoff_doubles_with_jitter_and_is_bounded() {
        let base = Duration::from_secs(1);
        assert_eq!(retry_backoff(base, 1, 0.0), Duration::from_millis(500));
        assert_eq!(retry_backoff(base, 1, 1.0), base);
        assert_eq!(retry_backoff(base, 2, 0.0), base);
        assert_eq!(retry_backoff(base, 3, 1.0), Duration::from_secs(4));
        assert_eq!(retry_backoff(base, 6, 1.0), Duration::from_secs(32));
        assert_eq!(
            retry_backoff(base, 60, 1.0),
            Duration::from_secs(32),
            "bounded"
        );
        assert_eq!(retry_backoff(Duration::ZERO, 9, 0.7), Duration::ZERO);
        assert_eq!(retry_backoff(base, 1, f64::NAN), Duration::from_millis(500));
    }

    use super::*;

    fn p() -> PathBuf {
        PathBuf::from("fleetsh.toml")
    }

    #[test]
    fn connection_options_parse_and_bad_values_name_the_key() {
        let cfg = FileConfig::parse(
            "keepalive_interval = 15\nkeepalive_count = 4\ninactivity_timeout = 600.5\n\
             window_size = 65536\nmax_packet_size = 4096\n\
             ciphers = [\"aes128-gcm@openssh.com\"]\n",
            &p(),
        )
        .unwrap();
        assert_eq!(cfg.keepalive_interval, Some(15.0));
        assert_eq!(cfg.keepalive_count, Some(4));
        assert_eq!(cfg.inactivity_timeout, Some(600.5));
        assert_eq!(cfg.window_size, Some(65536));
        assert_eq!(cfg.max_packet_size, Some(4096));
        assert_eq!(
            cfg.ciphers,
            Some(vec!["aes128-gcm@openssh.com".to_string()])
        );
        for (text, key) in [
            ("keepalive_interval = 0\n", "keepalive_interval"),
            ("keepalive_interval = -1\n", "keepalive_interval"),
            ("inactivity_timeout = 0\n", "inactivity_timeout"),
            ("keepalive_count = 0\n", "keepalive_count"),
            ("max_packet_size = 100\n", "max_packet_size"),
            ("max_packet_size = 70000\n", "max_packet_size"),
            ("window_size = 1000\n", "window_size"),
            (
                "max_packet_size = 8192\nwindow_size = 4096\n",
                "window_size",
            ),
        ] {
            let e = FileConfig::parse(text, &p()).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains("fleetsh.toml"), "{text}: {e}");
        }
    }

    #[test]
    fn cipher_names_parse_and_a_bad_one_is_named() {
        for c in [Cipher::Auto, Cipher::AesGcm, Cipher::Chacha20] {
            assert_eq!(c.as_str().parse::<Cipher>().unwrap(), c);
        }
        let e = "rot13".parse::<Cipher>().unwrap_err().to_string();
        assert!(e.contains("cipher") && e.contains("rot13"), "{e}");
        let cfg = FileConfig::parse("cipher = \"chacha20\"\n", &p()).unwrap();
        assert_eq!(cfg.cipher, Some(Cipher::Chacha20));
        let e = FileConfig::parse("cipher = \"des\"\n", &p())
            .unwrap_err()
            .to_string();
        assert!(e.contains("fleetsh.toml") && e.contains("des"), "{e}");
    }

    #[test]
    fn full_config_parses_and_applies() {
        let text = r#"
user = "deploy"
port = 2200
shards = 3
fanout = 500
pin = true
connect_timeout = 2.5
command_timeout = 60
idle_timeout = 7.5
retries = 2
retry_delay = 0.25
output_cap = 4096
identity_files = ["/k/id_ed25519"]
known_hosts = "/k/known_hosts"
host_key_check = "accept-new"
"#;
        let cfg = FileConfig::parse(text, &p()).unwrap();
        assert_eq!(cfg.user.as_deref(), Some("deploy"));
        assert_eq!(cfg.port, Some(2200));
        assert_eq!(cfg.host_key_check, Some(HostKeyCheck::AcceptNew));
        let mut job = Job::new("true");
        cfg.apply_to_job(&mut job);
        assert_eq!(job.connect_timeout, Duration::from_millis(2500));
        assert_eq!(job.command_timeout, Some(Duration::from_secs(60)));
        assert_eq!(job.idle_timeout, Some(Duration::from_millis(7500)));
        assert_eq!(job.retries, 2);
        assert_eq!(job.retry_delay, Duration::from_millis(250));
        assert_eq!(job.output_cap, 4096);
        let mut run = RunConfig::default();
        cfg.apply_to_run(&mut run);
        assert_eq!(
            run,
            RunConfig {
                shards: 3,
                fanout: 500,
                pin: true,
                ..RunConfig::default()
            }
        );
    }

    #[test]
    fn batch_max_fail_rate_env_from_toml() {
        let text = "batch = \"25%\"\nmax_fail = 3\nrate = 50.5\npty = true\n[env]\nLANG = \"C\"\n";
        let cfg = FileConfig::parse(text, &p()).unwrap();
        let mut run = RunConfig::default();
        cfg.apply_to_run(&mut run);
        assert_eq!(run.batch, Some(Amount::Percent(25.0)));
        assert_eq!(run.max_fail, Some(Amount::Count(3)));
        assert_eq!(run.rate, Some(50.5));
        let mut job = Job::new("x");
        cfg.apply_to_job(&mut job);
        assert!(job.pty);
        assert_eq!(job.env, vec![("LANG".to_string(), "C".to_string())]);
        let msg = FileConfig::parse("batch = \"half\"", &p())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("half") && msg.contains("batch"), "{msg}");
        let msg = FileConfig::parse("rate = 0.0", &p())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("`rate`"), "{msg}");
    }

    #[test]
    fn amounts_parse_and_scale() {
        assert_eq!("10".parse::<Amount>().unwrap(), Amount::Count(10));
        assert_eq!("25%".parse::<Amount>().unwrap(), Amount::Percent(25.0));
        assert!("0%".parse::<Amount>().is_err());
        assert!("150%".parse::<Amount>().is_err());
        assert!("ten".parse::<Amount>().unwrap_err().contains("ten"));
        assert_eq!(Amount::Percent(25.0).ceil_of(10), 3);
        assert_eq!(Amount::Percent(25.0).floor_of(10), 2);
        assert_eq!(Amount::Percent(1.0).ceil_of(10), 1);
        assert_eq!(Amount::Count(0).ceil_of(10), 1);
        assert_eq!(Amount::Count(4).floor_of(10), 4);
    }

    #[test]
    fn unknown_key_is_rejected_by_name_with_file_and_line() {
        let err = FileConfig::parse("fanout = 10\nfanuot = 3\n", &p()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("fleetsh.toml"), "{msg}");
        assert!(msg.contains("fanuot"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn wrong_type_and_bad_values_are_rejected() {
        let msg = FileConfig::parse("fanout = \"many\"", &p())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("fanout"), "{msg}");
        let msg = FileConfig::parse("fanout = 0", &p())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("`fanout`"), "{msg}");
        let msg = FileConfig::parse("connect_timeout = -1", &p())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("connect_timeout"), "{msg}");
        let msg = FileConfig::parse("host_key_check = \"maybe\"", &p())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("host_key_check"), "{msg}");
    }

    #[test]
    fn host_key_check_parses_names() {
        assert_eq!(
            "strict".parse::<HostKeyCheck>().unwrap(),
            HostKeyCheck::Strict
        );
        assert_eq!(
            "accept-new".parse::<HostKeyCheck>().unwrap(),
            HostKeyCheck::AcceptNew
        );
        assert_eq!("off".parse::<HostKeyCheck>().unwrap(), HostKeyCheck::Off);
        let msg = "sometimes".parse::<HostKeyCheck>().unwrap_err().to_string();
        assert!(
            msg.contains("sometimes") && msg.contains("host_key_check"),
            "{msg}"
        );
    }

    #[test]
    fn builder_methods_set_their_fields() {
        let job = Job::new("id")
            .connect_timeout(Duration::from_secs(3))
            .command_timeout(Duration::from_secs(30))
            .idle_timeout(Duration::from_secs(5))
            .retries(2)
            .retry_delay(Duration::from_millis(100))
            .output_cap(10)
            .stream_output(true)
            .stdin("input")
            .sudo(Sudo::default())
            .pty(true)
            .env("A", "1")
            .env("B", "2");
        assert_eq!(job.command, "id");
        assert!(!job.template);
        assert_eq!(job.connect_timeout, Duration::from_secs(3));
        assert_eq!(job.command_timeout, Some(Duration::from_secs(30)));
        assert_eq!(job.idle_timeout, Some(Duration::from_secs(5)));
        assert_eq!((job.retries, job.output_cap), (2, 10));
        assert_eq!(job.retry_delay, Duration::from_millis(100));
        assert!(job.stream_output && job.pty && job.sudo.is_some());
        assert_eq!(job.stdin.as_ref().map(|s| &*s.0), Some(&b"input"[..]));
        assert_eq!(job.env.len(), 2);
        assert_eq!(job.clone().command_timeout(None).command_timeout, None);
        assert!(Job::template("echo {host}").template);
    }

    #[test]
    fn idle_timeout_and_per_host_combinations_are_checked() {
        let e = Job::new("x")
            .idle_timeout(Duration::ZERO)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("idle_timeout"), "{e}");
        assert!(Job::per_host(|t, _| t.host.clone()).validate().is_ok());
        let mut job = Job::per_host_list(["a"]);
        job.template = true;
        let e = job.validate().unwrap_err().to_string();
        assert!(e.contains("template"), "{e}");
        let e = FileConfig::parse("idle_timeout = 0", &p())
            .unwrap_err()
            .to_string();
        assert!(e.contains("`idle_timeout`"), "{e}");
    }

    #[test]
    fn job_and_run_validation_name_the_setting() {
        let mut job = Job::new("");
        assert!(job.validate().unwrap_err().to_string().contains("command"));
        job.command = "true".into();
        job.connect_timeout = Duration::ZERO;
        assert!(
            job.validate()
                .unwrap_err()
                .to_string()
                .contains("connect_timeout")
        );
        let run = RunConfig {
            fanout: 0,
            ..RunConfig::default()
        };
        assert!(run.validate().unwrap_err().to_string().contains("fanout"));
    }
}
