"""Per-host configuration for ``ParallelSSHClient(host_config=[...])``, as parallel-ssh's
``pssh.config``."""

from __future__ import annotations

from typing import Any, Optional, Union

from .exceptions import InvalidAPIUseError

__all__ = ["HostConfig"]

_Number = Union[int, float]



_SECRETS = ("password", "proxy_password", "private_key", "proxy_pkey")
"""HostConfig's settings that are never shown (repr, errors)."""

class HostConfig:
    """The settings of one host of a ParallelSSHClient, overriding the client's own.

    ``host_config`` is a list with one HostConfig per host, in the order of the host list. A
    setting left None takes the client's value. fleetsh honours user, port, password,
    private_key, allow_agent, alias, num_retries, retry_delay, timeout, identity_auth, the
    proxy settings, keepalive_seconds, cert_file, forward_ssh_agent and keyboard_interactive
    (see ParallelSSHClient for how each maps onto fleetsh); hosts whose settings differ in
    anything but user and port are served by separate fleetsh engines. ``compress`` and
    ``auth_thread_pool`` are accepted and do nothing; ``ipv6_only=True`` and the GSS-API
    settings raise InvalidAPIUseError when the client is built.
    """

    __slots__ = (
        "user", "port", "password", "private_key", "allow_agent", "alias", "num_retries",
        "retry_delay", "timeout", "identity_auth", "proxy_host", "proxy_port", "proxy_user",
        "proxy_password", "proxy_pkey", "keepalive_seconds", "ipv6_only", "cert_file",
        "auth_thread_pool", "gssapi_auth", "gssapi_server_identity", "gssapi_client_identity",
        "gssapi_delegate_credentials", "forward_ssh_agent", "compress", "keyboard_interactive",
    )

    def __init__(
        self,
        user: Optional[str] = None,
        port: Optional[int] = None,
        password: Optional[str] = None,
        private_key: Union[str, bytes, None] = None,
        allow_agent: Optional[bool] = None,
        alias: Optional[str] = None,
        num_retries: Optional[int] = None,
        retry_delay: Optional[_Number] = None,
        timeout: Optional[_Number] = None,
        identity_auth: Optional[bool] = None,
        proxy_host: Optional[str] = None,
        proxy_port: Optional[int] = None,
        proxy_user: Optional[str] = None,
        proxy_password: Optional[str] = None,
        proxy_pkey: Union[str, bytes, None] = None,
        keepalive_seconds: Optional[int] = None,
        ipv6_only: Optional[bool] = None,
        cert_file: Union[str, bytes, None] = None,
        auth_thread_pool: bool = True,
        gssapi_auth: bool = False,
        gssapi_server_identity: Optional[str] = None,
        gssapi_client_identity: Optional[str] = None,
        gssapi_delegate_credentials: bool = False,
        forward_ssh_agent: bool = False,
        compress: bool = False,
        keyboard_interactive: bool = False,
    ) -> None:
        """Keeps the settings, checking their types as parallel-ssh does.

        Args:
            user: login user.
            port: SSH port.
            password: password for password (and keyboard-interactive) authentication, also
                the passphrase of an encrypted ``private_key``.
            private_key: a private key file's path, or the key itself as bytes.
            allow_agent: use the ssh-agent.
            alias: the host's alias, copied to its HostOutput.
            num_retries: connection attempts in all (fleetsh's retries are one fewer).
            retry_delay: seconds between connection attempts.
            timeout: connect timeout in seconds.
            identity_auth: use the default key files under ``~/.ssh``.
            proxy_host: the proxy (fleetsh's jump host) to reach this host through.
            proxy_port: the proxy's SSH port.
            proxy_user: the proxy's login user.
            proxy_password: the proxy's password (must be the host's own password).
            proxy_pkey: the proxy's private key (offered to the host as well).
            keepalive_seconds: seconds between keepalives; 0 for none.
            ipv6_only: not supported (True raises InvalidAPIUseError when the client is
                built).
            cert_file: an OpenSSH user certificate for ``private_key``.
            auth_thread_pool: accepted and unused.
            gssapi_auth: not supported (True raises InvalidAPIUseError).
            gssapi_server_identity: not supported (a value raises InvalidAPIUseError).
            gssapi_client_identity: not supported (a value raises InvalidAPIUseError).
            gssapi_delegate_credentials: not supported (True raises InvalidAPIUseError).
            forward_ssh_agent: forward the ssh-agent to commands (fleetsh honours it, which
                parallel-ssh's native client does not).
            compress: accepted and unused (fleetsh does not compress).
            keyboard_interactive: accepted (fleetsh tries keyboard-interactive with the
                password by itself); needs ``password``.

        Raises:
            ValueError: a setting of the wrong type, naming it.
            InvalidAPIUseError: ``keyboard_interactive`` without ``password``.
        """
        self.user = user
        self.port = port
        self.password = password
        self.private_key = private_key
        self.allow_agent = allow_agent
        self.alias = alias
        self.num_retries = num_retries
        self.retry_delay = retry_delay
        self.timeout = timeout
        self.identity_auth = identity_auth
        self.proxy_host = proxy_host
        self.proxy_port = proxy_port
        self.proxy_user = proxy_user
        self.proxy_password = proxy_password
        self.proxy_pkey = proxy_pkey
        self.keepalive_seconds = keepalive_seconds
        self.ipv6_only = ipv6_only
        self.cert_file = cert_file
        self.auth_thread_pool = auth_thread_pool
        self.gssapi_auth = gssapi_auth
        self.gssapi_server_identity = gssapi_server_identity
        self.gssapi_client_identity = gssapi_client_identity
        self.gssapi_delegate_credentials = gssapi_delegate_credentials
        self.forward_ssh_agent = forward_ssh_agent
        self.compress = compress
        self.keyboard_interactive = keyboard_interactive
        if self.keyboard_interactive and not self.password:
            raise InvalidAPIUseError(
                "keyboard_interactive=True needs a password: none was given")
        self._sanity_checks()

    def _sanity_checks(self) -> None:
        """Raises ValueError naming the first setting of the wrong type."""
        kinds: dict[str, tuple[type, ...]] = {
            "user": (str,), "port": (int,), "password": (str,), "alias": (str,),
            "private_key": (str, bytes), "allow_agent": (bool,), "num_retries": (int,),
            "timeout": (int, float), "retry_delay": (int, float), "identity_auth": (bool,),
            "proxy_host": (str,), "proxy_port": (int,), "proxy_user": (str,),
            "proxy_password": (str,), "proxy_pkey": (str, bytes),
            "keepalive_seconds": (int,), "ipv6_only": (bool,), "cert_file": (str, bytes),
            "forward_ssh_agent": (bool,), "gssapi_auth": (bool,),
            "gssapi_server_identity": (str,), "gssapi_client_identity": (str,),
            "gssapi_delegate_credentials": (bool,), "compress": (bool,),
            "keyboard_interactive": (bool,),
        }
        for name, types in kinds.items():
            value: Any = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, types):
                expected = " or ".join(t.__name__ for t in types)
                # Only the type for secrets: a password or key must not reach a traceback.
                shown = (type(value).__name__ if name in _SECRETS else repr(value))
                raise ValueError(f"HostConfig {name} {shown} is not {expected}")

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in self.__slots__
            if name not in _SECRETS
            and getattr(self, name) not in (None, False)
        )
        return f"HostConfig({shown})"
