//! Checks of the `known_hosts` fuzz target: `KnownHosts::parse_text` and `KnownHosts::check`.
//!
//! The input is `KNOWN_HOSTS_TEXT [\0 HOST [\0 PORT]]`; without a host the lookup is `web1`, port
//! 22, and a missing or unreadable port is 22. The server key is always the Ed25519 key of seed
//! `[7; 32]`, so the seed corpus holds lines with that key (trusted), other keys (changed) and
//! `@revoked` ones.
//!
//! Shared, through `#[path]`, by `fuzz/fuzz_targets/known_hosts.rs` and
//! `crates/shard/tests/it/main.rs`. Depends on `fleetsh_shard`, `fleetsh_core`,
//! `russh` and std only.

use std::path::Path;
use std::sync::OnceLock;

use fleetsh_core::HostKeyCheck;
use fleetsh_shard::{KnownHosts, Verdict};
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{PrivateKey, PublicKey};

/// A host that no input names on purpose; its verdict must not change when a host is learned.
const PROBE: &str = "probe.fleetsh.invalid";

/// The server's key in every check.
pub fn server_key() -> &'static PublicKey {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    KEY.get_or_init(|| {
        PrivateKey::from(Ed25519Keypair::from_seed(&[7; 32]))
            .public_key()
            .clone()
    })
}

/// Removes a file when dropped, whichever way the check ends.
struct RemoveOnDrop<'a>(&'a Path);

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}

/// Splits an input into known_hosts text, host and port.
fn split(data: &[u8]) -> (&[u8], &[u8], u16) {
    let mut parts = data.splitn(3, |&b| b == 0);
    let text = parts.next().unwrap_or_default();
    let host = parts.next().unwrap_or(b"web1");
    let port = parts
        .next()
        .and_then(|p| std::str::from_utf8(p).ok())
        .and_then(|p| p.parse().ok())
        .unwrap_or(22);
    (text, host, port)
}

/// Runs every check on one input; panics on a violated invariant. `scratch` is a directory the
/// check may write a known_hosts file into (accept-new appends learned hosts to the file).
///
/// 1. Parsing and checking never panic, in any mode.
/// 2. `off` always gives `Unchecked`; `strict` never gives `Learned`.
/// 3. `accept-new` gives `Learned` exactly where `strict` gives `Unknown`, and otherwise the
///    same verdict as `strict`.
/// 4. A learned key is trusted at once, and the file it was appended to, read back, trusts it
///    too, while a probe host's verdict is the same as before: learning one host never corrupts
///    earlier lines nor trusts the key for other hosts.
pub fn check(data: &[u8], scratch: &Path) {
    let (text, host, port) = split(data);
    let (Ok(text), Ok(host)) = (std::str::from_utf8(text), std::str::from_utf8(host)) else {
        return;
    };
    let key = server_key();
    // One file per process, removed after each input, so parallel runs never share it and
    // nothing piles up in `scratch`.
    let path = scratch.join(format!("known_hosts.{}", std::process::id()));
    let _remove = RemoveOnDrop(&path);

    let off = KnownHosts::parse_text(text, &path, HostKeyCheck::Off);
    assert_eq!(off.check(host, port, key), Verdict::Unchecked);

    let strict = KnownHosts::parse_text(text, &path, HostKeyCheck::Strict);
    let verdict = strict.check(host, port, key);
    assert_ne!(verdict, Verdict::Learned, "strict mode learned a key");
    let probe_before = strict.check(PROBE, port, key);

    if let Err(e) = std::fs::write(&path, text) {
        panic!("cannot write {}: {e}", path.display());
    }
    let accept = KnownHosts::parse_text(text, &path, HostKeyCheck::AcceptNew);
    let learned = accept.check(host, port, key);
    if verdict != Verdict::Unknown {
        assert_eq!(
            learned, verdict,
            "accept-new differs from strict on a known host"
        );
        return;
    }
    assert_eq!(
        learned,
        Verdict::Learned,
        "accept-new did not learn an unknown host"
    );
    assert_eq!(
        accept.check(host, port, key),
        Verdict::Trusted,
        "a learned key is not trusted"
    );

    let written = match std::fs::read_to_string(&path) {
        Ok(w) => w,
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    };
    let reloaded = KnownHosts::parse_text(&written, &path, HostKeyCheck::Strict);
    if reloaded.check(host, port, key) == Verdict::Trusted {
        assert_eq!(
            reloaded.check(PROBE, port, key),
            probe_before,
            "learning {host:?} changed the verdict for another host; file now:\n{written}"
        );
    } else {
        // Not persisted: the file must be as it was (learned for this run only).
        assert_eq!(
            written, text,
            "learned {host:?} is not trusted after a reload, yet the file changed:\n{written}"
        );
    }
}
