//! Engine tests against the simulated fleet (a real russh SSH server on loopback). Each scenario
//! runs with 1 shard and with several.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fleetsh::{
    Engine, ErrorKind, Event, HostKeyCheck, HostResult, HostTarget, Job, Kex, KexGuesses, Secret,
};

pub(crate) use fleetsh_testkit::sim::{Fleet, fleet};
use fleetsh_testkit::{each_shards, run};

/// The simulated hosts' names by address.
fn names(f: &Fleet) -> HashMap<String, String> {
    f.sim
        .hosts()
        .iter()
        .map(|h| (h.addr.ip().to_string(), h.name.clone()))
        .collect()
}

fn job(cmd: &str) -> Job {
    let mut j = Job::new(cmd);
    j.connect_timeout = Duration::from_secs(20);
    j
}

fn assert_one_result_per_host(results: &[Arc<HostResult>], n: usize) {
    assert_eq!(results.len(), n);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.index, i, "results are in host order");
    }
}

each_shards!(3, echo_on_every_host, |shards| {
    let f = fleet(120, 1, None);
    let engine = f.engine(shards).fanout(40).build().unwrap();
    let report = engine.run(f.targets(), job("echo hello")).unwrap().join();
    assert_one_result_per_host(&report.results, 120);
    assert_eq!(report.shards, shards);
    for r in &report.results {
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(r.stdout, b"hello\n");
        assert!(r.stderr.is_empty());
        assert!(!r.truncated);
        assert_eq!(r.attempts, 1);
        assert_eq!(r.target.user.as_deref(), Some("tester"));
        let t = r.timings;
        assert!(t.connect.is_some() && t.handshake_auth.is_some() && t.exec.is_some());
        assert!(t.first_byte.is_some());
        assert!(t.total >= t.first_byte.unwrap());
    }
});

each_shards!(3, each_host_answers_with_its_own_name, |shards| {
    let f = fleet(30, 2, None);
    let names = names(&f);
    let report = run(f.engine(shards), f.targets(), job("hostname"));
    for r in &report.results {
        let expect = format!("{}\n", names[&r.target.host]);
        assert_eq!(String::from_utf8_lossy(&r.stdout), expect);
    }
});

each_shards!(3, stdout_stderr_and_exit_code, |shards| {
    let f = fleet(10, 3, None);
    let report = f
        .engine(shards)
        .build()
        .unwrap()
        .run(f.targets(), job("echo out; echo err >&2; exit 7"))
        .unwrap()
        .join();
    assert!(!report.all_ok());
    for r in &report.results {
        assert_eq!(r.exit_code, Some(7));
        assert_eq!(r.stdout, b"out\n");
        assert_eq!(r.stderr, b"err\n");
        assert!(r.error.is_none());
        assert_eq!(r.outcome(), fleetsh::Outcome::Exit(7));
    }
});

each_shards!(3, signal_killed_command, |shards| {
    let f = fleet(4, 4, None);
    let report = f
        .engine(shards)
        .build()
        .unwrap()
        .run(f.targets(), job("echo before; kill -9 $$"))
        .unwrap()
        .join();
    for r in &report.results {
        assert_eq!(r.signal.as_deref(), Some("KILL"), "{r:?}");
        assert_eq!(r.exit_code, None);
        assert_eq!(r.stdout, b"before\n");
        assert!(r.error.is_none());
    }
});

each_shards!(3, output_cap_truncates_but_drains, |shards| {
    let f = fleet(6, 5, None);
    let mut j = job("head -c 300000 /dev/zero; echo tail >&2");
    j.output_cap = 1000;
    let report = run(f.engine(shards), f.targets(), j);
    for r in &report.results {
        assert_eq!(r.stdout.len(), 1000);
        assert!(r.truncated);
        assert_eq!(r.stderr, b"tail\n");
        assert_eq!(r.exit_code, Some(0), "the channel was drained to the end");
    }
});

