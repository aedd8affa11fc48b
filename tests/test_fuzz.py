"""A bounded fuzzing pass of every RPC of every node, from each foothold a caller can have, against a network of
its own (real node processes, a throwaway PKI).

Requests are generated from the proto descriptors: each node's services are listed by reflection, and for every
method a hypothesis strategy of its input type is built from the fields (scalars with edge values — empty,
10,000-character, non-BMP and control-character strings, huge and negative numbers, dates like 9999-99-99 —,
enums with unknown values, nested messages bounded in depth, repeated and map fields bounded in length), mixed
with valid requests built from a small seeded population with one or two items replaced, and with raw bytes as a
body. Unary, client-streaming, server-streaming and bidirectional methods are called alike (a few messages sent,
a bounded number of replies read), each call with a short deadline.

The footholds: (1) a clerk's session at a terminal of 伊勢原市, (2) a manager's session, (3) kizon's client
certificate, (4) the CS's client certificate, (5) no client certificate at all and each case of the
bad-certificate kit, (6) the 情報提供NWS. Methods the policy lets the foothold call get the full budget; the others
a few examples each, plus a malformed body that must be refused as a caller, never as a body (authentication
and authorization come before parsing).

What is asserted, per call: the node answers with a gRPC status (no dropped connection, no UNKNOWN, no INTERNAL,
no Python exception text in a status), within the deadline, and a refusal says why (non-empty details); nothing
is served to a certificate that is no working credential. After the pass: every node still answers SERVING, and
`testbed check` finds every network-wide invariant holding. Findings are collected over the whole pass (one
crash does not hide the others), each shrunk to a small request that still reproduces it, and reported with the
foothold, the node and the method.

Bounds: TESTBED_FUZZ_EXAMPLES examples per allowed method (default 6: the file takes 25–60 s on two cores, the
network's start included; 40 takes about three minutes), a fixed seed per method (TESTBED_FUZZ_SEED varies it),
TESTBED_FUZZ_DEADLINE seconds per call (default 3). The generic part (strategies from descriptors, calls, shrinking,
requests written back as Python) is tests/fuzzing.py.
"""
from __future__ import annotations

import datetime as dt
import importlib
import inspect
import os
import pkgutil
import re
import shutil
import tempfile
import time
import zlib
from collections import Counter as Tally
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2  # noqa: F401 (registers the health service's descriptors)
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

import protos
from certs.identity import KIND_DOMAIN, parse
from conftest import make_network
from fuzzing import (CHANNEL_LIMITS, CRASH, DIED, GARBAGE, HANG, INVARIANT, MAX_REPEAT, NO_RULE, PARSED, SERVED,
                     TRANSPORT_TEXT, Body, Grammar, Outcome, body_expr, classify, clip, invoke, simpler_bodies)
from helpers import TODAY, address, issue_card, move_in_from_abroad, person
from nodes.guard import REQUEST_KEY
from nodes.policy import Decision, authorize
from nodes.tls import channel_options, pinned
from protos import card_pb2, common_pb2, identity_pb2, kizon_pb2, records_pb2
from testbed.check import check_network, report_lines
from testbed.client import Counter, bad_cert, channel, monitor_cert, named_cert, node_cert, terminal_cert

