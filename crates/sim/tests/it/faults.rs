//! Every fault kind of the simulated fleet, as a client sees it.

use super::*;
use tokio::io::AsyncReadExt;

/// One host of each fault in a 10-host fleet (10% each), one healthy host.
fn start_faulty(config: impl FnOnce(&mut SimConfig)) -> (tempfile::TempDir, SimFleet) {
    start_with(|c| {
        c.count = 10;
        c.password = Some("pw".into());
        c.faults = fleetsh_sim::parse_faults(
            "refuse=10,silent=10,slow-banner:500=10,auth-fail=10,hostkey-mismatch=10,\
             drop=10,hang=10,flood=10,exit:7=10",
        )
        .unwrap();
        config(c);
    })
}

/// The address of the host with a fault of this kind (`None`: the healthy one).
fn host_with(fleet: &SimFleet, kind: Option<&str>) -> SocketAddr {
    let index = (0..fleet.hosts().len())
        .find(|&i| fleet.fault_of(i).map(Fault::kind) == kind)
        .unwrap_or_else(|| panic!("no host with {kind:?}"));
    fleet.hosts()[index].addr
}

/// The host key of the host at `addr` in known_hosts.
fn known_key(fleet: &SimFleet, addr: SocketAddr) -> KeyData {
    known_hosts(fleet)[&format!("[{}]:{}", addr.ip(), addr.port())].clone()
}

#[test]
fn each_host_has_at_most_one_fault() {
    let (_dir, fleet) = start_faulty(|_| {});
    let mut kinds: Vec<_> = (0..10)
        .map(|i| fleet.fault_of(i).map_or("healthy", Fault::kind))
        .collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            "auth-fail",
            "drop",
            "exit",
            "flood",
            "hang",
            "healthy",
            "hostkey-mismatch",
            "refuse",
            "silent",
            "slow-banner"
        ]
    );
    assert_eq!(fleet.fault_of(10), None);
    // Deterministic: the same seed gives the same hosts.
    let (_dir2, again) = start_faulty(|_| {});
    for i in 0..10 {
        assert_eq!(fleet.fault_of(i), again.fault_of(i));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuse_closes_before_the_banner() {
    let (_dir, fleet) = start_faulty(|_| {});
    let addr = host_with(&fleet, Some("refuse"));
    let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), raw.read(&mut buf))
        .await
        .expect("no close")
        .unwrap_or(0);
    assert_eq!(n, 0, "got {:?}", &buf[..n]);
    let result = client::connect(
        client_config(),
        addr,
        Client {
            expected: known_key(&fleet, addr),
        },
    )
    .await;
    assert!(result.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sends_nothing() {
    let (_dir, fleet) = start_faulty(|_| {});
    let mut buf = [0u8; 64];
    // A healthy host sends its banner at once.
    let mut healthy = tokio::net::TcpStream::connect(host_with(&fleet, None))
        .await
        .unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), healthy.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(buf[..n].starts_with(b"SSH-2.0-"));
    let mut raw = tokio::net::TcpStream::connect(host_with(&fleet, Some("silent")))
        .await
        .unwrap();
    let read = tokio::time::timeout(Duration::from_millis(300), raw.read(&mut buf)).await;
    assert!(read.is_err(), "the silent host sent {read:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_banner_comes_late() {
    let (_dir, fleet) = start_faulty(|_| {});
    let addr = host_with(&fleet, Some("slow-banner"));
    assert_eq!(
        fleet.fault_of(fleet.hosts().iter().position(|h| h.addr == addr).unwrap()),
        Some(&Fault::SlowBanner(Duration::from_millis(500)))
    );
    let started = std::time::Instant::now();
    let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 64];
    let n = raw.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"SSH-2.0-"));
    assert!(started.elapsed() >= Duration::from_millis(500));
    // The session works after the wait.
    let session = login(&fleet, addr).await;
    assert_eq!(exec(&session, "echo ok", usize::MAX).await.stdout, b"ok\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_fail_rejects_everything() {
    let (_dir, fleet) = start_faulty(|_| {});
    let addr = host_with(&fleet, Some("auth-fail"));
    let mut session = connect(addr, known_key(&fleet, addr)).await;
    let key = russh::keys::load_secret_key(fleet.client_key_file(), None).unwrap();
    let auth = session
        .authenticate_publickey("root", PrivateKeyWithHashAlg::new(Arc::new(key), None))
        .await
        .unwrap();
    assert!(!auth.success());
    let auth = session.authenticate_password("root", "pw").await.unwrap();
    assert!(!auth.success());
    // The healthy host takes the same credentials.
    let mut healthy = connect(
        host_with(&fleet, None),
        known_key(&fleet, host_with(&fleet, None)),
    )
    .await;
    assert!(
        healthy
            .authenticate_password("root", "pw")
            .await
            .unwrap()
            .success()
    );
}

