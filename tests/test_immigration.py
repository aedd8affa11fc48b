"""法務省 在留カード等発行システム (住基法第30条の50, 入管法第61条の8の2): a change of 在留 an 入管 office records reaches the
foreign resident's 住民票 as a 法務省通知, in order and once, and flows on to the CS and national; a change of a
foreign resident's 住所 at the counter reaches 法務省's card as a 市町村通知."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3

import grpc
import pytest
from helpers import TODAY, key, kill, poll, refused

from conftest import network_of_its_own
from nodes.numbers import with_resident_code_check
from protos import cs_pb2_grpc, kizon_pb2, moj_pb2, moj_pb2_grpc, national_pb2_grpc, records_pb2
from testbed.client import Counter, channel, console_cert, node_cert, terminal_cert
from testbed.immigration import immigration_office, record_change
from testbed.load import generate_population, load_records

A, B = "142140", "142115"
LATER = (dt.date.fromisoformat(TODAY) + dt.timedelta(days=3 * 365)).isoformat()  # a new 在留期間の満了の日
REMOVED = records_pb2.ResidentRecord.STATUS_REMOVED


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """A network with 400 residents in 伊勢原市 (19 of them foreign) and 100 in 秦野市, 法務省's cards loaded."""
    for network in network_of_its_own(tmp_path_factory, "immigration"):
        network.population = {}
        for code, count in ((A, 400), (B, 100)):
            records, _ = generate_population(network, code, count, seed=7)
            network.population[code] = records
            summary = asyncio.run(load_records(network, code, records, show_progress=False))
            assert summary["residence_cards"] == sum(r.resident_type == "外国人住民" for r in records)
        yield network


@pytest.fixture(scope="module")
def office(net):
    """The counter of 伊勢原市 (OP0001 at T0001, its reads approved)."""
    with Counter(net, A, reads=100_000) as counter:
        yield counter


@pytest.fixture(scope="module")
def foreign(net):
    """The foreign residents of 伊勢原市, each test taking its own."""
    people = [r for r in net.population[A] if r.resident_type == "外国人住民"]
    assert len(people) >= 12
    return people


@pytest.fixture(scope="module")
def moj(net):
    """法務省's system as the 入管 office calls it."""
    stub, ch = immigration_office(net)
    yield stub
    ch.close()


TAGS = ("renew", "status", "bad", "move", "gap", "aside", "kill")  # each test's new cards, numbered apart


def _card(tag: str, number: int) -> str:
    """A new card number of the layout, unlike any the population holds (their letters skip I, O and Q)."""
    return f"QQ{TAGS.index(tag) * 100 + number:08d}QQ"


def _resident(office, code):
    return office(office.kizon.GetResident, key(code))


def _national(net, code):
    with channel(net.topology.find("national"), node_cert(net.pki, f"cs-{A}")) as ch:
        return national_pb2_grpc.NationalServerStub(ch).GetIdentity(key(code), timeout=10)


