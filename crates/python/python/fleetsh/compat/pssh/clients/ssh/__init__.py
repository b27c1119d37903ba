"""parallel-ssh's libssh-based clients, ``pssh.clients.ssh``: the same fleetsh clients as
``clients.native`` (``cert_file`` is honoured; GSS-API authentication is not supported and
raises InvalidAPIUseError)."""

from ..native import ParallelSSHClient, SSHClient

__all__ = ["ParallelSSHClient", "SSHClient"]
