//! Checks of the `host_spec` fuzz target: `hosts::expand` and `HostTarget::parse`.
//!
//! Shared, through `#[path]`, by `fuzz/fuzz_targets/host_spec.rs` and
//! `crates/core/tests/it/fuzz_regressions.rs`, so the regression test runs exactly what the fuzzer
//! ran. Depends on `fleetsh_core` and std only.

use fleetsh_core::hosts::expand;
use fleetsh_core::{Error, HostTarget};

/// The host limit given to `expand`: small, so one input cannot take seconds to expand.
pub const LIMIT: usize = 10_000;

/// Runs every check on one input; panics on a violated invariant.
///
/// 1. `HostTarget::parse` never panics; a parsed target's `Display` form parses back to an equal
///    target and is canonical (printing the re-parsed target gives the same text).
/// 2. A valid target whose user holds no `[`, `]` or `,` (range syntax) expands to itself alone.
/// 3. `expand` never panics and never returns more than [`LIMIT`] hosts; the count is exact:
///    with a limit one below it, `expand` fails with `TooManyHosts` (before building anything).
/// 4. Every expanded host either parses as a target (and round-trips as in 1) or fails with a
///    `HostSpec` error about that host; expand's own errors are `HostSpec` about the spec, or
///    `TooManyHosts` naming the limit. Error columns lie within the text (1 to chars + 1).
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    if let Some(target) = parse_checked(text) {
        let plain_user = target
            .user
            .as_deref()
            .is_none_or(|u| !u.contains(['[', ']', ',']));
        if plain_user {
            match expand(text, LIMIT) {
                Ok(hosts) => assert_eq!(hosts, [text], "a plain target expands to itself"),
                Err(e) => panic!("{text:?} parses as a target but does not expand: {e}"),
            }
        }
    }

    match expand(text, LIMIT) {
        Ok(hosts) => {
            assert!(hosts.len() <= LIMIT, "{} hosts > limit", hosts.len());
            assert!(!hosts.is_empty(), "expand gave no host and no error");
            match expand(text, hosts.len() - 1) {
                Err(Error::TooManyHosts { limit, .. }) => assert_eq!(limit, hosts.len() - 1),
                other => panic!(
                    "{text:?} gives {} hosts, but with a limit one below: {other:?}",
                    hosts.len()
                ),
            }
            for host in &hosts {
                parse_checked(host);
            }
        }
        Err(Error::TooManyHosts { what, limit }) => {
            assert_eq!(limit, LIMIT);
            assert_eq!(what, text);
        }
        Err(Error::HostSpec { spec, column, .. }) => {
            assert_eq!(spec, text, "expand's error names the spec");
            check_column(&spec, column);
        }
        Err(other) => panic!("unexpected error from expand: {other:?}"),
    }
}

/// Parses `s` as a target, checking the round trip or the error's column.
fn parse_checked(s: &str) -> Option<HostTarget> {
    match HostTarget::parse(s) {
        Ok(target) => {
            let shown = target.to_string();
            match HostTarget::parse(&shown) {
                Ok(again) => {
                    assert_eq!(again, target, "{s:?} -> {shown:?} re-parses differently");
                    assert_eq!(again.to_string(), shown, "display is not canonical");
                }
                Err(e) => panic!("{s:?} parses, but its display {shown:?} does not: {e}"),
            }
            Some(target)
        }
        Err(Error::HostSpec { spec, column, .. }) => {
            assert_eq!(spec, s, "the error names the target");
            check_column(&spec, column);
            None
        }
        Err(other) => panic!("unexpected error from HostTarget::parse: {other:?}"),
    }
}

fn check_column(spec: &str, column: usize) {
    let max = spec.chars().count() + 1;
    assert!(
        (1..=max).contains(&column),
        "column {column} outside 1..={max} of {spec:?}"
    );
}
