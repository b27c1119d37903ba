//! Host groups (`@name`) with set operations, as clush's `@group` and node sets.
//!
//! Groups come from a TOML file (default `~/.config/fleetsh/groups.toml`), one key per group:
//!
//! ```toml
//! web = "web[01-12].dc1"
//! db = ["db1.dc1", "db2.dc1"]
//! prod = "@web,@db"
//! ```
//!
//! A host expression is read left to right: `A,B` is the union, `A!B` removes B's hosts from A,
//! `A&B` keeps the hosts of A that are also in B. Operands are host specs (ranges allowed) or
//! `@name`. `@web!web03&@canary` = ((web) minus web03) intersected with canary.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::hosts::expand_targets;
use crate::{Error, HostTarget};

/// How deep groups may refer to groups.
const MAX_DEPTH: usize = 16;

/// Named host groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Groups {
    map: HashMap<String, String>,
    source: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Minus,
    And,
}

impl Groups {
    /// No groups.
    pub fn new() -> Self {
        Self::default()
    }

    /// The default groups file: `$XDG_CONFIG_HOME/fleetsh/groups.toml`, else
    /// `~/.config/fleetsh/groups.toml`.
    pub fn default_path() -> Option<PathBuf> {
        crate::config::config_dir().map(|d| d.join("groups.toml"))
    }

    /// Parses a groups file's text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, Error> {
        let raw: HashMap<String, toml::Value> =
            toml::from_str(text).map_err(|e| Error::Config {
                path: path.to_path_buf(),
                message: e.to_string().trim_end().replace('\n', " | "),
            })?;
        let mut map = HashMap::new();
        for (name, v) in raw {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_alphanumeric() || "_-.".contains(c))
            {
                return Err(Error::Config {
                    path: path.to_path_buf(),
                    message: format!(
                        "group name {name:?} may hold only letters, digits, '_', '-', '.'"
                    ),
                });
            }
            let wrong = |what: &str| Error::Config {
                path: path.to_path_buf(),
                message: format!(
                    "group {name:?}: {what}; a group is a host spec string (web = \"web[01-12]\") or a list of them (db = [\"db1\", \"db2\"])"
                ),
            };
            let spec = match v {
                toml::Value::String(s) => s,
                toml::Value::Array(items) => {
                    let mut specs = Vec::with_capacity(items.len());
                    for item in items {
                        match item {
                            toml::Value::String(s) => specs.push(s),
                            other => {
                                return Err(wrong(&format!(
                                    "the list holds {other} (a TOML {}), not a string",
                                    other.type_str()
                                )));
                            }
                        }
                    }
                    specs.join(",")
                }
                other => {
                    return Err(wrong(&format!(
                        "{other} (a TOML {}) is not a host spec",
                        other.type_str()
                    )));
                }
            };
            map.insert(name, spec);
        }
        Ok(Groups {
            map,
            source: Some(path.to_path_buf()),
        })
    }

    /// Reads a groups file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Adds or replaces a group.
    pub fn insert(&mut self, name: impl Into<String>, spec: impl Into<String>) {
        self.map.insert(name.into(), spec.into());
    }

    /// Whether an expression uses groups or set operators (plain specs need none of this).
    pub fn is_expression(expr: &str) -> bool {
        split(expr)
            .iter()
            .any(|(op, operand)| *op != Op::Union || operand.starts_with('@'))
    }

    /// Evaluates a host expression into targets, in first-seen order, without duplicates.
    pub fn evaluate(&self, expr: &str, limit: usize) -> Result<Vec<HostTarget>, Error> {
        self.eval(expr, limit, &mut Vec::new(), &mut HashMap::new())
    }

    /// `done` holds the hosts of every group evaluated so far in this call, so a group named
    /// many times (`a = "@b,@b"`, `b = "@c,@c"`, ...) is expanded once, not once per path.
    fn eval(
        &self,
        expr: &str,
        limit: usize,
        stack: &mut Vec<String>,
        done: &mut HashMap<String, Vec<HostTarget>>,
    ) -> Result<Vec<HostTarget>, Error> {
        let mut acc: Vec<HostTarget> = Vec::new();
        let mut seen: HashSet<HostTarget> = HashSet::new();
        for (op, operand) in split(expr) {
            let operand = operand.trim();
            if operand.is_empty() {
                return Err(Error::HostSpec {
                    spec: expr.to_string(),
                    column: 1,
                    reason: "empty operand around ',', '!' or '&'".into(),
                });
            }
            let items = if let Some(name) = operand.strip_prefix('@') {
                let Some(spec) = self.map.get(name) else {
                    let known = match &self.source {
                        Some(p) => format!("not defined in {}", p.display()),
                        None => "no groups file was loaded".into(),
                    };
                    return Err(Error::HostSpec {
                        spec: expr.to_string(),
                        column: expr
                            .find(operand)
                            .and_then(|c| expr.get(..c))
                            .map_or(1, |head| head.chars().count() + 1),
                        reason: format!("unknown group @{name}: {known}"),
                    });
                };
                if let Some(hosts) = done.get(name) {
                    hosts.clone()
                } else {
                    if stack.iter().any(|s| s == name) || stack.len() >= MAX_DEPTH {
                        return Err(Error::HostSpec {
                            spec: expr.to_string(),
                            column: 1,
                            reason: format!(
                                "group @{name} refers to itself ({} -> {name})",
                                stack.join(" -> ")
                            ),
                        });
                    }
                    stack.push(name.to_string());
                    let r = self.eval(spec, limit, stack, done);
                    stack.pop();
                    let hosts = r?;
                    done.insert(name.to_string(), hosts.clone());
                    hosts
                }
            } else {
                expand_targets(operand, limit)?
            };
            match op {
                Op::Union => {
                    for t in items {
                        if seen.insert(t.clone()) {
                            acc.push(t);
                        }
                    }
                    if acc.len() > limit {
                        return Err(Error::TooManyHosts {
                            what: expr.to_string(),
                            limit,
                        });
                    }
                }
                Op::Minus => {
                    let set = TargetSet::new(&items);
                    let gone: Vec<HostTarget> =
                        acc.iter().filter(|t| set.matches(t)).cloned().collect();
                    acc.retain(|t| !set.matches(t));
                    for g in gone {
                        seen.remove(&g);
                    }
                }
                Op::And => {
                    let set = TargetSet::new(&items);
                    acc.retain(|t| set.matches(t));
                    seen = acc.iter().cloned().collect();
                }
            }
        }
        Ok(acc)
    }
}

