//! An async service embedding fleetsh: under `#[tokio::main]` (on one thread, so that anything
//! blocking it would show), it runs a command on every host of a fleet and consumes each host's
//! result as it arrives through `RunHandle::stream()`, while another task of the same runtime
//! keeps ticking (fleetsh's shards run on their own threads, so the service's runtime is never
//! blocked). Then it starts a long command and
//! cancels it, as a service does on shutdown.
//!
//! Run with: `cargo run --bin service -- STATE_DIR` (a `fleetsh sim --state-dir STATE_DIR`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fleetsh::{Engine, Event, HostList, Job};
use futures_util::StreamExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let state = PathBuf::from(std::env::args().nth(1).ok_or("usage: service STATE_DIR")?);
    let hosts = HostList::new()
        .include_file(&state.join("hosts"))?
        .build()?;
    let engine = Engine::builder()
        .no_agent()
        .identity_file(state.join("id_ed25519"))
        .known_hosts(state.join("known_hosts"))
        .build()?;

    // A heartbeat on the service's own runtime: it must keep running during the fleet run.
    let ticks = Arc::new(AtomicU64::new(0));
    let heartbeat = tokio::spawn({
        let ticks = ticks.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        }
    });

    let mut stream = engine.run(hosts.clone(), Job::new("echo hello"))?.stream();
    let (mut ok, mut failed) = (0usize, 0usize);
    while let Some(event) = stream.next().await {
        if let Event::Finished(r) = event {
            if r.is_ok() && r.stdout.as_slice() == b"hello\n" {
                ok += 1;
            } else {
                failed += 1;
                eprintln!("{}: {:?}", r.target, r.error);
            }
        }
    }
    let beats = ticks.load(Ordering::Relaxed);
    println!(
        "service: {ok} ok, {failed} failed of {}; heartbeat ticked {beats} times",
        hosts.len()
    );

    // Shutdown: a long command, cancelled after a second. Every host still ends with one
    // result (cancelled), and nothing blocks the runtime.
    let mut stream = engine.run(hosts.clone(), Job::new("sleep 30"))?.stream();
    let mut results = 0usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut cancel_at = Some(tokio::time::Instant::now() + Duration::from_secs(1));
    loop {
        let next = match cancel_at {
            Some(at) => match tokio::time::timeout_at(at, stream.next()).await {
                Ok(next) => next,
                Err(_) => {
                    stream.cancel();
                    cancel_at = None;
                    continue;
                }
            },
            None => tokio::time::timeout_at(deadline, stream.next()).await?,
        };
        match next {
            Some(Event::Finished(_)) => results += 1,
            Some(_) => {}
            None => break,
        }
    }
    heartbeat.abort();
    println!(
        "service: cancelled run ended with {results} results of {}",
        hosts.len()
    );

    let good = ok == hosts.len() && failed == 0 && beats > 0 && results == hosts.len();
    Ok(if good {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
