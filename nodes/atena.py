"""団体内統合宛名システム: same-person matching by 個人番号, the 団体内統合宛名番号, 符号, and the 副本 feed.

atena asks national for 符号 directly (never through the CS) and registers the 副本 on its own
tenant of the 中間サーバ from a durable outbox.
"""
from __future__ import annotations

import hashlib

import grpc

from nodes import audit, rules, site
from nodes.reasons import common as C, platform as R
from nodes.office import OfficeLink
from nodes.outbox import Target
from nodes.store import next_counter
from nodes.weaken import weakened
from protos import (atena_pb2, atena_pb2_grpc, intermediate_pb2, intermediate_pb2_grpc, migration_pb2,
                    migration_pb2_grpc, national_pb2, national_pb2_grpc, records_pb2)

SERVICE_NAME = atena_pb2.DESCRIPTOR.services_by_name["Atena"].full_name
SCHEMA = site.SCHEMA + """
CREATE TABLE IF NOT EXISTS entries (
    unified_atena_number TEXT PRIMARY KEY,  -- 団体内統合宛名番号
    individual_number TEXT UNIQUE,          -- 個人番号: the same-person key
    atena_number TEXT NOT NULL UNIQUE,      -- kizon's 宛名番号
    fugo TEXT,                              -- 符号 from national
    record BLOB NOT NULL
);
"""


def add_to_server(servicer, server) -> None:
    """Register the servicer on a gRPC server."""
    atena_pb2_grpc.add_AtenaServicer_to_server(servicer, server)
    migration_pb2_grpc.add_MigrationServicer_to_server(servicer.site, server)
    atena_pb2_grpc.add_OfficeLinkServicer_to_server(servicer.office, server)  # 庁内連携 (nodes/office.py)


class Servicer(atena_pb2_grpc.AtenaServicer):
    """The 番号連携 side of the municipality."""

    def __init__(self, runtime):
        self.rt = runtime
        self.national = runtime.stub(national_pb2_grpc.NationalServerStub, "national")
        intermediate = runtime.stub(intermediate_pb2_grpc.IntermediateServerStub, "intermediate")
        self.outbox = runtime.use_outbox({"intermediate": Target(intermediate.RegisterCopies, intermediate_pb2.CopyBatch)})
        self.site = site.MigrationServicer(runtime, AtenaSite(self))  # 移行: the freeze, export and import
        self.office = OfficeLink(runtime)  # 庁内連携: the office systems read the 宛名

    async def NotifyResidentChanges(self, request, context):
        """異動の連携: find or make each person's entry, get a 符号, queue the 副本 for the 中間サーバ."""
        self.site.state.refuse_if_frozen()  # (kizon's outbox keeps the change and delivers it after the window)
        for item in request.items:
            record = item.record
            rules.require_text(record.atena_number, "宛名番号")
            if record.individual_number:
                rules.require_individual_number(record.individual_number)
            if record.municipality_code != self.rt.node.municipality:
                raise R.ATENA_OWN_MUNICIPALITY(f"市町村コード rule: this atena serves {self.rt.node.municipality}")
        if request.items:
            audit.set_batch_subject(i.record.resident_code for i in request.items)
        fugos, wanted = {}, {}
        for item in request.items:
            record = item.record
            existing = self._find(record)
            if existing and existing[1]:
                fugos[record.atena_number] = existing[1]
            elif record.individual_number:
                wanted[record.atena_number] = record.individual_number
        if wanted:
            # One request for the batch, before the transaction: no write is held open across a network call.
            try:
                reply = await self.national.IssueFugos(national_pb2.FugoBatch(individual_numbers=list(wanted.values())),
                                                       timeout=self.rt.peer_timeout)
            except grpc.aio.AioRpcError as exc:
                raise C.PEER_UNAVAILABLE(f"符号 request to national failed: {exc.details()}") from None
            fugos.update({atena: reply.fugo[number] for atena, number in wanted.items()})
        replies = atena_pb2.AtenaReplies()
        with self.rt.store.transaction() as db:
            for item in request.items:
                record = item.record
                fugo = fugos.get(record.atena_number)
                existing = self._find(record)
                unified = existing[0] if existing else f"{next_counter(db, 'unified_atena_number'):015d}"
                db.execute(
                    "INSERT INTO entries VALUES (?,?,?,?,?) ON CONFLICT(unified_atena_number) DO UPDATE SET "
                    "individual_number=excluded.individual_number, atena_number=excluded.atena_number, "
                    "fugo=COALESCE(excluded.fugo, entries.fugo), record=excluded.record",
                    (unified, record.individual_number or None, record.atena_number, fugo, record.SerializeToString()),
                )
                if fugo:
                    copy = records_pb2.ResidentRecord()
                    copy.CopyFrom(record)
                    if not weakened("number-in-copy"):
                        copy.ClearField("individual_number")  # 符号, never the 個人番号, leaves the municipality
                    self.outbox.put(db, "intermediate", intermediate_pb2.CopyRegistration(
                        unified_atena_number=unified, fugo=fugo, record=copy))
                replies.replies.add(unified_atena_number=unified, fugo=fugo or "")
        self.outbox.wake("intermediate")
        return replies

    def _find(self, record):
        """(団体内統合宛名番号, 符号) of the same person: by 個人番号, else by 宛名番号."""
        if record.individual_number:
            row = self.rt.store.one("SELECT unified_atena_number, fugo FROM entries WHERE individual_number=?",
                                    (record.individual_number,))
            if row:
                return row
        return self.rt.store.one("SELECT unified_atena_number, fugo FROM entries WHERE atena_number=?", (record.atena_number,))

    async def GetEntry(self, request, context):
        """The 団体内統合宛名 entry of a person."""
        audit.set_subject(request.unified_atena_number)
        row = self.rt.store.one("SELECT unified_atena_number, individual_number, atena_number, fugo FROM entries "
                                "WHERE unified_atena_number=?", (request.unified_atena_number,))
        if row is None:
            raise C.RECORD_NOT_FOUND(f"団体内統合宛名番号 {request.unified_atena_number} is not known here")
        return atena_pb2.AtenaEntry(unified_atena_number=row[0], individual_number=row[1] or "", atena_number=row[2], fugo=row[3] or "")


