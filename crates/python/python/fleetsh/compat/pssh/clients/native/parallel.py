"""``ParallelSSHClient``: parallel-ssh's parallel client, run by fleetsh's engine."""

from __future__ import annotations

import errno
import getpass
import logging
import os
import posixpath
import shlex
import tempfile
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Callable, Optional, Union

import fleetsh

from ... import _core
from ...config import HostConfig
from ...constants import DEFAULT_RETRIES, RETRY_DELAY
from ...exceptions import (
    HostArgumentError,
    HostConfigError,
    InvalidAPIUseError,
    PKeyFileError,
    SCPError,
    SFTPIOError,
    SSHError,
    Timeout,
    exception_for,
)
from ...output import Channel, HostOutput, Stdin, _Source

__all__ = ["ParallelSSHClient"]

logger = logging.getLogger("pssh.clients.parallel")

_Path = Union[str, "os.PathLike[str]"]
_Key = Union[str, bytes, "os.PathLike[str]", None]

_DEFAULT_IDENTITIES = ("id_rsa", "id_dsa", "identity", "id_ecdsa", "id_ed25519")
"""The key files under ~/.ssh that parallel-ssh tries by default."""

_SUDO_PASSWORD_VAR = "FLEETSH_SUDO_PASSWORD"


def _check_number(name: str, value: Any, minimum: float, integer: bool = False) -> None:
    """Raises TypeError or ValueError naming ``name`` for a value that is not a number (an
    int with ``integer``) at least ``minimum``."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        expected = "an int" if integer else "a number of seconds"
        raise TypeError(f"{name} must be {expected}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")


def _sudo_prefix(user: Union[bool, str]) -> str:
    """The sudo command line shown as a command's ``fully_qualified_command``: the shape of
    what runs, without the prompt and start marker fleetsh adds per host (docs/python.md)."""
    as_user = "" if user is True else f"-u {shlex.quote(str(user))} "
    return f"sudo -S -p '' {as_user}-- sh -c "


class _Settings:
    """One host's effective settings: its HostConfig over the client's own."""

    __slots__ = (
        "user", "port", "password", "pkey", "allow_agent", "alias", "num_retries",
        "retry_delay", "timeout", "identity_auth", "proxy_host", "proxy_port", "proxy_user",
        "proxy_password", "proxy_pkey", "keepalive_seconds", "cert_file",
        "forward_ssh_agent",
    )


class _Launch:
    """The start of one run_command on some hosts: now, or (sudo without a password) once
    every host's input is flushed or any output is asked for."""

    def __init__(
        self,
        client: "ParallelSSHClient",
        items: list[tuple[int, _Source, str]],
        options: dict[str, Any],
        deferred: bool,
    ) -> None:
        self._client = client
        self._items = items
        self._options = options
        self._deferred = deferred
        self._lock = threading.Lock()
        self._started = False

    def flushed(self) -> None:
        """Starts the command once every host's input is flushed."""
        if all(source.flushed for _, source, _ in self._items):
            self.start()

    def start(self) -> None:
        """Starts the command on every host (once): one native run per group of hosts that
        share an engine (and, for sudo with input, the same input)."""
        with self._lock:
            if self._started:
                return
            self._started = True
            batches: dict[tuple[Any, ...], list[tuple[int, _Source, str]]] = {}
            for index, source, command in self._items:
                group, _ = self._client._place[index]
                password: Optional[str] = self._options["sudo_password"]
                stdin = self._options["stdin"]
                if self._deferred:
                    raw = bytes(source.stdin)
                    first, newline, rest = raw.partition(b"\n")
                    if newline or first:
                        password = first.rstrip(b"\r").decode("utf-8", "surrogateescape")
                    stdin = rest or None
                key = (id(group), password, stdin)
                batches.setdefault(key, []).append((index, source, command))
            for (_, password, stdin), items in batches.items():
                group = self._client._place[items[0][0]][0]
                fleet_indices = [self._client._place[index][1] for index, _, _ in items]
                distinct = {command for _, _, command in items}
                commands: Any = distinct.pop() if len(distinct) == 1 else {
                    group.targets[fi]: command
                    for fi, (_, _, command) in zip(fleet_indices, items)
                }
                kwargs: dict[str, Any] = dict(
                    hosts=fleet_indices,
                    stream=True,
                    pty=self._options["pty"],
                    retry_delay=group.run_options["retry_delay"],
                )
                if self._options["sudo"] is not None:
                    kwargs["sudo"] = self._options["sudo"]
                    if password is not None:
                        kwargs["sudo_password"] = password
                if stdin is not None:
                    kwargs["stdin"] = stdin
                if self._options["command_timeout"] is not None:
                    kwargs["timeout"] = self._options["command_timeout"]
                if self._options["env"] is not None:
                    kwargs["env"] = self._options["env"]
                run = group.start(lambda fleet: fleet.run(commands, **kwargs))
                pump = _core.Pump(run, {fi: slot for slot, fi in enumerate(fleet_indices)})
                for slot, (_, source, _) in enumerate(items):
                    source.slot = slot
                    source.pump = pump


