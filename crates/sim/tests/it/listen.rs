//! How the hosts listen ([`Listen`]): thousands of hosts served from one socket, each as
//! itself (host key, name, fault, counters), connections to addresses outside the fleet
//! reset at once, the port taken on every address, bastions through the one socket, and
//! which mode `Listen::Auto` picks.

use fleetsh_sim::{Listen, ONE_SOCKET_ABOVE};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::*;

/// Logs in to `addr` with the fleet's client key, accepting only `expected` as its host
/// key, and runs `command`.
async fn run_on(
    addr: SocketAddr,
    expected: KeyData,
    key: Arc<PrivateKey>,
    command: &str,
) -> Result<Outcome, russh::Error> {
    let mut session = client::connect(client_config(), addr, Client { expected }).await?;
    let auth = session
        .authenticate_publickey("root", PrivateKeyWithHashAlg::new(key, None))
        .await?;
    if !auth.success() {
        return Err(russh::Error::NotAuthenticated);
    }
    let out = exec(&session, command, usize::MAX).await;
    let _ = session
        .disconnect(Disconnect::ByApplication, "", "en")
        .await;
    Ok(out)
}

/// Connects to `addr` and reads: what a connection the fleet turns away sees.
async fn first_read(addr: SocketAddr) -> std::io::Result<usize> {
    let mut raw = TcpStream::connect(addr).await?;
    let mut buf = [0u8; 64];
    tokio::time::timeout(Duration::from_secs(10), raw.read(&mut buf))
        .await
        .expect("the connection was neither served nor closed")
}

/// 3,000 hosts (more than [`ONE_SOCKET_ABOVE`], so `Listen::Auto` takes one socket): every
/// host answers as itself, with the host key `known_hosts` lists for its address (checked
/// strictly) and its own name, and counts its own connection and command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_socket_serves_every_host_as_itself() {
    const HOSTS: usize = 3_000;
    let (_dir, fleet) = start_with(|c| {
        c.count = HOSTS;
        c.addr_base = "127.71.0.1".parse().unwrap();
        c.threads = 2;
    });
    const { assert!(HOSTS > ONE_SOCKET_ABOVE) };
    assert_eq!(fleet.listen(), Listen::OneSocket);
    let known = Arc::new(known_hosts(&fleet));
    let key = Arc::new(russh::keys::load_secret_key(fleet.client_key_file(), None).unwrap());
    // 64 logins at a time.
    let slots = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    for host in fleet.hosts().iter().cloned() {
        let expected = known[&format!("[{}]:{}", host.addr.ip(), host.addr.port())].clone();
        let (key, slots) = (key.clone(), slots.clone());
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await.unwrap();
            let out = run_on(host.addr, expected, key, "hostname; echo $$").await;
            (host, out)
        });
    }
    let mut seen = 0;
    while let Some(joined) = tasks.join_next().await {
        let (host, out) = joined.unwrap();
        let out = out.unwrap_or_else(|e| panic!("{} ({}): {e}", host.name, host.addr));
        let text = String::from_utf8(out.stdout).unwrap();
        let pid = 1000 + (host.index % 30_000);
        assert_eq!(text, format!("{}\n{pid}\n", host.name), "{}", host.addr);
        assert_eq!(out.status, Some(0));
        seen += 1;
    }
    assert_eq!(seen, HOSTS);
    for i in 0..HOSTS {
        assert_eq!(fleet.connections_accepted(i), 1, "host {i}");
        assert_eq!(fleet.commands_run(i), 1, "host {i}");
    }
    assert_eq!(fleet.connections_turned_away(), 0);
}

/// Faults follow the address a connection arrives on: on one socket each host still
/// refuses, fails authentication, serves its other key or exits with its status, and the
/// healthy hosts beside them are untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_socket_faults_act_on_their_own_hosts() {
    let (_dir, fleet) = start_with(|c| {
        c.count = 40;
        c.listen = Listen::OneSocket;
        c.addr_base = "127.72.0.1".parse().unwrap();
        c.faults =
            fleetsh_sim::parse_faults("refuse=10,auth-fail=10,hostkey-mismatch=10,exit:7=10")
                .unwrap();
    });
    assert_eq!(fleet.listen(), Listen::OneSocket);
    let known = known_hosts(&fleet);
    let key = Arc::new(russh::keys::load_secret_key(fleet.client_key_file(), None).unwrap());
    let mut kinds = std::collections::BTreeMap::new();
    for host in fleet.hosts() {
        let expected = known[&format!("[{}]:{}", host.addr.ip(), host.addr.port())].clone();
        let fault = fleet.fault_of(host.index);
        *kinds
            .entry(fault.map_or("healthy", Fault::kind))
            .or_insert(0) += 1;
        let out = run_on(host.addr, expected, key.clone(), "hostname").await;
        let name = format!("{}\n", host.name);
        match fault {
            None => {
                let out = out.unwrap();
                assert_eq!(out.stdout, name.as_bytes());
                assert_eq!(out.status, Some(0));
            }
            Some(Fault::Exit(7)) => {
                let out = out.unwrap();
                assert_eq!(out.stdout, name.as_bytes());
                assert_eq!(out.status, Some(7));
            }
            Some(Fault::Refuse) => {
                assert!(out.is_err(), "{}: {out:?}", host.name);
                assert_eq!(first_read(host.addr).await.unwrap(), 0, "closed, no banner");
            }
            Some(Fault::AuthFail) => {
                assert!(
                    matches!(out, Err(russh::Error::NotAuthenticated)),
                    "{}: {out:?}",
                    host.name
                );
            }
            Some(Fault::HostkeyMismatch) => {
                assert!(out.is_err(), "{}: {out:?}", host.name);
            }
            Some(other) => panic!("unexpected fault {other}"),
        }
        let ran = u64::from(matches!(fault, None | Some(Fault::Exit(_))));
        assert_eq!(fleet.commands_run(host.index), ran, "{}", host.name);
        assert!(fleet.connections_accepted(host.index) >= 1, "{}", host.name);
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            ("auth-fail", 4),
            ("exit", 4),
            ("healthy", 24),
            ("hostkey-mismatch", 4),
            ("refuse", 4)
        ]
    );
    assert_eq!(fleet.connections_turned_away(), 0);
}

