"""The fleetsh package against a real OpenSSH sshd on loopback addresses (tests/sshd.py, one
server for the session on 127.0.0.1 to 127.0.0.4): output and exit statuses, signals, stdin,
environment, terminals, timeouts, several hosts at once, authentication and host-key failures
as data, learning host keys, refused connections, and asyncio iteration.

Without sshd every test here fails with a message saying what to install: they never skip.
"""

import asyncio
import socket
import subprocess
import time

import pytest

import fleetsh
from fleetsh import ErrorKind

from conftest import engine_for_sshd, iterate_async_with_heartbeat


def assert_ok(r, sshd):
    """`r` ran and exited 0; the failure message carries the result and sshd's log."""
    assert r.ok, f"{r!r}: {r.error_kind} {r.error_message}\nstderr: {r.stderr!r}\nsshd log:\n{sshd.log()}"


@pytest.fixture(scope="module")
def engine(sshd):
    # A hung session fails its test instead of hanging the suite.
    return engine_for_sshd(sshd, command_timeout=30)


def test_echo_on_every_address_in_host_order(sshd, engine):
    report = engine.run("echo hello", sshd.targets).join()
    assert len(report) == len(sshd.addrs) == 4
    for i, r in enumerate(report.results):
        assert_ok(r, sshd)
        assert r.index == i and r.host == sshd.addrs[i] and r.port == sshd.port
        assert r.user == sshd.user and r.target == f"{sshd.user}@{sshd.addrs[i]}:{sshd.port}"
        assert r.exit_code == 0 and r.signal is None and r.error_kind is None
        assert r.error_message is None
        assert r.stdout == b"hello\n" and r.stdout_text == "hello\n" and r.stderr == b""
        assert not r.truncated and r.attempts == 1
        assert r.timings["total"] > 0 and r.timings["connect"] is not None
    assert report.all_ok and report.ok_count == 4 and report.failures() == []


def test_the_remote_home_is_the_servers_empty_directory(sshd, engine):
    # Guards the isolation from the login user's shell rc files (see tests/sshd.py).
    r = engine.run('echo "$HOME"; ls -A "$HOME"', sshd.target).join().results[0]
    assert_ok(r, sshd)
    assert r.stdout_text == f"{sshd.path('home')}\n"


def test_exit_status_and_stderr(sshd, engine):
    report = engine.run("echo out; echo err >&2; exit 3", sshd.targets).join()
    for r in report:
        assert r.error_kind is None, (r.error_kind, r.error_message, sshd.log())
        assert r.exit_code == 3 and r.signal is None and not r.ok
        assert r.stdout == b"out\n" and r.stderr == b"err\n" and r.stderr_text == "err\n"
    assert report.ok_count == 0 and not report.all_ok
    assert [r.index for r in report.failures()] == [0, 1, 2, 3]


def test_a_command_killed_by_a_signal(sshd, engine):
    # `$$` is the shell sshd started for the command.
    r = engine.run("echo before; kill -9 $$", sshd.target).join().results[0]
    assert r.signal == "KILL", (r.exit_code, r.error_kind, r.error_message)
    assert r.exit_code is None and r.error_kind is None and not r.ok
    assert r.stdout == b"before\n"


def test_stdin_bytes_reach_every_host_then_end_of_file(sshd, engine):
    data = b"\x00\xff binary\r\n" + bytes(range(256))
    report = engine.run("cat", sshd.targets, stdin=data).join()
    for r in report:
        assert_ok(r, sshd)
        assert r.stdout == data
    # Text is sent as UTF-8.
    r = engine.run("cat", sshd.target, stdin="h\u00e9llo").join().results[0]
    assert r.stdout == "h\u00e9llo".encode()
    # More than a channel window's worth, then end of file.
    big = b"x" * 300_000
    r = engine.run("wc -c; cat >/dev/null; echo end", sshd.target, stdin=big).join().results[0]
    assert_ok(r, sshd)
    assert r.stdout.split() == [b"300000", b"end"]


