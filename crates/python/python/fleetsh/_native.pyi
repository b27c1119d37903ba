"""Type stubs of fleetsh's extension module; import its names from ``fleetsh`` and
``fleetsh.sim``."""

import enum
import os
import pathlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Generator, Generic, Optional, TypeVar, Union

from typing_extensions import Self

__version__: str

_Path = Union[str, "os.PathLike[str]"]
_Seconds = Union[int, float]
_Hosts = Union[str, Iterable[str]]
_Command = Union[
    str, Sequence[str], Mapping[str, str], Callable[[str, int], str]
]

class ErrorKind(str, enum.Enum):
    """Why a host failed (``HostResult.error_kind``). A str enum: each value is fleetsh's stable
    name of the kind, the same as in the command line's JSON output."""

    RESOLVE = "resolve"
    """The host name could not be resolved to an address."""
    CONNECT = "connect"
    """The TCP connection was refused or the host was unreachable."""
    CONNECT_TIMEOUT = "connect_timeout"
    """The TCP connection, SSH handshake or authentication did not finish within the connect
    timeout."""
    HANDSHAKE = "handshake"
    """The SSH handshake (version exchange, key exchange) failed."""
    HOSTKEY = "hostkey"
    """The server's host key is unknown (strict checking), changed, or revoked."""
    AUTH = "auth"
    """Every authentication method was refused, or sudo refused the password it was given."""
    CHANNEL = "channel"
    """The session channel could not be opened or the exec request was refused."""
    COMMAND_TIMEOUT = "command_timeout"
    """The command did not finish within the command timeout, or sent no output for the idle
    timeout. Output received so far is kept."""
    DISCONNECTED = "disconnected"
    """The connection was lost while the command ran. Output received so far is kept."""
    CANCELLED = "cancelled"
    """The run was cancelled before this host finished. Output received so far is kept."""
    INTERNAL = "internal"
    """An internal failure (a shard thread stopped without this host's result)."""
    SKIPPED = "skipped"
    """Not started because the run's failure threshold (max_fail) was passed."""
    TRANSFER = "transfer"
    """A file transfer failed."""
    JUMP = "jump"
    """A jump host (bastion) could not be reached or authenticated, or refused the tunnel to
    this host."""
    UNKNOWN = "unknown"
    """An earlier run kept in the same journal sent this host its command and stopped before
    recording a result."""
    MISSING = "missing"
    """In a merge of a split run's journals, no journal started this host."""

class Error(Exception):
    """Every error fleetsh raises: a bad argument, a key or known_hosts file that cannot be
    used, a run that cannot start. A host's failure is never an exception: it is data in that
    host's HostResult."""

    argument: Optional[str]
    """The name of the Python argument at fault (``"port"``, ``"hosts"``, ...), or None."""

class InputError(Error):
    """Bad input: a host spec, a setting, an ssh_config file."""

class HostSpecError(InputError):
    """A host spec that cannot be parsed (``web[01-``), a range too large, or no hosts at all.
    ``argument`` is ``"hosts"``."""

class ConfigError(InputError):
    """A setting with a value that cannot work (a port of 0, an unknown host_key_check mode, a
    bad jump spec, an ssh_config file that cannot be read or parsed); ``argument`` names it."""

class EngineError(Error):
    """The engine cannot work: keys, known_hosts, starting the run's threads."""

class CredentialsError(EngineError):
    """A key or certificate file that cannot be used (``argument``: ``"identity"`` or
    ``"certificate"``), or no credentials at all: no key file, no ssh-agent, no
    FLEETSH_PASSWORD."""

class KnownHostsError(EngineError):
    """A known_hosts file that cannot be read, or strict host-key checking with a known_hosts
    file that does not exist. ``argument`` is ``"known_hosts"``."""

class StartError(EngineError):
    """The run cannot start: its threads cannot be started, or the open-files limit leaves no
    room for a single host."""

class SimError(Error):
    """A simulated fleet (fleetsh.sim.Fleet) that cannot start, or that was already stopped."""

