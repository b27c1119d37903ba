//! Jump hosts (bastions): one SSH connection per bastion carries the `direct-tcpip` tunnels of
//! every host behind it.
//!
//! Bastion connections live on their own thread and current-thread runtime (the "jump
//! thread"), not on a shard: every shard's hosts share them, and a shard finishing its part of
//! a run does not take a bastion down with it. A shard opens a tunnel through the bastion's
//! handle (russh handles and channel streams are message queues, usable from any runtime),
//! then runs the target's own SSH handshake over it on the shard's runtime, so each target is
//! still authenticated and host-key checked end to end.
//!
//! Multi-hop (`-J b1,b2`): `b2` is reached through a tunnel on `b1`'s connection, the target
//! through `b2`'s. Each prefix of a chain is one shared connection. A bastion that cannot be
//! reached fails every host behind it at once with a `jump` error naming it (the outcome is
//! kept for the run, not retried per host); a bastion lost later fails the hosts that still
//! need it the same way.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleetsh_core::{ErrorKind, HostError, HostTarget};
use parking_lot::Mutex;
use russh::ChannelStream;
use russh::client;
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};

use super::auth::agent::AgentPool;
use super::dial::{self, Link, Phase, Progress};
use super::handler::{Handle, describe};
use super::session::{Client, Peer};
use super::settings::{HostPlan, SshSettings};

/// Default cap on tunnels open at once through one bastion.
pub const DEFAULT_JUMP_FANOUT: usize = 256;

type Bastion = Arc<BastionConn>;
type BastionHandle = Arc<Handle>;
type Pending<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<BastionHandle, HostError>> + Send + 'a>,
>;

struct BastionConn {
    name: String,
    conn: OnceCell<Result<BastionHandle, HostError>>,
    permits: Arc<Semaphore>,
}

/// How a bastion named in a chain is reached: its ssh_config settings, as `ssh -J alias` uses
/// them (`HostName`, `User`, `Port`, `IdentityFile`, known_hosts).
pub trait BastionPlans: Send + Sync {
    /// The plan for one hop as written in the chain (`[user@]alias[:port]`; what the hop
    /// names itself wins over its ssh_config).
    fn plan(&self, hop: &HostTarget) -> Result<HostPlan, HostError>;
}

/// A run's (or a connected fleet's) bastion connections: the `-J` chain every host uses, and
/// the chains ssh_config's `ProxyJump` gives some hosts (each distinct chain has its own
/// connections, made when a host first needs them).
pub struct Jumps {
    default: Option<Arc<Chain>>,
    /// Bastions' ssh_config settings, when there is an ssh_config.
    plans: Option<Arc<dyn BastionPlans>>,
    chains: Mutex<HashMap<String, Result<Arc<Chain>, HostError>>>,
    fanout: usize,
    runtime: OnceCell<Result<tokio::runtime::Handle, HostError>>,
    /// Dropping it stops the jump thread (and with it every bastion connection).
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

/// One chain of bastions, first hop first, and its connections (one per hop).
struct Chain {
    hops: Arc<[HostTarget]>,
    bastions: Mutex<HashMap<usize, Bastion>>,
}

impl Chain {
    fn new(hops: Vec<HostTarget>) -> Arc<Chain> {
        Arc::new(Chain {
            hops: hops.into(),
            bastions: Mutex::new(HashMap::new()),
        })
    }
}

impl std::fmt::Debug for Jumps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jumps")
            .field("default", &self.default.as_ref().map(|c| &c.hops))
            .field("fanout", &self.fanout)
            .finish_non_exhaustive()
    }
}

/// Parses a `-J` / `ProxyJump` chain: `[user@]host[:port][,...]`.
pub fn parse_chain(spec: &str) -> Result<Vec<HostTarget>, String> {
    let mut chain = Vec::new();
    for hop in spec.split(',') {
        let hop = hop.trim();
        if hop.is_empty() {
            return Err(format!("{spec:?} has an empty hop"));
        }
        chain.push(hop.parse::<HostTarget>().map_err(|e| e.to_string())?);
    }
    Ok(chain)
}

impl Drop for Jumps {
    fn drop(&mut self) {
        // Ends the jump thread's runtime: bastion sessions close with it.
        self.stop.lock().take();
    }
}

/// How bastions are connected to: the engine's settings (default user, keys, known_hosts),
/// and the connect timeout of the job that first needs each one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reach<'a> {
    pub settings: &'a Arc<SshSettings>,
    pub connect_timeout: Duration,
}

