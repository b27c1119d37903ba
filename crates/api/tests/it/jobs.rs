//! Jobs as embedders build them, against the simulated fleet: literal commands and explicit
//! templates, per-host commands (function, map, list), the idle timeout, and output by lines
//! (blocking and async).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fleetsh::{ErrorKind, HostResult, HostTarget, Job, LineEnd, LineEvent, StreamKind};

use crate::engine::fleet;

fn limits(job: Job) -> Job {
    job.connect_timeout(Duration::from_secs(20))
}

fn stdout(r: &HostResult) -> String {
    String::from_utf8_lossy(&r.stdout).into_owned()
}

#[test]
fn a_plain_command_is_sent_literally_braces_and_all() {
    let f = fleet(3, 101, None);
    let engine = f.engine(2).build().unwrap();
    let report = engine
        .run(
            f.targets(),
            limits(Job::new("echo '{index}' {host} {{.Names}}")),
        )
        .unwrap()
        .join();
    assert_eq!(report.results.len(), 3);
    for r in &report.results {
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(stdout(r), "{index} {host} {{.Names}}\n");
    }
}

#[test]
fn a_template_replaces_host_and_index_and_keeps_other_braces() {
    let f = fleet(4, 102, None);
    let engine = f.engine(2).build().unwrap();
    let report = engine
        .run(
            f.targets(),
            limits(Job::template("echo {host} {index} {} ${X}x")),
        )
        .unwrap()
        .join();
    for r in &report.results {
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(stdout(r), format!("{} {} {{}} x\n", r.target.host, r.index));
    }
}

#[test]
fn a_per_host_function_gets_each_host_with_its_user_port_and_index() {
    let f = fleet(5, 103, None);
    let engine = f.engine(3).build().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let job = Job::per_host(move |t: &HostTarget, i: usize| {
        counted.fetch_add(1, Ordering::SeqCst);
        format!(
            "echo {} {} {} {i}",
            t.host,
            t.user.as_deref().unwrap_or("?"),
            t.port.unwrap_or(0)
        )
    });
    assert_eq!(format!("{job:?}").matches("<per-host closure>").count(), 1);
    let report = engine.run(f.targets(), limits(job)).unwrap().join();
    assert_eq!(calls.load(Ordering::SeqCst), 5, "called once per host");
    for r in &report.results {
        assert!(r.is_ok(), "{r:?}");
        let port = f.targets()[r.index].port.unwrap();
        assert_eq!(
            stdout(r),
            format!("{} tester {port} {}\n", r.target.host, r.index)
        );
    }
}

#[test]
fn a_per_host_map_gives_each_host_its_command() {
    let f = fleet(4, 104, None);
    let engine = f.engine(2).build().unwrap();
    let targets = f.targets();
    // Keyed by the host as written (with its port) for some, by the bare name for others.
    let map: HashMap<String, String> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let key = if i % 2 == 0 {
                t.to_string()
            } else {
                t.host.clone()
            };
            (key, format!("echo mapped {i}"))
        })
        .collect();
    let report = engine
        .run(targets, limits(Job::per_host_map(map)))
        .unwrap()
        .join();
    for r in &report.results {
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(stdout(r), format!("mapped {}\n", r.index));
    }
}

#[test]
fn a_host_the_map_misses_stops_the_run_before_anything_connects() {
    let f = fleet(3, 105, None);
    let engine = f.engine(1).build().unwrap();
    let targets = f.targets();
    let missing = targets[2].clone();
    let map = [
        (targets[0].to_string(), "echo a".to_string()),
        (targets[1].host.clone(), "echo b".to_string()),
    ];
    let err = engine
        .run(targets, limits(Job::per_host_map(map)))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&missing.to_string()) && err.contains("index 2"),
        "{err}"
    );
    for i in 0..3 {
        assert_eq!(f.sim.connections_accepted(i), 0, "host {i} was contacted");
    }
}

#[test]
fn a_per_host_list_must_have_one_command_per_host() {
    let f = fleet(3, 106, None);
    let engine = f.engine(1).build().unwrap();
    let err = engine
        .run(
            f.targets(),
            limits(Job::per_host_list(["echo 0", "echo 1"])),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("2 commands for 3 hosts"), "{err}");
    let report = engine
        .run(
            f.targets(),
            limits(Job::per_host_list(["echo 0", "echo 1", "exit 7"])),
        )
        .unwrap()
        .join();
    assert_eq!(stdout(&report.results[1]), "1\n");
    assert_eq!(report.results[2].exit_code, Some(7));
}

