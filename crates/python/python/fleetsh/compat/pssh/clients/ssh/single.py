"""``pssh.clients.ssh.single``: fleetsh's SSHClient."""

from ..native.single import SSHClient

__all__ = ["SSHClient"]
