"""The register: its storage (住民票, history, households) and the 照会 and bulk output it answers."""
from __future__ import annotations

import random

import hashlib

from google.protobuf.message import DecodeError

from nodes import audit, rules
from nodes.digests import Tree, as_dict, halves
from nodes.records import register_digest
from nodes.reasons import common as C
from nodes.reasons import kizon as K
from nodes.kizon.items import CURRENT
from nodes.kizon.parts import Disclosure, Records
from nodes.guard import current_call
from nodes.store import rows_in
from protos import kizon_pb2, records_pb2
from nodes.towns import town


# The ranges of the register (nodes/digests.py): the REGISTER_ITEMS digest of each 住民票, what the CS's must match.
TREE = Tree("residents", "resident_code", None, (("rx1", "rx2"),))
RESIDENT_COLUMNS = ("atena_number", "resident_code", "household_number", "history_number", "status", "town_code",
                    "record", "rx1", "rx2")
INSERT_RESIDENT = f"INSERT INTO residents ({', '.join(RESIDENT_COLUMNS)}) VALUES ({','.join('?' * len(RESIDENT_COLUMNS))})"


def resident_row(record: records_pb2.ResidentRecord, blob: bytes) -> tuple:
    """The residents table row of a 住民票 entry (RESIDENT_COLUMNS), its register digest with it."""
    return (record.atena_number, record.resident_code, record.household_number, record.history_number, record.status,
            record.town_code, blob, *halves(register_digest(record)))


def kept_digests(blob: bytes) -> tuple[int, int]:
    """(rx1, rx2) a stored 住民票 calls for, from its bytes (the scrubber's measure); bytes that are not a record
    are given a digest of the bytes, equal to no record's."""
    try:
        return halves(register_digest(records_pb2.ResidentRecord.FromString(blob)))
    except DecodeError:
        return halves(hashlib.sha1(b"unreadable:" + blob).digest())


def upgrade(store) -> int:
    """A register written before the tree of ranges: add its digest columns, fill them and build the ranges (once,
    at start); how many records were filled."""
    present = {r[1] for r in store.db.execute("PRAGMA table_info(residents)")}
    if "rx1" in present:
        return 0
    with store.transaction() as db:
        for column in ("rx1", "rx2"):
            db.execute(f"ALTER TABLE residents ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0")
        rows = db.execute("SELECT rowid, record FROM residents").fetchall()
        db.executemany("UPDATE residents SET rx1=?, rx2=? WHERE rowid=?", [(*kept_digests(b), i) for i, b in rows])
        TREE.rebuild(db)
    return len(rows)