/// Connects and authenticates to bastion `target` over `over` (a tunnel through the hop
/// before it), else by TCP. Runs on the jump thread, with agent connections of its own.
async fn connect_bastion(
    settings: &SshSettings,
    plan: &HostPlan,
    target: &HostTarget,
    over: Option<ChannelStream<client::Msg>>,
) -> Result<BastionHandle, HostError> {
    let agent = settings
        .auth
        .agent
        .clone()
        .map(|p| AgentPool::new(p, settings.auth.agent_concurrency));
    let client = Client {
        settings,
        agent: agent.as_ref(),
        opens_session: false,
    };
    let peer = Peer {
        target,
        profile: &plan.profile,
    };
    let mut progress = Progress::new(Instant::now(), Phase::Tcp);
    let handle = match over {
        Some(stream) => {
            progress.connected();
            client
                .establish(peer, Link::unknown_path(stream), &mut progress)
                .await?
        }
        None => {
            let link = dial::tcp(&target.host, target.port.unwrap_or(22), &mut progress).await?;
            client.establish(peer, link, &mut progress).await?
        }
    };
    Ok(Arc::new(handle))
}

/// A tunnel to a target and the permit that counts it against the bastion's cap.
pub(crate) struct Tunnel {
    pub stream: ChannelStream<client::Msg>,
    pub permit: OwnedSemaphorePermit,
}

impl Jumps {
    /// Bastions `chain` (first hop first; empty: no jump) with at most `fanout` tunnels open
    /// at once through each. Nothing starts until the first tunnel is asked for.
    pub fn new(chain: Vec<HostTarget>, fanout: usize) -> Self {
        Jumps {
            default: (!chain.is_empty()).then(|| Chain::new(chain)),
            plans: None,
            chains: Mutex::new(HashMap::new()),
            fanout: fanout.max(1),
            runtime: OnceCell::new(),
            stop: Mutex::new(None),
        }
    }

    /// Bastions are reached with their ssh_config settings from `plans`.
    pub fn with_plans(mut self, plans: Arc<dyn BastionPlans>) -> Self {
        self.plans = Some(plans);
        self
    }

    /// True when every host is reached through the `-J` bastions.
    pub fn is_active(&self) -> bool {
        self.default.is_some()
    }

    /// The chain for a host: its `ProxyJump` (`spec`) if any, else `-J`, else none (direct).
    fn chain(&self, spec: Option<&str>) -> Result<Option<Arc<Chain>>, HostError> {
        let Some(spec) = spec else {
            return Ok(self.default.clone());
        };
        self.chains
            .lock()
            .entry(spec.to_string())
            .or_insert_with(|| {
                parse_chain(spec).map(Chain::new).map_err(|e| {
                    HostError::new(ErrorKind::Jump, format!("bad ProxyJump {spec:?}: {e}"))
                })
            })
            .clone()
            .map(Some)
    }

    async fn runtime(&self) -> Result<tokio::runtime::Handle, HostError> {
        self.runtime
            .get_or_init(|| async {
                let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                let (htx, hrx) = std::sync::mpsc::sync_channel(1);
                let spawned = std::thread::Builder::new()
                    .name("fleetsh-jump".into())
                    .spawn(move || {
                        let rt = match tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                        {
                            Ok(rt) => rt,
                            Err(e) => {
                                let _ = htx.send(Err(e.to_string()));
                                return;
                            }
                        };
                        let _ = htx.send(Ok(rt.handle().clone()));
                        // Runs bastion sessions until the Jumps is dropped.
                        rt.block_on(async {
                            let _ = rx.await;
                        });
                    });
                if let Err(e) = spawned {
                    return Err(HostError::new(
                        ErrorKind::Internal,
                        format!("cannot start the jump thread: {e}"),
                    ));
                }
                *self.stop.lock() = Some(tx);
                match hrx.recv() {
                    Ok(Ok(h)) => Ok(h),
                    Ok(Err(e)) => Err(HostError::new(
                        ErrorKind::Internal,
                        format!("cannot build the jump runtime: {e}"),
                    )),
                    Err(_) => Err(HostError::new(
                        ErrorKind::Internal,
                        "the jump thread exited at start",
                    )),
                }
            })
            .await
            .clone()
    }

    fn bastion(&self, chain: &Chain, hop: usize) -> Bastion {
        chain
            .bastions
            .lock()
            .entry(hop)
            .or_insert_with(|| {
                Arc::new(BastionConn {
                    name: chain
                        .hops
                        .get(hop)
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    conn: OnceCell::new(),
                    permits: Arc::new(Semaphore::new(self.fanout)),
                })
            })
            .clone()
    }

