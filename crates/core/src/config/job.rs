//! What to run on every host ([`Job`]): the command or transfer, its per-host limits, and the
//! retry backoff between connection attempts.

use std::time::Duration;

use crate::{Error, HostTarget, Secret};

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
    /// Run the command through sudo. With a password, `sudo -S` with a prompt of fleetsh's
    /// making: the password is sent on stdin only when that prompt appears (never in the
    /// command line, never in results), and the command's own input only once sudo has let it
    /// start.
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
    /// The sudo password, sent on stdin when sudo asks for it (never where it does not: root,
    /// a `NOPASSWD` rule, a cached login).
    pub password: Option<Secret>,
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

    use super::*;
    use crate::config::{FileConfig, RunConfig};
    use std::path::Path;

    fn p() -> &'static Path {
        Path::new("fleetsh.toml")
    }

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
        let e = FileConfig::parse("idle_timeout = 0", p())
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
