"""The exceptions of ``fleetsh.compat.pssh``: the names of parallel-ssh's ``pssh.exceptions``.

Every name of parallel-ssh 2.x's module is here, with the same aliases
(``UnknownHostException`` is ``UnknownHostError``, ``ConnectionError`` is Python's built-in
``ConnectionError``, ...), so ``except`` clauses keep working after the import line changes.

A host's failure in fleetsh is a ``fleetsh.ErrorKind``; it becomes one of these exceptions as
follows (``exception_for`` does it):

==================================  =========================================================
fleetsh ErrorKind                   exception
==================================  =========================================================
RESOLVE                             UnknownHostError
CONNECT                             ConnectionError (Python's built-in, as in parallel-ssh)
CONNECT_TIMEOUT                     ConnectionTimeout: both ConnectionError and Timeout, since
                                    parallel-ssh raises ConnectionError for a TCP connect that
                                    times out and Timeout for a handshake that does
HANDSHAKE                           SessionError
HOSTKEY                             HostKeyError, a subclass of SSHError (parallel-ssh never
                                    checks host keys, so it has no exception of its own)
AUTH                                AuthenticationError
CHANNEL                             SessionError
COMMAND_TIMEOUT                     Timeout
DISCONNECTED                        ConnectionError
CANCELLED                           SessionError
TRANSFER                            SFTPIOError (copy_file, copy_remote_file) or SCPError
                                    (scp_send, scp_recv)
JUMP                                ProxyError
INTERNAL, SKIPPED, UNKNOWN, MISSING SSHError
==================================  =========================================================

Every exception made from a host's failure also carries ``host``, ``port``, ``error_kind``
(the ``fleetsh.ErrorKind``) and ``error_message`` attributes, and ``result`` (the host's
``fleetsh.HostResult``).
"""

from __future__ import annotations

from typing import Any, Optional

import fleetsh

__all__ = [
    "AuthenticationError",
    "AuthenticationException",
    "ConnectionError",
    "ConnectionErrorException",
    "ConnectionTimeout",
    "HostArgumentError",
    "HostArgumentException",
    "HostConfigError",
    "HostKeyError",
    "InvalidAPIUseError",
    "NoIPv6AddressFoundError",
    "PKeyFileError",
    "ProxyError",
    "SCPError",
    "SFTPError",
    "SFTPIOError",
    "SSHError",
    "SSHException",
    "SessionError",
    "ShellError",
    "Timeout",
    "UnknownHostError",
    "UnknownHostException",
    "exception_for",
]


class NoIPv6AddressFoundError(Exception):
    """An IPv6-only connection was asked for and the host has no IPv6 address.

    fleetsh has no IPv6-only mode: ``ParallelSSHClient(ipv6_only=True)`` raises
    InvalidAPIUseError instead, and this exception is never raised. It is kept so that
    ``except`` clauses naming it still work."""


class UnknownHostError(Exception):
    """The host name could not be resolved (fleetsh's ``resolve`` error)."""


UnknownHostException = UnknownHostError

# parallel-ssh's ConnectionError is Python's built-in one: keep it so, so that code catching
# either catches both.
ConnectionError = ConnectionError  # noqa: A001  (the name parallel-ssh exports)
ConnectionErrorException = ConnectionError


class AuthenticationError(Exception):
    """Every authentication method was refused (fleetsh's ``auth`` error)."""


AuthenticationException = AuthenticationError


class SSHError(Exception):
    """An SSH failure with no more specific exception."""


SSHException = SSHError


class HostKeyError(SSHError):
    """The host's key is unknown (with ``host_key_check="strict"``), changed or revoked
    (fleetsh's ``hostkey`` error).

    fleetsh checks host keys against known_hosts by default, which parallel-ssh never does:
    ``ParallelSSHClient(..., host_key_check="off")`` turns the check off."""


class HostArgumentError(Exception):
    """Per-host arguments (``host_args``, ``copy_args``) that do not fit the host list."""


HostArgumentException = HostArgumentError


class SessionError(Exception):
    """The SSH session failed after the connection: a refused channel or exec request, a
    failed handshake, a cancelled command (fleetsh's ``channel``, ``handshake`` and
    ``cancelled`` errors)."""


class SFTPError(Exception):
    """An SFTP transfer failed."""


class SFTPIOError(SFTPError):
    """An SFTP transfer failed reading or writing a file (fleetsh's ``transfer`` error)."""


class ProxyError(Exception):
    """The proxy host (fleetsh's jump host) could not be reached or authenticated, or refused
    the tunnel to the host (fleetsh's ``jump`` error)."""


