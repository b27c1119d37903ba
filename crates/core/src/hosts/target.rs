//! One SSH destination ([`HostTarget`]): `[user@]host[:port]`, IPv6 literals bracketed when a
//! port follows, parsed with the column and reason of any error.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use crate::Error;

/// One SSH destination: `[user@]host[:port]`.
///
/// `user` and `port` are `None` when not given, so that the run configuration (or the SSH
/// defaults) can fill them in later. `host` is a name or an address; an IPv6 literal is stored
/// without brackets (`::1`, `fe80::1%eth0`).
///
/// The [`Display`](fmt::Display) form round-trips through [`HostTarget::parse`]:
/// `user@host:port`, with an IPv6 host bracketed when a port follows (`user@[::1]:2222`) and bare
/// otherwise (`::1`).
///
/// ```
/// use fleetsh_core::HostTarget;
///
/// let t: HostTarget = "deploy@[2001:db8::7]:2222".parse()?;
/// assert_eq!(t.user.as_deref(), Some("deploy"));
/// assert_eq!(t.host, "2001:db8::7");
/// assert_eq!(t.port, Some(2222));
/// assert!(t.is_ipv6());
/// assert_eq!(t.to_string(), "deploy@[2001:db8::7]:2222");
/// # Ok::<(), fleetsh_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct HostTarget {
    /// The login user, if given (`root` in `root@web1`).
    pub user: Option<String>,
    /// The host name or address, without brackets.
    pub host: String,
    /// The SSH port, if given.
    pub port: Option<u16>,
}

impl HostTarget {
    /// Parses `[user@]host[:port]`.
    ///
    /// Rules:
    /// 1. The user is everything before the **last** `@`; it must be non-empty and contain no
    ///    whitespace.
    /// 2. `[addr]` or `[addr]:port` is an IPv6 address (an optional `%zone` suffix is allowed).
    /// 3. A host with two or more `:` and no brackets is a bare IPv6 address with no port
    ///    (so `fe80::1:22` is an address, not port 22: write `[fe80::1]:22`).
    /// 4. Otherwise `host:port`; the port must be in `1..=65535`.
    ///
    /// The host must be non-empty and may not contain whitespace, control characters, `/`, `,`
    /// or brackets. No trimming is done.
    ///
    /// # Errors
    ///
    /// [`Error::HostSpec`] with the 1-based column (in characters) of the problem.
    pub fn parse(s: &str) -> Result<HostTarget, Error> {
        let (user, rest, rest_at) = match s.rfind('@') {
            Some(at) => {
                let user = &s[..at];
                if user.is_empty() {
                    return Err(spec_error(s, at, "empty user before '@'"));
                }
                if let Some((i, _)) = user.char_indices().find(|(_, c)| c.is_whitespace()) {
                    return Err(spec_error(s, i, "whitespace in user name"));
                }
                (Some(user.to_owned()), &s[at + 1..], at + 1)
            }
            None => (None, s, 0),
        };

        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let Some(close) = inner.find(']') else {
                return Err(spec_error(s, rest_at, "unclosed '['"));
            };
            let addr = &inner[..close];
            let addr_at = rest_at + 1;
            check_ipv6(s, addr, addr_at, true)?;
            let after = &inner[close + 1..];
            let after_at = addr_at + close + 1;
            let port = match after.strip_prefix(':') {
                None if after.is_empty() => None,
                None => {
                    return Err(spec_error(
                        s,
                        after_at,
                        "expected ':port' or the end after ']'",
                    ));
                }
                Some(port) => Some(parse_port(s, port, after_at + 1)?),
            };
            (addr, port)
        } else if rest.matches(':').nth(1).is_some() {
            check_ipv6(s, rest, rest_at, false)?;
            (rest, None)
        } else if let Some((host, port)) = rest.split_once(':') {
            let port = parse_port(s, port, rest_at + host.len() + 1)?;
            (host, Some(port))
        } else {
            (rest, None)
        };