/// The targets of a `!` or `&` operand, indexed so that matching costs O(1) per target (a scan
/// of the operand per target made `@all!@drained` quadratic).
///
/// `t` matches when some `x` of the set has `t`'s host and, where `x` gives a user or a port, the
/// same user or port: a bare host matches that host on any user and port.
struct TargetSet<'a> {
    hosts: HashSet<&'a str>,
    users: HashSet<(&'a str, &'a str)>,
    ports: HashSet<(&'a str, u16)>,
    both: HashSet<(&'a str, &'a str, u16)>,
}

impl<'a> TargetSet<'a> {
    fn new(set: &'a [HostTarget]) -> Self {
        let mut s = TargetSet {
            hosts: HashSet::new(),
            users: HashSet::new(),
            ports: HashSet::new(),
            both: HashSet::new(),
        };
        for x in set {
            let host = x.host.as_str();
            match (x.user.as_deref(), x.port) {
                (None, None) => s.hosts.insert(host),
                (Some(user), None) => s.users.insert((user, host)),
                (None, Some(port)) => s.ports.insert((host, port)),
                (Some(user), Some(port)) => s.both.insert((user, host, port)),
            };
        }
        s
    }

    fn matches(&self, t: &HostTarget) -> bool {
        let host = t.host.as_str();
        self.hosts.contains(host)
            || t.user
                .as_deref()
                .is_some_and(|u| self.users.contains(&(u, host)))
            || t.port.is_some_and(|p| self.ports.contains(&(host, p)))
            || t.user
                .as_deref()
                .zip(t.port)
                .is_some_and(|(u, p)| self.both.contains(&(u, host, p)))
    }
}

/// Splits at `,`, `!` and `&` outside brackets; the first operand is a union.
fn split(expr: &str) -> Vec<(Op, &str)> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut op = Op::Union;
    let mut start = 0;
    for (i, c) in expr.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' | '!' | '&' if depth == 0 => {
                out.push((op, expr.get(start..i).unwrap_or_default()));
                op = match c {
                    ',' => Op::Union,
                    '!' => Op::Minus,
                    _ => Op::And,
                };
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push((op, expr.get(start..).unwrap_or_default()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups() -> Groups {
        Groups::parse(
            "web = \"web[01-04]\"\ndb = [\"db1\", \"db2\"]\nall = \"@web,@db\"\ncanary = \"web02,db2\"\nloop = \"@loop2\"\nloop2 = \"@loop\"\n",
            Path::new("groups.toml"),
        )
        .unwrap()
    }

    fn names(v: Vec<HostTarget>) -> Vec<String> {
        v.into_iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn union_difference_intersection() {
        let g = groups();
        assert_eq!(
            names(g.evaluate("@web", 100).unwrap()),
            ["web01", "web02", "web03", "web04"]
        );
        assert_eq!(
            names(g.evaluate("@all!web0[1-3]", 100).unwrap()),
            ["web04", "db1", "db2"]
        );
        assert_eq!(
            names(g.evaluate("@all&@canary", 100).unwrap()),
            ["web02", "db2"]
        );
        assert_eq!(
            names(g.evaluate("@web,web01,x9", 100).unwrap()),
            ["web01", "web02", "web03", "web04", "x9"]
        );
        // Left to right: (web minus web02) & canary = nothing of web02.
        assert!(g.evaluate("@web!web02&@canary", 100).unwrap().is_empty());
        // Removed hosts can be added back.
        assert_eq!(
            names(g.evaluate("@db!db1,db1", 100).unwrap()),
            ["db2", "db1"]
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let g = groups();
        let e = g.evaluate("@nope", 100).unwrap_err().to_string();
        assert!(e.contains("@nope") && e.contains("groups.toml"), "{e}");
        let e = g.evaluate("@loop", 100).unwrap_err().to_string();
        assert!(e.contains("refers to itself"), "{e}");
        let e = g.evaluate("@web,,x", 100).unwrap_err().to_string();
        assert!(e.contains("empty operand"), "{e}");
        let e = g.evaluate("@web", 3).unwrap_err().to_string();
        assert!(e.contains("more than 3"), "{e}");
        let e = Groups::parse("web = 3", Path::new("g.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("g.toml"), "{e}");
        let e = Groups::new().evaluate("@web", 10).unwrap_err().to_string();
        assert!(e.contains("no groups file"), "{e}");
    }

    #[test]
    fn plain_specs_are_not_expressions() {
        assert!(!Groups::is_expression("web[01-03],db1"));
        assert!(Groups::is_expression("@web"));
        assert!(Groups::is_expression("web[1-5]!web3"));
        assert!(Groups::is_expression("a&b"));
    }

    #[test]
    fn brackets_protect_commas() {
        let g = Groups::new();
        assert_eq!(names(g.evaluate("h[1,3]!h3", 10).unwrap()), ["h1"]);
    }
}