# A counter's reads of more people than the bulk-output limit need a manager's standing approval, where the
# product has that rule (testbed.client.Counter(reads=...)): the pass should get past it to the methods' own rules.
READS = {"reads": 1_000_000} if "reads" in inspect.signature(Counter).parameters else {}
EXAMPLES = int(os.environ.get("TESTBED_FUZZ_EXAMPLES", "6"))  # per method a foothold may call
DENIED_EXAMPLES = max(1, EXAMPLES // 6)  # per method the policy refuses the foothold (refused before parsing)
SEED = int(os.environ.get("TESTBED_FUZZ_SEED", "0"))
DEADLINE = float(os.environ.get("TESTBED_FUZZ_DEADLINE", "3"))
SETTLE = 10.0  # seconds an invariant broken after a method's requests has to hold again before it is a finding
SHRINK_CALLS = 60  # calls spent shrinking one finding (a deadline finding: a few)
A, B = "142140", "142115"

_day = dt.date.fromisoformat(TODAY)
DATES = [TODAY, (_day - dt.timedelta(days=1)).isoformat(), (_day - dt.timedelta(days=20)).isoformat(),
         (_day + dt.timedelta(days=1)).isoformat(), "1990-01-02", "9999-99-99", "0000-00-00", "2024-02-30",
         "2023-02-29", "2025-13-01", "1990-1-2", "１９９０-０１-０２", "2099-01-01", "1800-01-01", "0001-01-01",
         "9999-12-31", "1990-01-02T00:00:00+09:00", "令和6年1月1日", "-2024-01-01", "2024/01/01"]
# Codes that look right, or nearly: every text item may get one.
CODES = ["99999999999", "00000000000", "24727059608", "2472705960", "123456789018", "000000000000", A, B, "140007",
         "131016", "000000", "14214", "OP0001", "T9999"]
REQUEST_IDS = ["r-1", "r-1", "x" * 1000, "../..", "id with spaces", "%00", "-"]  # (ASCII: gRPC's own rule)
UNRULED_OK = re.compile(r"rule|separation|revocation|default deny")  # what refusals name their rule by


def _load_descriptors() -> None:
    """Import every generated module, so that the default pool knows each service a node lists."""
    for module in pkgutil.iter_modules(protos.__path__):
        if module.name.endswith("_pb2"):
            importlib.import_module(f"protos.{module.name}")


# -- footholds and findings ----------------------------------------------------------------------------------------
@dataclass
class End:
    """A process of a node that callers reach: the node itself, or a CS's search process."""

    label: str  # cs-142140, cs-142140.search
    node: object
    search: bool = False


@dataclass
class Foothold:
    """Where a caller stands: a certificate (or none), call metadata, the ends it calls."""

    name: str
    cert: object  # ClientCert, or None: no client certificate
    ends: list[End]
    metadata: tuple = ()
    identity: str | None = None  # the certificate's URI SAN
    bad: bool = False  # no working credential: nothing may be served to it
    tls_refused: bool = False  # (found at the start) the handshake itself is refused
    request_ids: bool = False  # calls sometimes carry an x-request-id
    pki_dir: Path | None = None  # (without a certificate: where the CAs that check the servers are)
    channels: dict = field(default_factory=dict)

    def channel(self, end: End) -> grpc.Channel:
        """The foothold's channel to an end (one, reused: a new mTLS channel is a handshake)."""
        if end.label not in self.channels:
            node = end.node
            if self.cert is None:  # TLS with the server checked, but no certificate of the client's own
                trust = (self.pki_dir / "ca" / KIND_DOMAIN[node.kind] / "ca.pem").read_bytes()
                credentials = grpc.ssl_channel_credentials(root_certificates=trust)
            else:  # as testbed.client.channel() makes it (the server pinned to its domain's CA), with CHANNEL_LIMITS
                credentials = pinned(self.cert, KIND_DOMAIN[node.kind]).credentials()
            self.channels[end.label] = grpc.secure_channel(node.address, credentials,
                                                           options=channel_options(node.host_name) + CHANNEL_LIMITS)
        return self.channels[end.label]

    def allowed(self, end: End, method: str) -> bool:
        """Whether the policy lets this foothold call the method at all (the budget follows from it)."""
        if self.bad or self.identity is None:
            return False
        try:
            authorize(parse(end.node.identity), parse(self.identity), method)
        except Decision:
            return False
        return True

    def classify(self, outcome: Outcome):
        """What is wrong with an answer to this foothold (fuzzing.classify), or None."""
        return classify(outcome, self.bad, self.tls_refused)

    def close(self) -> None:
        for ch in self.channels.values():
            ch.close()
        self.channels.clear()


def uri_of(cert) -> str | None:
    """The URI SAN of a client certificate file."""
    leaf = x509.load_pem_x509_certificate(cert.cert.read_bytes())
    return leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier)[0]


@dataclass
class Finding:
    """One fault: where it was seen, the answer, the smallest request that showed it (and, once shrunk, a smaller
    one that still does)."""

    category: str
    signature: str
    foothold: Foothold
    end: End
    path: str
    method: object
    outcome: Outcome
    bodies: list[Body]
    metadata: tuple = ()
    count: int = 1
    minimal: list[Body] | None = None
    note: str = ""

    def size(self) -> int:
        return sum(len(b.data) for b in self.bodies)

    def lines(self) -> list[str]:
        out = [f"[{self.category}] {self.foothold.name} → {self.end.label} {self.path}"
               + (f"  (seen {self.count}×)" if self.count > 1 else ""),
               f"    answer: {self.outcome.code.name}: {clip(self.outcome.details, 600)!r}"
               f" after {self.outcome.seconds:.2f} s"]
        if self.note:
            out.append(f"    {self.note}")
        extra = [m for m in self.metadata if m[0] == REQUEST_KEY]
        if extra:
            out.append(f"    metadata: {extra[0][0]}={clip(extra[0][1], 60)!r}")
        shown = self.minimal or self.bodies
        label = "minimal request" if self.minimal else "request"
        for i, body in enumerate(shown):
            prefix = f"    {label}{f' {i + 1}' if len(shown) > 1 else ''}: "
            out.append(prefix + body_expr(body))
        return out


