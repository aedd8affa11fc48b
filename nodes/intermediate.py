"""中間サーバ・プラットフォーム: one 副本 partition per municipality (tenant) and 情報提供 by 符号.

The tenant of a write is always the calling atena's own municipality, taken from its
certificate, never from the message: no tenant can write another's data, whatever it sends.
"""
from __future__ import annotations

import datetime as dt
import uuid

from nodes.runtime import current_call
from nodes import audit, rules
from protos import common_pb2, intermediate_pb2, intermediate_pb2_grpc, records_pb2

SERVICE_NAME = intermediate_pb2.DESCRIPTOR.services_by_name["IntermediateServer"].full_name
SCHEMA = """
CREATE TABLE IF NOT EXISTS copies (
    tenant TEXT NOT NULL,                   -- 市町村コード of the owning municipality
    fugo TEXT NOT NULL,                     -- 符号
    unified_atena_number TEXT NOT NULL,     -- 団体内統合宛名番号
    record BLOB NOT NULL,                   -- 副本 of 住民票関係情報
    PRIMARY KEY (tenant, fugo)
);
CREATE TABLE IF NOT EXISTS provisions (    -- 情報提供等記録
    provision_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    fugo TEXT NOT NULL,
    inquiry_id TEXT NOT NULL,
    requester TEXT NOT NULL,
    provided_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS provisions_fugo ON provisions(tenant, fugo);
"""


def add_to_server(servicer, server) -> None:
    """Register the servicer on a gRPC server."""
    intermediate_pb2_grpc.add_IntermediateServerServicer_to_server(servicer, server)


class Servicer(intermediate_pb2_grpc.IntermediateServerServicer):
    """副本 store and 情報提供."""

    def __init__(self, runtime):
        self.rt = runtime

    async def RegisterCopies(self, request, context):
        """副本の登録 into the caller's own tenant."""
        tenant = current_call().peer.identity.municipality
        for item in request.items:
            rules.require_text(item.fugo, "符号")
            rules.require_text(item.unified_atena_number, "団体内統合宛名番号")
            if item.record.municipality_code != tenant:
                raise rules.denied(f"tenant isolation: atena of {tenant} may not register data of {item.record.municipality_code}")
        if request.items:
            audit.set_subject(f"{request.items[0].fugo}..({len(request.items)})")
        with self.rt.store.transaction() as db:
            db.executemany("INSERT INTO copies VALUES (?,?,?,?) ON CONFLICT(tenant, fugo) DO UPDATE SET "
                           "unified_atena_number=excluded.unified_atena_number, record=excluded.record",
                           [(tenant, i.fugo, i.unified_atena_number, i.record.SerializeToString()) for i in request.items])
        return common_pb2.UpdateAck(accepted=True, applied=len(request.items))

    async def ProvideInfo(self, request, context):
        """情報提供: the tenant's 副本 for a 符号, recorded in the 情報提供等記録."""
        audit.set_subject(request.fugo)
        rules.require_text(request.fugo, "符号")
        rules.require_text(request.tenant, "tenant")
        rules.require_text(request.inquiry_id, "照会番号")
        row = self.rt.store.one("SELECT record FROM copies WHERE tenant=? AND fugo=?", (request.tenant, request.fugo))
        if row is None:
            raise rules.not_found(f"情報提供: tenant {request.tenant} holds no 副本 for this 符号")
        provision_id = uuid.uuid4().hex
        with self.rt.store.transaction() as db:
            db.execute("INSERT INTO provisions VALUES (?,?,?,?,?,?)",
                       (provision_id, request.tenant, request.fugo, request.inquiry_id,
                        current_call().peer.identity.uri, dt.datetime.now(dt.timezone.utc).isoformat()))
        return intermediate_pb2.ProvisionReply(record=records_pb2.ResidentRecord.FromString(row[0]), provision_id=provision_id)

    async def SampleFugo(self, request, context):
        """Up to count 符号 of a tenant: what the 情報提供NWS would know from its own registry."""
        rules.require_text(request.tenant, "tenant")
        count = min(request.count or 100, 10_000)
        audit.set_subject(f"{request.tenant}:{count}")
        rows = self.rt.store.db.execute("SELECT fugo FROM copies WHERE tenant=? ORDER BY random() LIMIT ?",
                                        (request.tenant, count)).fetchall()
        return intermediate_pb2.FugoSample(fugo=[r[0] for r in rows])
