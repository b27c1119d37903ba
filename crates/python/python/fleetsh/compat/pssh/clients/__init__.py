"""parallel-ssh's clients (``pssh.clients``): ParallelSSHClient and SSHClient, run by
fleetsh's engine."""

from .native import ParallelSSHClient, SSHClient

__all__ = ["ParallelSSHClient", "SSHClient"]
