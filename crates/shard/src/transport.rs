//! One host, end to end: TCP connect → SSH handshake with host-key check → authentication →
//! session channel → exec → stream stdout/stderr → exit status or signal → close.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleetsh_core::{ErrorKind, Event, HostError, HostResult, HostTarget, Job, StreamKind, Timings};
use parking_lot::Mutex;
use russh::client::{self, AuthResult};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg};
use russh::{ChannelMsg, Disconnect, MethodKind, MethodSet};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::auth::{AgentPool, AuthMaterial};
use crate::executor::EventSink;
use crate::known_hosts::{HostKeys, KeyPrefs, KnownHosts, Verdict};

/// Read buffer of a direct TCP connection (see `connect`); reads at least this large (file
/// transfers) bypass it.
const READ_BUFFER: usize = 4096;

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

/// Keepalive settings (`ServerAliveInterval`, `ServerAliveCountMax`): after `interval` without
/// data from the server a keepalive request is sent; after `max` unanswered ones the connection
/// is closed and the host fails as `disconnected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Keepalive {
    /// Idle time before a keepalive request.
    pub interval: Duration,
    /// Unanswered requests before the connection is dropped.
    pub max: usize,
}

/// Settings that ssh_config gives a group of hosts, overriding [`SshSettings`] (shared by every
/// host that resolves alike, so 10,000 hosts with one `Host *` block share one profile).
#[derive(Debug, Default)]
pub struct HostProfile {
    /// `User`.
    pub user: Option<String>,
    /// `Port`.
    pub port: Option<u16>,
    /// Keys from `IdentityFile`s, replacing the engine's key files.
    pub keys: Option<Arc<[crate::auth::LoadedKey]>>,
    /// `IdentitiesOnly yes`: the agent's keys are not offered.
    pub identities_only: bool,
    /// `ConnectTimeout`.
    pub connect_timeout: Option<Duration>,
    /// known_hosts from `UserKnownHostsFile`, `StrictHostKeyChecking`, `HashKnownHosts`.
    pub known_hosts: Option<Arc<KnownHosts>>,
    /// `ServerAliveInterval`/`ServerAliveCountMax`.
    pub keepalive: Option<Keepalive>,
    /// `ProxyJump` (not `none`, and only without `-J`, which wins): the host is reached through
    /// this chain of bastions (see [`crate::jump::Jumps`]).
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
                    .map(|a| crate::known_hosts::family(a).unwrap_or(0))
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

/// The russh client configuration fleetsh uses by default: `nodelay` on (without it one host at
/// a time costs ~44 ms instead of ~1.4 ms), no inactivity timeout (command timeouts are ours),
/// a channel buffer of 16 messages instead of 100 (fleetsh drains every channel continuously,
/// and the buffer is what a host that floods output can make the client hold: up to 16
/// packets of 32 KiB per host in flight, instead of 100), and the key exchange guessed while
/// the servers agree with our first choices (`client::KexGuess`, a new hint per call: one
/// round trip less per handshake).
///
/// The ciphers are russh's safe set in the order [`ciphers_for`] gives for this CPU.
pub fn default_client_config() -> client::Config {
    let mut c = client::Config {
        nodelay: true,
        channel_buffer_size: 16,
        kex_guess: Some(Arc::new(client::KexGuess::new())),
        ..Default::default()
    };
    c.preferred.cipher = ciphers_for(fleetsh_core::Cipher::Auto).into();
    c
}

/// The session ciphers [`ClientOptions::ciphers`] may name: russh's safe set and
/// `aes128-gcm@openssh.com` (OpenSSH names).
pub const CIPHER_NAMES: &[&str] = &[
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
];

/// russh's client configuration, as the engine builds it.
pub type ClientConfig = client::Config;

/// What an engine sets in its client configuration, on top of [`default_client_config`]
/// (the public crate's builder options; validated there).
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Key exchange preference.
    pub kex: fleetsh_core::Kex,
    /// Cipher preference (the order of the safe set).
    pub cipher: fleetsh_core::Cipher,
    /// Exactly these ciphers, in this order (OpenSSH names, from [`CIPHER_NAMES`]).
    pub ciphers: Option<Vec<String>>,
    /// Guess the key exchange packet.
    pub kex_guess: bool,
    /// Keepalive requests (`None`: off).
    pub keepalive: Option<Keepalive>,
    /// Close a connection idle this long (`None`: never).
    pub inactivity_timeout: Option<Duration>,
    /// Channel window in bytes (`None`: russh's default, 2 MiB).
    pub window_size: Option<u32>,
    /// Largest channel data packet accepted, in bytes (`None`: 32 KiB).
    pub maximum_packet_size: Option<u32>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            kex: fleetsh_core::Kex::Default,
            cipher: fleetsh_core::Cipher::Auto,
            ciphers: None,
            kex_guess: true,
            keepalive: None,
            inactivity_timeout: None,
            window_size: None,
            maximum_packet_size: None,
        }
    }
}

/// [`default_client_config`] with `options` applied; `Err` names a cipher outside
/// [`CIPHER_NAMES`].
pub fn client_config_with(options: &ClientOptions) -> Result<client::Config, String> {
    let mut c = default_client_config();
    if options.kex == fleetsh_core::Kex::Curve25519 {
        c.preferred.kex = curve25519_first(&c.preferred.kex).into();
    }
    c.preferred.cipher = match &options.ciphers {
        Some(names) => {
            let mut list = Vec::with_capacity(names.len());
            for name in names {
                let known = CIPHER_NAMES
                    .iter()
                    .find(|n| **n == name.as_str())
                    .and_then(|n| russh::cipher::Name::try_from(*n).ok());
                match known {
                    Some(n) => list.push(n),
                    None => {
                        return Err(format!(
                            "unknown cipher {name:?} (known: {})",
                            CIPHER_NAMES.join(", ")
                        ));
                    }
                }
            }
            if list.is_empty() {
                return Err(format!(
                    "no cipher named (known: {})",
                    CIPHER_NAMES.join(", ")
                ));
            }
            list.into()
        }
        None => ciphers_for(options.cipher).into(),
    };
    if !options.kex_guess {
        c.kex_guess = None;
    }
    if let Some(k) = options.keepalive {
        c.keepalive_interval = Some(k.interval);
        c.keepalive_max = k.max;
    }
    c.inactivity_timeout = options.inactivity_timeout;
    if let Some(w) = options.window_size {
        c.window_size = w;
    }
    if let Some(p) = options.maximum_packet_size {
        c.maximum_packet_size = p;
    }
    Ok(c)
}

