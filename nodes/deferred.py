"""Secondary indexes left out while a large load goes into an empty table, and made again once the load is over.

Inserting 300,000 people one batch after another into the identity file keeps five B-trees in step, each insert
at a random place of each: 41.7 CPU-seconds at one node, against 12.5 for the same rows with the indexes made
after them (SQLite sorts once). So the first batch of a load into an empty table drops the table's non-unique
indexes and notes their SQL in `deferred_indexes`, in the batch's own transaction; the indexes are made again
when no batch has come for a while (QUIET seconds, or GAPS times the longest gap between two of its batches).
kill -9 anywhere leaves either the table with its indexes or the table without them and their SQL noted: at the
next start the note is acted on before the node serves (and the node's schema, which says CREATE INDEX IF NOT
EXISTS, makes them too). Unique indexes are never dropped (they are rules, not speed), nor the primary key, which
every write and read of a load goes by: nothing a load does meanwhile needs a dropped index, and a query that
would use one (a search) is answered, by a scan of the table.
"""
from __future__ import annotations

import asyncio
import logging
import time

log = logging.getLogger("nodes.deferred")
DEFER_AT = 500  # rows in a batch into an empty table that make it a load worth deferring the indexes for (a load
# streams batches of up to 5,000, two streams at a time: testbed/load.py)
QUIET = 3.0  # the least time without a batch after which the load is taken to be over and the indexes are made …
GAPS = 4  # … or this many times the longest gap between two of its batches so far, if longer (under load a batch
# of 5,000 takes a second or two to come through the hops before: the indexes must not come back half way)
SCHEMA = """
CREATE TABLE IF NOT EXISTS deferred_indexes (  -- indexes dropped for a load into an empty table, to make again
    table_name TEXT NOT NULL,
    name TEXT NOT NULL,
    sql TEXT NOT NULL,
    PRIMARY KEY (table_name, name)
);
"""


class DeferredIndexes:
    """The indexes of one table, left out during a load into it while empty (note()), made again after (run())."""

    def __init__(self, runtime, table: str):
        self.store = runtime.store
        self.table = table
        self._last = 0.0  # when the last batch of the load was noted (0: no load under way)
        self._gap = 0.0  # the longest time between two batches of the load
        self._wake = asyncio.Event()
        self._deferring = False
        if self.store.read_only:
            return
        self.store.db.executescript(SCHEMA)
        self.build()  # (what a load that was killed left noted)
        runtime.background(self.run)

    def note(self, db, rows: int) -> None:
        """Before rows are written to the table in db's transaction: the first batch of a load into the empty table
        drops its indexes (noted in the same transaction); each batch of the load puts their making off."""
        if self.store.read_only:
            return
        if not self._deferring:
            if rows < DEFER_AT or db.execute(f"SELECT 1 FROM {self.table} LIMIT 1").fetchone():
                return
            found = db.execute("SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name=? AND sql IS NOT "
                               "NULL AND sql NOT LIKE 'CREATE UNIQUE%'", (self.table,)).fetchall()
            for name, _ in found:
                db.execute(f'DROP INDEX "{name}"')
            db.executemany("INSERT OR REPLACE INTO deferred_indexes VALUES (?,?,?)",
                           [(self.table, name, sql) for name, sql in found])
            self._deferring = True  # (if the batch is refused and rolled back, the note goes with it: build() is a no-op)
            log.info("a load into the empty %s: %d indexes made after it", self.table, len(found))
        now = time.monotonic()
        if self._last:
            self._gap = max(self._gap, now - self._last)
        self._last = now
        self._wake.set()

    def build(self) -> int:
        """Make again the indexes noted as left out; how many."""
        with self.store.transaction() as db:
            noted = db.execute("SELECT name, sql FROM deferred_indexes WHERE table_name=?", (self.table,)).fetchall()
            for _, sql in noted:
                db.execute(sql.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1))
            db.execute("DELETE FROM deferred_indexes WHERE table_name=?", (self.table,))
        self._deferring = False
        if noted:
            log.info("%d indexes of %s made after the load", len(noted), self.table)
        return len(noted)

    async def run(self) -> None:
        """Make the indexes once the load has been quiet for long enough, for as long as the node runs."""
        while True:
            await self._wake.wait()
            while (left := self._last + max(QUIET, GAPS * self._gap) - time.monotonic()) > 0:
                await asyncio.sleep(left)
            self._wake.clear()
            self.build()
            self._last = self._gap = 0.0


def pending(db) -> int:
    """Indexes of the store left out for a load and not yet made again (0 where none ever were)."""
    if not db.execute("SELECT 1 FROM sqlite_master WHERE name='deferred_indexes'").fetchone():
        return 0
    return db.execute("SELECT COUNT(*) FROM deferred_indexes").fetchone()[0]
