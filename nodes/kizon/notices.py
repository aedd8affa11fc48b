"""転入通知: the CS's notices that a former resident moved in elsewhere, which make their 除票 final (転出確定)."""
from __future__ import annotations

import asyncio
import logging

import grpc

from nodes import clock
from nodes.kizon.items import NOTICE_POLL, REMOVED, mark, next_entry
from nodes.kizon.parts import Gate, Records
from protos import cs_pb2

log = logging.getLogger("nodes.kizon")  # one logger name for the whole node


class MoveInNotices:
    """The background job that takes 転入通知 from the CS and records each 転出確定 in the register."""

    def __init__(self, runtime, cs, register: Records, gate: Gate):
        self.rt = runtime
        self.cs = cs  # this municipality's 市町村CS (a CommunicationServerStub)
        self.register = register
        self.gate = gate

    async def poll(self) -> None:
        """Take 転入通知 from the CS and finalize the 除票 of each former resident (転出確定)."""
        while True:
            await asyncio.sleep(NOTICE_POLL)
            if self.gate.reason():  # frozen (移行中, or a target not yet open): the register does not change
                continue
            # read each time: an import (移行) brings the cursor of the site the register came from
            cursor = self.rt.store.scalar("SELECT value FROM counters WHERE name='notice_cursor'", default=0)
            try:
                reply = await self.cs.TakeMoveInNotices(cs_pb2.NoticeCursor(processed_up_to=cursor),
                                                        timeout=self.rt.peer_timeout)
            except grpc.aio.AioRpcError:
                continue
            if not reply.notices or self.gate.reason():  # (frozen while the CS answered: taken again later)
                continue
            with self.rt.store.transaction() as db:
                for notice in reply.notices:
                    self._confirm_move_out(db, notice)
                db.execute("INSERT INTO counters VALUES ('notice_cursor', ?) ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                           (reply.last_id,))
            cursor = reply.last_id

    def _confirm_move_out(self, db, notice) -> None:
        found = self.register.find(db, notice.resident_code)
        if found is None:
            log.warning("転入通知 for %s, who is not in this register", notice.resident_code)
            return
        record = next_entry(found)
        if record.status != REMOVED or record.removal_reason != "転出" or record.move_out_destination_confirmed:
            log.warning("転入通知 for %s, whose 住民票 is not 転出予定 here: ignored", notice.resident_code)
            self.rt.audit.append(caller=self.rt.node.identity, method="kizon/転入通知受理", status="FAILED_PRECONDITION",
                                 subject=notice.resident_code)
            return
        record.history_number += 1
        record.move_out_destination_confirmed = notice.new_address
        mark(record, "転出確定", notice.move_in_date, notice.notified_at)
        # written by the 転入通知, not by a counter operation: its own 依頼管理番号, no operator or terminal
        record.request_control_number = f"転入通知:{notice.from_municipality_code}:{notice.notified_at}"
        record.operator_id = record.terminal_id = ""
        record.recorded_at = clock.stamp()
        self.register.append(db, record)
        self.rt.audit.append(caller=self.rt.node.identity, method="kizon/転入通知受理", status="OK",
                             subject=notice.resident_code)
