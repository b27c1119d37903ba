//! What a script runs with and writes to: the host and user, variables, standard input, the
//! output sink and the file descriptors of one command. A leaf of the shell: it uses no other
//! part of it.

use super::stdin::Stdin;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub(crate) use super::stdin::CHUNK;

/// Size of the virtual file `/srv/data/26k.txt`.
pub(crate) const FILE_26K_LEN: usize = 26_000;

/// Which output stream of the command a piece of output belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Standard output (SSH channel data).
    Stdout,
    /// Standard error (SSH extended data, code 1).
    Stderr,
}

/// The reader of the output went away (client disconnected or closed the channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closed;

/// Receives a script's output as it is produced.
///
/// `write` may wait (for example for SSH window space): that is how backpressure reaches
/// the shell. It returns [`Closed`] when nobody reads any more; the script stops then.
pub(crate) trait Sink: Send {
    /// Writes one piece of output.
    fn write(
        &mut self,
        stream: Stream,
        data: Cow<'static, [u8]>,
    ) -> impl Future<Output = Result<(), Closed>> + Send;
}

/// How a script ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Normal end with this exit status.
    Status(u32),
    /// Killed by this signal (name without the `SIG` prefix, e.g. `KILL`).
    Signal(&'static str),
}

/// What the shell knows about the host it runs on.
#[derive(Debug, Clone)]
pub(crate) struct ShellHost {
    /// Host name, printed by `hostname` and `cat /etc/hostname`.
    pub(crate) name: String,
    /// The value of `$$`.
    pub(crate) pid: u32,
}

/// Longest line `read`, `sudo` and `head -n` take from stdin in one piece.
pub(super) const MAX_LINE: usize = 1 << 20;

/// Longest script `sh` reads from stdin.
pub(super) const MAX_STDIN_SCRIPT: usize = 1 << 20;

/// How deeply `sh -c` / `sudo sh -c` may nest.
pub(super) const MAX_DEPTH: u32 = 32;

/// Everything a script runs with besides its output: where and as whom it runs, its
/// variables, whether it has a terminal, and its standard input.
#[derive(Debug)]
pub(crate) struct Context {
    /// The host it runs on.
    pub(crate) host: ShellHost,
    /// The effective user: the login user, or the target user inside `sudo`.
    pub(crate) user: String,
    /// The environment the client set (SSH `env` requests), printed by `env`.
    pub(crate) env: BTreeMap<String, String>,
    /// A pty was allocated: what commands read from stdin is echoed to stdout, as a
    /// terminal echoes typed lines.
    pub(crate) pty: bool,
    /// The password `sudo` accepts; `None`: `sudo` always fails.
    pub(crate) sudo_password: Option<Arc<str>>,
    /// The prompt `sudo` prints whatever `-p` asks, if any.
    pub(crate) sudo_own_prompt: Option<Arc<str>>,
    /// A second question `sudo` asks after the right password, if any.
    pub(crate) sudo_then_ask: Option<Arc<str>>,
    /// Standard input, shared by every command of the script.
    pub(crate) stdin: Stdin,
    /// The client's forwarded agent (after an `auth-agent-req@openssh.com`), for
    /// `ssh-add`.
    pub(crate) agent: Option<Arc<dyn AgentLink>>,
    /// Shell variables (`read`, `NAME=value`); they shadow `env`.
    pub(super) vars: HashMap<String, String>,
    /// `$?`.
    pub(super) status: u32,
    /// Nesting depth of `sh -c`.
    pub(super) depth: u32,
}

impl Context {
    /// A context for `user` on `host`: no environment, no pty, no sudo, empty stdin.
    pub(crate) fn new(host: ShellHost, user: impl Into<String>) -> Context {
        Context {
            host,
            user: user.into(),
            env: BTreeMap::new(),
            pty: false,
            sudo_password: None,
            sudo_own_prompt: None,
            sudo_then_ask: None,
            stdin: Stdin::empty(),
            agent: None,
            vars: HashMap::new(),
            status: 0,
            depth: 0,
        }
    }

