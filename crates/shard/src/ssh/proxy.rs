//! `ProxyCommand`: a host reached through a command's standard input and output (`nc %h %p`,
//! `ssh -W %h:%p bastion`, `socat - PROXY:...`), as `ssh` does it.
//!
//! - The command is run by `/bin/sh -c 'exec COMMAND'` with `%h` (the name connected to, after
//!   `HostName`), `%p` (port), `%r` (remote user), `%n` (the host as typed) and `%%` expanded,
//!   like OpenSSH. Its standard error is this process's (its messages reach the operator as
//!   `ssh`'s do).
//! - One process per host in flight, holding two pipes here: the engine counts them against the
//!   open-files limit when its ssh_config has a `ProxyCommand`.
//! - The process lives as long as the connection and is killed when the connection is dropped
//!   (and reaped by tokio). A command that exits or cannot start fails the host as `connect`,
//!   naming the command and its exit status.

use std::process::Stdio;

use fleetsh_core::{ErrorKind, HostError};
use tokio::io::Join;
use tokio::process::{Child, ChildStdin, ChildStdout};

/// The transport a proxy command gives: its stdout to read, its stdin to write.
pub(crate) type ProxyStream = Join<ChildStdout, ChildStdin>;

/// A running proxy command, killed on drop.
#[derive(Debug)]
pub(crate) struct ProxyProcess {
    child: Child,
    command: String,
}

/// `template` with the `%` tokens of one host expanded. An unknown token is an error naming it
/// (as `ssh` refuses one).
pub(crate) fn expand(
    template: &str,
    hostname: &str,
    port: u16,
    user: &str,
    typed: &str,
) -> Result<String, HostError> {
    let mut out = String::with_capacity(template.len() + hostname.len());
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => out.push_str(hostname),
            Some('p') => out.push_str(&port.to_string()),
            Some('r') => out.push_str(user),
            Some('n') => out.push_str(typed),
            Some('%') => out.push('%'),
            Some(other) => {
                return Err(HostError::new(
                    ErrorKind::Connect,
                    format!(
                        "ProxyCommand {template:?}: unknown token %{other} (known: %h %p %r %n %%)"
                    ),
                ));
            }
            None => {
                return Err(HostError::new(
                    ErrorKind::Connect,
                    format!("ProxyCommand {template:?}: ends with a lone %"),
                ));
            }
        }
    }
    Ok(out)
}

/// Starts `command` (already expanded) and returns it with its pipes as a stream.
pub(crate) fn spawn(command: &str) -> Result<(ProxyProcess, ProxyStream), HostError> {
    let mut child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("exec {command}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            HostError::new(
                ErrorKind::Connect,
                format!("ProxyCommand {command:?}: cannot start: {e}"),
            )
        })?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(HostError::new(
            ErrorKind::Connect,
            format!("ProxyCommand {command:?}: no pipes to the process"),
        ));
    };
    Ok((
        ProxyProcess {
            child,
            command: command.to_string(),
        },
        tokio::io::join(stdout, stdin),
    ))
}

impl ProxyProcess {
    /// `e`, a handshake failure over this process's pipes, as the operator needs it: when the
    /// process has exited (at once, or within a moment), the failure is the proxy's, named
    /// with its status.
    pub(crate) async fn explain(&mut self, e: HostError) -> HostError {
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(200), self.child.wait()).await;
        match waited {
            Ok(Ok(status)) => HostError::new(
                ErrorKind::Connect,
                format!(
                    "ProxyCommand {:?} exited ({status}) before the SSH connection was up",
                    self.command
                ),
            ),
            _ => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_expanded_as_ssh_does() {
        let got = expand("nc %h %p # %r@%n 100%%", "10.0.0.5", 2222, "ops", "web1").unwrap();
        assert_eq!(got, "nc 10.0.0.5 2222 # ops@web1 100%");
        let e = expand("nc %h %x", "h", 22, "u", "n").unwrap_err();
        assert!(e.message.contains("%x"), "{}", e.message);
        assert!(expand("nc %", "h", 22, "u", "n").is_err());
    }
}
