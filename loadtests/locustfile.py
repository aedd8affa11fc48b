"""Locust users over gRPC with mutual TLS, one class for each kind of terminal.

    TESTBED_HOME=.testbed locust -f loadtests/locustfile.py --headless -u 20 -r 5 -t 1m \\
        --csv reports/locust --html reports/locust.html

Settings come from the environment: TESTBED_HOME (the running network's state folder, as for
`testbed`), TESTBED_MUNICIPALITY (default 142140). Each call is one Locust request named after its
service and method. The users read the register once per process (with a manager's approval) to know
whom to act on; the 情報提供NWS user takes its 符号 from the 中間サーバ; the kiosk user issues cards with a PIN to a
few card holders first (once per process).
"""
from __future__ import annotations

import grpc.experimental.gevent as grpc_gevent

grpc_gevent.init_gevent()  # before any channel exists

import os  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import grpc  # noqa: E402
from gevent.lock import Semaphore  # noqa: E402
from locust import User, between, task  # noqa: E402

from nodes.clock import KIOSK_HOURS, kiosk_clock, office_today  # noqa: E402
from nodes.runtime import APPROVAL_KEY  # noqa: E402
from nodes.tls import ClientCert  # noqa: E402
from protos import (card_pb2, common_pb2, identity_pb2, intermediate_pb2, intermediate_pb2_grpc, kizon_pb2,  # noqa: E402
                    kizon_pb2_grpc, national_pb2, national_pb2_grpc, records_pb2)
from scenarios.towns import towns  # noqa: E402
from testbed.client import Counter, bulk_approval, channel, default_state_dir, named_cert  # noqa: E402
from testbed.network import Network  # noqa: E402

MUNICIPALITY = os.environ.get("TESTBED_MUNICIPALITY", "142140")
_register: list[records_pb2.ResidentRecord] = []
_cards: list[str] = []
_setup = Semaphore()  # users start together: one of them reads the register (and issues cards) for all


def network() -> Network:
    """The running network of TESTBED_HOME."""
    return Network.open(Path(os.environ.get("TESTBED_HOME") or default_state_dir()))


def register() -> list[records_pb2.ResidentRecord]:
    """Some current residents (one 町字's), read once per process with a manager's approval."""
    with _setup:
        if not _register:
            _read_register()
    return _register


def _read_register() -> None:
    net = network()
    purpose = "load test: whom to act on"
    token = bulk_approval(net, MUNICIPALITY, "OP0001", "T0003", purpose, 10_000_000)  # one output, one approval
    with Counter(net, MUNICIPALITY, "T0003", "OP0001") as clerk:
        stream = clerk(clerk.kizon.ExportResidents, kizon_pb2.ExportRequest(purpose=purpose),
                       metadata=((APPROVAL_KEY, token),), timeout=600)
        for record in stream:
            _register.append(record)
            if len(_register) >= 2000:
                stream.cancel()  # enough people to act on
                break


def kiosk_cards(net, count: int = 5) -> list[str]:
    """Cards issued with PIN 1234 to a few card holders, once per process, for the kiosk users."""
    holders = [r for r in register() if r.card_issued][:count]
    with _setup:
        if _cards:
            return _cards
        with Counter(net, MUNICIPALITY, "T0001", "OP0001") as clerk:
            for person in holders:
                clerk(clerk.kizon.ChangeCard, card_pb2.CardRequest(action=card_pb2.APPLY, resident_code=person.resident_code))
            for person in holders:
                for _ in range(100):  # the card system manufactures about every second
                    try:
                        status = clerk(clerk.kizon.ChangeCard, card_pb2.CardRequest(
                            action=card_pb2.ISSUE, resident_code=person.resident_code, pin=Kiosk.pin))
                        _cards.append(status.card_number)
                        break
                    except grpc.RpcError as exc:
                        if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                            raise
                        time.sleep(0.1)
    return _cards


class GrpcUser(User):
    """A terminal: calls are timed and reported to Locust as requests named service/method."""

    abstract = True

    def timed(self, name: str, call, *args, **kwargs):
        """Make one call and report it."""
        started = time.perf_counter()
        exception, size = None, 0
        try:
            reply = call(*args, **kwargs)
            size = reply.ByteSize() if hasattr(reply, "ByteSize") else 0
            return reply
        except grpc.RpcError as exc:
            exception = exc
        finally:
            self.environment.events.request.fire(request_type="grpc", name=name, response_time=(time.perf_counter() - started) * 1000,
                                                 response_length=size, exception=exception, context={})