each_shards!(3, streamed_output_arrives_whole, |shards| {
    let f = fleet(4, 6, None);
    let mut j = job("head -c 3000000 /dev/zero; seq 3 >&2");
    j.stream_output = true;
    j.output_cap = 16;
    let mut handle = f
        .engine(shards)
        .build()
        .unwrap()
        .run(f.targets(), j)
        .unwrap();
    let mut out = [0usize; 4];
    let mut err: Vec<Vec<u8>> = vec![Vec::new(); 4];
    let mut finished = 0;
    for ev in &mut handle {
        match ev {
            Event::Output { host, stream, data } => match stream {
                fleetsh::StreamKind::Stdout => out[host] += data.len(),
                fleetsh::StreamKind::Stderr => err[host].extend_from_slice(&data),
            },
            Event::Finished(r) => {
                finished += 1;
                assert_eq!(r.exit_code, Some(0));
                assert!(r.truncated);
            }
            _ => {}
        }
    }
    assert_eq!(finished, 4);
    assert_eq!(out, [3_000_000; 4]);
    assert!(err.iter().all(|e| e == b"1\n2\n3\n"));
});

each_shards!(3, strict_host_key_check_fails_unknown_hosts, |shards| {
    let f = fleet(8, 7, None);
    let empty = tempfile::NamedTempFile::new().unwrap();
    let report = run(
        f.engine(shards).known_hosts(empty.path()),
        f.targets(),
        job("echo hello"),
    );
    for r in &report.results {
        let e = r.error.as_ref().expect("unknown host must fail");
        assert_eq!(e.kind, ErrorKind::Hostkey, "{e}");
        assert!(e.message.contains("not in"), "{e}");
        assert!(r.stdout.is_empty());
    }
    assert!(std::fs::read_to_string(empty.path()).unwrap().is_empty());
});

each_shards!(3, changed_host_key_fails_even_in_accept_new, |shards| {
    let f = fleet(5, 8, None);
    // The same addresses, recorded with another fleet's keys (other seed).
    let other = fleet(5, 9, None);
    let text = std::fs::read_to_string(f.sim.known_hosts_file()).unwrap();
    let other_text = std::fs::read_to_string(other.sim.known_hosts_file()).unwrap();
    let forged: String = text
        .lines()
        .zip(other_text.lines())
        .map(|(mine, theirs)| {
            let name = mine.split_whitespace().next().unwrap();
            let rest: Vec<&str> = theirs.split_whitespace().skip(1).collect();
            format!("{name} {}\n", rest.join(" "))
        })
        .collect();
    let kh = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(kh.path(), &forged).unwrap();
    let report = run(
        f.engine(shards)
            .known_hosts(kh.path())
            .host_key_check(HostKeyCheck::AcceptNew),
        f.targets(),
        job("echo hello"),
    );
    for r in &report.results {
        let e = r.error.as_ref().expect("changed key must fail");
        assert_eq!(e.kind, ErrorKind::Hostkey);
        assert!(e.message.contains("does not match"), "{e}");
    }
    assert_eq!(std::fs::read_to_string(kh.path()).unwrap(), forged);
});

each_shards!(3, accept_new_learns_each_host_exactly_once, |shards| {
    let f = fleet(300, 10, None);
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("sub").join("known_hosts");
    let report = run(
        f.engine(shards)
            .known_hosts(&kh)
            .host_key_check(HostKeyCheck::AcceptNew)
            .fanout(300),
        f.targets(),
        job("true"),
    );
    assert!(report.all_ok());
    let learned = std::fs::read_to_string(&kh).unwrap();
    let mut lines: Vec<&str> = learned.lines().collect();
    assert_eq!(lines.len(), 300);
    lines.sort();
    lines.dedup();
    assert_eq!(lines.len(), 300, "no duplicate lines");
    // The learned file now passes strict checking.
    let report = run(f.engine(shards).known_hosts(&kh), f.targets(), job("true"));
    assert!(report.all_ok());
});

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

