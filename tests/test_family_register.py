"""The 戸籍 system and the 附票 (住基法第9条第2項, 第19条): its 届出 change the 住民票 through kizon's 住基GW, in order and
once, and flow on to the CS and national; a move of a person whose 本籍 is elsewhere reaches the 本籍地's 附票."""
from __future__ import annotations

import asyncio
import sqlite3

import grpc
import pytest
from helpers import TODAY, key, kill, poll, refused

from conftest import network_of_its_own
from protos import common_pb2, koseki_pb2, kizon_pb2, records_pb2
from testbed import requests
from testbed.client import Counter
from testbed.load import generate_population, load_records

A, B = "142140", "142115"


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """A network with 300 residents in 伊勢原市 and 100 in 秦野市, their 戸籍 loaded."""
    for network in network_of_its_own(tmp_path_factory, "family"):
        for code, count in ((A, 300), (B, 100)):
            records, _ = generate_population(network, code, count, seed=3)
            network.population = getattr(network, "population", {})
            network.population[code] = records
            asyncio.run(load_records(network, code, records, show_progress=False))
        yield network


@pytest.fixture(scope="module")
def office(net):
    """The 戸籍 counter of 伊勢原市 (OP0001 at T0001, its reads approved)."""
    with Counter(net, A, reads=100_000) as counter:
        yield counter


def _couple(net, office):
    """A man and a woman of 18 or over, each the only adult 在籍 of no marriage, both current residents here."""
    adults = [r for r in net.population[A] if r.honseki and r.birth_date < "2000-01-01"]
    free = {}
    for record in adults:
        register = office(office.koseki.GetFamilyRegister, koseki_pb2.FamilyRegisterKey(resident_code=record.resident_code))
        member = next(m for m in register.members if m.resident_code == record.resident_code)
        if not member.spouse and record.sex not in free:
            free[record.sex] = record
        if len(free) == 2:
            return free["1"], free["2"]
    pytest.skip("no unmarried couple in the population")


def _resident(office, code):
    return office(office.kizon.GetResident, key(code))


def test_a_marriage_changes_the_wifes_surname_and_honseki_on_the_register_and_at_the_cs(net, office):
    husband, wife = _couple(net, office)
    reply = office(office.koseki.Marry, koseki_pb2.MarriageRequest(husband=husband.resident_code,
                   wife=wife.resident_code, surname_of="husband"), request_id="marry-1")
    assert reply.notice_sequence >= 1
    surname = husband.name_kanji.split(" ")[0]
    after = poll(lambda: (r := _resident(office, wife.resident_code)).name_kanji.startswith(surname + " ") and r,
                 timeout=20, what="the 婚姻 on the 住民票")
    assert after.change_reason == "職権修正" and "婚姻届" in after.change_reason_detail
    assert after.hittousha == husband.name_kanji and after.honseki == husband.honseki
    info = poll(lambda: (i := office(office.cs.GetIdentity, key(wife.resident_code))).name_kanji == after.name_kanji
                and i, timeout=20, what="the new 氏 at the CS")
    assert info.change_reason == "職権修正"
    again = office(office.koseki.Marry, koseki_pb2.MarriageRequest(husband=husband.resident_code,
                   wife=wife.resident_code, surname_of="husband"), request_id="marry-1")
    assert again.notice_sequence == reply.notice_sequence  # (a retry is answered, not made twice)
    with refused(grpc.StatusCode.FAILED_PRECONDITION, reason="MARRIAGE_ALREADY_MARRIED"):
        office(office.koseki.Marry, koseki_pb2.MarriageRequest(husband=husband.resident_code,
               wife=wife.resident_code, surname_of="husband"), request_id="marry-2")
    # 離婚: the wife returns to her former 氏 in a 戸籍 of her own
    office(office.koseki.Divorce, koseki_pb2.DivorceRequest(resident_code=wife.resident_code), request_id="div-1")
    back = poll(lambda: (r := _resident(office, wife.resident_code)).name_kanji == wife.name_kanji and r,
                timeout=20, what="the 復氏 on the 住民票")
    assert back.hittousha == wife.name_kanji
    with refused(grpc.StatusCode.FAILED_PRECONDITION, reason="DIVORCE_NOT_MARRIED"):
        office(office.koseki.Divorce, koseki_pb2.DivorceRequest(resident_code=wife.resident_code), request_id="div-2")


