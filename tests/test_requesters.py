"""Who may ask for a 写し and who made a 届出 (PIA 635, 1946–1948; 住基法第12条, 第12条の3), and the changes the office
makes of its own motion (職権記載, 職権消除) and the 国外転出 (PIA 77, 81), tried as a clerk and as an attacker would.

The node checks every relation against its register: a 請求者 who says they are the person or of the household and
is not, a 第三者 after a household's 写し or the 個人番号, a 代理人 without a 委任状, a 届出 with no 本人確認 recorded.
Raw stubs are used where the testbed's terminal would fill in its clerk's default entry (testbed.requests).
"""
from __future__ import annotations

import grpc
import pytest
from helpers import TODAY, address, key, move_in_from_abroad, person, poll, refused

from nodes.kizon.requesters import THIRD_PARTY_ITEMS
from nodes.reasons import kizon as K
from protos import kizon_pb2, national_pb2_grpc, records_pb2
from testbed import requests
from testbed.client import Counter, channel, node_cert

R = records_pb2
MANAGER_TERMINAL, MANAGER = "T0003", "OP0003"  # OP0003 holds the role official in the default topology


def ask(clerk, code: str, requester: R.Requester | None, kind=kizon_pb2.RESIDENT_COPY, **more):
    """A certificate request through the kizon stub itself (the terminal's default entry left out)."""
    request = kizon_pb2.CertificateRequest(kind=kind, resident_code=code, **more)
    if requester is not None:
        request.requester.CopyFrom(requester)
    return clerk.kizon.IssueCertificate(request, metadata=clerk.metadata, timeout=30)


@pytest.fixture(scope="module")
def family(clerk):
    """A household of two and a neighbour of another household."""
    head = move_in_from_abroad(clerk, person("請求 一郎", "セイキュウ イチロウ", "1970-01-01"), line="11番地")
    wife = move_in_from_abroad(clerk, person("請求 花子", "セイキュウ ハナコ", "1972-02-02", "2", relationship="妻"),
                               household=head.household_number)
    neighbour = move_in_from_abroad(clerk, person("隣人 三郎", "リンジン サブロウ", "1980-03-03"), line="12番地")
    return head, wife, neighbour


def test_a_request_without_a_requester_is_refused(clerk, family):
    head = family[0]
    with refused(grpc.StatusCode.INVALID_ARGUMENT, reason=K.REQUESTER_REQUIRED.reason):
        ask(clerk, head.resident_code, None)


def test_the_person_gets_their_own_copy_and_the_history_names_them(clerk, family):
    head = family[0]
    cert = ask(clerk, head.resident_code, requests.notifier(code=head.resident_code, name=head.name_kanji))
    history = clerk(clerk.kizon.GetIssuanceHistory, key(head.resident_code))
    entry = next(r for r in history.records if r.issue_number == cert.issue_number)
    assert entry.requester.kind == R.REQUESTER_SELF and entry.requester.resident_code == head.resident_code
    assert entry.requester.identity_document == "個人番号カード"


def test_someone_claiming_to_be_the_person_is_refused(clerk, family):
    head, _, neighbour = family
    with refused(grpc.StatusCode.PERMISSION_DENIED, reason=K.REQUESTER_NOT_SELF.reason):
        ask(clerk, head.resident_code, requests.notifier(code=neighbour.resident_code))


def test_a_household_member_may_ask_and_a_neighbour_may_not(clerk, family):
    head, wife, neighbour = family
    as_household = R.REQUESTER_HOUSEHOLD
    ask(clerk, head.resident_code, requests.notifier(as_household, code=wife.resident_code),
        kind=kizon_pb2.HOUSEHOLD_COPY)
    with refused(grpc.StatusCode.PERMISSION_DENIED, reason=K.REQUESTER_NOT_HOUSEHOLD.reason):
        ask(clerk, head.resident_code, requests.notifier(as_household, code=neighbour.resident_code))
    with refused(grpc.StatusCode.PERMISSION_DENIED, reason=K.REQUESTER_NOT_HOUSEHOLD.reason):  # not of one's own
        ask(clerk, head.resident_code, requests.notifier(as_household, code=head.resident_code))


def test_an_agent_needs_a_power_of_attorney_and_gets_no_individual_number(clerk, family):
    head = family[0]
    agent = requests.notifier(R.REQUESTER_AGENT, name="代理 太郎")
    with refused(grpc.StatusCode.INVALID_ARGUMENT, "委任状"):
        ask(clerk, head.resident_code, agent)
    agent.power_of_attorney = "委任状-2026-0001"
    ask(clerk, head.resident_code, agent)
    with refused(grpc.StatusCode.PERMISSION_DENIED, reason=K.REQUESTER_INDIVIDUAL_NUMBER.reason):
        ask(clerk, head.resident_code, agent, include_individual_number=True, justification="本人の依頼")


