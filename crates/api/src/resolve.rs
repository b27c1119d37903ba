//! Per-host settings: the target as typed, then the engine builder's settings (the command-line
//! flags), then ssh_config, then built-in defaults. [`HostSettings`] says where each value came
//! from (`fleetsh config show HOST`); the engine's resolver turns them into the shard's [`HostPlan`]s,
//! sharing one [`HostProfile`] between every host that resolves alike.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fleetsh_core::HostKeyCheck;
use fleetsh_core::HostTarget;
use fleetsh_core::ssh_config::{Query, Source, Sourced, SshConfig};
use fleetsh_shard::ssh::auth::{LoadedKey, PassphrasePrompt};
use fleetsh_shard::{AuthMaterial, HostPlan, HostProfile, Keepalive, KnownHosts, Secret};
use parking_lot::Mutex;

use crate::Error;

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// The target as typed (`user@host:port`).
    Target,
    /// The engine builder: on the command line, a flag (or the fleetsh config file).
    Flag,
    /// An ssh_config line.
    SshConfig(Source),
    /// fleetsh's built-in default.
    Default,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Target => f.write_str("target"),
            Origin::Flag => f.write_str("flag"),
            Origin::SshConfig(s) => write!(f, "{s}"),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    /// The value.
    pub value: T,
    /// Its origin.
    pub origin: Origin,
}

impl<T> Setting<T> {
    fn new(value: T, origin: Origin) -> Self {
        Setting { value, origin }
    }

    fn from_config(s: &Sourced<T>) -> Self
    where
        T: Clone,
    {
        Setting::new(s.value.clone(), Origin::SshConfig(s.source.clone()))
    }

    fn is_config(&self) -> bool {
        matches!(self.origin, Origin::SshConfig(_))
    }
}

/// The effective settings of one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSettings {
    /// The host as typed (what results and events name).
    pub host: String,
    /// The name or address connected to.
    pub hostname: Setting<String>,
    /// Remote user.
    pub user: Setting<String>,
    /// Port.
    pub port: Setting<u16>,
    /// Private key files, in the order tried.
    pub identity_files: Setting<Vec<PathBuf>>,
    /// `IdentitiesOnly`: agent keys not offered.
    pub identities_only: Setting<bool>,
    /// `CertificateFile`s: OpenSSH user certificates, each used with the key it certifies.
    pub certificate_files: Setting<Vec<PathBuf>>,
    /// `ProxyJump`, if any (`none` included).
    pub proxy_jump: Option<Setting<String>>,
    /// `ProxyCommand`, if any (`none` included; unset by `-J`, which wins).
    pub proxy_command: Option<Setting<String>>,
    /// Connect timeout (TCP, handshake, authentication).
    pub connect_timeout: Setting<Duration>,
    /// Host-key checking.
    pub host_key_check: Setting<HostKeyCheck>,
    /// known_hosts file.
    pub known_hosts: Setting<PathBuf>,
    /// Whether learned hosts are written hashed.
    pub hash_known_hosts: Setting<bool>,
    /// Keepalive interval (zero: off).
    pub server_alive_interval: Setting<Duration>,
    /// Unanswered keepalives before the connection is dropped.
    pub server_alive_count_max: Setting<u32>,
    /// ssh_config directives of the applying blocks that fleetsh does not use.
    pub ignored: Vec<Sourced<String>>,
}

