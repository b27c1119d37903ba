"""fleetsh.compat.pssh, parallel-ssh 2.x's API on fleetsh's engine: every call against
simulated fleets (healthy and faulty hosts), and parallel-ssh's own documentation examples
against a simulated fleet and a real OpenSSH sshd (tests/sshd.py)."""

import gc
import os
import socket
import stat
import time

import gevent
import pytest

import fleetsh
from fleetsh.compat.pssh import _core
from fleetsh.compat.pssh import exceptions as pssh_exceptions
from fleetsh.compat.pssh.clients import ParallelSSHClient, SSHClient
from fleetsh.compat.pssh.config import HostConfig
from fleetsh.compat.pssh.exceptions import (
    AuthenticationError,
    ConnectionTimeout,
    HostArgumentError,
    HostConfigError,
    HostKeyError,
    InvalidAPIUseError,
    PKeyFileError,
    ProxyError,
    SCPError,
    SessionError,
    SFTPError,
    SFTPIOError,
    SSHError,
    Timeout,
    UnknownHostError,
)
from fleetsh.compat.pssh.output import HostOutput
from fleetsh.sim import Fleet

SIM_PASSWORD = "sim-password"

SUDO_PASSWORD = "my_password"
"""The simulated hosts' sudo password: the one parallel-ssh's sudo example writes."""

FAULTS = {"refuse": 12.5, "auth-fail": 12.5, "hostkey-mismatch": 12.5, "silent": 12.5,
          "drop": 12.5, "hang": 12.5}
"""One host of each of these faults in an eight-host fleet (seed 0), and two healthy ones."""


def addrs(fleet):
    """The fleet's host addresses, without the port (parallel-ssh takes the port apart)."""
    return [h.rsplit(":", 1)[0] for h in fleet.hosts]


def client_for(fleet, hosts=None, **settings):
    """A ParallelSSHClient that reaches `fleet`: its key and known_hosts, no ssh-agent."""
    kwargs = dict(port=fleet.port, pkey=str(fleet.key), known_hosts=fleet.known_hosts,
                  allow_agent=False)
    kwargs.update(settings)
    return ParallelSSHClient(addrs(fleet) if hosts is None else hosts, **kwargs)


def host_root(fleet, index):
    """The directory a simulated host serves over SFTP (its `/` and login directory), made
    if the host has had no SFTP session yet."""
    root = fleet.host_root(index)
    root.mkdir(parents=True, exist_ok=True)
    return root


def wait_until(predicate, timeout=5.0):
    """Polls `predicate` until it holds or `timeout` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture(scope="module")
def sim():
    """Four healthy simulated hosts that also take a password and have a sudo password,
    shared by the module."""
    with Fleet(4, password=SIM_PASSWORD, sudo_password=SUDO_PASSWORD) as f:
        yield f


@pytest.fixture(scope="module")
def faulty():
    """Eight simulated hosts: one of each fault of FAULTS, two healthy."""
    with Fleet(8, faults=FAULTS) as f:
        yield f


def index_of(fleet, fault):
    """The index of the host with `fault` (None: a healthy one)."""
    for i in range(len(fleet)):
        if fleet.fault_of(i) == fault:
            return i
    raise AssertionError(f"no host with fault {fault}")


@pytest.fixture
def client(sim):
    c = client_for(sim)
    yield c
    c.close()


@pytest.fixture(scope="module")
def closed_port():
    """A loopback port nothing listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# The module's names.


def test_exceptions_have_parallel_ssh_names():
    names = ["NoIPv6AddressFoundError", "UnknownHostError", "UnknownHostException",
             "ConnectionError", "ConnectionErrorException", "AuthenticationError",
             "AuthenticationException", "SSHError", "SSHException", "HostArgumentError",
             "HostArgumentException", "SessionError", "SFTPError", "SFTPIOError", "ProxyError",
             "Timeout", "SCPError", "PKeyFileError", "ShellError", "HostConfigError",
             "InvalidAPIUseError"]
    for name in names:
        assert isinstance(getattr(pssh_exceptions, name), type), name
    assert pssh_exceptions.ConnectionError is ConnectionError
    assert pssh_exceptions.UnknownHostException is UnknownHostError
    assert pssh_exceptions.AuthenticationException is AuthenticationError
    assert pssh_exceptions.SSHException is SSHError
    assert issubclass(HostKeyError, SSHError)
    assert issubclass(SFTPIOError, SFTPError)
    assert issubclass(ConnectionTimeout, ConnectionError)
    assert issubclass(ConnectionTimeout, Timeout)


def test_import_paths_of_parallel_ssh_users():
    from fleetsh.compat.pssh.clients.native import ParallelSSHClient as native_parallel
    from fleetsh.compat.pssh.clients.native.parallel import ParallelSSHClient as module_parallel
    from fleetsh.compat.pssh.clients.native.single import SSHClient as module_single
    from fleetsh.compat.pssh.clients.ssh import ParallelSSHClient as ssh_parallel
    from fleetsh.compat.pssh.constants import DEFAULT_RETRIES, RETRY_DELAY
    from fleetsh.compat.pssh.output import BufferData, HostOutputBuffers
    from fleetsh.compat.pssh.utils import enable_debug_logger, enable_host_logger, enable_logger

    assert native_parallel is module_parallel is ssh_parallel is ParallelSSHClient
    assert module_single is SSHClient
    assert (DEFAULT_RETRIES, RETRY_DELAY) == (3, 5)
    assert callable(enable_host_logger) and callable(enable_logger)
    assert callable(enable_debug_logger)
    assert BufferData and HostOutputBuffers


# run_command and its output.


def test_run_command_lines_exit_codes_and_hosts(sim, client):
    output = client.run_command("echo hello; echo oops >&2; seq 2; exit 3")
    assert [o.host for o in output] == addrs(sim)
    for o in output:
        assert isinstance(o, HostOutput)
        assert list(o.stdout) == ["hello", "1", "2"]
        assert list(o.stderr) == ["oops"]
        assert o.exit_code == 3
        assert o.exception is None
        assert o.alias is None
        assert isinstance(o.client, SSHClient) and o.client.host == o.host
        assert o.fully_qualified_command == b"echo hello; echo oops >&2; seq 2; exit 3"
        assert o.result.exit_code == 3
    assert "exit_code=3" in repr(output[0])


