"""A node the testbed did not start (`external: true` in the topology): `testbed pki issue` hands its operator the
certificates, `testbed up` leaves it to them and waits for its answer, the other nodes and the clients talk to it
as to their own, the conformance suite runs against it, and a deliberately altered copy fails exactly the cases of
what was altered."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import stat
import subprocess
import sys

import pytest

from helpers import move_in_from_abroad, poll
from nodes.topology import Topology
from nodes.weaken import ENV as WEAKEN_ENV, cases_of
from testbed import cli, conform
from testbed.check import check_network
from testbed.client import Counter
from testbed.load import generate_population, load_records
from testbed import network as networking
from testbed.network import Network, NetworkError
from testbed.run import RunOptions, run_scenario

CS = "cs-142140"


def _external(state_dir, weaken: str = "", name: str = CS) -> subprocess.Popen:
    """The testbed's own code of a node (the CS by default), started by hand as its operator would start their
    system: a process of its own, on the address the topology gives the node, not recorded by the testbed."""
    env = {**os.environ, WEAKEN_ENV: weaken}
    log = open(state_dir / f"external-{name}.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "nodes", "--topology", str(state_dir / "topology.yaml"),
                             "--node", name, "--state-dir", str(state_dir)], stdout=log, stderr=subprocess.STDOUT, env=env)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def outside(tmp_path):
    """A network whose 伊勢原市 CS is external: its PKI made, its topology saved, nothing started yet."""
    topology = Topology.load().with_free_ports()
    topology.nodes = [dataclasses.replace(n, external=True) if n.name == CS else n for n in topology.nodes]
    network = Network(tmp_path, topology)
    network.pki.init(topology)
    topology.save(tmp_path / "topology.yaml")
    started: list[subprocess.Popen] = []
    yield network, started
    network.down()
    for process in started:
        _stop(process)


def test_an_external_cs_takes_the_nodes_place(outside, tmp_path, capsys, monkeypatch):
    """pki issue → the operator's folder (keys 0600); `up` without the CS running says where to start it; with it
    running, every node is healthy and the CS shows as external without a pid; a 国外転入 at kizon goes through it
    to national; the suite passes against it; `down` leaves it running."""
    network, started = outside
    handed = tmp_path / "handed"
    assert cli.main(["--state-dir", str(tmp_path), "pki", "issue", CS, "--out", str(handed)]) == 0
    assert "external" not in capsys.readouterr().out.split(";")[-1]  # (it is marked so already)
    assert sorted(p.name for p in handed.iterdir()) == sorted(
        ["server.pem", "server.key", "client.pem", "client.key", "root.pem", "crl-jukinet.pem", "crl-lan.pem",
         "crl-platform.pem"])
    assert all(stat.S_IMODE((handed / k).stat().st_mode) == 0o600 for k in ("server.key", "client.key"))

    with monkeypatch.context() as short:  # (waiting for an external node that is not there: not the default 30 s)
        short.setattr(networking, "START_TIMEOUT", 10.0)
        with pytest.raises(NetworkError, match=f"the external node {CS} does not answer at .*: start it there"):
            network.up()
    network.down()

    started.append(_external(tmp_path))
    rows = network.up()
    row = next(r for r in rows if r["name"] == CS)
    assert row["external"] and row["pid"] is None and all(r["healthy"] for r in rows)

    with Counter(network, "142140") as clerk:
        who = move_in_from_abroad(clerk)
    records, _ = generate_population(network, "142140", 120, seed=7)  # (the bulk-output cases need more than 100)
    asyncio.run(load_records(network, "142140", records, show_progress=False))
    poll(lambda: check_network(network).ok, 30, "the network-wide invariants with the external CS")
    results = conform.run_cases(network, network.topology.node(CS), conform.select("cs"))
    assert [(r.case, r.observed) for r in results if r.verdict != "PASSED"] == []
    assert who.resident_code

    network.down()
    assert started[0].poll() is None  # (the testbed never stops what it did not start)


def test_an_altered_copy_fails_exactly_the_cases_of_what_was_altered(outside, tmp_path):
    """The same CS code with the two-item search rule taken out (the altered copy: started with that weakness, the
    rest of the network whole): the cases of SEARCH_TWO_ITEMS fail, and no other case of the role."""
    network, started = outside
    started.append(_external(tmp_path, weaken="search-rule"))
    network.up()
    results = conform.run_cases(network, network.topology.node(CS), conform.select("cs"))
    failed = {r.case for r in results if r.verdict == "FAILED"}
    assert failed == cases_of("search-rule", conform.select("cs")), failed


def test_the_main_job_runs_through_an_external_kizon_and_atena(tmp_path):
    """`testbed run march-peak` on a network whose 伊勢原市 kizon and atena are external (a vendor's new 既存住基 and 宛名
    system; here the testbed's code started by hand): every event replayed without error, nothing acknowledged lost
    or applied twice, the 整合性確認, the network-wide invariants and the audit chains hold, and the report names
    the external nodes."""
    names = ("kizon-142140", "atena-142140")
    topology = Topology.load().with_free_ports()
    topology.nodes = [dataclasses.replace(n, external=True) if n.name in names else n for n in topology.nodes]
    network = Network(tmp_path, topology)
    network.pki.init(topology)
    topology.save(tmp_path / "topology.yaml")
    started = [_external(tmp_path, name=name) for name in names]
    try:
        network.up()
        reports = tmp_path / "reports"
        assert run_scenario(network, RunOptions("march-peak", residents=400, seed=3, minutes=0.15, concurrency=8,
                                                report_dir=reports)) == 0
        (out,) = list(reports.iterdir())
        run = json.loads((out / "result.json").read_text())
        assert run["outcome"] == "passed" and run["replay"]["errors"] == 0 and run["replay"]["events"] > 20, run["checks"]
        assert run["invariants"]["ok"] and run["consistency_ok"] and run["audit_ok"]
        assert run["environment"]["external nodes (run by their operators)"] == ", ".join(names)
        assert all(p.poll() is None for p in started)  # (the run neither stopped nor restarted them)
    finally:
        network.down()
        for process in started:
            _stop(process)


@pytest.mark.parametrize("value, said", [("yes", "external is true or false"), (1, "external is true or false")])
def test_external_is_a_flag_and_an_unknown_item_is_refused(value, said):
    """`external` in the topology file is true or false, nothing else; an item a node does not have is refused by
    name (a misspelt `externl: true` must not start the testbed's own node silently)."""
    data = Topology.load().to_dict()
    data["nodes"][1]["external"] = value
    with pytest.raises(ValueError, match=said):
        Topology.from_dict(data)
    data["nodes"][1].pop("external")
    data["nodes"][1]["externl"] = True
    with pytest.raises(ValueError, match="unknown item externl"):
        Topology.from_dict(data)
