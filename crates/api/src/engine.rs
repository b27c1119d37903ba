//! The engine and its builder.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fleetsh_core::config::DEFAULT_KEEPALIVE_COUNT;
use fleetsh_core::{
    Action, Cipher, GetPlan, HostKeyCheck, HostTarget, Job, Kex, PutPlan, RunConfig, SshConfig,
};
use fleetsh_shard::executor::{CancelToken, OutputBudget, RunParts};
use fleetsh_shard::ssh::auth::PassphrasePrompt;
use fleetsh_shard::ssh::auth::default_identity_files;
use fleetsh_shard::ssh::jump::Jumps;
use fleetsh_shard::{
    AuthMaterial, Keepalive, KnownHosts, Pool, RunShared, Secret, ShardConfig, SshSettings,
};
use tokio::sync::Notify;

use crate::resolve::{Defaults, Flags, HostSettings, Resolver};
use crate::run::Starter;
use crate::{ConnectedFleet, Error, RunHandle};

/// Where the builder's ssh_config comes from.
#[derive(Debug, Clone)]
enum SshConfigSource {
    File(PathBuf),
    Parsed(Arc<SshConfig>),
}

/// Which ssh-agent to use.
#[derive(Debug, Clone, Default)]
enum Agent {
    /// `SSH_AUTH_SOCK` if set.
    #[default]
    FromEnv,
    /// This socket.
    Socket(PathBuf),
    /// No agent.
    Off,
}

/// Builds an [`Engine`]. Every setting has a default that suits a 10,000-host run.
#[derive(Debug, Clone)]
pub struct EngineBuilder {
    run: RunConfig,
    user: Option<String>,
    port: Option<u16>,
    identity_files: Vec<PathBuf>,
    agent: Agent,
    agent_concurrency: usize,
    password: Option<Secret>,
    passphrase: Option<Secret>,
    known_hosts: Option<PathBuf>,
    host_key_check: Option<HostKeyCheck>,
    hash_known_hosts: Option<bool>,
    connect_timeout: Option<std::time::Duration>,
    ssh_config: Option<SshConfigSource>,
    keepalive_interval: Option<Duration>,
    keepalive_count: Option<u32>,
    inactivity_timeout: Option<Duration>,
    window_size: Option<u32>,
    max_packet_size: Option<u32>,
    ciphers: Option<Vec<String>>,
    #[cfg(feature = "test-hooks")]
    panic_shard: Option<usize>,
    jump: Vec<HostTarget>,
    jump_fanout: usize,
    forward_agent: bool,
    certificate_files: Vec<PathBuf>,
    passphrase_prompt: Option<PassphrasePrompt>,
    kex: Kex,
    cipher: Cipher,
    kex_guess: bool,
}

impl Default for EngineBuilder {
    fn default() -> Self {
        EngineBuilder {
            run: RunConfig::default(),
            user: None,
            port: None,
            identity_files: Vec::new(),
            agent: Agent::FromEnv,
            agent_concurrency: 4,
            password: None,
            passphrase: None,
            known_hosts: None,
            host_key_check: None,
            hash_known_hosts: None,
            connect_timeout: None,
            ssh_config: None,
            keepalive_interval: None,
            keepalive_count: None,
            inactivity_timeout: None,
            window_size: None,
            max_packet_size: None,
            ciphers: None,
            #[cfg(feature = "test-hooks")]
            panic_shard: None,
            jump: Vec::new(),
            jump_fanout: fleetsh_shard::ssh::jump::DEFAULT_JUMP_FANOUT,
            forward_agent: false,
            certificate_files: Vec::new(),
            passphrase_prompt: None,
            kex: Kex::Default,
            cipher: Cipher::Auto,
            kex_guess: true,
        }
    }
}

impl EngineBuilder {
    /// Shard threads (`0`, the default: one per CPU).
    pub fn shards(mut self, n: usize) -> Self {
        self.run.shards = n;
        self
    }

    /// Hosts in flight across all shards (default [`crate::DEFAULT_FANOUT`]).
    ///
    /// Each host in flight holds one open file (its socket). When a run or a connected fleet
    /// starts, the engine raises the process's open-files soft limit to its hard limit and,
    /// if the hosts in flight (this fanout, or fewer hosts), the descriptors already open,
    /// one per bastion connection and a reserve of 64 still would not fit, uses a lower
    /// fanout for that run and logs why, once per engine (a `tracing` warning naming the
    /// limit, the fanout asked and the fanout used). A limit with no room for one host is an
    /// [`EngineError::NoFiles`](crate::EngineError::NoFiles) from [`Engine::run`].
    pub fn fanout(mut self, n: usize) -> Self {
        self.run.fanout = n;
        self
    }

    /// Pin each shard thread to a core.
    pub fn pin(mut self, pin: bool) -> Self {
        self.run.pin = pin;
        self
    }

