//! The final host list ([`HostList`]): includes and exclusions, de-duplication in first-seen
//! order, and a size limit.

use std::collections::HashSet;
use std::path::Path;

use super::expand::{expand_targets, too_many};
use super::hostfile::read_hosts_file;
use super::target::HostTarget;
use crate::Error;

/// The default upper bound on the number of hosts a [`HostList`] may hold (before de-duplication).
pub const DEFAULT_MAX_HOSTS: usize = 1_000_000;

/// A builder for the final host list.
///
/// Includes (range specs, hosts files, plain targets) are expanded and parsed as they are added,
/// so errors point at the argument that caused them. [`build`](HostList::build) then:
///
/// 1. removes excluded targets (like `pdsh -x`): an exclusion with neither user nor port removes
///    every target with that host name; one with a user and/or a port removes only the targets
///    whose user and/or port are equal to the ones given (`root@web1` does not remove a plain
///    `web1`, whose user is left to the configuration);
/// 2. removes duplicate `(user, host, port)` targets, keeping the first occurrence and the order.
///
/// Names are compared exactly (case-sensitively), as pdsh does.
///
/// The limit (default [`DEFAULT_MAX_HOSTS`]) bounds the number of included hosts after
/// expansion and before de-duplication, and separately the number of excluded hosts; it is
/// checked before each spec or file is expanded, so no more than `limit` targets are ever built.
///
/// ```
/// use fleetsh_core::{HostList, HostTarget};
///
/// let mut list = HostList::new();
/// list.include_spec("web[1-3],web1")?
///     .include_target(HostTarget::new("db1").with_port(2222))
///     .exclude_spec("web2")?;
/// let hosts = list.build()?;
/// let names: Vec<String> = hosts.iter().map(|t| t.to_string()).collect();
/// assert_eq!(names, ["web1", "web3", "db1:2222"]);
/// # Ok::<(), fleetsh_core::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct HostList {
    /// `None` means [`DEFAULT_MAX_HOSTS`] (so that the derived `Default` equals `new()`).
    limit: Option<usize>,
    includes: Vec<HostTarget>,
    excludes: Vec<HostTarget>,
}