def test_a_renewal_reaches_the_register_and_the_cs_once(net, office, foreign, moj):
    person = foreign[0]
    before = office(office.cs.GetIdentity, key(person.resident_code)).update_sequence
    renewal = moj_pb2.ResidenceChange(residence_card_number=person.residence_card_number, kind="在留期間更新",
                                      period_expiry_date=LATER, new_card_number=_card("renew", 1), event_date=TODAY)
    notice = record_change(net, renewal, request_id="renew-1")
    assert notice.municipality_code == A and notice.resident_code == person.resident_code and notice.sequence >= 1
    again = record_change(net, renewal, request_id="renew-1")
    assert again == notice  # (a retry is answered with the first answer, not recorded twice)
    record = poll(lambda: (r := _resident(office, person.resident_code)).residence_card_number == _card("renew", 1)
                  and r, timeout=30, what="the renewal on the 住民票")
    assert record.residence_period_expiry_date == LATER and record.residence_status == person.residence_status
    assert record.change_reason == "職権修正" and f"法務省通知 第{notice.sequence}号" in record.change_reason_detail
    info = poll(lambda: (i := office(office.cs.GetIdentity, key(person.resident_code))).update_sequence > before and i,
                timeout=20, what="the renewal at the CS")
    assert info.change_reason == "職権修正"
    history = office(office.kizon.GetHistory, key(person.resident_code)).entries
    assert [e.change_reason_detail for e in history].count(record.change_reason_detail) == 1
    card = moj.GetResidenceCard(moj_pb2.ResidenceCardKey(residence_card_number=_card("renew", 1)), timeout=10)
    assert card.period_expiry_date == LATER and card.status == "有効" and card.resident_code == person.resident_code
    with refused(grpc.StatusCode.NOT_FOUND, reason="RECORD_NOT_FOUND"):  # (the old card was replaced)
        moj.GetResidenceCard(moj_pb2.ResidenceCardKey(residence_card_number=person.residence_card_number), timeout=10)
    with refused(grpc.StatusCode.FAILED_PRECONDITION, reason="REQUEST_ID_REUSED"):
        record_change(net, moj_pb2.ResidenceChange(residence_card_number=_card("renew", 1), kind="在留カード再交付",
                                                   new_card_number=_card("renew", 2)), request_id="renew-1")
    with refused(grpc.StatusCode.FAILED_PRECONDITION, reason="RESIDENCE_CARD_NOT_VALID"):
        record_change(net, moj_pb2.ResidenceChange(residence_card_number=person.residence_card_number,
                                                   kind="在留カード再交付", new_card_number=_card("renew", 3)))


def test_a_change_of_status_changes_the_status_on_the_register(net, office, foreign):
    person = foreign[1]
    record_change(net, moj_pb2.ResidenceChange(residence_card_number=person.residence_card_number, kind="在留資格変更",
                                               residence_status="永住者" if person.residence_status != "永住者" else
                                               "定住者", period_expiry_date=LATER, new_card_number=_card("status", 1)))
    record = poll(lambda: (r := _resident(office, person.resident_code)).residence_card_number == _card("status", 1)
                  and r, timeout=30, what="the 在留資格変更 on the 住民票")
    assert record.residence_status != person.residence_status and record.residence_period_expiry_date == LATER


def test_a_departure_makes_a_removal_that_reaches_national(net, office, foreign):
    person = foreign[2]
    record_change(net, moj_pb2.ResidenceChange(residence_card_number=person.residence_card_number, kind="出国",
                                               event_date=TODAY))
    removed = poll(lambda: (r := _resident(office, person.resident_code)).status == REMOVED and r, timeout=30,
                   what="the 除票 of the 出国")
    assert removed.removal_reason == "出国" and removed.removal_date == TODAY and removed.change_reason == "職権消除"
    poll(lambda: office(office.cs.GetIdentity, key(person.resident_code)).record_status_flag == 1, timeout=20,
         what="the 除票 at the CS")
    poll(lambda: _national(net, person.resident_code).record_status_flag == 1, timeout=30, what="the 除票 at national")
    with refused(grpc.StatusCode.FAILED_PRECONDITION, reason="RESIDENCE_CARD_NOT_VALID"):  # (the card ended with it)
        record_change(net, moj_pb2.ResidenceChange(residence_card_number=person.residence_card_number, kind="失効"))


