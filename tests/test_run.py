"""The main job end to end: a scenario replayed against real node processes and verified, and a
short headless Locust run against the network."""
from __future__ import annotations

import asyncio
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from scenarios.workload import read_trace
from testbed.load import generate_population, load_records
from testbed.run import RunOptions, run_scenario

ROOT = Path(__file__).resolve().parent.parent


def test_run_march_peak_end_to_end(fresh_network, tmp_path):
    """`testbed run march-peak` on a small population: every event replayed without error, checks pass, report written."""
    reports = tmp_path / "reports"
    code = run_scenario(fresh_network, RunOptions("march-peak", residents=1500, seed=3, minutes=0.25, concurrency=8,
                                                  report_dir=reports))
    assert code == 0
    (out,) = list(reports.iterdir())
    run = json.loads((out / "result.json").read_text())
    header, events = read_trace(out / "trace.jsonl")
    result = run["replay"]
    assert result["events"] == len(events) == header["events"] > 50
    assert result["errors"] == 0
    done = {op: o["count"] + o["skipped"] for op, o in result["operations"].items()}
    assert sum(done.values()) == len(events)
    assert set(done) >= {"転居", "転出", "転入", "証明書", "本人確認", "情報提供", "コンビニ交付"}
    assert result["operations"]["コンビニ交付"]["count"] > 0, "the kiosk served (the tests pin its clock to midday)"
    assert result["operations"]["証明書"]["count"] > 0
    assert run["consistency_ok"] and run["audit_ok"]
    assert run["municipalities"] == {"142140": 1500, "142115": 1500}
    page = (out / "report.html").read_text()
    assert "passed" in page and page.count("<svg") >= 3
    assert not any(r["pid"] for r in fresh_network.status()), "the network is stopped afterwards"


def test_locust_headless_run_has_no_failures(fresh_network, tmp_path):
    """The README's headless Locust command against a running network ends with zero failures."""
    fresh_network.up()
    records, _ = generate_population(fresh_network, "142140", 600, seed=5)
    asyncio.run(load_records(fresh_network, "142140", records, show_progress=False))
    env = {k: v for k, v in os.environ.items() if k != "TESTBED_HOME"}  # the option, not the environment
    run = subprocess.run([sys.executable, "-m", "locust", "-f", str(ROOT / "loadtests" / "locustfile.py"), "--headless",
                          "--testbed-home", str(fresh_network.state_dir), "--municipality", "142140",
                          "-u", "8", "-r", "8", "-t", "8s", "--csv", str(tmp_path / "locust"), "--html",
                          str(tmp_path / "locust.html"), "--only-summary"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    with open(tmp_path / "locust_stats.csv", newline="") as f:
        rows = {row["Name"]: row for row in csv.DictReader(f)}
    total = rows["Aggregated"]
    assert int(total["Request Count"]) > 10
    assert int(total["Failure Count"]) == 0
    assert {"kizon/GetResident", "cs/GetIdentity", "intermediate/ProvideInfo", "kizon/IssueKioskCertificate"} <= set(rows)
    assert (tmp_path / "locust.html").exists()
