"""The fleetsh package's file transfers, connected fleets, live output, per-host commands,
sudo and encrypted keys, against a real OpenSSH sshd on loopback addresses (tests/sshd.py).

The server runs on this machine as the user running the tests, so a "remote" path is a path of
this machine: each test copies into and out of its own temporary directory and checks the
files directly. Without sshd every test here fails with a message saying what to install:
they never skip.
"""

import asyncio
import os
import shutil
import socket
import subprocess
import time

import pytest

import fleetsh
from fleetsh import ErrorKind

from conftest import engine_for_sshd


def assert_ok(r, sshd):
    """`r` ran (or copied) without error and exited 0; the failure message carries the result
    and sshd's log."""
    assert r.ok, f"{r!r}: {r.error_kind} {r.error_message}\nstderr: {r.stderr!r}\nsshd log:\n{sshd.log()}"


@pytest.fixture(scope="module")
def engine(sshd):
    # A hung session fails its test instead of hanging the suite.
    return engine_for_sshd(sshd, command_timeout=30)


def client_port(r):
    """The client's TCP port of the connection a command ran on (from its $SSH_CONNECTION)."""
    return int(r.stdout_text.split()[1])


# File transfers: copy_to


def test_copy_to_an_existing_directory_keeps_the_files_name(sshd, engine, tmp_path):
    local = tmp_path / "app.conf"
    local.write_bytes(b"key = value\n\x00\xff")
    remote = tmp_path / "remote"
    remote.mkdir()
    report = engine.copy_to(sshd.target, str(local), str(remote)).join()
    r = report.results[0]
    assert_ok(r, sshd)
    assert r.files == 1 and r.bytes == len(local.read_bytes())
    assert (remote / "app.conf").read_bytes() == local.read_bytes()
    # A path-like local path works as well as a str.
    renamed = remote / "renamed.conf"
    r = engine.copy_to(sshd.target, local, str(renamed)).join().results[0]
    assert_ok(r, sshd)
    assert renamed.read_bytes() == local.read_bytes()


def test_copy_to_every_host(sshd, engine, tmp_path):
    local = tmp_path / "payload.bin"
    data = os.urandom(200_000)
    local.write_bytes(data)
    remote = tmp_path / "remote"
    remote.mkdir()
    report = engine.copy_to(sshd.targets, str(local), str(remote)).join()
    assert len(report) == 4
    for i, r in enumerate(report.results):
        assert_ok(r, sshd)
        assert r.index == i and r.host == sshd.addrs[i]
        assert r.files == 1 and r.bytes == len(data)
    # Every host is this machine: each wrote the same bytes to the same file.
    assert (remote / "payload.bin").read_bytes() == data