class Engine:
    """Runs commands on many hosts over SSH.

    Build it once: keys and known_hosts are loaded when it is built, and every run reuses them.
    Every argument is optional; the defaults suit a 10,000-host run. A value of the wrong type
    raises TypeError, a value that cannot work ConfigError, both naming the argument. Keys and
    known_hosts that cannot be used raise CredentialsError and KnownHostsError.

    The password for password and keyboard-interactive authentication is ``password``, else
    the environment variable FLEETSH_PASSWORD; the passphrase of encrypted keys is
    ``passphrase``, else FLEETSH_PASSPHRASE (as for the ``fleetsh`` command line). Neither
    ever appears in a log, a repr or an error message.
    """

    def __init__(
        self,
        *,
        user: Optional[str] = None,
        port: Optional[int] = None,
        identity: Union[_Path, Iterable[_Path], None] = None,
        certificate: Union[_Path, Iterable[_Path], None] = None,
        agent: Union[bool, _Path, None] = None,
        known_hosts: Optional[_Path] = None,
        host_key_check: Optional[str] = None,
        ssh_config: Optional[_Path] = None,
        jump: Union[str, Iterable[str], None] = None,
        shards: Optional[int] = None,
        fanout: Optional[int] = None,
        rate: Optional[float] = None,
        batch: Union[int, str, None] = None,
        max_fail: Union[int, str, None] = None,
        connect_timeout: Optional[_Seconds] = None,
        command_timeout: Optional[_Seconds] = None,
        idle_timeout: Optional[_Seconds] = None,
        retries: Optional[int] = None,
        output_cap: Optional[int] = None,
        keepalive_interval: Optional[_Seconds] = None,
        keepalive_count: Optional[int] = None,
        forward_agent: bool = False,
        password: Optional[str] = None,
        passphrase: Optional[str] = None,
        kex: Optional[str] = None,
    ) -> None:
        """Builds the engine.

        Args:
            user: login user for hosts that name none (default: ``$USER``, else root).
            port: SSH port for hosts that name none, 1 to 65535 (default 22).
            identity: private key file(s); when given, the default ``~/.ssh/id_*`` files are
                not used (as OpenSSH's ``-i``).
            certificate: OpenSSH user certificate file(s), used with the key each certifies.
            agent: True (default) uses the ssh-agent at ``SSH_AUTH_SOCK``, False none, a path
                the agent at that socket.
            known_hosts: the known_hosts file (default ``~/.ssh/known_hosts``).
            host_key_check: ``"strict"`` (default: unknown and changed keys fail the host),
                ``"accept-new"`` (unknown keys are learned into known_hosts) or ``"off"``.
            ssh_config: an OpenSSH client configuration file to read (per host HostName, User,
                Port, IdentityFile, ProxyJump, ...); none is read by default.
            jump: jump hosts (bastions), as OpenSSH's ``-J``: ``"user@bastion:22"``, a
                comma-separated chain, or a list of hops, first hop first.
            shards: shard threads (0 or None: one per CPU), at most 1024.
            fanout: hosts in flight at once across every shard (default 1000).
            rate: at most this many new connections per second.
            batch: run hosts in successive batches of this many (``50``) or this share of the
                hosts (``"10%"``).
            max_fail: stop starting hosts once more than this many (or this share) failed;
                hosts not started end ``skipped``.
            connect_timeout: seconds for TCP connect, handshake and authentication, per
                attempt (default 10).
            command_timeout: default seconds from a command's start to its exit status, for
                runs that give no ``timeout`` (default: none).
            idle_timeout: default longest silence of a command's output, in seconds.
            retries: default connection attempts after a failed connect (default 0).
            output_cap: default bytes of stdout and of stderr kept per host (default 1 MiB).
            keepalive_interval: seconds without data from a server before a keepalive
                request (default: off).
            keepalive_count: unanswered keepalives before the connection is dropped
                (default 3).
            forward_agent: forward the ssh-agent to every command (``ssh -A``).
            password: the password for password and keyboard-interactive authentication
                (default: FLEETSH_PASSWORD).
            passphrase: the passphrase of encrypted private keys (default:
                FLEETSH_PASSPHRASE).
            kex: key exchange preference: ``"default"`` (post-quantum ML-KEM hybrid first)
                or ``"curve25519"`` (curve25519 first: cheaper, for fleets that trust it).
        """

    def run(
        self,
        command: _Command,
        hosts: _Hosts,
        *,
        timeout: Optional[_Seconds] = None,
        idle_timeout: Optional[_Seconds] = None,
        retries: Optional[int] = None,
        retry_delay: Optional[_Seconds] = None,
        output_cap: Optional[int] = None,
        env: Optional[Mapping[str, str]] = None,
        stdin: Union[bytes, str, None] = None,
        pty: bool = False,
        sudo: Union[bool, str, None] = None,
        sudo_password: Optional[str] = None,
        stream: bool = False,
        template: bool = False,
    ) -> "Run":
        """Starts ``command`` on ``hosts`` and returns at once.

        Args:
            command: the command line, run by each host's shell; or one command per host:
                a list or tuple (in the order of ``hosts``), a dict from host (as written,
                or its bare name) to command, or a function ``(host, index) -> str`` called
                once per host before anything connects. A host without a command stops the
                run from starting, naming the host.
            hosts: one host spec or a list of them, as the command line's ``-w`` takes them:
                ``"web[01-12].dc[1-2]"``, ``"deploy@db1:2222"``, ``"[::1]:2222"``,
                ``"a,b,c"``. Duplicates are removed; order is kept.
            timeout: seconds from the command's start to its exit status; a host over it ends
                ``command_timeout`` with the output it had sent (default: the engine's
                command_timeout).
            idle_timeout: longest silence of the command's output, in seconds.
            retries: connection attempts after a failed connect.
            retry_delay: seconds before the first retry (doubling, with jitter; default 1).
            output_cap: bytes of stdout and of stderr kept per host.
            env: environment variables to set (the server must accept them: AcceptEnv).
            stdin: bytes (or text, as UTF-8) sent to every host's command, then end of file.
            pty: ask for a terminal (stderr then arrives merged into stdout).
            sudo: run the command through sudo: True as root, a string as that user
                (``sudo -S -p PROMPT`` with a password, ``sudo -n`` without one).
            sudo_password: the password sudo asks for, sent on stdin when sudo's prompt
                appears and only then, never shown (default: FLEETSH_SUDO_PASSWORD); the
                command's input follows once sudo has let it start.
            stream: deliver output while hosts run, for ``Run.events()`` and ``Run.lines()``
                (results still hold each host's output, up to ``output_cap``).
            template: replace ``{host}`` and ``{index}`` in ``command`` on each host.

        Raises:
            TypeError: an argument of the wrong type, or an unknown keyword argument.
            HostSpecError: a host spec that cannot be parsed, or no hosts.
            ConfigError: a setting that cannot work (an empty command, a timeout of 0, a
                host without its command).
            StartError: the run's threads cannot start, or no open file is left for a host.

        A host's failure is never an exception: it is that host's HostResult. Keep the Run:
        once nothing refers to it, the run is cancelled.
        """

    def copy_to(
        self,
        hosts: _Hosts,
        local: Union[_Path, Iterable[_Path]],
        remote: _Path,
        *,
        recursive: bool = False,
        preserve: bool = False,
        timeout: Optional[_Seconds] = None,
        retries: Optional[int] = None,
        retry_delay: Optional[_Seconds] = None,
    ) -> "Run":
        """Uploads local files to every host over SFTP and returns at once.

        The files are read once (every host shares them). As ``scp``: when ``remote`` is a
        directory on the host (or ends with ``/``) each file lands in it under its own name,
        otherwise ``remote`` is the file's new path; several files need an existing
        directory; ``recursive`` copies directories. Parent directories are not created.
        Each file is written under a temporary name and renamed into place, so a failed
        upload never leaves a partial file. ``preserve`` keeps mode and modification time.
        ``timeout`` bounds each host's whole transfer. Results' ``files`` and ``bytes``
        count what was moved; ``Run.events()`` shows progress (``Transferred``).

        Raises:
            ConfigError: a local file missing or unreadable (named), a directory without
                ``recursive``, an empty remote path.
        """

    def copy_from(
        self,
        hosts: _Hosts,
        remote: Union[str, Iterable[str]],
        local_dir: _Path,
        *,
        recursive: bool = False,
        preserve: bool = False,
        timeout: Optional[_Seconds] = None,
        retries: Optional[int] = None,
        retry_delay: Optional[_Seconds] = None,
    ) -> "Run":
        """Downloads ``remote`` (a path, or a list of them) from every host over SFTP into
        ``local_dir/HOST/`` (``host_dir_name(host)``: the host as written), under their base
        names, so that hosts never overwrite each other's files; ``recursive`` copies
        directories. Names the server sends are checked: nothing is written outside
        ``local_dir``. Files are written under a temporary name and renamed into place.

        Raises:
            ConfigError: ``local_dir`` is a file or cannot be created; an empty remote path.
        """

    def connect(self, hosts: _Hosts) -> "ConnectedFleet":
        """A connected fleet of ``hosts``: connections made by its first command (or by
        ``connect_all()``) stay open for the next ones, as parallel-ssh's client keeps them
        between ``run_command`` calls. Close it (or use ``with``) to disconnect.

        Raises:
            HostSpecError: a host spec that cannot be parsed, or no hosts.
            StartError: the fleet's threads cannot start, or too few open files are left.
        """

    @property
    def user(self) -> str:
        """The login user for hosts that name none."""

    @property
    def port(self) -> int:
        """The SSH port for hosts that name none."""

    @property
    def fanout(self) -> int:
        """Hosts in flight at once across every shard."""

