"""The keyed audit chain (nodes/audit.py), its signed checkpoints and `testbed audit verify`: every way an
insider could rewrite the trail is found, and a node refuses to start on a damaged log."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from nodes.audit import (GENESIS, AuditDamaged, AuditLog, Signer, entry_hash, entry_mac, read_checkpoints,
                         verify)
from protos import common_pb2, kizon_pb2, kizon_pb2_grpc
from testbed.cli import main
from helpers import poll
from nodes.guard import OPERATOR_KEY
from testbed.client import Counter, channel, terminal_cert

CALLER = "spiffe://testbed.jp/lg/142140/terminal/T0001"
KEY = b"k" * 32


@pytest.fixture
def signer():
    """A node's signing key (as its client key would be) and its public key."""
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return Signer(pem), private.public_key()


@pytest.fixture
def log(tmp_path, signer):
    """A closed log of five entries with its checkpoints: (path, checkpoints path, entries, public key)."""
    path, marks = tmp_path / "audit.jsonl", tmp_path / "checkpoints" / "kizon.jsonl"
    audit = AuditLog(path, "kizon-142140", KEY, marks, signer[0], signer[1])
    entries = [audit.append(caller=CALLER, method="/testbed.v1.Kizon/Birth", status="OK", subject=f"2472705960{i}",
                            operator="OP0001", terminal="T0001") for i in range(5)]
    audit.close()
    return path, marks, entries, signer[1]


def lines(path: Path) -> list[str]:
    return path.read_text("utf-8").splitlines(keepends=True)


def write(path: Path, rows: list[str]) -> None:
    path.write_text("".join(rows), "utf-8")


def dump(entry: dict) -> str:
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"


def checked(path, marks, public_key):
    """verify() against the checkpoints as `testbed audit verify` reads them."""
    good, forged = read_checkpoints(marks, public_key)
    result = verify(path, KEY, good)
    result.problems[:0] = forged
    return result


def assert_broken(result, *marks: str) -> None:
    assert not result.ok
    for mark in marks:
        assert any(mark in p for p in result.problems), (mark, result.problems)


def test_intact_log_verifies(log):
    """An untouched log is whole, covered by its last checkpoint, and ends at the last entry's MAC."""
    path, marks, entries, public_key = log
    result = checked(path, marks, public_key)
    assert result.ok, result.problems
    assert (result.entries, result.checkpointed, result.head) == (5, 5, entries[-1]["mac"])
    assert entries[0]["prev"] == GENESIS and [e["seq"] for e in entries] == [1, 2, 3, 4, 5]


def test_edited_entry_is_found_even_when_rehashed_without_the_key(log):
    """An edited entry whose hash is recomputed (unkeyed, or under another key) does not carry its MAC."""
    path, marks, entries, public_key = log
    rows = lines(path)
    forged = dict(entries[2], status="PERMISSION_DENIED")
    forged["mac"] = hashlib.sha256(json.dumps(forged, sort_keys=True).encode()).hexdigest()
    rows[2] = dump(forged)
    write(path, rows)
    assert_broken(checked(path, marks, public_key), "line 3", "MAC")
    forged["mac"] = entry_mac(b"another key" * 3, forged)
    rows[2] = dump(forged)
    write(path, rows)
    assert_broken(checked(path, marks, public_key), "line 3")


@pytest.mark.parametrize("change", ["remove", "insert", "reorder"])
def test_removed_inserted_reordered(log, change):
    """A removed, inserted (copied) or reordered entry breaks the chain."""
    path, marks, entries, public_key = log
    rows = lines(path)
    if change == "remove":
        del rows[1]
    elif change == "insert":
        rows.insert(2, rows[1])
    else:
        rows[1], rows[3] = rows[3], rows[1]
    write(path, rows)
    assert_broken(checked(path, marks, public_key), "does not follow")


def test_chain_rewritten_with_the_key_is_found_by_the_checkpoints(log):
    """An insider with the node's audit key deletes an entry and re-chains the rest: the MACs hold, the
    checkpoint does not."""
    path, marks, entries, public_key = log
    kept = [e for e in entries if e["seq"] != 2]
    prev = GENESIS
    rows = []
    for seq, entry in enumerate(kept, 1):
        entry = dict(entry, seq=seq, prev=prev)
        entry.pop("mac")
        entry["mac"] = prev = entry_mac(KEY, entry)
        rows.append(dump(entry))
    write(path, rows)
    assert verify(path, KEY).ok  # the chain alone holds …
    assert_broken(checked(path, marks, public_key), "checkpoint")  # … the checkpoints do not


@pytest.mark.parametrize("cut", [1, 5])
def test_cut_tail_and_emptied_file(log, cut):
    """Entries cut from the end (or every entry) no longer reach what was checkpointed."""
    path, marks, entries, public_key = log
    write(path, lines(path)[:-cut])
    assert_broken(checked(path, marks, public_key), "cut from the end")


