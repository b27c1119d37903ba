//! Checks of the `ssh_config` fuzz target: `SshConfig::parse_text` and `SshConfig::resolve`.
//!
//! The input is `CONFIG [\0 HOST [\0 USER]]` (default host `web1.dc1`, no user): the text before
//! the first NUL is parsed as an ssh_config file, the rest names the host (and remote user) it is
//! resolved for. Inputs containing `include` (any case) are skipped: `Include` reads files from
//! disk, which a fuzzer must not do; the include rules have unit tests
//! (`crates/core/src/ssh_config.rs`).
//!
//! Shared, through `#[path]`, by `fuzz/fuzz_targets/ssh_config.rs` and
//! `crates/core/tests/it/fuzz_regressions.rs`. Depends on `fleetsh_core` and std only.

use std::path::Path;

use fleetsh_core::Error;
use fleetsh_core::ssh_config::{Query, Source, SshConfig};

/// Runs every check on one input; panics on a violated invariant.
///
/// 1. Parsing never panics; an error is `SshConfig` naming the file and a line that exists.
/// 2. Resolving never panics and is deterministic (the same query twice gives the same result).
/// 3. Every value's source names the file and a line that exists; ports are never 0 and connect
///    timeouts never zero (bad values are refused at parse time, not used).
/// 4. First value wins: appending `Host *` with other values to the text changes no value the
///    original already set (and adds nothing before it).
pub fn check(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    if input.to_ascii_lowercase().contains("include") {
        return;
    }
    let mut parts = input.splitn(3, '\0');
    let text = parts.next().unwrap_or_default();
    let host = parts.next().filter(|h| !h.is_empty()).unwrap_or("web1.dc1");
    let user = parts.next();
    let path = Path::new("cfg");
    let lines = text.lines().count();
    let cfg = match SshConfig::parse_text(text, path, Some(Path::new("/home/u")), "u") {
        Ok(c) => c,
        Err(Error::SshConfig { path: p, line, .. }) => {
            assert_eq!(p, path);
            assert!((1..=lines).contains(&line), "line {line} of {lines}");
            return;
        }
        Err(other) => panic!("unexpected error: {other:?}"),
    };
    let query = Query { host, user };
    let r = cfg.resolve(query);
    assert_eq!(r, cfg.resolve(query), "resolution is not deterministic");
    let in_file = |s: &Source| {
        assert_eq!(&*s.file, path);
        assert!((1..=lines).contains(&s.line), "line {} of {lines}", s.line);
    };
    let sources = [
        r.hostname.as_ref().map(|s| &s.source),
        r.user.as_ref().map(|s| &s.source),
        r.port.as_ref().map(|s| &s.source),
        r.identities_only.as_ref().map(|s| &s.source),
        r.proxy_jump.as_ref().map(|s| &s.source),
        r.connect_timeout.as_ref().map(|s| &s.source),
        r.host_key_check.as_ref().map(|s| &s.source),
        r.known_hosts_file.as_ref().map(|s| &s.source),
        r.server_alive_interval.as_ref().map(|s| &s.source),
        r.server_alive_count_max.as_ref().map(|s| &s.source),
        r.hash_known_hosts.as_ref().map(|s| &s.source),
    ];
    for s in sources.into_iter().flatten() {
        in_file(s);
    }
    for s in r
        .identity_files
        .iter()
        .chain(&r.certificate_files)
        .map(|s| &s.source)
    {
        in_file(s);
    }
    for i in r.ignored.iter().chain(&cfg.ignored()) {
        in_file(&i.source);
    }
    if let Some(p) = &r.port {
        assert_ne!(p.value, 0, "port 0 accepted");
    }
    if let Some(t) = &r.connect_timeout {
        assert!(!t.value.is_zero(), "zero connect timeout accepted");
    }

    // 4. Later values never override earlier ones.
    let mut more = text.to_string();
    if !more.is_empty() && !more.ends_with('\n') {
        more.push('\n');
    }
    more.push_str("Host *\nUser zz-late\nPort 4444\nHostName zz-late\nIdentityFile zz-late\n");
    let Ok(later) = SshConfig::parse_text(&more, path, Some(Path::new("/home/u")), "u") else {
        // Appending can only fail when the text ends inside something that now parses
        // differently (e.g. a trailing `\r`-less quote); the original parsed, so that is fine.
        return;
    };
    let r2 = later.resolve(query);
    if let Some(h) = &r.hostname {
        assert_eq!(r2.hostname.as_ref().map(|x| &x.value), Some(&h.value));
    }
    if let Some(u) = &r.user {
        assert_eq!(r2.user.as_ref().map(|x| &x.value), Some(&u.value));
    }
    if let Some(p) = &r.port {
        assert_eq!(r2.port.as_ref().map(|x| x.value), Some(p.value));
    }
    assert_eq!(
        r2.identity_files.get(..r.identity_files.len()),
        Some(&r.identity_files[..]),
        "identity files appended after, never before"
    );
}
