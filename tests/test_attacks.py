"""The surface this round added, tried as a security tester would: oversized and control-character items on
requests that are not counter changes, card steps that are the CS's own, items the office sets, and
certificates the topology does not name against the new methods."""
from __future__ import annotations

import datetime as dt

import grpc
import pytest
from grpc import StatusCode as Code

from certs.identity import JUKINET, LAN, node_uri, terminal_uri
from helpers import TODAY, address, card_holder, key, minted_cert, person, refused
from protos import (card_pb2, common_pb2, cs_pb2, cs_pb2_grpc, identity_pb2, kizon_pb2, kizon_pb2_grpc,
                    national_pb2_grpc)
from testbed.client import Counter, channel, node_status

A = "142140"
LONG = "長" * 10_000


def test_oversized_items_of_requests_that_change_nothing_are_refused(network, clerk):
    """Every request a client sends has its text items checked, not only counter changes."""
    with Counter(network, A, "T0003", "OP0003") as manager:
        with refused(Code.INVALID_ARGUMENT, "項目長 rule", "purpose", reason="ITEM_LENGTH"):
            manager(manager.kizon.ApproveBulkOutput, kizon_pb2.BulkApprovalRequest(
                purpose=LONG, max_records=10, requester_operator_id="OP0001", terminal_id="T0001"))
    with refused(Code.INVALID_ARGUMENT, "項目長 rule", "justification", reason="ITEM_LENGTH"):
        clerk(clerk.kizon.IssueCertificate, kizon_pb2.CertificateRequest(
            kind=kizon_pb2.RESIDENT_COPY, resident_code="24727059608", justification=LONG))
    with refused(Code.INVALID_ARGUMENT, "文字 rule", reason="ITEM_CHARACTERS"):
        list(clerk(clerk.kizon.ExportResidents, kizon_pb2.ExportRequest(purpose="統計\x00資料")))
    with refused(Code.INVALID_ARGUMENT, "項目長 rule", reason="ITEM_LENGTH"):
        clerk(clerk.cs.SearchIdentity, identity_pb2.IdentitySearch(name_kana=LONG, birth_date="1990-01-02"))
    with refused(Code.INVALID_ARGUMENT, "項目長 rule", "operator_id", reason="ITEM_LENGTH"):
        clerk(clerk.kizon.Login, kizon_pb2.LoginRequest(operator_id=LONG, credential="x"))


def test_a_clerk_cannot_move_or_recode_a_card(clerk):
    """TRANSFER and RECODE are steps the CS takes itself; a request that sets the card's municipality or a
    former 住民票コード is refused naming them."""
    holder = card_holder(clerk)
    for action in (card_pb2.TRANSFER, card_pb2.RECODE):
        with refused(Code.PERMISSION_DENIED, "card rule", card_pb2.CardAction.Name(action), reason="CARD_STEP_BY_CS"):
            clerk(clerk.kizon.ChangeCard, card_pb2.CardRequest(action=action, resident_code=holder.resident_code))
    with refused(Code.INVALID_ARGUMENT, "card rule", "municipality_code", reason="SET_BY_SERVER"):
        clerk(clerk.kizon.ChangeCard, card_pb2.CardRequest(action=card_pb2.SUSPEND, resident_code=holder.resident_code,
                                                           municipality_code="142115"))
    with refused(Code.INVALID_ARGUMENT, "card rule", "former_resident_code", reason="SET_BY_SERVER"):
        clerk(clerk.kizon.ChangeCard, card_pb2.CardRequest(action=card_pb2.SUSPEND, resident_code=holder.resident_code,
                                                           former_resident_code="24727059608"))
    assert clerk(clerk.kizon.GetResident, key(holder.resident_code)).card_issued


def test_an_absurd_date_on_the_new_paths(network, clerk):
    """The 異動日 of a 転入 refused in the future, in 1800, malformed and 15 days late; nothing written."""
    late = (dt.date.fromisoformat(TODAY) - dt.timedelta(days=15)).isoformat()
    before = node_status(network, network.topology.find("cs", A)).applied.get(A, 0)
    for date, code, rule in (("2099-01-01", Code.INVALID_ARGUMENT, "転入年月日 rule"),
                             ("1800-01-01", Code.INVALID_ARGUMENT, "転入年月日 rule"),
                             ("not-a-date", Code.INVALID_ARGUMENT, "転入年月日 rule"),
                             (late, Code.FAILED_PRECONDITION, "転入 rule (住基法第22条)")):
        with refused(code, rule):
            clerk(clerk.kizon.MoveIn, kizon_pb2.MoveInRequest(person=person(), from_abroad=True, move_in_date=date,
                                                              address=address(A)))
    assert node_status(network, network.topology.find("cs", A)).applied.get(A, 0) == before


@pytest.mark.parametrize("label,domain,identity,kind,call", [
    ("a terminal not in the topology → 整合性確認", LAN, terminal_uri(A, "T9999"), "kizon",
     lambda ch: kizon_pb2_grpc.KizonStub(ch).CheckConsistency(common_pb2.ConsistencyRequest(municipality_code=A),
                                                               timeout=10)),
    ("a kizon of 千代田区 → the CS's request status", LAN, node_uri("kizon", "131016"), "cs",
     lambda ch: cs_pb2_grpc.CommunicationServerStub(ch).GetRequestStatus(cs_pb2.RequestStatusQuery(), timeout=10)),
    ("a CS of 千代田区 → national's residence check", JUKINET, node_uri("cs", "131016"), "national",
     lambda ch: national_pb2_grpc.NationalServerStub(ch).CheckResidence(
         identity_pb2.ResidenceQuery(resident_code="24727059608"), timeout=10)),
])
def test_a_certificate_the_topology_does_not_name_reaches_no_new_method(network, tmp_path, label, domain, identity,
                                                                        kind, call):
    """A certificate the testbed's own CA issued to a name the topology does not hold is UNAUTHENTICATED."""
    node = network.topology.find(kind, A if kind in ("kizon", "cs") else None)
    with channel(node, minted_cert(network, tmp_path, domain, identity)) as ch:
        with pytest.raises(grpc.RpcError) as caught:
            call(ch)
    assert caught.value.code() == Code.UNAUTHENTICATED and "identity rule" in caught.value.details(), label