def test_forged_checkpoint_is_refused(log):
    """A checkpoint not signed by the node is reported, and is not believed."""
    path, marks, entries, public_key = log
    with marks.open("a") as f:
        f.write(json.dumps({"node": "kizon-142140", "seq": 2, "head": "0" * 64, "time": "x", "sig": "00"}) + "\n")
    assert_broken(checked(path, marks, public_key), "not signed by the node")


def test_reopen_continues_the_chain(log, signer):
    """Reopening a log verifies it and resumes seq and prev from its last entry."""
    path, marks, entries, public_key = log
    audit = AuditLog(path, "kizon-142140", KEY, marks, *signer)
    entry = audit.append(caller=CALLER, method="/testbed.v1.Kizon/GetResident", status="OK")
    audit.close()
    assert (entry["seq"], entry["prev"]) == (6, entries[-1]["mac"])
    assert checked(path, marks, public_key).ok


@pytest.mark.parametrize("damage", ["garbage last line", "edited entry", "cut tail"])
def test_a_damaged_log_is_not_opened(log, signer, damage):
    """AuditLog refuses a damaged log (the node then refuses to start) and says what is wrong."""
    path, marks, entries, public_key = log
    rows = lines(path)
    if damage == "garbage last line":
        rows.append("{garbage\n")
    elif damage == "edited entry":
        rows[0] = rows[0].replace('"OK"', '"NG"')
    else:
        rows = rows[:-2]
    write(path, rows)
    with pytest.raises(AuditDamaged):
        AuditLog(path, "kizon-142140", KEY, marks, *signer)


def test_a_log_of_the_earlier_format_is_refused(tmp_path, signer):
    """Unkeyed entries of the earlier format are a downgrade: verify refuses them naming the rule, and a node does
    not open (or continue) a log that holds them."""
    path = tmp_path / "audit.jsonl"
    prev, rows = GENESIS, []
    for seq in (1, 2):
        entry = {"seq": seq, "time": "t", "node": "kizon-142140", "caller": CALLER, "operator": "", "terminal": "",
                 "method": "m", "subject": "", "status": "OK", "prev": prev}
        entry["hash"] = prev = entry_hash(entry)
        rows.append(dump(entry))
    write(path, rows)
    assert_broken(verify(path, KEY), "audit/keyed-chain")
    with pytest.raises(AuditDamaged, match="audit/keyed-chain"):
        AuditLog(path, "kizon-142140", KEY, tmp_path / "cp.jsonl", *signer)


def test_log_and_checkpoints_are_private(log):
    """The audit file and the checkpoints are readable by their owner only; the checkpoint folder is 0700."""
    path, marks, _, _ = log
    assert path.stat().st_mode & 0o777 == 0o600
    assert marks.stat().st_mode & 0o777 == 0o600 and marks.parent.stat().st_mode & 0o777 == 0o700


# -- with a network -------------------------------------------------------------------------------------------
def test_cli_verify_on_a_network(fresh_network, capsys):
    """`testbed audit verify` (no arguments) checks every node against its checkpoints: 0 when whole; 1, naming
    the node and the problem, after an entry is cut from the end; a node then refuses to start on it."""
    fresh_network.up()
    with Counter(fresh_network, "142140") as counter:
        counter(counter.kizon.GetIssuanceHistory, common_pb2.ResidentKey(resident_code="24727059608"))
    fresh_network.down()
    state = ["--state-dir", str(fresh_network.state_dir)]
    assert main(state + ["audit", "verify"]) == 0
    kizon = fresh_network.audit_file("kizon-142140")
    write(kizon, lines(kizon)[:-1])
    assert main(state + ["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert "FAIL kizon-142140" in out and "cut from the end" in out
    with pytest.raises(RuntimeError, match="kizon-142140"):
        fresh_network.up()
    assert "refusing to start: the audit log is damaged" in fresh_network.log_file("kizon-142140").read_text()
    fresh_network.down()


def test_login_is_audited_under_the_authenticated_operator(network):
    """A Login whose header claims another operator is audited under the operator the credential proved."""
    credential = network.pki.operators("142140")["OP0002"]["credential"]
    with channel(network.topology.find("kizon", "142140"), terminal_cert(network.pki, "142140", "T0002")) as ch:
        kizon_pb2_grpc.KizonStub(ch).Login(kizon_pb2.LoginRequest(operator_id="OP0002", credential=credential),
                                           metadata=((OPERATOR_KEY, "OP0003"),), timeout=10)
    def logins():
        entries = [json.loads(line) for line in network.audit_file("kizon-142140").read_text().splitlines()]
        return [e for e in entries if e["method"].endswith("/Login") and e["terminal"] == "T0002"]
    assert poll(logins, what="the Login's audit entry")[-1]["operator"] == "OP0002"


def test_node_files_hold_their_audit_key_apart(network):
    """Each node has an audit key of its own, private to its owner."""
    keys = {network.pki.audit_key_path(n.name).read_bytes() for n in network.topology.nodes}
    assert len(keys) == len(network.topology.nodes)
    assert all(network.pki.audit_key_path(n.name).stat().st_mode & 0o777 == 0o600 for n in network.topology.nodes)
    assert os.path.exists(network.checkpoints_file("national"))
