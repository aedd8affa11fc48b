"""Shared fixtures: a throwaway PKI and a real network of node processes on free loopback ports."""
from __future__ import annotations

import asyncio

import inspect
import os
import tempfile

import pytest

from testbed.client import Counter
from testbed.network import Network
from testbed.topology import Topology


def pytest_configure(config):
    """The environment every node of the tests starts with, set once before any test is collected (never at
    import): each test process (an xdist worker too) gets its own."""
    # コンビニ交付 keeps its hours (06:30–23:00 JST) by the nodes' clock: the tests pin it to midday so that
    # they do not depend on when they run; a test of the hours rule sets its own before starting a network.
    os.environ.setdefault("TESTBED_KIOSK_CLOCK", "12:00")
    # The audit witness keeps its folder outside the state folder (nodes/witness.py), by default under the home
    # folder: the tests' witnesses live in a throwaway folder instead.
    os.environ.setdefault("TESTBED_WITNESS_DIR", tempfile.mkdtemp(prefix="testbed-witness-"))


def make_network(state_dir, topology: Topology | None = None) -> Network:
    """A network of the default topology on free ports, with its own PKI under state_dir."""
    topology = (topology or Topology.load()).with_free_ports()
    network = Network(state_dir, topology)
    network.pki.init(topology)
    return network


def network_of_its_own(tmp_path_factory, name: str):
    """A network up for one test module whose tests load or change it as no other module should feel; down
    at the end (the body of a module-scoped fixture: `yield from network_of_its_own(...)`)."""
    network = make_network(tmp_path_factory.mktemp(name))
    network.up()
    yield network
    network.down()


def network_with_residents(tmp_path_factory, name: str, residents: int, seed: int, municipality: str = "142140"):
    """network_of_its_own() with a generated population loaded into one municipality (e.g. 120: more than one
    operator may output without approval)."""
    from testbed.load import generate_population, load_records
    for network in network_of_its_own(tmp_path_factory, name):
        records, _ = generate_population(network, municipality, residents, seed=seed)
        asyncio.run(load_records(network, municipality, records, show_progress=False))
        yield network


@pytest.fixture(scope="session")
def network(tmp_path_factory):
    """The default fifteen-node network, up for the whole session, down at its end."""
    net = make_network(tmp_path_factory.mktemp("net"))
    net.up()
    yield net
    try:  # every end-to-end test that changed data on the shared network left the network-wide invariants whole
        from helpers import invariants_hold
        invariants_hold(net)
    finally:
        net.down()


@pytest.fixture
def fresh_network(tmp_path):
    """A network of its own for a test that changes shared state (revocation, restarts)."""
    net = make_network(tmp_path)
    yield net
    net.down()


@pytest.fixture(scope="module")
def clerk(network):
    """OP0001 (個人番号 permission) at T0001 (registered for 個人番号) of 伊勢原市, its reads approved by a manager
    (a whole test module's counter work goes through this one operator: PIA Ⅲ(2)3's bulk-output limit)."""
    with Counter(network, "142140", reads=1_000_000) as counter:
        yield counter


@pytest.fixture(scope="module")
def clerk_b(network):
    """OP0001 at T0001 of 秦野市, its reads approved by a manager (as clerk)."""
    with Counter(network, "142115", reads=1_000_000) as counter:
        yield counter


# -- the tiers ------------------------------------------------------------------------------------------------
# `make test-fast` runs the unit and rule tests and those on the one shared network; `make test` runs them all.
# A test is of the full tier when it (or a fixture it uses) starts a network, a scenario run or a benchmark of its
# own: found from the source, so that a new test lands in the right tier without anyone remembering to mark it.
OWN_NETWORK = ("make_network(", "network_of_its_own(", "network_with_residents(", "Network(", "run_scenario(",
               "run_bench(", "\"testbed.cli\"", "'testbed.cli'", "locust", '"bench"', '"run"', '"up"', '"tour"', '"migrate"')  # (commands given to main)


def _starts_its_own(function) -> bool:
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return False
    return any(mark in source for mark in OWN_NETWORK)


def pytest_collection_modifyitems(config, items):
    """Mark `own_network` every test that starts a network of its own (itself or through a fixture other than the
    shared session network)."""
    for item in items:
        defs = getattr(item, "_fixtureinfo", None)
        fixtures = [d.func for name, ds in (defs.name2fixturedefs.items() if defs else ()) if name != "network"
                    for d in ds]
        if _starts_its_own(getattr(item, "function", None)) or any(_starts_its_own(f) for f in fixtures):
            item.add_marker(pytest.mark.own_network)