class Register:
    """The residents, history and household tables: every read of them and every write of a 住民票 entry."""

    def __init__(self, runtime, municipality: str, place_name: str):
        self.rt = runtime
        self.municipality = municipality
        self.place_name = place_name
        self._rng = random.SystemRandom()  # 世帯番号 that do not lead from one to the next

    # -- reading the register ---------------------------------------------------------------------
    def person(self, resident_code: str) -> records_pb2.ResidentRecord:
        """The current entry of a person's 住民票 (除票 included); NOT_FOUND without one."""
        rules.require_resident_code(resident_code)
        found = self.rt.store.one("SELECT record FROM residents WHERE resident_code=?", (resident_code,))
        if found is None:
            raise C.RECORD_NOT_FOUND(f"照会: no 住民票 with 住民票コード {resident_code} in {self.municipality}")
        return records_pb2.ResidentRecord.FromString(found[0])

    def current(self, resident_code: str) -> records_pb2.ResidentRecord:
        """The 住民票 of a current resident; a 除票 is refused."""
        record = self.person(resident_code)
        if record.status != CURRENT:
            raise K.CURRENT_RESIDENT_REQUIRED(f"除票 rule: {resident_code} is no longer a resident of {self.municipality} "
                                              f"({record.removal_reason} {record.removal_date})")
        return record

    def members(self, household: str) -> list[records_pb2.ResidentRecord]:
        """The current members of a household (none when there is no such household)."""
        rows = self.rt.store.db.execute("SELECT record FROM residents WHERE household_number=? AND status=? ORDER BY atena_number",
                                        (household, CURRENT)).fetchall()
        return [records_pb2.ResidentRecord.FromString(r[0]) for r in rows]

    def household(self, household: str) -> list[records_pb2.ResidentRecord]:
        """The current members of a household that must exist."""
        rules.require_text(household, "世帯番号")
        members = self.members(household)
        if not members:
            raise K.HOUSEHOLD_NOT_FOUND(f"世帯 rule: no household {household} with current members in {self.municipality}")
        return members

    def shown(self, record: records_pb2.ResidentRecord) -> records_pb2.ResidentRecord:
        """The record as this caller may see it: 個人番号 masked without the permission."""
        if record.individual_number and not self.rt.may_see_number(current_call()):
            shown = records_pb2.ResidentRecord()
            shown.CopyFrom(record)
            shown.individual_number = "*" * 12
            return shown
        return record

    def history(self, atena_number: str) -> list[records_pb2.ResidentRecord]:
        """Every history entry (個人履歴番号) of a person, oldest first."""
        rows = self.rt.store.db.execute("SELECT record FROM history WHERE atena_number=? ORDER BY history_number",
                                        (atena_number,)).fetchall()
        return [records_pb2.ResidentRecord.FromString(r[0]) for r in rows]

    @staticmethod
    def _selection(town_code: str, include_removed: bool) -> tuple[str, tuple]:
        where, params = ["1=1"], []
        if town_code:
            where.append("town_code=?"), params.append(town_code)
        if not include_removed:
            where.append("status=?"), params.append(CURRENT)
        return " AND ".join(where), tuple(params)

    def count(self, town_code: str, include_removed: bool) -> int:
        """How many 住民票 an export of this selection gives."""
        where, params = self._selection(town_code, include_removed)
        return self.rt.store.scalar(f"SELECT COUNT(*) FROM residents WHERE {where}", params, 0)

    def select(self, town_code: str, include_removed: bool):
        """The 住民票 of an export of this selection, by 宛名番号."""
        where, params = self._selection(town_code, include_removed)
        cursor = self.rt.store.db.execute(f"SELECT record FROM residents WHERE {where} ORDER BY atena_number", params)
        for (blob,) in cursor:
            yield records_pb2.ResidentRecord.FromString(blob)

    def scan(self):
        """Every (住民票コード, stored record) of the residents table, a thousand at a time."""
        cursor = self.rt.store.db.execute("SELECT resident_code, record FROM residents")
        while rows := cursor.fetchmany(1000):
            yield rows

    def tree(self):
        """The register's tree of ranges, as digests.differing_leaves() walks it."""
        async def children(prefixes):
            return as_dict(TREE.children(self.rt.store.db, 0, prefixes))
        return children

    def in_ranges(self, prefixes: list[str]) -> dict[str, bytes]:
        """住民票コード → register digest computed from the stored 住民票, of the people in the given ranges."""
        found = {}
        for prefix in prefixes:
            for code, blob in self.rt.store.db.execute("SELECT resident_code, record FROM residents WHERE "
                                                       "resident_code >= ? AND resident_code < ?", TREE.bounds(prefix)):
                try:
                    found[code] = register_digest(records_pb2.ResidentRecord.FromString(blob))
                except DecodeError:
                    found[code] = b"unreadable"
        return found

    def existing(self, resident_code: str) -> records_pb2.ResidentRecord | None:
        """A person's record if they were ever registered here; a current resident may not move in."""
        found = self.rt.store.one("SELECT record FROM residents WHERE resident_code=?", (resident_code,))
        if found is None:
            return None
        record = records_pb2.ResidentRecord.FromString(found[0])
        if record.status == CURRENT:
            raise C.ONE_CURRENT_RESIDENCE(f"転入 rule (PIA Ⅲ(2)5): {resident_code} is already a resident of {self.municipality}")
        if record.removal_reason == "死亡":
            raise C.REMOVED_STAY_REMOVED(f"除票 rule (removed people stay removed): {resident_code} was recorded as dead in "
                                         f"{self.municipality} ({record.removal_date})")
        return record

    def taken(self, codes: list[str], atena_numbers: list[str]) -> list[str]:
        """Those of these 住民票コード already recorded, or else those of these 宛名番号."""
        db = self.rt.store.db
        return [r[0] for r in rows_in(db, "SELECT resident_code FROM residents WHERE resident_code", codes)] or \
            [r[0] for r in rows_in(db, "SELECT atena_number FROM residents WHERE atena_number", atena_numbers)]

    def new_household_number(self) -> str:
        """A 世帯番号 drawn at random among those never used here: a number one household has cannot lead to the
        next (sequential numbers let a reader walk every household)."""
        while True:
            number = f"{self._rng.randrange(1, 10**10):010d}"
            if self.rt.store.one("SELECT 1 FROM residents WHERE household_number=? LIMIT 1", (number,)) is None:
                return number

    def advance_household_numbers(self, records) -> None:
        """New households after a load must not reuse a loaded 世帯番号."""
        loaded = max((int(r.household_number) for r in records if r.household_number.isdigit()), default=0)
        self.rt.store.db.execute("INSERT INTO counters VALUES ('household_number', ?) ON CONFLICT(name) DO UPDATE SET "
                                 "value = MAX(value, excluded.value)", (loaded,))

    def address(self, address) -> records_pb2.Address:
        """An address on this municipality's 町字 list, with its full text and postal code."""
        place = town(self.municipality, address.town_code)
        if place is None:
            raise K.TOWN_CODE_UNKNOWN(f"町字 rule: {address.town_code!r} is not a 町字 of {self.municipality}")
        rules.require_text(address.address_line, "番地")
        full = records_pb2.Address()
        full.CopyFrom(address)
        full.postal_code = address.postal_code or place.postal_code
        full.address = f"{self.place_name}{place.name}{address.address_line}" + (f" {address.katagaki}" if address.katagaki else "")
        return full

    # -- writing the register ---------------------------------------------------------------------
    def write(self, db, records) -> None:
        """Inside a commit's transaction: each record becomes the person's current entry and a history entry."""
        blobs = [r.SerializeToString() for r in records]
        db.executemany(INSERT_RESIDENT + " ON CONFLICT(atena_number) DO UPDATE SET "
                       + ", ".join(f"{c}=excluded.{c}" for c in RESIDENT_COLUMNS[1:]),
                       [resident_row(r, blob) for r, blob in zip(records, blobs)])
        db.executemany("INSERT INTO history VALUES (?,?,?)",
                       [(r.atena_number, r.history_number, blob) for r, blob in zip(records, blobs)])

    def replace(self, record) -> None:
        """Rewrite a person's current entry in place (no history entry: the card's 交付状況)."""
        with self.rt.store.transaction() as db:
            db.execute("UPDATE residents SET record=?, rx1=?, rx2=? WHERE atena_number=?",
                       (record.SerializeToString(), *halves(register_digest(record)), record.atena_number))

    @staticmethod
    def find(db, resident_code: str) -> records_pb2.ResidentRecord | None:
        """Inside a transaction: a person's current entry, or None."""
        found = db.execute("SELECT record FROM residents WHERE resident_code=?", (resident_code,)).fetchone()
        return None if found is None else records_pb2.ResidentRecord.FromString(found[0])

    @staticmethod
    def append(db, record) -> None:
        """Inside a transaction: the next history entry of a person, who keeps their status and household."""
        blob = record.SerializeToString()
        db.execute("UPDATE residents SET history_number=?, record=?, rx1=?, rx2=? WHERE atena_number=?",
                   (record.history_number, blob, *halves(register_digest(record)), record.atena_number))
        db.execute("INSERT INTO history VALUES (?,?,?)", (record.atena_number, record.history_number, blob))


