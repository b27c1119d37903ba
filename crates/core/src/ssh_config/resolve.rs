//! Per-host resolution ([`SshConfig::resolve`]): the applying blocks' settings in file order,
//! the first value of each directive winning; and what a whole configuration holds (its files,
//! its `ProxyCommand`s, the directives fleetsh ignores).

use std::path::PathBuf;

use super::model::{Query, Resolved, Setting, Source, Sourced, SshConfig, Value};
use super::tokens::expand_tokens;

impl SshConfig {
    /// The files read, includes included, in reading order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Whether any block sets a `ProxyCommand` other than `none` (each host reached through
    /// one runs a process of its own, with two pipes to this one).
    pub fn has_proxy_command(&self) -> bool {
        self.blocks
            .iter()
            .flat_map(|b| &b.settings)
            .any(|s| matches!(&s.value, Value::ProxyCommand(c) if !c.eq_ignore_ascii_case("none")))
    }

    /// Every directive fleetsh does not use, wherever it is (reported once per run).
    pub fn ignored(&self) -> Vec<Sourced<String>> {
        self.blocks
            .iter()
            .flat_map(|b| &b.settings)
            .filter_map(|s| match &s.value {
                Value::Ignored(k) => Some(Sourced {
                    value: k.clone(),
                    source: s.source.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    /// The effective settings for `query`: first value wins, file order.
    pub fn resolve(&self, query: Query<'_>) -> Resolved {
        let mut r = Resolved::default();
        for block in &self.blocks {
            if !block.conditions.iter().all(|c| self.holds(c, query, &r)) {
                continue;
            }
            for s in &block.settings {
                self.apply(&mut r, s, query);
            }
        }
        r
    }

    fn apply(&self, r: &mut Resolved, s: &Setting, q: Query<'_>) {
        let src = || s.source.clone();
        fn first<T>(slot: &mut Option<Sourced<T>>, value: T, source: Source) {
            if slot.is_none() {
                *slot = Some(Sourced { value, source });
            }
        }
        match &s.value {
            Value::HostName(h) => {
                let v = expand_tokens(h, &[('h', q.host)]);
                first(&mut r.hostname, v, src());
            }
            Value::User(u) => first(&mut r.user, u.clone(), src()),
            Value::Port(p) => first(&mut r.port, *p, src()),
            Value::IdentityFile(f) => {
                let v = self.expand_path(f, q, r);
                if !r.identity_files.iter().any(|x| x.value == v) {
                    r.identity_files.push(Sourced {
                        value: v,
                        source: src(),
                    });
                }
            }
            Value::CertificateFile(f) => {
                let v = self.expand_path(f, q, r);
                if !r.certificate_files.iter().any(|x| x.value == v) {
                    r.certificate_files.push(Sourced {
                        value: v,
                        source: src(),
                    });
                }
            }
            Value::IdentitiesOnly(b) => first(&mut r.identities_only, *b, src()),
            Value::ProxyJump(j) if r.proxy_command.is_none() => {
                first(&mut r.proxy_jump, j.clone(), src());
            }
            Value::ProxyCommand(c) if r.proxy_jump.is_none() => {
                first(&mut r.proxy_command, c.clone(), src());
            }
            Value::ProxyJump(_) | Value::ProxyCommand(_) => {}
            Value::ConnectTimeout(d) => first(&mut r.connect_timeout, *d, src()),
            Value::StrictHostKeyChecking(m) => first(&mut r.host_key_check, *m, src()),
            Value::UserKnownHostsFile(f) => {
                let v = self.expand_path(f, q, r);
                first(&mut r.known_hosts_file, v, src());
            }
            Value::ServerAliveInterval(d) => first(&mut r.server_alive_interval, *d, src()),
            Value::ServerAliveCountMax(n) => first(&mut r.server_alive_count_max, *n, src()),
            Value::HashKnownHosts(b) => first(&mut r.hash_known_hosts, *b, src()),
            Value::Ignored(k) => r.ignored.push(Sourced {
                value: k.clone(),
                source: src(),
            }),
        }
    }
}
