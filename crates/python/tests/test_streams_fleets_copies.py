"""Output as it arrives (events, lines), one command per host, sudo, connected fleets and
copies, against simulated fleets."""

import asyncio
import time

import pytest

import fleetsh
from fleetsh.sim import Fleet

from conftest import engine_for


def test_lines_arrive_while_the_host_runs_and_before_its_result(fleet, engine):
    stream = engine.run("echo first; sleep 1; echo second", fleet.hosts[:1], stream=True).lines()
    started = time.monotonic()
    first = stream.next(timeout=10)
    early = time.monotonic() - started
    rest = list(stream)
    assert isinstance(first, fleetsh.Line) and first.text == "first" and first.end == "newline"
    # The first line came before the host's one-second sleep ended.
    assert early < 0.9, early
    assert [type(x) for x in rest] == [fleetsh.Line, fleetsh.HostResult]
    assert rest[0].text == "second" and rest[1].ok and rest[1].stdout == b"first\nsecond\n"


def test_lines_keep_streams_apart_and_end_each_host_with_its_result(fleet, engine):
    items = list(engine.run("echo out; echo err >&2; echo -n tail", fleet.hosts, stream=True).lines())
    assert len(items) == 4 * len(fleet.hosts)
    by_host = {}
    for x in items:
        by_host.setdefault(x.index, []).append(x)
    for host, got in by_host.items():
        lines, result = got[:-1], got[-1]
        assert isinstance(result, fleetsh.HostResult) and result.ok
        assert sorted((l.stream, l.text, l.end) for l in lines) == [
            ("stderr", "err", "newline"),
            ("stdout", "out", "newline"),
            ("stdout", "tail", "eof"),
        ]
        assert all(l.host == result.host and l.index == result.index for l in lines)


def test_lines_without_streaming_come_from_each_result(fleet, engine):
    items = list(engine.run("seq 3", fleet.hosts[:2]).lines())
    texts = [x.text for x in items if isinstance(x, fleetsh.Line)]
    assert texts == ["1", "2", "3", "1", "2", "3"]


def test_events_give_output_as_received_then_the_result(fleet, engine):
    items = list(engine.run("echo hi", fleet.hosts[:3], stream=True).events())
    outputs = [x for x in items if isinstance(x, fleetsh.Output)]
    results = [x for x in items if isinstance(x, fleetsh.HostResult)]
    assert len(results) == 3
    assert b"".join(o.data for o in outputs) == b"hi\n" * 3
    assert all(o.stream == "stdout" and o.text == "hi\n" for o in outputs)
    # Each host's output comes before its result.
    for r in results:
        assert items.index(r) > max(i for i, x in enumerate(items) if isinstance(x, fleetsh.Output) and x.index == r.index)


def test_async_lines_and_next_timeout(fleet, engine):
    async def main():
        got = []
        async for x in engine.run("echo a; echo b", fleet.hosts[:2], stream=True).lines():
            got.append(x)
        return got

    got = asyncio.run(main())
    assert sorted(x.text for x in got if isinstance(x, fleetsh.Line)) == ["a", "a", "b", "b"]
    stream = engine.run("sleep 5", fleet.hosts[:1], stream=True).lines()
    with pytest.raises(TimeoutError):
        stream.next(timeout=0.2)
    stream.run.cancel()
    (result,) = list(stream)
    assert result.error_kind is fleetsh.ErrorKind.CANCELLED


def test_a_run_is_read_one_way(fleet, engine):
    run = engine.run("echo x", fleet.hosts[:2])
    list(run.lines())
    with pytest.raises(RuntimeError, match="read one way"):
        next(iter(run))
    with pytest.raises(RuntimeError, match="read one way"):
        run.events()
    assert run.join().ok_count == 2  # join works however the run was read


@pytest.mark.parametrize(
    "form",
    ["list", "tuple", "dict", "bare-dict", "function"],
)
def test_one_command_per_host(fleet, engine, form):
    hosts = fleet.hosts[:4]
    commands = {
        "list": [f"echo {i}" for i in range(4)],
        "tuple": tuple(f"echo {i}" for i in range(4)),
        "dict": {h: f"echo {i}" for i, h in enumerate(hosts)},
        "bare-dict": {h.rsplit(":", 1)[0]: f"echo {i}" for i, h in enumerate(hosts)},
        "function": lambda host, index: f"echo {index}",
    }[form]
    results = sorted(engine.run(commands, hosts), key=lambda r: r.index)
    assert [r.stdout_text for r in results] == [f"{i}\n" for i in range(4)]


