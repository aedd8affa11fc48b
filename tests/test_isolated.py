"""`testbed up --isolated`: each node in its own network namespace on the segments the real network gives it;
kizon cannot even open a TCP connection to national, the CS reaches both of its sides, a partition of
cs ↔ prefecture loses nothing, and `down` leaves no namespace, bridge or veth behind."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import make_network
from helpers import move_in_from_abroad, poll
from protos import common_pb2
from testbed import netns
from testbed.client import Counter
from test_link_profiles import _applied_at_prefecture

A = "142140"
pytestmark = pytest.mark.skipif(bool(netns.available()), reason=netns.available() or "")


@pytest.fixture(scope="module")
def isolated(tmp_path_factory):
    """An isolated network (one per machine: the names of its namespaces are fixed)."""
    network = make_network(tmp_path_factory.mktemp("isolated"))
    network.up(isolated=True)
    yield network
    network.down()


def connects(node_name: str, address: str) -> str:
    """Whether a TCP connection from inside a node's namespace opens: "" if so, else the error."""
    host, port = address.rsplit(":", 1)
    code = ("import socket,sys\ntry:\n socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()\n"
            " print('')\nexcept OSError as e:\n print(e)")
    run = subprocess.run(netns.command(node_name, [sys.executable, "-c", code, host, port]), capture_output=True,
                         text=True, timeout=30)
    return run.stdout.strip()


def addresses(network, name: str) -> dict[str, str]:
    layout = json.loads((network.state_dir / "netns.json").read_text())
    port = network.topology.node(name).address.rsplit(":", 1)[1]
    return {segment: f"{ip}:{port}" for segment, ip in layout["addresses"][name].items()}


def test_kizon_cannot_reach_national_but_the_cs_reaches_both_sides(isolated):
    """No route from kizon's namespace to any address of national; the CS reaches kizon's LAN and 住基ネット."""
    for segment, address in addresses(isolated, "national").items():
        assert "unreachable" in connects(f"kizon-{A}", address), (segment, address)
    assert connects(f"kizon-{A}", addresses(isolated, f"cs-{A}")[f"lan-{A}"]) == ""
    assert connects(f"cs-{A}", addresses(isolated, f"kizon-{A}")[f"lan-{A}"]) == ""
    assert connects(f"cs-{A}", addresses(isolated, "prefecture-140007")["jukinet"]) == ""
    assert "unreachable" in connects(f"atena-{A}", addresses(isolated, f"cs-{A}")["jukinet"])  # CS–atena separation


def test_the_isolated_network_works_and_survives_a_partition(isolated):
    """A change goes through every hop; cs ↔ prefecture cut, the counter goes on; restored, everything arrives and
    the chain is consistent."""
    cli = [sys.executable, "-m", "testbed.cli", "--state-dir", str(isolated.state_dir), "link"]
    with Counter(isolated, A, "T0003", "OP0003") as counter:
        move_in_from_abroad(counter)
        before = poll(lambda: _applied_at_prefecture(isolated) or None, what="a first update at the prefecture")
        assert subprocess.run(cli + ["cut", f"cs-{A}", "prefecture-140007"], capture_output=True, timeout=30).returncode == 0
        [move_in_from_abroad(counter) for _ in range(3)]
        assert _applied_at_prefecture(isolated) == before
        assert subprocess.run(cli + ["restore", f"cs-{A}", "prefecture-140007"], capture_output=True,
                              timeout=30).returncode == 0
        poll(lambda: _applied_at_prefecture(isolated) >= before + 3 or None, timeout=30, what="the backlog to arrive")
        report = counter(counter.kizon.CheckConsistency, common_pb2.ConsistencyRequest(municipality_code=A), timeout=60)
    assert not report.differences


def test_down_leaves_nothing_behind(isolated):
    """(Last of this module.) After a crash of every node, `testbed down` finds what is left by name and removes
    it: no namespace, bridge or veth of the testbed remains."""
    network = isolated
    for name in network.topology.all_nodes:
        subprocess.run(["kill", "-9", str(network.pid(name.name))], check=False)  # a crash: nothing cleaned up
    assert netns.leftovers()[0]
    network.down()
    assert netns.leftovers() == ([], [])
