"""A municipality's office as the 送付先情報 names it: its name, address and telephone, where cards are handed over
and where the card system sends them (PIA 別添1 (3) items 9–32). The testbed's offices stand at the first 町字 of
their municipality, 1番1号; the 窓口 hands cards over (交付時来庁方式) and the card system sends them there."""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache

from nodes.towns import towns


@dataclass(frozen=True)
class Office:
    """A municipality's office: its name, postal code, address and telephone, and the window that hands out cards."""

    municipality_code: str
    name: str  # 市町村名 (都道府県名 + 市町村名)
    postal_code: str
    address: str
    phone: str
    issuing_place: str  # 交付場所名: the window cards are handed over at
    card_delivery_place: str  # カード送付場所名: where the card system sends the cards


@lru_cache(maxsize=None)
def office(municipality_code: str, prefecture_name: str, municipality_name: str) -> Office:
    """The office of a municipality, the same every time for the same names."""
    first = towns(municipality_code)[0]
    name = f"{prefecture_name}{municipality_name}"
    number = zlib.crc32(municipality_code.encode()) % 10_000
    return Office(municipality_code, name, first.postal_code, f"{name}{first.name}1番1号",
                  f"0{int(municipality_code[:2]) % 9 + 1}{number % 100:02d}-{number:04d}-{int(municipality_code) % 10_000:04d}",
                  f"{municipality_name}役所 市民課窓口", f"{municipality_name}役所 市民課")


def office_of(topology, municipality_code: str) -> Office:
    """The office of a municipality of the topology."""
    m = topology.municipality(municipality_code)
    return office(m.code, topology.prefectures.get(m.prefecture, ""), m.name)