each_shards!(3, refused_connection_is_retried_then_reported, |shards| {
    let port = free_port();
    let targets = vec![
        HostTarget::new("127.0.0.1").with_port(port),
        HostTarget::new("127.0.0.1")
            .with_port(port)
            .with_user("other"),
    ];
    let kh = tempfile::NamedTempFile::new().unwrap();
    let mut j = job("true");
    j.retries = 2;
    j.retry_delay = Duration::from_millis(10);
    let report = Engine::builder()
        .shards(shards)
        .no_agent()
        // No host gets as far as authentication; a credential is still required to build.
        .password(Secret::new("unused"))
        .known_hosts(kh.path())
        .build()
        .unwrap()
        .run(targets, j)
        .unwrap()
        .join();
    for r in &report.results {
        let e = r.error.as_ref().unwrap();
        assert_eq!(e.kind, ErrorKind::Connect, "{e}");
        assert!(e.message.contains("refused"), "{e}");
        assert_eq!(r.attempts, 3);
    }
});

each_shards!(3, silent_server_hits_connect_timeout, |shards| {
    // Accepts TCP but never sends an SSH banner.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let keep = std::thread::spawn(move || {
        let mut held = Vec::new();
        for _ in 0..4 {
            if let Ok((s, _)) = listener.accept() {
                held.push(s);
            }
        }
        std::thread::sleep(Duration::from_secs(3));
    });
    let kh = tempfile::NamedTempFile::new().unwrap();
    let mut j = job("true");
    j.connect_timeout = Duration::from_millis(300);
    j.retries = 1;
    j.retry_delay = Duration::from_millis(1);
    let report = run(
        Engine::builder()
            .shards(shards)
            .no_agent()
            .password(Secret::new("unused"))
            .known_hosts(kh.path()),
        vec![HostTarget::new("127.0.0.1").with_port(port)],
        j,
    );
    let r = &report.results[0];
    let e = r.error.as_ref().unwrap();
    assert_eq!(e.kind, ErrorKind::ConnectTimeout, "{e}");
    assert!(e.message.contains("ssh handshake"), "{e}");
    assert_eq!(r.attempts, 2);
    drop(keep);
});

each_shards!(
    3,
    junk_after_the_banner_fails_the_handshake_at_once,
    |shards| {
        // A valid identification line, then bytes whose first four announce a 4096-byte packet
        // that is not whole 8-byte blocks: a protocol error as soon as it is read (OpenSSH's
        // "message authentication code incorrect"), not a wait for the connect timeout.
        use std::io::Write as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let keep = std::thread::spawn(move || {
            let mut held = Vec::new();
            if let Ok((mut s, _)) = listener.accept() {
                let _ = s.write_all(
                    b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n\x00\x00\x10\x00junkjunkjunkjunk",
                );
                held.push(s);
            }
            std::thread::sleep(Duration::from_secs(5));
        });
        let kh = tempfile::NamedTempFile::new().unwrap();
        let mut j = job("true");
        j.connect_timeout = Duration::from_secs(60);
        let report = run(
            Engine::builder()
                .shards(shards)
                .no_agent()
                .password(Secret::new("unused"))
                .known_hosts(kh.path()),
            vec![HostTarget::new("127.0.0.1").with_port(port)],
            j,
        );
        let e = report.results[0].error.as_ref().unwrap();
        assert_eq!(e.kind, ErrorKind::Handshake, "{e}");
        assert!(e.message.contains("packet size"), "{e}");
        drop(keep);
    }
);

each_shards!(3, command_timeout_keeps_output, |shards| {
    let f = fleet(5, 11, None);
    let mut j = job("echo before; sleep 30");
    j.command_timeout = Some(Duration::from_millis(500));
    let report = run(f.engine(shards), f.targets(), j);
    for r in &report.results {
        let e = r.error.as_ref().unwrap();
        assert_eq!(e.kind, ErrorKind::CommandTimeout);
        assert_eq!(r.stdout, b"before\n");
        assert_eq!(r.exit_code, None);
    }
});

