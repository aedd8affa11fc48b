"""移行 on the node's side: the freeze of a site, and the Migration service kizon and atena share.

A frozen node refuses every change (UNAVAILABLE, naming the reason: "移行中"), while reads go on. The
freeze is kept in the node's store, so that a restart during the migration window does not re-open the
counters. A target node (named in the topology's targets, started empty) is frozen from its first start
until the migration opens it after the cut over. Export and import are the node's own (what it holds);
this module gives the frame: freeze, drain, state, and the rules of import and wipe.
"""
from __future__ import annotations

import asyncio
import sqlite3

from nodes import audit, clock, rules
from nodes.reasons import site as R
from protos import migration_pb2, migration_pb2_grpc

SCHEMA = """
CREATE TABLE IF NOT EXISTS site_state (         -- 移行: the freeze of this site, kept across restarts
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
TARGET_REASON = "移行先: this site is a migration target and is not open until the cut over"
DRAIN_SECONDS = 120.0  # how long a freeze waits for queued work to be delivered
BATCH = 1000  # migration items per message


class SiteState:
    """The freeze of one node's site, in its store."""

    def __init__(self, runtime):
        self.rt = runtime
        self.store = runtime.store
        if runtime.node in runtime.topology.targets and self.get("reason") is None:
            self.freeze(TARGET_REASON)

    def get(self, key: str) -> str | None:
        row = self.store.one("SELECT value FROM site_state WHERE key=?", (key,))
        return row[0] if row else None

    def freeze(self, reason: str) -> None:
        """Refuse changes from now on, with this reason."""
        with self.store.transaction() as db:
            for key, value in (("reason", reason), ("since", _now())):
                db.execute("INSERT INTO site_state VALUES (?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                           (key, value))

    def reopen(self) -> None:
        """Take changes again."""
        with self.store.transaction() as db:
            db.execute("DELETE FROM site_state")
            db.execute("INSERT INTO site_state VALUES ('reason', '')")

    def reason(self) -> str:
        """Why changes are refused ("" when the site is open)."""
        return self.get("reason") or ""

    def refuse_if_frozen(self) -> None:
        """UNAVAILABLE naming the reason while frozen: the terminal should come back after the window."""
        reason = self.reason()
        if reason:
            raise R.SITE_CHANGES_CLOSED(f"移行 rule: changes are closed: {reason} "
                                        f"(since {self.get('since')})")


def _now() -> str:
    return clock.stamp()


class MigrationServicer(migration_pb2_grpc.MigrationServicer):
    """The Migration service of a node: the node gives records, pending_intents, drain, export_items, digests,
    import_items and wipe (a site: nodes/kizon/relocation.py's KizonSite, the CS's and atena's)."""

    def __init__(self, runtime, node_servicer):
        self.rt = runtime
        self.node = node_servicer  # what the node itself holds and how it drains
        self.state = SiteState(runtime)

    def _reply(self) -> migration_pb2.SiteState:
        outbox = self.rt.outbox.pending() if self.rt.outbox is not None else 0
        return migration_pb2.SiteState(
            node=self.rt.node.name, frozen=bool(self.state.reason()), reason=self.state.reason(),
            since=self.state.get("since") or "", pending_intents=self.node.pending_intents(), outbox_pending=outbox,
            records=self.node.records(), target=self.rt.node in self.rt.topology.targets)

    async def Freeze(self, request, context):
        """Close changes, then wait until what was accepted before is settled and delivered onwards."""
        rules.require_text(request.reason, "reason")
        audit.set_subject(request.reason)
        self.state.freeze(request.reason)
        deadline = asyncio.get_running_loop().time() + DRAIN_SECONDS
        while True:
            reply = self._reply()
            if not reply.pending_intents and not reply.outbox_pending:
                return reply
            if asyncio.get_running_loop().time() > deadline:
                raise R.SITE_FREEZE_TIMEOUT(f"移行 rule: frozen, but {reply.pending_intents} changes and {reply.outbox_pending} "
                                             f"notifications are still queued after {DRAIN_SECONDS:.0f} s")
            self.node.drain()
            await asyncio.sleep(0.05)

    async def Reopen(self, request, context):
        """Open changes again (the old site after a rollback, the new one after the cut over)."""
        rules.require_text(request.reason, "reason")
        if self.rt.node in self.rt.topology.targets:
            raise R.SITE_TARGET_NOT_CUT_OVER(f"移行 rule: {self.rt.node.name} is a target not yet cut over to; it opens after the cut over")
        self.state.reopen()
        return self._reply()

    async def GetSiteState(self, request, context):
        """Frozen or open, since when, what is still queued, how many records."""
        return self._reply()

    async def Export(self, request, context):
        """Everything this node holds, as migration items in batches (frozen first: nothing changes while it is
        read)."""
        if not self.state.reason():
            raise R.SITE_EXPORT_NOT_FROZEN("移行 rule: export only from a frozen site (Freeze first), so that nothing changes "
                                            "while it is read")
        batch = migration_pb2.MigrationBatch()
        for item in self.node.export_items():
            batch.items.append(item)
            if len(batch.items) >= BATCH:
                yield batch
                batch = migration_pb2.MigrationBatch()
        if batch.items:
            yield batch

    async def Digests(self, request, context):
        """A SHA-256 of every record held, from the stored bytes, with its file and key in the layout."""
        batch = migration_pb2.RecordDigestBatch()
        for file, key, digest in self.node.digests():
            batch.digests.add(file=file, key=key, digest=digest)
            if len(batch.digests) >= 5 * BATCH:
                yield batch
                batch = migration_pb2.RecordDigestBatch()
        if batch.digests:
            yield batch

    async def Import(self, request_iterator, context):
        """Take a whole export into this target, which must be empty; one transaction: all or nothing."""
        if self.rt.node not in self.rt.topology.targets:
            raise R.SITE_TARGET_ONLY(f"移行 rule: {self.rt.node.name} is not a migration target; import only into one")
        if self.node.records():
            raise R.SITE_IMPORT_NOT_EMPTY(f"移行 rule: {self.rt.node.name} already holds records; wipe it before a new import")
        items = [item async for batch in request_iterator for item in batch.items]
        try:
            summary = self.node.import_items(items)  # one transaction: a refusal leaves the target empty
        except sqlite3.IntegrityError as exc:
            raise R.SITE_IMPORT_DUPLICATE(f"移行 rule: the export holds a record twice ({exc}); nothing was imported") from None
        audit.set_subject(f"{summary.history or summary.atena} records")
        return summary

    async def Wipe(self, request, context):
        """Forget everything imported into this target (a rehearsal rolled back)."""
        rules.require_text(request.reason, "reason")
        if self.rt.node not in self.rt.topology.targets:
            raise R.SITE_TARGET_ONLY(f"移行 rule: {self.rt.node.name} is not a migration target; only a target is wiped")
        self.node.wipe()
        self.state.freeze(TARGET_REASON)
        return self._reply()
