"""`echo hello` on every host of a hosts file with parallel-ssh's ParallelSSHClient (libssh2).

Run by `fleetsh-bench peers`. Arguments: HOSTS_FILE (host:port per line) USER KEY FANOUT
TIMEOUT_S COMMAND. Prints one JSON line per host: {"host", "exit_code", "stdout", "error"}.
parallel-ssh does not check host keys (libssh2 leaves that to the caller).
"""
import json
import sys

from pssh.clients import ParallelSSHClient
from pssh.config import HostConfig


def main():
    hosts_file, user, key, fanout, timeout, command = sys.argv[1:7]
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
    client.join(output)
    for h in output:
        if h.exception is not None:
            print(json.dumps({"host": h.host, "error": repr(h.exception)}))
            continue
        out = "\n".join(h.stdout or [])
        print(json.dumps({"host": h.host, "exit_code": h.exit_code, "stdout": out}))


if __name__ == "__main__":
    main()