def test_copy_to_several_files_into_a_directory(sshd, engine, tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("alpha\n")
    b.write_text("bravo bravo\n")
    remote = tmp_path / "remote"
    remote.mkdir()
    r = engine.copy_to(sshd.target, [str(a), str(b)], str(remote)).join().results[0]
    assert_ok(r, sshd)
    assert r.files == 2 and r.bytes == len("alpha\n") + len("bravo bravo\n")
    assert (remote / "a.txt").read_text() == "alpha\n"
    assert (remote / "b.txt").read_text() == "bravo bravo\n"


def test_copy_to_does_not_create_parent_directories(sshd, engine, tmp_path):
    local = tmp_path / "f"
    local.write_text("x")
    missing = tmp_path / "no" / "such" / "dir" / "f"
    r = engine.copy_to(sshd.target, str(local), str(missing)).join().results[0]
    assert r.error_kind is ErrorKind.TRANSFER, (r.error_kind, r.error_message)
    assert r.error_message and not r.ok
    assert not (tmp_path / "no").exists()


def test_copy_to_a_path_ending_in_a_slash_is_a_directory(sshd, engine, tmp_path):
    local = tmp_path / "f.txt"
    local.write_text("f\n")
    remote = tmp_path / "remote"
    remote.mkdir()
    r = engine.copy_to(sshd.target, str(local), f"{remote}/").join().results[0]
    assert_ok(r, sshd)
    assert (remote / "f.txt").read_text() == "f\n"
    # No such directory: the host fails, nothing is created.
    r = engine.copy_to(sshd.target, str(local), f"{tmp_path / 'absent'}/").join().results[0]
    assert r.error_kind is ErrorKind.TRANSFER, (r.error_kind, r.error_message)
    assert not (tmp_path / "absent").exists()


def test_copy_to_checks_local_files_before_starting(sshd, engine, tmp_path):
    with pytest.raises(fleetsh.ConfigError) as e:
        engine.copy_to(sshd.target, str(tmp_path / "missing.txt"), str(tmp_path))
    assert "missing.txt" in str(e.value)
    (tmp_path / "tree").mkdir()
    with pytest.raises(fleetsh.ConfigError):
        engine.copy_to(sshd.target, str(tmp_path / "tree"), str(tmp_path / "remote"))


def test_copy_to_a_directory_tree(sshd, engine, tmp_path):
    tree = tmp_path / "site"
    (tree / "css").mkdir(parents=True)
    (tree / "index.html").write_text("<h1>hi</h1>\n")
    (tree / "css" / "main.css").write_text("body {}\n")
    (tree / "empty").mkdir()
    remote = tmp_path / "remote"
    remote.mkdir()
    r = engine.copy_to(sshd.target, str(tree), str(remote), recursive=True).join().results[0]
    assert_ok(r, sshd)
    assert r.files == 2 and r.bytes == len("<h1>hi</h1>\n") + len("body {}\n")
    # An existing directory receives the tree under its own name, as scp -r does.
    assert (remote / "site" / "index.html").read_text() == "<h1>hi</h1>\n"
    assert (remote / "site" / "css" / "main.css").read_text() == "body {}\n"
    assert (remote / "site" / "empty").is_dir()
    # A new path becomes the copy of the tree.
    fresh = remote / "site-copy"
    r = engine.copy_to(sshd.target, str(tree), str(fresh), recursive=True).join().results[0]
    assert_ok(r, sshd)
    assert (fresh / "css" / "main.css").read_text() == "body {}\n"


def test_copy_to_with_preserve_keeps_mode_and_times(sshd, engine, tmp_path):
    local = tmp_path / "tool.sh"
    local.write_text("#!/bin/sh\necho tool\n")
    os.chmod(local, 0o751)
    os.utime(local, (1_500_000_000, 1_600_000_000))
    kept, plain = tmp_path / "kept", tmp_path / "plain"
    kept.mkdir()
    plain.mkdir()
    assert_ok(engine.copy_to(sshd.target, str(local), str(kept), preserve=True).join().results[0], sshd)
    assert_ok(engine.copy_to(sshd.target, str(local), str(plain)).join().results[0], sshd)
    st = os.stat(kept / "tool.sh")
    assert (st.st_mode & 0o777, int(st.st_mtime)) == (0o751, 1_600_000_000)
    assert int(os.stat(plain / "tool.sh").st_mtime) != 1_600_000_000


def test_copy_to_reports_transfers_as_events(sshd, engine, tmp_path):
    local = tmp_path / "blob"
    local.write_bytes(b"b" * 100_000)
    remote = tmp_path / "remote"
    remote.mkdir()
    run = engine.copy_to(sshd.targets[:2], str(local), str(remote))
    transferred, results = {}, {}
    it = run.events()
    for _ in range(1000):
        try:
            ev = it.next(timeout=30)
        except StopIteration:
            break
        if isinstance(ev, fleetsh.HostResult):
            assert ev.index not in results
            results[ev.index] = ev
        else:
            assert isinstance(ev, fleetsh.Transferred), ev
            # A host's transfers come before its result.
            assert ev.index not in results
            transferred.setdefault(ev.index, []).append(ev)
    assert sorted(results) == [0, 1]
    for i, r in results.items():
        assert_ok(r, sshd)
        evs = transferred.get(i)
        assert evs, f"no Transferred event for host {i}"
        assert all(ev.host == sshd.addrs[i] for ev in evs), evs
        # Each event counts what was completed since the host's previous one.
        assert sum(ev.files for ev in evs) == r.files == 1
        assert sum(ev.bytes for ev in evs) == r.bytes == 100_000
    assert run.join().all_ok
    # A command's results count no files.
    r = engine.run("true", sshd.target).join().results[0]
    assert r.files is None and r.bytes is None


# File transfers: copy_from


def test_copy_from_every_host_into_a_directory_per_host(sshd, engine, tmp_path):
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "syslog").write_bytes(b"line 1\nline 2\n")
    (remote / "auth.log").write_bytes(b"auth\n")
    local_dir = tmp_path / "collected"
    local_dir.mkdir()
    report = engine.copy_from(
        sshd.targets, [str(remote / "syslog"), str(remote / "auth.log")], str(local_dir)
    ).join()
    assert len(report) == 4
    for target, r in zip(sshd.targets, report.results):
        assert_ok(r, sshd)
        assert r.files == 2 and r.bytes == len(b"line 1\nline 2\n") + len(b"auth\n")
        where = local_dir / fleetsh.host_dir_name(target)
        assert (where / "syslog").read_bytes() == b"line 1\nline 2\n"
        assert (where / "auth.log").read_bytes() == b"auth\n"
    names = {fleetsh.host_dir_name(t) for t in sshd.targets}
    assert len(names) == 4 and set(os.listdir(local_dir)) == names


