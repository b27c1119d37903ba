//! OpenSSH client configuration (`~/.ssh/config`, `ssh_config(5)`): parsing and per-host
//! resolution.
//!
//! [`SshConfig::load`] reads a file and its `Include`s once; [`SshConfig::resolve`] gives the
//! effective settings for one host as typed ([`Resolved`]), each with the file and line it came
//! from, so `fleetsh config show HOST` can say where a value was set.
//!
//! Why not a crate: `ssh2-config` resolves to a struct without the file and line of each value
//! (which `config show` prints) and pulls dependencies `fleetsh-core` may not have;
//! `russh-config` depends on tokio and knows no `Match`. The subset fleetsh honours is small and
//! its rules are few, so they are written out here:
//!
//! 1. Lines are `Keyword value...` or `Keyword=value`; keywords are case-insensitive; arguments may
//!    be quoted (`"a b"`); `#` starts a comment at the start of a line or of an argument.
//! 2. `Host PATTERN...` starts a block that applies when the name as typed matches one pattern and
//!    no `!pattern` (`*` and `?` wildcards, case-insensitive). Lines before any `Host` apply to
//!    every host.
//! 3. `Match` starts a block with criteria that must all hold: `all`, `host` (the `HostName` set
//!    so far, else the name as typed), `originalhost` (the name as typed), `user` (the remote user
//!    known so far: typed, flag, or an earlier `User`), `localuser`; each may be negated with `!`.
//!    Other criteria (`exec`, `canonical`, `final`, `tagged`, `localnetwork`) are not evaluated:
//!    such a block never applies, and is reported as ignored.
//! 4. `Include FILE...` reads files in place (relative paths from `~/.ssh`, `~` expanded, `*`/`?`
//!    globs in the last component, files in lexical order; a pattern matching nothing is not an
//!    error). Inside a block, the included lines apply only when the block does. At most
//!    [`MAX_INCLUDE_DEPTH`] levels and [`MAX_FILES`] files: a cycle is an error, not a hang.
//! 5. The first value obtained for a directive wins; `IdentityFile` and `CertificateFile`
//!    accumulate (all of them are tried, in order), as in OpenSSH.
//! 6. Directives fleetsh does not use are kept as ignored (with file and line), never an error;
//!    a bad value of a directive fleetsh uses is an error naming the file, line and directive.

mod directives;
mod lexer;
mod matching;
mod model;
mod parser;
mod resolve;
mod tokens;