    /// Run hosts in successive batches of this size (see [`RunConfig::batch`]).
    pub fn batch(mut self, size: fleetsh_core::Amount) -> Self {
        self.run.batch = Some(size);
        self
    }

    /// Stop starting hosts once more than this many have failed (see [`RunConfig::max_fail`]).
    pub fn max_fail(mut self, threshold: fleetsh_core::Amount) -> Self {
        self.run.max_fail = Some(threshold);
        self
    }

    /// At most this many new connections per second across all shards.
    pub fn rate(mut self, per_second: f64) -> Self {
        self.run.rate = Some(per_second);
        self
    }

    /// Shards, fanout, pinning, batches, max-fail and rate at once.
    pub fn run_config(mut self, run: RunConfig) -> Self {
        self.run = run;
        self
    }

    /// User for targets that name none (default: `$USER`, else `root`).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Port for targets that name none (default 22).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Adds a private key file. When any is given, the default key files are not used (as with
    /// OpenSSH's `-i`).
    pub fn identity_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.identity_files.push(path.into());
        self
    }

    /// Uses the ssh-agent at this socket instead of `SSH_AUTH_SOCK`.
    pub fn agent_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.agent = Agent::Socket(path.into());
        self
    }

    /// Does not use ssh-agent.
    pub fn no_agent(mut self) -> Self {
        self.agent = Agent::Off;
        self
    }

    /// Password for password authentication, tried after keys.
    pub fn password(mut self, password: Secret) -> Self {
        self.password = Some(password);
        self
    }

    /// Passphrase for encrypted key files.
    pub fn passphrase(mut self, passphrase: Secret) -> Self {
        self.passphrase = Some(passphrase);
        self
    }

    /// known_hosts file (default `~/.ssh/known_hosts`).
    pub fn known_hosts(mut self, path: impl Into<PathBuf>) -> Self {
        self.known_hosts = Some(path.into());
        self
    }

    /// Host-key checking mode (default strict).
    pub fn host_key_check(mut self, mode: HostKeyCheck) -> Self {
        self.host_key_check = Some(mode);
        self
    }
    /// Whether hosts learned in accept-new mode are written hashed (`|1|salt|hash`), as with
    /// OpenSSH's `HashKnownHosts yes` (default off).
    pub fn hash_known_hosts(mut self, hash: bool) -> Self {
        self.hash_known_hosts = Some(hash);
        self
    }

    /// Connect timeout for every host, over the job's and ssh_config's `ConnectTimeout`.
    pub fn connect_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Reads this OpenSSH client configuration file (and its `Include`s) at
    /// [`build`](Self::build): per host, its `HostName`, `User`, `Port`, `IdentityFile`,
    /// `IdentitiesOnly`, `ConnectTimeout`, `StrictHostKeyChecking`, `UserKnownHostsFile`,
    /// `HashKnownHosts`, `ServerAliveInterval`/`ServerAliveCountMax` and `ProxyJump` apply where
    /// this builder sets nothing (see `docs/connecting.md`). Off by default for the library.
    pub fn ssh_config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ssh_config = Some(SshConfigSource::File(path.into()));
        self
    }

    /// As [`ssh_config_file`](Self::ssh_config_file), with a configuration already parsed.
    pub fn ssh_config(mut self, config: SshConfig) -> Self {
        self.ssh_config = Some(SshConfigSource::Parsed(Arc::new(config)));
        self
    }

    fn load_ssh_config(&self) -> Result<Option<Arc<SshConfig>>, Error> {
        Ok(match &self.ssh_config {
            None => None,
            Some(SshConfigSource::Parsed(c)) => Some(c.clone()),
            Some(SshConfigSource::File(p)) => Some(Arc::new(crate::resolve::load_ssh_config(p)?)),
        })
    }

    fn flags(&self) -> Flags {
        Flags {
            user: self.user.clone(),
            port: self.port,
            identity_files: self.identity_files.clone(),
            connect_timeout: self.connect_timeout,
            host_key_check: self.host_key_check,
            known_hosts: self.known_hosts.clone(),
            hash_known_hosts: self.hash_known_hosts,
            certificate_files: self.certificate_files.clone(),
            keepalive_interval: self.keepalive_interval,
            keepalive_count: self.keepalive_count,
            jump: (!self.jump.is_empty()).then(|| {
                self.jump
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            }),
        }
    }

    fn defaults(&self) -> Defaults {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        Defaults {
            user: std::env::var("USER")
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "root".to_string()),
            identity_files: home
                .as_deref()
                .map(default_identity_files)
                .unwrap_or_default(),
            known_hosts: home
                .unwrap_or_else(|| PathBuf::from("/"))
                .join(".ssh")
                .join("known_hosts"),
        }
    }

    /// The effective settings for `target` under this builder and its ssh_config, with the
    /// origin of each value (what `fleetsh config show HOST` prints). Reads the ssh_config file
    /// if one was given; loads no key.
    pub fn host_settings(&self, target: &HostTarget) -> Result<HostSettings, Error> {
        let config = self.load_ssh_config()?;
        Ok(crate::resolve::host_settings(
            &self.flags(),
            &self.defaults(),
            config.as_deref(),
            target,
            crate::DEFAULT_CONNECT_TIMEOUT,
        ))
    }

    /// How runs are spread over shard threads.
    fn shard_config(&self) -> ShardConfig {
        ShardConfig {
            shards: self.run.shards,
            fanout: self.run.fanout,
            pin: self.run.pin,
            #[cfg(feature = "test-hooks")]
            panic_shard: self.panic_shard,
        }
    }

    /// Test hook (with the `test-hooks` feature, for fleetsh's own tests): the given shard
    /// panics as it starts.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn panic_shard_for_test(mut self, shard: usize) -> Self {
        self.panic_shard = Some(shard);
        self
    }

    /// Reach every host through these jump hosts (bastions), first hop first, as OpenSSH's
    /// `-J`: one SSH connection per bastion carries the `direct-tcpip` tunnels of all the hosts
    /// behind it; each host is still authenticated and host-key checked end to end. A bastion
    /// without a port uses 22, without a user the default user.
    pub fn jump(mut self, chain: Vec<HostTarget>) -> Self {
        self.jump = chain;
        self
    }

    /// `-J` syntax: `[user@]host[:port][,[user@]host[:port]...]`.
    pub fn jump_spec(self, spec: &str) -> Result<Self, Error> {
        let chain = fleetsh_shard::ssh::jump::parse_chain(spec).map_err(|reason| {
            fleetsh_core::Error::InvalidSetting {
                setting: "jump",
                reason,
            }
        })?;
        Ok(self.jump(chain))
    }

    /// Most tunnels open at once through one bastion (default 256).
    pub fn jump_fanout(mut self, n: usize) -> Self {
        self.jump_fanout = n;
        self
    }

    /// Forward the ssh-agent to every command (`ssh -A`): while a command runs, its server can
    /// use the agent's keys (to reach other hosts, fetch from git...). Off by default: a
    /// compromised server could use the keys for as long as the command runs. Refused by the
    /// server (OpenSSH `AllowAgentForwarding no`): a warning, the command still runs.
    pub fn forward_agent(mut self, on: bool) -> Self {
        self.forward_agent = on;
        self
    }

    /// An OpenSSH user certificate (`CertificateFile`), used with the loaded private key it
    /// certifies (repeatable). `KEY-cert.pub` beside a key file is found without this.
    pub fn certificate_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.certificate_files.push(path.into());
        self
    }

    /// Asks for the passphrase of an encrypted key that [`EngineBuilder::passphrase`] does not
    /// open: called once per key when the engine is built, never per host.
    pub fn passphrase_prompt(mut self, prompt: PassphrasePrompt) -> Self {
        self.passphrase_prompt = Some(prompt);
        self
    }

    /// Key exchange preference ([`Kex::Default`]: the post-quantum hybrid first, as OpenSSH;
    /// [`Kex::Curve25519`]: curve25519 first, cheaper per handshake, for very large fleets).
    pub fn kex(mut self, kex: Kex) -> Self {
        self.kex = kex;
        self
    }

    /// Session cipher preference ([`Cipher::Auto`]: AES-256-GCM first when this CPU has AES and
    /// carry-less multiply instructions, else ChaCha20-Poly1305; [`Cipher::AesGcm`];
    /// [`Cipher::Chacha20`], for servers without AES instructions). Every choice offers the
    /// same set of ciphers, only their order differs; [`EngineBuilder::ciphers`] names the set
    /// itself.
    pub fn cipher(mut self, cipher: Cipher) -> Self {
        self.cipher = cipher;
        self
    }

    /// Whether a handshake may send its key exchange packet with its KEXINIT, guessing that
    /// the server puts the same algorithms first (on by default). A right guess saves one
    /// round trip per host; a wrong one costs an unused key pair, and the engine stops
    /// guessing until a server agrees again ([`Engine::kex_guesses`] counts both). Turn it off
    /// for a server that mishandles guesses (RFC 4253 §7.1 requires servers to accept them).
    pub fn kex_guess(mut self, on: bool) -> Self {
        self.kex_guess = on;
        self
    }

    /// Exactly these session ciphers, in this order of preference, by their OpenSSH names
    /// (`Ciphers` in ssh_config, `ssh -c`): `aes256-gcm@openssh.com`,
    /// `chacha20-poly1305@openssh.com`, `aes128-gcm@openssh.com`, `aes256-ctr`, `aes192-ctr`,
    /// `aes128-ctr`. A name outside that list, or an empty list, is refused by
    /// [`build`](Self::build) naming the setting `ciphers`; so is combining this with a
    /// [`cipher`](Self::cipher) preference other than [`Cipher::Auto`]. Most programs want
    /// [`cipher`](Self::cipher) instead, which keeps the whole safe set.
    pub fn ciphers<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.ciphers = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Sends a keepalive request (`keepalive@openssh.com`) after this long without data from
    /// a server, as OpenSSH's `ServerAliveInterval` (default: off). With
    /// [`keepalive_count`](Self::keepalive_count) it detects a connection that died silently
    /// (a server that hangs hard, a network partition): after `count` requests in a row go
    /// unanswered, the next interval closes the connection, so a dead server is detected
    /// about `(count + 1) × interval` after its last packet, and the host ends with
    /// [`ErrorKind::Disconnected`](crate::ErrorKind::Disconnected) (its message names the
    /// keepalives; output received before is kept), instead of waiting for its command
    /// timeout. Keepalives start once the host has authenticated (the connect timeout covers
    /// the handshake). Overrides ssh_config's `ServerAliveInterval`. Zero is refused by
    /// [`build`](Self::build).
    pub fn keepalive_interval(mut self, interval: Duration) -> Self {
        self.keepalive_interval = Some(interval);
        self
    }

    /// Unanswered keepalive requests before the connection is dropped, as OpenSSH's
    /// `ServerAliveCountMax` (default 3; only with
    /// [`keepalive_interval`](Self::keepalive_interval)). Overrides ssh_config's
    /// `ServerAliveCountMax`. Zero is refused by [`build`](Self::build).
    pub fn keepalive_count(mut self, count: u32) -> Self {
        self.keepalive_count = Some(count);
        self
    }

    /// Closes a connection that neither sent nor received anything for this long (default:
    /// off; a command's own limit is [`Job::command_timeout`]). A host whose connection is
    /// closed this way while its command runs ends with
    /// [`ErrorKind::Disconnected`](crate::ErrorKind::Disconnected), its message naming the
    /// inactivity timeout, output received before kept. A command that is silent longer than
    /// this (`sleep`) is cut off too, unless keepalives
    /// ([`keepalive_interval`](Self::keepalive_interval) shorter than this) keep traffic
    /// flowing. Zero is refused by [`build`](Self::build).
    pub fn inactivity_timeout(mut self, timeout: Duration) -> Self {
        self.inactivity_timeout = Some(timeout);
        self
    }

    /// Bytes a server may send on a channel before fleetsh acknowledges them (the SSH channel
    /// window; default 2 MiB). A larger window speeds up transfers over links with a high
    /// bandwidth × latency product; each host in flight may then hold up to this much
    /// unread output. [`build`](Self::build) refuses a window smaller than the maximum packet
    /// size ([`max_packet_size`](Self::max_packet_size)), naming `window_size`.
    pub fn window_size(mut self, bytes: u32) -> Self {
        self.window_size = Some(bytes);
        self
    }

    /// The largest channel data packet fleetsh accepts from a server (default 32 KiB, as
    /// OpenSSH). [`build`](Self::build) refuses a value outside
    /// [`MIN_PACKET_SIZE`](crate::MIN_PACKET_SIZE)`..=`[`MAX_PACKET_SIZE`](crate::MAX_PACKET_SIZE) (1 KiB to 64 KiB − 1: an SSH packet must
    /// fit a TCP segment of 65,535 bytes), naming `max_packet_size`.
    pub fn max_packet_size(mut self, bytes: u32) -> Self {
        self.max_packet_size = Some(bytes);
        self
    }

    /// The russh client configuration from the algorithm, keepalive, timeout and channel
    /// options, each checked.
    fn client_config(&self) -> Result<fleetsh_shard::ClientConfig, Error> {
        let invalid = |setting: &'static str, reason: String| -> Error {
            fleetsh_core::Error::InvalidSetting { setting, reason }.into()
        };
        if self.keepalive_interval.is_some_and(|d| d.is_zero()) {
            return Err(invalid(
                "keepalive_interval",
                "must be more than zero (leave it unset for no keepalives)".into(),
            ));
        }
        if self.keepalive_count == Some(0) {
            return Err(invalid(
                "keepalive_count",
                "must be at least 1 (unanswered keepalives before the connection is dropped)"
                    .into(),
            ));
        }
        if self.keepalive_count.is_some() && self.keepalive_interval.is_none() {
            tracing::debug!("keepalive_count is set without keepalive_interval: no keepalives");
        }
        if self.inactivity_timeout.is_some_and(|d| d.is_zero()) {
            return Err(invalid(
                "inactivity_timeout",
                "must be more than zero (leave it unset for no inactivity timeout)".into(),
            ));
        }
        let (window, packet) =
            fleetsh_core::config::channel_sizes(self.window_size, self.max_packet_size)?;
        if self.ciphers.is_some() && self.cipher != Cipher::Auto {
            return Err(invalid(
                "ciphers",
                format!(
                    "cannot be combined with the cipher preference {:?}: the list sets the order itself",
                    self.cipher
                ),
            ));
        }
        let options = fleetsh_shard::ClientOptions {
            kex: self.kex,
            cipher: self.cipher,
            ciphers: self.ciphers.clone(),
            kex_guess: self.kex_guess,
            keepalive: self.keepalive_interval.map(|interval| Keepalive {
                interval,
                max: self.keepalive_count.unwrap_or(DEFAULT_KEEPALIVE_COUNT) as usize,
            }),
            inactivity_timeout: self.inactivity_timeout,
            // The checked values, defaults included: what the docs name is what is sent.
            window_size: Some(window),
            maximum_packet_size: Some(packet),
        };
        fleetsh_shard::client_config_with(&options).map_err(|reason| invalid("ciphers", reason))
    }

    /// Fails (or warns, when ssh_config may still name a key per host) when no key, agent
    /// or password could authenticate: every host would fail.
    fn check_credentials(
        &self,
        key_files: &[PathBuf],
        no_keys: bool,
        agent: Option<&std::path::Path>,
    ) -> Result<(), Error> {
        let agent_ok = agent.is_some_and(std::path::Path::exists);
        if !no_keys || agent_ok || self.password.is_some() {
            return Ok(());
        }
        let keys = if key_files.is_empty() {
            "no key file ($HOME is not set)".to_string()
        } else {
            format!(
                "no key file (looked for {})",
                key_files
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let agent = match (&self.agent, agent) {
            (Agent::Off, _) => "no ssh-agent (turned off)".to_string(),
            (_, Some(p)) => format!("no ssh-agent (socket {} does not exist)", p.display()),
            (_, None) => "no ssh-agent (SSH_AUTH_SOCK is not set)".to_string(),
        };
        let detail = format!(
            "{keys}, {agent}, no password; give a key file (fleetsh -i KEY; \
             EngineBuilder::identity_file), an agent (SSH_AUTH_SOCK; agent_socket) or a \
             password (FLEETSH_PASSWORD; password)"
        );
        if self.ssh_config.is_some() {
            tracing::warn!(
                "no credentials outside ssh_config: {detail}; hosts whose ssh_config block names \
                 no IdentityFile will fail authentication"
            );
            return Ok(());
        }
        Err(fleetsh_shard::Error::NoCredentials { detail }.into())
    }

    /// Fails (or warns, when ssh_config may still name a file per host) when strict
    /// host-key checking has no known_hosts file: every host would fail its host-key check.
    fn check_known_hosts(&self, path: &std::path::Path, mode: HostKeyCheck) -> Result<(), Error> {
        if mode != HostKeyCheck::Strict || path.exists() {
            return Ok(());
        }
        if self.ssh_config.is_some() {
            tracing::warn!(
                "known_hosts file {} does not exist: with strict host-key checking, hosts whose \
                 ssh_config block names no UserKnownHostsFile (or StrictHostKeyChecking \
                 accept-new) will fail their host-key check",
                path.display()
            );
            return Ok(());
        }
        Err(fleetsh_shard::Error::NoKnownHosts {
            path: path.to_path_buf(),
        }
        .into())
    }

    /// Checks every setting, loads keys and known_hosts once and returns the engine.
    ///
    /// Fails, naming the setting or file and how to fix it, on:
    /// - a setting out of range ([`Error::Input`] with [`InputError::InvalidSetting`]:
    ///   `fanout`, `max_packet_size`, `window_size`, `keepalive_interval`, `ciphers`, ...);
    /// - a key file named with [`identity_file`](Self::identity_file) that cannot be used
    ///   ([`EngineError::Key`]), a known_hosts file that cannot be read
    ///   ([`EngineError::KnownHosts`]), an ssh_config that cannot be parsed;
    /// - what would fail every host: strict host-key checking (the default) with a
    ///   known_hosts file that does not exist ([`EngineError::NoKnownHosts`]), or no
    ///   credentials at all: no usable key file, no ssh-agent socket, no password
    ///   ([`EngineError::NoCredentials`]).
    ///
    /// With an ssh_config ([`ssh_config_file`](Self::ssh_config_file)), whose blocks may name
    /// an `IdentityFile` or `UserKnownHostsFile` per host, the last two are a `tracing`
    /// warning instead. A missing known_hosts file in accept-new mode is normal (it is
    /// created as hosts are learned) and host-key checking off needs none.
    ///
    /// [`InputError::InvalidSetting`]: crate::InputError::InvalidSetting
    /// [`EngineError::Key`]: crate::EngineError::Key
    /// [`EngineError::KnownHosts`]: crate::EngineError::KnownHosts
    /// [`EngineError::NoKnownHosts`]: crate::EngineError::NoKnownHosts
    /// [`EngineError::NoCredentials`]: crate::EngineError::NoCredentials
    pub fn build(self) -> Result<Engine, Error> {
        self.run.validate()?;
        let client = Arc::new(self.client_config()?);
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let (files, explicit) = if self.identity_files.is_empty() {
            (
                home.as_deref()
                    .map(default_identity_files)
                    .unwrap_or_default(),
                false,
            )
        } else {
            (self.identity_files.clone(), true)
        };
        let keys = AuthMaterial::load_keys_with(
            &files,
            &self.certificate_files,
            explicit,
            self.passphrase.as_ref(),
            self.passphrase_prompt.as_ref(),
        )?;
        let agent = match &self.agent {
            Agent::Off => None,
            Agent::Socket(p) => Some(p.clone()),
            Agent::FromEnv => std::env::var_os("SSH_AUTH_SOCK")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
        };
        let known_hosts_path = match &self.known_hosts {
            Some(p) => p.clone(),
            None => home
                .unwrap_or_else(|| PathBuf::from("/"))
                .join(".ssh")
                .join("known_hosts"),
        };
        let host_key_check = self.host_key_check.unwrap_or_default();
        let hash_known_hosts = self.hash_known_hosts.unwrap_or(false);
        self.check_credentials(&files, keys.is_empty(), agent.as_deref())?;
        self.check_known_hosts(&known_hosts_path, host_key_check)?;
        let known_hosts = Arc::new(
            KnownHosts::load(&known_hosts_path, host_key_check)?.with_hashing(hash_known_hosts),
        );
        let resolver = match self.load_ssh_config()? {
            Some(config) => {
                for i in config.ignored() {
                    if fleetsh_core::ssh_config::changes_connection(&i.value) {
                        tracing::warn!(
                            "ssh_config {}: {} is not supported by fleetsh and is ignored, although it changes how ssh would connect",
                            i.source,
                            i.value
                        );
                    } else {
                        tracing::debug!(
                            "ssh_config {}: {} is not used by fleetsh",
                            i.source,
                            i.value
                        );
                    }
                }
                Some(Arc::new(Resolver::new(
                    config,
                    self.flags(),
                    self.defaults(),
                    self.passphrase.clone(),
                    self.passphrase_prompt.clone(),
                    known_hosts.clone(),
                    hash_known_hosts,
                )))
            }
            None => None,
        };

        let default_user = self
            .user
            .clone()
            .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| "root".to_string());
        let settings = SshSettings {
            client,
            auth: AuthMaterial {
                keys,
                agent,
                password: self.password.clone(),
                agent_concurrency: self.agent_concurrency,
            },
            known_hosts,
            default_user,
            default_port: self.port.unwrap_or(22),
            client_variants: Default::default(),
            jump: self.jump.clone(),
            jump_fanout: self.jump_fanout,
            forward_agent: self.forward_agent,
        };
        Ok(Engine {
            settings: Arc::new(settings),
            resolver: resolver.clone(),
            connect_timeout: self.connect_timeout,
            run: self.run.clone(),
            shard: self.shard_config(),
            fanout_lowered: Arc::new(AtomicBool::new(false)),
            proxy_commands: resolver
                .as_ref()
                .is_some_and(|r| r.config.has_proxy_command() && self.jump.is_empty()),
        })
    }
}

