//! Interop with a real OpenSSH `sshd` that these tests start on loopback (the test kit's
//! fixture, `fleetsh_testkit::sshd`: one server on 127.0.0.1 to 127.0.0.4 shared by the tests
//! that overlap, its remote `HOME` an empty directory, which
//! `remote_home_is_the_empty_fixture_home` guards).
//!
//! Without OpenSSH's `sshd`, every test here fails with a message saying what to install: they
//! never skip.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleetsh::{Cipher, Engine, ErrorKind, HostKeyCheck, HostTarget, Job, Kex};
pub(crate) use fleetsh_testkit::sshd::{
    ADDRS, Sshd, keygen, keygen_type, public_key, shared as sshd,
};
use fleetsh_testkit::{each_shards, run};

/// known_hosts lines naming every listen address with `key` (`ssh-ed25519 AAAA...`).
fn known_hosts(port: u16, key: &str) -> String {
    ADDRS
        .iter()
        .map(|a| format!("[{a}]:{port} {key}\n"))
        .collect()
}

pub(crate) fn job(cmd: &str) -> Job {
    let mut j = Job::new(cmd);
    j.connect_timeout = Duration::from_secs(30);
    // A hung session fails its test instead of hanging the suite.
    j.command_timeout = Some(Duration::from_secs(60));
    j
}

each_shards!(2, echo_on_four_addresses, |shards| {
    let sshd = sshd();
    let report = run(sshd.engine(shards), sshd.targets(), job("echo hello"));
    assert_eq!(report.results.len(), 4);
    for (i, r) in report.results.iter().enumerate() {
        sshd.assert_ok(r);
        assert_eq!(r.index, i, "results are in host order");
        assert_eq!(r.target.host, ADDRS[i]);
        assert_eq!(r.target.user.as_deref(), Some(sshd.user.as_str()));
        assert_eq!(r.target.port, Some(sshd.port));
        assert_eq!(r.exit_code, Some(0));
        assert_eq!(String::from_utf8_lossy(&r.stdout), "hello\n");
        assert!(r.stderr.is_empty(), "{r:?}");
        assert!(!r.truncated);
        assert_eq!(r.attempts, 1);
    }
});

each_shards!(2, stdout_stderr_and_exit_code, |shards| {
    let sshd = sshd();
    let report = sshd
        .engine(shards)
        .build()
        .unwrap()
        .run(sshd.targets(), job("echo out; echo err 1>&2; exit 3"))
        .unwrap()
        .join();
    assert_eq!(report.results.len(), 4);
    for r in &report.results {
        assert!(r.error.is_none(), "{r:?}\nsshd log:\n{}", sshd.log());
        assert_eq!(r.exit_code, Some(3));
        assert_eq!(r.signal, None);
        assert_eq!(String::from_utf8_lossy(&r.stdout), "out\n");
        assert_eq!(String::from_utf8_lossy(&r.stderr), "err\n");
        assert_eq!(r.outcome(), fleetsh::Outcome::Exit(3));
    }
});

each_shards!(2, signal_killed_command, |shards| {
    let sshd = sshd();
    // `$$` is the login shell sshd started for the command.
    let report = run(sshd.engine(shards), sshd.targets(), job("kill -9 $$"));
    assert_eq!(report.results.len(), 4);
    for r in &report.results {
        assert!(r.error.is_none(), "{r:?}\nsshd log:\n{}", sshd.log());
        assert_eq!(r.signal.as_deref(), Some("KILL"), "{r:?}");
        assert_eq!(r.exit_code, None);
        assert!(r.stdout.is_empty());
        assert_eq!(r.outcome(), fleetsh::Outcome::Signal("KILL".into()));
    }
});

each_shards!(2, changed_host_key_fails_strict_check, |shards| {
    let sshd = sshd();
    // The same names, recorded with another Ed25519 key.
    let forged = sshd.path("forged_known_hosts");
    let before = std::fs::read_to_string(&forged).unwrap();
    let report = run(
        sshd.engine(shards)
            .known_hosts(&forged)
            .host_key_check(HostKeyCheck::Strict),
        sshd.targets(),
        job("echo hello"),
    );
    assert_eq!(report.results.len(), 4);
    for r in &report.results {
        let e = r.error.as_ref().expect("a changed host key must fail");
        assert_eq!(e.kind, ErrorKind::Hostkey, "{e}");
        assert!(e.message.contains("does not match"), "{e}");
        assert!(e.message.contains("ssh-ed25519"), "{e}");
        assert!(r.stdout.is_empty() && r.exit_code.is_none());
    }
    assert_eq!(std::fs::read_to_string(&forged).unwrap(), before);
});

each_shards!(2, unknown_host_fails_strict_check, |shards| {
    let sshd = sshd();
    let empty = tempfile::NamedTempFile::new().unwrap();
    let report = run(
        sshd.engine(shards).known_hosts(empty.path()),
        sshd.targets(),
        job("echo hello"),
    );
    assert_eq!(report.results.len(), 4);
    for (i, r) in report.results.iter().enumerate() {
        let e = r.error.as_ref().expect("an unknown host must fail");
        assert_eq!(e.kind, ErrorKind::Hostkey, "{e}");
        assert!(e.message.contains("not in"), "{e}");
        let name = format!("[{}]:{}", ADDRS[i], sshd.port);
        assert!(e.message.contains(&name), "{e}");
    }
    assert!(std::fs::read_to_string(empty.path()).unwrap().is_empty());
});

