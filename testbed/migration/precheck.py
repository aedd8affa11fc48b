"""`testbed migrate precheck M`: 移行前のデータクレンジング — the records that would fail a migration, by rule, with counts.

Run weeks before the move, on the live register: it changes nothing and freezes nothing (the Migration service's
Export refuses an open site, so the live register is read as `testbed check` reads it: kizon's and the CS's stores,
read-only, while the nodes go on writing). The same rules run on an export folder or on records in memory
(`check_records`), so that a generator's planted records can be shown found (testbed/migration/plant.py).

Most rules look at each person's latest history entry (the person as they stand now); the rules on an item's own
form (a check digit, a code, a character the target cannot hold) look at every entry, since every entry is carried
(history.csv). reading-unconfirmed is a warning: it is counted, but does not fail the precheck.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from operator import attrgetter
from pathlib import Path
from typing import Callable, Iterable

import grpc
from google.protobuf.descriptor import FieldDescriptor

from nodes import characters
from nodes.clock import office_today
from nodes.kizon.items import KANA
from nodes.numbers import individual_number_valid, resident_code_valid
from nodes.records import register_differences, register_digest
from nodes.towns import towns
from protos import migration_pb2, migration_pb2_grpc, records_pb2
from testbed.client import channel, console_cert
from testbed.migration import layout


@dataclass(frozen=True)
class Rule:
    """One rule of the precheck: its id, what it finds, whether it only warns, whether it reads every history entry."""

    id: str
    description: str
    warning: bool = False
    every_entry: bool = False  # else each person's latest entry


RULES = (
    Rule("kizon-cs-difference", "a 住民票 whose REGISTER_ITEMS differ from the CS's 本人確認情報, or held on one side only"),
    Rule("resident-code", "a 住民票コード that is not 11 digits with its check digit, or held by two people",
         every_entry=True),
    Rule("individual-number", "a 個人番号 that is not 12 digits with its check digit", every_entry=True),
    Rule("town-code", "a 町字コード not on the municipality's 町字 list"),
    Rule("sex-code", "a 性別 that is not 1 (男), 2 (女) or 9 (不詳)", every_entry=True),
    Rule("household-without-head", "a 世帯 of current members none of whom is 世帯主"),
    Rule("dates-out-of-order", "生年月日 after 住民となった日, 住所を定めた日 or 異動年月日; 住民となった日 after 住所を定めた日; "
         "a date in the future, or not a date"),
    Rule("reading-missing", "no 振り仮名 (氏名), or a reading not in katakana"),
    Rule("reading-unconfirmed", "a current resident's 振り仮名 not confirmed by 届出 or 確認 (name_kana_confirmed)",
         warning=True),
    Rule("characters-outside-target", "a character the target cannot hold (by default a private-use 外字, unidentified, "
         "or a character outside JIS X 0213 with no 代替文字)", every_entry=True),
)
BY_ID = {r.id: r for r in RULES}
TARGETS = {
    "jisx0213": "JIS X 0213 with 代替文字: a private-use 外字, or a character outside JIS X 0213 with no 代替文字, fails",
    "mj": "文字情報基盤 (MJ): every character of ISO/IEC 10646 but a private-use one",
}
EXAMPLES = 3  # findings shown per rule in the table (the JSON holds every one)
SEXES = frozenset({"1", "2", "9"})
HEAD = "世帯主"
# The dates of a 住民票 that cannot lie ahead of today (a 転出予定 or a 在留期間の満了 may: they are not here).
PAST_DATES = ("birth_date", "resident_since", "address_since", "change_date", "notification_date", "removal_date")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Every text a history entry carries, the 届出人's too: a character anywhere in it must reach the target.
_STRING = FieldDescriptor.TYPE_STRING
TEXT_ITEMS = tuple(f.name for f in records_pb2.ResidentRecord.DESCRIPTOR.fields if f.type == _STRING) \
    + tuple(f"notifier.{f.name}" for f in records_pb2.Requester.DESCRIPTOR.fields if f.type == _STRING)
_texts = attrgetter(*TEXT_ITEMS)
SUPPLEMENTARY_PRIVATE_USE = range(0xF0000, 0x110000)  # planes 15 and 16: vendor 外字 beyond the BMP's area
REMOVED = records_pb2.ResidentRecord.STATUS_REMOVED


@dataclass(frozen=True)
class Finding:
    """One record a rule finds: who (宛名番号, 住民票コード, the history entry), which item, and what is wrong."""

    rule: str
    atena_number: str
    resident_code: str
    item: str
    detail: str
    history_number: int = 0  # 個人履歴番号 of the entry (0: none, e.g. a 本人確認情報 held at the CS alone)

    def line(self) -> str:
        """The finding as an example line of the table (the entry named where the rule reads every entry)."""
        who = "/".join(x for x in (self.atena_number, self.resident_code) if x) or "?"
        entry = f"#{self.history_number}" if self.history_number and BY_ID[self.rule].every_entry else ""
        return f"{who}{entry} {self.item}: {self.detail}"


@dataclass
class Precheck:
    """What the precheck found: per rule its findings, with what was looked at and where it came from."""

    municipality: str
    target: str
    entries: int = 0
    people: int = 0
    compared_with_cs: bool = False
    findings: dict[str, list[Finding]] = field(default_factory=lambda: {r.id: [] for r in RULES})
    source: dict = field(default_factory=dict)
    seconds: float = 0.0

    def count(self, rule: str) -> int:
        """How many findings a rule has."""
        return len(self.findings[rule])

    def people_of(self, rule: str) -> int:
        """How many people a rule finds (a person may be found in several entries or items)."""
        return len({f.atena_number or f.resident_code for f in self.findings[rule]})

    @property
    def failures(self) -> int:
        """Findings of the rules that fail a migration."""
        return sum(len(v) for k, v in self.findings.items() if not BY_ID[k].warning)

    @property
    def warnings(self) -> int:
        """Findings of the warning rules."""
        return sum(len(v) for k, v in self.findings.items() if BY_ID[k].warning)

    @property
    def ok(self) -> bool:
        """Whether nothing would fail the migration (warnings aside)."""
        return not self.failures

    def as_dict(self) -> dict:
        """The precheck as JSON-ready data: every finding of every rule."""
        return {
            "municipality": self.municipality, "target": self.target, "ok": self.ok, "failures": self.failures,
            "warnings": self.warnings, "entries": self.entries, "people": self.people,
            "compared_with_cs": self.compared_with_cs, "source": self.source, "seconds": round(self.seconds, 3),
            "rules": [{"id": r.id, "description": r.description, "severity": "warning" if r.warning else "failure",
                       "looks_at": "every entry" if r.every_entry else "latest entry",
                       "checked": r.id != "kizon-cs-difference" or self.compared_with_cs,
                       "count": self.count(r.id), "people": self.people_of(r.id),
                       "findings": [{k: v for k, v in asdict(f).items() if k != "rule"} for f in self.findings[r.id]]}
                      for r in RULES]}

    def table(self, examples: int = EXAMPLES) -> list[str]:
        """The precheck as the command prints it: a verdict, then a line per rule with its count and first examples."""
        verdict = "nothing would fail the migration" if self.ok else \
            f"{self.failures} findings would fail the migration"
        compared = "" if self.compared_with_cs else ", not compared with the CS"
        lines = [f"移行前チェック {self.municipality} (target {self.target}): {verdict}; {self.warnings} warnings "
                 f"({self.people} people, {self.entries} entries{compared}"
                 f", {self.seconds:.2f} s)",
                 f"  {'rule':28s} {'count':>7s} {'people':>7s}  examples"]
        for r in RULES:
            name = r.id + (" (warn)" if r.warning else "")
            if r.id == "kizon-cs-difference" and not self.compared_with_cs:
                lines.append(f"  {name:28s} {'-':>7s} {'-':>7s}  not checked: no 本人確認情報 of the CS to compare with")
                continue
            found = self.findings[r.id]
            shown = "; ".join(f.line() for f in found[:examples]) + (f"; … {len(found) - examples} more" if
                                                                      len(found) > examples else "")
            lines.append(f"  {name:28s} {len(found):7d} {self.people_of(r.id):7d}  {shown}")
        return lines


def write_json(precheck: Precheck, path: Path) -> None:
    """The precheck as JSON (every finding)."""
    Path(path).write_text(json.dumps(precheck.as_dict(), ensure_ascii=False, indent=1), encoding="utf-8")


# -- the rules ---------------------------------------------------------------------------------------------
def _private_use(code: int) -> bool:
    return code in characters.PRIVATE_USE or code in SUPPLEMENTARY_PRIVATE_USE


@lru_cache(maxsize=None)
def _code_point_fits(char: str, target: str) -> bool:
    """Whether one code point, standing alone, reaches the target as it is (selectors never do alone)."""
    if _private_use(ord(char)) or characters.is_selector(char):
        return False
    return target == "mj" or characters.in_jisx0213(char)


@lru_cache(maxsize=65536)
def _character_fits(character: str, target: str) -> bool:
    """Whether a character (a code point with its selectors) can be held by the target."""
    base = character[0]
    if _private_use(ord(base)) or characters.is_selector(base):
        return False  # an unidentified vendor 外字, or a selector with no character before it
    if target == "mj":
        return True
    return (len(character) == 1 and characters.in_jisx0213(base)) or characters.substitute_char(character) is not None


def _what(character: str) -> str:
    code = ord(character[0])
    if _private_use(code):
        return "private-use 外字, unidentified"
    if characters.is_selector(character[0]):
        return "a variation selector with no character before it"
    return f"{characters.kind(character)}, no 代替文字"


# Per target, the code points met so far that fit standing alone: a text made only of them fits, checked in one C call.
_FITTING: dict[str, set[str]] = {t: set(map(chr, range(0x20, 0x7F))) for t in TARGETS}


def _fits(text: str, target: str) -> bool:
    """Whether every code point of a text fits the target standing alone (then the whole text does)."""
    fitting = _FITTING[target]
    if fitting.issuperset(text):
        return True
    fitting.update(c for c in set(text) - fitting if _code_point_fits(c, target))
    return fitting.issuperset(text)


def _misfits(text: str, target: str) -> list[tuple[int, str]]:
    """(1-based position, character) of each character of a text that the target cannot hold."""
    if _fits(text, target):
        return []
    return [(n, c) for n, c in enumerate(characters.characters(text), start=1) if not _character_fits(c, target)]


def _date_problems(record, today: str) -> list[tuple[str, str]]:
    """(item, what is wrong) of the dates of an entry: order, future, form."""
    problems = []
    dates = {}
    for name in PAST_DATES:
        value = getattr(record, name)
        if not value:
            continue
        if not _is_date(value):
            problems.append((name, f"not a date: {value!r}"))
            continue
        dates[name] = value
        if value > today:
            problems.append((name, f"{value} is in the future (today {today})"))
    if not record.birth_date:
        problems.append(("birth_date", "no 生年月日"))
    birth = dates.get("birth_date")
    if birth:
        for name in ("resident_since", "address_since", "change_date"):
            if name in dates and dates[name] < birth:
                problems.append((name, f"{name} {dates[name]} before 生年月日 {birth}"))
    if "resident_since" in dates and "address_since" in dates and dates["resident_since"] > dates["address_since"]:
        problems.append(("resident_since", f"住民となった日 {dates['resident_since']} after 住所を定めた日 "
                                           f"{dates['address_since']}"))
    return problems


@lru_cache(maxsize=1 << 16)
def _is_date(value: str) -> bool:
    """Whether value is a date written YYYY-MM-DD (dates repeat: birthdays, days of moving)."""
    if not DATE.fullmatch(value):
        return False
    try:
        dt.date.fromisoformat(value)
        return True
    except ValueError:
        return False


def _reading_problems(record) -> list[tuple[str, str]]:
    """(item, what is wrong) of the readings: 氏名's is required; every reading is katakana."""
    if not record.name_kana:
        problems = [("name_kana", "no 振り仮名")]
    elif not KANA.fullmatch(record.name_kana):
        problems = [("name_kana", f"not katakana: {record.name_kana!r}")]
    else:
        problems = []
    for name in ("former_surname_kana", "alias_kana"):
        value = getattr(record, name)
        if value and not KANA.fullmatch(value):
            problems.append((name, f"not katakana: {value!r}"))
    return problems


