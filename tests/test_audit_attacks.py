"""The audit trail attacked by someone with write access to the state folder (DESIGN §3 trust hygiene, §13): a tail
cut with its checkpoints, a downgrade to the older unkeyed format, a chain re-made with the keys found there, a log
deleted, the bastion's chain and an archived chain of a decommissioned site edited. Each attack is written as the
attacker would do it; the witness (nodes/witness.py), which keeps its own key and log outside the state folder,
finds each one, `testbed audit verify` and `testbed check` report it, and a node refuses to start on it."""
from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import make_network
from helpers import key, move_in_from_abroad
from nodes import witness
from nodes.audit import GENESIS, Signer, entry_hash, entry_mac
from testbed import bastion
from testbed.check import check_network
from testbed.cli import main
from testbed.client import Counter
from testbed.network import BASTION_CHAIN

A, B = "142140", "142115"
SNAPSHOT = ("data", "checkpoints", "bastion", "archive", "pki", "topology.yaml")


def lines(path: Path) -> list[str]:
    return path.read_text("utf-8").splitlines(keepends=True)


def dump(entry: dict) -> str:
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"


def verify_all(network, capsys, *paths) -> tuple[int, str]:
    """`testbed audit verify [PATH...]`: (exit status, what it printed)."""
    status = main(["--state-dir", str(network.state_dir), "audit", "verify", *map(str, paths)])
    out = capsys.readouterr()
    return status, out.out + out.err


def decommission(network, municipality: str, site: str) -> list:
    """A cut over and a decommission as the rehearsal does them (testbed/migration/rehearsal.py): the old nodes leave
    the topology and stop, their audit trail is kept aside in archive/NODE/, their data and keys are destroyed."""
    topology, replaced = network.topology.cut_over(municipality, site)
    network.replace_topology(topology)
    for node in replaced:
        pid = network.pid(node.name)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while network.pid(node.name) and time.monotonic() < deadline:
            time.sleep(0.05)
        network.pid_file(node.name).unlink(missing_ok=True)
        keep = network.state_dir / "archive" / node.name
        keep.mkdir(mode=0o700, parents=True, exist_ok=True)
        for evidence in (network.audit_file(node.name), network.checkpoints_file(node.name)):
            shutil.copy2(evidence, keep / evidence.name)
        shutil.rmtree(network.state_dir / "data" / node.name)
        shutil.rmtree(network.state_dir / "pki" / "nodes" / node.name)
    return replaced


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """A network that ran: 異動 in both municipalities, a hundred searches at 伊勢原市's kizon, a vendor at the bastion,
    伊勢原市 cut over to gcloud and its old kizon and atena decommissioned; then taken down (every head witnessed)."""
    net = make_network(tmp_path_factory.mktemp("attacked"))
    try:
        net.up()
        with Counter(net, A) as clerk:
            people = [move_in_from_abroad(clerk) for _ in range(5)]
            for _ in range(110):
                clerk(clerk.kizon.GetResident, key(people[0].resident_code))
        with Counter(net, B) as clerk:
            for _ in range(5):
                move_in_from_abroad(clerk)
        paths = bastion.Paths(net.state_dir)
        bastion.add_vendor(paths, "vendor-a")
        bastion.start(net.state_dir)
        assert asyncio.run(bastion.run_command(net.state_dir, "vendor-a", "rm -rf /", io.StringIO())) == 2
        bastion.stop(net.state_dir)
        decommission(net, A, "gcloud")
    finally:
        net.down()
    yield net


@pytest.fixture
def network(ran, tmp_path):
    """The network that ran, as it was before each attack (the witness's folder is not the attacker's to restore)."""
    kept = tmp_path / "kept"
    for name in SNAPSHOT:
        source = ran.state_dir / name
        if source.is_dir():
            shutil.copytree(source, kept / name, symlinks=True)
        elif source.exists():
            kept.mkdir(exist_ok=True)
            shutil.copy2(source, kept / name)
    yield type(ran).open(ran.state_dir)
    witness.stop(ran.witness_folder())
    for name in SNAPSHOT:
        target = ran.state_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
        if (kept / name).is_dir():
            shutil.copytree(kept / name, target, symlinks=True)
        elif (kept / name).exists():
            shutil.copy2(kept / name, target)


