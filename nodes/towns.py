"""The 町字 of each municipality, with postal codes (Japan Post's 郵便番号データ): the list kizon checks addresses against."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


@dataclass(frozen=True)
class Town:
    """A 町字: code, name, reading and postal code."""

    code: str
    name: str
    kana: str
    postal_code: str


@lru_cache(maxsize=None)
def towns(municipality: str) -> tuple[Town, ...]:
    """Every 町字 of a municipality, in the order of the postal data."""
    with resources.files("nodes").joinpath("data/towns.csv").open(encoding="utf-8") as f:
        return tuple(Town(r["town_code"], r["town_name"], r["town_kana"], r["postal_code"])
                     for r in csv.DictReader(f) if r["municipality_code"] == municipality)


def town(municipality: str, code: str) -> Town | None:
    """The 町字 with this code in a municipality, or None."""
    return _by_code(municipality).get(code)


@lru_cache(maxsize=None)
def _by_code(municipality: str) -> dict[str, Town]:
    return {t.code: t for t in towns(municipality)}
