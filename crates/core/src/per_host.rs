//! Per-host commands ([`PerHost`]): a different command line for each host of a run, as
//! parallel-ssh's `host_args`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::{Error, HostTarget};

/// The function form of a per-host command: gets the host (user and port filled in with the
/// values the run uses) and its index in the run's host list, returns the command line.
pub type PerHostFn = dyn Fn(&HostTarget, usize) -> String + Send + Sync;

/// A different command for each host of a run ([`crate::Job::per_host`],
/// [`crate::Job::per_host_map`], [`crate::Job::per_host_list`]).
///
/// Whatever the form, every host's command is worked out once, before the run starts and
/// before anything connects, on the thread that starts the run: a host the map or list does
/// not cover, or an empty command, stops the run from starting with an error naming the host.
/// The commands are sent as they are (no `{host}`/`{index}` expansion; the closure already
/// has both), through sudo when the job asks for it.
#[derive(Clone)]
pub struct PerHost(Inner);

#[derive(Clone)]
enum Inner {
    Closure(Arc<PerHostFn>),
    Map(Arc<HashMap<String, String>>),
    List(Arc<[String]>),
}

impl PerHost {
    /// Commands from a function of the host and its index.
    pub fn from_fn(f: impl Fn(&HostTarget, usize) -> String + Send + Sync + 'static) -> Self {
        PerHost(Inner::Closure(Arc::new(f)))
    }

    /// Commands looked up by host: the key is the host as written in the run's host list
    /// (`deploy@web1:2222`, as [`HostTarget`]'s `Display` prints it) or its bare name (`web1`);
    /// the first form wins when both are present. Keys naming no host of the run are ignored.
    pub fn from_map<K: Into<String>, V: Into<String>>(
        map: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let map: HashMap<String, String> =
            map.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        PerHost(Inner::Map(Arc::new(map)))
    }

    /// One command per host, in the order of the run's host list (parallel-ssh's
    /// `host_args` list): the list must have exactly one entry per host.
    pub fn from_list<V: Into<String>>(list: impl IntoIterator<Item = V>) -> Self {
        PerHost(Inner::List(list.into_iter().map(Into::into).collect()))
    }

    /// The command of host `index` when the commands are a list (as [`PerHost::resolve`]
    /// returns them); `None` for the function and map forms, or past the list's end.
    pub fn get(&self, index: usize) -> Option<&str> {
        match &self.0 {
            Inner::List(l) => l.get(index).map(String::as_str),
            Inner::Closure(_) | Inner::Map(_) => None,
        }
    }

    /// Every host's command, in host order, as a list. `typed[i]` is host `i` as given to the
    /// run (map keys are matched against it), `effective[i]` the same host with the user and
    /// port the run uses (what the function gets); both have one entry per host. `run` holds
    /// the indices of the hosts the run runs on, in order (all of them for a run of its own; a
    /// connected fleet's job may run on some): only those get a command, and the list form
    /// gives them theirs in that order. The others get an empty one, never sent.
    ///
    /// Fails, naming the host, when the map has no entry for a host of the run, when the
    /// list's length is not the number of hosts of the run, or when one of their commands is
    /// empty. A panic in the function is not caught: it happens on the caller's thread.
    pub fn resolve(
        &self,
        typed: &[HostTarget],
        effective: &[HostTarget],
        run: &[usize],
    ) -> Result<Self, Error> {
        let bad = |reason: String| Error::InvalidSetting {
            setting: "per_host",
            reason,
        };
        let name = |i: usize| {
            typed
                .get(i)
                .map_or_else(|| i.to_string(), ToString::to_string)
        };
        if let Inner::List(l) = &self.0
            && l.len() != run.len()
        {
            return Err(bad(format!(
                "the list has {} commands for {} hosts (one per host, in host order)",
                l.len(),
                run.len()
            )));
        }
        let mut commands = vec![String::new(); typed.len()];
        for (k, &i) in run.iter().enumerate() {
            let command = match &self.0 {
                Inner::List(l) => l.get(k).cloned(),
                Inner::Map(m) => typed
                    .get(i)
                    .and_then(|t| m.get(&t.to_string()).or_else(|| m.get(&t.host)))
                    .cloned(),
                Inner::Closure(f) => effective.get(i).map(|t| f(t, i)),
            };
            let command = command.ok_or_else(|| {
                bad(format!(
                    "the map has no command for host {} (index {i})",
                    name(i)
                ))
            })?;
            if command.is_empty() {
                return Err(bad(format!(
                    "the command for host {} (index {i}) is empty",
                    name(i)
                )));
            }
            if let Some(slot) = commands.get_mut(i) {
                *slot = command;
            }
        }
        Ok(PerHost(Inner::List(commands.into())))
    }
}