impl HostSettings {
    /// `name value origin` rows, in `ssh -G` style lowercase names.
    pub fn rows(&self) -> Vec<(&'static str, String, String)> {
        fn row<T>(
            name: &'static str,
            s: &Setting<T>,
            show: impl Fn(&T) -> String,
        ) -> (&'static str, String, String) {
            (name, show(&s.value), s.origin.to_string())
        }
        let paths = |v: &Vec<PathBuf>| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        };
        let yes = |b: &bool| if *b { "yes" } else { "no" }.to_string();
        let secs = |d: &Duration| d.as_secs_f64().to_string();
        let mut rows = vec![
            ("host", self.host.clone(), "target".to_string()),
            row("hostname", &self.hostname, String::clone),
            row("user", &self.user, String::clone),
            row("port", &self.port, u16::to_string),
            row("identityfile", &self.identity_files, paths),
            row("identitiesonly", &self.identities_only, yes),
            row("certificatefile", &self.certificate_files, paths),
        ];
        match &self.proxy_jump {
            Some(j) => rows.push(row("proxyjump", j, String::clone)),
            None => rows.push(("proxyjump", "none".into(), "default".into())),
        }
        match &self.proxy_command {
            Some(c) => rows.push(row("proxycommand", c, String::clone)),
            None => rows.push(("proxycommand", "none".into(), "default".into())),
        }
        rows.extend([
            row("connecttimeout", &self.connect_timeout, secs),
            row("stricthostkeychecking", &self.host_key_check, |m| {
                m.as_str().to_string()
            }),
            row("userknownhostsfile", &self.known_hosts, |p| {
                p.display().to_string()
            }),
            row("hashknownhosts", &self.hash_known_hosts, yes),
            row("serveraliveinterval", &self.server_alive_interval, secs),
            row(
                "serveralivecountmax",
                &self.server_alive_count_max,
                u32::to_string,
            ),
        ]);
        rows
    }
}

/// The builder's explicit settings: they win over ssh_config.
#[derive(Debug, Clone, Default)]
pub(crate) struct Flags {
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_files: Vec<PathBuf>,
    pub connect_timeout: Option<Duration>,
    pub host_key_check: Option<HostKeyCheck>,
    pub known_hosts: Option<PathBuf>,
    pub hash_known_hosts: Option<bool>,
    pub certificate_files: Vec<PathBuf>,
    /// `-J` (the chain as written): wins over ssh_config's `ProxyJump`.
    pub jump: Option<String>,
    /// Keepalive interval: wins over ssh_config's `ServerAliveInterval`.
    pub keepalive_interval: Option<Duration>,
    /// Keepalive count: wins over ssh_config's `ServerAliveCountMax`.
    pub keepalive_count: Option<u32>,
}

/// Built-in defaults, for what neither flags nor ssh_config set.
#[derive(Debug, Clone)]
pub(crate) struct Defaults {
    pub user: String,
    pub identity_files: Vec<PathBuf>,
    pub known_hosts: PathBuf,
}

/// OpenSSH's default `ServerAliveCountMax`.
const DEFAULT_ALIVE_COUNT_MAX: u32 = 3;

/// The flag's value, else ssh_config's, else the default.
fn pick<T>(flag: Option<Setting<T>>, cfg: Option<Setting<T>>, default: T) -> Setting<T> {
    flag.or(cfg)
        .unwrap_or_else(|| Setting::new(default, Origin::Default))
}

