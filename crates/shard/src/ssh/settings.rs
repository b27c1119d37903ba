//! What every host of an engine shares ([`SshSettings`]), what ssh_config gives a group of
//! hosts ([`HostProfile`]) and one host ([`HostPlan`]), and how they combine into the user,
//! port and client configuration a host is connected with.

use std::sync::Arc;
use std::time::Duration;

use fleetsh_core::HostTarget;
use parking_lot::Mutex;
use russh::client;

use super::auth::keys::{AuthMaterial, LoadedKey};
use super::client_config::{Keepalive, clone_config};
use super::known_hosts::{self, KeyPrefs, KnownHosts};

/// Settings shared by every host of every run of an engine: SSH client config, auth material,
/// known_hosts, default user and port.
#[derive(Debug)]
pub struct SshSettings {
    /// russh client configuration (algorithms, windows, `nodelay`).
    pub client: Arc<client::Config>,
    /// Keys, agent, password.
    pub auth: AuthMaterial,
    /// Parsed known_hosts with the checking mode.
    pub known_hosts: Arc<KnownHosts>,
    /// User for targets that name none.
    pub default_user: String,
    /// Port for targets that name none.
    pub default_port: u16,
    /// Jump hosts every target is reached through (first hop first; empty: direct).
    pub jump: Vec<HostTarget>,
    /// Most tunnels open at once through one bastion.
    pub jump_fanout: usize,
    /// Forward the ssh-agent ([`AuthMaterial::agent`]) to every command (`ssh -A`): the
    /// servers can then use its keys while the command runs. Off by default.
    pub forward_agent: bool,
    /// Per-host variants of `client` with the host-key algorithms reordered (see
    /// [`SshSettings::client_for`]).
    pub client_variants: ClientVariants,
}

/// Copies of the client configuration with the host-key algorithm list reordered for hosts
/// known by other key types, or with ssh_config's keepalive, one per distinct variant (a handful
/// at most), made on first use.
#[derive(Debug, Default)]
pub struct ClientVariants {
    made: Mutex<std::collections::HashMap<VariantKey, Arc<client::Config>>>,
    /// The family sets of the base list's prefixes: a host whose known families are one of
    /// them keeps the base order (hosts known by Ed25519 only, the common case, among them).
    unchanged: std::sync::OnceLock<Vec<u8>>,
}

/// What distinguishes a client configuration variant: host-key preferences, keepalive, and
/// whether the key exchange may be guessed on this path.
type VariantKey = (KeyPrefs, Option<Keepalive>, bool);

/// Settings that ssh_config gives a group of hosts, overriding [`SshSettings`] (shared by every
/// host that resolves alike, so 10,000 hosts with one `Host *` block share one profile).
#[derive(Debug, Default)]
pub struct HostProfile {
    /// `User`.
    pub user: Option<String>,
    /// `Port`.
    pub port: Option<u16>,
    /// Keys from `IdentityFile`s, replacing the engine's key files.
    pub keys: Option<Arc<[LoadedKey]>>,
    /// `IdentitiesOnly yes`: the agent's keys are not offered.
    pub identities_only: bool,
    /// `ConnectTimeout`.
    pub connect_timeout: Option<Duration>,
    /// known_hosts from `UserKnownHostsFile`, `StrictHostKeyChecking`, `HashKnownHosts`.
    pub known_hosts: Option<Arc<KnownHosts>>,
    /// `ServerAliveInterval`/`ServerAliveCountMax`.
    pub keepalive: Option<Keepalive>,
    /// `ProxyJump` (not `none`, and only without `-J`, which wins): the host is reached through
    /// this chain of bastions (see [`Jumps`](super::jump::Jumps)).
    pub proxy_jump: Option<String>,
    /// `ProxyCommand` (not `none`, and only without `-J`): the host is reached through this
    /// command's standard input and output; `%h %p %r %n %%` expanded
    /// per host.
    pub proxy_command: Option<String>,
}

/// One host's ssh_config outcome: the address to connect to (`HostName`) and its profile.
#[derive(Debug, Clone, Default)]
pub struct HostPlan {
    /// `HostName`: the name connected to and looked up in known_hosts (results still name the
    /// host as typed).
    pub hostname: Option<String>,
    /// The shared settings.
    pub profile: Arc<HostProfile>,
}

