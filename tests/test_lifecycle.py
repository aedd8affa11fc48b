"""The resident lifecycle end to end over real node processes: each rule of DESIGN §4–§5 once kept
and once broken, with the exact gRPC status and a message that names the rule.

Most tests share the session network and look only at the people they create. Moves between the
two cities run on a network of their own (`moves`), so that the people they move between registers stay out of
what other test files count.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import sqlite3
import subprocess
import sys
import uuid
from contextlib import closing, contextmanager
from types import SimpleNamespace

import grpc
import pytest
from helpers import TODAY, address, card_holder, eventually, key, move_in_from_abroad, person, poll

from nodes import identityfile
from nodes.groupcommit import GROUP_LIMIT
from nodes.numbers import (
    individual_number_valid,
    resident_code_valid,
    with_resident_code_check,
)
from protos import (
    common_pb2,
    cs_pb2,
    cs_pb2_grpc,
    identity_pb2,
    kizon_pb2,
    kizon_pb2_grpc,
    national_pb2_grpc,
    prefecture_pb2_grpc,
    records_pb2,
)
from testbed.client import Counter, channel, node_cert, node_status, terminal_cert
from testbed.load import generate_population, load_records
from testbed.network import Network
from testbed.topology import Topology

A, B = "142140", "142115"  # 伊勢原市, 秦野市
MASK = "*" * 12
REMOVED = records_pb2.ResidentRecord.STATUS_REMOVED
CURRENT = records_pb2.ResidentRecord.STATUS_CURRENT
Code = grpc.StatusCode


# -- helpers ------------------------------------------------------------------------------------
def days_from_today(days: int) -> str:
    """An ISO date relative to the office's today (in Japan)."""
    return (dt.date.fromisoformat(TODAY) + dt.timedelta(days=days)).isoformat()


def broken(code: str) -> str:
    """The same 住民票コード with a wrong check digit."""
    return code[:10] + str((int(code[10]) + 1) % 10)


def random_code() -> str:
    """A well-formed 住民票コード nobody was given."""
    return with_resident_code_check(f"{random.randrange(10**10):010d}")


def unique_kana(prefix: str = "ケンサク") -> str:
    """A katakana name that no other test uses."""
    return prefix + " " + "".join(random.choices("アイウエオカキクケコサシスセソタチツテトナニヌネノ", k=8))


@contextmanager
def refused(code: grpc.StatusCode, rule: str):
    """The call inside is refused with this status and a message that names the rule."""
    with pytest.raises(grpc.RpcError) as caught:
        yield caught
    assert caught.value.code() == code, caught.value.details()
    assert rule in caught.value.details(), caught.value.details()


@contextmanager
def calling(network, node_name: str, as_node: str, stub_class):
    """A stub on node_name, called with as_node's client certificate (as that node would call)."""
    with channel(network.topology.node(node_name), node_cert(network.pki, as_node)) as ch:
        yield stub_class(ch)


def wait_applied(network, node_name: str, municipality: str, sequence: int) -> None:
    """Wait until a node has applied a municipality's updates up to 更新順番号 sequence."""
    node = network.topology.node(node_name)
    poll(lambda: node_status(network, node).applied.get(municipality, 0) >= sequence,
         what=f"{node_name} to apply {municipality} up to {sequence}")


def history(counter: Counter, code: str) -> list[records_pb2.ResidentRecord]:
    """Every history entry of a person, oldest first."""
    return list(counter(counter.kizon.GetHistory, key(code)).entries)


def household(counter: Counter, number: str) -> list[records_pb2.ResidentRecord]:
    """The current members of a household."""
    return list(counter(counter.kizon.GetHousehold, kizon_pb2.HouseholdRequest(household_number=number)).entries)


def born(counter: Counter, household_number: str, given: str = "一郎", kana: str = "イチロウ", birth: str = TODAY,
         notified: str = TODAY) -> records_pb2.ResidentRecord:
    """出生 of a child into a household; the child's 住民票."""
    child = person(name=f"試験 {given}", kana=f"シケン {kana}", birth=birth)
    return counter(counter.kizon.Birth, kizon_pb2.BirthRequest(household_number=household_number, child=child,
                                                               notification_date=notified)).records[0]


def family(counter: Counter, children: int = 1):
    """A 世帯主 from abroad and children born into the household."""
    head = move_in_from_abroad(counter)
    names = [("一郎", "イチロウ"), ("二郎", "ジロウ"), ("三郎", "サブロウ")]
    return head, [born(counter, head.household_number, *names[i]) for i in range(children)]


def move_within(counter: Counter, code: str, line: str = "2番2号", **kw) -> kizon_pb2.ChangeReply:
    """転居 of one person to another address in the city."""
    return counter(counter.kizon.MoveWithin, kizon_pb2.MoveWithinRequest(
        resident_code=code, address=address(counter.municipality, line), move_date=TODAY,
        notification_date=TODAY), **kw)


def move_out(counter: Counter, code: str, *, special: bool = False, planned: str = TODAY,
             to: str = B) -> kizon_pb2.MoveOutReply:
    """転出 (or 特例転出) to the other city."""
    return counter(counter.kizon.MoveOut, kizon_pb2.MoveOutRequest(
        resident_code=code, destination_address="神奈川県秦野市河原町1番1号", destination_municipality_code=to,
        planned_date=planned, notification_date=TODAY, special=special))


def special_move_in(counter: Counter, code: str, moved_in: str = TODAY,
                    notified: str = TODAY) -> kizon_pb2.MoveInRequest:
    """A 特例転入 request: only the 住民票コード; the rest comes with the 転出証明書情報."""
    return kizon_pb2.MoveInRequest(person=records_pb2.ResidentRecord(resident_code=code),
                                   address=address(counter.municipality), move_in_date=moved_in,
                                   notification_date=notified, special=True)


def paper_move_in(counter: Counter, certificate, moved_in: str = TODAY) -> kizon_pb2.MoveInRequest:
    """A 転入 request with the paper 転出証明書 of the former city."""
    return kizon_pb2.MoveInRequest(person=records_pb2.ResidentRecord(resident_code=certificate.person.resident_code),
                                   address=address(counter.municipality), move_in_date=moved_in,
                                   notification_date=TODAY, certificate=certificate)


def take_certificate(network, request: kizon_pb2.MoveInRequest):
    """TakeMoveOutCertificate at 秦野市's CS as its kizon calls it, once the certificate has arrived."""
    with calling(network, f"cs-{B}", f"kizon-{B}", cs_pb2_grpc.CommunicationServerStub) as cs:
        return eventually(lambda: cs.TakeMoveOutCertificate(request, timeout=10))


