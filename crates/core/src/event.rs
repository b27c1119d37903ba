//! What a run reports: streamed [`Event`]s and one [`HostResult`] per host.

use std::fmt;
use std::time::Duration;

use crate::HostTarget;

/// Why a host did not run its command to completion. Stable names (see [`ErrorKind::as_str`]) are
/// used in JSON output and are part of the public interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The host name could not be resolved to an address.
    Resolve,
    /// The TCP connection was refused or the host was unreachable.
    Connect,
    /// The TCP connection, SSH handshake or authentication did not finish within the connect timeout.
    ConnectTimeout,
    /// The SSH handshake (version exchange, key exchange) failed.
    Handshake,
    /// The server's host key is unknown (strict), changed, or revoked.
    Hostkey,
    /// Every authentication method was refused, or sudo refused the password it was given
    /// (it asked for it again).
    Auth,
    /// The session channel could not be opened or the exec request was refused.
    Channel,
    /// The command did not finish within the command timeout, or sent no output for the idle
    /// timeout (the message says which). Output received so far is kept.
    CommandTimeout,
    /// The connection was lost while the command ran. Output received so far is kept.
    Disconnected,
    /// The run was cancelled before this host finished. Output received so far is kept.
    Cancelled,
    /// A bug or an internal failure (e.g. a shard thread panicked).
    Internal,
    /// Not started because the run's failure threshold (max-fail) was passed.
    Skipped,
    /// A file transfer failed: the server has no SFTP subsystem or refused an operation, a
    /// local file could not be written, or the server sent an unsafe name. Files completed
    /// before the failure are kept and counted.
    Transfer,
    /// A jump host (bastion) could not be reached or authenticated, refused the tunnel to this
    /// host, or its connection was lost while this host needed it. The message names it.
    Jump,
    /// An earlier run kept in the same journal sent this host its command and stopped before
    /// recording a result: the command may have run. Not run again unless asked.
    Unknown,
    /// Not run: in a merge of a split run's journals, no journal started this host (its
    /// controller stopped before it, or its part's journal is missing).
    Missing,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 16] = [
        ErrorKind::Resolve,
        ErrorKind::Connect,
        ErrorKind::ConnectTimeout,
        ErrorKind::Handshake,
        ErrorKind::Hostkey,
        ErrorKind::Auth,
        ErrorKind::Channel,
        ErrorKind::CommandTimeout,
        ErrorKind::Disconnected,
        ErrorKind::Cancelled,
        ErrorKind::Internal,
        ErrorKind::Skipped,
        ErrorKind::Transfer,
        ErrorKind::Jump,
        ErrorKind::Unknown,
        ErrorKind::Missing,
    ];

    /// The stable name: `resolve`, `connect`, `connect_timeout`, `handshake`, `hostkey`, `auth`,
    /// `channel`, `command_timeout`, `disconnected`, `cancelled`, `internal`, `skipped`,
    /// `transfer`, `jump`, `unknown`, `missing`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Resolve => "resolve",
            ErrorKind::Connect => "connect",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::Handshake => "handshake",
            ErrorKind::Hostkey => "hostkey",
            ErrorKind::Auth => "auth",
            ErrorKind::Channel => "channel",
            ErrorKind::CommandTimeout => "command_timeout",
            ErrorKind::Disconnected => "disconnected",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Internal => "internal",
            ErrorKind::Skipped => "skipped",
            ErrorKind::Transfer => "transfer",
            ErrorKind::Jump => "jump",
            ErrorKind::Unknown => "unknown",
            ErrorKind::Missing => "missing",
        }
    }

    /// Whether a failure of this kind happened before the command started, so that retrying the
    /// host cannot run the command twice. Only these kinds are retried.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Connect | ErrorKind::ConnectTimeout | ErrorKind::Handshake
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ErrorKind {
    type Err = UnknownErrorKind;

    /// The kind with this stable name ([`ErrorKind::as_str`]).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownErrorKind(s.to_string()))
    }
}