def test_connections_stay_open_between_commands(sim, client):
    before = [sim.connections_accepted(i) for i in range(len(sim))]
    for n in range(3):
        output = client.run_command(f"echo {n}")
        client.join(output)
        assert [list(o.stdout) for o in output] == [[str(n)]] * len(sim)
    after = [sim.connections_accepted(i) for i in range(len(sim))]
    assert [a - b for a, b in zip(after, before)] == [1] * len(sim)


def test_stdout_yields_lines_as_they_arrive(client):
    output = client.run_command("echo first; sleep 1.5; echo second")
    started = time.monotonic()
    lines = output[0].stdout
    assert next(lines) == "first"
    assert time.monotonic() - started < 1.2
    assert output[0].exit_code is None
    assert list(lines) == ["second"]
    assert output[0].exit_code == 0
    # Another host's lines were kept while host 0's were read.
    assert list(output[1].stdout) == ["first", "second"]


def test_long_lines_and_lines_without_newline(client):
    output = client.run_command("head -c 70000 /dev/zero; echo; echo -n last")
    client.join(output)
    assert list(output[0].stdout) == ["\0" * 70000, "last"]


def test_stdout_is_read_once_each_access_giving_what_is_left(client):
    output = client.run_command("seq 3")
    client.join(output)
    lines = output[0].stdout
    assert next(lines) == "1"
    assert list(output[0].stdout) == ["2", "3"]
    assert list(output[0].stdout) == []


def test_read_timeout_raises_timeout_and_rest_stays_readable(client):
    output = client.run_command("echo first; sleep 1; echo second", read_timeout=0.3)
    started = time.monotonic()
    seen = []
    with pytest.raises(Timeout):
        for line in output[0].stdout:
            seen.append(line)
    assert seen == ["first"]
    assert 0.25 < time.monotonic() - started < 1.0
    client.join(output)
    assert list(output[0].stdout) == ["second"]


def test_timeout_is_the_former_name_of_read_timeout(client):
    output = client.run_command("sleep 2", timeout=0.3)
    assert output[0].read_timeout == 0.3
    with pytest.raises(Timeout):
        list(output[0].stdout)


def test_join_timeout_reports_finished_and_unfinished_output(client):
    output = client.run_command("sleep 1.5; echo done")
    started = time.monotonic()
    with pytest.raises(Timeout) as caught:
        client.join(output, timeout=0.3)
    assert time.monotonic() - started < 1.0
    finished, unfinished = caught.value.args[2], caught.value.args[3]
    assert finished == [] and unfinished == output
    assert not client.finished(output)
    client.join(output)  # the commands kept running
    assert client.finished(output)
    assert [list(o.stdout) for o in output] == [["done"]] * len(output)


def test_join_consume_output_logs_lines_to_host_logger(client, caplog):
    output = client.run_command("echo logged; echo err >&2")
    with caplog.at_level("INFO", logger="pssh.host_logger"):
        client.join(output, consume_output=True)
    assert list(output[0].stdout) == []
    messages = [r.getMessage() for r in caplog.records if r.name == "pssh.host_logger"]
    assert f"[{output[0].host}]\tlogged" in messages
    assert f"[{output[0].host}]\t[err]\terr" in messages


def test_join_without_output_joins_the_last_and_get_last_output(sim, client):
    fresh = client_for(sim)
    assert fresh.get_last_output() is None
    assert fresh.join() is None
    assert fresh.finished()
    fresh.close()
    output = client.run_command("echo last")
    assert client.get_last_output() is output
    client.join()
    assert client.finished()
    assert [list(o.stdout) for o in client.get_last_output()] == [["last"]] * len(output)


def test_finished_without_waiting(client):
    output = client.run_command("sleep 0.5")
    assert client.finished(output) is False
    client.join(output)
    assert client.finished(output) is True
    with pytest.raises(ValueError):
        client.join("not a list")


def test_use_pty_merges_stderr_into_stdout(client):
    output = client.run_command("echo 'asdf' >&2", use_pty=True)
    client.join(output)
    assert list(output[0].stdout) == ["asdf"]
    assert list(output[0].stderr) == []


def test_shell_wraps_the_command(client):
    output = client.run_command("echo $0 'quoted words'", shell="sh -c")
    client.join(output)
    assert output[0].fully_qualified_command == b"sh -c 'echo $0 '\"'\"'quoted words'\"'\"''"
    assert output[0].exit_code == 0
    assert list(output[0].stdout)[0].endswith("quoted words")


def test_encoding_decodes_output_and_refuses_commands_it_cannot_send(client):
    output = client.run_command("echo plain", encoding="latin-1")
    client.join(output)
    assert list(output[0].stdout) == ["plain"]
    output = client.run_command("echo caf\u00e9")
    output[0].encoding = "latin-1"
    assert list(output[0].stdout) == ["caf\u00c3\u00a9"]
    with pytest.raises(InvalidAPIUseError, match="encoding"):
        client.run_command(b"echo \xbc".decode("latin-1"), encoding="latin-1")


def test_stdin_and_env_and_command_timeout(client):
    output = client.run_command("cat", stdin=b"one\ntwo\n")
    client.join(output)
    assert list(output[0].stdout) == ["one", "two"]
    output = client.run_command("echo start; sleep 5", command_timeout=0.5)
    client.join(output, timeout=3)
    assert isinstance(output[0].exception, Timeout)
    assert output[0].exit_code is None
    assert list(output[0].stdout) == ["start"]
    output = client.run_command("echo $FLEETSH_X", env={"FLEETSH_X": "set"})
    client.join(output)
    assert list(output[0].stdout) == ["set"]


