//! Fault injection: which hosts misbehave, and how. The spec syntax and the assignment rule
//! are documented on [`parse_faults`], the public entry point.

use std::fmt;
use std::time::Duration;

use crate::SimError;
use crate::keys::mix;

/// One way a simulated host misbehaves. See [`parse_faults`] for the spec syntax and how
/// hosts are picked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Accept each TCP connection and close it at once, before the SSH banner.
    Refuse,
    /// Accept each TCP connection and never send anything; the socket stays open until the
    /// client closes it or the fleet stops.
    Silent,
    /// Wait this long after accepting a connection before starting SSH (sending the banner).
    SlowBanner(Duration),
    /// Reject every authentication attempt.
    AuthFail,
    /// Serve a host key other than the one written to `known_hosts` for this host (another
    /// key derived from the seed).
    HostkeyMismatch,
    /// After the first line of a command's stdout has reached the client, close the TCP
    /// connection abruptly: no exit status, no channel close, no SSH disconnect message.
    /// A command that ends without writing a whole line is cut off when it ends.
    Drop,
    /// Commands never exit: they write their output, then wait until the client goes.
    Hang,
    /// Commands write their output, then endless stdout (32 KiB chunks of a repeated text
    /// line), within the SSH window, until the client goes.
    Flood,
    /// Every command exits with this status after its output (whatever its own status).
    Exit(u8),
    /// The host's SFTP server is hostile: every directory listing also holds entries named
    /// `../escape`, `/etc/evil`, `a/../../b`, `...`, `..evil` and the like, each claiming
    /// to be a regular file that reading returns data from (one, `size-lie`, returns far
    /// more than its size says), and `realpath` of any path answers `/../../outside`. The
    /// real files of the host's root still work. See the crate docs, "The SFTP subsystem".
    SftpEvil,
    /// Once a connection has carried more than this many bytes of SFTP write data (all
    /// its files together), the TCP connection is closed abruptly, as with
    /// [`Fault::Drop`]: the bytes up to the limit are stored, the write that crosses it
    /// gets no reply.
    SftpCut(u64),
    /// Refuse every `direct-tcpip` channel (the host cannot serve as a bastion), with
    /// reason "administratively prohibited".
    NoForward,
    /// This long after a connection has authenticated, the host's server stops dead for
    /// that connection: it no longer reads from or writes to the TCP socket (not even what
    /// it was writing then), and keeps the socket open, without FIN or RST, until the
    /// fleet stops: what a client sees when a server hangs hard or the network partitions.
    /// Keepalives (`keepalive@openssh.com`) get no reply, commands no more output. The
    /// moment counts from the server's acceptance of the credentials, so with `0` even
    /// the auth success may never be sent.
    Freeze(Duration),
}

impl Fault {
    /// The kind's name in a fault spec (`slow-banner`, `exit`, ...), without its argument.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Refuse => "refuse",
            Fault::Silent => "silent",
            Fault::SlowBanner(_) => "slow-banner",
            Fault::AuthFail => "auth-fail",
            Fault::HostkeyMismatch => "hostkey-mismatch",
            Fault::Drop => "drop",
            Fault::Hang => "hang",
            Fault::Flood => "flood",
            Fault::Exit(_) => "exit",
            Fault::SftpEvil => "sftp-evil",
            Fault::SftpCut(_) => "sftp-cut",
            Fault::NoForward => "no-forward",
            Fault::Freeze(_) => "freeze",
        }
    }
}

/// Formats as in a fault spec, without the percentage: `refuse`, `slow-banner:500`, `exit:3`.
impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::SlowBanner(d) => write!(f, "slow-banner:{}", d.as_millis()),
            Fault::Exit(n) => write!(f, "exit:{n}"),
            Fault::SftpCut(n) => write!(f, "sftp-cut:{n}"),
            Fault::Freeze(d) => write!(f, "freeze:{}", d.as_millis()),
            other => f.write_str(other.kind()),
        }
    }
}

