"""The migration layout (移行レイアウト): the files a municipality's register is carried in between sites.

In the spirit of J-LIS's 中間標準レイアウト仕様: one file per kind of record, fixed item names, types and
maximum lengths per file, and a manifest with the layout's version, each file's record count and SHA-256.
Files are CSV (RFC 4180; UTF-8 without BOM; LF line ends; a header line of item names; every record on
one line). Types: X text (up to the length, in characters; private-use 外字 kept as they are), 9 a
non-negative integer, B a flag (1 or 0), D a date (YYYY-MM-DD, empty when unknown), T a date-time (ISO
8601). Codes keep their leading zeros (they are X). `docs/migration-layout.md` is generated from this
module (`testbed migrate --layout`); a test keeps the two the same.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import operator
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from google.protobuf.descriptor import FieldDescriptor

from nodes.rules import DEFAULT_LENGTH, ITEM_LENGTHS
from protos import kizon_pb2, migration_pb2, records_pb2

LAYOUT = "testbed-migration-layout"
VERSION = "1.0"
MANIFEST = "manifest.json"
CODE_LENGTHS = {"municipality_code": 6, "previous_municipality_code": 6, "atena_number": 15, "resident_code": 11,
                "individual_number": 12, "household_number": 10, "town_code": 7, "postal_code": 8, "sex": 1,
                "unified_atena_number": 15, "fugo": 24, "terminal_id": 32, "operator_id": 32, "terminal": 32,
                "operator": 32, "issue_number": 24}
DATE_ITEMS = re.compile(r".*(_date|_since)$")


@dataclass(frozen=True)
class Item:
    """One item of a file: its name, label (as in the 別添1 item list), type and maximum length."""

    name: str
    label: str
    type: str  # X, 9, B, D, T
    length: int


@dataclass(frozen=True)
class FileSpec:
    """One file of the layout: its name, what one record is, its items, and the items that identify a record."""

    name: str
    title: str
    key: tuple[str, ...]
    items: tuple[Item, ...]


def _labels(message: str) -> dict[str, str]:
    """Item labels from the comments of a message in its .proto source (the 別添1 names)."""
    text = next(t for t in (resources.files("protos").joinpath(f).read_text("utf-8") for f in ("records.proto", "kizon.proto"))
                if f"message {message} {{" in t)
    body = text[text.index(f"message {message} {{"):]
    body = body[:body.index("\n}\n")]
    labels = {}
    for match in re.finditer(r"^\s*(?:repeated\s+)?\w+ (\w+) = \d+;\s*(?://\s*(.*))?$", body, re.M):
        labels[match[1]] = (match[2] or "").strip()
    return labels


def _items(descriptor, labels: dict[str, str], prefix: str = "") -> list[Item]:
    items = []
    for field in descriptor.fields:
        name = prefix + field.name
        if field.type == FieldDescriptor.TYPE_MESSAGE and not field.is_repeated:  # its items, flattened: name_item
            items += _items(field.message_type, _labels(field.message_type.name), f"{name}_")
            continue
        if field.type == FieldDescriptor.TYPE_BOOL:
            kind, length = "B", 1
        elif field.type in (FieldDescriptor.TYPE_ENUM, FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64,
                            FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_UINT32):
            kind, length = "9", 19
        elif field.name == "recorded_at" or field.name == "issued_at":
            kind, length = "T", 32
        elif DATE_ITEMS.fullmatch(field.name) and field.name != "move_out_destination_planned":
            kind, length = "D", 10
        elif field.is_repeated:
            kind, length = "X", 2000  # a list of item names, separated by ","
        else:
            kind, length = "X", CODE_LENGTHS.get(field.name, ITEM_LENGTHS.get(field.name, DEFAULT_LENGTH))
        items.append(Item(name, labels.get(field.name, ""), kind, length))
    return items


_RESIDENT = _items(records_pb2.ResidentRecord.DESCRIPTOR, _labels("ResidentRecord"))
FILES = (
    FileSpec("counters.csv", "採番: where each numbering stands (宛名番号, 世帯番号, 発行番号 …) at the old site",
             ("system", "name"), (Item("system", "システム (kizon / atena)", "X", 8), Item("name", "採番名", "X", 40),
                                  Item("value", "現在値", "9", 19))),
    FileSpec("history.csv", "住民票: every history entry (個人履歴番号) of every person, 除票 included",
             ("atena_number", "history_number"), tuple(_RESIDENT)),
    FileSpec("households.csv", "世帯: each household with current members (derived from history.csv; checked on load)",
             ("household_number",), (Item("household_number", "世帯番号", "X", 10),
                                     Item("householder_name", "世帯主氏名", "X", 60),
                                     Item("town_code", "住所_町字コード", "X", 7), Item("address", "住所", "X", 150),
                                     Item("members", "世帯員数 (現存)", "9", 19))),
    FileSpec("issuances.csv", "交付履歴: every certificate issued",
             ("issue_number",), tuple(_items(kizon_pb2.IssuanceRecord.DESCRIPTOR, _labels("IssuanceRecord")))),
    FileSpec("atena.csv", "宛名: each 団体内統合宛名 entry with the 住民票 last notified to it (record_ items)",
             ("unified_atena_number",), (Item("unified_atena_number", "団体内統合宛名番号", "X", 15),
                                         Item("individual_number", "個人番号", "X", 12),
                                         Item("atena_number", "宛名番号", "X", 15), Item("fugo", "符号", "X", 24))
             + tuple(_items(records_pb2.ResidentRecord.DESCRIPTOR, _labels("ResidentRecord"), "record_"))),
)
BY_NAME = {f.name: f for f in FILES}


class LayoutError(ValueError):
    """A file that does not follow the layout (names the file, line and item)."""


# -- records ↔ rows ----------------------------------------------------------------------------------------
def _to_cell(item: Item, field) -> callable:
    if item.type == "B":
        return lambda v: "1" if v else "0"
    if field.is_repeated:
        return ",".join
    return str


def _from_cell(item: Item, field) -> callable:
    if field.is_repeated:
        return lambda v: [x for x in v.split(",") if x]
    if item.type == "B":
        return lambda v: v == "1"
    if item.type == "9":
        return int
    return str


class Codec:
    """Turns records of one message type into the cells of a file's items (those with the prefix) and back."""

    _cache: dict = {}

    def __init__(self, spec_items, descriptor, prefix: str = ""):
        mine = [(i, path) for i in spec_items if i.name.startswith(prefix)
                for path in [_path(descriptor, i.name[len(prefix):])] if path]
        self.names = [i.name for i, _ in mine]
        self.fields = [".".join(f.name for f in path) for _, path in mine]
        self.getter = operator.attrgetter(*self.fields)
        self.to_cell = [_to_cell(i, path[-1]) for i, path in mine]
        # (item, field path, converter, the cell of the field's default: such cells are left unset, as protobuf does)
        self.from_cell = [(i.name, tuple(f.name for f in path), _from_cell(i, path[-1]), "0" if i.type in ("9", "B") else "")
                          for i, path in mine]

    @classmethod
    def of(cls, spec: FileSpec, message_class, prefix: str = "") -> "Codec":
        """The codec of a file's items for a message type (made once)."""
        key = (spec.name, message_class.DESCRIPTOR.full_name, prefix)
        if key not in cls._cache:
            cls._cache[key] = cls(spec.items, message_class.DESCRIPTOR, prefix)
        return cls._cache[key]

    def row(self, message) -> list[str]:
        """The cells of a record."""
        return [convert(value) for convert, value in zip(self.to_cell, self.getter(message))]

    def values(self, row: dict) -> dict:
        """A record's fields from a row (only those not at their default, as protobuf keeps them); the items of a
        message field as a dict of its own."""
        values: dict = {}
        for name, path, convert, default in self.from_cell:
            if row[name] != default and row[name] != "":
                into = values
                for part in path[:-1]:
                    into = into.setdefault(part, {})
                into[path[-1]] = convert(row[name])
        return values