def test_copy_from_names_the_directory_by_the_host_as_given(sshd, engine, tmp_path):
    remote = tmp_path / "motd"
    remote.write_text("welcome\n")
    local_dir = tmp_path / "collected"
    local_dir.mkdir()
    as_given = f"{sshd.user}@{sshd.target}"
    r = engine.copy_from([as_given], str(remote), str(local_dir)).join().results[0]
    assert_ok(r, sshd)
    assert (local_dir / fleetsh.host_dir_name(as_given) / "motd").read_text() == "welcome\n"


def test_copy_from_a_tree_with_preserve(sshd, engine, tmp_path):
    tree = tmp_path / "etc-app"
    (tree / "conf.d").mkdir(parents=True)
    (tree / "main.conf").write_text("main\n")
    (tree / "conf.d" / "extra.conf").write_text("extra\n")
    os.utime(tree / "main.conf", (1_500_000_000, 1_500_000_000))
    local_dir = tmp_path / "collected"
    local_dir.mkdir()
    r = engine.copy_from(sshd.target, str(tree), str(local_dir), recursive=True, preserve=True).join().results[0]
    assert_ok(r, sshd)
    assert r.files == 2
    got = local_dir / fleetsh.host_dir_name(sshd.target) / "etc-app"
    assert (got / "conf.d" / "extra.conf").read_text() == "extra\n"
    assert int(os.stat(got / "main.conf").st_mtime) == 1_500_000_000


def test_copy_from_creates_the_local_directory(sshd, engine, tmp_path):
    remote = tmp_path / "hosts"
    remote.write_text("127.0.0.1 localhost\n")
    local_dir = tmp_path / "new" / "collected"
    r = engine.copy_from(sshd.target, str(remote), local_dir).join().results[0]
    assert_ok(r, sshd)
    assert (local_dir / fleetsh.host_dir_name(sshd.target) / "hosts").read_text() == "127.0.0.1 localhost\n"
    # A file where the directory should be cannot work.
    with pytest.raises(fleetsh.ConfigError):
        engine.copy_from(sshd.target, str(remote), str(remote))


def test_copy_from_a_missing_file_is_a_transfer_failure(sshd, engine, tmp_path):
    local_dir = tmp_path / "collected"
    local_dir.mkdir()
    r = engine.copy_from(sshd.target, str(tmp_path / "absent"), str(local_dir)).join().results[0]
    assert r.error_kind is ErrorKind.TRANSFER, (r.error_kind, r.error_message)
    assert r.error_message and not r.ok