def test_templates_name_each_host(fleet, engine):
    results = sorted(engine.run("echo {index} {host}", fleet.hosts[:2], template=True), key=lambda r: r.index)
    assert [r.stdout_text.split()[0] for r in results] == ["0", "1"]
    assert results[1].stdout_text.split()[1] == results[1].host


def test_sudo_runs_as_root_or_the_user_asked_for_with_the_password_fed_on_stdin():
    with Fleet(2, sudo_password="s3cret") as f:
        engine = engine_for(f, user="deploy")
        plain = engine.run("whoami", f.hosts).join()
        assert {r.stdout_text for r in plain} == {"deploy\n"}
        as_root = engine.run("whoami", f.hosts, sudo=True, sudo_password="s3cret").join()
        assert as_root.ok_count == 2 and {r.stdout_text for r in as_root} == {"root\n"}
        as_user = engine.run("whoami", f.hosts, sudo="backup", sudo_password="s3cret").join()
        assert {r.stdout_text for r in as_user} == {"backup\n"}
        wrong = engine.run("whoami", f.hosts, sudo=True, sudo_password="nope").join()
        assert wrong.ok_count == 0 and all(r.exit_code == 1 for r in wrong)
        assert all("s3cret" not in r.stdout_text + r.stderr_text for r in as_root)


def test_a_connected_fleet_runs_several_commands_over_the_same_connections(fleet):
    engine = engine_for(fleet)
    with Fleet(3) as f:
        engine = engine_for(f)
        with engine.connect(f.hosts) as connected:
            assert len(connected) == 3 and connected.hosts == f.hosts
            assert connected.connect_all().join().ok_count == 3
            for i in range(3):
                report = connected.run(f"echo {i}").join()
                assert {r.stdout_text for r in report} == {f"{i}\n"}
            # Some hosts, by index or as written; results keep the fleet's indices.
            some = connected.run("echo some", hosts=[0, f.hosts[2]]).join()
            assert sorted(r.index for r in some) == [0, 2]
            lines = list(connected.run("echo live", stream=True).lines())
            assert sum(isinstance(x, fleetsh.Line) for x in lines) == 3
            assert [f.connections_accepted(i) for i in range(3)] == [1, 1, 1]
        assert connected.closed
        with pytest.raises(RuntimeError, match="closed"):
            connected.run("true")


def test_a_connected_fleet_reports_unreachable_hosts_as_results():
    with Fleet(10, faults="refuse=30") as f:
        engine = engine_for(f, connect_timeout=5)
        with engine.connect(f.hosts) as connected:
            report = connected.connect_all().join()
            refused = [i for i in range(10) if f.fault_of(i) == "refuse"]
            assert refused and sorted(r.index for r in report.failures()) == refused
            # Refused at once: a connection or handshake failure, never a timeout.
            kinds = {r.error_kind for r in report.failures()}
            assert kinds <= {fleetsh.ErrorKind.CONNECT, fleetsh.ErrorKind.HANDSHAKE}, kinds


def test_copy_to_and_back_from_every_host(tmp_path):
    src = tmp_path / "app.conf"
    src.write_bytes(b"port = 80\n" * 1000)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "x.txt").write_text("x\n")
    with Fleet(3) as f:
        engine = engine_for(f)
        run = engine.copy_to(f.hosts, src, "/app.conf")
        events = list(run.events())
        results = [e for e in events if isinstance(e, fleetsh.HostResult)]
        assert all(r.ok and r.files == 1 and r.bytes == 10_000 for r in results), results
        assert sum(e.bytes for e in events if isinstance(e, fleetsh.Transferred)) == 30_000
        for i in range(3):
            assert (f.host_root(i) / "app.conf").read_bytes() == src.read_bytes()
        assert engine.copy_to(f.hosts, tree, "/", recursive=True).join().ok_count == 3
        assert (f.host_root(1) / "tree" / "sub" / "x.txt").read_text() == "x\n"

        out = tmp_path / "out"
        report = engine.copy_from(f.hosts, ["/app.conf", "/tree"], out, recursive=True).join()
        assert report.ok_count == 3, [r.error_message for r in report.failures()]
        for h in f.hosts:
            d = out / fleetsh.host_dir_name(h)
            assert (d / "app.conf").read_bytes() == src.read_bytes()
            assert (d / "tree" / "sub" / "x.txt").read_text() == "x\n"

        missing = engine.copy_from(f.hosts[:1], "/no/such/file", out).join()
        assert missing.results[0].error_kind is fleetsh.ErrorKind.TRANSFER
        with engine.connect(f.hosts) as connected:
            again = connected.copy_to(src, "/again.conf", hosts=[1]).join()
            assert [r.index for r in again] == [1] and again.all_ok
            assert (f.host_root(1) / "again.conf").exists() and not (f.host_root(0) / "again.conf").exists()


