"""The conformance step of a migration: a target site that does not keep a rule of the network (here a target kizon
the testbed did not start, run by its operator with bulk output's approval taken out) fails the suite's cases of
that rule after the verify, is not cut over to, and the old site opens again; the report lists the failed cases."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys

import pytest

from helpers import move_in_from_abroad
from nodes.topology import Topology
from nodes.weaken import ENV as WEAKEN_ENV, cases_of
from testbed import conform
from testbed.client import Counter
from testbed.load import generate_population, load_records
from testbed.network import Network

A, SITE = "142140", "gcloud"
TARGET = f"kizon-{A}-{SITE}"


@pytest.fixture(scope="module")
def altered_target(tmp_path_factory):
    """A network whose gcloud kizon of 伊勢原市 is external and runs with bulk-output weakened (the altered copy),
    with 120 residents loaded at the old site."""
    tmp_path = tmp_path_factory.mktemp("altered-target")
    topology = Topology.load().with_free_ports()
    topology.targets = [dataclasses.replace(n, external=True) if n.name == TARGET else n for n in topology.targets]
    network = Network(tmp_path, topology)
    network.pki.init(topology)
    topology.save(tmp_path / "topology.yaml")
    log = open(tmp_path / "external-target.log", "ab")
    process = subprocess.Popen([sys.executable, "-m", "nodes", "--topology", str(tmp_path / "topology.yaml"),
                                "--node", TARGET, "--state-dir", str(tmp_path)], stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, WEAKEN_ENV: "bulk-output"})
    try:
        network.up()
        records, _ = generate_population(network, A, 120, seed=5)
        asyncio.run(load_records(network, A, records, show_progress=False))
        yield network
    finally:
        network.down()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_an_expected_failures_file_is_read_before_anything_moves(altered_target, tmp_path):
    """A bad --expected-failures file (an id no case has) is one line naming the file and line, and nothing is
    frozen."""
    bad = tmp_path / "known.txt"
    bad.write_text("# our gaps\nkizon/no-such/case  # a typo\n", encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "testbed.cli", "--state-dir", str(altered_target.state_dir), "migrate",
                          A, "--to", SITE, "--expected-failures", str(bad)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert f"{bad}:2: no case 'kizon/no-such/case'" in run.stderr.strip().splitlines()[-1]
    with Counter(altered_target, A) as clerk:  # (not frozen)
        assert move_in_from_abroad(clerk).resident_code


def test_a_target_that_fails_a_rule_is_not_cut_over(altered_target, tmp_path):
    """Every step up to the verify passes; the conformance step fails exactly the cases of the rule taken out; the
    run rolls back (the target wiped, the old site open and taking changes); the topology still names the old
    kizon; the report and the output list the failed cases."""
    network = altered_target
    out = tmp_path / "m.json"
    run = subprocess.run([sys.executable, "-m", "testbed.cli", "--state-dir", str(network.state_dir), "migrate", A,
                          "--to", SITE, "--json", str(out), "--report-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(out.read_text())
    steps = {s["name"]: s for s in report["steps"]}
    assert report["failed_step"] == "conformance" and report["rolled_back"], report
    assert all(steps[s]["result"] in ("ok", "recovered") for s in ("freeze", "export", "transfer", "load", "verify"))
    assert "cut over" not in steps
    weakened = {f"{c} at {TARGET}" for c in cases_of("bulk-output", conform.select("kizon", "rules"))}
    failed = {c[0] for c in steps["conformance"]["checks"] if c[1] == "failed"}
    assert failed == weakened and weakened, steps["conformance"]["checks"]
    assert all(case in report["failure"] for case in weakened) and "not cut over" in report["failure"]
    assert all(case.split(" at ")[0] in run.stdout for case in weakened)
    # the old site serves again, and the topology on disk still names it
    reloaded = Network.open(network.state_dir)
    assert reloaded.topology.find("kizon", A).name == f"kizon-{A}"
    with Counter(reloaded, A) as clerk:
        assert move_in_from_abroad(clerk).resident_code
