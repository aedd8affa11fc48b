"""The items of a 住民票 and the rules on them that every counter operation shares."""
from __future__ import annotations

import re

from nodes import rules
from nodes.reasons import common as C
from nodes.reasons import kizon as K
from nodes.clock import office_today
from protos import records_pb2

BULK_OUTPUT_LIMIT = 100  # records an operator may output without a manager's approval (PIA Ⅲ(2)3) …
BULK_WINDOW_HOURS = 24  # … within this many hours (split exports add up)
MOVE_IN_DAYS = 14  # a 転入届 within 14 days of moving in (住基法第22条)
NOTICE_POLL = 1.0  # seconds between looks for 転入通知 at the CS
CURRENT = records_pb2.ResidentRecord.STATUS_CURRENT
REMOVED = records_pb2.ResidentRecord.STATUS_REMOVED
KANA = re.compile(r"[ァ-ヶー・ 　]+")
# Items of the former municipality's 住民票 that a 転入 does not take over: its own numbering,
# the state of the record there, and the trail of who wrote it.
NOT_CARRIED_OVER = ("atena_number", "history_number", "is_latest", "household_number", "householder_name", "relationship",
                    "status", "removal_reason", "removal_date", "move_out_destination_planned",
                    "move_out_destination_confirmed", "planned_move_out_date", "request_control_number", "operator_id",
                    "terminal_id", "recorded_at", "change_reason_detail", "town_code", "address_line", "katagaki")
# What a clerk types for a person; everything else of a 住民票 the office derives (numbers, household,
# status, card, dates of the office, the trail). A request that sets a derived item is refused.
PERSON_ITEMS = {"name_kanji", "name_kana", "name_romaji", "former_surname_kanji", "former_surname_kana", "alias_kanji",
                "alias_kana", "birth_date", "sex", "relationship", "resident_type", "honseki", "hittousha",
                "article_30_45_category", "residence_status", "residence_card_number", "nationality",
                "residence_period_expiry_date"}
BIRTH_ITEMS = {"name_kanji", "name_kana", "name_romaji", "alias_kanji", "alias_kana", "birth_date", "sex", "relationship",
               "nationality"}
MOVE_IN_ITEMS = {"resident_code", "relationship"}  # 転入: the rest comes from the 転出証明書
ITEM_REPORT_LIMIT = 1000  # records of a consistency report whose differing items are named one by one
MOVE_WITHIN_DAYS = 14  # a 転居届 within 14 days of moving (住基法第23条)
MOVE_OUT_DAYS_AFTER = 14  # a 転出届 at most 14 days after moving out (住基法第24条) …
MOVE_OUT_DAYS_AHEAD = 30  # … or up to a month before the planned date

# Items a 職権修正 may correct: the person's own items and the eligibility flags, never numbers or keys.
CORRECTABLE = PERSON_ITEMS | {"elector", "national_health_insurance", "late_stage_elderly", "long_term_care",
                              "national_pension", "child_allowance"}


def today_iso() -> str:
    """The office's today in Japan, as an ISO date."""
    return office_today().isoformat()


def require_person_items(record: records_pb2.ResidentRecord) -> None:
    """The items every 住民票 needs: 氏名 in kanji and katakana, 生年月日, 性別."""
    rules.require_text(record.name_kanji, "氏名")
    if not KANA.fullmatch(record.name_kana or ""):
        raise K.NAME_KANA_KATAKANA(f"ふりがな rule: {record.name_kana!r} is not written in katakana")
    rules.require_date(record.birth_date, "生年月日")
    if record.sex not in ("1", "2", "9"):
        raise C.SEX_CODE(f"性別 rule: {record.sex!r} is not 1 (男), 2 (女) or 9 (不詳)")


def head_of(members) -> records_pb2.ResidentRecord:
    """The 世帯主 among a household's members (the first member if none is)."""
    for member in members:
        if member.relationship == "世帯主":
            return member
    return members[0]


def take_household(record, head) -> None:
    """Put record in head's household, at head's address."""
    record.household_number = head.household_number
    record.householder_name = head.name_kanji
    for name in ("town_code", "address_line", "katagaki", "postal_code", "address"):
        setattr(record, name, getattr(head, name))


def set_address(record, address) -> None:
    """Put record at this address."""
    for name in ("town_code", "address_line", "katagaki", "postal_code", "address"):
        setattr(record, name, getattr(address, name))


def next_entry(record) -> records_pb2.ResidentRecord:
    """A copy of a record to become its next history entry (the number is given at commit)."""
    copy = records_pb2.ResidentRecord()
    copy.CopyFrom(record)
    return copy


def mark(record, reason: str, change_date: str, notification_date: str, detail: str = "") -> None:
    """Say why and when the entry was written: 異動事由, 異動年月日, 届出年月日 (and a detail)."""
    record.change_reason, record.change_date, record.notification_date = reason, change_date, notification_date
    record.change_reason_detail = detail
