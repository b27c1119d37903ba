"""Drop-in replacements of other Python SSH libraries, run by fleetsh's engine.

- ``fleetsh.compat.pssh``: parallel-ssh 2.x (``pssh``): change ``pssh`` to
  ``fleetsh.compat.pssh`` in the import lines (``from fleetsh.compat.pssh.clients import
  ParallelSSHClient``) and the rest of the code runs unchanged, but for host keys, which
  fleetsh checks (``ParallelSSHClient(..., host_key_check="off")`` does as parallel-ssh).
"""