# -- the pass ------------------------------------------------------------------------------------------------------
class Fuzzer:
    """The pass over one network: a population to aim at, the footholds, every method from each, the findings."""

    def __init__(self, network):
        self.network = network
        _load_descriptors()
        self.pool = descriptor_pool.Default()
        self.findings: dict[tuple, Finding] = {}
        self.calls = 0
        self.waited = 0.0  # seconds spent waiting for answers
        self.reached: dict[tuple, Tally] = {}  # (foothold, end, method the policy allows) → statuses answered
        self.codes: Tally = Tally()
        self.by_foothold: dict[str, Tally] = {}
        self.unruled: Tally = Tally()  # refusals whose message says no "rule" (informational)
        self.transient: Tally = Tally()  # transport failures or late answers a second try did not see (informational)
        self.services: dict[str, list] = {}
        self.skipped: set[str] = set()
        self.times: dict[str, float] = {}
        self.baseline: set[str] = set()
        self.footholds: list[Foothold] = []

    def seed_population(self) -> None:
        """Four people (three in 伊勢原市, one of them a card holder, one in 秦野市): the pool of values and the valid
        requests the strategies start from, so that some requests get past the first check to the rules behind."""
        net = self.network
        with Counter(net, A) as clerk:
            a1 = move_in_from_abroad(clerk, line="1番地")
            a2 = move_in_from_abroad(clerk, person("試験 花子", "シケン ハナコ", "1985-05-05", "2", relationship="妻"),
                                     household=a1.household_number, line="1番地")
            holder = move_in_from_abroad(clerk, person("試験 次郎", "シケン ジロウ", "1970-03-03"), line="2番地")
            card = issue_card(clerk, holder.resident_code)
        with Counter(net, B) as clerk_b:
            b1 = move_in_from_abroad(clerk_b, person("秦野 一郎", "ハダノ イチロウ", "1960-06-06"), line="3番地")
        with channel(net.topology.find("cs", A), node_cert(net.pki, f"kizon-{A}"), verify_server=False) as ch:
            get_identity = ch.unary_unary("/testbed.v1.CommunicationServer/GetIdentity",
                                          common_pb2.ResidentKey.SerializeToString, records_pb2.IdentityInfo.FromString)
            info = get_identity(common_pb2.ResidentKey(resident_code=a1.resident_code), timeout=10)
        people = [a1, a2, holder, b1]
        codes = [p.resident_code for p in people]
        numbers = [p.individual_number for p in people if p.individual_number]
        households = list(dict.fromkeys(p.household_number for p in people))  # (in a fixed order)
        credential = net.pki.operators(A)["OP0002"]["credential"]
        self.hints = {
            "*": codes + numbers + households + CODES + DATES[:5] + [card.card_number, "1234", "T0001", "試験 太郎",
                                                                     "シケン タロウ", "神奈川県伊勢原市", "統計資料"],
            "date": DATES, "_at": DATES, "resident_code": codes + ["24727059608", "00000000000", "2472705960"],
            "codes": codes, "individual_number": numbers + ["123456789018", "000000000000"],
            "municipality": [A, B, "140007", "131016", "000000", "14214"], "tenant": [A, B, "131016"],
            "household": households + ["0", "9" * 12], "town_code": ["004000", "010000", "000000"],
            "operator": ["OP0001", "OP0002", "OP0003", "OP9999"], "terminal": ["T0001", "T0003", "T9999"],
            "pin": ["1234", "0000", "12345", "abcd", "１２３４"], "sex": ["1", "2", "3", "9", "0"],
            "card_number": [card.card_number, "0" * 12], "name_kana": ["シケン タロウ", "ｼｹﾝ ﾀﾛｳ", "しけん たろう"],
            "name": ["試験 太郎", "𠮷田 太郎", "髙橋 一郎", "testbed.v1.Kizon", "grpc.health.v1.Health"],
            "address": ["神奈川県伊勢原市", "神奈川県伊勢原市田中1番地", "神", "1番1号"],
            "purpose": ["統計資料"], "reason": ["死亡", "転入", "本人の請求"], "justification": ["本人の請求"],
            "service": ["", "testbed.v1.Kizon", "grpc.health.v1.Health", "no.such.Service"],
            "symbol": ["testbed.v1.Kizon", "testbed.v1.ResidentRecord", "grpc.health.v1.Health"],
            "credential": [credential, "x"], "reservation": ["R-1", ""], "fugo": ["", "F" * 16],
        }
        new_person = person("試験 三郎", "シケン サブロウ", "1995-09-09")
        self.templates = {
            "testbed.v1.ResidentKey": [common_pb2.ResidentKey(resident_code=c) for c in codes],
            "testbed.v1.ResidentKeys": [common_pb2.ResidentKeys(resident_codes=codes)],
            "testbed.v1.MoveInRequest": [kizon_pb2.MoveInRequest(
                person=new_person, address=address(A, "7番地"), move_in_date=TODAY, notification_date=TODAY,
                from_abroad=True)],
            "testbed.v1.MoveWithinRequest": [kizon_pb2.MoveWithinRequest(
                resident_code=a1.resident_code, address=address(A, "8番地"), move_date=TODAY)],
            "testbed.v1.MoveOutRequest": [kizon_pb2.MoveOutRequest(
                resident_code=a1.resident_code, destination_address="神奈川県秦野市曽屋1番地",
                destination_municipality_code=B, planned_date=TODAY, notification_date=TODAY)],
            "testbed.v1.DeathRequest": [kizon_pb2.DeathRequest(resident_code=a2.resident_code, death_date=TODAY,
                                                              notification_date=TODAY)],
            "testbed.v1.BirthRequest": [kizon_pb2.BirthRequest(
                household_number=a1.household_number, notification_date=TODAY,
                child=person("試験 四郎", "シケン シロウ", TODAY, "1", relationship="子"))],
            "testbed.v1.IdentitySearch": [identity_pb2.IdentitySearch(resident_code=a1.resident_code),
                                          identity_pb2.IdentitySearch(name_kana="シケン タロウ", birth_date="1990-01-02")],
            "testbed.v1.CardRequest": [card_pb2.CardRequest(action=card_pb2.APPLY, resident_code=a1.resident_code)],
            "testbed.v1.CertificateRequest": [kizon_pb2.CertificateRequest(kind=kizon_pb2.RESIDENT_COPY,
                                                                           resident_code=a1.resident_code)],
            "testbed.v1.BulkApprovalRequest": [kizon_pb2.BulkApprovalRequest(
                purpose="統計資料", max_records=10, requester_operator_id="OP0001", terminal_id="T0001")],
            "testbed.v1.LoginRequest": [kizon_pb2.LoginRequest(operator_id="OP0002", credential=credential)],
            "testbed.v1.ConsistencyRequest": [common_pb2.ConsistencyRequest(municipality_code=A)],
            "testbed.v1.ResidenceQuery": [identity_pb2.ResidenceQuery(resident_code=a1.resident_code,
                                                                      municipality_code=A)],
            "testbed.v1.HouseholdRequest": [kizon_pb2.HouseholdRequest(household_number=a1.household_number)],
            "testbed.v1.ExportRequest": [kizon_pb2.ExportRequest(purpose="統計資料")],
            "testbed.v1.IdentityUpdateBatch": [identity_pb2.IdentityUpdateBatch(
                municipality_code=A, updates=[identity_pb2.IdentityUpdate(municipality_code=A, info=info)])],
            "testbed.v1.PinCheck": [card_pb2.PinCheck(card_number=card.card_number, pin="1234")],
            "testbed.v1.CardIdentityCheck": [_message("testbed.v1.CardIdentityCheck", card_number=card.card_number,
                                                      pin="1234")],
            "testbed.v1.FugoRequest": [_message("testbed.v1.FugoRequest", individual_number=numbers[0])],
            "testbed.v1.CodeDraw": [_message("testbed.v1.CodeDraw", count=1, reservation="R-fuzz")],
            "testbed.v1.CodeOfferRequest": [_message("testbed.v1.CodeOfferRequest", resident_code=a1.resident_code,
                                                     count=3)],
            "testbed.v1.PoolRequest": [_message("testbed.v1.PoolRequest", municipality_code=A, count=5)],
            "testbed.v1.FugoSampleRequest": [_message("testbed.v1.FugoSampleRequest", tenant=A, count=2)],
            "testbed.v1.StaffEvent": [_message("testbed.v1.StaffEvent", operator_id="OP0001")],
            "testbed.v1.HouseholdSplitRequest": [kizon_pb2.HouseholdSplitRequest(resident_code=a2.resident_code,
                                                                                 notification_date=TODAY)],
            "testbed.v1.KioskRequest": [kizon_pb2.KioskRequest(card_number=card.card_number, pin="1234",
                                                               kind=kizon_pb2.RESIDENT_COPY)],
        }
        self.grammar = Grammar(self.hints, self.templates)

    def list_services(self, end: End) -> list:
        """The services an end serves, by reflection (the search process: SearchIdentity and health alone)."""
        if end.search:
            cs = self.pool.FindServiceByName("testbed.v1.CommunicationServer")
            health = self.pool.FindServiceByName("grpc.health.v1.Health")
            return [(cs, [cs.methods_by_name["SearchIdentity"]]), (health, list(health.methods))]
        if end.label not in self.services:
            with channel(end.node, monitor_cert(self.network.pki, end.node.kind), verify_server=False) as ch:
                replies = reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
                    iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
                names = [s.name for reply in replies for s in reply.list_services_response.service]
            found = []
            for name in names:
                try:
                    service = self.pool.FindServiceByName(name)
                except KeyError:
                    self.skipped.add(name)
                    continue
                found.append((service, list(service.methods)))
            self.services[end.label] = found
        return self.services[end.label]

    def make_footholds(self) -> list[Foothold]:
        net, pki, topo = self.network, self.network.pki, self.network.topology

        def end(kind, municipality=None, search=False):
            node = topo.find(kind, municipality)
            return End(f"{node.name}.search", node.search_end(), True) if search else End(node.name, node)
        terminal_ends = [end("kizon", A), end("cs", A), end("cs", A, search=True), end("intermediate"),
                         end("kizon", B), end("cs", B), end("atena", A), end("national")]
        footholds = []
        sessions = (("clerk", "T0001", "OP0001", READS), ("manager", "T0003", "OP0003", {}))  # (no reads of their own)
        for label, terminal, operator, reads in sessions:
            with Counter(net, A, terminal, operator, **reads) as counter:
                metadata = counter.metadata
            cert = terminal_cert(pki, A, terminal)
            footholds.append(Foothold(f"{label} {operator}@{A}/{terminal}", cert, terminal_ends, metadata,
                                      uri_of(cert), request_ids=True))
        kizon = node_cert(pki, f"kizon-{A}")
        footholds.append(Foothold(f"kizon-{A} certificate", kizon, [end("cs", A), end("cs", A, search=True),
                                  end("atena", A), end("cs", B), end("prefecture")], (), uri_of(kizon),
                                  request_ids=True))
        cs = node_cert(pki, f"cs-{A}")
        footholds.append(Foothold(f"cs-{A} certificate", cs, [end("prefecture"), end("national"), end("card"),
                                  end("cs", B), end("atena", A), end("kizon", A)], (), uri_of(cs)))
        infonws = named_cert(pki, "infonws")
        footholds.append(Foothold("情報提供NWS certificate", infonws, [end("intermediate"), end("national"),
                                  end("kizon", A)], (), uri_of(infonws)))
        every_end = [e for n in topo.nodes for e in ([End(n.name, n)] + (
            [End(f"{n.name}.search", n.search_end(), True)] if n.search_address else []))]
        footholds.append(Foothold("no client certificate", None, every_end, bad=True, pki_dir=pki.dir))
        for case in sorted(os.listdir(pki.dir / "bad")):
            cert = bad_cert(pki, case)
            footholds.append(Foothold(f"bad-certificate kit: {case}", cert, every_end, (), uri_of(cert), bad=True))
        for foothold in footholds:
            if foothold.bad:  # does the handshake itself refuse it? (then UNAVAILABLE is the answer to expect)
                probe = invoke(foothold.channel(every_end[0]), "/grpc.health.v1.Health/Check",
                               self.pool.FindMethodByName("grpc.health.v1.Health.Check"), [Body(b"")], (), DEADLINE)
                foothold.tls_refused = (probe.code == grpc.StatusCode.UNAVAILABLE
                                        and bool(TRANSPORT_TEXT.match(probe.details)))
        self.footholds = footholds
        return footholds

    def call(self, foothold: Foothold, end: End, path: str, method, bodies: list[Body], metadata: tuple = ()):
        """One call, counted and judged: a dropped connection or a late answer is tried once more (a busy machine's
        hiccup is not a finding), a node that died is a finding and is started again."""
        metadata = foothold.metadata + metadata
        started = time.monotonic()
        outcome = invoke(foothold.channel(end), path, method, bodies, metadata, DEADLINE)
        self.waited += time.monotonic() - started
        self.calls += 1
        self.codes[outcome.code.name] += 1
        self.by_foothold.setdefault(foothold.name, Tally())[outcome.code.name] += 1
        verdict = foothold.classify(outcome)
        if verdict and verdict[0] in (f"{CRASH}: dropped connection", HANG):  # once more: a fault, or a passing hiccup?
            time.sleep(0.2)
            again = invoke(foothold.channel(end), path, method, bodies, metadata, DEADLINE)
            if foothold.classify(again) != verdict and self.network.pid(end.node.name) is not None:
                self.transient[f"{foothold.name} → {end.label} {path}: {outcome.code.name}: "
                               f"{clip(outcome.details, 100)} (then {again.code.name})"] += 1
                outcome, verdict = again, foothold.classify(again)
        if (outcome.code not in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT)
                and not UNRULED_OK.search(outcome.details)
                and not (foothold.tls_refused and outcome.code == grpc.StatusCode.UNAVAILABLE)):
            self.unruled[f"{outcome.code.name}: {clip(outcome.details, 100)}"] += 1
        if outcome.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN,
                            grpc.StatusCode.INTERNAL, grpc.StatusCode.DEADLINE_EXCEEDED) and not foothold.tls_refused:
            if self.network.pid(end.node.name) is None:
                verdict = (DIED, end.node.name)
                self.restart(end)
        if verdict:
            self.note(verdict, foothold, end, path, method, outcome, bodies, metadata)
        return outcome, verdict

    def note(self, verdict, foothold, end, path, method, outcome, bodies, metadata=()) -> None:
        """Count a finding once per (fault, foothold, end, method), keeping the smallest request that showed it."""
        key = (*verdict, foothold.name, end.label, path)
        old = self.findings.get(key)
        new = Finding(*verdict, foothold, end, path, method, outcome, bodies, metadata)
        if old is None:
            self.findings[key] = new
        else:
            old.count += 1
            if new.size() < old.size():
                old.bodies, old.outcome, old.metadata = bodies, outcome, metadata

    def restart(self, end: End) -> None:
        """Bring a node that died back (the pass goes on; its death is a finding)."""
        self.network.up()
        for foothold in self.footholds:
            stale = foothold.channels.pop(end.label, None)
            if stale is not None:
                stale.close()

    def fuzz_method(self, foothold: Foothold, end: End, service, method) -> None:
        """One method from one foothold: EXAMPLES generated requests (client streams: one to three of them) if the
        policy lets the foothold call it, else DENIED_EXAMPLES and a malformed body; then the invariants, if any
        request was accepted."""
        path = f"/{service.full_name}/{method.name}"
        allowed = foothold.allowed(end, path)
        if not allowed and DENIED_EXAMPLES == 1:  # refused before parsing: the empty request, and a malformed one
            self.call(foothold, end, path, method, [Body(b"", message_factory.GetMessageClass(method.input_type)())])
            self.refused_unread(foothold, end, path, method)
            return
        body = self.grammar.body(method.input_type)
        bodies = st.lists(body, min_size=1, max_size=MAX_REPEAT) if method.client_streaming else body.map(lambda b: [b])
        extra = (st.one_of(st.just(()), st.sampled_from(REQUEST_IDS).map(lambda r: ((REQUEST_KEY, r),)))
                 if foothold.request_ids else st.just(()))
        accepted: list[list[Body]] = []

        @settings(max_examples=EXAMPLES if allowed else DENIED_EXAMPLES, database=None, deadline=None,
                  phases=(Phase.generate,), suppress_health_check=list(HealthCheck), print_blob=False)
        @given(bodies, extra)
        def fuzz(sent, metadata):
            outcome, _ = self.call(foothold, end, path, method, sent, metadata)
            if allowed:
                self.reached.setdefault((foothold.name, end.label, path), Tally())[outcome.code.name] += 1
            if outcome.code == grpc.StatusCode.OK:
                accepted.append(sent)
        seed(zlib.crc32(f"{SEED}|{foothold.name}|{end.label}|{path}".encode()))(fuzz)()
        if not allowed:
            self.refused_unread(foothold, end, path, method)
        if accepted:
            self.check_invariants(foothold, end, path, method, accepted)

    def refused_unread(self, foothold: Foothold, end: End, path: str, method) -> None:
        """A malformed body from a caller the policy refuses: refused as a caller, never as a body."""
        outcome, verdict = self.call(foothold, end, path, method, [Body(GARBAGE)])
        if not verdict and outcome.code == grpc.StatusCode.INVALID_ARGUMENT:
            self.note((PARSED, outcome.code.name), foothold, end, path, method, outcome, [Body(GARBAGE)])

    def fuzz_bad(self, foothold: Foothold, end: End) -> None:
        """A foothold with no working credential: every method once with a malformed body, then generated
        requests to methods drawn at random (the node must refuse the caller before it reads any of them)."""
        methods = [(s, m) for s, ms in self.list_services(end) for m in ms]
        for service, method in methods:
            self.refused_unread(foothold, end, f"/{service.full_name}/{method.name}", method)
        if foothold.tls_refused:  # the handshake fails: no request body ever leaves the client
            return
        strategies = {m.full_name: self.grammar.body(m.input_type) for _, m in methods}

        @settings(max_examples=EXAMPLES, database=None, deadline=None, phases=(Phase.generate,),
                  suppress_health_check=list(HealthCheck), print_blob=False)
        @given(st.data())
        def fuzz(data):
            service, method = data.draw(st.sampled_from(methods))
            sent = [data.draw(strategies[method.full_name])]
            self.call(foothold, end, f"/{service.full_name}/{method.name}", method, sent)
        seed(zlib.crc32(f"{SEED}|{foothold.name}|{end.label}".encode()))(fuzz)()

    def check_invariants(self, foothold, end, path, method, accepted) -> None:
        """After a method accepted requests: an invariant newly broken, and still broken SETTLE seconds later, is
        attributed to them (a change still in an outbox may show up one method later)."""
        deadline = time.monotonic() + SETTLE
        while True:  # (a change still on its way from kizon to national breaks an invariant for a moment)
            new = [f for f in check_network(self.network, audit=False).failures if f.line() not in self.baseline]
            if not new or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        for failure in new:
            line = failure.line()
            self.baseline.add(line)
            outcome = Outcome(grpc.StatusCode.OK, line, 0.0)
            finding = Finding(INVARIANT, failure.invariant, foothold, end, path, method, outcome,
                              min(accepted, key=lambda b: sum(len(x.data) for x in b)),
                              note=f"first seen after {len(accepted)} accepted requests of this method; the smallest:")
            self.findings[(INVARIANT, line, foothold.name, end.label, path)] = finding

    def run(self) -> None:
        self.baseline = {f.line() for f in check_network(self.network, audit=False).failures}
        for foothold in self.make_footholds():
            started, calls = time.monotonic(), self.calls
            for end in foothold.ends:
                if foothold.bad:
                    self.fuzz_bad(foothold, end)
                    continue
                for service, methods in self.list_services(end):
                    for method in methods:
                        self.fuzz_method(foothold, end, service, method)
            self.times[foothold.name] = time.monotonic() - started
            print(f"fuzz: {foothold.name}: {self.calls - calls} calls in {self.times[foothold.name]:.1f} s: "
                  f"{dict(self.by_foothold.get(foothold.name, {}))}", flush=True)

    def shrink(self) -> None:
        """Each fault's smallest request made smaller still while it reproduces (bounded in calls)."""
        for group in self.groups():
            finding = group[0]
            if finding.category in (DIED, INVARIANT) or not any(b.message is not None for b in finding.bodies) \
                    and all(len(b.data) <= 16 for b in finding.bodies):
                continue
            budget = 4 if finding.category == HANG else SHRINK_CALLS
            current, progress = finding.bodies, True
            while progress and budget > 0:
                progress = False
                for candidate in simpler_bodies(current):
                    if budget <= 0:
                        break
                    budget -= 1
                    outcome = invoke(finding.foothold.channel(finding.end), finding.path, finding.method, candidate,
                                     finding.foothold.metadata + finding.metadata, DEADLINE)
                    verdict = finding.foothold.classify(outcome)
                    if verdict == (finding.category, finding.signature):
                        current, progress = candidate, True
                        break
            if current is not finding.bodies:
                finding.minimal = current

    def close(self) -> None:
        for foothold in self.footholds:
            foothold.close()

    def groups(self, categories=None) -> list[list[Finding]]:
        """The findings of these categories, one group per fault (category, method, answer), smallest first."""
        grouped: dict[tuple, list[Finding]] = {}
        for finding in self.findings.values():
            if categories is None or any(finding.category.startswith(c) for c in categories):
                details = re.sub(r"\d+", "N", finding.outcome.details)[:200] if finding.category != INVARIANT else ""
                key = (finding.category, finding.signature, finding.path, finding.outcome.code, details)
                grouped.setdefault(key, []).append(finding)
        return [sorted(g, key=lambda f: sum(len(b.data) for b in (f.minimal or f.bodies))) for g in grouped.values()]

    def report(self, categories=None) -> list[str]:
        lines = []
        for group in self.groups(categories):
            lines += group[0].lines()
            if len(group) > 1:
                lines.append(f"    also from: {'; '.join(f'{f.foothold.name} → {f.end.label}' for f in group[1:])}")
        return lines

    def summary(self) -> str:
        lines = [f"fuzz: {self.calls} calls ({self.waited:.1f} s waiting for answers), {EXAMPLES} examples per allowed "
                 f"method, {DENIED_EXAMPLES} per refused one; statuses {dict(self.codes.most_common())}",
                 f"fuzz: seeding {self.times.get('seed', 0):.1f} s, shrinking {self.times.get('shrink', 0):.1f} s"]
        if self.skipped:
            lines.append(f"fuzz: services listed by reflection with no descriptor here (not fuzzed): "
                         f"{sorted(self.skipped)}")
        never = [(k, t) for k, t in self.reached.items() if "OK" not in t]
        lines.append(f"fuzz: {len(self.reached)} (foothold, method) pairs the policy allows, {len(never)} of them "
                     "never answered OK (informational: how deep the pass got):")
        lines += [f"    {f} → {e} {p}: {dict(t)}" for (f, e, p), t in never[:40]]
        if self.transient:
            lines.append("fuzz: transport failures and late answers not seen again on a second try (informational):")
            lines += [f"    {n}× {text}" for text, n in self.transient.most_common(8)]
        if self.unruled:
            lines.append("fuzz: refusals whose message does not say 'rule' (informational):")
            lines += [f"    {n}× {text}" for text, n in self.unruled.most_common(12)]
        tally = Tally(group[0].category for group in self.groups())
        lines.append(f"fuzz: faults found: {dict(tally) or 'none'}")
        lines += self.report()
        return "\n".join(lines)