/// russh's cipher set in the order `pref` asks for (see [`fleetsh_core::Cipher`]).
pub fn ciphers_for(pref: fleetsh_core::Cipher) -> Vec<russh::cipher::Name> {
    let base = russh::Preferred::default().cipher;
    cipher_order(&base, pref.resolve() == fleetsh_core::Cipher::AesGcm)
}

/// `ciphers` with `aes256-gcm@openssh.com` first when `aes_gcm_hw` (the CPU computes AES-GCM in
/// hardware: [`fleetsh_core::aes_gcm_in_hardware`]), the rest in their order; unchanged
/// (ChaCha20-Poly1305 first, as russh and OpenSSH order them) otherwise, or when the list has
/// no AES-256-GCM. TLS stacks choose the same way (BoringSSL, Go): with AES and carry-less
/// multiply instructions AES-GCM is the faster AEAD, and measured here it cut the client's CPU
/// per GB of a transfer by 24–48% (docs/benchmarks.md, "AES-GCM first"); without them ChaCha20
/// is faster and needs no table lookups. Both are AEADs of OpenSSH's default set; AES-GCM was
/// never exposed to the Terrapin prefix truncation that ChaCha20-Poly1305 needed strict key
/// exchange for (which fleetsh offers either way).
pub(crate) fn cipher_order(
    ciphers: &[russh::cipher::Name],
    aes_gcm_hw: bool,
) -> Vec<russh::cipher::Name> {
    let first = [russh::cipher::AES_256_GCM];
    if !aes_gcm_hw || !ciphers.contains(&first[0]) {
        return ciphers.to_vec();
    }
    to_front(&first, ciphers)
}

/// `kex` with `curve25519-sha256` (and its pre-RFC name) moved to the front, the rest in
/// their order.
pub fn curve25519_first(kex: &[russh::kex::Name]) -> Vec<russh::kex::Name> {
    to_front(
        &[russh::kex::CURVE25519, russh::kex::CURVE25519_PRE_RFC_8731],
        kex,
    )
}

/// `first`, then the names of `list` that are not in `first`, in their order.
fn to_front<T: Copy + PartialEq>(first: &[T], list: &[T]) -> Vec<T> {
    let mut v = first.to_vec();
    v.extend(list.iter().filter(|n| !first.contains(n)).copied());
    v
}

/// A copy of `c` (russh's `Config` is not `Clone`: its `SshId` is not).
pub fn clone_config(c: &client::Config) -> client::Config {
    client::Config {
        client_id: match &c.client_id {
            russh::SshId::Standard(s) => russh::SshId::Standard(s.clone()),
            russh::SshId::Raw(s) => russh::SshId::Raw(s.clone()),
        },
        limits: c.limits.clone(),
        window_size: c.window_size,
        maximum_packet_size: c.maximum_packet_size,
        channel_buffer_size: c.channel_buffer_size,
        preferred: c.preferred.clone(),
        inactivity_timeout: c.inactivity_timeout,
        keepalive_interval: c.keepalive_interval,
        keepalive_max: c.keepalive_max,
        anonymous: c.anonymous,
        gex: c.gex.clone(),
        nodelay: c.nodelay,
        kex_guess: c.kex_guess.clone(),
    }
}

/// Everything a host task needs from its shard.
#[derive(Debug, Clone)]
pub(crate) struct HostCtx {
    pub settings: Arc<SshSettings>,
    /// Per-host settings from ssh_config, parallel to the run's targets.
    pub plans: Option<Arc<[HostPlan]>>,
    pub agent: Option<Arc<AgentPool>>,
    pub job: Arc<Job>,
    pub sink: EventSink,
    pub cancel: CancellationToken,
    pub shared: Arc<crate::RunShared>,
    /// A connected fleet's kept connections (see [`crate::executor::Pool`]).
    pub cache: Option<crate::executor::ConnCache>,
    /// Bastions, when targets are reached through jump hosts.
    pub jumps: Option<Arc<crate::jump::Jumps>>,
}

/// An authenticated connection, and for a tunnelled one the permit that counts it against its
/// bastion's tunnel cap.
pub(crate) struct Connection {
    pub handle: client::Handle<ClientHandler>,
    _tunnel: Option<tokio::sync::OwnedSemaphorePermit>,
    /// The `ProxyCommand` process carrying the connection, killed with it.
    _proxy: Option<crate::proxy::ProxyProcess>,
}

/// Tells the server we are done with `c` (best effort).
pub(crate) async fn say_goodbye(c: &Connection) {
    let _ = c
        .handle
        .disconnect(Disconnect::ByApplication, "", "en")
        .await;
}

/// Runs the job's action (command or transfer) on an authenticated connection.
async fn act(
    ctx: &HostCtx,
    profile: &HostProfile,
    handle: &client::Handle<ClientHandler>,
    result: &mut HostResult,
    start: Instant,
    typed: &str,
) {
    match &ctx.job.action {
        fleetsh_core::Action::Exec => run_command(ctx, profile, handle, result, start).await,
        // Connected and authenticated: nothing more to do.
        fleetsh_core::Action::Connect => {}
        // Boxed: the transfer's larger state is not part of every host's task.
        _ => Box::pin(crate::sftp::run_transfer(ctx, handle, result, start, typed)).await,
    }
}

/// After the action: a connected fleet keeps a working connection for its next run; otherwise
/// the session ends.
async fn release(ctx: &HostCtx, index: usize, conn: Connection) {
    match &ctx.cache {
        Some(cache) if !conn.handle.is_closed() => {
            cache.lock().insert(index, conn);
        }
        _ => say_goodbye(&conn).await,
    }
}

/// A tunnelled host that lost its connection because its bastion's connection was lost
/// reports a `jump` error naming the bastion.
fn blame_bastion(ctx: &HostCtx, profile: &HostProfile, result: &mut HostResult) {
    let Some(e) = result.error.as_mut() else {
        return;
    };
    if e.kind != ErrorKind::Disconnected {
        return;
    }
    if let Some(name) = ctx
        .jumps
        .as_ref()
        .and_then(|j| j.lost(profile.proxy_jump.as_deref()))
    {
        *e = HostError::new(
            ErrorKind::Jump,
            format!("connection to bastion {name} lost ({})", e.message),
        );
    }
}