class ParallelSSHClient:
    """Runs commands and copies files on many hosts in parallel, as parallel-ssh 2.x's
    ``pssh.clients.ParallelSSHClient``, with fleetsh's engine underneath.

    Code written for parallel-ssh works after changing ``pssh`` to ``fleetsh.compat.pssh`` in
    its import lines. Connections stay open between commands, as parallel-ssh keeps them.

    **Host keys.** fleetsh checks each host's key against known_hosts, which parallel-ssh
    never does: by default (``host_key_check="strict"``) a host whose key is unknown or
    changed fails with HostKeyError. ``host_key_check="off"`` restores parallel-ssh's
    behaviour; ``"accept-new"`` learns unknown keys into known_hosts and still refuses changed
    ones; ``known_hosts=`` names the file (default ``~/.ssh/known_hosts``).

    How the arguments map onto fleetsh (``fleetsh.Engine``):

    - ``user``, ``port``: each host is reached as ``user@host:port`` (user defaults to the
      local user, as parallel-ssh).
    - ``password``: password and keyboard-interactive authentication, and the passphrase of
      an encrypted key.
    - ``pkey``: a key file's path (``~`` expanded; a missing file raises PKeyFileError), or
      the key itself as bytes, written to a private temporary file (mode 0600) removed by
      ``close()`` or when the client is garbage collected. With a key, the default key files
      are not tried (as parallel-ssh).
    - ``num_retries``: connection attempts in all (fleetsh's ``retries`` is one fewer);
      ``retry_delay``: seconds before the first retry (fleetsh doubles it for each further
      one, with jitter).
    - ``timeout``: fleetsh's connect timeout (TCP connect, handshake and authentication). It
      does not bound reading output (``read_timeout``) or ``join`` (its own ``timeout``).
    - ``pool_size``: fleetsh's fanout (hosts in flight at once).
    - ``allow_agent``: use the ssh-agent. ``identity_auth=False``: do not try the default
      key files under ``~/.ssh``.
    - ``proxy_host``, ``proxy_port``, ``proxy_user``: fleetsh's jump host
      (``proxy_user@proxy_host:proxy_port``; port and user default to the host's, as
      parallel-ssh). ``proxy_pkey`` is offered to the hosts too (fleetsh uses one set of keys
      for the jump host and the hosts); a ``proxy_password`` other than ``password`` raises
      InvalidAPIUseError (one password serves both).
    - ``keepalive_seconds``: fleetsh's keepalive interval (0 or None: none).
    - ``forward_ssh_agent``: forwards the ssh-agent to commands (honoured, where
      parallel-ssh's native client ignores it).
    - ``host_config``: one HostConfig per host. Hosts that differ only in user and port share
      one engine; other differences (password, keys, proxy, timeouts...) get an engine each.
    - ``compress``: accepted and unused (fleetsh does not compress).
    - ``keyboard_interactive``: accepted (fleetsh answers keyboard-interactive prompts with
      the password by itself); needs ``password`` (InvalidAPIUseError otherwise, as
      parallel-ssh).
    - ``ipv6_only=True``: not supported, raises InvalidAPIUseError.
    - ``cert_file``: an OpenSSH user certificate for the key (parallel-ssh's libssh client
      takes it).
    - ``gssapi_*`` (parallel-ssh's libssh client): not supported, InvalidAPIUseError when set.

    fleetsh has no interactive shells: ``open_shell``, ``run_shell_commands`` and
    ``join_shells`` raise NotImplementedError.
    """

    def __init__(
        self,
        hosts: Iterable[str],
        user: Optional[str] = None,
        password: Optional[str] = None,
        port: int = 22,
        pkey: _Key = None,
        num_retries: int = DEFAULT_RETRIES,
        timeout: Optional[float] = None,
        pool_size: int = 100,
        allow_agent: bool = True,
        host_config: Optional[list[HostConfig]] = None,
        retry_delay: float = RETRY_DELAY,
        proxy_host: Optional[str] = None,
        proxy_port: Optional[int] = None,
        proxy_user: Optional[str] = None,
        proxy_password: Optional[str] = None,
        proxy_pkey: _Key = None,
        forward_ssh_agent: bool = False,
        keepalive_seconds: Optional[int] = 60,
        identity_auth: bool = True,
        ipv6_only: bool = False,
        compress: bool = False,
        keyboard_interactive: bool = False,
        *,
        host_key_check: Optional[str] = None,
        known_hosts: Optional[_Path] = None,
        cert_file: Optional[_Path] = None,
        gssapi_auth: bool = False,
        gssapi_server_identity: Optional[str] = None,
        gssapi_client_identity: Optional[str] = None,
        gssapi_delegate_credentials: bool = False,
        _auth_thread_pool: bool = True,
    ) -> None:
        """Checks the arguments and builds the engines; nothing connects before the first
        command (or ``connect_auth()``).

        Args:
            hosts: host names or addresses (any iterable but a string); a host may be given
                more than once.
            user: login user (default: the local user).
            password: password, also the passphrase of an encrypted key.
            port: SSH port.
            pkey: private key: a file's path, or the key as bytes.
            num_retries: connection attempts in all.
            timeout: connect timeout in seconds (default: fleetsh's, 10).
            pool_size: hosts in flight at once.
            allow_agent: use the ssh-agent.
            host_config: one HostConfig per host.
            retry_delay: seconds before retrying a failed connection.
            proxy_host: the proxy (jump) host.
            proxy_port: its SSH port (default: the host's).
            proxy_user: its login user (default: the host's).
            proxy_password: its password: must be None or ``password``.
            proxy_pkey: its private key, path or bytes.
            forward_ssh_agent: forward the ssh-agent to commands.
            keepalive_seconds: seconds between keepalives (0 or None: none).
            identity_auth: try the default key files under ``~/.ssh``.
            ipv6_only: must be False.
            compress: accepted and unused.
            keyboard_interactive: accepted; needs ``password``.
            host_key_check: fleetsh's host key checking, ``"strict"`` (default),
                ``"accept-new"`` or ``"off"`` (parallel-ssh's behaviour).
            known_hosts: the known_hosts file (default ``~/.ssh/known_hosts``).
            cert_file: an OpenSSH user certificate for the key.
            gssapi_auth: must be False.
            gssapi_server_identity: must be None.
            gssapi_client_identity: must be None.
            gssapi_delegate_credentials: must be False.
            _auth_thread_pool: accepted and unused.

        Raises:
            TypeError: ``hosts`` is a string, or an argument of the wrong type (named).
            ValueError: an argument with a value that cannot work (named), or a
                ``host_config`` whose length is not the number of hosts.
            HostConfigError: ``host_config`` is not a list.
            PKeyFileError: a ``pkey`` (or ``proxy_pkey``) file that does not exist.
            InvalidAPIUseError: an argument fleetsh cannot honour (named), or
                ``keyboard_interactive`` without a password.
            fleetsh.Error: what fleetsh's engine refuses (a known_hosts file that cannot be
                read, an unusable key, ...), naming the fleetsh setting.
        """
        self._hosts = _core.as_list(hosts)
        self.user = user
        self.password = password
        self.port = port
        self.num_retries = num_retries
        self.timeout = timeout
        self.pool_size = pool_size
        self.allow_agent = allow_agent
        self.host_config = host_config
        self.retry_delay = retry_delay
        self.proxy_host = proxy_host
        self.proxy_port = proxy_port
        self.proxy_user = proxy_user
        self.proxy_password = proxy_password
        self.forward_ssh_agent = forward_ssh_agent
        self.keepalive_seconds = keepalive_seconds
        self.identity_auth = identity_auth
        self.ipv6_only = ipv6_only
        self.compress = compress
        self.keyboard_interactive = keyboard_interactive
        self.cert_file = cert_file
        self.host_key_check = host_key_check
        self.known_hosts = known_hosts
        self.cmds: Optional[list[Any]] = None
        self._auth_thread_pool = _auth_thread_pool
        self._key_files: dict[bytes, str] = {}
        self._engines: dict[tuple[Any, ...], fleetsh.Engine] = {}
        self._groups: list[_core.Group] = []
        self._place: list[tuple[_core.Group, int]] = []
        self._tmpdirs: set[str] = set()
        self._last_output: Optional[list[HostOutput]] = None
        self._closed = False
        self._finalizer = weakref.finalize(
            self, _cleanup, self._groups, self._key_files, self._tmpdirs)

        if ipv6_only:
            raise InvalidAPIUseError(
                "ipv6_only=True: fleetsh cannot restrict connections to IPv6 addresses; give "
                "IPv6 addresses as hosts instead")
        if gssapi_auth or gssapi_delegate_credentials or gssapi_server_identity \
                or gssapi_client_identity:
            raise InvalidAPIUseError(
                "gssapi_auth: fleetsh has no GSS-API (Kerberos) authentication")
        if keyboard_interactive and not password:
            raise InvalidAPIUseError(
                "keyboard_interactive=True needs a password: none was given")
        for name, value in (("user", user), ("password", password),
                            ("proxy_host", proxy_host), ("proxy_user", proxy_user),
                            ("proxy_password", proxy_password),
                            ("host_key_check", host_key_check)):
            if value is not None and not isinstance(value, str):
                # Only the type: a password given as bytes must not reach a traceback.
                raise TypeError(f"{name} must be a str, got {type(value).__name__}")
        _check_number("port", port, 1, integer=True)
        if port > 65535:
            raise ValueError(f"port must be at most 65535, got {port!r}")
        if proxy_port is not None:
            _check_number("proxy_port", proxy_port, 1, integer=True)
        _check_number("num_retries", num_retries, 0, integer=True)
        _check_number("pool_size", pool_size, 1, integer=True)
        _check_number("retry_delay", retry_delay, 0)
        if timeout is not None:
            _check_number("timeout", timeout, 0)
            if timeout <= 0:
                raise ValueError(f"timeout must be more than 0 seconds, got {timeout!r}")
        if keepalive_seconds:
            _check_number("keepalive_seconds", keepalive_seconds, 0)
        self.pkey = self._key_path("pkey", pkey)
        self.proxy_pkey = self._key_path("proxy_pkey", proxy_pkey)
        if host_config is not None:
            if not isinstance(host_config, list):
                raise HostConfigError(
                    "Host configuration of type %s is invalid - valid types are "
                    "List[HostConfig]" % (type(host_config),))
            if len(host_config) != len(self._hosts):
                raise ValueError(
                    "Host config entries must match number of hosts if provided. "
                    f"Got {len(host_config)} host config entries from {len(self._hosts)} hosts")
        self._layout()

    # Settings and engines.

    def _key_path(self, name: str, key: _Key) -> Optional[str]:
        """A key's file: the path given (checked), or a private temporary file holding the
        key given as bytes."""
        if key is None:
            return None
        if isinstance(key, bytes):
            path = self._key_files.get(key)
            if path is None:
                fd, path = tempfile.mkstemp(prefix="fleetsh-pssh-key-")
                try:
                    os.fchmod(fd, 0o600)
                    os.write(fd, key)
                finally:
                    os.close(fd)
                self._key_files[key] = path
            return path
        if isinstance(key, (str, os.PathLike)):
            path = os.path.normpath(os.path.expanduser(os.fspath(key)))
            if not os.path.exists(path):
                raise PKeyFileError(
                    "File %s does not exist. Please use either absolute or relative to user "
                    "directory paths like '~/.ssh/my_key' for %s parameter" % (path, name),
                    path)
            return path
        raise TypeError(
            f"{name} must be a key file's path (str) or the key (bytes), "
            f"got {type(key).__name__}")

    def _settings(self, index: int) -> _Settings:
        """Host ``index``'s effective settings."""
        cfg = self.host_config[index] if self.host_config is not None else None
        if cfg is not None and not isinstance(cfg, HostConfig):
            raise HostConfigError(
                f"host_config[{index}] is a {type(cfg).__name__}, not a HostConfig")

        def pick(name: str, own: Any) -> Any:
            value = getattr(cfg, name, None) if cfg is not None else None
            return own if value is None else value

        s = _Settings()
        s.user = pick("user", self.user) or getpass.getuser()
        s.port = pick("port", self.port) or 22
        s.password = pick("password", self.password)
        s.pkey = self.pkey
        if cfg is not None and cfg.private_key is not None:
            s.pkey = self._key_path("private_key", cfg.private_key)
        s.allow_agent = pick("allow_agent", self.allow_agent)
        s.alias = cfg.alias if cfg is not None else None
        s.num_retries = pick("num_retries", self.num_retries)
        s.retry_delay = pick("retry_delay", self.retry_delay)
        s.timeout = pick("timeout", self.timeout)
        s.identity_auth = pick("identity_auth", self.identity_auth)
        s.proxy_host = pick("proxy_host", self.proxy_host)
        s.proxy_port = pick("proxy_port", self.proxy_port)
        s.proxy_user = pick("proxy_user", self.proxy_user)
        s.proxy_password = pick("proxy_password", self.proxy_password)
        s.proxy_pkey = self.proxy_pkey
        if cfg is not None and cfg.proxy_pkey is not None:
            s.proxy_pkey = self._key_path("proxy_pkey", cfg.proxy_pkey)
        s.keepalive_seconds = pick("keepalive_seconds", self.keepalive_seconds)
        s.cert_file = pick("cert_file", self.cert_file)
        s.forward_ssh_agent = bool(
            (cfg.forward_ssh_agent if cfg is not None else False) or self.forward_ssh_agent)
        if cfg is not None:
            if cfg.ipv6_only:
                raise InvalidAPIUseError(
                    f"host_config[{index}].ipv6_only=True: fleetsh cannot restrict "
                    "connections to IPv6 addresses")
            if cfg.gssapi_auth or cfg.gssapi_delegate_credentials \
                    or cfg.gssapi_server_identity or cfg.gssapi_client_identity:
                raise InvalidAPIUseError(
                    f"host_config[{index}].gssapi_auth: fleetsh has no GSS-API "
                    "authentication")
        if s.proxy_password is not None and s.proxy_password != s.password:
            raise InvalidAPIUseError(
                "proxy_password: fleetsh uses one password for the proxy host and the hosts; "
                "give the proxy the hosts' password, or a key (proxy_pkey)")
        return s

    def _engine_key(self, s: _Settings) -> tuple[Any, ...]:
        jump = None
        if s.proxy_host:
            jump = _core.target_of(
                s.proxy_user or s.user, s.proxy_host, s.proxy_port or s.port)
        return (s.password, s.pkey, s.proxy_pkey, bool(s.allow_agent), bool(s.identity_auth),
                s.cert_file, jump, s.timeout, s.num_retries, s.keepalive_seconds or None,
                s.forward_ssh_agent)

    def _engine(self, key: tuple[Any, ...]) -> fleetsh.Engine:
        """The engine for settings ``key`` (built once)."""
        engine = self._engines.get(key)
        if engine is not None:
            return engine
        (password, pkey, proxy_pkey, agent, identity_auth, cert_file, jump, timeout,
         num_retries, keepalive, forward) = key
        kwargs: dict[str, Any] = dict(
            agent=agent,
            fanout=self.pool_size,
            retries=max(0, num_retries - 1),
            forward_agent=forward,
        )
        identity: Optional[list[str]] = None
        if pkey is not None or proxy_pkey is not None:
            identity = [k for k in (pkey, proxy_pkey) if k is not None]
            if pkey is None and identity_auth:
                home = os.path.expanduser("~/.ssh")
                identity += [os.path.join(home, name) for name in _DEFAULT_IDENTITIES
                             if os.path.isfile(os.path.join(home, name))]
        elif not identity_auth:
            identity = []
        if identity is not None:
            kwargs["identity"] = list(dict.fromkeys(identity))
        if cert_file is not None:
            kwargs["certificate"] = cert_file
        if jump is not None:
            kwargs["jump"] = jump
        if timeout is not None:
            kwargs["connect_timeout"] = timeout
        if keepalive:
            kwargs["keepalive_interval"] = keepalive
        if password is not None:
            kwargs["password"] = password
            kwargs["passphrase"] = password
        if self.known_hosts is not None:
            kwargs["known_hosts"] = self.known_hosts
        if self.host_key_check is not None:
            kwargs["host_key_check"] = self.host_key_check
        engine = fleetsh.Engine(**kwargs)
        self._engines[key] = engine
        return engine

    def _layout(self) -> None:
        """Places every host in a group (one engine and connected fleet), keeping the
        connected fleets of groups that do not change."""
        old = {(id(g.engine), tuple(g.targets)): g for g in self._groups}
        slots: dict[tuple[tuple[Any, ...], int], _core.Group] = {}
        members: dict[int, set[str]] = {}
        order: list[_core.Group] = []
        place: list[tuple[_core.Group, int]] = []
        for index, host in enumerate(self._hosts):
            s = self._settings(index)
            key = self._engine_key(s)
            target = _core.target_of(s.user, host, s.port)
            layer = 0
            for _ in range(len(self._hosts) + 1):
                group = slots.get((key, layer))
                if group is None or target not in members[id(group)]:
                    break
                layer += 1
            if group is None:
                group = _core.Group(self._engine(key), {"retry_delay": s.retry_delay})
                slots[(key, layer)] = group
                members[id(group)] = set()
                order.append(group)
            members[id(group)].add(target)
            place.append((group, len(group.targets)))
            group.targets.append(target)
            group.indices.append(index)
        actual: dict[int, _core.Group] = {}
        for i, group in enumerate(order):
            previous = old.pop((id(group.engine), tuple(group.targets)), None)
            if previous is not None:
                previous.indices = group.indices
                previous.run_options = group.run_options
                order[i] = previous
            actual[id(group)] = order[i]
        for group in old.values():
            group.close()
        self._place = [(actual[id(group)], fi) for group, fi in place]
        self._groups[:] = order

    @property
    def hosts(self) -> list[str]:
        """The host list. Assigning a new one (any iterable but a string) keeps the open
        connections of each group of hosts sharing an engine whose list is unchanged; the
        hosts of a group that changed reconnect at their next command (parallel-ssh keeps
        every host whose position in the list is unchanged)."""
        return self._hosts

    @hosts.setter
    def hosts(self, hosts: Iterable[str]) -> None:
        new = _core.as_list(hosts)
        if self.host_config is not None and len(self.host_config) != len(new):
            raise ValueError(
                "Host config entries must match number of hosts if provided. "
                f"Got {len(self.host_config)} host config entries from {len(new)} hosts")
        self._hosts = new
        self._layout()

    def _client_for(self, index: int) -> Any:
        """The SSHClient standing for host ``index`` (HostOutput.client)."""
        from .single import SSHClient

        return SSHClient._bound(self, index)

    def _alias(self, index: int) -> Optional[str]:
        cfg = self.host_config[index] if self.host_config is not None else None
        return cfg.alias if cfg is not None else None

    # Connecting.

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidAPIUseError("the client was closed")

    def _connect(self, indices: Sequence[int]) -> dict[int, Optional[BaseException]]:
        """Connects the hosts (those not connected yet) and returns each one's failure, or
        None."""
        self._check_open()
        by_group: dict[int, tuple[_core.Group, list[tuple[int, int]]]] = {}
        for index in indices:
            group, fi = self._place[index]
            by_group.setdefault(id(group), (group, []))[1].append((index, fi))
        runs = [(items, group.fleet().connect_all()) for group, items in by_group.values()]
        failures: dict[int, Optional[BaseException]] = {}
        for items, run in runs:
            results = {r.index: r for r in run.join().results}
            for index, fi in items:
                result = results.get(fi)
                if result is None:
                    failures[index] = SSHError("no connection result for host %s", index)
                else:
                    failures[index] = exception_for(result)
        return failures

    def connect_auth(self) -> list[Any]:
        """Connects and authenticates every host, running nothing.

        Returns a list of greenlets (gevent's, when it can be imported) or tasks, one per
        host: joining one (``gevent.joinall(..., raise_error=True)``, ``.get()``) raises the
        host's failure."""
        self._check_open()
        tasks: list[Any] = []
        collectors: dict[int, _core.Results] = {}
        for index in range(len(self._hosts)):
            group, fi = self._place[index]
            collector = collectors.get(id(group))
            if collector is None:
                collector = _core.Results(group.fleet().connect_all())
                collectors[id(group)] = collector
            tasks.append(_core.spawn(_waiter(collector, fi, None)))
        return tasks

    # Commands.

    def _commands(
        self,
        command: str,
        host_args: Any,
        indices: Sequence[int],
    ) -> dict[int, str]:
        if not isinstance(command, str):
            raise TypeError(f"command must be a str, got {command!r}")
        if not host_args:
            return {index: command for index in indices}
        commands = {}
        for index in indices:
            try:
                args = host_args[index]
            except IndexError:
                raise HostArgumentError(
                    "Number of host arguments provided does not match number of hosts "
                    f"(host_args has {len(host_args)} items for {len(self._hosts)} hosts)"
                ) from None
            commands[index] = command % args
        return commands

    def run_command(
        self,
        command: str,
        sudo: bool = False,
        user: Optional[str] = None,
        stop_on_errors: bool = True,
        use_pty: bool = False,
        host_args: Optional[Sequence[Any]] = None,
        shell: Optional[str] = None,
        encoding: str = "utf-8",
        read_timeout: Optional[float] = None,
        timeout: Optional[float] = None,
        return_list: bool = True,
        *,
        sudo_password: Optional[str] = None,
        stdin: Union[bytes, str, None] = None,
        command_timeout: Optional[float] = None,
        env: Optional[Mapping[str, str]] = None,
    ) -> list[HostOutput]:
        """Runs ``command`` on every host and returns once it has started everywhere.

        Hosts are connected first (the connections stay open for the next commands). A host
        that cannot be connected or authenticated raises its exception here
        (UnknownHostError, ConnectionError, AuthenticationError, HostKeyError, ProxyError,
        ...: the first failing host's, in host order) after the command has started on the
        other hosts, whose output ``get_last_output()`` then returns. With
        ``stop_on_errors=False`` nothing is raised: that host's HostOutput has the exception
        in ``exception``.

        Args:
            command: the command line.
            sudo: run it through ``sudo`` as root (see below).
            user: run it as this user through ``sudo -u``.
            stop_on_errors: raise the first connection failure (True) or keep it in the
                host's output.
            use_pty: give the command a terminal (stderr is then merged into stdout).
            host_args: per-host arguments: host ``i`` runs ``command % host_args[i]`` (a
                tuple, a single value or a dict each). Fewer items than hosts raises
                HostArgumentError; extra items are ignored, as in parallel-ssh.
            shell: run the command as ``<shell> '<command>'`` (``shell="bash -c"``).
            encoding: decodes the output (``HostOutput.encoding``). Commands are sent as
                UTF-8: a command that this encoding would encode otherwise raises
                InvalidAPIUseError.
            read_timeout: seconds each reading of a host's stdout or stderr may take (see
                HostOutput), raising Timeout past it.
            timeout: parallel-ssh's former name of ``read_timeout``, used when
                ``read_timeout`` is not given.
            return_list: must be True (output is always a list, as in parallel-ssh 2.x).
            sudo_password: the password sudo asks for (fleetsh's addition; default
                FLEETSH_SUDO_PASSWORD). Without either, a command with ``sudo``/``user``
                waits for its input instead: write the password as the first line of each
                host's ``stdin`` and flush it, as parallel-ssh's documentation shows. It
                starts once every host's input is flushed, or once any of its output, exit
                codes or ``join`` is asked for (with no input: for a sudo needing no
                password).
            stdin: input sent to every host's command (fleetsh's addition).
            command_timeout: seconds the command may run on each host before it is stopped
                and that host's ``exception`` becomes Timeout (fleetsh's addition).
            env: environment variables for the command (fleetsh's addition; the server
                must accept them).

        Returns:
            One HostOutput per host, in host order.

        Raises:
            HostArgumentError: fewer ``host_args`` than hosts.
            TypeError, KeyError: ``command % host_args[i]`` failed.
            ValueError: ``return_list=False``.
            InvalidAPIUseError: a command ``encoding`` cannot send (see above).
            UnknownHostError, ConnectionError, AuthenticationError, ...: the first host that
                could not be connected, with ``stop_on_errors``.
        """
        return self._run(
            range(len(self._hosts)), command, sudo=sudo, user=user,
            stop_on_errors=stop_on_errors, use_pty=use_pty, host_args=host_args,
            shell=shell, encoding=encoding,
            read_timeout=read_timeout if read_timeout is not None else timeout,
            return_list=return_list, sudo_password=sudo_password, stdin=stdin,
            command_timeout=command_timeout, env=env)

    def _run(
        self,
        indices: Sequence[int],
        command: str,
        *,
        sudo: bool,
        user: Optional[str],
        stop_on_errors: bool,
        use_pty: bool,
        host_args: Any,
        shell: Optional[str],
        encoding: str,
        read_timeout: Optional[float],
        return_list: bool,
        sudo_password: Optional[str],
        stdin: Union[bytes, str, None],
        command_timeout: Optional[float],
        env: Optional[Mapping[str, str]],
    ) -> list[HostOutput]:
        self._check_open()
        if not return_list:
            raise ValueError(
                "return_list=False: output is always a list of HostOutput, one per host")
        if read_timeout is not None:
            _check_number("read_timeout", read_timeout, 0)
        if command_timeout is not None:
            _check_number("command_timeout", command_timeout, 0)
        if user is not None and not isinstance(user, str):
            raise TypeError(f"user must be a str, got {user!r}")
        if shell is not None and not isinstance(shell, str):
            raise TypeError(f"shell must be a str, got {shell!r}")
        "".encode(encoding)  # an unknown encoding raises LookupError naming it
        commands = self._commands(command, host_args, indices)
        if shell:
            commands = {i: f"{shell} {shlex.quote(c)}" for i, c in commands.items()}
        for c in commands.values():
            if c.encode(encoding, "replace") != c.encode("utf-8"):
                raise InvalidAPIUseError(
                    f"encoding={encoding!r}: fleetsh sends commands as UTF-8, and this "
                    "command is not the same in that encoding; decode output with it by "
                    "setting HostOutput.encoding instead")
        as_user: Union[bool, str, None] = user if user else (True if sudo else None)
        deferred = (as_user is not None and sudo_password is None and stdin is None
                    and _SUDO_PASSWORD_VAR not in os.environ)
        failures = self._connect(indices)
        outputs: list[HostOutput] = []
        items: list[tuple[int, _Source, str]] = []
        first: Optional[BaseException] = None
        for index in indices:
            host = self._hosts[index]
            alias = self._alias(index)
            failure = failures.get(index)
            if failure is not None:
                outputs.append(HostOutput(host, None, None, None, alias=alias,
                                          exception=failure, encoding=encoding,
                                          read_timeout=read_timeout))
                first = first or failure
                continue
            group, fi = self._place[index]
            source = _Source(group.targets[fi])
            full = commands[index]
            if as_user is not None:
                full = _sudo_prefix(as_user) + shlex.quote(full)
            output = HostOutput(
                host, Channel(source), Stdin(source, encoding), self._client_for(index),
                alias=alias, encoding=encoding, read_timeout=read_timeout,
                fully_qualified_command=full.encode(encoding))
            output._source = source
            outputs.append(output)
            items.append((index, source, commands[index]))
        if items:
            launch = _Launch(self, items, dict(
                sudo=as_user, sudo_password=sudo_password, stdin=stdin, pty=bool(use_pty),
                command_timeout=command_timeout, env=env), deferred)
            if deferred:
                for _, source, _ in items:
                    source.pending = launch
            else:
                launch.start()
        self._last_output = outputs
        if stop_on_errors and first is not None:
            raise first
        return outputs

    def get_last_output(self, cmds: Any = None) -> Optional[list[HostOutput]]:
        """The output of the last ``run_command`` (the same HostOutput objects), or None
        before any. ``cmds`` is accepted for parallel-ssh's signature and unused."""
        return self._last_output

    def _check_output(self, output: Any) -> Optional[list[HostOutput]]:
        if output is None:
            return self.get_last_output()
        if not isinstance(output, list):
            raise ValueError("Unexpected output object type")
        return output

    def join(
        self,
        output: Optional[list[HostOutput]] = None,
        consume_output: bool = False,
        timeout: Optional[float] = None,
    ) -> None:
        """Waits until the command has finished on every host of ``output`` (default: the
        last run_command's). Output stays readable afterwards.

        Args:
            output: the HostOutput list to wait for.
            consume_output: read (and drop) every host's remaining output, logging each line
                to the ``pssh.host_logger`` logger (see ``utils.enable_host_logger``).
            timeout: seconds to wait for all of them in total.

        Raises:
            Timeout: ``timeout`` passed with commands still running: ``args`` are
                ``(message, timeout, finished_output, unfinished_output)``. The commands
                keep running.
            ValueError: ``output`` is not a list.
        """
        output = self._check_output(output)
        if output is None:
            logger.info("No last output to join on - run_command has never been run.")
            return
        if timeout is not None:
            _check_number("timeout", timeout, 0)
        deadline = _core.deadline_of(timeout)
        finished: list[HostOutput] = []
        unfinished: list[HostOutput] = []
        for host_out in output:
            source = getattr(host_out, "_source", None)
            pump = source.started() if source is not None else None
            if pump is None or pump.wait_finished(source.slot, deadline):
                finished.append(host_out)
            else:
                unfinished.append(host_out)
        if unfinished:
            raise Timeout("Timeout of %s sec(s) reached with commands still running",
                          timeout, finished, unfinished)
        if consume_output:
            for host_out in output:
                for stream in (host_out.stdout, host_out.stderr):
                    for _ in stream or ():
                        pass

    def finished(self, output: Optional[list[HostOutput]] = None) -> bool:
        """Whether every command of ``output`` (default: the last run_command's) has
        finished, checked without waiting."""
        output = self._check_output(output)
        if output is None:
            return True
        for host_out in output:
            source = getattr(host_out, "_source", None)
            if source is not None and source.result() is None:
                return False
        return True

    def open_shell(self, encoding: str = "utf-8", read_timeout: Optional[float] = None) -> Any:
        """Not supported: fleetsh has no interactive shells (use run_command)."""
        raise NotImplementedError(
            "open_shell: fleetsh has no interactive shells; run the commands with run_command")

    def run_shell_commands(self, shells: Any, commands: Any) -> Any:
        """Not supported: fleetsh has no interactive shells (use run_command)."""
        raise NotImplementedError(
            "run_shell_commands: fleetsh has no interactive shells; use run_command")

    def join_shells(self, shells: Any, timeout: Optional[float] = None) -> Any:
        """Not supported: fleetsh has no interactive shells (use run_command)."""
        raise NotImplementedError(
            "join_shells: fleetsh has no interactive shells; use run_command and join")

    # Copies.

    def _per_host(
        self,
        first: str,
        second: str,
        copy_args: Any,
        indices: Sequence[int],
        default: Callable[[int], tuple[str, str]],
    ) -> dict[int, tuple[str, str]]:
        jobs = {}
        for index in indices:
            if copy_args:
                try:
                    args = copy_args[index]
                except IndexError:
                    raise HostArgumentError(
                        "Number of per-host copy arguments provided does not match number of "
                        f"hosts (copy_args has {len(copy_args)} items for "
                        f"{len(self._hosts)} hosts)") from None
                jobs[index] = (first % args, second % args)
            else:
                jobs[index] = default(index)
        return jobs

    def _copy_to(
        self,
        jobs: dict[int, tuple[str, str]],
        recurse: bool,
        error: type,
        make_parents: bool,
    ) -> dict[int, Any]:
        """Uploads ``jobs`` (host index -> (local path, remote path)) as parallel-ssh's
        copy_file does: remote parent directories created, a local directory's entries
        copied into the remote directory of that name. Returns a task per host."""
        self._check_open()
        tasks: dict[int, Any] = {}
        plans: dict[int, tuple[tuple[str, ...], str, Optional[str], bool]] = {}
        for index, (local, remote) in jobs.items():
            if os.path.isdir(local):
                if not recurse:
                    tasks[index] = _core.failed(ValueError(
                        "Recurse must be true if local_file is a directory."))
                    continue
                sources = tuple(sorted(os.path.join(local, n) for n in os.listdir(local)))
                plans[index] = (sources, remote, remote, True)
            elif not os.path.exists(local):
                tasks[index] = _core.failed(FileNotFoundError(
                    errno.ENOENT, os.strerror(errno.ENOENT), local))
            else:
                parent = posixpath.dirname(remote) if make_parents else ""
                plans[index] = ((local,), remote, parent or None, False)
        # Remote directories first, over SFTP as parallel-ssh makes them: upload empty local
        # directories into the existing base ("." or "/"), which merges into what exists.
        made: dict[tuple[int, str], tuple[_core.Group, list[tuple[int, int]]]] = {}
        for index, (_, _, make, _) in plans.items():
            if make:
                group, fi = self._place[index]
                made.setdefault((id(group), make), (group, []))[1].append((index, fi))
        pending = []
        for (_, directory), (group, items) in made.items():
            tmp, top, base = _core.local_skeleton(directory)
            if tmp is None:
                continue
            try:
                run = group.start(lambda fleet: fleet.copy_to(
                    top, base, hosts=[fi for _, fi in items], recursive=True,
                    retry_delay=group.run_options["retry_delay"]))
            except BaseException:
                _core.remove_tree(tmp)
                raise
            pending.append((tmp, items, run))
        for tmp, items, run in pending:
            try:
                results = {r.index: r for r in run.join().results}
            finally:
                _core.remove_tree(tmp)
            for index, fi in items:
                result = results.get(fi)
                failure = exception_for(result, error) if result is not None else None
                if failure is not None:
                    tasks[index] = _core.failed(failure)
                    plans.pop(index, None)
        batches: dict[tuple[Any, ...], tuple[_core.Group, list[tuple[int, int]]]] = {}
        for index, (sources, dest, _, _) in plans.items():
            group, fi = self._place[index]
            batches.setdefault((id(group), sources, dest), (group, []))[1].append((index, fi))
        for (_, sources, dest), (group, items) in batches.items():
            if not sources:
                for index, _ in items:
                    tasks[index] = _core.succeeded()
                continue
            local: Any = list(sources) if len(sources) > 1 or plans[items[0][0]][3] \
                else sources[0]
            run = group.start(lambda fleet: fleet.copy_to(
                local, dest, hosts=[fi for _, fi in items], recursive=recurse,
                retry_delay=group.run_options["retry_delay"]))
            collector = _core.Results(run)
            for index, fi in items:
                tasks[index] = _core.spawn(_waiter(collector, fi, error))
        return tasks

    def _copy_from(
        self,
        jobs: dict[int, tuple[str, str]],
        recurse: bool,
        error: type,
    ) -> dict[int, Any]:
        """Downloads ``jobs`` (host index -> (remote path, local path)): each host's file
        lands in a temporary directory beside its local path, then is renamed to it (a
        directory is merged into an existing one). Returns a task per host."""
        self._check_open()
        tasks: dict[int, Any] = {}
        batches: dict[tuple[Any, ...], tuple[_core.Group, list[tuple[int, int, str]]]] = {}
        for index, (remote, local) in jobs.items():
            group, fi = self._place[index]
            parent = os.path.dirname(os.path.abspath(local))
            key = (id(group), remote, parent)
            batches.setdefault(key, (group, []))[1].append((index, fi, local))
        for (_, remote, parent), (group, items) in batches.items():
            try:
                os.makedirs(parent, exist_ok=True)
            except OSError as ex:
                for index, _, _ in items:
                    tasks[index] = _core.failed(ex)
                continue
            tmp = tempfile.mkdtemp(prefix=".fleetsh-pssh-", dir=parent)
            self._tmpdirs.add(tmp)
            name = posixpath.basename(remote.rstrip("/")) or remote
            moves = {fi: (local, fleetsh.host_dir_name(group.targets[fi]))
                     for _, fi, local in items}
            move_failures: dict[int, BaseException] = {}
            left = [len(items)]

            def on_result(result: Any, tmp: str = tmp, moves: Any = moves, name: str = name,
                          move_failures: Any = move_failures, left: list[int] = left) -> None:
                local, host_dir = moves[result.index]
                try:
                    if result.error_kind is None:
                        _core.merge_move(os.path.join(tmp, host_dir, name), local)
                except OSError as ex:
                    move_failures[result.index] = ex
                finally:
                    _core.remove_tree(os.path.join(tmp, host_dir))
                    left[0] -= 1
                    if left[0] <= 0:
                        _core.remove_tree(tmp)
                        self._tmpdirs.discard(tmp)

            try:
                run = group.start(lambda fleet: fleet.copy_from(
                    remote, tmp, hosts=[fi for _, fi, _ in items], recursive=recurse,
                    retry_delay=group.run_options["retry_delay"]))
            except BaseException:
                _core.remove_tree(tmp)
                self._tmpdirs.discard(tmp)
                raise
            collector = _core.Results(run, on_result)
            for index, fi, _ in items:
                tasks[index] = _core.spawn(_waiter(collector, fi, error, move_failures))
        return tasks

    def copy_file(
        self,
        local_file: str,
        remote_file: str,
        recurse: bool = False,
        copy_args: Optional[Sequence[Any]] = None,
    ) -> list[Any]:
        """Copies a local file (a directory with ``recurse``) to every host over SFTP.

        Remote parent directories that do not exist are created (over SFTP, as parallel-ssh
        does), and a directory is copied into the remote directory of that name, merging
        with what it holds. The copies start at once; the returned greenlets (gevent's when
        it can be imported, else tasks with the same ``get``/``join``/``successful``/
        ``exception``/``value``) wait for each host's: ``gevent.joinall(cmds,
        raise_error=True)`` raises the first failure.

        Args:
            local_file: the local path.
            remote_file: the remote path (relative to the login directory, or absolute).
            recurse: copy a directory and everything in it.
            copy_args: per-host arguments: host ``i`` copies ``local_file % copy_args[i]``
                to ``remote_file % copy_args[i]``; fewer items than hosts raises
                HostArgumentError.

        Each greenlet raises, when joined: ValueError (a directory without ``recurse``),
        FileNotFoundError (no such local file), SFTPIOError (the transfer failed), or the
        host's connection failure (ConnectionError, AuthenticationError, ...).
        """
        jobs = self._per_host(local_file, remote_file, copy_args, range(len(self._hosts)),
                              lambda i: (local_file, remote_file))
        tasks = self._copy_to(jobs, recurse, SFTPIOError, make_parents=True)
        return [tasks[i] for i in range(len(self._hosts))]

    def copy_remote_file(
        self,
        remote_file: str,
        local_file: str,
        recurse: bool = False,
        suffix_separator: str = "_",
        copy_args: Optional[Sequence[Any]] = None,
        encoding: str = "utf-8",
    ) -> list[Any]:
        """Copies a remote file (a directory with ``recurse``) from every host over SFTP, to
        ``<local_file><suffix_separator><host>`` (``myfile_host1``), or to ``local_file %
        copy_args[i]`` with ``copy_args``. Local parent directories are created.

        Returns greenlets as copy_file does; each raises, when joined, SFTPIOError (no such
        remote file, a directory without ``recurse``, a failed transfer) or the host's
        connection failure. ``encoding`` is accepted and unused (paths are UTF-8).
        """
        jobs = self._per_host(
            remote_file, local_file, copy_args, range(len(self._hosts)),
            lambda i: (remote_file, suffix_separator.join([local_file, self._hosts[i]])))
        tasks = self._copy_from(jobs, recurse, SFTPIOError)
        return [tasks[i] for i in range(len(self._hosts))]

    def scp_send(
        self,
        local_file: str,
        remote_file: str,
        recurse: bool = False,
        copy_args: Optional[Sequence[Mapping[str, str]]] = None,
    ) -> list[Any]:
        """Copies a local file to every host, as parallel-ssh's scp_send (fleetsh transfers
        it over SFTP). A ``remote_file`` ending in ``/`` receives the file under its own
        name; remote parent directories are created only with ``recurse`` (as
        parallel-ssh). ``copy_args``: per host, a dict with ``local_file`` and
        ``remote_file``. Returns greenlets as copy_file; failed transfers raise SCPError."""
        def default(i: int) -> tuple[str, str]:
            return local_file, remote_file

        if copy_args is not None:
            jobs = self._per_host("%(local_file)s", "%(remote_file)s", copy_args,
                                  range(len(self._hosts)), default)
        else:
            jobs = {i: default(i) for i in range(len(self._hosts))}
        for index, (local, remote) in list(jobs.items()):
            if remote.endswith("/") and not os.path.isdir(local):
                jobs[index] = (local, remote + os.path.basename(local))
        tasks = self._copy_to(jobs, recurse, SCPError, make_parents=recurse)
        return [tasks[i] for i in range(len(self._hosts))]

    def scp_recv(
        self,
        remote_file: str,
        local_file: str,
        recurse: bool = False,
        copy_args: Optional[Sequence[Mapping[str, str]]] = None,
        suffix_separator: str = "_",
    ) -> list[Any]:
        """Copies a remote file from every host to ``<local_file><suffix_separator><host>``,
        as parallel-ssh's scp_recv (fleetsh transfers it over SFTP). ``copy_args``: per host,
        a dict with ``remote_file`` and ``local_file``. Returns greenlets as copy_file;
        failed transfers raise SCPError."""
        if copy_args is not None:
            jobs = self._per_host("%(remote_file)s", "%(local_file)s", copy_args,
                                  range(len(self._hosts)), lambda i: ("", ""))
        else:
            jobs = {i: (remote_file, suffix_separator.join([local_file, host]))
                    for i, host in enumerate(self._hosts)}
        tasks = self._copy_from(jobs, recurse, SCPError)
        return [tasks[i] for i in range(len(self._hosts))]

    # Life cycle.

    def close(self) -> None:
        """Disconnects every host and removes the temporary files the client made (keys
        given as bytes, unfinished downloads). fleetsh's addition: parallel-ssh disconnects
        when the client is garbage collected, which this client also does."""
        self._closed = True
        self._finalizer()

    def __enter__(self) -> "ParallelSSHClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<fleetsh.compat.pssh ParallelSSHClient {len(self._hosts)} hosts>"


