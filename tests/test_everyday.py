"""Everyday use that used to go wrong (issue 20): Locust run twice, Ctrl-C during `run`, a link fault on a network
without relays, `status` right after `up`, tracebacks instead of one line, abbreviated options, a migration asked for
twice. Each ends in what a user expects: one line, the right exit code, nothing left running that should not be."""
from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import make_network
from helpers import kill, poll
from testbed.load import generate_population, load_records
from testbed.network import alive

ROOT = Path(__file__).resolve().parent.parent
TESTBED = [sys.executable, "-m", "testbed.cli"]


def cli(state_dir, *args, timeout: float = 120) -> subprocess.CompletedProcess:
    """`testbed --state-dir DIR ARGS...` as a user runs it; never a traceback."""
    run = subprocess.run([*TESTBED, "--state-dir", str(state_dir), *args], capture_output=True, text=True,
                         timeout=timeout, cwd=ROOT)
    assert "Traceback" not in run.stdout + run.stderr, run.stdout[-2000:] + run.stderr[-2000:]
    return run


def one_line(run: subprocess.CompletedProcess, code: int, *words: str) -> None:
    """Exit code, and one line on stderr (progress bars aside) holding the words."""
    lines = [line for line in run.stderr.splitlines() if line.strip() and "%|" not in line]
    assert run.returncode == code and len(lines) == 1, (run.returncode, run.stderr)
    for word in words:
        assert word in run.stderr, run.stderr


def running(network) -> list[str]:
    """The nodes of network that have a live process."""
    return [n.name for n in network.topology.all_nodes if network.pid(n.name)]


@pytest.fixture
def down(tmp_path):
    """A network with its PKI and topology (free ports), not running."""
    network = make_network(tmp_path / "state")
    network.topology.save(network.state_dir / "topology.yaml")
    yield network
    network.down()


