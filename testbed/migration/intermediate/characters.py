"""The vendor's 外字 on the way in and out: its table applied to a text (VendorCharacters), and what 文字同定
found (Identification, CharacterReport)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from nodes.characters import characters
from testbed.migration.intermediate.layout import (
    CP932_LOSSY, EXAMPLE_RECORDS, PUA, SELECTOR, VendorExportError, valid_entry,
)


class VendorCharacters:
    """How the vendor writes text: its 外字 (a standard character its table lists) as the entry's private-use
    code, a private-use character of the register (an unidentified 外字 the table lists) as itself, the rest as
    themselves; refused when the encoding cannot hold the result."""

    def __init__(self, table, encoding: str):
        self.encoding = encoding
        self.codes = set()
        self.reverse: dict[str, str] = {}
        for entry in table:
            wrong = valid_entry(entry)
            if wrong:
                raise VendorExportError(f"外字 table: {wrong}")
            if entry.code in self.codes:
                raise VendorExportError(f"外字 table: U+{ord(entry.code):04X} is listed twice")
            self.codes.add(entry.code)
            if entry.standard:
                self.reverse.setdefault(entry.standard, entry.code)  # (the first code of a standard wins)
        # a standard character is matched whole: a base followed by a selector is another character
        alternatives = sorted(self.reverse, key=len, reverse=True)
        self.pattern = re.compile("(?:" + "|".join(map(re.escape, alternatives)) + f")(?!{SELECTOR})") \
            if alternatives else None
        self.firsts = frozenset(s[0] for s in self.reverse)  # (most texts hold none: the pattern is not tried)

    def text(self, value: str) -> str:
        """The text as the vendor writes it."""
        if value.isascii() or self.firsts.isdisjoint(value):
            return value
        return self.pattern.sub(lambda m: self.reverse[m[0]], value)

    def plain(self, value: str) -> bool:
        """Whether a text goes in the file as it is: no line break, none of the vendor's 外字, nothing the encoding
        cannot hold."""
        if "\n" in value or "\r" in value:
            return False
        if value.isascii():
            return True
        return self.firsts.isdisjoint(value) and not PUA.search(value) and (
            self.encoding != "cp932" or (CP932_LOSSY.isdisjoint(value) and _cp932_holds(value)))

    def problem(self, value: str) -> str | None:
        """Why a written text cannot go in the file (a character neither the encoding nor the table holds), or None."""
        for char in PUA.findall(value):
            if char not in self.codes:
                return f"holds the private-use character U+{ord(char):04X}, which the vendor's 外字 table does not list"
        if self.encoding != "cp932" or (not CP932_LOSSY.intersection(value) and _cp932_holds(value)):
            return None
        for char in characters(value):
            if char in CP932_LOSSY:
                return (f"holds {char} U+{ord(char):04X}, which CP932 writes as {char.encode('cp932').hex().upper()} "
                        f"and reads back as {char.encode('cp932').decode('cp932')}; list it in the 外字 table or write "
                        "UTF-8")
            try:
                char.encode("cp932")
            except UnicodeEncodeError:
                points = " ".join(f"U+{ord(c):04X}" for c in char)
                return (f"holds {char} {points}, which CP932 cannot encode and the vendor's 外字 table does not list: "
                        "add it to the table (as an entry's 同定文字) or write UTF-8")
        return None


def _cp932_holds(value: str) -> bool:
    try:
        value.encode("cp932")
        return True
    except UnicodeEncodeError:
        return False


@dataclass
class CharacterUse:
    """One vendor 外字 met in an export: its code, what it is, the standard it was identified with ("" when none),
    how often it was met, the first records that hold it (宛名番号, 住民票コード) and the items it was met in."""

    code: str
    cp932: str
    description: str
    standard: str
    count: int = 0
    records: list[tuple[str, str]] = field(default_factory=list)
    items: set[str] = field(default_factory=set)

    def as_dict(self) -> dict:
        """For a JSON report."""
        return {"code": f"U+{ord(self.code):04X}", "cp932": self.cp932, "description": self.description,
                "standard": " ".join(f"U+{ord(c):04X}" for c in self.standard), "standard_text": self.standard,
                "count": self.count, "records": [list(r) for r in self.records], "items": sorted(self.items)}


@dataclass
class CharacterReport:
    """文字同定 of an import: private-use codes replaced by their standard (mapped) and kept for want of one
    (unmapped), counted per occurrence; each code met with its records and items; the codes left unidentified."""

    mapped: int = 0
    unmapped: int = 0
    examples: list[CharacterUse] = field(default_factory=list)
    unmapped_codes: list[str] = field(default_factory=list)
    records_with_gaiji: int = 0  # 個人.csv rows that held a vendor 外字

    def as_dict(self) -> dict:
        """For a JSON report."""
        return {"mapped": self.mapped, "unmapped": self.unmapped, "records_with_gaiji": self.records_with_gaiji,
                "unmapped_codes": [f"U+{ord(c):04X}" for c in self.unmapped_codes],
                "examples": [u.as_dict() for u in self.examples]}


class Identification:
    """文字同定: each private-use code of the files replaced by the standard character its 外字 table names, or kept
    when it names none; a code the table does not list is refused."""

    def __init__(self, table):
        self.entries = {e.code: e for e in table}
        self.uses: dict[str, CharacterUse] = {}
        self.records = 0

    def text(self, value: str, where: str, item: str, ref: tuple[str, str] | None) -> str:
        """The text with its 外字 identified (counted against the record ref, when given)."""
        def one(match) -> str:
            code = match[0]
            entry = self.entries.get(code)
            if entry is None:
                raise VendorExportError(f"{where}: {item} holds U+{ord(code):04X}, a 外字 code 外字.csv does not list "
                                        "(rule: every 外字 of the files is in the 外字 table)")
            if ref is not None:
                use = self.uses.get(code) or self.uses.setdefault(code, CharacterUse(
                    code, entry.cp932, entry.description, entry.standard))
                use.count += 1
                use.items.add(item)
                if len(use.records) < EXAMPLE_RECORDS and (not use.records or use.records[-1] != ref):
                    use.records.append(ref)
            return entry.standard or code
        return PUA.sub(one, value)

    def report(self) -> CharacterReport:
        """What 文字同定 did."""
        uses = [self.uses[c] for c in sorted(self.uses)]
        return CharacterReport(mapped=sum(u.count for u in uses if u.standard),
                               unmapped=sum(u.count for u in uses if not u.standard), examples=uses,
                               unmapped_codes=[u.code for u in uses if not u.standard], records_with_gaiji=self.records)
