"""A foreign vendor's export (中間標準レイアウト): the register as another vendor's 住民記録システム hands it over.

Modelled on J-LIS's 中間標準レイアウト仕様 (住民基本台帳): one CSV file per kind of record with Japanese item names,
each item of a type and a maximum length, code tables (コード表) for the coded items, the vendor's 外字 table, and a
manifest with each file's record count and SHA-256. The testbed's own migration layout (`layout.py`) is what the
testbed writes for itself; this one is what arrives from elsewhere: in CP932 or UTF-8, with codes instead of names,
dates as YYYYMMDD and the vendor's 外字 in the private-use area, identified (文字同定) on the way in.

Files are CSV (RFC 4180, CRLF line ends as the vendor's Windows systems write them, LF accepted; a header line of item
names; every record on one line) in the manifest's 文字コード (CP932 or UTF-8, no BOM). Types: X text (at most the
length, in code points), 9 digits (0–9 only, at most the length; leading zeros kept), D a date YYYYMMDD (a real
calendar date), F a flag (1 or 0), T a date-time (ISO 8601 as recorded), C a code of the コード表 the item names.
An empty item is one not set, except where the item is required. `docs/intermediate-layout.md` is generated from
this module; a test keeps the two the same.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import operator
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from nodes.characters import CP932_USER_AREA, characters, is_selector
from nodes.rules import FORBIDDEN_CATEGORIES
from protos import records_pb2
from testbed.migration.layout import file_digest, household_rows

LAYOUT = "intermediate-juki"
VERSION = "1.0"
MANIFEST = "manifest.json"
ENCODINGS = {"cp932": "CP932", "utf-8": "UTF-8"}  # write_export's encoding → the manifest's 文字コード
CODECS = {name: codec for codec, name in ENCODINGS.items()}
EXAMPLE_RECORDS = 10  # records named per 外字 in the report (the count covers them all)
CURRENT, REMOVED = records_pb2.ResidentRecord.STATUS_CURRENT, records_pb2.ResidentRecord.STATUS_REMOVED
# Python's cp932 writes these by best fit (8191 8192 81CA 8161 817C 8160) and reads the bytes back as other
# characters (￠ ￡ ￢ ∥ － ～): a register that holds them cannot go through CP932 unchanged.
CP932_LOSSY = frozenset("¢£¬‖−〜")
PUA = re.compile("[\ue000-\uf8ff\U000f0000-\U0010ffff]")  # private-use characters: vendor 外字 codes
SELECTOR = "[\ufe00-\ufe0f\U000e0100-\U000e01ef]"


@dataclass(frozen=True)
class Item:
    """One item of a file: its name, type (X 9 D F T C), maximum length, meaning, the ResidentRecord field it
    carries, the コード表 of a C item, and whether it may be empty."""

    name: str
    type: str
    length: int
    meaning: str
    field: str = ""
    table: str = ""
    required: bool = False


@dataclass(frozen=True)
class FileSpec:
    """One file of the layout: its name, what one record is, and its items."""

    name: str
    title: str
    items: tuple[Item, ...]


@dataclass(frozen=True)
class TableEntry:
    """One row of the vendor's 外字 table (外字.csv): the private-use character, its CP932 code, what it is, and
    the standard character (with selectors) it is identified with ("" when none is known)."""

    code: str
    cp932: str
    description: str
    standard: str


class VendorExportError(ValueError):
    """An export that does not follow the layout, or a register that cannot be written in it: names the file, line,
    item and rule (or the record and item)."""


# -- code tables -------------------------------------------------------------------------------------------------
# The codes the vendor writes. ResidentRecord holds names (続柄表記, 異動事由 as words); 性別 is a code in both.
CODE_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "性別": (("1", "男"), ("2", "女"), ("9", "不詳")),
    "住民種別": (("1", "日本人"), ("2", "外国人住民")),
    # 99: any other 続柄, written out in 続柄表記 (the register's 続柄 is free text of up to 20 characters)
    "続柄": tuple((f"{n:02d}", name) for n, name in enumerate((
        "世帯主", "妻", "夫", "子", "父", "母", "祖父", "祖母", "孫", "兄", "弟", "姉", "妹", "子の妻", "子の夫",
        "妻の子", "夫の子", "妻の父", "妻の母", "夫の父", "夫の母", "叔父", "叔母", "甥", "姪", "兄の妻", "弟の妻",
        "未届の妻", "未届の夫", "縁故者", "同居人"), start=1)) + (("99", "その他"),),
    # A 記載 (a person enters the register), B 消除 (the 住民票 becomes a 除票), C 記載事項の変更. 消除事由コード takes
    # its codes from this table too (B).
    "異動事由": (("A1", "出生"), ("A2", "転入"), ("A3", "国外転入"), ("A4", "職権記載"), ("A5", "移行"),
                ("B1", "転出"), ("B2", "国外転出"), ("B3", "死亡"), ("B4", "職権消除"), ("B5", "出国"),
                ("B6", "在留期間満了等"),
                ("C1", "転居"), ("C2", "世帯分離"), ("C3", "世帯合併"), ("C4", "世帯主変更"), ("C5", "職権修正"),
                ("C6", "住民票コード変更"), ("C7", "転出確定")),
}
OTHER_RELATIONSHIP = "99"
NAMES = {table: dict(codes) for table, codes in CODE_TABLES.items()}
CODES = {table: {name: code for code, name in codes} for table, codes in CODE_TABLES.items()}


def _code_file(table: str) -> FileSpec:
    width = max(len(code) for code, _ in CODE_TABLES[table])
    return FileSpec(f"コード表_{table}.csv", f"コード表 {table}: each code and its name",
                    (Item("コード", "X", width, "the code", required=True),
                     Item("名称", "X", 40, "its name", required=True)))


# -- the files ---------------------------------------------------------------------------------------------------
PERSON = FileSpec("個人.csv", "個人: one row per 住民票 history entry (個人履歴番号) of every person, 除票 included", (
    Item("市区町村コード", "9", 6, "地方公共団体コード (the manifest's municipality)", "municipality_code", required=True),
    Item("宛名番号", "9", 15, "the vendor's number of the person", "atena_number", required=True),
    Item("個人履歴番号", "9", 9, "the history entry (1, 2, … for each change of the person)", "history_number",
         required=True),
    Item("最新フラグ", "F", 1, "1: the person's latest entry", "is_latest"),
    Item("除票フラグ", "F", 1, "1: 除票 (the 住民票 was removed), 0: 現存", "status"),
    Item("世帯番号", "9", 10, "the household", "household_number"),
    Item("住民票コード", "9", 11, "住民票コード (with its check digit)", "resident_code", required=True),
    Item("個人番号", "9", 12, "個人番号 (マイナンバー)", "individual_number"),
    Item("住民種別コード", "C", 1, "日本人 or 外国人住民", "resident_type", "住民種別"),
    Item("氏名", "X", 60, "氏名 (foreign residents: as on the 在留カード)", "name_kanji", required=True),
    Item("氏名_振り仮名", "X", 120, "氏名の振り仮名", "name_kana"),
    Item("振り仮名確認フラグ", "F", 1, "1: the 振り仮名 was notified or confirmed (戸籍法第13条), not presumed",
         "name_kana_confirmed"),
    Item("氏名_外国人ローマ字", "X", 100, "foreign residents: the name in Latin letters", "name_romaji"),
    Item("旧氏", "X", 30, "旧氏 (recorded at the person's request)", "former_surname_kanji"),
    Item("旧氏_振り仮名", "X", 60, "its reading", "former_surname_kana"),
    Item("通称", "X", 60, "foreign residents: 通称", "alias_kanji"),
    Item("通称_振り仮名", "X", 120, "its reading", "alias_kana"),
    Item("生年月日", "D", 8, "生年月日", "birth_date"),
    Item("性別コード", "C", 1, "性別", "sex", "性別"),
    Item("続柄コード", "C", 2, "続柄 to the 世帯主 (99: written out in 続柄表記)", "relationship", "続柄"),
    Item("続柄表記", "X", 20, "続柄 as written on the 住民票 (required with 99; else empty or the code's name)",
         "relationship"),
    Item("世帯主氏名", "X", 60, "氏名 of the 世帯主", "householder_name"),
    Item("住所_町字コード", "9", 7, "町字 of the address, on the municipality's 町字 list", "town_code"),
    Item("住所_番地号表記", "X", 60, "番地・号", "address_line"),
    Item("住所_方書", "X", 60, "方書 (building and room)", "katagaki"),
    Item("住所_郵便番号", "X", 8, "郵便番号 (NNN-NNNN)", "postal_code"),
    Item("住所", "X", 150, "the address in full (都道府県 市区町村 町字 番地号 方書)", "address"),
    Item("本籍", "X", 120, "日本人: 本籍", "honseki"),
    Item("筆頭者", "X", 60, "日本人: 戸籍の筆頭者", "hittousha"),
    Item("第30条45規定区分", "X", 100, "foreign residents: 住基法第30条の45 の区分 (中長期在留者 …)",
         "article_30_45_category"),
    Item("在留資格等", "X", 40, "foreign residents: 在留資格", "residence_status"),
    Item("在留カード等番号", "X", 12, "foreign residents: 在留カード等の番号", "residence_card_number"),
    Item("国籍等", "X", 40, "foreign residents: 国籍・地域 (the register's code, e.g. VNM)", "nationality"),
    Item("在留期間の満了の日", "D", 8, "foreign residents: when the period of stay ends", "residence_period_expiry_date"),
    Item("住民となった年月日", "D", 8, "住民となった年月日", "resident_since"),
    Item("住所を定めた年月日", "D", 8, "住所を定めた年月日", "address_since"),
    Item("異動事由コード", "C", 2, "what made this entry", "change_reason", "異動事由"),
    Item("異動年月日", "D", 8, "when it happened", "change_date"),
    Item("異動届出年月日", "D", 8, "when it was notified", "notification_date"),
    Item("異動事由詳細", "X", 200, "the reason in words (e.g. of a 職権修正)", "change_reason_detail"),
    Item("転入前住所_市区町村コード", "9", 6, "where the person lived before moving in (its code)",
         "previous_municipality_code"),
    Item("転入前住所", "X", 150, "that address in full", "previous_address"),
    Item("転出先住所_予定", "X", 150, "転出: the planned destination", "move_out_destination_planned"),
    Item("転出先住所_確定", "X", 150, "転出: the destination the new municipality confirmed",
         "move_out_destination_confirmed"),
    Item("転出予定年月日", "D", 8, "転出: the planned date", "planned_move_out_date"),
    Item("消除事由コード", "C", 2, "除票: why the 住民票 was removed (codes B of 異動事由)", "removal_reason", "異動事由"),
    Item("消除年月日", "D", 8, "除票: when", "removal_date"),
    Item("選挙人名簿登録フラグ", "F", 1, "1: on the 選挙人名簿", "elector"),
    Item("国保資格フラグ", "F", 1, "1: 国民健康保険", "national_health_insurance"),
    Item("後期高齢資格フラグ", "F", 1, "1: 後期高齢者医療", "late_stage_elderly"),
    Item("介護資格フラグ", "F", 1, "1: 介護保険", "long_term_care"),
    Item("国民年金資格フラグ", "F", 1, "1: 国民年金", "national_pension"),
    Item("児童手当資格フラグ", "F", 1, "1: 児童手当 受給資格あり", "child_allowance"),
    Item("個人番号カード交付フラグ", "F", 1, "1: holds a 個人番号カード", "card_issued"),
    Item("依頼管理番号", "X", 100, "the operation that wrote the entry", "request_control_number"),
    Item("操作者ID", "X", 32, "who made it", "operator_id"),
    Item("操作端末ID", "X", 32, "at which terminal", "terminal_id"),
    Item("記録日時", "T", 32, "when the entry was written (ISO 8601, as recorded)", "recorded_at"),
    Item("届出人区分", "9", 1, "who made the 届出 that wrote the entry: 1 本人, 2 同一世帯の者, 3 代理人, 4 第三者; "
         "0 none (職権, 移行)", "notifier.kind"),
    Item("届出人_住民票コード", "9", 11, "本人 or 同一世帯の者: their 住民票コード", "notifier.resident_code"),
    Item("届出人氏名", "X", 60, "the 届出人's name", "notifier.name"),
    Item("届出人_委任状", "X", 100, "代理人: the 委任状's reference", "notifier.power_of_attorney"),
    Item("届出人_請求理由", "X", 200, "第三者: the stated reason", "notifier.reason"),
    Item("届出人_本人確認書類", "X", 100, "the 本人確認書類 the counter saw", "notifier.identity_document"),
))
HOUSEHOLD = FileSpec("世帯.csv", "世帯: each household with current members (derived from 個人.csv; checked on import)", (
    Item("世帯番号", "9", 10, "the household", required=True),
    Item("世帯主氏名", "X", 60, "氏名 of the 世帯主"),
    Item("住所_町字コード", "9", 7, "町字 of its address"),
    Item("住所", "X", 150, "its address in full"),
    Item("世帯員数", "9", 6, "current members", required=True),
))
GAIJI = FileSpec("外字.csv", "外字: the vendor's 外字 table, every user-defined character its files may hold", (
    Item("外字コード", "X", 4, "the CP932 code (F040–F9FC, hexadecimal, upper case)", required=True),
    Item("Unicode", "X", 6, "the private-use character it is (U+E000–U+E757, as CP932 maps its user-defined area)",
         required=True),
    Item("説明", "X", 100, "what the character is"),
    Item("同定文字", "X", 40, "the standard character it is identified with, as UCS code points (U+845B U+E0100 for 葛 "
         "with its IVS; written so in CP932 too); empty: none known"),
))
FILES = (PERSON, HOUSEHOLD, GAIJI) + tuple(_code_file(t) for t in CODE_TABLES)
BY_NAME = {f.name: f for f in FILES}
NOT_CARRIED: dict[str, str] = {}  # every item of a 住民票 history entry is carried (the 届出人 flattened: 届出人…)


def _record_ref(record) -> str:
    return f"住民票コード {record.resident_code or '(none)'} (宛名番号 {record.atena_number or '(none)'}, " \
           f"個人履歴番号 {record.history_number})"


# -- characters: how the vendor writes them, and 文字同定 ---------------------------------------------------------
def _valid_entry(entry) -> str | None:
    """What is wrong with a 外字 table entry, or None."""
    if len(entry.code) != 1 or ord(entry.code) not in CP932_USER_AREA:
        return f"{entry.code!r} is not a character of CP932's user-defined area (U+E000–U+E757)"
    if entry.cp932 != entry.code.encode("cp932").hex().upper():
        return f"外字コード {entry.cp932!r} is not U+{ord(entry.code):04X} (CP932 writes it as " \
               f"{entry.code.encode('cp932').hex().upper()})"
    if entry.standard and (len(characters(entry.standard)) != 1 or PUA.search(entry.standard)
                           or is_selector(entry.standard[0])):
        return f"同定文字 {entry.standard!r} is not one standard character (with its selectors)"
    return None


class VendorCharacters:
    """How the vendor writes text: its 外字 (a standard character its table lists) as the entry's private-use
    code, a private-use character of the register (an unidentified 外字 the table lists) as itself, the rest as
    themselves; refused when the encoding cannot hold the result."""

    def __init__(self, table, encoding: str):
        self.encoding = encoding
        self.codes = set()
        self.reverse: dict[str, str] = {}
        for entry in table:
            wrong = _valid_entry(entry)
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


# -- records → cells ---------------------------------------------------------------------------------------------
class _Unwritable(Exception):
    """A value the layout cannot hold (raised by a cell converter; the writer names the record and item)."""


def _date_cell(value: str) -> str:
    if not value:
        return ""
    if len(value) != 10 or value[4] != "-" or value[7] != "-":
        raise _Unwritable(f"{value!r} is not a date YYYY-MM-DD")
    return value[:4] + value[5:7] + value[8:]  # (the calendar is the reader's to check)


def _code_cell(table: str):
    codes = CODES[table]

    def cell(value: str) -> str:
        if not value:
            return ""
        if value not in codes:
            raise _Unwritable(f"{value!r} has no code in コード表 {table}")
        return codes[value]
    return cell


def _relationship_code(value: str) -> str:
    return CODES["続柄"].get(value, OTHER_RELATIONSHIP) if value else ""


def _status_cell(value: int) -> str:
    if value not in (CURRENT, REMOVED):
        raise _Unwritable("the status (現存 or 除票) is not set")
    return "1" if value == REMOVED else "0"


def _writer_of(item: Item):
    """The cell of an item from its field's value."""
    if item.field == "status":
        return _status_cell
    if item.type == "F":
        return lambda v: "1" if v else "0"
    if item.type == "D":
        return _date_cell
    if item.field == "relationship" and item.type == "C":
        return _relationship_code
    if item.type == "C" and item.table != "性別":
        return _code_cell(item.table)
    return str  # X, 9, T, and 性別 (a code in the register too)


