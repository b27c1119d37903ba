"""Run commands on tens of thousands of hosts over SSH.

fleetsh's Rust engine spreads a run's hosts over shard threads, each with its own event loop
and its hosts' SSH sessions; this package drives it from Python. Results arrive as each host
finishes, through a blocking iterator (``for r in run``) or an asyncio one (``async for r in
run``); neither holds the GIL or blocks the event loop while it waits.

    import fleetsh

    engine = fleetsh.Engine(user="deploy")
    run = engine.run("uptime", "web[01-12].dc[1-2]", timeout=30)
    for r in run:
        print(r.host, r.exit_code, r.stdout_text.strip())
    report = run.join()

``fleetsh.sim.Fleet`` starts a simulated fleet (real SSH servers on loopback addresses) to try
it without any host. docs/python.md in fleetsh's repository is the guide.
"""

from fleetsh._native import (
    ConfigError,
    ConnectedFleet,
    CredentialsError,
    Engine,
    EngineError,
    Error,
    ErrorKind,
    HostResult,
    HostSpecError,
    InputError,
    KnownHostsError,
    Line,
    Output,
    Report,
    Run,
    SimError,
    StartError,
    Stream,
    Transferred,
    __version__,
    host_dir_name,
)

__all__ = [
    "ConfigError",
    "ConnectedFleet",
    "CredentialsError",
    "Engine",
    "EngineError",
    "Error",
    "ErrorKind",
    "HostResult",
    "HostSpecError",
    "InputError",
    "KnownHostsError",
    "Line",
    "Output",
    "Report",
    "Run",
    "SimError",
    "StartError",
    "Stream",
    "Transferred",
    "__version__",
    "host_dir_name",
]
