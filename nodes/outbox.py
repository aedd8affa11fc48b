"""A durable outbox: a message is stored in the same transaction as the change it reports, then
delivered in order by a background task, in batches, retried until the receiver acknowledges it.

This is how a node keeps "an acknowledged update is never lost" while its peer is down or is
killed: the caller's acknowledgement waits only for the local commit. A message re-sent after a
failed attempt carries a recovery number (the CS uses it as 異常時更新順番号).

An item the receiver refuses for good never wedges the items behind it: it is set aside as a dead letter
with the receiver's reason (counted in the node's status, metrics and `testbed check`), and the items of
the same person queued behind it go with it, so that nothing about that person overtakes what was refused;
other people's items go on. A sequenced target (更新順番号: the receiver needs every item in order) cannot
skip an item: a refusal there holds the target and raises the alarm until the cause is repaired.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import grpc

from nodes.store import next_counter

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,        -- the peer it goes to, e.g. 'prefecture'
    payload BLOB NOT NULL,       -- one serialized item of the target's batch message
    attempts INTEGER NOT NULL DEFAULT 0,
    recovery INTEGER,            -- recovery number, given at the first failed attempt
    queued_at REAL,              -- when it was queued (for the age of the oldest entry, a metric)
    person TEXT                  -- whom the item is about (住民票コード): per-person order after a refusal
);
CREATE INDEX IF NOT EXISTS outbox_target ON outbox(target, id);
CREATE TABLE IF NOT EXISTS dead_letters (  -- items a receiver refused for good, with its reason: an outcome, not a loss
    id INTEGER PRIMARY KEY,      -- the outbox id it had
    target TEXT NOT NULL,
    payload BLOB NOT NULL,
    person TEXT,
    code TEXT NOT NULL,          -- the receiver's status code
    reason TEXT NOT NULL,        -- the receiver's reason (or the dead letter it was queued behind)
    queued_at REAL,
    refused_at REAL NOT NULL
);
"""
DEAD_REASON_CHARS = 500  # of a receiver's reason kept with a dead letter

# Large batches make a bulk load cheap at the receiver: one commit writes an index's touched pages once for
# all its rows (with 300,000 residents, 1,000 random inserts already touch most leaves of each index).
BATCH_ITEMS = 5000
BATCH_BYTES = 2 << 20  # and at most this much payload, well under gRPC's 4 MiB message limit
# Under load (the last batch held more than one item) a target is sent to at most once per linger: 5 ms per
# item of the last batch, up to LINGER_SECONDS, so that items queued meanwhile travel in one batch (one call,
# one transaction at the receiver) instead of a call each. The linger grows with the load and no further.
# Otherwise an item goes at once: a quiet network sees no added delay, and the rules that read what has arrived
# elsewhere (one current residence, checked at national) see it as soon as they would without batching.
LINGER_SECONDS = 0.05
LINGER_PER_ITEM = 0.005
RETRY_SECONDS = (0.05, 0.2, 0.5, 1.0, 2.0)
# Errors that mean "the receiver refused this batch": retrying the same batch cannot help.
PERMANENT = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
             grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED,
             grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.UNIMPLEMENTED}


@dataclass
class Target:
    """Where one kind of item goes: the batch RPC, its message, its repeated field, header fields.

    With repeated None, each item is a whole message, sent on its own.
    """

    method: Callable  # a stub method taking the batch message
    batch_class: type
    repeated: str | None = "items"
    header: dict = field(default_factory=dict)
    mark_recovery: Callable | None = None  # (item message, recovery number) -> None, for re-sends
    repair: Callable | None = None  # async (refusal) -> bool: True when it fixed what the receiver refused
    sequenced: bool = False  # the receiver needs every item in order (更新順番号): a refusal holds, never skips


def person_of(item) -> str | None:
    """Whom an outbox item is about (住民票コード), for per-person order; None for items about nobody in particular."""
    for path in (("resident_code",), ("info", "resident_code"), ("person", "resident_code"), ("record", "resident_code")):
        value = item
        for name in path:
            if name not in value.DESCRIPTOR.fields_by_name:
                value = None
                break
            value = getattr(value, name)
        if value:
            return value
    return None


