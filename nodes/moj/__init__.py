"""法務省 在留カード等発行システム (seed: 既存住基 function 7, 住基GW function 2; 住基法第30条の50, 入管法第61条の8の2):
the foreign residents' 在留カード, the changes of 在留 an 入管 office records on them, and the two notices that keep
the municipalities' 住民票 and 法務省's cards in step (docs/immigration.md).

Parts: store.py (the cards), items.py (the layout's rules, shared with the CS and kizon), cards.py (the 入管 office's
changes and reads, the console's load), notices.py (the 法務省通知 out, the 市町村通知 in)."""
from __future__ import annotations

from nodes.moj.cards import SCHEMA as REQUEST_SCHEMA, ResidenceCards
from nodes.moj.notices import SCHEMA as NOTICE_SCHEMA, Notices
from nodes.moj.store import SCHEMA as CARD_SCHEMA, CardStore
from protos import moj_pb2, moj_pb2_grpc

SERVICE_NAME = moj_pb2.DESCRIPTOR.services_by_name["ResidenceCardSystem"].full_name
SCHEMA = CARD_SCHEMA + REQUEST_SCHEMA + NOTICE_SCHEMA


def add_to_server(servicer, server) -> None:
    """Register the servicer on a gRPC server."""
    moj_pb2_grpc.add_ResidenceCardSystemServicer_to_server(servicer, server)


class Servicer(moj_pb2_grpc.ResidenceCardSystemServicer):
    """The 在留カード等発行システム: each RPC handed to the part that keeps its rule."""

    def __init__(self, runtime):
        self.rt = runtime
        store = CardStore()
        self.notices = Notices(runtime, store)  # (builds the outbox: a target per municipality's CS)
        self.cards = ResidenceCards(runtime, store, self.notices)

    async def RecordResidenceChange(self, request, context):
        """An 入管 office records a change of 在留; the 法務省通知 to the 住居地 is queued with it."""
        return await self.cards.record(request)

    async def GetResidenceCard(self, request, context):
        """A 在留カード by its number."""
        return self.cards.get(request)

    async def ReceiveMunicipalityNotice(self, request, context):
        """市町村通知 from a municipality's CS: in its order, each kept once, applied to the card."""
        return await self.notices.receive(request)

    async def LoadResidenceCards(self, request, context):
        """The foreign residents of a generated population, once (the operations console)."""
        return self.cards.load(request)
