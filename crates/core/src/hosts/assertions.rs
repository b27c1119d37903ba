//! Assertions on host errors shared by the tests of the host modules.

use std::fmt;

use crate::{Error, HostTarget};

/// Asserts a `HostSpec` error and returns `(column, reason)`.
pub(super) fn spec_err(result: Result<impl fmt::Debug, Error>) -> (usize, String) {
    match result {
        Err(Error::HostSpec { column, reason, .. }) => (column, reason),
        other => panic!("expected a HostSpec error, got {other:?}"),
    }
}

pub(super) fn names(targets: &[HostTarget]) -> Vec<String> {
    targets.iter().map(ToString::to_string).collect()
}

pub(super) fn assert_too_many(result: Result<impl fmt::Debug, Error>, what: &str, limit: usize) {
    match result {
        Err(Error::TooManyHosts {
            what: got_what,
            limit: got_limit,
        }) => {
            assert_eq!(got_what, what);
            assert_eq!(got_limit, limit);
        }
        other => panic!("expected TooManyHosts, got {other:?}"),
    }
}