pub use directives::{changes_connection, parse_strict, parse_time};
pub use matching::glob;
pub use model::{Query, Resolved, Source, Sourced, SshConfig};
pub use parser::{MAX_FILES, MAX_INCLUDE_DEPTH};

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use super::*;
    use crate::HostKeyCheck;

    fn parse(text: &str) -> SshConfig {
        SshConfig::parse_text(text, Path::new("/cfg"), Some(Path::new("/home/me")), "me").unwrap()
    }

    fn q(host: &str) -> Query<'_> {
        Query { host, user: None }
    }

    #[test]
    fn first_value_wins_and_identity_files_accumulate() {
        let c = parse(
            "Host web*\n  User deploy\n  Port 2222\n  IdentityFile ~/.ssh/web\n\
             Host *\n  User root\n  Port 22\n  IdentityFile %d/.ssh/%u-%r@%h\n",
        );
        let r = c.resolve(q("web1"));
        assert_eq!(r.user.as_ref().unwrap().value, "deploy");
        assert_eq!(r.user.as_ref().unwrap().source.to_string(), "/cfg:2");
        assert_eq!(r.port.as_ref().unwrap().value, 2222);
        let ids: Vec<_> = r.identity_files.iter().map(|s| s.value.clone()).collect();
        assert_eq!(
            ids,
            [
                PathBuf::from("/home/me/.ssh/web"),
                PathBuf::from("/home/me/.ssh/me-deploy@web1")
            ]
        );
        let r = c.resolve(q("db1"));
        assert_eq!(r.user.unwrap().value, "root");
        assert_eq!(r.port.unwrap().value, 22);
    }

    #[test]
    fn host_patterns_with_negation_and_hostname_token() {
        let c = parse(
            "Host *.dc1 !bastion.dc1\n  HostName %h.example.com\n  ProxyJump bastion.dc1\n\
             Host alias\n  HostName 10.0.0.5\n",
        );
        let r = c.resolve(q("web1.dc1"));
        assert_eq!(r.hostname.unwrap().value, "web1.dc1.example.com");
        assert_eq!(r.proxy_jump.unwrap().value, "bastion.dc1");
        let r = c.resolve(q("bastion.dc1"));
        assert!(r.hostname.is_none() && r.proxy_jump.is_none());
        assert_eq!(c.resolve(q("ALIAS")).hostname.unwrap().value, "10.0.0.5");
        // Lines before any Host apply to every host; `=` separators and quotes.
        let c = parse("ConnectTimeout=1m30s\nUser = \"a b\"  # comment\n");
        let r = c.resolve(q("x"));
        assert_eq!(r.connect_timeout.unwrap().value, Duration::from_secs(90));
        assert_eq!(r.user.unwrap().value, "a b");
    }

    #[test]
    fn match_host_user_all_and_unsupported() {
        let c = parse(
            "Host short\n  HostName long.example.com\n\
             Match host *.example.com !user root\n  Port 2200\n\
             Match originalhost short\n  ServerAliveInterval 15\n\
             Match exec \"true\"\n  User never\n\
             Match all\n  ServerAliveCountMax 5\n  StrictHostKeyChecking accept-new\n",
        );
        let r = c.resolve(q("short"));
        assert_eq!(r.port.unwrap().value, 2200);
        assert_eq!(
            r.server_alive_interval.unwrap().value,
            Duration::from_secs(15)
        );
        assert_eq!(r.server_alive_count_max.unwrap().value, 5);
        assert_eq!(r.host_key_check.unwrap().value, HostKeyCheck::AcceptNew);
        assert!(r.user.is_none(), "Match exec is never evaluated");
        assert!(c.ignored().iter().any(|i| i.value == "Match exec"));
        let root = c.resolve(Query {
            host: "short",
            user: Some("root"),
        });
        assert!(root.port.is_none(), "!user root excludes root");
    }

    #[test]
    fn bad_values_name_file_line_and_directive() {
        for (text, want) in [
            (
                "Host a\n  Port 70000\n",
                "/cfg:2: Port: \"70000\" is not a port number",
            ),
            (
                "ConnectTimeout soon\n",
                "/cfg:1: ConnectTimeout: \"soon\" is not a time",
            ),
            (
                "IdentitiesOnly maybe\n",
                "/cfg:1: IdentitiesOnly: \"maybe\" is not yes or no",
            ),
            ("\n\nUser a b\n", "/cfg:3: User: expects one value, got 2"),
            (
                "Match bogus x\n",
                "/cfg:1: Match: unknown criterion \"bogus\"",
            ),
            ("User \"open\n", "/cfg:1: User: unterminated quote"),
            ("Host\n", "/cfg:1: Host: needs at least one pattern"),
        ] {
            let e = SshConfig::parse_text(text, Path::new("/cfg"), None, "me").unwrap_err();
            assert!(e.to_string().starts_with(want), "{e} / {want}");
        }
    }

    #[test]
    fn proxy_command_and_proxy_jump_compete_first_wins() {
        let c = parse(
            "Host a\n  ProxyCommand ssh -W '%h:%p' gw # kept as written\n  ProxyJump j1\n\
             Host b\n  ProxyJump j2\n  ProxyCommand nc %h %p\n\
             Host *\n  ProxyCommand none\n",
        );
        let a = c.resolve(Query {
            host: "a",
            user: None,
        });
        assert_eq!(
            a.proxy_command.unwrap().value,
            "ssh -W '%h:%p' gw # kept as written"
        );
        assert_eq!(a.proxy_jump, None);
        let b = c.resolve(Query {
            host: "b",
            user: None,
        });
        assert_eq!(b.proxy_jump.unwrap().value, "j2");
        assert_eq!(b.proxy_command, None);
        assert!(c.has_proxy_command());
        assert!(changes_connection("CanonicalizeHostname"));
        assert!(changes_connection("Match exec"));
        assert!(!changes_connection("LogLevel"));
    }

    #[test]
    fn unknown_directives_are_ignored_with_their_line() {
        let c = parse("ForwardAgent yes\nHost a\n  ControlMaster auto\n  User u\n");
        let ignored: Vec<String> = c
            .ignored()
            .iter()
            .map(|i| format!("{} {}", i.value, i.source))
            .collect();
        assert_eq!(ignored, ["ForwardAgent /cfg:1", "ControlMaster /cfg:3"]);
        let r = c.resolve(q("b"));
        assert_eq!(r.ignored.len(), 1);
    }

    #[test]
    fn include_relative_globbed_inside_blocks_and_cycles_bounded() {
        let dir = tempfile_dir();
        let ssh = dir.join(".ssh");
        std::fs::create_dir_all(ssh.join("conf.d")).unwrap();
        std::fs::write(ssh.join("conf.d/b.conf"), "User from-b\n").unwrap();
        std::fs::write(
            ssh.join("conf.d/a.conf"),
            "Port 1001\nHost other\n  User o\n",
        )
        .unwrap();
        std::fs::write(ssh.join("conf.d/.hidden.conf"), "Port 9\n").unwrap();
        let main = ssh.join("config");
        std::fs::write(
            &main,
            "Host web\n  Include conf.d/*.conf\n  HostName after-include\nHost *\n  User last\n",
        )
        .unwrap();
        let c = SshConfig::load(&main, Some(&dir), "me").unwrap();
        assert_eq!(c.files().len(), 3);
        let r = c.resolve(q("web"));
        assert_eq!(r.port.unwrap().value, 1001);
        assert_eq!(r.user.as_ref().unwrap().value, "from-b");
        assert!(r.user.unwrap().source.file.ends_with("conf.d/b.conf"));
        assert_eq!(r.hostname.unwrap().value, "after-include");
        // The included lines apply only inside the including block.
        let r = c.resolve(q("db"));
        assert!(r.port.is_none());
        assert_eq!(r.user.unwrap().value, "last");
        // A file including itself: an error naming the depth, not a hang.
        std::fs::write(&main, "Include config\n").unwrap();
        let e = SshConfig::load(&main, Some(&dir), "me").unwrap_err();
        assert!(e.to_string().contains("nested more than 16"), "{e}");
        // A missing include is not an error (as OpenSSH).
        std::fs::write(&main, "Include nothing-here*\nUser u\n").unwrap();
        assert!(SshConfig::load(&main, Some(&dir), "me").is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "fleetsh-ssh-config-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
