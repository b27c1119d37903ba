//! The one layering of a run's settings: command-line flags ([`Flags`]) over the fleetsh config
//! file ([`FileConfig`]) over fleetsh's defaults ([`Layers`]). The connection settings it gives
//! ([`ConnectionSettings`]) are the engine's explicit settings, which win over ssh_config, itself
//! over the engine's defaults; each that a flag can set says which layer it came from
//! ([`Layer`]), as `fleetsh config show` prints.

use std::path::PathBuf;
use std::time::Duration;

use super::connection::{Cipher, HostKeyCheck, Kex};
use super::file::FileConfig;
use super::job::{Job, Sudo};
use super::run::{Amount, RunConfig};
use crate::hosts::DEFAULT_MAX_HOSTS;

/// The settings a program's command line gives. Each is `None`, empty or `false` when its flag
/// was not given: a switch (`pin`, `pty`, `sudo`, `no_kex_guess`) only turns its setting on,
/// and a list (`identity_files`, `env`) replaces the config file's only when not empty.
/// Durations are `Duration`s: the program checks the numbers its flags were given as, naming
/// its own flags in the errors.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flags {
    /// Remote user for targets that name none (`-l`).
    pub user: Option<String>,
    /// Remote port for targets that name none (`-p`).
    pub port: Option<u16>,
    /// Private key files (`-i`).
    pub identity_files: Vec<PathBuf>,
    /// OpenSSH user certificates (`--certificate`).
    pub certificate_files: Vec<PathBuf>,
    /// Connect timeout (`--connect-timeout`).
    pub connect_timeout: Option<Duration>,
    /// Host-key checking (`--host-key-check`).
    pub host_key_check: Option<HostKeyCheck>,
    /// known_hosts file (`--known-hosts`).
    pub known_hosts: Option<PathBuf>,
    /// Jump hosts for every target, as written (`-J`).
    pub jump: Option<String>,
    /// Key exchange preference (`--kex`).
    pub kex: Option<Kex>,
    /// Session cipher preference (`--cipher`).
    pub cipher: Option<Cipher>,
    /// Never guess the key exchange packet (`--no-kex-guess`).
    pub no_kex_guess: bool,
    /// Command timeout (`--command-timeout`).
    pub command_timeout: Option<Duration>,
    /// Idle timeout (`--idle-timeout`).
    pub idle_timeout: Option<Duration>,
    /// Extra connection attempts (`--retries`).
    pub retries: Option<u32>,
    /// Base delay between connection attempts (`--retry-delay`).
    pub retry_delay: Option<Duration>,
    /// Per-host cap on captured stdout and stderr, in bytes (`--output-cap`).
    pub output_cap: Option<usize>,
    /// Request a pseudo-terminal (`--pty`).
    pub pty: bool,
    /// Environment variables set on each channel (`--env`).
    pub env: Vec<(String, String)>,
    /// Run the command through sudo (`--sudo`, or a `--sudo-user`).
    pub sudo: bool,
    /// The user sudo runs the command as (`--sudo-user`).
    pub sudo_user: Option<String>,
    /// Shard threads (`--shards`).
    pub shards: Option<usize>,
    /// Hosts in flight (`--fanout`).
    pub fanout: Option<usize>,
    /// Pin shards to cores (`--pin`).
    pub pin: bool,
    /// Batch size (`--batch`).
    pub batch: Option<Amount>,
    /// Failure threshold (`--max-fail`).
    pub max_fail: Option<Amount>,
    /// New connections per second (`--rate`).
    pub rate: Option<f64>,
    /// Most hosts one run may target (`--max-hosts`).
    pub max_hosts: Option<usize>,
}

/// The layer a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// A command-line flag.
    Flag,
    /// The fleetsh config file ([`Layers::file_path`]).
    File,
}

/// A value and the layer it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layered<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub layer: Layer,
}