def _path(descriptor, name: str) -> list | None:
    """The fields that lead to an item (a message field's items are named field_item), or None."""
    fields = descriptor.fields_by_name
    if name in fields and fields[name].type != FieldDescriptor.TYPE_MESSAGE:
        return [fields[name]]
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE and not field.is_repeated and name.startswith(field.name + "_"):
            rest = _path(field.message_type, name[len(field.name) + 1:])
            if rest:
                return [field] + rest
    return None


class _Checks:
    """The type and length checks of a file's items, grouped by kind for speed."""

    def __init__(self, spec: FileSpec):
        self.names = [i.name for i in spec.items]
        self.lengths = [(i.name, i.length) for i in spec.items]
        self.numbers = [i.name for i in spec.items if i.type == "9"]
        self.flags = [i.name for i in spec.items if i.type == "B"]
        self.dates = [i.name for i in spec.items if i.type == "D"]


_CHECKS: dict[str, _Checks] = {}
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def check_row(spec: FileSpec, line: int, row: dict) -> None:
    """Refuse a row that breaks the layout: too long, not a number, not a flag, not a date."""
    checks = _CHECKS.get(spec.name) or _CHECKS.setdefault(spec.name, _Checks(spec))
    for name, length in checks.lengths:
        if len(row[name]) > length:
            raise LayoutError(f"{spec.name} line {line}: {name} has {len(row[name])} characters (at most {length})")
    for name in checks.numbers:
        if row[name] and not row[name].isdigit():
            raise LayoutError(f"{spec.name} line {line}: {name} is not a number: {row[name]!r}")
    for name in checks.flags:
        if row[name] not in ("0", "1"):
            raise LayoutError(f"{spec.name} line {line}: {name} is not a flag (0 or 1): {row[name]!r}")
    for name in checks.dates:
        if row[name] and not DATE.fullmatch(row[name]):
            raise LayoutError(f"{spec.name} line {line}: {name} is not a date (YYYY-MM-DD): {row[name]!r}")