def _waiter(
    collector: _core.Results,
    fleet_index: int,
    error: Optional[type],
    extra_failures: Optional[dict[int, BaseException]] = None,
) -> Callable[[Optional[float]], None]:
    """The work of a task waiting for one host's result in ``collector``: raises the host's
    failure (mapped with ``error`` for transfers), TimeoutError when ``timeout`` passes."""

    def work(timeout: Optional[float]) -> None:
        result = collector.wait(fleet_index, timeout)
        if result is None:
            if collector.ended:
                raise SSHError("no result for host %s", fleet_index)
            raise TimeoutError
        failure = exception_for(result, error)
        if failure is not None:
            raise failure
        if extra_failures and fleet_index in extra_failures:
            raise extra_failures[fleet_index]
        return None

    return work


def _cleanup(groups: list[_core.Group], key_files: dict[bytes, str], tmpdirs: set[str]) -> None:
    """Closes the connected fleets and removes the client's temporary files."""
    for group in list(groups):
        try:
            group.close()
        except Exception:  # closing is best effort: the process may be ending
            logger.debug("closing a connected fleet failed", exc_info=True)
    for path in list(key_files.values()):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    key_files.clear()
    for path in list(tmpdirs):
        _core.remove_tree(path)
    tmpdirs.clear()
