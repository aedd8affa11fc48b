"""Locust users over gRPC with mutual TLS, one class for each kind of terminal.

    locust -f loadtests/locustfile.py --testbed-home .testbed --municipality 142140 --headless -u 20 -r 5 -t 1m \\
        --csv reports/locust --html reports/locust.html

Settings are Locust options (also fields of the web UI, and environment variables TESTBED_HOME and
TESTBED_MUNICIPALITY): --testbed-home (the running network's state folder, as for `testbed`) and
--municipality (default 142140). Every call is timed by a gRPC client interceptor, as in Locust's own
gRPC example, and reported as one request named after its service and method. The users read the
register once per process (with a manager's approval) to know
whom to act on; the 情報提供NWS user takes its 符号 from the 中間サーバ; the kiosk user makes the cards of a few card
holders usable with a PIN first (once per process; a card an earlier run issued gets its PIN set again). A user
that cannot start is reported as a failed request named CLASS/on_start and sends nothing.
"""
from __future__ import annotations

import grpc.experimental.gevent as grpc_gevent

grpc_gevent.init_gevent()  # before any channel exists

import os  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import grpc  # noqa: E402
from gevent.lock import Semaphore  # noqa: E402
from locust import User, between, events, task  # noqa: E402

from nodes.clock import KIOSK_HOURS, kiosk_clock, office_today  # noqa: E402
from nodes.guard import APPROVAL_KEY  # noqa: E402
from nodes.jimu import table as jimu_table  # noqa: E402
from nodes.reasons.card import CARD_STATE_TRANSITION  # noqa: E402
from nodes.refusal import rule_of  # noqa: E402
from nodes.tls import ClientCert  # noqa: E402
from protos import (card_pb2, common_pb2, identity_pb2, intermediate_pb2, intermediate_pb2_grpc, kizon_pb2,  # noqa: E402
                    kizon_pb2_grpc, national_pb2, national_pb2_grpc, records_pb2)
from scenarios.towns import towns  # noqa: E402
from testbed import requests  # noqa: E402
from testbed.client import Counter, bulk_approval, channel, default_state_dir, named_cert  # noqa: E402
from testbed.network import Network  # noqa: E402

_register: list[records_pb2.ResidentRecord] = []
_cards: list[str] = []
_setup = Semaphore()  # users start together: one of them reads the register (and issues cards) for all


@events.init_command_line_parser.add_listener
def _options(parser):
    parser.add_argument("--testbed-home", env_var="TESTBED_HOME", default=str(default_state_dir()),
                        include_in_web_ui=True, help="the running network's state folder (as `testbed --state-dir`)")
    parser.add_argument("--municipality", env_var="TESTBED_MUNICIPALITY", default="142140", include_in_web_ui=True,
                        help="the municipality whose terminals the users are")


SETTINGS = {"home": os.environ.get("TESTBED_HOME") or str(default_state_dir()),
            "municipality": os.environ.get("TESTBED_MUNICIPALITY", "142140")}


@events.test_start.add_listener
def _settings(environment, **_):
    options = environment.parsed_options
    if options is not None:
        SETTINGS.update(home=options.testbed_home, municipality=options.municipality)


def network() -> Network:
    """The running network of --testbed-home."""
    return Network.open(Path(SETTINGS["home"]))


SERVICES = {"Kizon": "kizon", "CommunicationServer": "cs", "IntermediateServer": "intermediate"}


