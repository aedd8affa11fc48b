"""The replay's events at the systems beside the register (issue 24): 婚姻 and 離婚 at the 戸籍 counter, the
法務省通知 an 入管 office records, and the yearly 裁判員候補者名簿 for the 名簿調製プログラム. Each is a real call
from the client that would make it; the 住民票 follows by the notices those systems send (not waited for here:
`testbed check` and the consistency check see the result)."""
from __future__ import annotations

import datetime as dt
import random
import uuid

import grpc

from nodes.clock import office_today
from nodes.guard import REQUEST_KEY
from protos import gateway_pb2, gateway_pb2_grpc, koseki_pb2, koseki_pb2_grpc, moj_pb2, moj_pb2_grpc
from testbed import requests
from testbed.client import async_channel, named_cert, terminal_cert

ATTEMPTS = 4  # pairs a 婚姻 tries before it is skipped (one of them may have married or moved meanwhile)
SKIPPED = {grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND}  # nobody fit to act on: skipped
CARD_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"


class OtherSystems:
    """The clients of the 戸籍 counter, the 入管 office and the 名簿調製プログラム of a replay."""

    def __init__(self, network, retry, rng: random.Random):
        self.network, self.retry, self.rng = network, retry, rng
        self.channels: list = []
        self.koseki: dict[str, koseki_pb2_grpc.FamilyRegisterSystemStub] = {}
        self.jury: dict[str, gateway_pb2_grpc.KizonGatewayStub] = {}
        self.moj: moj_pb2_grpc.ResidenceCardSystemStub | None = None

    def _channel(self, node, cert):
        channel = async_channel(node, cert, interceptors=[self.retry])
        self.channels.append(channel)
        return channel

    def prepare(self, municipality: str, terminal: str) -> None:
        """Channels for a municipality: its 戸籍 counter (the replay's terminal), its 名簿調製プログラム, and 法務省."""
        topology, pki = self.network.topology, self.network.pki
        if any(n.kind == "koseki" and n.municipality == municipality for n in topology.nodes):
            self.koseki[municipality] = koseki_pb2_grpc.FamilyRegisterSystemStub(self._channel(
                topology.find("koseki", municipality), terminal_cert(pki, municipality, terminal)))
        self.jury[municipality] = gateway_pb2_grpc.KizonGatewayStub(self._channel(
            topology.find("kizon", municipality), named_cert(pki, f"office-{municipality}-jury")))
        if self.moj is None and any(n.kind == "moj" for n in topology.nodes):
            self.moj = moj_pb2_grpc.ResidenceCardSystemStub(self._channel(topology.find("moj"),
                                                                          named_cert(pki, "immigration")))

    async def dispatch(self, event, register, metadata) -> bool:
        """The calls of one event; False when there was nobody to act on (or no such system in the network)."""
        op, municipality = event.op, event.municipality
        if op == "婚姻":
            return await self._marry(municipality, register, metadata)
        if op == "離婚":
            return await self._divorce(municipality, register, metadata)
        if op == "法務省通知":
            return await self._immigration(register)
        return await self._jury_list(municipality, event.args)

    async def _marry(self, municipality: str, register, metadata) -> bool:
        stub = self.koseki.get(municipality)
        men, women = register.unmarried.get("1", []), register.unmarried.get("2", [])
        if stub is None or not men or not women:
            return False
        for _ in range(ATTEMPTS):
            husband, wife = self.rng.choice(men), self.rng.choice(women)
            if husband not in register.people or wife not in register.people:
                continue
            surname_of = self.rng.choice(("husband", "husband", "husband", "wife"))  # most couples take the 夫's 氏
            try:
                await stub.Marry(requests.with_notifier(koseki_pb2.MarriageRequest(
                    husband=husband, wife=wife, surname_of=surname_of)), metadata=metadata, timeout=60)
            except grpc.aio.AioRpcError as exc:
                if exc.code() in SKIPPED:
                    continue
                raise
            men.remove(husband)
            women.remove(wife)
            register.spouses.append(wife if surname_of == "husband" else husband)
            return True
        return False

    async def _divorce(self, municipality: str, register, metadata) -> bool:
        stub = self.koseki.get(municipality)
        if stub is None or not register.spouses:
            return False
        for _ in range(ATTEMPTS):
            code = self.rng.choice(register.spouses)
            if code not in register.people:
                register.spouses.remove(code)
                continue
            try:
                await stub.Divorce(requests.with_notifier(koseki_pb2.DivorceRequest(
                    resident_code=code, separate_household=self.rng.random() < 0.5)), metadata=metadata, timeout=60)
            except grpc.aio.AioRpcError as exc:
                if exc.code() in SKIPPED:
                    register.spouses.remove(code)
                    continue
                raise
            register.spouses.remove(code)
            return True
        return False

    async def _immigration(self, register) -> bool:
        """An 入管 office renews the 在留期間 of a foreign resident here (a new card, as every renewal gives)."""
        living = [code for code in register.foreign if code in register.people]
        if self.moj is None or not living:
            return False
        code = self.rng.choice(living)
        new_card = "".join(self.rng.choices(CARD_LETTERS, k=2)) + f"{self.rng.randrange(10**8):08d}" + \
            "".join(self.rng.choices(CARD_LETTERS, k=2))
        today = office_today()
        try:
            await self.moj.RecordResidenceChange(moj_pb2.ResidenceChange(
                residence_card_number=register.foreign[code], kind="在留期間更新",
                period_expiry_date=(today + dt.timedelta(days=3 * 365)).isoformat(), new_card_number=new_card,
                event_date=today.isoformat()), metadata=((REQUEST_KEY, uuid.uuid4().hex),), timeout=60)
            # (an x-request-id of its own: a retry after a lost answer is answered, not a second renewal)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in SKIPPED:
                return False
            raise
        register.foreign[code] = new_card
        return True

    async def _jury_list(self, municipality: str, args: dict) -> bool:
        """The 名簿調製プログラム asks for the year's list (a repeat of the same request answers the same list)."""
        today = office_today()
        year = today.year + 1  # (the trace's year is the scenario's; the office's next year is the one open)
        count = int(args.get("count", 1))
        try:
            await self.jury[municipality].DrawJuryCandidates(gateway_pb2.JuryListRequest(
                year=year, count=count, allotment_reference=f"{year}年 裁判員候補者 割当通知 {municipality}"), timeout=120)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in SKIPPED:  # (drawn already this year by another request, or over the limit here)
                return False
            raise
        return True

    async def close(self) -> None:
        """Close the channels."""
        for channel in self.channels:
            await channel.close()