def test_stdin_write_needs_a_command_waiting_for_it(client):
    output = client.run_command("echo x")
    with pytest.raises(InvalidAPIUseError, match="stdin"):
        output[0].stdin.write("data\n")
    client.join(output)


def test_return_list_false_is_refused(client):
    with pytest.raises(ValueError, match="return_list"):
        client.run_command("echo", return_list=False)
    assert client.run_command("echo", return_list=True)


# host_args.


def test_host_args_tuples_single_values_and_dicts(sim, client):
    n = len(sim)
    output = client.run_command("echo %s %s", host_args=[(i, i * 2) for i in range(n)])
    client.join(output)
    assert [list(o.stdout) for o in output] == [[f"{i} {i * 2}"] for i in range(n)]
    output = client.run_command("echo %s", host_args=tuple(f"h{i}" for i in range(n)))
    client.join(output)
    assert [list(o.stdout) for o in output] == [[f"h{i}"] for i in range(n)]
    output = client.run_command("%(cmd)s", host_args=[{"cmd": f"echo c-{i}"} for i in range(n)])
    client.join(output)
    assert [list(o.stdout) for o in output] == [[f"c-{i}"] for i in range(n)]
    # Extra items are ignored, as in parallel-ssh.
    output = client.run_command("echo %s", host_args=list(range(n + 2)))
    client.join(output)
    assert [list(o.stdout) for o in output] == [[str(i)] for i in range(n)]


def test_host_args_mismatch_and_format_errors(sim, client):
    before = [sim.commands_run(i) for i in range(len(sim))]
    with pytest.raises(HostArgumentError, match="host_args has 2 items for 4 hosts"):
        client.run_command("echo %s", host_args=("a", "b"))
    with pytest.raises(KeyError):
        client.run_command("echo %(missing)s", host_args=[{"x": 1}] * len(sim))
    with pytest.raises(TypeError):
        client.run_command("echo %s %s", host_args=[("only-one",)] * len(sim))
    assert [sim.commands_run(i) for i in range(len(sim))] == before


# sudo.


def test_sudo_runs_through_sudo_and_waits_for_its_password(sim):
    client = client_for(sim)
    before = [sim.commands_run(i) for i in range(len(sim))]
    output = client.run_command("whoami", sudo=True)
    assert output[0].fully_qualified_command == b"sudo -S -p '' -- sh -c whoami"
    time.sleep(0.3)
    # Showing the output (a debug print before answering sudo) does not start it either.
    assert "exit_code=None" in repr(output[0]) and str(output)
    # No password given: the command waits for the one written to its input.
    assert [sim.commands_run(i) for i in range(len(sim))] == before
    for host_out in output:
        host_out.stdin.write("my_password\n")
        host_out.stdin.flush()
    assert wait_until(lambda: all(sim.commands_run(i) > before[i] for i in range(len(sim))))
    client.join(output)
    for o in output:
        assert list(o.stdout) == ["root"] and o.exit_code == 0
    # The rest of what is written after the password is the command's input.
    output = client.run_command("whoami; cat", user="deploy")
    for i, host_out in enumerate(output):
        host_out.stdin.write(f"{SUDO_PASSWORD}\ninput {i}\n")
        host_out.stdin.flush()
    client.join(output)
    assert [list(o.stdout) for o in output] == [["deploy", f"input {i}"] for i in range(len(sim))]
    # A wrong password: sudo says so.
    output = client.run_command("whoami", sudo=True)
    for host_out in output:
        host_out.stdin.write("wrong\n")
        host_out.stdin.flush()
    client.join(output)
    assert "Sorry, try again." in list(output[0].stderr)
    assert output[0].exit_code == 1
    client.close()


def test_sudo_with_password_or_user_starts_at_once(sim, client):
    before = [sim.commands_run(i) for i in range(len(sim))]
    output = client.run_command("whoami", user="deploy", sudo_password=SUDO_PASSWORD)
    assert output[0].fully_qualified_command == b"sudo -S -p '' -u deploy -- sh -c whoami"
    assert wait_until(lambda: all(sim.commands_run(i) > before[i] for i in range(len(sim))))
    client.join(output)
    assert [list(o.stdout) for o in output] == [["deploy"]] * len(sim)


def test_sudo_without_password_starts_when_output_is_read(sim, client, monkeypatch):
    output = client.run_command("whoami", sudo=True)
    client.join(output, timeout=5)
    # No password at all: the simulated sudo asks for one.
    assert [o.exit_code for o in output] == [1] * len(sim)
    monkeypatch.setenv("FLEETSH_SUDO_PASSWORD", SUDO_PASSWORD)
    output = client.run_command("whoami", sudo=True)
    assert [list(o.stdout) for o in output] == [["root"]] * len(sim)


# Connection failures and exceptions.


def test_stop_on_errors_raises_the_first_failure_after_starting_the_others(faulty):
    client = client_for(faulty, timeout=1, num_retries=1)
    healthy = index_of(faulty, None)
    before = faulty.commands_run(healthy)
    with pytest.raises(AuthenticationError) as caught:
        client.run_command("echo hi")
    assert caught.value.host == addrs(faulty)[index_of(faulty, "auth-fail")]
    assert caught.value.error_kind == fleetsh.ErrorKind.AUTH
    output = client.get_last_output()
    assert list(output[healthy].stdout) == ["hi"]
    assert faulty.commands_run(healthy) == before + 1
    client.close()