each_shards!(2, accept_new_learns_lines_openssh_reads, |shards| {
    let sshd = sshd();
    let dir = tempfile::tempdir().unwrap();
    let learned = dir.path().join("known_hosts");
    let report = run(
        sshd.engine(shards)
            .known_hosts(&learned)
            .host_key_check(HostKeyCheck::AcceptNew),
        sshd.targets(),
        job("true"),
    );
    for r in &report.results {
        sshd.assert_ok(r);
    }
    let text = std::fs::read_to_string(&learned).unwrap();
    assert_eq!(text.lines().count(), 4, "{text}");
    // OpenSSH finds each host, with the server's key, in the file fleetsh wrote.
    let host_key = public_key(&sshd.path("host_ed25519.pub"));
    for a in ADDRS {
        let name = format!("[{a}]:{}", sshd.port);
        let out = Command::new("ssh-keygen")
            .arg("-F")
            .arg(&name)
            .arg("-f")
            .arg(&learned)
            .output()
            .unwrap();
        let found = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "ssh-keygen -F {name}: {found}\n{text}"
        );
        assert!(found.contains(&host_key), "{found}");
    }
    // And the learned file passes strict checking.
    let report = run(
        sshd.engine(shards).known_hosts(&learned),
        sshd.targets(),
        job("true"),
    );
    for r in &report.results {
        sshd.assert_ok(r);
    }
});

each_shards!(2, wrong_client_key_is_an_auth_error, |shards| {
    let sshd = sshd();
    let report = run(
        sshd.engine_as(&sshd.path("other_client_ed25519"))
            .shards(shards),
        sshd.targets(),
        job("echo hello"),
    );
    assert_eq!(report.results.len(), 4);
    for r in &report.results {
        let e = r.error.as_ref().expect("an unauthorized key must fail");
        assert_eq!(e.kind, ErrorKind::Auth, "{e}");
        assert!(e.message.contains("other_client_ed25519"), "{e}");
        assert!(e.message.contains("server offers publickey"), "{e}");
        assert!(r.stdout.is_empty() && r.exit_code.is_none());
    }
});

each_shards!(2, two_megabytes_of_output_arrive_whole, |shards| {
    let sshd = sshd();
    let mut j = job("head -c 2000000 /dev/zero");
    // The default cap (1 MiB) would truncate.
    j.output_cap = 4_000_000;
    let report = run(sshd.engine(shards), sshd.targets(), j);
    assert_eq!(report.results.len(), 4);
    for r in &report.results {
        sshd.assert_ok(r);
        assert_eq!(r.stdout.len(), 2_000_000);
        assert!(r.stdout.iter().all(|&b| b == 0));
        assert!(!r.truncated);
    }
});

each_shards!(2, output_cap_truncates_but_drains, |shards| {
    let sshd = sshd();
    let mut j = job("head -c 2000000 /dev/zero");
    j.output_cap = 1000;
    let report = run(sshd.engine(shards), sshd.targets(), j);
    assert_eq!(report.results.len(), 4);
    for r in &report.results {
        sshd.assert_ok(r);
        assert_eq!(r.stdout.len(), 1000);
        assert!(r.truncated);
        assert_eq!(r.exit_code, Some(0), "the channel was drained to the end");
    }
});

each_shards!(2, two_hundred_sessions, |shards| {
    let sshd = sshd();
    // The four addresses 50 times each: engine.run takes the targets as given.
    let targets: Vec<HostTarget> = (0..200)
        .map(|i| {
            HostTarget::new(ADDRS[i % ADDRS.len()])
                .with_port(sshd.port)
                .with_user(&sshd.user)
        })
        .collect();
    let started = Instant::now();
    let report = run(sshd.engine(shards).fanout(50), targets, job("echo hello"));
    assert_eq!(report.results.len(), 200);
    for (i, r) in report.results.iter().enumerate() {
        sshd.assert_ok(r);
        assert_eq!(r.index, i, "results are in host order");
        assert_eq!(r.target.host, ADDRS[i % ADDRS.len()]);
        assert_eq!(String::from_utf8_lossy(&r.stdout), "hello\n");
    }
    eprintln!(
        "200 sessions against sshd, {shards} shard(s): {:?}",
        started.elapsed()
    );
});

#[test]
fn remote_home_is_the_empty_fixture_home() {
    // The guard for the rc-file isolation described at the top of this module.
    let sshd = sshd();
    let report = sshd
        .engine(1)
        .build()
        .unwrap()
        .run(
            vec![HostTarget::new(ADDRS[0])],
            job("echo \"$HOME\"; ls -A \"$HOME\""),
        )
        .unwrap()
        .join();
    let r = &report.results[0];
    sshd.assert_ok(r);
    let home = sshd.path("home").display().to_string();
    assert_eq!(String::from_utf8_lossy(&r.stdout), format!("{home}\n"));
}

