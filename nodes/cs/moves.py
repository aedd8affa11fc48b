"""Between municipalities: 転出証明書情報 and 転入通知 between CSs, and the 特例転入 they allow."""
from __future__ import annotations

import datetime as dt

from nodes import audit, clock, rules
from nodes.cs import parts
from nodes.cs.checks import REMOVED, check_special_move_in
from nodes.reasons import cs as R
from nodes.guard import current_call
from protos import common_pb2, cs_pb2, identity_pb2


class Moves:
    """転出証明書情報 and 転入通知 (the certificates received: parts.Certificates)."""

    def __init__(self, runtime, peers: parts.Peers, register: parts.Register):
        self._rt = runtime
        self._municipality = runtime.node.municipality
        self._peers = peers
        self._register = register

    async def receive_certificate(self, request):
        """転出証明書情報 from the former municipality's CS, kept until the 特例転入 or its deadline."""
        sender = current_call().peer.identity.municipality
        audit.set_subject(request.person.resident_code)
        rules.require_resident_code(request.person.resident_code)
        if request.issuing_municipality_code != sender or request.destination_municipality_code != self._municipality:
            raise R.MOVE_OUT_CERTIFICATE_SENDER(f"転出証明書情報 rule: {sender} may send only its own certificates, "
                                                "addressed to here")
        rules.require_date(request.planned_move_out_date, "転出予定年月日")
        with self._rt.store.transaction() as db:
            db.execute("INSERT INTO move_out_certificates VALUES (?,?,?,?,?) ON CONFLICT(resident_code) DO UPDATE SET "
                       "from_municipality=excluded.from_municipality, planned_move_out_date=excluded.planned_move_out_date, "
                       "received_at=excluded.received_at, certificate=excluded.certificate",
                       (request.person.resident_code, sender, request.planned_move_out_date,
                        clock.stamp("microseconds"), request.SerializeToString()))
        return common_pb2.UpdateAck(accepted=True)

    async def take_certificate(self, request):
        """特例転入 at kizon: the 転出証明書情報 received for the person, windows and card checked."""
        code = request.person.resident_code
        audit.set_subject(code)
        rules.require_resident_code(code)
        certificate = self.certificate(self._rt.store.db, code)
        if certificate is None:
            raise R.MOVE_OUT_CERTIFICATE_NOT_FOUND(f"特例転入 rule: no 転出証明書情報 has arrived for {code}")
        check_special_move_in(certificate, request.move_in_date)
        card = await self._peers.card_call(self._peers.card.GetCardStatus, common_pb2.ResidentKey(resident_code=code))
        # A card the card system knows must be usable; cards from before the testbed are known only to kizon.
        if card.state not in ("none", "issued"):
            raise R.SPECIAL_MOVE_IN_CARD_USABLE(f"特例転入 rule: the 個人番号カード is {card.state}")
        return certificate

    def certificate(self, db, resident_code: str) -> identity_pb2.MoveOutCertificate | None:
        """The 転出証明書情報 received for resident_code, or None."""
        found = db.execute("SELECT certificate FROM move_out_certificates WHERE resident_code=?",
                           (resident_code,)).fetchone()
        return identity_pb2.MoveOutCertificate.FromString(found[0]) if found is not None else None

    def use_certificate(self, db, resident_code: str) -> None:
        """The 特例転入 is made: its certificate is deleted (in the update's transaction)."""
        db.execute("DELETE FROM move_out_certificates WHERE resident_code=?", (resident_code,))

    def purge_expired(self, db, cutoff: dt.date) -> int:
        """Delete the 転出証明書情報 whose planned move-out date is before cutoff; how many."""
        return db.execute("DELETE FROM move_out_certificates WHERE planned_move_out_date < ?",
                          (cutoff.isoformat(),)).rowcount

    async def receive_notice(self, request):
        """転入通知 from the new municipality's CS about a former resident of here."""
        sender = current_call().peer.identity.municipality
        audit.set_subject(request.resident_code)
        rules.require_resident_code(request.resident_code)
        if request.from_municipality_code != sender or request.to_municipality_code != self._municipality:
            raise R.MOVE_IN_NOTICE_SENDER(f"転入通知 rule: {sender} may send only its own notices, addressed to here")
        here = self._register.current(self._rt.store.db, request.resident_code)
        # A 除票 here: kizon closes it if it is a 転出 (a 職権修正 since leaves the 異動事由 of the correction here,
        # the 消除事由 is kizon's to read); a current resident or a stranger is not a former resident.
        if here is None or here.record_status_flag != REMOVED:
            raise R.MOVE_IN_NOTICE_FORMER_RESIDENT(f"転入通知 rule: {request.resident_code} has no 転出 here to close")
        with self._rt.store.transaction() as db:
            db.execute("INSERT INTO move_in_notices(resident_code, notice) VALUES (?,?)",
                       (request.resident_code, request.SerializeToString()))
        return common_pb2.UpdateAck(accepted=True)

    async def take_notices(self, request):
        """The 転入通知 received so far; those kizon says it has recorded are deleted."""
        with self._rt.store.transaction() as db:
            db.execute("DELETE FROM move_in_notices WHERE id<=?", (request.processed_up_to,))
            rows = db.execute("SELECT id, notice FROM move_in_notices ORDER BY id LIMIT 500").fetchall()
        reply = cs_pb2.MoveInNotices(last_id=rows[-1][0] if rows else request.processed_up_to)
        for _, blob in rows:
            reply.notices.add().MergeFromString(blob)
        audit.set_subject(f"{len(rows)} notices")
        return reply