def test_transfers_fail_as_results_for_hosts_that_cannot_be_reached(sshd, tmp_path):
    local = tmp_path / "f"
    local.write_text("x")
    wrong = fleetsh.Engine(identity=sshd.other_key, known_hosts=sshd.known_hosts, agent=False, user=sshd.user)
    r = wrong.copy_to(sshd.target, str(local), str(tmp_path / "g")).join().results[0]
    assert r.error_kind is ErrorKind.AUTH, (r.error_kind, r.error_message)
    assert not (tmp_path / "g").exists()


# Connected fleets


def test_a_connected_fleet_reuses_its_connections(sshd, engine):
    with engine.connect(sshd.targets) as fleet:
        assert fleet.hosts == sshd.targets and len(fleet) == 4
        report = fleet.connect_all().join()
        assert len(report) == 4
        for r in report:
            assert_ok(r, sshd)
        first = fleet.run("echo $SSH_CONNECTION").join()
        second = fleet.run("echo $SSH_CONNECTION").join()
        for a, b in zip(first, second):
            assert_ok(a, sshd)
            assert_ok(b, sshd)
            # The same TCP connection: the same client port.
            assert client_port(a) == client_port(b), (a.stdout_text, b.stdout_text)
        assert not fleet.closed
    assert fleet.closed
    fleet.close()  # closing twice does nothing
    # A run of the engine makes connections of its own.
    fresh = engine.run("echo $SSH_CONNECTION", sshd.targets).join()
    assert {client_port(r) for r in fresh}.isdisjoint({client_port(r) for r in first})


def test_a_connected_fleet_selects_hosts_it_has_once(sshd, engine):
    with engine.connect(sshd.targets[:2]) as fleet:
        for hosts in ([sshd.targets[3]], [0, 0], [0, sshd.targets[0]]):
            with pytest.raises(fleetsh.HostSpecError):
                fleet.run("true", hosts=hosts)
        assert fleet.run("true", hosts=[1]).join().all_ok


def test_a_connected_fleet_runs_on_some_hosts(sshd, engine):
    with engine.connect(sshd.targets) as fleet:
        report = fleet.run("echo $SSH_CONNECTION", hosts=[1, 3]).join()
        assert [r.host for r in report] == [sshd.addrs[1], sshd.addrs[3]]
        # Indices are positions in the fleet, not in the selection.
        assert [r.index for r in report] == [1, 3]
        for r in report:
            assert_ok(r, sshd)
            assert r.stdout_text.split()[2] == r.host
        report = fleet.run("echo picked", hosts=[sshd.targets[2]]).join()
        assert [r.host for r in report] == [sshd.addrs[2]]
        assert report.results[0].stdout == b"picked\n"
        # Each run's keywords, as engine.run's.
        r = fleet.run("cat; echo $FLEETSH_TEST_X", hosts=[0], stdin=b"in\n", env={"FLEETSH_TEST_X": "x"}).join().results[0]
        assert_ok(r, sshd)
        assert r.stdout == b"in\nx\n"
        r = fleet.run("echo partial; sleep 5", hosts=[0], timeout=1).join().results[0]
        assert r.error_kind is ErrorKind.COMMAND_TIMEOUT and r.stdout == b"partial\n"
        # The connection outlives a command's timeout.
        assert fleet.run("echo after", hosts=[0]).join().results[0].stdout == b"after\n"


def test_a_connected_fleet_reports_hosts_it_cannot_reach(sshd):
    # A socket bound but not listening holds the port and refuses connections.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{s.getsockname()[1]}"
        engine = engine_for_sshd(sshd, command_timeout=30)
        with engine.connect([sshd.target, closed]) as fleet:
            healthy, refused = fleet.connect_all().join().results
            assert_ok(healthy, sshd)
            assert refused.error_kind is ErrorKind.CONNECT, (refused.error_kind, refused.error_message)


