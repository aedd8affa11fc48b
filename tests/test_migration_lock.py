"""Two migrations of one network at once, and a rollback that could not restore everything: the lock that lets one
migration run at a time (taken atomically, a dead holder's taken over, a second migrate refused at once naming
the holder), and a rollback report that says exactly what it restored and what it did not."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import make_network
from helpers import move_in_from_abroad, poll
from protos import migration_pb2, migration_pb2_grpc
from testbed import bastion
from testbed.client import Counter, channel, console_cert
from testbed.load import generate_population, load_records
from testbed.migration import report as html_report
from testbed.migration.rehearsal import Locked, MigrationLock, Rehearsal, StepFailed

A, SITE = "142140", "gcloud"
HOLD = """
import sys, time
from pathlib import Path
from testbed.migration.rehearsal import MigrationLock
lock = MigrationLock(Path(sys.argv[1]))
lock.acquire({"pid": __import__("os").getpid(), "by": "vendor:vendor-a", "municipality": "142140", "site": "gcloud",
              "run": "142140-gcloud-held", "since": "2026-11-28T01:00:00+00:00"})
print("held", flush=True)
sys.stdin.read()  # until the test closes stdin (or kills this process)
"""


def holder(state) -> subprocess.Popen:
    """A process that takes the migration lock of state and holds it; returns once it holds it."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(state)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


# -- the lock --------------------------------------------------------------------------------------------
def test_the_lock_is_held_by_one_and_a_dead_holder_s_lock_is_taken_over(tmp_path):
    """While a live process holds the lock, taking it is refused naming that pid, who, what and since when; once
    that process is killed with -9 (no chance to let go), the next taker gets it and is told whom it took it
    from; a lock given back is simply free."""
    held = holder(tmp_path)
    try:
        with pytest.raises(Locked) as refused:
            MigrationLock(tmp_path).acquire({"pid": os.getpid()})
        why = str(refused.value)
        assert f"pid {held.pid} (vendor:vendor-a) has been moving 142140 to gcloud since 2026-11-28T01:00" in why
        assert why.startswith("migration rule: one migration of a network at a time") and "\n" not in why
        assert "wait until it has finished" in why
    finally:
        held.kill()
        held.wait()
    lock = MigrationLock(tmp_path)
    previous = lock.acquire({"pid": os.getpid(), "by": "test"})
    assert previous["pid"] == held.pid and previous["run"] == "142140-gcloud-held"
    assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    lock.release()
    assert lock.path.read_text() == ""  # given back: the file stays, naming nobody
    again = MigrationLock(tmp_path)
    assert again.acquire({"pid": os.getpid()}) is None
    again.release()


# -- a network for the rest ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def moving(tmp_path_factory):
    """A network with 40 residents of 伊勢原市 loaded."""
    network = make_network(tmp_path_factory.mktemp("lock"))
    network.up()
    records, _ = generate_population(network, A, 40, seed=7)
    asyncio.run(load_records(network, A, records, show_progress=False))
    yield network
    network.down()


def migration_stub(network, name: str):
    """The Migration service of a node, as the operations console."""
    return migration_pb2_grpc.MigrationStub(channel(network.topology.node(name), console_cert(network.pki, "kizon")))


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FailsAtLoad(Rehearsal):
    """What vendor A's run met after vendor B had cut over two seconds behind it: the load refused, and at the
    rollback the target and the old site no longer answering as A left them (they are gone, or the topology now
    names the target as the live site)."""

    def __init__(self, network, after: str):
        super().__init__(network, A, SITE)
        self.after = after

    def load(self, step):
        raise StepFailed(f"import into kizon-{A}-{SITE}: FAILED_PRECONDITION: 移行 rule: the target already holds records")

    def _live_names(self):
        if self.after == "cut over by another":
            return {kind: node.name for kind, node in self.new.items()}
        dead = f"127.0.0.1:{free_port()}"  # "gone": the four nodes' addresses answer nothing
        self.old = {k: dataclasses.replace(n, address=dead) for k, n in self.old.items()}
        self.new = {k: dataclasses.replace(n, address=dead) for k, n in self.new.items()}
        return super()._live_names()