def person_of(record) -> str:
    """The person an entry is of: the 宛名番号 (for good), else the 住民票コード (records made outside a register)."""
    return record.atena_number or record.resident_code


def latest_entries(records: Iterable) -> list:
    """Each person's latest history entry, in the order first met."""
    latest: dict = {}
    for record in records:
        key = person_of(record)
        held = latest.get(key)
        if held is None or held.history_number < record.history_number:
            latest[key] = record
    return list(latest.values())


def check_records(municipality: str, records: list, cs_digests: dict[str, bytes] | None, target: str = "jisx0213", *,
                  today: str | None = None,
                  cs_identity: Callable[[str], records_pb2.IdentityInfo | None] | None = None) -> Precheck:
    """Every rule on a municipality's 住民票 (ResidentRecord, any number of history entries per person). cs_digests:
    住民票コード → register_digest of the CS's 本人確認情報 (None: kizon-cs-difference is not checked); cs_identity, if
    given, looks up the CS's 本人確認情報 to name the items that differ; today: ISO date (the office's by default)."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}: the targets are {', '.join(TARGETS)}")
    started = time.perf_counter()
    today = today or office_today().isoformat()
    result = Precheck(municipality, target, entries=len(records), compared_with_cs=cs_digests is not None)
    found = result.findings

    def add(rule: str, record, item: str, detail: str) -> None:
        found[rule].append(Finding(rule, record.atena_number, record.resident_code, item, detail,
                                   record.history_number))

    for record in records:  # the rules on an item's own form: every entry
        if not resident_code_valid(record.resident_code):
            add("resident-code", record, "resident_code", f"{record.resident_code!r} is not 11 digits with its check "
                "digit" if record.resident_code else "no 住民票コード")
        if record.individual_number and not individual_number_valid(record.individual_number):
            # (none is no finding: a 除票 from before the 番号制度, or one national has not numbered yet)
            add("individual-number", record, "individual_number", f"{record.individual_number!r} is not 12 digits with "
                "its check digit")
        if record.sex not in SEXES:
            add("sex-code", record, "sex", f"{record.sex!r} is not 1, 2 or 9")
        texts = _texts(record)
        if not _fits("".join(texts), target):  # (the common case, every text of the entry fitting, in one look)
            for name, text in zip(TEXT_ITEMS, texts):
                bad = _misfits(text, target)
                if bad:
                    shown = ", ".join(f"{n}: U+{ord(c[0]):04X} ({_what(c)})" for n, c in bad[:3])
                    add("characters-outside-target", record, name, f"{len(bad)} character{'s' * (len(bad) > 1)} the "
                        f"target {target} cannot hold, at {shown}")

    latest = latest_entries(records)
    result.people = len(latest)
    town_codes = {t.code for t in towns(municipality)}
    households: dict[str, list] = defaultdict(list)
    holders: dict[str, str] = {}
    for record in latest:  # the rules on the person as they stand now: the latest entry
        if record.resident_code and holders.get(record.resident_code, person_of(record)) != person_of(record):
            add("resident-code", record, "resident_code", f"{record.resident_code} is also the 住民票コード of 宛名番号 "
                f"{holders[record.resident_code]}")
        holders.setdefault(record.resident_code, person_of(record))
        if record.town_code not in town_codes:
            add("town-code", record, "town_code", f"{record.town_code!r} is not a 町字 of {municipality}"
                if record.town_code else "no 町字コード")
        problems = _date_problems(record, today)
        if problems:
            add("dates-out-of-order", record, problems[0][0], "; ".join(p[1] for p in problems))
        for item, detail in _reading_problems(record):
            add("reading-missing", record, item, detail)
        if record.status != REMOVED:
            households[record.household_number].append(record)
            if not record.name_kana_confirmed:
                add("reading-unconfirmed", record, "name_kana_confirmed", "振り仮名 presumed, not confirmed")
    for number in sorted(households):
        members = households[number]
        if not number:
            for record in members:
                add("household-without-head", record, "household_number", "a current resident in no 世帯")
        elif not any(m.relationship == HEAD for m in members):
            first = min(members, key=lambda m: (m.atena_number, m.resident_code))
            add("household-without-head", first, "relationship", f"世帯 {number}: {len(members)} current members, "
                f"none is {HEAD} ({', '.join(sorted({m.relationship or '?' for m in members}))})")
    if cs_digests is not None:
        _compare_with_cs(result, latest, cs_digests, cs_identity)
    result.seconds = time.perf_counter() - started
    return result


def _compare_with_cs(result: Precheck, latest: list, cs_digests: dict[str, bytes], cs_identity) -> None:
    """kizon-cs-difference: the REGISTER_ITEMS of each person's latest entry against the CS's 本人確認情報."""
    found = result.findings["kizon-cs-difference"]
    ours = set()
    for record in latest:
        ours.add(record.resident_code)
        theirs = cs_digests.get(record.resident_code)
        if theirs is None:
            found.append(Finding("kizon-cs-difference", record.atena_number, record.resident_code, "resident_code",
                                 "held here, not at the CS", record.history_number))
        elif theirs != register_digest(record):
            info = cs_identity(record.resident_code) if cs_identity else None
            items = register_differences(record, info) if info is not None else []
            found.append(Finding("kizon-cs-difference", record.atena_number, record.resident_code,
                                 ",".join(items) or "REGISTER_ITEMS",
                                 f"differs from the CS's 本人確認情報 in {', '.join(items)}" if items else
                                 "differs from the CS's 本人確認情報 (digest)", record.history_number))
    for code in sorted(c for c in cs_digests if c not in ours):
        found.append(Finding("kizon-cs-difference", "", code, "resident_code", "held at the CS, no 住民票 here"))


# -- where the records come from ---------------------------------------------------------------------------
class PrecheckError(RuntimeError):
    """The precheck cannot read what it checks (names what and why)."""


def _read_only(path: Path) -> sqlite3.Connection:
    """A node's store opened read-only (WAL: the node goes on writing; nothing here can change it)."""
    if not path.exists():
        raise PrecheckError(f"no store at {path}: has the network been started (`testbed up`)?")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    db.execute("PRAGMA query_only=1")
    db.execute("PRAGMA busy_timeout=5000")
    return db


