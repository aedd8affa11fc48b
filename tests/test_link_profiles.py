"""Link profiles and cuts (testbed/links.py): a profile's delay is applied, a cut drops and refuses connections
until it is restored, and a partition of cs ↔ prefecture under load loses nothing and keeps the order."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import pytest

from conftest import make_network
from helpers import move_in_from_abroad, poll
from protos import common_pb2
from testbed import links
from testbed.client import Counter, fetch_metrics, monitor_cert, node_status

A = "142140"


async def _echo_server():
    async def echo(reader, writer):
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()
    return await asyncio.start_server(echo, "127.0.0.1", 0)


async def _round_trip(address: str) -> float:
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    started = time.perf_counter()
    writer.write(b"ping")
    await writer.drain()
    assert await reader.readexactly(4) == b"ping"
    seconds = time.perf_counter() - started
    writer.close()
    return seconds


def test_a_profile_delays_each_round_trip():
    """Through a link with a 40 ms round trip, an echo takes at least that long (and not wildly more)."""
    async def run():
        echo = await _echo_server()
        target = f"127.0.0.1:{echo.sockets[0].getsockname()[1]}"
        link = links.Link("a->b", "127.0.0.1:0", target)
        link.apply(links.Profile(rtt_ms=40.0), cut=False)
        relay = await asyncio.start_server(link.handle, "127.0.0.1", 0)
        address = f"127.0.0.1:{relay.sockets[0].getsockname()[1]}"
        direct = min([await _round_trip(target) for _ in range(3)])
        relayed = sorted([await _round_trip(address) for _ in range(5)])
        relay.close()
        echo.close()
        return direct, relayed
    direct, relayed = asyncio.run(run())
    assert relayed[0] >= 0.038, relayed  # both directions delayed by half the round trip
    assert relayed[len(relayed) // 2] < 0.040 + 0.5, relayed  # the profile, not a stall (a generous bound: shared machine)
    assert direct < relayed[0]


def test_a_cut_drops_and_refuses_until_restored():
    """A cut aborts the open connection and closes every new one at once; restored, the link works again."""
    async def run():
        echo = await _echo_server()
        link = links.Link("a->b", "127.0.0.1:0", f"127.0.0.1:{echo.sockets[0].getsockname()[1]}")
        relay = await asyncio.start_server(link.handle, "127.0.0.1", 0)
        host, port = "127.0.0.1", relay.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"one!")
        assert await reader.readexactly(4) == b"one!"
        link.apply(links.Profile(), cut=True)
        assert await asyncio.wait_for(reader.read(10), 2) == b""  # the open connection is gone
        reader, writer = await asyncio.open_connection(host, port)
        assert await asyncio.wait_for(reader.read(10), 2) == b""  # a new one is closed at once
        link.apply(links.Profile(), cut=False)
        assert await _round_trip(f"{host}:{port}") < 2
        relay.close()
        echo.close()
    asyncio.run(run())


@pytest.fixture(scope="module")
def relayed(tmp_path_factory):
    """A network whose links go through the relay."""
    network = make_network(tmp_path_factory.mktemp("relayed"))
    network.up(links=True)
    yield network
    network.down()


def _applied_at_prefecture(network) -> float:
    status, body = fetch_metrics(network.topology.find("prefecture"), monitor_cert(network.pki, "prefecture"))
    line = next((line for line in body.splitlines() if line.startswith(f'testbed_applied_sequence{{municipality="{A}"}}')),
                None)
    return float(line.rsplit(" ", 1)[1]) if line else 0.0


def test_a_partition_of_cs_and_prefecture_loses_nothing(relayed):
    """cs ↔ prefecture cut while the counter goes on: every change is acknowledged, none reaches the prefecture;
    restored, all arrive in order and the chain is consistent again."""
    cli = [sys.executable, "-m", "testbed.cli", "--state-dir", str(relayed.state_dir), "link"]
    with Counter(relayed, A, "T0003", "OP0003") as counter:
        move_in_from_abroad(counter)
        before = poll(lambda: _applied_at_prefecture(relayed) or None, what="a first update at the prefecture")
        cut = subprocess.run(cli + ["cut", f"cs-{A}", "prefecture-140007"], capture_output=True, text=True, timeout=30)
        assert cut.returncode == 0 and "cs-142140->prefecture-140007" in cut.stdout
        assert links.wait_applied(links.Paths(relayed.state_dir))  # (the command waited for it too)
        acknowledged = [move_in_from_abroad(counter) for _ in range(5)]  # the counter does not wait for the prefecture
        cs = relayed.topology.find("cs", A)
        poll(lambda: (s := node_status(relayed, cs)).outbox_pending >= 5 and s.oldest_pending_seconds >= 1.0,
             what="the CS to hold the five updates for a second, unable to deliver them")
        assert _applied_at_prefecture(relayed) == before  # nothing crossed the cut
        listed = subprocess.run(cli + ["list"], capture_output=True, text=True, timeout=30).stdout
        assert "CUT" in next(line for line in listed.splitlines() if line.startswith(f"cs-{A}->prefecture"))
        restore = subprocess.run(cli + ["restore", f"cs-{A}", "prefecture-140007"], capture_output=True, text=True,
                                 timeout=30)
        assert restore.returncode == 0
        poll(lambda: _applied_at_prefecture(relayed) >= before + 5 or None, timeout=30, what="the backlog to arrive")

        def consistent():
            report = counter(counter.kizon.CheckConsistency, common_pb2.ConsistencyRequest(municipality_code=A),
                             timeout=60)
            return not report.differences and report
        assert poll(consistent, timeout=30, what="the chain to be consistent").records_prefecture >= 6
    assert len({r.resident_code for r in acknowledged}) == 5


def test_link_set_changes_a_profile_and_names_the_rule(relayed):
    """`testbed link set A B --profile P` changes the profile in the control file; an unknown profile or a pair
    with no link is a one-line error."""
    cli = [sys.executable, "-m", "testbed.cli", "--state-dir", str(relayed.state_dir), "link"]
    ok = subprocess.run(cli + ["set", f"kizon-{A}", f"cs-{A}", "--profile", "gcloud"], capture_output=True, text=True,
                        timeout=30)
    assert ok.returncode == 0
    control = json.loads(links.Paths(relayed.state_dir).control.read_text())
    assert control[f"kizon-{A}->cs-{A}"]["profile"] == "gcloud"
    for args, words in ((["set", f"kizon-{A}", f"cs-{A}", "--profile", "moon"], "no profile 'moon'"),
                        (["cut", f"kizon-{A}", "national"], "no link between")):
        bad = subprocess.run(cli + args, capture_output=True, text=True, timeout=30)
        assert bad.returncode == 2 and words in bad.stderr and bad.stderr.count("\n") == 1
    subprocess.run(cli + ["set", f"kizon-{A}", f"cs-{A}", "--profile", "lan"], capture_output=True, timeout=30)