pub(crate) struct ClientHandler {
    known: Arc<KnownHosts>,
    /// The host's known_hosts entries, taken before connecting.
    entries: HostKeys,
    host: String,
    verdict: Arc<Mutex<Option<(Verdict, String)>>>,
    /// The local agent socket, when agent forwarding was asked for.
    forward_agent: Option<std::path::PathBuf>,
}

impl client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let (verdict, algo) = match key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => (
                self.known.verify_key(&self.entries, key.key_data()),
                key.algorithm().as_str().to_string(),
            ),
            russh::keys::PublicKeyOrCertificate::Certificate(cert) => (
                self.known.verify_cert(&self.entries, &self.host, cert),
                cert.algorithm().to_certificate_type(),
            ),
        };
        let ok = verdict.accepted();
        *self.verdict.lock() = Some((verdict, algo));
        Ok(ok)
    }

    /// A server may open agent channels only when forwarding was asked for; each one is
    /// piped to the local agent socket.
    async fn server_channel_open_agent_forward(
        &mut self,
        channel: russh::Channel<client::Msg>,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        let Some(path) = self.forward_agent.clone() else {
            tracing::warn!(host = %self.host, "refused an agent channel the server opened without agent forwarding");
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        reply.accept().await;
        tokio::spawn(async move {
            match tokio::net::UnixStream::connect(&path).await {
                Ok(mut agent) => {
                    let mut stream = channel.into_stream();
                    let _ = tokio::io::copy_bidirectional(&mut stream, &mut agent).await;
                }
                Err(e) => tracing::warn!("agent forwarding: cannot reach {}: {e}", path.display()),
            }
        });
        Ok(())
    }

    /// fleetsh never asks for remote port forwarding: such channels are refused.
    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        _connected_address: &str,
        _connected_port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        reply
            .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        Ok(())
    }

    /// Refused, as remote port forwarding.
    async fn server_channel_open_forwarded_streamlocal(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        _socket_path: &str,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        reply
            .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Resolve,
    Tcp,
    Tunnel,
    Proxy,
    Handshake,
    Auth,
}

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

/// A uniform number in `[0, 1)` for the retry backoff's jitter, different per host, attempt
/// and process (std's randomly keyed hasher; no cryptographic quality needed).
fn jitter(index: usize, attempt: u32) -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_usize(index);
    h.write_u32(attempt);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Runs `job` on one host and returns its one result. Never panics on network input; every
/// failure becomes a typed [`HostError`] with the output received so far kept.
pub(crate) async fn run_host(ctx: &HostCtx, index: usize, target: &HostTarget) -> HostResult {
    let start = Instant::now();
    let settings = &ctx.settings;
    let job = &ctx.job;
    // The host as typed names its download directory.
    let typed = match job.action {
        fleetsh_core::Action::Get(_) => target.to_string(),
        _ => String::new(),
    };
    let default_plan = HostPlan::default();
    let plan = ctx
        .plans
        .as_ref()
        .and_then(|p| p.get(index))
        .unwrap_or(&default_plan);
    let profile = &*plan.profile;
    let target = effective_target(settings, plan, target);
    let mut result = HostResult::failed(
        index,
        target.clone(),
        HostError::new(ErrorKind::Internal, "not run"),
    );
    result.error = None;
    result.connect_only = job.action == fleetsh_core::Action::Connect;
    // Where to connect: `HostName`, else the host as typed.
    let address = HostTarget {
        host: plan.hostname.clone().unwrap_or_else(|| target.host.clone()),
        ..target.clone()
    };
    let connect_timeout = profile.connect_timeout.unwrap_or(job.connect_timeout);
    // `ProxyCommand`, expanded for this host (the port and user are set by effective_target).
    let proxy = match &profile.proxy_command {
        Some(template) => match crate::proxy::expand(
            template,
            &address.host,
            target.port.unwrap_or(22),
            target.user.as_deref().unwrap_or_default(),
            &target.host,
        ) {
            Ok(cmd) => Some(cmd),
            Err(e) => {
                result.error = Some(e);
                result.timings.total = start.elapsed();
                return result;
            }
        },
        None => None,
    };

    // A connected fleet's kept connection first. If it turns out to be unusable before the
    // command or transfer started (the server closed it meanwhile), connect afresh, once.
    let kept = ctx
        .cache
        .as_ref()
        .and_then(|c| c.lock().remove(&index))
        .filter(|h| !h.handle.is_closed());
    if let Some(h) = kept {
        let before = result.clone();
        act(ctx, profile, &h.handle, &mut result, start, &typed).await;
        let not_started = result.timings.channel_open.is_none()
            && result
                .error
                .as_ref()
                .is_some_and(|e| e.kind != ErrorKind::Cancelled);
        if !not_started {
            blame_bastion(ctx, profile, &mut result);
            release(ctx, index, h).await;
            result.timings.total = start.elapsed();
            return result;
        }
        tracing::debug!(host = %target, "kept connection unusable ({:?}); reconnecting", result.error);
        drop(h);
        result = before;
    }

    let mut attempt = 0u32;
    let handle = loop {
        attempt += 1;
        result.attempts = attempt;
        let mut timings = Timings::default();
        let mut phase = Phase::Resolve;
        if let Some(rl) = ctx.shared.rate() {
            let slot = tokio::time::Instant::from_std(rl.reserve());
            tokio::select! {
                _ = ctx.cancel.cancelled() => {
                    result.error = Some(HostError::new(ErrorKind::Cancelled, "run cancelled while waiting for a connection slot (--rate)"));
                    result.timings.total = start.elapsed();
                    return result;
                }
                _ = tokio::time::sleep_until(slot) => {}
            }
        }
        let outcome = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => Err(HostError::new(ErrorKind::Cancelled, "run cancelled while connecting")),
            // Boxed: the handshake's state (~6 KB) lives only while connecting, not in every
            // host's task for the whole run.
            r = tokio::time::timeout(connect_timeout, Box::pin(connect(ctx, profile, &address, proxy.as_deref(), &mut phase, &mut timings, start))) => match r {
                Ok(r) => r,
                Err(_) => Err(HostError::new(
                    ErrorKind::ConnectTimeout,
                    format!("no connection within {connect_timeout:?} ({})", match phase {
                        Phase::Resolve => "resolving the name",
                        Phase::Tcp => "tcp connect",
                        Phase::Proxy => "waiting for the ProxyCommand",
                        Phase::Tunnel => "opening a tunnel through the jump host",
                        Phase::Handshake => "ssh handshake",
                        Phase::Auth => "authentication",
                    }),
                )),
            },
        };
        match outcome {
            Ok(h) => {
                result.timings = timings;
                break h;
            }
            Err(e) if e.kind.is_retryable() && attempt <= job.retries => {
                tracing::debug!(host = %target, attempt, "retrying after {e}");
                tokio::select! {
                    _ = ctx.cancel.cancelled() => {
                        result.error = Some(HostError::new(ErrorKind::Cancelled, format!("run cancelled while waiting to retry after: {e}")));
                        result.timings.total = start.elapsed();
                        return result;
                    }
                    _ = tokio::time::sleep(fleetsh_core::config::retry_backoff(job.retry_delay, attempt, jitter(index, attempt))) => {}
                }
            }
            Err(e) => {
                result.error = Some(e);
                result.timings = timings;
                result.timings.total = start.elapsed();
                return result;
            }
        }
    };

    act(ctx, profile, &handle.handle, &mut result, start, &typed).await;
    blame_bastion(ctx, profile, &mut result);
    release(ctx, index, handle).await;
    result.timings.total = start.elapsed();
    result
}