/// The flag's value, else the config file's, with the layer it came from.
fn pick<T>(flag: Option<T>, file: Option<T>) -> Option<Layered<T>> {
    match (flag, file) {
        (Some(value), _) => Some(Layered {
            value,
            layer: Layer::Flag,
        }),
        (None, Some(value)) => Some(Layered {
            value,
            layer: Layer::File,
        }),
        (None, None) => None,
    }
}

/// The connection settings flags and the config file give the engine. `None` (or empty) where
/// neither gives one: the engine then takes ssh_config's value, else its own default.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionSettings {
    /// Remote user for targets that name none.
    pub user: Option<Layered<String>>,
    /// Port for targets that name none.
    pub port: Option<Layered<u16>>,
    /// Private key files (the flags', else the config file's).
    pub identity_files: Option<Layered<Vec<PathBuf>>>,
    /// OpenSSH user certificates (flags only).
    pub certificate_files: Vec<PathBuf>,
    /// Connect timeout.
    pub connect_timeout: Option<Layered<Duration>>,
    /// Host-key checking.
    pub host_key_check: Option<Layered<HostKeyCheck>>,
    /// known_hosts file.
    pub known_hosts: Option<Layered<PathBuf>>,
    /// Jump hosts for every target, as written (flags only).
    pub jump: Option<String>,
    /// Key exchange preference.
    pub kex: Option<Kex>,
    /// Session cipher preference.
    pub cipher: Option<Cipher>,
    /// Whether the key exchange packet may be guessed: off with `--no-kex-guess` or
    /// `kex_guess = false`.
    pub kex_guess: bool,
    /// Exactly these session ciphers, in order (config file only).
    pub ciphers: Option<Vec<String>>,
    /// Time without data from a server before a keepalive request (config file only).
    pub keepalive_interval: Option<Duration>,
    /// Unanswered keepalive requests before the connection is dropped (config file only).
    pub keepalive_count: Option<u32>,
    /// Time without any traffic before a connection is closed (config file only).
    pub inactivity_timeout: Option<Duration>,
    /// SSH channel window in bytes (config file only).
    pub window_size: Option<u32>,
    /// Largest channel data packet accepted, in bytes (config file only).
    pub max_packet_size: Option<u32>,
}

impl ConnectionSettings {
    /// The layer of the value given for `setting`, named as `ssh -G` and `fleetsh config show`
    /// name it, for the settings a flag can set (`user`, `port`, `identityfile`,
    /// `certificatefile`, `proxyjump`, `connecttimeout`, `stricthostkeychecking`,
    /// `userknownhostsfile`); `None` for the others, and when neither layer gives a value.
    pub fn layer_of(&self, setting: &str) -> Option<Layer> {
        fn layer<T>(l: &Option<Layered<T>>) -> Option<Layer> {
            l.as_ref().map(|l| l.layer)
        }
        match setting {
            "user" => layer(&self.user),
            "port" => layer(&self.port),
            "identityfile" => layer(&self.identity_files),
            "certificatefile" => (!self.certificate_files.is_empty()).then_some(Layer::Flag),
            "proxyjump" => self.jump.as_ref().map(|_| Layer::Flag),
            "connecttimeout" => layer(&self.connect_timeout),
            "stricthostkeychecking" => layer(&self.host_key_check),
            "userknownhostsfile" => layer(&self.known_hosts),
            // Keepalive is set by the config file only, interval and count together.
            "serveraliveinterval" | "serveralivecountmax" => (self.keepalive_interval.is_some()
                || self.keepalive_count.is_some())
            .then_some(Layer::File),
            _ => None,
        }
    }
}

/// A program's settings in their layers: its flags, and the config file in use (read with
/// [`Layers::read`]). Each method gives the settings of one kind with every layer applied:
/// the flag's value, else the config file's, else fleetsh's default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layers {
    /// The command line's settings.
    pub flags: Flags,
    /// The config file's values (all `None` without a file).
    pub file: FileConfig,
    /// The config file the values were read from, if any.
    pub file_path: Option<PathBuf>,
}

impl Layers {
    /// Applies the flags and the config file to a job's limits (timeouts, retries, output
    /// cap), pseudo-terminal, environment and sudo (with `flags.sudo`; its password is left
    /// to the caller).
    pub fn apply_to_job(&self, job: &mut Job) {
        apply_to_job(&self.flags, &self.file, job);
    }