def test_stop_on_errors_false_keeps_each_failure_in_its_output(faulty, closed_port):
    hosts = addrs(faulty) + ["nonexistent.invalid"]
    client = client_for(faulty, hosts=hosts, timeout=0.5, num_retries=1)
    output = client.run_command("echo hi; sleep 0.3; echo bye", stop_on_errors=False)
    expected = {
        "auth-fail": AuthenticationError,
        "hostkey-mismatch": HostKeyError,
        "silent": ConnectionTimeout,
        "refuse": SessionError,
    }
    for fault, cls in expected.items():
        o = output[index_of(faulty, fault)]
        assert type(o.exception) is cls, fault
        assert o.stdout is None and o.stderr is None and o.exit_code is None
        assert o.client is None
    assert isinstance(output[-1].exception, UnknownHostError)
    healthy = index_of(faulty, None)
    assert list(output[healthy].stdout) == ["hi", "bye"]
    assert output[healthy].exit_code == 0 and output[healthy].exception is None
    dropped = output[index_of(faulty, "drop")]
    assert list(dropped.stdout) == ["hi"]
    assert isinstance(dropped.exception, ConnectionError)
    assert dropped.exception.error_kind == fleetsh.ErrorKind.DISCONNECTED
    hung = output[index_of(faulty, "hang")]
    assert hung.exception is None and hung.exit_code is None
    with pytest.raises(Timeout):
        client.join(output, timeout=1)
    client.close()


def test_connection_refused_is_connection_error(sim, closed_port):
    client = client_for(sim, hosts=addrs(sim)[:1], port=closed_port, num_retries=1)
    with pytest.raises(ConnectionError) as caught:
        client.run_command("echo")
    assert caught.value.error_kind == fleetsh.ErrorKind.CONNECT
    client.close()


def test_connect_timeout_is_both_connection_error_and_timeout(faulty):
    silent = addrs(faulty)[index_of(faulty, "silent")]
    client = client_for(faulty, hosts=[silent], timeout=0.3, num_retries=1)
    started = time.monotonic()
    with pytest.raises(Timeout) as caught:
        client.run_command("echo")
    assert isinstance(caught.value, ConnectionError)
    assert caught.value.error_kind == fleetsh.ErrorKind.CONNECT_TIMEOUT
    assert time.monotonic() - started < 3
    client.close()


def test_num_retries_is_connection_attempts_in_all(sim, closed_port):
    client = client_for(sim, hosts=addrs(sim)[:1], port=closed_port, num_retries=3,
                        retry_delay=0.01)
    with pytest.raises(ConnectionError) as caught:
        client.run_command("echo")
    assert caught.value.result.attempts == 3
    client.close()


def test_host_key_check_strict_accept_new_and_off(sim, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    strict = client_for(sim, known_hosts=empty)
    with pytest.raises(HostKeyError):
        strict.run_command("echo")
    strict.close()
    off = client_for(sim, known_hosts=empty, host_key_check="off")
    output = off.run_command("echo checked-off")
    off.join(output)
    assert [list(o.stdout) for o in output] == [["checked-off"]] * len(sim)
    off.close()
    learning = client_for(sim, known_hosts=empty, host_key_check="accept-new")
    learning.join(learning.run_command("echo"))
    learning.close()
    assert len(empty.read_text().splitlines()) == len(sim)
    with pytest.raises(fleetsh.ConfigError, match="host_key_check"):
        client_for(sim, host_key_check="sometimes")


def test_command_failures_after_start_reach_exception(client):
    output = client.run_command("echo before; kill -9 $$")
    client.join(output)
    assert list(output[0].stdout) == ["before"]
    assert output[0].exit_code is None and output[0].exit_signal == "KILL"


# Constructor arguments.


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(hosts="web1"), TypeError, "not a string"),
    (dict(hosts=["ok", 3]), TypeError, "hosts"),
    (dict(pool_size=0), ValueError, "pool_size"),
    (dict(num_retries="3"), TypeError, "num_retries"),
    (dict(port=0), ValueError, "port"),
    (dict(port=70000), ValueError, "port"),
    (dict(timeout=0), ValueError, "timeout"),
    (dict(retry_delay=-1), ValueError, "retry_delay"),
    (dict(user=5), TypeError, "user"),
    (dict(ipv6_only=True), InvalidAPIUseError, "ipv6_only"),
    (dict(gssapi_auth=True), InvalidAPIUseError, "gssapi"),
    (dict(keyboard_interactive=True), InvalidAPIUseError, "keyboard_interactive"),
    (dict(password="a", proxy_host="p", proxy_password="b"), InvalidAPIUseError,
     "proxy_password"),
    (dict(pkey="/nonexistent/key"), PKeyFileError, "pkey"),
    (dict(pkey=12), TypeError, "pkey"),
    (dict(host_config={"a": 1}), HostConfigError, "List"),
    (dict(host_config=[HostConfig()]), ValueError, "Host config entries"),
    (dict(host_config=[HostConfig(ipv6_only=True)] * 4), InvalidAPIUseError, "ipv6_only"),
])
def test_bad_constructor_arguments_name_the_argument(sim, kwargs, error, match):
    hosts = kwargs.pop("hosts", addrs(sim))
    with pytest.raises(error, match=match):
        client_for(sim, hosts=hosts, **kwargs)


def test_host_config_checks_types_as_parallel_ssh():
    with pytest.raises(ValueError, match="port"):
        HostConfig(port="22")
    with pytest.raises(ValueError, match="private_key"):
        HostConfig(private_key=1)
    with pytest.raises(InvalidAPIUseError):
        HostConfig(keyboard_interactive=True)
    assert "user='u'" in repr(HostConfig(user="u", password="secret"))
    assert "secret" not in repr(HostConfig(user="u", password="secret"))


def test_unsupported_calls_say_so(client):
    with pytest.raises(NotImplementedError, match="open_shell"):
        client.open_shell()
    with pytest.raises(NotImplementedError):
        client.run_shell_commands([], "echo")
    with pytest.raises(NotImplementedError):
        client.join_shells([])


def test_host_config_users_passwords_keys_and_aliases(sim):
    hosts = addrs(sim)
    configs = [
        HostConfig(user="alice", alias="first", private_key=str(sim.key)),
        HostConfig(user="bob", port=sim.port, private_key=sim.key.read_bytes()),
        HostConfig(password=SIM_PASSWORD, identity_auth=False),
        HostConfig(password="wrong", identity_auth=False, num_retries=1),
    ]
    client = ParallelSSHClient(hosts, user="carol", port=sim.port,
                               known_hosts=sim.known_hosts, allow_agent=False,
                               host_config=configs)
    output = client.run_command("whoami", stop_on_errors=False)
    client.join(output)
    assert list(output[0].stdout) == ["alice"] and output[0].alias == "first"
    assert list(output[1].stdout) == ["bob"]
    assert list(output[2].stdout) == ["carol"]
    assert isinstance(output[3].exception, AuthenticationError)
    client.close()