async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, HostError> {
    // Literal addresses skip the resolver entirely (no blocking-pool hop).
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    match crate::resolve::lookup(host, port).await {
        Ok(v) => {
            if v.is_empty() {
                Err(HostError::new(
                    ErrorKind::Resolve,
                    format!("{host} resolves to no address"),
                ))
            } else {
                Ok(v)
            }
        }
        Err(e) => Err(HostError::new(
            ErrorKind::Resolve,
            format!("cannot resolve {host}: {e}"),
        )),
    }
}

/// Connects to `target` through `proxy` (an expanded `ProxyCommand`) if there is one, else as
/// [`connect_via`] does.
async fn connect(
    ctx: &HostCtx,
    profile: &HostProfile,
    target: &HostTarget,
    proxy: Option<&str>,
    phase: &mut Phase,
    timings: &mut Timings,
    start: Instant,
) -> Result<Connection, HostError> {
    let Some(command) = proxy else {
        return connect_via(ctx, profile, target, None, phase, timings, start).await;
    };
    *phase = Phase::Proxy;
    let (mut process, stream) = crate::proxy::spawn(command)?;
    timings.connect = Some(start.elapsed());
    match handshake(
        ctx,
        profile,
        target,
        (stream, UNKNOWN_PATH_SEGMENT),
        phase,
        timings,
        start,
    )
    .await
    {
        Ok(handle) => Ok(Connection {
            handle,
            _tunnel: None,
            _proxy: Some(process),
        }),
        Err(e) if matches!(e.kind, ErrorKind::Handshake) => Err(process.explain(e).await),
        Err(e) => Err(e),
    }
}

/// Connects to `target` over `over` (a tunnel a bastion opened), else through the run's jump
/// hosts if any, else by TCP; then handshake, host-key check and authentication.
pub(crate) async fn connect_via(
    ctx: &HostCtx,
    profile: &HostProfile,
    target: &HostTarget,
    over: Option<russh::ChannelStream<client::Msg>>,
    phase: &mut Phase,
    timings: &mut Timings,
    start: Instant,
) -> Result<Connection, HostError> {
    let port = target.port.unwrap_or(22);
    if let Some(stream) = over {
        timings.connect = Some(start.elapsed());
        let handle = handshake(
            ctx,
            profile,
            target,
            (stream, UNKNOWN_PATH_SEGMENT),
            phase,
            timings,
            start,
        )
        .await?;
        return Ok(Connection {
            handle,
            _tunnel: None,
            _proxy: None,
        });
    }
    let jumped = match &ctx.jumps {
        Some(jumps) => {
            *phase = Phase::Tunnel;
            jumps
                .tunnel(ctx, profile.proxy_jump.as_deref(), &target.host, port)
                .await?
        }
        None => None,
    };
    if let Some(t) = jumped {
        timings.connect = Some(start.elapsed());
        let handle = handshake(
            ctx,
            profile,
            target,
            (t.stream, UNKNOWN_PATH_SEGMENT),
            phase,
            timings,
            start,
        )
        .await?;
        return Ok(Connection {
            handle,
            _tunnel: Some(t.permit),
            _proxy: None,
        });
    }
    *phase = Phase::Resolve;
    let addrs = resolve(&target.host, port).await?;
    *phase = Phase::Tcp;
    let mut last_err = None;
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_err = Some((addr, e)),
        }
    }
    let Some(stream) = stream else {
        let msg = match last_err {
            Some((addr, e)) => format!("tcp connect to {addr}: {e}"),
            None => "no address to connect to".to_string(),
        };
        return Err(HostError::new(ErrorKind::Connect, msg));
    };
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("set_nodelay: {e}");
    }
    // The segment size this connection's peer accepts (from its SYN-ACK).
    let segment = socket2::SockRef::from(&stream)
        .tcp_mss()
        .map_or(UNKNOWN_PATH_SEGMENT, |m| m as usize);
    timings.connect = Some(start.elapsed());
    // russh reads each packet in two exact reads (its length, then the rest): unbuffered,
    // that was ~33 recvfrom calls per `echo` host. A small buffer takes whatever has arrived
    // in one call, and holds no memory while the session is idle (readbuf.rs).
    let stream = crate::readbuf::ReadBuffered::new(READ_BUFFER, stream);
    let handle = handshake(
        ctx,
        profile,
        target,
        (stream, segment),
        phase,
        timings,
        start,
    )
    .await?;
    Ok(Connection {
        handle,
        _tunnel: None,
        _proxy: None,
    })
}

/// SSH handshake with the host-key check, then authentication, over `stream`.
async fn handshake<S>(
    ctx: &HostCtx,
    profile: &HostProfile,
    target: &HostTarget,
    (stream, segment): (S, usize),
    phase: &mut Phase,
    timings: &mut Timings,
    start: Instant,
) -> Result<client::Handle<ClientHandler>, HostError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let port = target.port.unwrap_or(22);
    let t_tcp = timings.connect.unwrap_or_default();
    *phase = Phase::Handshake;
    let guess = ctx.settings.guess_fits(segment);
    let verdict = Arc::new(Mutex::new(None));
    let known_hosts = profile
        .known_hosts
        .as_ref()
        .unwrap_or(&ctx.settings.known_hosts);
    let entries = known_hosts.host_keys(&target.host, port);
    let config = ctx
        .settings
        .client_for(entries.preferences(), profile.keepalive, guess);
    let handler = ClientHandler {
        known: known_hosts.clone(),
        entries,
        host: target.host.clone(),
        verdict: verdict.clone(),
        forward_agent: ctx
            .settings
            .forward_agent
            .then(|| ctx.settings.auth.agent.clone())
            .flatten(),
    };
    let mut handle = match client::connect_stream(config, stream, handler).await {
        Ok(h) => h,
        Err(e) => {
            if let Some((v, algo)) = verdict.lock().take()
                && !v.accepted()
            {
                let name = crate::known_hosts::lookup_name(&target.host, port);
                return Err(HostError::new(
                    ErrorKind::Hostkey,
                    v.message(&name, known_hosts.path(), &algo),
                ));
            }
            return Err(HostError::new(
                ErrorKind::Handshake,
                format!("ssh handshake failed: {}", describe(&e)),
            ));
        }
    };

    *phase = Phase::Auth;
    let user = target.user.clone().unwrap_or_default();
    authenticate(ctx, profile, &mut handle, &user).await?;
    timings.handshake_auth = Some(start.elapsed().saturating_sub(t_tcp));
    Ok(handle)
}

