//! Checks of the `hosts_file` fuzz target: `hosts::parse_hosts_file_text`.
//!
//! Shared, through `#[path]`, by `fuzz/fuzz_targets/hosts_file.rs` and
//! `crates/core/tests/it/fuzz_regressions.rs`. Depends on `fleetsh_core` and std only.

use std::path::Path;

use fleetsh_core::hosts::parse_hosts_file_text;
use fleetsh_core::{Error, HostTarget};

/// The host limit for one file.
pub const LIMIT: usize = 10_000;

/// Runs every check on one input; panics on a violated invariant.
///
/// 1. Parsing never panics and gives at most [`LIMIT`] targets.
/// 2. Every target's `Display` form parses back to an equal target.
/// 3. Errors name the file: `HostsFile` with a line number that exists in the text, or
///    `TooManyHosts` with `what` = `f:LINE` and the limit.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("f");
    let lines = text.lines().count();
    match parse_hosts_file_text(text, path, LIMIT) {
        Ok(hosts) => {
            assert!(hosts.len() <= LIMIT, "{} hosts > limit", hosts.len());
            for t in &hosts {
                let shown = t.to_string();
                match HostTarget::parse(&shown) {
                    Ok(again) => assert_eq!(&again, t, "{shown:?} re-parses differently"),
                    Err(e) => panic!("target {t:?} displays as {shown:?}, which fails: {e}"),
                }
            }
        }
        Err(Error::HostsFile { path: p, line, .. }) => {
            assert_eq!(p, path);
            assert!((1..=lines).contains(&line), "line {line} of {lines}");
        }
        Err(Error::TooManyHosts { what, limit }) => {
            assert_eq!(limit, LIMIT);
            let line: usize = what
                .strip_prefix("f:")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("TooManyHosts names {what:?}, not f:LINE"));
            assert!((1..=lines).contains(&line), "line {line} of {lines}");
        }
        Err(other) => panic!("unexpected error: {other:?}"),
    }
}
