"""nodes/deferred.py: a load into an empty identity file goes in without its secondary indexes, which are made after
it; a small batch, or one into a file that holds people, keeps them; a refused batch leaves them; kill -9 after the
batch that dropped them leaves their note, acted on at the next start; and through real nodes, a load of 1,200
leaves the CS, the prefecture and national with every index again, searches answered from them."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import make_network
from nodes import deferred, identityfile
from nodes.deferred import DEFER_AT, DeferredIndexes
from nodes.store import Store
from protos import identity_pb2, ops_pb2, ops_pb2_grpc, records_pb2
from testbed.client import channel, monitor_cert

SECONDARY = {"identity_municipality", "identity_number", "identity_kana", "identity_kanji"}


class Runtime:
    """What DeferredIndexes takes of a node's runtime: its store, and where its background tasks go."""

    def __init__(self, path):
        self.store = Store(path, identityfile.SCHEMA + identityfile.SEARCH_SCHEMA)
        self.tasks = []

    def background(self, coroutine_function) -> None:
        self.tasks.append(coroutine_function)


def infos(count: int, start: int = 0) -> list:
    """count people of 伊勢原市 with distinct 住民票コード."""
    return [records_pb2.IdentityInfo(resident_code=f"{10_000_000_000 + start + i:011d}", municipality_code="142140",
                                     update_sequence=start + i + 1, name_kana=f"テスト タロウ{start + i}", name_kanji=f"試験 太郎{start + i}",
                                     birth_date="1980-01-01", sex="1", address="神奈川県伊勢原市田中1番地", timestamp="2026-12-01T09:00:00")
            for i in range(count)]


def indexes(store) -> set[str]:
    return {n for (n,) in store.db.execute("SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='identity' "
                                           "AND sql IS NOT NULL")}


def write(runtime, part, people) -> None:
    with runtime.store.transaction() as db:
        identityfile.store_identities(db, people, indexes=part)


def test_a_load_into_the_empty_file_goes_in_without_its_indexes_and_gets_them_after(tmp_path):
    """The first large batch drops the non-unique indexes and notes them (the primary key stays: every write of a
    load goes by it); the next batches keep them off; build() makes them again and the search uses them."""
    runtime = Runtime(tmp_path / "node.db")
    part = DeferredIndexes(runtime, "identity")
    assert indexes(runtime.store) == SECONDARY and runtime.tasks == [part.run]
    write(runtime, part, infos(DEFER_AT))
    assert indexes(runtime.store) == set() and deferred.pending(runtime.store.db) == len(SECONDARY)
    write(runtime, part, infos(10, start=DEFER_AT))  # (a small batch of the same load)
    assert indexes(runtime.store) == set()
    plan = " ".join(r[-1] for r in runtime.store.db.execute(
        "EXPLAIN QUERY PLAN SELECT 1 FROM identity WHERE resident_code=? AND municipality_code=?", ("1", "142140")))
    assert "sqlite_autoindex_identity_1" in plan
    assert part.build() == len(SECONDARY)
    assert indexes(runtime.store) == SECONDARY and deferred.pending(runtime.store.db) == 0
    found = identityfile.search(runtime.store, identity_pb2.IdentitySearch(name_kana="テスト タロウ7", birth_date="1980-01-01"))
    assert [p.resident_code for p in found.matches] == [infos(8)[7].resident_code]
    assert runtime.store.scalar("SELECT COUNT(*) FROM identity") == DEFER_AT + 10


@pytest.mark.parametrize("before, batch", [(1, DEFER_AT), (0, DEFER_AT - 1)])
def test_a_small_batch_or_a_file_that_holds_people_keeps_its_indexes(tmp_path, before, batch):
    """Only a large batch into an empty file is a load: anything else is written with every index in step."""
    runtime = Runtime(tmp_path / "node.db")
    part = DeferredIndexes(runtime, "identity")
    if before:
        write(runtime, part, infos(before, start=50_000))
    write(runtime, part, infos(batch))
    assert indexes(runtime.store) == SECONDARY and deferred.pending(runtime.store.db) == 0


def test_a_refused_batch_leaves_the_indexes_as_they_were(tmp_path):
    """The drop and its note are in the batch's transaction: a batch refused after them takes both back."""
    runtime = Runtime(tmp_path / "node.db")
    part = DeferredIndexes(runtime, "identity")
    with pytest.raises(RuntimeError):
        with runtime.store.transaction() as db:
            identityfile.store_identities(db, infos(DEFER_AT), indexes=part)
            raise RuntimeError("refused after the rows were written")
    assert indexes(runtime.store) == SECONDARY and deferred.pending(runtime.store.db) == 0
    assert runtime.store.scalar("SELECT COUNT(*) FROM identity") == 0
    part.build()  # (what the background task does next: nothing noted, nothing to make)
    assert indexes(runtime.store) == SECONDARY


def test_kill_after_the_batch_that_dropped_them_leaves_a_note_the_next_start_acts_on(tmp_path):
    """A process that committed the first batch of a load and died (os._exit: no cleanup, as kill -9) leaves the
    rows and the note; the next DeferredIndexes on the file makes the indexes before the node serves."""
    path = tmp_path / "node.db"
    script = textwrap.dedent(f"""
        import os, sys
        sys.path[:0] = {[str(p) for p in (os.getcwd(), os.path.join(os.getcwd(), "tests"))]!r}
        from test_deferred import Runtime, infos, write
        from nodes.deferred import DeferredIndexes, DEFER_AT
        runtime = Runtime({str(path)!r})
        write(runtime, DeferredIndexes(runtime, "identity"), infos(DEFER_AT))
        os._exit(9)
    """)
    died = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert died.returncode == 9, died.stderr
    raw = Store(path)  # (the file as the crash left it, before any schema runs again)
    assert indexes(raw) == set() and deferred.pending(raw.db) == len(SECONDARY)
    assert raw.scalar("SELECT COUNT(*) FROM identity") == DEFER_AT
    raw.close()
    runtime = Runtime(path)  # (the node's schema says CREATE INDEX IF NOT EXISTS: made again here already)
    DeferredIndexes(runtime, "identity")
    assert indexes(runtime.store) == SECONDARY and deferred.pending(runtime.store.db) == 0


def test_a_load_through_the_network_leaves_every_hop_with_its_indexes(tmp_path):
    """1,200 residents loaded kizon → CS → prefecture → national: each hop went in without its indexes, says so
    in its log, and has them all again a few seconds after the last batch (the load's end at each hop), and
    GetStatus reports none left."""
    from testbed.load import generate_population, load_records, wait_until_indexed
    network = make_network(tmp_path / "state")
    network.up()
    try:
        records, _ = generate_population(network, "142140", 1_200, seed=11)
        asyncio.run(load_records(network, "142140", records, show_progress=False))
        asyncio.run(wait_until_indexed(network, timeout=60))
        for name in ("cs-142140", "prefecture-140007", "national"):
            node = network.topology.node(name)
            with channel(node, monitor_cert(network.pki, node.kind)) as ch:
                status = ops_pb2_grpc.OperationsStub(ch).GetStatus(ops_pb2.StatusRequest(), timeout=10)
            assert status.deferred_indexes == 0
            store = Store(network.state_dir / "data" / name / "store.sqlite", read_only=True)
            expected = SECONDARY if name != "prefecture-140007" else {"identity_municipality"}
            assert indexes(store) >= expected, name
            store.close()
        log = network.log_file("national").read_text()
        assert "a load into the empty identity: 4 indexes made after it" in log
        assert "4 indexes of identity made after the load" in log
    finally:
        network.down()
