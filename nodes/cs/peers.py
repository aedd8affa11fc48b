"""The CS's peers: stubs of national, its prefecture and the card system, each called so that a refusal names it."""
from __future__ import annotations

from protos import card_pb2_grpc, national_pb2_grpc, prefecture_pb2_grpc


class National:
    """全国サーバ as the CS calls it (parts.NationalPeer): all the search process reaches."""

    def __init__(self, runtime):
        self._rt = runtime
        self.national = runtime.stub(national_pb2_grpc.NationalServerStub, "national")

    async def national_call(self, method, request, unreachable: str = ""):
        """method(request) at national; its refusal relayed naming national."""
        return await self._rt.call_peer(method, request, "全国サーバ", unreachable=unreachable)


class Peers(National):
    """National, the prefecture of this municipality and the card system (parts.Peers)."""

    def __init__(self, runtime):
        prefecture_code = runtime.topology.municipality(runtime.node.municipality).prefecture
        self.prefecture = runtime.stub(prefecture_pb2_grpc.PrefectureServerStub, "prefecture", prefecture=prefecture_code)
        super().__init__(runtime)
        self.card = runtime.stub(card_pb2_grpc.CardManagementStub, "card")

    async def card_call(self, method, request):
        """method(request) at the card system; its refusal relayed naming the card system."""
        return await self._rt.call_peer(method, request, "個人番号カード管理システム")