def test_bad_changes_are_refused_by_their_rule(net, foreign):
    card = foreign[3].residence_card_number
    tomorrow = (dt.date.fromisoformat(TODAY) + dt.timedelta(days=1)).isoformat()
    cases = (
        (grpc.StatusCode.INVALID_ARGUMENT, "RESIDENCE_CARD_NUMBER_FORMAT",
         moj_pb2.ResidenceChange(residence_card_number="ab12345678cd", kind="失効")),
        (grpc.StatusCode.NOT_FOUND, "RECORD_NOT_FOUND", moj_pb2.ResidenceChange(residence_card_number="ZZ99999999ZZ",
                                                                                kind="失効")),
        (grpc.StatusCode.INVALID_ARGUMENT, "RESIDENCE_CHANGE_KIND",
         moj_pb2.ResidenceChange(residence_card_number=card, kind="帰化")),
        (grpc.StatusCode.INVALID_ARGUMENT, "RESIDENCE_PERIOD_EXPIRY",
         moj_pb2.ResidenceChange(residence_card_number=card, kind="在留期間更新", period_expiry_date=TODAY,
                                 new_card_number=_card("bad", 1))),
        (grpc.StatusCode.INVALID_ARGUMENT, "DATE_FORMAT",
         moj_pb2.ResidenceChange(residence_card_number=card, kind="在留期間更新", period_expiry_date="31/12/2030",
                                 new_card_number=_card("bad", 1))),
        (grpc.StatusCode.INVALID_ARGUMENT, "RESIDENCE_CHANGE_ITEMS",  # (a renewal gives a new card)
         moj_pb2.ResidenceChange(residence_card_number=card, kind="在留期間更新", period_expiry_date=LATER)),
        (grpc.StatusCode.INVALID_ARGUMENT, "RESIDENCE_CHANGE_ITEMS",  # (a departure changes no 在留資格)
         moj_pb2.ResidenceChange(residence_card_number=card, kind="出国", residence_status="永住者")),
        (grpc.StatusCode.INVALID_ARGUMENT, "RESIDENCE_CARD_NUMBER_FORMAT",
         moj_pb2.ResidenceChange(residence_card_number=card, kind="在留カード再交付", new_card_number="X1")),
        (grpc.StatusCode.ALREADY_EXISTS, "RESIDENCE_CARD_NUMBER_TAKEN",  # (another holder's number)
         moj_pb2.ResidenceChange(residence_card_number=card, kind="在留カード再交付",
                                 new_card_number=foreign[4].residence_card_number)),
        (grpc.StatusCode.INVALID_ARGUMENT, "DATE_NOT_FUTURE",
         moj_pb2.ResidenceChange(residence_card_number=card, kind="出国", event_date=tomorrow)),
    )
    for code, rule, change in cases:
        with refused(code, reason=rule):
            record_change(net, change)
    stub, ch = immigration_office(net)  # (nothing of these was recorded: the card is still 有効)
    with ch:
        assert stub.GetResidenceCard(moj_pb2.ResidenceCardKey(residence_card_number=card), timeout=10).status == "有効"


def test_only_the_immigration_office_records_and_only_a_cs_notifies(net, foreign):
    """The policy: a terminal, a CS and kizon never record a change of 在留; the 入管 office never sends a 市町村通知
    nor loads cards; a CS sends only its own municipality's notices."""
    node = net.topology.find("moj")
    change = moj_pb2.ResidenceChange(residence_card_number=foreign[3].residence_card_number, kind="失効")
    for cert in (terminal_cert(net.pki, A, "T0001"), node_cert(net.pki, f"cs-{A}"), node_cert(net.pki, f"kizon-{A}"),
                 node_cert(net.pki, "national"), console_cert(net.pki, "moj")):
        with channel(node, cert) as ch, refused(grpc.StatusCode.PERMISSION_DENIED):
            moj_pb2_grpc.ResidenceCardSystemStub(ch).RecordResidenceChange(change, timeout=10)
    notice = moj_pb2.MunicipalityNotice(sequence=1, municipality_code=A, resident_code=foreign[3].resident_code,
                                        residence_card_number=foreign[3].residence_card_number, reason="転居")
    stub, ch = immigration_office(net)
    with ch:
        with refused(grpc.StatusCode.PERMISSION_DENIED, reason="DEFAULT_DENY"):
            stub.ReceiveMunicipalityNotice(notice, timeout=10)
        with refused(grpc.StatusCode.PERMISSION_DENIED, reason="DEFAULT_DENY"):
            stub.LoadResidenceCards(moj_pb2.ResidenceCardLoad(), timeout=10)
    with channel(node, node_cert(net.pki, f"cs-{B}")) as ch, \
            refused(grpc.StatusCode.PERMISSION_DENIED, reason="MUNICIPALITY_NOTICE_SENDER"):
        moj_pb2_grpc.ResidenceCardSystemStub(ch).ReceiveMunicipalityNotice(notice, timeout=10)