def identity_batch(municipality: str, *infos) -> identity_pb2.IdentityUpdateBatch:
    """An IdentityUpdateBatch of a municipality."""
    return identity_pb2.IdentityUpdateBatch(municipality_code=municipality, updates=[
        identity_pb2.IdentityUpdate(municipality_code=municipality, info=info) for info in infos])


def own_network(state_dir) -> Network:
    """The default topology on free ports with its own state (PKI, data) in state_dir; not yet up."""
    return Network(state_dir, Topology.load().with_free_ports())


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moves(tmp_path_factory):
    """A network of its own for moves from 伊勢原市 to 秦野市, with a clerk at each city."""
    network = own_network(tmp_path_factory.mktemp("moves"))
    try:
        network.up()
        with Counter(network, A) as a, Counter(network, B) as b:
            yield SimpleNamespace(network=network, a=a, b=b)
    finally:
        network.down()


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """A network of its own with 300 residents of 伊勢原市 loaded (移行)."""
    network = own_network(tmp_path_factory.mktemp("loaded"))
    try:
        network.up()
        records, _ = generate_population(network, A, 300, seed=11)
        asyncio.run(load_records(network, A, records, show_progress=False))
        yield network
    finally:
        network.down()


# -- numbers ------------------------------------------------------------------------------------
def test_move_in_from_abroad_gives_new_valid_numbers(clerk):
    """国外転入 gives each person a valid 住民票コード and 個人番号 of their own."""
    people = [move_in_from_abroad(clerk, person(name=f"国外 {n}")) for n in ("一", "二", "三")]
    for who in people:
        assert resident_code_valid(who.resident_code), who.resident_code
        assert individual_number_valid(who.individual_number), who.individual_number
        assert (who.change_reason, who.history_number, who.status) == ("国外転入", 1, CURRENT)
    assert len({p.resident_code for p in people}) == len({p.individual_number for p in people}) == 3


def test_national_gives_the_same_individual_number_twice(network, clerk):
    """National answers the same 個人番号 for the same 住民票コード every time it is asked."""
    who = move_in_from_abroad(clerk)
    request = cs_pb2.ResidentCodes(resident_codes=[who.resident_code])
    with calling(network, "national", f"cs-{A}", national_pb2_grpc.NationalServerStub) as national:
        answers = [national.AssignIndividualNumbers(request, timeout=10).assignments[0] for _ in range(2)]
    assert [(a.resident_code, a.individual_number) for a in answers] == [(who.resident_code, who.individual_number)] * 2


def test_bad_check_digit_refused_at_kizon(clerk):
    """kizon refuses a 転入 whose 転出証明書 names a 住民票コード with a wrong check digit."""
    bad = broken(random_code())
    certificate = identity_pb2.MoveOutCertificate(issuing_municipality_code=B, person=person(resident_code=bad),
                                                  planned_move_out_date=TODAY, destination_municipality_code=A)
    request = kizon_pb2.MoveInRequest(person=records_pb2.ResidentRecord(resident_code=bad), address=address(A),
                                      move_in_date=TODAY, notification_date=TODAY, certificate=certificate)
    with refused(Code.INVALID_ARGUMENT, "住民票コード rule"):
        clerk(clerk.kizon.MoveIn, request)


@pytest.mark.parametrize("item, rule", [("resident_code", "住民票コード rule"), ("individual_number", "個人番号 rule")])
def test_bad_check_digit_refused_at_the_cs(network, clerk, item, rule):
    """The CS refuses 本人確認情報 whose 住民票コード or 個人番号 has a wrong check digit."""
    who = move_in_from_abroad(clerk)
    with calling(network, f"cs-{A}", f"kizon-{A}", cs_pb2_grpc.CommunicationServerStub) as cs:
        info = cs.GetIdentity(key(who.resident_code), timeout=10)
        setattr(info, item, getattr(info, item)[:-1] + str((int(getattr(info, item)[-1]) + 1) % 10))
        info.change_reason, info.change_date, info.request_control_number = "職権修正", TODAY, uuid.uuid4().hex
        with refused(Code.INVALID_ARGUMENT, rule):
            cs.SubmitIdentityUpdates(identity_batch(A, info), timeout=10)
        assert cs.GetIdentity(key(who.resident_code), timeout=10).individual_number == who.individual_number


def test_a_group_applies_each_batch_on_its_own(network, clerk):
    """Group commit: in one SubmitIdentityUpdateGroup each batch is applied or refused alone, as if sent on its
    own: a batch for another municipality (refused before the transaction) and one with a broken check digit
    (refused inside it) leave nothing, each with its rule and an audit entry; the batches around them apply."""
    first, second = move_in_from_abroad(clerk), move_in_from_abroad(clerk)
    with calling(network, f"cs-{A}", f"kizon-{A}", cs_pb2_grpc.CommunicationServerStub) as cs:
        def correction(who, name, municipality=A):
            info = cs.GetIdentity(key(who.resident_code), timeout=10)
            info.change_reason, info.change_date, info.request_control_number = "職権修正", TODAY, uuid.uuid4().hex
            info.name_kanji = name
            return identity_batch(municipality, info)
        elsewhere = correction(second, "他市 二", municipality="142115")
        broken_digit = correction(second, "壊れ 二")
        number = broken_digit.updates[0].info.individual_number
        broken_digit.updates[0].info.individual_number = number[:-1] + str((int(number[-1]) + 1) % 10)
        reply = cs.SubmitIdentityUpdateGroup(cs_pb2.IdentityUpdateGroup(batches=[
            correction(first, "訂正 一"), elsewhere, broken_digit, correction(second, "訂正 二")]), timeout=10)
        outcomes = list(reply.outcomes)
        assert [o.code for o in outcomes] == [0, Code.INVALID_ARGUMENT.value[0], Code.INVALID_ARGUMENT.value[0], 0]
        assert "市町村コード rule" in outcomes[1].detail and "個人番号 rule" in outcomes[2].detail
        assert outcomes[3].ack.update_sequence == outcomes[0].ack.update_sequence + 1  # nothing numbered in between
        assert cs.GetIdentity(key(first.resident_code), timeout=10).name_kanji == "訂正 一"
        assert cs.GetIdentity(key(second.resident_code), timeout=10).name_kanji == "訂正 二"
        with refused(Code.INVALID_ARGUMENT, "group rule"):
            cs.SubmitIdentityUpdateGroup(cs_pb2.IdentityUpdateGroup(
                batches=[correction(first, "多 すぎ")] * (GROUP_LIMIT + 1)), timeout=10)
    entries = [json.loads(line) for line in network.audit_file(f"cs-{A}").read_text().splitlines()]
    refusals = [e for e in entries if e["method"].endswith("/SubmitIdentityUpdateGroup") and e["status"] == "INVALID_ARGUMENT"
                and e["subject"] == second.resident_code]
    assert len(refusals) == 2