def test_the_rules_of_the_family_register_counter(net, office):
    child = next(r for r in net.population[A] if r.honseki and r.birth_date > "2012-01-01" and r.sex == "2")
    adult = next(r for r in net.population[A] if r.honseki and r.birth_date < "1990-01-01" and r.sex == "1")
    with refused(grpc.StatusCode.FAILED_PRECONDITION, reason="MARRIAGE_AGE"):
        office(office.koseki.Marry, koseki_pb2.MarriageRequest(husband=adult.resident_code, wife=child.resident_code,
                                                               surname_of="wife"))
    with refused(grpc.StatusCode.INVALID_ARGUMENT, reason="MARRIAGE_PARTIES"):
        office(office.koseki.Marry, koseki_pb2.MarriageRequest(husband=adult.resident_code, wife=adult.resident_code,
                                                               surname_of="husband"))
    with refused(grpc.StatusCode.INVALID_ARGUMENT, reason="HONSEKI_HERE"):
        office(office.koseki.Transfer, koseki_pb2.TransferRequest(register_number=adult.household_number,
                                                                  new_honseki="東京都千代田区千代田1番"))
    with refused(grpc.StatusCode.FAILED_PRECONDITION, reason="KOSEKI_NOT_IN_REGISTER"):
        office(office.koseki.RecordReading, koseki_pb2.ReadingRequest(resident_code=net.population[B][0].resident_code,
                                                                      surname_kana="ア", given_name_kana="イ"))
    with refused(grpc.StatusCode.INVALID_ARGUMENT, reason="READING_KATAKANA"):
        office(office.koseki.RecordReading, koseki_pb2.ReadingRequest(resident_code=adult.resident_code,
                                                                      surname_kana="やまだ", given_name_kana="タロウ"))
    with refused(grpc.StatusCode.INVALID_ARGUMENT, reason="KOSEKI_NOTIFIER_REQUIRED"):
        office.koseki.RecordReading(koseki_pb2.ReadingRequest(
            resident_code=adult.resident_code, surname_kana="ア", given_name_kana="イ",
            notifier=records_pb2.Requester(kind=records_pb2.REQUESTER_SELF)), metadata=office.metadata, timeout=10)


def test_reading_transfer_and_death_reach_the_register(net, office):
    people = [r for r in net.population[A] if r.honseki and r.birth_date < "1980-01-01"]
    reader, mover, dying = people[3], people[4], people[5]
    office(office.koseki.RecordReading, koseki_pb2.ReadingRequest(resident_code=reader.resident_code,
                                                                  surname_kana="ヨミ", given_name_kana="カタ"))
    poll(lambda: _resident(office, reader.resident_code).name_kana == "ヨミ カタ", timeout=20, what="the 振り仮名")
    assert _resident(office, reader.resident_code).name_kana_confirmed  # (recorded by 届出: no longer presumed)
    with refused(grpc.StatusCode.FAILED_PRECONDITION, reason="READING_ONCE"):
        office(office.koseki.RecordReading, koseki_pb2.ReadingRequest(resident_code=reader.resident_code,
                                                                      surname_kana="ヨミ", given_name_kana="カタ"))
    register = office(office.koseki.GetFamilyRegister, koseki_pb2.FamilyRegisterKey(resident_code=mover.resident_code))
    new = register.honseki.split("市")[0] + "市転籍先1番地"
    office(office.koseki.Transfer, koseki_pb2.TransferRequest(register_number=register.register_number, new_honseki=new))
    for member in register.members:
        if member.resident_code and member.status == "在籍":
            poll(lambda: _resident(office, member.resident_code).honseki == new, timeout=20, what="the 転籍")
    office(office.koseki.RecordDeath, koseki_pb2.DeathNotification(resident_code=dying.resident_code, death_date=TODAY))
    dead = poll(lambda: (r := _resident(office, dying.resident_code)).status == records_pb2.ResidentRecord.STATUS_REMOVED
                and r, timeout=20, what="the 死亡 on the 住民票")
    assert dead.removal_reason == "死亡"
    poll(lambda: office(office.cs.GetIdentity, key(dying.resident_code)).record_status_flag == 1, timeout=20,
         what="the 死亡 at the CS")


