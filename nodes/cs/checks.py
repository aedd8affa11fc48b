"""What the CS holds an update to: items, changes a 転居 may make, 特例転入 windows, and its limits."""
from __future__ import annotations

import datetime as dt

from nodes import rules, settings
from nodes.clock import office_today
from nodes.numbers import individual_number_valid
from nodes.records import delivery_character_errors, identity_character_errors
from nodes.reasons import common as C, cs as R
from protos import records_pb2

MOVE_IN_DAYS = 14  # 特例転入: the 転入届 within 14 days of moving in …
MOVE_OUT_DAYS = 30  # … and within 30 days of the planned move-out date (PIA Ⅰ2 システム2 ③)
PURGE_INTERVAL = 3600.0  # seconds between runs of the 転出証明書情報 purge

# Items a 転居 may change (PIA Ⅲ(2)5) besides the items that describe the change itself: the address and what it
# gives, its 外字数 and the record's 外字フラグ (a 方書 with a 外字 and one without; GAIJI_ITEMS holds both to the texts).
ADDRESS_ITEMS = {"oaza_aza_code", "postal_code", "address", "address_gaiji_count", "gaiji_flag"}
CHANGE_ITEMS = {"change_reason", "change_date", "change_reason_detail", "notification_date", "address_since",
                "request_control_number", "operator_id", "terminal_id", "update_sequence",
                "recovery_update_sequence", "timestamp",
                # what a 住民票コード変更 recorded: it describes that change, not the person's address
                "former_resident_code", "resident_code_use_date"}
NEW_PERSON_REASONS = {"出生", "転入", "国外転入", "職権記載", "移行"}
NEW_NUMBER_REASONS = {"出生", "国外転入", "職権記載", "移行"}  # new people whose 個人番号 national has just issued
LOOKS_AT_ONCE = 32  # national lookups of new people's numbers in flight at a time from one update batch
ISSUED_KEPT = 20_000  # national's latest answers kept for the updates that follow (a load batch is 5,000)
POOL_REASONS = {"出生", "国外転入", "職権記載"}  # new people whose 住民票コード must come from this CS's pool
RESERVATION_SECONDS = 3600  # a 住民票コード reserved and not used for this long goes back to the pool
JOURNAL_KEEP = 200_000  # updates kept after delivery, to re-send when the prefecture reports a gap
RESIDENCE_RETRIES = 10  # looks at national (0.3 s apart) for a 転出 that may still be on its way
CURRENT = 0  # レコード状況フラグ: 現存
REMOVED = 1  # … 消除


def __getattr__(name: str):
    """POOL_LOW and POOL_REFILL, kept for readers of the old names: this process's settings, read when asked
    (the pool reads nodes.settings.current() itself; setting these names changes nothing)."""
    if name == "POOL_LOW":  # codes left that raise the low-pool alert (TESTBED_POOL_LOW)
        return settings.current().pool_low
    if name == "POOL_REFILL":  # codes asked of national at a time (TESTBED_POOL_REFILL)
        return settings.current().pool_refill
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_items(info: records_pb2.IdentityInfo) -> None:
    """Malformed items of 本人確認情報 (PIA Ⅲ(2)5): numbers, required names, dates, codes, sizes, characters."""
    rules.check_message_text(info)
    rules.require_resident_code(info.resident_code)
    if info.individual_number and not individual_number_valid(info.individual_number):
        raise C.INDIVIDUAL_NUMBER_FORMAT(f"個人番号 rule: {info.individual_number!r} is not 12 digits with a valid check digit")
    rules.require_text(info.name_kanji, "漢字氏名")
    rules.require_text(info.name_kana, "ふりがな氏名")
    rules.require_past_date(info.birth_date, "生年月日")
    if info.sex not in ("1", "2", "9"):
        raise C.SEX_CODE(f"性別 rule: {info.sex!r} is not 1 (男), 2 (女) or 9 (不詳)")
    rules.require_text(info.change_reason, "異動事由")
    changed = rules.require_date(info.change_date, "異動年月日")
    if info.change_reason not in ("転出", "国外転出", "移行") and changed > office_today():
        raise C.DATE_NOT_FUTURE(f"異動年月日 rule: {changed} is in the future")
    rules.require_text(info.address, "住所")
    if info.previous_municipality_code:
        rules.require_municipality_code(info.previous_municipality_code, "前住所地市町村コード")
    wrong = identity_character_errors(info)
    if wrong:
        raise C.GAIJI_ITEMS(f"外字数 rule: {info.resident_code} states {'; '.join(wrong)}")


def check_delivery_items(delivery: records_pb2.DeliveryInfo) -> None:
    """A 送付先情報's lengths, 外字数, 外字フラグ and 代替文字 are those its texts give (the card system prints from them)."""
    wrong = delivery_character_errors(delivery)
    if wrong:
        raise C.GAIJI_ITEMS(f"外字数 rule (送付先情報): {delivery.resident_code} states {'; '.join(wrong[:3])}")


def changed_items(before: records_pb2.IdentityInfo, after: records_pb2.IdentityInfo) -> list[str]:
    """Names of the items that differ between two versions of 本人確認情報."""
    return [f.name for f in after.DESCRIPTOR.fields if getattr(before, f.name) != getattr(after, f.name)]


def check_special_move_in(certificate, move_in_date: str) -> None:
    """特例転入 windows, measured to the office's today: within 14 days of moving in and 30 days of the
    planned move-out date (the 届出 is today, whatever a request says)."""
    notified = office_today()
    moved_in = rules.require_date(move_in_date, "転入年月日")
    planned = rules.require_date(certificate.planned_move_out_date, "転出予定年月日")
    if not certificate.card_holder:
        raise R.SPECIAL_MOVE_IN_CARD_HOLDER("特例転入 rule: only a 個人番号カード holder may move in without a 転出証明書")
    if notified > moved_in + dt.timedelta(days=MOVE_IN_DAYS):
        raise R.SPECIAL_MOVE_IN_AFTER_MOVE_IN(f"特例転入 rule: the 転入届 came {(notified - moved_in).days} days after moving in "
                                              f"(at most {MOVE_IN_DAYS})")
    if notified > planned + dt.timedelta(days=MOVE_OUT_DAYS):
        raise R.SPECIAL_MOVE_IN_AFTER_MOVE_OUT(f"特例転入 rule: the 転入届 came {(notified - planned).days} days after the planned "
                                               f"move-out date (at most {MOVE_OUT_DAYS})")


def mark_recovery(update, recovery: int) -> None:
    """A re-sent update carries its 異常時更新順番号."""
    update.info.recovery_update_sequence = recovery
