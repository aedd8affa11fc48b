"""既存住民基本台帳システム (既存住基): the resident register behind the counter.

Writes 住民票 with full history (個人履歴番号) and carries each change, from a durable outbox,
to its CS (本人確認情報) and to atena (the 団体内統合宛名 feed).
"""
from __future__ import annotations

import datetime as dt

from nodes.runtime import current_call
from nodes import audit, rules
from nodes.store import COUNTERS_SCHEMA, next_counter
from nodes.records import delivery_info, identity_info
from protos import atena_pb2, atena_pb2_grpc, cs_pb2, cs_pb2_grpc, kizon_pb2, kizon_pb2_grpc, records_pb2

SERVICE_NAME = kizon_pb2.DESCRIPTOR.services_by_name["Kizon"].full_name
DELIVERY_WAIT = 3.0  # seconds a counter call waits for its CS and atena deliveries

SCHEMA = """
CREATE TABLE IF NOT EXISTS residents (
    resident_code TEXT PRIMARY KEY,             -- 住民票コード
    atena_number TEXT NOT NULL UNIQUE,          -- 宛名番号
    history_number INTEGER NOT NULL,            -- 個人履歴番号 of the current entry
    status INTEGER NOT NULL,                    -- ResidentRecord.Status
    record BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    resident_code TEXT NOT NULL,
    history_number INTEGER NOT NULL,
    recorded_at TEXT NOT NULL,
    record BLOB NOT NULL,
    PRIMARY KEY (resident_code, history_number)
);
""" + COUNTERS_SCHEMA


def add_to_server(servicer, server) -> None:
    """Register the servicer on a gRPC server."""
    kizon_pb2_grpc.add_KizonServicer_to_server(servicer, server)


class Servicer(kizon_pb2_grpc.KizonServicer):
    """The counter operations of 既存住基."""

    def __init__(self, runtime):
        self.rt = runtime
        self.municipality = runtime.node.municipality
        cs = runtime.stub(cs_pb2_grpc.CommunicationServerStub, "cs", self.municipality)
        atena = runtime.stub(atena_pb2_grpc.AtenaStub, "atena", self.municipality)
        self.outbox = runtime.use_outbox({"cs": (cs, cs_pb2.IdentityUpdate), "atena": (atena, atena_pb2.ResidentChange)})

    async def RecordResident(self, request, context):
        """住民票の記載: validate, write the record and its history, queue the CS and atena updates."""
        record = records_pb2.ResidentRecord()
        record.CopyFrom(request.record)
        audit.set_subject(record.resident_code)
        rules.require_resident_code(record.resident_code)
        if record.individual_number:
            rules.require_individual_number(record.individual_number)
        rules.require_text(record.name_kanji, "氏名")
        rules.require_date(record.birth_date, "生年月日")
        if record.municipality_code and record.municipality_code != self.municipality:
            raise rules.invalid(f"市町村コード rule: this register is {self.municipality}, not {record.municipality_code}")
        call = current_call()
        with self.rt.store.transaction() as db:
            if db.execute("SELECT 1 FROM residents WHERE resident_code=?", (record.resident_code,)).fetchone():
                raise rules.already_exists(f"記載 rule: 住民票コード {record.resident_code} is already recorded here")
            record.municipality_code = self.municipality
            record.atena_number = f"{next_counter(db, 'atena_number'):015d}"
            record.history_number = 1
            record.is_latest = True
            record.status = records_pb2.ResidentRecord.STATUS_CURRENT
            blob = record.SerializeToString()
            db.execute("INSERT INTO residents VALUES (?,?,?,?,?)",
                       (record.resident_code, record.atena_number, 1, record.status, blob))
            db.execute("INSERT INTO history VALUES (?,?,?,?)",
                       (record.resident_code, 1, dt.datetime.now(dt.timezone.utc).isoformat(), blob))
            update = cs_pb2.IdentityUpdate(
                municipality_code=self.municipality,
                info=identity_info(record, operator=call.operator, terminal=call.terminal),
            )
            if record.individual_number:
                update.delivery.CopyFrom(delivery_info(record))
            cs_id = self.outbox.put(db, "cs", "SubmitIdentityUpdate", update)
            atena_id = self.outbox.put(db, "atena", "NotifyResidentChange", atena_pb2.ResidentChange(record=record))
        acks = await self.outbox.send({"cs": cs_id, "atena": atena_id}, wait=DELIVERY_WAIT)
        reply = kizon_pb2.RecordResidentReply(atena_number=record.atena_number, history_number=1)
        if acks["cs"] is not None:
            reply.update_sequence = acks["cs"].update_sequence
        if acks["atena"] is not None:
            reply.unified_atena_number = acks["atena"].unified_atena_number
        return reply

    async def GetResident(self, request, context):
        """住民票の照会: the current entry of a person's 住民票."""
        audit.set_subject(request.resident_code)
        rules.require_resident_code(request.resident_code)
        row = self.rt.store.one("SELECT record FROM residents WHERE resident_code=?", (request.resident_code,))
        if row is None:
            raise rules.not_found(f"照会: no 住民票 with 住民票コード {request.resident_code} in {self.municipality}")
        return records_pb2.ResidentRecord.FromString(row[0])