/// Parses a fault spec (`fleetsh sim --faults`): `KIND[:ARG]=PERCENT[,KIND[:ARG]=PERCENT...]`.
///
/// | item                  | [`Fault`]                  | a host with it ...                                   |
/// |-----------------------|----------------------------|------------------------------------------------------|
/// | `refuse=P`            | [`Fault::Refuse`]          | accepts TCP connections and closes them at once      |
/// | `silent=P`            | [`Fault::Silent`]          | accepts and never sends a byte                       |
/// | `slow-banner:MS=P`    | [`Fault::SlowBanner`]      | waits `MS` milliseconds before its SSH banner        |
/// | `auth-fail=P`         | [`Fault::AuthFail`]        | rejects every authentication attempt                 |
/// | `hostkey-mismatch=P`  | [`Fault::HostkeyMismatch`] | serves a host key other than its `known_hosts` line  |
/// | `drop=P`              | [`Fault::Drop`]            | cuts the TCP connection after a command's first line |
/// | `hang=P`              | [`Fault::Hang`]            | runs commands that never exit                        |
/// | `flood=P`             | [`Fault::Flood`]           | runs commands that write stdout forever              |
/// | `exit:N=P` (`exit=P`) | [`Fault::Exit`] (`N` = 1)  | ends every command with exit status `N`              |
/// | `sftp-evil=P`         | [`Fault::SftpEvil`]        | lists hostile names over SFTP, lies in `realpath`    |
/// | `sftp-cut:BYTES=P`    | [`Fault::SftpCut`]         | cuts the TCP connection after `BYTES` of SFTP writes |
/// | `no-forward=P`        | [`Fault::NoForward`]       | refuses every `direct-tcpip` channel (no bastion)    |
/// | `freeze:MS=P`         | [`Fault::Freeze`]          | stops dead (socket open) `MS` ms after auth          |
///
/// `P` is a percentage of the fleet's hosts, 0 to 100 (a trailing `%` is allowed); the
/// shares add up to at most 100. Blanks around items are ignored and an empty spec means
/// no faults. Errors ([`SimError::BadFault`]) name the offending item; shares adding up to
/// more than 100% are refused ([`SimError::FaultShares`]).
///
/// # Which hosts
///
/// Assignment is deterministic in `(seed, count, faults)`: the host indices are shuffled
/// with a generator seeded from [`SimConfig::seed`](crate::SimConfig::seed), and the
/// faults, in list order, take `round(count * P / 100)` hosts each from the front of that
/// permutation (the last ones get fewer if rounding runs out of hosts). So every host has
/// at most one fault, faulty hosts are spread over the whole address range, and the same
/// seed always picks the same hosts: 10 kinds at 10% on 10,000 hosts give exactly 1,000
/// hosts each. [`SimFleet::fault_of`](crate::SimFleet::fault_of) tells a host's fault.
///
/// ```
/// use std::time::Duration;
/// use fleetsh_sim::{Fault, parse_faults};
///
/// let faults = parse_faults("refuse=5, slow-banner:300=2.5,exit:3=10%")?;
/// assert_eq!(
///     faults,
///     [
///         (Fault::Refuse, 5.0),
///         (Fault::SlowBanner(Duration::from_millis(300)), 2.5),
///         (Fault::Exit(3), 10.0),
///     ]
/// );
/// let err = parse_faults("refuse=5,explode=1").unwrap_err();
/// assert_eq!(err.to_string(), "bad fault `explode=1`: unknown kind `explode` (kinds: refuse, silent, slow-banner:MS, auth-fail, hostkey-mismatch, drop, hang, flood, exit:N, sftp-evil, sftp-cut:BYTES, no-forward, freeze:MS)");
/// # Ok::<(), fleetsh_sim::SimError>(())
/// ```
pub fn parse_faults(spec: &str) -> Result<Vec<(Fault, f64)>, SimError> {
    let mut out = Vec::new();
    for token in spec.split(',').map(str::trim) {
        if token.is_empty() {
            if spec.trim().is_empty() {
                continue;
            }
            return Err(bad(token, "empty item (stray comma?)"));
        }
        out.push(parse_item(token)?);
    }
    check_shares(&out)?;
    Ok(out)
}