/// Regression: the engine must close the remote
/// command's stdin (channel EOF after the exec request), as `ssh host cmd </dev/null` does, so a
/// command that reads stdin ends at once.
#[test]
fn command_reading_stdin_sees_eof() {
    let sshd = sshd();
    let mut j = job("cat; echo done");
    j.command_timeout = Some(Duration::from_secs(5));
    let report = run(sshd.engine(1), vec![HostTarget::new(ADDRS[0])], j);
    let r = &report.results[0];
    sshd.assert_ok(r);
    assert_eq!(String::from_utf8_lossy(&r.stdout), "done\n");
}

/// Standard input is sent to every host's command, then EOF.
#[test]
fn stdin_reaches_every_host() {
    let sshd = sshd();
    let mut j = job("wc -c; cat >/dev/null; echo end");
    j.stdin = Some(vec![b'x'; 300_000].into());
    j.command_timeout = Some(Duration::from_secs(20));
    let targets: Vec<HostTarget> = ADDRS.iter().map(|a| HostTarget::new(*a)).collect();
    let report = run(sshd.engine(2), targets, j);
    for r in &report.results {
        sshd.assert_ok(r);
        assert_eq!(String::from_utf8_lossy(&r.stdout).trim(), "300000\nend");
    }
}

/// Through sudo that asks for no password (root's), a sudo password given is never sent: the
/// command's input arrives as it was given, its output and exit status as the command made
/// them, with a pty too. (`.ci/run` installs sudo and runs the tests as root.)
#[test]
fn a_sudo_password_is_sent_only_when_sudo_asks() {
    assert!(
        Path::new("/usr/bin/sudo").exists(),
        "sudo not found: install it (apt-get install -y sudo)"
    );
    let sshd = sshd();
    assert_eq!(
        sshd.user, "root",
        "this test needs sudo to ask no password: run the tests as root"
    );
    let through_sudo = |cmd: &str| {
        job(cmd).sudo(fleetsh::Sudo {
            user: None,
            password: Some(fleetsh::Secret::new("never-sent-4711")),
        })
    };
    let j = through_sudo("cat; echo err >&2; whoami; exit 3").stdin(b"data\n".to_vec());
    let report = run(sshd.engine(1), vec![HostTarget::new(ADDRS[0])], j);
    let r = &report.results[0];
    assert!(r.error.is_none(), "{r:?}\nsshd log:\n{}", sshd.log());
    assert_eq!(String::from_utf8_lossy(&r.stdout), "data\nroot\n");
    assert_eq!(String::from_utf8_lossy(&r.stderr), "err\n");
    assert_eq!(r.exit_code, Some(3));
    let j = through_sudo("read x; echo got $x")
        .pty(true)
        .stdin(b"data\n".to_vec());
    let report = run(sshd.engine(1), vec![HostTarget::new(ADDRS[1])], j);
    let r = &report.results[0];
    sshd.assert_ok(r);
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(out.ends_with("got data\r\n"), "{out:?}");
    assert!(
        !out.contains("***") && !out.contains("fleetsh-sudo"),
        "{out:?}"
    );
}

/// A result names OpenSSH's identification and what the key exchange settled on with it
/// (this sshd predates ML-KEM: curve25519, fleetsh's next choice).
#[test]
fn results_name_openssh_and_the_algorithms_negotiated() {
    let sshd = sshd();
    let report = run(sshd.engine(1), sshd.targets(), job("true"));
    let version = Command::new("ssh")
        .arg("-V")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    // `ssh -V` prints "OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL ..." (the same package).
    let release = String::from_utf8_lossy(&version.stderr)
        .split([',', ' '])
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(release.starts_with("OpenSSH_"), "{release}");
    for r in &report.results {
        sshd.assert_ok(r);
        let s = r
            .server
            .as_ref()
            .expect("the server once the handshake is done");
        assert!(
            s.version.starts_with(&format!("SSH-2.0-{release}")),
            "{s:?}"
        );
        assert_eq!(s.host_key, "ssh-ed25519", "{s:?}");
        assert!(
            ["curve25519-sha256", "mlkem768x25519-sha256"].contains(&s.kex.as_str()),
            "{s:?}"
        );
        assert!(!s.cipher.is_empty(), "{s:?}");
    }
}

/// OpenSSH refuses environment variables its AcceptEnv does not list: the host fails with a
/// `channel` error naming the variable, and the command is not run.
#[test]
fn refused_environment_variable_is_reported() {
    let sshd = sshd();
    let mut j = job("echo ran");
    j.env = vec![("FLEETSH_TEST_VAR".into(), "1".into())];
    let report = run(sshd.engine(1), vec![HostTarget::new(ADDRS[0])], j);
    let r = &report.results[0];
    let e = r.error.as_ref().expect("refused env must fail the host");
    assert_eq!(e.kind, ErrorKind::Channel, "{e}");
    assert!(e.message.contains("FLEETSH_TEST_VAR"), "{e}");
    assert!(r.stdout.is_empty(), "the command did not run");
}

