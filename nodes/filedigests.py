"""The identity file as the 整合性確認 reads it: digests of the stored records (computed from their bytes), the tree of
ranges the file keeps (nodes/digests.py), the answers to a peer's digest requests, the scrubber, and the upgrade of a
file written before the tree of ranges."""
from __future__ import annotations

import asyncio

from google.protobuf.message import DecodeError

from nodes.digests import as_dict, check_prefixes
from nodes.identityfile import IDENTITY, TREE, kept_digests, stored_digest
from nodes.records import register_digest
from nodes.scrubber import Scrubber
from protos import common_pb2, records_pb2

DIGEST_BATCH = 20_000  # records of one DigestBatch


def digest_batches(store, municipality: str):
    """(住民票コード, digest) of a municipality's people, in batches; each digest is computed from the stored
    本人確認情報 itself, so that a damaged record cannot hide behind its old digest."""
    yield from _batches(_rows_of(store, municipality), stored_digest)


def stored_register_digest(blob: bytes) -> bytes:
    """register_digest() of a stored 本人確認情報, from its bytes."""
    return register_digest(records_pb2.IdentityInfo.FromString(blob))


def digests_asked(store, municipality: str, request, kind: int):
    """The answer to a digest request of the 整合性確認 (kind IDENTITY or REGISTER): the ranges one digit longer
    inside the prefixes asked (request.ranges), else the records of the ranges asked (of every range when none is
    named) with digests computed from their stored bytes; CONSISTENCY_RANGE for a malformed range."""
    prefixes = check_prefixes(request.prefixes)
    if request.ranges:
        yield common_pb2.DigestBatch(ranges=TREE.children(store.db, kind, prefixes, municipality))
        return
    digest_of = stored_digest if kind == IDENTITY else stored_register_digest
    if not prefixes:
        yield from _batches(_rows_of(store, municipality), digest_of)
        return
    for start in range(0, len(prefixes), 100):
        yield from _batches(_rows_in_ranges(store, municipality, prefixes[start:start + 100]), digest_of)


def _rows_in_ranges(store, municipality: str, prefixes: list[str]):
    """(住民票コード, stored 本人確認情報) of a municipality's people in the given ranges of 住民票コード."""
    where = " OR ".join("(resident_code >= ? AND resident_code < ?)" for _ in prefixes)
    bounds = [b for p in prefixes for b in TREE.bounds(p)]
    return store.db.execute(f"SELECT resident_code, info FROM identity WHERE municipality_code=? AND ({where})",
                            (municipality, *bounds))


def tree_of(store, municipality: str, kind: int):
    """The tree of ranges of this file for one municipality, as digests.differing_leaves() walks it."""
    async def children(prefixes):
        return as_dict(TREE.children(store.db, kind, prefixes, municipality))
    return children


def records_in(store, municipality: str, prefixes: list[str], kind: int) -> dict[str, bytes]:
    """住民票コード → digest computed from the stored bytes, of a municipality's people in the given ranges."""
    request = common_pb2.ConsistencyRequest(prefixes=prefixes)
    return {code: digest for batch in digests_asked(store, municipality, request, kind)
            for code, digest in zip(batch.resident_codes, batch.digests)}


def scrubber(store, register: bool = False) -> Scrubber:
    """The scrubber of this file: every stored 本人確認情報 re-hashed against its kept digests, its ranges checked
    (register: the file keeps the REGISTER_ITEMS digests too, as the CS's does)."""
    return Scrubber(store, TREE, "info", ("dx1", "dx2", "rx1", "rx2", "digest"),
                    lambda blob: kept_digests(blob, register))


def keep(runtime, register: bool = False) -> None:
    """At a node's start: an older file upgraded, and its scrubber run while the node runs (not in a reader)."""
    if not runtime.store.read_only:
        upgrade(runtime.store, register)
        runtime.scrub(scrubber(runtime.store, register))


def upgrade(store, register: bool = False) -> int:
    """A file written before the tree of ranges: add its digest columns, fill them from the stored bytes and build
    the ranges (once, at start); how many records were filled."""
    present = {r[1] for r in store.db.execute("PRAGMA table_info(identity)")}
    missing = [c for c in ("dx1", "dx2", "rx1", "rx2") if c not in present]
    if not missing:
        return 0
    with store.transaction() as db:
        for column in missing:
            db.execute(f"ALTER TABLE identity ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0")
        rows = db.execute("SELECT rowid, info FROM identity").fetchall()
        db.executemany("UPDATE identity SET dx1=?, dx2=?, rx1=?, rx2=?, digest=? WHERE rowid=?",
                       [(*kept_digests(blob, register), rowid) for rowid, blob in rows])
        TREE.rebuild(db)
    return len(rows)


def _rows_of(store, municipality: str):
    """(住民票コード, stored 本人確認情報) of a municipality's people in storage order: by a scan of the table when
    the municipality holds at least half of it (its pages read in order; through the index, each row is a
    random page once the file outgrows the cache: 300,000 people took seconds), else through its index."""
    own = store.scalar("SELECT COUNT(*) FROM identity WHERE municipality_code=?", (municipality,), 0)
    rows = store.scalar("SELECT MAX(rowid) FROM identity", default=0)
    scan = "NOT INDEXED " if own * 2 >= rows else ""
    return store.db.execute(f"SELECT resident_code, info FROM identity {scan}WHERE municipality_code=?", (municipality,))


def _batches(cursor, digest_of):
    while True:
        rows = cursor.fetchmany(DIGEST_BATCH)
        if not rows:
            return
        codes = []
        digests = []
        for code, blob in rows:
            codes.append(code)
            try:
                digests.append(digest_of(blob))
            except DecodeError:  # an unreadable record differs from every readable one
                digests.append(b"unreadable")
        yield common_pb2.DigestBatch(resident_codes=codes, digests=digests)


async def collect_here(batches) -> dict[str, bytes]:
    """住民票コード → digest from DigestBatch messages made here, giving the event loop a turn after each batch:
    the digests asked of the peers meanwhile are computed there at the same time, their streams read as they come."""
    result = {}
    for batch in batches:
        result.update(zip(batch.resident_codes, batch.digests))
        await asyncio.sleep(0)
    return result


async def collect_digests(call) -> dict[str, bytes]:
    """住民票コード → digest from a stream of DigestBatch messages."""
    result = {}
    async for batch in call:
        result.update(zip(batch.resident_codes, batch.digests))
    return result