def test_duplicate_hosts_each_run_the_command(sim):
    host = addrs(sim)[1]
    client = client_for(sim, hosts=[host] * 3)
    before = sim.commands_run(1)
    output = client.run_command("hostname")
    client.join(output)
    assert [list(o.stdout) for o in output] == [["sim00002"]] * 3
    assert sim.commands_run(1) - before == 3
    client.close()


def test_hosts_can_be_reassigned(sim):
    client = client_for(sim)
    client.join(client.run_command("echo"))
    accepted = [sim.connections_accepted(i) for i in range(len(sim))]
    client.hosts = list(addrs(sim))
    output = client.run_command("hostname")
    client.join(output)
    assert [sim.connections_accepted(i) for i in range(len(sim))] == accepted
    client.hosts = iter(addrs(sim)[2:])
    output = client.run_command("hostname")
    client.join(output)
    assert [list(o.stdout) for o in output] == [["sim00003"], ["sim00004"]]
    client.close()


def test_pkey_as_bytes_uses_a_private_file_removed_on_close(sim):
    client = client_for(sim, pkey=sim.key.read_bytes())
    path = client.pkey
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    output = client.run_command("echo key-bytes")
    client.join(output)
    assert list(output[0].stdout) == ["key-bytes"]
    client.close()
    assert not os.path.exists(path)
    with pytest.raises(InvalidAPIUseError, match="closed"):
        client.run_command("echo")


def test_output_outlives_its_client(sim):
    client = client_for(sim, pkey=sim.key.read_bytes())
    key_file = client.pkey
    output = client.run_command("echo kept; sleep 0.3")
    del client
    gc.collect()  # the client is gone: its connections close, its commands finish
    assert not os.path.exists(key_file)
    assert [list(o.stdout) for o in output] == [["kept"]] * len(sim)
    assert [o.exit_code for o in output] == [0] * len(sim)
    with pytest.raises(InvalidAPIUseError, match="garbage collected"):
        output[0].client.run_command("echo")


def test_proxy_host_is_a_jump_host(sim, closed_port):
    hosts = addrs(sim)
    client = client_for(sim, hosts=hosts[1:], proxy_host=hosts[0], proxy_user="jumper")
    output = client.run_command("hostname")
    client.join(output)
    assert [list(o.stdout) for o in output] == [["sim00002"], ["sim00003"], ["sim00004"]]
    client.close()
    bad = client_for(sim, hosts=hosts[1:2], proxy_host="127.0.0.1", proxy_port=closed_port,
                     num_retries=1)
    with pytest.raises(ProxyError):
        bad.run_command("hostname")
    bad.close()


def test_connect_auth_returns_greenlets_raising_each_failure(sim, faulty):
    client = client_for(sim)
    greenlets = client.connect_auth()
    gevent.joinall(greenlets, raise_error=True)
    assert all(g.successful() for g in greenlets)
    client.close()
    bad = client_for(faulty, hosts=[addrs(faulty)[index_of(faulty, "auth-fail")]],
                     num_retries=1)
    with pytest.raises(AuthenticationError):
        gevent.joinall(bad.connect_auth(), raise_error=True)
    bad.close()


def test_close_channel_ends_commands_that_do_not_end(client):
    output = client.run_command("echo a line; sleep 100", use_pty=True, read_timeout=0.3)
    stdout = []
    for host_out in output:
        try:
            for line in host_out.stdout:
                stdout.append(line)
        except Timeout:
            pass
    assert stdout == ["a line"] * len(output)
    for host_out in output:
        host_out.client.close_channel(host_out.channel)
    client.join(output, timeout=5)
    assert list(output[0].stdout) == []
    assert all(o.exception is None for o in output)


# Copies.


@pytest.fixture
def files(tmp_path):
    """A local file and a local directory tree to copy."""
    (tmp_path / "file.txt").write_text("file data\n")
    tree = tmp_path / "tree"
    (tree / "sub" / "deeper").mkdir(parents=True)
    (tree / "top.txt").write_text("top\n")
    (tree / "sub" / "inner.txt").write_text("inner\n")
    return tmp_path


def test_copy_file_creates_remote_parents(sim, client, files):
    greenlets = client.copy_file(str(files / "file.txt"), "cf/parents/file.txt")
    assert all(isinstance(g, gevent.Greenlet) for g in greenlets)
    gevent.joinall(greenlets, raise_error=True)
    for i in range(len(sim)):
        assert (host_root(sim, i) / "cf/parents/file.txt").read_text() == "file data\n"
    gevent.joinall(client.copy_file(str(files / "file.txt"), "/cf-abs/file.txt"),
                   raise_error=True)
    assert (host_root(sim, 0) / "cf-abs/file.txt").read_text() == "file data\n"


def test_copy_file_recurse_merges_into_the_remote_directory(sim, client, files):
    tree = str(files / "tree")
    gevent.joinall(client.copy_file(tree, "cr/tree", recurse=True), raise_error=True)
    gevent.joinall(client.copy_file(tree, "cr/tree", recurse=True), raise_error=True)
    root = host_root(sim, 2) / "cr/tree"
    assert (root / "top.txt").read_text() == "top\n"
    assert (root / "sub/inner.txt").read_text() == "inner\n"
    assert (root / "sub/deeper").is_dir()
    assert not (root / "tree").exists()
    with pytest.raises(ValueError, match="Recurse"):
        gevent.joinall(client.copy_file(tree, "cr/other"), raise_error=True)


