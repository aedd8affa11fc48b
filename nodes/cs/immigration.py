"""The CS's part in the 在留カード等発行システム連携 (seed: 住基GW function 2; 住基法第30条の50, 入管法第61条の8の2):

- 法務省通知 from 法務省, addressed to this municipality, in 法務省's order (a gap refused, a repeat answered), each
  stored once until kizon's 住基GW takes it and applies it to the 住民票 (nodes/kizon/immigration.py);
- 市町村通知 kizon attaches to an update of a foreign resident: checked, numbered for 法務省 in the update's
  transaction and queued in the durable outbox (target "moj", in order, never skipped). A network without 法務省
  numbers none and sends none (nobody to tell)."""
from __future__ import annotations

from nodes import audit, rules
from nodes.residence import check_change, require_card_number
from nodes.reasons import moj as R
from nodes.store import next_counter
from protos import common_pb2, moj_pb2

SCHEMA = """
CREATE TABLE IF NOT EXISTS immigration_notices (        -- 法務省通知 for this municipality, until kizon takes them
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sequence INTEGER NOT NULL UNIQUE,                   -- 法務省's number for this municipality
    notice BLOB NOT NULL                                -- moj_pb2.ImmigrationNotice
);
"""
TARGET = "moj"  # the outbox target of the 市町村通知
RECEIVED = "immigration_received"  # counter: the last 法務省通知 number stored
SENT = "municipality_notice"  # counter: the last 市町村通知 number given
TAKE_LIMIT = 500  # notices kizon takes at a time


class Immigration:
    """法務省通知 received and taken by kizon; 市町村通知 numbered and queued when an update carries one."""

    def __init__(self, runtime):
        self._rt = runtime
        self._municipality = runtime.node.municipality
        self.reaches_moj = any(n.kind == "moj" for n in runtime.topology.nodes)

    def queue(self, db, notice: moj_pb2.MunicipalityNotice, resident_code: str) -> str | None:
        """In an update's transaction: check and number a 市町村通知 kizon attached; the outbox target it goes to
        (None: no 法務省 in this network)."""
        if notice.resident_code != resident_code or notice.municipality_code != self._municipality:
            raise R.MUNICIPALITY_NOTICE_ITEMS(f"市町村通知 rule: the notice of {resident_code} names "
                                              f"{notice.resident_code[:16]} of {notice.municipality_code[:8]}")
        try:
            require_card_number(notice.residence_card_number)
            rules.require_text(notice.reason, "異動事由")
        except rules.Violation as exc:
            raise R.MUNICIPALITY_NOTICE_ITEMS(f"市町村通知 rule: {exc}") from None
        rules.check_message_text(notice)
        if not self.reaches_moj:
            return None
        notice.sequence = next_counter(db, SENT)
        return TARGET

    async def receive(self, notice: moj_pb2.ImmigrationNotice) -> common_pb2.UpdateAck:
        """法務省通知 addressed here, the next of 法務省's numbers for this municipality (a repeat is answered)."""
        audit.set_subject(notice.resident_code or notice.residence_card_number[:12])
        if notice.municipality_code != self._municipality:
            raise R.IMMIGRATION_NOTICE_ADDRESSEE(f"法務省通知 rule: a notice for {notice.municipality_code[:8]} reached "
                                                 f"the CS of {self._municipality}")
        check_change(notice.change, future_expiry=False)  # (the layout: kizon checks the person when it applies it)
        if notice.change.residence_card_number != notice.residence_card_number:
            raise R.IMMIGRATION_NOTICE_ADDRESSEE("法務省通知 rule: the notice names the card its change was made on")
        rules.check_message_text(notice)
        with self._rt.store.transaction() as db:
            last = db.execute("SELECT value FROM counters WHERE name=?", (RECEIVED,)).fetchone()
            last = last[0] if last else 0
            if notice.sequence <= last:
                return common_pb2.UpdateAck(accepted=True, update_sequence=last, applied=0)  # (a repeat)
            if notice.sequence != last + 1:
                raise R.IMMIGRATION_NOTICE_GAP(f"法務省通知 rule: the next notice for {self._municipality} is number "
                                               f"{last + 1}, not {notice.sequence}")
            db.execute("INSERT INTO immigration_notices(sequence, notice) VALUES (?, ?)",
                       (notice.sequence, notice.SerializeToString()))
            next_counter(db, RECEIVED)
        return common_pb2.UpdateAck(accepted=True, update_sequence=notice.sequence, applied=1)

    async def take(self, request: moj_pb2.ImmigrationCursor) -> moj_pb2.ImmigrationNotices:
        """The 法務省通知 stored so far, in 法務省's order; those kizon says it has applied are deleted."""
        with self._rt.store.transaction() as db:
            db.execute("DELETE FROM immigration_notices WHERE id<=?", (request.processed_up_to,))
            rows = db.execute("SELECT id, notice FROM immigration_notices ORDER BY id LIMIT ?",
                              (TAKE_LIMIT,)).fetchall()
        reply = moj_pb2.ImmigrationNotices(last_id=rows[-1][0] if rows else request.processed_up_to)
        for _, blob in rows:
            reply.notices.add().MergeFromString(blob)
        audit.set_subject(f"{len(rows)} 法務省通知")
        return reply