pub(crate) fn describe(e: &russh::Error) -> String {
    match e {
        russh::Error::Disconnect | russh::Error::HUP => "connection closed by the server".into(),
        russh::Error::IO(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "connection closed by the server".into()
        }
        other => other.to_string().to_lowercase(),
    }
}

fn methods_str(m: &MethodSet) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter().map(<&str>::from).collect::<Vec<_>>().join(",")
}

async fn authenticate(
    ctx: &HostCtx,
    profile: &HostProfile,
    handle: &mut client::Handle<ClientHandler>,
    user: &str,
) -> Result<(), HostError> {
    let auth = &ctx.settings.auth;
    let mut tried: Vec<String> = Vec::new();
    let mut offered: Option<MethodSet> = None;
    let allows = |offered: &Option<MethodSet>, m: MethodKind| {
        offered.as_ref().is_none_or(|o| o.contains(&m))
    };
    let lost = |e: russh::Error| {
        HostError::new(
            ErrorKind::Disconnected,
            format!("connection lost during authentication: {}", describe(&e)),
        )
    };
    let mut rsa_hash: Option<Option<HashAlg>> = None;

    // 1. Agent identities (as OpenSSH: agent keys before key files), unless IdentitiesOnly.
    if let Some(agent) = ctx.agent.as_ref().filter(|_| !profile.identities_only) {
        let ids = agent.identities().await;
        for key in ids {
            if !allows(&offered, MethodKind::PublicKey) {
                break;
            }
            let hash = if key.algorithm().is_rsa() {
                best_rsa(handle, &mut rsa_hash).await
            } else {
                None
            };
            let _permit = agent.acquire().await;
            let mut client = match agent.checkout().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("ssh-agent: {e}");
                    break;
                }
            };
            tried.push(format!("publickey (agent {})", key.algorithm().as_str()));
            let r = handle
                .authenticate_publickey_with(user, key.clone(), hash, &mut client)
                .await;
            match r {
                Ok(AuthResult::Success) => {
                    agent.checkin(client).await;
                    return Ok(());
                }
                Ok(AuthResult::Failure {
                    remaining_methods, ..
                }) => {
                    agent.checkin(client).await;
                    offered = Some(remaining_methods);
                }
                Err(e) => {
                    // The agent connection may be broken: do not reuse it.
                    tracing::debug!("agent signing failed: {e}");
                    if handle.is_closed() {
                        return Err(lost(russh::Error::Disconnect));
                    }
                }
            }
        }
    }

    // 2. Key files: ssh_config's IdentityFiles for this host, else the engine's.
    let keys = profile.keys.as_deref().unwrap_or(&auth.keys);
    for k in keys {
        if !allows(&offered, MethodKind::PublicKey) {
            break;
        }
        let hash = if k.key.algorithm().is_rsa() {
            best_rsa(handle, &mut rsa_hash).await
        } else {
            None
        };
        if let Some((cpath, cert)) = &k.cert {
            tried.push(format!("publickey certificate ({})", cpath.display()));
            let result = match k.ed25519_signer() {
                Some(signer) => signed_auth(handle, user, k, Some(cert), signer).await,
                None => {
                    handle
                        .authenticate_openssh_cert(user, k.key.clone(), (**cert).clone())
                        .await
                }
            };
            match result {
                Ok(AuthResult::Success) => return Ok(()),
                Ok(AuthResult::Failure {
                    remaining_methods, ..
                }) => offered = Some(remaining_methods),
                Err(e) => return Err(lost(e)),
            }
            if !allows(&offered, MethodKind::PublicKey) {
                break;
            }
        }
        tried.push(format!("publickey ({})", k.path.display()));
        let result = match k.ed25519_signer() {
            Some(signer) => signed_auth(handle, user, k, None, signer).await,
            None => {
                handle
                    .authenticate_publickey(user, PrivateKeyWithHashAlg::new(k.key.clone(), hash))
                    .await
            }
        };
        match result {
            Ok(AuthResult::Success) => return Ok(()),
            Ok(AuthResult::Failure {
                remaining_methods, ..
            }) => offered = Some(remaining_methods),
            Err(e) => return Err(lost(e)),
        }
    }

    // 3. Keyboard-interactive answering password prompts (PAM servers), then 4. password:
    //    OpenSSH's order.
    if let Some(pw) = &auth.password
        && allows(&offered, MethodKind::KeyboardInteractive)
    {
        tried.push("keyboard-interactive".into());
        match keyboard_interactive(handle, user, pw).await {
            Ok(None) => return Ok(()),
            Ok(Some((remaining, note))) => {
                if let Some(note) = note
                    && let Some(last) = tried.last_mut()
                {
                    last.push_str(&format!(" ({note})"));
                }
                offered = Some(remaining);
            }
            Err(e) => return Err(lost(e)),
        }
    }
    if let Some(pw) = &auth.password
        && allows(&offered, MethodKind::Password)
    {
        tried.push("password".into());
        match handle.authenticate_password(user, pw.expose()).await {
            Ok(AuthResult::Success) => return Ok(()),
            Ok(AuthResult::Failure {
                remaining_methods, ..
            }) => offered = Some(remaining_methods),
            Err(e) => return Err(lost(e)),
        }
    }

    if handle.is_closed() {
        return Err(HostError::new(
            ErrorKind::Disconnected,
            "connection closed by the server during authentication",
        ));
    }
    let tried = if tried.is_empty() {
        "no method (no key, agent or password available)".to_string()
    } else {
        tried.join(", ")
    };
    let offered = match &offered {
        Some(m) => methods_str(m),
        None => "unknown".into(),
    };
    Err(HostError::new(
        ErrorKind::Auth,
        format!("authentication as {user:?} refused; tried {tried}; server offers {offered}"),
    ))
}