        check_host(s, host, rest_at + usize::from(rest.starts_with('[')))?;
        Ok(HostTarget {
            user,
            host: host.to_owned(),
            port,
        })
    }

    /// A target for `host` with no user and no port. The name is not validated.
    pub fn new(host: impl Into<String>) -> Self {
        HostTarget {
            user: None,
            host: host.into(),
            port: None,
        }
    }

    /// Sets the login user.
    pub fn with_user(self, user: impl Into<String>) -> Self {
        HostTarget {
            user: Some(user.into()),
            ..self
        }
    }

    /// Sets the SSH port.
    pub fn with_port(self, port: u16) -> Self {
        HostTarget {
            port: Some(port),
            ..self
        }
    }

    /// Whether the host is an IPv6 literal (contains `:`), which must be bracketed before a port.
    pub fn is_ipv6(&self) -> bool {
        self.host.contains(':')
    }
}

impl FromStr for HostTarget {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HostTarget::parse(s)
    }
}

impl fmt::Display for HostTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        match self.port {
            Some(port) if self.is_ipv6() => write!(f, "[{}]:{port}", self.host),
            Some(port) => write!(f, "{}:{port}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

/// 1-based character column of byte offset `at` in `s`.
pub(super) fn column(s: &str, at: usize) -> usize {
    s.get(..at).map_or(at, |head| head.chars().count()) + 1
}

pub(super) fn spec_error(spec: &str, at: usize, reason: impl Into<String>) -> Error {
    Error::HostSpec {
        spec: spec.to_owned(),
        column: column(spec, at),
        reason: reason.into(),
    }
}

/// Parses the port text that starts at byte `at` of `s`.
fn parse_port(s: &str, port: &str, at: usize) -> Result<u16, Error> {
    if port.is_empty() {
        return Err(spec_error(s, at, "missing port after ':'"));
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(spec_error(s, at, format!("port {port:?} is not a number")));
    }
    match port.parse::<u16>() {
        Ok(p) if p >= 1 => Ok(p),
        _ => Err(spec_error(
            s,
            at,
            format!("port {port} is out of range 1-65535"),
        )),
    }
}

/// Checks an IPv6 literal (with an optional `%zone`) that starts at byte `at` of `s`.
fn check_ipv6(s: &str, addr: &str, at: usize, bracketed: bool) -> Result<(), Error> {
    if bracketed && addr.is_empty() {
        return Err(spec_error(
            s,
            at,
            "empty brackets: expected an ipv6 address",
        ));
    }
    if bracketed && !addr.contains(':') {
        return Err(spec_error(
            s,
            at,
            format!("brackets must hold an ipv6 address, found {addr:?}"),
        ));
    }
    let (ip, zone) = match addr.split_once('%') {
        Some((ip, zone)) => (ip, Some(zone)),
        None => (addr, None),
    };
    if ip.parse::<Ipv6Addr>().is_err() {
        let hint = if bracketed {
            ""
        } else {
            " (a host with several ':' is read as ipv6; write [addr]:port for a port)"
        };
        return Err(spec_error(
            s,
            at,
            format!("{ip:?} is not a valid ipv6 address{hint}"),
        ));
    }
    if zone.is_some_and(str::is_empty) {
        return Err(spec_error(s, at + ip.len(), "empty ipv6 zone after '%'"));
    }
    Ok(())
}

/// Checks a host name (or address) that starts at byte `at` of `s`.
fn check_host(s: &str, host: &str, at: usize) -> Result<(), Error> {
    if host.is_empty() {
        return Err(spec_error(s, at, "empty host name"));
    }
    for (i, c) in host.char_indices() {
        let reason = match c {
            c if c.is_whitespace() => "whitespace in host name".to_owned(),
            c if c.is_control() => format!("control character {c:?} in host name"),
            '/' | '[' | ']' | ',' => format!("{c:?} is not allowed in a host name"),
            _ => continue,
        };
        return Err(spec_error(s, at + i, reason));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts::assertions::spec_err;

    fn t(s: &str) -> HostTarget {
        HostTarget::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn target_plain_user_port() {
        assert_eq!(t("web1"), HostTarget::new("web1"));
        assert_eq!(
            t("root@web1:2222"),
            HostTarget {
                user: Some("root".into()),
                host: "web1".into(),
                port: Some(2222),
            }
        );
        assert_eq!(t("web1:22"), HostTarget::new("web1").with_port(22));
        assert_eq!(t("root@web1"), HostTarget::new("web1").with_user("root"));
        assert_eq!(t("web1:65535").port, Some(65535));
        assert_eq!(t("web1:1").port, Some(1));
    }

    #[test]
    fn target_user_is_up_to_last_at() {
        let target = t("a@b@host:22");
        assert_eq!(target.user.as_deref(), Some("a@b"));
        assert_eq!(target.host, "host");
        assert_eq!(target.port, Some(22));
    }

    #[test]
    fn target_ipv6() {
        let bracketed = t("root@[2001:db8::1]:2222");
        assert_eq!(bracketed.user.as_deref(), Some("root"));
        assert_eq!(bracketed.host, "2001:db8::1");
        assert_eq!(bracketed.port, Some(2222));
        assert!(bracketed.is_ipv6());

        assert_eq!(t("[::1]"), HostTarget::new("::1"));
        assert_eq!(t("::1"), HostTarget::new("::1"));
        // Several ':' without brackets: an address, never a port.
        assert_eq!(t("fe80::1:22"), HostTarget::new("fe80::1:22"));
        assert_eq!(t("[fe80::1%eth0]:22").host, "fe80::1%eth0");
        assert!(!t("web1:22").is_ipv6());
    }

    #[test]
    fn target_display_round_trips() {
        let cases = [
            ("web1", "web1"),
            ("root@web1", "root@web1"),
            ("web1:2222", "web1:2222"),
            ("root@web1:2222", "root@web1:2222"),
            ("::1", "::1"),
            ("[::1]", "::1"),
            ("[::1]:2222", "[::1]:2222"),
            ("user@[::1]:2222", "user@[::1]:2222"),
            ("user@::1", "user@::1"),
            ("a@b@h:1", "a@b@h:1"),
        ];
        for (input, shown) in cases {
            let target = t(input);
            assert_eq!(target.to_string(), shown, "display of {input:?}");
            assert_eq!(t(shown), target, "round trip of {input:?}");
        }
        let built = HostTarget::new("::1").with_user("u").with_port(2222);
        assert_eq!(built.to_string(), "u@[::1]:2222");
        assert_eq!("u@[::1]:2222".parse::<HostTarget>().ok(), Some(built));
    }

    #[test]
    fn target_errors_have_column_and_reason() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 1, "empty host name"),
            ("@web1", 1, "empty user before '@'"),
            ("ro ot@web1", 3, "whitespace in user name"),
            ("root@", 6, "empty host name"),
            (":22", 1, "empty host name"),
            ("web1:", 6, "missing port after ':'"),
            ("web1:70000", 6, "port 70000 is out of range 1-65535"),
            ("web1:0", 6, "port 0 is out of range 1-65535"),
            ("web1:99999999999999999999", 6, "out of range 1-65535"),
            ("web1:ssh", 6, "port \"ssh\" is not a number"),
            ("web1:-1", 6, "is not a number"),
            ("web 1", 4, "whitespace in host name"),
            ("web1/24", 5, "'/' is not allowed"),
            ("web1]", 5, "']' is not allowed"),
            ("web[1-2]", 4, "'[' is not allowed"),
            ("a,b", 2, "',' is not allowed"),
            ("[::1", 1, "unclosed '['"),
            ("u@[::1", 3, "unclosed '['"),
            ("[]", 2, "empty brackets"),
            ("[web1]:22", 2, "brackets must hold an ipv6 address"),
            ("[::1]22", 6, "expected ':port' or the end after ']'"),
            ("[::1]:0", 7, "port 0 is out of range"),
            ("[::g]", 2, "\"::g\" is not a valid ipv6 address"),
            ("host:22:33", 1, "write [addr]:port"),
            ("[fe80::1%]", 9, "empty ipv6 zone"),
        ];
        for &(input, column, reason) in cases {
            let (got_column, got_reason) = spec_err(HostTarget::parse(input));
            assert_eq!(got_column, column, "column for {input:?} ({got_reason})");
            assert!(
                got_reason.contains(reason),
                "reason for {input:?}: {got_reason:?} lacks {reason:?}"
            );
            assert_eq!(got_reason, got_reason.to_lowercase(), "lowercase {input:?}");
        }
    }

    #[test]
    fn target_error_column_counts_characters() {
        let (column, _) = spec_err(HostTarget::parse("jöhn@wéb 1"));
        assert_eq!(column, 9);
    }

    #[test]
    fn target_error_names_the_spec() {
        match HostTarget::parse("web1:70000") {
            Err(e @ Error::HostSpec { .. }) => assert_eq!(
                e.to_string(),
                "bad host spec \"web1:70000\" at column 6: port 70000 is out of range 1-65535"
            ),
            other => panic!("{other:?}"),
        }
    }
}