class AtenaSite:
    """The 宛名 side of the Migration service: every entry with the 住民票 it was last notified, and the counters."""

    def __init__(self, servicer):
        self.atena = servicer
        self.store = servicer.rt.store

    def records(self) -> int:
        """宛名 entries held."""
        return self.store.one("SELECT COUNT(*) FROM entries")[0]

    def pending_intents(self) -> int:
        """atena makes no changes of its own that wait for an answer."""
        return 0

    def drain(self) -> None:
        """Deliver the queued 副本 to the 中間サーバ now."""
        self.atena.outbox.wake("intermediate")

    def export_items(self):
        """Counters, then every entry by 団体内統合宛名番号."""
        db = self.store.db
        for name, value in db.execute("SELECT name, value FROM counters ORDER BY name").fetchall():
            yield migration_pb2.MigrationItem(counter=migration_pb2.NumberingCounter(name=name, value=value))
        for unified, number, atena_number, fugo, blob in db.execute(
                "SELECT unified_atena_number, individual_number, atena_number, fugo, record FROM entries "
                "ORDER BY unified_atena_number"):
            yield migration_pb2.MigrationItem(atena=migration_pb2.AtenaRow(
                unified_atena_number=unified, individual_number=number or "", atena_number=atena_number, fugo=fugo or "",
                record=records_pb2.ResidentRecord.FromString(blob)))

    def digests(self):
        """(file, key, SHA-256) of every entry and counter, from the stored bytes."""
        db = self.store.db
        for name, value in db.execute("SELECT name, value FROM counters ORDER BY name").fetchall():
            yield "counters.csv", f"atena/{name}", hashlib.sha256(str(value).encode()).digest()
        for unified, number, atena_number, fugo, blob in db.execute(
                "SELECT unified_atena_number, individual_number, atena_number, fugo, record FROM entries"):
            head = f"{unified}|{number or ''}|{atena_number}|{fugo or ''}|".encode()
            yield "atena.csv", unified, hashlib.sha256(head + blob).digest()

    def import_items(self, items) -> migration_pb2.ImportSummary:
        """Write a whole export in one transaction."""
        entries, counters = [], []
        for item in items:
            kind = item.WhichOneof("item")
            if kind == "atena":
                row = item.atena
                if row.record.municipality_code != self.atena.rt.node.municipality:
                    raise C.MIGRATION_FOREIGN_RECORD(f"移行 rule: an entry of {row.record.municipality_code} in the export of "
                                                     f"{self.atena.rt.node.municipality}")
                entries.append((row.unified_atena_number, row.individual_number or None, row.atena_number,
                                row.fugo or None, row.record.SerializeToString()))
            elif kind == "counter":
                counters.append((item.counter.name, item.counter.value))
            else:
                raise C.MIGRATION_UNKNOWN_ITEM(f"移行 rule: {kind or 'an empty item'} is not part of a 宛名 export")
        with self.store.transaction() as db:
            db.executemany("INSERT INTO entries VALUES (?,?,?,?,?)", entries)
            db.executemany("INSERT INTO counters(name, value) VALUES (?,?) ON CONFLICT(name) DO UPDATE SET "
                           "value=excluded.value", counters)
        return migration_pb2.ImportSummary(atena=len(entries), counters=len(counters))

    def wipe(self) -> None:
        """Forget every entry (a target rolled back)."""
        with self.store.transaction() as db:
            db.execute("DELETE FROM entries")
            db.execute("DELETE FROM counters")