def test_a_command_reading_stdin_without_any_sees_end_of_file(sshd, engine):
    start = time.monotonic()
    r = engine.run("cat; echo done", sshd.target, timeout=10).join().results[0]
    assert_ok(r, sshd)
    assert r.stdout == b"done\n"
    assert time.monotonic() - start < 5


def test_environment_variables_the_server_accepts(sshd, engine):
    env = {"FLEETSH_TEST_GREETING": "hello there", "FLEETSH_TEST_EMPTY": ""}
    cmd = 'printf "%s|%s|%s" "$FLEETSH_TEST_GREETING" "${FLEETSH_TEST_EMPTY-unset}" "${FLEETSH_TEST_OTHER-unset}"'
    report = engine.run(cmd, sshd.targets, env=env).join()
    for r in report:
        assert_ok(r, sshd)
        assert r.stdout_text == "hello there||unset"


def test_an_environment_variable_the_server_refuses_fails_the_host(sshd, engine):
    # sshd's AcceptEnv lists FLEETSH_TEST_* only: the command must not run without it.
    r = engine.run("echo ran", sshd.target, env={"NOT_ACCEPTED_VAR": "1"}).join().results[0]
    assert r.error_kind is ErrorKind.CHANNEL, (r.error_kind, r.error_message)
    assert "NOT_ACCEPTED_VAR" in r.error_message
    assert r.stdout == b"" and r.exit_code is None and not r.ok


def test_a_pty_makes_the_command_a_terminal_and_merges_stderr(sshd, engine):
    r = engine.run("tty; echo err >&2", sshd.target, pty=True).join().results[0]
    if not r.ok and "chown(/dev/pts" in sshd.log():
        pytest.fail(
            "sshd cannot hand the terminal to the login user: an sshd not running as root needs "
            "/dev/pts mounted with gid=5 (the tty group), which this machine's is not; run the "
            f"tests as root.\nsshd log:\n{sshd.log()}"
        )
    assert_ok(r, sshd)
    lines = r.stdout_text.splitlines()
    assert lines[0].startswith("/dev/pts/"), r.stdout
    # A terminal turns newlines into CR LF, and stderr is the same terminal.
    assert b"\r\n" in r.stdout and "err" in lines and r.stderr == b""
    r = engine.run("tty", sshd.target).join().results[0]
    assert r.stdout == b"not a tty\n" and r.exit_code == 1


def test_a_command_over_its_timeout_keeps_its_output(sshd, engine):
    start = time.monotonic()
    report = engine.run("echo partial; sleep 5", sshd.targets, timeout=1).join()
    assert time.monotonic() - start < 4.5
    for r in report:
        assert r.error_kind is ErrorKind.COMMAND_TIMEOUT, (r.error_kind, r.error_message)
        assert r.stdout == b"partial\n" and not r.ok and r.error_message
    # The idle timeout: silence, not total time.
    r = engine.run("echo a; sleep 5", sshd.target, idle_timeout=1).join().results[0]
    assert r.error_kind is ErrorKind.COMMAND_TIMEOUT and r.stdout == b"a\n"
    # The engine's default applies to runs that set none.
    quick = engine_for_sshd(sshd, command_timeout=1)
    r = quick.run("echo early; sleep 5", sshd.target).join().results[0]
    assert r.error_kind is ErrorKind.COMMAND_TIMEOUT and r.stdout == b"early\n"


def test_several_hosts_run_at_once(sshd, engine):
    start = time.monotonic()
    report = engine.run("sleep 1; echo done", sshd.targets).join()
    elapsed = time.monotonic() - start
    assert all(r.ok and r.stdout == b"done\n" for r in report), [r.error_message for r in report]
    # Four one-second commands one after another would take four seconds.
    assert elapsed < 3, elapsed


