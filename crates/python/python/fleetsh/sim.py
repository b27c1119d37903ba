"""A simulated fleet for trying fleetsh and testing programs that use it.

``Fleet(count)`` starts ``count`` SSH hosts in this process, each on its own loopback address
(127.1.0.1, 127.1.0.2, ...) with its own host key, serving a small built-in shell (``echo``,
``hostname``, ``cat``, ``sleep``, ``exit N``, ``seq``, ``>&2``, ``;``, ``&&``, ``||``, ...).
Faults make chosen shares of the hosts misbehave: refused connections, silent or slow servers,
failed authentication, changed host keys, cut connections, hung commands, fixed exit codes.

    import fleetsh
    from fleetsh.sim import Fleet

    with Fleet(100, faults="exit:3=10") as fleet:
        engine = fleetsh.Engine(identity=fleet.key, known_hosts=fleet.known_hosts, agent=False)
        report = engine.run("echo hello", fleet.hosts).join()
        assert report.ok_count == 90
"""

from fleetsh._native import Fleet, SimError

__all__ = ["Fleet", "SimError"]