def test_a_third_party_gets_the_basic_items_only(clerk, family):
    head = family[0]
    third = requests.notifier(R.REQUESTER_THIRD_PARTY, name="債権者 株式会社")
    with refused(grpc.StatusCode.INVALID_ARGUMENT, "請求事由"):
        ask(clerk, head.resident_code, third)
    third.reason = "貸金返還請求のため (住基法第12条の3第1項第1号)"
    cert = ask(clerk, head.resident_code, third)
    assert set(cert.items_printed) <= THIRD_PARTY_ITEMS and "resident_code" not in cert.items_printed
    assert "relationship" not in cert.items_printed
    with refused(grpc.StatusCode.PERMISSION_DENIED, reason=K.REQUESTER_THIRD_PARTY_SCOPE.reason):
        ask(clerk, head.resident_code, third, kind=kizon_pb2.HOUSEHOLD_COPY)
    with refused(grpc.StatusCode.PERMISSION_DENIED, reason=K.REQUESTER_THIRD_PARTY_SCOPE.reason):
        ask(clerk, head.resident_code, third, kind=kizon_pb2.STATED_ITEMS, items=["honseki"])


def test_a_document_the_counter_does_not_accept_is_refused(clerk, family):
    head = family[0]
    with refused(grpc.StatusCode.INVALID_ARGUMENT, reason=K.REQUESTER_DOCUMENT.reason):
        ask(clerk, head.resident_code, requests.notifier(code=head.resident_code, document="名刺"))
    with refused(grpc.StatusCode.INVALID_ARGUMENT, reason=K.REQUESTER_REQUIRED.reason):  # a kind that does not exist
        ask(clerk, head.resident_code, R.Requester(kind=99, name="x", identity_document="旅券"))


def test_every_entry_of_a_notification_records_its_notifier(clerk, family):
    """The 届出人 and the 本人確認 are on the history entry the 届出 wrote; the 宛名 system does not receive them."""
    head = family[0]
    request = requests.move_within(head.resident_code, address(clerk.municipality, "13番地"), today=TODAY)
    request.notifier.CopyFrom(requests.notifier(code=head.resident_code, name=head.name_kanji, document="運転免許証"))
    reply = clerk(clerk.kizon.MoveWithin, request)
    assert reply.records[0].notifier.identity_document == "運転免許証"
    entries = clerk(clerk.kizon.GetHistory, key(head.resident_code)).entries
    assert entries[-1].notifier.resident_code == head.resident_code and entries[-1].change_reason == "転居"


def test_a_notification_without_a_notifier_is_refused(clerk):
    request = requests.move_in_from_abroad(person("無届 太郎", "ムトドケ タロウ"), address(clerk.municipality, "14番地"),
                                           today=TODAY)
    request.ClearField("notifier")
    with refused(grpc.StatusCode.INVALID_ARGUMENT, reason=K.REQUESTER_REQUIRED.reason):
        clerk.kizon.MoveIn(request, metadata=clerk.metadata, timeout=30)


def test_a_death_is_not_notified_by_the_person_and_a_stranger_is_not_of_the_household(clerk, family):
    _, wife, neighbour = family
    request = requests.death(wife.resident_code, today=TODAY)
    request.notifier.CopyFrom(requests.notifier(code=wife.resident_code))
    with refused(grpc.StatusCode.PERMISSION_DENIED, reason=K.NOTIFIER_KIND.reason):
        clerk.kizon.Death(request, metadata=clerk.metadata, timeout=30)
    request.notifier.CopyFrom(requests.notifier(R.REQUESTER_HOUSEHOLD, code=neighbour.resident_code))
    with refused(grpc.StatusCode.PERMISSION_DENIED, reason=K.REQUESTER_NOT_HOUSEHOLD.reason):
        clerk.kizon.Death(request, metadata=clerk.metadata, timeout=30)
    assert clerk(clerk.kizon.GetResident, key(wife.resident_code)).status == R.ResidentRecord.STATUS_CURRENT


# -- 職権記載, 職権消除, 国外転出 -----------------------------------------------------------------------------
def entry_request(clerk, name: str, line: str) -> kizon_pb2.OfficialEntryRequest:
    return kizon_pb2.OfficialEntryRequest(person=person(name, "ショッケン キサイ", "1988-08-08"),
                                          address=address(clerk.municipality, line), resident_since=TODAY,
                                          reason="実態調査の結果、居住を確認", survey_reference="調査-2026-017")