def rows_of(items, spec: FileSpec):
    """Rows of a file from migration items (as nodes export them)."""
    if spec.name == "counters.csv":
        for system, item in items:
            if item.WhichOneof("item") == "counter":
                yield [system, item.counter.name, str(item.counter.value)]
    elif spec.name == "history.csv":
        codec = Codec.of(spec, records_pb2.ResidentRecord)
        for _, item in items:
            if item.WhichOneof("item") == "history":
                yield codec.row(item.history)
    elif spec.name == "issuances.csv":
        codec = Codec.of(spec, kizon_pb2.IssuanceRecord)
        for _, item in items:
            if item.WhichOneof("item") == "issuance":
                yield codec.row(item.issuance)
    elif spec.name == "atena.csv":
        codec = Codec.of(spec, records_pb2.ResidentRecord, "record_")
        for _, item in items:
            if item.WhichOneof("item") == "atena":
                a = item.atena
                yield [a.unified_atena_number, a.individual_number, a.atena_number, a.fugo] + codec.row(a.record)
    elif spec.name == "households.csv":
        yield from household_rows([item.history for _, item in items if item.WhichOneof("item") == "history"])


def household_rows(history: list) -> list[list[str]]:
    """One row per household with current members, from every person's latest history entry."""
    latest = {}
    for record in history:
        if record.atena_number not in latest or latest[record.atena_number].history_number < record.history_number:
            latest[record.atena_number] = record
    households: dict[str, list] = {}
    for record in latest.values():
        if record.status == records_pb2.ResidentRecord.STATUS_CURRENT:
            households.setdefault(record.household_number, []).append(record)
    rows = []
    for number in sorted(households):
        members = households[number]
        head = next((m for m in members if m.relationship == "世帯主"), members[0])
        rows.append([number, head.householder_name or head.name_kanji, head.town_code, head.address, str(len(members))])
    return rows


# -- files -------------------------------------------------------------------------------------------------
def write_file(folder: Path, spec: FileSpec, rows) -> dict:
    """Write one file of the layout; its manifest entry (name, records, bytes, sha256)."""
    path = folder / spec.name
    digest, count, size = hashlib.sha256(), 0, 0
    with open(path, "wb") as out:
        def emit(cells):
            nonlocal size
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerow(cells)
            data = buffer.getvalue().encode("utf-8")
            digest.update(data)
            out.write(data)
            size += len(data)
        emit([i.name for i in spec.items])
        for cells in rows:
            emit(cells)
            count += 1
    return {"name": spec.name, "records": count, "bytes": size, "sha256": digest.hexdigest()}


