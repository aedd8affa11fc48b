"""都道府県サーバ: the 都道府県知事保存本人確認情報ファイル, applied in 更新順番号 order and forwarded to national."""
from __future__ import annotations

from nodes import audit, filedigests, identityfile
from nodes.deferred import DeferredIndexes
from nodes.outbox import Target
from nodes.guard import current_call
from nodes.reasons import common as C, national as N
from protos import common_pb2, identity_pb2, national_pb2_grpc, prefecture_pb2, prefecture_pb2_grpc

SERVICE_NAME = prefecture_pb2.DESCRIPTOR.services_by_name["PrefectureServer"].full_name
SCHEMA = identityfile.SCHEMA


def add_to_server(servicer, server) -> None:
    """Register the servicer on a gRPC server."""
    prefecture_pb2_grpc.add_PrefectureServerServicer_to_server(servicer, server)


class Servicer(prefecture_pb2_grpc.PrefectureServerServicer):
    """Receives each CS's numbered updates and passes them on to national."""

    def __init__(self, runtime):
        self.rt = runtime
        filedigests.keep(runtime)  # (the 整合性確認's digests and ranges: an older file upgraded, the scrubber)
        self.indexes = DeferredIndexes(runtime, "identity")  # (made after a load into the empty file)
        national = runtime.stub(national_pb2_grpc.NationalServerStub, "national")
        # One outbox target per municipality: each batch to national carries one municipality's updates.
        self.outbox = runtime.use_outbox({
            m.code: Target(national.ApplyIdentityUpdates, identity_pb2.IdentityUpdateBatch, "updates", {"municipality_code": m.code},
                          sequenced=True)
            for m in runtime.topology.municipalities if m.prefecture == runtime.node.prefecture
        })

    async def ApplyIdentityUpdates(self, request, context):
        """本人確認情報の通知 from a CS: in order, duplicates ignored, gaps refused."""
        caller = current_call().peer.identity
        if request.municipality_code != caller.municipality:
            raise C.MUNICIPALITY_OWN(f"市町村コード rule: the CS of {caller.municipality} may send only its own updates")
        if request.municipality_code not in self.outbox.targets:
            raise N.PREFECTURE_OWN_MUNICIPALITIES(f"都道府県 rule: {request.municipality_code} is not a municipality of "
                                                  f"{self.rt.node.prefecture}")
        if request.updates:
            audit.set_batch_subject(u.info.resident_code for u in request.updates)
        with self.rt.store.transaction() as db:
            applied, last, rows = identityfile.apply_updates(db, request.municipality_code, request.updates,
                                                             self.indexes)
            self.outbox.put_payloads(db, request.municipality_code,
                                     [identityfile.update_bytes(request.municipality_code, r[-1]) for r in rows])
        if applied:
            self.outbox.wake(request.municipality_code)
        return common_pb2.UpdateAck(accepted=True, update_sequence=last, applied=len(applied))

    async def GetIdentity(self, request, context):
        """本人確認情報の照会 for a CS of this prefecture."""
        audit.set_subject(request.resident_code)
        return identityfile.read_identity(self.rt.store, request.resident_code)

    async def IdentityDigests(self, request, context):
        """整合性確認 material: the ranges or the (住民票コード, digest) of the calling CS's people (nodes/digests.py)."""
        self._own(request.municipality_code)
        for batch in filedigests.digests_asked(self.rt.store, request.municipality_code, request, identityfile.IDENTITY):
            yield batch

    async def GetIdentities(self, request, context):
        """The 本人確認情報 of several people, for a consistency report."""
        audit.set_subject(f"{len(request.resident_codes)} records")
        return identityfile.read_identities(self.rt.store, current_call().peer.identity.municipality, request.resident_codes)

    def _own(self, municipality: str) -> None:
        caller = current_call().peer.identity.municipality
        audit.set_subject(municipality)
        if municipality != caller:
            raise C.CONSISTENCY_OWN_RECORDS(f"整合性確認 rule: the CS of {caller} may compare only its own records")
