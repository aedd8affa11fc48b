"""庁内連携 (seed system 7; PIA l.1917–1918, l.4430–4438): the office systems of a municipality read the 宛名 of a
person from its 宛名 system (OfficeLink), tried as they and an attacker would.

税務 (地方税の賦課徴収, a 事務 of 番号法第9条第1項 別表) gets the 個人番号 and may look a person up by it; 選挙 (選挙人名簿の
調製, not in the 別表) gets the same person without it and is refused a lookup by it; no answer carries the 符号 or the
本籍; the 名簿調製プログラム, a counter terminal, the 戸籍 system and the other municipality's 税務 are not let in at all.
"""
from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import grpc
import pytest
from helpers import key, move_in_from_abroad, person, poll, refused

from certs.identity import OFFICE_SYSTEMS
from nodes import office
from nodes.reasons import access as A, common as C, office as O
from nodes.refusal import Violation
from protos import atena_pb2, atena_pb2_grpc
from testbed.client import channel, eventually, named_cert, node_cert, terminal_cert

A_CODE, B_CODE = "142140", "142115"  # 伊勢原市, 秦野市
Code = grpc.StatusCode
HONSEKI = "神奈川県伊勢原市田中１番地"
UNKNOWN_NUMBER = "999999999999999"  # 15 digits: a 団体内統合宛名番号 / 宛名番号 no one has


def office_cert(network, system: str, municipality: str = A_CODE):
    """The client certificate of an office system of a municipality."""
    return named_cert(network.pki, f"office-{municipality}-{system}")


def lookup(network, cert, municipality: str = A_CODE, **query) -> atena_pb2.OfficeRecord:
    """LookupResident on a municipality's atena, as the holder of cert."""
    with channel(network.topology.find("atena", municipality), cert) as ch:
        return atena_pb2_grpc.OfficeLinkStub(ch).LookupResident(atena_pb2.OfficeQuery(**query), timeout=10)


@pytest.fixture(scope="module")
def resident(network, clerk):
    """A new resident of 伊勢原市 with a 本籍, once atena holds them: SimpleNamespace(record, entry), record as kizon
    holds it and entry the 団体内統合宛名 entry (with its 符号) as kizon reads it."""
    record = move_in_from_abroad(clerk, person("庁内 連携", "チョウナイ レンケイ", "1975-05-06", "2", honseki=HONSEKI,
                                               hittousha="庁内 一郎"))
    record = clerk(clerk.kizon.GetResident, key(record.resident_code))
    assert record.individual_number and record.honseki == HONSEKI
    # atena learns the person from kizon's outbox: wait until it answers for them.
    found = eventually(lambda: lookup(network, office_cert(network, "tax"), atena_number=record.atena_number))
    with channel(network.topology.find("atena", A_CODE), node_cert(network.pki, f"kizon-{A_CODE}")) as ch:
        entry = atena_pb2_grpc.AtenaStub(ch).GetEntry(
            atena_pb2.AtenaKey(unified_atena_number=found.unified_atena_number), timeout=10)
    assert entry.fugo, "atena holds a 符号 for the person (the answers below must not carry it)"
    return SimpleNamespace(record=record, entry=entry)


# -- the table (no network) ---------------------------------------------------------------------------------------
def test_the_jimu_table_puts_tax_alone_in_the_beppyo():
    """Every office system with a certificate has its 事務; only 税務's is in 番号法第9条第1項 別表; a caller outside the
    table (the 戸籍 system, a terminal) has none and is refused."""
    assert set(office.JIMU) == set(OFFICE_SYSTEMS)
    assert {j.system for j in office.JIMU.values() if j.in_table} == {"tax"}
    assert office.JIMU["tax"].name == "地方税の賦課徴収" and office.JIMU["election"].name == "選挙人名簿の調製"
    for caller in ("koseki", "terminal", "kizon"):
        with pytest.raises(Violation) as caught:
            office.jimu_of(caller)
        assert caught.value.rule is O.OFFICE_SYSTEM_UNKNOWN


def test_the_answer_has_no_place_for_the_fugo_or_the_honseki():
    """OfficeRecord defines no 符号, 本籍, 筆頭者 or 住民票コード: no answer can carry them."""
    fields = set(atena_pb2.OfficeRecord.DESCRIPTOR.fields_by_name)
    assert not fields & {"fugo", "honseki", "hittousha", "resident_code"}


def test_a_number_lookup_outside_the_beppyo_never_reads_the_store(monkeypatch):
    """選挙 and the 名簿調製プログラム asking by 個人番号 (well formed or not) are refused before the store is touched."""
    class Untouchable:
        def one(self, *args):
            raise AssertionError("the store was read")

    servicer = office.OfficeLink(SimpleNamespace(store=Untouchable(), node=SimpleNamespace(municipality=A_CODE)))
    for system in ("election", "jury"):
        caller = SimpleNamespace(peer=SimpleNamespace(identity=SimpleNamespace(kind=system)))
        monkeypatch.setattr(office, "current_call", lambda: caller)
        for number in ("123456789018", "not a number"):
            with pytest.raises(Violation) as caught:
                asyncio.run(servicer.LookupResident(atena_pb2.OfficeQuery(individual_number=number), None))
            assert caught.value.rule is O.OFFICE_NUMBER_NOT_IN_TABLE, caught.value