impl HostList {
    /// An empty list with the default limit, [`DEFAULT_MAX_HOSTS`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the maximum number of hosts (see the type's documentation).
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    fn max(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_MAX_HOSTS)
    }

    /// Adds the hosts of a range spec (see [`expand`](fn@super::expand)); each may carry a user
    /// and a port.
    ///
    /// # Errors
    ///
    /// [`Error::HostSpec`] for a bad spec or host, [`Error::TooManyHosts`] if the list would
    /// exceed the limit. The list is unchanged on error.
    pub fn include_spec(&mut self, spec: &str) -> Result<&mut Self, Error> {
        let limit = self.max();
        let remaining = limit.saturating_sub(self.includes.len());
        let targets = expand_targets(spec, remaining).map_err(|e| relimit(e, limit))?;
        self.includes.extend(targets);
        Ok(self)
    }

    /// Adds the hosts of a hosts file (see [`read_hosts_file`]).
    ///
    /// # Errors
    ///
    /// [`Error::Io`], [`Error::HostsFile`] or [`Error::TooManyHosts`]. The list is unchanged
    /// on error.
    pub fn include_file(&mut self, path: &Path) -> Result<&mut Self, Error> {
        let limit = self.max();
        let remaining = limit.saturating_sub(self.includes.len());
        let targets = read_hosts_file(path, remaining).map_err(|e| relimit(e, limit))?;
        self.includes.extend(targets);
        Ok(self)
    }

    /// Excludes one target (a target without user and port excludes that host on any).
    pub fn exclude_target(&mut self, t: HostTarget) -> &mut Self {
        self.excludes.push(t);
        self
    }

    /// Adds one target. The limit is checked by [`build`](HostList::build).
    pub fn include_target(&mut self, t: HostTarget) -> &mut Self {
        self.includes.push(t);
        self
    }

    /// Excludes the hosts of a range spec (see the type's documentation for the matching rules).
    ///
    /// # Errors
    ///
    /// [`Error::HostSpec`] for a bad spec or host, [`Error::TooManyHosts`] if the exclusions
    /// would exceed the limit. The list is unchanged on error.
    pub fn exclude_spec(&mut self, spec: &str) -> Result<&mut Self, Error> {
        let limit = self.max();
        let remaining = limit.saturating_sub(self.excludes.len());
        let targets = expand_targets(spec, remaining).map_err(|e| relimit(e, limit))?;
        self.excludes.extend(targets);
        Ok(self)
    }

    /// Applies exclusions and de-duplication and returns the targets in first-seen order.
    ///
    /// # Errors
    ///
    /// [`Error::TooManyHosts`] if the includes exceed the limit (possible only through
    /// [`include_target`](HostList::include_target) or a limit lowered after including),
    /// [`Error::NoHosts`] if nothing is left.
    pub fn build(&self) -> Result<Vec<HostTarget>, Error> {
        let limit = self.max();
        if self.includes.len() > limit {
            return Err(too_many("(all includes)", limit));
        }

        let mut by_host: HashSet<&str> = HashSet::new();
        let mut by_user: HashSet<(&str, &str)> = HashSet::new();
        let mut by_port: HashSet<(&str, u16)> = HashSet::new();
        let mut by_both: HashSet<(&str, &str, u16)> = HashSet::new();
        for x in &self.excludes {
            let host = x.host.as_str();
            match (x.user.as_deref(), x.port) {
                (None, None) => by_host.insert(host),
                (Some(user), None) => by_user.insert((user, host)),
                (None, Some(port)) => by_port.insert((host, port)),
                (Some(user), Some(port)) => by_both.insert((user, host, port)),
            };
        }
        let excluded = |t: &HostTarget| {
            let host = t.host.as_str();
            by_host.contains(host)
                || t.user
                    .as_deref()
                    .is_some_and(|u| by_user.contains(&(u, host)))
                || t.port.is_some_and(|p| by_port.contains(&(host, p)))
                || t.user
                    .as_deref()
                    .zip(t.port)
                    .is_some_and(|(u, p)| by_both.contains(&(u, host, p)))
        };

        let mut seen: HashSet<&HostTarget> = HashSet::with_capacity(self.includes.len());
        let out: Vec<HostTarget> = self
            .includes
            .iter()
            .filter(|t| !excluded(t) && seen.insert(t))
            .cloned()
            .collect();
        if out.is_empty() {
            return Err(Error::NoHosts);
        }
        Ok(out)
    }
}