class Timing(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Times every call and reports it to Locust as a request named service/method (Locust's gRPC example)."""

    def __init__(self, environment):
        self.environment = environment

    def _report(self, details, started, response_length, exception):
        service, method = details.method.rsplit("/", 2)[-2:]
        self.environment.events.request.fire(
            request_type="grpc", name=f"{SERVICES.get(service.rsplit('.', 1)[-1], service)}/{method}",
            response_time=(time.perf_counter() - started) * 1000, response_length=response_length,
            exception=exception, context={})

    def intercept_unary_unary(self, continuation, details, request):
        started = time.perf_counter()
        call = continuation(details, request)
        exception = call.exception()
        self._report(details, started, 0 if exception else call.result().ByteSize(), exception)
        return call

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(details, request)  # streams (the register's export) are not load: not reported


def register() -> list[records_pb2.ResidentRecord]:
    """Some current residents (one 町字's), read once per process with a manager's approval."""
    with _setup:
        if not _register:
            _read_register()
    return _register


def _read_register() -> None:
    net = network()
    purpose = "load test: whom to act on"
    token = bulk_approval(net, SETTINGS["municipality"], "OP0001", "T0003", purpose, 10_000_000)  # one output, one approval
    with Counter(net, SETTINGS["municipality"], "T0003", "OP0001") as clerk:
        stream = clerk(clerk.kizon.ExportResidents, kizon_pb2.ExportRequest(purpose=purpose),
                       metadata=((APPROVAL_KEY, token),), timeout=600)
        for record in stream:
            _register.append(record)
            if len(_register) >= 2000:
                stream.cancel()  # enough people to act on
                break


def kiosk_cards(net, count: int = 5) -> list[str]:
    """Cards usable with PIN 1234 for a few card holders, once per process, for the kiosk users."""
    # idempotent: a card an earlier run (Locust's or `testbed run`'s) issued is used as it is, its PIN set again
    holders = [r for r in register() if r.card_issued][:count]
    with _setup:
        if _cards:
            return _cards
        with Counter(net, SETTINGS["municipality"], "T0001", "OP0001") as clerk:
            waiting = [person.resident_code for person in holders if not _ready_at_once(clerk, person.resident_code)]
            deadline = time.monotonic() + 15  # the card system manufactures about every second
            while waiting and time.monotonic() < deadline:
                waiting = [code for code in waiting if not _issue(clerk, code)]
                if waiting:
                    time.sleep(0.1)
        if holders and not _cards:
            raise RuntimeError(f"none of the {len(holders)} card holders' cards could be made usable "
                               f"(still applied for or being made: {', '.join(waiting) or 'none'})")
    return _cards


def _step(clerk, code: str, action, **items):
    """One card step at the counter; None when the card's state does not allow it (the card rule)."""
    try:
        return clerk(clerk.kizon.ChangeCard, card_pb2.CardRequest(action=action, resident_code=code, **items))
    except grpc.RpcError as exc:
        if rule_of(exc) != CARD_STATE_TRANSITION.reason:
            raise
        return None


def _ready_at_once(clerk, code: str) -> bool:
    """Whether code's card is usable now (issued before: its PIN set again); if not, applied for when it can be."""
    status = _step(clerk, code, card_pb2.RESET_PIN, pin=Kiosk.pin)  # issued: PIN set (and a lock lifted)
    if status is None and _step(clerk, code, card_pb2.LIFT) is not None:  # suspended: lifted first
        status = _step(clerk, code, card_pb2.RESET_PIN, pin=Kiosk.pin)
    if status is not None:
        _cards.append(status.card_number)
        return True
    _step(clerk, code, card_pb2.APPLY)  # none, revoked or returned; refused when applied for already
    return False


def _issue(clerk, code: str) -> bool:
    """ISSUE with the kiosk PIN, once the card is made; whether it was."""
    status = _step(clerk, code, card_pb2.ISSUE, pin=Kiosk.pin)
    if status is not None:
        _cards.append(status.card_number)
    return status is not None


class GrpcUser(User):
    """A terminal: its calls go through the Timing interceptor, which reports each to Locust."""

    abstract = True

    def on_start(self):
        try:
            self.setup()
        except Exception as exc:  # noqa: BLE001 (any: a user that cannot start is a failure in the summary, not silence)
            self.environment.events.request.fire(
                request_type="setup", name=f"{type(self).__name__}/on_start", response_time=0, response_length=0,
                exception=exc, context={})
            print(f"{type(self).__name__} user could not start, sends nothing: {_why(exc)}", file=sys.stderr, flush=True)
            while True:  # idle until the run ends (its on_stop then closes what was opened)
                gevent.sleep(3600)

    def setup(self):
        """What the user needs before its first task."""

    def open(self, stub_class, node, cert: ClientCert):
        """A stub of stub_class on a channel of this user's to node, each call timed for Locust (closed on_stop)."""
        self.channels = getattr(self, "channels", [])
        self.channels.append(channel(node, cert))
        return stub_class(grpc.intercept_channel(self.channels[-1], Timing(self.environment)))

    def on_stop(self):
        for ch in getattr(self, "channels", ()):
            ch.close()

    def call(self, method, *args, **kwargs):
        """Make one call (reported by the interceptor); None when it failed (the failure is reported)."""
        try:
            return method(*args, **kwargs)
        except grpc.RpcError:
            return None


def _why(exc: Exception) -> str:
    """An exception in one line (a gRPC error by its status and first line of details)."""
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        return f"{exc.code().name}: {(exc.details() or '').splitlines()[0] if exc.details() else ''}"
    return f"{type(exc).__name__}: {exc}"


class TerminalUser(GrpcUser):
    """A terminal of the municipality with an operator logged in, knowing some residents."""

    abstract = True
    terminal = "T0001"
    operator = "OP0001"

    def setup(self):
        # (each user stands for many clerks' counter work: its reads under a manager's approval, PIA Ⅲ(2)3)
        self.counter = Counter(network(), SETTINGS["municipality"], self.terminal, self.operator,
                               interceptors=(Timing(self.environment),), reads=10_000_000)
        self.people = register()

    def on_stop(self):
        if hasattr(self, "counter"):
            self.counter.close()
        super().on_stop()


class CounterStaff(TerminalUser):
    """窓口: 転居 and the reads behind a 住民票の写し, at a terminal of the municipality."""

    weight = 3
    wait_time = between(0.5, 2)

    @task(3)
    def certificate_read(self):
        person = random.choice(self.people)
        record = self.call(self.counter, self.counter.kizon.GetResident,
                            common_pb2.ResidentKey(resident_code=person.resident_code))
        if record is not None:
            self.call(self.counter, self.counter.kizon.GetHousehold,
                       kizon_pb2.HouseholdRequest(household_number=record.household_number))

    @task(1)
    def move_within(self):
        person = random.choice(self.people)
        place = random.choice(towns(SETTINGS["municipality"]))
        self.call(self.counter, self.counter.kizon.MoveWithin, requests.move_within(
            person.resident_code, records_pb2.Address(town_code=place.code, address_line=f"{random.randint(1, 3000)}番地")))


class IntegratedTerminal(TerminalUser):
    """統合端末: 本人確認 and 本人確認情報検索 at the CS."""

    weight = 2
    wait_time = between(0.5, 2)
    terminal = "T0003"

    @task(2)
    def identity_check(self):
        person = random.choice(self.people)
        self.call(self.counter, self.counter.cs.GetIdentity,
                   common_pb2.ResidentKey(resident_code=person.resident_code))

    @task(1)
    def search(self):
        person = random.choice(self.people)
        self.call(self.counter, self.counter.cs.SearchIdentity,
                   identity_pb2.IdentitySearch(name_kana=person.name_kana, birth_date=person.birth_date))


class Kiosk(GrpcUser):
    """コンビニ交付: a kiosk front end; residents prove themselves with card and PIN (06:30–23:00 JST)."""

    weight = 1
    wait_time = between(0.5, 2)
    pin = "1234"

    def setup(self):
        net = network()
        self.cards = kiosk_cards(net)
        self.stub = self.open(kizon_pb2_grpc.KizonStub, net.topology.find("kizon", SETTINGS["municipality"]),
                              named_cert(net.pki, "kiosk-K0002"))
        self.idle_said = False

    @task
    def resident_copy(self):
        if not KIOSK_HOURS[0] <= kiosk_clock() < KIOSK_HOURS[1] or not self.cards:
            if not self.idle_said:  # say once why this user sends nothing
                why = ("outside the kiosk's hours (06:30–23:00 JST)" if self.cards else "no card holder to serve")
                print(f"Kiosk user idle: {why}", file=sys.stderr, flush=True)
                self.idle_said = True
            return
        self.call(self.stub.IssueKioskCertificate, kizon_pb2.KioskRequest(
            card_number=random.choice(self.cards), pin=self.pin, kind=kizon_pb2.RESIDENT_COPY), timeout=30)


class InfoProvisionNetwork(GrpcUser):
    """情報提供ネットワークシステム: 情報照会 by 符号 at the 中間サーバ."""

    weight = 1
    wait_time = between(0.2, 1)

    def setup(self):
        net = network()
        self.stub = self.open(intermediate_pb2_grpc.IntermediateServerStub, net.topology.find("intermediate"),
                              named_cert(net.pki, "infonws"))
        with channel(net.topology.find("national"), named_cert(net.pki, "infonws")) as registry:  # the NWS's 符号
            self.fugo = list(national_pb2_grpc.NationalServerStub(registry).SampleFugo(
                national_pb2.FugoSampleRequest(tenant=SETTINGS["municipality"], count=2000), timeout=30).fugo)

    @task
    def inquiry(self):
        if self.fugo:
            self.call(self.stub.ProvideInfo, intermediate_pb2.ProvisionRequest(
                tenant=SETTINGS["municipality"], fugo=random.choice(self.fugo), inquiry_id=f"L{random.randrange(10**9)}",
                jimu=random.choice(list(jimu_table()))), timeout=30)
