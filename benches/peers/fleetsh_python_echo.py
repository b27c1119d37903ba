"""`echo hello` on every host of a hosts file with fleetsh's Python package (its native API).

Run by `fleetsh-bench python`. Arguments: HOSTS_FILE (host:port per line) USER KEY FANOUT
CONNECT_TIMEOUT_S COMMAND_TIMEOUT_S COMMAND KNOWN_HOSTS. At most FANOUT hosts in flight. Host keys
are checked against KNOWN_HOSTS (strict). Prints one JSON line per host, as each host finishes:
{"host", "exit_code", "stdout", "error"}.
"""
import json
import sys

import fleetsh


def main():
    hosts_file, user, key, fanout, timeout, command_timeout, command, known = sys.argv[1:9]
    hosts = []
    with open(hosts_file) as f:
        for line in f:
            line = line.strip()
            if line:
                hosts.append(line)
    engine = fleetsh.Engine(
        user=user,
        identity=key,
        agent=False,
        known_hosts=known,
        host_key_check="strict",
        fanout=int(fanout),
        connect_timeout=float(timeout),
    )
    run = engine.run(command, hosts, timeout=float(command_timeout))
    for r in run:
        if r.error_kind is not None:  # a failing host is a result
            print(json.dumps({"host": r.host, "error": f"{r.error_kind.value}: {r.error_message}"}))
            continue
        print(json.dumps({"host": r.host, "exit_code": r.exit_code, "stdout": r.stdout_text}))


if __name__ == "__main__":
    main()
