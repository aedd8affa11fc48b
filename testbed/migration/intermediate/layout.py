"""A foreign vendor's export (中間標準レイアウト): the register as another vendor's 住民記録システム hands it over.

Modelled on J-LIS's 中間標準レイアウト仕様 (住民基本台帳): one CSV file per kind of record with Japanese item names,
each item of a type and a maximum length, code tables (コード表) for the coded items, the vendor's 外字 table, and a
manifest with each file's record count and SHA-256. The testbed's own migration layout
(`testbed/migration/layout.py`) is what the testbed writes for itself; this one is what arrives from elsewhere: in
CP932 or UTF-8, with codes instead of names, dates as YYYYMMDD and the vendor's 外字 in the private-use area,
identified (文字同定) on the way in.

Files are CSV (RFC 4180, CRLF line ends as the vendor's Windows systems write them, LF accepted; a header line of item
names; every record on one line) in the manifest's 文字コード (CP932 or UTF-8, no BOM). Types: X text (at most the
length, in code points), 9 digits (0–9 only, at most the length; leading zeros kept), D a date YYYYMMDD (a real
calendar date), F a flag (1 or 0), T a date-time (ISO 8601 as recorded), C a code of the コード表 the item names.
An empty item is one not set, except where the item is required. `docs/intermediate-layout.md` is generated from
this module; a test keeps the two the same.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from nodes.characters import CP932_USER_AREA, characters, is_selector
from protos import records_pb2


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


def record_ref(record) -> str:
    """How an error names a record: its 住民票コード, 宛名番号 and 個人履歴番号."""
    return f"住民票コード {record.resident_code or '(none)'} (宛名番号 {record.atena_number or '(none)'}, " \
           f"個人履歴番号 {record.history_number})"


# -- characters: how the vendor writes them, and 文字同定 ---------------------------------------------------------
def valid_entry(entry) -> str | None:
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


# -- the document ------------------------------------------------------------------------------------------------
TYPES = {"X": "text, at most the length in code points; no control characters", "9": "digits 0–9, at most the length",
         "D": "a date YYYYMMDD (8 digits, a real calendar date)", "F": "a flag: 1 or 0",
         "T": "a date-time, ISO 8601 as recorded", "C": "a code of the コード表 the item names"}


def markdown() -> str:
    """The layout as a document a vendor can write an exporter from (docs/intermediate-layout.md)."""
    lines = [f"# A foreign vendor's export: {LAYOUT} {VERSION}", "",
             "Generated from `testbed/migration/intermediate/layout.py`; a test keeps it current.", "",
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