@pytest.mark.parametrize("after", ["gone", "cut over by another"])
def test_a_rollback_that_cannot_restore_says_exactly_what_it_did_not(moving, after):
    """The load fails and each part of the rollback fails (the two wipes and the two re-opens): the report names
    each part with its outcome, is never 'rolled back', does not end the downtime, and its page says the rollback
    is incomplete; a target the topology names live is never wiped."""
    run = FailsAtLoad(moving, after).run()
    try:
        assert run["result"] == "failed" and run["failed_step"] == "load" and run["rolled_back"] is False
        undo = run["steps"][-1]
        assert undo["name"] == "rollback" and undo["result"] == "failed"
        outcomes = {check: result for check, result, _ in undo["checks"]}
        assert outcomes == {f"wipe kizon-{A}-{SITE}": outcomes[f"wipe kizon-{A}-{SITE}"],
                            f"wipe atena-{A}-{SITE}": outcomes[f"wipe atena-{A}-{SITE}"],
                            f"re-open atena-{A}": outcomes[f"re-open atena-{A}"],
                            f"re-open kizon-{A}": outcomes[f"re-open kizon-{A}"], "remove the run's files": "ok"}
        expected = "failed" if after == "gone" else "not done"
        assert [r for c, r in outcomes.items() if c != "remove the run's files"] == [expected] * 4
        assert len(run["rollback"]["not_restored"]) == 4 and run["rollback"]["restored"] == ["remove the run's files"]
        assert undo["message"].startswith("INCOMPLETE: not restored: ") and "the old site is NOT open again" in undo["message"]
        if after == "cut over by another":
            assert "wiping it would destroy the register" in undo["message"]
        else:
            assert "UNAVAILABLE" in undo["message"]
        assert run["downtime"]["end"] == "" and run["downtime"]["seconds"] is None
        page = html_report.render(run)
        assert "rolled back, the old site is open again" not in page and "rollback INCOMPLETE" in page
        assert "not ended: the counters are still closed" in page
    finally:  # the old site was frozen for real: open it again for the next test
        for kind in ("atena", "kizon"):
            migration_stub(moving, f"{kind}-{A}").Reopen(migration_pb2.FreezeRequest(reason="試験: 再開"), timeout=30)


# -- two vendors at once ---------------------------------------------------------------------------------
def frozen(state: Path, node: str) -> bool:
    """Whether a node's store records a freeze (移行), read read-only beside the running node."""
    path = state / "data" / node / "store.sqlite"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
    try:
        return bool(db.execute("SELECT value FROM site_state WHERE key='reason'").fetchone())
    except sqlite3.OperationalError:
        return False
    finally:
        db.close()


def test_two_vendors_migrating_at_once_one_runs_and_the_other_is_refused_at_once(moving):
    """Vendor A runs `migrate 142140 --to gcloud` at the bastion; while A's run holds the lock (held still, so that
    it certainly does), vendor B runs the same: refused at once with one line naming A's pid, vendor and run and
    what to do (exit 2). A then goes on and passes; the lock is free again; the new site serves."""
    state = moving.state_dir
    paths = bastion.Paths(state)
    for vendor in ("vendor-a", "vendor-b"):
        bastion.add_vendor(paths, vendor)
    bastion.start(state)
    lock = MigrationLock(state)
    cli = [sys.executable, "-m", "testbed.cli", "--state-dir", str(state), "ssh"]
    a = subprocess.Popen([*cli, "vendor-a", "migrate", A, "--to", SITE], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        held = poll(lambda: lock.path.exists() and lock.path.read_text() and json.loads(lock.path.read_text()),
                    timeout=60, what="vendor A's migration to take the lock")
        # A is held still once it has frozen the old site, not in the middle of a TLS handshake (which the nodes
        # close after 5 s: nodes/limits.py), for as long as B takes
        poll(lambda: all(frozen(state, f"{kind}-{A}") for kind in ("kizon", "atena")), timeout=120,
             what="vendor A's migration to freeze the old site")
        os.kill(held["pid"], signal.SIGSTOP)
        try:
            began = time.monotonic()
            b = subprocess.run([*cli, "vendor-b", "migrate", A, "--to", SITE], capture_output=True, text=True, timeout=120)
            refused_in = time.monotonic() - began
        finally:
            os.kill(held["pid"], signal.SIGCONT)
        said = (b.stdout + b.stderr).strip()
        assert b.returncode == 2 and "\n" not in said and "Traceback" not in said, said
        assert f"migration rule: one migration of a network at a time: pid {held['pid']} (vendor:vendor-a)" in said
        assert f"run {held['run']}" in said and "wait until it has finished" in said
        out, _ = a.communicate(timeout=600)
        assert a.returncode == 0, out[-3000:]
        assert "passed" in out
        print(f"vendor B refused in {refused_in:.2f} s (ssh, the bastion and the migrate command started)")
    finally:
        if a.poll() is None:
            a.kill()
        bastion.stop(state)
    assert lock.path.read_text() == ""
    reloaded = type(moving).open(state)
    assert reloaded.topology.find("kizon", A).name == f"kizon-{A}-{SITE}"
    with Counter(reloaded, A) as clerk:
        assert move_in_from_abroad(clerk).resident_code
    audit_lines = [json.loads(line) for line in paths.audit.read_text().splitlines()]
    assert {(e["caller"], e["status"]) for e in audit_lines if e["method"] == "ssh/migrate"} == \
        {("ssh:vendor-a", "OK"), ("ssh:vendor-b", "EXIT 2")}