    /// The connection to hop `hop` of `chain`, made once (on the jump thread) and shared.
    fn connection<'a>(&'a self, how: &'a Reach<'a>, chain: &'a Chain, hop: usize) -> Pending<'a> {
        Box::pin(async move {
            let b = self.bastion(chain, hop);
            let got = b
                .conn
                .get_or_init(|| async {
                    let written = chain.hops.get(hop).cloned().ok_or_else(|| {
                        HostError::new(ErrorKind::Internal, "jump chain index out of range")
                    })?;
                    let plan = match &self.plans {
                        Some(p) => p.plan(&written)?,
                        None => HostPlan::default(),
                    };
                    let target = how.settings.fill_bastion(&written, &plan);
                    // The hop before this one carries it, if any.
                    let over = if hop == 0 {
                        None
                    } else {
                        let prev = self.connection(how, chain, hop - 1).await?;
                        let port = target.port.unwrap_or(22);
                        let ch = prev
                            .channel_open_direct_tcpip(
                                target.host.clone(),
                                u32::from(port),
                                "127.0.0.1",
                                0,
                            )
                            .await
                            .map_err(|e| {
                                HostError::new(
                                    ErrorKind::Jump,
                                    format!(
                                        "bastion {} cannot reach bastion {target}: {}",
                                        chain
                                            .hops
                                            .get(hop - 1)
                                            .map(ToString::to_string)
                                            .unwrap_or_default(),
                                        describe(&e)
                                    ),
                                )
                            })?;
                        Some(ch.into_stream())
                    };
                    let rt = self.runtime().await?;
                    let settings = how.settings.clone();
                    let timeout = how.connect_timeout;
                    let name = b.name.clone();
                    let task = rt.spawn(async move {
                        let r = tokio::time::timeout(
                            timeout,
                            connect_bastion(&settings, &plan, &target, over),
                        )
                        .await;
                        match r {
                            Ok(r) => r,
                            Err(_) => Err(HostError::new(
                                ErrorKind::ConnectTimeout,
                                format!("no connection within {timeout:?}"),
                            )),
                        }
                    });
                    match task.await {
                        Ok(Ok(h)) => Ok(h),
                        Ok(Err(e)) if e.kind == ErrorKind::Jump => Err(e),
                        Ok(Err(e)) => Err(HostError::new(
                            ErrorKind::Jump,
                            format!("bastion {name}: {}: {}", e.kind, e.message),
                        )),
                        Err(e) => Err(HostError::new(
                            ErrorKind::Internal,
                            format!("bastion {name}: connection task failed: {e}"),
                        )),
                    }
                })
                .await;
            got.clone()
        })
    }

    /// A tunnel to `host:port` through the host's chain (`spec`: its `ProxyJump`; `None`:
    /// the `-J` chain). `Ok(None)`: the host is reached directly.
    pub(crate) async fn tunnel(
        &self,
        how: &Reach<'_>,
        spec: Option<&str>,
        host: &str,
        port: u16,
    ) -> Result<Option<Tunnel>, HostError> {
        let Some(chain) = self.chain(spec)? else {
            return Ok(None);
        };
        let last = chain.hops.len().saturating_sub(1);
        let conn = self.connection(how, &chain, last).await?;
        let b = self.bastion(&chain, last);
        let permit = b.permits.clone().acquire_owned().await.map_err(|_| {
            HostError::new(ErrorKind::Internal, "the bastion's tunnel limit was closed")
        })?;
        if conn.is_closed() {
            return Err(HostError::new(
                ErrorKind::Jump,
                format!("connection to bastion {} lost", b.name),
            ));
        }
        let ch = conn
            .channel_open_direct_tcpip(host.to_string(), u32::from(port), "127.0.0.1", 0)
            .await
            .map_err(|e| {
                let why = if conn.is_closed() {
                    "connection to the bastion lost".to_string()
                } else {
                    describe(&e)
                };
                HostError::new(
                    ErrorKind::Jump,
                    format!(
                        "bastion {} cannot open a tunnel to {host}:{port}: {why}",
                        b.name
                    ),
                )
            })?;
        Ok(Some(Tunnel {
            stream: ch.into_stream(),
            permit,
        }))
    }

    /// Whether the last bastion of the host's chain is known to be lost (to name the cause
    /// when a tunnelled connection drops).
    pub(crate) fn lost(&self, spec: Option<&str>) -> Option<String> {
        let chain = self.chain(spec).ok()??;
        let last = chain.hops.len().checked_sub(1)?;
        let b = chain.bastions.lock().get(&last).cloned()?;
        match b.conn.get() {
            Some(Ok(h)) if h.is_closed() => Some(b.name.clone()),
            _ => None,
        }
    }
}
