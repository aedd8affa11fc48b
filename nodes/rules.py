"""The checks of the items every node applies (formats, sizes, characters, dates, items the server sets), each
refusing under its rule of the catalogue (nodes/reasons/common.py) with a message that says what was wrong."""
from __future__ import annotations

import datetime as dt
import unicodedata


from nodes.clock import office_today
from nodes.numbers import individual_number_valid, municipality_code_valid, resident_code_valid
from nodes.reasons import common as C
from nodes.refusal import Rule, Violation  # noqa: F401 (nodes raise rules.Violation)


def require_resident_code(code: str) -> None:
    """住民票コード: 11 digits with the check digit of DESIGN §4."""
    if not resident_code_valid(code):
        raise C.RESIDENT_CODE_FORMAT(f"住民票コード rule: {code!r} is not 11 digits with a valid check digit")


def require_individual_number(number: str) -> None:
    """個人番号: 12 digits with the check digit of 総務省令第85号 §5."""
    if not individual_number_valid(number):
        raise C.INDIVIDUAL_NUMBER_FORMAT(f"個人番号 rule: {number!r} is not 12 digits with a valid check digit")


def require_date(value: str, item: str) -> dt.date:
    """A date item in ISO form (YYYY-MM-DD), as a date."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise C.DATE_FORMAT(f"{item} rule: {value!r} is not a date of the form YYYY-MM-DD") from None


def require_text(value: str, item: str) -> None:
    """A required text item."""
    if not value.strip():
        raise C.ITEM_REQUIRED(f"{item} rule: the item is required")


OPERATIONS_ROLES = {"manager", "operations"}  # roles that run batches and full 整合性確認 from a terminal


# -- items the client types: sizes, characters, codes and dates ---------------------------------------
# Item lengths in characters. The seed names the items of 別添1 without their sizes; these follow the
# 住基ネット 本人確認情報 layout where it is public (漢字氏名 and 住所 in full-width characters) and are
# generous elsewhere. Anything not named here is held to DEFAULT_LENGTH.
ITEM_LENGTHS = {
    "name_kanji": 60, "name_kana": 120, "name_romaji": 100, "former_surname_kanji": 30, "former_surname_kana": 60,
    "alias_kanji": 60, "alias_kana": 120, "householder_name": 60, "hittousha": 60, "honseki": 120,
    "address": 150, "address_line": 60, "katagaki": 60, "destination_address": 150, "previous_address": 150,
    "move_out_destination_planned": 150, "move_out_destination_confirmed": 150, "relationship": 20,
    "nationality": 40, "residence_status": 40, "residence_card_number": 12, "reason": 200, "justification": 200,
    "purpose": 200, "change_reason_detail": 200, "credential": 200, "pin": 8, "card_number": 20,
}
DEFAULT_LENGTH = 100
# Control, format and surrogate characters have no place in a register item (NUL, newline, BiDi
# overrides). Private-use characters stay: they are how 外字 reach the register (DESIGN §4).
FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs"}
OLDEST_BIRTH = dt.date(1890, 1, 1)  # no one registered today was born before this


def check_text(value: str, item: str) -> None:
    """A text item: within its length, without control characters."""
    limit = ITEM_LENGTHS.get(item, DEFAULT_LENGTH)
    if len(value) > limit:
        raise C.ITEM_LENGTH(f"項目長 rule: {item} has {len(value)} characters (at most {limit})")
    if value.isprintable():  # the common case, decided in C: no Other or Separator character at all
        return
    for char in value:
        if unicodedata.category(char) in FORBIDDEN_CATEGORIES:
            raise C.ITEM_CHARACTERS(f"文字 rule: {item} contains the control character U+{ord(char):04X}")


def check_message_text(message, prefix: str = "") -> None:
    """Every text item of a request, nested messages included (sizes and characters)."""
    for field, value in message.ListFields():
        if field.type == field.TYPE_STRING:
            for text in (value if field.is_repeated else (value,)):
                check_text(text, field.name)
        elif field.type == field.TYPE_MESSAGE:
            for part in (value if field.is_repeated else (value,)):
                if not hasattr(part, "ListFields"):  # a map entry's value of a scalar type
                    continue
                check_message_text(part, f"{prefix}{field.name}.")


def unknown_fields(message, prefix: str = "", limit: int = 20, wire: bytes | None = None,
                   nested: bool = True) -> list[str]:
    """Where a parsed message holds fields its definition lacks: "path#number" for each, nested messages included,
    the first limit of them. Read from the message's own bytes (wire: those it was parsed from) tag by tag, stopping at
    the limit: a hostile request may hold a million of them, and a set of them all would cost a hundred times its size.
    nested=False: the message's own level only."""
    known = message.DESCRIPTOR.fields_by_number
    found = [f"{prefix}#{number}" for number in _field_numbers(message.SerializeToString() if wire is None else wire,
                                                               limit, known)]
    if len(found) >= limit or not nested:
        return found
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        if field.message_type.GetOptions().map_entry:
            inner = field.message_type.fields_by_name["value"]
            parts = value.values() if inner.type == inner.TYPE_MESSAGE else ()
        else:
            parts = value if field.is_repeated else (value,)
        for part in parts:
            if len(found) >= limit:
                return found
            found += unknown_fields(part, f"{prefix}{field.name}.", limit - len(found))
    return found