def _message(full_name: str, **items):
    return message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(full_name))(**items)


# -- the tests -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fuzz_network():
    """A network of its own: the pass leaves whatever its accepted requests did. (Its folder is not one of pytest's
    numbered temporary folders, which a pytest session started meanwhile elsewhere on the machine may remove.)"""
    state = Path(tempfile.mkdtemp(prefix="testbed-fuzz-"))
    net = make_network(state)
    try:
        net.up()
        yield net
    finally:
        net.down()
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module")
def fuzz_pass(fuzz_network):
    """The whole pass, once for the module; each test asserts one kind of finding."""
    started = time.monotonic()
    fuzzer = Fuzzer(fuzz_network)
    try:
        fuzzer.seed_population()
        fuzzer.times["seed"] = time.monotonic() - started
        fuzzer.run()
        shrinking = time.monotonic()
        fuzzer.shrink()
        fuzzer.times["shrink"] = time.monotonic() - shrinking
    finally:
        fuzzer.close()
    print(fuzzer.summary())
    print(f"fuzz: the pass took {time.monotonic() - started:.1f} s")
    return fuzzer


def test_every_node_is_still_serving(fuzz_pass, fuzz_network):
    """After the pass every node (and each CS's search process) answers its health check SERVING."""
    deadline = time.monotonic() + 15  # (a health check waits 1 s: on a busy machine, one may be late)
    while True:
        sick = [f"{s['name']} (pid {s['pid']})" for s in fuzz_network.status() if not s["healthy"]]
        if not sick or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not sick, f"not SERVING after the pass: {', '.join(sick)}"