def test_host_ranges_and_the_engines_port(sshd, engine):
    report = engine.run("echo $SSH_CONNECTION", f"127.0.0.[1-{len(sshd.addrs)}]:{sshd.port}").join()
    assert [r.host for r in report] == sshd.addrs
    for r in report:
        assert_ok(r, sshd)
        # The server saw each connection on the address the host names.
        assert r.stdout_text.split()[2:] == [r.host, str(sshd.port)]
    # Bare addresses take the engine's port; a user in the spec overrides the engine's.
    with_port = engine_for_sshd(sshd, port=sshd.port, command_timeout=30)
    assert with_port.port == sshd.port
    report = with_port.run("whoami", [f"{sshd.user}@{sshd.addrs[1]}", sshd.addrs[2]]).join()
    assert [(r.host, r.port) for r in report] == [(sshd.addrs[1], sshd.port), (sshd.addrs[2], sshd.port)]
    assert all(r.ok and r.stdout_text == f"{sshd.user}\n" for r in report)


def test_output_beyond_the_cap_is_dropped(sshd, engine):
    r = engine.run("seq 1 100000", sshd.target, output_cap=10).join().results[0]
    assert_ok(r, sshd)
    assert r.truncated and r.stdout == b"1\n2\n3\n4\n5\n"


def test_a_key_the_server_does_not_accept_is_an_auth_failure(sshd):
    wrong = fleetsh.Engine(
        identity=sshd.other_key, known_hosts=sshd.known_hosts, agent=False, user=sshd.user
    )
    report = wrong.run("echo hi", sshd.targets).join()
    for r in report:
        assert r.error_kind is ErrorKind.AUTH, (r.error_kind, r.error_message)
        assert r.error_message and r.exit_code is None and r.stdout == b"" and not r.ok


def test_a_changed_host_key_fails_strict_checking(sshd):
    forged = fleetsh.Engine(
        identity=sshd.key, known_hosts=sshd.forged_known_hosts, agent=False, user=sshd.user
    )
    report = forged.run("echo hi", sshd.targets).join()
    for r in report:
        assert r.error_kind is ErrorKind.HOSTKEY, (r.error_kind, r.error_message)
        assert r.error_message and r.exit_code is None and r.stdout == b""
    # A changed key is never learned, even by accept-new.
    learning = fleetsh.Engine(
        identity=sshd.key,
        known_hosts=sshd.forged_known_hosts,
        agent=False,
        user=sshd.user,
        host_key_check="accept-new",
    )
    r = learning.run("echo hi", sshd.target).join().results[0]
    assert r.error_kind is ErrorKind.HOSTKEY, (r.error_kind, r.error_message)
    # Checking off: the key is not looked at.
    off = fleetsh.Engine(
        identity=sshd.key, known_hosts=sshd.forged_known_hosts, agent=False, user=sshd.user,
        host_key_check="off",
    )
    assert_ok(off.run("echo hi", sshd.target).join().results[0], sshd)


