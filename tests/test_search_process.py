"""本人確認情報検索 from the CS's search process: the same identity, rules and audit as the CS, a read-only
view of its store, a process of its own that searches while the CS is busy (or stopped), that comes back
when killed and dies with its CS."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys

import psutil
import pytest
from grpc import StatusCode as Code

from certs.identity import LAN, terminal_uri
from helpers import kill, minted_cert, move_in_from_abroad, person, poll, refused
from nodes.store import Store
from protos import common_pb2, cs_pb2_grpc, identity_pb2
from testbed.client import Counter, channel, fetch_metrics, monitor_cert, terminal_cert

A, B = "142140", "142115"


def search_entries(network, municipality: str = A) -> list[dict]:
    """The SearchIdentity entries of a CS's search chain."""
    path = network.audit_file(f"cs-{municipality}.search")
    return [e for e in map(json.loads, path.read_text().splitlines()) if e["method"].endswith("/SearchIdentity")]


def cs_searches(network, municipality: str = A) -> int:
    """How many SearchIdentity calls the CS itself has audited."""
    lines = network.audit_file(f"cs-{municipality}").read_text().splitlines()
    return sum(1 for e in map(json.loads, lines) if e["method"].endswith("/SearchIdentity"))


def search_child(network, municipality: str = A) -> psutil.Process | None:
    """The running search process of a CS (its child), or None."""
    pid = network.pid(f"cs-{municipality}")
    if pid is None:
        return None
    found = [c for c in psutil.Process(pid).children() if "nodes.search_process" in " ".join(c.cmdline())]
    return found[0] if found else None


def by_name(counter: Counter, who) -> identity_pb2.IdentitySearchResult:
    return counter(counter.cs.SearchIdentity, identity_pb2.IdentitySearch(name_kana=who.name_kana,
                                                                          birth_date=who.birth_date), timeout=10)


def test_a_terminal_search_is_answered_and_audited_by_the_search_process(network, clerk):
    """The terminal's search reaches the search process: found at once after the 異動, audited in the search
    chain with the operator and terminal, and not in the CS's own chain."""
    who = person("検索 一郎", "ケンサク イチロウ", "1984-04-04")
    moved = move_in_from_abroad(clerk, who)
    before = cs_searches(network)
    found = by_name(clerk, who)
    assert [m.resident_code for m in found.matches] == [moved.resident_code] and found.source == "cs"
    last = search_entries(network)[-1]
    assert (last["node"], last["operator"], last["terminal"], last["status"]) == (f"cs-{A}.search", "OP0001", "T0001", "OK")
    assert last["caller"].endswith(f"/lg/{A}/terminal/T0001")
    assert cs_searches(network) == before
    assert network.verify_audit(f"cs-{A}.search").ok


def test_the_search_process_holds_the_cs_rules(network, clerk):
    """The CS's rules at the search port: the two-item rule, an operator session, the terminal's own
    municipality, the CS's policy (default deny), and nothing but SearchIdentity (UNIMPLEMENTED, method rule)."""
    with refused(Code.INVALID_ARGUMENT, "検索 rule", reason="SEARCH_TWO_ITEMS"):
        clerk(clerk.cs.SearchIdentity, identity_pb2.IdentitySearch(name_kana="ケンサク イチロウ"))
    cs = network.topology.find("cs", A)
    with channel(cs.search_end(), terminal_cert(network.pki, A, "T0001")) as ch:
        stub = cs_pb2_grpc.CommunicationServerStub(ch)
        with refused(Code.UNAUTHENTICATED, "operator rule", reason="SESSION_REQUIRED"):
            stub.SearchIdentity(identity_pb2.IdentitySearch(resident_code="12345678901"), timeout=10)
        with refused(Code.UNIMPLEMENTED, "method rule", f"cs-{A}.search",
                     reason="METHOD_UNKNOWN"):  # the CS answers it; this process does not
            stub.GetIdentity(common_pb2.ResidentKey(resident_code="12345678901"), metadata=clerk.metadata, timeout=10)
        with refused(Code.UNIMPLEMENTED, "method rule", f"cs-{A}.search",
                     reason="METHOD_UNKNOWN"):  # nor a CS method the terminal may not call
            stub.SubmitIdentityUpdates(identity_pb2.IdentityUpdateBatch(), metadata=clerk.metadata, timeout=10)
    with Counter(network, B) as other, channel(cs.search_end(), terminal_cert(network.pki, B, "T0001")) as ch:
        with refused(Code.PERMISSION_DENIED, reason="POLICY_SCOPE"):  # 秦野市's terminal at 伊勢原市's CS
            cs_pb2_grpc.CommunicationServerStub(ch).SearchIdentity(
                identity_pb2.IdentitySearch(resident_code="12345678901"), metadata=other.metadata, timeout=10)
    assert {e["status"] for e in search_entries(network)[-3:]} >= {"UNAUTHENTICATED", "PERMISSION_DENIED"}


def test_searches_go_on_while_the_cs_is_stopped(network, clerk):
    """With the CS's own process stopped (SIGSTOP: as if its event loop were busy for seconds), a search is
    still answered: it never waits in the CS's event loop."""
    who = person("検索 二郎", "ケンサク ジロウ", "1985-05-05")
    moved = move_in_from_abroad(clerk, who)
    pid = network.pid(f"cs-{A}")
    os.kill(pid, signal.SIGSTOP)
    try:
        assert [m.resident_code for m in by_name(clerk, who).matches] == [moved.resident_code]
    finally:
        os.kill(pid, signal.SIGCONT)


