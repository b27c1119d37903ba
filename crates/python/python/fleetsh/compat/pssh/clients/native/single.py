"""``SSHClient``: parallel-ssh's single-host client, run by fleetsh's engine."""

from __future__ import annotations

import logging
import os
import posixpath
import warnings
import weakref
from collections.abc import Mapping
from typing import Any, Optional, Union

from ... import _core
from ...config import HostConfig
from ...constants import DEFAULT_RETRIES, RETRY_DELAY
from ...exceptions import InvalidAPIUseError, SCPError, SFTPIOError, Timeout
from ...output import Channel, HostOutput
from .parallel import ParallelSSHClient, _Key, _Path

__all__ = ["SSHClient", "logger"]

logger = logging.getLogger("pssh.clients.single")


class SSHClient:
    """One host, as parallel-ssh 2.x's ``pssh.clients.SSHClient``: connects (and
    authenticates) when built, then runs commands and copies files over that connection.

    It takes ParallelSSHClient's arguments for one host (see there for how each maps onto
    fleetsh, and for host keys: fleetsh checks them, ``host_key_check="off"`` does not).
    ``HostOutput.client`` of a ParallelSSHClient's output is an SSHClient for that host too.
    Unlike parallel-ssh's, its copies block and raise; they return None.
    """

    def __init__(
        self,
        host: str,
        user: Optional[str] = None,
        password: Optional[str] = None,
        port: Optional[int] = None,
        pkey: _Key = None,
        alias: Optional[str] = None,
        num_retries: int = DEFAULT_RETRIES,
        retry_delay: float = RETRY_DELAY,
        allow_agent: bool = True,
        timeout: Optional[float] = None,
        forward_ssh_agent: bool = False,
        proxy_host: Optional[str] = None,
        proxy_port: Optional[int] = None,
        proxy_pkey: _Key = None,
        proxy_user: Optional[str] = None,
        proxy_password: Optional[str] = None,
        _auth_thread_pool: bool = True,
        keepalive_seconds: Optional[int] = 60,
        identity_auth: bool = True,
        ipv6_only: bool = False,
        compress: bool = False,
        keyboard_interactive: bool = False,
        *,
        host_key_check: Optional[str] = None,
        known_hosts: Optional[_Path] = None,
        cert_file: Optional[_Path] = None,
    ) -> None:
        """Connects to ``host`` and authenticates.

        Args: as ParallelSSHClient's, for one host; ``alias`` is copied to its HostOutput.

        Raises:
            UnknownHostError, ConnectionError, AuthenticationError, HostKeyError,
            ProxyError, SessionError: the host could not be connected (as parallel-ssh).
            TypeError, ValueError, PKeyFileError, InvalidAPIUseError: as ParallelSSHClient.
        """
        if not isinstance(host, str) or not host:
            raise TypeError(f"host must be a non-empty str, got {host!r}")
        self._own: Optional[ParallelSSHClient] = None
        self._own = ParallelSSHClient(
            [host], user=user, password=password, port=port or 22, pkey=pkey,
            num_retries=num_retries, timeout=timeout, allow_agent=allow_agent,
            host_config=[HostConfig(alias=alias)], retry_delay=retry_delay,
            proxy_host=proxy_host, proxy_port=proxy_port, proxy_user=proxy_user,
            proxy_password=proxy_password, proxy_pkey=proxy_pkey,
            forward_ssh_agent=forward_ssh_agent, keepalive_seconds=keepalive_seconds,
            identity_auth=identity_auth, ipv6_only=ipv6_only, compress=compress,
            keyboard_interactive=keyboard_interactive, host_key_check=host_key_check,
            known_hosts=known_hosts, cert_file=cert_file, _auth_thread_pool=_auth_thread_pool)
        self._ref = weakref.ref(self._own)
        self._index = 0
        failure = self._own._connect([0])[0]
        if failure is not None:
            self._own.close()
            raise failure

    @classmethod
    def _bound(cls, parallel: ParallelSSHClient, index: int) -> "SSHClient":
        """The SSHClient of host ``index`` of a ParallelSSHClient (its HostOutput.client).

        It refers to the ParallelSSHClient weakly, so that output kept after the client is
        dropped does not keep the client's connections open; reading that output, waiting
        for it and closing its channel still work then, running commands does not."""
        client = cls.__new__(cls)
        client._own = None
        client._ref = weakref.ref(parallel)
        client._index = index
        return client

    @property
    def _parallel(self) -> ParallelSSHClient:
        parallel = self._ref()
        if parallel is None:
            raise InvalidAPIUseError(
                "the ParallelSSHClient of this host's output was garbage collected: keep a "
                "reference to it to run more commands")
        return parallel

    @property
    def host(self) -> str:
        """The host's name or address."""
        return self._parallel.hosts[self._index]

    @property
    def alias(self) -> Optional[str]:
        """The host's alias, or None."""
        return self._parallel._alias(self._index)

    @property
    def user(self) -> str:
        """The login user."""
        return self._parallel._settings(self._index).user

    @property
    def port(self) -> int:
        """The SSH port."""
        return self._parallel._settings(self._index).port

    def run_command(
        self,
        command: str,
        sudo: bool = False,
        user: Optional[str] = None,
        use_pty: bool = False,
        shell: Optional[str] = None,
        encoding: str = "utf-8",
        timeout: Optional[float] = None,
        read_timeout: Optional[float] = None,
        *,
        sudo_password: Optional[str] = None,
        stdin: Union[bytes, str, None] = None,
        command_timeout: Optional[float] = None,
        env: Optional[Mapping[str, str]] = None,
    ) -> HostOutput:
        """Runs ``command`` on the host and returns its HostOutput once it has started.

        The arguments are ParallelSSHClient.run_command's (``timeout`` is parallel-ssh's
        former name of ``read_timeout``). Raises the host's failure if it cannot be
        connected."""
        return self._parallel._run(
            [self._index], command, sudo=sudo, user=user, stop_on_errors=True,
            use_pty=use_pty, host_args=None, shell=shell, encoding=encoding,
            read_timeout=read_timeout if read_timeout is not None else timeout,
            return_list=True, sudo_password=sudo_password, stdin=stdin,
            command_timeout=command_timeout, env=env)[0]

    def wait_finished(self, host_output: HostOutput, timeout: Optional[float] = None) -> None:
        """Waits until the command of ``host_output`` has finished.

        Raises:
            Timeout: ``timeout`` seconds passed first.
            ValueError: ``host_output`` is not a HostOutput.
        """
        if not isinstance(host_output, HostOutput):
            raise ValueError("%s is not a HostOutput object" % (host_output,))
        source = host_output._source
        pump = source.started() if source is not None else None
        if pump is None:
            return
        if not pump.wait_finished(source.slot, _core.deadline_of(timeout)):
            raise Timeout("Timeout of %s sec(s) reached waiting for host %s",
                          timeout, host_output.host)

    def close_channel(self, channel: Channel) -> None:
        """Closes a command's channel: fleetsh stops a run's commands all at once, so the
        command stops (and its output ends) once every host's channel of the same
        run_command has been closed, as in parallel-ssh's loop over every host's output."""
        if channel is not None:
            channel.close()

    def get_exit_status(self, channel: Channel) -> Optional[int]:
        """The exit status of a command's channel, None until it has finished."""
        return None if channel is None else channel.get_exit_status()

    def finished(self, channel: Channel) -> Optional[bool]:
        """Whether the command of ``channel`` has finished (None without a channel)."""
        return None if channel is None else channel.eof()

    def copy_file(self, local_file: str, remote_file: str, recurse: bool = False,
                  sftp: Any = None) -> None:
        """Copies a local file (a directory with ``recurse``) to the host over SFTP,
        creating remote parent directories. Blocks until done.

        Raises:
            ValueError: a directory without ``recurse``.
            FileNotFoundError: no such local file.
            SFTPIOError: the transfer failed.
        """
        task = self._parallel._copy_to({self._index: (local_file, remote_file)}, recurse,
                                       SFTPIOError, make_parents=True)[self._index]
        return task.get()

    def copy_remote_file(self, remote_file: str, local_file: str, recurse: bool = False,
                         sftp: Any = None, encoding: str = "utf-8") -> None:
        """Copies a remote file (a directory with ``recurse``) from the host to exactly
        ``local_file`` over SFTP, creating local parent directories. Blocks until done.

        Raises:
            SFTPIOError: no such remote file, a directory without ``recurse``, or the
                transfer failed.
        """
        task = self._parallel._copy_from({self._index: (remote_file, local_file)}, recurse,
                                         SFTPIOError)[self._index]
        return task.get()

    def scp_send(self, local_file: str, remote_file: str, recurse: bool = False,
                 sftp: Any = None) -> None:
        """Copies a local file to the host (over SFTP; parallel-ssh uses SCP). A
        ``remote_file`` ending in ``/`` receives it under its own name. Blocks; failed
        transfers raise SCPError."""
        if remote_file.endswith("/") and not os.path.isdir(local_file):
            remote_file += os.path.basename(local_file)
        task = self._parallel._copy_to({self._index: (local_file, remote_file)}, recurse,
                                       SCPError, make_parents=recurse)[self._index]
        return task.get()

    def scp_recv(self, remote_file: str, local_file: str, recurse: bool = False,
                 sftp: Any = None, encoding: str = "utf-8") -> None:
        """Copies a remote file from the host to ``local_file`` (over SFTP; parallel-ssh
        uses SCP). A ``local_file`` ending in ``/`` receives it under its own name. Blocks;
        failed transfers raise SCPError."""
        if local_file.endswith("/") and not recurse:
            local_file += posixpath.basename(remote_file)
        task = self._parallel._copy_from({self._index: (remote_file, local_file)}, recurse,
                                         SCPError)[self._index]
        return task.get()

    def open_shell(self, encoding: str = "utf-8", read_timeout: Optional[float] = None) -> Any:
        """Not supported: fleetsh has no interactive shells (use run_command)."""
        raise NotImplementedError(
            "open_shell: fleetsh has no interactive shells; run the commands with run_command")

    def disconnect(self) -> None:
        """Deprecated and does nothing, as in parallel-ssh: use ``close()`` or ``with``."""
        warnings.warn("Deprecated and a no-op - use close() or a with block",
                      DeprecationWarning, stacklevel=2)

    def close(self) -> None:
        """Disconnects (fleetsh's addition; parallel-ssh disconnects when the client is
        garbage collected, which this client also does). The SSHClient of a
        ParallelSSHClient's host closes that whole client."""
        self._parallel.close()

    def __enter__(self) -> "SSHClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<fleetsh.compat.pssh SSHClient {self.host}>"
