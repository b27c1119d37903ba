"""`echo hello` on every host of a hosts file with fleetsh's parallel-ssh compatibility layer.

parallel_ssh_echo.py with only its imports changed (`pssh.` to `fleetsh.compat.pssh.`). Run by
`fleetsh-bench python`. Arguments: HOSTS_FILE (host:port per line) USER KEY FANOUT
CONNECT_TIMEOUT_S COMMAND_TIMEOUT_S COMMAND. Prints one JSON line per host: {"host", "exit_code", "stdout", "error"}.
Unlike parallel-ssh, the compatibility layer checks host keys, by default against
~/.ssh/known_hosts: the harness runs it with HOME set to a directory whose .ssh/known_hosts is the
fleet's.
"""
import json
import sys

from fleetsh.compat.pssh.clients import ParallelSSHClient
from fleetsh.compat.pssh.config import HostConfig
from fleetsh.compat.pssh.exceptions import Timeout


def main():
    hosts_file, user, key, fanout, timeout, command_timeout, command = sys.argv[1:8]
    hosts, configs = [], []
    with open(hosts_file) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            host, _, port = line.rpartition(":")
            hosts.append(host)
            configs.append(HostConfig(port=int(port), user=user, private_key=key))
    client = ParallelSSHClient(
        hosts,
        host_config=configs,
        pool_size=int(fanout),
        timeout=float(timeout),
        num_retries=1,
    )
    output = client.run_command(command, stop_on_errors=False)
    try:
        client.join(output, timeout=float(command_timeout))
    except Timeout:
        pass  # hosts still running have no exit code: each is reported as a failure
    for h in output:
        try:
            if h.exception is not None:
                raise h.exception
            out = "\n".join(h.stdout or [])
            code = h.exit_code
        except Exception as e:  # a failing host is a result, as in fleetsh
            print(json.dumps({"host": h.host, "error": repr(e)}))
            continue
        print(json.dumps({"host": h.host, "exit_code": code, "stdout": out}))


if __name__ == "__main__":
    main()
