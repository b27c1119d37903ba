//! Starting and stopping a fleet: the sim's own thread and runtime, binding, state files.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use russh::keys::{Certificate, PrivateKey, PublicKey};
use russh::server;
use russh::{MethodKind, MethodSet, SshId};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{mpsc, watch};

use crate::server::{HostBehaviour, HostCounters, Lifeline, Route, Shared, accept_loop};
use crate::shell::ShellHost;
use crate::tunnel::Directory;
use crate::{Fault, Listen, SimConfig, SimError, SimHost, fault, keys, layout, state};

/// How often `port: 0` retries when the kernel's port is taken on some host address.
const PORT_TRIES: usize = 20;
/// Accept queue length of each host's own listener (the kernel caps it at `somaxconn`).
const BACKLOG: u32 = 1024;
/// Accept queue length of the one socket every host shares (capped at `somaxconn` too).
const ONE_SOCKET_BACKLOG: u32 = 65_535;
/// The loopback interface the one socket is bound to where the system allows it.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
const LOOPBACK_DEVICE: &[u8] = b"lo";
/// Host certificates are valid from this long before the start...
const CERT_BACKDATE: Duration = Duration::from_secs(3600);
/// ... for this long (ten years, leap days included).
const CERT_LIFETIME: Duration = Duration::from_secs((10 * 365 + 3) * 24 * 3600);
/// How long stopping waits for connections to say goodbye before the runtime drops them.
const GRACE: Duration = Duration::from_secs(2);

/// A running simulated fleet: one SSH listener per host, or one for every host
/// ([`Listen`]), all served by the sim's own tokio runtime on its own threads.
///
/// Dropping it stops it, like [`SimFleet::stop`].
pub struct SimFleet {
    hosts: Vec<SimHost>,
    port: u16,
    /// [`Listen::PerHost`] or [`Listen::OneSocket`].
    listen: Listen,
    state_dir: PathBuf,
    host_keys: Vec<PublicKey>,
    client_key: PublicKey,
    /// Each host's fault, by index.
    faults: Vec<Option<Fault>>,
    /// Each host's counters, by index.
    counters: Vec<Arc<HostCounters>>,
    /// Connections the one socket reset because they arrived on no host's address.
    turned_away: Arc<AtomicU64>,
    control: Option<Control>,
    /// A state directory this fleet made for itself ([`SimFleet::start_temp`]), removed when
    /// it stops.
    temp_dir: Option<PathBuf>,
}

/// The handles that stop the fleet.
struct Control {
    shutdown: watch::Sender<bool>,
    thread: std::thread::JoinHandle<()>,
}

impl std::fmt::Debug for SimFleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimFleet")
            .field("hosts", &self.hosts.len())
            .field("first", &self.hosts.first().map(|h| h.addr))
            .field("port", &self.port)
            .field("listen", &self.listen)
            .field("state_dir", &self.state_dir)
            .field("running", &self.control.is_some())
            .finish_non_exhaustive()
    }
}