class Run:
    """A running job.

    Iterate it for each host's result as the host finishes: ``for r in run`` blocks (with the
    GIL released), ``async for r in run`` waits without blocking the event loop. Every host
    yields exactly one result, once, in whichever of the two forms is used. ``join()`` waits
    for every host and returns the Report; ``cancel()`` stops the run.

    Leaving a ``with`` or ``async with`` block cancels the run if it is still going. A run
    that nothing refers to any more is cancelled.
    """

    def __iter__(self) -> Iterator[HostResult]: ...
    def __next__(self) -> HostResult:
        """The next host's result, waiting for it with the GIL released. Ctrl-C
        (KeyboardInterrupt) while it waits cancels the run."""

    def __aiter__(self) -> Self: ...
    def __anext__(self) -> "_NextResult":
        """An awaitable of the next host's result, which never blocks the event loop.
        Cancelling the task that awaits it cancels the run."""

    def join(self, timeout: Optional[_Seconds] = None) -> "Report":
        """Waits for every host and returns the Report, whose results include those already
        iterated. With ``timeout`` (seconds) it waits at most that long: at the deadline the
        run is cancelled, hosts still running end ``cancelled`` with the output they had sent,
        and ``Report.deadline_hit`` is set. Blocks with the GIL released; Ctrl-C while it
        waits cancels the run. In asyncio code, iterate with ``async for`` to the end: join()
        then returns at once."""

    def cancel(self) -> None:
        """Cancels the run: no new host starts, hosts in flight end ``cancelled`` with the
        output they had sent. Every host still gets its result."""

    def events(self) -> "Stream[Union[Output, Transferred, HostResult]]":
        """This run read as events: ``Output`` (bytes a host sent, as received: with
        ``stream=True`` while hosts run, otherwise none), ``Transferred`` (progress of a
        copy) and ``HostResult`` (a host finished, after all of its output).

        A run is read one way: its results (``for r in run``), ``events()`` or ``lines()``;
        reading it another way afterwards raises RuntimeError. ``join()`` works with any.
        """

    def lines(self) -> "Stream[Union[Line, HostResult]]":
        """This run read as lines: each host's ``Line``s (stdout and stderr apart, each in
        the order sent), then its ``HostResult``. With ``stream=True`` lines arrive while
        hosts run; otherwise each host's lines come from its output when it finishes."""

    @property
    def cancelled(self) -> bool:
        """Whether the run was cancelled."""

    @property
    def done(self) -> bool:
        """Whether every host has its result and the run was read (a run never iterated nor
        joined stays not done)."""

    def __len__(self) -> int:
        """The number of hosts in the run."""

    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

