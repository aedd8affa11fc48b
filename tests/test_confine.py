"""Secrets held apart (`testbed up --confine`): each node sees only its own secrets, and what it cannot see
it cannot reach by another road; the network works as before."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import make_network
from helpers import move_in_from_abroad, person, poll
from protos import common_pb2
from testbed import confine
from testbed.client import Counter

A = "142140"
pytestmark = pytest.mark.skipif(bool(confine.available()), reason=confine.available() or "")


@pytest.fixture(scope="module")
def confined(tmp_path_factory):
    """A network of its own, every node confined."""
    network = make_network(tmp_path_factory.mktemp("confined"))
    network.up()  # confined by default where the machine allows it
    yield network
    network.down()


def seen(network, node_name: str, rel: str) -> list[str]:
    """What a node's own view of a folder of the state folder holds (read through its root in /proc)."""
    pid = network.pid(node_name)
    return sorted(os.listdir(f"/proc/{pid}/root{network.state_dir.resolve() / rel}"))


def test_each_node_sees_only_its_own_secrets(confined):
    """kizon sees its own keys, the anchors, CRLs and public session keys, its own session key; nothing else."""
    kizon, cs = f"kizon-{A}", f"cs-{A}"
    assert seen(confined, kizon, "pki") == ["ca", "nodes", "root", "sessions"]
    assert seen(confined, kizon, "pki/nodes") == [kizon]
    assert seen(confined, kizon, "data") == [kizon]
    assert seen(confined, kizon, "checkpoints") == [f"{kizon}.jsonl"]
    assert seen(confined, kizon, "pki/sessions") == ["public"]
    assert seen(confined, kizon, "pki/sessions/public") == ["142115.pub", f"{A}.pub"]
    assert "session.key" in seen(confined, kizon, f"pki/nodes/{kizon}")  # only kizon signs sessions
    assert "session.key" not in seen(confined, cs, f"pki/nodes/{cs}")
    assert seen(confined, "card", "pki/nodes") == ["card"] and "pin.key" in seen(confined, "card", "pki/nodes/card")
    assert seen(confined, cs, "logs") == []
    status = open(f"/proc/{confined.pid(kizon)}/status").read()
    bounding = int(next(line for line in status.splitlines() if line.startswith("CapBnd:")).split()[1], 16)
    assert not bounding & (1 << 21) and not bounding & (1 << 19) and not bounding & (1 << 2)  # no SYS_ADMIN, PTRACE


ATTACK = """
import ctypes, json, os, sys
from nodes.confined import harden_self
harden_self()
tries = json.loads(sys.argv[1])
result = {}
for path in tries:
    try:
        open(path, "rb").read(1)
        result[path] = "READ"
    except OSError as exc:
        result[path] = exc.strerror
libc = ctypes.CDLL(None, use_errno=True)
result["umount"] = "UNMOUNTED" if libc.umount2(sys.argv[2].encode(), 2) == 0 else os.strerror(ctypes.get_errno())
try:
    open(os.path.join(sys.argv[2], "planted"), "w")
    result["write"] = "WROTE"
except OSError as exc:
    result["write"] = exc.strerror
print(json.dumps(result))
"""


def test_a_compromised_node_cannot_reach_other_secrets(confined):
    """Code running as kizon would (its view, its capabilities) cannot read the CS's key, a CA key, a terminal's
    key or the operator credentials, neither directly nor through another process's root in /proc; it cannot
    unmount its view nor plant a file beside it. Its own key it can read (the attack is real)."""
    import json
    state = confined.state_dir.resolve()
    kizon = confined.topology.find("kizon", A)
    own = state / f"pki/nodes/{kizon.name}/client.key"
    others = [state / f"pki/nodes/cs-{A}/client.key", state / "pki/private/root/ca.key",
              state / f"pki/clients/terminal-{A}-T0001/client.key", state / f"pki/operators/{A}.json",
              state / f"data/cs-{A}/store.sqlite", state / "pki/sessions/142115.key"]
    through_proc = [f"/proc/{confined.pid(f'cs-{A}')}/root{state}/pki/nodes/cs-{A}/client.key",
                    f"/proc/1/root{state}/pki/private/root/ca.key"]
    for path in others:
        assert path.exists()  # they are there, outside the view
    attack = [sys.executable, "-c", ATTACK, json.dumps([str(own), *map(str, others), *through_proc]), str(state / "pki")]
    run = subprocess.run(confine.command(confined, kizon, attack), capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result.pop(str(own)) == "READ"
    assert result.pop("umount") != "UNMOUNTED" and result.pop("write") != "WROTE"
    assert not [path for path, outcome in result.items() if outcome == "READ"], result
    assert not (state / "pki" / "planted").exists()


def test_the_confined_network_works(confined):
    """A 国外転入 goes through kizon, the CS, the prefecture and national, and the 整合性確認 finds them equal."""
    with Counter(confined, A, "T0003", "OP0003") as counter:
        who = move_in_from_abroad(counter, person("隔離 花子", "カクリ ハナコ", sex="2"))

        def consistent():
            report = counter(counter.kizon.CheckConsistency, common_pb2.ConsistencyRequest(municipality_code=A),
                             timeout=120)
            return not report.differences and report
        report = poll(consistent, timeout=20, what="the change to reach national")  # the outboxes are asynchronous
    assert who.resident_code and report.records_kizon == 1
    assert "confined: own mount namespace" in confined.log_file(f"kizon-{A}").read_text()
    assert confined.confined()


def test_confinement_needs_root(monkeypatch):
    """Asked for without root, it says what is missing instead of starting unconfined."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "root" in confine.available()
