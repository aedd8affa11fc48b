"""Rule violations: a node refuses bad input with the gRPC status that fits and a message that names the rule."""
from __future__ import annotations

import datetime as dt

import grpc

from nodes.numbers import individual_number_valid, resident_code_valid


class Violation(Exception):
    """A broken rule; the runtime answers it with code and this message, after rolling back."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


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
