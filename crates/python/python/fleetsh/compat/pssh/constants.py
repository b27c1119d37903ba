"""parallel-ssh's default settings (``pssh.constants``)."""

DEFAULT_RETRIES = 3
"""Default number of connection attempts in all (fleetsh's ``retries`` is one fewer)."""

RETRY_DELAY = 5
"""Default seconds before retrying a failed connection."""
