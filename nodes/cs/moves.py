"""Between municipalities: 転出証明書情報 and 転入通知, and the purge of certificates not used in time."""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time

from nodes import audit, rules
from nodes.clock import office_today
from nodes.cs.checks import (JOURNAL_KEEP, MOVE_OUT_DAYS, PURGE_INTERVAL, REMOVED, RESERVATION_SECONDS,
                             check_special_move_in)
from nodes.reasons import cs as R
from nodes.rules import OPERATIONS_ROLES
from nodes.guard import current_call
from protos import common_pb2, cs_pb2, identity_pb2

log = logging.getLogger("nodes.cs")  # one logger name for the whole node


class MovesMixin:
    """転出証明書情報 and 転入通知."""

    async def ReceiveMoveOutCertificate(self, request, context):
        """転出証明書情報 from the former municipality's CS, kept until the 特例転入 or its deadline."""
        sender = current_call().peer.identity.municipality
        audit.set_subject(request.person.resident_code)
        rules.require_resident_code(request.person.resident_code)
        if request.issuing_municipality_code != sender or request.destination_municipality_code != self.municipality:
            raise R.MOVE_OUT_CERTIFICATE_SENDER(f"転出証明書情報 rule: {sender} may send only its own certificates, "
                                                "addressed to here")
        rules.require_date(request.planned_move_out_date, "転出予定年月日")
        with self.rt.store.transaction() as db:
            db.execute("INSERT INTO move_out_certificates VALUES (?,?,?,?,?) ON CONFLICT(resident_code) DO UPDATE SET "
                       "from_municipality=excluded.from_municipality, planned_move_out_date=excluded.planned_move_out_date, "
                       "received_at=excluded.received_at, certificate=excluded.certificate",
                       (request.person.resident_code, sender, request.planned_move_out_date,
                        dt.datetime.now(dt.timezone.utc).isoformat(), request.SerializeToString()))
        return common_pb2.UpdateAck(accepted=True)

    async def TakeMoveOutCertificate(self, request, context):
        """特例転入 at kizon: the 転出証明書情報 received for the person, windows and card checked."""
        code = request.person.resident_code
        audit.set_subject(code)
        rules.require_resident_code(code)
        found = self.rt.store.one("SELECT certificate FROM move_out_certificates WHERE resident_code=?", (code,))
        if found is None:
            raise R.MOVE_OUT_CERTIFICATE_NOT_FOUND(f"特例転入 rule: no 転出証明書情報 has arrived for {code}")
        certificate = identity_pb2.MoveOutCertificate.FromString(found[0])
        check_special_move_in(certificate, request.move_in_date)
        card = await self._card_call(self.card.GetCardStatus, common_pb2.ResidentKey(resident_code=code))
        # A card the card system knows must be usable; cards from before the testbed are known only to kizon.
        if card.state not in ("none", "issued"):
            raise R.SPECIAL_MOVE_IN_CARD_USABLE(f"特例転入 rule: the 個人番号カード is {card.state}")
        return certificate

    async def ReceiveMoveInNotice(self, request, context):
        """転入通知 from the new municipality's CS about a former resident of here."""
        sender = current_call().peer.identity.municipality
        audit.set_subject(request.resident_code)
        rules.require_resident_code(request.resident_code)
        if request.from_municipality_code != sender or request.to_municipality_code != self.municipality:
            raise R.MOVE_IN_NOTICE_SENDER(f"転入通知 rule: {sender} may send only its own notices, addressed to here")
        here = self._current(self.rt.store.db, request.resident_code)
        # A 除票 here: kizon closes it if it is a 転出 (a 職権修正 since leaves the 異動事由 of the correction here,
        # the 消除事由 is kizon's to read); a current resident or a stranger is not a former resident.
        if here is None or here.record_status_flag != REMOVED:
            raise R.MOVE_IN_NOTICE_FORMER_RESIDENT(f"転入通知 rule: {request.resident_code} has no 転出 here to close")
        with self.rt.store.transaction() as db:
            db.execute("INSERT INTO move_in_notices(resident_code, notice) VALUES (?,?)",
                       (request.resident_code, request.SerializeToString()))
        return common_pb2.UpdateAck(accepted=True)

    async def TakeMoveInNotices(self, request, context):
        """The 転入通知 received so far; those kizon says it has recorded are deleted."""
        with self.rt.store.transaction() as db:
            db.execute("DELETE FROM move_in_notices WHERE id<=?", (request.processed_up_to,))
            rows = db.execute("SELECT id, notice FROM move_in_notices ORDER BY id LIMIT 500").fetchall()
        reply = cs_pb2.MoveInNotices(last_id=rows[-1][0] if rows else request.processed_up_to)
        for _, blob in rows:
            reply.notices.add().MergeFromString(blob)
        audit.set_subject(f"{len(rows)} notices")
        return reply

    async def PurgeExpiredCertificates(self, request, context):
        """The batch that deletes 転出証明書情報 not used in time (PIA Ⅰ2 システム2 ③)."""
        current_call().require_role(OPERATIONS_ROLES, "batch rule")
        purged = self._purge()
        audit.set_subject(f"{purged} purged")
        return common_pb2.UpdateAck(accepted=True, applied=purged)

    def batches(self) -> dict:
        """Batch jobs this node runs on demand."""
        return {"purge": self._purge}

    def _purge(self, today: dt.date | None = None) -> int:
        cutoff = (today or office_today()) - dt.timedelta(days=MOVE_OUT_DAYS)
        with self.rt.store.transaction() as db:
            self._release(db, "reserved_at < ?", (time.time() - RESERVATION_SECONDS,))
            last = db.execute("SELECT MAX(update_sequence) FROM update_journal").fetchone()[0] or 0
            db.execute("DELETE FROM update_journal WHERE update_sequence <= ?", (last - JOURNAL_KEEP,))
            return db.execute("DELETE FROM move_out_certificates WHERE planned_move_out_date < ?",
                              (cutoff.isoformat(),)).rowcount

    async def _purge_daily(self) -> None:
        while True:
            purged = self._purge()
            if purged:
                log.info("purged %d 転出証明書情報 past their deadline", purged)
            await asyncio.sleep(PURGE_INTERVAL)
