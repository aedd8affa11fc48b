"""Replay a workload trace against the live network at a chosen time compression.

Each event of the trace becomes real calls from the terminal that would make it: counter 異動 at
kizon, identity checks and searches at the CS (統合端末), 情報提供 at the 中間サーバ (情報提供NWS), the
nightly batch at the CS. Whom an event is about is chosen at replay time from the register as it
stands (read once with a manager's approval, then kept up to date by the replay itself); a person
with a call in flight is not chosen again until it returns, so concurrent events never contradict
each other. Dates sent are the office's today (the nodes decide the dates they record).

Result file (JSON): per operation the count, errors and latency percentiles; per second of wall time the
events offered (due by the schedule), sent, completed (also per operation) and failed, and the calls in flight
(mean and most); the lag behind the schedule; once a second each node's CPU, memory and outbox, and the replay
process's own CPU and the machine's load (the load generator's side); the simulated counter's queue statistics.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

import grpc
from tqdm import tqdm

from nodes.guard import APPROVAL_KEY, REQUEST_KEY
from protos import (card_pb2, common_pb2, identity_pb2, intermediate_pb2, intermediate_pb2_grpc, kizon_pb2, kizon_pb2_grpc,
                    national_pb2, national_pb2_grpc, ops_pb2, ops_pb2_grpc, records_pb2)
from scenarios.population import resident_code
from scenarios.towns import towns
from scenarios.workload import FAMILY_OPS, IMMIGRATION_OPS, JURY_LIST, OFFICE_OPS
from nodes.clock import KIOSK_HOURS, SIMULATED_KEY, kiosk_clock, office_today
from nodes.jimu import table as jimu_table
from nodes.reasons.card import CARD_STATE_TRANSITION
from nodes.reasons.kizon import MOVE_IN_INDIVIDUAL_NUMBER_REQUIRED
from nodes.refusal import rule_of
from nodes.tls import ClientCert
from testbed import requests
from testbed.requests import OUTSIDE
from testbed.client import async_bulk_approval, async_channel, console_cert, async_login, monitor_cert, named_cert
from testbed.faults import execute, records
from testbed.replay_systems import OtherSystems

OUTSIDE_TRIES = 3  # people made up for one 転入 from outside the network, at most
KIOSK_CARDS = 40  # residents per municipality whose cards are issued (with a PIN) for コンビニ交付
KIOSK_PIN = "1234"
# The replay's one terminal per municipality does a whole office's counter work: a manager approves its reads
# (beyond the bulk-output limit of one clerk) for the run.
REPLAY_READS = 10_000_000
CERTIFICATE_KINDS = {"住民票の写し": kizon_pb2.RESIDENT_COPY, "住民票記載事項証明書": kizon_pb2.STATED_ITEMS,
                     "除票の写し": kizon_pb2.REMOVED_COPY}
RETRY_SECONDS = 60.0  # how long a terminal keeps trying a call its node cannot answer
RETRIED = {grpc.StatusCode.UNAVAILABLE}


@dataclass
class Person:
    """What the replay knows of a resident."""

    code: str
    household: str
    card: bool
    busy: bool = False


@dataclass
class Register:
    """The current residents of one municipality, as the replay keeps track of them."""

    people: dict[str, Person] = field(default_factory=dict)
    households: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    removed: list[str] = field(default_factory=list)  # 除票: people who died or moved out during the replay
    cards: list[tuple[str, str]] = field(default_factory=list)  # (card number, 住民票コード) usable at a kiosk
    unmarried: dict[str, list[str]] = field(default_factory=dict)  # 性別 → adults with a 本籍, not a 世帯主's spouse
    spouses: list[str] = field(default_factory=list)  # people who took a spouse's 氏 (a 離婚 is theirs to file)
    foreign: dict[str, str] = field(default_factory=dict)  # 住民票コード → 在留カード番号 of the foreign residents

    # the codes of `people` in a list, and each one's place in it: a pick is one draw, not a copy of 300,000 keys
    codes: list[str] = field(default_factory=list)
    places: dict[str, int] = field(default_factory=dict)

    def add(self, person: Person) -> None:
        """Someone became a resident."""
        if person.code not in self.places:
            self.places[person.code] = len(self.codes)
            self.codes.append(person.code)
        self.people[person.code] = person
        self.households[person.household].add(person.code)

    def remove(self, code: str) -> None:
        """Someone stops being a resident (from the moment the call is sent: nobody else acts on them meanwhile)."""
        person = self.people.pop(code, None)
        if person:
            self.households[person.household].discard(code)
            place, last = self.places.pop(code), self.codes.pop()
            if last != code:  # the last code takes the place of the one leaving
                self.codes[place], self.places[last] = last, place
        self.cards = [(number, holder) for number, holder in self.cards if holder != code]

    def gone(self, code: str) -> None:
        """A removal was acknowledged: the node keeps a 除票 of them now (not while its call is in flight)."""
        self.removed.append(code)

    def pick(self, rng: random.Random, card: bool = False) -> Person | None:
        """A resident with no call in flight (a card holder if asked)."""
        for _ in range(50):
            if not self.codes:
                return None
            person = self.people[self.codes[rng.randrange(len(self.codes))]]
            if not person.busy and (person.card or not card):
                return person
        return None


@dataclass
class Outcome:
    """Latencies and errors of one operation."""

    latencies: list = field(default_factory=list)
    errors: dict = field(default_factory=lambda: defaultdict(int))
    skipped: int = 0
    examples: list = field(default_factory=list)


class Replay:
    """Replays one trace against one network."""

    def __init__(self, network, header: dict, events, speed: float, concurrency: int = 16, seed: int = 1,
                 show_progress: bool = True, faults=None):
        self.network = network
        self.faults = faults or []
        self.retry = Retry()
        self.acknowledged: list[tuple[str, str, int, str]] = []  # (municipality, 住民票コード, 個人履歴番号, 依頼管理番号)
        self.failures: list[float] = []  # when calls failed (seconds from the start)
        self.acked_at: list[tuple[float, str, int]] = []  # (when, municipality, 更新順番号) of each acknowledged change
        self.samples: list[dict] = []  # once a second: CPU, memory and outbox of every node, national's applied
        self.timed: list[tuple[float, float]] = []  # (when, latency ms) of every completed event
        self.spans: list[tuple[float, float, str, str]] = []  # (sent, answered, operation, ok/error/skipped) of each
        self.header = header
        self.events = events
        self.speed = speed
        self.concurrency = concurrency
        self.show_progress = show_progress
        self.rng = random.Random(seed)
        self.outcomes: dict[str, Outcome] = defaultdict(Outcome)
        self.completions: list[float] = []
        self.lags: list[float] = []
        self.registers: dict[str, Register] = {}
        self.terminals: dict[str, tuple] = {}
        self.pairs: dict[int, str] = {}
        self.fugo: dict[str, list[str]] = {}
        self._outside = 0
        # the key of the 住民票コード of people moving in from outside: new for every run, so that a run on a state
        # folder that an earlier run filled does not meet the same people again (codes are a bijection per key)
        self._outside_key = random.SystemRandom().randrange(1 << 30)
        self._extra_channels: list = []
        self._consoles: dict[str, ops_pb2_grpc.OperationsStub] = {}
        self._officials: dict[str, tuple | None] = {}  # municipality → the session of its operator with the role official
        self.notes: dict[str, str] = {}
        self.systems = OtherSystems(network, self.retry, self.rng)  # 戸籍 counter, 入管 office, 名簿調製プログラム

    # -- set-up ------------------------------------------------------------------------------------
    async def _prepare(self) -> None:
        for municipality in self.header["municipalities"]:
            kizon, cs, metadata, channels = await async_login(self.network, municipality, "T0001", "OP0001",
                                                              interceptors=[self.retry], reads=REPLAY_READS)
            self.terminals[municipality] = (kizon, cs, metadata, channels)
            self.registers[municipality] = await self._read_register(municipality, kizon, metadata)
            self.systems.prepare(municipality, "T0001")
            place = self.network.topology.municipality(municipality)
            official = next((o.id for o in place.operators if "official" in o.roles), None)
            if official:  # the office's own changes (職権) are made by its operator with the role official
                self._officials[municipality] = await async_login(self.network, municipality, place.terminals[-1],
                                                                  official, interceptors=[self.retry])
                self._extra_channels.extend(self._officials[municipality][3])
        await asyncio.gather(*(self._issue_kiosk_cards(m) for m in self.header["municipalities"]))
        self.kiosks = {m: kizon_pb2_grpc.KizonStub(self._kiosk_channel(m)) for m in self.header["municipalities"]}
        self._infonws = async_channel(self.network.topology.find("intermediate"), named_cert(self.network.pki, "infonws"),
                                      interceptors=[self.retry])
        self._intermediate = intermediate_pb2_grpc.IntermediateServerStub(self._infonws)
        registry = async_channel(self.network.topology.find("national"), named_cert(self.network.pki, "infonws"))
        self._extra_channels.append(registry)
        for municipality in self.header["municipalities"]:  # the NWS's own registry of 符号 (kept by national)
            sample = await national_pb2_grpc.NationalServerStub(registry).SampleFugo(
                national_pb2.FugoSampleRequest(tenant=municipality, count=5000), timeout=60)
            self.fugo[municipality] = list(sample.fugo)

    def _kiosk_channel(self, municipality: str):
        pki = self.network.pki
        channel = async_channel(self.network.topology.find("kizon", municipality),
                                ClientCert(*pki.client_files("kiosk-K0001"), pki.trust_bundle), interceptors=[self.retry])
        self._extra_channels.append(channel)
        return channel

    def _console(self, municipality: str) -> ops_pb2_grpc.OperationsStub:
        """The operations console's stub on a municipality's CS (for the nightly batch)."""
        if municipality not in self._consoles:
            node = self.network.topology.find("cs", municipality)
            channel = async_channel(node, console_cert(self.network.pki, "cs"), interceptors=[self.retry])
            self._extra_channels.append(channel)
            self._consoles[municipality] = ops_pb2_grpc.OperationsStub(channel)
        return self._consoles[municipality]

    async def _issue_kiosk_cards(self, municipality: str) -> None:
        """Cards with a PIN for some card holders, so that コンビニ交付 has someone to serve."""
        kizon, _, metadata, _ = self.terminals[municipality]
        register = self.registers[municipality]
        holders = [p for p in register.people.values() if p.card][:KIOSK_CARDS]
        issued = []
        for person in holders:
            try:
                await kizon.ChangeCard(card_pb2.CardRequest(action=card_pb2.APPLY, resident_code=person.code),
                                       metadata=metadata)
            except grpc.aio.AioRpcError as exc:
                if rule_of(exc) != CARD_STATE_TRANSITION.reason:
                    raise
                # an earlier run applied for or issued this card already: if issued, set the kiosk PIN again
                try:
                    status = await kizon.ChangeCard(card_pb2.CardRequest(
                        action=card_pb2.RESET_PIN, resident_code=person.code, pin=KIOSK_PIN), metadata=metadata)
                except grpc.aio.AioRpcError as again:
                    if rule_of(again) != CARD_STATE_TRANSITION.reason:
                        raise
                    continue  # applied or being made: issued below
                register.cards.append((status.card_number, person.code))
                issued.append(person)
        for person in (p for p in holders if p not in issued):
            for _ in range(100):  # the card system manufactures in a batch about every second
                try:
                    status = await kizon.ChangeCard(card_pb2.CardRequest(action=card_pb2.ISSUE, resident_code=person.code,
                                                                         pin=KIOSK_PIN), metadata=metadata)
                    register.cards.append((status.card_number, person.code))
                    break
                except grpc.aio.AioRpcError as exc:
                    if rule_of(exc) != CARD_STATE_TRANSITION.reason:
                        raise
                    await asyncio.sleep(0.1)

    async def _read_register(self, municipality, kizon, metadata) -> Register:
        """The current residents, read with a manager's prior approval (bulk output rule)."""
        purpose = "workload replay: the residents to act on"
        token = await async_bulk_approval(self.network, municipality, "OP0001", "T0001", purpose, 10_000_000)
        register = Register()
        adult = (office_today() - dt.timedelta(days=366 * 20)).isoformat()  # (20 or over: 18 with room to spare)
        async for record in kizon.ExportResidents(kizon_pb2.ExportRequest(purpose=purpose),
                                                  metadata=metadata + ((APPROVAL_KEY, token),), timeout=600):
            register.add(Person(record.resident_code, record.household_number, record.card_issued))
            if record.residence_card_number:
                register.foreign[record.resident_code] = record.residence_card_number
            elif record.honseki and record.relationship in ("妻", "夫"):
                register.spouses.append(record.resident_code)  # (a spouse in the 筆頭者's 戸籍, as loaded)
            elif record.honseki and record.birth_date < adult and record.relationship != "世帯主":
                register.unmarried.setdefault(record.sex, []).append(record.resident_code)
        return register

    async def _close(self) -> None:
        for _, _, _, channels in self.terminals.values():
            for ch in channels:
                await ch.close()
        await self._infonws.close()
        await self.systems.close()
        for ch in self._extra_channels:
            await ch.close()

    # -- the run ----------------------------------------------------------------------------------------
    async def run(self) -> dict:
        """Replay every event on schedule; the result."""
        await self._prepare()
        gate = asyncio.Semaphore(self.concurrency)
        tasks = set()
        bar = tqdm(total=len(self.events), unit="events", desc=f"replay ×{self.speed:,.0f}", file=sys.stderr,
                   disable=not self.show_progress)
        first = self.events[0].t if self.events else 0.0
        self.t0 = time.perf_counter()
        span = (self.events[-1].t - first) / self.speed if self.events else 0.0
        faulting = asyncio.create_task(execute(self.network, self.faults, span, self.t0)) if self.faults else None
        sampling = asyncio.create_task(self._sample())
        for event in self.events:
            due = self.t0 + (event.t - first) / self.speed
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await gate.acquire()
            self.lags.append(max(0.0, time.perf_counter() - due))
            task = asyncio.create_task(self._one(event, gate, bar))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        if faulting is not None:
            await faulting
        sampling.cancel()
        await asyncio.gather(sampling, return_exceptions=True)
        bar.close()
        wall = time.perf_counter() - self.t0
        await self._close()
        return self._result(wall)

    async def _one(self, event, gate, bar) -> None:
        started, status = time.perf_counter(), "error"
        try:
            try:
                done = await self._dispatch(event)
            except grpc.aio.AioRpcError as exc:
                outcome = self.outcomes[event.op]
                outcome.errors[exc.code().name] += 1
                self.failures.append(time.perf_counter() - self.t0)
                if len(outcome.examples) < 5:
                    outcome.examples.append(exc.details())
                return
            if done is False:
                status = "skipped"
                self.outcomes[event.op].skipped += 1
                return
            status = "ok"
            self.outcomes[event.op].latencies.append((time.perf_counter() - started) * 1000)
            self.completions.append(time.perf_counter() - self.t0)
            self.timed.append((self.completions[-1], self.outcomes[event.op].latencies[-1]))
        finally:
            self.spans.append((started - self.t0, time.perf_counter() - self.t0, event.op, status))
            gate.release()
            bar.update(1)

    async def _dispatch(self, event):
        """The calls of one event; False when the event has nobody to act on."""
        municipality = event.municipality
        kizon, cs, metadata, _ = self.terminals[municipality]
        register = self.registers[municipality]
        # The office's clock decides every date a node records (届出年月日, 異動日): the simulated day is
        # the trace's, the dates sent are today's in Japan.
        today = office_today().isoformat()
        op = event.op
        if op == "本人確認":
            person = register.pick(self.rng)
            if person is None:
                return False
            await cs.GetIdentity(common_pb2.ResidentKey(resident_code=person.code), metadata=metadata, timeout=30)
            return True
        if op == "検索":
            person = register.pick(self.rng)
            if person is None:
                return False
            found = await cs.SearchIdentity(identity_pb2.IdentitySearch(resident_code=person.code), metadata=metadata,
                                            timeout=30)
            if not found.matches:
                return False
            info = found.matches[0]
            await cs.SearchIdentity(identity_pb2.IdentitySearch(name_kana=info.name_kana, birth_date=info.birth_date),
                                    metadata=metadata, timeout=30)
            return True
        if op == "情報提供":
            if not self.fugo.get(municipality):
                return False
            await self._intermediate.ProvideInfo(intermediate_pb2.ProvisionRequest(
                tenant=municipality, fugo=self.rng.choice(self.fugo[municipality]), inquiry_id=f"R{event.t:.0f}",
                jimu=self.rng.choice(list(jimu_table()))), timeout=30)  # a 事務 of the table, uniformly
            return True
        if op == "夜間バッチ":  # run by operations (the domain's console), not by a clerk at the counter
            console = self._console(municipality)
            await console.RunBatch(ops_pb2.BatchRequest(name="purge"), timeout=60)
            return True
        if op == "証明書":
            kind = CERTIFICATE_KINDS.get(event.args.get("kind"), kizon_pb2.RESIDENT_COPY)
            # (someone who moved out and came back is in `removed` and a resident again: a 除票 is only for a former one)
            code = self.rng.choice(register.removed) if kind == kizon_pb2.REMOVED_COPY and register.removed else None
            if code is None or code in register.people:
                kind = kind if kind != kizon_pb2.REMOVED_COPY else kizon_pb2.RESIDENT_COPY
                person = register.pick(self.rng)
                if person is None:
                    return False
                code = person.code
            await kizon.IssueCertificate(requests.with_notifier(kizon_pb2.CertificateRequest(
                kind=kind, resident_code=code, items=["name_kanji", "address"] if kind == kizon_pb2.STATED_ITEMS else [])),
                metadata=metadata, timeout=30)
            return True
        if op == "コンビニ交付":
            clock: tuple = ()
            if self.network.simulated_clock():  # the kiosk's hours by the scenario's clock: same outcome at any hour
                moment = dt.datetime.fromisoformat(self.header["start"]) + dt.timedelta(seconds=event.t)
                clock = ((SIMULATED_KEY, moment.isoformat()),)
                now = moment.time()
            else:  # by the wall clock of the nodes (a network started without the simulated clock)
                now = kiosk_clock()
            if not KIOSK_HOURS[0] <= now < KIOSK_HOURS[1]:
                self.notes[op] = ("skipped: outside the kiosk's hours (06:30–23:00 JST) by the "
                                  + ("scenario's clock" if clock else "nodes' wall clock (started without the simulated clock)"))
                return False
            if not register.cards:
                return False
            number, _ = self.rng.choice(register.cards)
            await self.kiosks[municipality].IssueKioskCertificate(kizon_pb2.KioskRequest(
                card_number=number, pin=KIOSK_PIN, kind=kizon_pb2.RESIDENT_COPY), metadata=clock, timeout=30)
            return True
        if op in OFFICE_OPS:
            return await self._by_office(event, municipality, register, today)
        if op in FAMILY_OPS or op in IMMIGRATION_OPS or op == JURY_LIST:
            return await self.systems.dispatch(event, register, metadata)
        return await self._change(event, municipality, kizon, metadata, register, today)

    async def _by_office(self, event, municipality: str, register: "Register", today: str) -> bool:
        """職権消除 or 職権記載, by the office's operator with the role official (skipped if the roster has none)."""
        if not self._officials.get(municipality):
            return False
        kizon, _, metadata, _ = self._officials[municipality]
        survey = f"調査-{municipality}-{event.t:.0f}"
        if event.op == "職権記載":
            reply = await kizon.RecordByOffice(requests.official_entry(records_pb2.ResidentRecord(
                name_kanji="職権 記載", name_kana="ショッケン キサイ", birth_date="1979-09-09", sex=self.rng.choice("12")),
                self._address(municipality), survey, today=today), metadata=metadata, timeout=60)
            record = reply.records[0]
            register.add(Person(record.resident_code, record.household_number, False))
        else:
            person = register.pick(self.rng)
            if person is None:
                return False
            register.remove(person.code)
            reply = await kizon.RemoveByOffice(requests.official_removal(person.code, survey, today=today),
                                               metadata=metadata, timeout=60)
            register.gone(person.code)
        self._acknowledge(municipality, reply)
        return True

    async def _change(self, event, municipality, kizon, metadata, register: Register, today: str):
        """A counter 異動."""
        op, args = event.op, event.args
        address = self._address(municipality)
        if op == "転入":
            return await self._move_in(event, municipality, kizon, metadata, register, today, address)
        person = register.pick(self.rng, card=bool(args.get("special")))
        if person is None:
            return False
        person.busy = True
        try:
            if op == "出生":
                reply = await kizon.Birth(requests.birth(person.household, sex=self.rng.choice("12"),
                                                         name=("新生 子", "シンセイ コ"), today=today),
                                          metadata=metadata, timeout=60)
                child = reply.records[0]
                register.add(Person(child.resident_code, child.household_number, False))
                self._acknowledge(municipality, reply)
            elif op == "転居":
                reply = await kizon.MoveWithin(requests.move_within(
                    person.code, address, whole_household=bool(args.get("whole_household")), today=today),
                    metadata=metadata, timeout=60)
                self._acknowledge(municipality, reply)
            elif op == "死亡":
                register.remove(person.code)
                self._acknowledge(municipality, await kizon.Death(requests.death(person.code, today=today),
                                                                  metadata=metadata, timeout=60))
                register.gone(person.code)
            elif op == "国外転出":
                register.remove(person.code)
                self._acknowledge(municipality, await kizon.Emigrate(requests.emigration(
                    person.code, (office_today() + dt.timedelta(days=3)).isoformat(), today=today),
                    metadata=metadata, timeout=60))
                register.gone(person.code)
            elif op == "転出":
                register.remove(person.code)
                destination = args.get("to", "outside")
                outside = destination == "outside"
                moved = await kizon.MoveOut(requests.move_out(
                    person.code, (office_today() + dt.timedelta(days=3)).isoformat(),
                    destination=OUTSIDE if outside else destination,
                    destination_address=requests.OUTSIDE_ADDRESS if outside else f"({destination})",
                    special=bool(args.get("special")), today=today), metadata=metadata, timeout=60)
                self._acknowledge(municipality, moved)
                register.gone(person.code)
                if args.get("pair"):
                    self.pairs[args["pair"]] = person.code
            return True
        finally:
            person.busy = False

    async def _move_in(self, event, municipality, kizon, metadata, register, today, address):
        args = event.args
        if args.get("special"):  # 特例転入 of someone whose 特例転出 was replayed before
            code = self.pairs.pop(args.get("pair"), None)
            if code is None:
                return False
            request = requests.with_notifier(kizon_pb2.MoveInRequest(
                person=records_pb2.ResidentRecord(resident_code=code), address=address, move_in_date=today,
                notification_date=today, special=True))
            for attempt in range(50):  # the 転出証明書情報 may still be on its way CS → CS
                try:
                    reply = await kizon.MoveIn(request, metadata=metadata, timeout=60)
                    break
                except grpc.aio.AioRpcError as exc:
                    if exc.code() != grpc.StatusCode.NOT_FOUND or attempt == 49:
                        raise
                    await asyncio.sleep(0.1)
        elif args.get("from") == "abroad":
            reply = await kizon.MoveIn(requests.move_in_from_abroad(records_pb2.ResidentRecord(
                name_kanji="MILLER ANNA", name_kana="ミラー アンナ", birth_date="1992-06-01", sex="2",
                resident_type="外国人住民", nationality="USA"), address, today=today), metadata=metadata, timeout=60)
        else:  # from a municipality outside the network, with a paper 転出証明書
            reply = await self._move_in_from_outside(kizon, metadata, today, address)
        record = reply.records[0]
        register.add(Person(record.resident_code, record.household_number, record.card_issued))
        self._acknowledge(municipality, reply)
        return True

    async def _move_in_from_outside(self, kizon, metadata, today: str, address):
        """A 転入 with a paper 転出証明書 of a municipality outside the network, of someone national does not know."""
        for attempt in range(OUTSIDE_TRIES):
            self._outside += 1
            code = resident_code(OUTSIDE, self._outside, self._outside_key)
            person = records_pb2.ResidentRecord(resident_code=code, name_kanji="外部 転入", name_kana="ガイブ テンニュウ",
                                                birth_date="1985-02-03", sex=self.rng.choice("12"),
                                                card_issued=self.rng.random() < 0.8,
                                                address="東京都千代田区千代田1番1号", resident_type="日本人")
            try:
                return await kizon.MoveIn(requests.with_notifier(kizon_pb2.MoveInRequest(
                    person=records_pb2.ResidentRecord(resident_code=code), address=address, move_in_date=today,
                    notification_date=today,
                    certificate=identity_pb2.MoveOutCertificate(person=person, issuing_municipality_code=OUTSIDE,
                                                                planned_move_out_date=today))), metadata=metadata, timeout=60)
            except grpc.aio.AioRpcError as exc:
                # The made-up code is one national already knows (a few hundred thousand of ten billion: about once
                # in a year of a 200,000 network): a real 転出証明書 of that person would carry the 個人番号; another
                # person is made up instead.
                if rule_of(exc) != MOVE_IN_INDIVIDUAL_NUMBER_REQUIRED.reason or attempt == OUTSIDE_TRIES - 1:
                    raise

    def _acknowledge(self, municipality: str, reply) -> None:
        """Keep what the counter was told was recorded: checked against the register after the run, and timed
        until national has applied it (the propagation lag)."""
        change = reply if hasattr(reply, "records") else reply.change
        for r in change.records:
            self.acknowledged.append((municipality, r.resident_code, r.history_number, r.request_control_number))
        self.acked_at.append((time.perf_counter() - self.t0, municipality, change.update_sequence))

    async def _sample(self) -> None:
        """Every second: each node's CPU and memory, its outbox, and what national has applied; and the load
        generator's side: this process's own CPU and memory (the replay, its gRPC threads, this sampler), the
        machine's CPU (every core, since the last sample) and its load average."""
        import psutil
        processes = {}
        stubs = {}
        national = self.network.topology.find("national")
        me = psutil.Process()
        psutil.cpu_percent(None)  # (the machine's first reading is then of the first second, not since boot)
        while True:
            now = time.perf_counter() - self.t0
            own = os.times()
            row = {"t": round(now, 2), "cpu_s": {}, "rss_mb": {}, "outbox": {}, "applied": {},
                   "client_cpu_s": round(own.user + own.system, 3), "client_rss_mb": round(me.memory_info().rss / 2**20, 1),
                   "machine_cpu_pct": psutil.cpu_percent(None), "load1": round(os.getloadavg()[0], 2)}
            for node in self.network.topology.all_nodes:
                pid = self.network.pid(node.name)
                try:
                    if pid and (node.name not in processes or processes[node.name].pid != pid):
                        processes[node.name] = psutil.Process(pid)
                    if node.name in processes:
                        times = processes[node.name].cpu_times()
                        row["cpu_s"][node.name] = round(times.user + times.system, 2)
                        row["rss_mb"][node.name] = round(processes[node.name].memory_info().rss / 2**20, 1)
                except psutil.Error:
                    processes.pop(node.name, None)
                try:
                    if node.name not in stubs:
                        ch = async_channel(node, monitor_cert(self.network.pki, node.kind), verify_server=False)
                        self._extra_channels.append(ch)
                        stubs[node.name] = ops_pb2_grpc.OperationsStub(ch)
                    status = await stubs[node.name].GetStatus(ops_pb2.StatusRequest(), timeout=1)
                    row["outbox"][node.name] = status.outbox_pending
                    if node.name == national.name:
                        row["applied"] = dict(status.applied)
                except grpc.aio.AioRpcError:
                    pass  # down (a fault) or busy: no reading this second
            self.samples.append(row)
            await asyncio.sleep(1.0)

    def _propagation(self) -> list[float]:
        """Per second of the run: the largest lag (s) from an acknowledgement to national applying it."""
        lags: dict[int, float] = {}
        for acked, municipality, sequence in self.acked_at:
            applied_at = next((s["t"] for s in self.samples if s["t"] >= acked
                               and s["applied"].get(municipality, 0) >= sequence), None)
            if applied_at is not None:
                second = int(acked)
                lags[second] = max(lags.get(second, 0.0), applied_at - acked)
        return [lags.get(i, 0.0) for i in range(int(max(lags, default=-1)) + 1)]

    def _address(self, municipality: str) -> records_pb2.Address:
        place = self.rng.choice(towns(municipality))
        return records_pb2.Address(town_code=place.code, address_line=f"{self.rng.randint(1, 3000)}番地")

    # -- the result -------------------------------------------------------------------------------------
    def _result(self, wall: float) -> dict:
        operations = {}
        for op, outcome in sorted(self.outcomes.items()):
            lat = sorted(outcome.latencies)
            operations[op] = {
                "count": len(lat), "errors": dict(outcome.errors), "skipped": outcome.skipped,
                "p50_ms": percentile(lat, 0.50), "p90_ms": percentile(lat, 0.90), "p99_ms": percentile(lat, 0.99),
                "p999_ms": percentile(lat, 0.999), "max_ms": lat[-1] if lat else 0.0,
                "error_examples": outcome.examples,
                **({"note": self.notes[op]} if op in self.notes else {}),
            }
        seconds = int(wall) + 1
        timeline = [0] * seconds
        for t in self.completions:
            timeline[min(seconds - 1, int(t))] += 1
        errors_per_s = [0] * seconds
        for t in self.failures:
            errors_per_s[min(seconds - 1, int(t))] += 1
        by_second: list[list[float]] = [[] for _ in range(seconds)]
        for t, latency in self.timed:
            by_second[min(seconds - 1, int(t))].append(latency)
        lags = sorted(self.lags)
        # the load tester's figures: what the schedule offered, what was sent, the calls in flight, each operation's rate
        first = self.events[0].t if self.events else 0.0
        offered = [0] * seconds
        for event in self.events:
            due = (event.t - first) / self.speed
            if due <= wall:  # (an interrupted run: what was due before it ended)
                offered[min(seconds - 1, int(due))] += 1
        sent = [0] * seconds
        by_op: dict[str, list[int]] = {}
        for start, end, op, status in self.spans:
            sent[min(seconds - 1, max(0, int(start)))] += 1
            if status == "ok":
                by_op.setdefault(op, [0] * seconds)[min(seconds - 1, int(end))] += 1
        in_flight_mean, in_flight_max = in_flight(self.spans, wall, seconds)
        return {
            "scenario": self.header["scenario"], "seed": self.header["seed"], "speed": self.speed,
            "concurrency": self.concurrency, "events": len(self.events), "wall_seconds": wall,
            "completed": len(self.completions), "errors": sum(sum(o["errors"].values()) for o in operations.values()),
            "operations": operations, "throughput_per_s": timeline, "errors_per_s": errors_per_s,
            "p99_ms_per_s": [percentile(values, 0.99) for values in by_second],
            "offered_per_s": offered, "sent_per_s": sent, "throughput_by_op_per_s": dict(sorted(by_op.items())),
            "in_flight_mean_per_s": in_flight_mean, "in_flight_max_per_s": in_flight_max,
            "machine_cores": os.cpu_count(),
            "lag_p50_s": percentile(lags, 0.5),
            "lag_max_s": lags[-1] if lags else 0.0, "counter": self.header.get("counter", {}),
            "retried_calls": self.retry.retried, "faults": records(self.faults),
            "samples": self.samples, "propagation_lag_s": self._propagation(),
            "latencies": [(round(t, 3), round(latency, 3)) for t, latency in self.timed],
            "acknowledged": len(self.acknowledged),
        }


