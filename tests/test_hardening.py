"""Hardening round 3, each finding written as the attack that broke it: bulk output by reads, two residences
through a load, an invented 個人番号, the dead moving in, a wedged notice outbox, CheckResidence as a number
leak and the paper 転入 as a number oracle; then `testbed check` of the network they were tried on."""
from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time

import grpc
import pytest
from grpc import StatusCode as Code

from conftest import network_of_its_own
from helpers import TODAY, address, key, move_in_from_abroad, person, poll, refused
from nodes.kizon.items import BULK_OUTPUT_LIMIT
from nodes.numbers import with_individual_number_check, with_resident_code_check
from protos import cs_pb2_grpc, identity_pb2, kizon_pb2, records_pb2
from testbed.check import check_network
from testbed.client import Counter, channel, node_cert
from testbed.load import wait_until_drained

A, B = "142140", "142115"
OUTSIDE = "131016"  # 東京都千代田区: a municipality outside the network


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """A network of its own: these attacks count an operator's reads and plant violations at the end."""
    yield from network_of_its_own(tmp_path_factory, "hardening")


@pytest.fixture(scope="module")
def isehara(net):
    """OP0001 at T0001 of 伊勢原市, its reads approved (it sets the scene for the attacks)."""
    with Counter(net, A, reads=1_000_000) as counter:
        yield counter


@pytest.fixture(scope="module")
def hadano(net):
    """OP0001 at T0001 of 秦野市, its reads approved."""
    with Counter(net, B, reads=1_000_000) as counter:
        yield counter


@pytest.fixture(scope="module")
def manager(net):
    """OP0003 (manager) at T0003 of 伊勢原市: runs the initial load."""
    with Counter(net, A, "T0003", "OP0003") as counter:
        yield counter


def calling(network, node_name: str, as_node: str):
    """A CS stub on node_name called with as_node's client certificate (a stolen certificate)."""
    return channel(network.topology.node(node_name), node_cert(network.pki, as_node))


def known_at_national(network, who, municipality: str = B) -> None:
    """Wait until national holds who as current in municipality (updates reach it a moment after the CS)."""
    def current():
        with calling(network, f"cs-{A}", f"kizon-{A}") as ch:
            found = cs_pb2_grpc.CommunicationServerStub(ch).CheckResidence(identity_pb2.ResidenceQuery(
                resident_code=who.resident_code, municipality_code=A), timeout=10)
        return municipality in found.current_in
    poll(current, timeout=30, what=f"national to hold {who.resident_code} as current in {municipality}")


def paper_certificate(who: records_pb2.ResidentRecord, issuing: str = OUTSIDE) -> identity_pb2.MoveOutCertificate:
    """A 転出証明書 as a clerk types it from paper."""
    return identity_pb2.MoveOutCertificate(person=who, issuing_municipality_code=issuing, planned_move_out_date=TODAY)


def paper_move_in(counter: Counter, who, certificate) -> kizon_pb2.MoveInRequest:
    """A 転入 with a paper 転出証明書."""
    return kizon_pb2.MoveInRequest(person=records_pb2.ResidentRecord(resident_code=who.resident_code),
                                   address=address(counter.municipality), move_in_date=TODAY,
                                   notification_date=TODAY, certificate=certificate)


def loadable(who: records_pb2.ResidentRecord, household: str = "0888888888") -> records_pb2.ResidentRecord:
    """A person as a 移行 load would carry them into 伊勢原市."""
    return person(who.name_kanji, who.name_kana, who.birth_date, who.sex, resident_code=who.resident_code,
                  household_number=household, town_code="004000", address_line="1番地", address="伊勢原市1番地",
                  relationship="世帯主", change_reason="転入", change_date="2020-04-01")


