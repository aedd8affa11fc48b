"""Rules as typed errors: every refusal names a rule of the catalogue by a stable id, carried on the wire as a
google.rpc.Status with an ErrorInfo (reason: the rule id, domain, metadata: the node that refused, the rule's owner
and its reference) beside the human message. Code branches on the rule, never on the message's text."""
from __future__ import annotations

import re
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

DOMAIN = "juki-net.testbed"  # ErrorInfo.domain of every rule of the testbed
DETAILS_KEY = "grpc-status-details-bin"  # the trailer grpcio-status reads (google.rpc.Status, serialized)
_REASON = re.compile(r"^[A-Z][A-Z0-9_]{2,62}$")  # ErrorInfo.reason: UPPER_SNAKE_CASE, at most 63 characters
_NODE_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")  # a node's name in the topology (national, cs-142140, kizon-142140-gcloud)
OWNERS = frozenset({"common", "access", "kizon", "koseki", "cs", "moj", "prefecture", "national", "card", "atena", "intermediate",
                    "conbini", "centre", "certificates", "site", "health", "peer"})

CATALOGUE: dict[str, "Rule"] = {}  # reason → rule: every rule declared anywhere (nodes/reasons/ declares them)


@dataclass(frozen=True)
class Rule:
    """A rule a node keeps: its stable id, the status a refusal carries, the kind of node that owns it, where it
    comes from (the seed's PIA section, a law, DESIGN), and what it says in one line."""

    reason: str
    code: grpc.StatusCode
    owner: str
    reference: str
    summary: str

    def __post_init__(self):
        if not _REASON.match(self.reason):
            raise ValueError(f"rule id {self.reason!r} is not UPPER_SNAKE_CASE of 3..63 characters")
        if self.owner not in OWNERS:
            raise ValueError(f"rule {self.reason}: owner {self.owner!r} is not one of {sorted(OWNERS)}")
        if self.reason in CATALOGUE:
            raise ValueError(f"rule {self.reason} is declared twice")
        CATALOGUE[self.reason] = self

    def __call__(self, message: str, trailing: tuple = ()) -> "Violation":
        """The violation of this rule, with the message that says what was wrong and what to do."""
        return Violation(self, message, trailing)


def rule(reason: str, code: grpc.StatusCode, owner: str, reference: str, summary: str) -> Rule:
    """Declare a rule of the catalogue (each reason once)."""
    return Rule(reason, code, owner, reference, summary)


# A peer's refusal whose rule this node's catalogue does not hold (a node of another version, an external one):
# relayed under the peer's own reason, with this rule standing for it where a Rule is needed.
PEER_REFUSED = rule("PEER_REFUSED", grpc.StatusCode.FAILED_PRECONDITION, "peer", "DESIGN §3",
                    "a peer refused a relayed request under a rule of its own (its reason is kept)")


class Violation(Exception):
    """A broken rule; the guard answers it with the rule's status, its ErrorInfo and this message, after rolling back."""

    def __init__(self, rule: Rule, message: str, trailing: tuple = (), *, code: grpc.StatusCode | None = None,
                 reason: str = "", node: str = ""):
        super().__init__(message)
        self.rule = rule
        self.code = code or rule.code
        self.trailing = trailing  # (key, value) metadata a peer can act on, e.g. the 更新順番号 due
        self.reason = reason or rule.reason  # a relayed peer's reason, kept as it came
        self.node = node  # the node that refused first ("" for this one)

    @classmethod
    def relayed(cls, error: grpc.RpcError, prefix: str) -> "Violation":
        """A peer's refusal passed on to this node's caller: its code, rule id and refusing node kept."""
        why = reason_of(error)
        rule = CATALOGUE.get(why.reason, PEER_REFUSED) if why else PEER_REFUSED
        # A peer's words are passed on only as far as they have the shape of a rule id and of a node name (a hostile
        # peer could send any 8 KiB of each); a well-formed id this catalogue lacks (an external node's) stays, under
        # the peer-refused rule.
        reason = why.reason if why and _REASON.match(why.reason) else rule.reason
        node = why.node if why and _NODE_NAME.fullmatch(why.node) else ""
        return cls(rule, f"{prefix}: {error.details()}", code=error.code(), reason=reason, node=node)


@dataclass(frozen=True)
class Reason:
    """What a client reads of a refusal: the rule id, its domain, and the metadata (node, owner, reference)."""

    reason: str
    domain: str
    metadata: dict

    @property
    def node(self) -> str:
        """The node that refused."""
        return self.metadata.get("node", "")

    @property
    def rule(self) -> Rule | None:
        """The rule of this testbed's catalogue the reason names (None for an unknown one)."""
        return CATALOGUE.get(self.reason)


def well_formed_reason(reason: str) -> bool:
    """Whether a rule id has the shape of one (UPPER_SNAKE_CASE, 3 to 63 characters), of this catalogue or not."""
    return bool(_REASON.match(reason))


def trailers(violation: Violation, node: str, message: str) -> tuple:
    """The trailing metadata of a refusal: the google.rpc.Status (code, message, ErrorInfo) and the violation's own."""
    rule = violation.rule
    info = error_details_pb2.ErrorInfo(reason=violation.reason, domain=DOMAIN, metadata={
        "node": violation.node or node, "owner": rule.owner, "reference": rule.reference})
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=violation.code.value[0], message=message, details=[detail])
    return ((DETAILS_KEY, status.SerializeToString()),) + tuple(violation.trailing or ())


def reason_of(error) -> Reason | None:
    """The rule a refusal names (from its google.rpc.Status ErrorInfo), or None when it names none (a refusal of
    gRPC itself, or of a server outside the testbed). error: a grpc.RpcError (blocking or asyncio)."""
    try:
        metadata = error.trailing_metadata() or ()
    except Exception:  # (an RpcError that is not a call: nothing was received)
        return None
    for key, value in metadata:
        if key == DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status()
            try:
                status.ParseFromString(value)
            except Exception:
                return None
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return Reason(info.reason, info.domain, dict(info.metadata))
    return None


def rule_of(error) -> str:
    """The rule id a refusal names, or "" (for checks such as `rule_of(exc) == "JUKI_…"`)."""
    why = reason_of(error)
    return why.reason if why else ""