/// Reports the list's limit rather than the remaining room that was passed down.
fn relimit(err: Error, limit: usize) -> Error {
    match err {
        Error::TooManyHosts { what, .. } => Error::TooManyHosts { what, limit },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts::assertions::{assert_too_many, names, spec_err};

    #[test]
    fn list_dedup_keeps_first_order() {
        let mut list = HostList::new();
        list.include_spec("c,a,b")
            .and_then(|l| l.include_spec("a,d,c"))
            .expect("specs");
        list.include_target(HostTarget::new("b"))
            .include_target(HostTarget::new("b").with_port(22))
            .include_target(HostTarget::new("b").with_user("root"));
        let hosts = list.build().expect("build");
        assert_eq!(names(&hosts), ["c", "a", "b", "d", "b:22", "root@b"]);
    }

    #[test]
    fn list_exclude_by_name_removes_every_user_and_port() {
        let mut list = HostList::new();
        list.include_spec("web[1-4],root@web2:2222,web2:22,x@web3")
            .and_then(|l| l.exclude_spec("web[2-3]"))
            .expect("specs");
        assert_eq!(names(&list.build().expect("build")), ["web1", "web4"]);
    }

    #[test]
    fn list_exclude_by_user_and_port_matches_given_parts() {
        let mut list = HostList::new();
        list.include_spec("h,root@h,root@h:22,bob@h:22,h:22,root@h:2222")
            .expect("spec");

        let build_without = |spec: &str| {
            let mut l = list.clone();
            l.exclude_spec(spec).expect("exclude");
            names(&l.build().expect("build"))
        };
        assert_eq!(
            build_without("root@h"),
            ["h", "bob@h:22", "h:22"],
            "user only: every port of root@h"
        );
        assert_eq!(
            build_without("h:22"),
            ["h", "root@h", "root@h:2222"],
            "port only: every user of h:22"
        );
        assert_eq!(
            build_without("root@h:22"),
            ["h", "root@h", "bob@h:22", "h:22", "root@h:2222"],
            "user and port: exactly one"
        );
        assert_eq!(
            build_without("root@other,other:22"),
            [
                "h",
                "root@h",
                "root@h:22",
                "bob@h:22",
                "h:22",
                "root@h:2222"
            ],
            "other hosts: nothing"
        );
    }

    #[test]
    fn list_no_hosts() {
        assert!(matches!(HostList::new().build(), Err(Error::NoHosts)));
        let mut list = HostList::new();
        list.include_spec("a,b")
            .and_then(|l| l.exclude_spec("a,b"))
            .expect("specs");
        assert!(matches!(list.build(), Err(Error::NoHosts)));
    }

    #[test]
    fn list_errors_are_reported_and_leave_list_unchanged() {
        let mut list = HostList::new().limit(5);
        list.include_spec("a").expect("a");
        let (column, reason) = spec_err(list.include_spec("web[1-2]:0"));
        assert_eq!(column, 6);
        assert!(reason.contains("expanded from \"web[1-2]:0\""), "{reason}");
        assert_too_many(list.include_spec("h[1-5]"), "h[1-5]", 5);
        assert!(matches!(
            list.exclude_spec("[1-"),
            Err(Error::HostSpec { .. })
        ));
        assert_eq!(names(&list.build().expect("build")), ["a"]);
    }

    #[test]
    fn list_limit() {
        let mut list = HostList::new().limit(4);
        list.include_spec("h[1-2]")
            .and_then(|l| l.include_spec("g[1-2]"))
            .expect("exactly at the limit");
        assert_eq!(list.build().map(|v| v.len()).ok(), Some(4));
        assert_too_many(list.include_spec("x"), "x", 4);

        list.include_target(HostTarget::new("y"));
        assert_too_many(list.build(), "(all includes)", 4);

        assert_too_many(
            HostList::new().include_spec("h[1-99999999][1-99999999]"),
            "h[1-99999999][1-99999999]",
            DEFAULT_MAX_HOSTS,
        );
        assert_eq!(HostList::new().max(), DEFAULT_MAX_HOSTS);
        assert_eq!(HostList::default().max(), DEFAULT_MAX_HOSTS);
    }

    #[test]
    fn list_include_file() {
        let dir =
            std::env::temp_dir().join(format!("fleetsh-hostlist-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("hosts");
        std::fs::write(&file, "web[1-3]\n# c\nweb1\n").expect("write");
        let mut list = HostList::new().limit(5);
        list.include_spec("db1")
            .and_then(|l| l.include_file(&file))
            .and_then(|l| l.exclude_spec("web2"))
            .expect("includes");
        assert_eq!(
            names(&list.build().expect("build")),
            ["db1", "web1", "web3"]
        );
        assert_too_many(
            list.include_file(&file),
            &format!("{}:1", file.display()),
            5,
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn list_of_100k_hosts_with_exclusions() {
        // Speed is a benchmark's claim; this checks the result at that size.
        let mut list = HostList::new();
        list.include_spec("rack[000-099]-node[0000-0999]")
            .and_then(|l| l.include_spec("rack[000-009]-node[0000-0999]"))
            .and_then(|l| l.exclude_spec("rack[050-059]-node[0000-0999]"))
            .expect("specs");
        let hosts = list.build().expect("build");
        assert_eq!(hosts.len(), 90_000);
        assert_eq!(hosts[0].host, "rack000-node0000");
        assert_eq!(hosts[89_999].host, "rack099-node0999");
    }
}
