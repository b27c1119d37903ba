//! The values of the directives fleetsh uses ([`parse_directive`]: booleans, times, ports,
//! host-key checking modes), and the directives it does not use but that change how `ssh`
//! would connect ([`changes_connection`]).

use std::time::Duration;

use super::model::Value;
use crate::HostKeyCheck;

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

/// `StrictHostKeyChecking`: `yes` and `ask` (fleetsh never prompts) → strict; `accept-new` →
/// accept-new; `no` and `off` → accept-new as well: OpenSSH's `no` learns unknown keys but, unlike
/// fleetsh's `off`, still does not trust a changed key blindly, and fleetsh refuses changed keys
/// outright rather than connect with authentication limited.
pub fn parse_strict(v: &str) -> Option<HostKeyCheck> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "ask" => Some(HostKeyCheck::Strict),
        "accept-new" | "no" | "false" | "off" => Some(HostKeyCheck::AcceptNew),
        _ => None,
    }
}

/// OpenSSH time format: `90`, `90s`, `1m30s`, `1h`, units s/m/h/d/w (case-insensitive).
pub fn parse_time(v: &str) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in v.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit: u64 = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        let n: u64 = num.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        num.clear();
    }
    if !num.is_empty() {
        total = total.checked_add(num.parse().ok()?)?;
    } else if !v.ends_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    Some(Duration::from_secs(total))
}

/// connect (so ignoring it is worth a warning): `keyword` as
/// [`SshConfig::ignored`](super::SshConfig::ignored) reports it (`Match exec` for unsupported
/// `Match` criteria).
pub fn changes_connection(keyword: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "addressfamily",
        "bindaddress",
        "bindinterface",
        "canonicaldomains",
        "canonicalizefallbacklocal",
        "canonicalizehostname",
        "canonicalizemaxdots",
        "canonicalizepermittedcnames",
        "casignaturealgorithms",
        "checkhostip",
        "ciphers",
        "connectionattempts",
        "controlmaster",
        "controlpath",
        "controlpersist",
        "dynamicforward",
        "forwardagent",
        "globalknownhostsfile",
        "gssapiauthentication",
        "hostbasedauthentication",
        "hostkeyalgorithms",
        "hostkeyalias",
        "identityagent",
        "kexalgorithms",
        "knownhostscommand",
        "localcommand",
        "localforward",
        "macs",
        "passwordauthentication",
        "pkcs11provider",
        "preferredauthentications",
        "proxyusefdpass",
        "pubkeyacceptedalgorithms",
        "pubkeyacceptedkeytypes",
        "pubkeyauthentication",
        "remotecommand",
        "remoteforward",
        "requesttty",
        "securitykeyprovider",
        "sendenv",
        "sessiontype",
        "setenv",
        "tunnel",
        "tunneldevice",
        "verifyhostkeydns",
    ];
    let lower = keyword.to_ascii_lowercase();
    lower.starts_with("match ") || KEYWORDS.contains(&lower.as_str())
}

/// One directive's value, or an error message naming the directive.
pub(super) fn parse_directive(
    lower: &str,
    keyword: &str,
    args: &[String],
) -> Result<Value, String> {
    let one = || -> Result<&str, String> {
        match args {
            [v] => Ok(v.as_str()),
            [] => Err(format!("{keyword}: missing value")),
            _ => Err(format!("{keyword}: expects one value, got {}", args.len())),
        }
    };
    let bad = |v: &str, what: &str| format!("{keyword}: {v:?} is not {what}");
    let boolean = || -> Result<bool, String> {
        let v = one()?;
        parse_bool(v).ok_or_else(|| bad(v, "yes or no"))
    };
    let time = || -> Result<Duration, String> {
        let v = one()?;
        parse_time(v).ok_or_else(|| bad(v, "a time (seconds, or e.g. 1m30s)"))
    };
    Ok(match lower {
        "hostname" => Value::HostName(one()?.to_string()),
        "user" => Value::User(one()?.to_string()),
        "port" => {
            let v = one()?;
            match v.parse::<u16>() {
                Ok(p) if p > 0 => Value::Port(p),
                _ => return Err(bad(v, "a port number (1-65535)")),
            }
        }
        "identityfile" => Value::IdentityFile(one()?.to_string()),
        "certificatefile" => Value::CertificateFile(one()?.to_string()),
        "identitiesonly" => Value::IdentitiesOnly(boolean()?),
        "proxyjump" => Value::ProxyJump(one()?.to_string()),
        "connecttimeout" => {
            let d = time()?;
            if d.is_zero() {
                return Err(format!("{keyword}: must be greater than zero"));
            }
            Value::ConnectTimeout(d)
        }
        "stricthostkeychecking" => {
            let v = one()?;
            Value::StrictHostKeyChecking(
                parse_strict(v).ok_or_else(|| bad(v, "yes, no, ask, accept-new or off"))?,
            )
        }
        "userknownhostsfile" => match args.first() {
            // Several files: the first is used (see docs/connecting.md).
            Some(f) => Value::UserKnownHostsFile(f.clone()),
            None => return Err(format!("{keyword}: missing value")),
        },
        "serveraliveinterval" => Value::ServerAliveInterval(time()?),
        "serveralivecountmax" => {
            let v = one()?;
            Value::ServerAliveCountMax(v.parse().map_err(|_| bad(v, "a number"))?)
        }
        "hashknownhosts" => Value::HashKnownHosts(boolean()?),
        "proxycommand" => return Err(format!("{keyword}: missing value")),
        _ => Value::Ignored(keyword.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_strict_modes() {
        assert_eq!(parse_time("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_time("1h2m3s"), Some(Duration::from_secs(3723)));
        assert_eq!(parse_time("5M"), Some(Duration::from_secs(300)));
        assert_eq!(parse_time(""), None);
        assert_eq!(parse_time("1x"), None);
        assert_eq!(parse_time("-1"), None);
        assert_eq!(parse_strict("ask"), Some(HostKeyCheck::Strict));
        assert_eq!(parse_strict("no"), Some(HostKeyCheck::AcceptNew));
        assert_eq!(parse_strict("maybe"), None);
    }
}