def _within(rows: list, limit: int) -> list:
    """The first rows whose payloads together stay within limit bytes (at least one row)."""
    total = 0
    for count, row in enumerate(rows):
        total += len(row[1])
        if total > limit and count:
            return rows[:count]
    return rows


class Outbox:
    """Queues items for peers inside the caller's transaction and delivers them in order."""

    def __init__(self, store, targets: dict[str, Target], timeout: float = 10.0):
        self.store = store
        self.targets = targets
        self.timeout = timeout
        self.store.db.executescript(SCHEMA)
        columns = {row[1] for row in self.store.db.execute("PRAGMA table_info(outbox)")}
        for column in ("queued_at REAL", "person TEXT"):  # a store of an earlier version
            if column.split()[0] not in columns:
                self.store.db.execute(f"ALTER TABLE outbox ADD COLUMN {column}")
        self._wake = {t: asyncio.Event() for t in targets}
        self._tasks: list[asyncio.Task] = []
        self.blocked: dict[str, str] = {}  # targets stopped by a refusal, and why

    def put(self, db, target: str, item) -> int:
        """Queue one item inside an open transaction; return its outbox id."""
        if target not in self.targets:
            raise KeyError(f"no outbox target {target!r}")
        return db.execute("INSERT INTO outbox(target, payload, queued_at, person) VALUES (?,?,?,?)",
                          (target, item.SerializeToString(), time.time(), person_of(item))).lastrowid

    def put_many(self, db, target: str, items) -> None:
        """Queue several items inside an open transaction, in order."""
        self.put_payloads(db, target, [i.SerializeToString() for i in items], [person_of(i) for i in items])

    def put_payloads(self, db, target: str, payloads: list[bytes], people: list | None = None) -> None:
        """Queue several already serialized items inside an open transaction, in order."""
        now = time.time()
        db.executemany("INSERT INTO outbox(target, payload, queued_at, person) VALUES (?,?,?,?)",
                       [(target, p, now, who) for p, who in zip(payloads, people or [None] * len(payloads))])

    def dead_letters(self) -> dict[str, tuple[int, str]]:
        """target → (items set aside as dead letters, the latest reason), for targets that have any."""
        return {t: (n, r) for t, n, r in self.store.db.execute(
            "SELECT target, COUNT(*), (SELECT reason FROM dead_letters d WHERE d.target=dl.target ORDER BY id DESC LIMIT 1) "
            "FROM dead_letters dl GROUP BY target")}

    def wake(self, *targets: str) -> None:
        """Tell the delivery tasks that items were queued (call after the commit)."""
        for target in targets:
            self._wake[target].set()

    def pending(self, target: str | None = None) -> int:
        """How many items wait for delivery."""
        if target is None:
            return self.store.scalar("SELECT COUNT(*) FROM outbox", default=0)
        return self.store.scalar("SELECT COUNT(*) FROM outbox WHERE target=?", (target,), default=0)

    def depths(self) -> dict[str, tuple[int, float]]:
        """target → (items waiting, age in seconds of the oldest of them), for every target."""
        now = time.time()
        found = {t: (0, 0.0) for t in self.targets}
        for target, count, oldest in self.store.db.execute(
                "SELECT target, COUNT(*), MIN(queued_at) FROM outbox GROUP BY target"):
            found[target] = (count, max(0.0, now - oldest) if oldest else 0.0)
        return found

    def start(self) -> None:
        """Start one delivery task per target."""
        for name in self.targets:
            self._tasks.append(asyncio.create_task(self._deliver(name), name=f"outbox-{name}"))

    async def stop(self) -> None:
        """Stop delivering; what is queued stays queued for the next start."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _batch(self, target: Target, rows):
        if target.repeated is None:
            return target.batch_class.FromString(rows[0][1])
        batch = target.batch_class(**target.header)
        items = getattr(batch, target.repeated)
        for _, payload, recovery in rows:
            item = items.add()
            item.MergeFromString(payload)
            if recovery is not None and target.mark_recovery is not None:
                target.mark_recovery(item, recovery)
        return batch

    async def _deliver(self, name: str) -> None:
        target = self.targets[name]
        failures = 0
        solo = 0  # items still to send one by one after a refused batch, to find the one refused
        last_sent, last_count = 0.0, 0
        while True:
            limit = BATCH_ITEMS if target.repeated and not solo else 1
            if target.repeated and last_count > 1:
                linger = last_sent + min(LINGER_SECONDS, LINGER_PER_ITEM * last_count) - time.monotonic()
                if linger > 0:
                    await asyncio.sleep(linger)
            rows = self.store.db.execute(
                "SELECT id, payload, recovery FROM outbox WHERE target=? ORDER BY id LIMIT ?", (name, limit)).fetchall()
            rows = _within(rows, BATCH_BYTES)
            if not rows:
                solo = 0
                self._wake[name].clear()
                await self._wake[name].wait()
                continue
            last_sent, last_count = time.monotonic(), len(rows)
            try:
                await target.method(self._batch(target, rows), timeout=self.timeout)
            except grpc.aio.AioRpcError as exc:
                if exc.code() in PERMANENT and target.repair is not None and await target.repair(exc):
                    log.warning("outbox %s: %s repaired, sending again", name, exc.details())
                    continue
                if exc.code() in PERMANENT and target.sequenced:
                    # The 更新順番号 order must hold, so nothing behind this batch may overtake it: hold here.
                    self.blocked[name] = f"{exc.code().name}: {exc.details()}"
                    log.error("outbox %s blocked at #%d: %s %s", name, rows[0][0], exc.code().name, exc.details())
                    self._wake[name].clear()
                    await self._wake[name].wait()
                    self.blocked.pop(name, None)
                    continue
                if exc.code() in PERMANENT and len(rows) > 1:
                    solo = len(rows)  # which of them was refused? each alone
                    continue
                if exc.code() in PERMANENT:
                    self._dead_letter(name, rows[0][0], exc)
                    solo = max(0, solo - 1)
                    continue
                self._mark_failed(name, rows)
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                log.warning("outbox %s: %d items undelivered (%s), retry in %.2fs", name, len(rows), exc.code().name, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            solo = max(0, solo - len(rows))
            self.store.db.execute("DELETE FROM outbox WHERE target=? AND id<=?", (name, rows[-1][0]))

    def _dead_letter(self, name: str, outbox_id: int, refusal: grpc.aio.AioRpcError) -> None:
        """Set a refused item aside with the receiver's reason, and the same person's items queued behind it."""
        reason = (refusal.details() or "")[:DEAD_REASON_CHARS]
        now = time.time()
        with self.store.transaction() as db:
            person = db.execute("SELECT person FROM outbox WHERE id=?", (outbox_id,)).fetchone()[0]
            db.execute("INSERT INTO dead_letters SELECT id, target, payload, person, ?, ?, queued_at, ? FROM outbox "
                       "WHERE id=?", (refusal.code().name, reason, now, outbox_id))
            behind = 0
            if person:
                behind = db.execute("INSERT INTO dead_letters SELECT id, target, payload, person, 'HELD', ?, queued_at, ? "
                                    "FROM outbox WHERE target=? AND person=? AND id>?",
                                    (f"behind dead letter #{outbox_id} of the same person", now, name, person,
                                     outbox_id)).rowcount
                db.execute("DELETE FROM outbox WHERE target=? AND person=? AND id>?", (name, person, outbox_id))
            db.execute("DELETE FROM outbox WHERE id=?", (outbox_id,))
        log.error("outbox %s: #%d refused for good (%s %s): set aside as a dead letter%s", name, outbox_id,
                  refusal.code().name, reason, f", with {behind} later items of the same person" if behind else "")

    def _mark_failed(self, name: str, rows) -> None:
        """Count the attempt and give each item its recovery number the first time it fails."""
        with self.store.transaction() as db:
            for outbox_id, _, recovery in rows:
                if recovery is None:
                    db.execute("UPDATE outbox SET attempts=attempts+1, recovery=? WHERE id=?",
                               (next_counter(db, "recovery_sequence"), outbox_id))
                else:
                    db.execute("UPDATE outbox SET attempts=attempts+1 WHERE id=?", (outbox_id,))