/// A connection to a loopback address that is no host's (`127.0.0.1`, the addresses just
/// before and after the fleet) reaches the one socket and is reset before a byte is sent;
/// no host counts it, and the hosts still serve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_socket_resets_connections_to_addresses_outside_the_fleet() {
    let (_dir, fleet) = start_with(|c| {
        c.count = 3;
        c.listen = Listen::OneSocket;
        c.addr_base = "127.73.0.2".parse().unwrap();
    });
    let port = fleet.port();
    let outside = ["127.0.0.1", "127.73.0.1", "127.73.0.5", "127.74.0.2"];
    for ip in outside {
        let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
        let read = first_read(addr).await;
        assert!(
            matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "{addr}: {read:?}"
        );
    }
    assert_eq!(fleet.connections_turned_away(), outside.len() as u64);
    for i in 0..3 {
        assert_eq!(fleet.connections_accepted(i), 0, "host {i}");
    }
    let session = login(&fleet, fleet.hosts()[2].addr).await;
    assert_eq!(exec(&session, "hostname", 64).await.stdout, b"sim00003\n");
    assert_eq!(fleet.connections_accepted(2), 1);
}

/// With a socket per host (what `Listen::Auto` picks for small fleets) the kernel refuses
/// the same connections itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_host_sockets_leave_other_addresses_refused() {
    let (_dir, fleet) = start_with(|c| {
        c.count = 3;
        c.addr_base = "127.75.0.2".parse().unwrap();
    });
    assert_eq!(fleet.listen(), Listen::PerHost);
    let port = fleet.port();
    for ip in ["127.75.0.1", "127.75.0.5"] {
        let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
        let err = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{addr}");
    }
    assert_eq!(fleet.connections_turned_away(), 0);
}

/// The one socket holds its port on every address: neither another one-socket fleet nor a
/// fleet with a socket per host can bind it, and a one-socket fleet cannot take a port a
/// host's own socket holds. The error names the address.
#[test]
fn one_socket_takes_the_port_on_every_address() {
    let (_a, one) = start_with(|c| {
        c.count = 2;
        c.listen = Listen::OneSocket;
    });
    let port = one.port();
    assert_ne!(port, 0);
    assert!(one.hosts().iter().all(|h| h.addr.port() == port));
    let bind_error = |listen: Listen, base: &str, port: u16| {
        let dir = tempfile::tempdir().unwrap();
        let err = SimFleet::start(SimConfig {
            count: 2,
            port,
            listen,
            addr_base: base.parse().unwrap(),
            state_dir: dir.path().to_path_buf(),
            ..SimConfig::default()
        })
        .unwrap_err();
        let SimError::Bind { addr, source } = err else {
            panic!("expected a bind error, got {err}");
        };
        assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse, "{addr}");
        addr
    };
    assert_eq!(
        bind_error(Listen::OneSocket, "127.76.0.1", port),
        format!("0.0.0.0:{port}").parse().unwrap()
    );
    assert_eq!(
        bind_error(Listen::PerHost, "127.76.0.1", port),
        format!("127.76.0.1:{port}").parse().unwrap()
    );
    let (_b, per_host) = start_with(|c| {
        c.count = 2;
        c.listen = Listen::PerHost;
        c.addr_base = "127.77.0.1".parse().unwrap();
    });
    assert_eq!(
        bind_error(Listen::OneSocket, "127.78.0.1", per_host.port()),
        format!("0.0.0.0:{}", per_host.port()).parse().unwrap()
    );
}

/// A bastion's tunnel to another host connects to that host's address and arrives on the
/// one socket like any other client: served as that host, counted by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_socket_bastion_reaches_other_hosts() {
    let (_dir, fleet) = start_with(|c| {
        c.count = 5;
        c.listen = Listen::OneSocket;
        c.addr_base = "127.79.0.1".parse().unwrap();
    });
    let bastion = login(&fleet, fleet.hosts()[0].addr).await;
    let channel = bastion
        .channel_open_direct_tcpip("sim00004", u32::from(fleet.port()), "127.0.0.1", 40000)
        .await
        .unwrap();
    let expected = fleet.host_public_key(3).unwrap().key_data().clone();
    let mut session =
        client::connect_stream(client_config(), channel.into_stream(), Client { expected })
            .await
            .unwrap();
    authenticate(&fleet, &mut session).await;
    let out = exec(&session, "hostname", 64).await;
    assert_eq!(out.stdout, b"sim00004\n");
    assert_eq!(fleet.tunnels_opened(0), 1);
    assert_eq!(fleet.connections_accepted(3), 1);
    assert_eq!(fleet.commands_run(3), 1);
    assert_eq!(fleet.connections_turned_away(), 0);
}
