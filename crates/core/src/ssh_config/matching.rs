//! Which blocks apply to a host: `*`/`?` globs ([`glob`]), pattern lists with negation, and
//! the conditions of `Host` and `Match` lines.

use super::model::{Condition, Criterion, Pattern, Query, Resolved, SshConfig};

impl SshConfig {
    /// Whether condition `c` of a block holds for `q`, with the `HostName` and `User` resolved
    /// from the blocks before it (`so_far`).
    pub(super) fn holds(&self, c: &Condition, q: Query<'_>, so_far: &Resolved) -> bool {
        match c {
            Condition::Host(patterns) => list_matches(patterns, q.host),
            Condition::Match(criteria) => criteria.iter().all(|(negated, c)| {
                let hit = match c {
                    Criterion::All => true,
                    Criterion::Host(p) => list_matches(
                        p,
                        so_far
                            .hostname
                            .as_ref()
                            .map_or(q.host, |h| h.value.as_str()),
                    ),
                    Criterion::OriginalHost(p) => list_matches(p, q.host),
                    Criterion::User(p) => {
                        let user = q
                            .user
                            .or(so_far.user.as_ref().map(|u| u.value.as_str()))
                            .unwrap_or(&self.local_user);
                        list_matches(p, user)
                    }
                    Criterion::LocalUser(p) => list_matches(p, &self.local_user),
                    Criterion::Unsupported(_) => return false,
                };
                hit != *negated
            }),
        }
    }
}

fn list_matches(patterns: &[Pattern], name: &str) -> bool {
    let mut hit = false;
    for p in patterns {
        if glob(p.glob.as_bytes(), name.as_bytes()) {
            if p.negated {
                return false;
            }
            hit = true;
        }
    }
    hit
}

/// `*` and `?` glob, case-insensitive, one backtrack point (no recursion, linear-ish).
pub fn glob(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while let Some(&ch) = s.get(i) {
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, i));
                p += 1;
            }
            Some(&c) if c == b'?' || c.eq_ignore_ascii_case(&ch) => {
                p += 1;
                i += 1;
            }
            _ => match star {
                Some((sp, si)) => {
                    p = sp + 1;
                    i = si + 1;
                    star = Some((sp, si + 1));
                }
                None => return false,
            },
        }
    }
    pat.get(p..).unwrap_or_default().iter().all(|&c| c == b'*')
}

/// `Host` arguments and `Match` pattern lists: `!` negates.
pub(super) fn patterns(items: &[String]) -> Vec<Pattern> {
    items
        .iter()
        .flat_map(|a| a.split(','))
        .filter(|p| !p.is_empty())
        .map(|p| match p.strip_prefix('!') {
            Some(rest) => Pattern {
                negated: true,
                glob: rest.to_string(),
            },
            None => Pattern {
                negated: false,
                glob: p.to_string(),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_negated_pattern_lists() {
        assert!(glob(b"web*.dc?", b"WEB12.dc1"));
        assert!(!glob(b"web*.dc?", b"web12.dc10"));
        assert!(glob(b"*", b""));
        let p = patterns(&["*.dc1,!bastion.dc1".to_string()]);
        assert!(list_matches(&p, "web1.dc1"));
        assert!(!list_matches(&p, "bastion.dc1"));
        assert!(!list_matches(&p, "web1.dc2"));
    }
}