/// Ed25519 key file `k` (or its certificate `cert`): signed by aws-lc-rs from the key pair
/// expanded once per key, at once (no offer first) and sent with the service request: one
/// round trip, not three (docs/connecting.md, "Authentication").
async fn signed_auth(
    handle: &mut client::Handle<ClientHandler>,
    user: &str,
    k: &crate::auth::LoadedKey,
    cert: Option<&Arc<russh::keys::Certificate>>,
    mut signer: crate::auth::Ed25519Signer,
) -> Result<AuthResult, russh::Error> {
    handle
        .authenticate_publickey_signed(
            user,
            k.key.public_key().clone(),
            cert.map(|c| (**c).clone()),
            None,
            &mut signer,
        )
        .await
        .map_err(|_: crate::auth::SignerLost| russh::Error::SendError)
}

/// Keyboard-interactive with the password as the answer to password prompts. `Ok(None)`:
/// authenticated; `Ok(Some((remaining, note)))`: refused (note: why we gave up, if we did).
async fn keyboard_interactive(
    handle: &mut client::Handle<ClientHandler>,
    user: &str,
    password: &crate::Secret,
) -> Result<Option<(MethodSet, Option<String>)>, russh::Error> {
    use russh::client::KeyboardInteractiveAuthResponse as R;
    let mut reply = handle
        .authenticate_keyboard_interactive_start(user, None)
        .await?;
    // Servers may send empty rounds; a few are enough for any PAM stack fleetsh can answer.
    for _ in 0..8 {
        match reply {
            R::Success => return Ok(None),
            R::Failure {
                remaining_methods, ..
            } => return Ok(Some((remaining_methods, None))),
            R::InfoRequest { prompts, .. } => {
                let mut answers = Vec::with_capacity(prompts.len());
                for p in &prompts {
                    if p.prompt.to_lowercase().contains("password") && !p.echo {
                        answers.push(password.expose().to_string());
                    } else {
                        // An OTP or question fleetsh cannot answer: give up on this method
                        // (an empty answer fails it without sending the password anywhere).
                        let note = format!("unanswerable prompt {:?}", p.prompt.trim());
                        let r = handle
                            .authenticate_keyboard_interactive_respond(vec![
                                String::new();
                                prompts.len()
                            ])
                            .await?;
                        let remaining = match r {
                            R::Failure {
                                remaining_methods, ..
                            } => remaining_methods,
                            R::Success => return Ok(None),
                            R::InfoRequest { .. } => MethodSet::empty(),
                        };
                        return Ok(Some((remaining, Some(note))));
                    }
                }
                reply = handle
                    .authenticate_keyboard_interactive_respond(answers)
                    .await?;
            }
        }
    }
    Ok(Some((MethodSet::empty(), Some("too many prompts".into()))))
}

async fn best_rsa(
    handle: &client::Handle<ClientHandler>,
    cache: &mut Option<Option<HashAlg>>,
) -> Option<HashAlg> {
    if let Some(h) = cache {
        return *h;
    }
    // No server-sig-algs extension: assume a modern server (rsa-sha2-256), never SHA-1.
    let h = match handle.best_supported_rsa_hash().await {
        Ok(Some(h)) => h,
        _ => Some(HashAlg::Sha256),
    };
    *cache = Some(h);
    h
}

fn capture(buf: &mut Vec<u8>, data: &[u8], cap: usize, truncated: &mut bool) {
    let room = cap.saturating_sub(buf.len());
    if data.len() > room {
        *truncated = true;
    }
    let take = data.len().min(room);
    if let Some(part) = data.get(..take) {
        buf.extend_from_slice(part);
    }
}

/// What is pending a reply on the channel, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Request {
    Env(String),
    Pty,
    Agent,
}

type ReadHalf = russh::ChannelReadHalf;
type WriteHalf = russh::ChannelWriteHalf<client::Msg>;

/// Opens the session channel and sends the environment and pty requests, waiting for each
/// reply in order.
async fn open_channel(
    handle: &client::Handle<ClientHandler>,
    job: &Job,
    forward_agent: bool,
) -> Result<(ReadHalf, WriteHalf), HostError> {
    let channel = handle.channel_open_session().await.map_err(|e| {
        HostError::new(
            ErrorKind::Channel,
            format!("cannot open a session channel: {}", describe(&e)),
        )
    })?;
    let (mut read, write) = channel.split();
    let lost = |what: &str, e: russh::Error| {
        HostError::new(
            ErrorKind::Channel,
            format!("{what} failed: {}", describe(&e)),
        )
    };
    let mut pending = std::collections::VecDeque::new();
    for (k, v) in &job.env {
        write
            .set_env(true, k.as_str(), v.as_str())
            .await
            .map_err(|e| lost("env request", e))?;
        pending.push_back(Request::Env(k.clone()));
    }
    if job.pty {
        write
            .request_pty(true, "xterm", 80, 24, 0, 0, &[])
            .await
            .map_err(|e| lost("pty request", e))?;
        pending.push_back(Request::Pty);
    }
    if forward_agent {
        write
            .agent_forward(true)
            .await
            .map_err(|e| lost("agent forwarding request", e))?;
        pending.push_back(Request::Agent);
    }
    while let Some(req) = pending.front().cloned() {
        match read.wait().await {
            Some(ChannelMsg::Success) => {
                pending.pop_front();
            }
            Some(ChannelMsg::Failure) if req == Request::Agent => {
                // As OpenSSH: a refused agent forwarding is not fatal to the command.
                tracing::warn!("the server refused agent forwarding");
                pending.pop_front();
            }
            Some(ChannelMsg::Failure) => {
                return Err(HostError::new(
                    ErrorKind::Channel,
                    match req {
                        Request::Env(k) => format!(
                            "the server refused to set environment variable {k} (see its AcceptEnv); the command was not run"
                        ),
                        Request::Pty => {
                            "the server refused to allocate a pty; the command was not run".into()
                        }
                        Request::Agent => "agent forwarding refused".into(),
                    },
                ));
            }
            Some(ChannelMsg::Close) | None => {
                return Err(HostError::new(
                    ErrorKind::Disconnected,
                    "channel closed before the command started",
                ));
            }
            Some(_) => {}
        }
    }
    Ok((read, write))
}