class _NextResult:
    """The awaitable ``Run.__anext__`` and ``Stream.__anext__`` return."""

    def __await__(self) -> Generator[Any, None, Any]: ...

_T = TypeVar("_T")

class Stream(Generic[_T]):
    """A run read as events (``Run.events()``) or lines (``Run.lines()``): a blocking
    iterator (the GIL released while it waits; Ctrl-C cancels the run) and an asyncio async
    iterator (cancelling the task cancels the run)."""

    def __iter__(self) -> Iterator[_T]: ...
    def __next__(self) -> _T: ...
    def next(self, timeout: Optional[_Seconds] = None) -> _T:
        """The next item, waiting at most ``timeout`` seconds (None: as long as it takes; 0:
        not at all). Raises TimeoutError when nothing arrives in time (the run goes on: call
        again) and StopIteration at the end."""

    def next_batch(self, timeout: Optional[_Seconds] = None, max: int = 4096) -> list[_T]:
        """Every item that has arrived, up to ``max``, as a list: at least one (waiting for
        the first as ``next`` does), so that a consumer of a large run makes one call per
        batch rather than per item. Raises TimeoutError and StopIteration as ``next``."""

    def __aiter__(self) -> AsyncIterator[_T]: ...
    def __anext__(self) -> _NextResult: ...
    @property
    def run(self) -> Run:
        """The run this stream reads."""