def test_official_changes_need_the_role_official(clerk):
    """A clerk without the role official is refused both 職権 changes (OP0001 holds clerk and individual_number)."""
    with refused(grpc.StatusCode.PERMISSION_DENIED, reason=K.OFFICIAL_ROLE.reason):
        clerk(clerk.kizon.RecordByOffice, entry_request(clerk, "職権 試験", "20番地"))
    someone = move_in_from_abroad(clerk, person("消除 対象", "ショウジョ タイショウ", "1977-07-07"), line="21番地")
    with refused(grpc.StatusCode.PERMISSION_DENIED, reason=K.OFFICIAL_ROLE.reason):
        clerk(clerk.kizon.RemoveByOffice, kizon_pb2.OfficialRemovalRequest(
            resident_code=someone.resident_code, reason="居住実態なし", survey_reference="調査-1", found_date=TODAY))


def test_official_entry_and_removal_flow_on_to_national(network):
    """職権記載 gives new numbers and reaches national; 職権消除 makes a 除票 there too, both with their 異動事由."""
    with Counter(network, "142140", terminal=MANAGER_TERMINAL, operator=MANAGER) as official:
        with refused(grpc.StatusCode.INVALID_ARGUMENT, reason=K.OFFICIAL_SURVEY_REQUIRED.reason):
            request = entry_request(official, "職権 記載", "22番地")
            request.survey_reference = ""
            official(official.kizon.RecordByOffice, request)
        entered = official(official.kizon.RecordByOffice, entry_request(official, "職権 記載", "22番地")).records[0]
        assert entered.change_reason == "職権記載" and entered.individual_number and not entered.HasField("notifier")
        assert "調査-2026-017" in entered.change_reason_detail
        removed = official(official.kizon.RemoveByOffice, kizon_pb2.OfficialRemovalRequest(
            resident_code=entered.resident_code, reason="居住実態なし", survey_reference="調査-2026-018",
            found_date=TODAY)).records[0]
        assert removed.status == R.ResidentRecord.STATUS_REMOVED and removed.removal_reason == "職権消除"
        with channel(network.topology.node("national"), node_cert(network.pki, "cs-142140")) as ch:
            national = national_pb2_grpc.NationalServerStub(ch)

            def at_national():
                try:
                    return national.GetIdentity(key(entered.resident_code), timeout=10)
                except grpc.RpcError:
                    return None
            info = poll(lambda: (found := at_national()) and found.record_status_flag == 1 and found, timeout=20,
                        what="the 職権消除 at national")
        assert info.change_reason == "職権消除" and info.individual_number.isdigit()  # (national holds the number)


def _identity_status(counter, code: str) -> int:
    """The 除票フラグ of a person's 本人確認情報 at the municipality's CS (-1 while it does not know them)."""
    try:
        return counter(counter.cs.GetIdentity, key(code)).record_status_flag
    except grpc.RpcError:
        return -1


def test_emigration_is_its_own_change_with_a_country(clerk):
    leaving = move_in_from_abroad(clerk, person("出国 予定", "シュッコク ヨテイ", "1991-01-01"), line="23番地")
    request = kizon_pb2.EmigrationRequest(resident_code=leaving.resident_code, planned_date=TODAY)
    with refused(grpc.StatusCode.INVALID_ARGUMENT, reason=K.EMIGRATION_DESTINATION.reason):
        clerk(clerk.kizon.Emigrate, request)
    request.destination_country = "アメリカ合衆国"
    record = clerk(clerk.kizon.Emigrate, request).records[0]
    assert record.removal_reason == "国外転出" and record.move_out_destination_planned == "アメリカ合衆国"
    assert record.notifier.kind == R.REQUESTER_SELF
    poll(lambda: _identity_status(clerk, leaving.resident_code) == 1, timeout=20, what="the 国外転出 at the CS")


def test_the_client_cannot_set_what_the_office_sets_in_an_official_entry(network):
    """職権記載: numbers and the register's own items are the node's, never the request's."""
    with Counter(network, "142140", terminal=MANAGER_TERMINAL, operator=MANAGER) as official:
        request = entry_request(official, "番号 指定", "24番地")
        request.person.individual_number = "123456789018"
        with refused(grpc.StatusCode.INVALID_ARGUMENT):
            official(official.kizon.RecordByOffice, request)