# -- 1. bulk output counted at every read ------------------------------------------------------------------
def test_walking_households_is_bulk_output(net, isehara):
    """Finding 1: a clerk refused an export reads records household by household; past the limit the reads are
    refused as bulk output too, and the 世帯番号 of consecutive households do not lead from one to the next."""
    people = [move_in_from_abroad(isehara, person(f"世帯 {i}", "セタイ イチ")) for i in range(BULK_OUTPUT_LIMIT + 5)]
    numbers = sorted(int(p.household_number) for p in people)
    assert sum(b - a == 1 for a, b in zip(numbers, numbers[1:])) == 0, "世帯番号 are sequential"
    with Counter(net, A, "T0002", "OP0002") as clerk:
        with refused(Code.PERMISSION_DENIED, "bulk output rule", reason="BULK_OUTPUT_APPROVAL_REQUIRED"):
            list(clerk(clerk.kizon.ExportResidents, kizon_pb2.ExportRequest(purpose="一括")))
        read = 0
        with refused(Code.PERMISSION_DENIED, "bulk output rule", "reads", reason="BULK_OUTPUT_APPROVAL_REQUIRED"):
            for who in people:
                clerk(clerk.kizon.GetHousehold, kizon_pb2.HouseholdRequest(household_number=who.household_number))
                read += 1
        assert read == BULK_OUTPUT_LIMIT
        # Reading the same people again is not more output; other doors count the same way
        clerk(clerk.kizon.GetResident, key(people[0].resident_code))
        clerk(clerk.kizon.GetHistory, key(people[1].resident_code))
        last = people[-1].resident_code
        for door, request in ((clerk.kizon.GetResident, key(last)), (clerk.kizon.GetHistory, key(last)),
                              (clerk.kizon.IssueCertificate, kizon_pb2.CertificateRequest(
                                  kind=kizon_pb2.RESIDENT_COPY, resident_code=last))):
            with refused(Code.PERMISSION_DENIED, "bulk output rule", reason="BULK_OUTPUT_APPROVAL_REQUIRED"):
                clerk(door, request)


def test_reads_beyond_the_limit_with_a_managers_approval(net, isehara):
    """After the test above has used OP0002's limit: a manager's standing approval covers its reads up to its
    count and no further, and another operator's approval is refused."""
    from nodes.sessions import READ_APPROVAL_KEY
    from testbed.client import bulk_approval
    people = [move_in_from_abroad(isehara) for _ in range(3)]
    token = bulk_approval(net, A, "OP0002", "T0002", "窓口", 2)
    someone_elses = bulk_approval(net, A, "OP0001", "T0002", "窓口", 2)
    with Counter(net, A, "T0002", "OP0002") as spent:
        with refused(Code.PERMISSION_DENIED, "bulk output rule", reason="BULK_OUTPUT_APPROVAL_REQUIRED"):
            spent(spent.kizon.GetResident, key(people[0].resident_code))
        for who in people[:2]:
            spent(spent.kizon.GetResident, key(who.resident_code), metadata=((READ_APPROVAL_KEY, token),))
        with refused(Code.PERMISSION_DENIED, "is spent", reason="BULK_OUTPUT_APPROVAL_COUNT"):
            spent(spent.kizon.GetResident, key(people[2].resident_code), metadata=((READ_APPROVAL_KEY, token),))
        with refused(Code.PERMISSION_DENIED, "is for OP0001", reason="BULK_OUTPUT_APPROVAL_OTHER_OPERATOR"):
            spent(spent.kizon.GetResident, key(people[2].resident_code),
                  metadata=((READ_APPROVAL_KEY, someone_elses),))


def test_an_approval_is_spent_at_the_door_it_names(net, isehara):
    """An approval is spent at kizon or at the CS, never at both (each door keeps its own account of it): one for
    the CS is refused at kizon's reads (one for kizon at the CS: the case cs/一括出力/whose-approval); a door of no
    one's naming is refused when asked."""
    from nodes.sessions import READ_APPROVAL_KEY
    from testbed.client import bulk_approval
    who = move_in_from_abroad(isehara)
    at_cs = bulk_approval(net, A, "OP0002", "T0002", "窓口", 5, spent_at="cs")
    at_kizon = bulk_approval(net, A, "OP0002", "T0002", "窓口", 5)
    with Counter(net, A, "T0002", "OP0002") as spent:  # (over the limit at kizon since the tests above)
        with refused(Code.PERMISSION_DENIED, "to be spent at cs", reason="BULK_OUTPUT_APPROVAL_INVALID"):
            spent(spent.kizon.GetResident, key(who.resident_code), metadata=((READ_APPROVAL_KEY, at_cs),))
        spent(spent.kizon.GetResident, key(who.resident_code), metadata=((READ_APPROVAL_KEY, at_kizon),))
    with Counter(net, A, "T0003", "OP0003") as manager:
        with refused(Code.INVALID_ARGUMENT, "spent_at is one of", reason="BULK_OUTPUT_APPROVAL_REQUEST"):
            manager(manager.kizon.ApproveBulkOutput, kizon_pb2.BulkApprovalRequest(
                purpose="窓口", max_records=1, requester_operator_id="OP0002", terminal_id="T0002", spent_at="both"))