def register_entries(network, municipality: str) -> list[records_pb2.ResidentRecord]:
    """Every history entry of kizon's register (除票 included), read from its store in one read transaction."""
    kizon = network.topology.find("kizon", municipality)
    db = _read_only(network.state_dir / "data" / kizon.name / "store.sqlite")
    try:
        return [records_pb2.ResidentRecord.FromString(blob) for (blob,) in db.execute("SELECT record FROM history")]
    finally:
        db.close()


def cs_register(network, municipality: str) -> tuple[dict[str, bytes], Callable]:
    """The CS's register_digest of each 本人確認情報 of the municipality (computed from the stored record, as its
    RegisterDigests does), and a look-up of one 本人確認情報 by 住民票コード."""
    cs = network.topology.find("cs", municipality)
    db = _read_only(network.state_dir / "data" / cs.name / "store.sqlite")
    try:
        blobs = dict(db.execute("SELECT resident_code, info FROM identity WHERE municipality_code=?", (municipality,)))
    finally:
        db.close()
    digests = {code: register_digest(records_pb2.IdentityInfo.FromString(blob)) for code, blob in blobs.items()}
    return digests, lambda code: records_pb2.IdentityInfo.FromString(blobs[code]) if code in blobs else None


def site_state(network, municipality: str) -> dict:
    """kizon's site as its Migration service reports it to the console (frozen or open, changes still queued): read,
    never changed; {"unreachable": why} when kizon does not answer."""
    kizon = network.topology.find("kizon", municipality)
    try:
        with channel(kizon, console_cert(network.pki, "kizon")) as ch:
            state = migration_pb2_grpc.MigrationStub(ch).GetSiteState(migration_pb2.FreezeRequest(), timeout=10)
    except grpc.RpcError as exc:
        return {"node": kizon.name, "unreachable": f"{exc.code().name}: {exc.details()}"}
    return {"node": state.node, "frozen": state.frozen, "reason": state.reason,
            "pending_intents": state.pending_intents, "outbox_pending": state.outbox_pending, "records": state.records}


