"""The two notices between 法務省 and the municipalities, over 住基ネット through the municipality's CS:

- 法務省通知 (住基法第30条の50): a change 法務省 records is numbered per 住居地 municipality, in the change's own
  transaction, and queued in the durable outbox for that municipality's CS (a sequenced target: in order, never
  skipped; the CS refuses a gap and answers a repeat);
- 市町村通知 (入管法第61条の8の2): a municipality's CS tells 法務省 of a change of a foreign resident's 住居地, 世帯 or
  氏名 (or the 消除 of their 住民票); kept once per (sender, number), in the sender's order, and applied to the card.
"""
from __future__ import annotations

import logging

from nodes import audit, clock, rules
from nodes.guard import current_call
from nodes.residence import require_card_number
from nodes.moj.store import CardStore
from nodes.outbox import Target
from nodes.reasons import moj as R
from nodes.store import next_counter
from protos import common_pb2, cs_pb2_grpc, moj_pb2

log = logging.getLogger("nodes.moj")

SCHEMA = """
CREATE TABLE IF NOT EXISTS municipality_received (  -- the last 市町村通知 number kept from each municipality
    sender TEXT PRIMARY KEY,
    last INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS municipality_notices (   -- every 市町村通知 kept, applied to a card or not (none found)
    sender TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    applied INTEGER NOT NULL,                       -- 1: a card held here took it; 0: kept aside for the office
    notice BLOB NOT NULL,                           -- moj_pb2.MunicipalityNotice
    PRIMARY KEY (sender, sequence)
);
"""
# 異動事由 after which the person no longer lives in the sending municipality (their 住民票 is a 除票 there)
REMOVALS = frozenset({"転出", "国外転出", "死亡", "職権消除"})


def target_of(municipality: str) -> str:
    """The outbox target of the 法務省通知 to a municipality's CS."""
    return f"notice:{municipality}"


class Notices:
    """法務省通知 numbered and queued for each municipality's CS; 市町村通知 received from them."""

    def __init__(self, runtime, cards: CardStore):
        self.rt = runtime
        self.cards = cards
        targets = {}
        for place in runtime.topology.municipalities:
            try:
                runtime.topology.find("cs", place.code)
            except KeyError:
                continue  # (a municipality without a CS here: a change of its residents is refused, nobody to tell)
            cs = runtime.stub(cs_pb2_grpc.CommunicationServerStub, "cs", place.code)
            targets[target_of(place.code)] = Target(cs.ReceiveImmigrationNotice, moj_pb2.ImmigrationNotice, None,
                                                    sequenced=True)
        self.outbox = runtime.use_outbox(targets)

    def reaches(self, municipality: str) -> bool:
        """Whether a 法務省通知 to this municipality has a CS to go to."""
        return bool(municipality) and target_of(municipality) in self.outbox.targets

    def queue(self, db, card: moj_pb2.ResidenceCardRecord,
              change: moj_pb2.ResidenceChange) -> moj_pb2.ImmigrationNotice:
        """In the change's transaction: the next 法務省通知 for the holder's 住居地, queued for its CS."""
        municipality = card.municipality_code
        notice = moj_pb2.ImmigrationNotice(
            sequence=next_counter(db, target_of(municipality)), municipality_code=municipality,
            resident_code=card.resident_code, residence_card_number=change.residence_card_number, change=change,
            notified_at=clock.stamp())
        self.outbox.put(db, target_of(municipality), notice)
        return notice

    def wake(self, municipality: str) -> None:
        """After the commit: the municipality's delivery has something new."""
        self.outbox.wake(target_of(municipality))

    async def receive(self, notice: moj_pb2.MunicipalityNotice) -> common_pb2.UpdateAck:
        """市町村通知 from a municipality's CS: its own, the next of its numbers (a repeat is answered), kept once and
        applied to the card it names (a card not held here: kept aside)."""
        sender = current_call().peer.identity.municipality
        audit.set_subject(notice.residence_card_number[:12])
        if notice.municipality_code != sender:
            raise R.MUNICIPALITY_NOTICE_SENDER(f"市町村通知 rule: the CS of {sender} sends only its own notices, not "
                                               f"those of {notice.municipality_code[:8]}")
        rules.require_resident_code(notice.resident_code)
        require_card_number(notice.residence_card_number)
        rules.require_text(notice.reason, "異動事由")
        rules.check_message_text(notice)  # (a node's message: the guard checks only clients' texts)
        with self.rt.store.transaction() as db:
            last = db.execute("SELECT last FROM municipality_received WHERE sender=?", (sender,)).fetchone()
            last = last[0] if last else 0
            if notice.sequence <= last:
                return common_pb2.UpdateAck(accepted=True, update_sequence=last, applied=0)  # (a repeat)
            if notice.sequence != last + 1:
                raise R.MUNICIPALITY_NOTICE_GAP(f"市町村通知 rule: the next notice from {sender} is number {last + 1}, "
                                                f"not {notice.sequence}")
            card = self.cards.holder(db, notice.residence_card_number)
            if card is not None:
                self._apply(card, notice, sender)
                self.cards.save(db, card)
            else:
                log.warning("市町村通知 %s #%d names the card %s, not held here: kept aside", sender, notice.sequence,
                            notice.residence_card_number)
            db.execute("INSERT INTO municipality_notices VALUES (?, ?, ?, ?)",
                       (sender, notice.sequence, int(card is not None), notice.SerializeToString()))
            db.execute("INSERT INTO municipality_received VALUES (?, ?) ON CONFLICT(sender) DO UPDATE SET "
                       "last=excluded.last", (sender, notice.sequence))
        return common_pb2.UpdateAck(accepted=True, update_sequence=notice.sequence, applied=int(card is not None))

    @staticmethod
    def _apply(card: moj_pb2.ResidenceCardRecord, notice: moj_pb2.MunicipalityNotice, sender: str) -> None:
        """The card after a 市町村通知: the 住居地 and 氏名 reported, or no 住居地 after a 消除 there."""
        if notice.reason in REMOVALS:
            # Only the municipality the holder lives in ends their 住居地: a 転出 that arrives after the 転入 at the
            # new municipality (two senders, two orders) leaves the new 住居地 as it is.
            if card.municipality_code == sender:
                card.municipality_code = ""
            return
        card.municipality_code = sender
        card.resident_code = notice.resident_code
        if notice.address:
            card.address = notice.address
        if notice.name:
            card.name_romaji = notice.name