/// A configured engine: auth material and known_hosts loaded once, reused by every run.
#[derive(Debug, Clone)]
pub struct Engine {
    settings: Arc<SshSettings>,
    resolver: Option<Arc<Resolver>>,
    connect_timeout: Option<std::time::Duration>,
    run: RunConfig,
    shard: ShardConfig,
    /// Whether the fanout was already lowered to fit the open-files limit (warned once).
    fanout_lowered: Arc<AtomicBool>,
    /// Whether some hosts may be reached through a `ProxyCommand` (two pipes each).
    proxy_commands: bool,
}

impl Engine {
    /// A builder with default settings.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// Starts `job` on `hosts` and returns at once; results arrive through the handle. Fails only
    /// on a bad job, an empty host list, an open-files limit with no room for a host, or when
    /// the shards cannot start; host failures are results. The fanout may be lowered to fit
    /// the open-files limit (see [`EngineBuilder::fanout`]).
    pub fn run(
        &self,
        hosts: impl IntoIterator<Item = HostTarget>,
        job: Job,
    ) -> Result<RunHandle, Error> {
        let targets: Arc<[HostTarget]> = hosts.into_iter().collect();
        if targets.is_empty() {
            return Err(fleetsh_core::Error::NoHosts.into());
        }
        let shard = self.fit_open_files(targets.len())?;
        self.start_run(targets, job, Starter::Fresh(shard), self.jumps())
    }

