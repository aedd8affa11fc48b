"""A node's durable store: one SQLite database in WAL mode, owned by the node's event loop."""
from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path

CACHE_KIB = 64 * 1024  # page cache per node
CHECKPOINT_SECONDS = 1.0
IN_CHUNK = 500  # keys per IN (...) list: well inside SQLite's limit on bound parameters
COUNTERS_SCHEMA = "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"


def next_counter(db, name: str, step: int = 1) -> int:
    """Advance a named counter (宛名番号, 更新順番号, ...) by step inside the caller's transaction; the new value."""
    db.execute("INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
               (name, step, step))
    return db.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()[0]


def rows_in(db, select: str, keys, params: tuple = ()) -> list[tuple]:
    """Rows of `select IN (keys)` (select ends with the column to match), in chunks SQLite accepts;
    params fill the select's own placeholders, before the keys."""
    keys = list(keys)
    rows: list[tuple] = []
    for start in range(0, len(keys), IN_CHUNK):
        chunk = keys[start:start + IN_CHUNK]
        rows += db.execute(f"{select} IN ({','.join('?' * len(chunk))})", (*params, *chunk)).fetchall()
    return rows


class Store:
    """SQLite in WAL mode with synchronous=NORMAL: a committed write survives kill -9 of the node.

    One connection is used from the node's single event loop; statements are short, so they run
    inline rather than in a thread pool, which would cost more than the statements themselves.
    """

    def __init__(self, path: str | Path, schema: str = "", read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        if read_only:  # a reader beside the node that owns the store (WAL: it never waits for the writer)
            self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA query_only=1")
            self.db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self.db.execute("PRAGMA busy_timeout=1000")
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        # 300,000 residents' indexes stay in memory: random 住民票コード would otherwise read pages back.
        self.db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        self.db.execute("PRAGMA temp_store=MEMORY")
        # Checkpoints (which fsync) run in a thread of their own, never in the node's event loop.
        self.db.execute("PRAGMA wal_autocheckpoint=0")
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="wal-checkpoint", daemon=True)
        self._checkpointer.start()
        self.db.executescript(COUNTERS_SCHEMA)
        if schema:
            self.db.executescript(schema)

    @contextmanager
    def transaction(self):
        """All writes inside commit together or not at all."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def one(self, sql: str, params: tuple = ()):
        """The first row of a query, or None."""
        return self.db.execute(sql, params).fetchone()

    def scalar(self, sql: str, params: tuple = (), default=None):
        """The first column of the first row, or default."""
        row = self.db.execute(sql, params).fetchone()
        return default if row is None or row[0] is None else row[0]

    def secure_delete(self) -> None:
        """From now on this connection overwrites what it deletes (rows, freed pages) with zeros, so that a deleted
        record cannot be read back from the file's free space (PRAGMA secure_delete=ON; FAST is not enough: it
        leaves freed pages as they were)."""
        self.db.execute("PRAGMA secure_delete=ON")

    def truncate_wal(self, attempts: int = 50) -> bool:
        """Checkpoint the whole WAL into the database and truncate it to nothing, so that no old page image of a
        deleted record stays in the -wal file; whether it was done (a reader holding an old snapshot can keep it
        from completing: tried again for a moment)."""
        for _ in range(attempts):
            try:
                busy, _, _ = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            except sqlite3.OperationalError:
                busy = 1
            if not busy:
                return True
            time.sleep(0.02)
        return False

    def _checkpoint_loop(self) -> None:
        """Copy the WAL into the database every CHECKPOINT_SECONDS, on a connection of this thread."""
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA busy_timeout=1000")
        try:
            while not self._stop.wait(CHECKPOINT_SECONDS):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.OperationalError:
                    pass  # busy: the next round will do it
        finally:
            db.close()

    def close(self) -> None:
        """Stop the checkpoints, checkpoint the WAL and close."""
        if self.read_only:
            self.db.close()
            return
        self._stop.set()
        self._checkpointer.join(timeout=5)
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self.db.close()
