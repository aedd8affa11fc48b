"""The 個人番号カード for kizon and the 統合端末: lifecycle steps, 本人確認 by card, 広域交付."""
from __future__ import annotations

from nodes import audit, identityfile
from nodes.cs.checks import CURRENT
from nodes.reasons import cs as R
from protos import card_pb2, common_pb2, cs_pb2_grpc


class CardsMixin:
    """Card steps and card-based checks."""

    async def ChangeCard(self, request, context):
        """The card lifecycle for kizon: passed to the card system for this municipality's residents."""
        audit.set_subject(request.resident_code)
        if request.action in (card_pb2.TRANSFER, card_pb2.RECODE):  # what a 転入 or a code change brings, from here
            raise R.CARD_STEP_BY_CS(f"card rule: {card_pb2.CardAction.Name(request.action)} is a step the CS takes itself, "
                                    "not one asked for at the counter")
        asked = card_pb2.CardRequest()
        asked.CopyFrom(request)
        asked.municipality_code = self.municipality
        return await self._card_call(self.card.ChangeCard, asked)

    async def VerifyByCard(self, request, context):
        """本人確認 with the card: card and PIN checked by the card system, then the 本人確認情報."""
        audit.set_subject(request.card_number)
        card = await self._card_call(self.card.CheckPin, card_pb2.PinCheck(card_number=request.card_number, pin=request.pin))
        audit.set_subject(card.resident_code)
        if card.municipality_code == self.municipality:
            return self._shown(identityfile.read_identity(self.rt.store, card.resident_code))
        return self._shown(await self._national_call(self.national.GetIdentity,
                                                     common_pb2.ResidentKey(resident_code=card.resident_code)))

    async def WideAreaLookup(self, request, context):
        """広域交付 at this municipality: the card proves who asks; their CS gives the 本人確認情報."""
        audit.set_subject(request.card_number)
        card = await self._card_call(self.card.CheckPin, card_pb2.PinCheck(card_number=request.card_number, pin=request.pin))
        if card.municipality_code != request.home_municipality_code:
            raise R.WIDE_AREA_HOME(f"広域交付 rule: the card holder lives in {card.municipality_code}, "
                                   f"not {request.home_municipality_code}")
        audit.set_subject(card.resident_code)
        home = self.rt.stub(cs_pb2_grpc.CommunicationServerStub, "cs", request.home_municipality_code)
        return await self.rt.call_peer(home.ProvideForWideArea, common_pb2.ResidentKey(resident_code=card.resident_code),
                                       f"市町村CS of {request.home_municipality_code}")

    async def ProvideForWideArea(self, request, context):
        """広域交付 elsewhere: the 本人確認情報 of a current resident of here, for another CS."""
        audit.set_subject(request.resident_code)
        info = identityfile.read_identity(self.rt.store, request.resident_code)
        if info.municipality_code != self.municipality or info.record_status_flag != CURRENT:
            raise R.WIDE_AREA_CURRENT_RESIDENT(f"広域交付 rule: {request.resident_code} is not a current resident of "
                                               f"{self.municipality}")
        return info

    async def _card_call(self, method, request):
        return await self.rt.call_peer(method, request, "個人番号カード管理システム")
