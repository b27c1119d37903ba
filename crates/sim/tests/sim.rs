//! Integration tests: a real fleet on loopback, driven by a minimal russh client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fleetsh_sim::{SimConfig, SimError, SimFleet};
use russh::ChannelMsg;
use russh::client;
use russh::keys::ssh_key::public::KeyData;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};

/// Accepts exactly one host key.
struct Client {
    expected: KeyData,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(
            matches!(key, PublicKeyOrCertificate::PublicKey { key, .. } if key.key_data() == &self.expected),
        )
    }
}

/// What a command did, as the client saw it.
#[derive(Debug, Default)]
struct Outcome {
    stdout: Vec<u8>,
    stdout_len: usize,
    stderr: Vec<u8>,
    status: Option<u32>,
    signal: Option<String>,
}

/// The known_hosts file parsed once: host pattern -> key.
fn known_hosts(fleet: &SimFleet) -> HashMap<String, KeyData> {
    let text = std::fs::read_to_string(fleet.known_hosts_file()).unwrap();
    text.lines()
        .map(|line| {
            let (pattern, key) = line.split_once(' ').unwrap();
            let key = russh::keys::PublicKey::from_openssh(key).unwrap();
            (pattern.to_owned(), key.key_data().clone())
        })
        .collect()
}

fn client_config() -> Arc<client::Config> {
    Arc::new(client::Config {
        nodelay: true,
        inactivity_timeout: Some(Duration::from_secs(30)),
        ..Default::default()
    })
}

async fn connect(addr: SocketAddr, expected: KeyData) -> client::Handle<Client> {
    client::connect(client_config(), addr, Client { expected })
        .await
        .unwrap()
}

async fn login(fleet: &SimFleet, addr: SocketAddr) -> client::Handle<Client> {
    let keys = known_hosts(fleet);
    let expected = keys[&format!("[{}]:{}", addr.ip(), addr.port())].clone();
    let mut session = connect(addr, expected).await;
    let key = russh::keys::load_secret_key(fleet.client_key_file(), None).unwrap();
    let auth = session
        .authenticate_publickey("root", PrivateKeyWithHashAlg::new(Arc::new(key), None))
        .await
        .unwrap();
    assert!(auth.success(), "public-key auth failed on {addr}");
    session
}

/// Runs `command`; keeps at most `keep` bytes of stdout (but counts all of it).
async fn exec(session: &client::Handle<Client>, command: &str, keep: usize) -> Outcome {
    let mut channel = session.channel_open_session().await.unwrap();
    channel.exec(true, command).await.unwrap();
    let mut out = Outcome::default();
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Data { data } => {
                out.stdout_len += data.len();
                let room = keep.saturating_sub(out.stdout.len());
                out.stdout.extend_from_slice(&data[..room.min(data.len())]);
            }
            ChannelMsg::ExtendedData { data, ext: 1 } => out.stderr.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => out.status = Some(exit_status),
            ChannelMsg::ExitSignal { signal_name, .. } => {
                out.signal = Some(format!("{signal_name:?}"));
            }
            _ => {}
        }
    }
    out
}

fn start(count: usize, password: Option<&str>) -> (tempfile::TempDir, SimFleet) {
    let dir = tempfile::tempdir().unwrap();
    let fleet = SimFleet::start(SimConfig {
        count,
        port: 0,
        state_dir: dir.path().join("state"),
        password: password.map(str::to_owned),
        ..SimConfig::default()
    })
    .unwrap();
    (dir, fleet)
}

mod state_files {
    use super::*;

