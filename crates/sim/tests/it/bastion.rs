//! Bastion hosts: `direct-tcpip` to the fleet's own hosts (one and two hops), refused
//! destinations, the `no-forward` fault, the counters, and 1,000 hosts reached through one
//! connection to one bastion.

use std::sync::Mutex;

use russh::ChannelOpenFailure;

use super::*;

/// A client that also records the descriptions of refused channel opens.
struct Recording {
    inner: Client,
    refusals: Arc<Mutex<Vec<String>>>,
}

impl client::Handler for Recording {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        self.inner.check_server_key(key).await
    }

    async fn channel_open_failure(
        &mut self,
        _channel: russh::ChannelId,
        _reason: ChannelOpenFailure,
        description: &str,
        _language: &str,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        self.refusals.lock().unwrap().push(description.to_owned());
        Ok(())
    }
}

/// The host key `known_hosts` lists for host `index`.
fn host_key(fleet: &SimFleet, index: usize) -> KeyData {
    fleet.host_public_key(index).unwrap().key_data().clone()
}

/// Logs in to host `target` through a tunnel opened on `via` to `to_host` (an address or
/// a name of `target`).
async fn login_via<H: client::Handler>(
    fleet: &SimFleet,
    via: &client::Handle<H>,
    to_host: &str,
    target: usize,
) -> client::Handle<Client> {
    let channel = via
        .channel_open_direct_tcpip(to_host, u32::from(fleet.port()), "127.0.0.1", 40000)
        .await
        .unwrap();
    let mut session = client::connect_stream(
        client_config(),
        channel.into_stream(),
        Client {
            expected: host_key(fleet, target),
        },
    )
    .await
    .unwrap();
    authenticate(fleet, &mut session).await;
    session
}

/// The recorded refusal descriptions, once there are `count` of them (at most 5 s).
async fn wait_for_refusals(refusals: &Mutex<Vec<String>>, count: usize) -> Vec<String> {
    for _ in 0..500 {
        let seen = refusals.lock().unwrap().clone();
        if seen.len() >= count {
            assert_eq!(seen.len(), count, "{seen:?}");
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "expected {count} refusals, got {:?}",
        refusals.lock().unwrap()
    );
}

/// Asks `bastion` for a `direct-tcpip` channel to `host:port`, which must be refused as
/// administratively prohibited.
async fn assert_prohibited<H: client::Handler>(bastion: &client::Handle<H>, host: &str, port: u32) {
    let err = bastion
        .channel_open_direct_tcpip(host, port, "127.0.0.1", 40000)
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(
            err,
            russh::Error::ChannelOpenFailure(ChannelOpenFailure::AdministrativelyProhibited)
        ),
        "{host}:{port}: {err:?}"
    );
}

