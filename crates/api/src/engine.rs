//! The engine and its builder.

use std::path::PathBuf;
use std::sync::Arc;

use fleetsh_core::{
    Action, Cipher, GetPlan, HostKeyCheck, HostTarget, Job, Kex, PutPlan, RunConfig, SshConfig,
};
use fleetsh_shard::auth::PassphrasePrompt;
use fleetsh_shard::auth::default_identity_files;
use fleetsh_shard::executor::{CancelToken, OutputBudget, RunParts};
use fleetsh_shard::jump::Jumps;
use fleetsh_shard::{AuthMaterial, KnownHosts, Pool, RunShared, Secret, ShardConfig, SshSettings};
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
    client: Option<Arc<russh::client::Config>>,
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
            client: None,
            panic_shard: None,
            jump: Vec::new(),
            jump_fanout: fleetsh_shard::jump::DEFAULT_JUMP_FANOUT,
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

    /// A custom russh client configuration (algorithms, windows). `nodelay` should stay on.
    pub fn client_config(mut self, config: russh::client::Config) -> Self {
        self.client = Some(Arc::new(config));
        self
    }

    /// Test hook: the given shard panics as it starts.
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
        let chain = fleetsh_shard::jump::parse_chain(spec).map_err(|reason| {
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
    /// Not combinable with [`EngineBuilder::client_config`] (set `preferred.kex` there).
    pub fn kex(mut self, kex: Kex) -> Self {
        self.kex = kex;
        self
    }

    /// Session cipher preference ([`Cipher::Auto`]: AES-256-GCM first when this CPU has AES and
    /// carry-less multiply instructions, else ChaCha20-Poly1305; [`Cipher::AesGcm`];
    /// [`Cipher::Chacha20`], for servers without AES instructions). Not combinable with
    /// [`EngineBuilder::client_config`] (set `preferred.cipher` there).
    pub fn cipher(mut self, cipher: Cipher) -> Self {
        self.cipher = cipher;
        self
    }

    /// Whether a handshake may send its key exchange packet with its KEXINIT, guessing that
    /// the server puts the same algorithms first (on by default). A right guess saves one
    /// round trip per host; a wrong one costs an unused key pair, and the engine stops
    /// guessing until a server agrees again (`russh::client::KexGuess`). Turn it off for a
    /// server that mishandles guesses (RFC 4253 §7.1 requires servers to accept them).
    /// Not combinable with [`EngineBuilder::client_config`] (set `kex_guess` there).
    pub fn kex_guess(mut self, on: bool) -> Self {
        self.kex_guess = on;
        self
    }

    /// Loads keys and known_hosts once and returns the engine.
    pub fn build(self) -> Result<Engine, Error> {
        self.run.validate()?;
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
        let known_hosts = Arc::new(
            KnownHosts::load(&known_hosts_path, host_key_check)?.with_hashing(hash_known_hosts),
        );
        let resolver = match self.load_ssh_config()? {
            Some(config) => {
                for i in config.ignored() {
                    tracing::debug!(
                        "ssh_config {}: {} is not used by fleetsh",
                        i.source,
                        i.value
                    );
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
        // A custom client_config carries its own algorithms and guess: the settings that would
        // change them are refused, naming where to set them instead, not silently ignored.
        let refused = |setting: &'static str, field: &str| fleetsh_core::Error::InvalidSetting {
            setting,
            reason: format!(
                "cannot be combined with a custom client_config: set {field} in that config instead"
            ),
        };
        let client = match (&self.client, self.kex, self.cipher) {
            (Some(_), ..) if !self.kex_guess => {
                return Err(refused("kex_guess", "kex_guess").into());
            }
            (Some(_), Kex::Curve25519, _) => return Err(refused("kex", "preferred.kex").into()),
            (Some(_), _, Cipher::AesGcm | Cipher::Chacha20) => {
                return Err(refused("cipher", "preferred.cipher").into());
            }
            (Some(c), Kex::Default, Cipher::Auto) => c.clone(),
            (None, kex, cipher) => {
                let mut c = fleetsh_shard::default_client_config();
                if kex == Kex::Curve25519 {
                    c.preferred.kex = fleetsh_shard::curve25519_first(&c.preferred.kex).into();
                }
                c.preferred.cipher = fleetsh_shard::ciphers_for(cipher).into();
                if !self.kex_guess {
                    c.kex_guess = None;
                }
                Arc::new(c)
            }
        };
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
            resolver,
            connect_timeout: self.connect_timeout,
            run: self.run.clone(),
            shard: ShardConfig {
                shards: self.run.shards,
                fanout: self.run.fanout,
                pin: self.run.pin,
                panic_shard: self.panic_shard,
            },
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
}

impl Engine {
    /// A builder with default settings.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// Starts `job` on `hosts` and returns at once; results arrive through the handle. Fails only
    /// on a bad job or when the shards cannot start; host failures are results.
    pub fn run(
        &self,
        hosts: impl IntoIterator<Item = HostTarget>,
        job: Job,
    ) -> Result<RunHandle, Error> {
        let targets: Arc<[HostTarget]> = hosts.into_iter().collect();
        if targets.is_empty() {
            return Err(fleetsh_core::Error::NoHosts.into());
        }
        self.start_run(
            targets,
            job,
            Starter::Fresh(self.shard.clone()),
            self.jumps(),
        )
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
        let pool = Pool::start(targets.len(), &self.shard)?;
        Ok(ConnectedFleet::new(
            self.clone(),
            targets,
            pool,
            self.jumps(),
        ))
    }

    /// Bastion connections for a run or a connected fleet (nothing starts without jump hosts).
    pub(crate) fn jumps(&self) -> Arc<Jumps> {
        Arc::new(Jumps::new(
            self.settings.jump.clone(),
            self.settings.jump_fanout,
        ))
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
    /// [`HostResult::transfer`] counts; [`Event::Transferred`] reports progress.
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