def test_copy_file_failures_and_copy_args(sim, client, files):
    with pytest.raises(FileNotFoundError):
        gevent.joinall(client.copy_file(str(files / "missing"), "x"), raise_error=True)
    (files / "file.txt").write_text("x")
    host_root(sim, 0).mkdir(parents=True, exist_ok=True)
    (host_root(sim, 0) / "cf-blocker").write_text("a file where a directory should be")
    with pytest.raises(SFTPIOError) as caught:
        gevent.joinall(client.copy_file(str(files / "file.txt"), "cf-blocker/f"),
                       raise_error=True)
    assert caught.value.error_kind == fleetsh.ErrorKind.TRANSFER
    for i in range(len(sim)):
        (files / f"per-{i}.txt").write_text(f"host {i}\n")
    copy_args = [{"i": i} for i in range(len(sim))]
    gevent.joinall(client.copy_file(str(files / "per-%(i)s.txt"), "ca/%(i)s.txt",
                                    copy_args=copy_args), raise_error=True)
    for i in range(len(sim)):
        assert (host_root(sim, i) / f"ca/{i}.txt").read_text() == f"host {i}\n"
    with pytest.raises(HostArgumentError, match="copy_args has 1 items"):
        client.copy_file("%(i)s", "%(i)s", copy_args=copy_args[:1])


def test_copy_remote_file_suffixes_each_file_with_its_host(sim, client, tmp_path):
    for i in range(len(sim)):
        root = host_root(sim, i)
        (root / "crf/dir/sub").mkdir(parents=True, exist_ok=True)
        (root / "crf/remote.txt").write_text(f"from {i}\n")
        (root / "crf/dir/sub/f.txt").write_text(f"deep {i}\n")
    local = tmp_path / "down" / "local.txt"
    gevent.joinall(client.copy_remote_file("crf/remote.txt", str(local)), raise_error=True)
    for i, host in enumerate(addrs(sim)):
        assert (tmp_path / "down" / f"local.txt_{host}").read_text() == f"from {i}\n"
    gevent.joinall(client.copy_remote_file("crf/dir", str(tmp_path / "d"), recurse=True,
                                           suffix_separator="@"), raise_error=True)
    for i, host in enumerate(addrs(sim)):
        assert (tmp_path / f"d@{host}" / "sub/f.txt").read_text() == f"deep {i}\n"
    # A directory already there is merged into.
    gevent.joinall(client.copy_remote_file("crf/dir", str(tmp_path / "d"), recurse=True,
                                           suffix_separator="@"), raise_error=True)
    copy_args = [{"n": i} for i in range(len(sim))]
    gevent.joinall(client.copy_remote_file("crf/remote.txt", str(tmp_path / "args-%(n)s"),
                                           copy_args=copy_args), raise_error=True)
    assert (tmp_path / "args-3").read_text() == "from 3\n"
    with pytest.raises(SFTPIOError):
        gevent.joinall(client.copy_remote_file("crf/missing", str(tmp_path / "m")),
                       raise_error=True)
    with pytest.raises(SFTPIOError, match="directory"):
        gevent.joinall(client.copy_remote_file("crf/dir", str(tmp_path / "nd")),
                       raise_error=True)
    leftovers = [p.name for p in tmp_path.rglob(".fleetsh-pssh-*")]
    assert leftovers == []


def test_scp_send_and_scp_recv(sim, client, files, tmp_path):
    local = str(files / "file.txt")
    gevent.joinall(client.scp_send(local, "scp-sent.txt"), raise_error=True)
    assert (host_root(sim, 1) / "scp-sent.txt").read_text() == "file data\n"
    for i in range(len(sim)):
        (host_root(sim, i) / "scp-dir").mkdir(parents=True, exist_ok=True)
    gevent.joinall(client.scp_send(local, "scp-dir/"), raise_error=True)
    assert (host_root(sim, 1) / "scp-dir/file.txt").exists()
    with pytest.raises(SCPError):  # without recurse, parents are not made
        gevent.joinall(client.scp_send(local, "scp-missing/f.txt"), raise_error=True)
    gevent.joinall(client.scp_send(local, "scp-made/f.txt", recurse=True), raise_error=True)
    assert (host_root(sim, 1) / "scp-made/f.txt").exists()
    gevent.joinall(client.scp_recv("scp-sent.txt", str(tmp_path / "got")), raise_error=True)
    assert (tmp_path / f"got_{addrs(sim)[0]}").read_text() == "file data\n"
    with pytest.raises(SCPError):
        gevent.joinall(client.scp_recv("scp-nothing", str(tmp_path / "n")), raise_error=True)
    args = [{"local_file": local, "remote_file": f"scp-args-{i}"} for i in range(len(sim))]
    gevent.joinall(client.scp_send(local, "unused", copy_args=args), raise_error=True)
    assert (host_root(sim, 3) / "scp-args-3").exists()


def test_copies_return_tasks_without_gevent(sim, client, files, monkeypatch):
    monkeypatch.setattr(_core, "_gevent", lambda: None)
    tasks = client.copy_file(str(files / "file.txt"), "tasks/file.txt")
    assert all(isinstance(t, _core.Task) for t in tasks)
    for t in tasks:
        t.join()
        assert t.successful() and t.ready() and t.exception is None and t.value is None
        assert t.get() is None
    failing = client.copy_remote_file("tasks/missing", str(files / "m"))
    with pytest.raises(SFTPIOError):
        failing[0].get()
    assert not failing[0].successful()
    assert isinstance(failing[0].exception, SFTPIOError)


def test_copy_connection_failures_raise_from_the_greenlet(faulty, files):
    bad = addrs(faulty)[index_of(faulty, "auth-fail")]
    client = client_for(faulty, hosts=[bad], num_retries=1)
    greenlets = client.copy_file(str(files / "file.txt"), "f.txt")
    with pytest.raises(AuthenticationError):
        gevent.joinall(greenlets, raise_error=True)
    client.close()


# SSHClient.


