"""The tree of ranges of the 整合性確認 (nodes/digests.py) and the scrubber that keeps it honest, on real stores: the
ranges follow every write (whoever writes), two stores' walk goes down only where they differ, and a record damaged
behind its digests, or a range damaged behind its records, is found by the scrubber."""
from __future__ import annotations

import asyncio
import random
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes import digests, filedigests, identityfile
from nodes.kizon import register
from nodes.numbers import with_resident_code_check
from nodes.refusal import Violation
from nodes.scrubber import Scrubber
from nodes.store import Store
from protos import common_pb2, records_pb2

M = "142140"


def info(code: str, name: str = "範囲 太郎", sequence: int = 1) -> records_pb2.IdentityInfo:
    """A minimal 本人確認情報 of municipality M."""
    return records_pb2.IdentityInfo(resident_code=code, municipality_code=M, name_kanji=name, name_kana="ハンイ タロウ",
                                    birth_date="1990-01-01", sex="1", address="神奈川県", update_sequence=sequence,
                                    timestamp="2026-12-01T00:00:00")


def codes(n: int, seed: int = 0) -> list[str]:
    """n distinct 11-digit codes spread over the ranges (as national's random ones are)."""
    return [with_resident_code_check(f"{c:010d}") for c in random.Random(seed).sample(range(10**10), n)]


@pytest.fixture
def store(tmp_path):
    """An identity file, as the CS, the prefecture and national keep it."""
    opened = Store(tmp_path / "store.sqlite", identityfile.SCHEMA)
    yield opened
    opened.close()


def write(store, infos, register: bool = True) -> None:
    """Store 本人確認情報 as the CS does (register: False as the prefecture and national do)."""
    with store.transaction() as db:
        identityfile.store_identities(db, infos, register=register)


def kept_equals_rows(store) -> bool:
    """Every leaf range holds what its rows give."""
    return all(identityfile.TREE.recompute(store.db, M, d) == identityfile.TREE.kept(store.db, M, d) for d in "0123456789")


@given(st.lists(st.tuples(st.integers(0, 40), st.sampled_from(["write", "rename", "delete"])), max_size=40))
@settings(max_examples=40, deadline=None)
def test_the_ranges_follow_every_write(tmp_path_factory, steps):
    """Writes, replacements, 住民票コード変更 and deletions in any order: the ranges are always what the rows give."""
    store = Store(tmp_path_factory.mktemp("ranges") / "store.sqlite", identityfile.SCHEMA)
    try:
        pool = codes(41)
        for i, what in steps:
            if what == "write":
                write(store, [info(pool[i], name=f"範囲 {i}")])
            elif what == "rename":
                renamed = info(pool[(i + 1) % 41], name=f"変更 {i}")
                renamed.change_reason, renamed.former_resident_code = "住民票コード変更", pool[i]
                write(store, [renamed])
            else:
                with store.transaction() as db:
                    db.execute("DELETE FROM identity WHERE resident_code=?", (pool[i],))
            assert kept_equals_rows(store)
        count = store.scalar("SELECT COUNT(*) FROM identity", default=0)
        assert sum(r.records for r in identityfile.TREE.children(store.db, 0, [], M)) == count
    finally:
        store.close()


def walk(a, b, kind=identityfile.IDENTITY):
    """The differing leaves of two identity files, and how many ranges' digests were asked of the other."""
    asked = []
    theirs_tree = filedigests.tree_of(b, M, kind)

    async def theirs(prefixes):
        asked.append(len(prefixes))
        return await theirs_tree(prefixes)
    leaves, here, there = asyncio.run(digests.differing_leaves(filedigests.tree_of(a, M, kind), theirs))
    return leaves, here, there, asked