class Output:
    """Bytes a host sent on stdout or stderr, exactly as they arrived (not split into
    lines)."""

    @property
    def index(self) -> int:
        """The host's position in the run's host list (as ``HostResult.index``)."""
    @property
    def host(self) -> str:
        """The host's name, without user and port."""
    @property
    def stream(self) -> str:
        """``"stdout"`` or ``"stderr"``."""
    @property
    def data(self) -> bytes:
        """The bytes."""
    @property
    def text(self) -> str:
        """The bytes as text (invalid UTF-8 replaced by U+FFFD)."""

class Transferred:
    """Progress of a host's copy: files and bytes completed since its previous one."""

    @property
    def index(self) -> int:
        """The host's position in the run's host list."""
    @property
    def host(self) -> str:
        """The host's name, without user and port."""
    @property
    def files(self) -> int:
        """Files completed since the host's previous progress."""
    @property
    def bytes(self) -> int:
        """Bytes moved since the host's previous progress."""

class Line:
    """One line of a host's stdout or stderr, without its newline (``\\n`` or ``\\r\\n``)."""

    @property
    def index(self) -> int:
        """The host's position in the run's host list."""
    @property
    def host(self) -> str:
        """The host's name, without user and port."""
    @property
    def stream(self) -> str:
        """``"stdout"`` or ``"stderr"``."""
    @property
    def bytes(self) -> bytes:
        """The line's bytes exactly as the host sent them."""
    @property
    def text(self) -> str:
        """The line as text (invalid UTF-8 replaced by U+FFFD)."""
    @property
    def end(self) -> str:
        """``"newline"``; ``"split"`` for a piece of a line longer than 64 KiB (the next line
        of the same host and stream continues it); ``"eof"`` for a stream's last bytes,
        which had no newline."""

class ConnectedFleet:
    """Hosts whose SSH connections stay open between commands (``Engine.connect``): each
    ``run`` and copy goes over the connections the first one made, one channel per command;
    a connection found closed is made again once before the host fails. Use ``with``, or
    ``close()``, to disconnect."""

    def connect_all(
        self, *, retries: Optional[int] = None, retry_delay: Optional[_Seconds] = None
    ) -> Run:
        """Connects and authenticates every host not connected yet, running nothing: each
        host's result is ok when it is connected, otherwise it carries why not
        (``connect``, ``auth``, ``hostkey``, ...). ``retries`` and ``retry_delay`` as for
        ``run`` (default: the engine's)."""

    def run(
        self,
        command: _Command,
        *,
        hosts: Optional[Iterable[Union[str, int]]] = None,
        timeout: Optional[_Seconds] = None,
        idle_timeout: Optional[_Seconds] = None,
        retries: Optional[int] = None,
        retry_delay: Optional[_Seconds] = None,
        output_cap: Optional[int] = None,
        env: Optional[Mapping[str, str]] = None,
        stdin: Union[bytes, str, None] = None,
        pty: bool = False,
        sudo: Union[bool, str, None] = None,
        sudo_password: Optional[str] = None,
        stream: bool = False,
        template: bool = False,
    ) -> Run:
        """Starts ``command`` on the fleet's hosts over their open connections, as
        ``Engine.run``. ``hosts`` selects some of them: hosts as written (``fleet.hosts``)
        or their indices; results' ``index`` is the host's position in ``fleet.hosts``.

        Raises:
            HostSpecError: a selected host that is not in the fleet, or selected twice.
        """

    def copy_to(
        self,
        local: Union[_Path, Iterable[_Path]],
        remote: _Path,
        *,
        hosts: Optional[Iterable[Union[str, int]]] = None,
        recursive: bool = False,
        preserve: bool = False,
        timeout: Optional[_Seconds] = None,
        retries: Optional[int] = None,
        retry_delay: Optional[_Seconds] = None,
    ) -> Run:
        """``Engine.copy_to`` over the fleet's open connections."""

    def copy_from(
        self,
        remote: Union[str, Iterable[str]],
        local_dir: _Path,
        *,
        hosts: Optional[Iterable[Union[str, int]]] = None,
        recursive: bool = False,
        preserve: bool = False,
        timeout: Optional[_Seconds] = None,
        retries: Optional[int] = None,
        retry_delay: Optional[_Seconds] = None,
    ) -> Run:
        """``Engine.copy_from`` over the fleet's open connections."""

    @property
    def hosts(self) -> list[str]:
        """The fleet's hosts as written."""

    @property
    def closed(self) -> bool:
        """Whether the fleet was closed."""

    def close(self) -> None:
        """Disconnects every host and stops the fleet's threads (a run still going completes
        first). Closing twice does nothing."""

    def __len__(self) -> int: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

