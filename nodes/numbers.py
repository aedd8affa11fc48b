"""Check digits of the numbers the network carries: 住民票コード and 個人番号.

Each rule lives in one function so that it can be swapped without touching its callers.
"""
from __future__ import annotations

import re
from operator import mul

from certs.identity import local_government_code_valid as municipality_code_valid  # noqa: F401 (one rule, shared)


def _mod11_check(base: str, weights: tuple[int, ...]) -> int:
    """Check digit from weights applied to base from its rightmost digit: 0 if r <= 1 else 11 - r."""
    total = sum(map(mul, map(int, reversed(base)), weights))
    r = total % 11
    return 0 if r <= 1 else 11 - r


def resident_code_check_digit(base: str) -> int:
    """住民票コード check digit of 10 base digits (weights 2,3,4,5,6,7,2,3,4,5 from the right)."""
    return _mod11_check(base, (2, 3, 4, 5, 6, 7, 2, 3, 4, 5))


def individual_number_check_digit(base: str) -> int:
    """個人番号 check digit of 11 base digits (総務省令第85号 §5: weights 2..7,2..6 from the right)."""
    return _mod11_check(base, (2, 3, 4, 5, 6, 7, 2, 3, 4, 5, 6))


def resident_code_valid(code: str) -> bool:
    """Whether code is 11 digits whose last is the 住民票コード check digit."""
    return bool(re.fullmatch(r"[0-9]{11}", code)) and resident_code_check_digit(code[:10]) == int(code[10])


def individual_number_valid(number: str) -> bool:
    """Whether number is 12 digits whose last is the 個人番号 check digit."""
    return bool(re.fullmatch(r"[0-9]{12}", number)) and individual_number_check_digit(number[:11]) == int(number[11])


def with_resident_code_check(base: str) -> str:
    """A full 住民票コード from 10 base digits."""
    return base + str(resident_code_check_digit(base))


def with_individual_number_check(base: str) -> str:
    """A full 個人番号 from 11 base digits."""
    return base + str(individual_number_check_digit(base))