    /// Applies the flags and the config file to a run config.
    pub fn apply_to_run(&self, run: &mut RunConfig) {
        apply_to_run(&self.flags, &self.file, run);
    }

    /// A job with no command yet and every layer's limits: [`Layers::apply_to_job`] on
    /// `Job::new("")`.
    pub fn job(&self) -> Job {
        let mut job = Job::new("");
        self.apply_to_job(&mut job);
        job
    }

    /// The run config of every layer: [`Layers::apply_to_run`] on the default.
    pub fn run_config(&self) -> RunConfig {
        let mut run = RunConfig::default();
        self.apply_to_run(&mut run);
        run
    }

    /// Most hosts one run may target: `--max-hosts`, else `max_hosts`, else
    /// [`DEFAULT_MAX_HOSTS`].
    pub fn max_hosts(&self) -> usize {
        self.flags
            .max_hosts
            .or(self.file.max_hosts)
            .unwrap_or(DEFAULT_MAX_HOSTS)
    }

    /// The connection settings for the engine, each with its layer.
    pub fn connection(&self) -> ConnectionSettings {
        let (flags, file) = (&self.flags, &self.file);
        let identity_files = if flags.identity_files.is_empty() {
            pick(None, file.identity_files.clone())
        } else {
            pick(Some(flags.identity_files.clone()), None)
        };
        ConnectionSettings {
            user: pick(flags.user.clone(), file.user.clone()),
            port: pick(flags.port, file.port),
            identity_files,
            certificate_files: flags.certificate_files.clone(),
            connect_timeout: pick(flags.connect_timeout, file.connect_timeout),
            host_key_check: pick(flags.host_key_check, file.host_key_check),
            known_hosts: pick(flags.known_hosts.clone(), file.known_hosts.clone()),
            jump: flags.jump.clone(),
            kex: flags.kex.or(file.kex),
            cipher: flags.cipher.or(file.cipher),
            kex_guess: !(flags.no_kex_guess || file.kex_guess == Some(false)),
            ciphers: file.ciphers.clone(),
            keepalive_interval: file.keepalive_interval,
            keepalive_count: file.keepalive_count,
            inactivity_timeout: file.inactivity_timeout,
            window_size: file.window_size,
            max_packet_size: file.max_packet_size,
        }
    }
}

impl FileConfig {
    /// Applies the file's values to a job (command-line flags are applied after, and win).
    pub fn apply_to_job(&self, job: &mut Job) {
        apply_to_job(&Flags::default(), self, job);
    }

    /// Applies the file's values to a run config.
    pub fn apply_to_run(&self, run: &mut RunConfig) {
        apply_to_run(&Flags::default(), self, run);
    }
}

/// A switch: `Some(true)` when given, else nothing (a switch cannot turn a setting off).
fn switch(on: bool) -> Option<bool> {
    on.then_some(true)
}

fn apply_to_job(flags: &Flags, file: &FileConfig, job: &mut Job) {
    if let Some(v) = flags.connect_timeout.or(file.connect_timeout) {
        job.connect_timeout = v;
    }
    if let Some(v) = flags.command_timeout.or(file.command_timeout) {
        job.command_timeout = Some(v);
    }
    if let Some(v) = flags.idle_timeout.or(file.idle_timeout) {
        job.idle_timeout = Some(v);
    }
    if let Some(v) = flags.retries.or(file.retries) {
        job.retries = v;
    }
    if let Some(v) = flags.retry_delay.or(file.retry_delay) {
        job.retry_delay = v;
    }
    if let Some(v) = flags.output_cap.or(file.output_cap) {
        job.output_cap = v;
    }
    if let Some(v) = switch(flags.pty).or(file.pty) {
        job.pty = v;
    }
    if !flags.env.is_empty() {
        job.env = flags.env.clone();
    } else if let Some(env) = &file.env {
        job.env = env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    }
    if flags.sudo {
        job.sudo = Some(Sudo {
            user: flags.sudo_user.clone().or_else(|| file.sudo_user.clone()),
            password: None,
        });
    }
}