def host_dir_name(host: str) -> str:
    """The directory ``copy_from`` writes a host's files in under its ``local_dir``: the host
    as written in the host list, made safe as a file name."""

class HostResult:
    """One host's result: how its command ended, its output, why it failed, its timings."""

    @property
    def host(self) -> str:
        """The host's name or address, as given (without user and port)."""

    @property
    def port(self) -> Optional[int]:
        """The SSH port used."""

    @property
    def user(self) -> Optional[str]:
        """The login user."""

    @property
    def target(self) -> str:
        """The host as ``user@host:port``."""

    @property
    def index(self) -> int:
        """The host's position in the run's host list."""

    @property
    def exit_code(self) -> Optional[int]:
        """The command's exit status, if the server sent one."""

    @property
    def signal(self) -> Optional[str]:
        """The signal that killed the command (``"KILL"``, without ``SIG``), if one did."""

    @property
    def stdout(self) -> bytes:
        """The command's standard output (at most output_cap bytes)."""

    @property
    def stderr(self) -> bytes:
        """The command's standard error (at most output_cap bytes)."""

    @property
    def stdout_text(self) -> str:
        """stdout decoded as UTF-8, each invalid sequence replaced by U+FFFD."""

    @property
    def stderr_text(self) -> str:
        """stderr decoded as UTF-8, each invalid sequence replaced by U+FFFD."""

    @property
    def truncated(self) -> bool:
        """Whether output beyond output_cap was dropped."""

    @property
    def error_kind(self) -> Optional[ErrorKind]:
        """Why the host failed, or None. A command that ran and exited non-zero has no error:
        see exit_code."""

    @property
    def error_message(self) -> Optional[str]:
        """What happened, when the host failed (``"connection refused"``, ...), or None."""

    @property
    def attempts(self) -> int:
        """Connection attempts made (1 + retries used; 0 for a host never started)."""

    @property
    def timings(self) -> dict[str, Optional[float]]:
        """Seconds spent in each phase, None for a phase the host did not reach: connect,
        handshake_auth, channel_open, exec, read, close, first_byte, and total (never None)."""

    @property
    def server(self) -> Optional[dict[str, str]]:
        """What the server is and what the connection negotiated, once the key exchange was
        done (also for a host that then failed): ``version`` (the server's identification
        line, e.g. ``SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3``), ``kex``, ``host_key`` and
        ``cipher``; None for a host whose handshake did not get that far."""

    @property
    def lossy(self) -> bool:
        """Whether stdout or stderr is not valid UTF-8, so that ``stdout_text`` or
        ``stderr_text`` replaced some bytes (U+FFFD); the bytes are in ``stdout``/``stderr``."""
    @property
    def files(self) -> Optional[int]:
        """Files a copy moved to or from the host (also when it later failed); None for a
        command."""
    @property
    def bytes(self) -> Optional[int]:
        """Bytes of file data a copy moved; None for a command."""
    @property
    def ok(self) -> bool:
        """True when the command ran and exited 0."""