_PERSON_GETTER = operator.attrgetter(*(i.field for i in PERSON.items))
_PERSON_WRITERS = [_writer_of(i) for i in PERSON.items]
_PERSON_TEXT = [n for n, i in enumerate(PERSON.items) if i.type == "X"]
_PERSON_TEXT_FIELDS = [operator.attrgetter(f) for f in sorted({PERSON.items[n].field for n in _PERSON_TEXT})]


# -- files -------------------------------------------------------------------------------------------------------
class _FileWriter:
    """One CSV file of the export being written: its header, its rows, its count and digest."""

    def __init__(self, folder: Path, spec: FileSpec, encoding: str):
        self.spec, self.encoding = spec, encoding
        self.out = open(folder / spec.name, "wb")
        self.digest, self.records, self.bytes = hashlib.sha256(), 0, 0
        self.buffer = io.StringIO()
        self.csv = csv.writer(self.buffer, lineterminator="\r\n")
        self._emit([i.name for i in spec.items])  # (the header: not a record)

    def _emit(self, cells) -> None:
        self.buffer.seek(0)
        self.buffer.truncate()
        self.csv.writerow(cells)
        data = self.buffer.getvalue().encode(self.encoding)
        self.digest.update(data)
        self.out.write(data)
        self.bytes += len(data)

    def row(self, cells) -> None:
        """Write one record."""
        self._emit(cells)
        self.records += 1

    def close(self) -> dict:
        """Its manifest entry."""
        self.out.close()
        return {"name": self.spec.name, "records": self.records, "bytes": self.bytes, "sha256": self.digest.hexdigest()}