#[test]
fn per_host_commands_run_on_a_connected_fleet_job_after_job() {
    let f = fleet(4, 107, None);
    let engine = f.engine(2).build().unwrap();
    let connected = engine.connect(f.targets()).unwrap();
    for round in 0..2 {
        let job = Job::per_host(move |_: &HostTarget, i: usize| format!("echo {round}-{i}"));
        let report = connected.run(limits(job)).unwrap().join();
        for r in &report.results {
            assert!(r.is_ok(), "{r:?}");
            assert_eq!(stdout(r), format!("{round}-{}\n", r.index));
        }
    }
}

#[test]
fn per_host_commands_cover_only_the_hosts_a_fleet_job_runs_on() {
    let f = fleet(4, 109, None);
    let engine = f.engine(2).build().unwrap();
    let connected = engine.connect(f.targets()).unwrap();
    // The list gives the selected hosts their commands in order; the others need none.
    let report = connected
        .run_on(
            &[1, 3],
            limits(Job::per_host_list(["echo one", "echo three"])),
        )
        .unwrap()
        .join();
    let got: Vec<(usize, String)> = report
        .results
        .iter()
        .map(|r| (r.index, stdout(r)))
        .collect();
    assert_eq!(got, [(1, "one\n".to_string()), (3, "three\n".to_string())]);
    // A map that misses a host the job does not run on is fine; one it runs on is refused.
    let t = f.targets();
    let map = [(t[0].to_string(), "echo zero".to_string())];
    let report = connected
        .run_on(&[0], limits(Job::per_host_map(map.clone())))
        .unwrap()
        .join();
    assert_eq!(stdout(&report.results[0]), "zero\n");
    let e = connected
        .run_on(&[0, 2], limits(Job::per_host_map(map)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("index 2"), "{e}");
    // After a removal, a whole-fleet job's list has one command per host left.
    connected.remove_hosts(&[0]).unwrap();
    let report = connected
        .run(limits(Job::per_host_list(["echo b", "echo c", "echo d"])))
        .unwrap()
        .join();
    let got: Vec<String> = report.results.iter().map(|r| stdout(r)).collect();
    assert_eq!(got, ["b\n", "c\n", "d\n"]);
}

#[test]
fn a_per_host_command_goes_through_sudo_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let sim = fleetsh_sim::SimFleet::start(fleetsh_sim::SimConfig {
        count: 2,
        port: 0,
        seed: 108,
        state_dir: dir.path().to_path_buf(),
        sudo_password: Some("sesame".into()),
        ..fleetsh_sim::SimConfig::default()
    })
    .expect("the simulated fleet must start for this test");
    let targets: Vec<HostTarget> = sim
        .hosts()
        .iter()
        .map(|h| HostTarget::new(h.addr.ip().to_string()).with_port(h.addr.port()))
        .collect();
    let engine = fleetsh::Engine::builder()
        .shards(1)
        .user("tester")
        .no_agent()
        .identity_file(sim.client_key_file())
        .known_hosts(sim.known_hosts_file())
        .build()
        .unwrap();
    let job =
        Job::per_host(|_: &HostTarget, i: usize| format!("echo {i}; whoami")).sudo(fleetsh::Sudo {
            user: None,
            password: Some(fleetsh::Secret::new("sesame")),
        });
    let report = engine.run(targets, limits(job)).unwrap().join();
    for r in &report.results {
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(stdout(r), format!("{}\nroot\n", r.index));
    }
}

#[test]
fn the_idle_timeout_ends_a_silent_command_and_keeps_its_output() {
    let f = fleet(3, 109, None);
    let engine = f.engine(2).build().unwrap();
    let job = limits(Job::new("echo first; echo oops >&2; sleep 60; echo never"))
        .idle_timeout(Duration::from_secs(1));
    let report = engine.run(f.targets(), job).unwrap().join();
    for r in &report.results {
        let e = r.error.as_ref().expect("the idle timeout ends the host");
        assert_eq!(e.kind, ErrorKind::CommandTimeout, "{e}");
        assert!(
            e.message.contains("idle timeout") && e.message.contains("1s"),
            "{e}"
        );
        assert_eq!(stdout(r), "first\n");
        assert_eq!(String::from_utf8_lossy(&r.stderr), "oops\n");
        assert!(r.timings.total < Duration::from_secs(30), "{r:?}");
    }
}