def write_manifest(folder: Path, entries: list[dict], meta: dict) -> Path:
    """The manifest: layout and version, where the export came from, and each file's count and digest."""
    manifest = {"layout": LAYOUT, "version": VERSION, **meta, "files": entries}
    path = folder / MANIFEST
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def read_manifest(folder: Path) -> dict:
    """The manifest of an export, refused if it is of another layout or version."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LayoutError(f"{MANIFEST}: unreadable ({exc})") from None
    if manifest.get("layout") != LAYOUT or manifest.get("version") != VERSION:
        raise LayoutError(f"{MANIFEST}: layout {manifest.get('layout')} {manifest.get('version')} is not "
                          f"{LAYOUT} {VERSION}")
    return manifest


def file_digest(path: Path) -> str:
    """SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_rows(folder: Path, spec: FileSpec):
    """(line, row dict) of a file, each row checked against the layout."""
    with open(folder / spec.name, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != [i.name for i in spec.items]:
            raise LayoutError(f"{spec.name}: the header does not name the items of layout {VERSION}")
        for line, cells in enumerate(reader, start=2):
            if len(cells) != len(header):
                raise LayoutError(f"{spec.name} line {line}: {len(cells)} items, not {len(header)}")
            row = dict(zip(header, cells))
            check_row(spec, line, row)
            yield line, row


def items_from_files(folder: Path) -> tuple[list, list, list]:
    """The migration items of an export folder for kizon and for atena, rebuilt from the files, and the
    households as the file lists them (checked against the history by the caller)."""
    kizon, atena = [], []
    for _, row in read_rows(folder, BY_NAME["counters.csv"]):
        item = migration_pb2.MigrationItem(counter=migration_pb2.NumberingCounter(name=row["name"], value=int(row["value"])))
        (kizon if row["system"] == "kizon" else atena).append(item)
    spec = BY_NAME["history.csv"]
    codec = Codec.of(spec, records_pb2.ResidentRecord)
    for _, row in read_rows(folder, spec):
        kizon.append(migration_pb2.MigrationItem(history=records_pb2.ResidentRecord(**codec.values(row))))
    spec = BY_NAME["issuances.csv"]
    codec = Codec.of(spec, kizon_pb2.IssuanceRecord)
    for _, row in read_rows(folder, spec):
        kizon.append(migration_pb2.MigrationItem(issuance=kizon_pb2.IssuanceRecord(**codec.values(row))))
    spec = BY_NAME["atena.csv"]
    codec = Codec.of(spec, records_pb2.ResidentRecord, "record_")
    for _, row in read_rows(folder, spec):
        atena.append(migration_pb2.MigrationItem(atena=migration_pb2.AtenaRow(
            unified_atena_number=row["unified_atena_number"], individual_number=row["individual_number"],
            atena_number=row["atena_number"], fugo=row["fugo"], record=records_pb2.ResidentRecord(**codec.values(row)))))
    households = [[row[i.name] for i in BY_NAME["households.csv"].items]
                  for _, row in read_rows(folder, BY_NAME["households.csv"])]
    return kizon, atena, households


def markdown() -> str:
    """The layout as a document a vendor can write an importer from (docs/migration-layout.md)."""
    lines = [f"# Migration layout {VERSION} ({LAYOUT})", "",
             "Generated from `testbed/migration/layout.py` by `testbed migrate --layout`; a test keeps it current.", "",
             (__doc__ or "").split("\n\n", 1)[1].strip(), "",
             "## The manifest", "",
             f"`{MANIFEST}` (UTF-8 JSON): `layout` (`{LAYOUT}`), `version` (`{VERSION}`), `municipality` (地方公共団体コード), "
             "`source_site` and `target_site`, `created_at` (ISO 8601), `frozen_since` (when changes were closed), and "
             "`files`: for each file its `name`, `records` (lines after the header), `bytes` and `sha256` (of the "
             "whole file). An importer refuses an export whose layout or version it does not know, a file whose "
             "size or digest differs, and a record that breaks its item's type or length.", ""]
    for spec in FILES:
        lines += [f"## {spec.name}", "", spec.title + ".", "",
                  f"Key: {', '.join(spec.key)} (unique). Records in key order.", "",
                  "| # | item | label | type | length |", "|---|---|---|---|---|"]
        lines += [f"| {n} | `{i.name}` | {i.label} | {i.type} | {i.length} |" for n, i in enumerate(spec.items, 1)]
        lines.append("")
    lines += ["## Enumerations", "",
              "`status` (history.csv, record_status in atena.csv): 1 現存, 2 除票. `kind` (issuances.csv): "
              + ", ".join(f"{v.number} {v.name}" for v in kizon_pb2.CertificateKind.DESCRIPTOR.values) + ".", ""]
    return "\n".join(lines)