fn apply_to_run(flags: &Flags, file: &FileConfig, run: &mut RunConfig) {
    if let Some(v) = flags.shards.or(file.shards) {
        run.shards = v;
    }
    if let Some(v) = flags.fanout.or(file.fanout) {
        run.fanout = v;
    }
    if let Some(v) = switch(flags.pin).or(file.pin) {
        run.pin = v;
    }
    if let Some(v) = flags.batch.or(file.batch) {
        run.batch = Some(v);
    }
    if let Some(v) = flags.max_fail.or(file.max_fail) {
        run.max_fail = Some(v);
    }
    if let Some(v) = flags.rate.or(file.rate) {
        run.rate = Some(v);
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::config::Amount;

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

    fn p() -> PathBuf {
        PathBuf::from("fleetsh.toml")
    }

    #[test]
    fn flags_win_over_the_file_over_the_defaults() {
        let file = FileConfig::parse(
            "user = \"file\"\nport = 2200\nconnect_timeout = 3\nretries = 2\nfanout = 50\n\
             max_hosts = 7\nidentity_files = [\"/f/id\"]\nkex_guess = false\nsudo_user = \"ops\"\n\
             pty = true\n[env]\nA = \"1\"\n",
            &p(),
        )
        .unwrap();
        let mut layers = Layers {
            flags: Flags::default(),
            file,
            file_path: Some(p()),
        };
        // Without flags, the layers give what the file alone gives.
        let (mut alone, mut layered) = (Job::new("x"), Job::new("x"));
        layers.file.apply_to_job(&mut alone);
        layers.apply_to_job(&mut layered);
        assert_eq!(alone, layered);
        assert_eq!((layers.job().retries, layers.run_config().fanout), (2, 50));
        assert_eq!(layers.max_hosts(), 7);
        assert!(layers.job().sudo.is_none(), "sudo only with the flag");
        let c = layers.connection();
        assert_eq!(c.layer_of("user"), Some(Layer::File));
        assert_eq!(c.layer_of("identityfile"), Some(Layer::File));
        assert_eq!(c.layer_of("stricthostkeychecking"), None);
        assert_eq!(c.layer_of("serveraliveinterval"), None);
        assert!(!c.kex_guess);

        layers.flags = Flags {
            user: Some("flag".into()),
            connect_timeout: Some(Duration::from_secs(9)),
            identity_files: vec![PathBuf::from("/flag/id")],
            env: vec![("B".into(), "2".into())],
            sudo: true,
            fanout: Some(5),
            max_hosts: Some(70),
            ..Flags::default()
        };
        let job = layers.job();
        assert_eq!(job.connect_timeout, Duration::from_secs(9));
        assert_eq!(job.retries, 2);
        assert!(job.pty, "a switch not given leaves the file's value");
        assert_eq!(job.env, [("B".to_string(), "2".to_string())]);
        assert_eq!(job.sudo.and_then(|s| s.user).as_deref(), Some("ops"));
        assert_eq!(layers.run_config().fanout, 5);
        assert_eq!(layers.max_hosts(), 70);
        let c = layers.connection();
        assert_eq!(
            c.user.as_ref().map(|u| (u.value.as_str(), u.layer)),
            Some(("flag", Layer::Flag))
        );
        assert_eq!(c.layer_of("port"), Some(Layer::File));
        assert_eq!(
            c.identity_files.as_ref().map(|l| l.value.clone()),
            Some(vec![PathBuf::from("/flag/id")])
        );
        assert_eq!(c.layer_of("connecttimeout"), Some(Layer::Flag));

        let defaults = Layers::default();
        assert_eq!(defaults.job(), Job::new(""));
        assert_eq!(defaults.run_config(), RunConfig::default());
        assert_eq!(defaults.max_hosts(), DEFAULT_MAX_HOSTS);
        assert!(defaults.connection().kex_guess);
    }
}
