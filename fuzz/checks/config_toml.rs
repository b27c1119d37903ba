//! Checks of the `config_toml` fuzz target: `FileConfig::parse`, `Groups::parse` and
//! `Groups::evaluate`.
//!
//! The input is `TOML \0 EXPRESSION`: the text before the first NUL byte is parsed both as a
//! config file and as a groups file, the text after it is a host expression evaluated against
//! those groups (a NUL cannot appear in valid TOML, so nothing is lost by splitting there).
//!
//! Shared, through `#[path]`, by `fuzz/fuzz_targets/config_toml.rs` and
//! `crates/core/tests/it/fuzz_regressions.rs`. Depends on `fleetsh_core` and std only.

use std::collections::HashSet;
use std::path::Path;

use fleetsh_core::{Error, FileConfig, Groups, HostList, HostTarget, Job, RunConfig, Sudo};

/// The host limit given to `Groups::evaluate`.
pub const LIMIT: usize = 10_000;

/// Runs every check on one input; panics on a violated invariant.
///
/// 1. `FileConfig::parse` never panics; a config it accepts, applied to a job and a run config
///    as the command line does, passes `Job::validate` and `RunConfig::validate` (bad values are
///    reported at load time, naming the file, not later).
/// 2. `Groups::parse` and `Groups::evaluate` never panic, always end (the fuzzer's timeout
///    catches runaway recursion or quadratic work), and give at most [`LIMIT`] targets, with no
///    duplicate, each of which round-trips through `Display`.
/// 3. An expression that is not a group expression (`Groups::is_expression` is false) gives the
///    same targets as a `HostList` built from it, whenever both succeed.
pub fn check(data: &[u8]) {
    let (toml, expr) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], data.get(nul + 1..).unwrap_or_default()),
        None => (data, &[][..]),
    };
    let Ok(toml) = std::str::from_utf8(toml) else {
        return;
    };
    check_config(toml);

    let groups = match Groups::parse(toml, Path::new("g.toml")) {
        Ok(g) => g,
        Err(Error::Config { .. }) => Groups::new(),
        Err(other) => panic!("unexpected error from Groups::parse: {other:?}"),
    };
    let Ok(expr) = std::str::from_utf8(expr) else {
        return;
    };
    if expr.is_empty() {
        return;
    }
    check_groups(&groups, expr);
}

fn check_config(text: &str) {
    let cfg = match FileConfig::parse(text, Path::new("c.toml")) {
        Ok(cfg) => cfg,
        Err(Error::Config { path, .. }) => {
            assert_eq!(path, Path::new("c.toml"));
            return;
        }
        Err(other) => panic!("unexpected error from FileConfig::parse: {other:?}"),
    };
    let mut job = Job::new("true");
    cfg.apply_to_job(&mut job);
    if cfg.sudo_user.is_some() {
        job.sudo = Some(Sudo {
            user: cfg.sudo_user.clone(),
            password: None,
        });
    }
    if let Err(e) = job.validate() {
        panic!("config {cfg:?} loads but its job is invalid: {e}");
    }
    let mut run = RunConfig::default();
    cfg.apply_to_run(&mut run);
    if let Err(e) = run.validate() {
        panic!("config {cfg:?} loads but its run config is invalid: {e}");
    }
}

fn check_groups(groups: &Groups, expr: &str) {
    let _ = Groups::is_expression(expr);
    let targets = match groups.evaluate(expr, LIMIT) {
        Ok(targets) => targets,
        Err(Error::TooManyHosts { limit, .. }) => {
            assert_eq!(limit, LIMIT);
            return;
        }
        Err(Error::HostSpec { spec, column, .. }) => {
            let max = spec.chars().count() + 1;
            assert!(
                (1..=max).contains(&column),
                "column {column} outside 1..={max} of {spec:?}"
            );
            return;
        }
        Err(other) => panic!("unexpected error from Groups::evaluate: {other:?}"),
    };
    assert!(targets.len() <= LIMIT, "{} targets > limit", targets.len());
    let mut seen = HashSet::new();
    for t in &targets {
        assert!(seen.insert(t), "duplicate target {t}");
        let shown = t.to_string();
        match HostTarget::parse(&shown) {
            Ok(again) => assert_eq!(&again, t, "{shown:?} re-parses differently"),
            Err(e) => panic!("target {t:?} displays as {shown:?}, which fails: {e}"),
        }
    }
    if !Groups::is_expression(expr) {
        let mut list = HostList::new().limit(LIMIT);
        if let Ok(built) = list.include_spec(expr).and_then(|l| l.build()) {
            assert_eq!(built, targets, "evaluate and HostList disagree on {expr:?}");
        }
    }
}
