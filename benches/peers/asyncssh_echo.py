"""`echo hello` on every host of a hosts file with asyncssh and asyncio.gather.

Run by `fleetsh-bench peers`. Arguments: HOSTS_FILE (host:port per line) USER KEY FANOUT
CONNECT_TIMEOUT_S COMMAND_TIMEOUT_S COMMAND KNOWN_HOSTS. At most FANOUT connections at once (a semaphore). Host keys are
checked against KNOWN_HOSTS. Prints one JSON line per host.
"""
import asyncio
import json
import sys

import asyncssh


async def one(sem, host, port, user, key, known, timeout, command_timeout, command):
    async with sem:
        try:
            async with asyncssh.connect(
                host,
                port=port,
                username=user,
                client_keys=[key],
                known_hosts=known,
                connect_timeout=timeout,
                agent_path=None,
                config=None,
            ) as conn:
                r = await conn.run(command, timeout=command_timeout)
                return {"host": host, "exit_code": r.exit_status, "stdout": r.stdout}
        except Exception as e:  # a failing host is a result, as in fleetsh
            return {"host": host, "error": repr(e)}


async def main():
    hosts_file, user, key, fanout, timeout, command_timeout, command, known = sys.argv[1:9]
    sem = asyncio.Semaphore(int(fanout))
    key = asyncssh.read_private_key(key)
    known = asyncssh.read_known_hosts(known)
    targets = []
    with open(hosts_file) as f:
        for line in f:
            line = line.strip()
            if line:
                host, _, port = line.rpartition(":")
                targets.append((host, int(port)))
    results = await asyncio.gather(
        *(
            one(sem, h, p, user, key, known, float(timeout), float(command_timeout), command)
            for h, p in targets
        )
    )
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    asyncio.run(main())