impl fmt::Debug for PerHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Closure(_) => f.write_str("<per-host closure>"),
            Inner::Map(m) => write!(f, "<per-host map of {} hosts>", m.len()),
            Inner::List(l) => write!(f, "<per-host list of {} commands>", l.len()),
        }
    }
}

/// Two per-host commands are equal when they are the same function (the same `Arc`), or maps
/// or lists with equal contents.
impl PartialEq for PerHost {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Inner::Closure(a), Inner::Closure(b)) => Arc::ptr_eq(a, b),
            (Inner::Map(a), Inner::Map(b)) => a == b,
            (Inner::List(a), Inner::List(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for PerHost {}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(specs: &[&str]) -> Vec<HostTarget> {
        specs
            .iter()
            .map(|s| HostTarget::parse(s).unwrap())
            .collect()
    }

    fn all(typed: &[HostTarget]) -> Vec<usize> {
        (0..typed.len()).collect()
    }

    #[test]
    fn only_the_hosts_of_the_run_get_a_command() {
        let typed = hosts(&["web1", "web2", "web3"]);
        let list = PerHost::from_list(["echo a", "echo c"]);
        let r = list.resolve(&typed, &typed, &[0, 2]).unwrap();
        assert_eq!(
            (r.get(0), r.get(1), r.get(2)),
            (Some("echo a"), Some(""), Some("echo c"))
        );
        let map = PerHost::from_map([("web2", "echo b")]);
        assert!(map.resolve(&typed, &typed, &[1]).is_ok());
        let e = map
            .resolve(&typed, &typed, &[1, 2])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no command for host web3 (index 2)"), "{e}");
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let f = PerHost::from_fn(move |_, i| {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            format!("echo {i}")
        });
        let r = f.resolve(&typed, &typed, &[2]).unwrap();
        assert_eq!(r.get(2), Some("echo 2"));
        assert!(list.resolve(&typed, &typed, &[0]).is_err());
    }

    fn filled(typed: &[HostTarget]) -> Vec<HostTarget> {
        typed
            .iter()
            .map(|t| HostTarget {
                user: Some(t.user.clone().unwrap_or_else(|| "deploy".into())),
                host: t.host.clone(),
                port: Some(t.port.unwrap_or(22)),
            })
            .collect()
    }

    #[test]
    fn closure_gets_the_effective_target_and_index() {
        let typed = hosts(&["web1", "root@web2:2200"]);
        let p = PerHost::from_fn(|t, i| format!("echo {} {} {i}", t.host, t.port.unwrap_or(0)));
        let r = p.resolve(&typed, &filled(&typed), &all(&typed)).unwrap();
        assert_eq!(r.get(0), Some("echo web1 22 0"));
        assert_eq!(r.get(1), Some("echo web2 2200 1"));
        assert_eq!(r.get(2), None);
        assert_eq!(p.get(0), None);
        assert_eq!(format!("{p:?}"), "<per-host closure>");
    }

    #[test]
    fn map_matches_the_host_as_written_then_its_name_and_names_a_missing_host() {
        let typed = hosts(&["root@web1:2200", "web2", "web3"]);
        let p = PerHost::from_map([
            ("root@web1:2200", "one"),
            ("web1", "not this"),
            ("web2", "two"),
            ("web3", "three"),
            ("elsewhere", "ignored"),
        ]);
        let r = p.resolve(&typed, &filled(&typed), &all(&typed)).unwrap();
        assert_eq!(
            (r.get(0), r.get(1), r.get(2)),
            (Some("one"), Some("two"), Some("three"))
        );
        let p = PerHost::from_map([("web1", "one"), ("web2", "two")]);
        let e = p
            .resolve(&typed, &filled(&typed), &all(&typed))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("per_host") && e.contains("web3") && e.contains("index 2"),
            "{e}"
        );
    }

    #[test]
    fn list_length_and_empty_commands_are_refused() {
        let typed = hosts(&["a", "b"]);
        let e = PerHost::from_list(["x"])
            .resolve(&typed, &typed, &all(&typed))
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 commands for 2 hosts"), "{e}");
        let e = PerHost::from_list(["x", ""])
            .resolve(&typed, &typed, &all(&typed))
            .unwrap_err()
            .to_string();
        assert!(e.contains("host b (index 1) is empty"), "{e}");
        assert_eq!(
            PerHost::from_list(["x", "y"]),
            PerHost::from_list(["x", "y"])
        );
    }
}
