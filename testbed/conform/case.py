"""A conformance case: a stable id, the node roles it applies to, the profiles that select it, the rules of the
catalogue it checks (their reference is its reference), the request in brief, what it asserts, and its procedure.

The model is the kits engineers already trust: gRPC's interop cases (a named case, a procedure, what the client
asserts), h2spec and TLS-Anvil (cases addressed by what they check, profiles that select subsets), the OpenID
conformance suite (PASSED / FAILED / WARNING / SKIPPED, expected failures kept beside the code under test).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import grpc

from nodes.refusal import CATALOGUE, Rule, reason_of

PROFILES = ("wire", "rules", "delivery", "security")  # `all` selects every case
EVERY_ROLE = "*"  # a case that applies to every node role (the wire: mTLS, identities, the policy)
_ID = re.compile(r"^[a-z*]+(/[^/\s]+){1,3}$")  # role-or-topic/…: e.g. cs/検索/two-items, tls/client-cert-required


class Failed(Exception):
    """The node did not do what the case asserts: what was expected, and what it did."""

    def __init__(self, expected: str, observed: str, reason: str = ""):
        super().__init__(f"expected {expected}, observed {observed}")
        self.expected, self.observed = expected, observed
        self.reason = reason  # the rule id the node refused under, when it refused


class Skipped(Exception):
    """The case cannot be tried on this node or network (says why, and what would let it run)."""


@dataclass(frozen=True)
class Case:
    """One conformance case (see the module's docstring)."""

    id: str
    roles: tuple[str, ...]
    profiles: tuple[str, ...]
    rules: tuple[str, ...]  # rule ids of the catalogue (nodes/reasons/); "" reference standards below
    standard: str  # where the case comes from besides the rules (RFC 8446, gRPC health, DESIGN §3 …)
    request: str  # the request in brief
    asserts: str  # what the case asserts, in one line
    procedure: Callable

    @property
    def reference(self) -> str:
        """The seed's PIA sections, laws or DESIGN sections of its rules, and its standard."""
        parts = [CATALOGUE[r].reference for r in self.rules] + ([self.standard] if self.standard else [])
        return "; ".join(dict.fromkeys(p for p in parts if p))

    def applies_to(self, role: str) -> bool:
        """Whether the case is one of a node role's."""
        return EVERY_ROLE in self.roles or role in self.roles


CASES: dict[str, Case] = {}  # id → case, in the order declared (the modules of this package declare them)


def case(id: str, *, roles: tuple[str, ...], profiles: tuple[str, ...], asserts: str, request: str,
         rules: tuple[Rule, ...] = (), standard: str = ""):
    """Declare the decorated function (subject → what was observed) as a conformance case."""
    if not _ID.match(id):
        raise ValueError(f"case id {id!r} is not role-or-topic/part[/part]")
    unknown = [p for p in profiles if p not in PROFILES]
    if unknown or not profiles:
        raise ValueError(f"case {id}: profiles {profiles} are not among {PROFILES}")
    if not rules and not standard:
        raise ValueError(f"case {id}: name the rules it checks or the standard it comes from")

    def declare(procedure: Callable) -> Callable:
        if id in CASES:
            raise ValueError(f"case {id} is declared twice")
        CASES[id] = Case(id, roles, profiles, tuple(r.reason for r in rules), standard, request, asserts, procedure)
        return procedure
    return declare


# -- what a procedure asserts -------------------------------------------------------------------------------------
def outcome(call) -> tuple[grpc.StatusCode, str, str, str]:
    """(status code, rule id, details, the node that refused) of a call: (OK, "", "", "") when it is answered."""
    try:
        call()
    except grpc.RpcError as exc:
        why = reason_of(exc)
        return exc.code(), why.reason if why else "", exc.details() or "", why.node if why else ""
    return grpc.StatusCode.OK, "", "", ""


def said(code: grpc.StatusCode, reason: str, details: str = "") -> str:
    """A refusal as the report shows it: CODE RULE_ID (the first words of its message)."""
    if code == grpc.StatusCode.OK:
        return "OK"
    return f"{code.name} {reason or '(no rule named)'}" + (f": {details[:100]}" if details else "")


def refused(call, rule: Rule, *, node: str = "") -> str:
    """Assert that call is refused under rule (its status code and its id, and with node as the refuser when
    given); what was observed."""
    code, reason, details, refuser = outcome(call)
    observed = said(code, reason, details)
    if code != rule.code or reason != rule.reason:
        raise Failed(f"{rule.code.name} {rule.reason}", observed, reason)
    if node and refuser != node:
        raise Failed(f"{rule.reason} refused by {node}", f"{observed} (refused by {refuser or 'no node named'})", reason)
    return observed


def answered(call):
    """Assert that call is answered (not refused); its response."""
    try:
        return call()
    except grpc.RpcError as exc:
        why = reason_of(exc)
        reason = why.reason if why else ""
        raise Failed("an answer", said(exc.code(), reason, exc.details() or ""), reason) from None


def same(expected, observed, what: str) -> None:
    """Assert that what was observed afterwards is what was there before (or what the case expected)."""
    if expected != observed:
        raise Failed(f"{what}: {expected!r}", repr(observed)[:200])
