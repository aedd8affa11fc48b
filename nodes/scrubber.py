"""The scrubber: a node's background pass that re-hashes every stored record and checks its tree of ranges, so that
the 整合性確認, which compares the digests kept at write time, is not fooled by bytes changed behind them.

A record whose bytes no longer give its kept digests gets the digests its bytes give (the triggers carry the change
into its range): the next 整合性確認 finds it as a difference with its peers. A range that no longer holds what its
rows give is computed again. Either is counted (testbed_scrub_damaged) and logged: damage is an alarm.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Callable

from nodes import settings
from nodes.digests import Tree

log = logging.getLogger("testbed.scrubber")
TICK = 0.25  # seconds between two slices of a pass
PASS_SECONDS = 10.0  # the least time from the start of one pass to the start of the next (a small table is not
# re-hashed without pause)
WHOLE_PASS_SLICE = 2_000  # records re-hashed between two turns of the event loop in a pass on demand (a few ms)


@dataclass
class Scrubbed:
    """What the scrubber has done since the node started."""

    records: int = 0  # records re-hashed
    passes: int = 0  # passes over the whole table (and its ranges) completed
    damaged_records: int = 0  # records whose kept digests were not those of their bytes
    damaged_ranges: int = 0  # leaf ranges that did not hold what their rows give


class Scrubber:
    """Re-hashes a table's stored records, a slice at a time (settings.scrub_rows a second), and checks its ranges
    at the end of each pass. measure(blob) gives the kept columns' values a record's bytes call for."""

    def __init__(self, store, tree: Tree, blob: str, kept: tuple[str, ...], measure: Callable[[bytes], tuple]):
        self.store = store
        self.tree = tree
        self.blob = blob
        self.kept = kept
        self.measure = measure
        self.done = Scrubbed()
        self._after = 0  # the rowid the pass has reached
        self._on_demand: asyncio.Future | None = None  # the pass the scrub batch is running, if one is

    async def run(self) -> None:
        """Scrub for as long as the node runs."""
        rate = settings.current().scrub_rows
        if not rate:
            return
        size = max(1, int(rate * TICK))
        started = time.monotonic()
        while True:
            await asyncio.sleep(TICK)
            if not self.slice(size):
                self.check_ranges()
                self.done.passes += 1
                self._after = 0
                await asyncio.sleep(max(0.0, started + PASS_SECONDS - time.monotonic()))
                started = time.monotonic()

    async def whole_pass(self) -> int:
        """A pass over the whole table and its ranges now, from the start (the scrub batch, on demand), a slice at a
        time so that the node answers its calls meanwhile; how many records and ranges were found damaged. Callers
        while a pass runs share it (20,000 batch calls make one pass, not 20,000 side by side)."""
        if self._on_demand is None or self._on_demand.done():
            self._on_demand = asyncio.ensure_future(self._whole_pass())
        return await asyncio.shield(self._on_demand)  # (a caller that goes away leaves the pass to the others)

    async def _whole_pass(self) -> int:
        before = self.done.damaged_records + self.done.damaged_ranges
        after = 0  # (a cursor of its own: the background pass goes on from where it was)
        while True:
            count, after = self._slice(after, WHOLE_PASS_SLICE)
            if not count:
                break
            await asyncio.sleep(0)
        self.check_ranges()
        self.done.passes += 1
        return self.done.damaged_records + self.done.damaged_ranges - before

    def slice(self, size: int) -> int:
        """Re-hash the next size records of the background pass; how many there were (0: the pass is over)."""
        count, self._after = self._slice(self._after, size)
        return count

    def _slice(self, after: int, size: int) -> tuple[int, int]:
        """Re-hash the size records after rowid `after`, repairing the damaged; how many, and the last rowid."""
        columns = ", ".join(self.kept)
        rows = self.store.db.execute(f"SELECT rowid, {self.blob}, {columns} FROM {self.tree.table} WHERE rowid > ? "
                                     f"ORDER BY rowid LIMIT ?", (after, size)).fetchall()
        if not rows:
            return 0, after
        wrong = []
        for rowid, blob, *kept in rows:
            measured = self.measure(blob)
            if tuple(kept) != measured:
                wrong.append((*measured, rowid, blob))
        self.done.records += len(rows)
        if wrong:
            assignments = ", ".join(f"{c}=?" for c in self.kept)
            with self.store.transaction() as db:  # (a record written again meanwhile is left to its new digests)
                db.executemany(f"UPDATE {self.tree.table} SET {assignments} WHERE rowid=? AND {self.blob}=?", wrong)
            self.done.damaged_records += len(wrong)
            log.error("scrubber: %d records of %s whose stored bytes no longer give their digests (rowids %s)",
                      len(wrong), self.tree.table, ", ".join(str(w[-2]) for w in wrong[:10]))
        return len(rows), rows[-1][0]

    def check_ranges(self) -> int:
        """Compare every leaf range with what its rows give, a tenth of a group at a time, and repair those that
        differ; how many differed."""
        repaired = 0
        db = self.store.db
        for group in self.tree.groups(db):
            for digit in "0123456789":
                if self.tree.recompute(db, group, digit) == self.tree.kept(db, group, digit):
                    continue
                with self.store.transaction() as db:  # (again in one snapshot: another process may have been writing)
                    rows, kept = self.tree.recompute(db, group, digit), self.tree.kept(db, group, digit)
                    if rows != kept:
                        repaired += sum(1 for leaf in set(rows) | set(kept) if rows.get(leaf) != kept.get(leaf))
                        self.tree.repair(db, group, digit, rows)
        if repaired:
            self.done.damaged_ranges += repaired
            log.error("scrubber: %d ranges of %s did not hold what their records give; computed again",
                      repaired, self.tree.table)
        return repaired