/// Logs in to host `index` directly, with a client that records refusals.
async fn login_recording(
    fleet: &SimFleet,
    index: usize,
) -> (client::Handle<Recording>, Arc<Mutex<Vec<String>>>) {
    let refusals = Arc::new(Mutex::new(Vec::new()));
    let handler = Recording {
        inner: Client {
            expected: host_key(fleet, index),
        },
        refusals: refusals.clone(),
    };
    let mut session = client::connect(client_config(), fleet.hosts()[index].addr, handler)
        .await
        .unwrap();
    authenticate(fleet, &mut session).await;
    (session, refusals)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnel_to_another_host_by_address_and_by_name() {
    let (_dir, fleet) = start(5, None);
    let bastion = login(&fleet, fleet.hosts()[0].addr).await;
    let by_ip = fleet.hosts()[3].addr.ip().to_string();
    for (to_host, target) in [(by_ip.as_str(), 3), ("sim00005", 4), ("sim00001", 0)] {
        let session = login_via(&fleet, &bastion, to_host, target).await;
        let out = exec(&session, "hostname; echo through", usize::MAX).await;
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            format!("{}\nthrough\n", fleet.hosts()[target].name)
        );
        assert_eq!(out.status, Some(0));
    }
    assert_eq!(fleet.connections_accepted(0), 2, "the bastion and itself");
    assert_eq!(fleet.tunnels_opened(0), 3);
    assert_eq!(fleet.connections_accepted(3), 1);
    assert_eq!(fleet.connections_accepted(4), 1);
    assert_eq!(fleet.tunnels_opened(3), 0);
    assert_eq!(fleet.connections_accepted(2), 0);
    assert_eq!(fleet.connections_accepted(99), 0, "no such host");
    assert_eq!(fleet.tunnels_opened(99), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hops() {
    let (_dir, fleet) = start(4, None);
    let first = login(&fleet, fleet.hosts()[0].addr).await;
    let second = login_via(&fleet, &first, "sim00002", 1).await;
    let target = login_via(&fleet, &second, "sim00004", 3).await;
    let out = exec(&target, "hostname; echo two hops >&2; exit 4", usize::MAX).await;
    assert_eq!(out.stdout, b"sim00004\n");
    assert_eq!(out.stderr, b"two hops\n");
    assert_eq!(out.status, Some(4));
    assert_eq!(fleet.tunnels_opened(0), 1);
    assert_eq!(fleet.tunnels_opened(1), 1);
    assert_eq!(fleet.tunnels_opened(3), 0);
    for index in 0..4 {
        let expected = if index == 2 { 0 } else { 1 };
        assert_eq!(fleet.connections_accepted(index), expected, "host {index}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_streams_through_a_tunnel() {
    let (_dir, fleet) = start(2, None);
    let bastion = login(&fleet, fleet.hosts()[0].addr).await;
    let session = login_via(&fleet, &bastion, "sim00002", 1).await;
    let out = exec(&session, "head -c 20000000 /dev/zero", 0).await;
    assert_eq!(out.stdout_len, 20_000_000);
    assert_eq!(out.status, Some(0));

    // 8 MiB of stdin echoed back by `cat`, written while the output is read.
    let channel = session.channel_open_session().await.unwrap();
    channel.exec(true, "cat").await.unwrap();
    let (mut read, write) = channel.split();
    let writer = tokio::spawn(async move {
        let block = vec![7u8; 64 * 1024];
        for _ in 0..128 {
            write.data_bytes(block.clone()).await.unwrap();
        }
        write.eof().await.unwrap();
        write
    });
    let mut echoed = 0usize;
    let mut status = None;
    while let Some(msg) = read.wait().await {
        match msg {
            ChannelMsg::Data { data } => {
                assert!(data.iter().all(|b| *b == 7));
                echoed += data.len();
            }
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            _ => {}
        }
    }
    drop(writer.await.unwrap());
    assert_eq!(echoed, 128 * 64 * 1024);
    assert_eq!(status, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destinations_outside_the_fleet_are_refused() {
    let (_dir, fleet) = start(3, None);
    // A real listener outside the fleet: the bastion must never connect to it.
    let outside = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    outside.set_nonblocking(true).unwrap();
    let outside_port = u32::from(outside.local_addr().unwrap().port());
    let (bastion, refusals) = login_recording(&fleet, 0).await;
    let port = u32::from(fleet.port());
    for (host, port) in [
        ("127.0.0.1", outside_port),
        ("localhost", outside_port),
        ("127.1.0.9", port),
        ("sim00004", port),
        ("sim2", port),
        ("example.com", 22),
        ("sim00002", port + 1),
        ("::1", port),
    ] {
        assert_prohibited(&bastion, host, port).await;
    }
    // russh returns the error before it calls the handler with the description.
    let refusals = wait_for_refusals(&refusals, 8).await;
    assert!(
        refusals[0].contains("127.0.0.1") && refusals[0].contains("not a host of this fleet"),
        "{}",
        refusals[0]
    );
    assert!(refusals[6].contains("port"), "{}", refusals[6]);
    assert!(
        matches!(outside.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the bastion connected outside the fleet"
    );
    assert_eq!(fleet.tunnels_opened(0), 0);
    assert_eq!(fleet.connections_accepted(1), 0);
    // The connection is still usable.
    let session = login_via(&fleet, &bastion, "sim00002", 1).await;
    assert_eq!(exec(&session, "hostname", 100).await.stdout, b"sim00002\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_forward_fault_refuses_every_tunnel() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = SimFleet::start(SimConfig {
        count: 10,
        port: 0,
        state_dir: dir.path().to_path_buf(),
        faults: vec![(Fault::NoForward, 50.0)],
        ..SimConfig::default()
    })
    .unwrap();
    let blocked = (0..10)
        .find(|i| fleet.fault_of(*i) == Some(&Fault::NoForward))
        .unwrap();
    let open = (0..10).find(|i| fleet.fault_of(*i).is_none()).unwrap();
    let (bastion, refusals) = login_recording(&fleet, blocked).await;
    let open_ip = fleet.hosts()[open].addr.ip().to_string();
    assert_prohibited(&bastion, &open_ip, u32::from(fleet.port())).await;
    let refusals = wait_for_refusals(&refusals, 1).await;
    assert!(refusals[0].contains("no-forward"), "{refusals:?}");
    assert_eq!(fleet.connections_accepted(open), 0);
    // Commands still run on it, and a healthy host forwards to it.
    assert_eq!(exec(&bastion, "echo ok", 10).await.stdout, b"ok\n");
    let healthy = login(&fleet, fleet.hosts()[open].addr).await;
    let name = fleet.hosts()[blocked].name.clone();
    let session = login_via(&fleet, &healthy, &name, blocked).await;
    assert_eq!(
        exec(&session, "hostname", 100).await.stdout,
        format!("{name}\n").as_bytes()
    );
}

/// 1,000 hosts reached through ONE connection to one bastion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_3_thousand_hosts_through_one_bastion_connection() {
    const COUNT: usize = 1_001;
    let dir = tempfile::tempdir().unwrap();
    let fleet = Arc::new(
        SimFleet::start(SimConfig {
            count: COUNT,
            port: 0,
            state_dir: dir.path().to_path_buf(),
            threads: 2,
            ..SimConfig::default()
        })
        .unwrap(),
    );
    let bastion = Arc::new(login(&fleet, fleet.hosts()[0].addr).await);
    let limit = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    for target in 1..COUNT {
        let (fleet, bastion, limit) = (fleet.clone(), bastion.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.unwrap();
            let name = fleet.hosts()[target].name.clone();
            let session = login_via(&fleet, &bastion, &name, target).await;
            let out = exec(&session, "hostname", 100).await;
            assert_eq!(out.stdout, format!("{name}\n").as_bytes());
            assert_eq!(out.status, Some(0));
            let _ = session.disconnect(Disconnect::ByApplication, "", "").await;
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    assert_eq!(
        fleet.connections_accepted(0),
        1,
        "one connection to the bastion"
    );
    assert_eq!(fleet.tunnels_opened(0), (COUNT - 1) as u64);
    for target in 1..COUNT {
        assert_eq!(fleet.connections_accepted(target), 1, "host {target}");
        assert_eq!(fleet.tunnels_opened(target), 0);
    }
}