    #[test]
    fn files_describe_the_fleet() {
        let (_dir, fleet) = start(50, None);
        let port = fleet.port();
        assert_ne!(port, 0);
        assert_eq!(fleet.hosts().len(), 50);
        assert_eq!(fleet.hosts()[0].name, "sim00001");
        assert_eq!(fleet.hosts()[49].name, "sim00050");
        assert_eq!(fleet.hosts()[49].index, 49);
        assert_eq!(
            fleet.hosts()[49].addr,
            format!("127.1.0.50:{port}").parse().unwrap()
        );

        let hosts = std::fs::read_to_string(fleet.hosts_file()).unwrap();
        let lines: Vec<&str> = hosts.lines().collect();
        assert_eq!(lines.len(), 50);
        assert_eq!(lines[0], format!("127.1.0.1:{port}"));
        assert_eq!(lines[49], format!("127.1.0.50:{port}"));

        let known = std::fs::read_to_string(fleet.known_hosts_file()).unwrap();
        let known: Vec<&str> = known.lines().collect();
        assert_eq!(known.len(), 50);
        assert!(
            known[0].starts_with(&format!("[127.1.0.1]:{port} ssh-ed25519 AAAA")),
            "{}",
            known[0]
        );
        // One key per host, all distinct, matching the API.
        let keys = known_hosts(&fleet);
        assert_eq!(keys.len(), 50);
        let distinct: std::collections::HashSet<_> = keys.values().collect();
        assert_eq!(distinct.len(), 50);
        for (i, host) in fleet.hosts().iter().enumerate() {
            let pattern = format!("[{}]:{}", host.addr.ip(), port);
            assert_eq!(
                &keys[&pattern],
                fleet.host_public_key(i).unwrap().key_data()
            );
        }

        let key = russh::keys::load_secret_key(fleet.client_key_file(), None).unwrap();
        assert_eq!(
            key.public_key().key_data(),
            fleet.client_public_key().key_data()
        );
        let public =
            std::fs::read_to_string(fleet.client_key_file().with_extension("pub")).unwrap();
        assert!(public.starts_with("ssh-ed25519 AAAA"), "{public}");
        let pem = std::fs::read_to_string(fleet.client_key_file()).unwrap();
        assert!(pem.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(fleet.client_key_file())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fleet.stop();
    }

    #[test]
    fn keys_are_deterministic() {
        let (_a, one) = start(3, None);
        let (_b, two) = start(3, None);
        assert_ne!(one.port(), two.port());
        for i in 0..3 {
            assert_eq!(one.host_public_key(i), two.host_public_key(i));
        }
        assert_eq!(
            std::fs::read_to_string(one.client_key_file().with_extension("pub")).unwrap(),
            std::fs::read_to_string(two.client_key_file().with_extension("pub")).unwrap()
        );
        let dir = tempfile::tempdir().unwrap();
        let other = SimFleet::start(SimConfig {
            count: 3,
            port: 0,
            seed: 1,
            state_dir: dir.path().to_path_buf(),
            ..SimConfig::default()
        })
        .unwrap();
        assert_ne!(one.host_public_key(0), other.host_public_key(0));
        assert_ne!(
            one.client_public_key().key_data(),
            other.client_public_key().key_data()
        );
    }

    #[test]
    fn bad_configs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = |f: fn(&mut SimConfig)| {
            let mut c = SimConfig {
                port: 0,
                state_dir: dir.path().to_path_buf(),
                ..SimConfig::default()
            };
            f(&mut c);
            c
        };
        let err = SimFleet::start(config(|c| c.count = 0)).unwrap_err();
        assert!(matches!(err, SimError::BadCount { count: 0 }), "{err}");
        let err = SimFleet::start(config(|c| c.threads = 0)).unwrap_err();
        assert!(matches!(err, SimError::BadThreads { .. }), "{err}");
        let err =
            SimFleet::start(config(|c| c.addr_base = "10.0.0.1".parse().unwrap())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "address base 10.0.0.1 is outside 127.0.0.0/8"
        );
        let err = SimFleet::start(config(|c| {
            c.addr_base = "127.255.255.250".parse().unwrap();
            c.count = 10;
        }))
        .unwrap_err();
        assert!(matches!(err, SimError::AddressOverflow { .. }), "{err}");
    }

    #[test]
    fn taken_port_names_the_address() {
        let (_dir, fleet) = start(2, None);
        let dir = tempfile::tempdir().unwrap();
        let err = SimFleet::start(SimConfig {
            count: 2,
            port: fleet.port(),
            state_dir: dir.path().to_path_buf(),
            ..SimConfig::default()
        })
        .unwrap_err();
        let SimError::Bind { addr, source } = &err else {
            panic!("expected a bind error, got {err}");
        };
        assert_eq!(*addr, fleet.hosts()[0].addr);
        assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse);
        assert!(
            err.to_string().starts_with(&format!("cannot bind {addr}")),
            "{err}"
        );
    }

    #[test]
    fn unwritable_state_dir_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let err = SimFleet::start(SimConfig {
            count: 1,
            port: 0,
            state_dir: file.join("state"),
            ..SimConfig::default()
        })
        .unwrap_err();
        assert!(matches!(err, SimError::StateWrite { .. }), "{err}");
        assert!(err.to_string().contains("not-a-dir"), "{err}");
    }
}