# -- 2, 3. one residence and national's numbers at every door ---------------------------------------------
def test_bulk_load_of_a_current_resident_of_another_city_is_refused(net, hadano, manager):
    """Finding 2: a manager's BulkLoad at 伊勢原市 of a person current in 秦野市 is refused; nothing is loaded."""
    who = move_in_from_abroad(hadano)
    known_at_national(net, who)
    with refused(Code.FAILED_PRECONDITION, "one current residence", reason="ONE_CURRENT_RESIDENCE"):
        manager(manager.kizon.BulkLoad, iter([kizon_pb2.ResidentBatch(records=[loadable(who)])]))
    with refused(Code.NOT_FOUND, reason="RECORD_NOT_FOUND"):
        manager(manager.kizon.GetResident, key(who.resident_code))


def test_kizon_certificate_cannot_invent_an_individual_number(net, hadano, isehara):
    """Finding 3: SubmitIdentityUpdates with migration=true and a made-up 個人番号 (with a stolen kizon certificate)
    is refused; national holds no second number; an update without a number for a person current elsewhere too."""
    code = with_resident_code_check("3141592653")
    invented = with_individual_number_check("27182818284")
    info = records_pb2.IdentityInfo(resident_code=code, individual_number=invented, name_kanji="架空 花子",
                                    name_kana="カクウ ハナコ", birth_date="1980-01-01", sex="2", change_reason="転入",
                                    change_date="2020-01-01", address="神奈川県伊勢原市1番地", municipality_code=A)
    batch = identity_pb2.IdentityUpdateBatch(municipality_code=A)
    batch.updates.add(municipality_code=A, migration=True).info.CopyFrom(info)
    with calling(net, f"cs-{A}", f"kizon-{A}") as ch:
        cs = cs_pb2_grpc.CommunicationServerStub(ch)
        with refused(Code.INVALID_ARGUMENT, "national alone issues", reason="INDIVIDUAL_NUMBER_BY_NATIONAL"):
            cs.SubmitIdentityUpdates(batch, timeout=30)
        elsewhere = move_in_from_abroad(hadano)
        known_at_national(net, elsewhere)
        batch.updates[0].info.resident_code = elsewhere.resident_code
        batch.updates[0].info.individual_number = ""
        with refused(Code.INVALID_ARGUMENT, "個人番号 rule", reason="INDIVIDUAL_NUMBER_BY_NATIONAL"):
            cs.SubmitIdentityUpdates(batch, timeout=30)
        batch.updates[0].info.individual_number = elsewhere.individual_number
        with refused(Code.FAILED_PRECONDITION, "one current residence", reason="ONE_CURRENT_RESIDENCE"):
            cs.SubmitIdentityUpdates(batch, timeout=30)
        # a change of someone already here cannot change their number either
        ours = move_in_from_abroad(isehara)
        moved = records_pb2.IdentityInfo()
        moved.CopyFrom(cs.GetIdentity(key(ours.resident_code), timeout=10))
        moved.individual_number, moved.change_reason = invented, "職権修正"
        moved.request_control_number = "stolen-certificate:0"
        correction = identity_pb2.IdentityUpdateBatch(municipality_code=A)
        correction.updates.add(municipality_code=A).info.CopyFrom(moved)
        with refused(Code.INVALID_ARGUMENT, "cannot change the 個人番号", reason="INDIVIDUAL_NUMBER_BY_NATIONAL"):
            cs.SubmitIdentityUpdates(correction, timeout=30)


