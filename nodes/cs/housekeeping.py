"""The CS's purge: 転出証明書情報 not used in time, 送付先情報 past its retention (overwritten and checkpointed out of
the WAL: nothing of it can be read back, seed 2876–2882), stale 住民票コード reservations, the old journal (daily and on
demand)."""
from __future__ import annotations

import asyncio
import datetime as dt
import logging

from nodes import audit
from nodes.clock import office_today
from nodes.cs import parts
from nodes.cs.checks import MOVE_OUT_DAYS, PURGE_INTERVAL
from nodes.guard import current_call
from nodes.rules import OPERATIONS_ROLES
from protos import common_pb2

log = logging.getLogger("nodes.cs")  # one logger name for the whole node


class Housekeeping:
    """The purge of what each part keeps only for a while, in one transaction; run daily and as a batch."""

    def __init__(self, runtime, pool: parts.Pool, journal: parts.Journal, certificates: parts.Certificates,
                 deliveries: parts.Deliveries):
        self._rt = runtime
        self._deliveries = deliveries
        self._pool = pool
        self._journal = journal
        self._certificates = certificates
        runtime.background(self._purge_daily)

    async def purge_on_demand(self, request):
        """The batch that deletes 転出証明書情報 not used in time (PIA Ⅰ2 システム2 ③)."""
        current_call().require_role(OPERATIONS_ROLES, "batch rule")
        purged = self.purge()
        audit.set_subject(f"{purged} purged")
        return common_pb2.UpdateAck(accepted=True, applied=purged)

    def batches(self) -> dict:
        """Batch jobs this node runs on demand."""
        return {"purge": self.purge}

    def purge(self, today: dt.date | None = None) -> int:
        """Release stale reservations, trim the journal, delete the certificates past their deadline and the
        送付先情報 past its retention (how many of these two)."""
        cutoff = (today or office_today()) - dt.timedelta(days=MOVE_OUT_DAYS)
        with self._rt.store.transaction() as db:  # (the store overwrites what it deletes: secure_delete, service.py)
            self._pool.release_stale(db)
            self._journal.trim_journal(db)
            certificates = self._certificates.purge_expired(db, cutoff)
            deliveries = self._deliveries.purge_expired(db, today)
        if deliveries:
            log.info("purged %d 送付先情報 past the retention", deliveries)
        if (certificates or deliveries) and not self._rt.store.truncate_wal():
            log.warning("purged, but the WAL could not be emptied yet (a reader held it): the next checkpoint "
                        "overwrites it")
        return certificates + deliveries

    async def _purge_daily(self) -> None:
        while True:
            purged = self.purge()
            if purged:
                log.info("purged %d 転出証明書情報 past their deadline", purged)
            await asyncio.sleep(PURGE_INTERVAL)
