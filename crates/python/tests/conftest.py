"""Fixtures of the fleetsh package's tests: simulated fleets (real SSH servers on loopback
addresses, in the test process) and engines that reach them."""

import faulthandler

import pytest

import fleetsh
from fleetsh.sim import Fleet

# A test that hangs ends the whole session with every thread's traceback, instead of waiting
# for the CI job's time limit.
faulthandler.dump_traceback_later(600, exit=True)


def engine_for(fleet, **settings):
    """An engine that reaches `fleet`: its client key and known_hosts, no ssh-agent."""
    return fleetsh.Engine(identity=fleet.key, known_hosts=fleet.known_hosts, agent=False, **settings)


@pytest.fixture(scope="module")
def fleet():
    """Twenty healthy hosts, shared by a module's tests."""
    with Fleet(20) as f:
        yield f


@pytest.fixture(scope="module")
def engine(fleet):
    return engine_for(fleet)