/// A pty makes the remote side a terminal.
#[test]
fn pty_is_a_terminal() {
    let sshd = sshd();
    let mut j = job("tty");
    j.pty = true;
    let report = run(sshd.engine(1), vec![HostTarget::new(ADDRS[0])], j);
    let r = &report.results[0];
    sshd.assert_ok(r);
    assert!(
        String::from_utf8_lossy(&r.stdout).starts_with("/dev/pts/"),
        "{:?}",
        String::from_utf8_lossy(&r.stdout)
    );
}

/// Signs `dir/key.pub` as a host certificate (`dir/key-cert.pub`) with `dir/ca`.
fn sign_host_key(dir: &Path, key: &str, principals: &str, validity: &str) {
    let out = Command::new("ssh-keygen")
        .current_dir(dir)
        .args(["-q", "-s", "ca", "-I", "fleetsh-test-host", "-h"])
        .args(["-n", principals, "-V", validity])
        .arg(format!("{key}.pub"))
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen -s");
    assert!(
        out.status.success(),
        "ssh-keygen -s failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A server of its own presenting a host certificate for its Ed25519 key, signed by `ca` in its
/// directory for `principals`, valid over `validity` (`ssh-keygen -V`).
fn sshd_with_host_certificate(principals: &str, validity: &str) -> Sshd {
    Sshd::start_with(|p| {
        keygen(&p.join("ca"));
        keygen(&p.join("other_ca"));
        sign_host_key(p, "host_ed25519", principals, validity);
        format!(
            "HostCertificate \"{}\"\n",
            p.join("host_ed25519-cert.pub").display()
        )
    })
}

/// A known_hosts trusting only the CA key in `ca_pub` for every host.
fn ca_known_hosts(sshd: &Sshd, ca_pub: &str) -> PathBuf {
    let path = sshd.path(&format!("{ca_pub}_known_hosts"));
    let ca = public_key(&sshd.path(ca_pub));
    std::fs::write(&path, format!("@cert-authority * {ca}\n")).unwrap();
    path
}

/// a host certificate signed by a `@cert-authority` CA is accepted for the names among
/// its principals, and refused, naming the principal, for the others.
#[test]
fn host_certificate_from_a_known_ca() {
    let sshd = sshd_with_host_certificate("127.0.0.1,127.0.0.2", "-5m:+1h");
    let known = ca_known_hosts(&sshd, "ca.pub");
    let report = run(
        sshd.engine(2).known_hosts(&known),
        sshd.targets(),
        job("echo hello"),
    );
    for r in &report.results[..2] {
        sshd.assert_ok(r);
        let s = r.server.as_ref().expect("the server");
        assert_eq!(s.host_key, "ssh-ed25519-cert-v01@openssh.com", "{s:?}");
    }
    for (i, r) in report.results.iter().enumerate().skip(2) {
        let e = r
            .error
            .as_ref()
            .expect("a host outside the principals fails");
        assert_eq!(e.kind, ErrorKind::Hostkey, "{e}");
        assert!(
            e.message.contains("ssh-ed25519-cert-v01@openssh.com"),
            "{e}"
        );
        assert!(e.message.contains("wrong principal"), "{e}");
        assert!(e.message.contains(ADDRS[i]), "{e}");
    }
    // Signed by a CA that known_hosts does not list for these hosts.
    let other = ca_known_hosts(&sshd, "other_ca.pub");
    let report = run(
        sshd.engine(1).known_hosts(&other),
        vec![HostTarget::new(ADDRS[0])],
        job("true"),
    );
    let e = report.results[0].error.as_ref().expect("unknown CA fails");
    assert_eq!(e.kind, ErrorKind::Hostkey, "{e}");
    assert!(e.message.contains("unknown CA"), "{e}");
    // The CA's key marked @revoked: refused.
    let ca = public_key(&sshd.path("ca.pub"));
    let revoked = sshd.path("revoked_known_hosts");
    std::fs::write(
        &revoked,
        format!("@cert-authority * {ca}\n@revoked * {ca}\n"),
    )
    .unwrap();
    let report = run(
        sshd.engine(1).known_hosts(&revoked),
        vec![HostTarget::new(ADDRS[0])],
        job("true"),
    );
    let e = report.results[0].error.as_ref().expect("revoked CA fails");
    assert_eq!(e.kind, ErrorKind::Hostkey, "{e}");
    assert!(e.message.contains("@revoked"), "{e}");
}

/// an expired host certificate is refused and the message says so.
#[test]
fn expired_host_certificate_is_refused() {
    let sshd = sshd_with_host_certificate("127.0.0.1", "20200101:20200102");
    let known = ca_known_hosts(&sshd, "ca.pub");
    let report = run(
        sshd.engine(1).known_hosts(&known),
        vec![HostTarget::new(ADDRS[0])],
        job("true"),
    );
    let e = report.results[0].error.as_ref().expect("expired fails");
    assert_eq!(e.kind, ErrorKind::Hostkey, "{e}");
    assert!(e.message.contains("expired (valid until 2020-01-0"), "{e}");
}

/// a host known only by its RSA key passes strict checking although the server would
/// rather show its Ed25519 key: the client asks for the known type first, as OpenSSH does.
#[test]
fn host_known_only_by_rsa_passes_strict_check() {
    let sshd = Sshd::start_with(|p| {
        keygen_type(&p.join("host_rsa"), "rsa");
        format!("HostKey \"{}\"\n", p.join("host_rsa").display())
    });
    let rsa = public_key(&sshd.path("host_rsa.pub"));
    let known = sshd.path("rsa_known_hosts");
    std::fs::write(&known, known_hosts(sshd.port, &rsa)).unwrap();
    let report = run(
        sshd.engine(2)
            .known_hosts(&known)
            .host_key_check(HostKeyCheck::Strict),
        sshd.targets(),
        job("echo hello"),
    );
    for r in &report.results {
        sshd.assert_ok(r);
        assert_eq!(String::from_utf8_lossy(&r.stdout), "hello\n");
        // The algorithm negotiated, not the key's type (`ssh-rsa`).
        let s = r.server.as_ref().expect("the server");
        assert!(s.host_key.starts_with("rsa-sha2-"), "{s:?}");
    }
    // Both types known: any match is enough.
    let ed = public_key(&sshd.path("host_ed25519.pub"));
    std::fs::write(
        &known,
        known_hosts(sshd.port, &rsa) + &known_hosts(sshd.port, &ed),
    )
    .unwrap();
    let report = run(
        sshd.engine(1).known_hosts(&known),
        sshd.targets(),
        job("true"),
    );
    for r in &report.results {
        sshd.assert_ok(r);
    }
}

/// accept-new with hashing on writes `|1|salt|hash` names that OpenSSH finds.
#[test]
fn accept_new_writes_hashed_names_openssh_reads() {
    let sshd = sshd();
    let dir = tempfile::tempdir().unwrap();
    let learned = dir.path().join("known_hosts");
    let report = run(
        sshd.engine(2)
            .known_hosts(&learned)
            .host_key_check(HostKeyCheck::AcceptNew)
            .hash_known_hosts(true),
        sshd.targets(),
        job("true"),
    );
    for r in &report.results {
        sshd.assert_ok(r);
    }
    let text = std::fs::read_to_string(&learned).unwrap();
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.lines().all(|l| l.starts_with("|1|")), "{text}");
    assert!(!text.contains("127.0.0"), "{text}");
    for a in ADDRS {
        let name = format!("[{a}]:{}", sshd.port);
        let out = Command::new("ssh-keygen")
            .arg("-F")
            .arg(&name)
            .arg("-f")
            .arg(&learned)
            .output()
            .unwrap();
        assert!(out.status.success(), "ssh-keygen -F {name}\n{text}");
    }
}

/// an ssh_config alias gives HostName, User, Port, IdentityFile and UserKnownHostsFile;
/// the engine is given nothing else, and results name the hosts as typed.
#[test]
fn ssh_config_alias_reaches_sshd() {
    let sshd = sshd();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "Host fleet-*\n\
             \x20 User {user}\n\
             \x20 Port {port}\n\
             \x20 IdentityFile {key}\n\
             \x20 IdentitiesOnly yes\n\
             \x20 UserKnownHostsFile {kh}\n\
             Host fleet-a\n\
             \x20 HostName 127.0.0.2\n\
             Host fleet-b\n\
             \x20 HostName 127.0.0.3\n",
            user = sshd.user,
            port = sshd.port,
            key = sshd.path("client_ed25519").display(),
            kh = sshd.path("known_hosts").display(),
        ),
    )
    .unwrap();
    let report = run(
        Engine::builder()
            .shards(1)
            .no_agent()
            .ssh_config_file(&config),
        vec![HostTarget::new("fleet-a"), HostTarget::new("fleet-b")],
        job("echo $SSH_CONNECTION"),
    );
    for (r, (name, addr)) in report
        .results
        .iter()
        .zip([("fleet-a", "127.0.0.2"), ("fleet-b", "127.0.0.3")])
    {
        sshd.assert_ok(r);
        assert_eq!(r.target.host, name);
        assert_eq!(r.target.user.as_deref(), Some(sshd.user.as_str()));
        assert_eq!(r.target.port, Some(sshd.port));
        // SSH_CONNECTION: client address and port, server address and port.
        let conn = String::from_utf8_lossy(&r.stdout);
        assert!(
            conn.trim_end().ends_with(&format!("{addr} {}", sshd.port)),
            "{conn}"
        );
    }
}

