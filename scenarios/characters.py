"""The 外字 of a municipality's vendor: its 外字 table, deterministic per municipality (docs/characters.md).

A vendor's system writes in CP932; a character CP932 cannot hold (outside the BMP, a variation sequence, a JIS X
0213 character beyond CP932) it keeps as a code of its own in the user-defined area (F040–F9FC, which CP932 maps to
U+E000–U+E757), listed in its 外字 table with the standard character it is identified with. A few of its 外字 no
one has identified: those reach the register as the private-use code itself.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from nodes.characters import characters

# Characters the vendor keeps as 外字 codes, with what each is and the standard character it is identified with.
IDENTIFIED = (
    ("𠮷", "つちよし（𠮷 U+20BB7）"), ("𩸽", "ほっけ（𩸽 U+29E3D）"), ("𡈽", "つちへんに土（U+2123D）"),
    ("𠀋", "U+2000B"), ("葛\U000E0100", "葛（IVS E0100: 下がヒ）"), ("辻\U000E0100", "辻（IVS E0100: 一点しんにょう）"),
    ("𣘺", "橋の異体字（U+2363A）"), ("𦚰", "脇の異体字（U+266B0）"), ("藤\U000E0100", "藤（IVS E0100）"),
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


# -- the characters of a generated population --------------------------------------------------------------------
# Shares (of the surnames that hold the character, or of the residents, or of the households with a 方書), chosen
# so that about 2% of residents have a 外字 in their name, as a register of a city of 100,000 has a few thousand.
VARIANTS = {  # a surname's character → (its variant as the register writes it, the share of such surnames)
    "高": ("髙", 0.20), "崎": ("﨑", 0.35), "徳": ("德", 0.25), "浜": ("濵", 0.25), "吉": ("𠮷", 0.20),
    "辺": ("邊", 0.15), "葛": ("葛\U000E0100", 0.50), "辻": ("辻\U000E0100", 0.30), "橋": ("𣘺", 0.02),
    "藤": ("藤\U000E0100", 0.02), "島": ("嶋", 0.10), "沢": ("澤", 0.10),
}
UNIDENTIFIED_SHARE = 0.0005  # residents whose given name holds a vendor 外字 no one has identified
KATAGAKI_GAIJI_SHARE = 0.02  # households with a 方書 whose building name holds a 外字
KATAGAKI_BUILDINGS = ("髙﨑ハイツ", "德永コーポ", "濵田荘", "𠮷野レジデンス")
READING_CONFIRMED_SHARE = 0.35  # Japanese residents whose 振り仮名 is recorded by 届出 (from 2025-05-26, a year to
# notify; at the population's date of 2026-04-01 about a third have), the rest presumed


def dress_name(record, rng: random.Random, municipality: str) -> None:
    """Write a Japanese resident's name as the register would: variants of the surname's characters at their
    shares, now and then an unidentified vendor 外字, and whether the 振り仮名 is confirmed."""
    surname, _, given = record.name_kanji.partition(" ")
    if any(c in VARIANTS for c in surname):
        surname = "".join(VARIANTS[c][0] if c in VARIANTS and rng.random() < VARIANTS[c][1] else c for c in surname)
    if rng.random() < UNIDENTIFIED_SHARE and given:
        codes = unidentified(municipality)
        given = rng.choice(codes) + given[1:]
    record.name_kanji = f"{surname} {given}" if given else surname
    record.name_kana_confirmed = rng.random() < READING_CONFIRMED_SHARE


def dress_katagaki(katagaki: str, rng: random.Random) -> str:
    """A 方書 whose building name now and then holds a 外字."""
    if not katagaki or rng.random() >= KATAGAKI_GAIJI_SHARE:
        return katagaki
    room = "".join(c for c in katagaki[-3:] if c.isdigit())
    return f"{rng.choice(KATAGAKI_BUILDINGS)}{room}"


def plain(text: str) -> str:
    """The text as the generator wrote it before the characters: each variant as its common character, and a vendor
    外字 of the private-use area as 山 (for a register without 外字, as tests of other things want one)."""
    common = {variant: base for base, (variant, _) in VARIANTS.items()}
    return "".join(common.get(c, "山" if "\ue000" <= c[0] <= "\uf8ff" else c) for c in characters(text))


TEXT_ITEMS = ("name_kanji", "householder_name", "hittousha", "katagaki", "address")


def make_plain(record) -> None:
    """A generated record without its 外字, item by item (see plain)."""
    for item in TEXT_ITEMS:
        setattr(record, item, plain(getattr(record, item)))
