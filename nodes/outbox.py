"""A durable outbox: a message is stored in the same transaction as the change it reports, then
delivered in order by a background task, retried until the receiver acknowledges it.

This is how a node keeps "an acknowledged update is never lost" while its peer is down or is
killed: the caller's acknowledgement waits only for the local commit.
"""
from __future__ import annotations

import asyncio
import logging

import grpc

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,        -- peer node kind and key, e.g. 'cs' or 'atena'
    method TEXT NOT NULL,        -- stub method name on that peer
    payload BLOB NOT NULL,       -- serialized request
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_target ON outbox(target, id);
"""

RETRY_SECONDS = (0.05, 0.2, 0.5, 1.0, 2.0)
# Errors that mean "the receiver refused this message": retrying cannot help.
PERMANENT = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
             grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED,
             grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.UNIMPLEMENTED}


class Outbox:
    """Queues messages to peers inside the caller's transaction and delivers them in order."""

    def __init__(self, store, senders: dict):
        """senders maps a target to an async function (method, payload bytes) -> reply message."""
        self.store = store
        self.senders = senders
        self.store.db.executescript(SCHEMA)
        self._wake = {t: asyncio.Event() for t in senders}
        self._waiters: dict[int, asyncio.Future] = {}
        self._tasks: list[asyncio.Task] = []
        self.failing: set[str] = set()  # targets whose last delivery attempt failed

    def put(self, db, target: str, method: str, request) -> int:
        """Queue a message inside an open transaction; return its outbox id."""
        if target not in self.senders:
            raise KeyError(f"no sender for outbox target {target!r}")
        cur = db.execute("INSERT INTO outbox(target, method, payload) VALUES (?,?,?)",
                         (target, method, request.SerializeToString()))
        return cur.lastrowid

    async def send(self, queued: dict[str, int], wait: float = 0.0) -> dict:
        """Start delivery of messages queued by put() ({target: outbox id}); wait up to `wait`
        seconds for their replies. Returns {target: reply, or None if still pending}.

        Targets whose last attempt failed are not waited for: their messages stay queued and the
        caller is answered at once with its local commit.
        """
        loop = asyncio.get_running_loop()
        futures = {}
        for target, outbox_id in queued.items():
            if wait > 0 and target not in self.failing:
                # Registered before the delivery task can run, so no reply is missed.
                futures[target] = self._waiters.setdefault(outbox_id, loop.create_future())
            self._wake[target].set()
        if futures:
            await asyncio.wait(futures.values(), timeout=wait)
        for outbox_id in queued.values():
            self._waiters.pop(outbox_id, None)
        return {t: (f.result() if f.done() and not isinstance(f.result(), Exception) else None) for t, f in futures.items()} | {
            t: None for t in queued if t not in futures}

    def pending(self, target: str | None = None) -> int:
        """How many messages wait for delivery."""
        if target is None:
            return self.store.scalar("SELECT COUNT(*) FROM outbox", default=0)
        return self.store.scalar("SELECT COUNT(*) FROM outbox WHERE target=?", (target,), default=0)

    def start(self) -> None:
        """Start one delivery task per target."""
        for target in self.senders:
            self._tasks.append(asyncio.create_task(self._deliver(target), name=f"outbox-{target}"))

    async def stop(self) -> None:
        """Stop delivering; what is queued stays queued for the next start."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _deliver(self, target: str) -> None:
        send = self.senders[target]
        failures = 0
        while True:
            row = self.store.one("SELECT id, method, payload FROM outbox WHERE target=? ORDER BY id LIMIT 1", (target,))
            if row is None:
                self._wake[target].clear()
                await self._wake[target].wait()
                continue
            outbox_id, method, payload = row
            try:
                reply = await send(method, payload)
            except grpc.aio.AioRpcError as exc:
                if exc.code() in PERMANENT:
                    # The peer refused it for good: keep the order moving and say so loudly.
                    log.error("outbox %s #%d refused by %s: %s %s", target, outbox_id, target, exc.code().name, exc.details())
                    self.store.db.execute("DELETE FROM outbox WHERE id=?", (outbox_id,))
                    self._resolve(outbox_id, exc)
                    continue
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                self.failing.add(target)
                self.store.db.execute("UPDATE outbox SET attempts=attempts+1 WHERE id=?", (outbox_id,))
                log.warning("outbox %s #%d: %s, retry in %.2fs", target, outbox_id, exc.code().name, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            self.failing.discard(target)
            self.store.db.execute("DELETE FROM outbox WHERE id=?", (outbox_id,))
            self._resolve(outbox_id, reply)

    def _resolve(self, outbox_id: int, result) -> None:
        fut = self._waiters.pop(outbox_id, None)
        if fut is not None and not fut.done():
            fut.set_result(result)
