//! Commands on the simulated hosts over SSH: output, exit codes, several hosts at once.

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
async fn shell_and_unknown_subsystems_are_refused() {
    let (_dir, fleet) = start(1, None);
    let session = login(&fleet, fleet.hosts()[0].addr).await;
    let mut channel = session.channel_open_session().await.unwrap();
    channel.request_shell(true).await.unwrap();
    assert!(matches!(channel.wait().await, Some(ChannelMsg::Failure)));
    let mut channel = session.channel_open_session().await.unwrap();
    channel.request_subsystem(true, "netconf").await.unwrap();
    assert!(matches!(channel.wait().await, Some(ChannelMsg::Failure)));
    // env and pty are accepted.
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
    let out = exec(&session, "echo $USER-ish; whoami; hostname", usize::MAX).await;
    assert_eq!(out.stdout, b"alice-ish\nalice\nsim00002\n");
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