def test_a_connected_fleet_copies_files(sshd, engine, tmp_path):
    local = tmp_path / "deploy.tar"
    local.write_bytes(b"tarball" * 1000)
    remote = tmp_path / "remote"
    remote.mkdir()
    collected = tmp_path / "collected"
    collected.mkdir()
    with engine.connect(sshd.targets) as fleet:
        r = fleet.copy_to(str(local), str(remote), hosts=[0]).join().results[0]
        assert_ok(r, sshd)
        assert r.files == 1 and (remote / "deploy.tar").read_bytes() == local.read_bytes()
        report = fleet.copy_from(str(remote / "deploy.tar"), str(collected)).join()
        assert len(report) == 4
        for target, r in zip(sshd.targets, report.results):
            assert_ok(r, sshd)
            assert (collected / fleetsh.host_dir_name(target) / "deploy.tar").read_bytes() == local.read_bytes()


# Live output: events() and lines()


def test_events_deliver_output_as_it_arrives(sshd, engine):
    run = engine.run("echo one; echo oops >&2; sleep 1; echo two", sshd.targets[:2], stream=True)
    start = time.monotonic()
    it = run.events()
    outputs, results, first_seen = {}, {}, None
    for _ in range(1000):
        try:
            ev = it.next(timeout=30)
        except StopIteration:
            break
        if isinstance(ev, fleetsh.HostResult):
            assert ev.index not in results
            results[ev.index] = (ev, time.monotonic() - start)
            continue
        assert isinstance(ev, fleetsh.Output), ev
        assert ev.stream in ("stdout", "stderr") and isinstance(ev.data, bytes)
        assert ev.index not in results, "a host's output comes before its result"
        if first_seen is None:
            first_seen = time.monotonic() - start
        outputs.setdefault((ev.index, ev.stream), bytearray()).extend(ev.data)
    assert sorted(results) == [0, 1]
    for i, (r, at) in results.items():
        assert_ok(r, sshd)
        assert outputs[(i, "stdout")] == r.stdout == b"one\ntwo\n"
        assert outputs[(i, "stderr")] == r.stderr == b"oops\n"
        assert r.host == sshd.addrs[i]
        # "one" arrived while the command still slept.
        assert at - first_seen > 0.5, (first_seen, at)
    assert run.join().all_ok


def test_lines_split_output_into_lines_per_host(sshd, engine):
    run = engine.run(r"printf 'a\nb\n'; printf 'err\n' >&2; printf 'last'", sshd.targets, stream=True)
    lines, results = {}, {}
    for item in run.lines():
        if isinstance(item, fleetsh.HostResult):
            results[item.index] = item
            continue
        assert isinstance(item, fleetsh.Line), item
        assert item.index not in results, "a host's lines come before its result"
        assert item.host == sshd.addrs[item.index]
        lines.setdefault(item.index, []).append(item)
    assert sorted(results) == [0, 1, 2, 3]
    for i, r in results.items():
        assert_ok(r, sshd)
        got = [(ln.stream, ln.bytes, ln.text, ln.end) for ln in lines[i]]
        assert [g for g in got if g[0] == "stdout"] == [
            ("stdout", b"a", "a", "newline"),
            ("stdout", b"b", "b", "newline"),
            ("stdout", b"last", "last", "eof"),
        ]
        assert [g for g in got if g[0] == "stderr"] == [("stderr", b"err", "err", "newline")]
    assert run.join().all_ok


def test_lines_of_a_terminal_lose_their_carriage_returns(sshd, engine):
    # A terminal ends lines with CR LF.
    items = list(engine.run("echo one; echo two", sshd.target, pty=True, stream=True).lines())
    assert [(ln.text, ln.end) for ln in items[:-1]] == [("one", "newline"), ("two", "newline")]
    assert isinstance(items[-1], fleetsh.HostResult) and items[-1].stdout == b"one\r\ntwo\r\n"


def test_a_line_longer_than_64_kib_comes_in_pieces(sshd, engine):
    cmd = "head -c 150000 /dev/zero | tr '\\0' x; echo; echo short"
    items = list(engine.run(cmd, sshd.target, stream=True, output_cap=1 << 20).lines())
    lines = [ln for ln in items if isinstance(ln, fleetsh.Line)]
    assert [(len(ln.bytes), ln.end) for ln in lines] == [
        (65536, "split"), (65536, "split"), (150000 - 2 * 65536, "newline"), (5, "newline")
    ]
    assert b"".join(ln.bytes for ln in lines[:3]) == b"x" * 150000


