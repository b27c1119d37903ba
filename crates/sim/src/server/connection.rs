//! One SSH connection of a host: the `slow-banner` delay, the stream with its latency and
//! its `drop`, `sftp-cut` and `freeze` switches, the russh session with its
//! [`SimHandler`], and its end (the client's, the fleet's stop, or a fault's).

use std::sync::Arc;
use std::time::Duration;

use russh::Disconnect;
use russh::server;
use tokio::net::TcpStream;

use super::handler::SimHandler;
use super::host::{Host, Lifeline, Shared};
use crate::Fault;
use crate::sftp::SftpCut;
use crate::stream::{CutSwitch, Freeze, SimStream};

/// Runs one SSH connection until it ends, the fleet stops, or a `drop` fault cuts it.
pub(super) async fn serve_connection(
    host: Arc<Host>,
    shared: Arc<Shared>,
    stream: TcpStream,
    mut lifeline: Lifeline,
) {
    if let Some(Fault::SlowBanner(delay)) = host.behaviour.fault {
        tokio::select! {
            () = lifeline.stopping() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
    // `drop` and `sftp-cut` faults: a switch that shuts the socket down under the session
    // (which runs in a task of its own once started).
    let (stream, cut) = match host.behaviour.fault {
        Some(Fault::Drop | Fault::SftpCut(_)) => match CutSwitch::new(stream) {
            Ok((stream, switch)) => (stream, Some(switch)),
            Err(e) => {
                tracing::warn!(host = %host.shell.name, "cannot set up the drop fault: {e}");
                return;
            }
        },
        _ => (stream, None),
    };
    // `freeze` fault: armed at authentication; holds the socket open once frozen.
    let (stream, freeze) = match host.behaviour.fault {
        Some(Fault::Freeze(after)) => match Freeze::new(stream, after) {
            Ok((stream, freeze)) => (stream, Some(freeze)),
            Err(e) => {
                tracing::warn!(host = %host.shell.name, "cannot set up the freeze fault: {e}");
                return;
            }
        },
        _ => (stream, None),
    };
    let mut stream = SimStream::new(stream, shared.latency);
    if let Some(switch) = &cut {
        stream = stream.with_cut_switch(switch.clone());
    }
    if let Some(freeze) = &freeze {
        stream = stream.with_freeze(freeze.clone());
    }
    let sftp_cut = match (&host.behaviour.fault, &cut) {
        (Some(Fault::SftpCut(limit)), Some(switch)) => Some(SftpCut::new(switch.clone(), *limit)),
        _ => None,
    };
    let handler = SimHandler::new(host.clone(), shared.clone(), cut, sftp_cut, freeze.clone());
    // `run_stream` waits for the client's identification line: a silent client must not
    // hold up shutdown.
    let started = tokio::select! {
        () = lifeline.stopping() => return,
        started = server::run_stream(host.config.clone(), stream, handler) => started,
    };
    let mut session = match started {
        Ok(session) => session,
        Err(e) => {
            tracing::debug!("ssh connection setup failed: {e}");
            return;
        }
    };
    let handle = session.handle();
    let frozen = || freeze.as_ref().is_some_and(|f| f.is_frozen());
    tokio::select! {
        // A frozen server says no goodbye: dropping the session closes the socket.
        () = lifeline.stopping() => if !frozen() {
            let _ = handle
                .disconnect(Disconnect::ByApplication, "sim fleet stopping".into(), String::new())
                .await;
            // Let the session flush the disconnect; runtime shutdown ends it otherwise.
            let _ = tokio::time::timeout(Duration::from_millis(500), &mut session).await;
        },
        ended = &mut session => {
            if let Err(e) = ended {
                tracing::debug!("ssh session ended: {e}");
            }
        }
    }
    // A session stuck in the freeze that gave up (its inactivity timeout) leaves the
    // connection open, held by the freeze switch, until the fleet stops. (One that ended
    // before the freeze stopped it, because the client went, just closes.)
    if freeze.as_ref().is_some_and(|f| f.hit()) {
        drop(session);
        lifeline.stopping().await;
    }
}
