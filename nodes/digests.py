"""The tree of ranges the 整合性確認 compares first: each record's digest kept beside it (two 64-bit halves of its
first 128 bits), and per range of 住民票コード (its leading LEAF digits) the count and the XOR of its records'
digests, kept by triggers in the same transaction as the write, whoever writes the table. A range one digit
shorter is the XOR of the ten inside it, computed when asked; two stores whose ranges agree hold the same records
(but for a record whose bytes were changed behind its digest: the scrubber re-hashes the stored bytes to find it).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from nodes.reasons import common as C
from protos import common_pb2

LEAF = 4  # digits of 住民票コード naming a leaf range: 10,000 leaves, ~30 records each at 300,000 people
MOST_PREFIXES = 10_000  # ranges one request may name (every leaf)
PREFIX = re.compile(r"[0-9]{1,%d}" % LEAF)
ZERO = (0, 0, 0)  # (records, high, low) of an empty range


def halves(digest: bytes) -> tuple[int, int]:
    """The first 128 bits of a digest as two signed 64-bit integers (what SQLite's integers hold)."""
    return (int.from_bytes(digest[:8], "big", signed=True), int.from_bytes(digest[8:16], "big", signed=True))


@dataclass(frozen=True)
class Tree:
    """The ranges of one table: the table, its key column, the column its rows are grouped by (a municipality),
    and the pairs of digest columns it keeps (each pair one kind of digest: the same names in the range table)."""

    table: str
    key: str
    group: str | None
    kinds: tuple[tuple[str, str], ...]

    @property
    def ranges(self) -> str:
        """The range table's name."""
        return f"{self.table}_ranges"

    def schema(self) -> str:
        """The range table and the triggers that keep it in step with the table (one transaction: a write and its
        ranges commit together, or neither)."""
        columns = [c for pair in self.kinds for c in pair]
        group_column = f"{self.group} TEXT NOT NULL, " if self.group else ""
        key = f"{self.group}, prefix" if self.group else "prefix"
        group_new = f"NEW.{self.group}, " if self.group else ""
        where_old = (f"{self.group}=OLD.{self.group} AND " if self.group else "") + f"prefix=substr(OLD.{self.key},1,{LEAF})"

        def xor(target: str, value: str) -> str:
            return f"{target}=({target}|{value})&~({target}&{value})"
        add = (f"INSERT INTO {self.ranges} VALUES ({group_new}substr(NEW.{self.key},1,{LEAF}), 1, "
               + ", ".join(f"NEW.{c}" for c in columns) + f") ON CONFLICT({key}) DO UPDATE SET records=records+1, "
               + ", ".join(xor(c, f"excluded.{c}") for c in columns) + ";")
        remove = (f"UPDATE {self.ranges} SET records=records-1, " + ", ".join(xor(c, f"OLD.{c}") for c in columns)
                  + f" WHERE {where_old};")
        watched = ", ".join(([self.group] if self.group else []) + [self.key] + columns)
        return (f"CREATE TABLE IF NOT EXISTS {self.ranges} ({group_column}prefix TEXT NOT NULL, records INTEGER NOT NULL, "
                + ", ".join(f"{c} INTEGER NOT NULL" for c in columns) + f", PRIMARY KEY ({key})) WITHOUT ROWID;\n"
                f"CREATE TRIGGER IF NOT EXISTS {self.table}_ranges_insert AFTER INSERT ON {self.table} BEGIN {add} END;\n"
                f"CREATE TRIGGER IF NOT EXISTS {self.table}_ranges_delete AFTER DELETE ON {self.table} BEGIN {remove} END;\n"
                f"CREATE TRIGGER IF NOT EXISTS {self.table}_ranges_update AFTER UPDATE OF {watched} ON {self.table} "
                f"BEGIN {remove} {add} END;\n")

    def _where(self, group: str | None) -> tuple[str, tuple]:
        return (f"{self.group}=? AND ", (group,)) if self.group else ("", ())

    def children(self, db, kind: int, prefixes, group: str | None = None) -> list[common_pb2.RangeDigest]:
        """The ranges one digit longer inside each prefix (the ten of one digit for none), with their counts and
        digests of the kind-th pair; empty ranges left out."""
        pair = self.kinds[kind]
        where, params = self._where(group)
        found: dict[str, list[int]] = {}
        for prefix in prefixes or [""]:
            depth = len(prefix) + 1
            for leaf, records, high, low in db.execute(
                    f"SELECT prefix, records, {pair[0]}, {pair[1]} FROM {self.ranges} WHERE {where}prefix >= ? AND prefix < ?",
                    (*params, *self.bounds(prefix))):
                into = found.setdefault(leaf[:depth], [0, 0, 0])
                into[0] += records
                into[1] ^= high
                into[2] ^= low
        return [common_pb2.RangeDigest(prefix=p, records=r, high=h, low=lo) for p, (r, h, lo) in sorted(found.items())
                if (r, h, lo) != ZERO]

    def bounds(self, prefix: str) -> tuple[str, str]:
        """The keys of one range: key >= first and key < last (":" follows "9")."""
        return prefix, prefix + ":"

    def recompute(self, db, group: str | None, prefix: str) -> dict[str, tuple[int, ...]]:
        """A range's leaves computed from the rows themselves: leaf → (records, each digest column's XOR)."""
        columns = [c for pair in self.kinds for c in pair]
        where, params = self._where(group)
        leaves: dict[str, list[int]] = {}
        for row in db.execute(f"SELECT substr({self.key},1,{LEAF}), {', '.join(columns)} FROM {self.table} "
                              f"WHERE {where}{self.key} >= ? AND {self.key} < ?", (*params, *self.bounds(prefix))):
            into = leaves.setdefault(row[0], [0] * (1 + len(columns)))
            into[0] += 1
            for i, value in enumerate(row[1:], 1):
                into[i] ^= value
        return {leaf: tuple(v) for leaf, v in leaves.items()}

    def kept(self, db, group: str | None, prefix: str) -> dict[str, tuple[int, ...]]:
        """A range's leaves as the range table keeps them (empty leaves left out)."""
        columns = [c for pair in self.kinds for c in pair]
        where, params = self._where(group)
        kept = {}
        for row in db.execute(f"SELECT prefix, records, {', '.join(columns)} FROM {self.ranges} "
                              f"WHERE {where}prefix >= ? AND prefix < ?", (*params, *self.bounds(prefix))):
            if any(row[1:]):
                kept[row[0]] = tuple(row[1:])
        return kept

    def repair(self, db, group: str | None, prefix: str, leaves: dict[str, tuple[int, ...]]) -> None:
        """Inside a transaction: set a range's leaves to those given (what the rows give)."""
        columns = [c for pair in self.kinds for c in pair]
        where, params = self._where(group)
        db.execute(f"DELETE FROM {self.ranges} WHERE {where}prefix >= ? AND prefix < ?", (*params, *self.bounds(prefix)))
        group_value = (group,) if self.group else ()
        db.executemany(f"INSERT INTO {self.ranges} VALUES ({','.join('?' * (len(group_value) + 2 + len(columns)))})",
                       [(*group_value, leaf, *values) for leaf, values in leaves.items()])

    def groups(self, db) -> list:
        """The groups (municipalities) the range table or the table holds: [None] for a table without groups."""
        if not self.group:
            return [None]
        return [r[0] for r in db.execute(f"SELECT DISTINCT {self.group} FROM {self.ranges} UNION "
                                         f"SELECT DISTINCT {self.group} FROM {self.table}")]

    def rebuild(self, db) -> None:
        """Inside a transaction: the range table computed again from every row (after an upgrade added the columns)."""
        db.execute(f"DELETE FROM {self.ranges}")
        for group in self.groups(db):
            self.repair(db, group, "", self.recompute(db, group, ""))


def check_prefixes(prefixes) -> list[str]:
    """The ranges a request names: 1 to LEAF digits each, at most MOST_PREFIXES (CONSISTENCY_RANGE)."""
    prefixes = list(prefixes)
    if len(prefixes) > MOST_PREFIXES:
        raise C.CONSISTENCY_RANGE(f"整合性確認 rule: {len(prefixes)} ranges named, at most {MOST_PREFIXES}")
    for prefix in prefixes:
        if not PREFIX.fullmatch(prefix):
            raise C.CONSISTENCY_RANGE(f"整合性確認 rule: a range is named by 1 to {LEAF} leading digits of 住民票コード, "
                                      f"not {prefix[:20]!r}")
    return prefixes


def as_dict(ranges) -> dict[str, tuple[int, int, int]]:
    """prefix → (records, high, low) of RangeDigest messages."""
    return {r.prefix: (r.records, r.high, r.low) for r in ranges}


async def differing_leaves(ours, theirs) -> tuple[list[str], int, int]:
    """Walk two trees of ranges from the top, going down only where they differ: (the leaves that differ, the
    records ours holds, the records theirs holds). ours and theirs are async functions of a list of prefixes that
    return prefix → (records, high, low) of the ranges one digit longer inside them."""
    level: list[str] = []
    totals = None
    while True:
        a, b = await ours(level), await theirs(level)
        if totals is None:
            totals = (sum(v[0] for v in a.values()), sum(v[0] for v in b.values()))
        differing = sorted(p for p in set(a) | set(b) if a.get(p, ZERO) != b.get(p, ZERO))
        if level and not differing:  # (what differed above was gone further down: records arrived meanwhile)
            return [], await counted(ours), await counted(theirs)
        if not differing or len(differing[0]) >= LEAF:
            return differing, totals[0], totals[1]
        level = differing


async def counted(tree) -> int:
    """The records a tree of ranges holds now (after a walk that found differences: records written meanwhile, as a
    store that was catching up received them, are counted with the records compared)."""
    return sum(v[0] for v in (await tree([])).values())