def test_a_group_answers_a_reused_request_id_once(network, clerk):
    """Attack on the group: the same batch twice in one call is applied once (the second answered with the first's
    更新順番号), and the same 依頼管理番号 carrying other content is refused by the 依頼管理番号 rule."""
    who = move_in_from_abroad(clerk)
    with calling(network, f"cs-{A}", f"kizon-{A}", cs_pb2_grpc.CommunicationServerStub) as cs:
        info = cs.GetIdentity(key(who.resident_code), timeout=10)
        info.change_reason, info.change_date, info.request_control_number = "職権修正", TODAY, uuid.uuid4().hex
        info.name_kanji = "一度 限り"
        once = identity_batch(A, info)
        info.name_kanji = "二度 目"
        other = identity_batch(A, info)
        outcomes = list(cs.SubmitIdentityUpdateGroup(cs_pb2.IdentityUpdateGroup(batches=[once, once, other]),
                                                     timeout=10).outcomes)
        assert [o.code for o in outcomes] == [0, 0, Code.FAILED_PRECONDITION.value[0]], outcomes
        assert outcomes[1].ack.update_sequence == outcomes[0].ack.update_sequence
        assert "依頼管理番号 rule" in outcomes[2].detail
        assert cs.GetIdentity(key(who.resident_code), timeout=10).name_kanji == "一度 限り"


def test_bad_check_digit_refused_at_national(network):
    """National refuses to number a 住民票コード with a wrong check digit."""
    with calling(network, "national", f"cs-{A}", national_pb2_grpc.NationalServerStub) as national:
        with refused(Code.INVALID_ARGUMENT, "住民票コード rule"):
            national.AssignIndividualNumbers(cs_pb2.ResidentCodes(resident_codes=[broken(random_code())]), timeout=10)


# -- 出生 -------------------------------------------------------------------------------------------
def test_birth_into_an_existing_household(clerk):
    """出生: the child takes the household's number and address and gets a new 住民票コード and history 1."""
    head, (child,) = family(clerk)
    assert child.household_number == head.household_number
    assert (child.town_code, child.address_line, child.postal_code, child.address) == \
        (head.town_code, head.address_line, head.postal_code, head.address)
    assert (child.householder_name, child.relationship, child.change_reason) == (head.name_kanji, "子", "出生")
    assert resident_code_valid(child.resident_code) and child.resident_code != head.resident_code
    assert individual_number_valid(child.individual_number) and child.individual_number != head.individual_number
    assert [e.history_number for e in history(clerk, child.resident_code)] == [1]
    members = {m.resident_code for m in household(clerk, head.household_number)}
    assert members == {head.resident_code, child.resident_code}


def test_birth_into_an_unknown_household(clerk):
    """出生 into a household that does not exist is NOT_FOUND."""
    with refused(Code.NOT_FOUND, "世帯 rule"):
        born(clerk, "9999999999")


def test_birth_in_the_future_or_notified_on_another_day(clerk):
    """A birth date after today, or a 届出年月日 other than the office's today, is INVALID_ARGUMENT."""
    head = move_in_from_abroad(clerk)
    with refused(Code.INVALID_ARGUMENT, "生年月日 rule"):
        born(clerk, head.household_number, birth=days_from_today(1))
    with refused(Code.INVALID_ARGUMENT, "届出年月日 rule"):
        born(clerk, head.household_number, birth=TODAY, notified=days_from_today(-1))
    assert [m.resident_code for m in household(clerk, head.household_number)] == [head.resident_code]


# -- 転入 with a 転出証明書 ------------------------------------------------------------------------
def test_move_in_with_a_paper_certificate(moves):
    """転入 at 秦野市 with the 転出証明書 of 伊勢原市; the same person again is FAILED_PRECONDITION."""
    who = move_in_from_abroad(moves.a)
    out = move_out(moves.a, who.resident_code)
    assert (out.certificate.issuing_municipality_code, out.certificate.person.resident_code) == (A, who.resident_code)
    arrived = moves.b(moves.b.kizon.MoveIn, paper_move_in(moves.b, out.certificate)).records[0]
    assert (arrived.municipality_code, arrived.resident_code, arrived.individual_number) == \
        (B, who.resident_code, who.individual_number)
    assert (arrived.change_reason, arrived.status, arrived.previous_municipality_code) == ("転入", CURRENT, A)
    assert arrived.previous_address == who.address and arrived.address.startswith("神奈川県秦野市")
    assert moves.b(moves.b.kizon.GetResident, key(who.resident_code)).status == CURRENT
    with refused(Code.FAILED_PRECONDITION, "転入 rule (PIA Ⅲ(2)5)"):
        moves.b(moves.b.kizon.MoveIn, paper_move_in(moves.b, out.certificate))


def test_move_in_notified_too_late(moves):
    """A 転入届 15 days after moving in is FAILED_PRECONDITION and writes nothing; 14 days is in time."""
    who = move_in_from_abroad(moves.a)
    certificate = move_out(moves.a, who.resident_code).certificate
    with refused(Code.FAILED_PRECONDITION, "転入 rule (住基法第22条)"):
        moves.b(moves.b.kizon.MoveIn, paper_move_in(moves.b, certificate, moved_in=days_from_today(-15)))
    with refused(Code.NOT_FOUND, "照会"):
        moves.b(moves.b.kizon.GetResident, key(who.resident_code))
    arrived = moves.b(moves.b.kizon.MoveIn, paper_move_in(moves.b, certificate, moved_in=days_from_today(-14)))
    assert arrived.records[0].resident_since == days_from_today(-14)


def test_move_in_keeps_the_other_residents(fresh_network):
    """A 転入 from another city leaves every resident already registered in the new city as they were."""
    fresh_network.up()
    with Counter(fresh_network, A) as a, Counter(fresh_network, B) as b:
        native = move_in_from_abroad(b, person(name="秦野 在住"))
        mover = move_in_from_abroad(a, person(name="伊勢原 転出"))
        certificate = move_out(a, mover.resident_code).certificate
        arrived = b(b.kizon.MoveIn, paper_move_in(b, certificate)).records[0]
        assert arrived.resident_code == mover.resident_code
        assert b(b.kizon.GetResident, key(native.resident_code)).name_kanji == "秦野 在住"
        assert [e.resident_code for e in history(b, mover.resident_code)] == [mover.resident_code]