def test_the_network_invariants_hold(fuzz_pass, fuzz_network):
    """testbed check after the pass: every network-wide invariant holds (DESIGN §13)."""
    deadline = time.monotonic() + SETTLE  # (the pass's last changes may still be on their way through the outboxes)
    while not (report := check_network(fuzz_network)).ok and time.monotonic() < deadline:
        time.sleep(0.5)
    attributed = fuzz_pass.report([INVARIANT])
    assert report.ok, "\n".join(report_lines(report) + (["attributed to:"] + attributed if attributed else []))


def test_every_call_is_answered_with_a_status(fuzz_pass):
    """No dropped connection, no UNKNOWN or INTERNAL, no Python exception text in a status, no node that died."""
    crashes = fuzz_pass.report([CRASH])
    assert not crashes, "crashes:\n" + "\n".join(crashes)


def test_every_call_is_answered_within_its_deadline(fuzz_pass):
    """No request keeps a node from answering within the deadline."""
    hangs = fuzz_pass.report([HANG])
    assert not hangs, f"calls unanswered after {DEADLINE} s:\n" + "\n".join(hangs)


def test_every_refusal_names_a_rule(fuzz_pass):
    """A refusal says why: its details are never empty."""
    bare = fuzz_pass.report([NO_RULE])
    assert not bare, "refusals without a reason:\n" + "\n".join(bare)


def test_no_credential_but_a_working_one_is_served(fuzz_pass):
    """No client certificate, or one of the kit: every call refused, and refused before its body is read."""
    admitted = fuzz_pass.report([SERVED, PARSED])
    assert not admitted, "\n".join(admitted)