def test_engine_warnings_reach_the_fleetsh_logger(fleet, caplog):
    engine = engine_for(fleet, host_key_check="off")
    with caplog.at_level("WARNING", logger="fleetsh"):
        assert engine.run("true", fleet.hosts[:1]).join().all_ok
    warnings = [r for r in caplog.records if r.name == "fleetsh" and r.levelname == "WARNING"]
    assert any("host key checking is off" in r.getMessage() for r in warnings), caplog.records


def test_next_batch_takes_every_item_that_arrived_in_one_call(fleet, engine):
    stream = engine.run("echo a; echo b", fleet.hosts, stream=True).lines()
    stream.run.join()  # every host done: all of its items are waiting
    first = stream.next_batch(timeout=0, max=5)
    assert len(first) == 5
    rest = stream.next_batch(timeout=0)
    assert len(first) + len(rest) == 3 * len(fleet.hosts)
    with pytest.raises(StopIteration):
        stream.next_batch(timeout=0)
    waiting = engine.run("sleep 5", fleet.hosts[:1], stream=True).lines()
    with pytest.raises(TimeoutError):
        waiting.next(timeout=0)
    with pytest.raises(TimeoutError):
        waiting.next_batch(timeout=0.1)
    with pytest.raises(fleetsh.ConfigError, match="timeout"):
        waiting.next(timeout=-1)
    waiting.run.cancel()


def test_lossy_says_when_the_text_replaced_bytes(fleet, engine):
    (bad,) = engine.run("cat", fleet.hosts[:1], stdin=b"ok \xff\xfe\n").join()
    assert bad.lossy and bad.stdout == b"ok \xff\xfe\n" and "\ufffd" in bad.stdout_text
    (good,) = engine.run("echo caf\u00e9", fleet.hosts[:1]).join()
    assert not good.lossy and good.stdout_text == "caf\u00e9\n"


def run_bounded(script, seconds=60):
    """Runs `script` in a fresh interpreter, failing the test if it has not ended in `seconds`
    (a deadlock in the process under test ends the test rather than the whole suite)."""
    import subprocess
    import sys

    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=seconds)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"still running after {seconds} s (deadlock?): {e.stdout} {e.stderr}")
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_engine_warnings_never_wait_for_the_gil_held_by_another_thread():
    # One thread runs commands on a connected fleet whose every run logs a warning (host key
    # checking off) while holding the fleet's lock; the main thread, holding the GIL, asks the
    # fleet for its hosts, which takes that lock.
    out = run_bounded(
        """
import logging, threading, time
import fleetsh
from fleetsh.sim import Fleet
logging.basicConfig(level=logging.WARNING)
with Fleet(2) as sim:
    eng = fleetsh.Engine(identity=sim.key, known_hosts=sim.known_hosts, host_key_check="off", agent=False)
    fleet = eng.connect(sim.hosts)
    stop, runs = [False], [0]
    def worker():
        while not stop[0]:
            fleet.run("true").join()
            runs[0] += 1
    t = threading.Thread(target=worker)
    t.start()
    end = time.monotonic() + 3
    while time.monotonic() < end:
        len(fleet); fleet.hosts
    stop[0] = True
    t.join(20)
    assert not t.is_alive() and runs[0] > 0
    fleet.close()
print("ok")
"""
    )
    assert out.strip() == "ok"


def test_dropping_an_unread_run_never_waits_for_the_gil():
    # Every host logs a warning (the agent to forward is missing) while runs nobody read are
    # dropped, which stops their shard threads.
    out = run_bounded(
        """
import logging, time
import fleetsh
from fleetsh.sim import Fleet
logging.basicConfig(level=logging.WARNING)
with Fleet(20) as sim:
    eng = fleetsh.Engine(identity=sim.key, known_hosts=sim.known_hosts, agent="/nonexistent/agent.sock", forward_agent=True)
    for i in range(60):
        run = eng.run("echo hi", sim.hosts)
        time.sleep((i % 5) * 0.01)
        del run
print("ok")
"""
    )
    assert out.strip() == "ok"


def test_a_run_is_done_once_every_host_has_its_result(fleet, engine):
    # A reader that stops at the last host's result, without asking for the end, sees the run
    # done (a connected fleet's next command goes on the same connections then).
    hosts = fleet.hosts[:3]
    stream = engine.run("echo one", hosts).lines()
    results = [x for x in (stream.next(timeout=30) for _ in range(2 * len(hosts))) if isinstance(x, fleetsh.HostResult)]
    assert len(results) == len(hosts)
    assert stream.run.done
