"""The Operations service every node answers to its domain's monitor and console: status and batch jobs."""
from __future__ import annotations

import inspect
import logging

import psutil

from nodes import audit, deferred, kinds
from protos import ops_pb2, ops_pb2_grpc

log = logging.getLogger("nodes.runtime")
COUNTED_TABLES = ("residents", "identity", "code_pool", "delivery", "entries", "copies", "move_out_certificates")


class OperationsServicer(ops_pb2_grpc.OperationsServicer):
    """Metrics every node answers to its domain's monitor."""

    def __init__(self, runtime):  # (a NodeRuntime)
        self.rt = runtime

    async def GetStatus(self, request, context):
        """Memory, outbox backlog, applied 更新順番号 (and, when asked, record counts) of this node."""
        status = ops_pb2.NodeStatus(node=self.rt.node.name, rss_mb=psutil.Process().memory_info().rss / 2**20,
                                    audit_entries=self.rt.audit.seq)
        if self.rt.outbox is not None:
            status.outbox_pending = self.rt.outbox.pending()
            status.blocked.extend(sorted(self.rt.outbox.blocked))
            status.dead_letters = sum(n for n, _ in self.rt.outbox.dead_letters().values())
            status.oldest_pending_seconds = max((age for _, age in self.rt.outbox.depths().values()), default=0.0)
        db = self.rt.store.db
        if db.execute("SELECT 1 FROM sqlite_master WHERE name='applied'").fetchone():
            status.applied.update(dict(db.execute("SELECT municipality_code, last_sequence FROM applied")))
        status.deferred_indexes = deferred.pending(db)
        for table in COUNTED_TABLES if request.counts else ():
            if db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone():
                status.counts[table] = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        return status

    async def RunBatch(self, request, context):
        """A node's batch job on demand; nodes without one answer that they have none."""
        audit.set_subject(request.name)
        jobs = dict(kinds.batches_of(self.rt.kind, self.rt.servicer))
        if self.rt.scrubbers:  # (every node that keeps a tree of ranges: its scrubbers' whole pass now)
            jobs["scrub"] = self._scrub
        if request.name not in jobs:
            return ops_pb2.BatchResult(node=self.rt.node.name, name=request.name, detail="no such batch on this node")
        affected = jobs[request.name]()
        if inspect.isawaitable(affected):  # (a long job that gives the event loop its turns)
            affected = await affected
        log.info("batch %s: %d records", request.name, affected)
        return ops_pb2.BatchResult(node=self.rt.node.name, name=request.name, affected=affected, detail="done")

    async def _scrub(self) -> int:
        """The scrub batch: a whole pass of every scrubber of the node; how many records and ranges were damaged."""
        return sum([await scrubber.whole_pass() for scrubber in self.rt.scrubbers])