/// The effective settings of `target`; `connect_timeout` is the default when neither a flag nor
/// ssh_config sets one (the job's).
pub(crate) fn host_settings(
    flags: &Flags,
    defaults: &Defaults,
    config: Option<&SshConfig>,
    target: &HostTarget,
    connect_timeout: Duration,
) -> HostSettings {
    let typed_user = target.user.as_deref().or(flags.user.as_deref());
    let r = config
        .map(|c| {
            c.resolve(Query {
                host: &target.host,
                user: typed_user,
            })
        })
        .unwrap_or_default();
    let user = match (&target.user, &flags.user) {
        (Some(u), _) => Setting::new(u.clone(), Origin::Target),
        (None, Some(u)) => Setting::new(u.clone(), Origin::Flag),
        (None, None) => pick(
            None,
            r.user.as_ref().map(Setting::from_config),
            defaults.user.clone(),
        ),
    };
    let port = match (target.port, flags.port) {
        (Some(p), _) => Setting::new(p, Origin::Target),
        (None, Some(p)) => Setting::new(p, Origin::Flag),
        (None, None) => pick(None, r.port.as_ref().map(Setting::from_config), 22),
    };
    let identity_files = if !flags.identity_files.is_empty() {
        Setting::new(flags.identity_files.clone(), Origin::Flag)
    } else if let Some(first) = r.identity_files.first() {
        Setting::new(
            r.identity_files.iter().map(|s| s.value.clone()).collect(),
            Origin::SshConfig(first.source.clone()),
        )
    } else {
        Setting::new(defaults.identity_files.clone(), Origin::Default)
    };
    let certificate_files = match r.certificate_files.first() {
        _ if !flags.certificate_files.is_empty() => {
            Setting::new(flags.certificate_files.clone(), Origin::Flag)
        }
        Some(first) => Setting::new(
            r.certificate_files
                .iter()
                .map(|s| s.value.clone())
                .collect(),
            Origin::SshConfig(first.source.clone()),
        ),
        None => Setting::new(Vec::new(), Origin::Default),
    };
    HostSettings {
        host: target.host.clone(),
        hostname: pick(
            None,
            r.hostname.as_ref().map(Setting::from_config),
            target.host.clone(),
        ),
        user,
        port,
        identity_files,
        identities_only: pick(
            None,
            r.identities_only.as_ref().map(Setting::from_config),
            false,
        ),
        certificate_files,
        proxy_jump: match &flags.jump {
            Some(j) => Some(Setting::new(j.clone(), Origin::Flag)),
            None => r.proxy_jump.as_ref().map(Setting::from_config),
        },
        proxy_command: match &flags.jump {
            Some(_) => None,
            None => r.proxy_command.as_ref().map(Setting::from_config),
        },
        connect_timeout: pick(
            flags.connect_timeout.map(|d| Setting::new(d, Origin::Flag)),
            r.connect_timeout.as_ref().map(Setting::from_config),
            connect_timeout,
        ),
        host_key_check: pick(
            flags.host_key_check.map(|m| Setting::new(m, Origin::Flag)),
            r.host_key_check.as_ref().map(Setting::from_config),
            HostKeyCheck::Strict,
        ),
        known_hosts: pick(
            flags
                .known_hosts
                .clone()
                .map(|p| Setting::new(p, Origin::Flag)),
            r.known_hosts_file.as_ref().map(Setting::from_config),
            defaults.known_hosts.clone(),
        ),
        hash_known_hosts: pick(
            flags
                .hash_known_hosts
                .map(|h| Setting::new(h, Origin::Flag)),
            r.hash_known_hosts.as_ref().map(Setting::from_config),
            false,
        ),
        server_alive_interval: pick(
            flags
                .keepalive_interval
                .map(|d| Setting::new(d, Origin::Flag)),
            r.server_alive_interval.as_ref().map(Setting::from_config),
            Duration::ZERO,
        ),
        server_alive_count_max: pick(
            flags.keepalive_count.map(|n| Setting::new(n, Origin::Flag)),
            r.server_alive_count_max.as_ref().map(Setting::from_config),
            DEFAULT_ALIVE_COUNT_MAX,
        ),
        ignored: r.ignored,
    }
}

/// What makes two hosts' profiles the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ProfileKey {
    user: Option<String>,
    port: Option<u16>,
    identity_files: Option<Vec<PathBuf>>,
    certificate_files: Vec<PathBuf>,
    identities_only: bool,
    connect_timeout: Option<Duration>,
    known_hosts: Option<(PathBuf, HostKeyCheck, bool)>,
    keepalive: Option<Keepalive>,
    proxy_jump: Option<String>,
    proxy_command: Option<String>,
}