def test_a_move_within_reaches_the_card_at_moj_with_no_echo(net, office, foreign, moj):
    """A 転居 of a foreign resident is a 市町村通知: 法務省's card shows the new 住居地. The 再交付 before it, which
    法務省 told the municipality, is not told back."""
    person = foreign[5]
    record_change(net, moj_pb2.ResidenceChange(residence_card_number=person.residence_card_number,
                                               kind="在留カード再交付", new_card_number=_card("move", 1)))
    poll(lambda: _resident(office, person.resident_code).residence_card_number == _card("move", 1), timeout=30,
         what="the 再交付 on the 住民票")
    office(office.kizon.MoveWithin, kizon_pb2.MoveWithinRequest(
        resident_code=person.resident_code, move_date=TODAY,
        address=records_pb2.Address(town_code=person.town_code, address_line="88番地")))
    card = poll(lambda: "88番地" in (c := moj.GetResidenceCard(moj_pb2.ResidenceCardKey(
        residence_card_number=_card("move", 1)), timeout=10)).address and c, timeout=30, what="the 転居 at 法務省")
    assert card.municipality_code == A and card.resident_code == person.resident_code
    received = sqlite3.connect(f"file:{net.state_dir / 'data' / 'moj' / 'store.sqlite'}?mode=ro", uri=True)
    try:
        reasons = [row[0] for row in received.execute("SELECT notice FROM municipality_notices WHERE sender=?", (A,))]
    finally:
        received.close()
    told = [moj_pb2.MunicipalityNotice.FromString(blob) for blob in reasons]
    assert [n.reason for n in told if n.resident_code == person.resident_code] == ["転居"], told


def test_the_cs_takes_notices_from_moj_in_order_addressed_to_it(net, foreign):
    """法務省's own certificate: a number two ahead of the next is refused, a repeat is answered, a notice for another
    municipality is refused."""
    person = foreign[6]
    notice = record_change(net, moj_pb2.ResidenceChange(residence_card_number=person.residence_card_number,
                                                        kind="在留カード再交付", new_card_number=_card("gap", 1)))
    with channel(net.topology.find("cs", A), node_cert(net.pki, "moj")) as ch:
        cs = cs_pb2_grpc.CommunicationServerStub(ch)
        ahead = moj_pb2.ImmigrationNotice()
        ahead.CopyFrom(notice)
        ahead.sequence = notice.sequence + 2
        with refused(grpc.StatusCode.FAILED_PRECONDITION, reason="IMMIGRATION_NOTICE_GAP"):
            cs.ReceiveImmigrationNotice(ahead, timeout=10)
        repeat = poll(lambda: (ack := cs.ReceiveImmigrationNotice(notice, timeout=10)).applied == 0 and ack,
                      timeout=20, what="the notice delivered, then answered as a repeat")
        assert repeat.accepted and repeat.update_sequence >= notice.sequence
        elsewhere = moj_pb2.ImmigrationNotice()
        elsewhere.CopyFrom(notice)
        elsewhere.municipality_code = B
        with refused(grpc.StatusCode.PERMISSION_DENIED, reason="IMMIGRATION_NOTICE_ADDRESSEE"):
            cs.ReceiveImmigrationNotice(elsewhere, timeout=10)