each_shards!(3, wrong_key_is_an_auth_error_naming_methods, |shards| {
    let f = fleet(3, 12, None);
    let other = fleet(1, 13, None);
    let report = run(
        Engine::builder()
            .shards(shards)
            .no_agent()
            .identity_file(other.sim.client_key_file())
            .known_hosts(f.sim.known_hosts_file()),
        f.targets(),
        job("true"),
    );
    for r in &report.results {
        let e = r.error.as_ref().unwrap();
        assert_eq!(e.kind, ErrorKind::Auth, "{e}");
        assert!(e.message.contains("tried publickey"), "{e}");
        assert!(e.message.contains("server offers publickey"), "{e}");
    }
});

each_shards!(3, password_authentication, |shards| {
    let f = fleet(4, 14, Some("s3cret-pw"));
    let engine = Engine::builder()
        .shards(shards)
        .no_agent()
        .identity_file(Path::new("/nonexistent-is-not-used"))
        .known_hosts(f.sim.known_hosts_file())
        .password(Secret::new("s3cret-pw"));
    // An explicit key file that does not exist is a build error naming it.
    let err = engine.clone().build().unwrap_err().to_string();
    assert!(err.contains("/nonexistent-is-not-used"), "{err}");
    // Without key files (defaults only, none present under a fake HOME), the password is used.
    let engine = Engine::builder()
        .shards(shards)
        .no_agent()
        .known_hosts(f.sim.known_hosts_file())
        .password(Secret::new("s3cret-pw"))
        .build()
        .unwrap();
    assert!(
        !format!("{engine:?}").contains("s3cret-pw"),
        "Debug never shows the password"
    );
    let report = engine.run(f.targets(), job("echo in")).unwrap().join();
    for r in &report.results {
        // The default key files of the user running the tests are tried first and refused.
        assert!(r.is_ok(), "{r:?}");
    }
    let wrong = Engine::builder()
        .shards(shards)
        .no_agent()
        .known_hosts(f.sim.known_hosts_file())
        .password(Secret::new("wrong"))
        .build()
        .unwrap();
    let report = wrong.run(f.targets(), job("echo in")).unwrap().join();
    for r in &report.results {
        let e = r.error.as_ref().unwrap();
        assert_eq!(e.kind, ErrorKind::Auth);
        assert!(e.message.contains("password"), "{e}");
        assert!(
            !e.message.contains("wrong"),
            "the password never appears: {e}"
        );
    }
});

each_shards!(3, cancel_keeps_output_and_ends_every_host, |shards| {
    let f = fleet(40, 15, None);
    let mut j = job("echo started; sleep 30");
    j.stream_output = true;
    let mut handle = f
        .engine(shards)
        .fanout(10)
        .build()
        .unwrap()
        .run(f.targets(), j)
        .unwrap();
    let mut started = 0;
    while started < 10 {
        match handle.next_event() {
            Some(Event::Output { .. }) => started += 1,
            Some(_) => {}
            None => panic!("run ended before cancel"),
        }
    }
    handle.cancel();
    let report = handle.join();
    assert_one_result_per_host(&report.results, 40);
    let mut with_output = 0;
    for r in &report.results {
        let e = r.error.as_ref().expect("every host is cancelled");
        assert_eq!(e.kind, ErrorKind::Cancelled, "{e}");
        if r.stdout == b"started\n" {
            with_output += 1;
        } else {
            assert!(r.stdout.is_empty());
        }
    }
    assert!(
        with_output >= 10,
        "output received before the cancel is kept"
    );
});