/// The kinds, as listed in error messages.
const KINDS: &str = "refuse, silent, slow-banner:MS, auth-fail, hostkey-mismatch, drop, hang, \
                     flood, exit:N, sftp-evil, sftp-cut:BYTES, no-forward, freeze:MS";

/// A [`SimError::BadFault`] for `token`.
fn bad(token: &str, reason: impl Into<String>) -> SimError {
    SimError::BadFault {
        token: token.to_owned(),
        reason: reason.into(),
    }
}

/// Parses one `KIND[:ARG]=PERCENT` item.
fn parse_item(token: &str) -> Result<(Fault, f64), SimError> {
    let Some((kind, percent)) = token.rsplit_once('=') else {
        return Err(bad(token, "expected KIND=PERCENT"));
    };
    let (name, arg) = match kind.split_once(':') {
        Some((name, arg)) => (name.trim(), Some(arg.trim())),
        None => (kind.trim(), None),
    };
    let no_arg = |fault: Fault| match arg {
        None => Ok(fault),
        Some(_) => Err(bad(token, format!("`{name}` takes no argument"))),
    };
    let fault = match name {
        "refuse" => no_arg(Fault::Refuse)?,
        "silent" => no_arg(Fault::Silent)?,
        "auth-fail" => no_arg(Fault::AuthFail)?,
        "hostkey-mismatch" => no_arg(Fault::HostkeyMismatch)?,
        "drop" => no_arg(Fault::Drop)?,
        "hang" => no_arg(Fault::Hang)?,
        "flood" => no_arg(Fault::Flood)?,
        "sftp-evil" => no_arg(Fault::SftpEvil)?,
        "no-forward" => no_arg(Fault::NoForward)?,
        "sftp-cut" => {
            let Some(bytes) = arg else {
                return Err(bad(
                    token,
                    "sftp-cut needs a byte count: sftp-cut:BYTES=PERCENT",
                ));
            };
            Fault::SftpCut(bytes.parse::<u64>().map_err(|_| {
                bad(
                    token,
                    format!("bad byte count `{bytes}`: expected a whole number"),
                )
            })?)
        }
        "slow-banner" => Fault::SlowBanner(millis(token, name, arg)?),
        "freeze" => Fault::Freeze(millis(token, name, arg)?),
        "exit" => match arg {
            None => Fault::Exit(1),
            Some(n) => Fault::Exit(
                n.parse::<u8>()
                    .map_err(|_| bad(token, format!("bad exit status `{n}`: expected 0 to 255")))?,
            ),
        },
        other => {
            return Err(bad(
                token,
                format!("unknown kind `{other}` (kinds: {KINDS})"),
            ));
        }
    };
    let text = percent.trim();
    let number = text.strip_suffix('%').unwrap_or(text).trim();
    match number.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok((fault, p)),
        _ => Err(bad(
            token,
            format!("bad percentage `{text}`: expected a number from 0 to 100"),
        )),
    }
}

/// The `MS` argument of `slow-banner:MS` or `freeze:MS` (`name`), as a duration.
fn millis(token: &str, name: &str, arg: Option<&str>) -> Result<Duration, SimError> {
    let Some(ms) = arg else {
        return Err(bad(
            token,
            format!("{name} needs a delay in milliseconds: {name}:MS=PERCENT"),
        ));
    };
    let ms = ms.parse::<u64>().map_err(|_| {
        bad(
            token,
            format!("bad delay `{ms}`: expected whole milliseconds"),
        )
    })?;
    Ok(Duration::from_millis(ms))
}

/// Checks every share is in 0..=100 and that they add up to at most 100.
pub(crate) fn check_shares(faults: &[(Fault, f64)]) -> Result<(), SimError> {
    let mut total = 0.0;
    for (fault, p) in faults {
        if !(0.0..=100.0).contains(p) {
            return Err(bad(
                &format!("{fault}={p}"),
                "the percentage must be from 0 to 100",
            ));
        }
        total += p;
    }
    // Tolerate rounding in sums like 10 × 10.0.
    if total > 100.0 + 1e-9 {
        return Err(SimError::FaultShares { total });
    }
    Ok(())
}

