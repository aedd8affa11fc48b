"""個人番号カード管理システム: takes 送付先情報 from the CSs, unedited, and queues the 個人番号通知書."""
from __future__ import annotations

import datetime as dt

from nodes.runtime import current_call
from nodes import audit, rules
from protos import card_pb2, card_pb2_grpc, common_pb2, records_pb2

SERVICE_NAME = card_pb2.DESCRIPTOR.services_by_name["CardManagement"].full_name
SCHEMA = """
CREATE TABLE IF NOT EXISTS delivery (
    resident_code TEXT PRIMARY KEY,         -- 住民票コード
    municipality_code TEXT NOT NULL,        -- the CS it came from
    received_at TEXT NOT NULL,
    info BLOB NOT NULL                      -- DeliveryInfo exactly as received (the 67 items)
);
"""


def add_to_server(servicer, server) -> None:
    """Register the servicer on a gRPC server."""
    card_pb2_grpc.add_CardManagementServicer_to_server(servicer, server)


class Servicer(card_pb2_grpc.CardManagementServicer):
    """送付先情報 intake; the card lifecycle comes with it."""

    def __init__(self, runtime):
        self.rt = runtime

    async def SubmitDeliveryInfos(self, request, context):
        """送付先情報の受領: kept byte for byte as the CS sent it."""
        caller = current_call().peer.identity
        for item in request.items:
            rules.require_resident_code(item.resident_code)
            rules.require_individual_number(item.individual_number)
            if item.municipality_code and item.municipality_code != caller.municipality:
                raise rules.denied(f"送付先情報 rule: the CS of {caller.municipality} sent one of {item.municipality_code}")
        if request.items:
            audit.set_subject(f"{request.items[0].resident_code}..({len(request.items)})")
        received = dt.datetime.now(dt.timezone.utc).isoformat()
        with self.rt.store.transaction() as db:
            db.executemany(
                "INSERT INTO delivery VALUES (?,?,?,?) ON CONFLICT(resident_code) DO UPDATE SET "
                "municipality_code=excluded.municipality_code, received_at=excluded.received_at, info=excluded.info",
                [(i.resident_code, caller.municipality, received, i.SerializeToString()) for i in request.items],
            )
        return common_pb2.UpdateAck(accepted=True, applied=len(request.items))

    async def GetDeliveryInfo(self, request, context):
        """The queued 送付先情報 of a person."""
        audit.set_subject(request.resident_code)
        rules.require_resident_code(request.resident_code)
        row = self.rt.store.one("SELECT info, received_at FROM delivery WHERE resident_code=?", (request.resident_code,))
        if row is None:
            raise rules.not_found(f"送付先情報: none queued for 住民票コード {request.resident_code}")
        return card_pb2.DeliveryQueueEntry(delivery=records_pb2.DeliveryInfo.FromString(row[0]), received_at=row[1])
