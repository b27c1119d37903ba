//! Turning a builder's options into an [`Engine`]: the client configuration, keys, ssh-agent,
//! known_hosts and the ssh_config resolver, each checked once, with the errors that would fail
//! every host found before any run.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use fleetsh_core::config::DEFAULT_KEEPALIVE_COUNT;
use fleetsh_core::{Cipher, HostKeyCheck};
use fleetsh_shard::ssh::auth::default_identity_files;
use fleetsh_shard::{AuthMaterial, Keepalive, KnownHosts, ShardConfig, SshSettings};

use super::builder::{Agent, EngineBuilder};
use super::run::Engine;
use crate::Error;
use crate::resolve::Resolver;

impl EngineBuilder {
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
        let resolver = self.ssh_config_resolver(&known_hosts, hash_known_hosts)?;

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

    /// The per-host resolver of the builder's ssh_config, if it has one; logs the ssh_config
    /// options fleetsh ignores (a warning for those that change how ssh would connect).
    fn ssh_config_resolver(
        &self,
        known_hosts: &Arc<KnownHosts>,
        hash_known_hosts: bool,
    ) -> Result<Option<Arc<Resolver>>, Error> {
        Ok(match self.load_ssh_config()? {
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
        })
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
}