    /// The value of `$name`: shell variables, then the client's environment, then what
    /// the login sets (`HOSTNAME`, `USER`, `LOGNAME`, `HOME`, `SHELL`).
    pub(super) fn var(&self, name: &str) -> Option<Cow<'_, str>> {
        if let Some(v) = self.vars.get(name).or_else(|| self.env.get(name)) {
            return Some(Cow::Borrowed(v));
        }
        Some(match name {
            "HOSTNAME" => Cow::Borrowed(self.host.name.as_str()),
            "USER" | "LOGNAME" => Cow::Borrowed(self.user.as_str()),
            "HOME" => Cow::Owned(home_of(&self.user)),
            "SHELL" => Cow::Borrowed("/bin/sh"),
            _ => return None,
        })
    }

    /// What a subshell (`sh -c`, `sudo`) may change and must give back.
    pub(super) fn save(&self) -> Saved {
        Saved {
            user: self.user.clone(),
            vars: self.vars.clone(),
            env: self.env.clone(),
            status: self.status,
        }
    }

    /// Undoes a subshell's changes.
    pub(super) fn restore(&mut self, saved: Saved) {
        self.user = saved.user;
        self.vars = saved.vars;
        self.env = saved.env;
        self.status = saved.status;
    }
}

/// See [`Context::save`].
pub(super) struct Saved {
    pub(super) user: String,
    pub(super) vars: HashMap<String, String>,
    pub(super) env: BTreeMap<String, String>,
    pub(super) status: u32,
}

/// `$HOME` of a user.
pub(super) fn home_of(user: &str) -> String {
    if user == "root" {
        "/root".to_owned()
    } else {
        format!("/home/{user}")
    }
}

/// Where one of a command's output descriptors points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    Stream(Stream),
    Null,
}

/// Where a (sub)shell's descriptors 1 and 2 point before a command's own redirections:
/// a script run by `sh -c ... >&2` writes its stdout to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fds {
    pub(super) out: Target,
    pub(super) err: Target,
}

impl Default for Fds {
    fn default() -> Self {
        Fds {
            out: Target::Stream(Stream::Stdout),
            err: Target::Stream(Stream::Stderr),
        }
    }
}

/// What a command asks of the script after it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    /// Go on; this is the command's exit status.
    Next(u32),
    /// `exit N`.
    Exit(u32),
    /// The shell was killed by this signal.
    Killed(&'static str),
}

/// A command's view of the sink, after redirections.
pub(super) struct Io<'s, S: Sink> {
    pub(super) sink: &'s mut S,
    pub(super) out: Target,
    pub(super) err: Target,
}

impl<S: Sink> Io<'_, S> {
    /// Writes to a descriptor's target (nothing for `/dev/null` or empty data).
    pub(super) async fn write(
        &mut self,
        fd: Target,
        data: Cow<'static, [u8]>,
    ) -> Result<(), Closed> {
        match fd {
            Target::Stream(stream) if !data.is_empty() => self.sink.write(stream, data).await,
            _ => Ok(()),
        }
    }

    /// Writes to the command's stdout.
    pub(super) async fn out(&mut self, data: impl Into<Cow<'static, [u8]>>) -> Result<(), Closed> {
        self.write(self.out, data.into()).await
    }

    /// Writes to the command's stderr.
    pub(super) async fn err(&mut self, data: impl Into<Cow<'static, [u8]>>) -> Result<(), Closed> {
        self.write(self.err, data.into()).await
    }

    /// Writes one line (a newline is added) to the command's stderr.
    pub(super) async fn err_line(&mut self, line: String) -> Result<(), Closed> {
        self.err(format!("{line}\n").into_bytes()).await
    }

    /// Writes a static byte slice to stdout in [`CHUNK`]s, up to `len` bytes.
    pub(super) async fn out_static(&mut self, data: &'static [u8], len: u64) -> Result<(), Closed> {
        let len = usize::try_from(len).unwrap_or(usize::MAX).min(data.len());
        for chunk in data.get(..len).unwrap_or_default().chunks(CHUNK) {
            self.out(chunk).await?;
        }
        Ok(())
    }

    /// The terminal echo of input a command read: with a pty, `data` goes to the
    /// terminal (stdout, whatever the command's redirections); without one, nowhere.
    pub(super) async fn echo_input(&mut self, pty: bool, data: &[u8]) -> Result<(), Closed> {
        if pty && !data.is_empty() {
            self.sink.write(Stream::Stdout, data.to_vec().into()).await
        } else {
            Ok(())
        }
    }
}

/// A boxed future: `sh -c` makes running a script recursive.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One identity of an SSH agent, as `ssh-add` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AgentKey {
    /// The `ssh-add -l` line: `256 SHA256:... comment (ED25519)`.
    pub(crate) listing: String,
    /// The `ssh-add -L` line: `ssh-ed25519 AAAA... comment`.
    pub(crate) public: String,
}

/// A way to ask the client's forwarded agent for its identities (the SSH side lives in
/// the server; the shell only knows this).
pub(crate) trait AgentLink: Send + Sync + std::fmt::Debug {
    /// The agent's identities, or why they could not be fetched.
    fn identities(&self) -> BoxFuture<'_, Result<Vec<AgentKey>, String>>;
}
