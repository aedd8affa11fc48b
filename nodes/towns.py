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


# The 町字 of a municipality the postal data here does not cover (the generated topologies of the scale curve
# name real 市町村コード of 神奈川県 beyond 伊勢原市 and 秦野市): ten made-up 番町, marked by postal codes 000-00NN.
GENERATED = ("イチ", "ニ", "サン", "ヨン", "ゴ", "ロク", "ナナ", "ハチ", "キュウ", "ジュウ")
KANJI_NUMBERS = "一二三四五六七八九十"


@lru_cache(maxsize=None)
def towns(municipality: str) -> tuple[Town, ...]:
    """Every 町字 of a municipality, in the order of the postal data (made-up ones where it has none)."""
    with resources.files("nodes").joinpath("data/towns.csv").open(encoding="utf-8") as f:
        found = tuple(Town(r["town_code"], r["town_name"], r["town_kana"], r["postal_code"])
                      for r in csv.DictReader(f) if r["municipality_code"] == municipality)
    return found or tuple(Town(f"{n + 1:03d}000", f"{KANJI_NUMBERS[n]}番町", f"{kana}バンチョウ", f"000-00{n + 1:02d}")
                          for n, kana in enumerate(GENERATED))


def town(municipality: str, code: str) -> Town | None:
    """The 町字 with this code in a municipality, or None."""
    return _by_code(municipality).get(code)


@lru_cache(maxsize=None)
def _by_code(municipality: str) -> dict[str, Town]:
    return {t.code: t for t in towns(municipality)}