def test_the_search_store_connection_cannot_write(tmp_path):
    """The search process's connection to the CS's store is read-only: a write is refused by SQLite itself."""
    writer = Store(tmp_path / "store.sqlite", "CREATE TABLE t (x INTEGER);")
    reader = Store(tmp_path / "store.sqlite", read_only=True)
    try:
        with writer.transaction() as db:
            db.execute("INSERT INTO t VALUES (1)")
        assert reader.scalar("SELECT COUNT(*) FROM t") == 1
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.db.execute("INSERT INTO t VALUES (2)")
        assert writer.scalar("SELECT COUNT(*) FROM t") == 1
    finally:
        reader.close()
        writer.close()


def test_a_killed_search_process_comes_back_and_dies_with_its_cs(fresh_network):
    """kill -9 of the search process: the CS starts it again and searches resume; kill -9 of the CS: its search
    process goes too (nothing left holding the port), and `up` brings both back."""
    network = fresh_network
    network.up()
    with Counter(network, A) as clerk:
        who = person("検索 三郎", "ケンサク サブロウ", "1986-06-06")
        moved = move_in_from_abroad(clerk, who)
        first = search_child(network)
        assert first is not None
        first.kill()
        first.wait(5)
        poll(lambda: (c := search_child(network)) is not None and c.pid != first.pid or None, what="a new search process")
        found = poll(lambda: _search_or_none(clerk, who), what="searches answered again")
        assert [m.resident_code for m in found.matches] == [moved.resident_code]
    child = search_child(network)
    kill(network, f"cs-{A}")
    child.wait(5)  # (raises if it outlives its CS)
    assert not child.is_running()
    assert all(s["healthy"] for s in network.up())
    with Counter(network, A) as clerk:
        assert [m.resident_code for m in by_name(clerk, who).matches] == [moved.resident_code]
    assert network.verify_audit(f"cs-{A}.search").ok


def _search_or_none(clerk, who):
    try:
        return by_name(clerk, who)
    except Exception:  # (UNAVAILABLE while it starts)
        return None


def test_the_search_process_serves_its_own_metrics_to_the_monitor(network, clerk):
    """Its metrics (the search port + 1000) count and time the terminals' searches and name the process; the
    domain's monitor reads them, a terminal gets 403; `testbed metrics cs-M.search` prints them."""
    clerk(clerk.cs.SearchIdentity, identity_pb2.IdentitySearch(name_kana="ケンサク シロウ", birth_date="1987-07-07"))
    end = network.topology.find("cs", A).search_end()
    status, body = fetch_metrics(end, monitor_cert(network.pki, "cs"))
    assert status == 200
    method = "/testbed.v1.CommunicationServer/SearchIdentity"
    assert f'testbed_request_seconds_count{{method="{method}"}}' in body
    assert f'testbed_node_info{{identity="spiffe://testbed.jp/lg/{A}/cs",kind="cs",node="cs-{A}.search"}} 1.0' in body
    status, body = fetch_metrics(end, terminal_cert(network.pki, A, "T0001"))
    assert status == 403 and "metrics rule" in body
    run = subprocess.run([sys.executable, "-m", "testbed.cli", "--state-dir", str(network.state_dir), "metrics",
                          f"cs-{A}.search"], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and method in run.stdout


def test_the_search_port_as_an_attacker_tries_it(network, clerk, tmp_path):
    """A certificate the CA issued to a terminal the topology does not name, a 10,000-character key, impossible
    and future 生年月日, and another municipality's people asked for by 住民票コード: each refused naming its rule
    or answered with nothing of theirs, and each call audited in the search chain."""
    cs = network.topology.find("cs", A)
    stranger = minted_cert(network, tmp_path, LAN, terminal_uri(A, "T9999"))
    with channel(cs.search_end(), stranger, verify_server=False) as ch:
        with refused(Code.UNAUTHENTICATED, "identity rule", reason="CERTIFICATE_NOT_IN_TOPOLOGY"):
            cs_pb2_grpc.CommunicationServerStub(ch).SearchIdentity(
                identity_pb2.IdentitySearch(resident_code="24727059608"), metadata=clerk.metadata, timeout=10)
    with refused(Code.INVALID_ARGUMENT, "項目長 rule", reason="ITEM_LENGTH"):
        clerk(clerk.cs.SearchIdentity, identity_pb2.IdentitySearch(name_kana="長" * 10_000, birth_date="1990-01-02"))
    for date in ("9999-99-99", "2999-01-01", "not a date"):
        with refused(Code.INVALID_ARGUMENT, "生年月日 rule"):
            clerk(clerk.cs.SearchIdentity, identity_pb2.IdentitySearch(name_kana="ケンサク イチロウ", birth_date=date))
    with Counter(network, B) as other:
        theirs = move_in_from_abroad(other, person("他市 花子", "タシ ハナコ", "1991-01-01"))
    found = clerk(clerk.cs.SearchIdentity, identity_pb2.IdentitySearch(resident_code=theirs.resident_code))
    assert not found.matches  # 伊勢原市's search process holds none of 秦野市's people
    statuses = [e["status"] for e in search_entries(network)[-6:]]
    assert statuses == ["UNAUTHENTICATED", "INVALID_ARGUMENT", "INVALID_ARGUMENT", "INVALID_ARGUMENT",
                        "INVALID_ARGUMENT", "OK"], statuses