/// Accepts any host key and remembers it.
struct Recorder(Arc<std::sync::Mutex<Option<KeyData>>>);

impl client::Handler for Recorder {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        if let PublicKeyOrCertificate::PublicKey { key, .. } = key {
            *self.0.lock().unwrap() = Some(key.key_data().clone());
        }
        Ok(true)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostkey_mismatch_serves_another_key() {
    let (_dir, fleet) = start_faulty(|_| {});
    let addr = host_with(&fleet, Some("hostkey-mismatch"));
    let listed = known_key(&fleet, addr);
    let index = fleet.hosts().iter().position(|h| h.addr == addr).unwrap();
    assert_eq!(&listed, fleet.host_public_key(index).unwrap().key_data());
    // A client checking known_hosts refuses it.
    assert!(
        client::connect(
            client_config(),
            addr,
            Client {
                expected: listed.clone()
            }
        )
        .await
        .is_err()
    );
    let seen = Arc::new(std::sync::Mutex::new(None));
    let _session = client::connect(client_config(), addr, Recorder(seen.clone()))
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone().expect("no host key seen");
    assert_ne!(seen, listed);
    // The same other key every time.
    let again = Arc::new(std::sync::Mutex::new(None));
    let _session = client::connect(client_config(), addr, Recorder(again.clone()))
        .await
        .unwrap();
    assert_eq!(again.lock().unwrap().as_ref(), Some(&seen));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_cuts_after_the_first_line() {
    let (_dir, fleet) = start_faulty(|_| {});
    let session = login(&fleet, host_with(&fleet, Some("drop"))).await;
    let out = tokio::time::timeout(
        Duration::from_secs(10),
        exec(&session, "echo first; echo second; sleep 30", usize::MAX),
    )
    .await
    .expect("the connection was not cut");
    assert_eq!(out.stdout, b"first\n");
    assert_eq!((out.status, out.signal), (None, None));
    tokio::time::timeout(Duration::from_secs(5), async {
        while !session.is_closed() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the session is still open");
}

/// Many connections cut at once: each still gets its first line (the cut waits for it
/// to be written, not a fixed time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_keeps_the_first_line_under_load() {
    let (_dir, fleet) = start_with(|c| {
        c.count = 150;
        c.faults = vec![(Fault::Drop, 100.0)];
    });
    let fleet = Arc::new(fleet);
    let tasks: Vec<_> = (0..fleet.hosts().len())
        .map(|i| {
            let fleet = fleet.clone();
            tokio::spawn(async move {
                let session = login(&fleet, fleet.hosts()[i].addr).await;
                exec(&session, "echo first; echo second", usize::MAX).await
            })
        })
        .collect();
    for task in tasks {
        let out = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("a dropped connection did not end")
            .unwrap();
        assert_eq!(out.stdout, b"first\n");
        assert_eq!(out.status, None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_never_exits() {
    let (_dir, fleet) = start_faulty(|_| {});
    let session = login(&fleet, host_with(&fleet, Some("hang"))).await;
    let mut channel = session.channel_open_session().await.unwrap();
    channel.exec(true, "echo out; exit 0").await.unwrap();
    let mut stdout = Vec::new();
    let waited = tokio::time::timeout(Duration::from_millis(300), async {
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Data { data } => stdout.extend_from_slice(&data),
                ChannelMsg::ExitStatus { .. } | ChannelMsg::Eof | ChannelMsg::Close => {
                    panic!("the hung command ended: {msg:?}")
                }
                _ => {}
            }
        }
    })
    .await;
    assert!(waited.is_err(), "the channel ended");
    assert_eq!(stdout, b"out\n");
    session
        .disconnect(russh::Disconnect::ByApplication, "", "")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_writes_until_the_client_goes() {
    let (_dir, fleet) = start_faulty(|_| {});
    let session = login(&fleet, host_with(&fleet, Some("flood"))).await;
    let mut channel = session.channel_open_session().await.unwrap();
    channel.exec(true, "echo start").await.unwrap();
    let mut seen = 0usize;
    let mut first = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while seen <= 1_000_000 {
            match channel.wait().await {
                Some(ChannelMsg::Data { data }) => {
                    seen += data.len();
                    if first.len() < 100 {
                        first.extend_from_slice(&data);
                    }
                }
                Some(ChannelMsg::ExitStatus { .. }) => panic!("the flood ended"),
                Some(_) => {}
                None => panic!("the channel closed"),
            }
        }
    })
    .await
    .expect("less than 1 MB in 20 s");
    assert!(
        first.starts_with(b"start\nfleetsh-sim flood: "),
        "{first:?}"
    );
    drop(channel);
    session
        .disconnect(russh::Disconnect::ByApplication, "", "")
        .await
        .unwrap();
    // The host serves the next client.
    let session = login(&fleet, host_with(&fleet, Some("flood"))).await;
    drop(session);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_forces_the_status() {
    let (_dir, fleet) = start_faulty(|_| {});
    let session = login(&fleet, host_with(&fleet, Some("exit"))).await;
    let out = exec(&session, "echo hi; exit 0", usize::MAX).await;
    assert_eq!(out.stdout, b"hi\n");
    assert_eq!(out.status, Some(7));
    let out = exec(&session, "kill -9 $$", usize::MAX).await;
    assert_eq!((out.status, out.signal), (Some(7), None));
    // The healthy host is unaffected.
    let session = login(&fleet, host_with(&fleet, None)).await;
    assert_eq!(exec(&session, "exit 0", usize::MAX).await.status, Some(0));
}

/// How long opening a channel and running `true` takes on an established session.
async fn round_trip(fleet: &SimFleet) -> Duration {
    let session = login(fleet, fleet.hosts()[0].addr).await;
    let started = std::time::Instant::now();
    let out = exec(&session, "true", usize::MAX).await;
    assert_eq!(out.status, Some(0));
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_delays_replies() {
    let (_dir, far) = start_with(|c| c.latency = Some(Duration::from_millis(150)));
    let (_dir2, near) = start(1, None);
    let far_time = round_trip(&far).await;
    let near_time = round_trip(&near).await;
    // Channel open and exec are two round trips at least.
    assert!(far_time >= Duration::from_millis(300), "{far_time:?}");
    assert!(near_time < far_time, "{near_time:?} vs {far_time:?}");
    // The handshake is delayed too.
    let started = std::time::Instant::now();
    drop(login(&far, far.hosts()[0].addr).await);
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_is_prompt_with_stuck_connections() {
    let (_dir, fleet) = start_faulty(|_| {});
    let _silent = tokio::net::TcpStream::connect(host_with(&fleet, Some("silent")))
        .await
        .unwrap();
    let _slow = tokio::net::TcpStream::connect(host_with(&fleet, Some("slow-banner")))
        .await
        .unwrap();
    let hang = login(&fleet, host_with(&fleet, Some("hang"))).await;
    let hung = hang.channel_open_session().await.unwrap();
    hung.exec(true, "true").await.unwrap();
    let flood = login(&fleet, host_with(&fleet, Some("flood"))).await;
    let mut flooding = flood.channel_open_session().await.unwrap();
    flooding.exec(true, "true").await.unwrap();
    // The flood has started (and is now blocked on the window).
    while !matches!(flooding.wait().await, Some(ChannelMsg::Data { .. })) {}
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = std::time::Instant::now();
    tokio::task::spawn_blocking(move || fleet.stop())
        .await
        .unwrap();
    let took = started.elapsed();
    // Bounded, not timed: a stop that hangs on a flooding session fails this.
    assert!(took < Duration::from_secs(10), "stop took {took:?}");
}

/// Two hosts, one freezing a second after authentication, one healthy.
fn start_freezing() -> (tempfile::TempDir, SimFleet) {
    start_with(|c| {
        c.count = 2;
        c.faults = fleetsh_sim::parse_faults("freeze:1000=50").unwrap();
    })
}

/// Logs in with a client that sends a keepalive after 300 ms without a word from the
/// server and gives up after two unanswered ones.
async fn login_keepalive(fleet: &SimFleet, addr: SocketAddr) -> client::Handle<Client> {
    let config = Arc::new(client::Config {
        nodelay: true,
        keepalive_interval: Some(Duration::from_millis(300)),
        keepalive_max: 2,
        inactivity_timeout: Some(Duration::from_secs(60)),
        ..Default::default()
    });
    let expected = known_key(fleet, addr);
    let mut session = client::connect(config, addr, Client { expected })
        .await
        .unwrap();
    authenticate(fleet, &mut session).await;
    session
}

/// Waits until the client has closed `session`.
async fn closed<H: client::Handler>(session: &client::Handle<H>) {
    while !session.is_closed() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeze_ends_keepalive_sessions() {
    let (_dir, fleet) = start_freezing();
    let addr = host_with(&fleet, Some("freeze"));
    let index = fleet.hosts().iter().position(|h| h.addr == addr).unwrap();
    assert_eq!(
        fleet.fault_of(index),
        Some(&Fault::Freeze(Duration::from_millis(1000)))
    );
    let session = login_keepalive(&fleet, addr).await;
    let mut channel = session.channel_open_session().await.unwrap();
    channel.exec(true, "sleep 30").await.unwrap();
    // Bounded, not timed: the keepalives go unanswered, so the client gives up long
    // before the command could end.
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(msg) = channel.wait().await {
            assert!(
                !matches!(msg, ChannelMsg::ExitStatus { .. } | ChannelMsg::Close),
                "the frozen host answered: {msg:?}"
            );
        }
        closed(&session).await;
    })
    .await
    .expect("the client still waits on the frozen host");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_host_answers_keepalives() {
    let (_dir, fleet) = start_freezing();
    let session = login_keepalive(&fleet, host_with(&fleet, None)).await;
    // Idle for 3 s with a keepalive every 300 ms: each one is answered.
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        exec(&session, "sleep 3; echo done", usize::MAX),
    )
    .await
    .expect("sleep 3 did not end");
    assert_eq!(
        (out.stdout.as_slice(), out.status),
        (&b"done\n"[..], Some(0))
    );
    assert!(!session.is_closed());
    assert_eq!(
        exec(&session, "echo again", usize::MAX).await.stdout,
        b"again\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeze_keeps_the_connection_open_until_stop() {
    let (_dir, fleet) = start_freezing();
    let addr = host_with(&fleet, Some("freeze"));
    // No keepalives: the client waits, as on a real partition.
    let session = login(&fleet, addr).await;
    assert_eq!(
        exec(&session, "echo before", usize::MAX).await.stdout,
        b"before\n"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let open =
        tokio::time::timeout(Duration::from_millis(500), session.channel_open_session()).await;
    assert!(open.is_err(), "the frozen host answered: {open:?}");
    assert!(
        !session.is_closed(),
        "the frozen host closed the connection"
    );
    // The fleet stops promptly, and only then is the connection closed.
    let started = std::time::Instant::now();
    tokio::task::spawn_blocking(move || fleet.stop())
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "stop took {took:?}");
    tokio::time::timeout(Duration::from_secs(10), closed(&session))
        .await
        .expect("the connection outlived the fleet");
}