def _text_cells(cells: list[str], chars: VendorCharacters, indexes, spec: FileSpec, ref) -> list[str]:
    """The text items of a row as the vendor writes them, each checked against the encoding and the table."""
    if chars.plain("\x1f".join([cells[n] for n in indexes])):  # the common row: nothing to write otherwise
        return cells
    for n in indexes:
        value = cells[n]
        if "\n" in value or "\r" in value:
            raise VendorExportError(f"{ref()}: {spec.items[n].name} holds a line break, which no item may hold")
        value = cells[n] = chars.text(value)
        wrong = chars.problem(value)
        if wrong:
            raise VendorExportError(f"{ref()}: {spec.items[n].name} {wrong}")
    return cells


def write_export(folder: Path, municipality: str, records, table, encoding: str = "cp932") -> dict:
    """Write a vendor's export of a municipality's register (ResidentRecord history entries, in any order) with its
    外字 table (entries with code, cp932, description, standard) in CP932 or UTF-8; its manifest."""
    if encoding not in ENCODINGS:
        raise VendorExportError(f"encoding {encoding!r}: write cp932 or utf-8")
    folder, table = Path(folder), tuple(table)
    folder.mkdir(parents=True, exist_ok=True)
    chars = VendorCharacters(table, encoding)
    entries = []
    person = _FileWriter(folder, PERSON, encoding)
    latest: dict[str, records_pb2.ResidentRecord] = {}  # each person's latest entry, for 世帯.csv
    try:
        for record in records:
            if record.municipality_code != municipality:
                raise VendorExportError(f"{_record_ref(record)}: 市区町村コード {record.municipality_code!r} is not "
                                        f"the export's municipality {municipality}")
            values = _PERSON_GETTER(record)
            try:
                cells = [convert(value) for convert, value in zip(_PERSON_WRITERS, values)]
            except _Unwritable as exc:
                wrong = next(i for i, convert, value in zip(PERSON.items, _PERSON_WRITERS, values)
                             if _raises(convert, value))
                raise VendorExportError(f"{_record_ref(record)}: {wrong.name} {exc}") from None
            person.row(_text_cells(cells, chars, _PERSON_TEXT, PERSON, lambda: _record_ref(record)))
            known = latest.get(record.atena_number)
            if known is None or known.history_number < record.history_number:
                latest[record.atena_number] = record
    finally:
        entries.append(person.close())
    households = _FileWriter(folder, HOUSEHOLD, encoding)
    try:
        for row in household_rows(list(latest.values())):
            households.row(_text_cells(row, chars, (1, 3), HOUSEHOLD, lambda: f"世帯 {row[0]}"))
    finally:
        entries.append(households.close())
    gaiji = _FileWriter(folder, GAIJI, encoding)
    try:
        for entry in sorted(table, key=lambda e: e.code):
            description = chars.text(entry.description)
            wrong = chars.problem(description)
            if wrong:
                raise VendorExportError(f"外字 table: the 説明 of U+{ord(entry.code):04X} {wrong}")
            gaiji.row([entry.cp932, f"U+{ord(entry.code):04X}", description,
                       " ".join(f"U+{ord(c):04X}" for c in entry.standard)])
    finally:
        entries.append(gaiji.close())
    for name, codes in CODE_TABLES.items():
        writer = _FileWriter(folder, BY_NAME[f"コード表_{name}.csv"], encoding)
        for code, label in codes:
            writer.row([code, label])
        entries.append(writer.close())
    manifest = {"layout": LAYOUT, "version": VERSION, "文字コード": ENCODINGS[encoding], "municipality": municipality,
                "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "files": entries}
    (folder / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    return manifest


def _raises(convert, value) -> bool:
    try:
        convert(value)
        return False
    except _Unwritable:
        return True


def as_vendor_register(records) -> list:
    """Generated residents as a vendor's register holds them: 宛名番号 in order, each one current history entry
    (個人履歴番号 1, 最新)."""
    records = list(records)
    for n, record in enumerate(records, start=1):
        record.atena_number = record.atena_number or f"{n:015d}"
        record.history_number = record.history_number or 1
        record.is_latest = True
    return records


def with_register_gaiji(table, records, description: str = "未同定の外字") -> tuple:
    """The 外字 table with an unidentified entry for each private-use character of the records it does not list (a
    vendor's table holds every 外字 its register does: one is made with each 外字)."""
    listed = {e.code for e in table}
    found = sorted({c for r in records for f in _PERSON_TEXT_FIELDS for c in PUA.findall(f(r))
                    if c not in listed and ord(c) in CP932_USER_AREA})
    return tuple(table) + tuple(TableEntry(c, c.encode("cp932").hex().upper(), description, "") for c in found)


# -- reading -----------------------------------------------------------------------------------------------------
@dataclass
class Import:
    """A vendor's export as read: its manifest, the records after 文字同定, its 外字 table, and what 文字同定 did."""

    manifest: dict
    records: list
    table: tuple[TableEntry, ...]
    characters: CharacterReport


def _lines(path: Path, spec: FileSpec, codec: str):
    """The decoded lines of a file, one by one (CRLF or LF), refused at the first bytes the encoding does not hold."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            raw = raw.rstrip(b"\n").removesuffix(b"\r")
            try:
                yield raw.decode(codec)
            except UnicodeDecodeError as exc:
                bad = raw[exc.start:exc.end].hex(" ").upper()
                cells = next(csv.reader([raw.decode(codec, errors="replace")]), [])
                where = next((spec.items[n].name for n, c in enumerate(cells) if "\ufffd" in c and n < len(spec.items)),
                             None)
                raise VendorExportError(f"{spec.name} line {number}: " + (f"{where} " if where else "") +
                                        f"bytes {bad} are not {ENCODINGS[codec]} (rule: 文字コード "
                                        f"{ENCODINGS[codec]} of the manifest)") from None


def _rows(folder: Path, spec: FileSpec, codec: str):
    """(line, cells) of a file after its header, the header and each row's item count checked."""
    reader = csv.reader(_lines(folder / spec.name, spec, codec), strict=True)
    names = [i.name for i in spec.items]
    previous = 0  # the line of the last row read (a row that fails began on the next)
    try:
        header = next(reader, None)
        previous = 1
        if header != names:
            if header and header[0].startswith("\ufeff"):
                raise VendorExportError(f"{spec.name} line 1: the file begins with a BOM (rule: {ENCODINGS[codec]} "
                                        "without BOM)")
            got = header or []
            n = next((n for n, (a, b) in enumerate(zip(got, names)) if a != b), min(len(got), len(names)))
            said = f"item {n + 1} is {got[n]!r}, not {names[n]}" if n < len(got) and n < len(names) else \
                f"{len(got)} items, not {len(names)}"
            raise VendorExportError(f"{spec.name} line 1: the header is not the items of {LAYOUT} {VERSION}: {said} "
                                    "(rule: header of item names)")
        for cells in reader:
            line = reader.line_num
            if line != previous + 1:
                raise VendorExportError(f"{spec.name} line {previous + 1}: a quoted item runs past the end of the line "
                                        "(rule: every record on one line)")
            previous = line
            if len(cells) != len(names):
                raise VendorExportError(f"{spec.name} line {line}: {len(cells)} items, not {len(names)} "
                                        "(rule: every record has the items of the header)")
            yield line, cells
    except csv.Error as exc:
        raise VendorExportError(f"{spec.name} line {previous + 1}: not CSV ({exc}) (rule: RFC 4180, one record "
                                "a line)") from None


def _refuse(spec: FileSpec, line: int, item: Item, value: str, problem: str, rule: str):
    raise VendorExportError(f"{spec.name} line {line}: {item.name} {value!r} {problem} (rule: {rule})")


@lru_cache(maxsize=1 << 16)
def _iso_date(value: str) -> str | None:
    """YYYY-MM-DD of a D item's YYYYMMDD, or None when it is not a calendar date."""
    if len(value) != 8 or not value.isascii() or not value.isdigit():
        return None
    try:
        return dt.date(int(value[:4]), int(value[4:6]), int(value[6:])).isoformat()
    except ValueError:
        return None


def check_cell(spec: FileSpec, line: int, item: Item, value: str) -> None:
    """Refuse a non-empty cell that breaks its item's type or length."""
    if len(value) > item.length:
        _refuse(spec, line, item, value, f"has {len(value)} characters", f"{item.type} at most {item.length}")
    kind = item.type
    if kind == "9":
        if not (value.isascii() and value.isdigit()):
            _refuse(spec, line, item, value, "is not a number", f"9 digits 0-9, at most {item.length}")
    elif kind == "F":
        if value not in ("0", "1"):
            _refuse(spec, line, item, value, "is not a flag", "F 1 or 0")
    elif kind == "D":
        if _iso_date(value) is None:
            _refuse(spec, line, item, value, "is not a date", "D YYYYMMDD")
    elif kind == "C":
        if value not in NAMES[item.table]:
            _refuse(spec, line, item, value, f"is not a code of コード表 {item.table}", f"C コード表_{item.table}.csv")
    elif kind == "T":
        try:
            dt.datetime.fromisoformat(value)
        except ValueError:
            _refuse(spec, line, item, value, "is not a date-time", "T ISO 8601")
    elif not value.isprintable():
        for char in value:
            if unicodedata.category(char) in FORBIDDEN_CATEGORIES:
                _refuse(spec, line, item, value, f"holds the control character U+{ord(char):04X}",
                        "X text without control characters")


@lru_cache(maxsize=1)
def _forbidden():
    """A pattern of the characters no X item may hold (control, format, surrogate)."""
    chars = [chr(c) for c in (*range(0x30000), *range(0xE0000, 0xE1000))
             if unicodedata.category(chr(c)) in FORBIDDEN_CATEGORIES]
    return re.compile("[" + "".join(re.escape(c) for c in chars) + "]")


class _RowChecks:
    """The checks of a file's rows, grouped by type so that a whole row is checked in a few calls; a row that fails
    is checked again item by item, for the refusal that names its item."""

    def __init__(self, spec: FileSpec):
        self.spec = spec
        items = spec.items
        self.lengths = [i.length for i in items]
        pick = lambda kind: [n for n, i in enumerate(items) if i.type == kind]  # noqa: E731
        self.digits, self.flags, self.dates, self.texts = (_getter(pick(k)) for k in ("9", "F", "D", "X"))
        self.codes = [(n, NAMES[i.table]) for n, i in enumerate(items) if i.type == "C"]
        self.times = pick("T")
        self.required = _getter([n for n, i in enumerate(items) if i.required])

    @classmethod
    def of(cls, spec: FileSpec) -> "_RowChecks":
        """The checks of a file (made once)."""
        return _ROW_CHECKS.get(spec.name) or _ROW_CHECKS.setdefault(spec.name, cls(spec))

    def row(self, line: int, cells: list[str]) -> None:
        """Refuse a row that breaks its items' types, lengths or requirements."""
        if not (any(map(operator.gt, map(len, cells), self.lengths)) or not all(self.required(cells))
                or not _digits("".join(self.digits(cells))) or "".join(self.flags(cells)).strip("01")
                or not all(_iso_date(v) for v in self.dates(cells) if v)
                or not all(cells[n] in names for n, names in self.codes if cells[n])
                or not all(_datetime(cells[n]) for n in self.times if cells[n])
                or _unprintable("".join(self.texts(cells)))):
            return
        for item, value in zip(self.spec.items, cells):
            if value:
                check_cell(self.spec, line, item, value)
            elif item.required:
                _refuse(self.spec, line, item, value, "is empty", "required")


_ROW_CHECKS: dict[str, _RowChecks] = {}


def _getter(indexes: list[int]):
    """The cells at these indexes, as a tuple (whatever their number)."""
    if not indexes:
        return lambda cells: ()
    get = operator.itemgetter(*indexes)
    return get if len(indexes) > 1 else lambda cells: (get(cells),)


def _unprintable(text: str) -> bool:
    """Whether a text holds a control, format or surrogate character (isprintable first: decided in C, and true
    of most texts; 全角スペース and private-use characters are not printable but allowed)."""
    return not text.isprintable() and _forbidden().search(text) is not None


def _digits(value: str) -> bool:
    return not value or (value.isascii() and value.isdigit())


def _datetime(value: str) -> bool:
    try:
        dt.datetime.fromisoformat(value)
        return True
    except ValueError:
        return False


class _PersonReader:
    """個人.csv rows into ResidentRecords: each row checked, codes and dates turned back into the register's
    values, 外字 identified."""

    def __init__(self, municipality: str, identify: Identification):
        self.municipality, self.identify = municipality, identify
        self.checks = _RowChecks(PERSON)
        items = PERSON.items
        index = {i.name: n for n, i in enumerate(items)}
        self.relationship, self.relationship_text = index["続柄コード"], index["続柄表記"]
        self.texts = [(n, i.name) for n, i in enumerate(items) if i.type == "X"]
        # the items set from their cell as it is, the flags, the dates and the codes of names (by kind, for speed)
        plain = [n for n, i in enumerate(items) if i.type in ("X", "9", "T") or i.table == "性別"]
        plain = [n for n in plain if n != self.relationship_text and items[n].field != "history_number"]
        self.plain, self.plain_names = _getter(plain), [items[n].field for n in plain]
        flags = [n for n, i in enumerate(items) if i.type == "F" and i.field != "status"]
        self.flags, self.flag_names = _getter(flags), [items[n].field for n in flags]
        dates = [n for n, i in enumerate(items) if i.type == "D"]
        self.dates, self.date_names = _getter(dates), [items[n].field for n in dates]
        self.named = [(n, i.field, NAMES[i.table]) for n, i in enumerate(items)
                      if i.type == "C" and i.table not in ("性別", "続柄")]
        self.status, self.history = index["除票フラグ"], index["個人履歴番号"]
        self.atena, self.code = index["宛名番号"], index["住民票コード"]  # (how the report names a record)
        self.keys: set[tuple[str, str]] = set()

    def record(self, line: int, cells: list[str]) -> records_pb2.ResidentRecord:
        """The history entry of a row."""
        spec = PERSON
        self.checks.row(line, cells)
        if PUA.search("".join(cells)):  # (the lengths were those of the file's text: checked before 文字同定)
            ref = (cells[self.atena], cells[self.code])
            self.identify.records += 1
            for n, name in self.texts:
                if cells[n]:
                    cells[n] = self.identify.text(cells[n], f"{spec.name} line {line}", name, ref)
        values = {name: v for name, v in zip(self.plain_names, self.plain(cells)) if v}
        values.update((name, True) for name, v in zip(self.flag_names, self.flags(cells)) if v == "1")
        values.update((name, _iso_date(v)) for name, v in zip(self.date_names, self.dates(cells)) if v)
        values.update((name, names[cells[n]]) for n, name, names in self.named if cells[n])
        values["status"] = REMOVED if cells[self.status] == "1" else CURRENT
        for name in [n for n in values if "." in n]:  # the items of a message field (the 届出人), nested
            outer, inner = name.split(".", 1)
            value = values.pop(name)
            if inner == "kind":
                if value == "0":
                    continue
                value = int(value)
            values.setdefault(outer, {})[inner] = value
        if int(cells[self.history]):
            values["history_number"] = int(cells[self.history])
        code, text = cells[self.relationship], cells[self.relationship_text]
        if code == OTHER_RELATIONSHIP:
            if not text:
                _refuse(spec, line, PERSON.items[self.relationship_text], text, "is empty with 続柄コード 99",
                        "続柄表記 written out with 99")
            values["relationship"] = text
        elif code:
            if text and text != NAMES["続柄"][code]:
                _refuse(spec, line, PERSON.items[self.relationship_text], text,
                        f"is not {NAMES['続柄'][code]} of 続柄コード {code}", "続柄表記 names the code's 続柄")
            values["relationship"] = NAMES["続柄"][code]
        elif text:
            _refuse(spec, line, PERSON.items[self.relationship_text], text, "is given without a 続柄コード",
                    "続柄表記 with a 続柄コード")
        if cells[0] != self.municipality:
            _refuse(spec, line, PERSON.items[0], cells[0], f"is not the manifest's municipality {self.municipality}",
                    "one municipality an export")
        key = (cells[1], cells[self.history].lstrip("0"))
        if key in self.keys:
            _refuse(spec, line, PERSON.items[self.history], cells[self.history],
                    f"is given twice for 宛名番号 {key[0]}", "宛名番号 and 個人履歴番号 name one entry")
        self.keys.add(key)
        return records_pb2.ResidentRecord(**values)


def _cells_checked(spec: FileSpec, line: int, cells: list[str]) -> None:
    _RowChecks.of(spec).row(line, cells)


def read_manifest(folder: Path) -> dict:
    """The manifest of an export, refused unless it is of this layout, names a known 文字コード and lists each file of
    the layout once."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise VendorExportError(f"{MANIFEST}: unreadable ({exc}) (rule: UTF-8 JSON manifest)") from None
    if not isinstance(manifest, dict) or manifest.get("layout") != LAYOUT or manifest.get("version") != VERSION:
        got = f"{manifest.get('layout')} {manifest.get('version')}" if isinstance(manifest, dict) else "not an object"
        raise VendorExportError(f"{MANIFEST}: layout {got} is not {LAYOUT} {VERSION} (rule: layout and version)")
    if manifest.get("文字コード") not in CODECS:
        raise VendorExportError(f"{MANIFEST}: 文字コード {manifest.get('文字コード')!r} is not CP932 or UTF-8 "
                                "(rule: 文字コード)")
    municipality = manifest.get("municipality")
    if not (isinstance(municipality, str) and len(municipality) == 6 and municipality.isdigit()):
        raise VendorExportError(f"{MANIFEST}: municipality {municipality!r} is not a 6-digit 地方公共団体コード "
                                "(rule: municipality)")
    files = manifest.get("files")
    names = [f.get("name") for f in files] if isinstance(files, list) and all(isinstance(f, dict) for f in files) \
        else None
    if names is None or sorted(names) != sorted(BY_NAME):
        missing = sorted(set(BY_NAME) - set(names or ())) or sorted(set(names or ()) - set(BY_NAME))
        raise VendorExportError(f"{MANIFEST}: files do not list each file of {LAYOUT} {VERSION} once "
                                f"({', '.join(missing) or 'one listed twice'}) (rule: files)")
    return manifest


def _check_file(folder: Path, entry: dict) -> None:
    """Refuse a file whose size or digest is not the manifest's (before reading a row of it)."""
    path = folder / entry["name"]
    if not path.is_file():
        raise VendorExportError(f"{entry['name']}: missing (rule: every file of the manifest)")
    if path.stat().st_size != entry.get("bytes") or file_digest(path) != entry.get("sha256"):
        raise VendorExportError(f"{entry['name']}: its size or SHA-256 is not the manifest's (rule: digest of the "
                                "manifest): the file changed after the export, or did not arrive whole")


def _count(spec: FileSpec, entry: dict, records: int) -> None:
    if records != entry.get("records"):
        raise VendorExportError(f"{spec.name}: {records} records, the manifest says {entry.get('records')} "
                                "(rule: records of the manifest)")


def _read_table(folder: Path, codec: str, entry: dict) -> tuple[TableEntry, ...]:
    """外字.csv: the vendor's 外字 table, each row checked (codes, their agreement, the standard character)."""
    table, lines, count = [], {}, 0
    for line, cells in _rows(folder, GAIJI, codec):
        count += 1
        _cells_checked(GAIJI, line, cells)
        cp932, unicode_, description, standard = cells
        item = GAIJI.items
        try:
            char = bytes.fromhex(cp932).decode("cp932") if len(cp932) == 4 and cp932 == cp932.upper() else ""
        except (ValueError, UnicodeDecodeError):
            char = ""
        if len(char) != 1 or ord(char) not in CP932_USER_AREA:
            _refuse(GAIJI, line, item[0], cp932, "is not a code of CP932's user-defined area",
                    "外字コード F040–F9FC, hexadecimal")
        if unicode_ != f"U+{ord(char):04X}":
            _refuse(GAIJI, line, item[1], unicode_, f"is not the character of 外字コード {cp932} (U+{ord(char):04X})",
                    "外字コード and Unicode name one character")
        if char in lines:
            _refuse(GAIJI, line, item[0], cp932, f"is listed on line {lines[char]} too", "one row a 外字")
        try:
            text = "".join(chr(int(p[2:], 16)) for p in standard.split(" ") if p) if standard else ""
            good = all(re.fullmatch(r"U\+[0-9A-F]{4,6}", p) for p in standard.split(" ")) if standard else True
        except (ValueError, OverflowError):
            text, good = "", False
        found = TableEntry(char, cp932, description, text)
        if not good or (standard and _valid_entry(found)):
            _refuse(GAIJI, line, item[3], standard, "is not one standard character", "同定文字 as UCS code points "
                    "U+XXXX of one character (with its selectors), not private-use")
        lines[char] = line
        table.append(found)
    _count(GAIJI, entry, count)
    # (a 説明 may itself hold the vendor's 外字: identified like the rest, once the whole table is known)
    identify = Identification(table)
    return tuple(TableEntry(e.code, e.cp932, identify.text(e.description, f"{GAIJI.name} line {lines[e.code]}",
                                                           "説明", None), e.standard) for e in table)


def _read_code_table(folder: Path, codec: str, name: str, entry: dict) -> None:
    """A コード表 file: the layout's codes and names, in its order."""
    spec = BY_NAME[f"コード表_{name}.csv"]
    expected = CODE_TABLES[name]
    count = 0
    for line, cells in _rows(folder, spec, codec):
        _cells_checked(spec, line, cells)
        if count >= len(expected) or tuple(cells) != expected[count]:
            code = cells[0]
            if code in [c for c, _ in expected[:count]]:
                said = "comes twice"
            elif code in NAMES[name]:
                said = f"is {NAMES[name][code]} in {LAYOUT} {VERSION}, not {cells[1]}"
            else:
                said = f"is not a code of {LAYOUT} {VERSION}"
            _refuse(spec, line, spec.items[0], code, said, f"コード表 {name} of the layout")
        count += 1
    if count != len(expected):
        raise VendorExportError(f"{spec.name}: {count} codes, not the layout's {len(expected)} (missing "
                                f"{', '.join(c for c, _ in expected[count:])}) (rule: コード表 {name} of the layout)")
    _count(spec, entry, count)


def read_export(folder: Path) -> Import:
    """Read a vendor's export (streaming its files row by row): every file held to the manifest and to the layout,
    the records with their 外字 identified (文字同定), the 外字 table and what 文字同定 did; a VendorExportError
    names the file, line, item and rule of the first thing wrong."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    codec, municipality = CODECS[manifest["文字コード"]], manifest["municipality"]
    entries = {f["name"]: f for f in manifest["files"]}
    for spec in FILES:
        _check_file(folder, entries[spec.name])
    for name in CODE_TABLES:
        _read_code_table(folder, codec, name, entries[f"コード表_{name}.csv"])
    table = _read_table(folder, codec, entries[GAIJI.name])
    identify = Identification(table)
    people = _PersonReader(municipality, identify)
    records = [people.record(line, cells) for line, cells in _rows(folder, PERSON, codec)]
    _count(PERSON, entries[PERSON.name], len(records))
    _check_households(folder, codec, entries[HOUSEHOLD.name], records, identify)
    return Import(manifest, records, table, identify.report())


def _check_households(folder: Path, codec: str, entry: dict, records: list, identify: Identification) -> None:
    """世帯.csv follows 個人.csv: each household with current members, as the members make it."""
    expected = household_rows(records)
    count = 0
    for line, cells in _rows(folder, HOUSEHOLD, codec):
        _cells_checked(HOUSEHOLD, line, cells)
        for n in (1, 3):
            cells[n] = identify.text(cells[n], f"{HOUSEHOLD.name} line {line}", HOUSEHOLD.items[n].name, None)
        derived = expected[count] if count < len(expected) else None
        if cells != derived:
            n = 0 if derived is None else next(n for n, (a, b) in enumerate(zip(cells, derived)) if a != b)
            said = "is no household with current members in 個人.csv" if derived is None or n == 0 else \
                f"is not {derived[n]!r}, as 個人.csv's current members of 世帯 {cells[0]} make it"
            _refuse(HOUSEHOLD, line, HOUSEHOLD.items[n], cells[n], said, "世帯 follows 個人")
        count += 1
    if count != len(expected):
        raise VendorExportError(f"{HOUSEHOLD.name}: {count} households, 個人.csv's current members make "
                                f"{len(expected)} (rule: 世帯 follows 個人)")
    _count(HOUSEHOLD, entry, count)


# -- the document ------------------------------------------------------------------------------------------------
TYPES = {"X": "text, at most the length in code points; no control characters", "9": "digits 0–9, at most the length",
         "D": "a date YYYYMMDD (8 digits, a real calendar date)", "F": "a flag: 1 or 0",
         "T": "a date-time, ISO 8601 as recorded", "C": "a code of the コード表 the item names"}


def markdown() -> str:
    """The layout as a document a vendor can write an exporter from (docs/intermediate-layout.md)."""
    lines = [f"# A foreign vendor's export: {LAYOUT} {VERSION}", "",
             "Generated from `testbed/migration/intermediate.py`; a test keeps it current.", "",
             (__doc__ or "").split("\n\n", 1)[1].strip(), "",
             "`testbed population export --layout intermediate --encoding cp932 --out DIR` writes one of a generated "
             "population with the municipality's vendor 外字 table.", "",
             "## Types", "", "| type | what a value is |", "|---|---|"]
    lines += [f"| {t} | {m} |" for t, m in TYPES.items()]
    lines += ["", "## Files", "", "| file | one record is |", "|---|---|"]
    lines += [f"| `{spec.name}` | {spec.title.split(': ', 1)[1]} |" for spec in FILES]
    lines += ["", "## The manifest", "",
              f"`{MANIFEST}` (UTF-8 JSON): `layout` (`{LAYOUT}`), `version` (`{VERSION}`), `文字コード` (`CP932` or "
              "`UTF-8`: every CSV file is in it), `municipality` (地方公共団体コード, 6 digits; every 個人.csv row's "
              "市区町村コード), `created_at` (ISO 8601), and `files`: for each file of the layout its `name`, "
              "`records` (lines after the header), `bytes` and `sha256` (of the whole file). The importer refuses "
              "an export of another layout or version, a file missing or not listed, a file whose size or digest "
              "differs (before reading a row of it) and a count that differs.", ""]
    for spec in FILES[:3]:
        lines += [f"## {spec.name}", "", spec.title + ".", "",
                  "| # | item | type | length | required | meaning | ResidentRecord |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {n} | {i.name} | {i.type}{f' ({i.table})' if i.table else ''} | {i.length} | "
                  f"{'yes' if i.required else ''} | {i.meaning} | {f'`{i.field}`' if i.field else ''} |"
                  for n, i in enumerate(spec.items, 1)]
        lines.append("")
    lines += ["Key of 個人.csv: 宛名番号 and 個人履歴番号 (unique). 世帯.csv lists, in 世帯番号 order, each household "
              "that has current members in their latest entries; 世帯主氏名 is the 世帯主's 世帯主氏名 (else 氏名), "
              "住所 and 町字コード are the 世帯主's (else the first member's).", "",
              ("ResidentRecord fields the layout does not carry: " +
               "; ".join(f"`{f}` ({why})" for f, why in NOT_CARRIED.items()) + ". Every other field" if NOT_CARRIED else
               "Every field of a ResidentRecord") + " is carried (the 届出人 as its items 届出人…) and "
              "comes back as it was written (`is_latest`, 最新フラグ, as written too: the importer does not recompute it).",
              "", "## Code tables", "",
              "Each `コード表_NAME.csv` has the items コード and 名称 and holds exactly the layout's codes, in this order; "
              "the importer refuses a table that differs and a code the table does not hold. 性別 is a code in the "
              "register too; 住民種別, 続柄 and 異動事由 are names in the register, written as their codes.", ""]
    for name, codes in CODE_TABLES.items():
        lines += [f"### {name} (`コード表_{name}.csv`)", "", "| コード | 名称 |", "|---|---|"]
        lines += [f"| {code} | {label} |" for code, label in codes]
        lines.append("")
    lines += ["続柄 99 (その他): the 続柄 is written out in 続柄表記; with any other code 続柄表記 is empty or the code's "
              "name. 異動事由: A 記載 (a person enters the register), B 消除 (the 住民票 becomes a 除票; 消除事由コード "
              "takes these), C 記載事項の変更. A register whose 異動事由 or 住民種別 has no code here cannot be "
              "written in this layout (the writer names the record and item).", "",
              "## 外字", "",
              "The vendor keeps its 外字 as user-defined characters: CP932's user-defined area F040–F9FC, which is "
              "Unicode's private-use U+E000–U+E757. 外字.csv lists each one the files may hold, with the standard "
              "character it is identified with (同定文字, as UCS code points, so that CP932 can carry 𠮷 U+20BB7 or "
              "葛 U+845B U+E0100), or none.", "",
              "- Writing (CP932 and UTF-8 alike): a character the table lists as an entry's 同定文字 is written as "
              "the entry's code (the whole character: a variation sequence matches only with its selector; the "
              "first entry of a 同定文字 wins); a private-use character of the register (an unidentified 外字) is "
              "written as itself, and must be in the table (one the table identifies comes back as its 同定文字: that "
              "is 文字同定). In CP932, any other character CP932 cannot encode is "
              "refused (naming the record and item), as are " + " ".join(sorted(CP932_LOSSY)) +
              ", which CP932 writes by best fit and reads back as other characters.",
              "- Reading (文字同定): each private-use character of an X item is replaced by its 同定文字; one with "
              "none is kept as the private-use character (unmapped); one the table does not list is refused. The "
              "lengths are those of the file's text, before 文字同定. The import reports the counts of mapped and "
              "unmapped occurrences and, for each code met, its description, 同定文字, count, the first "
              f"{EXAMPLE_RECORDS} records (宛名番号, 住民票コード) and the items it was met in.",
              "- 外字.csv: 外字コード (4 hexadecimal digits, upper case) and Unicode (U+E000–U+E757) name the same "
              "character; each 外字 once; 同定文字 one character with its selectors, never private-use; a 説明 may "
              "hold the vendor's 外字 too.", "",
              "## In code", "",
              "`write_export(folder, municipality, records, table, encoding)` writes an export (records: "
              "ResidentRecord history entries; table: entries with `code`, `cp932`, `description`, `standard`; encoding `cp932` or "
              "`utf-8`) and returns its manifest. `read_export(folder)` returns an `Import`: `manifest`, `records` "
              "(after 文字同定), `table` (the 外字 table read) and `characters` (a `CharacterReport`: `mapped`, "
              "`unmapped`, `records_with_gaiji`, `unmapped_codes`, and `examples`, one `CharacterUse` per code met: "
              "`code`, `cp932`, `description`, `standard`, `count`, `records`, `items`). Both raise "
              "`VendorExportError` with the one line that says what is wrong.", "",
              "## What the importer refuses", "",
              "The first of these ends the import with one line naming the file, line, item and rule, e.g. "
              "`個人.csv line 14: 生年月日 '20261301' is not a date (rule: D YYYYMMDD)`: a manifest of another layout, "
              "version or 文字コード; a file missing, or whose size, SHA-256 or count is not the manifest's; bytes "
              "not valid in the 文字コード; a header that is not the layout's items; a line with another number of "
              "items; a value too long, not of its type, or empty where required; a code not in its コード表; a "
              "コード表 that is not the layout's; a private-use character not in 外字.csv; a 市区町村コード not the "
              "manifest's; a 宛名番号 and 個人履歴番号 given twice; a 世帯.csv that does not follow 個人.csv."]
    return "\n".join(lines)