/// Shard 1 panics as it takes its first host: that host ends `internal`, and every host it would
/// have taken after runs on shard 0 (a run's shards take hosts from a shared cursor).
#[test]
fn a_panicking_shard_does_not_lose_other_shards_results() {
    let f = fleet(20, 16, None);
    let report = run(
        f.engine(2).panic_shard_for_test(1),
        f.targets(),
        job("echo hello"),
    );
    assert_one_result_per_host(&report.results, 20);
    let internal: Vec<_> = report.results.iter().filter(|r| !r.is_ok()).collect();
    assert!(
        internal.len() <= 1,
        "only the host shard 1 took: {internal:?}"
    );
    for r in internal {
        let e = r.error.as_ref().unwrap();
        assert_eq!(e.kind, ErrorKind::Internal);
        assert!(e.message.contains("stopped without a result"), "{e}");
    }
    assert!(report.results.iter().filter(|r| r.is_ok()).count() >= 19);
}

#[test]
fn async_stream_yields_every_result() {
    use futures_util::StreamExt;
    let f = fleet(50, 17, None);
    let engine = f.engine(2).build().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (finished, outputs) = rt.block_on(async {
        let mut j = job("echo hi");
        j.stream_output = true;
        let mut stream = engine.run(f.targets(), j).unwrap().stream();
        let (mut finished, mut outputs) = (0, 0);
        while let Some(ev) = stream.next().await {
            match ev {
                Event::Finished(r) => {
                    assert!(r.is_ok());
                    finished += 1;
                }
                Event::Output { .. } => outputs += 1,
                _ => {}
            }
        }
        (finished, outputs)
    });
    assert_eq!(finished, 50);
    assert!(outputs >= 50);
    // join() on a stream returns the full report.
    let report = rt.block_on(
        engine
            .run(f.targets(), job("true"))
            .unwrap()
            .stream()
            .join(),
    );
    assert_eq!(report.results.len(), 50);
    assert!(report.all_ok());
}