/// Turns hosts into shard plans, with profiles, keys and known_hosts files loaded once per
/// distinct value and kept for the engine's life.
#[derive(Debug)]
pub(crate) struct Resolver {
    pub config: Arc<SshConfig>,
    pub flags: Flags,
    pub defaults: Defaults,
    pub passphrase: Option<Secret>,
    pub prompt: Option<PassphrasePrompt>,
    /// The engine's own known_hosts: reused when a profile's file, mode and hashing are the same.
    pub engine_known_hosts: Arc<KnownHosts>,
    pub hash_known_hosts: bool,
    profiles: Mutex<HashMap<ProfileKey, Arc<HostProfile>>>,
    known_hosts: Mutex<HashMap<(PathBuf, HostKeyCheck, bool), Arc<KnownHosts>>>,
}

impl Resolver {
    pub(crate) fn new(
        config: Arc<SshConfig>,
        flags: Flags,
        defaults: Defaults,
        passphrase: Option<Secret>,
        prompt: Option<PassphrasePrompt>,
        engine_known_hosts: Arc<KnownHosts>,
        hash_known_hosts: bool,
    ) -> Self {
        Resolver {
            config,
            flags,
            defaults,
            passphrase,
            prompt,
            engine_known_hosts,
            hash_known_hosts,
            profiles: Mutex::new(HashMap::new()),
            known_hosts: Mutex::new(HashMap::new()),
        }
    }

    /// One plan per target, in order. Fails when a profile's key or known_hosts file cannot
    /// be loaded (as [`crate::EngineBuilder::build`] fails for the engine's own).
    pub(crate) fn plans(
        &self,
        targets: &[HostTarget],
        connect_timeout: Duration,
    ) -> Result<Arc<[HostPlan]>, Error> {
        let mut jumps = 0usize;
        let plans = targets
            .iter()
            .map(|t| {
                let s = host_settings(
                    &self.flags,
                    &self.defaults,
                    Some(&self.config),
                    t,
                    connect_timeout,
                );
                let plan = self.plan(&s)?;
                if plan.profile.proxy_jump.is_some() {
                    jumps += 1;
                }
                Ok(plan)
            })
            .collect::<Result<Arc<[HostPlan]>, Error>>()?;
        if jumps > 0 {
            tracing::debug!("{jumps} host(s) reached through their ssh_config ProxyJump");
        }
        Ok(plans)
    }

    pub(crate) fn plan(&self, s: &HostSettings) -> Result<HostPlan, Error> {
        let known_hosts = (s.known_hosts.is_config()
            || s.host_key_check.is_config()
            || s.hash_known_hosts.is_config())
        .then(|| {
            (
                s.known_hosts.value.clone(),
                s.host_key_check.value,
                s.hash_known_hosts.value,
            )
        });
        let key = ProfileKey {
            user: s.user.is_config().then(|| s.user.value.clone()),
            port: s.port.is_config().then_some(s.port.value),
            // Keys are loaded for the profile when ssh_config names key or certificate files.
            identity_files: (s.identity_files.is_config() || s.certificate_files.is_config())
                .then(|| s.identity_files.value.clone()),
            certificate_files: s.certificate_files.value.clone(),
            identities_only: s.identities_only.value,
            connect_timeout: s
                .connect_timeout
                .is_config()
                .then_some(s.connect_timeout.value),
            known_hosts,
            // Only when ssh_config has a say: the builder's own keepalive is in the engine's
            // client configuration, shared by every host.
            keepalive: (s.server_alive_interval.is_config()
                || s.server_alive_count_max.is_config())
            .then_some(Keepalive {
                interval: s.server_alive_interval.value,
                max: s.server_alive_count_max.value as usize,
            })
            .filter(|k| !k.interval.is_zero()),
            // A `-J` flag reaches every host through its bastions; otherwise ssh_config's
            // per-host ProxyJump chain.
            proxy_jump: s
                .proxy_jump
                .as_ref()
                .filter(|j| j.is_config() && !j.value.eq_ignore_ascii_case("none"))
                .map(|j| j.value.clone()),
            proxy_command: s
                .proxy_command
                .as_ref()
                .filter(|c| !c.value.eq_ignore_ascii_case("none"))
                .map(|c| c.value.clone()),
        };
        let hostname = s.hostname.is_config().then(|| s.hostname.value.clone());
        if let Some(p) = self.profiles.lock().get(&key) {
            return Ok(HostPlan {
                hostname,
                profile: p.clone(),
            });
        }
        let profile = Arc::new(self.profile(&key)?);
        self.profiles.lock().insert(key, profile.clone());
        Ok(HostPlan { hostname, profile })
    }