/// `ProxyCommand` as `ssh` runs it: through `nc`, `socat` and `ssh -W` (a bastion that is
/// the same sshd), with the `%` tokens expanded per host; `none` connects directly; a proxy
/// that exits fails its host as `connect`, never a direct connection.
#[test]
fn proxy_command_reaches_sshd_through_nc_socat_and_ssh_w() {
    let sshd = sshd();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("proxy.log");
    let config = dir.path().join("config");
    let key = sshd.path("client_ed25519");
    let kh = sshd.path("known_hosts");
    std::fs::write(
        &config,
        format!(
            "Host via-nc\n\
             \x20 HostName 127.0.0.2\n\
             \x20 ProxyCommand sh -c 'echo \"%n %h %p %r %%\" >> {log}; exec nc %h %p'\n\
             Host via-socat\n\
             \x20 HostName 127.0.0.3\n\
             \x20 ProxyCommand socat - TCP:%h:%p\n\
             Host via-ssh\n\
             \x20 HostName 127.0.0.4\n\
             \x20 ProxyCommand ssh -F none -i {key} -o IdentitiesOnly=yes -o BatchMode=yes \
               -o StrictHostKeyChecking=yes -o UserKnownHostsFile={kh} -p {port} -W %h:%p \
               {user}@127.0.0.1\n\
             Host direct\n\
             \x20 HostName 127.0.0.1\n\
             \x20 ProxyCommand none\n\
             Host *\n\
             \x20 User {user}\n\
             \x20 Port {port}\n\
             \x20 IdentityFile {key}\n\
             \x20 IdentitiesOnly yes\n\
             \x20 UserKnownHostsFile {kh}\n\
             \x20 ProxyCommand /bin/false\n",
            log = log.display(),
            user = sshd.user,
            port = sshd.port,
            key = key.display(),
            kh = kh.display(),
        ),
    )
    .unwrap();
    let engine = Engine::builder()
        .shards(1)
        .no_agent()
        .ssh_config_file(&config)
        .build()
        .unwrap();
    let hosts = ["via-nc", "via-socat", "via-ssh", "direct", "127.0.0.1"];
    let report = engine
        .run(
            hosts
                .iter()
                .map(|h| HostTarget::new(*h))
                .collect::<Vec<_>>(),
            job("echo $SSH_CONNECTION"),
        )
        .unwrap()
        .join();
    for (r, addr) in
        report.results[..4]
            .iter()
            .zip(["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.1"])
    {
        sshd.assert_ok(r);
        // SSH_CONNECTION ends with the server address and port the connection reached.
        let conn = String::from_utf8_lossy(&r.stdout);
        assert!(
            conn.trim_end().ends_with(&format!("{addr} {}", sshd.port)),
            "{}: {conn}",
            r.target
        );
    }
    // The tokens, for the host that logged them.
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        logged.trim_end(),
        format!("via-nc 127.0.0.2 {} {} %", sshd.port, sshd.user)
    );
    // `Host *` sends the plain address through /bin/false: the host fails, and no direct
    // connection is made behind the configuration's back.
    let failed = &report.results[4];
    assert_eq!(
        failed.error.as_ref().map(|e| e.kind),
        Some(ErrorKind::Connect),
        "{failed:?}"
    );
    let message = &failed.error.as_ref().unwrap().message;
    assert!(
        message.contains("ProxyCommand \"/bin/false\" exited"),
        "{message}"
    );

    // `-J` wins over ProxyCommand, as on ssh's command line.
    let settings = Engine::builder()
        .no_agent()
        .ssh_config_file(&config)
        .jump_spec("bastion.example")
        .unwrap()
        .host_settings(&HostTarget::new("via-nc"))
        .unwrap();
    assert_eq!(settings.proxy_command, None);
}

