//! The engine builder: every option a program sets before [`build`](EngineBuilder::build), with
//! its default, and the effective settings those options give one host.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fleetsh_core::{Cipher, HostKeyCheck, HostTarget, Kex, RunConfig, SshConfig};
use fleetsh_shard::Secret;
use fleetsh_shard::ssh::auth::PassphrasePrompt;
use fleetsh_shard::ssh::auth::default_identity_files;

use crate::Error;
use crate::resolve::{Defaults, Flags, HostSettings};

/// Where the builder's ssh_config comes from.
#[derive(Debug, Clone)]
pub(super) enum SshConfigSource {
    File(PathBuf),
    Parsed(Arc<SshConfig>),
}

/// Which ssh-agent to use.
#[derive(Debug, Clone, Default)]
pub(super) enum Agent {
    /// `SSH_AUTH_SOCK` if set.
    #[default]
    FromEnv,
    /// This socket.
    Socket(PathBuf),
    /// No agent.
    Off,
}

/// Builds an [`Engine`]. Every setting has a default that suits a 10,000-host run.
///
/// [`Engine`]: crate::Engine
#[derive(Debug, Clone)]
pub struct EngineBuilder {
    pub(super) run: RunConfig,
    pub(super) user: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) identity_files: Vec<PathBuf>,
    pub(super) agent: Agent,
    pub(super) agent_concurrency: usize,
    pub(super) password: Option<Secret>,
    pub(super) passphrase: Option<Secret>,
    pub(super) known_hosts: Option<PathBuf>,
    pub(super) host_key_check: Option<HostKeyCheck>,
    pub(super) hash_known_hosts: Option<bool>,
    pub(super) connect_timeout: Option<std::time::Duration>,
    pub(super) ssh_config: Option<SshConfigSource>,
    pub(super) keepalive_interval: Option<Duration>,
    pub(super) keepalive_count: Option<u32>,
    pub(super) inactivity_timeout: Option<Duration>,
    pub(super) window_size: Option<u32>,
    pub(super) max_packet_size: Option<u32>,
    pub(super) ciphers: Option<Vec<String>>,
    #[cfg(feature = "test-hooks")]
    pub(super) panic_shard: Option<usize>,
    pub(super) jump: Vec<HostTarget>,
    pub(super) jump_fanout: usize,
    pub(super) forward_agent: bool,
    pub(super) certificate_files: Vec<PathBuf>,
    pub(super) passphrase_prompt: Option<PassphrasePrompt>,
    pub(super) kex: Kex,
    pub(super) cipher: Cipher,
    pub(super) kex_guess: bool,
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
    ///
    /// [`Engine::run`]: crate::Engine::run
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
    ///
    /// [`Engine::kex_guesses`]: crate::Engine::kex_guesses
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
    ///
    /// [`Job::command_timeout`]: crate::Job::command_timeout
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

    pub(super) fn load_ssh_config(&self) -> Result<Option<Arc<SshConfig>>, Error> {
        Ok(match &self.ssh_config {
            None => None,
            Some(SshConfigSource::Parsed(c)) => Some(c.clone()),
            Some(SshConfigSource::File(p)) => Some(Arc::new(crate::resolve::load_ssh_config(p)?)),
        })
    }

    pub(super) fn flags(&self) -> Flags {
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

    pub(super) fn defaults(&self) -> Defaults {
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
}
