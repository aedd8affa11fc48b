"""The items of a 在留カード and of a change of 在留, and the rules on them that 法務省, the CS and kizon all keep
(the same check wherever a 法務省通知 passes: each node holds what reaches it to the same layout)."""
from __future__ import annotations

import re

from nodes import rules
from nodes.clock import office_today
from nodes.reasons import moj as R

CARD_NUMBER = re.compile(r"[A-Z]{2}[0-9]{8}[A-Z]{2}")  # 在留カード番号 (入管法第19条の4): AB12345678CD
VALID, LEFT, EXPIRED = "有効", "出国", "失効"  # ResidenceCardRecord.status
STATUSES = (VALID, LEFT, EXPIRED)
CHANGE_STATUS, RENEWAL, REISSUE, DEPARTURE, EXPIRY = "在留資格変更", "在留期間更新", "在留カード再交付", "出国", "失効"
KINDS = (CHANGE_STATUS, RENEWAL, REISSUE, DEPARTURE, EXPIRY)
ENDING = {DEPARTURE: LEFT, EXPIRY: EXPIRED}  # the kinds after which the card is no longer 有効, and its status then
# Which items of a ResidenceChange each kind carries (every 変更・更新 gives a new card: 入管法第20条第4項, 第21条第4項)
ITEMS = {
    CHANGE_STATUS: {"residence_status", "period_expiry_date", "new_card_number"},
    RENEWAL: {"period_expiry_date", "new_card_number"},
    REISSUE: {"new_card_number"},
    DEPARTURE: set(),
    EXPIRY: set(),
}
OPTIONAL = {"residence_card_number", "kind", "event_date"}  # (named, not carried per kind)


def require_card_number(number: str, item: str = "在留カード番号") -> None:
    """A 在留カード番号 of the layout: 2 letters, 8 digits, 2 letters."""
    if not CARD_NUMBER.fullmatch(number or ""):
        raise R.RESIDENCE_CARD_NUMBER_FORMAT(f"{item} rule: {number[:16]!r} is not 2 letters, 8 digits and 2 letters")


def check_change(change, *, future_expiry: bool = True) -> str:
    """A change of 在留 as an 入管 office records it: its kind, the card it is made on, the items its kind carries
    (and no others), a new 満了の日 after today (with future_expiry: at 法務省, on the day it is recorded; a notice
    applied later may find that day past), the day it happened not in the future. Its 異動年月日: that day, or
    today when the change names none."""
    if change.kind not in KINDS:
        raise R.RESIDENCE_CHANGE_KIND(f"在留 rule: {change.kind[:16]!r} is not one of {', '.join(KINDS)}")
    require_card_number(change.residence_card_number)
    given = {f.name for f, _ in change.ListFields()} - OPTIONAL
    wanted = ITEMS[change.kind]
    if given != wanted:
        missing, extra = sorted(wanted - given), sorted(given - wanted)
        raise R.RESIDENCE_CHANGE_ITEMS(f"在留 rule: a {change.kind} carries {', '.join(sorted(wanted)) or 'no items'}"
                                       + (f"; missing {', '.join(missing)}" if missing else "")
                                       + (f"; not {', '.join(extra)}" if extra else ""))
    if change.new_card_number:
        require_card_number(change.new_card_number, "新しい在留カード番号")
        if change.new_card_number == change.residence_card_number:
            raise R.RESIDENCE_CARD_NUMBER_TAKEN("在留カード rule: a new card has a number of its own")
    if change.residence_status:
        rules.check_text(change.residence_status, "residence_status")
    if change.period_expiry_date:
        expiry = rules.require_date(change.period_expiry_date, "在留期間の満了の日")
        if future_expiry and expiry <= office_today():
            raise R.RESIDENCE_PERIOD_EXPIRY(f"在留期間 rule: the new 満了の日 {expiry} is not after today "
                                            f"({office_today()})")
    if not change.event_date:
        return office_today().isoformat()
    return rules.require_past_date(change.event_date, "異動年月日").isoformat()