impl SshSettings {
    /// The client configuration for a host with these known_hosts preferences: `client` itself
    /// unless the host is known only by key types other than the first preferred ones, or a
    /// `@cert-authority` line names it (then certificate algorithms are offered first). As
    /// OpenSSH, this makes the server show the key type that is known, so that a host known by
    /// its RSA key is not refused because it would rather show an Ed25519 key.
    pub fn client_for(
        &self,
        prefs: KeyPrefs,
        keepalive: Option<Keepalive>,
        guess: bool,
    ) -> Arc<client::Config> {
        // Without a guess in the base configuration, there is nothing to turn off.
        let guess = guess || self.client.kex_guess.is_none();
        if keepalive.is_none() && !prefs.certificates && guess {
            let unchanged = self.client_variants.unchanged.get_or_init(|| {
                let families: Vec<u8> = self
                    .client
                    .preferred
                    .key
                    .iter()
                    .map(|a| known_hosts::family(a).unwrap_or(0))
                    .collect();
                // Prefix i keeps the order when no later algorithm is of one of its families.
                (0..=families.len())
                    .filter_map(|i| {
                        let (head, tail) = families.split_at(i);
                        let mask = head.iter().fold(0, |m, f| m | f);
                        tail.iter().all(|f| f & mask == 0).then_some(mask)
                    })
                    .collect()
            });
            if unchanged.contains(&prefs.known) {
                return self.client.clone();
            }
        }
        let mut variants = self.client_variants.made.lock();
        variants
            .entry((prefs, keepalive, guess))
            .or_insert_with(|| {
                let base = &self.client.preferred;
                let ordered = prefs.order(&base.key);
                if ordered[..] == base.key[..]
                    && !prefs.certificates
                    && keepalive.is_none()
                    && guess
                {
                    return self.client.clone();
                }
                let mut config = clone_config(&self.client);
                if let Some(k) = keepalive {
                    config.keepalive_interval = Some(k.interval);
                    config.keepalive_max = k.max;
                }
                if prefs.certificates {
                    config.preferred.host_key_certificates = ordered.clone().into();
                }
                config.preferred.key = ordered.into();
                // Its first host-key algorithm may not be the others': whether its servers
                // agree with its guesses is its own (the counts stay shared).
                config.kex_guess = if guess {
                    config
                        .kex_guess
                        .as_deref()
                        .map(|g| Arc::new(g.sharing_counts()))
                } else {
                    None
                };
                Arc::new(config)
            })
            .clone()
    }

    /// Whether the client's first flight (identification line, KEXINIT and the guessed key
    /// exchange packet) fits in one TCP segment of `mss` bytes. When it does not, the guess is
    /// left out: a server that answered the connection with a SYN cookie (its listen queue
    /// full) can only take the first segment of a flight as the proof of the cookie, and
    /// resets the connection when a later segment arrives first. A large post-quantum key share
    /// (ML-KEM-768: 1,216 bytes) with the KEXINIT needs more than a 1,460-byte segment.
    pub fn guess_fits(&self, mss: usize) -> bool {
        self.first_flight_bytes() <= mss
    }

    /// An upper bound of the first flight's size with the guess, in bytes.
    pub fn first_flight_bytes(&self) -> usize {
        let p = &self.client.preferred;
        fn list<T: AsRef<str>>(names: &[T]) -> usize {
            4 + names.iter().map(|n| n.as_ref().len() + 1).sum::<usize>()
        }
        // The identification line (at most 255 bytes; fleetsh's is about 30).
        let ident = 64;
        // KEXINIT: length, padding length, type, cookie, ten name-lists (the key exchange list
        // with the extension markers added), first_kex_packet_follows, reserved, padding.
        let key_names: Vec<String> = p
            .host_key_certificates
            .iter()
            .map(|a| a.to_certificate_type().to_string())
            .chain(p.key.iter().map(|a| a.to_string()))
            .collect();
        let kexinit = 4
            + 1
            + 1
            + 16
            + list(&p.kex)
            + 64
            + list(&key_names)
            + 2 * list(&p.cipher)
            + 2 * list(&p.mac)
            + 2 * list(&p.compression)
            + 2 * 4
            + 1
            + 4
            + 16;
        // The guessed packet: the client's key share for the first key exchange.
        let share = p.kex.first().map_or(0, |k| key_share_bytes(k.as_ref()));
        let guess = 4 + 1 + 1 + 4 + share + 16;
        ident + kexinit + guess
    }

    /// Where a bastion written as `t` in a chain is reached: its ssh_config `HostName`, and the
    /// user and port it names, else its ssh_config's, else the default user and port 22 (as
    /// OpenSSH's `-J`, the fleet's `-p` port is not a bastion's).
    pub fn fill_bastion(&self, t: &HostTarget, plan: &HostPlan) -> HostTarget {
        HostTarget {
            user: Some(
                t.user
                    .clone()
                    .or_else(|| plan.profile.user.clone())
                    .unwrap_or_else(|| self.default_user.clone()),
            ),
            host: plan.hostname.clone().unwrap_or_else(|| t.host.clone()),
            port: Some(t.port.or(plan.profile.port).unwrap_or(22)),
        }
    }
}