/// Bastions named by their ssh_config alias, in `-J` and in `ProxyJump`, are reached with the
/// alias's HostName, User, Port, IdentityFile and known_hosts, as `ssh -F cfg -J alias host`
/// does. The engine has no key of its own (a password the server does not take): only the
/// aliases' keys get in. (The engine's keys and known_hosts, like `-i` and `--known-hosts`,
/// win over ssh_config's.)
#[test]
fn bastion_aliases_use_their_ssh_config_settings() {
    let sshd = sshd();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let block = |name: &str, addr: &str, extra: &str| {
        format!(
            "Host {name}\n  HostName {addr}\n  Port {port}\n  User {user}\n  IdentityFile {key}\n  \
             IdentitiesOnly yes\n  UserKnownHostsFile {kh}\n{extra}",
            port = sshd.port,
            user = sshd.user,
            key = sshd.path("client_ed25519").display(),
            kh = sshd.path("known_hosts").display(),
        )
    };
    std::fs::write(
        &config,
        [
            block("jumpbox", "127.0.0.1", ""),
            block("behind-jump", "127.0.0.3", "  ProxyJump jumpbox\n"),
            block("via-flag", "127.0.0.4", ""),
        ]
        .concat(),
    )
    .unwrap();
    let engine = |jump: Option<&str>| {
        let mut b = Engine::builder()
            .shards(1)
            .no_agent()
            .password(fleetsh::Secret::new("not-accepted"))
            .known_hosts(sshd.path("known_hosts"))
            .ssh_config_file(&config);
        if let Some(j) = jump {
            b = b.jump_spec(j).unwrap();
        }
        b.build().unwrap()
    };
    let run = |e: &Engine, host: &str| {
        e.run(vec![HostTarget::new(host)], job("echo through"))
            .unwrap()
            .join()
            .results[0]
            .clone()
    };
    let r = run(&engine(None), "behind-jump");
    sshd.assert_ok(&r);
    assert_eq!(r.stdout, b"through\n");
    let r = run(&engine(Some("jumpbox")), "via-flag");
    sshd.assert_ok(&r);
    // An alias the configuration does not know is still a name to resolve, and fails as such.
    let r = run(&engine(Some("no-such-bastion.invalid")), "via-flag");
    let e = r.error.as_ref().unwrap();
    assert_eq!(e.kind, ErrorKind::Jump, "{e}");
    assert!(e.message.contains("no-such-bastion.invalid"), "{e}");
}

