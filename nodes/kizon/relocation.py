"""移行 of 既存住基 from one site to the next: what the register gives to an export, takes from an import, and
forgets on a wipe.

The export is everything the register holds that the next site must keep: the numbering counters (so that
宛名番号, 世帯番号 and 発行番号 go on where they stood), every 住民票 entry with its full history (除票
included), and the 交付履歴. The 依頼管理番号 ledger is not carried: a freeze settles every change first,
and a terminal's retry after the window is a new request. Approvals and bulk-output counts stay behind
with the site that granted them.
"""
from __future__ import annotations

import hashlib
import json

from nodes import certificates
from nodes.reasons import common as C
from nodes.kizon.parts import Changes
from nodes.kizon.register import INSERT_RESIDENT, resident_row
from protos import migration_pb2, records_pb2

BATCH = 2000  # rows per executemany of an import


class KizonSite:
    """The register's side of the Migration service (nodes/site.MigrationServicer)."""

    def __init__(self, store, municipality: str, changes: Changes):
        self.store = store
        self.municipality = municipality
        self.changes = changes

    def records(self) -> int:
        """住民票 entries held (every history entry)."""
        return self.store.one("SELECT COUNT(*) FROM history")[0]

    def pending_intents(self) -> int:
        """Changes sent to the CS and not yet settled here."""
        return self.changes.pending_count()

    def drain(self) -> None:
        """Push what is queued on: settle intents with the CS, deliver the feed to atena."""
        self.changes.drain()

    def export_items(self):
        """Counters, then every history entry by person and 個人履歴番号, then the 交付履歴."""
        db = self.store.db
        for name, value in db.execute("SELECT name, value FROM counters ORDER BY name").fetchall():
            yield migration_pb2.MigrationItem(counter=migration_pb2.NumberingCounter(name=name, value=value))
        for (blob,) in db.execute("SELECT record FROM history ORDER BY atena_number, history_number"):
            yield migration_pb2.MigrationItem(history=records_pb2.ResidentRecord.FromString(blob))
        for row in db.execute("SELECT * FROM issuances ORDER BY issue_number").fetchall():
            yield migration_pb2.MigrationItem(issuance=certificates.issuance_record(row))

    def digests(self):
        """(file, key, SHA-256) of every record, from the stored bytes (the same bytes give the same digest)."""
        db = self.store.db
        for name, value in db.execute("SELECT name, value FROM counters ORDER BY name").fetchall():
            yield "counters.csv", f"kizon/{name}", hashlib.sha256(str(value).encode()).digest()
        for atena, number, blob in db.execute("SELECT atena_number, history_number, record FROM history"):
            yield "history.csv", f"{atena}/{number}", hashlib.sha256(blob).digest()
        for row in db.execute("SELECT * FROM issuances").fetchall():
            cells = [v.hex() if isinstance(v, bytes) else v for v in row]  # (the 請求者 is kept as its message's bytes)
            yield "issuances.csv", row[0], hashlib.sha256(json.dumps(cells, ensure_ascii=False).encode()).digest()

    def import_items(self, items) -> migration_pb2.ImportSummary:
        """Write a whole export in one transaction; the residents table is rebuilt from each person's latest entry."""
        summary = migration_pb2.ImportSummary()
        latest: dict[str, records_pb2.ResidentRecord] = {}
        history, issuances, counters = [], [], []
        for item in items:
            kind = item.WhichOneof("item")
            if kind == "history":
                record = item.history
                if record.municipality_code != self.municipality:
                    raise C.MIGRATION_FOREIGN_RECORD(f"移行 rule: a 住民票 of {record.municipality_code} in the export of "
                                                     f"{self.municipality}")
                history.append((record.atena_number, record.history_number, record.SerializeToString()))
                if record.atena_number not in latest or latest[record.atena_number].history_number < record.history_number:
                    latest[record.atena_number] = record
            elif kind == "issuance":
                issuances.append(certificates.issuance_row(item.issuance))
            elif kind == "counter":
                counters.append((item.counter.name, item.counter.value))
            else:
                raise C.MIGRATION_UNKNOWN_ITEM(f"移行 rule: {kind or 'an empty item'} is not part of a 既存住基 export")
        residents = [resident_row(r, r.SerializeToString()) for r in latest.values()]
        with self.store.transaction() as db:
            for i in range(0, len(history), BATCH):
                db.executemany("INSERT INTO history VALUES (?,?,?)", history[i:i + BATCH])
            for i in range(0, len(residents), BATCH):
                db.executemany(INSERT_RESIDENT, residents[i:i + BATCH])
            db.executemany("INSERT INTO issuances VALUES (?,?,?,?,?,?,?,?,?,?,?)", issuances)
            db.executemany("INSERT INTO counters(name, value) VALUES (?,?) ON CONFLICT(name) DO UPDATE SET "
                           "value=excluded.value", counters)
        summary.history, summary.residents = len(history), len(residents)
        summary.issuances, summary.counters = len(issuances), len(counters)
        return summary

    def wipe(self) -> None:
        """Forget the register (a target rolled back)."""
        with self.store.transaction() as db:
            for table in ("history", "residents", "issuances", "counters", "approvals", "outputs", "disclosures"):
                db.execute(f"DELETE FROM {table}")