def test_two_files_are_compared_range_by_range_down_to_the_leaves_that_differ(tmp_path):
    """Equal files agree at the top; one changed record and one lost lead down to their two leaves only, and the
    records of those leaves are all that is compared."""
    a, b = Store(tmp_path / "a.sqlite", identityfile.SCHEMA), Store(tmp_path / "b.sqlite", identityfile.SCHEMA)
    try:
        people = [info(c) for c in codes(2000)]
        write(a, people)
        write(b, people)
        assert walk(a, b)[:3] == ([], 2000, 2000)
        changed, lost = people[10], people[1500]
        write(b, [info(changed.resident_code, name="範囲 改竄", sequence=2)])
        with b.transaction() as db:
            db.execute("DELETE FROM identity WHERE resident_code=?", (lost.resident_code,))
        leaves, here, there, asked = walk(a, b)
        assert leaves == sorted({changed.resident_code[:4], lost.resident_code[:4]}) and (here, there) == (2000, 1999)
        assert asked == [0, len({changed.resident_code[:1], lost.resident_code[:1]}),
                         len({changed.resident_code[:2], lost.resident_code[:2]}),
                         len({changed.resident_code[:3], lost.resident_code[:3]})]
        ours, theirs = (filedigests.records_in(s, M, leaves, identityfile.IDENTITY) for s in (a, b))
        assert lost.resident_code in ours and lost.resident_code not in theirs
        assert ours[changed.resident_code] != theirs[changed.resident_code]
        assert {c for c in ours if ours[c] != theirs.get(c)} == {changed.resident_code, lost.resident_code}
        assert len(ours) < 10  # (the leaves' records only, not 2,000)
    finally:
        a.close(), b.close()


def test_the_scrubber_finds_a_record_changed_behind_its_digests_and_the_walk_then_does(tmp_path):
    """A record's bytes changed and its digests left: the ranges still agree (nothing looked at the bytes), the
    scrubber's pass finds the record and gives it the digests its bytes give, and then the walk leads to it."""
    a, b = Store(tmp_path / "a.sqlite", identityfile.SCHEMA), Store(tmp_path / "b.sqlite", identityfile.SCHEMA)
    try:
        people = [info(c) for c in codes(300)]
        write(a, people)
        write(b, people)
        victim = people[42]
        with sqlite3.connect(b.path) as db:  # (behind the node's back, as a damaged disk or an intruder would)
            damaged = info(victim.resident_code, name="範囲 改竄")
            db.execute("UPDATE identity SET info=? WHERE resident_code=?", (damaged.SerializeToString(), victim.resident_code))
        assert walk(a, b)[0] == []
        scrubber = filedigests.scrubber(b, register=True)
        while scrubber.slice(100):
            pass
        assert scrubber.done.damaged_records == 1 and scrubber.done.records == 300
        assert walk(a, b)[0] == [victim.resident_code[:4]]
        assert walk(a, b, identityfile.REGISTER)[0] == [victim.resident_code[:4]]  # (a REGISTER_ITEM changed too)
        assert scrubber.check_ranges() == 0 and kept_equals_rows(b)
    finally:
        a.close(), b.close()


def test_the_scrubber_computes_a_damaged_range_again(store):
    """A leaf range changed behind its records (the range table written directly) is found at the end of a pass
    and computed again from the rows; an unreadable record gets digests equal to no record's."""
    write(store, [info(c) for c in codes(200)])
    leaf = codes(200)[7][:4]
    store.db.execute(f"UPDATE {identityfile.TREE.ranges} SET dx1 = dx1 + 1 WHERE prefix=?", (leaf,))
    store.db.execute("UPDATE identity SET info=? WHERE resident_code=?", (b"\x0a\xff", codes(200)[9]))
    scrubber = filedigests.scrubber(store, register=True)
    assert not kept_equals_rows(store)
    while scrubber.slice(1000):
        pass
    assert scrubber.check_ranges() >= 1 and kept_equals_rows(store)
    assert scrubber.done.damaged_records == 1