    /// The shard configuration with the fanout lowered, if needed, so that the hosts in
    /// flight (one socket each) and the bastion connections fit the open-files limit, after
    /// raising its soft value to the hard one. Warns once per engine when it lowers.
    fn fit_open_files(&self, hosts: usize) -> Result<ShardConfig, Error> {
        let mut shard = self.shard.clone();
        let asked = shard.fanout.min(hosts).max(1);
        let bastions = self.settings.jump.len() as u64;
        // A host reached through a ProxyCommand holds two pipes to its process, not a socket.
        let per_host = if self.proxy_commands { 2 } else { 1 };
        let fit = match fleetsh_shard::limits::fit_fanout(asked, per_host, bastions) {
            Ok(fit) => fit,
            Err(e) => {
                tracing::debug!("open-files limit not checked: {e}");
                return Ok(shard);
            }
        };
        if fit.used == 0 {
            return Err(fleetsh_shard::Error::NoFiles {
                limit: fit.limit,
                open: fit.open,
                reserve: fleetsh_shard::limits::FD_RESERVE + bastions,
            }
            .into());
        }
        if fit.used < asked {
            if !self.fanout_lowered.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    limit = fit.limit,
                    fanout_asked = asked,
                    fanout_used = fit.used,
                    "lowering fanout from {asked} to {} to fit the open-files limit ({}; {} descriptors already open, one per host in flight, {} kept in reserve)",
                    fit.used,
                    fit.limit,
                    fit.open,
                    fleetsh_shard::limits::FD_RESERVE + bastions,
                );
            } else {
                tracing::debug!(
                    "fanout {asked} lowered to {} for the open-files limit ({})",
                    fit.used,
                    fit.limit
                );
            }
            shard.fanout = fit.used;
        }
        Ok(shard)
    }

    /// A connected fleet keeps one connection, one descriptor, per host, whatever the fanout:
    /// warns when `hosts` of them would not fit in the open-files limit (raised to the hard
    /// limit where allowed), naming the numbers and what to do.
    pub(crate) fn check_kept_connections(&self, hosts: usize) {
        let bastions = self.settings.jump.len() as u64;
        match fleetsh_shard::limits::fit_fanout(hosts.max(1), 1, bastions) {
            Ok(fit) if fit.used < hosts => tracing::warn!(
                limit = fit.limit,
                hosts,
                "a connected fleet of {hosts} hosts keeps {hosts} connections, and the \
                 open-files limit ({}; {} descriptors already open, {} kept in reserve) leaves \
                 room for {}: hosts beyond will fail with 'Too many open files'; raise the hard \
                 limit (ulimit -Hn, LimitNOFILE=) or connect the fleet in parts",
                fit.limit,
                fit.open,
                fleetsh_shard::limits::FD_RESERVE + bastions,
                fit.used,
            ),
            Ok(_) => {}
            Err(e) => tracing::debug!("open-files limit not checked: {e}"),
        }
    }

    /// Starts shard threads that keep `hosts`' connections open between runs: the returned
    /// [`ConnectedFleet`] runs several jobs in turn on the same authenticated connections, one
    /// channel per command, as parallel-ssh's client does between `run_command` calls.
    /// Connections are made by the first run that reaches a host and kept, or at once by
    /// [`ConnectedFleet::connect_all`]; a kept connection found closed is re-established once
    /// before the host is failed.
    pub fn connect(
        &self,
        hosts: impl IntoIterator<Item = HostTarget>,
    ) -> Result<ConnectedFleet, Error> {
        let targets: Arc<[HostTarget]> = hosts.into_iter().collect();
        if targets.is_empty() {
            return Err(fleetsh_core::Error::NoHosts.into());
        }
        self.check_kept_connections(targets.len());
        let pool = Pool::start(targets.len(), &self.fit_open_files(targets.len())?)?;
        Ok(ConnectedFleet::new(
            self.clone(),
            targets,
            pool,
            self.jumps(),
        ))
    }

    /// Bastion connections for a run or a connected fleet (nothing starts without jump hosts).
    pub(crate) fn jumps(&self) -> Arc<Jumps> {
        let jumps = Jumps::new(self.settings.jump.clone(), self.settings.jump_fanout);
        Arc::new(match &self.resolver {
            Some(r) => jumps.with_plans(Arc::new(crate::resolve::BastionResolver {
                resolver: r.clone(),
                connect_timeout: self
                    .connect_timeout
                    .unwrap_or(fleetsh_core::config::DEFAULT_CONNECT_TIMEOUT),
            })),
            None => jumps,
        })
    }

    pub(crate) fn start_run(
        &self,
        targets: Arc<[HostTarget]>,
        job: Job,
        starter: Starter,
        jumps: Arc<Jumps>,
    ) -> Result<RunHandle, Error> {
        let all: Vec<usize> = (0..targets.len()).collect();
        self.start_run_on(targets, &all, job, starter, jumps)
    }

    /// Starts `job` on the hosts `subset` (indices into `targets`, each at most once; results
    /// carry these indices).
    pub(crate) fn start_run_on(
        &self,
        targets: Arc<[HostTarget]>,
        subset: &[usize],
        job: Job,
        starter: Starter,
        jumps: Arc<Jumps>,
    ) -> Result<RunHandle, Error> {
        let mut job = job;
        if let Some(t) = self.connect_timeout {
            job.connect_timeout = t;
        }
        job.validate()?;
        let plans = match &self.resolver {
            Some(r) => Some(r.plans(&targets, job.connect_timeout)?),
            None => None,
        };
        crate::per_host::resolve(&mut job, &targets, subset, &self.settings, plans.as_ref())?;
        let n = subset.len();
        let size = self.run.batch.map_or(n, |b| b.ceil_of(n)).max(1);
        let batches = subset.chunks(size).map(Arc::from).collect();
        let parts = RunParts {
            targets,
            job: Arc::new(job),
            settings: self.settings.clone(),
            plans,
            shared: Arc::new(RunShared::new(
                self.run.max_fail.map(|m| m.floor_of(n)),
                self.run.rate,
            )),
            cancel: CancelToken::new(),
            notify: Arc::new(Notify::new()),
            budget: OutputBudget::default(),
            jumps,
        };
        if self.settings.known_hosts.mode() == HostKeyCheck::Off {
            tracing::warn!(
                "host key checking is off: connections are open to man-in-the-middle attacks"
            );
        }
        Ok(RunHandle::start(parts, batches, starter)?)
    }

    /// Uploads `plan` to every host over SFTP (see [`fleetsh_core::transfer`] for where files
    /// land). Each local file was read once into the plan and is shared by every host; each
    /// file is written under a temporary name and renamed into place, so a failed or
    /// cancelled upload never leaves a partial target. Results carry
    /// [`HostResult::transfer`](crate::HostResult::transfer) counts;
    /// [`Event::Transferred`] reports progress.
    ///
    /// `template` gives the limits (connect/command timeouts, retries); its command and
    /// action are ignored. Use `Job::new("")` for the defaults.
    ///
    /// [`Event::Transferred`]: fleetsh_core::Event::Transferred
    pub fn copy_to(
        &self,
        hosts: impl IntoIterator<Item = HostTarget>,
        plan: PutPlan,
        template: &Job,
    ) -> Result<RunHandle, Error> {
        let job = template.clone().action(Action::Put(Arc::new(plan)));
        self.run(hosts, job)
    }

    /// Downloads `plan.remotes` from every host over SFTP into `plan.local_dir/HOST/`, where
    /// `HOST` is the host as given (so hosts never overwrite each other's files). Names the
    /// server sends are checked: nothing is ever written outside that directory. Files are
    /// written under a temporary name and renamed into place.
    pub fn copy_from(
        &self,
        hosts: impl IntoIterator<Item = HostTarget>,
        plan: GetPlan,
        template: &Job,
    ) -> Result<RunHandle, Error> {
        let job = template.clone().action(Action::Get(Arc::new(plan)));
        self.run(hosts, job)
    }

    /// The same engine (keys, known_hosts, settings shared) with another fanout: for runs
    /// that step their concurrency, such as `fleetsh bench`.
    pub fn with_fanout(&self, fanout: usize) -> Engine {
        let mut e = self.clone();
        e.run.fanout = fanout.max(1);
        e.shard.fanout = fanout.max(1);
        e
    }

    /// The number of shard threads a run of `hosts` hosts would use.
    pub fn shards_for(&self, hosts: usize) -> usize {
        self.shard.effective_shards(hosts)
    }

    /// The configured fanout.
    pub fn fanout(&self) -> usize {
        self.shard.fanout
    }

    /// The user for targets that name none.
    pub fn default_user(&self) -> &str {
        &self.settings.default_user
    }

    /// The port for targets that name none.
    pub fn default_port(&self) -> u16 {
        self.settings.default_port
    }

    /// How the key exchange guesses of this engine's handshakes so far went (every run and
    /// connected fleet of this engine and its [`with_fanout`](Self::with_fanout) copies), or
    /// `None` when it does not guess ([`EngineBuilder::kex_guess`]).
    pub fn kex_guesses(&self) -> Option<KexGuesses> {
        let hint = self.settings.client.kex_guess.as_ref()?;
        Some(KexGuesses {
            right: hint.right(),
            wrong: hint.wrong(),
        })
    }
}

/// Counts of key exchange guesses ([`Engine::kex_guesses`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct KexGuesses {
    /// Handshakes whose guess the server answered: each saved one round trip.
    pub right: u64,
    /// Handshakes whose guess the server ignored (its first choices were not ours): each
    /// cost an unused key pair and packet. After one, the engine stops guessing until a
    /// server agrees with its first choices again.
    pub wrong: u64,
}