/// Domain tag of the fault permutation's generator ("faults!!").
const FAULT_DOMAIN: u64 = 0x6661_756c_7473_2121;

/// Gives each of `count` hosts at most one fault; see [`parse_faults`], "Which hosts".
pub(crate) fn assign(
    faults: &[(Fault, f64)],
    count: usize,
    seed: u64,
) -> Result<Vec<Option<Fault>>, SimError> {
    check_shares(faults)?;
    let mut out = vec![None; count];
    if faults.is_empty() || count == 0 {
        return Ok(out);
    }
    // Fisher-Yates with a SplitMix64 stream.
    let mut order: Vec<usize> = (0..count).collect();
    let mut state = mix(seed ^ FAULT_DOMAIN);
    for i in (1..count).rev() {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        // `i + 1` is at most 2^24 (the address space), so the modulo bias is negligible.
        let j = (mix(state) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let mut next = order.into_iter();
    for (fault, percent) in faults {
        let share = (count as f64 * percent / 100.0).round() as usize;
        for index in next.by_ref().take(share) {
            if let Some(slot) = out.get_mut(index) {
                *slot = Some(fault.clone());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn err(spec: &str) -> String {
        parse_faults(spec).unwrap_err().to_string()
    }

    #[test]
    fn parses_every_kind() {
        let faults = parse_faults(
            "refuse=1,silent=2,slow-banner:1500=3,auth-fail=4,hostkey-mismatch=5,\
             drop=6,hang=7,flood=8,exit=9,exit:42=10.5%,sftp-evil=1,sftp-cut:4096=2,\
             no-forward=3,freeze:2500=4",
        )
        .unwrap();
        assert_eq!(
            faults,
            [
                (Fault::Refuse, 1.0),
                (Fault::Silent, 2.0),
                (Fault::SlowBanner(Duration::from_millis(1500)), 3.0),
                (Fault::AuthFail, 4.0),
                (Fault::HostkeyMismatch, 5.0),
                (Fault::Drop, 6.0),
                (Fault::Hang, 7.0),
                (Fault::Flood, 8.0),
                (Fault::Exit(1), 9.0),
                (Fault::Exit(42), 10.5),
                (Fault::SftpEvil, 1.0),
                (Fault::SftpCut(4096), 2.0),
                (Fault::NoForward, 3.0),
                (Fault::Freeze(Duration::from_millis(2500)), 4.0),
            ]
        );
        assert_eq!(parse_faults("").unwrap(), []);
        assert_eq!(parse_faults("  ").unwrap(), []);
        assert_eq!(
            parse_faults(" drop = 100 ").unwrap(),
            [(Fault::Drop, 100.0)]
        );
        assert_eq!(parse_faults("hang=0").unwrap(), [(Fault::Hang, 0.0)]);
    }

    #[test]
    fn display_round_trips() {
        for fault in [
            Fault::Refuse,
            Fault::Silent,
            Fault::SlowBanner(Duration::from_millis(250)),
            Fault::AuthFail,
            Fault::HostkeyMismatch,
            Fault::Drop,
            Fault::Hang,
            Fault::Flood,
            Fault::Exit(7),
            Fault::SftpEvil,
            Fault::SftpCut(100_000),
            Fault::NoForward,
            Fault::Freeze(Duration::from_millis(0)),
            Fault::Freeze(Duration::from_millis(1500)),
        ] {
            let spec = format!("{fault}=1");
            assert_eq!(parse_faults(&spec).unwrap(), [(fault, 1.0)], "{spec}");
        }
    }

    #[test]
    fn errors_name_the_bad_item() {
        assert!(err("refuse=5,explode=1").starts_with("bad fault `explode=1`: unknown kind"));
        assert_eq!(err("refuse"), "bad fault `refuse`: expected KIND=PERCENT");
        assert_eq!(
            err("drop=lots"),
            "bad fault `drop=lots`: bad percentage `lots`: expected a number from 0 to 100"
        );
        assert!(err("drop=101").starts_with("bad fault `drop=101`: bad percentage"));
        assert!(err("drop=-1").starts_with("bad fault `drop=-1`"));
        assert!(err("drop=NaN").starts_with("bad fault `drop=NaN`"));
        assert_eq!(
            err("slow-banner=5"),
            "bad fault `slow-banner=5`: slow-banner needs a delay in milliseconds: \
             slow-banner:MS=PERCENT"
        );
        assert!(err("slow-banner:1.5s=5").starts_with("bad fault `slow-banner:1.5s=5`: bad delay"));
        assert_eq!(
            err("freeze=5"),
            "bad fault `freeze=5`: freeze needs a delay in milliseconds: freeze:MS=PERCENT"
        );
        assert!(err("freeze:-1=5").starts_with("bad fault `freeze:-1=5`: bad delay `-1`"));
        assert!(err("freeze:x=5").starts_with("bad fault `freeze:x=5`: bad delay"));
        assert!(err("exit:256=5").starts_with("bad fault `exit:256=5`: bad exit status `256`"));
        assert_eq!(
            err("sftp-cut=5"),
            "bad fault `sftp-cut=5`: sftp-cut needs a byte count: sftp-cut:BYTES=PERCENT"
        );
        assert!(err("sftp-cut:1k=5").starts_with("bad fault `sftp-cut:1k=5`: bad byte count"));
        assert_eq!(
            err("sftp-evil:1=5"),
            "bad fault `sftp-evil:1=5`: `sftp-evil` takes no argument"
        );
        assert_eq!(
            err("hang:3=5"),
            "bad fault `hang:3=5`: `hang` takes no argument"
        );
        assert!(err("hang=5,,drop=1").starts_with("bad fault ``: empty item"));
        assert_eq!(
            err("hang=60,drop=50"),
            "fault shares add up to 110% of the hosts, more than 100%"
        );
    }

    #[test]
    fn counts_follow_the_percentages() {
        let kinds = parse_faults(
            "refuse=10,silent=10,slow-banner:100=10,auth-fail=10,hostkey-mismatch=10,\
             drop=10,hang=10,flood=10,exit=10,exit:3=10",
        )
        .unwrap();
        let assigned = assign(&kinds, 10_000, 0).unwrap();
        for (fault, _) in &kinds {
            let n = assigned
                .iter()
                .filter(|f| f.as_ref() == Some(fault))
                .count();
            assert_eq!(n, 1_000, "{fault}");
        }
        assert!(assigned.iter().all(Option::is_some));

        // Rounding, and a fleet smaller than the shares.
        let assigned = assign(&[(Fault::Drop, 2.5), (Fault::Hang, 33.3)], 10, 1).unwrap();
        let drops = assigned.iter().filter(|f| **f == Some(Fault::Drop)).count();
        let hangs = assigned.iter().filter(|f| **f == Some(Fault::Hang)).count();
        assert_eq!((drops, hangs), (0, 3));
        let assigned = assign(&[(Fault::Drop, 50.0), (Fault::Hang, 50.0)], 3, 1).unwrap();
        assert!(assigned.iter().all(Option::is_some));
        assert_eq!(
            assign(&[(Fault::Drop, 100.0)], 1, 9).unwrap(),
            [Some(Fault::Drop)]
        );
        assert_eq!(assign(&[], 4, 9).unwrap(), [None, None, None, None]);
        assert!(matches!(
            assign(&[(Fault::Drop, 150.0)], 4, 9),
            Err(SimError::BadFault { .. })
        ));
    }

    #[test]
    fn assignment_is_deterministic_and_spread() {
        let faults = [(Fault::Refuse, 10.0), (Fault::Exit(2), 5.0)];
        let a = assign(&faults, 2_000, 7).unwrap();
        assert_eq!(a, assign(&faults, 2_000, 7).unwrap());
        assert_ne!(a, assign(&faults, 2_000, 8).unwrap(), "the seed matters");
        // Spread over the range, not one block: every tenth of the fleet has some.
        for tenth in a.chunks(200) {
            let n = tenth.iter().filter(|f| **f == Some(Fault::Refuse)).count();
            assert!(
                (5..=40).contains(&n),
                "{n} refusing hosts in a block of 200"
            );
        }
    }
}