# -- 転居 ---------------------------------------------------------------------------------------
def test_move_within_changes_only_the_address(network, clerk):
    """転居: a new address and history entry, carried on to national."""
    who = move_in_from_abroad(clerk, line="1番地")
    reply = move_within(clerk, who.resident_code, line="2番2号")
    moved = reply.records[0]
    assert (moved.address_line, moved.change_reason, moved.history_number) == ("2番2号", "転居", 2)
    assert moved.address != who.address and moved.address_since == TODAY
    assert (moved.name_kanji, moved.individual_number) == (who.name_kanji, who.individual_number)
    assert [e.change_reason for e in history(clerk, who.resident_code)] == ["国外転入", "転居"]
    wait_applied(network, "national", A, reply.update_sequence)
    with calling(network, "national", f"cs-{A}", national_pb2_grpc.NationalServerStub) as national:
        info = national.GetIdentity(key(who.resident_code), timeout=10)
    assert (info.address, info.change_reason, info.update_sequence) == (moved.address, "転居", reply.update_sequence)


def test_cs_refuses_a_move_within_that_changes_the_name(network, clerk):
    """The CS refuses a 転居 update that changes 漢字氏名 too, and writes nothing."""
    who = move_in_from_abroad(clerk)
    with calling(network, f"cs-{A}", f"kizon-{A}", cs_pb2_grpc.CommunicationServerStub) as cs:
        before = cs.GetIdentity(key(who.resident_code), timeout=10)
        info = records_pb2.IdentityInfo()
        info.CopyFrom(before)
        info.address = "神奈川県伊勢原市伊勢原9番9号"
        info.name_kanji = "改名 太郎"
        info.change_reason, info.change_date, info.request_control_number = "転居", TODAY, uuid.uuid4().hex
        with refused(Code.FAILED_PRECONDITION, "転居 rule (PIA Ⅲ(2)5)") as caught:
            cs.SubmitIdentityUpdates(identity_batch(A, info), timeout=10)
        assert "name_kanji" in caught.value.details()
        assert cs.GetIdentity(key(who.resident_code), timeout=10) == before


# -- 転出 -------------------------------------------------------------------------------------------
def test_move_out_keeps_a_removed_record(clerk):
    """転出: the 住民票 becomes a 除票, still readable with its history; a second 転出 is refused."""
    who = move_in_from_abroad(clerk)
    removed = move_out(clerk, who.resident_code).change.records[0]
    assert (removed.status, removed.removal_reason, removed.removal_date) == (REMOVED, "転出", TODAY)
    shown = clerk(clerk.kizon.GetResident, key(who.resident_code))
    assert (shown.status, shown.move_out_destination_planned) == (REMOVED, "神奈川県秦野市河原町1番1号")
    entries = history(clerk, who.resident_code)
    assert [(e.history_number, e.change_reason, e.status) for e in entries] == \
        [(1, "国外転入", CURRENT), (2, "転出", REMOVED)]
    with refused(Code.FAILED_PRECONDITION, "除票 rule"):
        move_out(clerk, who.resident_code)


# -- 特例転出 / 特例転入 ----------------------------------------------------------------------------
def test_special_move_out_and_in(moves):
    """特例転出 of a card holder, 特例転入 at 秦野市 with the same 個人番号, then 転出確定 at 伊勢原市."""
    who = card_holder(moves.a)
    out = move_out(moves.a, who.resident_code, special=True)
    assert out.certificate.card_holder
    arrived = eventually(lambda: moves.b(moves.b.kizon.MoveIn, special_move_in(moves.b, who.resident_code))).records[0]
    assert (arrived.municipality_code, arrived.resident_code, arrived.individual_number) == \
        (B, who.resident_code, who.individual_number)
    assert (arrived.change_reason, arrived.previous_municipality_code, arrived.name_kanji) == ("転入", A, who.name_kanji)
    confirmed = poll(lambda: [e for e in history(moves.a, who.resident_code) if e.change_reason == "転出確定"],
                     what="転出確定 at 伊勢原市")
    assert confirmed[0].move_out_destination_confirmed == arrived.address
    assert confirmed[0].status == REMOVED
    # written by the 転入通知, not by the 転出's operation: an 依頼管理番号 of its own, no operator
    assert confirmed[0].request_control_number.startswith(f"転入通知:{B}:") and not confirmed[0].operator_id


def test_special_move_out_needs_a_card(clerk):
    """特例転出 of someone without a 個人番号カード is FAILED_PRECONDITION."""
    who = move_in_from_abroad(clerk, person(card_issued=False))
    with refused(Code.FAILED_PRECONDITION, "特例転出 rule"):
        move_out(clerk, who.resident_code, special=True)
    assert clerk(clerk.kizon.GetResident, key(who.resident_code)).status == CURRENT


def test_special_move_in_more_than_14_days_after_moving_in(moves):
    """A 特例転入 notified 15 days after moving in is FAILED_PRECONDITION, at kizon and at the CS."""
    who = card_holder(moves.a)
    move_out(moves.a, who.resident_code, special=True)
    late = special_move_in(moves.b, who.resident_code, moved_in=days_from_today(-15))
    with refused(Code.FAILED_PRECONDITION, "特例転入 rule"):
        take_certificate(moves.network, late)
    with refused(Code.FAILED_PRECONDITION, "転入 rule"):
        moves.b(moves.b.kizon.MoveIn, late)
    with refused(Code.NOT_FOUND, "照会"):
        moves.b(moves.b.kizon.GetResident, key(who.resident_code))


def certificate_from_a(network, who, planned: str) -> None:
    """A 転出証明書情報 of 伊勢原市 about who, planned for that day, sent CS → CS as 伊勢原市's CS sends it
    (the counter takes a 転出届 at most 14 days after moving out, so an old one can only be one that waited)."""
    certificate = identity_pb2.MoveOutCertificate(
        certificate_number=f"{A}-T{who.resident_code}", issuing_municipality_code=A, person=who,
        planned_move_out_date=planned, destination_address="神奈川県秦野市", destination_municipality_code=B,
        card_holder=True, issued_at=planned)
    with calling(network, f"cs-{B}", f"cs-{A}", cs_pb2_grpc.CommunicationServerStub) as cs:
        cs.ReceiveMoveOutCertificate(certificate, timeout=10)