    fn profile(&self, key: &ProfileKey) -> Result<HostProfile, Error> {
        let keys = match &key.identity_files {
            Some(files) => {
                // As OpenSSH: an IdentityFile that does not exist is skipped.
                let loaded: Vec<LoadedKey> = AuthMaterial::load_keys_with(
                    files,
                    &key.certificate_files,
                    false,
                    self.passphrase.as_ref(),
                    self.prompt.as_ref(),
                )?;
                Some(Arc::from(loaded))
            }
            None => None,
        };
        let known_hosts = match &key.known_hosts {
            Some(k) => Some(self.known_hosts(k)?),
            None => None,
        };
        Ok(HostProfile {
            user: key.user.clone(),
            port: key.port,
            keys,
            identities_only: key.identities_only,
            connect_timeout: key.connect_timeout,
            known_hosts,
            keepalive: key.keepalive,
            proxy_jump: key.proxy_jump.clone(),
            proxy_command: key.proxy_command.clone(),
        })
    }

    fn known_hosts(&self, k: &(PathBuf, HostKeyCheck, bool)) -> Result<Arc<KnownHosts>, Error> {
        let engine = &self.engine_known_hosts;
        if engine.path() == k.0.as_path() && engine.mode() == k.1 && self.hash_known_hosts == k.2 {
            return Ok(engine.clone());
        }
        if let Some(kh) = self.known_hosts.lock().get(k) {
            return Ok(kh.clone());
        }
        let kh = Arc::new(KnownHosts::load(&k.0, k.1)?.with_hashing(k.2));
        if k.1 == HostKeyCheck::Off {
            tracing::warn!(
                "ssh_config turns host key checking off for some hosts: they are open to man-in-the-middle attacks"
            );
        }
        self.known_hosts.lock().insert(k.clone(), kh.clone());
        Ok(kh)
    }
}

/// The local home directory and user, for ssh_config's `~`, `%d`, `%u`.
pub(crate) fn local_home_and_user() -> (Option<PathBuf>, String) {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "root".to_string());
    (home, user)
}

/// Loads an ssh_config file for the local user.
pub(crate) fn load_ssh_config(path: &Path) -> Result<SshConfig, Error> {
    let (home, user) = local_home_and_user();
    Ok(SshConfig::load(path, home.as_deref(), &user)?)
}

/// Bastions' ssh_config settings for the jump hosts (`-J alias`, `ProxyJump alias`): the
/// alias's `HostName`, `User`, `Port`, `IdentityFile` and known_hosts, as `ssh -J` uses them.
/// The fleet's `-l`, `-p` and `-J` are the targets', not the bastions'.
pub(crate) struct BastionResolver {
    pub resolver: Arc<Resolver>,
    pub connect_timeout: Duration,
}