impl SimFleet {
    /// Starts a fleet and returns once every listener is bound and the state files are written.
    ///
    /// This blocks the calling thread (key derivation, binding, file writes); it may be
    /// called from inside another tokio runtime, whose threads it does not use: the fleet
    /// runs on a thread named `fleetsh-sim` and `config.threads` workers of its own.
    ///
    /// Steps, in order:
    /// 1. check the config, compute every host's address and assign the faults;
    /// 2. derive the host keys and the client key from `config.seed` (and, for
    ///    `hostkey-mismatch` hosts, the other key they serve); with
    ///    [`SimConfig::host_ca`], sign each host's certificate; apply
    ///    [`SimConfig::host_cert_override`];
    /// 3. start the sim thread and runtime, bind the listening sockets (a socket per host
    ///    or one for all, [`SimConfig::listen`]; with `port: 0` and a socket per host, retry
    ///    on another port when the first one is taken on some address), start the accept
    ///    loops;
    /// 4. write `hosts`, `known_hosts`, `id_ed25519` and `id_ed25519.pub` into `state_dir`,
    ///    and `known_hosts_ca` with a host CA (removing a stale one without).
    ///
    /// If any step fails, everything started so far is stopped and the error returned.
    pub fn start(config: SimConfig) -> Result<SimFleet, SimError> {
        let SimConfig {
            count,
            addr_base,
            port,
            listen,
            state_dir,
            seed,
            threads,
            password,
            kbd_interactive_only,
            user_ca,
            host_ca,
            host_cert_override,
            accept_env,
            sudo_password,
            sudo_own_prompt,
            sudo_then_ask,
            faults,
            latency,
        } = config;
        if count == 0 {
            return Err(SimError::BadCount { count });
        }
        if threads == 0 {
            return Err(SimError::BadThreads { threads });
        }
        let addrs = layout::addresses(addr_base, count)?;
        let faults = fault::assign(&faults, count, seed)?;
        let listen = listen.for_count(count);

        let now = SystemTime::now();
        let cert_valid = now.checked_sub(CERT_BACKDATE).unwrap_or(now)
            ..now.checked_add(CERT_LIFETIME).unwrap_or(now);
        let mut host_keys = derive_host_keys(
            seed,
            &addrs,
            &faults,
            host_ca.as_ref().map(|ca| (ca, cert_valid)),
            threads,
        )?;
        if let Some((index, cert)) = host_cert_override {
            let Some(keys) = host_keys.get_mut(index) else {
                return Err(SimError::BadHostCert {
                    index,
                    reason: format!("the fleet has {count} hosts"),
                });
            };
            if cert.public_key() != keys.served.public_key().key_data() {
                return Err(SimError::BadHostCert {
                    index,
                    reason: "the certificate is not of the key the host serves".into(),
                });
            }
            keys.cert = Some(cert);
        }
        let client_key = keys::client_key(seed);
        let host_publics: Vec<PublicKey> = host_keys.iter().map(|k| k.listed.clone()).collect();

        let shared = Arc::new(Shared {
            client_key: client_key.public_key().key_data().clone(),
            password,
            kbd_interactive_only,
            user_ca: user_ca.map(|ca| ca.key_data().clone()),
            accept_env,
            sudo_password: sudo_password.map(Arc::from),
            sudo_own_prompt: sudo_own_prompt.map(Arc::from),
            sudo_then_ask: sudo_then_ask.map(Arc::from),
            latency,
            roots: state_dir.join(state::ROOTS),
            directory: OnceLock::new(),
        });
        let methods = match (&shared.password, kbd_interactive_only) {
            (None, _) => MethodSet::from(&[MethodKind::PublicKey][..]),
            (Some(_), false) => MethodSet::from(
                &[
                    MethodKind::PublicKey,
                    MethodKind::Password,
                    MethodKind::KeyboardInteractive,
                ][..],
            ),
            (Some(_), true) => {
                MethodSet::from(&[MethodKind::PublicKey, MethodKind::KeyboardInteractive][..])
            }
        };
        let hosts: Vec<Arc<crate::server::Host>> = host_keys
            .into_iter()
            .zip(&faults)
            .enumerate()
            .map(|(index, (keys, fault))| {
                Arc::new(crate::server::Host {
                    shell: ShellHost {
                        name: layout::host_name(index),
                        pid: pid_of(index),
                    },
                    behaviour: HostBehaviour {
                        fault: fault.clone(),
                    },
                    config: Arc::new(server_config(keys.served, keys.cert, methods.clone())),
                    counters: Arc::new(HostCounters::default()),
                })
            })
            .collect();
        let counters: Vec<Arc<HostCounters>> = hosts.iter().map(|h| h.counters.clone()).collect();

        let turned_away = Arc::new(AtomicU64::new(0));
        let listening = Listening {
            listen,
            addrs,
            port,
            hosts,
            turned_away: turned_away.clone(),
        };

        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<u16, SimError>>();
        let thread = std::thread::Builder::new()
            .name("fleetsh-sim".into())
            .spawn(move || sim_thread(listening, threads, shared, shutdown_rx, ready_tx))
            .map_err(|source| SimError::Runtime { source })?;
        let control = Control {
            shutdown: shutdown_tx,
            thread,
        };

        let bound = ready_rx.recv().unwrap_or_else(|_| {
            Err(SimError::Runtime {
                source: std::io::Error::other("the sim thread ended before binding"),
            })
        });
        let port = match bound {
            Ok(port) => port,
            Err(e) => {
                control.stop();
                return Err(e);
            }
        };

        let hosts: Vec<SimHost> = layout::addresses(addr_base, count)?
            .into_iter()
            .enumerate()
            .map(|(index, ip)| SimHost {
                index,
                name: layout::host_name(index),
                addr: SocketAddr::V4(SocketAddrV4::new(ip, port)),
            })
            .collect();
        let host_ca = host_ca.map(|ca| ca.public_key().clone());
        if let Err(e) = state::write_all(
            &state_dir,
            &hosts,
            &host_publics,
            &client_key,
            host_ca.as_ref(),
        ) {
            control.stop();
            return Err(e);
        }
        let faulty = faults.iter().filter(|f| f.is_some()).count();
        tracing::info!(hosts = count, faulty, port, %listen, state_dir = %state_dir.display(), "sim fleet started");
        Ok(SimFleet {
            hosts,
            port,
            listen,
            state_dir,
            host_keys: host_publics,
            client_key: client_key.public_key().clone(),
            faults,
            counters,
            turned_away,
            control: Some(control),
            temp_dir: None,
        })
    }