def from_network(network, municipality: str, target: str = "jisx0213", *, today: str | None = None) -> Precheck:
    """The precheck of a municipality's live register against its CS, without freezing anything."""
    before = site_state(network, municipality)
    records = register_entries(network, municipality)
    digests, identity = cs_register(network, municipality)
    result = check_records(municipality, records, digests, target, today=today, cs_identity=identity)
    kizon, cs = network.topology.find("kizon", municipality), network.topology.find("cs", municipality)
    result.source = {"kind": "network", "kizon": kizon.name, "cs": cs.name, "site": before,
                     "read": "the stores of kizon (history) and the CS (identity), read-only while the nodes run"}
    if before.get("pending_intents"):  # (kizon's store and the CS's are read one after the other)
        result.source["note"] = (f"{before['pending_intents']} changes were on their way to the CS: a "
                                 "kizon-cs-difference may be one of them; run again to see whether it stays")
    return result


def from_export(folder: Path, municipality: str, target: str = "jisx0213", *, network=None,
                today: str | None = None) -> Precheck:
    """The precheck of an export, in the testbed's migration layout (history.csv) or in a vendor's 中間標準レイアウト
    (個人.csv, its 外字 identified on reading: one left unidentified fails characters-outside-target), against the
    live CS when a network is given (else kizon-cs-difference is not checked)."""
    folder = Path(folder)
    try:
        kind = json.loads((folder / layout.MANIFEST).read_text(encoding="utf-8")).get("layout")
    except (OSError, ValueError, AttributeError) as exc:
        raise PrecheckError(f"{folder / layout.MANIFEST}: unreadable ({exc})") from None
    if kind == layout.LAYOUT:
        manifest = layout.read_manifest(folder)
        kizon_items, _, _ = layout.items_from_files(folder)
        records = [item.history for item in kizon_items if item.WhichOneof("item") == "history"]
    else:
        from testbed.migration import intermediate  # (read only for a vendor's export)
        if kind != intermediate.LAYOUT:
            raise PrecheckError(f"{folder}: layout {kind!r} is neither the testbed's ({layout.LAYOUT}) nor a vendor's "
                                f"({intermediate.LAYOUT})")
        export = intermediate.read_export(folder)
        manifest, records = export.manifest, export.records
    if manifest.get("municipality") not in (None, municipality):
        raise PrecheckError(f"the export in {folder} is of {manifest['municipality']}, not {municipality}")
    digests, identity = cs_register(network, municipality) if network is not None else (None, None)
    result = check_records(municipality, records, digests, target, today=today, cs_identity=identity)
    result.source = {"kind": "export", "layout": kind, "folder": str(folder),
                     "created_at": manifest.get("created_at", "")}
    return result