def test_move_out_dates_inside_their_window(clerk):
    """A 転出 planned more than 14 days ago or more than 30 days ahead is FAILED_PRECONDITION."""
    who = move_in_from_abroad(clerk)
    for planned in (days_from_today(-15), days_from_today(31)):
        with refused(Code.FAILED_PRECONDITION, "転出 rule (住基法第24条)"):
            move_out(clerk, who.resident_code, planned=planned)
    assert clerk(clerk.kizon.GetResident, key(who.resident_code)).status == CURRENT


def test_special_move_in_more_than_30_days_after_the_planned_move_out(moves):
    """A 特例転入 notified 31 days after the planned move-out date is FAILED_PRECONDITION."""
    who = card_holder(moves.a)
    certificate_from_a(moves.network, who, days_from_today(-31))
    with refused(Code.FAILED_PRECONDITION, "特例転入 rule") as caught:
        moves.b(moves.b.kizon.MoveIn, special_move_in(moves.b, who.resident_code))
    assert "planned move-out" in caught.value.details()


def test_expired_certificates_are_purged(moves):
    """A 転出証明書情報 planned 40 days ago is deleted by the purge; a later 特例転入 is NOT_FOUND."""
    who = card_holder(moves.a)
    certificate_from_a(moves.network, who, days_from_today(-40))
    request = special_move_in(moves.b, who.resident_code)
    with refused(Code.FAILED_PRECONDITION, "特例転入 rule"):
        take_certificate(moves.network, request)  # it has arrived (and is out of time)
    with Counter(moves.network, B, "T0003", "OP0003") as manager:  # batches need a manager (or operations)
        assert manager(manager.cs.PurgeExpiredCertificates, common_pb2.Empty()).applied >= 1
    with refused(Code.NOT_FOUND, "特例転入 rule"):
        moves.b(moves.b.kizon.MoveIn, request)


def test_special_move_in_without_a_notification_date(moves):
    """A 特例転入 without a notification date counts as notified today, as every other 届出 does."""
    who = card_holder(moves.a)
    move_out(moves.a, who.resident_code, special=True)
    request = special_move_in(moves.b, who.resident_code, notified="")
    arrived = eventually(lambda: moves.b(moves.b.kizon.MoveIn, request)).records[0]
    assert (arrived.resident_code, arrived.notification_date) == (who.resident_code, TODAY)


# -- 死亡, 職権修正 -----------------------------------------------------------------------------
def test_death_makes_a_removed_record(clerk):
    """死亡: the 住民票 becomes a 除票 with removal_reason 死亡, and the CS marks it 消除."""
    who = move_in_from_abroad(clerk)
    dead = clerk(clerk.kizon.Death, kizon_pb2.DeathRequest(resident_code=who.resident_code, death_date=TODAY,
                                                           notification_date=TODAY)).records[0]
    assert (dead.status, dead.removal_reason, dead.removal_date, dead.history_number) == (REMOVED, "死亡", TODAY, 2)
    assert clerk(clerk.kizon.GetResident, key(who.resident_code)).removal_reason == "死亡"
    assert clerk(clerk.cs.GetIdentity, key(who.resident_code)).record_status_flag == 1
    with refused(Code.FAILED_PRECONDITION, "除票 rule"):
        clerk(clerk.kizon.Death, kizon_pb2.DeathRequest(resident_code=who.resident_code, death_date=TODAY))


def test_correction_of_the_name(clerk):
    """職権修正 of 氏名: one more history entry, and the CS holds the corrected name."""
    who = move_in_from_abroad(clerk)
    fixed = clerk(clerk.kizon.Correct, kizon_pb2.CorrectionRequest(
        corrected=records_pb2.ResidentRecord(resident_code=who.resident_code, name_kanji="訂正 太郎"),
        reason="誤記")).records[0]
    assert (fixed.name_kanji, fixed.change_reason, fixed.change_reason_detail) == ("訂正 太郎", "職権修正", "誤記")
    assert [e.name_kanji for e in history(clerk, who.resident_code)] == [who.name_kanji, "訂正 太郎"]
    assert clerk(clerk.cs.GetIdentity, key(who.resident_code)).name_kanji == "訂正 太郎"


def test_correction_of_the_numbers_refused(clerk):
    """職権修正 may not touch the 個人番号, nor key a 住民票コード of its own making."""
    who = move_in_from_abroad(clerk)
    other = move_in_from_abroad(clerk)
    with refused(Code.INVALID_ARGUMENT, "職権修正 rule"):
        clerk(clerk.kizon.Correct, kizon_pb2.CorrectionRequest(corrected=records_pb2.ResidentRecord(
            resident_code=who.resident_code, individual_number=other.individual_number), reason="誤記"))
    with refused(Code.INVALID_ARGUMENT, "住民票コード rule"):
        clerk(clerk.kizon.Correct, kizon_pb2.CorrectionRequest(corrected=records_pb2.ResidentRecord(
            resident_code=broken(who.resident_code), name_kanji="訂正 太郎"), reason="誤記"))
    assert len(history(clerk, who.resident_code)) == 1


# -- 住民票コード変更 ---------------------------------------------------------------------------
def test_resident_code_change(network, clerk):
    """住民票コード変更 to one of three codes national offers; the old code is gone, the CS knows it."""
    who = move_in_from_abroad(clerk)
    offer = clerk(clerk.kizon.OfferResidentCodes, key(who.resident_code))
    assert len(set(offer.candidates)) == 3 and all(resident_code_valid(c) for c in offer.candidates)
    assert who.resident_code not in offer.candidates
    new = offer.candidates[1]
    reply = clerk(clerk.kizon.ChangeResidentCode, kizon_pb2.ResidentCodeChangeRequest(
        resident_code=who.resident_code, offer_id=offer.offer_id, chosen=new))
    assert (reply.records[0].resident_code, reply.records[0].individual_number) == (new, who.individual_number)
    assert clerk(clerk.kizon.GetResident, key(new)).atena_number == who.atena_number
    with refused(Code.NOT_FOUND, "照会"):
        clerk(clerk.kizon.GetResident, key(who.resident_code))
    assert clerk(clerk.cs.GetIdentity, key(new)).former_resident_code == who.resident_code
    wait_applied(network, "national", A, reply.update_sequence)
    with calling(network, "national", f"cs-{A}", national_pb2_grpc.NationalServerStub) as national:
        assert national.GetIdentity(key(new), timeout=10).former_resident_code == who.resident_code


