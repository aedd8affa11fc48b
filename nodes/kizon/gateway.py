"""住基GW (MICJET住基GWサーバ, seed system 3): kizon's exchanges with the systems around it other than the counter, in
one place so that a site that replaces kizon keeps them: the 戸籍 system's notices (family.py), the 戸籍附票通知 to the
本籍地 (annex.py) and the 裁判員候補者名簿 for the 名簿調製プログラム (jury.py). Served as its own service
(KizonGateway), which no counter terminal reaches (nodes/policy.py)."""
from __future__ import annotations

from protos import gateway_pb2, gateway_pb2_grpc

SERVICE_NAME = gateway_pb2.DESCRIPTOR.services_by_name["KizonGateway"].full_name


class GatewayServicer(gateway_pb2_grpc.KizonGatewayServicer):
    """The KizonGateway service: each RPC handed to the part that keeps its rule."""

    def __init__(self, family, jury):
        self.family = family  # family.FamilyNotices: the 戸籍 system's notices, applied 職権
        self.jury = jury  # jury.Jury: the 裁判員候補者名簿

    async def ApplyFamilyRegisterNotices(self, request, context):
        """戸籍 → 住民票: the 戸籍 system's notices, applied in notice order, each once."""
        return await self.family.apply(request)

    async def DrawJuryCandidates(self, request, context):
        """The year's 裁判員候補者名簿 for the 名簿調製プログラム of this municipality."""
        return await self.jury.draw(request)
