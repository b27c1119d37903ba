"""parallel-ssh's default (libssh2-based) clients, ``pssh.clients.native``: here, fleetsh's
ParallelSSHClient and SSHClient."""

from .parallel import ParallelSSHClient
from .single import SSHClient, logger

__all__ = ["ParallelSSHClient", "SSHClient", "logger"]