def test_resident_code_change_to_a_code_not_offered(clerk):
    """住民票コード変更 to a code national did not offer is FAILED_PRECONDITION."""
    who = move_in_from_abroad(clerk)
    offer = clerk(clerk.kizon.OfferResidentCodes, key(who.resident_code))
    chosen = random_code()
    assert chosen not in offer.candidates
    with refused(Code.FAILED_PRECONDITION, "住民票コード変更 rule"):
        clerk(clerk.kizon.ChangeResidentCode, kizon_pb2.ResidentCodeChangeRequest(
            resident_code=who.resident_code, offer_id=offer.offer_id, chosen=chosen))
    assert clerk(clerk.kizon.GetResident, key(who.resident_code)).history_number == 1


# -- 世帯 ---------------------------------------------------------------------------------------
def split(counter: Counter, code: str) -> records_pb2.ResidentRecord:
    """世帯分離 of one member."""
    return counter(counter.kizon.SplitHousehold, kizon_pb2.HouseholdSplitRequest(
        resident_code=code, notification_date=TODAY)).records[0]


def merge(counter: Counter, leaving: str, staying: str) -> kizon_pb2.ChangeReply:
    """世帯合併 of one household into another."""
    return counter(counter.kizon.MergeHousehold, kizon_pb2.HouseholdMergeRequest(
        from_household=leaving, into_household=staying, notification_date=TODAY))


def test_split_household(clerk):
    """世帯分離: a member heads a household of their own at the same address."""
    head, (child,) = family(clerk)
    left = split(clerk, child.resident_code)
    assert left.household_number != head.household_number
    assert (left.relationship, left.householder_name, left.address) == ("世帯主", child.name_kanji, head.address)
    assert [m.resident_code for m in household(clerk, head.household_number)] == [head.resident_code]
    assert [m.resident_code for m in household(clerk, left.household_number)] == [child.resident_code]


def test_the_householder_may_not_split(clerk):
    """世帯分離 of the 世帯主 is FAILED_PRECONDITION."""
    head, _ = family(clerk)
    with refused(Code.FAILED_PRECONDITION, "世帯分離 rule"):
        split(clerk, head.resident_code)


def test_merge_households_at_the_same_address(clerk):
    """世帯合併 at the same address: the members join the other household as 同居人."""
    head, (child,) = family(clerk)
    left = split(clerk, child.resident_code)
    joined = merge(clerk, left.household_number, head.household_number).records[0]
    assert (joined.household_number, joined.relationship, joined.householder_name) == \
        (head.household_number, "同居人", head.name_kanji)
    members = {m.resident_code for m in household(clerk, head.household_number)}
    assert members == {head.resident_code, child.resident_code}


def test_merge_households_at_different_addresses(clerk):
    """世帯合併 of households at different addresses is FAILED_PRECONDITION."""
    one = move_in_from_abroad(clerk, line="10番地")
    other = move_in_from_abroad(clerk, line="20番地")
    with refused(Code.FAILED_PRECONDITION, "世帯合併 rule"):
        merge(clerk, one.household_number, other.household_number)
    assert [m.resident_code for m in household(clerk, one.household_number)] == [one.resident_code]


def test_change_of_householder(clerk):
    """世帯主変更: every member's 世帯主氏名 changes; the old 世帯主 becomes 同居人."""
    head, (first, second) = family(clerk, children=2)
    reply = clerk(clerk.kizon.ChangeHouseholder, kizon_pb2.HouseholderChangeRequest(
        household_number=head.household_number, new_head_resident_code=first.resident_code, notification_date=TODAY))
    assert len(reply.records) == 3
    members = {m.resident_code: m for m in household(clerk, head.household_number)}
    assert {m.householder_name for m in members.values()} == {first.name_kanji}
    assert [members[p.resident_code].relationship for p in (head, first, second)] == ["同居人", "世帯主", "子"]
    with refused(Code.FAILED_PRECONDITION, "世帯主変更 rule"):
        clerk(clerk.kizon.ChangeHouseholder, kizon_pb2.HouseholderChangeRequest(
            household_number=head.household_number, new_head_resident_code=random_code()))


# -- 本人確認情報検索 ---------------------------------------------------------------------------
def search(counter: Counter, **keys) -> identity_pb2.IdentitySearchResult:
    """本人確認情報検索 at the CS, as the 統合端末 asks."""
    return counter(counter.cs.SearchIdentity, identity_pb2.IdentitySearch(**keys))


def test_search_by_each_allowed_key(clerk):
    """Search finds by ふりがな+生年月日, 漢字氏名+住所, 住民票コード and 個人番号."""
    kana = unique_kana()
    kanji = "検索 " + kana.split()[1]
    who = move_in_from_abroad(clerk, person(name=kanji, kana=kana, birth="1971-03-04"))
    prefix = who.address[:len("神奈川県伊勢原市") + 2]
    for keys in ({"name_kana": kana, "birth_date": "1971-03-04"}, {"name_kanji": kanji, "address": prefix},
                 {"resident_code": who.resident_code}, {"individual_number": who.individual_number}):
        result = search(clerk, **keys)
        assert [m.resident_code for m in result.matches] == [who.resident_code], keys
        assert result.source == "cs"
    assert not search(clerk, name_kana=kana, birth_date="1971-03-05").matches


@pytest.mark.parametrize("keys", [{"name_kana": "シケン タロウ"}, {"name_kanji": "試験 太郎", "sex": "1"},
                                  {"birth_date": "1990-01-02", "address": "神奈川県伊勢原市"}],
                         ids=["name-only", "name-and-sex", "birth-date-and-address"])
def test_search_with_too_few_keys(clerk, keys):
    """A search without two items besides sex is INVALID_ARGUMENT naming the 検索 rule."""
    with refused(Code.INVALID_ARGUMENT, "検索 rule (PIA Ⅲ(2)2)"):
        search(clerk, **keys)


def test_nationwide_search_finds_a_person_of_the_other_city(clerk, clerk_b):
    """A nationwide search from 伊勢原市 finds a resident of 秦野市 (through national)."""
    kana = unique_kana("ゼンコク")
    who = move_in_from_abroad(clerk_b, person(kana=kana, birth="1980-05-06"))
    assert not search(clerk, name_kana=kana, birth_date="1980-05-06").matches

    def nationwide():
        result = search(clerk, name_kana=kana, birth_date="1980-05-06", nationwide=True)
        return result if result.matches else None

    result = poll(nationwide, what="national to hear of the new resident")
    assert result.source == "national"
    assert [(m.resident_code, m.municipality_code) for m in result.matches] == [(who.resident_code, B)]


def test_nationwide_search_is_audited_as_a_four_item_search(network, clerk):
    """National's audit names a 4情報 search as such."""
    search(clerk, name_kana=unique_kana(), birth_date="1980-05-06", nationwide=True)
    entries = [json.loads(line) for line in network.audit_file("national").read_text(encoding="utf-8").splitlines()]
    searches = [e for e in entries if e["method"] == "/testbed.v1.NationalServer/SearchIdentity"]
    assert searches[-1]["subject"] == "4情報"


