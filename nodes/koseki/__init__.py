"""戸籍システム of a municipality (seed: the 戸籍システム beside the コンビニ交付システム; 住基法第9条第2項, 第19条): the
戸籍 of the people whose 本籍 is here, the 届出 made at its counter, and the 戸籍の附票.

Each 届出 changes the 戸籍 and queues, in the same transaction, a numbered notice for kizon's 住基GW, which applies it to
the 住民票 職権 (nodes/kizon/family.py); the 附票 keeps the address history of its 戸籍's people from the 戸籍附票通知
of the municipalities they live in (annex.py). Parts: registers.py (the 届出), annex.py (the 附票, the load)."""
from __future__ import annotations

from nodes import site
from nodes.koseki.annex import SCHEMA as ANNEX_SCHEMA, Annex
from nodes.koseki.registers import SCHEMA as REGISTER_SCHEMA, Registers
from nodes.outbox import Target
from nodes.sessions import ROSTER_SCHEMA, RosterReceiver
from nodes.guard import current_call
from protos import gateway_pb2_grpc, koseki_pb2, koseki_pb2_grpc

SERVICE_NAME = koseki_pb2.DESCRIPTOR.services_by_name["FamilyRegisterSystem"].full_name
SCHEMA = site.SCHEMA + ROSTER_SCHEMA + REGISTER_SCHEMA + ANNEX_SCHEMA


def add_to_server(servicer, server) -> None:
    """Register the servicer on a gRPC server."""
    koseki_pb2_grpc.add_FamilyRegisterSystemServicer_to_server(servicer, server)


class Servicer(koseki_pb2_grpc.FamilyRegisterSystemServicer):
    """The 戸籍 system: each RPC handed to the part that keeps its rule."""

    def __init__(self, runtime):
        self.rt = runtime
        gateway = runtime.stub(gateway_pb2_grpc.KizonGatewayStub, "kizon", runtime.node.municipality)
        outbox = runtime.use_outbox({"kizon": Target(gateway.ApplyFamilyRegisterNotices,
                                                     koseki_pb2.FamilyRegisterNoticeBatch, sequenced=True)})
        self.registers = Registers(runtime, outbox)
        self.annex = Annex(runtime, self.registers)
        self.rosters = RosterReceiver(runtime.store, runtime.session_keys)  # kizon's roster, for the guard

    async def Marry(self, request, context):
        """婚姻届: the couple's 戸籍 (新戸籍, or the 筆頭者's), the 氏, and the notices for their 住民票."""
        return await self.registers.marry(request)

    async def Divorce(self, request, context):
        """離婚届: the one who took the other's 氏 returns to the former one in a 戸籍 of their own."""
        return await self.registers.divorce(request)

    async def Transfer(self, request, context):
        """転籍届 within the municipality: a new 本籍 for every member."""
        return await self.registers.transfer(request)

    async def RecordReading(self, request, context):
        """氏名の振り仮名の届出: recorded once."""
        return await self.registers.reading(request)

    async def RecordDeath(self, request, context):
        """死亡届: the person's 除籍, and the 住民票's 消除 by notice."""
        return await self.registers.death(request)

    async def GetFamilyRegister(self, request, context):
        """A 戸籍 by its number or by a person 在籍 in it."""
        return self.registers.find(request)

    async def GetAnnex(self, request, context):
        """The 戸籍の附票 of a person of a 戸籍 here: the address history."""
        return self.annex.history(request)

    async def ListAnnexCurrent(self, request, context):
        """The current 附票 entry of each person, a page at a time (the check against the registers)."""
        return self.annex.current(request)

    async def RecordAnnexNotices(self, request, context):
        """戸籍附票通知 handed on by kizon's 住基GW: each kept once."""
        return self.annex.record(request)

    async def ReceiveOperatorRoster(self, request, context):
        """The roster signed by this municipality's kizon (the 戸籍 counter's sessions are checked against it)."""
        return self.rosters.receive(request, current_call().peer.identity.municipality)

    async def LoadFamilyRegisters(self, request, context):
        """The 戸籍 of a generated population, once."""
        return self.annex.load(request)
