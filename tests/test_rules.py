"""Rules as typed errors: the catalogue is whole and documented, every refusal carries its rule id in a
google.rpc.Status ErrorInfo, a relayed refusal keeps the rule and the node that refused first, and no code decides by
a message's text."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from helpers import TODAY, address, refused
from nodes.reasons import access as A, catalogue, common as C
from nodes.refusal import CATALOGUE, DETAILS_KEY, DOMAIN, PEER_REFUSED, Violation, reason_of, rule, rule_of, trailers
from protos import common_pb2, kizon_pb2
from testbed import catalogue as document
from testbed.client import terminal_cert, channel

ROOT = Path(__file__).resolve().parent.parent
# gRPC's own transport failures carry no rule id (they come from the library, not a node): the few places that tell
# them apart read gRPC's words, and only these.
TRANSPORT_DIAGNOSES = {
    'testbed/replay.py:exc.code() == grpc.StatusCode.UNKNOWN and "failed to connect" in (exc.details() or "").lower())',
}
SOURCES = [p for folder in ("nodes", "testbed", "loadtests", "scenarios") for p in (ROOT / folder).rglob("*.py")]


class _Received(grpc.RpcError):
    """An error as a client receives it: a code, a message and trailing metadata."""

    def __init__(self, code, details, trailing):
        self._code, self._details, self._trailing = code, details, trailing

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return self._trailing


def test_every_rule_is_well_formed_and_documented():
    """Ids are unique UPPER_SNAKE_CASE (the registry refuses a second declaration), every rule has an owner, a
    reference and a summary, and docs/rules.md is what the code says (regenerate: testbed rules --write)."""
    rules = catalogue()
    assert len(rules) >= 100
    for r in rules:
        assert re.fullmatch(r"[A-Z][A-Z0-9_]{2,62}", r.reason) and r.reference and r.summary, r
    with pytest.raises(ValueError, match="declared twice"):
        rule(C.RESIDENT_CODE_FORMAT.reason, grpc.StatusCode.INVALID_ARGUMENT, "common", "x", "y")
    assert document.DOCUMENT.read_text(encoding="utf-8") == document.render(), \
        "docs/rules.md is stale: run `testbed rules --write`"


def test_the_status_carries_the_rule():
    """A violation travels as grpc-status-details-bin: a google.rpc.Status of the same code and message whose
    ErrorInfo names the rule, the domain, the refusing node, the owner and the reference."""
    violation = C.RESIDENT_CODE_FORMAT("住民票コード rule: '1' is not 11 digits")
    trailing = trailers(violation, "kizon-142140", str(violation))
    status = status_pb2.Status.FromString(dict(trailing)[DETAILS_KEY])
    info = error_details_pb2.ErrorInfo()
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0] and status.message == str(violation)
    assert status.details[0].Unpack(info)
    assert (info.reason, info.domain) == ("RESIDENT_CODE_FORMAT", DOMAIN)
    assert dict(info.metadata) == {"node": "kizon-142140", "owner": "common", "reference": C.RESIDENT_CODE_FORMAT.reference}


def test_a_relayed_refusal_keeps_its_rule_and_the_node_that_refused():
    """kizon passing on national's refusal: the code, the rule id and the refusing node are national's; a reason
    this catalogue does not know (an external node's) is kept as it came, under PEER_REFUSED."""
    origin = C.ONE_CURRENT_RESIDENCE("住所 rule (one current residence): …")
    received = _Received(origin.code, str(origin), trailers(origin, "national", str(origin)))
    relayed = Violation.relayed(received, "市町村CS")
    assert (relayed.rule, relayed.reason, relayed.node, relayed.code) == (C.ONE_CURRENT_RESIDENCE, "ONE_CURRENT_RESIDENCE",
                                                                           "national", origin.code)
    info = reason_of(_Received(relayed.code, str(relayed), trailers(relayed, "kizon-142140", str(relayed))))
    assert (info.reason, info.node) == ("ONE_CURRENT_RESIDENCE", "national")

    status = status_pb2.Status(code=9, message="x")
    detail = status.details.add()
    detail.Pack(error_details_pb2.ErrorInfo(reason="VENDOR_OWN_RULE", domain="vendor.example", metadata={"node": "v"}))
    foreign = Violation.relayed(_Received(grpc.StatusCode.FAILED_PRECONDITION, "x",
                                          ((DETAILS_KEY, status.SerializeToString()),)), "市町村CS")
    assert (foreign.rule, foreign.reason, foreign.node) == (PEER_REFUSED, "VENDOR_OWN_RULE", "v")
    assert rule_of(_Received(grpc.StatusCode.UNAVAILABLE, "no", ())) == ""  # gRPC's own refusals name no rule


def test_refusals_on_the_wire_name_their_rule_and_node(network, clerk):
    """From a real node: the guard's refusal (no session), a servicer's (a bad 住民票コード) and the policy's
    (default deny) each carry their rule id, with the node that refused."""
    kizon = network.topology.find("kizon", "142140")
    with refused(grpc.StatusCode.INVALID_ARGUMENT, reason="RESIDENT_CODE_FORMAT") as caught:
        clerk(clerk.kizon.GetResident, common_pb2.ResidentKey(resident_code="123"))
    assert reason_of(caught.value).node == kizon.name
    with channel(kizon, terminal_cert(network.pki, "142140", "T0001")) as ch, \
            refused(grpc.StatusCode.UNAUTHENTICATED, reason=A.SESSION_REQUIRED.reason):
        ch.unary_unary("/testbed.v1.Kizon/GetResident")(b"", timeout=10)
    cs = network.topology.find("cs", "142140")
    with channel(cs, terminal_cert(network.pki, "142140", "T0001")) as ch, \
            refused(grpc.StatusCode.PERMISSION_DENIED, reason=A.DEFAULT_DENY.reason) as caught:
        ch.unary_unary("/testbed.v1.CommunicationServer/SubmitIdentityUpdates")(b"", timeout=10)
    assert reason_of(caught.value).node == cs.name


def test_a_long_refusal_still_carries_its_rule(network, clerk):
    """A refusal repeating a 10,000-character item is cut, and its status with the rule still reaches a stock
    client (both copies of the message together stay within what a client takes as trailing metadata)."""
    huge = "転" * 10_000
    with refused(grpc.StatusCode.INVALID_ARGUMENT, reason="ITEM_LENGTH"):
        clerk(clerk.kizon.MoveWithin, kizon_pb2.MoveWithinRequest(
            resident_code="12345678901", move_date=TODAY, address=address("142140", huge)))


def _branches_on_text(tree: ast.AST) -> list[int]:
    """Lines that decide on an error's message: `… in x.details()`, `x.details().startswith(…)`, `… in str(exc)`
    (the message anywhere in the expression tested, lowered or cut)."""
    def is_details(node):
        for part in ast.walk(node):
            if isinstance(part, ast.Call) and isinstance(part.func, ast.Attribute) and part.func.attr == "details":
                return True
            if isinstance(part, ast.Call) and isinstance(part.func, ast.Name) and part.func.id == "str" \
                    and part.args and isinstance(part.args[0], ast.Name) and part.args[0].id in ("exc", "error", "err"):
                return True
        return False
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops) \
                and any(is_details(c) for c in node.comparators):
            lines.append(node.lineno)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                "startswith", "endswith") and is_details(node.func.value):
            lines.append(node.lineno)
    return lines


def test_no_code_decides_by_a_messages_text():
    """The nodes, the tools, the load tests and the scenarios branch on a refusal's rule id or code, never on the
    words of its message (they change; the id does not)."""
    found = {f"{p.relative_to(ROOT)}:{p.read_text().splitlines()[line - 1].strip()}" for p in SOURCES
             for line in _branches_on_text(ast.parse(p.read_text()))}
    assert found <= TRANSPORT_DIAGNOSES, sorted(found - TRANSPORT_DIAGNOSES)


def test_every_refusal_in_the_nodes_names_a_rule():
    """No refusal is built from a bare status code: every Violation comes from a Rule of the catalogue (or
    relays a peer's), so every refusal a node sends names one."""
    bare = []
    for path in (ROOT / "nodes").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "Violation" \
                    and node.args and "StatusCode" in ast.unparse(node.args[0]):
                bare.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not bare, bare
    assert all(r.owner for r in CATALOGUE.values())