# -- on the network ------------------------------------------------------------------------------------------------
def test_tax_gets_the_individual_number_and_looks_up_by_it(network, resident):
    """税務 gets the person with the 個人番号, by each of the three keys alike, and the answer names its 事務."""
    tax = office_cert(network, "tax")
    record, entry = resident.record, resident.entry
    answers = [lookup(network, tax, atena_number=record.atena_number),
               lookup(network, tax, unified_atena_number=entry.unified_atena_number),
               lookup(network, tax, individual_number=record.individual_number)]
    assert answers[0] == answers[1] == answers[2]
    got = answers[0]
    assert (got.individual_number, got.jimu) == (record.individual_number, "地方税の賦課徴収")
    assert (got.atena_number, got.unified_atena_number) == (record.atena_number, entry.unified_atena_number)
    assert (got.name_kanji, got.birth_date, got.address, got.current) == (record.name_kanji, record.birth_date,
                                                                          record.address, True)


def test_election_gets_the_person_without_the_number_and_may_not_ask_by_it(network, resident):
    """選挙 gets the same person with no 個人番号; asking by the number is refused under the 別表 rule, for a number
    atena knows and one it does not alike (the refusal tells nothing of the register)."""
    election = office_cert(network, "election")
    got = lookup(network, election, atena_number=resident.record.atena_number)
    assert got.individual_number == "" and got.jimu == "選挙人名簿の調製"
    assert got.unified_atena_number == resident.entry.unified_atena_number
    assert got.name_kanji == resident.record.name_kanji
    for number in (resident.record.individual_number, "123456789018"):
        with refused(Code.PERMISSION_DENIED, reason=O.OFFICE_NUMBER_NOT_IN_TABLE.reason):
            lookup(network, election, individual_number=number)


def test_no_answer_carries_the_fugo_or_the_honseki(network, resident):
    """Neither 税務's answer nor 選挙's holds the person's 符号 or 本籍 anywhere in its bytes."""
    for system in ("tax", "election"):
        got = lookup(network, office_cert(network, system), atena_number=resident.record.atena_number)
        wire = got.SerializeToString()
        assert resident.entry.fugo.encode() not in wire and HONSEKI.encode() not in wire


def test_the_audit_log_names_the_lookup_and_never_the_number(network, resident):
    """atena's audit entry of a lookup by 個人番号 names the person by 住民票コード and 事務; the number is not in its log."""
    lookup(network, office_cert(network, "tax"), individual_number=resident.record.individual_number)
    log = network.audit_file(f"atena-{A_CODE}")

    def entries():
        found = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        return [e for e in found if e["method"].endswith("/LookupResident")
                and resident.record.resident_code in e.get("subject", "")]
    assert "地方税の賦課徴収" in poll(entries, what="the lookup's audit entry")[-1]["subject"]
    assert resident.record.individual_number not in log.read_text(encoding="utf-8")


@pytest.mark.parametrize("who, rule", [
    ("jury", A.DEFAULT_DENY),  # the 名簿調製プログラム reads the 名簿 from kizon's 住基GW, never the 宛名
    ("terminal", A.DEFAULT_DENY),  # a counter terminal works through kizon
    ("koseki", A.DEFAULT_DENY),  # 戸籍: not a 別表 事務, and no 宛名 reader
    ("other-tax", A.SCOPE),  # 秦野市's 税務 on 伊勢原市's atena
])
def test_callers_the_policy_does_not_name_are_refused(network, resident, who, rule):
    """The policy refuses, before the request is read, every caller but 税務 and 選挙 of the municipality."""
    cert = {"jury": lambda: office_cert(network, "jury"),
            "terminal": lambda: terminal_cert(network.pki, A_CODE, "T0001"),
            "koseki": lambda: node_cert(network.pki, f"koseki-{A_CODE}"),
            "other-tax": lambda: office_cert(network, "tax", B_CODE)}[who]()
    with refused(Code.PERMISSION_DENIED, reason=rule.reason):
        lookup(network, cert, atena_number=resident.record.atena_number)


def test_a_query_names_exactly_one_key_in_its_format(network, resident):
    """Two keys, or none, are refused; so is a key out of its format; an unknown person is not found."""
    tax = office_cert(network, "tax")
    record = resident.record
    for query in ({}, {"atena_number": record.atena_number, "individual_number": record.individual_number},
                  {"atena_number": record.atena_number, "unified_atena_number": resident.entry.unified_atena_number}):
        with refused(Code.INVALID_ARGUMENT, reason=O.OFFICE_QUERY_ONE_KEY.reason):
            lookup(network, tax, **query)
    with refused(Code.INVALID_ARGUMENT, reason=O.OFFICE_KEY_FORMAT.reason):
        lookup(network, tax, atena_number="1' OR '1'='1")
    with refused(Code.INVALID_ARGUMENT, reason=C.INDIVIDUAL_NUMBER_FORMAT.reason):
        lookup(network, tax, individual_number="123456789012")
    with refused(Code.NOT_FOUND, reason=C.RECORD_NOT_FOUND.reason):
        lookup(network, tax, unified_atena_number=UNKNOWN_NUMBER)