def test_a_notice_of_nobody_here_is_set_aside_and_the_next_applied(net, office, foreign):
    """A card 法務省 holds for 伊勢原市 whose holder has no 住民票 here: its notice is set aside, the next one goes on."""
    stranger = moj_pb2.ResidenceCardRecord(
        residence_card_number="ZX00000001ZX", name_romaji="NOBODY HERE", nationality="VNM", birth_date="1990-01-01",
        sex="1", residence_status="留学", period_expiry_date=LATER, municipality_code=A,
        resident_code=with_resident_code_check("9999999990"), address="神奈川県伊勢原市", status="有効")
    with channel(net.topology.find("moj"), console_cert(net.pki, "moj")) as ch:
        loader = moj_pb2_grpc.ResidenceCardSystemStub(ch)
        assert loader.LoadResidenceCards(moj_pb2.ResidenceCardLoad(records=[stranger]), timeout=10).applied == 1
        assert loader.LoadResidenceCards(moj_pb2.ResidenceCardLoad(records=[stranger]), timeout=10).applied == 0
        changed = moj_pb2.ResidenceCardRecord()
        changed.CopyFrom(stranger)
        changed.address += "1番地"
        with refused(grpc.StatusCode.ALREADY_EXISTS, reason="RESIDENCE_CARD_LOAD_TAKEN"):
            loader.LoadResidenceCards(moj_pb2.ResidenceCardLoad(records=[changed]), timeout=10)
    record_change(net, moj_pb2.ResidenceChange(residence_card_number=stranger.residence_card_number,
                                               kind="在留カード再交付", new_card_number=_card("aside", 1)))
    person = foreign[7]
    record_change(net, moj_pb2.ResidenceChange(residence_card_number=person.residence_card_number,
                                               kind="在留カード再交付", new_card_number=_card("aside", 2)))
    poll(lambda: _resident(office, person.resident_code).residence_card_number == _card("aside", 2), timeout=30,
         what="the notice after the one set aside")
    audit = [json.loads(line) for line in (net.state_dir / "data" / f"kizon-{A}" / "audit.jsonl").read_text(
        encoding="utf-8").splitlines()]
    aside = [e for e in audit if e["method"] == "kizon/法務省通知" and e["status"] != "OK"]
    assert [(e["status"], e["subject"].split()[1:]) for e in aside] == [
        ("FAILED_PRECONDITION", [stranger.resident_code, "set", "aside:", "IMMIGRATION_NOTICE_RESIDENT"])], aside


def test_notices_queued_while_kizon_is_down_are_applied_after_each_once(net, office, foreign):
    people = foreign[8:11]
    kill(net, f"kizon-{A}")
    try:
        notices = [record_change(net, moj_pb2.ResidenceChange(
            residence_card_number=p.residence_card_number, kind="在留カード再交付", new_card_number=_card("kill", i)))
            for i, p in enumerate(people)]
    finally:
        net.up()  # (restarts only the killed node)
    for index, (person, notice) in enumerate(zip(people, notices)):
        poll(lambda: _resident(office, person.resident_code).residence_card_number == _card("kill", index), timeout=40,
             what="the notice after kizon's restart")
        details = [e.change_reason_detail for e in office(office.kizon.GetHistory, key(person.resident_code)).entries]
        assert sum(d.startswith(f"法務省通知 第{notice.sequence}号") for d in details) == 1, details


def test_check_finds_a_card_recorded_for_someone_else(net, office, foreign):
    """`testbed check` compares 法務省's record of every card a current foreign resident holds with the register: whole
    after the changes above, and a card rewritten behind the nodes' back is found."""
    from testbed.check import check_network
    report = poll(lambda: (r := check_network(net, audit=False)) and not [
        f for f in r.findings if f.invariant == "residence-cards-follow-register"] and r, timeout=30,
        what="法務省's cards to follow the registers")
    assert report.looked_at["residence_cards"] >= 5
    store = net.state_dir / "data" / "moj" / "store.sqlite"
    db = sqlite3.connect(store, timeout=10)
    try:
        with db:
            number, card = next((n, c) for n, c in ((n, moj_pb2.ResidenceCardRecord.FromString(b)) for n, b in
                                db.execute("SELECT residence_card_number, record FROM residence_cards"))
                                if c.status == "有効" and c.resident_code)
            card.resident_code = "99999999999"
            db.execute("UPDATE residence_cards SET record=? WHERE residence_card_number=?",
                       (card.SerializeToString(), number))
    finally:
        db.close()
    found = [f for f in check_network(net, audit=False).findings if f.invariant == "residence-cards-follow-register"]
    assert found and found[0].failure, found
