"""``pssh.clients.ssh.parallel``: fleetsh's ParallelSSHClient."""

from ..native.parallel import ParallelSSHClient

__all__ = ["ParallelSSHClient"]