def test_lines_and_events_of_a_run_without_stream(sshd, engine):
    # Lines come from each host's output when it finishes; events carry no output.
    items = list(engine.run("echo a; echo b >&2", sshd.targets[:2]).lines())
    assert sum(isinstance(i, fleetsh.HostResult) for i in items) == 2
    for index in (0, 1):
        mine = [i for i in items if i.index == index]
        assert isinstance(mine[-1], fleetsh.HostResult)
        assert sorted((ln.stream, ln.text) for ln in mine[:-1]) == [("stderr", "b"), ("stdout", "a")]
    events = list(engine.run("echo a", sshd.targets[:2]).events())
    assert all(isinstance(e, fleetsh.HostResult) for e in events) and len(events) == 2


def test_a_run_is_read_one_way(sshd, engine):
    run = engine.run("echo hi", sshd.targets[:2])
    assert len(list(run)) == 2
    with pytest.raises(RuntimeError):
        run.lines()
    with pytest.raises(RuntimeError):
        run.events()
    lines = engine.run("echo hi", sshd.target).lines()
    assert lines.run.join().all_ok
    with pytest.raises(RuntimeError):
        list(lines.run)


def test_lines_next_waits_at_most_its_timeout(sshd, engine):
    run = engine.run("sleep 1; echo late", sshd.target, stream=True)
    it = run.lines()
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        it.next(timeout=0.2)
    assert time.monotonic() - start < 0.9
    line = it.next(timeout=30)
    assert isinstance(line, fleetsh.Line) and line.text == "late"
    r = it.next(timeout=30)
    assert isinstance(r, fleetsh.HostResult)
    assert_ok(r, sshd)
    with pytest.raises(StopIteration):
        it.next(timeout=5)
    # join() still gives the report after the lines were consumed.
    report = run.join(timeout=10)
    assert report.all_ok and len(report) == 1


def test_events_and_lines_under_asyncio(sshd, engine):
    async def collect(iterator):
        return [item async for item in iterator]

    async def main():
        events = await asyncio.wait_for(
            collect(engine.run("echo e1; echo e2", sshd.targets, stream=True).events()), 30
        )
        lines = await asyncio.wait_for(
            collect(engine.run("echo l1; echo l2", sshd.targets, stream=True).lines()), 30
        )
        return events, lines

    events, lines = asyncio.run(main())
    results = [e for e in events if isinstance(e, fleetsh.HostResult)]
    assert sorted(r.index for r in results) == [0, 1, 2, 3] and all(r.ok for r in results)
    for i in range(4):
        data = b"".join(e.data for e in events if isinstance(e, fleetsh.Output) and e.index == i)
        assert data == b"e1\ne2\n"
    for i in range(4):
        texts = [ln.text for ln in lines if isinstance(ln, fleetsh.Line) and ln.index == i]
        assert texts == ["l1", "l2"]
    assert sum(isinstance(ln, fleetsh.HostResult) for ln in lines) == 4


# Per-host commands


def test_a_list_gives_each_host_its_command_in_host_order(sshd, engine):
    commands = [f"echo host {i}" for i in range(4)]
    report = engine.run(commands, sshd.targets).join()
    assert [r.stdout_text for r in report] == [f"host {i}\n" for i in range(4)]
    report = engine.run(tuple(commands[:2]), sshd.targets[:2]).join()
    assert [r.stdout_text for r in report] == ["host 0\n", "host 1\n"]
    # One command per host, no more and no fewer.
    with pytest.raises(fleetsh.ConfigError) as e:
        engine.run(commands[:3], sshd.targets)
    assert e.value.argument == "command", str(e.value)