def _field_numbers(data: bytes, limit: int, known) -> list[int]:
    """The numbers of the first fields of a message's wire bytes that its definition lacks (at most limit)."""
    found, position = [], 0
    while position < len(data) and len(found) < limit:
        tag, position = _varint(data, position)
        number, wire = tag >> 3, tag & 7
        if number not in known:
            found.append(number)
        if wire == 0:
            _, position = _varint(data, position)
        elif wire == 1:
            position += 8
        elif wire == 2:
            length, position = _varint(data, position)
            position += length
        elif wire == 5:
            position += 4
        # (3 and 4, a group's start and end, carry nothing of their own)
    return found


def _varint(data: bytes, position: int) -> tuple[int, int]:
    """A base-128 varint at position: (its value, the position after it)."""
    value = shift = 0
    while position < len(data):
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
    return value, position


def require_municipality_code(code: str, item: str = "地方公共団体コード") -> None:
    """全国地方公共団体コード: 6 digits, the last a check digit (DESIGN §2)."""
    if not municipality_code_valid(code):
        raise C.MUNICIPALITY_CODE_FORMAT(f"{item} rule: {code!r} is not a 地方公共団体コード (6 digits with a valid check digit)")


def require_past_date(value: str, item: str, *, not_before: dt.date = OLDEST_BIRTH, window_days: int | None = None,
                      rule: Rule = C.NOTIFICATION_LATE, rule_name: str = "") -> dt.date:
    """A date that has happened: not after the server's today, not before not_before, and, with
    window_days, not more than that many days ago (the legal window of a 届出, refused under rule, named rule_name)."""
    date = require_date(value, item)
    now = office_today()
    if date > now:
        raise C.DATE_NOT_FUTURE(f"{item} rule: {date} is in the future (today is {now})")
    if date < not_before:
        raise C.DATE_NOT_FUTURE(f"{item} rule: {date} is before {not_before}")
    if window_days is not None and date < now - dt.timedelta(days=window_days):
        raise rule(f"{rule_name or item + ' rule'}: the 届出 came {(now - date).days} days after the {item} "
                           f"{date} (at most {window_days})")
    return date


def refuse_set(message, items, rule: str, source: str = "set by the office", *, by: Rule = C.SET_BY_SERVER) -> None:
    """Items that do not come from the request (the office derives them, or a document carries them):
    a request that sets one is refused under by (rule: the words that name it)."""
    given = sorted(f.name for f, _ in message.ListFields() if f.name in items)
    if given:
        raise by(f"{rule}: {', '.join(given)} {'is' if len(given) == 1 else 'are'} {source}, not by the request")
