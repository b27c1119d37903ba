//! What to run ([`Job`]), how to run it ([`RunConfig`]), and the TOML file that gives defaults
//! for both ([`FileConfig`]).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::Error;

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

/// One command to run on every host, and its per-host limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The command line, sent as the SSH exec request (the remote shell interprets it).
    pub command: String,
    /// Limit for TCP connect + SSH handshake + authentication, per attempt.
    pub connect_timeout: Duration,
    /// Limit for the command, from the exec request to the exit status. `None`: no limit.
    pub command_timeout: Option<Duration>,
    /// Extra connection attempts after a connect or handshake failure (never after the command
    /// started).
    pub retries: u32,
    /// Delay between connection attempts.
    pub retry_delay: Duration,
    /// Per-host cap on captured stdout and on captured stderr (each), in bytes. Output beyond the
    /// cap is still read from the channel (so the server never stalls) and dropped, and the result
    /// is flagged `truncated`.
    pub output_cap: usize,
    /// Whether to stream output chunks as [`crate::Event::Output`] events while hosts run
    /// (needed to print lines as they arrive; not needed when only results are used).
    pub stream_output: bool,
}

impl Job {
    /// A job running `command` with default limits.
    pub fn new(command: impl Into<String>) -> Self {
        Job {
            command: command.into(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: None,
            retries: 0,
            retry_delay: DEFAULT_RETRY_DELAY,
            output_cap: DEFAULT_OUTPUT_CAP,
            stream_output: false,
        }
    }

    /// Checks that the limits can work.
    pub fn validate(&self) -> Result<(), Error> {
        if self.command.is_empty() {
            return Err(Error::InvalidSetting {
                setting: "command",
                reason: "the command is empty".into(),
            });
        }
        if self.connect_timeout.is_zero() {
            return Err(Error::InvalidSetting {
                setting: "connect_timeout",
                reason: "must be greater than zero".into(),
            });
        }
        if self.command_timeout.is_some_and(|d| d.is_zero()) {
            return Err(Error::InvalidSetting {
                setting: "command_timeout",
                reason: "must be greater than zero".into(),
            });
        }
        Ok(())
    }
}

/// How a run is executed: shards, fanout, pinning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunConfig {
    /// Number of shard threads. `0` means one per CPU.
    pub shards: usize,
    /// Hosts in flight across all shards; each shard keeps at most its share in flight.
    pub fanout: usize,
    /// Pin each shard thread to a core (`core_affinity`). A failed pin is logged, not fatal.
    pub pin: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            shards: 0,
            fanout: DEFAULT_FANOUT,
            pin: false,
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
        if self.shards > 1024 {
            return Err(Error::InvalidSetting {
                setting: "shards",
                reason: format!("{} is more than the maximum of 1024", self.shards),
            });
        }
        Ok(())
    }
}

/// How the server's host key is checked against known_hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
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
            ("retry_delay", self.retry_delay),
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
        if self.port == Some(0) {
            return Err(bad("port", "must be 1-65535".into()));
        }
        Ok(())
    }

    /// Applies the file's values to a job (command-line flags are applied after, and win).
    pub fn apply_to_job(&self, job: &mut Job) {
        if let Some(v) = self.connect_timeout {
            job.connect_timeout = Duration::from_secs_f64(v);
        }
        if let Some(v) = self.command_timeout {
            job.command_timeout = Some(Duration::from_secs_f64(v));
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> PathBuf {
        PathBuf::from("fleetsh.toml")
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
                pin: true
            }
        );
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
