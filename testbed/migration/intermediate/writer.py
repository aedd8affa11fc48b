"""Writing a vendor's export (中間標準レイアウト, layout.py): records to cells, the files, their manifest."""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import operator
from pathlib import Path

from nodes.characters import CP932_USER_AREA
from protos import records_pb2
from testbed.migration.layout import household_rows
from testbed.migration.intermediate.layout import (
    BY_NAME, CODES, CODE_TABLES, CURRENT, ENCODINGS, GAIJI, HOUSEHOLD, LAYOUT, MANIFEST, OTHER_RELATIONSHIP, PERSON,
    PUA, REMOVED, VERSION, FileSpec, Item, TableEntry, VendorExportError, record_ref,
)
from testbed.migration.intermediate.characters import VendorCharacters


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
                raise VendorExportError(f"{record_ref(record)}: 市区町村コード {record.municipality_code!r} is not "
                                        f"the export's municipality {municipality}")
            values = _PERSON_GETTER(record)
            try:
                cells = [convert(value) for convert, value in zip(_PERSON_WRITERS, values)]
            except _Unwritable as exc:
                wrong = next(i for i, convert, value in zip(PERSON.items, _PERSON_WRITERS, values)
                             if _raises(convert, value))
                raise VendorExportError(f"{record_ref(record)}: {wrong.name} {exc}") from None
            person.row(_text_cells(cells, chars, _PERSON_TEXT, PERSON, lambda: record_ref(record)))
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