def test_a_register_whose_every_member_is_removed_takes_no_transfer(net, office):
    """A 戸籍 of one person who dies is a 除籍簿: its 転籍 is refused under KOSEKI_REGISTER_CLOSED and its 本籍 stays."""
    for record in reversed([r for r in net.population[A] if r.honseki]):  # (from the end: the other tests' people are first)
        register = office(office.koseki.GetFamilyRegister, koseki_pb2.FamilyRegisterKey(resident_code=record.resident_code))
        if [m.status for m in register.members] == ["在籍"]:
            break
    else:
        pytest.skip("no 戸籍 of one member in the population")
    office(office.koseki.RecordDeath, koseki_pb2.DeathNotification(resident_code=record.resident_code, death_date=TODAY))
    number = register.register_number
    with refused(grpc.StatusCode.FAILED_PRECONDITION, reason="KOSEKI_REGISTER_CLOSED"):
        office(office.koseki.Transfer, koseki_pb2.TransferRequest(register_number=number,
                                                                  new_honseki=register.honseki + "の2"))
    after = office(office.koseki.GetFamilyRegister, koseki_pb2.FamilyRegisterKey(register_number=number))
    assert after.honseki == register.honseki and [m.status for m in after.members] == ["除籍"]


def test_a_move_reaches_the_annex_of_the_honseki(net, office):
    """A 転居 here reaches this 戸籍 system's 附票; a 転入 in 秦野市 of a person whose 本籍 is here reaches it too,
    CS to CS."""
    mover = [r for r in net.population[A] if r.honseki][10]
    office(office.kizon.MoveWithin, kizon_pb2.MoveWithinRequest(
        resident_code=mover.resident_code, address=records_pb2.Address(town_code=mover.town_code, address_line="99番地"),
        move_date=TODAY))
    history = poll(lambda: (h := office(office.koseki.GetAnnex, key(mover.resident_code))).entries[-1].reason == "転居"
                   and h, timeout=20, what="the 転居 on the 附票")
    assert "99番地" in history.entries[-1].address, history
    assert [e.reason for e in history.entries][-1:] == ["転居"] and len(history.entries) == 2, history
    # 転出 to 秦野市 and a 転入 there with the paper certificate: the 附票通知 comes from 秦野市's CS
    leaver = [r for r in net.population[A] if r.honseki and r.relationship == "世帯主"][20]
    out = office(office.kizon.MoveOut, kizon_pb2.MoveOutRequest(
        resident_code=leaver.resident_code, destination_address="神奈川県秦野市", destination_municipality_code=B,
        planned_date=TODAY))
    with Counter(net, B, terminal="T0003", operator="OP0003") as there:
        town = net.population[B][0].town_code
        there(there.kizon.MoveIn, kizon_pb2.MoveInRequest(
            person=records_pb2.ResidentRecord(resident_code=leaver.resident_code),
            address=records_pb2.Address(town_code=town, address_line="7番地"), move_in_date=TODAY,
            certificate=out.certificate))
    moved = poll(lambda: (h := office(office.koseki.GetAnnex, key(leaver.resident_code))).entries[-1].municipality_code
                 == B and h, timeout=30, what="the 転入 in 秦野市 on the 附票")
    assert moved.entries[-1].reason == "転入" and "7番地" in moved.entries[-1].address


def test_notices_survive_a_kill_of_kizon(net, office):
    """Notices queued while kizon is down arrive once it is back, each applied once."""
    people = [r for r in net.population[A] if r.honseki and r.birth_date < "1980-01-01"][20:23]
    kill(net, f"kizon-{A}")
    try:
        for person in people:
            office(office.koseki.RecordReading, koseki_pb2.ReadingRequest(
                resident_code=person.resident_code, surname_kana="キル", given_name_kana="テスト"))
    finally:
        net.up()  # (restarts only the killed node)
    for person in people:
        poll(lambda: _resident(office, person.resident_code).name_kana == "キル テスト", timeout=30,
             what="the notice after kizon's restart")


def test_check_finds_an_annex_that_does_not_follow_the_register(net, office):
    """`testbed check` compares each 附票 with the 住民票 where the person lives: whole after the moves above, and a
    附票 entry written behind the nodes' back is found."""
    from testbed.check import check_network
    report = poll(lambda: (r := check_network(net, audit=False)) and not [f for f in r.findings
                  if f.invariant == "annex-follows-register"] and r, timeout=30, what="the 附票 to follow the registers")
    assert report.looked_at["annex"] > 100
    victim = [r for r in net.population[A] if r.honseki][30]
    store = net.state_dir / "data" / f"koseki-{A}" / "store.sqlite"
    db = sqlite3.connect(store, timeout=10)
    try:
        with db:
            db.execute("INSERT INTO annex VALUES (?, 99, ?)", (victim.resident_code, koseki_pb2.AnnexEntry(
                resident_code=victim.resident_code, address="神奈川県伊勢原市どこにもない1番地").SerializeToString()))
    finally:
        db.close()
    found = [f for f in check_network(net, audit=False).findings if f.invariant == "annex-follows-register"]
    assert found and found[0].failure and victim.resident_code in found[0].detail, found