/// A name that is none of [`ErrorKind::as_str`]'s: the name as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error kind {0:?}")]
pub struct UnknownErrorKind(pub String);

/// A host's failure: a typed kind and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError {
    /// The kind, stable across releases.
    pub kind: ErrorKind,
    /// A lowercase message saying what happened (never contains secrets).
    pub message: String,
}

impl HostError {
    /// A new error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        HostError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for HostError {}

/// Time spent in each phase of a host's run, measured from the moment the host was started.
/// A phase that was not reached is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// TCP connect (including name resolution), successful attempt only.
    pub connect: Option<Duration>,
    /// SSH handshake (version exchange, key exchange, host-key check) and authentication.
    pub handshake_auth: Option<Duration>,
    /// Session channel open, with its environment and pty requests.
    pub channel_open: Option<Duration>,
    /// The exec request, until the server confirmed it (or sent output).
    pub exec: Option<Duration>,
    /// Reading the command's output: from the exec confirmation to the end of its output (EOF,
    /// or the exit status when the server sends no EOF).
    pub read: Option<Duration>,
    /// From the end of output to the channel's close.
    pub close: Option<Duration>,
    /// From the start of the host to the first byte of output (stdout or stderr).
    pub first_byte: Option<Duration>,
    /// From the start of the host (first attempt) to its result.
    pub total: Duration,
}

/// Which output stream bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// The command's standard output.
    Stdout,
    /// The command's standard error (SSH extended data type 1).
    Stderr,
}

/// The one result of one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostResult {
    /// The host's position in the run's host list.
    pub index: usize,
    /// The target as run: user and port are filled in with the values used.
    pub target: HostTarget,
    /// The command's exit status, if the server sent one.
    pub exit_code: Option<u32>,
    /// The signal that killed the command (name without `SIG`, e.g. `KILL`), if any.
    pub signal: Option<String>,
    /// Captured standard output, at most the job's `output_cap` bytes.
    pub stdout: Vec<u8>,
    /// Captured standard error, at most the job's `output_cap` bytes.
    pub stderr: Vec<u8>,
    /// Whether output was dropped because it exceeded the cap (the rest was still drained).
    pub truncated: bool,
    /// Why the host failed, if it did. Output already received is kept alongside.
    pub error: Option<HostError>,
    /// Per-phase timings.
    pub timings: Timings,
    /// How many connection attempts were made (1 + retries used).
    pub attempts: u32,
    /// For file transfers: files and bytes moved (also when the host later failed).
    pub transfer: Option<crate::TransferStats>,
    /// The job only connected and authenticated ([`Action::Connect`](crate::Action::Connect)):
    /// no command ran, so there is no exit status, and without an error the host is OK.
    pub connect_only: bool,
    /// What the server is and what the connection negotiated, once the key exchange is done
    /// (also for a host that then failed, e.g. at authentication); `None` for a host whose
    /// handshake did not get that far.
    pub server: Option<ServerInfo>,
}

/// A server as its SSH connection showed it: its identification and the algorithms the key
/// exchange settled on with fleetsh. Across a fleet it answers audit questions: which hosts
/// run which SSH server, which connections got a post-quantum key exchange (what was
/// negotiated with fleetsh's offer, not all a server supports: fleetsh does not offer
/// `sntrup761x25519`, so OpenSSH 9.0 to 9.8 settle on `curve25519-sha256` with it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ServerInfo {
    /// The server's identification line without its line end
    /// (`SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3`).
    pub version: String,
    /// The key exchange negotiated (`mlkem768x25519-sha256`, `curve25519-sha256`, ...).
    pub kex: String,
    /// The host key algorithm negotiated (`ssh-ed25519`, `rsa-sha2-512`, a certificate type
    /// such as `ssh-ed25519-cert-v01@openssh.com`).
    pub host_key: String,
    /// The session cipher, client to server (`aes256-gcm@openssh.com`, ...).
    pub cipher: String,
}

