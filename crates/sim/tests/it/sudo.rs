//! `sudo` on the simulated hosts: password prompts and their answers.

use super::*;

fn start_sudo(password: Option<&str>) -> (tempfile::TempDir, SimFleet) {
    let password = password.map(str::to_owned);
    start_with(move |c| c.sudo_password = password)
}

const AS_ROOT: &str = "sudo -S -p '' -- sh -c 'whoami; cat'";
const AS_ALICE: &str = "sudo -S -p '' -u alice -- sh -c 'whoami; echo $HOME; cat'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn right_password_runs_the_command() {
    let (_dir, fleet) = start_sudo(Some("s3cret"));
    let session = login(&fleet, fleet.hosts()[0].addr).await;
    let out = exec_stdin(&session, AS_ROOT, b"s3cret\nthe rest\n").await;
    assert_eq!(out.stdout, b"root\nthe rest\n");
    assert_eq!(out.stderr, b"");
    assert_eq!(out.status, Some(0));
    let out = exec_stdin(&session, AS_ALICE, b"s3cret\n").await;
    assert_eq!(out.stdout, b"alice\n/home/alice\n");
    assert_eq!(out.status, Some(0));
    let out = exec_stdin(&session, "sudo -S -p '' -- sh -c 'exit 5'", b"s3cret\n").await;
    assert_eq!(out.status, Some(5));
    // The prompt goes to stderr, before the password is read.
    let out = exec_stdin(&session, "sudo -S -p 'pw? ' -u bob whoami", b"s3cret\n").await;
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice()),
        (&b"bob\n"[..], &b"pw? "[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_refused() {
    let (_dir, fleet) = start_sudo(Some("s3cret"));
    let session = login(&fleet, fleet.hosts()[0].addr).await;
    let out = exec_stdin(&session, AS_ALICE, b"guess\nthe rest\n").await;
    assert_eq!(out.stdout, b"");
    assert_eq!(
        out.stderr,
        b"Sorry, try again.\nSorry, try again.\nsudo: 2 incorrect password attempts\n"
    );
    assert_eq!(out.status, Some(1));
    let out = exec_stdin(&session, "sudo -S -p 'pw? ' whoami", b"guess\n").await;
    assert_eq!(
        out.stderr,
        b"pw? Sorry, try again.\npw? sudo: 1 incorrect password attempt\n"
    );
    assert_eq!(out.status, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sudo_password_always_fails() {
    let (_dir, fleet) = start_sudo(None);
    let session = login(&fleet, fleet.hosts()[0].addr).await;
    let out = exec_stdin(&session, AS_ROOT, b"anything\n").await;
    assert_eq!(out.stdout, b"");
    assert_eq!(out.stderr, b"sudo: a password is required\n");
    assert_eq!(out.status, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_is_never_echoed_even_with_a_pty() {
    let (_dir, fleet) = start_sudo(Some("s3cret"));
    let session = login(&fleet, fleet.hosts()[0].addr).await;
    let out = exec_stdin(&session, AS_ROOT, b"s3cret\n").await;
    assert!(!out.stdout.windows(6).any(|w| w == b"s3cret"));
    assert!(!out.stderr.windows(6).any(|w| w == b"s3cret"));
    let request = Request {
        pty: true,
        stdin: Some(b"s3cret\n".to_vec()),
        ..Request::default()
    };
    let (out, _) = exec_with(&session, "sudo -S -p '[sudo] pw: ' whoami", request).await;
    // sudo turns the terminal's echo off while it reads: only the line end shows.
    assert_eq!(out.stdout, b"[sudo] pw: \r\nroot\r\n");
    assert_eq!(out.status, Some(0));
}