    /// Starts `config` with its state files in a new directory of the system's temporary
    /// directory (`config.state_dir` is ignored), removed when the fleet stops: for tests,
    /// doctests and examples, several of which may run at once. Use `port: 0` in `config` so
    /// that they do not compete for a port.
    ///
    /// ```
    /// use fleetsh_sim::{SimConfig, SimFleet};
    ///
    /// let fleet = SimFleet::start_temp(SimConfig { count: 3, port: 0, ..SimConfig::default() })?;
    /// let hosts = std::fs::read_to_string(fleet.hosts_file())?;
    /// assert_eq!(hosts.lines().count(), 3);
    /// let dir = fleet.state_dir().to_path_buf();
    /// fleet.stop();
    /// assert!(!dir.exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start_temp(config: SimConfig) -> Result<SimFleet, SimError> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let base = std::env::temp_dir();
        let mut tries = 0;
        let dir = loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = base.join(format!("fleetsh-sim-{}-{n}", std::process::id()));
            match std::fs::create_dir(&dir) {
                Ok(()) => break dir,
                // Left by an earlier process with the same id: try the next name.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 1000 => {
                    tries += 1;
                }
                Err(source) => return Err(SimError::StateWrite { path: dir, source }),
            }
        };
        match SimFleet::start(SimConfig {
            state_dir: dir.clone(),
            ..config
        }) {
            Ok(mut fleet) => {
                fleet.temp_dir = Some(dir);
                Ok(fleet)
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    /// The hosts, in index order.
    pub fn hosts(&self) -> &[SimHost] {
        &self.hosts
    }

    /// The port every host listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How the hosts listen: [`Listen::PerHost`] or [`Listen::OneSocket`] (never
    /// [`Listen::Auto`], which the start resolved by the host count).
    pub fn listen(&self) -> Listen {
        self.listen
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// `state_dir/hosts`: one `IP:port` target per line.
    pub fn hosts_file(&self) -> PathBuf {
        self.state_dir.join(state::HOSTS)
    }

    /// `state_dir/known_hosts`: one OpenSSH `known_hosts` line per host.
    pub fn known_hosts_file(&self) -> PathBuf {
        self.state_dir.join(state::KNOWN_HOSTS)
    }

    /// `state_dir/known_hosts_ca`: with [`SimConfig::host_ca`], the one `known_hosts` line
    /// that trusts the host CA for every host, `@cert-authority * ssh-ed25519 AAAA...`.
    /// Without a host CA the fleet removes it (the path is returned all the same).
    pub fn known_hosts_ca_file(&self) -> PathBuf {
        self.state_dir.join(state::KNOWN_HOSTS_CA)
    }

    /// `state_dir/id_ed25519`: the client key the fleet accepts (`id_ed25519.pub` beside it).
    pub fn client_key_file(&self) -> PathBuf {
        self.state_dir.join(state::CLIENT_KEY)
    }

    /// `state_dir/id_ed25519-cert.pub`: where a certificate of the client key goes for
    /// clients that look beside the key (OpenSSH does). The fleet never writes it; a test
    /// does, with [`testing::write_cert`](crate::testing::write_cert).
    pub fn client_cert_file(&self) -> PathBuf {
        self.state_dir.join(state::CLIENT_CERT)
    }

    /// `state_dir/root/<host name>` (`root/sim00001` for index 0): the real directory
    /// host `index` serves as `/` over SFTP, so a test can see what arrived on each host.
    ///
    /// It is created on the host's first SFTP session, not at start, so it may not exist
    /// yet. The path is computed from the index alone, also for an index beyond the fleet.
    pub fn host_root(&self, index: usize) -> PathBuf {
        self.state_dir
            .join(state::ROOTS)
            .join(layout::host_name(index))
    }

    /// The public half of the client key the fleet accepts.
    pub fn client_public_key(&self) -> &PublicKey {
        &self.client_key
    }

    /// The host key of host `index`, as written to `known_hosts`.
    pub fn host_public_key(&self, index: usize) -> Option<&PublicKey> {
        self.host_keys.get(index)
    }

    /// The fault of host `index` (`None`: a healthy host, or no such host).
    ///
    /// Faults come from [`SimConfig::faults`], assigned deterministically from the seed
    /// (see [`parse_faults`](crate::parse_faults) for the assignment rule).
    pub fn fault_of(&self, index: usize) -> Option<&Fault> {
        self.faults.get(index).and_then(Option::as_ref)
    }

    /// How many TCP connections host `index` has accepted so far, on its own listener or
    /// on the fleet's one socket at its address (every one, also those a fault refuses at
    /// once, and those that came through a bastion's tunnel); 0 for no such host.
    pub fn connections_accepted(&self, index: usize) -> u64 {
        self.counters
            .get(index)
            .map_or(0, |c| c.accepted.load(Ordering::Relaxed))
    }

    /// How many of the TCP connections host `index` accepted are still open
    /// (accepted, and the server's side of the connection not yet ended); 0 for no such
    /// host. A connection the client closes counts as closed once the server has seen it
    /// close, shortly after.
    pub fn connections_open(&self, index: usize) -> u64 {
        self.counters.get(index).map_or(0, |c| {
            // `closed` first: a connection accepted in between can only add to the count.
            let closed = c.closed.load(Ordering::Relaxed);
            c.accepted.load(Ordering::Relaxed).saturating_sub(closed)
        })
    }

    /// How many commands host `index` has been sent so far (exec requests accepted); 0 for no
    /// such host.
    pub fn commands_run(&self, index: usize) -> u64 {
        self.counters
            .get(index)
            .map_or(0, |c| c.commands.load(Ordering::Relaxed))
    }

    /// How many connections the fleet's one socket ([`Listen::OneSocket`]) has reset so far
    /// because they arrived on an address (or port) that is no host's: `127.0.0.1`, a
    /// loopback address beyond the fleet, one of the machine's other addresses. Always 0
    /// with a socket per host, where the kernel refuses such connections itself.
    pub fn connections_turned_away(&self) -> u64 {
        self.turned_away.load(Ordering::Relaxed)
    }

    /// How many `direct-tcpip` channels host `index` has opened as a bastion so far
    /// (accepted and connected to their target; refused ones do not count); 0 for no
    /// such host.
    pub fn tunnels_opened(&self, index: usize) -> u64 {
        self.counters
            .get(index)
            .map_or(0, |c| c.tunnels.load(Ordering::Relaxed))
    }

    /// Stops the fleet: listeners close, live sessions are disconnected (given up to 2 s to
    /// go), and the sim's threads are joined. Blocks the calling thread meanwhile.
    pub fn stop(mut self) {
        self.shut_down();
    }

    /// Stops the sim and removes a state directory it made for itself.
    fn shut_down(&mut self) {
        if let Some(control) = self.control.take() {
            control.stop();
        }
        if let Some(dir) = self.temp_dir.take()
            && let Err(e) = std::fs::remove_dir_all(&dir)
        {
            tracing::warn!(
                "cannot remove the sim's state directory {}: {e}",
                dir.display()
            );
        }
    }
}

impl Drop for SimFleet {
    fn drop(&mut self) {
        self.shut_down();
    }
}

impl Control {
    /// Raises the shutdown flag and joins the sim thread.
    fn stop(self) {
        let _ = self.shutdown.send(true);
        if self.thread.join().is_err() {
            tracing::error!("the sim thread panicked");
        }
    }
}

/// `$$` of host `index`'s shell: any stable, plausible number.
fn pid_of(index: usize) -> u32 {
    1000 + (index % 30_000) as u32
}

/// The russh server config of one host (russh advertises the certificate's algorithm,
/// ahead of the plain key's, when there is one).
fn server_config(key: PrivateKey, cert: Option<Certificate>, methods: MethodSet) -> server::Config {
    server::Config {
        server_id: SshId::Standard(
            concat!("SSH-2.0-fleetsh_sim_", env!("CARGO_PKG_VERSION")).into(),
        ),
        methods,
        // Rejections answer fast so auth-failure tests (and runs) do not wait.
        auth_rejection_time: Duration::from_millis(5),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![key],
        certificates: cert.into_iter().collect(),
        inactivity_timeout: Some(Duration::from_secs(600)),
        nodelay: true,
        ..Default::default()
    }
}

/// One host's keys.
struct HostKeys {
    /// The key `known_hosts` lists.
    listed: PublicKey,
    /// The key the host serves (another one for `hostkey-mismatch`).
    served: PrivateKey,
    /// Its certificate, if any.
    cert: Option<Certificate>,
}

/// Derives the host keys and, with a CA, signs their certificates, on up to `threads`
/// threads (each key costs a scalar multiplication, each certificate a signature).
fn derive_host_keys(
    seed: u64,
    addrs: &[Ipv4Addr],
    faults: &[Option<Fault>],
    ca: Option<(&PrivateKey, std::ops::Range<SystemTime>)>,
    threads: usize,
) -> Result<Vec<HostKeys>, SimError> {
    let one = |index: usize| -> Result<HostKeys, SimError> {
        let key = keys::host_key(seed, index);
        let listed = key.public_key().clone();
        let mismatch = matches!(faults.get(index), Some(Some(Fault::HostkeyMismatch)));
        let served = if mismatch {
            keys::mismatch_host_key(seed, index)
        } else {
            key
        };
        // A mismatch host's other key is not certified.
        let cert = match (&ca, addrs.get(index)) {
            (Some((ca, valid)), Some(ip)) if !mismatch => Some(crate::testing::make_host_cert(
                ca,
                served.public_key(),
                &[&ip.to_string(), &layout::host_name(index)],
                valid.clone(),
            )?),
            _ => None,
        };
        Ok(HostKeys {
            listed,
            served,
            cert,
        })
    };
    let count = addrs.len();
    let workers = threads
        .max(std::thread::available_parallelism().map_or(1, |n| n.get()))
        .min(count.div_ceil(256))
        .max(1);
    if workers == 1 {
        return (0..count).map(one).collect();
    }
    let per = count.div_ceil(workers);
    std::thread::scope(|scope| {
        let parts: Vec<_> = (0..workers)
            .map(|w| {
                let range = (w * per)..((w + 1) * per).min(count);
                let one = &one;
                scope.spawn(move || range.map(one).collect::<Result<Vec<_>, _>>())
            })
            .collect();
        let mut all = Vec::with_capacity(count);
        for part in parts {
            match part.join() {
                Ok(keys) => all.extend(keys?),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok(all)
    })
}

/// What the sim thread binds and serves: every host's address, the port asked for, and
/// each host, listening per host or on one socket.
struct Listening {
    /// [`Listen::PerHost`] or [`Listen::OneSocket`].
    listen: Listen,
    /// Host `i`'s address.
    addrs: Vec<Ipv4Addr>,
    /// The port asked for (0: any free port).
    port: u16,
    /// Host `i`, served at `addrs[i]`.
    hosts: Vec<Arc<crate::server::Host>>,
    /// The one socket's count of connections to no host's address.
    turned_away: Arc<AtomicU64>,
}

/// The body of the `fleetsh-sim` thread: runtime, listeners, accept loops, then shutdown.
fn sim_thread(
    listening: Listening,
    threads: usize,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    ready: std::sync::mpsc::Sender<Result<u16, SimError>>,
) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("fleetsh-sim-worker")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(source) => {
            let _ = ready.send(Err(SimError::Runtime { source }));
            return;
        }
    };

    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let started = runtime.block_on(async {
        let Listening {
            listen,
            addrs,
            port,
            hosts,
            turned_away,
        } = listening;
        let lifeline = Lifeline {
            shutdown: shutdown.clone(),
            _alive: alive_tx,
        };
        if listen == Listen::OneSocket {
            let (port, listener) = bind_wildcard(port)?;
            let _ = shared.directory.set(Directory::new(&addrs, port));
            let route = Route::Fleet {
                hosts: hosts.into(),
                turned_away,
            };
            tokio::spawn(accept_loop(listener, route, shared.clone(), lifeline));
            return Ok(port);
        }
        let (port, listeners) = bind_all(&addrs, port)?;
        let _ = shared.directory.set(Directory::new(&addrs, port));
        for (listener, host) in listeners.into_iter().zip(hosts) {
            tokio::spawn(accept_loop(
                listener,
                Route::Host(host),
                shared.clone(),
                lifeline.clone(),
            ));
        }
        Ok(port)
    });
    let failed = started.is_err();
    let _ = ready.send(started);

    if !failed {
        runtime.block_on(async {
            // Shutdown, in order:
            // 1. wait for the flag (or for the SimFleet to be gone);
            // 2. accept loops return; connection tasks send a disconnect and return;
            // 3. wait until every task holding a lifeline has returned, at most GRACE;
            // 4. drop the runtime, which cancels what is left (sessions, exec tasks).
            let _ = shutdown.wait_for(|stop| *stop).await;
            let _ = tokio::time::timeout(GRACE, alive_rx.recv()).await;
        });
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
}

/// Binds one listener per address on `port` (0: a port the kernel picks, the same for all).
fn bind_all(addrs: &[Ipv4Addr], port: u16) -> Result<(u16, Vec<TcpListener>), SimError> {
    let bind_err = |ip: Ipv4Addr, port: u16, source| SimError::Bind {
        addr: SocketAddr::V4(SocketAddrV4::new(ip, port)),
        source,
    };
    if port != 0 {
        let listeners = addrs
            .iter()
            .map(|&ip| bind_one(SocketAddrV4::new(ip, port)).map_err(|e| bind_err(ip, port, e)))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok((port, listeners));
    }
    let Some((&first_ip, rest)) = addrs.split_first() else {
        return Err(SimError::BadCount { count: 0 });
    };
    'tries: for _ in 0..PORT_TRIES {
        let first = match bind_one(SocketAddrV4::new(first_ip, 0)) {
            Ok(listener) => listener,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(bind_err(first_ip, 0, e)),
        };
        let port = first
            .local_addr()
            .map_err(|e| bind_err(first_ip, 0, e))?
            .port();
        let mut listeners = Vec::with_capacity(addrs.len());
        listeners.push(first);
        for &ip in rest {
            match bind_one(SocketAddrV4::new(ip, port)) {
                Ok(listener) => listeners.push(listener),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    tracing::debug!(%ip, port, "port taken on one host address; trying another port");
                    continue 'tries;
                }
                Err(e) => return Err(bind_err(ip, port, e)),
            }
        }
        return Ok((port, listeners));
    }
    Err(SimError::NoCommonPort {
        count: addrs.len(),
        tries: PORT_TRIES,
    })
}

/// Binds the one socket every host shares, `0.0.0.0:port` (0: a port the kernel picks,
/// retried when another socket takes it between bind and listen), restricted to the
/// loopback interface where the system allows it.
///
/// `SO_REUSEADDR` does not let it share a port with a listener on any other address (nor
/// another socket share it), and no `SO_REUSEPORT` is set: a taken port fails the bind.
fn bind_wildcard(port: u16) -> Result<(u16, TcpListener), SimError> {
    let bind_err = |port: u16, source| SimError::Bind {
        addr: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)),
        source,
    };
    let mut tries = 0;
    loop {
        let bound = bind_socket(
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port),
            ONE_SOCKET_BACKLOG,
            true,
        );
        match bound {
            Ok(listener) => {
                let port = listener.local_addr().map_err(|e| bind_err(port, e))?.port();
                return Ok((port, listener));
            }
            Err(e)
                if port == 0
                    && e.kind() == std::io::ErrorKind::AddrInUse
                    && tries + 1 < PORT_TRIES =>
            {
                tries += 1;
            }
            Err(e) => return Err(bind_err(port, e)),
        }
    }
}