#[test]
fn bad_job_and_empty_host_list_are_errors() {
    let kh = tempfile::NamedTempFile::new().unwrap();
    let engine = Engine::builder()
        .no_agent()
        .password(Secret::new("unused"))
        .known_hosts(kh.path())
        .build()
        .unwrap();
    let err = engine
        .run(vec![HostTarget::new("h")], Job::new(""))
        .unwrap_err()
        .to_string();
    assert!(err.contains("command"), "{err}");
    let err = engine
        .run(Vec::new(), Job::new("true"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no hosts"), "{err}");
    let err = Engine::builder().fanout(0).build().unwrap_err().to_string();
    assert!(err.contains("fanout"), "{err}");
}

each_shards!(3, batches_run_one_after_another_with_host_args, |shards| {
    let f = fleet(30, 18, None);
    let mut handle = f
        .engine(shards)
        .batch(fleetsh::Amount::Count(10))
        .build()
        .unwrap()
        .run(
            f.targets(),
            Job::template("echo {index} {host}").connect_timeout(Duration::from_secs(20)),
        )
        .unwrap();
    let mut order = Vec::new();
    for ev in &mut handle {
        if let Event::Finished(r) = ev {
            assert!(r.is_ok(), "{r:?}");
            let expect = format!("{} {}\n", r.index, r.target.host);
            assert_eq!(String::from_utf8_lossy(&r.stdout), expect);
            order.push(r.index);
        }
    }
    assert_eq!(order.len(), 30);
    for (pos, idx) in order.iter().enumerate() {
        assert_eq!(
            pos / 10,
            idx / 10,
            "batch {} finished out of turn: {order:?}",
            idx / 10
        );
    }
});

#[test]
fn max_fail_skips_the_rest_once_passed() {
    let f = fleet(40, 19, None);
    let report = run(
        f.engine(1).fanout(1).max_fail(fleetsh::Amount::Count(3)),
        f.targets(),
        job("exit 1"),
    );
    assert_one_result_per_host(&report.results, 40);
    let ran = report
        .results
        .iter()
        .filter(|r| r.exit_code == Some(1))
        .count();
    assert_eq!(ran, 4, "hosts run until failures pass the threshold of 3");
    for r in report.results.iter().filter(|r| r.exit_code.is_none()) {
        let e = r.error.as_ref().unwrap();
        assert_eq!(e.kind, ErrorKind::Skipped);
        assert!(e.message.contains("max-fail"), "{e}");
    }
}

each_shards!(3, max_fail_percentage_stops_later_batches, |shards| {
    let f = fleet(20, 20, None);
    let report = run(
        f.engine(shards)
            .batch(fleetsh::Amount::Count(5))
            .max_fail(fleetsh::Amount::Percent(10.0)),
        f.targets(),
        job("exit 2"),
    );
    let kinds: Vec<Option<ErrorKind>> = report
        .results
        .iter()
        .map(|r| r.error.as_ref().map(|e| e.kind))
        .collect();
    assert!(
        kinds[..5].iter().all(|k| k.is_none()),
        "the first batch ran"
    );
    assert!(
        kinds[5..].iter().all(|k| *k == Some(ErrorKind::Skipped)),
        "{kinds:?}"
    );
});

#[test]
fn rate_spaces_new_connections() {
    let f = fleet(10, 21, None);
    let started = std::time::Instant::now();
    let report = run(f.engine(2).rate(20.0), f.targets(), job("true"));
    assert!(report.all_ok());
    // Ten connections at 20/s: the last starts at least 9 × 50 ms after the first.
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn cancelled_batched_run_ends_later_batches_as_cancelled() {
    let f = fleet(12, 22, None);
    let mut j = job("echo go; sleep 30");
    j.stream_output = true;
    let mut handle = f
        .engine(2)
        .batch(fleetsh::Amount::Count(4))
        .build()
        .unwrap()
        .run(f.targets(), j)
        .unwrap();
    let mut seen = 0;
    while seen < 4 {
        if let Some(Event::Output { .. }) = handle.next_event() {
            seen += 1;
        }
    }
    handle.cancel();
    let report = handle.join();
    assert_one_result_per_host(&report.results, 12);
    for r in &report.results {
        assert_eq!(r.error.as_ref().unwrap().kind, ErrorKind::Cancelled);
    }
    assert!(report.results[..4].iter().all(|r| r.stdout == b"go\n"));
    assert!(report.results[4..].iter().all(|r| r.stdout.is_empty()));
}

#[test]
fn try_next_event_takes_every_result_of_a_batched_run() {
    // The non-blocking form starts each next batch as the previous one ends, hands out every
    // host exactly once, and has nothing more once the run is over.
    let f = fleet(30, 23, None);
    let mut handle = f
        .engine(2)
        .batch(fleetsh::Amount::Count(10))
        .build()
        .unwrap()
        .run(f.targets(), job("echo hi"))
        .unwrap();
    let mut finished = [0usize; 30];
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while handle.remaining() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no progress: {finished:?}"
        );
        match handle.try_next_event() {
            Some(Event::Finished(r)) => {
                assert!(r.is_ok(), "{r:?}");
                finished[r.index] += 1;
            }
            Some(_) => {}
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    assert!(finished.iter().all(|&n| n == 1), "{finished:?}");
    assert!(handle.try_next_event().is_none());
    assert!(handle.next_event().is_none());
    let report = handle.join();
    assert_one_result_per_host(&report.results, 30);
    assert!(report.all_ok());
}

/// A handshake sends its key exchange packet with its KEXINIT while the servers put the same
/// algorithms first (the simulated hosts do: russh's defaults, as OpenSSH 10's): the guesses
/// are right. With curve25519 first they are wrong: the hosts ignore them, every host still
/// succeeds, and the engine stops guessing. Off, it never guesses.
#[test]
fn kex_guess_is_right_against_agreeing_hosts_and_stops_when_wrong() {
    let f = fleet(30, 7, None);
    let engine = f.engine(2).build().unwrap();
    assert_eq!(engine.kex_guesses(), Some(KexGuesses::default()));
    let report = engine.run(f.targets(), job("echo hi")).unwrap().join();
    assert!(report.results.iter().all(|r| r.is_ok()), "{report:?}");
    let g = engine.kex_guesses().unwrap();
    assert_eq!((g.right, g.wrong), (30, 0));

    let curve = f.engine(2).kex(Kex::Curve25519).build().unwrap();
    let report = curve.run(f.targets(), job("echo hi")).unwrap().join();
    assert!(report.results.iter().all(|r| r.is_ok()), "{report:?}");
    let g = curve.kex_guesses().unwrap();
    assert_eq!(g.right, 0);
    assert!((1..=30).contains(&g.wrong), "{g:?}");
    // The hosts still disagree: no more guesses.
    let report = curve.run(f.targets(), job("echo hi")).unwrap().join();
    assert!(report.results.iter().all(|r| r.is_ok()), "{report:?}");
    assert_eq!(curve.kex_guesses(), Some(g));

    let off = f.engine(2).kex_guess(false).build().unwrap();
    assert_eq!(off.kex_guesses(), None);
    let report = off.run(f.targets(), job("echo hi")).unwrap().join();
    assert!(report.results.iter().all(|r| r.is_ok()), "{report:?}");
}

/// Each result names the server and what its key exchange settled on: the key exchange asked
/// for, the host key checked, the cipher; also for a host whose login then failed, not for one
/// whose host key was refused; and for every job on a kept connection.
#[test]
fn results_name_the_server_and_the_algorithms_negotiated() {
    let f = fleet(3, 31, None);
    for (kex, name) in [
        (Kex::Default, "mlkem768x25519-sha256"),
        (Kex::Curve25519, "curve25519-sha256"),
    ] {
        let report = run(f.engine(2).kex(kex), f.targets(), job("true"));
        for r in &report.results {
            assert!(r.is_ok(), "{r:?}");
            let s = r
                .server
                .as_ref()
                .expect("a server once the handshake is done");
            assert!(s.version.starts_with("SSH-2.0-"), "{s:?}");
            assert!(
                !s.version.ends_with('\n') && !s.version.ends_with('\r'),
                "{s:?}"
            );
            assert_eq!((s.kex.as_str(), s.host_key.as_str()), (name, "ssh-ed25519"));
            assert!(
                ["aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com"]
                    .contains(&s.cipher.as_str()),
                "{s:?}"
            );
        }
    }
    // A login refused after the key exchange: the server is known.
    let stranger = tempfile::tempdir().unwrap();
    let key = stranger.path().join("id_ed25519");
    fleetsh_testkit::sshd::keygen(&key);
    let stranger_engine = Engine::builder()
        .shards(1)
        .user("tester")
        .no_agent()
        .identity_file(&key)
        .known_hosts(f.sim.known_hosts_file());
    let report = run(stranger_engine, f.targets(), job("true"));
    for r in &report.results {
        assert_eq!(
            r.error.as_ref().map(|e| e.kind),
            Some(ErrorKind::Auth),
            "{r:?}"
        );
        assert!(r.server.is_some(), "{r:?}");
    }
    // A host key refused: the handshake stopped before it settled.
    let empty = tempfile::NamedTempFile::new().unwrap();
    let report = run(
        f.engine(1).known_hosts(empty.path()),
        f.targets(),
        job("true"),
    );
    for r in &report.results {
        assert_eq!(r.error.as_ref().map(|e| e.kind), Some(ErrorKind::Hostkey));
        assert_eq!(r.server, None, "{r:?}");
    }
    // A connected fleet's later jobs report the server of their kept connection.
    let engine = f.engine(2).build().unwrap();
    let fleet = engine.connect(f.targets()).unwrap();
    let first = fleet.run(job("true")).unwrap().join();
    let again = fleet.run(job("true")).unwrap().join();
    for (a, b) in first.results.iter().zip(&again.results) {
        assert!(b.timings.connect.is_none(), "kept: {b:?}");
        assert!(a.server.is_some());
        assert_eq!(a.server, b.server);
    }
}