def in_flight(spans, wall: float, seconds: int) -> tuple[list[float], list[int]]:
    """Per second of wall time, the calls in flight: their mean over the second (the time-weighted count) and the
    most at once, from each call's (sent, answered) times."""
    mean, most = [0.0] * seconds, [0] * seconds
    second_of = lambda t: min(seconds - 1, max(0, int(t)))  # noqa: E731
    edges = sorted([(start, 1) for start, *_ in spans] + [(end, -1) for _, end, *_ in spans])  # (answers first at a tie)
    level, since = 0, 0.0
    for at, step in [*edges, (max(wall, edges[-1][0] if edges else 0.0), 0)]:
        for second in range(second_of(since), second_of(at) + 1):  # `level` calls in flight from `since` to `at`
            overlap = min(at, second + 1) - max(since, second)
            if overlap > 0:
                mean[second] += level * overlap
                most[second] = max(most[second], level)
        level, since = level + step, at
        most[second_of(at)] = max(most[second_of(at)], level)
    for second in range(seconds):  # (the last second is only partly of the run)
        length = min(wall, second + 1) - second
        mean[second] = round(mean[second] / length, 3) if length > 0 else 0.0
    return mean, most


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of the values lie (nearest rank; 0 for none)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


class Retry(grpc.aio.UnaryUnaryClientInterceptor):
    """What a terminal does when its node is briefly unreachable (restarted, stopped, partitioned): it tries again
    with the same 依頼管理番号 (x-request-id, given to every call), so that a change is made once however often it
    is sent. Bounded by RETRY_SECONDS."""

    def __init__(self):
        self.retried = 0

    async def intercept_unary_unary(self, continuation, details, request):
        metadata = list(details.metadata or ())
        if not any(key == REQUEST_KEY for key, _ in metadata):
            metadata.append((REQUEST_KEY, uuid.uuid4().hex))
        details = grpc.aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials,
                                             details.wait_for_ready)
        deadline, pause = time.monotonic() + RETRY_SECONDS, 0.1
        while True:
            call = await continuation(details, request)
            try:
                await call
                return call
            except grpc.aio.AioRpcError as exc:
                unreachable = exc.code() in RETRIED or (
                    exc.code() == grpc.StatusCode.UNKNOWN and "failed to connect" in (exc.details() or "").lower())
                if not unreachable or time.monotonic() > deadline:
                    raise
            self.retried += 1
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)


def replay(network, header: dict, events, speed: float, concurrency: int = 16, seed: int = 1,
           show_progress: bool = True, faults=None) -> dict:
    """Replay events against network (with a fault plan running beside it); the result, and what the counters
    were told was recorded."""
    run = Replay(network, header, events, speed, concurrency, seed, show_progress, faults)
    result = asyncio.run(run.run())
    result["acknowledged_records"] = run.acknowledged
    return result


def write_result(result: dict, path) -> None:
    """The result as JSON."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=1)
