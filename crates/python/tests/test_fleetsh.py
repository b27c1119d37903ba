"""The fleetsh package against simulated fleets (real SSH servers on loopback addresses, in
this process): results as hosts finish, blocking and under asyncio, join, cancel, failures as
data, arguments checked and named, and the GIL released while runs go on."""

import asyncio
import pathlib
import re
import signal
import threading
import time

import pytest

import fleetsh
from fleetsh import ErrorKind
from fleetsh.sim import Fleet

from conftest import engine_for, iterate_async_with_heartbeat


# docs/python.md, whose examples run as tests (when the package is tested from fleetsh's
# repository).
GUIDE = pathlib.Path(__file__).resolve().parents[3] / "docs" / "python.md"


def guide_examples():
    """Each ```python block of the guide, with the line it starts on."""
    if not GUIDE.exists():
        return []
    text = GUIDE.read_text()
    return [
        pytest.param(m.group(1), text.count("\n", 0, m.start(1)), id=f"line{text.count(chr(10), 0, m.start()) + 1}")
        for m in re.finditer(r"```python\n(.*?)```", text, re.S)
    ]


def wait_until(predicate, timeout=10.0):
    """Polls `predicate` until it holds, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def commands_started(fleet):
    return sum(fleet.commands_run(i) for i in range(len(fleet)))


def test_a_thousand_hosts_each_report_once_as_they_finish():
    with Fleet(1000) as fleet:
        run = engine_for(fleet).run("echo hello", fleet.hosts)
        assert len(run) == 1000
        seen = []
        for r in run:
            assert r.ok and r.exit_code == 0 and r.error_kind is None and r.signal is None
            assert r.stdout == b"hello\n" and r.stdout_text == "hello\n" and r.stderr == b""
            seen.append(r.index)
        assert sorted(seen) == list(range(1000))
        assert run.done
        assert all(fleet.commands_run(i) == 1 for i in range(1000))
        report = run.join()
        assert report.all_ok and report.ok_count == 1000 and len(report) == 1000
        assert [f"{r.host}:{r.port}" for r in report.results] == fleet.hosts


def test_async_for_yields_every_host_without_blocking_the_event_loop(fleet, engine):
    got, ticks, report = iterate_async_with_heartbeat(
        lambda: engine.run("sleep 0.5; echo async", fleet.hosts)
    )
    assert sorted(r.index for r in got) == list(range(len(fleet)))
    assert all(r.stdout == b"async\n" for r in got)
    assert report.all_ok and len(report) == len(fleet)
    # Half a second of sleeping hosts at most 5 ms a beat: the loop ran all along.
    assert ticks >= 30, ticks


def test_join_returns_every_result_in_host_order(fleet, engine):
    run = engine.run("hostname", fleet.hosts)
    first = next(run)
    report = run.join()
    assert run.join() is report
    assert len(report) == len(fleet) and report.all_ok and report.ok_count == len(fleet)
    assert [r.stdout for r in report] == [f"sim{i + 1:05}\n".encode() for i in range(len(fleet))]
    assert report.results[first.index].target == first.target
    assert report.failures() == [] and not report.deadline_hit
    assert report.wall > 0 and report.shards >= 1
    timings = report.results[0].timings
    assert set(timings) == {
        "connect", "handshake_auth", "channel_open", "exec", "read", "close", "first_byte", "total"
    }
    assert timings["total"] > 0 and timings["connect"] is not None
    assert report.results[0].attempts == 1
    # Results not iterated before the join are still there to iterate.
    assert len(list(run)) == len(fleet) - 1


def test_join_with_a_timeout_cancels_hosts_still_running(fleet, engine):
    start = time.monotonic()
    report = engine.run("echo started; sleep 30", fleet.hosts).join(timeout=1)
    assert time.monotonic() - start < 10
    assert report.deadline_hit
    for r in report:
        assert r.error_kind is ErrorKind.CANCELLED and not r.ok
        assert r.stdout == b"started\n"


def test_cancel_ends_running_commands_cancelled(fleet, engine):
    before = commands_started(fleet)
    run = engine.run("sleep 5", fleet.hosts)
    wait_until(lambda: commands_started(fleet) == before + len(fleet))
    start = time.monotonic()
    run.cancel()
    results = list(run)
    assert time.monotonic() - start < 4
    assert run.cancelled and run.done
    assert len(results) == len(fleet)
    assert all(r.error_kind == "cancelled" for r in results)
    assert all(r.error_kind is ErrorKind.CANCELLED and r.error_message for r in results)


def test_cancelling_the_iterating_task_cancels_the_run(fleet, engine):
    async def main():
        run = engine.run("sleep 5", fleet.hosts)

        async def consume():
            async for _ in run:
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return run

    start = time.monotonic()
    run = asyncio.run(main())
    assert run.cancelled
    report = run.join(timeout=10)
    assert time.monotonic() - start < 4
    assert not report.deadline_hit
    assert all(r.error_kind is ErrorKind.CANCELLED for r in report)


def test_leaving_a_with_block_cancels_the_run(fleet, engine):
    with engine.run("sleep 30", fleet.hosts) as run:
        pass
    assert run.cancelled
    assert all(r.error_kind is ErrorKind.CANCELLED for r in run.join(timeout=10))


def test_a_signal_handler_interrupts_the_wait_and_cancels_the_run(fleet, engine):
    class Interrupted(Exception):
        pass

    def handler(signum, frame):
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        run = engine.run("sleep 30", fleet.hosts)
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        start = time.monotonic()
        with pytest.raises(Interrupted):
            for _ in run:
                pass
        assert time.monotonic() - start < 3
        assert run.cancelled
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert all(r.error_kind is ErrorKind.CANCELLED for r in run.join(timeout=10))


def test_a_result_names_the_server_and_the_algorithms_negotiated(fleet, engine):
    report = engine.run("true", fleet.hosts[:3]).join()
    for r in report:
        assert r.ok, r
        assert set(r.server) == {"version", "kex", "host_key", "cipher"}
        assert r.server["version"].startswith("SSH-2.0-")
        assert r.server["kex"] == "mlkem768x25519-sha256"
        assert r.server["host_key"] == "ssh-ed25519"
    # A host that was never reached has none.
    unreachable = engine.run("true", ["127.0.0.1:1"]).join().results[0]
    assert unreachable.error_kind is not None and unreachable.server is None


def test_failing_hosts_are_results_not_exceptions():
    with Fleet(40, faults="exit:3=25,refuse=10,auth-fail=10") as fleet:
        engine = engine_for(fleet)
        report = engine.run("echo hi", fleet.hosts).join()
        kinds = {}
        for i, r in enumerate(report.results):
            fault = fleet.fault_of(i)
            kinds[fault] = kinds.get(fault, 0) + 1
            if fault is None:
                assert r.ok and r.stdout == b"hi\n"
            elif fault == "exit":
                assert r.exit_code == 3 and r.error_kind is None and not r.ok
                assert r.stdout == b"hi\n"
            elif fault == "auth-fail":
                assert r.error_kind is ErrorKind.AUTH and r.exit_code is None
            else:
                assert fault == "refuse"
                assert r.error_kind in (ErrorKind.CONNECT, ErrorKind.HANDSHAKE), r
                assert r.error_message
        assert kinds == {None: 22, "exit": 10, "refuse": 4, "auth-fail": 4}
        assert report.ok_count == 22 and not report.all_ok
        assert [r.index for r in report.failures()] == [
            i for i in range(40) if fleet.fault_of(i) is not None
        ]

        healthy = fleet.hosts[next(i for i in range(40) if fleet.fault_of(i) is None)]
        killed = engine.run("kill -9 $$", healthy).join().results[0]
        assert killed.signal == "KILL" and killed.exit_code is None and not killed.ok
        assert killed.error_kind is None
        failed = engine.run("echo oops >&2; exit 2", healthy).join().results[0]
        assert failed.exit_code == 2 and failed.stderr == b"oops\n" and not failed.ok
        assert failed.stderr_text == "oops\n" and failed.error_kind is None

    assert not fleet.running
    with pytest.raises(fleetsh.SimError):
        fleet.commands_run(0)
    # The fleet is gone: every host fails to connect, still as results.
    report = engine.run("echo hi", fleet.hosts[:3]).join()
    assert [r.error_kind for r in report] == [ErrorKind.CONNECT] * 3


def test_hosts_take_ranges_as_the_command_line_does(fleet, engine):
    report = engine.run("hostname", f"127.1.0.[1-3,5]:{fleet.port}").join()
    assert [r.host for r in report] == ["127.1.0.1", "127.1.0.2", "127.1.0.3", "127.1.0.5"]
    assert [r.stdout for r in report] == [b"sim00001\n", b"sim00002\n", b"sim00003\n", b"sim00005\n"]
    # A list of specs: order kept, duplicates removed.
    report = engine.run("true", [fleet.hosts[1], fleet.hosts[0], fleet.hosts[1]]).join()
    assert [f"{r.host}:{r.port}" for r in report] == [fleet.hosts[1], fleet.hosts[0]]
    # A user in the spec.
    r = engine.run("whoami", f"deploy@{fleet.hosts[0]}").join().results[0]
    assert r.user == "deploy" and r.stdout == b"deploy\n"
    assert r.target == f"deploy@{fleet.hosts[0]}"


def test_job_settings_reach_the_hosts(fleet, engine):
    hosts = fleet.hosts[:3]
    r = engine.run("cat", hosts, stdin=b"\xffdata").join().results[0]
    assert r.stdout == b"\xffdata" and r.stdout_text == "\ufffddata"
    r = engine.run("echo $GREETING", hosts, env={"GREETING": "hi"}).join().results[0]
    assert r.stdout == b"hi\n"
    report = engine.run("echo partial; sleep 30", hosts, timeout=1).join()
    assert all(r.error_kind is ErrorKind.COMMAND_TIMEOUT and r.stdout == b"partial\n" for r in report)
    r = engine.run("seq 1 100000", hosts, output_cap=10).join().results[0]
    assert r.truncated and r.stdout == b"1\n2\n3\n4\n5\n" and r.ok
    # Engine defaults apply to runs that set nothing.
    quick = engine_for(fleet, command_timeout=1)
    assert all(r.error_kind is ErrorKind.COMMAND_TIMEOUT for r in quick.run("sleep 30", hosts).join())


def test_the_password_comes_from_fleetsh_password(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))  # no default key files
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with Fleet(3, password="s3cret") as fleet:
        monkeypatch.setenv("FLEETSH_PASSWORD", "s3cret")
        engine = fleetsh.Engine(known_hosts=fleet.known_hosts)
        assert engine.run("true", fleet.hosts).join().all_ok
        monkeypatch.setenv("FLEETSH_PASSWORD", "wrong")
        engine = fleetsh.Engine(known_hosts=fleet.known_hosts)
        assert all(r.error_kind is ErrorKind.AUTH for r in engine.run("true", fleet.hosts).join())
        monkeypatch.delenv("FLEETSH_PASSWORD")
        with pytest.raises(fleetsh.CredentialsError) as e:
            fleetsh.Engine(known_hosts=fleet.known_hosts)
        assert e.value.argument is None and "FLEETSH_PASSWORD" in str(e.value)


BAD_ENGINE_VALUES = [
    ({"port": 0}, fleetsh.ConfigError, "port"),
    ({"port": 70000}, fleetsh.ConfigError, "port"),
    ({"user": ""}, fleetsh.ConfigError, "user"),
    ({"fanout": 0}, fleetsh.ConfigError, "fanout"),
    ({"shards": -1}, fleetsh.ConfigError, "shards"),
    ({"rate": 0}, fleetsh.ConfigError, "rate"),
    ({"batch": "150%"}, fleetsh.ConfigError, "batch"),
    ({"max_fail": "many"}, fleetsh.ConfigError, "max_fail"),
    ({"host_key_check": "maybe"}, fleetsh.ConfigError, "host_key_check"),
    ({"connect_timeout": 0}, fleetsh.ConfigError, "connect_timeout"),
    ({"command_timeout": -1}, fleetsh.ConfigError, "command_timeout"),
    ({"keepalive_count": 0}, fleetsh.ConfigError, "keepalive_count"),
    ({"jump": "user@"}, fleetsh.ConfigError, "jump"),
    ({"ssh_config": "/nonexistent/ssh_config"}, fleetsh.ConfigError, "ssh_config"),
    ({"identity": "/nonexistent/id_ed25519"}, fleetsh.CredentialsError, "identity"),
    ({"known_hosts": "/nonexistent/known_hosts"}, fleetsh.KnownHostsError, "known_hosts"),
    ({"port": "22"}, TypeError, "port"),
    ({"fanout": True}, TypeError, "fanout"),
    ({"connect_timeout": "10"}, TypeError, "connect_timeout"),
    ({"identity": 7}, TypeError, "identity"),
]


@pytest.mark.parametrize("settings,error,argument", BAD_ENGINE_VALUES)
def test_bad_engine_arguments_raise_naming_the_argument(fleet, settings, error, argument):
    given = {"identity": fleet.key, "known_hosts": fleet.known_hosts, "agent": False}
    given.update(settings)
    with pytest.raises(error) as e:
        fleetsh.Engine(**given)
    assert argument in str(e.value)
    if error is not TypeError:
        assert isinstance(e.value, fleetsh.Error)
        assert e.value.argument == argument


def test_bad_run_arguments_raise_naming_the_argument(fleet, engine):
    cases = [
        (lambda: engine.run("true", "web[01-"), fleetsh.HostSpecError, "hosts"),
        (lambda: engine.run("true", []), fleetsh.HostSpecError, "hosts"),
        (lambda: engine.run("true", ["a b"]), fleetsh.HostSpecError, "hosts"),
        (lambda: engine.run("", fleet.hosts), fleetsh.ConfigError, "command"),
        (lambda: engine.run("true", fleet.hosts, timeout=0), fleetsh.ConfigError, "timeout"),
        (lambda: engine.run("true", fleet.hosts, retries=-1), fleetsh.ConfigError, "retries"),
        (lambda: engine.run("true", fleet.hosts, env={"A=B": "x"}), fleetsh.ConfigError, "env"),
        (lambda: engine.run("true", fleet.hosts, stdin=5), TypeError, "stdin"),
        (lambda: engine.run(["true"], fleet.hosts), fleetsh.ConfigError, "command"),
        (lambda: engine.run({"nosuchhost": "true"}, fleet.hosts), fleetsh.ConfigError, "command"),
        (lambda: engine.run(5, fleet.hosts), TypeError, "command"),
        (lambda: engine.run(lambda h, i: 5, fleet.hosts), TypeError, "command"),
        (lambda: engine.run(["true"], fleet.hosts, template=True), fleetsh.ConfigError, "template"),
        (lambda: engine.run("true", fleet.hosts, sudo_password="pw"), fleetsh.ConfigError, "sudo_password"),
        (lambda: engine.run("true", fleet.hosts, sudo=5), TypeError, "sudo"),
        (lambda: engine.run("true", fleet.hosts, stream="yes"), TypeError, "stream"),
        (lambda: engine.run("true", fleet.hosts, colour=True), TypeError, "colour"),
        (lambda: engine.copy_to(fleet.hosts, "/nonexistent/file", "/tmp/x"), fleetsh.ConfigError, "local"),
        (lambda: engine.copy_from(fleet.hosts, [], "/tmp/x"), fleetsh.ConfigError, "remote"),
        (lambda: engine.connect(fleet.hosts).run("true", hosts=["nosuchhost"]), fleetsh.HostSpecError, "hosts"),
        (lambda: engine.run("true", 5), TypeError, "hosts"),
        (lambda: Fleet(0), fleetsh.ConfigError, "count"),
        (lambda: Fleet(2, faults="explode=5"), fleetsh.ConfigError, "faults"),
    ]
    for call, error, argument in cases:
        with pytest.raises(error) as e:
            call()
        assert argument in str(e.value), (argument, e.value)
        if error is not TypeError:
            assert isinstance(e.value, fleetsh.InputError)
            assert e.value.argument == argument
    assert issubclass(fleetsh.HostSpecError, fleetsh.InputError)
    assert issubclass(fleetsh.KnownHostsError, fleetsh.EngineError)
    assert issubclass(fleetsh.EngineError, fleetsh.Error)


def test_the_gil_is_released_while_a_run_goes_on():
    with Fleet(3000) as fleet:
        engine = engine_for(fleet)
        count = 0
        stop = threading.Event()

        def counter():
            nonlocal count
            while not stop.is_set():
                count += 1

        thread = threading.Thread(target=counter)
        thread.start()
        try:
            before = count
            time.sleep(0.3)
            alone_per_second = (count - before) / 0.3
            before, start = count, time.monotonic()
            run = engine.run("echo hello", fleet.hosts)
            seen = sum(1 for r in run if r.ok)
            report = run.join()
            during, seconds = count - before, time.monotonic() - start
        finally:
            stop.set()
            thread.join()
    assert seen == 3000 and report.all_ok
    # Holding the GIL while waiting would stop the counter for the whole run; the shard and
    # server threads share the cores with it, so it runs slower than alone, not stopped.
    assert during > 0.1 * alone_per_second * seconds, (during, alone_per_second, seconds)
    assert during > 100_000


def test_error_kinds_are_the_engines_stable_names():
    assert [k.value for k in ErrorKind][:4] == ["resolve", "connect", "connect_timeout", "handshake"]
    assert ErrorKind("cancelled") is ErrorKind.CANCELLED and ErrorKind.CANCELLED == "cancelled"
    stub = (pathlib.Path(fleetsh.__file__).parent / "_native.pyi").read_text()
    in_stub = re.findall(r'^    ([A-Z_]+) = "([a-z_]+)"$', stub, re.M)
    assert in_stub == [(k.name, k.value) for k in ErrorKind]


def test_every_public_name_has_a_docstring_and_a_stub(fleet, engine):
    stub = (pathlib.Path(fleetsh.__file__).parent / "_native.pyi").read_text()
    assert (pathlib.Path(fleetsh.__file__).parent / "py.typed").exists()
    classes = [getattr(fleetsh, n) for n in fleetsh.__all__ if n != "__version__"] + [Fleet]
    for cls in classes:
        assert cls.__doc__, cls
        if not isinstance(cls, type):  # a function
            assert f"def {cls.__name__}(" in stub, cls
            continue
        assert f"class {cls.__name__}(" in stub or f"class {cls.__name__}:" in stub, cls
        for name, member in vars(cls).items():
            if name.startswith("_") or isinstance(member, ErrorKind):
                continue
            if member is None:  # Error.argument: an attribute each exception sets
                assert f"    {name}: " in stub, f"{cls.__name__}.{name}"
                continue
            assert member.__doc__, f"{cls.__name__}.{name}"
            assert f"def {name}(" in stub, f"{cls.__name__}.{name}"
    assert fleetsh.sim.__doc__ and fleetsh.__doc__


def test_reprs_say_what_they_show(fleet, engine):
    report = engine.run("echo hello", fleet.hosts[:2]).join()
    assert repr(report.results[0]) == f"<HostResult root@{fleet.hosts[0]} exit_code=0 stdout=b'hello\\n'>".replace(
        "root@", f"{report.results[0].user}@"
    )
    assert repr(report).startswith("<Report 2 hosts: 2 ok, 0 not ok, wall ")
    assert repr(fleet) == f"<fleetsh.sim.Fleet {len(fleet)} hosts from {fleet.hosts[0]} running>"
    assert "fanout=1000" in repr(engine)
    assert repr(engine.run("true", fleet.hosts[:1])).startswith("<fleetsh.Run 1 hosts, ")


@pytest.mark.parametrize("code,line", guide_examples())
def test_the_guides_examples_run(code, line):
    # Padded so that a failure's traceback names the guide's own line.
    exec(compile("\n" * line + code, str(GUIDE), "exec"), {"__name__": "guide"})
