//! A run's end from the caller's side: dropping a handle or stream on an async runtime,
//! joining with a deadline, and the warning for blocking calls on a runtime's thread.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fleetsh::{ErrorKind, Event, Job};
use futures_util::StreamExt;

use crate::engine::fleet;

fn job(cmd: &str) -> Job {
    let mut j = Job::new(cmd);
    j.connect_timeout = Duration::from_secs(30);
    j.command_timeout = Some(Duration::from_secs(60));
    j
}

/// Dropping a stream whose hosts are in flight returns at once on a current-thread runtime:
/// the run is cancelled and its shards are joined off the runtime's thread.
#[tokio::test(flavor = "current_thread")]
async fn dropping_a_stream_in_flight_does_not_block_the_runtime() {
    let f = fleet(200, 51, None);
    let engine = f.engine(2).fanout(200).build().unwrap();
    let mut j = job("echo started; sleep 3");
    j.stream_output = true;
    let mut stream = engine.run(f.targets(), j).unwrap().stream();
    // Wait until most hosts are in flight: their first output has arrived.
    let mut started = 0;
    while started < 150 {
        match tokio::time::timeout(Duration::from_secs(60), stream.next()).await {
            Ok(Some(Event::Output { .. })) => started += 1,
            Ok(Some(Event::Finished(r))) => panic!("a host ended early: {r:?}"),
            Ok(Some(_)) => {}
            Ok(None) => panic!("the run ended before the drop"),
            Err(_) => panic!("hosts did not start within 60 s ({started} started)"),
        }
    }
    drop_quickly(stream);
}

/// Drops `value`, failing when the drop took a second or more: on a runtime's thread, that
/// long blocked every other task of it.
fn drop_quickly<T>(value: T) {
    let t = Instant::now();
    drop(value);
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "drop blocked the runtime for {took:?}"
    );
}

/// A handle whose shards are slow to finish: a connected fleet's second job waits on each
/// shard for the first (`sleep 3`, kept running). Dropping the second job's handle on a
/// current-thread runtime returns at once instead of waiting for the first job; the first
/// job is not disturbed.
#[tokio::test(flavor = "current_thread")]
async fn dropping_a_handle_does_not_wait_for_its_shards_on_a_runtime() {
    let f = fleet(50, 52, None);
    let engine = f.engine(2).build().unwrap();
    let fleet = engine.connect(f.targets()).unwrap();
    let first = fleet.run(job("sleep 3")).unwrap().stream();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = fleet.run(job("echo hi")).unwrap();
    drop_quickly(second);
    let report = first.join().await;
    assert!(report.all_ok(), "{report:?}");
    assert_eq!(report.results.len(), 50);
}

