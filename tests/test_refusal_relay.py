"""A refusal passed on from a peer keeps the peer's rule id and the node that refused only as far as they have the
shape of one: a hostile peer's free text in ErrorInfo (an 8 KiB rule id, a node name that is none) does not travel
on in this node's own trailers (no network: the peer's error is built here)."""
from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from nodes.reasons import common as C
from nodes.refusal import DETAILS_KEY, PEER_REFUSED, Violation, trailers


class PeerError(grpc.RpcError):
    """What a stub raises for a peer's refusal: a code, details and trailing metadata."""

    def __init__(self, reason: str, node: str, code=grpc.StatusCode.FAILED_PRECONDITION):
        info = error_details_pb2.ErrorInfo(reason=reason, domain="juki-net.testbed", metadata={"node": node})
        detail = any_pb2.Any()
        detail.Pack(info)
        self._trailing = ((DETAILS_KEY, status_pb2.Status(code=code.value[0], message="x", details=[detail])
                           .SerializeToString()),)
        self._code = code

    def code(self):
        return self._code

    def details(self):
        return "refused"

    def trailing_metadata(self):
        return self._trailing


def test_a_catalogue_rule_and_a_node_name_are_kept():
    relayed = Violation.relayed(PeerError(C.RECORD_NOT_FOUND.reason, "national"), "全国サーバ")
    assert relayed.reason == C.RECORD_NOT_FOUND.reason and relayed.node == "national"


def test_a_huge_or_ill_formed_rule_id_and_node_name_are_not_passed_on():
    for reason in ("EVERYTHING_IS_FINE_" + "X" * 8192, "everything is fine", "A\nB", ""):
        relayed = Violation.relayed(PeerError(reason, "n" * 8192), "全国サーバ")
        assert relayed.reason == PEER_REFUSED.reason and relayed.node == "", reason
        sent = dict(trailers(relayed, "cs-142140", "m"))[DETAILS_KEY]
        assert len(sent) < 600 and b"EVERYTHING_IS_FINE" not in sent and b"nnnn" not in sent
    assert relayed.code == grpc.StatusCode.FAILED_PRECONDITION  # the peer's status stays what it was


def test_a_node_name_that_is_not_one_is_dropped():
    for name in ("National", "cs 142140", "cs-142140\n", "../etc", "ｃｓ"):
        assert Violation.relayed(PeerError(C.RECORD_NOT_FOUND.reason, name), "x").node == "", name
