//! Integration tests of `fleetsh-sim`: a real fleet on loopback, driven by a minimal russh
//! client (the helpers below), one module per area:
//! - `state_files`: keys, known_hosts and the state directory;
//! - `ssh`, `session`, `sudo`: commands, sessions, standard input, sudo;
//! - `faults`: every fault kind;
//! - `auth`, `agent`, `hostcert`: authentication, agent forwarding, host certificates;
//! - `bastion`: the fleet as jump hosts;
//! - `listen`: a socket per host or one for all, addresses outside the fleet;
//! - `sftp`: the SFTP subsystem;
//! - `scale`: start-up of 10,000 hosts on a socket each and of 100,000 on one socket
//!   (measurements, run by hand with `--ignored`).
// Test code: a failed unwrap, expect or index is the test failing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    unreachable_pub
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fleetsh_sim::{Fault, SimConfig, SimError, SimFleet};
use russh::client;
use russh::keys::ssh_key::public::KeyData;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect};

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
    authenticate(fleet, &mut session).await;
    session
}

/// Authenticates `session` with the fleet's client key.
async fn authenticate<H: client::Handler>(fleet: &SimFleet, session: &mut client::Handle<H>) {
    let key = russh::keys::load_secret_key(fleet.client_key_file(), None).unwrap();
    let auth = session
        .authenticate_publickey("root", PrivateKeyWithHashAlg::new(Arc::new(key), None))
        .await
        .unwrap();
    assert!(auth.success(), "public-key auth failed");
}

/// Runs `command`; keeps at most `keep` bytes of stdout (but counts all of it).
async fn exec<H: client::Handler>(
    session: &client::Handle<H>,
    command: &str,
    keep: usize,
) -> Outcome {
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

/// What to send with a command besides the exec request.
#[derive(Debug, Default)]
struct Request {
    /// Environment variables, each sent as an `env` request before exec.
    env: Vec<(&'static str, &'static str)>,
    /// Ask for a pty before exec.
    pty: bool,
    /// Data to send as stdin after exec; EOF follows it. `None`: send EOF at once.
    stdin: Option<Vec<u8>>,
    /// Read output slower than stdin is written: pause 1 ms every this many data messages.
    pause_every: Option<usize>,
}

/// The replies to the `env` requests of a [`Request`], in order: accepted or not.
type EnvReplies = Vec<bool>;

/// Waits for the reply to a channel request.
async fn reply(channel: &mut russh::Channel<client::Msg>) -> bool {
    loop {
        match channel.wait().await {
            Some(ChannelMsg::Success) => return true,
            Some(ChannelMsg::Failure) => return false,
            Some(_) => {}
            None => panic!("the channel closed before replying"),
        }
    }
}

/// Runs `command` with env, pty and stdin; stdin is written while output is read.
async fn exec_with(
    session: &client::Handle<Client>,
    command: &str,
    request: Request,
) -> (Outcome, EnvReplies) {
    let mut channel = session.channel_open_session().await.unwrap();
    let mut replies = Vec::new();
    for (name, value) in &request.env {
        channel.set_env(true, *name, *value).await.unwrap();
        replies.push(reply(&mut channel).await);
    }
    if request.pty {
        channel
            .request_pty(true, "xterm", 80, 24, 0, 0, &[])
            .await
            .unwrap();
        assert!(reply(&mut channel).await, "pty refused");
    }
    channel.exec(true, command).await.unwrap();
    let (mut read, write) = channel.split();
    let stdin = request.stdin;
    let writer = tokio::spawn(async move {
        if let Some(data) = stdin {
            // The command may end without reading it all: the channel may be gone then.
            let _ = write.data(&data[..]).await;
        }
        let _ = write.eof().await;
        write
    });
    let mut out = Outcome::default();
    let mut messages = 0usize;
    while let Some(msg) = read.wait().await {
        match msg {
            ChannelMsg::Data { data } => {
                out.stdout_len += data.len();
                out.stdout.extend_from_slice(&data);
                messages += 1;
                if request
                    .pause_every
                    .is_some_and(|n| messages.is_multiple_of(n))
                {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            ChannelMsg::ExtendedData { data, ext: 1 } => out.stderr.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => out.status = Some(exit_status),
            ChannelMsg::ExitSignal { signal_name, .. } => {
                out.signal = Some(format!("{signal_name:?}"));
            }
            _ => {}
        }
    }
    // The command may have ended without reading all of stdin: then the channel is gone
    // and the writer waits for window space forever.
    writer.abort();
    let _ = writer.await;
    (out, replies)
}

/// Runs `command` with `stdin`, then EOF.
async fn exec_stdin(session: &client::Handle<Client>, command: &str, stdin: &[u8]) -> Outcome {
    let request = Request {
        stdin: Some(stdin.to_vec()),
        ..Request::default()
    };
    exec_with(session, command, request).await.0
}

/// Starts a fleet from a config built on top of the test defaults.
fn start_with(config: impl FnOnce(&mut SimConfig)) -> (tempfile::TempDir, SimFleet) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = SimConfig {
        port: 0,
        state_dir: dir.path().join("state"),
        ..SimConfig::default()
    };
    config(&mut c);
    let fleet = SimFleet::start(c).unwrap();
    (dir, fleet)
}

/// `n` bytes of varied text.
fn text(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz\n"[i % 27])
        .collect()
}

mod agent;
mod auth;
mod bastion;
mod faults;
mod hostcert;
mod listen;
mod scale;
mod session;
mod sftp;
mod ssh;
mod state_files;
mod sudo;