# -- 3: Locust twice ------------------------------------------------------------------------------------------------
def locust(network, csv_prefix: Path, seconds: int = 8) -> tuple[subprocess.CompletedProcess, dict]:
    """A short headless Locust run against network (README's command, bounded); its exit and stats rows by name."""
    env = {k: v for k, v in os.environ.items() if k != "TESTBED_HOME"}
    run = subprocess.run([sys.executable, "-m", "locust", "-f", str(ROOT / "loadtests" / "locustfile.py"), "--headless",
                          "--testbed-home", str(network.state_dir), "--municipality", "142140", "-u", "4", "-r", "4",
                          "-t", f"{seconds}s", "--only-summary", "--csv", str(csv_prefix)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    with open(f"{csv_prefix}_stats.csv", newline="") as f:
        return run, {row["Name"]: row for row in csv.DictReader(f)}


def test_locust_twice_the_kiosk_serves_the_second_time_too(fresh_network, tmp_path):
    """A second Locust run finds the kiosk cards the first issued and uses them (their PIN set again): コンビニ交付
    load and no failure both times. A user that cannot start is a failure in the summary (and the exit), not silence."""
    fresh_network.up()
    records, _ = generate_population(fresh_network, "142140", 600, seed=5)
    asyncio.run(load_records(fresh_network, "142140", records, show_progress=False))
    for attempt in ("first", "second"):
        run, rows = locust(fresh_network, tmp_path / attempt)
        assert run.returncode == 0, (attempt, run.stderr[-2000:])
        kiosk = rows["kizon/IssueKioskCertificate"]
        assert int(kiosk["Request Count"]) > 0 and int(kiosk["Failure Count"]) == 0, (attempt, kiosk)
        assert int(rows["Aggregated"]["Failure Count"]) == 0 and "Kiosk/on_start" not in rows, attempt
    kill(fresh_network, "card")  # the kiosk's cards cannot be readied now
    run, rows = locust(fresh_network, tmp_path / "without-card", seconds=3)  # (its users fail as they start)
    assert run.returncode == 1
    assert int(rows["Kiosk/on_start"]["Failure Count"]) >= 1, rows.keys()
    assert "Kiosk user could not start, sends nothing: UNAVAILABLE" in run.stderr


# -- 8: Ctrl-C during run -------------------------------------------------------------------------------------------
class Watched:
    """A process whose output is read as it comes (a thread per stream), to act when something appears in it."""

    def __init__(self, args):
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
        self.out = {"stdout": b"", "stderr": b""}
        self.readers = [threading.Thread(target=self._read, args=(name,), daemon=True) for name in self.out]
        for reader in self.readers:
            reader.start()

    def _read(self, name: str) -> None:
        stream = getattr(self.proc, name)
        while chunk := os.read(stream.fileno(), 65536):
            self.out[name] += chunk

    def text(self, name: str) -> str:
        return self.out[name].decode(errors="replace")

    def finish(self, timeout: float = 180) -> tuple[int, str, str]:
        code = self.proc.wait(timeout)
        for reader in self.readers:
            reader.join(10)
        return code, self.text("stdout"), self.text("stderr")


def interrupted_run(network, reports: Path, *args: str) -> tuple[int, str, str, dict]:
    """`testbed run march-peak` sent SIGINT once its replay is under way (its progress bar shows), then again twice:
    right away, and once the first node is stopped (the stop under way). Exit, stdout, stderr, pids before."""
    watched = Watched([*TESTBED, "--state-dir", str(network.state_dir), "run", "march-peak", "--residents", "300",
                       "--minutes", "1", "--report-dir", str(reports), *args])
    poll(lambda: "replay ×" in watched.text("stderr") or watched.proc.poll() is not None, 180, "the replay to start")
    assert watched.proc.poll() is None, watched.text("stdout")[-2000:] + watched.text("stderr")[-2000:]
    pids = {n.name: network.pid(n.name) for n in network.topology.all_nodes}
    watched.proc.send_signal(signal.SIGINT)
    watched.proc.send_signal(signal.SIGINT)  # a user pressing it again while the run winds down
    if "--down" in args:
        poll(lambda: not all(alive(pid) for pid in pids.values()) or watched.proc.poll() is not None, 120,
             "the stop to begin")
        watched.proc.send_signal(signal.SIGINT)  # and during the stop
    code, out, err = watched.finish()
    assert "Traceback" not in out + err, err[-3000:]
    return code, out, err, pids


def test_ctrl_c_ends_a_run_cleanly_with_a_partial_report(down, tmp_path):
    """On a network started with `testbed up`, `run` says it judges by the wall clock; Ctrl-C during the replay ends
    it: one line, exit 130, result.json and report.html say interrupted, what was done was checked; with --down every
    node is stopped however often Ctrl-C is pressed; without it the network it did not start is left running."""
    assert cli(down.state_dir, "up").returncode == 0
    reports = tmp_path / "reports"
    code, out, err, pids = interrupted_run(down, reports, "--down")
    one_line(subprocess.CompletedProcess([], code, out, err), 130, "interrupted (Ctrl-C) while replaying",
             "the network is stopped", "passes every check")
    assert "time-of-day rules (kiosk hours) by the wall clock" in out and "as `testbed up` starts it" in out
    assert not any(alive(pid) for pid in pids.values()) and not running(down)
    (folder,) = reports.iterdir()
    result = json.loads((folder / "result.json").read_text())
    assert result["outcome"] == "interrupted" and result["interrupted"]["while"] == "replaying"
    assert result["interrupted"]["sent"] < result["interrupted"]["events"] and result["replay"]["interrupted"]
    assert result["invariants"]["ok"] and result["invariants"]["network_wide"]["ok"], result["invariants"]
    assert "interrupted (Ctrl-C while replaying)" in (folder / "report.html").read_text()

    assert cli(down.state_dir, "up").returncode == 0
    code, out, err, pids = interrupted_run(down, tmp_path / "again")
    one_line(subprocess.CompletedProcess([], code, out, err), 130, "the network is left running")
    assert "reusing the" in out
    assert {n.name: down.pid(n.name) for n in down.topology.all_nodes} == pids


# -- 9: a link fault without relays ---------------------------------------------------------------------------------
def test_a_link_fault_plan_needs_relayed_links(down, tmp_path):
    """`--faults "cut A B ..."` is refused at once, in one line naming `testbed up --links`, when the network is down
    (run would start it without relays) or runs without them: nothing started, no report. On a relayed network,
    `link list` into a reader that went away stops quietly."""
    plan = "cut cs-142140 prefecture-140007 at 50% for 2s"
    reports = tmp_path / "reports"
    one_line(cli(down.state_dir, "run", "march-peak", "--faults", plan, "--report-dir", str(reports)), 2,
             "testbed up --links", "it is not running")
    assert not running(down) and not reports.exists()
    down.up()
    one_line(cli(down.state_dir, "run", "march-peak", "--faults", plan, "--report-dir", str(reports)), 2,
             "testbed up --links", "its links are not relayed")
    assert not reports.exists()
    down.down()
    down.up(links=True)
    listing = cli(down.state_dir, "link", "list")
    assert listing.returncode == 0 and "cs-142140" in listing.stdout
    closed = closed_pipe(down.state_dir, "link", "list")
    assert closed.returncode == 128 + signal.SIGPIPE and closed.stderr == "", closed.stderr


def closed_pipe(state_dir, *args) -> subprocess.CompletedProcess:
    """A command whose reader has gone before it writes (as `| head` does once it has its lines)."""
    proc = subprocess.Popen([*TESTBED, "--state-dir", str(state_dir), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    return subprocess.CompletedProcess(args, proc.wait(60), "", err)


# -- 11: status -----------------------------------------------------------------------------------------------------
def test_status_tries_again_and_says_why_a_node_is_down(fresh_network, monkeypatch):
    """A health check that fails is tried again (bounded) before a node is called DOWN, and DOWN comes with why:
    not running, connection refused, no answer (a stopped node); `--timeout` sets each try's time."""
    import testbed.network as network_module
    fresh_network.up()
    real, answers = network_module._healthy, {}

    async def slow_first(node, cert, timeout=1.0):  # every node misses its first check, as right after `up`
        answers[node.name] = answers.get(node.name, 0) + 1
        return "no answer within 1 s (deadline)" if answers[node.name] == 1 else await real(node, cert, timeout)
    monkeypatch.setattr(network_module, "_healthy", slow_first)
    assert all(r["healthy"] for r in fresh_network.status(tries=3))
    answers.clear()
    rows = fresh_network.status(tries=1)
    assert not any(r["healthy"] for r in rows) and {r["reason"] for r in rows} == {"no answer within 1 s (deadline)"}
    monkeypatch.undo()

    fresh_network.topology.save(fresh_network.state_dir / "topology.yaml")
    kill(fresh_network, "card")
    kill(fresh_network, "intermediate")
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # alive, listening nowhere
    try:
        fresh_network.pid_file("intermediate").write_text(str(stand_in.pid))  # (as a node that has not bound yet)
        national = fresh_network.pid("national")
        os.kill(national, signal.SIGSTOP)  # a node that hangs
        try:
            status = cli(fresh_network.state_dir, "status", "--timeout", "0.3")
        finally:
            os.kill(national, signal.SIGCONT)
    finally:
        stand_in.kill()
        stand_in.wait()
    assert status.returncode == 1
    lines = {line.split()[0]: line for line in status.stdout.splitlines()[1:] if line.strip()}
    assert "WHY DOWN" in status.stdout.splitlines()[0] and "SERVING" in lines["kizon-142140"]
    assert "DOWN" in lines["card"] and "not running" in lines["card"]
    assert "connection refused" in lines["intermediate"], lines["intermediate"]
    assert "no answer within 0.3 s" in lines["national"], lines["national"]
    one_line(cli(fresh_network.state_dir, "status", "--timeout", "0"), 2, "--timeout")


# -- 12: one line, not a traceback; no abbreviations ----------------------------------------------------------------
def test_mistakes_end_in_one_line_and_abbreviations_are_refused(down, tmp_path):
    """`run --minutes 0`, `population generate` of a municipality the topology does not name, `up --isolate` and
    `run --resident 100`: one line each, exit 2, nothing started; `status --json` into a closed pipe: quiet."""
    reports = tmp_path / "reports"
    one_line(cli(down.state_dir, "run", "march-peak", "--minutes", "0", "--report-dir", str(reports)), 2,
             "--minutes 0", "more than 0")
    one_line(cli(down.state_dir, "population", "generate", "--municipality", "142141"), 2,
             "no municipality '142141'", "142140 伊勢原市")
    one_line(cli(down.state_dir, "up", "--isolate"), 2, "unrecognized arguments: --isolate", "--isolated")
    one_line(cli(down.state_dir, "run", "march-peak", "--resident", "100", "--report-dir", str(reports)), 2,
             "--resident 100", "--residents")
    assert not running(down) and not reports.exists() and not down.isolated()
    import socket
    host, port = down.topology.find("national").address.rsplit(":", 1)
    with socket.socket() as squatter:  # a run whose `up` is refused leaves no empty report folder behind
        squatter.bind((host, int(port)))
        squatter.listen()
        one_line(cli(down.state_dir, "run", "march-peak", "--report-dir", str(reports)), 2, f"port {port} of national")
    assert not reports.exists()
    closed = closed_pipe(down.state_dir, "status", "--json")
    assert closed.returncode == 128 + signal.SIGPIPE and closed.stderr == "", closed.stderr


# -- 13: migrate twice ----------------------------------------------------------------------------------------------
def test_migrating_again_says_it_has_moved_already(down):
    """After the cut over (the topology rewritten as the rehearsal's cut over rewrites it), `migrate 142140 --to
    gcloud` says the municipality has moved there already; a site never named is still refused."""
    moved, _ = down.topology.cut_over("142140", "gcloud")
    down.replace_topology(moved)
    again = cli(down.state_dir, "migrate", "142140", "--to", "gcloud")
    assert again.returncode == 0 and "142140 has already moved to gcloud" in again.stdout, again.stderr
    assert "kizon-142140-gcloud and atena-142140-gcloud" in again.stdout and "nothing to do" in again.stdout
    one_line(cli(down.state_dir, "migrate", "142140", "--to", "mars"), 2, "no kizon and atena of 142140 at site mars")
