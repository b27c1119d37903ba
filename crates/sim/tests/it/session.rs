//! Sessions: environment, pty, standard input, channels in turn.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_reaches_cat_and_wc() {
    let (_dir, fleet) = start(1, None);
    let session = login(&fleet, fleet.hosts()[0].addr).await;
    let out = exec_stdin(&session, "cat", b"hello\nworld\n").await;
    assert_eq!(out.stdout, b"hello\nworld\n");
    assert_eq!(out.status, Some(0));
    let out = exec_stdin(&session, "wc -c", b"12345").await;
    assert_eq!(out.stdout, b"5\n");
    // No stdin at all: EOF at once.
    let out = exec_with(&session, "cat -; echo end", Request::default())
        .await
        .0;
    assert_eq!(out.stdout, b"end\n");

    // 5 MB through cat, read back while it is still being sent.
    let big = text(5_000_000);
    let out = exec_stdin(&session, "cat", &big).await;
    assert_eq!(out.stdout.len(), big.len());
    assert!(out.stdout == big, "cat changed the data");
    assert_eq!(out.status, Some(0));
    let out = exec_stdin(&session, "wc -c", &big).await;
    assert_eq!(out.stdout, b"5000000\n");
    let out = exec_stdin(&session, "head -c 10; echo; wc -l", &big).await;
    assert_eq!(out.stdout, b"abcdefghij\n185185\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_stdin_is_counted() {
    let (_dir, fleet) = start(1, None);
    let session = login(&fleet, fleet.hosts()[0].addr).await;
    let out = exec_stdin(&session, "wc -c", &vec![b'x'; 20_000_000]).await;
    assert_eq!(out.stdout, b"20000000\n");
    assert_eq!(out.status, Some(0));
}

/// Regression: with a plain bounded stdin pipe, `cat` of 20 MB deadlocked when the
/// client read its output a little slower than it wrote stdin: cat waited for output
/// window space while the window adjustment sat behind stdin the stalled session could
/// not hand over (russh re-opens the stdin window eagerly).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cat_of_20_mb_stdin_does_not_deadlock() {
    let (_dir, fleet) = start(1, None);
    let session = login(&fleet, fleet.hosts()[0].addr).await;
    let big = text(20_000_000);
    let request = Request {
        stdin: Some(big.clone()),
        pause_every: Some(4),
        ..Request::default()
    };
    let (out, _) =
        tokio::time::timeout(Duration::from_secs(25), exec_with(&session, "cat", request))
            .await
            .expect("cat of 20 MB stalled");
    assert_eq!(out.stdout.len(), big.len());
    assert!(out.stdout == big, "cat changed the data");
    assert_eq!(out.status, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_stdin_does_not_stall_the_session() {
    let (_dir, fleet) = start(1, None);
    let session = login(&fleet, fleet.hosts()[0].addr).await;
    // The command never reads: the 10 MB are drained and discarded.
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        exec_stdin(&session, "sleep 0.2; echo done", &text(10_000_000)),
    )
    .await
    .expect("the session stalled");
    assert_eq!(out.stdout, b"done\n");
    assert_eq!(out.status, Some(0));
    let out = exec(&session, "echo still fine", usize::MAX).await;
    assert_eq!(out.stdout, b"still fine\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_takes_one_line() {
    let (_dir, fleet) = start(1, None);
    let session = login(&fleet, fleet.hosts()[0].addr).await;
    let out = exec_stdin(&session, "read X; echo got $X", b"hello there\nmore\n").await;
    assert_eq!(out.stdout, b"got hello there\n");
    assert_eq!(out.status, Some(0));
    let out = exec_stdin(&session, "read X; read Y; cat; echo $Y-$X", b"1\n2\n3\n").await;
    assert_eq!(out.stdout, b"3\n2-1\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_is_accepted_and_expanded() {
    let (_dir, fleet) = start(1, None);
    let session = login(&fleet, fleet.hosts()[0].addr).await;
    let request = Request {
        env: vec![("LANG", "C.UTF-8"), ("APP_MODE", "blue green")],
        ..Request::default()
    };
    let (out, replies) = exec_with(&session, "echo $LANG ${APP_MODE}!; env", request).await;
    assert_eq!(replies, [true, true]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "C.UTF-8 blue green!\nAPP_MODE=blue green\nLANG=C.UTF-8\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_env_refuses_other_names() {
    let (_dir, fleet) = start_with(|c| {
        c.accept_env = Some(vec!["LANG".into(), "LC_*".into()]);
    });
    let session = login(&fleet, fleet.hosts()[0].addr).await;
    let request = Request {
        env: vec![
            ("LANG", "C"),
            ("SECRET", "x"),
            ("LC_ALL", "C"),
            ("LANGUAGE", "y"),
        ],
        ..Request::default()
    };
    let (out, replies) = exec_with(&session, "echo [$SECRET]; env", request).await;
    assert_eq!(replies, [true, false, true, false]);
    assert_eq!(out.stdout, b"[]\nLANG=C\nLC_ALL=C\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tty_with_and_without_pty() {
    let (_dir, fleet) = start(1, None);
    let session = login(&fleet, fleet.hosts()[0].addr).await;
    let out = exec(&session, "tty", usize::MAX).await;
    assert_eq!(out.stdout, b"not a tty\n");
    assert_eq!(out.status, Some(1));

    let pty = || Request {
        pty: true,
        ..Request::default()
    };
    let (out, _) = exec_with(&session, "tty", pty()).await;
    assert_eq!(out.stdout, b"/dev/pts/0\r\n");
    assert_eq!(out.status, Some(0));
    // stderr is the terminal too; onlcr turns every \n into \r\n.
    let (out, _) = exec_with(&session, "echo out; echo err >&2; echo two", pty()).await;
    assert_eq!(out.stdout, b"out\r\nerr\r\ntwo\r\n");
    assert_eq!(out.stderr, b"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pty_echoes_stdin_lines() {
    let (_dir, fleet) = start(1, None);
    let session = login(&fleet, fleet.hosts()[0].addr).await;
    let request = Request {
        pty: true,
        stdin: Some(b"typed line\n".to_vec()),
        ..Request::default()
    };
    let (out, _) = exec_with(&session, "read X; echo got $X", request).await;
    assert_eq!(out.stdout, b"typed line\r\ngot typed line\r\n");
    // Without a pty, nothing read is echoed.
    let out = exec_stdin(&session, "read X; echo got $X", b"typed line\n").await;
    assert_eq!(out.stdout, b"got typed line\n");
}
