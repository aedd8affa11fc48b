"""都道府県サーバ: the 都道府県知事保存本人確認情報ファイル, applied in 更新順番号 order and forwarded to national."""
from __future__ import annotations

from nodes.runtime import current_call
from nodes import audit, identityfile, rules
from protos import common_pb2, national_pb2_grpc, prefecture_pb2, prefecture_pb2_grpc

SERVICE_NAME = prefecture_pb2.DESCRIPTOR.services_by_name["PrefectureServer"].full_name
SCHEMA = identityfile.SCHEMA


def add_to_server(servicer, server) -> None:
    """Register the servicer on a gRPC server."""
    prefecture_pb2_grpc.add_PrefectureServerServicer_to_server(servicer, server)


class Servicer(prefecture_pb2_grpc.PrefectureServerServicer):
    """Receives each CS's numbered updates and passes them on to national."""

    def __init__(self, runtime):
        self.rt = runtime
        national = runtime.stub(national_pb2_grpc.NationalServerStub, "national")
        self.outbox = runtime.use_outbox({"national": (national, prefecture_pb2.IdentityUpdateBatch)})

    async def ApplyIdentityUpdates(self, request, context):
        """本人確認情報の通知 from a CS: in order, duplicates ignored, gaps refused."""
        caller = current_call().peer.identity
        if request.municipality_code != caller.municipality:
            raise rules.denied(f"市町村コード rule: the CS of {caller.municipality} may send only its own updates")
        if request.updates:
            audit.set_subject(request.updates[-1].info.resident_code)
        with self.rt.store.transaction() as db:
            applied, last = identityfile.apply_updates(db, request.municipality_code, request.updates)
            queued = {}
            if applied:
                queued["national"] = self.outbox.put(db, "national", "ApplyIdentityUpdates", prefecture_pb2.IdentityUpdateBatch(
                    municipality_code=request.municipality_code, updates=applied))
        await self.outbox.send(queued)
        return common_pb2.UpdateAck(accepted=True, update_sequence=last)

    async def GetIdentity(self, request, context):
        """本人確認情報の照会 (a CS's consistency check)."""
        audit.set_subject(request.resident_code)
        return identityfile.read_identity(self.rt.store, request.resident_code)