def test_a_dict_gives_each_host_its_command_by_name(sshd, engine):
    a, b, c = sshd.targets[:3]
    commands = {a: "echo as written", sshd.addrs[1]: "echo bare name", c: "echo third"}
    report = engine.run(commands, [a, b, c]).join()
    assert [r.stdout_text for r in report] == ["as written\n", "bare name\n", "third\n"]
    # A host without a command stops the run from starting, naming the host.
    with pytest.raises(fleetsh.ConfigError) as e:
        engine.run({a: "true"}, [a, b])
    assert b in str(e.value) and e.value.argument == "command", str(e.value)


def test_a_template_names_each_host(sshd, engine):
    report = engine.run("echo {host} {index}", sshd.targets, template=True).join()
    assert [r.stdout_text for r in report] == [f"{a} {i}\n" for i, a in enumerate(sshd.addrs)]
    # Without template=True, braces are the shell's.
    r = engine.run("echo {host}", sshd.target).join().results[0]
    assert r.stdout == b"{host}\n"


def test_a_callable_makes_each_hosts_command_before_anything_connects(sshd, engine):
    calls = []

    def command(host, index):
        calls.append((host, index))
        return f"echo {index} {host}"

    run = engine.run(command, sshd.targets)
    # Called once per host by run() itself, before it returns.
    assert sorted(i for _, i in calls) == [0, 1, 2, 3]
    report = run.join()
    assert len(calls) == 4
    for r in report:
        assert_ok(r, sshd)
        index, host = r.stdout_text.split()
        assert int(index) == r.index and host == sshd.targets[r.index]


# sudo


def test_sudo_runs_the_command_as_root(sshd, engine):
    assert shutil.which("sudo"), "sudo not found: install it (apt-get install -y sudo)"
    report = engine.run("whoami", sshd.targets, sudo=True).join()
    for r in report:
        assert_ok(r, sshd)
        assert r.stdout == b"root\n"
    # The command reaches sudo's shell unchanged, quotes and all, and its exit status comes back.
    r = engine.run("""printf '%s|' "it's" "$(whoami)"; exit 4""", sshd.target, sudo=True).join().results[0]
    assert r.stdout == b"it's|root|" and r.exit_code == 4, (r.stdout, r.stderr, r.error_message)


def test_a_sudo_password_is_sent_only_when_sudo_asks(sshd, engine):
    assert shutil.which("sudo"), "sudo not found: install it (apt-get install -y sudo)"
    # Root's sudo asks for no password: it is never sent, and the command's input is exactly
    # what was given; nothing of the exchange with sudo shows in the output.
    r = engine.run("cat", sshd.target, sudo=True, sudo_password="pw-s3cret", stdin=b"data").join().results[0]
    assert_ok(r, sshd)
    assert (r.stdout, r.stderr) == (b"data", b""), (r.stdout, r.stderr)


def test_sudo_as_another_user(sshd, engine):
    if os.getuid() != 0:
        pytest.fail("sudo -u without a password needs the tests to run as root")
    assert shutil.which("sudo"), "sudo not found: install it (apt-get install -y sudo)"
    r = engine.run("whoami; id -u", sshd.target, sudo="nobody").join().results[0]
    assert_ok(r, sshd)
    assert r.stdout_text.split() == ["nobody", str(_uid("nobody"))]


def _uid(name):
    import pwd

    return pwd.getpwnam(name).pw_uid


# Encrypted keys


def test_an_encrypted_key_opens_with_its_passphrase(sshd, tmp_path):
    key = tmp_path / "id_ed25519"
    shutil.copyfile(sshd.key, key)
    os.chmod(key, 0o600)
    out = subprocess.run(
        ["ssh-keygen", "-q", "-p", "-P", "", "-N", "s3cret phrase", "-f", str(key)],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
    )
    assert out.returncode == 0, out.stderr
    engine = fleetsh.Engine(
        identity=key, passphrase="s3cret phrase", known_hosts=sshd.known_hosts, agent=False, user=sshd.user
    )
    assert_ok(engine.run("true", sshd.target).join().results[0], sshd)
    with pytest.raises(fleetsh.CredentialsError):
        fleetsh.Engine(identity=key, passphrase="wrong", known_hosts=sshd.known_hosts, agent=False, user=sshd.user)