async fn run_command(
    ctx: &HostCtx,
    profile: &HostProfile,
    handle: &client::Handle<ClientHandler>,
    result: &mut HostResult,
    start: Instant,
) {
    let job = &ctx.job;
    let connect_timeout = profile.connect_timeout.unwrap_or(job.connect_timeout);
    let t_open = start.elapsed();
    // 1. Session channel and the requests that must succeed before the command runs
    //    (environment, pty), bounded by the connect timeout: a server that stops answering
    //    after authentication must not hold the host forever.
    let opened = tokio::select! {
        biased;
        _ = ctx.cancel.cancelled() => Err(HostError::new(ErrorKind::Cancelled, "run cancelled before the command started")),
        r = tokio::time::timeout(connect_timeout, open_channel(handle, job, ctx.settings.forward_agent && ctx.settings.auth.agent.is_some())) => match r {
            Ok(r) => r,
            Err(_) => Err(HostError::new(
                ErrorKind::Channel,
                format!("the server did not open a session channel within {connect_timeout:?}"),
            )),
        },
    };
    let (mut read, write) = match opened {
        Ok(halves) => halves,
        Err(e) => {
            result.error = Some(e);
            return;
        }
    };
    let t_exec = start.elapsed();
    result.timings.channel_open = Some(t_exec.saturating_sub(t_open));
    let lost = |what: &str, e: russh::Error| {
        HostError::new(
            ErrorKind::Channel,
            format!("{what} failed: {}", describe(&e)),
        )
    };

    // 2. The command: the host's own (worked out before the run), or the template expanded,
    //    or the command as given; then sudo.
    let mut command = match &job.per_host {
        Some(p) => match p.get(result.index) {
            Some(c) => c.to_string(),
            None => {
                result.error = Some(HostError::new(
                    ErrorKind::Internal,
                    "no per-host command for this host (the run did not work them out)",
                ));
                return;
            }
        },
        None if job.template => {
            crate::command::render(&job.command, &result.target.host, result.index)
        }
        None => job.command.clone(),
    };
    if let Some(sudo) = &job.sudo {
        command = crate::command::sudo_wrap(&command, sudo);
    }
    if let Err(e) = write.exec(true, command.into_bytes()).await {
        result.error = Some(lost("exec request", e));
        return;
    }

    // 3. Standard input (sudo password first), then EOF, sent concurrently with reading so
    //    that neither side can stall the other.
    let secret: Option<Vec<u8>> = job
        .sudo
        .as_ref()
        .and_then(|s| s.password.as_ref())
        .map(|p| p.expose().as_bytes().to_vec());
    let writer = async {
        if let Some(pw) = &secret {
            let mut line = pw.clone();
            line.push(b'\n');
            write.data_bytes(line).await?;
        }
        if let Some(input) = &job.stdin
            && !input.0.is_empty()
        {
            write
                .data_bytes(bytes::Bytes::from_owner(input.0.clone()))
                .await?;
        }
        write.eof().await
    };
    tokio::pin!(writer);
    let mut writer_done = false;

    let deadline = job.command_timeout.map(|d| tokio::time::Instant::now() + d);
    let sleep = tokio::time::sleep_until(
        deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86400 * 365)),
    );
    tokio::pin!(sleep);
    // The idle timeout: `idle` fires at the last output plus the limit; it is moved only
    // when it fires early (output came meanwhile), not on every chunk.
    let idle_limit = job.idle_timeout;
    let mut last_output = tokio::time::Instant::now();
    let idle = tokio::time::sleep_until(
        last_output + idle_limit.unwrap_or(Duration::from_secs(86400 * 365)),
    );
    tokio::pin!(idle);
    let cap = job.output_cap;
    let mut exec_confirmed = false;
    let mut output_end: Option<Duration> = None;
    let confirm = |result: &mut HostResult, confirmed: &mut bool| {
        if !*confirmed {
            *confirmed = true;
            result.timings.exec = Some(start.elapsed().saturating_sub(t_exec));
        }
    };
    let stop = loop {
        let msg = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => {
                break Some(HostError::new(ErrorKind::Cancelled, "run cancelled while the command ran"));
            }
            _ = &mut sleep, if deadline.is_some() => {
                break Some(HostError::new(
                    ErrorKind::CommandTimeout,
                    format!("command did not finish within {:?}", job.command_timeout.unwrap_or_default()),
                ));
            }
            _ = &mut idle, if idle_limit.is_some() => {
                let limit = idle_limit.unwrap_or_default();
                let due = last_output + limit;
                if tokio::time::Instant::now() < due {
                    idle.as_mut().reset(due);
                    continue;
                }
                break Some(HostError::new(
                    ErrorKind::CommandTimeout,
                    format!("no output for {limit:?} (idle timeout)"),
                ));
            }
            w = &mut writer, if !writer_done => {
                writer_done = true;
                if let Err(e) = w {
                    // The command may have exited without reading its input: not an error.
                    tracing::debug!("stdin not fully sent: {e}");
                }
                continue;
            }
            m = read.wait() => m,
        };
        match msg {
            Some(ChannelMsg::Data { data }) => {
                confirm(result, &mut exec_confirmed);
                last_output = tokio::time::Instant::now();
                if result.timings.first_byte.is_none() {
                    result.timings.first_byte = Some(start.elapsed());
                }
                on_output(
                    ctx,
                    result,
                    StreamKind::Stdout,
                    &data,
                    cap,
                    secret.as_deref(),
                )
                .await;
            }
            Some(ChannelMsg::ExtendedData { data, ext }) => {
                confirm(result, &mut exec_confirmed);
                last_output = tokio::time::Instant::now();
                if result.timings.first_byte.is_none() {
                    result.timings.first_byte = Some(start.elapsed());
                }
                if ext == 1 {
                    on_output(
                        ctx,
                        result,
                        StreamKind::Stderr,
                        &data,
                        cap,
                        secret.as_deref(),
                    )
                    .await;
                }
            }
            Some(ChannelMsg::Success) => confirm(result, &mut exec_confirmed),
            Some(ChannelMsg::Failure) if !exec_confirmed => {
                break Some(HostError::new(
                    ErrorKind::Channel,
                    "the server refused the exec request",
                ));
            }
            Some(ChannelMsg::ExitStatus { exit_status }) => {
                result.exit_code = Some(exit_status);
                end_of_output(result, &mut output_end, start, t_exec);
            }
            Some(ChannelMsg::Eof) => end_of_output(result, &mut output_end, start, t_exec),
            Some(ChannelMsg::ExitSignal {
                signal_name,
                error_message,
                ..
            }) => {
                result.signal = Some(sig_name(&signal_name));
                if !error_message.is_empty() {
                    tracing::debug!("exit signal message: {error_message}");
                }
            }
            Some(ChannelMsg::Close) | None => {
                end_of_output(result, &mut output_end, start, t_exec);
                if let Some(end) = output_end {
                    result.timings.close = Some(start.elapsed().saturating_sub(end));
                }
                break None;
            }
            Some(_) => {}
        }
    };
    if let Some(pw) = &secret {
        crate::command::scrub(&mut result.stdout, pw);
        crate::command::scrub(&mut result.stderr, pw);
    }
    if let Some(e) = stop {
        // Ask the server to stop the command (OpenSSH honours signal requests); closing the
        // connection follows.
        if matches!(e.kind, ErrorKind::CommandTimeout | ErrorKind::Cancelled) {
            let _ = write.signal(russh::Sig::TERM).await;
        }
        result.error = Some(e);
        return;
    }
    if result.exit_code.is_none() && result.signal.is_none() {
        let base = &ctx.settings.client;
        let keepalive = profile
            .keepalive
            .or(base.keepalive_interval.map(|interval| Keepalive {
                interval,
                max: base.keepalive_max,
            }));
        let msg = match (handle.is_closed(), keepalive, base.inactivity_timeout) {
            (true, Some(k), idle) => format!(
                "connection lost before the command's exit status (closed by the server, or {} keepalives unanswered at {:?} intervals{})",
                k.max,
                k.interval,
                idle.map(|t| format!(", or nothing received for the inactivity timeout of {t:?}"))
                    .unwrap_or_default()
            ),
            (true, None, Some(t)) => format!(
                "connection lost before the command's exit status (closed by the server, or nothing sent or received for the inactivity timeout of {t:?})"
            ),
            (true, None, None) => "connection lost before the command's exit status".to_string(),
            (false, ..) => "channel closed without an exit status".to_string(),
        };
        result.error = Some(HostError::new(ErrorKind::Disconnected, msg));
    }
}