def start_node(network, name: str) -> subprocess.CompletedProcess:
    """Start one node as `testbed up` would (with the witness running), expecting it to refuse and exit."""
    network.start_witness()
    program = [sys.executable, "-m", "nodes", "--topology", str(network.topology_file), "--node", name,
               "--state-dir", str(network.state_dir)]
    return subprocess.run(program, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def refusal_lines(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (done.stdout + done.stderr).splitlines() if "refusing to start" in line]


def test_the_network_that_ran_verifies_with_every_chain_witnessed(network, capsys):
    """Untouched, every chain verifies, the bastion's and the archived ones included, each up to its last head."""
    chains = network.audit_chains()
    assert BASTION_CHAIN in chains and f"kizon-{A}" in chains and f"atena-{A}" in chains and "national" in chains
    for chain in chains:
        result = network.verify_audit(chain)
        assert result.ok and result.entries and result.witnessed == result.entries, (chain, result.problems)
    status, out = verify_all(network, capsys)
    assert status == 0, out
    assert f"OK   kizon-{A}:" in out and "OK   bastion:" in out
    assert check_network(network).ok


def test_national_cut_with_the_checkpoints_above_the_cut(network, capsys):
    """(a) National's last 30 entries are cut together with the checkpoint lines that covered them: the signed
    checkpoints left agree with the shortened log, the witness does not."""
    log, marks = network.audit_file("national"), network.checkpoints_file("national")
    rows = lines(log)
    assert len(rows) > 30
    log.write_text("".join(rows[:-30]), "utf-8")
    marks.write_text("".join(m for m in lines(marks) if json.loads(m)["seq"] <= len(rows) - 30))
    status, out = verify_all(network, capsys)
    assert status == 1
    assert "FAIL national" in out and "cut from the end" in out and "audit/witnessed" in out
    assert any(f.node == "national" and f.invariant == "audit" for f in check_network(network).failures)
    done = start_node(network, "national")
    assert done.returncode == 1 and len(refusal_lines(done)) == 1, done.stdout + done.stderr
    assert "cut from the end" in refusal_lines(done)[0]


def test_a_downgrade_to_the_unkeyed_format_is_refused(network, capsys):
    """(b) cs-142140's log re-made as an unkeyed chain of the older format (3 entries deleted, a caller edited), with
    only its first checkpoint kept: verify refuses it naming the rule, and the node refuses to start on it, in one
    log line that says why and what to do."""
    chain = f"cs-{A}"
    log, marks = network.audit_file(chain), network.checkpoints_file(chain)
    entries = [json.loads(line) for line in lines(log)]
    kept = [e for e in entries if e["seq"] not in (3, 4, 5)]
    kept[2]["caller"] = "spiffe://testbed.jp/lg/142140/terminal/T0002"
    prev, rows = GENESIS, []
    for seq, entry in enumerate(kept, 1):
        entry = {k: v for k, v in entry.items() if k != "mac"} | {"seq": seq, "prev": prev}
        entry["hash"] = prev = entry_hash(entry)
        rows.append(dump(entry))
    log.write_text("".join(rows), "utf-8")
    marks.write_text(lines(marks)[0])
    status, out = verify_all(network, capsys)
    assert status == 1 and f"FAIL {chain}" in out and "audit/keyed-chain" in out
    done = start_node(network, chain)
    assert done.returncode == 1 and len(refusal_lines(done)) == 1, done.stdout + done.stderr
    line = refusal_lines(done)[0]
    assert "audit/keyed-chain" in line and "testbed audit verify" in line


def test_a_chain_re_made_with_the_keys_in_the_state_folder(network, capsys):
    """Three entries deleted and three forged in their place, re-chained with the node's audit key and the checkpoints
    re-signed with its certificate key (both readable in the state folder): MACs and signatures hold, the witnessed
    heads do not; the node refuses to start on it."""
    chain = f"kizon-{B}"
    log, marks = network.audit_file(chain), network.checkpoints_file(chain)
    audit_key = network.pki.audit_key(chain)
    signer = Signer(network.pki.node_files(chain, "client")[1].read_bytes())
    entries = [json.loads(line) for line in lines(log)]
    kept = [e for e in entries if e["seq"] not in (2, 3, 4)] + [dict(entries[-1], subject="forged")] * 3
    prev, rows = GENESIS, []
    for seq, entry in enumerate(kept, 1):
        entry = {k: v for k, v in entry.items() if k != "mac"} | {"seq": seq, "prev": prev}
        entry["mac"] = prev = entry_mac(audit_key, entry)
        rows.append(dump(entry))
    assert len(rows) == len(entries)
    log.write_text("".join(rows), "utf-8")
    mark = {"node": chain, "seq": len(rows), "head": prev, "time": "2026-01-01T00:00:00+00:00"}
    mark["sig"] = signer.sign(json.dumps(mark, sort_keys=True, separators=(",", ":")).encode())
    marks.write_text(json.dumps(mark) + "\n")
    result = network.verify_audit(chain)
    assert not any("MAC" in p or "checkpoint" in p for p in result.problems), result.problems
    assert any("not the ones witnessed" in p for p in result.problems), result.problems
    status, out = verify_all(network, capsys)
    assert status == 1 and f"FAIL {chain}" in out
    done = start_node(network, chain)
    assert done.returncode == 1 and "not the ones witnessed" in " ".join(refusal_lines(done)), done.stdout + done.stderr


def test_a_deleted_log_is_found_and_no_new_chain_begins_in_its_place(network, capsys):
    """National's log and checkpoints deleted: verify names the log the witness knows, and national does not start a
    fresh chain where it was."""
    network.audit_file("national").unlink()
    network.checkpoints_file("national").unlink()
    status, out = verify_all(network, capsys)
    assert status == 1 and "FAIL national" in out and "is gone" in out
    done = start_node(network, "national")
    assert done.returncode == 1 and "the log is gone" in " ".join(refusal_lines(done)), done.stdout + done.stderr
    assert not network.audit_file("national").exists() or not network.audit_file("national").read_text()


def test_the_bastions_chain_is_verified_like_the_nodes(network, capsys):
    """(c) The bastion's audit log is listed among the chains, keyed and witnessed: a cut tail or an edited entry is
    found by `testbed audit verify` and by `testbed check`."""
    log = bastion.Paths(network.state_dir).audit
    rows = lines(log)
    log.write_text("".join(rows[:-1]), "utf-8")
    status, out = verify_all(network, capsys)
    assert status == 1 and "FAIL bastion" in out and "cut from the end" in out
    assert any(f.node == BASTION_CHAIN for f in check_network(network).failures)
    log.write_text("".join(rows).replace('"PERMISSION_DENIED"', '"OK"'), "utf-8")
    status, out = verify_all(network, capsys)
    assert status == 1 and "FAIL bastion" in out and "MAC" in out


def test_an_archived_chain_is_verified_by_its_witnessed_heads(network, capsys):
    """(d) After the decommission, kizon-142140's key and certificate are gone with its site; its archived log cut to
    100 lines fails, with no arguments and when named, and so does an entry edited in it; no traceback."""
    archived = network.state_dir / "archive" / f"kizon-{A}" / "audit.jsonl"
    assert not network.pki.audit_key_path(f"kizon-{A}").exists()
    rows = lines(archived)
    assert len(rows) > 100
    archived.write_text("".join(rows[:100]), "utf-8")
    status, out = verify_all(network, capsys)
    assert status == 1 and f"FAIL kizon-{A}:" in out and "cut from the end" in out
    status, out = verify_all(network, capsys, archived)
    assert status == 1 and f"FAIL kizon-{A}:" in out and "Traceback" not in out
    assert any(f.node == f"kizon-{A}" for f in check_network(network).failures)
    edited = rows[:]
    edited[50] = edited[50].replace('"status":"OK"', '"status":"NOT_FOUND"')
    assert edited != rows
    archived.write_text("".join(edited), "utf-8")
    status, out = verify_all(network, capsys, archived)
    assert status == 1 and "not the ones witnessed" in out


def test_a_file_that_is_not_there_is_one_line_and_exit_2(network, capsys):
    """A missing file, a folder, or a file of no chain of this network, named explicitly: one line saying what is
    wrong and what to do (exit 2), never a traceback."""
    stranger = network.state_dir.parent / "stranger.jsonl"
    stranger.write_text(dump({"seq": 1, "node": "elsewhere", "mac": "0" * 64}))
    for path in (network.state_dir / "archive" / "nowhere" / "audit.jsonl", network.state_dir / "archive", stranger):
        status, out = verify_all(network, capsys, path)
        assert status == 2 and len(out.strip().splitlines()) == 1 and "Traceback" not in out, out
        assert str(path) in out and "no path to check every chain" in out


def test_the_witness_refuses_a_rollback_or_a_fork_and_its_log_is_signed(tmp_path):
    """The witness's own rules: a head with fewer entries than it witnessed (rollback) or the same count under
    another head (fork) is refused naming the rule; its log is private, chained and signed, and an edited record is
    found."""
    where = tmp_path / "w"
    book = witness.WitnessLog(where)
    first, why = book.witness("national", 10, "a" * 64, "b" * 64)
    assert first and not why
    assert book.witness("national", 10, "a" * 64, "b" * 64) == (None, "")
    assert "witness/no-rollback" in book.witness("national", 9, "c" * 64, "d" * 64)[1]
    assert "witness/no-fork" in book.witness("national", 10, "c" * 64, "d" * 64)[1]
    assert book.witness("national", 11, "c" * 64, "d" * 64)[0]["prev"] != ""
    assert oct(where.stat().st_mode & 0o777) == oct(0o700)
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in where.iterdir())
    heads = witness.read_heads(where)
    assert not heads.problems and [h["seq"] for h in heads.of("national")] == [10, 11]
    log = where / witness.LOG
    log.write_text(log.read_text().replace('"seq":10', '"seq":12'))
    assert any("not signed by the witness" in p for p in witness.read_heads(where).problems)
    with pytest.raises(witness.WitnessDamaged):
        witness.WitnessLog(where)


def test_the_witness_folder_lies_outside_the_state_folder(network):
    """The witness's folder comes from the environment, not from the state folder, and holds the witness's key."""
    where = network.witness_folder()
    assert Path(os.environ[witness.ENV]) in where.parents
    assert network.state_dir.resolve() not in where.resolve().parents
    assert (where / witness.KEY).exists() and not list(network.state_dir.rglob(witness.KEY))


def test_a_bastion_started_alone_has_its_chain_witnessed(network, capsys):
    """With the network down the bastion starts the witness itself, its new entries are witnessed, and the witness
    stops with it (nodes that run beside it would keep it)."""
    assert witness.running(network.witness_folder()) is None
    before = network.verify_audit(BASTION_CHAIN).entries
    bastion.start(network.state_dir)
    try:
        assert asyncio.run(bastion.run_command(network.state_dir, "vendor-a", "status; id", io.StringIO())) == 2
    finally:
        bastion.stop(network.state_dir)
    assert witness.running(network.witness_folder()) is None
    result = network.verify_audit(BASTION_CHAIN)
    assert result.ok and result.entries > before and result.witnessed == result.entries, result.problems