# -- access -------------------------------------------------------------------------------------
def test_individual_number_shown_with_the_permission(network, clerk):
    """OP0001 at T0001 and T0003 (registered terminals) sees the 個人番号."""
    who = move_in_from_abroad(clerk)
    assert individual_number_valid(who.individual_number)
    with Counter(network, A, "T0003", "OP0001") as other:
        assert other(other.kizon.GetResident, key(who.resident_code)).individual_number == who.individual_number
        assert other(other.cs.GetIdentity, key(who.resident_code)).individual_number == who.individual_number


@pytest.mark.parametrize("terminal, operator", [("T0001", "OP0002"), ("T0002", "OP0001")],
                         ids=["operator-without-permission", "unregistered-terminal"])
def test_individual_number_masked_without_the_permission(network, clerk, terminal, operator):
    """個人番号 is masked in GetResident, ChangeReply, GetHistory and the CS's GetIdentity."""
    who = move_in_from_abroad(clerk)
    with Counter(network, A, terminal, operator) as other:
        assert other(other.kizon.GetResident, key(who.resident_code)).individual_number == MASK
        assert {e.individual_number for e in history(other, who.resident_code)} == {MASK}
        assert other(other.cs.GetIdentity, key(who.resident_code)).individual_number == MASK
        assert move_within(other, who.resident_code).records[0].individual_number == MASK
        assert move_in_from_abroad(other).individual_number == MASK
    assert clerk(clerk.kizon.GetResident, key(who.resident_code)).individual_number == who.individual_number


def export(counter: Counter, approval: str | None = None, purpose: str = "統計資料",
           town: str = "") -> list[records_pb2.ResidentRecord]:
    """Records of the register (除票 included; one 町字 if given), with an approval token if given."""
    metadata = (("x-approval-token", approval),) if approval else ()
    request = kizon_pb2.ExportRequest(include_removed=True, purpose=purpose, town_code=town)
    return list(counter(counter.kizon.ExportResidents, request, metadata=metadata))


def approve(network, operator: str = "OP0001", terminal: str = "T0001", manager: str = "OP0003",
            purpose: str = "統計資料", max_records: int = 100_000) -> str:
    """A manager's approval of one output by operator at terminal."""
    with Counter(network, A, "T0003", manager) as approver:
        return approver(approver.kizon.ApproveBulkOutput, kizon_pb2.BulkApprovalRequest(
            purpose=purpose, max_records=max_records, requester_operator_id=operator, terminal_id=terminal)).token


def test_bulk_output_needs_a_managers_approval(loaded):
    """Over 100 records: refused without approval; with OP0003's approval OP0001 gets every record."""
    total = node_status(loaded, loaded.topology.find("kizon", A), counts=True).counts["residents"]
    assert total > 100
    with Counter(loaded, A) as clerk:
        with refused(Code.PERMISSION_DENIED, "bulk output rule (PIA Ⅲ(2)3)"):
            export(clerk)
        records = export(clerk, approve(loaded))
    assert len(records) == len({r.atena_number for r in records}) == total


def test_bulk_output_approval_rules(loaded):
    """Only a manager approves, never their own output; an approval is for one operator, terminal, purpose and
    count, and good once."""
    with refused(Code.PERMISSION_DENIED, "bulk output rule (PIA Ⅲ(2)3)"):
        approve(loaded, manager="OP0002")
    with refused(Code.PERMISSION_DENIED, "own output"):
        approve(loaded, operator="OP0003", terminal="T0003")
    with Counter(loaded, A, "T0002", "OP0002") as other, Counter(loaded, A) as clerk:
        with refused(Code.PERMISSION_DENIED, "is for OP0001 at T0001"):
            export(other, approve(loaded))  # someone else's approval
        with refused(Code.PERMISSION_DENIED, "purpose"):
            export(clerk, approve(loaded), purpose="別の目的")
        with refused(Code.PERMISSION_DENIED, "covers 5 records"):
            export(clerk, approve(loaded, max_records=5))
        token = approve(loaded)
        export(clerk, token)
        with refused(Code.PERMISSION_DENIED, "used already"):
            export(clerk, token)


def test_split_exports_add_up(loaded):
    """Exports one 町字 at a time count together: once an operator has had 100 records in a day, the next
    export needs an approval too."""
    from scenarios.towns import towns
    with Counter(loaded, A, "T0002", "OP0002") as clerk:
        had, refusal = 0, None
        for place in towns(A):
            try:
                had += len(export(clerk, town=place.code))
            except grpc.RpcError as exc:
                refusal = exc
                break
        assert refusal is not None and refusal.code() == Code.PERMISSION_DENIED, "split exports were not added up"
        assert "bulk output rule" in refusal.details() and had <= 100


def test_an_approved_export_names_requester_and_approver(loaded):
    """The audit entry of an approved output names the approval, the approver and the requester."""
    with Counter(loaded, A) as clerk:
        export(clerk, approve(loaded))
    poll(lambda: any("ExportResidents" in line and "by OP0003 for OP0001" in line
                     for line in loaded.audit_file(f"kizon-{A}").read_text().splitlines()),
         what="the audit entry naming requester and approver")


def test_new_household_after_the_initial_load(loaded):
    """A household created after the 移行 has a 世帯番号 of its own."""
    with Counter(loaded, A) as clerk:
        who = move_in_from_abroad(clerk)
        assert [m.resident_code for m in household(clerk, who.household_number)] == [who.resident_code]


def test_login_with_a_wrong_credential(network):
    """Login with a wrong credential is UNAUTHENTICATED."""
    with channel(network.topology.find("kizon", A), terminal_cert(network.pki, A, "T0001")) as ch:
        with refused(Code.UNAUTHENTICATED, "operator rule"):
            kizon_pb2_grpc.KizonStub(ch).Login(kizon_pb2.LoginRequest(operator_id="OP0001", credential="wrong"),
                                               timeout=10)


def test_a_call_without_a_session(network, clerk):
    """A terminal call without an operator session is UNAUTHENTICATED."""
    who = move_in_from_abroad(clerk)
    with channel(network.topology.find("kizon", A), terminal_cert(network.pki, A, "T0001")) as ch:
        with refused(Code.UNAUTHENTICATED, "operator session"):
            kizon_pb2_grpc.KizonStub(ch).GetResident(key(who.resident_code), timeout=10)


