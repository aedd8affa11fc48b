"""Rule violations: a node refuses bad input with the gRPC status that fits and a message that names the rule."""
from __future__ import annotations

import datetime as dt
import unicodedata

import grpc

from nodes.clock import office_today
from nodes.numbers import individual_number_valid, municipality_code_valid, resident_code_valid


class Violation(Exception):
    """A broken rule; the runtime answers it with code and this message, after rolling back."""

    def __init__(self, code: grpc.StatusCode, message: str, trailing: tuple = ()):
        super().__init__(message)
        self.code = code
        self.trailing = trailing  # (key, value) metadata a peer can act on, e.g. the 更新順番号 due


def invalid(message: str) -> Violation:
    """Malformed input (INVALID_ARGUMENT)."""
    return Violation(grpc.StatusCode.INVALID_ARGUMENT, message)


def precondition(message: str) -> Violation:
    """Input that is well-formed but not allowed in the current state (FAILED_PRECONDITION)."""
    return Violation(grpc.StatusCode.FAILED_PRECONDITION, message)


def not_found(message: str) -> Violation:
    """No such record (NOT_FOUND)."""
    return Violation(grpc.StatusCode.NOT_FOUND, message)


def already_exists(message: str) -> Violation:
    """A record that may exist only once (ALREADY_EXISTS)."""
    return Violation(grpc.StatusCode.ALREADY_EXISTS, message)


def unauthenticated(message: str) -> Violation:
    """A credential (PIN, operator credential) that does not prove who the caller says (UNAUTHENTICATED)."""
    return Violation(grpc.StatusCode.UNAUTHENTICATED, message)


def denied(message: str) -> Violation:
    """A caller asking for what its identity does not allow (PERMISSION_DENIED)."""
    return Violation(grpc.StatusCode.PERMISSION_DENIED, message)


def require_resident_code(code: str) -> None:
    """住民票コード: 11 digits with the check digit of DESIGN §4."""
    if not resident_code_valid(code):
        raise invalid(f"住民票コード rule: {code!r} is not 11 digits with a valid check digit")


def require_individual_number(number: str) -> None:
    """個人番号: 12 digits with the check digit of 総務省令第85号 §5."""
    if not individual_number_valid(number):
        raise invalid(f"個人番号 rule: {number!r} is not 12 digits with a valid check digit")


def require_date(value: str, item: str) -> dt.date:
    """A date item in ISO form (YYYY-MM-DD), as a date."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise invalid(f"{item} rule: {value!r} is not a date of the form YYYY-MM-DD") from None


def require_text(value: str, item: str) -> None:
    """A required text item."""
    if not value.strip():
        raise invalid(f"{item} rule: the item is required")


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
        raise invalid(f"項目長 rule: {item} has {len(value)} characters (at most {limit})")
    if value.isprintable():  # the common case, decided in C: no Other or Separator character at all
        return
    for char in value:
        if unicodedata.category(char) in FORBIDDEN_CATEGORIES:
            raise invalid(f"文字 rule: {item} contains the control character U+{ord(char):04X}")


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


def require_municipality_code(code: str, item: str = "地方公共団体コード") -> None:
    """全国地方公共団体コード: 6 digits, the last a check digit (DESIGN §2)."""
    if not municipality_code_valid(code):
        raise invalid(f"{item} rule: {code!r} is not a 地方公共団体コード (6 digits with a valid check digit)")


def require_past_date(value: str, item: str, *, not_before: dt.date = OLDEST_BIRTH, window_days: int | None = None,
                      rule: str = "") -> dt.date:
    """A date that has happened: not after the server's today, not before not_before, and, with
    window_days, not more than that many days ago (the legal window of a 届出, refused under rule)."""
    date = require_date(value, item)
    now = office_today()
    if date > now:
        raise invalid(f"{item} rule: {date} is in the future (today is {now})")
    if date < not_before:
        raise invalid(f"{item} rule: {date} is before {not_before}")
    if window_days is not None and date < now - dt.timedelta(days=window_days):
        raise precondition(f"{rule or item + ' rule'}: the 届出 came {(now - date).days} days after the {item} "
                           f"{date} (at most {window_days})")
    return date


def refuse_set(message, items, rule: str, source: str = "set by the office") -> None:
    """Items that do not come from the request (the office derives them, or a document carries them):
    a request that sets one is refused, naming it."""
    given = sorted(f.name for f, _ in message.ListFields() if f.name in items)
    if given:
        raise invalid(f"{rule}: {', '.join(given)} {'is' if len(given) == 1 else 'are'} {source}, not by the request")