#[test]
fn the_idle_timeout_spares_a_command_that_keeps_talking() {
    let f = fleet(2, 110, None);
    let engine = f.engine(1).build().unwrap();
    // Quiet for 1 s at a time, 4 s in all: longer than the idle timeout, never silent as long.
    let job = limits(Job::new(
        "echo 1; sleep 1; echo 2 >&2; sleep 1; echo 3; sleep 1; echo 4; sleep 1; echo 5",
    ))
    .idle_timeout(Duration::from_secs(3));
    let report = engine.run(f.targets(), job).unwrap().join();
    for r in &report.results {
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(stdout(r), "1\n3\n4\n5\n");
    }
}

/// What the line adapters delivered for one host.
#[derive(Debug, Default)]
struct Seen {
    stdout: Vec<(String, LineEnd)>,
    stderr: Vec<(String, LineEnd)>,
    finished: bool,
}

/// Folds line events into per-host records, checking that no line of a host comes after its
/// result and that each host finishes once.
fn collect(events: impl IntoIterator<Item = LineEvent>, hosts: usize) -> Vec<Seen> {
    let mut seen: Vec<Seen> = (0..hosts).map(|_| Seen::default()).collect();
    for ev in events {
        match ev {
            LineEvent::Line(l) => {
                let s = &mut seen[l.index];
                assert!(!s.finished, "a line of host {} after its result", l.index);
                let entry = (l.text().into_owned(), l.end);
                match l.stream {
                    StreamKind::Stdout => s.stdout.push(entry),
                    StreamKind::Stderr => s.stderr.push(entry),
                }
            }
            LineEvent::Finished(r) => {
                let s = &mut seen[r.index];
                assert!(!s.finished, "host {} finished twice", r.index);
                assert!(r.is_ok(), "{r:?}");
                s.finished = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    seen
}

/// Interleaved stdout and stderr, a line sent in two parts, and last lines without a newline.
const CHATTY: &str = "echo o1; echo e1 >&2; echo -n o2-; sleep 0.2; echo part2; \
    echo e2 >&2; echo o3; echo -n e-tail >&2; echo -n o-tail";

fn check_chatty(seen: &[Seen]) {
    use LineEnd::{Eof, Newline};
    let line = |s: &str, e: LineEnd| (s.to_string(), e);
    for (i, s) in seen.iter().enumerate() {
        assert!(s.finished, "host {i} has no result");
        assert_eq!(
            s.stdout,
            [
                line("o1", Newline),
                line("o2-part2", Newline),
                line("o3", Newline),
                line("o-tail", Eof)
            ],
            "host {i}"
        );
        assert_eq!(
            s.stderr,
            [
                line("e1", Newline),
                line("e2", Newline),
                line("e-tail", Eof)
            ],
            "host {i}"
        );
    }
}

#[test]
fn lines_arrive_whole_in_order_per_host_and_stream_then_the_result() {
    let f = fleet(6, 111, None);
    let engine = f.engine(3).build().unwrap();
    let handle = engine
        .run(f.targets(), limits(Job::new(CHATTY).stream_output(true)))
        .unwrap();
    let lines = handle.lines();
    assert_eq!(lines.hosts().len(), 6);
    check_chatty(&collect(lines, 6));
}

#[test]
fn lines_come_from_results_when_output_is_not_streamed() {
    let f = fleet(4, 112, None);
    let engine = f.engine(2).build().unwrap();
    let handle = engine.run(f.targets(), limits(Job::new(CHATTY))).unwrap();
    check_chatty(&collect(handle.lines(), 4));
}

#[test]
fn async_lines_follow_the_same_rules() {
    let f = fleet(5, 113, None);
    let engine = f.engine(2).build().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let events: Vec<LineEvent> = rt.block_on(async {
        use futures_util::StreamExt;
        let stream = engine
            .run(f.targets(), limits(Job::new(CHATTY).stream_output(true)))
            .unwrap()
            .stream()
            .lines();
        stream.collect().await
    });
    check_chatty(&collect(events, 5));
}

#[test]
fn lines_are_byte_exact_and_crlf_ends_a_line() {
    let f = fleet(2, 114, None);
    let engine = f.engine(1).build().unwrap();
    let input = b"a\r\nb\xff\xfe\n\rc".to_vec();
    let job = limits(Job::new("cat").stdin(input).stream_output(true));
    let mut per_host: Vec<Vec<(Vec<u8>, LineEnd)>> = vec![Vec::new(); 2];
    for ev in engine.run(f.targets(), job).unwrap().lines() {
        if let LineEvent::Line(l) = ev {
            assert_eq!(l.stream, StreamKind::Stdout);
            per_host[l.index].push((l.bytes, l.end));
        }
    }
    for lines in per_host {
        assert_eq!(
            lines,
            [
                (b"a".to_vec(), LineEnd::Newline),
                (b"b\xff\xfe".to_vec(), LineEnd::Newline),
                (b"\rc".to_vec(), LineEnd::Eof),
            ]
        );
    }
}

#[test]
fn a_line_without_end_is_handed_out_in_bounded_pieces() {
    let f = fleet(2, 115, None);
    let engine = f.engine(1).build().unwrap();
    let job = limits(Job::new("head -c 200000 /dev/zero").stream_output(true));
    let max = 65_536;
    let lines = engine.run(f.targets(), job).unwrap().lines().max_line(max);
    let mut sizes: Vec<Vec<(usize, LineEnd)>> = vec![Vec::new(); 2];
    for ev in lines {
        if let LineEvent::Line(l) = ev {
            assert!(l.bytes.iter().all(|&b| b == 0));
            sizes[l.index].push((l.bytes.len(), l.end));
        }
    }
    for s in sizes {
        assert_eq!(
            s,
            [
                (max, LineEnd::Split),
                (max, LineEnd::Split),
                (max, LineEnd::Split),
                (200_000 - 3 * max, LineEnd::Eof)
            ]
        );
    }
}

/// A fleet whose `sudo` asks for `password` (as the test kit's, with the sudo password set).
fn sudo_fleet(count: usize, seed: u64, password: &str) -> fleetsh_testkit::sim::Fleet {
    sudo_fleet_with(count, seed, password, |_| {})
}

/// The same, with more of the fleet's configuration set by `more`.
fn sudo_fleet_with(
    count: usize,
    seed: u64,
    password: &str,
    more: impl FnOnce(&mut fleetsh_sim::SimConfig),
) -> fleetsh_testkit::sim::Fleet {
    let dir = tempfile::tempdir().unwrap();
    let mut config = fleetsh_sim::SimConfig {
        count,
        port: 0,
        seed,
        state_dir: dir.path().to_path_buf(),
        sudo_password: Some(password.into()),
        ..fleetsh_sim::SimConfig::default()
    };
    more(&mut config);
    let sim =
        fleetsh_sim::SimFleet::start(config).expect("the simulated fleet must start for this test");
    fleetsh_testkit::sim::Fleet::new(sim, dir)
}

fn through_sudo(job: Job, password: &str) -> Job {
    limits(job.sudo(fleetsh::Sudo {
        user: None,
        password: Some(fleetsh::Secret::new(password)),
    }))
}

#[test]
fn the_sudo_password_answers_the_prompt_and_the_input_follows_it_untouched() {
    let f = sudo_fleet(3, 111, "sesame");
    let engine = f.engine(2).build().unwrap();
    let job = through_sudo(Job::new("whoami; cat; echo done >&2"), "sesame")
        .stdin(b"line one\nline two\n".to_vec())
        .stream_output(true);
    let mut handle = engine.run(f.targets(), job).unwrap();
    let mut streamed: Vec<(Vec<u8>, Vec<u8>)> = vec![Default::default(); 3];
    let mut results = Vec::new();
    for ev in &mut handle {
        match ev {
            fleetsh::Event::Output { host, stream, data } => match stream {
                StreamKind::Stdout => streamed[host].0.extend(data),
                StreamKind::Stderr => streamed[host].1.extend(data),
            },
            fleetsh::Event::Finished(r) => results.push(r),
            _ => {}
        }
    }
    assert_eq!(results.len(), 3);
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
        // Neither sudo's prompt nor the start marker reaches the output; the command's
        // input arrives whole, after the password.
        assert_eq!(stdout(r), "root\nline one\nline two\n");
        assert_eq!(String::from_utf8_lossy(&r.stderr), "done\n");
        assert_eq!(streamed[r.index], (r.stdout.clone(), r.stderr.clone()));
    }
}

#[test]
fn a_refused_sudo_password_is_not_followed_by_the_commands_input() {
    let f = sudo_fleet(2, 112, "sesame");
    let engine = f.engine(1).build().unwrap();
    for pty in [false, true] {
        // The input's first line is no password attempt: asked again, the host ends sudo's
        // input (with a pty, by ^D: sshd keeps a terminal open after the channel's EOF), and
        // sudo's refusal fails the host.
        let job = through_sudo(Job::new("cat"), "wrong")
            .pty(pty)
            .stdin(b"sesame\nmore\n".to_vec());
        let started = std::time::Instant::now();
        let report = engine.run(f.targets(), job).unwrap().join();
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "pty={pty}: sudo's input was not ended"
        );
        for r in &report.results {
            let e = r
                .error
                .as_ref()
                .expect("a refused sudo password fails the host");
            assert_eq!(e.kind, ErrorKind::Auth, "pty={pty}: {e}");
            assert!(e.message.contains("sudo refused the password"), "{e}");
            assert_eq!(r.exit_code, Some(1), "pty={pty}: sudo's own status is kept");
            let said = if pty {
                "Sorry, try again.\r\nsudo: 1 incorrect password attempt\r\n"
            } else {
                "Sorry, try again.\nsudo: 1 incorrect password attempt\n"
            };
            let (out, err) = if pty {
                (&r.stdout, &r.stderr)
            } else {
                (&r.stderr, &r.stdout)
            };
            assert_eq!(String::from_utf8_lossy(out), said, "pty={pty}");
            assert!(err.is_empty(), "pty={pty}: {r:?}");
        }
    }
}

#[test]
fn sudo_through_a_pty_answers_the_prompt_on_stdout() {
    let f = sudo_fleet(2, 113, "sesame");
    let engine = f.engine(1).build().unwrap();
    let job = through_sudo(Job::new("whoami; read x; echo got $x"), "sesame")
        .pty(true)
        .stdin(b"input\n".to_vec());
    let report = engine.run(f.targets(), job).unwrap().join();
    for r in &report.results {
        assert!(r.is_ok(), "{r:?}");
        // sudo reads the password with the echo off; the terminal echoes the input `read`
        // takes. Neither the prompt, sudo's line end after it nor the start marker shows.
        assert_eq!(stdout(r), "root\r\ninput\r\ngot input\r\n");
        assert!(!stdout(r).contains("fleetsh-sudo"), "{r:?}");
    }
}

#[test]
fn a_sudo_prompt_of_the_hosts_own_fails_the_host_after_a_bounded_wait() {
    let f = sudo_fleet_with(2, 114, "sesame", |c| {
        c.sudo_own_prompt = Some("Verification code: ".into());
    });
    let engine = f.engine(1).build().unwrap();
    let job = through_sudo(Job::new("cat"), "sesame")
        .connect_timeout(Duration::from_secs(2))
        .stdin(b"never read\n".to_vec());
    let started = std::time::Instant::now();
    let report = engine.run(f.targets(), job).unwrap().join();
    for r in &report.results {
        let e = r
            .error
            .as_ref()
            .expect("an unknown prompt is never answered");
        assert_eq!(e.kind, ErrorKind::CommandTimeout, "{e}");
        // The wait is the connect timeout, and at least 30 s (a login shell's start,
        // directory lookups).
        assert!(
            e.message.contains("sudo neither asked") && e.message.contains("30s"),
            "{e}"
        );
        // What the host said is kept: its question.
        assert_eq!(String::from_utf8_lossy(&r.stderr), "Verification code: ");
        assert_eq!(stdout(r), "");
    }
    assert!(started.elapsed() < Duration::from_secs(60), "bounded");
}

#[test]
fn a_question_after_the_sudo_password_fails_the_host_after_a_bounded_wait() {
    // A one-time code asked after the password: fleetsh answers only its own prompt.
    let f = sudo_fleet_with(1, 115, "sesame", |c| {
        c.sudo_then_ask = Some("Verification code: ".into());
    });
    let engine = f.engine(1).build().unwrap();
    let job = through_sudo(Job::new("cat"), "sesame").stdin(b"never read\n".to_vec());
    let started = std::time::Instant::now();
    let report = engine.run(f.targets(), job).unwrap().join();
    let r = &report.results[0];
    let e = r
        .error
        .as_ref()
        .expect("the second question is never answered");
    assert_eq!(e.kind, ErrorKind::CommandTimeout, "{e}");
    assert!(
        e.message.contains("of being sent the password") && e.message.contains("30s"),
        "{e}"
    );
    assert_eq!(String::from_utf8_lossy(&r.stderr), "Verification code: ");
    assert!(started.elapsed() < Duration::from_secs(60), "bounded");
}
