"""The changes of 在留 an 入管 office records (在留資格変更, 在留期間更新, 在留カード再交付, 出国, 失効), the card it
reads, and the load of a population's foreign residents. A change, its 法務省通知 and the answer are written in one
transaction; a retry with the same x-request-id is answered with the first answer, never recorded twice."""
from __future__ import annotations

from nodes import audit, rules
from nodes.once import SCHEMA as ONCE_SCHEMA, once
from nodes.residence import ENDING, STATUSES, VALID, check_change, require_card_number
from nodes.moj.notices import Notices
from nodes.moj.store import CardStore
from nodes.reasons import common as C, moj as R
from protos import common_pb2, moj_pb2

SCHEMA = ONCE_SCHEMA  # (the changes recorded, each answered once: nodes/once.py)


class ResidenceCards:
    """The 入管 office's changes and reads of the 在留カード, and the console's load."""

    def __init__(self, runtime, cards: CardStore, notices: Notices):
        self.rt = runtime
        self.cards = cards
        self.notices = notices

    async def record(self, change: moj_pb2.ResidenceChange) -> moj_pb2.ImmigrationNotice:
        """A change of 在留 on a card that is 有効: the card changed and the 法務省通知 to the 住居地 queued, at once."""
        audit.set_subject(change.residence_card_number[:12])
        recorded = moj_pb2.ResidenceChange()
        recorded.CopyFrom(change)
        recorded.event_date = check_change(change)  # (the day it happened; today when the office named none)

        def made(db) -> moj_pb2.ImmigrationNotice:
            card = self.cards.current(db, change.residence_card_number)
            if card is None:
                if self.cards.replaced(db, change.residence_card_number):
                    raise R.RESIDENCE_CARD_NOT_VALID(f"在留カード rule: {change.residence_card_number} was replaced by "
                                                     "a new card; a change is recorded on the current one")
                raise C.RECORD_NOT_FOUND(f"在留カード rule: no card {change.residence_card_number} was issued")
            if card.status != VALID:
                raise R.RESIDENCE_CARD_NOT_VALID(f"在留カード rule: card {card.residence_card_number} is {card.status}, "
                                                 "not 有効")
            if not self.notices.reaches(card.municipality_code):
                raise R.RESIDENCE_CHANGE_NO_MUNICIPALITY(
                    f"法務省通知 rule: the holder of {card.residence_card_number} has no 住居地 in a municipality of this "
                    f"network ({card.municipality_code or 'none reported'}): nobody to tell")
            if change.residence_status:
                card.residence_status = change.residence_status
            if change.period_expiry_date:
                card.period_expiry_date = change.period_expiry_date
            if change.kind in ENDING:
                card.status = ENDING[change.kind]
            if change.new_card_number:
                if self.cards.taken(db, change.new_card_number):
                    raise R.RESIDENCE_CARD_NUMBER_TAKEN(f"在留カード rule: {change.new_card_number} was given to a "
                                                        "card before")
                self.cards.renumber(db, card, change.new_card_number)
            self.cards.save(db, card)
            return self.notices.queue(db, card, recorded)

        notice = self._once(change, made)
        self.notices.wake(notice.municipality_code)
        return notice

    def _once(self, request, made) -> moj_pb2.ImmigrationNotice:
        """Record a change once per scoped x-request-id, in one transaction (the card, the notice, the answer)."""
        return once(self.rt.store, request, made, moj_pb2.ImmigrationNotice, "change")

    def get(self, request: moj_pb2.ResidenceCardKey) -> moj_pb2.ResidenceCardRecord:
        """The card held under a number (a replaced one names the card that replaced it)."""
        require_card_number(request.residence_card_number)
        audit.set_subject(request.residence_card_number)
        db = self.rt.store.db
        card = self.cards.current(db, request.residence_card_number)
        if card is None:
            newer = self.cards.holder(db, request.residence_card_number)
            raise C.RECORD_NOT_FOUND(f"在留カード rule: no card {request.residence_card_number} is held"
                                     + (f" (replaced by {newer.residence_card_number})" if newer else ""))
        return card

    def load(self, request: moj_pb2.ResidenceCardLoad) -> common_pb2.UpdateAck:
        """The foreign residents of a population, once: a card held already with other content is refused, a repeat
        of the same card is answered."""
        audit.set_subject(f"{len(request.records)} 在留カード")
        for card in request.records:
            require_card_number(card.residence_card_number)
            if card.status not in STATUSES:
                raise R.RESIDENCE_CARD_STATUS(f"在留カード rule: a card is {', '.join(STATUSES)}, not "
                                              f"{card.status[:8]!r}")
            if card.municipality_code:
                rules.require_municipality_code(card.municipality_code, "住居地の市町村コード")
            if card.resident_code:
                rules.require_resident_code(card.resident_code)
            for value, item in ((card.birth_date, "生年月日"), (card.period_expiry_date, "在留期間の満了の日")):
                if value:
                    rules.require_date(value, item)
        loaded = 0
        with self.rt.store.transaction() as db:
            for card in request.records:
                held = self.cards.current(db, card.residence_card_number)
                if held is not None and held == card:
                    continue
                if held is not None or self.cards.replaced(db, card.residence_card_number):
                    raise R.RESIDENCE_CARD_LOAD_TAKEN(f"load rule: card {card.residence_card_number} is held here with "
                                                      "other content")
                self.cards.save(db, card)
                loaded += 1
        return common_pb2.UpdateAck(accepted=True, applied=loaded)
