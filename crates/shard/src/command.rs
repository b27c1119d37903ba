//! What is sent as the exec request: per-host arguments, sudo wrapping, and scrubbing secrets
//! out of output.

use fleetsh_core::Sudo;

/// Quotes `s` for a POSIX shell: bare when it holds only safe characters, else single-quoted.
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:@%+=,/".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Expands a template ([`fleetsh_core::Job::template`]): `{host}` becomes the host name
/// (shell-quoted when needed) and `{index}` the host's position in the run, in one pass (a
/// host name is never itself expanded). Every other brace is kept as it is.
pub fn render(command: &str, host: &str, index: usize) -> String {
    if !command.contains('{') {
        return command.to_string();
    }
    let mut out = String::with_capacity(command.len() + host.len());
    let mut rest = command;
    while let Some(at) = rest.find('{') {
        let (head, tail) = rest.split_at(at);
        out.push_str(head);
        if let Some(after) = tail.strip_prefix("{host}") {
            out.push_str(&shell_quote(host));
            rest = after;
        } else if let Some(after) = tail.strip_prefix("{index}") {
            out.push_str(&index.to_string());
            rest = after;
        } else {
            out.push('{');
            rest = tail.get(1..).unwrap_or("");
        }
    }
    out.push_str(rest);
    out
}

/// The two markers of a command run through sudo with a password: the prompt sudo is told to
/// print when it wants the password (`sudo -S -p PROMPT`), and the line the shell sudo starts
/// prints on stderr before the command runs. Unique per host run (a random nonce), made of
/// characters neither sudo (`%` escapes) nor the shell (quotes, globs) treat specially.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SudoMarkers {
    /// What sudo prints to ask for the password.
    pub prompt: String,
    /// What the shell prints once sudo let it start.
    pub ready: String,
}

impl SudoMarkers {
    /// The markers for `nonce`.
    pub fn new(nonce: u64) -> Self {
        SudoMarkers {
            prompt: format!("fleetsh-sudo-prompt-{nonce:016x}:"),
            ready: format!("fleetsh-sudo-ready-{nonce:016x}"),
        }
    }
}

/// Wraps `command` to run through sudo. With a password (`markers` given):
/// `sudo -S -p PROMPT [-u USER] -- sh -c 'echo READY >&2; COMMAND'`: the password is sent only
/// when PROMPT appears, the command's input only after READY. Without one:
/// `sudo -n [-u USER] -- sh -c 'COMMAND'` (fail rather than wait for a prompt).
pub fn sudo_wrap(command: &str, sudo: &Sudo, markers: Option<&SudoMarkers>) -> String {
    let mut s = match markers {
        Some(m) => format!("sudo -S -p {}", shell_quote(&m.prompt)),
        None => String::from("sudo -n"),
    };
    if let Some(u) = &sudo.user {
        s.push_str(" -u ");
        s.push_str(&shell_quote(u));
    }
    s.push_str(" -- sh -c ");
    match markers {
        Some(m) => s.push_str(&shell_quote(&format!("echo {} >&2; {command}", m.ready))),
        None => s.push_str(&shell_quote(command)),
    }
    s
}

/// Replaces every occurrence of `secret` in `data` with `***`.
pub fn scrub(data: &mut Vec<u8>, secret: &[u8]) {
    if secret.is_empty() || data.len() < secret.len() {
        return;
    }
    if !data.windows(secret.len()).any(|w| w == secret) {
        return;
    }
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data.get(i..i + secret.len()) == Some(secret) {
            out.extend_from_slice(b"***");
            i += secret.len();
        } else {
            if let Some(&b) = data.get(i) {
                out.push(b);
            }
            i += 1;
        }
    }
    *data = out;
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetsh_core::Secret;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("web01.dc1"), "web01.dc1");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("x;rm"), "'x;rm'");
    }

    #[test]
    fn host_arguments() {
        assert_eq!(render("echo {host} {index}", "web1", 7), "echo web1 7");
        assert_eq!(render("echo {host}", "a;b", 0), "echo 'a;b'");
        assert_eq!(
            render("find . -exec ls {} \\;", "h", 0),
            "find . -exec ls {} \\;"
        );
        assert_eq!(
            render("{{.Names}} ${HOME} {host}{index}{", "h{index}", 3),
            "{{.Names}} ${HOME} 'h{index}'3{"
        );
    }

    #[test]
    fn sudo_wrapping() {
        let s = Sudo {
            user: Some("postgres".into()),
            password: Some(Secret::new("pw")),
        };
        let m = SudoMarkers::new(0xab);
        assert_eq!(m.prompt, "fleetsh-sudo-prompt-00000000000000ab:");
        assert_eq!(
            sudo_wrap("echo 'x' && id", &s, Some(&m)),
            "sudo -S -p fleetsh-sudo-prompt-00000000000000ab: -u postgres -- sh -c \
             'echo fleetsh-sudo-ready-00000000000000ab >&2; echo '\\''x'\\'' && id'"
        );
        assert!(!sudo_wrap("id", &s, Some(&m)).contains("pw"));
        assert_eq!(
            sudo_wrap("id", &Sudo::default(), None),
            "sudo -n -- sh -c id"
        );
    }

    #[test]
    fn scrubbing() {
        let mut d = b"pw: hunter2\nok hunter2".to_vec();
        scrub(&mut d, b"hunter2");
        assert_eq!(d, b"pw: ***\nok ***");
        let mut d = b"nothing".to_vec();
        scrub(&mut d, b"hunter2");
        assert_eq!(d, b"nothing");
        let mut d = b"hunt".to_vec();
        scrub(&mut d, b"hunter2");
        assert_eq!(d, b"hunt");
    }
}