class TerminalUser(GrpcUser):
    """A terminal of the municipality with an operator logged in, knowing some residents."""

    abstract = True
    terminal = "T0001"
    operator = "OP0001"

    def on_start(self):
        self.counter = Counter(network(), MUNICIPALITY, self.terminal, self.operator)
        self.people = register()

    def on_stop(self):
        self.counter.close()


class CounterStaff(TerminalUser):
    """窓口: 転居 and the reads behind a 住民票の写し, at a terminal of the municipality."""

    weight = 3
    wait_time = between(0.5, 2)

    @task(3)
    def certificate_read(self):
        person = random.choice(self.people)
        record = self.timed("kizon/GetResident", self.counter, self.counter.kizon.GetResident,
                            common_pb2.ResidentKey(resident_code=person.resident_code))
        if record is not None:
            self.timed("kizon/GetHousehold", self.counter, self.counter.kizon.GetHousehold,
                       kizon_pb2.HouseholdRequest(household_number=record.household_number))

    @task(1)
    def move_within(self):
        person = random.choice(self.people)
        place = random.choice(towns(MUNICIPALITY))
        self.timed("kizon/MoveWithin", self.counter, self.counter.kizon.MoveWithin, kizon_pb2.MoveWithinRequest(
            resident_code=person.resident_code, move_date=office_today().isoformat(),
            address=records_pb2.Address(town_code=place.code, address_line=f"{random.randint(1, 3000)}番地")))


class IntegratedTerminal(TerminalUser):
    """統合端末: 本人確認 and 本人確認情報検索 at the CS."""

    weight = 2
    wait_time = between(0.5, 2)
    terminal = "T0003"

    @task(2)
    def identity_check(self):
        person = random.choice(self.people)
        self.timed("cs/GetIdentity", self.counter, self.counter.cs.GetIdentity,
                   common_pb2.ResidentKey(resident_code=person.resident_code))

    @task(1)
    def search(self):
        person = random.choice(self.people)
        self.timed("cs/SearchIdentity", self.counter, self.counter.cs.SearchIdentity,
                   identity_pb2.IdentitySearch(name_kana=person.name_kana, birth_date=person.birth_date))


class Kiosk(GrpcUser):
    """コンビニ交付: a kiosk front end; residents prove themselves with card and PIN (06:30–23:00 JST)."""

    weight = 1
    wait_time = between(0.5, 2)
    pin = "1234"

    def on_start(self):
        net = network()
        self.cards = kiosk_cards(net)
        pki = net.pki
        self.channel = channel(net.topology.find("kizon", MUNICIPALITY), ClientCert(*pki.client_files("kiosk-K0002"),
                                                                                   pki.trust_bundle))
        self.stub = kizon_pb2_grpc.KizonStub(self.channel)

    def on_stop(self):
        self.channel.close()

    @task
    def resident_copy(self):
        if self.cards and KIOSK_HOURS[0] <= kiosk_clock() < KIOSK_HOURS[1]:
            self.timed("kizon/IssueKioskCertificate", self.stub.IssueKioskCertificate, kizon_pb2.KioskRequest(
                card_number=random.choice(self.cards), pin=self.pin, kind=kizon_pb2.RESIDENT_COPY), timeout=30)


class InfoProvisionNetwork(GrpcUser):
    """情報提供ネットワークシステム: 情報照会 by 符号 at the 中間サーバ."""

    weight = 1
    wait_time = between(0.2, 1)

    def on_start(self):
        net = network()
        self.channel = channel(net.topology.find("intermediate"), named_cert(net.pki, "infonws"))
        self.stub = intermediate_pb2_grpc.IntermediateServerStub(self.channel)
        with channel(net.topology.find("national"), named_cert(net.pki, "infonws")) as registry:  # the NWS's 符号
            self.fugo = list(national_pb2_grpc.NationalServerStub(registry).SampleFugo(
                national_pb2.FugoSampleRequest(tenant=MUNICIPALITY, count=2000), timeout=30).fugo)

    def on_stop(self):
        self.channel.close()

    @task
    def inquiry(self):
        if self.fugo:
            self.timed("intermediate/ProvideInfo", self.stub.ProvideInfo, intermediate_pb2.ProvisionRequest(
                tenant=MUNICIPALITY, fugo=random.choice(self.fugo), inquiry_id=f"L{random.randrange(10**9)}"), timeout=30)
