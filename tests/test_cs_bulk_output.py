"""Bulk output at the CS (PIA Ⅲ(2)3 その他; seed 2376, 2665: 大量のデータ出力に際しては、事前に管理責任者の承認を得る).

A 統合端末's reads at the CS (GetIdentity, the people a SearchIdentity returns, VerifyByCard) count per operator as
kizon's reads do, towards the same threshold; beyond it a manager's approval is needed, signed by kizon with the
municipality's session key and spent here up to the count it names. The account survives a kill of the CS, and is
shared by the CS and its search process. A network of its own: the counts of its operators are this module's.

The approval tokens are made here as kizon makes them (the municipality's session key, from the test's PKI), with
the binding the CS needs (req, term, max: nodes/cs/bulk.py); a token of kizon's ApproveBulkOutput is spent here only
once it carries that binding (see the last test).
"""
from __future__ import annotations

import base64
import json
import time
import uuid

import grpc
import pytest

from conftest import network_of_its_own
from helpers import key, kill, move_in_from_abroad, person, refused
from nodes.cs import bulk
from nodes.kizon import items
from nodes.sessions import APPROVAL_SECONDS, CS_READ_APPROVAL_KEY, sign
from protos import identity_pb2
from testbed.client import Counter, bulk_approval

A, B = "142140", "142115"
DENIED = grpc.StatusCode.PERMISSION_DENIED
READER = ("T0002", "OP0002")  # the 統合端末 and the operator whose reads are counted here
MANAGER = "OP0003"


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """A network of its own (its operators' counts are this module's; the CS is killed)."""
    yield from network_of_its_own(tmp_path_factory, "cs-bulk")


@pytest.fixture(scope="module")
def people(net):
    """BULK_OUTPUT_LIMIT + 12 residents of 伊勢原市 with one name and birth date, registered by OP0001 (whose own
    reads at kizon are approved)."""
    with Counter(net, A, reads=1_000_000) as clerk:
        return [move_in_from_abroad(clerk, person("大量 照会", "タイリョウ ショウカイ", "1970-07-07", "2"))
                for _ in range(bulk.BULK_OUTPUT_LIMIT + 12)]


def approval(net, municipality: str = A, *, requester: str = READER[1], terminal: str = READER[0], most: int = 3,
             approver: str = MANAGER, **extra) -> str:
    """A manager's approval token as kizon signs it, with the binding the CS spends it by."""
    signer = net.pki.node_session_key(f"kizon-{municipality}", municipality)
    return sign(signer, {"kind": "approval", "id": uuid.uuid4().hex[:16], "approver": approver, "muni": municipality,
                         "exp": time.time() + APPROVAL_SECONDS, "req": requester, "term": terminal, "max": most,
                         "at": "cs", **extra})


def read(counter: Counter, who, token: str = ""):
    """本人確認情報の照会 at the CS (統合端末), with an approval when given."""
    return counter(counter.cs.GetIdentity, key(who.resident_code),
                   metadata=((CS_READ_APPROVAL_KEY, token),) if token else ())


def test_the_threshold_is_kizons():
    """The CS counts towards the same limit in the same window as kizon."""
    assert (bulk.BULK_OUTPUT_LIMIT, bulk.BULK_WINDOW_HOURS) == (items.BULK_OUTPUT_LIMIT, items.BULK_WINDOW_HOURS)


def test_reads_are_counted_and_refused_beyond_the_limit(net, people):
    """A 統合端末 operator reads BULK_OUTPUT_LIMIT people at the CS; the next person is refused (GetIdentity and a
    search alike, served by the CS and by its search process), reading the same people again is not more output."""
    with Counter(net, A, *READER) as reader:
        for who in people[:bulk.BULK_OUTPUT_LIMIT]:
            assert read(reader, who).resident_code == who.resident_code
        with refused(DENIED, "bulk output rule", reason="CS_BULK_OUTPUT_APPROVAL_REQUIRED"):
            read(reader, people[bulk.BULK_OUTPUT_LIMIT])
        read(reader, people[0])  # (seen in the window: counts once)
        found = reader(reader.cs.SearchIdentity, identity_pb2.IdentitySearch(resident_code=people[1].resident_code))
        assert [m.resident_code for m in found.matches] == [people[1].resident_code]
        with refused(DENIED, "bulk output rule", reason="CS_BULK_OUTPUT_APPROVAL_REQUIRED"):
            reader(reader.cs.SearchIdentity, identity_pb2.IdentitySearch(
                resident_code=people[bulk.BULK_OUTPUT_LIMIT].resident_code))
    with Counter(net, A, "T0001", "OP0001") as other:  # another operator's account is their own
        read(other, people[bulk.BULK_OUTPUT_LIMIT])


