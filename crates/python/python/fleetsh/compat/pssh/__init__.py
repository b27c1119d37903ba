"""parallel-ssh 2.x's API (``pssh``), run by fleetsh's engine.

Change ``pssh`` to ``fleetsh.compat.pssh`` in the import lines and parallel-ssh code runs
unchanged::

    from fleetsh.compat.pssh.clients import ParallelSSHClient

    client = ParallelSSHClient(["web1", "web2"], user="deploy")
    output = client.run_command("uname")
    client.join(output)
    for host_out in output:
        for line in host_out.stdout:
            print(line)
        print(host_out.exit_code)

The modules are parallel-ssh's: ``clients`` (ParallelSSHClient, SSHClient; also as
``clients.native`` and ``clients.ssh``), ``config`` (HostConfig), ``exceptions``, ``output``
(HostOutput), ``constants``, ``utils`` (enable_host_logger, ...).

What differs from parallel-ssh:

- Host keys are checked against known_hosts (fleetsh's default, ``host_key_check="strict"``):
  parallel-ssh checks none. ``ParallelSSHClient(..., host_key_check="off")`` restores
  parallel-ssh's behaviour, ``"accept-new"`` learns new keys; ``known_hosts=`` names the file.
- No interactive shells (``open_shell`` raises NotImplementedError), no IPv6-only mode, no
  GSS-API authentication.
- A command's input is sent when it starts (``run_command(..., stdin=...)``): writing to
  ``HostOutput.stdin`` works only for sudo's password (see ``run_command``).
- ``copy_file`` and the other copies start at once and return greenlets that wait for them;
  ``scp_send``/``scp_recv`` go over SFTP.
- Errors are fleetsh's, mapped onto parallel-ssh's exceptions as ``exceptions`` describes.
"""

import logging

import fleetsh

__version__ = fleetsh.__version__
"""fleetsh's version."""

logger = logging.getLogger("pssh")
host_logger = logging.getLogger("pssh.host_logger")
logger.addHandler(logging.NullHandler())
host_logger.addHandler(logging.NullHandler())