def test_a_session_replayed_from_another_terminal(network, clerk):
    """T0001's session token sent from T0003 is PERMISSION_DENIED."""
    who = move_in_from_abroad(clerk)
    with Counter(network, A, "T0003", "OP0001") as other:
        with refused(Code.PERMISSION_DENIED, "session rule"):
            other.kizon.GetResident(key(who.resident_code), metadata=clerk.metadata, timeout=10)


# -- retries and audit --------------------------------------------------------------------------
def test_a_retried_move_within_is_applied_once(clerk):
    """The same x-request-id twice: the same 更新順番号 in both replies and one history entry."""
    who = move_in_from_abroad(clerk)
    request_id = uuid.uuid4().hex
    first = move_within(clerk, who.resident_code, request_id=request_id)
    again = move_within(clerk, who.resident_code, request_id=request_id)
    assert first.update_sequence == again.update_sequence > 0
    assert first.records == again.records
    assert [e.change_reason for e in history(clerk, who.resident_code)] == ["国外転入", "転居"]


def test_audit_records_the_operation(network, clerk):
    """The kizon audit log names operator, terminal, method and 住民票コード; its chain is whole."""
    who = move_in_from_abroad(clerk)
    move_within(clerk, who.resident_code)
    path = network.audit_file(f"kizon-{A}")

    def recorded():  # the entry is written as the call ends, just after its answer
        entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        return any(e["operator"] == "OP0001" and e["terminal"] == "T0001" and e["subject"] == who.resident_code and
                   e["method"] == "/testbed.v1.Kizon/MoveWithin" and e["status"] == "OK" for e in entries)
    poll(recorded, what="the audit entry of the 転居")
    result = network.verify_audit(f"kizon-{A}")
    assert result.ok, result.problems


# -- ordering at the prefecture -----------------------------------------------------------------
def test_prefecture_applies_in_order(network, clerk):
    """The prefecture ignores an already applied 更新順番号, refuses a gap and another city's batch."""
    who = move_in_from_abroad(clerk)
    with calling(network, f"cs-{A}", f"kizon-{A}", cs_pb2_grpc.CommunicationServerStub) as cs:
        info = cs.GetIdentity(key(who.resident_code), timeout=10)
    wait_applied(network, "prefecture-140007", A, info.update_sequence)
    last = node_status(network, network.topology.node("prefecture-140007")).applied[A]
    with calling(network, "prefecture-140007", f"cs-{A}", prefecture_pb2_grpc.PrefectureServerStub) as prefecture:
        stale = records_pb2.IdentityInfo()
        stale.CopyFrom(info)
        stale.name_kanji = "重複 送信"
        ack = prefecture.ApplyIdentityUpdates(identity_batch(A, stale), timeout=10)
        assert (ack.accepted, ack.applied) == (True, 0)
        assert prefecture.GetIdentity(key(who.resident_code), timeout=10).name_kanji == who.name_kanji
        gap = records_pb2.IdentityInfo()
        gap.CopyFrom(info)
        gap.update_sequence = last + 1000
        with refused(Code.FAILED_PRECONDITION, "更新順番号 rule"):
            prefecture.ApplyIdentityUpdates(identity_batch(A, gap), timeout=10)
        other = records_pb2.IdentityInfo()
        other.CopyFrom(gap)
        other.municipality_code = B
        with refused(Code.PERMISSION_DENIED, "市町村コード rule"):
            prefecture.ApplyIdentityUpdates(identity_batch(B, other), timeout=10)
    assert node_status(network, network.topology.node("prefecture-140007")).applied[A] < last + 1000


# -- 整合性確認 ---------------------------------------------------------------------------------
def tamper_name(store, code: str) -> None:
    """Change one person's 漢字氏名 in a node's identity file, with matching digests."""
    with closing(sqlite3.connect(store, timeout=10)) as db:
        (blob,) = db.execute("SELECT info FROM identity WHERE resident_code=?", (code,)).fetchone()
        info = records_pb2.IdentityInfo.FromString(blob)
        info.name_kanji = "改竄 太郎"
        row = dict(zip(identityfile.COLUMNS, identityfile.row(info)))
        db.execute("UPDATE identity SET name_kanji=?, dx1=?, dx2=?, rx1=?, rx2=?, digest=?, info=? WHERE resident_code=?",
                   (*(row[c] for c in ("name_kanji", "dx1", "dx2", "rx1", "rx2", "digest", "info")), code))
        db.commit()


def delete_identity(store, code: str) -> None:
    """Delete one person's row from a node's identity file."""
    with closing(sqlite3.connect(store, timeout=10)) as db:
        assert db.execute("DELETE FROM identity WHERE resident_code=?", (code,)).rowcount == 1
        db.commit()


def test_consistency_check_names_every_difference(fresh_network):
    """整合性確認 finds nothing after normal operations, then exactly a tampered and a deleted record."""
    network = fresh_network
    network.up()
    data = network.state_dir / "data"
    with Counter(network, A, "T0003", "OP0003") as counter:  # a manager: the 整合性確認 needs one
        head, (child,) = family(counter)
        people = [head, child] + [move_in_from_abroad(counter) for _ in range(3)]
        move_within(counter, people[2].resident_code)
        counter(counter.kizon.Death, kizon_pb2.DeathRequest(resident_code=people[3].resident_code, death_date=TODAY))
        last = move_within(counter, people[4].resident_code, line="3番3号").update_sequence
        wait_applied(network, "national", A, last)
        report = counter(counter.cs.CheckConsistency, common_pb2.ConsistencyRequest(municipality_code=A))
        assert list(report.differences) == []
        assert report.records_cs == report.records_prefecture == report.records_national == 5

        renamed, lost = people[1].resident_code, people[2].resident_code
        tamper_name(data / "prefecture-140007" / "store.sqlite", renamed)
        delete_identity(data / "national" / "store.sqlite", lost)
        report = counter(counter.cs.CheckConsistency, common_pb2.ConsistencyRequest(municipality_code=A))
    found = sorted((d.resident_code, d.node, list(d.items)) for d in report.differences)
    assert found == sorted([(renamed, "prefecture", ["name_kanji"]), (lost, "national", ["missing"])])

    network.topology.save(network.state_dir / "topology.yaml")
    cli = subprocess.run([sys.executable, "-m", "testbed.cli", "--state-dir", str(network.state_dir), "consistency", A],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 1, cli.stderr
    lines = cli.stdout.splitlines()
    assert any(renamed in line and "prefecture" in line and "name_kanji" in line for line in lines), cli.stdout
    assert any(lost in line and "national" in line and "missing" in line for line in lines), cli.stdout