def test_a_managers_approval_covers_its_count_and_survives_a_restart(net, people):
    """Beyond the limit a manager's approval covers as many people as it names, no more; what it has covered, and
    the operator's count, are kept through a kill -9 of the CS."""
    token = approval(net, most=2)
    rest = people[bulk.BULK_OUTPUT_LIMIT:]
    with Counter(net, A, *READER) as reader:
        read(reader, rest[0], token)
    kill(net, f"cs-{A}")
    net.up()
    with Counter(net, A, *READER) as reader:
        with refused(DENIED, reason="CS_BULK_OUTPUT_APPROVAL_REQUIRED"):  # (the count was kept)
            read(reader, rest[1])
        read(reader, rest[1], token)
        with refused(DENIED, "covers 2 people", reason="CS_BULK_OUTPUT_APPROVAL_COUNT"):
            read(reader, rest[2], token)
        read(reader, rest[0])  # (covered once, seen in the window)


def test_an_approval_is_spent_only_by_whom_it_names(net, people):
    """An attacker's tries: an approval of another municipality, one for another operator or terminal, one the
    operator gave themselves, a forged one, one without the binding, one to be spent elsewhere, one spent whole."""
    target = people[bulk.BULK_OUTPUT_LIMIT + 5]
    forged = approval(net, most=1000)
    body, signature = forged.split(".")
    tries = (
        (approval(net, B), "CS_BULK_OUTPUT_APPROVAL_INVALID"),  # (signed with 秦野市's key: not valid here)
        (approval(net, requester="OP0001"), "CS_BULK_OUTPUT_APPROVAL_OTHER_OPERATOR"),
        (approval(net, terminal="T0001"), "CS_BULK_OUTPUT_APPROVAL_OTHER_OPERATOR"),
        (approval(net, approver=READER[1]), "CS_BULK_OUTPUT_SELF_APPROVAL"),
        (body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + signature, "CS_BULK_OUTPUT_APPROVAL_INVALID"),
        (approval(net, most=0), "CS_BULK_OUTPUT_APPROVAL_INVALID"),
        (approval(net, at="kizon"), "CS_BULK_OUTPUT_APPROVAL_INVALID"),
        (approval(net, exp=time.time() - 1), "CS_BULK_OUTPUT_APPROVAL_INVALID"),
        ("not-a-token", "CS_BULK_OUTPUT_APPROVAL_INVALID"),
    )
    with Counter(net, A, *READER) as reader:
        for token, rule in tries:
            with refused(DENIED, reason=rule):
                read(reader, target, token)
        whole = approval(net, most=1)
        read(reader, target, whole)
        with refused(DENIED, reason="CS_BULK_OUTPUT_APPROVAL_COUNT"):  # (used up: reused beyond its count)
            read(reader, people[bulk.BULK_OUTPUT_LIMIT + 6], whole)
    with Counter(net, A, "T0001", "OP0001") as thief:  # an approval read off the wire by someone else
        for who in people[:bulk.BULK_OUTPUT_LIMIT - 1]:
            read(thief, who)
        with refused(DENIED, reason="CS_BULK_OUTPUT_APPROVAL_OTHER_OPERATOR"):
            read(thief, people[-1], approval(net, most=50))


def test_kizons_approval_is_spent_here_once_it_says_for_whom(net, people):
    """kizon's ApproveBulkOutput: its token is spent at the CS only when it names its requester, terminal and count
    (req, term, max); a token that names only its id cannot be bound here (kizon's record of it is out of reach)."""
    token = bulk_approval(net, A, READER[1], READER[0], "照会", 1, spent_at="cs")
    body = token.split(".")[0]
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    with Counter(net, A, *READER) as reader:
        if {"req", "term", "max"} <= set(claims):
            read(reader, people[-2], token)
        else:
            with refused(DENIED, "does not say for whom", reason="CS_BULK_OUTPUT_APPROVAL_INVALID"):
                read(reader, people[-2], token)