/// The size of a client's key share for key exchange `name`, in bytes (an upper bound for
/// names not listed).
fn key_share_bytes(name: &str) -> usize {
    if name.contains("mlkem768") {
        1184 + 32
    } else if name.contains("sntrup761") {
        1158 + 32
    } else if name.contains("25519") || name.contains("448") {
        56
    } else if name.contains("nistp") {
        133
    } else {
        1024
    }
}

/// The largest first flight sent where the segment size is not known (a tunnel through a
/// bastion, a ProxyCommand): the target's TCP is the bastion's or the proxy's, typically with
/// 1,448- to 1,460-byte segments, less on tunnelled paths.
pub const UNKNOWN_PATH_SEGMENT: usize = 1200;

/// The host as typed, with the user and port the run uses for it (the target's own, else its
/// ssh_config profile's, else the engine's defaults): what its result names.
pub fn effective_target(
    settings: &SshSettings,
    plan: &HostPlan,
    target: &HostTarget,
) -> HostTarget {
    HostTarget {
        user: Some(
            target
                .user
                .clone()
                .or_else(|| plan.profile.user.clone())
                .unwrap_or_else(|| settings.default_user.clone()),
        ),
        host: target.host.clone(),
        port: Some(
            target
                .port
                .or(plan.profile.port)
                .unwrap_or(settings.default_port),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::client_config::default_client_config;

    fn settings() -> SshSettings {
        SshSettings {
            client: Arc::new(default_client_config()),
            auth: AuthMaterial::default(),
            known_hosts: Arc::new(KnownHosts::parse_text(
                "",
                std::path::Path::new("/kh"),
                fleetsh_core::HostKeyCheck::Strict,
            )),
            default_user: "u".into(),
            default_port: 22,
            jump: Vec::new(),
            jump_fanout: 1,
            forward_agent: false,
            client_variants: ClientVariants::default(),
        }
    }

    #[test]
    fn client_config_variants_only_when_the_order_changes() {
        let s = settings();
        let prefs = |known: u8, certificates: bool| KeyPrefs {
            known,
            certificates,
        };
        // Unknown host, or known by Ed25519 (first in the default order): the shared config.
        assert!(Arc::ptr_eq(
            &s.client_for(prefs(0, false), None, true),
            &s.client
        ));
        assert!(Arc::ptr_eq(
            &s.client_for(prefs(1, false), None, true),
            &s.client
        ));
        assert!(s.client_variants.made.lock().is_empty());
        // Known by RSA only: RSA first; made once, then shared.
        let rsa = s.client_for(prefs(16, false), None, true);
        assert!(!Arc::ptr_eq(&rsa, &s.client));
        assert!(matches!(
            rsa.preferred.key[0],
            russh::keys::Algorithm::Rsa { .. }
        ));
        assert!(rsa.preferred.host_key_certificates.is_empty());
        assert!(Arc::ptr_eq(
            &rsa,
            &s.client_for(prefs(16, false), None, true)
        ));
        // Another first host-key algorithm: its own key exchange guess hint (its servers may
        // disagree where the others' agree).
        let hint = |c: &client::Config| c.kex_guess.clone().expect("a hint");
        assert!(!Arc::ptr_eq(&hint(&rsa), &hint(&s.client)));
        // Ed25519 and RSA known: ECDSA moves after RSA.
        let both = s.client_for(prefs(17, false), None, true);
        assert!(matches!(
            both.preferred.key[1],
            russh::keys::Algorithm::Rsa { .. }
        ));
        // A CA names the host: certificate types offered.
        let ca = s.client_for(prefs(0, true), None, true);
        assert_eq!(
            ca.preferred.host_key_certificates.len(),
            ca.preferred.key.len()
        );
        // Keepalive from ssh_config.
        let k = Keepalive {
            interval: Duration::from_secs(5),
            max: 2,
        };
        let alive = s.client_for(prefs(1, false), Some(k), true);
        assert_eq!(alive.keepalive_interval, Some(Duration::from_secs(5)));
        assert_eq!(alive.keepalive_max, 2);
        assert_eq!(alive.preferred.key, s.client.preferred.key);
        // A path whose segments cannot carry the guessed flight: no guess, made once.
        let plain = s.client_for(prefs(1, false), None, false);
        assert!(plain.kex_guess.is_none());
        assert!(Arc::ptr_eq(
            &plain,
            &s.client_for(prefs(1, false), None, false)
        ));
        assert_eq!(plain.preferred.key, s.client.preferred.key);
    }

    #[test]
    fn a_post_quantum_guess_needs_more_than_one_ethernet_segment() {
        let s = settings();
        let flight = s.first_flight_bytes();
        // ML-KEM-768 first (the default): more than a 1,460-byte segment, less than loopback's.
        assert!(flight > 1460 && flight < 4000, "{flight}");
        assert!(!s.guess_fits(1460));
        assert!(s.guess_fits(65483));
        assert_eq!(key_share_bytes("curve25519-sha256"), 56);
    }
}