/// One host's own listener: see [`bind_socket`].
fn bind_one(addr: SocketAddrV4) -> std::io::Result<TcpListener> {
    bind_socket(addr, BACKLOG, false)
}

/// One listener with `SO_REUSEADDR` (so a restart on a fixed port does not trip over
/// connections in TIME_WAIT) and a deep accept queue; with `loopback_only`, bound to the
/// loopback interface where the system allows it (packets from other interfaces then never
/// reach it), which is logged and skipped where it does not.
fn bind_socket(
    addr: SocketAddrV4,
    backlog: u32,
    loopback_only: bool,
) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    if loopback_only {
        restrict_to_loopback(&socket);
    }
    socket.bind(addr.into())?;
    socket.listen(backlog)
}

/// Binds `socket` to the loopback interface (`SO_BINDTODEVICE lo`), if the system lets it;
/// the one socket checks every connection's local address either way.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
fn restrict_to_loopback(socket: &TcpSocket) {
    if let Err(e) = socket.bind_device(Some(LOOPBACK_DEVICE)) {
        tracing::info!(
            "cannot bind the sim's socket to the loopback interface ({e}); connections on \
             other addresses are still reset at once"
        );
    }
}

/// No interface binding here: the one socket checks every connection's local address.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "fuchsia")))]
fn restrict_to_loopback(_socket: &TcpSocket) {}