/// sshd with `MaxStartups 4` drops every connection beyond four unauthenticated ones: with a
/// fixed retry delay the refused hosts came back in lock-step, four got in per round and most
/// failed for good. With backoff and jitter every host gets in.
#[test]
fn retries_spread_out_against_max_startups() {
    let sshd = Sshd::start_with(|_| "MaxStartups 4\n".to_string());
    let engine = sshd.engine(2).fanout(100).build().unwrap();
    let hosts: Vec<HostTarget> = (0..100)
        .map(|i| HostTarget::new(ADDRS[i % ADDRS.len()]))
        .collect();
    let mut j = job("true");
    j.retries = 9;
    j.retry_delay = Duration::from_millis(200);
    let report = engine.run(hosts, j).unwrap().join();
    let failed: Vec<String> = report
        .results
        .iter()
        .filter(|r| !r.is_ok())
        .map(|r| format!("{:?}", r.error))
        .collect();
    assert!(
        failed.is_empty(),
        "{} failed, e.g. {:?}",
        failed.len(),
        failed.first()
    );
    let retried = report.results.iter().filter(|r| r.attempts > 1).count();
    assert!(
        retried > 0,
        "MaxStartups refused no one: the test proves nothing"
    );
}

/// A TCP relay to `to` that, once `dead` is set, keeps both connections open but drops every
/// byte: a network path that died without a reset.
fn black_hole_relay(to: SocketAddr, dead: Arc<std::sync::atomic::AtomicBool>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(to) else {
                return;
            };
            for (mut from, mut into) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                let dead = dead.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    while let Ok(n @ 1..) = from.read(&mut buf) {
                        if dead.load(std::sync::atomic::Ordering::SeqCst) {
                            continue;
                        }
                        if into.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        }
    });
    port
}