async fn on_output(
    ctx: &HostCtx,
    result: &mut HostResult,
    stream: StreamKind,
    data: &[u8],
    cap: usize,
    secret: Option<&[u8]>,
) {
    let buf = match stream {
        StreamKind::Stdout => &mut result.stdout,
        StreamKind::Stderr => &mut result.stderr,
    };
    capture(buf, data, cap, &mut result.truncated);
    if ctx.job.stream_output {
        // Wait for room before sending (and before reading more of this channel).
        let room = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => false,
            ok = ctx.sink.budget().take(data.len()) => ok,
        };
        if !room {
            return;
        }
        let mut chunk = data.to_vec();
        if let Some(pw) = secret {
            crate::command::scrub(&mut chunk, pw);
        }
        ctx.sink.send(Event::Output {
            host: result.index,
            stream,
            data: chunk,
        });
    }
}

/// Records the end of the command's output (first of EOF, exit status, close).
fn end_of_output(
    result: &mut HostResult,
    end: &mut Option<Duration>,
    start: Instant,
    t_exec: Duration,
) {
    if end.is_some() {
        return;
    }
    let now = start.elapsed();
    *end = Some(now);
    let read_from = t_exec + result.timings.exec.unwrap_or_default();
    result.timings.read = Some(now.saturating_sub(read_from));
}

fn sig_name(sig: &russh::Sig) -> String {
    let s = format!("{sig:?}");
    // `Sig::Custom(name)` debug-prints as `Custom("NAME")`.
    if let Some(inner) = s
        .strip_prefix("Custom(\"")
        .and_then(|r| r.strip_suffix("\")"))
    {
        return inner.to_string();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_respects_cap_and_flags_truncation() {
        let mut buf = Vec::new();
        let mut t = false;
        capture(&mut buf, b"hello", 8, &mut t);
        assert!(!t);
        capture(&mut buf, b"world", 8, &mut t);
        assert!(t);
        assert_eq!(buf, b"hellowor");
    }

    #[test]
    fn signal_names_have_no_prefix() {
        assert_eq!(sig_name(&russh::Sig::KILL), "KILL");
        assert_eq!(sig_name(&russh::Sig::Custom("USR9".into())), "USR9");
    }

    #[test]
    fn aes_gcm_goes_first_only_with_hardware_aes_gcm() {
        use russh::cipher::{AES_256_GCM, CHACHA20_POLY1305};
        let russh_default = russh::Preferred::default().cipher.to_vec();
        assert_eq!(russh_default[0], CHACHA20_POLY1305);
        assert_eq!(cipher_order(&russh_default, false), russh_default);
        let hw = cipher_order(&russh_default, true);
        assert_eq!(hw[0], AES_256_GCM);
        assert_eq!(hw[1], CHACHA20_POLY1305);
        assert_eq!(hw.len(), russh_default.len());
        // A list without AES-256-GCM (a caller's choice) is left as it is.
        assert_eq!(
            cipher_order(&[CHACHA20_POLY1305], true),
            vec![CHACHA20_POLY1305]
        );
        // The engine's default follows this CPU.
        let first = default_client_config().preferred.cipher[0];
        let want = if fleetsh_core::aes_gcm_in_hardware() {
            AES_256_GCM
        } else {
            CHACHA20_POLY1305
        };
        assert_eq!(first, want);
        assert_eq!(ciphers_for(fleetsh_core::Cipher::AesGcm)[0], AES_256_GCM);
        assert_eq!(ciphers_for(fleetsh_core::Cipher::Chacha20), russh_default);
    }

    #[test]
    fn curve25519_first_keeps_the_rest_in_order() {
        let d = default_client_config();
        let v = curve25519_first(&d.preferred.kex);
        assert_eq!(v[0], russh::kex::CURVE25519);
        assert_eq!(v.len(), d.preferred.kex.len());
        let pos = |n| v.iter().position(|k| *k == n).unwrap();
        assert!(pos(russh::kex::MLKEM768X25519_SHA256) > pos(russh::kex::CURVE25519_PRE_RFC_8731));
    }

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

    #[tokio::test]
    async fn literal_addresses_skip_the_resolver() {
        let v = resolve("127.0.0.1", 22).await.unwrap();
        assert_eq!(v, vec!["127.0.0.1:22".parse().unwrap()]);
        let v = resolve("::1", 2222).await.unwrap();
        assert_eq!(v, vec!["[::1]:2222".parse().unwrap()]);
    }
}