def test_the_register_keeps_its_ranges_as_the_cs_keeps_its_register_digests(tmp_path):
    """kizon's 住民票 and the CS's 本人確認情報 of the same people give the same register ranges."""
    cs = Store(tmp_path / "cs.sqlite", identityfile.SCHEMA)
    kizon = Store(tmp_path / "kizon.sqlite", "CREATE TABLE residents (atena_number TEXT PRIMARY KEY, resident_code TEXT "
                  "NOT NULL UNIQUE, household_number TEXT NOT NULL, history_number INTEGER NOT NULL, status INTEGER NOT "
                  "NULL, town_code TEXT NOT NULL, record BLOB NOT NULL, rx1 INTEGER NOT NULL DEFAULT 0, rx2 INTEGER NOT "
                  "NULL DEFAULT 0);" + register.TREE.schema())
    try:
        people = [info(c) for c in codes(500)]
        write(cs, people)
        records = [records_pb2.ResidentRecord(atena_number=f"{i:015d}", resident_code=p.resident_code, name_kanji=p.name_kanji,
                                              name_kana=p.name_kana, birth_date=p.birth_date, sex=p.sex,
                                              municipality_code=M, address=p.address, household_number="1")
                   for i, p in enumerate(people)]
        with kizon.transaction() as db:
            db.executemany(register.INSERT_RESIDENT, [register.resident_row(r, r.SerializeToString()) for r in records])
        ours = identityfile.TREE.children(cs.db, identityfile.REGISTER, ["1", "5"], M)
        assert ours and ours == register.TREE.children(kizon.db, 0, ["1", "5"])
        kizon_scrubber = Scrubber(kizon, register.TREE, "record", ("rx1", "rx2"), register.kept_digests)
        while kizon_scrubber.slice(100):
            pass
        assert kizon_scrubber.done.damaged_records == 0 and kizon_scrubber.check_ranges() == 0
    finally:
        cs.close(), kizon.close()


