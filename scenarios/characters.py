"""The 外字 of a municipality's vendor: its 外字 table, deterministic per municipality (docs/characters.md).

A vendor's system writes in CP932; a character CP932 cannot hold (outside the BMP, a variation sequence, a JIS X
0213 character beyond CP932) it keeps as a code of its own in the user-defined area (F040–F9FC, which CP932 maps to
U+E000–U+E757), listed in its 外字 table with the standard character it is identified with. A few of its 外字 no
one has identified: those reach the register as the private-use code itself.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

# Characters the vendor keeps as 外字 codes, with what each is and the standard character it is identified with.
IDENTIFIED = (
    ("𠮷", "つちよし（𠮷 U+20BB7）"), ("𩸽", "ほっけ（𩸽 U+29E3D）"), ("𡈽", "つちへんに土（U+2123D）"),
    ("𠀋", "U+2000B"), ("葛\U000E0100", "葛（IVS E0100: 下がヒ）"), ("辻\U000E0100", "辻（IVS E0100: 一点しんにょう）"),
    ("𣘺", "橋の異体字（U+2363A）"), ("𦚰", "脇の異体字（U+266B0）"),
)
# 外字 of the vendor's own that no one has identified with a standard character.
UNIDENTIFIED = ("木へんに花（当市固有）", "さんずいに竜（当市固有）", "土へんに斉（当市固有）")
FIRST_CODE = 0xE000  # CP932 F040


@dataclass(frozen=True)
class GaijiEntry:
    """One entry of a vendor's 外字 table: its private-use code, its CP932 code, what it is, and the standard
    character it is identified with ("" when none is known)."""

    code: str
    cp932: str
    description: str
    standard: str


def cp932_code(char: str) -> str:
    """The CP932 code of a private-use character of the user-defined area, e.g. F040 for U+E000."""
    return char.encode("cp932").hex().upper()


def vendor_table(municipality: str) -> tuple[GaijiEntry, ...]:
    """The 外字 table of a municipality's vendor: every entry at a code of its own, in an order of the municipality."""
    entries = [(standard, description) for standard, description in IDENTIFIED] + [("", d) for d in UNIDENTIFIED]
    random.Random(f"gaiji:{municipality}").shuffle(entries)
    table = []
    for n, (standard, description) in enumerate(entries):
        code = chr(FIRST_CODE + n * 7 + int(municipality[-2:]) % 7)  # (codes differ from one municipality to another)
        table.append(GaijiEntry(code, cp932_code(code), description, standard))
    return tuple(table)


def unidentified(municipality: str) -> tuple[str, ...]:
    """The private-use codes of the vendor's 外字 that no one has identified."""
    return tuple(e.code for e in vendor_table(municipality) if not e.standard)