impl fleetsh_shard::ssh::jump::BastionPlans for BastionResolver {
    fn plan(&self, hop: &HostTarget) -> Result<HostPlan, fleetsh_core::HostError> {
        let flags = Flags {
            user: None,
            port: None,
            jump: None,
            ..self.resolver.flags.clone()
        };
        let s = host_settings(
            &flags,
            &self.resolver.defaults,
            Some(&self.resolver.config),
            hop,
            self.connect_timeout,
        );
        self.resolver.plan(&s).map_err(|e| {
            fleetsh_core::HostError::new(
                fleetsh_core::ErrorKind::Jump,
                format!("bastion {hop}: its ssh_config settings: {e}"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(text: &str, dir: &Path) -> Resolver {
        let config = SshConfig::parse_text(text, Path::new("/cfg"), Some(dir), "me").unwrap();
        let kh = dir.join("known_hosts");
        Resolver::new(
            Arc::new(config),
            Flags::default(),
            Defaults {
                user: "me".into(),
                identity_files: Vec::new(),
                known_hosts: kh.clone(),
            },
            None,
            None,
            Arc::new(KnownHosts::load(&kh, HostKeyCheck::Strict).unwrap()),
            false,
        )
    }

    #[test]
    fn ten_thousand_hosts_share_their_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let r = resolver(
            "Host db*\n  User dbadmin\n  ConnectTimeout 5\n\
             Host *.dc1\n  HostName %h.example.com\n  ServerAliveInterval 10\n\
             Host *\n  Port 2222\n  StrictHostKeyChecking accept-new\n  HashKnownHosts yes\n",
            dir.path(),
        );
        let targets: Vec<HostTarget> = (0..10_000)
            .map(|i| {
                HostTarget::new(if i % 2 == 0 {
                    format!("web{i}.dc1")
                } else {
                    format!("db{i}")
                })
            })
            .collect();
        let started = std::time::Instant::now();
        let plans = r.plans(&targets, Duration::from_secs(10)).unwrap();
        eprintln!("10,000 hosts resolved in {:?}", started.elapsed());
        assert_eq!(plans.len(), 10_000);
        assert_eq!(
            r.profiles.lock().len(),
            2,
            "one profile per distinct outcome"
        );
        assert_eq!(r.known_hosts.lock().len(), 1, "one known_hosts load");
        let web = &plans[0];
        assert_eq!(web.hostname.as_deref(), Some("web0.dc1.example.com"));
        assert_eq!(web.profile.port, Some(2222));
        assert_eq!(web.profile.keepalive.map(|k| k.max), Some(3));
        let db = &plans[1];
        assert!(db.hostname.is_none());
        assert_eq!(db.profile.user.as_deref(), Some("dbadmin"));
        assert_eq!(db.profile.connect_timeout, Some(Duration::from_secs(5)));
        let kh = db.profile.known_hosts.as_ref().unwrap();
        assert_eq!(kh.mode(), HostKeyCheck::AcceptNew);
        assert!(Arc::ptr_eq(&plans[3].profile, &db.profile));
    }

    #[test]
    fn flags_win_over_ssh_config_and_origins_are_named() {
        let config = SshConfig::parse_text(
            "Host *\n  User cfg\n  Port 2\n",
            Path::new("/cfg"),
            None,
            "me",
        )
        .unwrap();
        let flags = Flags {
            port: Some(3),
            ..Flags::default()
        };
        let defaults = Defaults {
            user: "me".into(),
            identity_files: vec![PathBuf::from("/home/me/.ssh/id_ed25519")],
            known_hosts: PathBuf::from("/home/me/.ssh/known_hosts"),
        };
        let s = host_settings(
            &flags,
            &defaults,
            Some(&config),
            &"typed@h".parse().unwrap(),
            Duration::from_secs(10),
        );
        assert_eq!(s.user, Setting::new("typed".to_string(), Origin::Target));
        assert_eq!(s.port, Setting::new(3, Origin::Flag));
        assert_eq!(s.identity_files.origin, Origin::Default);
        let s = host_settings(
            &Flags::default(),
            &defaults,
            Some(&config),
            &"h".parse().unwrap(),
            Duration::from_secs(10),
        );
        assert_eq!(s.user.value, "cfg");
        assert_eq!(s.user.origin.to_string(), "/cfg:2");
        assert_eq!(s.port.value, 2);
    }
}