def test_an_older_file_is_upgraded_once(tmp_path):
    """A file of the version before the tree of ranges gets its digest columns filled and its ranges built."""
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(identityfile.SCHEMA.split("CREATE TABLE IF NOT EXISTS identity_ranges")[0]
                         .replace("    dx1 INTEGER NOT NULL DEFAULT 0,         -- the digest's first 128 bits, for the tree "
                                  "of ranges (nodes/digests.py)\n", "")
                         .replace("    dx2 INTEGER NOT NULL DEFAULT 0,\n", "")
                         .replace("    rx1 INTEGER NOT NULL DEFAULT 0,         -- … and the REGISTER_ITEMS digest's: "
                                  "what kizon's 住民票 must match\n", "")
                         .replace("    rx2 INTEGER NOT NULL DEFAULT 0,\n", ""))
        assert "dx1" not in {r[1] for r in db.execute("PRAGMA table_info(identity)")}
        for person in (info(c) for c in codes(50)):
            db.execute("INSERT INTO identity VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       identityfile.row(person)[:11] + identityfile.row(person)[-2:])
    store = Store(path, identityfile.SCHEMA)
    try:
        assert filedigests.upgrade(store) == 50 and filedigests.upgrade(store) == 0
        assert kept_equals_rows(store)
        fresh = Store(tmp_path / "fresh.sqlite", identityfile.SCHEMA)
        write(fresh, [info(c) for c in codes(50)], register=False)
        assert identityfile.TREE.children(store.db, 0, [], M) == identityfile.TREE.children(fresh.db, 0, [], M)
        fresh.close()
    finally:
        store.close()


def test_a_file_without_register_digests_is_not_damaged_by_their_absence(store):
    """The prefecture's and national's files keep no REGISTER_ITEMS digest (nothing compares it): their scrubber
    finds nothing to repair, and a CS's scrubber over such a file gives every record its register digest."""
    write(store, [info(c) for c in codes(120)], register=False)
    assert store.scalar("SELECT COUNT(*) FROM identity WHERE rx1 != 0 OR rx2 != 0", default=0) == 0
    assert asyncio.run(filedigests.scrubber(store).whole_pass()) == 0
    as_cs = filedigests.scrubber(store, register=True)
    assert asyncio.run(as_cs.whole_pass()) == 120 and kept_equals_rows(store)


def test_a_pass_on_demand_gives_the_event_loop_its_turns(store, monkeypatch):
    """The scrub batch re-hashes a slice at a time and lets other calls run between slices (a node answers while
    `testbed batch scrub` runs), on a cursor of its own: the background pass goes on from where it was."""
    from nodes import scrubber as scrubbing
    monkeypatch.setattr(scrubbing, "WHOLE_PASS_SLICE", 50)
    write(store, [info(c) for c in codes(500)], register=False)
    scrubber = filedigests.scrubber(store)
    scrubber.slice(120)
    background_at = scrubber._after
    turns = []

    async def both():
        async def other_calls():
            while True:
                turns.append(scrubber.done.records)
                await asyncio.sleep(0)
        other = asyncio.create_task(other_calls())
        damaged = await scrubber.whole_pass()
        other.cancel()
        return damaged

    assert asyncio.run(both()) == 0
    assert len({t for t in turns if 120 < t < 620}) >= 5, turns[:20]  # other calls ran between the slices
    assert scrubber._after == background_at and scrubber.done.records == 620


@pytest.mark.parametrize("prefixes", [["12345"], ["1a"], [""], ["0"] * (digests.MOST_PREFIXES + 1)])
def test_a_malformed_range_is_refused_by_its_rule(store, prefixes):
    """A range of more than four digits, of anything but digits, or too many of them: CONSISTENCY_RANGE."""
    request = common_pb2.ConsistencyRequest(municipality_code=M, prefixes=prefixes, ranges=True)
    with pytest.raises(Violation) as raised:
        list(filedigests.digests_asked(store, M, request, identityfile.IDENTITY))
    assert raised.value.reason == "CONSISTENCY_RANGE"


def test_a_walk_that_finds_the_difference_gone_further_down_counts_the_stores_again(tmp_path):
    """A store catching up during the walk (a record arrives between two levels): the walk ends with no leaf to
    compare, and the counts it gives are those of the stores as they are then, not of the first level."""
    a, b = Store(tmp_path / "a.sqlite", identityfile.SCHEMA), Store(tmp_path / "b.sqlite", identityfile.SCHEMA)
    try:
        people = [info(c) for c in codes(50)]
        write(a, people)
        write(b, people[:-1])
        late = people[-1]

        async def theirs(prefixes):
            answer = await identityfile_tree(prefixes)
            if prefixes:  # (after the first level: the last record has arrived)
                if not b.scalar("SELECT 1 FROM identity WHERE resident_code=?", (late.resident_code,)):
                    write(b, [late])
                answer = await identityfile_tree(prefixes)
            return answer
        identityfile_tree = filedigests.tree_of(b, M, identityfile.IDENTITY)
        leaves, here, there = asyncio.run(digests.differing_leaves(filedigests.tree_of(a, M, identityfile.IDENTITY), theirs))
        assert (leaves, here, there) == ([], 50, 50)
    finally:
        a.close(), b.close()


def test_batch_calls_during_a_pass_share_it(store, monkeypatch):
    """Scrub batches asked while one runs wait for that pass instead of starting their own: twenty callers, one pass,
    the same answer each."""
    from nodes import scrubber as scrubbing
    monkeypatch.setattr(scrubbing, "WHOLE_PASS_SLICE", 50)
    write(store, [info(c) for c in codes(300)], register=False)
    scrubber = filedigests.scrubber(store)

    async def twenty():
        return await asyncio.gather(*(scrubber.whole_pass() for _ in range(20)))

    assert asyncio.run(twenty()) == [0] * 20
    assert scrubber.done.passes == 1 and scrubber.done.records == 300
    assert asyncio.run(scrubber.whole_pass()) == 0 and scrubber.done.passes == 2  # (a pass once the last is over)
