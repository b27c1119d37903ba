"""Fixtures of the fleetsh package's tests: simulated fleets (real SSH servers on loopback
addresses, in the test process), a real OpenSSH sshd on loopback addresses (tests/sshd.py), and
engines that reach them."""

import faulthandler

import pytest

import fleetsh
from fleetsh.sim import Fleet
from sshd import Sshd

# A test that hangs ends the whole session with every thread's traceback, instead of waiting
# for the CI job's time limit.
faulthandler.dump_traceback_later(600, exit=True)


def engine_for(fleet, **settings):
    """An engine that reaches `fleet`: its client key and known_hosts, no ssh-agent."""
    return fleetsh.Engine(identity=fleet.key, known_hosts=fleet.known_hosts, agent=False, **settings)


def engine_for_sshd(sshd, **settings):
    """An engine that logs in to `sshd` with its client key, trusting its known_hosts, no
    ssh-agent."""
    return fleetsh.Engine(
        identity=sshd.key, known_hosts=sshd.known_hosts, agent=False, user=sshd.user, **settings
    )


@pytest.fixture(scope="session")
def sshd():
    """One OpenSSH sshd for the whole test session, on 127.0.0.1 to 127.0.0.4 at one port
    (tests/sshd.py). Fails, never skips, when sshd cannot start."""
    with Sshd() as server:
        yield server


@pytest.fixture(scope="module")
def fleet():
    """Twenty healthy hosts, shared by a module's tests."""
    with Fleet(20) as f:
        yield f


@pytest.fixture(scope="module")
def engine(fleet):
    return engine_for(fleet)


def iterate_async_with_heartbeat(start_run):
    """Runs ``start_run()`` (a function returning a Run) inside asyncio and iterates it with
    ``async for`` while a heartbeat task ticks every 5 ms: (results, ticks, report). Ticks
    show that the event loop kept running while the run's results were awaited."""
    import asyncio

    async def main():
        ticks = 0
        finished = asyncio.Event()

        async def heartbeat():
            nonlocal ticks
            while not finished.is_set():
                ticks += 1
                await asyncio.sleep(0.005)

        beat = asyncio.create_task(heartbeat())
        run = start_run()
        got = [r async for r in run]
        finished.set()
        await beat
        # The run is over: join() returns at once.
        return got, ticks, run.join()

    return asyncio.run(main())