def test_ssh_client_runs_commands_and_copies(sim, files, tmp_path):
    host = addrs(sim)[0]
    client = SSHClient(host, port=sim.port, pkey=str(sim.key), known_hosts=sim.known_hosts,
                       allow_agent=False, alias="one")
    host_out = client.run_command("echo single; exit 4")
    client.wait_finished(host_out)
    assert list(host_out.stdout) == ["single"]
    assert host_out.exit_code == 4 and host_out.alias == "one"
    assert client.get_exit_status(host_out.channel) == 4
    assert client.finished(host_out.channel)
    slow = client.run_command("sleep 1")
    with pytest.raises(Timeout):
        client.wait_finished(slow, timeout=0.2)
    client.copy_file(str(files / "file.txt"), "single/dir/file.txt")
    client.copy_remote_file("single/dir/file.txt", str(tmp_path / "exact.txt"))
    assert (tmp_path / "exact.txt").read_text() == "file data\n"
    client.scp_recv("single/dir/file.txt", str(tmp_path / "into") + "/")
    assert (tmp_path / "into" / "file.txt").exists()
    with pytest.raises(SFTPIOError):
        client.copy_remote_file("single/none", str(tmp_path / "none"))
    with pytest.warns(DeprecationWarning):
        client.disconnect()
    client.close()


def test_ssh_client_raises_connection_failures_when_built(faulty):
    with pytest.raises(AuthenticationError):
        SSHClient(addrs(faulty)[index_of(faulty, "auth-fail")], port=faulty.port,
                  pkey=str(faulty.key), known_hosts=faulty.known_hosts, allow_agent=False,
                  num_retries=1)
    with pytest.raises(HostKeyError):
        SSHClient(addrs(faulty)[index_of(faulty, "hostkey-mismatch")], port=faulty.port,
                  pkey=str(faulty.key), known_hosts=faulty.known_hosts, allow_agent=False,
                  num_retries=1)


# parallel-ssh's documentation examples (doc/quickstart.rst, doc/advanced.rst), each run
# unchanged but for its import lines, against simulated hosts and a real sshd. What the
# documentation assumes of the machine (a key the hosts accept, their port, their host keys
# known) comes from `docs_env`, which sets those as the clients' defaults; the host lists are
# the test's, and so are the remote paths on sshd (absolute, in a temporary directory, rather
# than in the login user's home). The simulated hosts have no `uname`: their examples run
# `hostname`, the closest command they have.


class Backend:
    """Where the documentation examples run: hosts, client defaults, the command standing
    for `uname`, the prefix of remote paths, and how to read a remote file."""

    def __init__(self, name, hosts, defaults, uname, remote_prefix, remote_path, expected):
        self.name = name
        self.hosts = hosts
        self.defaults = defaults
        self.uname = uname
        self.remote_prefix = remote_prefix
        self.remote_path = remote_path
        self.expected = expected


@pytest.fixture(params=["sim", "sshd"])
def docs_env(request, monkeypatch, tmp_path):
    if request.param == "sim":
        fleet = request.getfixturevalue("sim")
        hosts = addrs(fleet)
        backend = Backend(
            "sim", hosts,
            dict(port=fleet.port, pkey=str(fleet.key), known_hosts=fleet.known_hosts,
                 allow_agent=False),
            "hostname", "", lambda i, path: host_root(fleet, i) / path,
            [f"sim{i + 1:05d}" for i in range(len(hosts))])
    else:
        sshd = request.getfixturevalue("sshd")
        remote = tmp_path / "remote"
        remote.mkdir()
        backend = Backend(
            "sshd", list(sshd.addrs),
            dict(port=sshd.port, user=sshd.user, pkey=str(sshd.key),
                 known_hosts=sshd.known_hosts, allow_agent=False),
            "uname", f"{remote}/", lambda i, path: remote / path,
            ["Linux"] * len(sshd.addrs))
    made = []
    for cls in (ParallelSSHClient, SSHClient):
        original = cls.__init__

        def __init__(self, *args, __original=original, **kwargs):
            for key, value in backend.defaults.items():
                kwargs.setdefault(key, value)
            __original(self, *args, **kwargs)
            made.append(self)

        monkeypatch.setattr(cls, "__init__", __init__)
    yield backend
    # The examples leave their clients to the garbage collector; close them now, so that no
    # connection outlives the test.
    for client in made:
        client.close()


def test_docs_quickstart_complete_example(docs_env, capsys):
    hosts = docs_env.hosts
    cmd = docs_env.uname

    # doc/quickstart.rst, "Complete Example" (hosts and cmd above)
    from fleetsh.compat.pssh.clients import ParallelSSHClient

    client = ParallelSSHClient(hosts, timeout=1)

    output = client.run_command(cmd)
    client.join(output)
    for host_out in output:
        for line in host_out.stdout:
            print(line)
    # end of the example

    assert capsys.readouterr().out.splitlines() == docs_env.expected
    for host_out in output:
        assert host_out.exit_code == 0
        print(host_out.exit_code)


def test_docs_quickstart_single_host_client(docs_env, capsys):
    host = docs_env.hosts[0]
    cmd = docs_env.uname

    # doc/quickstart.rst, "Single Host Client"
    from fleetsh.compat.pssh.clients import SSHClient

    client = SSHClient(host)

    host_out = client.run_command(cmd)
    for line in host_out.stdout:
        print(line)
    # end of the example

    assert capsys.readouterr().out.splitlines() == docs_env.expected[:1]


def test_docs_exit_codes_and_errors_examples(docs_env, capsys):
    from fleetsh.compat.pssh.clients import ParallelSSHClient

    client = ParallelSSHClient(docs_env.hosts[:2] + ["nonexistent.invalid"])

    # doc/quickstart.rst, "Errors and Exceptions"
    output = client.run_command('whoami', return_list=True, stop_on_errors=False)
    client.join(output)
    for host_output in output:
        host = host_output.host
        print("Host %s: exit code %s, exception %s" % (
              host, host_output.exit_code, host_output.exception))
    # end of the example

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"Host {docs_env.hosts[0]}: exit code 0, exception None"
    assert lines[2].startswith("Host nonexistent.invalid: exit code None, exception (")
    assert isinstance(output[2].exception, UnknownHostError)