/// `ServerAliveInterval`/`ServerAliveCountMax` detect a connection that died silently
/// while a command ran: the host ends as `disconnected` within a few intervals instead of
/// waiting for the command timeout.
#[test]
fn keepalive_detects_a_dead_connection() {
    let sshd = sshd();
    let dead = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let relay = black_hole_relay(
        SocketAddr::new(ADDRS[0].parse().unwrap(), sshd.port),
        dead.clone(),
    );
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("known_hosts");
    let host_key = public_key(&sshd.path("host_ed25519.pub"));
    std::fs::write(&kh, format!("[127.0.0.1]:{relay} {host_key}\n")).unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "Host relay\n  HostName 127.0.0.1\n  Port {relay}\n  UserKnownHostsFile {}\n\
             \x20 ServerAliveInterval 1\n  ServerAliveCountMax 2\n",
            kh.display()
        ),
    )
    .unwrap();
    let mut j = job("echo started; sleep 120");
    j.stream_output = true;
    let engine = Engine::builder()
        .shards(1)
        .user(&sshd.user)
        .no_agent()
        .identity_file(sshd.path("client_ed25519"))
        .ssh_config_file(&config)
        .build()
        .unwrap();
    let mut handle = engine.run(vec![HostTarget::new("relay")], j).unwrap();
    let started = Instant::now();
    while let Some(ev) = handle.next_event() {
        if let fleetsh::Event::Output { data, .. } = &ev
            && data.starts_with(b"started")
        {
            dead.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let report = handle.join();
    let r = &report.results[0];
    assert!(dead.load(std::sync::atomic::Ordering::SeqCst), "{r:?}");
    let e = r.error.as_ref().expect("a dead link fails the host");
    assert_eq!(e.kind, ErrorKind::Disconnected, "{e}");
    assert!(e.message.contains("keepalive"), "{e}");
    assert_eq!(String::from_utf8_lossy(&r.stdout), "started\n");
    assert!(started.elapsed() < Duration::from_secs(30), "{r:?}");
}

/// The session cipher each preference negotiates with OpenSSH's sshd, read from what sshd logs
/// for every connection at `LogLevel DEBUG1` (`kex: client->server cipher: NAME ...`): sshd
/// takes the first cipher of the client's list that it has, and has both AEADs.
#[test]
fn cipher_preference_against_openssh() {
    let sshd = Sshd::start_with(|_| "LogLevel DEBUG1\n".to_string());
    let negotiated = |cipher: Option<Cipher>| -> Vec<String> {
        let before = sshd.log().len();
        let mut b = sshd.engine(1);
        if let Some(c) = cipher {
            b = b.cipher(c);
        }
        let report = run(b, sshd.targets(), job("true"));
        for r in &report.results {
            sshd.assert_ok(r);
        }
        // sshd's log reaches us through a pipe: wait (bounded) for every connection's line.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = sshd.log();
            // Complete lines only: the pipe may end mid-line.
            let complete = log.rfind('\n').map_or(0, |i| i + 1);
            let names: Vec<String> = log
                .get(before.min(complete)..complete)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.split_once("client->server cipher: "))
                .filter_map(|(_, rest)| rest.split_whitespace().next())
                .map(str::to_string)
                .collect();
            if names.len() >= ADDRS.len() || Instant::now() >= deadline {
                return names;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let all = |names: Vec<String>, want: &str| {
        assert_eq!(names.len(), ADDRS.len(), "{names:?}\n{}", sshd.log());
        assert!(names.iter().all(|n| n == want), "{names:?}, want {want}");
    };
    let aes = "aes256-gcm@openssh.com";
    let chacha = "chacha20-poly1305@openssh.com";
    all(negotiated(Some(Cipher::AesGcm)), aes);
    all(negotiated(Some(Cipher::Chacha20)), chacha);
    let auto = if Cipher::Auto.resolve() == Cipher::AesGcm {
        aes
    } else {
        chacha
    };
    all(negotiated(None), auto);
}

/// The key exchange guess against OpenSSH's sshd, set to offer curve25519-sha256 only (so the
/// test does not depend on the installed version's default order): the default client puts
/// ML-KEM first, so its guess is wrong and sshd ignores it; with curve25519 first both sides
/// agree and sshd answers the guessed packet (were it ignored, the handshake would stall).
#[test]
fn kex_guess_against_openssh() {
    let sshd = Sshd::start_with(|_| "KexAlgorithms curve25519-sha256\n".to_string());
    let default = sshd.engine(2).build().unwrap();
    let report = default
        .run(sshd.targets(), job("echo hello"))
        .unwrap()
        .join();
    for r in &report.results {
        sshd.assert_ok(r);
    }
    let g = default.kex_guesses().unwrap();
    assert_eq!(g.right, 0, "{g:?}");
    assert!(g.wrong >= 1, "{g:?}");

    let curve = sshd.engine(2).kex(Kex::Curve25519).build().unwrap();
    let report = curve.run(sshd.targets(), job("echo hello")).unwrap().join();
    for r in &report.results {
        sshd.assert_ok(r);
    }
    let g = curve.kex_guesses().unwrap();
    assert_eq!((g.right, g.wrong), (ADDRS.len() as u64, 0));
}

/// The channel window, maximum packet size and cipher list reach the server: sshd logs, at
/// `LogLevel DEBUG1`, the window and packet size of every session channel a client opens
/// (`server_input_channel_open: ctype session rchan 0 win N max M`) and the cipher chosen.
#[test]
fn channel_sizes_and_ciphers_reach_openssh() {
    let sshd = Sshd::start_with(|_| "LogLevel DEBUG1\n".to_string());
    let engine = sshd
        .engine(1)
        .window_size(65_536)
        .max_packet_size(4096)
        .ciphers(["aes128-gcm@openssh.com"])
        .build()
        .unwrap();
    let report = engine
        .run(sshd.targets(), job("seq 1 20000 | tail -n 1"))
        .unwrap()
        .join();
    for r in &report.results {
        sshd.assert_ok(r);
        assert_eq!(r.stdout, b"20000\n");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let (channels, ciphers) = loop {
        let log = sshd.log();
        let channels = log
            .lines()
            .filter(|l| l.contains("ctype session") && l.contains("win 65536 max 4096"))
            .count();
        let ciphers = log
            .lines()
            .filter(|l| l.contains("client->server cipher: aes128-gcm@openssh.com"))
            .count();
        if (channels >= ADDRS.len() && ciphers >= ADDRS.len()) || Instant::now() >= deadline {
            break (channels, ciphers);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(channels, ADDRS.len(), "{}", sshd.log());
    assert_eq!(ciphers, ADDRS.len(), "{}", sshd.log());
}

/// The host's session channel is opened in the same write as the signed key request (the
/// channel open follows the request; sshd passes it to the connection service once the key is
/// accepted). A server that refuses session channels still makes a channel error, not an
/// authentication or connection error.
#[test]
fn session_channel_refused_after_the_key_is_a_channel_error() {
    let sshd = Sshd::start_with(|_| "MaxSessions 0\n".to_string());
    let report = run(sshd.engine(1), sshd.targets(), job("echo hello"));
    assert_eq!(report.results.len(), ADDRS.len());
    for r in &report.results {
        let e = r
            .error
            .as_ref()
            .expect("sshd refuses every session channel");
        assert_eq!(e.kind, ErrorKind::Channel, "{e}\n{}", sshd.log());
        assert!(e.message.contains("session channel"), "{e}");
    }
}

/// A host that takes passwords only refuses the key request that a session channel's open
/// follows: sshd answers the open with "unimplemented", the client forgets the channel, and the
/// host's error is the authentication error naming what the server offers.
#[test]
fn password_only_host_refuses_the_key_with_an_auth_error() {
    let sshd = Sshd::start_with(|_| {
        "Match all\nPubkeyAuthentication no\nPasswordAuthentication yes\n".to_string()
    });
    let report = run(sshd.engine(1), sshd.targets(), job("echo hello"));
    assert_eq!(report.results.len(), ADDRS.len());
    for r in &report.results {
        let e = r.error.as_ref().expect("the key is refused");
        assert_eq!(e.kind, ErrorKind::Auth, "{e}\n{}", sshd.log());
        assert!(e.message.contains("server offers password"), "{e}");
    }
}