class Timeout(Exception):
    """A timeout was reached: reading output (``read_timeout``), ``join(timeout=...)``, or a
    command over its ``command_timeout`` (fleetsh's ``command_timeout`` error).

    From ``join``, ``args`` are ``(message, timeout, finished_output, unfinished_output)`` as
    in parallel-ssh: ``ex.args[2]`` are the HostOutputs that finished, ``ex.args[3]`` those
    still running."""


class ConnectionTimeout(ConnectionError, Timeout):
    """The connection, handshake or authentication did not finish within the connect timeout
    (fleetsh's ``connect_timeout`` error). Both a ConnectionError and a Timeout, which are
    what parallel-ssh raises for a connect and a handshake that time out."""


class SCPError(Exception):
    """A transfer by ``scp_send`` or ``scp_recv`` failed (fleetsh transfers them over
    SFTP)."""


class PKeyFileError(Exception):
    """The private key file given as ``pkey`` does not exist."""


class ShellError(Exception):
    """Interactive shells failed. fleetsh has no interactive shells: ``open_shell`` raises
    NotImplementedError."""


class HostConfigError(Exception):
    """``host_config`` is not a list of HostConfig."""


class InvalidAPIUseError(Exception):
    """Arguments that cannot work together (``keyboard_interactive=True`` without a
    password), or an argument fleetsh cannot honour (the message names it)."""


_BY_KIND: dict[fleetsh.ErrorKind, type] = {
    fleetsh.ErrorKind.RESOLVE: UnknownHostError,
    fleetsh.ErrorKind.CONNECT: ConnectionError,
    fleetsh.ErrorKind.CONNECT_TIMEOUT: ConnectionTimeout,
    fleetsh.ErrorKind.HANDSHAKE: SessionError,
    fleetsh.ErrorKind.HOSTKEY: HostKeyError,
    fleetsh.ErrorKind.AUTH: AuthenticationError,
    fleetsh.ErrorKind.CHANNEL: SessionError,
    fleetsh.ErrorKind.COMMAND_TIMEOUT: Timeout,
    fleetsh.ErrorKind.DISCONNECTED: ConnectionError,
    fleetsh.ErrorKind.CANCELLED: SessionError,
    fleetsh.ErrorKind.TRANSFER: SFTPIOError,
    fleetsh.ErrorKind.JUMP: ProxyError,
}

_MESSAGES: dict[fleetsh.ErrorKind, str] = {
    fleetsh.ErrorKind.RESOLVE: "Unknown host %s:%s - %s",
    fleetsh.ErrorKind.CONNECT: "Error connecting to host '%s:%s' - %s",
    fleetsh.ErrorKind.CONNECT_TIMEOUT: "Timeout connecting to host '%s:%s' - %s",
    fleetsh.ErrorKind.HANDSHAKE: "Error establishing SSH session with host %s:%s - %s",
    fleetsh.ErrorKind.HOSTKEY: "Host key verification failed for %s:%s - %s",
    fleetsh.ErrorKind.AUTH: "Authentication error while connecting to %s:%s - %s",
    fleetsh.ErrorKind.CHANNEL: "Error opening a session on host %s:%s - %s",
    fleetsh.ErrorKind.COMMAND_TIMEOUT: "Command timed out on host %s:%s - %s",
    fleetsh.ErrorKind.DISCONNECTED: "Connection to host %s:%s lost - %s",
    fleetsh.ErrorKind.CANCELLED: "Command cancelled on host %s:%s - %s",
    fleetsh.ErrorKind.TRANSFER: "Error copying files on host %s:%s - %s",
    fleetsh.ErrorKind.JUMP: "Proxy error while connecting to %s:%s - %s",
}


def exception_for(result: Any, transfer_error: Optional[type] = None) -> Optional[Exception]:
    """The exception of a failed host's ``fleetsh.HostResult``, or None when it has no error
    (a command that ran and exited non-zero has none: see its exit code).

    Args:
        result: the host's result.
        transfer_error: the exception class for a failed transfer (default SFTPIOError).
    """
    kind = result.error_kind
    if kind is None:
        return None
    kind = fleetsh.ErrorKind(kind)
    cls = _BY_KIND.get(kind, SSHError)
    if kind == fleetsh.ErrorKind.TRANSFER and transfer_error is not None:
        cls = transfer_error
    message = _MESSAGES.get(kind, "Error on host %s:%s - %s")
    detail = result.error_message or kind.value
    ex = cls(message, result.host, result.port, detail)
    ex.host = result.host
    ex.port = result.port
    ex.error_kind = kind
    ex.error_message = result.error_message
    ex.result = result
    return ex
