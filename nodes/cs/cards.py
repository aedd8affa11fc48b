"""The 個人番号カード for kizon and the 統合端末: lifecycle steps relayed to the card system, 本人確認 by card, 広域交付."""
from __future__ import annotations

from nodes import audit, identityfile
from nodes.cs import parts
from nodes.cs.checks import CURRENT
from nodes.guard import current_call
from nodes.reasons import cs as R
from protos import card_pb2, common_pb2, cs_pb2_grpc


class Cards:
    """Card steps and card-based checks."""

    def __init__(self, runtime, peers: parts.Peers, disclosure: parts.Disclosure, bulk: parts.BulkOutput):
        self._rt = runtime
        self._municipality = runtime.node.municipality
        self._peers = peers
        self._disclosure = disclosure
        self._bulk = bulk

    async def change(self, request):
        """The card lifecycle for kizon: passed to the card system for this municipality's residents."""
        audit.set_subject(request.resident_code)
        if request.action in (card_pb2.TRANSFER, card_pb2.RECODE):  # what a 転入 or a code change brings, from here
            raise R.CARD_STEP_BY_CS(f"card rule: {card_pb2.CardAction.Name(request.action)} is a step the CS takes itself, "
                                    "not one asked for at the counter")
        asked = card_pb2.CardRequest()
        asked.CopyFrom(request)
        asked.municipality_code = self._municipality
        return await self._peers.card_call(self._peers.card.ChangeCard, asked)

    async def verify(self, request):
        """本人確認 with the card: card and PIN checked by the card system, then the 本人確認情報."""
        audit.set_subject(request.card_number)
        card = await self._peers.card_call(self._peers.card.CheckPin,
                                           card_pb2.PinCheck(card_number=request.card_number, pin=request.pin))
        audit.set_subject(card.resident_code)
        if card.municipality_code == self._municipality:
            info = identityfile.read_identity(self._rt.store, card.resident_code)
        else:
            info = await self._peers.national_call(self._peers.national.GetIdentity,
                                                   common_pb2.ResidentKey(resident_code=card.resident_code))
        self._bulk.read(current_call(), (card.resident_code,))  # (a 統合端末's read counts: PIA Ⅲ(2)3)
        return self._disclosure.shown(info)

    async def wide_area_lookup(self, request):
        """広域交付 at this municipality: the card proves who asks; their CS gives the 本人確認情報."""
        audit.set_subject(request.card_number)
        card = await self._peers.card_call(self._peers.card.CheckPin,
                                           card_pb2.PinCheck(card_number=request.card_number, pin=request.pin))
        if card.municipality_code != request.home_municipality_code:
            raise R.WIDE_AREA_HOME(f"広域交付 rule: the card holder lives in {card.municipality_code}, "
                                   f"not {request.home_municipality_code}")
        audit.set_subject(card.resident_code)
        home = self._rt.stub(cs_pb2_grpc.CommunicationServerStub, "cs", request.home_municipality_code)
        return await self._rt.call_peer(home.ProvideForWideArea, common_pb2.ResidentKey(resident_code=card.resident_code),
                                        f"市町村CS of {request.home_municipality_code}")

    async def provide_for_wide_area(self, request):
        """広域交付 elsewhere: the 本人確認情報 of a current resident of here, for another CS."""
        audit.set_subject(request.resident_code)
        info = identityfile.read_identity(self._rt.store, request.resident_code)
        if info.municipality_code != self._municipality or info.record_status_flag != CURRENT:
            raise R.WIDE_AREA_CURRENT_RESIDENT(f"広域交付 rule: {request.resident_code} is not a current resident of "
                                               f"{self._municipality}")
        return info