class Inquiry:
    """照会 and bulk output of the register, each counted by the bulk-output account."""

    def __init__(self, register: Records, disclosures: Disclosure):
        self.register = register
        self.disclosures = disclosures

    def resident(self, request) -> records_pb2.ResidentRecord:
        """住民票の照会: the current entry of a person's 住民票 (除票 included)."""
        audit.set_subject(request.resident_code)
        person = self.register.person(request.resident_code)
        self.disclosures.read(current_call(), [person.resident_code])
        return self.register.shown(person)

    def history(self, request) -> kizon_pb2.HistoryReply:
        """Every history entry (個人履歴番号) of a person, oldest first."""
        audit.set_subject(request.resident_code)
        person = self.register.person(request.resident_code)
        entries = self.register.history(person.atena_number)
        self.disclosures.read(current_call(), [person.resident_code])
        return kizon_pb2.HistoryReply(entries=[self.register.shown(r) for r in entries])

    def household(self, request) -> kizon_pb2.HistoryReply:
        """The current members of a household."""
        audit.set_subject(request.household_number)
        members = self.register.household(request.household_number)
        self.disclosures.read(current_call(), [m.resident_code for m in members])
        return kizon_pb2.HistoryReply(entries=[self.register.shown(r) for r in members])

    def export(self, request):
        """Bulk output: an operator's records over BULK_WINDOW_HOURS add up (split exports and reads count
        together); beyond BULK_OUTPUT_LIMIT only with a manager's approval for this operator, terminal, purpose
        and count."""
        call = current_call()
        count = self.register.count(request.town_code, request.include_removed)
        audit.set_subject(f"export:{count}")
        self.disclosures.export(call, request, count)
        for record in self.register.select(request.town_code, request.include_removed):
            yield self.register.shown(record)