class Report:
    """The end of a run: one result per host, in the order of the run's host list."""

    @property
    def results(self) -> list[HostResult]:
        """Every host's result, in host order (a new list each time, of the same results)."""

    @property
    def ok_count(self) -> int:
        """How many hosts ran their command and exited 0."""

    @property
    def all_ok(self) -> bool:
        """Whether every host ran its command and exited 0."""

    def failures(self) -> list[HostResult]:
        """The results that are not ok, in host order."""

    @property
    def wall(self) -> float:
        """Seconds from the start of the run to its last result."""

    @property
    def shards(self) -> int:
        """Shard threads the run used."""

    @property
    def deadline_hit(self) -> bool:
        """Whether join(timeout) reached its deadline first and cancelled the run."""

    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[HostResult]: ...

class Fleet:
    """A simulated fleet of SSH hosts on loopback addresses (127.1.0.1, 127.1.0.2, ...),
    served by threads of this process until ``stop()`` or the end of its ``with`` block.
    Import it as ``fleetsh.sim.Fleet``."""

    def __init__(
        self,
        count: int = 1000,
        faults: Union[str, Mapping[str, float], None] = None,
        *,
        seed: int = 0,
        threads: int = 1,
        latency: Optional[_Seconds] = None,
        password: Optional[str] = None,
        sudo_password: Optional[str] = None,
    ) -> None:
        """Starts the fleet and returns once every host serves.

        Args:
            count: how many hosts, 1 to 1,000,000.
            faults: hosts that misbehave on purpose, as the ``fleetsh sim --fault`` spec
                (``"refuse=5,exit:3=10"``: 5% of the hosts refuse connections, 10% exit 3) or
                a dict (``{"refuse": 5, "exit:3": 10}``). Kinds: refuse, silent,
                slow-banner:MS, auth-fail, hostkey-mismatch, drop, hang, flood, exit:N,
                sftp-evil, sftp-cut:BYTES, no-forward, freeze:MS. Which hosts get which fault
                follows from ``seed``.
            seed: the seed of the host keys and of the fault assignment.
            threads: the fleet's server threads.
            latency: seconds added to every round trip, as a network would.
            password: also accept password (and keyboard-interactive) authentication with this
                password, for any user.
            sudo_password: the password the hosts' ``sudo -S`` accepts (without it, sudo
                refuses every password).

        Raises:
            ConfigError: a bad count or fault spec.
            SimError: the fleet cannot start (no free port, no room for its files).
        """

    @property
    def hosts(self) -> list[str]:
        """The hosts as ``"address:port"`` strings, in index order (a new list each time)."""

    @property
    def port(self) -> int:
        """The port every host listens on."""

    @property
    def key(self) -> pathlib.Path:
        """The client key the fleet accepts, for ``Engine(identity=...)``."""

    @property
    def known_hosts(self) -> pathlib.Path:
        """A known_hosts file with every host's key, for ``Engine(known_hosts=...)``."""

    @property
    def hosts_file(self) -> pathlib.Path:
        """A hosts file, one ``address:port`` per line (for ``fleetsh run -H``)."""

    @property
    def state_dir(self) -> pathlib.Path:
        """The directory of the fleet's files, removed when the fleet stops."""

    @property
    def running(self) -> bool:
        """Whether the fleet is serving."""

    def host_root(self, index: int) -> pathlib.Path:
        """The directory host ``index`` serves as ``/`` over SFTP (what copies to it wrote),
        made on the host's first SFTP session."""

    def commands_run(self, index: int) -> int:
        """How many commands host ``index`` has been sent so far."""

    def connections_accepted(self, index: int) -> int:
        """How many TCP connections host ``index`` has accepted so far."""

    def fault_of(self, index: int) -> Optional[str]:
        """The fault given to host ``index`` (``"refuse"``, ``"exit"``, ...), or None."""

    def stop(self) -> None:
        """Stops the fleet: listeners close, sessions are disconnected, its files are
        removed. Stopping a stopped fleet does nothing."""

    def __len__(self) -> int: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...