/// A job's handle holding the last reference to a connected fleet's shard threads (the fleet
/// was dropped during the job) is dropped on a current-thread runtime: the drop returns at
/// once; the threads are joined in the background and every connection still closes.
#[tokio::test(flavor = "current_thread")]
async fn dropping_the_last_handle_of_a_dropped_fleet_does_not_block_the_runtime() {
    let f = fleet(50, 53, None);
    let engine = f.engine(2).build().unwrap();
    let fleet = engine.connect(f.targets()).unwrap();
    let stream = fleet.run(job("sleep 3")).unwrap().stream();
    drop(fleet);
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop_quickly(stream);
    let sim = &f.sim;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(0..50).all(|i| sim.connections_open(i) == 0) {
        assert!(
            Instant::now() < deadline,
            "connections still open 20 s after the drop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Outside a runtime, dropping a handle in flight still cancels the run and joins its shards
/// before returning: the hosts' connections are closed by then (the next run reaches them).
#[test]
fn dropping_a_handle_outside_a_runtime_cancels_the_run() {
    let f = fleet(20, 57, None);
    let engine = f.engine(2).build().unwrap();
    let handle = engine.run(f.targets(), job("sleep 30")).unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let t = Instant::now();
    drop(handle);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    // The drop cancelled the run and closed its connections (not a run left sleeping).
    crate::fleet::eventually("every host is disconnected after the drop", || {
        (0..20).all(|i| f.sim.connections_open(i) == 0)
    });
    let report = engine.run(f.targets(), job("echo hi")).unwrap().join();
    assert!(report.all_ok(), "{report:?}");
}

/// `join_timeout`: hosts still running at the deadline end `cancelled` with the output they
/// had sent, fast hosts finish ok, every host has one result, the report says the deadline
/// was hit, and the call returns soon after the deadline, long before the slow commands end.
#[test]
fn join_timeout_cancels_what_runs_at_the_deadline() {
    let f = fleet(12, 53, None);
    let engine = f.engine(2).build().unwrap();
    // Hosts 0-3 are quick; the others sleep 5 s after their first line.
    let targets = f.targets();
    let quick: Vec<_> = targets[..4].to_vec();
    let slow: Vec<_> = targets[4..].to_vec();
    let t = Instant::now();
    let report = engine
        .run(slow.clone(), job("echo started; sleep 5"))
        .unwrap()
        .join_timeout(Duration::from_millis(1500));
    let took = t.elapsed();
    assert!(took < Duration::from_secs(4), "returned after {took:?}");
    assert!(report.deadline_hit);
    assert_eq!(report.results.len(), slow.len());
    for (i, r) in report.results.iter().enumerate() {
        assert_eq!(r.index, i);
        let e = r.error.as_ref().expect("cancelled");
        assert_eq!(e.kind, ErrorKind::Cancelled, "{r:?}");
        assert_eq!(r.stdout, b"started\n", "output before the deadline is kept");
    }
    let report = engine
        .run(quick, job("echo hi"))
        .unwrap()
        .join_timeout(Duration::from_secs(60));
    assert!(!report.deadline_hit);
    assert!(report.all_ok(), "{report:?}");
}

/// A deadline of zero cancels at once: every host, started or not, still ends with exactly
/// one result.
#[test]
fn join_timeout_zero_gives_every_host_one_result() {
    let f = fleet(30, 54, None);
    let engine = f.engine(3).fanout(5).build().unwrap();
    let report = engine
        .run(f.targets(), job("sleep 5"))
        .unwrap()
        .join_timeout(Duration::ZERO);
    assert!(report.deadline_hit);
    assert_eq!(report.results.len(), 30);
    for (i, r) in report.results.iter().enumerate() {
        assert_eq!(r.index, i);
        assert_eq!(
            r.error.as_ref().map(|e| e.kind),
            Some(ErrorKind::Cancelled),
            "{r:?}"
        );
    }
}

/// The async `EventStream::join_timeout`, on a current-thread runtime: the same results,
/// and a heartbeat task on that runtime keeps ticking while it waits.
#[tokio::test(flavor = "current_thread")]
async fn stream_join_timeout_cancels_at_the_deadline() {
    let f = fleet(6, 55, None);
    let engine = f.engine(2).build().unwrap();
    let ticks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let beat = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    let t = Instant::now();
    let report = engine
        .run(f.targets(), job("echo started; sleep 5"))
        .unwrap()
        .stream()
        .join_timeout(Duration::from_millis(1500))
        .await;
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert!(report.deadline_hit);
    for r in &report.results {
        assert_eq!(r.error.as_ref().map(|e| e.kind), Some(ErrorKind::Cancelled));
        assert_eq!(r.stdout, b"started\n");
    }
    assert!(ticks.load(std::sync::atomic::Ordering::Relaxed) >= 5);
    beat.abort();
    let report = engine
        .run(f.targets(), job("echo hi"))
        .unwrap()
        .stream()
        .join_timeout(Duration::from_secs(60))
        .await;
    assert!(!report.deadline_hit);
    assert!(report.all_ok(), "{report:?}");
}

/// Captures what `tracing` writes while `f` runs on this thread.
pub(crate) fn capture_warnings(f: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let out = buf.0.lock().unwrap().clone();
    String::from_utf8(out).unwrap()
}

/// `join()` on a thread that drives a tokio runtime warns (once per handle) and points to
/// `stream()`; outside a runtime it does not.
#[test]
fn join_inside_a_runtime_warns_and_outside_does_not() {
    let f = fleet(3, 56, None);
    let engine = f.engine(1).build().unwrap();
    let inside = capture_warnings(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut handle = engine.run(f.targets(), job("echo hi")).unwrap();
            let first = handle.next_event();
            assert!(first.is_some());
            let report = handle.join();
            assert!(report.all_ok(), "{report:?}");
        });
    });
    assert_eq!(
        inside
            .matches("blocks, and was called on a thread that drives")
            .count(),
        1,
        "one warning per handle: {inside}"
    );
    assert!(inside.contains("stream()"), "{inside}");
    let outside = capture_warnings(|| {
        let report = engine.run(f.targets(), job("echo hi")).unwrap().join();
        assert!(report.all_ok(), "{report:?}");
    });
    assert!(!outside.contains("blocks"), "{outside}");
}
