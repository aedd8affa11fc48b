"""市町村コミュニケーションサーバ (市町村CS): the municipality's gateway into Juki-net.

Keeps the 本人確認情報ファイル, numbers every update (更新順番号) and sends it from a durable
outbox to the prefecture, and 送付先情報 to the card management system.
"""
from __future__ import annotations

from nodes import audit, identityfile, rules
from nodes.store import COUNTERS_SCHEMA, next_counter
from protos import card_pb2_grpc, common_pb2, cs_pb2, cs_pb2_grpc, prefecture_pb2, prefecture_pb2_grpc, records_pb2

SERVICE_NAME = cs_pb2.DESCRIPTOR.services_by_name["CommunicationServer"].full_name
SCHEMA = identityfile.SCHEMA + COUNTERS_SCHEMA


def add_to_server(servicer, server) -> None:
    """Register the servicer on a gRPC server."""
    cs_pb2_grpc.add_CommunicationServerServicer_to_server(servicer, server)


class Servicer(cs_pb2_grpc.CommunicationServerServicer):
    """The CS's Juki-net side: 本人確認情報 in, numbered updates out."""

    def __init__(self, runtime):
        self.rt = runtime
        self.municipality = runtime.node.municipality
        prefecture_code = runtime.topology.municipality(self.municipality).prefecture
        prefecture = runtime.stub(prefecture_pb2_grpc.PrefectureServerStub, "prefecture", prefecture=prefecture_code)
        card = runtime.stub(card_pb2_grpc.CardManagementStub, "card")
        self.outbox = runtime.use_outbox({"prefecture": (prefecture, prefecture_pb2.IdentityUpdateBatch),
                                          "card": (card, records_pb2.DeliveryInfo)})

    async def SubmitIdentityUpdate(self, request, context):
        """本人確認情報の更新: store it, give it the next 更新順番号, queue it for the prefecture."""
        info = records_pb2.IdentityInfo()
        info.CopyFrom(request.info)
        audit.set_subject(info.resident_code)
        rules.require_resident_code(info.resident_code)
        if info.individual_number:
            rules.require_individual_number(info.individual_number)
        rules.require_text(info.name_kanji, "漢字氏名")
        if request.municipality_code != self.municipality or info.municipality_code != self.municipality:
            raise rules.invalid(f"市町村コード rule: this CS serves {self.municipality}")
        with self.rt.store.transaction() as db:
            info.update_sequence = next_counter(db, "update_sequence")
            identityfile.store_identity(db, info)
            db.execute("INSERT INTO applied VALUES (?,?) ON CONFLICT(municipality_code) DO UPDATE SET last_sequence=excluded.last_sequence",
                       (self.municipality, info.update_sequence))
            update = cs_pb2.IdentityUpdate(municipality_code=self.municipality, info=info)
            queued = {"prefecture": self.outbox.put(db, "prefecture", "ApplyIdentityUpdates", prefecture_pb2.IdentityUpdateBatch(
                municipality_code=self.municipality, updates=[update]))}
            if request.HasField("delivery"):
                queued["card"] = self.outbox.put(db, "card", "SubmitDeliveryInfo", request.delivery)
        await self.outbox.send(queued)
        return common_pb2.UpdateAck(accepted=True, update_sequence=info.update_sequence)

    async def GetIdentity(self, request, context):
        """本人確認情報の照会 for this municipality's 統合端末 and kizon."""
        audit.set_subject(request.resident_code)
        return identityfile.read_identity(self.rt.store, request.resident_code)
