//! `%` tokens and `~` in ssh_config values: the host name in `HostName`, and the local home,
//! local user, host and remote user in file paths.

use std::path::PathBuf;

use super::model::{Query, Resolved, SshConfig};

impl SshConfig {
    /// `~`, `%d` (local home), `%u` (local user), `%h` (remote host name), `%r` (remote user),
    /// `%%`. The host name and user are those known when the directive is applied.
    pub(super) fn expand_path(&self, raw: &str, q: Query<'_>, r: &Resolved) -> PathBuf {
        let home = self
            .home
            .as_deref()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let host = r.hostname.as_ref().map_or(q.host, |h| h.value.as_str());
        let user = q
            .user
            .or(r.user.as_ref().map(|u| u.value.as_str()))
            .unwrap_or(&self.local_user);
        let tilde = match raw.strip_prefix('~') {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("{home}{rest}"),
            _ => raw.to_string(),
        };
        PathBuf::from(expand_tokens(
            &tilde,
            &[
                ('d', home.as_str()),
                ('u', self.local_user.as_str()),
                ('h', host),
                ('r', user),
            ],
        ))
    }
}

/// Replaces `%c` tokens from `table` and `%%`; unknown tokens are left as written.
pub(super) fn expand_tokens(s: &str, table: &[(char, &str)]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(t) => match table.iter().find(|(k, _)| *k == t) {
                Some((_, v)) => out.push_str(v),
                None => {
                    out.push('%');
                    out.push(t);
                }
            },
            None => out.push('%'),
        }
    }
    out
}