mod ssh {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn exec_on_several_hosts() {
        let (_dir, fleet) = start(50, None);
        for index in [0, 1, 24, 49] {
            let host = &fleet.hosts()[index];
            let session = login(&fleet, host.addr).await;
            let out = exec(&session, "hostname; echo hi >&2; exit 3", usize::MAX).await;
            assert_eq!(
                String::from_utf8(out.stdout).unwrap(),
                format!("{}\n", host.name)
            );
            assert_eq!(out.stderr, b"hi\n");
            assert_eq!(out.status, Some(3));
            assert_eq!(out.signal, None);

            // A second command on the same connection.
            let out = exec(
                &session,
                "cat /etc/hostname && false || echo fine",
                usize::MAX,
            )
            .await;
            assert_eq!(
                String::from_utf8(out.stdout).unwrap(),
                format!("{}\nfine\n", host.name)
            );
            assert_eq!(out.status, Some(0));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn big_output_streams() {
        let (_dir, fleet) = start(2, None);
        let session = login(&fleet, fleet.hosts()[1].addr).await;
        let out = exec(&session, "head -c 5000000 /dev/zero", 0).await;
        assert_eq!(out.stdout_len, 5_000_000);
        assert_eq!(out.status, Some(0));
        let out = exec(&session, "cat /srv/data/26k.txt", usize::MAX).await;
        assert_eq!(out.stdout.len(), 26_000);
        let out = exec(&session, "seq 100000", usize::MAX).await;
        assert_eq!(out.stdout.iter().filter(|b| **b == b'\n').count(), 100_000);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kill_gives_exit_signal() {
        let (_dir, fleet) = start(1, None);
        let session = login(&fleet, fleet.hosts()[0].addr).await;
        let out = exec(&session, "echo before; kill -9 $$; echo after", usize::MAX).await;
        assert_eq!(out.stdout, b"before\n");
        assert_eq!(out.signal.as_deref(), Some("KILL"));
        assert_eq!(out.status, None);
        let out = exec(&session, "kill -TERM $$", usize::MAX).await;
        assert_eq!(out.signal.as_deref(), Some("TERM"));
        assert_eq!(out.status, None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unknown_command_is_127() {
        let (_dir, fleet) = start(1, None);
        let session = login(&fleet, fleet.hosts()[0].addr).await;
        let out = exec(&session, "frobnicate", usize::MAX).await;
        assert_eq!(out.stderr, b"sh: frobnicate: not found\n");
        assert_eq!(out.status, Some(127));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shell_and_subsystem_are_refused() {
        let (_dir, fleet) = start(1, None);
        let session = login(&fleet, fleet.hosts()[0].addr).await;
        let mut channel = session.channel_open_session().await.unwrap();
        channel.request_shell(true).await.unwrap();
        assert!(matches!(channel.wait().await, Some(ChannelMsg::Failure)));
        let mut channel = session.channel_open_session().await.unwrap();
        channel.request_subsystem(true, "sftp").await.unwrap();
        assert!(matches!(channel.wait().await, Some(ChannelMsg::Failure)));
        // env and pty are accepted (and ignored).
        let mut channel = session.channel_open_session().await.unwrap();
        channel.set_env(true, "LANG", "C").await.unwrap();
        assert!(matches!(channel.wait().await, Some(ChannelMsg::Success)));
        channel
            .request_pty(true, "xterm", 80, 24, 0, 0, &[])
            .await
            .unwrap();
        assert!(matches!(channel.wait().await, Some(ChannelMsg::Success)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wrong_client_key_is_rejected() {
        let (_dir, fleet) = start(1, None);
        let addr = fleet.hosts()[0].addr;
        let mut session = connect(addr, fleet.host_public_key(0).unwrap().key_data().clone()).await;
        let seed = [7u8; 32];
        let wrong = PrivateKey::from(russh::keys::ssh_key::private::Ed25519Keypair::from_seed(
            &seed,
        ));
        let auth = session
            .authenticate_publickey("root", PrivateKeyWithHashAlg::new(Arc::new(wrong), None))
            .await
            .unwrap();
        assert!(!auth.success());
        // No password configured: password auth fails too.
        let auth = session
            .authenticate_password("root", "anything")
            .await
            .unwrap();
        assert!(!auth.success());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wrong_host_key_is_noticed_by_the_client() {
        let (_dir, fleet) = start(2, None);
        // Host 1's key is not host 0's: a client checking known_hosts must refuse.
        let wrong = fleet.host_public_key(1).unwrap().key_data().clone();
        let result = client::connect(
            client_config(),
            fleet.hosts()[0].addr,
            Client { expected: wrong },
        )
        .await;
        assert!(result.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn password_auth_when_configured() {
        let (_dir, fleet) = start(2, Some("s3cret"));
        let addr = fleet.hosts()[1].addr;
        let expected = fleet.host_public_key(1).unwrap().key_data().clone();
        let mut session = connect(addr, expected.clone()).await;
        let auth = session
            .authenticate_password("alice", "wrong")
            .await
            .unwrap();
        assert!(!auth.success());
        let auth = session
            .authenticate_password("alice", "s3cret")
            .await
            .unwrap();
        assert!(auth.success());
        let out = exec(&session, "echo $USER-ish; hostname", usize::MAX).await;
        assert_eq!(out.stdout, b"root-ish\nsim00002\n");
        // Public-key auth still works alongside.
        drop(login(&fleet, addr).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn client_disconnect_stops_a_long_command() {
        let (_dir, fleet) = start(1, None);
        let session = login(&fleet, fleet.hosts()[0].addr).await;
        let mut channel = session.channel_open_session().await.unwrap();
        channel
            .exec(true, "head -c 100000000000 /dev/zero")
            .await
            .unwrap();
        let mut seen = 0;
        while seen < 1_000_000 {
            match channel.wait().await {
                Some(ChannelMsg::Data { data }) => seen += data.len(),
                Some(_) => {}
                None => panic!("channel ended early"),
            }
        }
        drop(channel);
        session
            .disconnect(russh::Disconnect::ByApplication, "", "")
            .await
            .unwrap();
        drop(session);
        // The fleet still serves new connections promptly.
        let session = login(&fleet, fleet.hosts()[0].addr).await;
        let out = exec(&session, "echo still here", usize::MAX).await;
        assert_eq!(out.stdout, b"still here\n");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stop_ends_live_sessions() {
        let (_dir, fleet) = start(1, None);
        let session = login(&fleet, fleet.hosts()[0].addr).await;
        let mut channel = session.channel_open_session().await.unwrap();
        channel.exec(true, "sleep 60").await.unwrap();
        let started = std::time::Instant::now();
        tokio::task::spawn_blocking(move || fleet.stop())
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        // The session is gone: the channel ends without an exit status.
        let ended = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(msg) = channel.wait().await {
                assert!(!matches!(msg, ChannelMsg::ExitStatus { .. }));
            }
        })
        .await;
        assert!(ended.is_ok(), "the channel did not end after stop()");
    }
}

mod scale {
    use super::*;

    /// Measures how long 10,000 hosts take to start (needs ~10,100 open files).
    /// Run with `cargo test -p fleetsh-sim --release -- --ignored --nocapture start_10k`.
    #[test]
    #[ignore = "measurement: needs RLIMIT_NOFILE above 10,000"]
    fn start_10k_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let started = std::time::Instant::now();
        let fleet = SimFleet::start(SimConfig {
            count: 10_000,
            port: 0,
            state_dir: dir.path().to_path_buf(),
            ..SimConfig::default()
        })
        .unwrap();
        let elapsed = started.elapsed();
        println!("started 10,000 hosts in {elapsed:?}");
        let last = fleet.hosts()[9_999].clone();
        assert_eq!(last.name, "sim10000");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let session = login(&fleet, last.addr).await;
            let out = exec(&session, "hostname", usize::MAX).await;
            assert_eq!(out.stdout, b"sim10000\n");
        });
        drop(runtime); // closes the client connection
        let stopping = std::time::Instant::now();
        fleet.stop();
        println!("stopped in {:?}", stopping.elapsed());
        assert!(elapsed < Duration::from_secs(10));
    }
}