def test_an_unknown_host_fails_strict_checking(sshd, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    strict = fleetsh.Engine(identity=sshd.key, known_hosts=empty, agent=False, user=sshd.user)
    r = strict.run("echo hi", sshd.target).join().results[0]
    assert r.error_kind is ErrorKind.HOSTKEY, (r.error_kind, r.error_message)
    assert empty.read_text() == ""


def test_accept_new_learns_each_hosts_key_into_known_hosts(sshd, tmp_path):
    learned = tmp_path / "known_hosts"
    learned.write_text("")
    engine = fleetsh.Engine(
        identity=sshd.key,
        known_hosts=learned,
        agent=False,
        user=sshd.user,
        host_key_check="accept-new",
    )
    report = engine.run("echo hi", sshd.targets).join()
    for r in report:
        assert_ok(r, sshd)
    text = learned.read_text()
    assert len(text.splitlines()) == len(sshd.addrs), text
    for addr in sshd.addrs:
        # ssh-keygen finds a name whether it was written plain or hashed.
        name = f"[{addr}]:{sshd.port}"
        out = subprocess.run(
            ["ssh-keygen", "-F", name, "-f", str(learned)], capture_output=True, text=True, timeout=30
        )
        assert out.returncode == 0, f"ssh-keygen -F {name}: {out.stderr}\n{text}"
        assert sshd.host_public_key in out.stdout, out.stdout
    # What was learned satisfies strict checking, and OpenSSH's client reads it too.
    strict = fleetsh.Engine(identity=sshd.key, known_hosts=learned, agent=False, user=sshd.user)
    assert strict.run("true", sshd.targets).join().all_ok
    ssh = subprocess.run(
        [
            "ssh", "-F", "/dev/null", "-i", str(sshd.key), "-p", str(sshd.port),
            "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", f"UserKnownHostsFile={learned}",
            f"{sshd.user}@{sshd.addrs[-1]}", "echo openssh",
        ],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
    )
    assert ssh.returncode == 0 and ssh.stdout == b"openssh\n", ssh.stderr
    # A second run learns nothing more.
    assert engine.run("true", sshd.targets).join().all_ok
    assert learned.read_text() == text


def test_a_closed_port_is_a_connect_failure(sshd, engine):
    # A socket bound but not listening holds the port and refuses connections.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        start = time.monotonic()
        report = engine.run("echo hi", [f"127.0.0.1:{port}", sshd.target]).join()
    closed, healthy = report.results
    assert closed.error_kind is ErrorKind.CONNECT, (closed.error_kind, closed.error_message)
    assert closed.error_message and closed.exit_code is None and closed.attempts == 1
    assert closed.port == port and not closed.ok
    # One host's failure does not touch the others.
    assert_ok(healthy, sshd)
    assert time.monotonic() - start < 5
    # Retries try again, and still end with the connect failure.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        r = engine.run("echo hi", f"127.0.0.1:{port}", retries=2).join().results[0]
    assert r.error_kind is ErrorKind.CONNECT and r.attempts == 3, (r.error_kind, r.attempts)


def test_join_with_a_timeout_and_cancel_end_running_commands_cancelled(sshd, engine):
    start = time.monotonic()
    report = engine.run("echo started; sleep 5", sshd.targets).join(timeout=1)
    assert time.monotonic() - start < 4
    assert report.deadline_hit
    for r in report:
        assert r.error_kind is ErrorKind.CANCELLED and r.stdout == b"started\n", (r.error_kind, r.stdout)
    run = engine.run("sleep 5", sshd.targets)
    time.sleep(0.5)
    run.cancel()
    results = list(run)
    assert run.cancelled and run.done and len(results) == 4
    assert all(r.error_kind is ErrorKind.CANCELLED for r in results)
    assert time.monotonic() - start < 8


def test_async_for_yields_every_host_without_blocking_the_event_loop(sshd, engine):
    got, ticks, report = iterate_async_with_heartbeat(
        lambda: engine.run("sleep 0.5; echo async", sshd.targets)
    )
    assert sorted(r.index for r in got) == [0, 1, 2, 3]
    for r in got:
        assert_ok(r, sshd)
        assert r.stdout == b"async\n"
    assert report.all_ok and len(report) == 4
    # Half a second of sleeping hosts, at most 5 ms a beat: the loop ran all along.
    assert ticks >= 30, ticks


def test_async_for_under_a_task_timeout_cancels_the_run(sshd, engine):
    async def main():
        run = engine.run("echo started; sleep 5", sshd.targets)

        async def consume():
            return [r async for r in run]

        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(consume(), timeout=0.5)
        return run

    start = time.monotonic()
    run = asyncio.run(main())
    assert run.cancelled
    report = run.join(timeout=10)
    assert time.monotonic() - start < 4 and not report.deadline_hit
    assert all(r.error_kind is ErrorKind.CANCELLED for r in report)
