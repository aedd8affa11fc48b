"""Reading a vendor's export (中間標準レイアウト, layout.py): the manifest and each file checked, every cell to its
type, 文字同定 with the vendor's 外字 table, the records as the testbed holds them."""
from __future__ import annotations

import csv
import datetime as dt
import json
import operator
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from nodes.characters import CP932_USER_AREA, characters
from nodes.rules import FORBIDDEN_CATEGORIES
from protos import records_pb2
from testbed.migration.layout import file_digest, household_rows
from testbed.migration.intermediate.layout import (
    BY_NAME, CODECS, CODE_TABLES, CURRENT, ENCODINGS, FILES, GAIJI, HOUSEHOLD, LAYOUT, MANIFEST, NAMES,
    OTHER_RELATIONSHIP, PERSON, PUA, REMOVED, VERSION, FileSpec, Item, TableEntry, VendorExportError, valid_entry,
)
from testbed.migration.intermediate.characters import CharacterReport, Identification


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
        if not good or (standard and valid_entry(found)):
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