def test_check_residence_tells_kizon_no_number(net, hadano):
    """Finding 11: the CS relays CheckResidence to kizon without the person's 個人番号 (only whether a typed one
    matches)."""
    who = move_in_from_abroad(hadano)
    with calling(net, f"cs-{A}", f"kizon-{A}") as ch:
        cs = cs_pb2_grpc.CommunicationServerStub(ch)
        query = identity_pb2.ResidenceQuery(resident_code=who.resident_code, municipality_code=A)
        # (national learns of the 転入 through the outboxes, a moment after the counter's answer)
        bare = poll(lambda: (reply := cs.CheckResidence(query, timeout=10)).current_in and reply,
                    what="national to know where the person lives")
        typed = cs.CheckResidence(identity_pb2.ResidenceQuery(resident_code=who.resident_code, municipality_code=A,
                                                              individual_number=who.individual_number), timeout=10)
    assert bare.known and not bare.individual_number and list(bare.current_in) == [B]
    assert typed.number_matches and not typed.individual_number


def test_paper_move_in_is_no_number_oracle(hadano, isehara):
    """Finding 11: a paper 転入 of someone current elsewhere is refused the same way whether the typed 個人番号 is
    right or a guess."""
    who = move_in_from_abroad(hadano)
    guessed = records_pb2.ResidentRecord()
    guessed.CopyFrom(who)
    guessed.individual_number = with_individual_number_check("12345678901")
    answers = []
    for typed in (who, guessed):
        with pytest.raises(grpc.RpcError) as caught:
            isehara(isehara.kizon.MoveIn, paper_move_in(isehara, who, paper_certificate(typed)), timeout=60)
        answers.append(caught.value.code())
    assert answers == [Code.FAILED_PRECONDITION, Code.FAILED_PRECONDITION]


# -- 4. removed people stay removed --------------------------------------------------------------------------
def test_the_dead_do_not_move_in(net, hadano, isehara, manager):
    """Finding 4: after a 死亡 in 秦野市, a 伊勢原市 clerk's paper 転入 (issued by 131016, or by 秦野市) and a
    manager's load of the same person are refused naming the rule."""
    who = move_in_from_abroad(hadano)
    hadano(hadano.kizon.Death, kizon_pb2.DeathRequest(resident_code=who.resident_code, death_date=TODAY,
                                                      notification_date=TODAY))
    # (the 死亡 reaches national through the outboxes: until it has, national cannot know, and a 転入 is taken)
    asyncio.run(wait_until_drained(net, timeout=60))
    for issuing in (OUTSIDE, B):
        with refused(Code.FAILED_PRECONDITION, "除票 rule", "dead", reason="REMOVED_STAY_REMOVED"):
            poll(lambda: _refused_move_in(isehara, who, issuing), timeout=20, what="the 死亡 to reach national")
            isehara(isehara.kizon.MoveIn, paper_move_in(isehara, who, paper_certificate(who, issuing)), timeout=60)
    with refused(Code.FAILED_PRECONDITION, "除票 rule", reason="REMOVED_STAY_REMOVED"):
        manager(manager.kizon.BulkLoad, iter([kizon_pb2.ResidentBatch(records=[loadable(who, "0777777777")])]))
    with refused(Code.NOT_FOUND, reason="RECORD_NOT_FOUND"):
        isehara(isehara.kizon.GetResident, key(who.resident_code))


def _refused_move_in(counter, who, issuing) -> bool:
    """Whether national already knows the death: the 転入 is refused by the 除票 rule (else it is still on its way)."""
    try:
        counter(counter.kizon.MoveIn, paper_move_in(counter, who, paper_certificate(who, issuing)), timeout=60)
    except grpc.RpcError as exc:
        return "除票 rule" in (exc.details() or "")
    raise AssertionError("the dead person moved in")


