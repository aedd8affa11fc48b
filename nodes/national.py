"""全国サーバ (機構): the 機構保存本人確認情報ファイル, national identity queries and 符号."""
from __future__ import annotations

import secrets

from nodes.runtime import current_call
from nodes import audit, identityfile, rules
from protos import common_pb2, national_pb2, national_pb2_grpc

SERVICE_NAME = national_pb2.DESCRIPTOR.services_by_name["NationalServer"].full_name
SCHEMA = identityfile.SCHEMA + """
CREATE TABLE IF NOT EXISTS fugo (
    individual_number TEXT PRIMARY KEY,     -- 個人番号
    fugo TEXT NOT NULL UNIQUE               -- 符号: opaque, not derivable from the 個人番号
);
"""


def add_to_server(servicer, server) -> None:
    """Register the servicer on a gRPC server."""
    national_pb2_grpc.add_NationalServerServicer_to_server(servicer, server)


class Servicer(national_pb2_grpc.NationalServerServicer):
    """J-LIS's national server."""

    def __init__(self, runtime):
        self.rt = runtime

    async def ApplyIdentityUpdates(self, request, context):
        """本人確認情報の通知 from a prefecture, for one of its municipalities."""
        caller = current_call().peer.identity
        if request.municipality_code[:2] != caller.prefecture_prefix:
            raise rules.denied(f"都道府県 rule: prefecture {caller.prefecture} may not send updates of {request.municipality_code}")
        if request.updates:
            audit.set_subject(request.updates[-1].info.resident_code)
        with self.rt.store.transaction() as db:
            _, last = identityfile.apply_updates(db, request.municipality_code, request.updates)
        return common_pb2.UpdateAck(accepted=True, update_sequence=last)

    async def GetIdentity(self, request, context):
        """全国照会: anyone's 本人確認情報."""
        audit.set_subject(request.resident_code)
        return identityfile.read_identity(self.rt.store, request.resident_code)

    async def IssueFugo(self, request, context):
        """符号の取得: the same person always gets the same 符号."""
        rules.require_individual_number(request.individual_number)
        with self.rt.store.transaction() as db:
            row = db.execute("SELECT fugo FROM fugo WHERE individual_number=?", (request.individual_number,)).fetchone()
            if row is None:
                fugo = secrets.token_hex(12).upper()
                db.execute("INSERT INTO fugo VALUES (?,?)", (request.individual_number, fugo))
            else:
                fugo = row[0]
        audit.set_subject(fugo)
        return national_pb2.FugoReply(fugo=fugo)
