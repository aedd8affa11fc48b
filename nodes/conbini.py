"""コンビニ交付システム of a municipality (seed システム6: 証明書を発行し証明書交付センターに連携する; 利用者証明用電子証明書
シリアル番号情報の利用管理機能): it keeps the シリアル番号 of its residents' 利用者証明用電子証明書, as kizon passes on the
JPKI情報 of each card issued with one (kizon's outbox), and turns the 証明書交付センター's request for a verified
シリアル番号 into the 住民票の写し kizon's 住基GW issues. It holds no resident data but the serial → 住民票コード map."""
from __future__ import annotations

from nodes import audit, clock, jpki, rules
from nodes.guard import current_call
from nodes.reasons import common as C, conbini as R
from protos import common_pb2, conbini_pb2, conbini_pb2_grpc, gateway_pb2, gateway_pb2_grpc

SERVICE_NAME = conbini_pb2.DESCRIPTOR.services_by_name["ConvenienceIssuance"].full_name
SCHEMA = """
CREATE TABLE IF NOT EXISTS user_serials (       -- シリアル番号情報: whose card each 利用者証明用電子証明書 is on
    serial TEXT PRIMARY KEY,                    -- decimal
    resident_code TEXT NOT NULL,                -- 住民票コード of the holder, as kizon names it
    registered_at TEXT NOT NULL
);
"""


def add_to_server(servicer, server) -> None:
    """Register the servicer on a gRPC server."""
    conbini_pb2_grpc.add_ConvenienceIssuanceServicer_to_server(servicer, server)


def _require_serial(serial: str) -> None:
    if not jpki.SERIAL.fullmatch(serial):
        raise R.CONBINI_SERIAL_FORMAT("シリアル番号 rule: a decimal number of at most 60 digits")


class Servicer(conbini_pb2_grpc.ConvenienceIssuanceServicer):
    """The シリアル番号情報 and the issuance for the 証明書交付センター."""

    def __init__(self, runtime):
        self.rt = runtime
        self.municipality = runtime.node.municipality
        self.kizon = runtime.stub(gateway_pb2_grpc.KizonGatewayStub, "kizon", self.municipality)

    async def RegisterUserSerials(self, request, context):
        """JPKI情報 from this municipality's kizon: each シリアル番号 with its holder's 住民票コード (again: no change)."""
        caller = current_call().peer.identity
        if caller.municipality != self.municipality:  # (the policy already says so: a second lock on the door)
            raise C.MUNICIPALITY_OWN(f"シリアル番号 rule: the kizon of {caller.municipality} registers nothing here")
        for item in request.items:
            _require_serial(item.serial)
            rules.require_resident_code(item.resident_code)
        audit.set_batch_subject(i.resident_code for i in request.items)
        with self.rt.store.transaction() as db:
            db.executemany("INSERT INTO user_serials VALUES (?,?,?) ON CONFLICT(serial) DO UPDATE SET "
                           "resident_code=excluded.resident_code", [(i.serial, i.resident_code, clock.stamp())
                                                                    for i in request.items])
        return common_pb2.UpdateAck(accepted=True, applied=len(request.items))

    async def IssueForCentre(self, request, context):
        """The certificate for the holder of a シリアル番号 the centre verified: asked of kizon's 住基GW."""
        _require_serial(request.serial)
        row = self.rt.store.one("SELECT resident_code FROM user_serials WHERE serial=?", (request.serial,))
        if row is None:
            raise R.CONBINI_SERIAL_UNKNOWN(f"シリアル番号 rule: no card of a resident of {self.municipality} has this "
                                           "利用者証明用電子証明書")
        audit.set_subject(f"{row[0]} (challenge {request.challenge_id[:32]})")
        return await self.rt.call_peer(self.kizon.IssueForConvenience, gateway_pb2.ConvenienceRequest(
            resident_code=row[0], kind=request.kind, kiosk=request.kiosk), "既存住基", unreachable="nothing was issued")