# -- 5. outboxes never wedge ------------------------------------------------------------------------------------
def test_a_corrected_removal_does_not_wedge_the_notice_outbox(net, isehara, hadano):
    """Finding 5: a 職権修正 of a 除票 in 伊勢原市, then that person's 転入 in 秦野市; the next person's 転出確定
    still arrives at 伊勢原市 and nothing is left waiting."""
    first, second = move_in_from_abroad(isehara), move_in_from_abroad(isehara)
    outs = {}
    for who in (first, second):
        outs[who.resident_code] = isehara(isehara.kizon.MoveOut, kizon_pb2.MoveOutRequest(
            resident_code=who.resident_code, destination_address="神奈川県秦野市河原町1番1号",
            destination_municipality_code=B, planned_date=TODAY, notification_date=TODAY)).certificate
    isehara(isehara.kizon.Correct, kizon_pb2.CorrectionRequest(
        corrected=records_pb2.ResidentRecord(resident_code=first.resident_code, name_kanji="訂正 除票"), reason="誤記"))
    for who in (first, second):
        hadano(hadano.kizon.MoveIn, paper_move_in(hadano, who, outs[who.resident_code]), timeout=60)
    poll(lambda: isehara(isehara.kizon.GetResident, key(second.resident_code)).move_out_destination_confirmed,
         timeout=30, what="the second person's 転出確定 at 伊勢原市")
    poll(lambda: not _waiting(net, f"cs-{B}", f"notice:{A}"), timeout=30, what="the notice outbox to drain")


def _waiting(network, node: str, target: str) -> int:
    path = network.state_dir / "data" / node / "store.sqlite"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute("SELECT COUNT(*) FROM outbox WHERE target=?", (target,)).fetchone()[0]
    finally:
        db.close()


# -- testbed check ------------------------------------------------------------------------------------------------
def test_check_holds_after_the_attacks_and_finds_what_is_planted(net, isehara, hadano):
    """After every attack above the network-wide invariants hold; planted violations (two residences, a dead
    person current, an invented number, an old outbox item, a dead letter) are each found, and the command
    exits 1 naming them."""
    poll(lambda: check_network(net, outbox_age_limit=60).ok, timeout=30, what="testbed check to pass")
    cli = [sys.executable, "-m", "testbed.cli", "--state-dir", str(net.state_dir), "check"]
    done = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "every invariant holds" in done.stdout, done.stdout + done.stderr
    here, there = move_in_from_abroad(isehara), move_in_from_abroad(hadano)
    dead = move_in_from_abroad(hadano)
    hadano(hadano.kizon.Death, kizon_pb2.DeathRequest(resident_code=dead.resident_code, death_date=TODAY,
                                                      notification_date=TODAY))
    poll(lambda: check_network(net, outbox_age_limit=60).looked_at.get("deceased", 0) > 0, timeout=30,
         what="the 死亡 to be stored")
    net.down()
    cs = sqlite3.connect(net.state_dir / "data" / f"cs-{A}" / "store.sqlite")
    with cs:
        row = list(cs.execute("SELECT * FROM identity WHERE resident_code=?", (here.resident_code,)).fetchone())
        for code in (there.resident_code, dead.resident_code):  # current here too: two residences, a dead one
            cs.execute(f"INSERT INTO identity VALUES ({','.join('?' * len(row))})", [code] + row[1:])
        cs.execute("UPDATE identity SET individual_number=? WHERE resident_code=?",
                   (with_individual_number_check("99999999999"), here.resident_code))
        cs.execute("INSERT INTO outbox(target, payload, queued_at) VALUES ('card', x'', ?)", (time.time() - 3600,))
        cs.execute("INSERT INTO dead_letters VALUES (999999, 'notice:142115', x'', ?, 'FAILED_PRECONDITION', "
                   "'planted', 0, 0)", (here.resident_code,))
    cs.close()
    report = check_network(net)
    found = {f.invariant for f in report.findings}
    assert {"one-residence", "removed-stay-removed", "numbers-from-national", "outbox-delivered",
            "dead-letters"} <= found, [f.line() for f in report.findings]
    done = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "one-residence" in done.stdout and "Traceback" not in done.stderr
