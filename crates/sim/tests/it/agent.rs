//! Agent forwarding: `ssh-add -l` / `-L` on a session with `auth-agent-req@openssh.com`
//! list the identities of the client's agent, reached through an `auth-agent@openssh.com`
//! channel the server opens back to the client.

use russh::keys::{HashAlg, PublicKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// A client whose handler answers forwarded agent channels itself: a minimal SSH agent
/// that knows `keys` and answers `REQUEST_IDENTITIES` (and nothing else).
struct AgentHolder {
    inner: Client,
    keys: Arc<Vec<(PublicKey, String)>>,
    opened: Arc<std::sync::atomic::AtomicUsize>,
    /// Refuse the agent channel (a client that asked for forwarding but has no agent).
    refuse: bool,
}

impl client::Handler for AgentHolder {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        self.inner.check_server_key(key).await
    }

    async fn server_channel_open_agent_forward(
        &mut self,
        channel: russh::Channel<client::Msg>,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        self.opened
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.refuse {
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        reply.accept().await;
        tokio::spawn(serve_agent(channel.into_stream(), self.keys.clone()));
        Ok(())
    }
}

/// Appends an SSH `string`.
fn put_string(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
}

/// The agent protocol (draft-miller-ssh-agent): frames of `uint32 length, byte type, ...`.
async fn serve_agent(
    mut stream: russh::ChannelStream<client::Msg>,
    keys: Arc<Vec<(PublicKey, String)>>,
) {
    const REQUEST_IDENTITIES: u8 = 11;
    const IDENTITIES_ANSWER: u8 = 12;
    const FAILURE: u8 = 5;
    loop {
        let mut len = [0u8; 4];
        if stream.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut frame = vec![0u8; u32::from_be_bytes(len) as usize];
        if stream.read_exact(&mut frame).await.is_err() {
            return;
        }
        let mut body = Vec::new();
        if frame.first() == Some(&REQUEST_IDENTITIES) {
            body.push(IDENTITIES_ANSWER);
            body.extend_from_slice(&(keys.len() as u32).to_be_bytes());
            for (key, comment) in keys.iter() {
                put_string(&mut body, &key.to_bytes().unwrap());
                put_string(&mut body, comment.as_bytes());
            }
        } else {
            body.push(FAILURE);
        }
        let mut out = Vec::new();
        put_string(&mut out, &body);
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// Logs in to host 0 with a client holding an agent with `keys`.
async fn login_with_agent(
    fleet: &SimFleet,
    keys: Vec<(PublicKey, String)>,
    refuse: bool,
) -> (
    client::Handle<AgentHolder>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    let opened = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let handler = AgentHolder {
        inner: Client {
            expected: fleet.host_public_key(0).unwrap().key_data().clone(),
        },
        keys: Arc::new(keys),
        opened: opened.clone(),
        refuse,
    };
    let mut session = client::connect(client_config(), fleet.hosts()[0].addr, handler)
        .await
        .unwrap();
    authenticate(fleet, &mut session).await;
    (session, opened)
}

/// Runs `command` on a new channel, first asking for agent forwarding if `forward`.
async fn exec_forwarding<H: client::Handler>(
    session: &client::Handle<H>,
    command: &str,
    forward: bool,
) -> Outcome {
    let mut channel = session.channel_open_session().await.unwrap();
    if forward {
        channel.agent_forward(true).await.unwrap();
        loop {
            match channel.wait().await {
                Some(ChannelMsg::Success) => break,
                Some(ChannelMsg::Failure) => panic!("agent forwarding refused"),
                Some(_) => {}
                None => panic!("channel closed"),
            }
        }
    }
    channel.exec(true, command).await.unwrap();
    let mut out = Outcome::default();
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Data { data } => out.stdout.extend_from_slice(&data),
            ChannelMsg::ExtendedData { data, ext: 1 } => out.stderr.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => out.status = Some(exit_status),
            _ => {}
        }
    }
    out
}

fn agent_keys() -> Vec<(PublicKey, String)> {
    let one = fleetsh_sim::testing::ca_key(11).public_key().clone();
    let two = fleetsh_sim::testing::ca_key(12).public_key().clone();
    vec![(one, "alice@laptop".into()), (two, "deploy key".into())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_add_lists_the_forwarded_agent() {
    let (_dir, fleet) = start(1, None);
    let keys = agent_keys();
    let (session, opened) = login_with_agent(&fleet, keys.clone(), false).await;

    let out = exec_forwarding(&session, "ssh-add -l", true).await;
    assert_eq!(
        out.status,
        Some(0),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: String = keys
        .iter()
        .map(|(key, comment)| {
            format!(
                "256 {} {comment} (ED25519)\n",
                key.fingerprint(HashAlg::Sha256)
            )
        })
        .collect();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
    assert_eq!(opened.load(std::sync::atomic::Ordering::Relaxed), 1);

    let out = exec_forwarding(&session, "ssh-add -L", true).await;
    assert_eq!(out.status, Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        PublicKey::from_openssh(lines[0]).unwrap().key_data(),
        keys[0].0.key_data()
    );
    assert!(lines[1].ends_with(" deploy key"), "{}", lines[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_forwarding_there_is_no_agent() {
    let (_dir, fleet) = start(1, None);
    let (session, opened) = login_with_agent(&fleet, agent_keys(), false).await;
    let out = exec_forwarding(&session, "ssh-add -l", false).await;
    assert_eq!(out.status, Some(2));
    assert_eq!(
        out.stderr,
        b"Could not open a connection to your authentication agent.\n"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(opened.load(std::sync::atomic::Ordering::Relaxed), 0);
    // Forwarding is per channel: another channel with it works on the same connection.
    let out = exec_forwarding(&session, "ssh-add -l && echo listed", true).await;
    assert_eq!(out.status, Some(0));
    assert!(String::from_utf8(out.stdout).unwrap().ends_with("listed\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_agent_has_no_identities() {
    let (_dir, fleet) = start(1, None);
    let (session, _) = login_with_agent(&fleet, Vec::new(), false).await;
    let out = exec_forwarding(&session, "ssh-add -l", true).await;
    assert_eq!(out.status, Some(1));
    assert_eq!(out.stdout, b"The agent has no identities.\n");
    // A client that asked for forwarding but refuses the agent channel.
    let (refusing, _) = login_with_agent(&fleet, agent_keys(), true).await;
    let out = exec_forwarding(&refusing, "ssh-add -l", true).await;
    assert_eq!(out.status, Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("error fetching identities: "),
        "{out:?}"
    );
}