impl HostResult {
    /// A result for a host that failed before producing anything.
    pub fn failed(index: usize, target: HostTarget, error: HostError) -> Self {
        HostResult {
            index,
            target,
            exit_code: None,
            signal: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
            truncated: false,
            error: Some(error),
            timings: Timings::default(),
            attempts: 0,
            transfer: None,
            connect_only: false,
            server: None,
        }
    }

    /// Whether the host ended without being started: skipped (`max-fail`), cancelled before
    /// its first connection attempt, or missing from a merged run.
    pub fn never_started(&self) -> bool {
        self.attempts == 0
            && self.error.as_ref().is_some_and(|e| {
                matches!(
                    e.kind,
                    ErrorKind::Cancelled | ErrorKind::Skipped | ErrorKind::Missing
                )
            })
    }

    /// The outcome class of this result.
    pub fn outcome(&self) -> Outcome {
        if let Some(e) = &self.error {
            return Outcome::Failed(e.kind);
        }
        if let Some(sig) = &self.signal {
            return Outcome::Signal(sig.clone());
        }
        match self.exit_code {
            None if self.transfer.is_some() || self.connect_only => Outcome::Ok,
            Some(0) => Outcome::Ok,
            Some(code) => Outcome::Exit(code),
            None => Outcome::Failed(ErrorKind::Disconnected),
        }
    }

    /// True when the command ran and exited 0 (for a transfer: it completed; for a
    /// connect-only job: the host connected and authenticated).
    pub fn is_ok(&self) -> bool {
        self.outcome() == Outcome::Ok
    }
}

/// A coarse classification of a [`HostResult`], for summaries and exit statuses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// The command exited 0 (a transfer completed; a connect-only job connected).
    Ok,
    /// The command exited with this non-zero status.
    Exit(u32),
    /// The command was killed by this signal.
    Signal(String),
    /// The host failed with this error kind.
    Failed(ErrorKind),
}

/// What a run streams to its caller, in arrival order per host.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// Bytes of output from a host (only when the job streams output).
    Output {
        /// The host's index in the run's host list.
        host: usize,
        /// Which stream.
        stream: StreamKind,
        /// The bytes, as received (not split into lines).
        data: Vec<u8>,
    },
    /// A host finished: its one and only result.
    Finished(std::sync::Arc<HostResult>),
    /// Progress of a file transfer on a host: files and bytes completed since the host's
    /// previous `Transferred` event.
    Transferred {
        /// The host's index in the run's host list.
        host: usize,
        /// Files completed since the previous event.
        files: u64,
        /// Bytes moved since the previous event.
        bytes: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kind_names_are_stable_and_unique() {
        let names: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "resolve",
                "connect",
                "connect_timeout",
                "handshake",
                "hostkey",
                "auth",
                "channel",
                "command_timeout",
                "disconnected",
                "cancelled",
                "internal",
                "skipped",
                "transfer",
                "jump",
                "unknown",
                "missing"
            ]
        );
    }

    #[test]
    fn only_pre_command_failures_are_retryable() {
        let retryable: Vec<ErrorKind> = ErrorKind::ALL
            .into_iter()
            .filter(|k| k.is_retryable())
            .collect();
        assert_eq!(
            retryable,
            [
                ErrorKind::Connect,
                ErrorKind::ConnectTimeout,
                ErrorKind::Handshake
            ]
        );
    }

    #[test]
    fn outcome_classifies_results() {
        let t = HostTarget::new("h");
        let mut r = HostResult::failed(0, t, HostError::new(ErrorKind::Auth, "x"));
        assert_eq!(r.outcome(), Outcome::Failed(ErrorKind::Auth));
        r.error = None;
        r.exit_code = Some(0);
        assert!(r.is_ok());
        r.exit_code = Some(3);
        assert_eq!(r.outcome(), Outcome::Exit(3));
        r.signal = Some("KILL".into());
        assert_eq!(r.outcome(), Outcome::Signal("KILL".into()));
    }
}
