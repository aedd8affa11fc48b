"""Fault plans in the main job: parsed and checked against the topology, run beside the replay, recovered from,
and checked afterwards (nothing acknowledged lost, nothing applied twice); the main job runs again on the same
state folder."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import make_network
from testbed.faults import NAMED, PlanError, parse
from testbed.topology import Topology


def test_plans_parse_from_a_name_a_line_and_a_file(tmp_path):
    """Named plans, one-line plans and YAML files give the same faults; each must name real nodes."""
    topology = Topology.load()
    assert [f.label() for f in parse("prefecture-outage", topology)] == ["kill prefecture-140007 at 30% for 5s"]
    line = parse("stop national at 40% for 4s; cut cs-142140 prefecture-140007 at 10% for 2s", topology)
    assert [(f.kind, f.targets, f.at) for f in line] == [("cut", ("cs-142140", "prefecture-140007"), 0.1),
                                                         ("stop", ("national",), 0.4)]
    plan = tmp_path / "plan.yaml"
    plan.write_text("- {kind: kill, target: kizon-142140, at: 20%, for: 1s}\n")
    assert [f.label() for f in parse(str(plan), topology)] == ["kill kizon-142140 at 20% for 1s"]
    assert all(parse(name, topology) for name in NAMED)


@pytest.mark.parametrize("plan, words", [
    ("explode national at 10% for 1s", "kinds: kill, stop, cut, slow"),
    ("kill nowhere at 10% for 1s", "no node 'nowhere'"),
    ("kill national", "KIND TARGET"),
    ("cut national at 10% for 1s", "takes 2 node(s)"),
    ("kill national at 150% for 1s", "between 0% and 100%"),
])
def test_a_bad_plan_names_what_is_wrong(plan, words):
    with pytest.raises(PlanError, match=None) as refused:
        parse(plan, Topology.load())
    assert words in str(refused.value)


def run(state, *args):
    out = subprocess.run([sys.executable, "-m", "testbed.cli", "--state-dir", str(state), "run", "march-peak",
                          "--residents", "300", "--minutes", "0.25", *args], capture_output=True, text=True, timeout=600)
    assert "Traceback" not in out.stdout + out.stderr, out.stderr[-3000:]
    return out


def test_a_run_with_a_fault_plan_recovers_and_checks_every_invariant(tmp_path):
    """--faults prefecture-outage: the prefecture is killed and restarted mid-replay; the run passes, the fault's
    recovery is timed, nothing acknowledged is lost or applied twice; the report shows faults and environment.
    Run again on the same state folder, the main job passes too."""
    network = make_network(tmp_path / "state")
    network.topology.save(tmp_path / "state" / "topology.yaml")
    reports = tmp_path / "reports"
    first = run(tmp_path / "state", "--faults", "prefecture-outage", "--report-dir", str(reports))
    assert first.returncode == 0, first.stdout[-3000:]
    folder = sorted(reports.glob("march-peak-*"))[-1]
    result = json.loads((folder / "result.json").read_text())
    fault = result["replay"]["faults"][0]
    assert fault["kind"] == "kill" and fault["recovered_s"] is not None and fault["started_s"] > 0
    assert result["invariants"]["ok"] and result["invariants"]["acknowledged"] > 0
    assert result["invariants"]["network_wide"]["ok"], result["invariants"]["network_wide"]
    assert result["consistency_ok"] and result["audit_ok"]
    page = (folder / "report.html").read_text()
    assert "Faults" in page and "Environment" in page and "p99.9" in page and "grpcio" in page
    second = run(tmp_path / "state", "--report-dir", str(reports))  # the main job, again, on the same state
    assert second.returncode == 0, second.stdout[-3000:]
    assert "reusing the" in second.stdout