def test_docs_sudo_example(docs_env):
    from fleetsh.compat.pssh.clients import ParallelSSHClient

    client = ParallelSSHClient(docs_env.hosts)

    # doc/advanced.rst, "Run with sudo" (the documentation's <..> is `whoami`)
    output = client.run_command('whoami', sudo=True)
    for host_out in output:
        host_out.stdin.write('my_password\n')
        host_out.stdin.flush()
    client.join(output)
    # end of the example

    # (The simulated hosts' sudo password is my_password; sudo asks root, whom the sshd
    # tests log in as, for none.)
    for host_out in output:
        assert list(host_out.stdout) == ["root"] and host_out.exit_code == 0


def test_docs_per_host_command_substitution_examples(docs_env):
    from fleetsh.compat.pssh.clients import ParallelSSHClient

    client = ParallelSSHClient(docs_env.hosts)

    # doc/advanced.rst, "Per-Host Command substitution"
    host_args = [{'cmd': 'echo command-%s' % (i,)}
                 for i in range(len(client.hosts))]
    output = client.run_command('%(cmd)s', host_args=host_args)
    # end of the example

    client.join(output)
    assert [list(o.stdout) for o in output] == [
        [f"command-{i}"] for i in range(len(docs_env.hosts))]

    client.hosts = docs_env.hosts[:3]  # the documentation's example has three hosts
    # doc/advanced.rst, the same section
    output = client.run_command(
                 '%s %s',
                 host_args=(('host1_cmd1', 'host1_cmd2'),
                            ('host2_cmd1', 'host2_cmd2'),
                            ('host3_cmd1', 'host3_cmd2'),))
    # end of the example

    client.join(output)
    assert [o.exit_code for o in output] == [127] * 3
    assert "host2_cmd1" in list(output[1].stderr)[0]
    with pytest.raises(HostArgumentError):
        client.run_command('%s', host_args=('host1_cmd',))


def test_docs_copy_examples(docs_env, tmp_path, monkeypatch):
    (tmp_path / "test").write_text("test file\n")
    work = tmp_path / "work"
    (work / "my_dir" / "sub").mkdir(parents=True)
    (work / "my_dir" / "sub" / "f").write_text("in my_dir\n")
    monkeypatch.chdir(work)
    for i in range(len(docs_env.hosts)):
        path = docs_env.remote_path(i, "remote.file")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("remote file\n")
    remote = docs_env.remote_prefix
    hosts = docs_env.hosts

    # doc/advanced.rst, "SFTP and SCP" (remote paths prefixed with `remote`)
    from fleetsh.compat.pssh.clients import ParallelSSHClient
    from gevent import joinall

    client = ParallelSSHClient(hosts)

    cmds = client.copy_file('../test', remote + 'test_dir/test')
    joinall(cmds, raise_error=True)

    cmds = client.copy_file('my_dir', remote + 'my_dir', recurse=True)
    joinall(cmds, raise_error=True)

    cmds = client.copy_remote_file(remote + 'remote.file', 'local.file')
    joinall(cmds, raise_error=True)
    # end of the example

    for i, host in enumerate(hosts):
        assert docs_env.remote_path(i, "test_dir/test").read_text() == "test file\n"
        assert docs_env.remote_path(i, "my_dir/sub/f").read_text() == "in my_dir\n"
        assert (work / f"local.file_{host}").read_text() == "remote file\n"


def test_docs_join_and_output_timeout_examples(docs_env, capsys):
    from fleetsh.compat.pssh.clients import ParallelSSHClient
    from fleetsh.compat.pssh.exceptions import Timeout

    client = ParallelSSHClient(docs_env.hosts)

    # doc/advanced.rst, "Reading Output from Partially Finished Commands" (with its `..`
    # commands and timeout the test's)
    output = client.run_command('sleep 1; echo late')
    try:
        client.join(output, timeout=0.3)
    except Timeout as ex:
        # Some commands timed out
        finished_output = ex.args[2]
        unfinished_output = ex.args[3]
    else:
        # No timeout, all commands finished within five seconds
        finished_output = output
        unfinished_output = None
    for host_out in finished_output:
        for line in host_out.stdout:
            print(line)
    # end of the example

    assert finished_output == [] and unfinished_output == output

    # doc/advanced.rst, "Join and Output Timeouts"
    output = client.run_command('echo early; sleep 1', read_timeout=0.2)
    for host_out in output:
        try:
            for line in host_out.stdout:
                print(line)
            for line in host_out.stderr:
                print(line)
        except Timeout:
            pass
    # end of the example

    assert capsys.readouterr().out.splitlines() == ["early"] * len(docs_env.hosts)


def test_a_command_does_not_wait_for_the_previous_one_to_end(sim):
    client = client_for(sim, hosts=addrs(sim)[:2])
    try:
        first = client.run_command("sleep 3; echo late")
        started = time.monotonic()
        second = client.run_command("echo now")
        assert [list(o.stdout) for o in second] == [["now"], ["now"]]
        assert time.monotonic() - started < 2.5
        client.join(first)
        assert [list(o.stdout) for o in first] == [["late"], ["late"]]
    finally:
        client.close()


def test_secrets_stay_out_of_argument_errors(sim):
    with pytest.raises(TypeError) as e:
        ParallelSSHClient(addrs(sim)[:1], password=b"hunter2")
    assert "hunter2" not in str(e.value) and "bytes" in str(e.value)
    with pytest.raises(ValueError) as e:
        HostConfig(password=b"hunter2")
    assert "hunter2" not in str(e.value)
    with pytest.raises(TypeError) as e:
        ParallelSSHClient(addrs(sim)[:1], pkey=bytearray(b"-----BEGIN OPENSSH PRIVATE KEY-----"))
    assert "PRIVATE" not in str(e.value)
