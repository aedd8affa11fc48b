"""The 個人番号カード管理システム end to end: 送付先情報 and the 個人番号通知書, the card lifecycle
through kizon → CS → card, 本人確認 by card and PIN at the CS, revocation on death, the card check
of 特例転入, and the 送付先情報 purge (its retention rule).

The card node manufactures applied cards in a batch about once a second; tests wait for it with a
bounded polling loop. Card calls made by the tests themselves use cs-142140's certificate, as the
CS would.
"""
from __future__ import annotations

import datetime as dt
import re
from types import SimpleNamespace

import grpc
import pytest
from helpers import (
    TODAY,
    address,
    eventually,
    key,
    move_in_from_abroad,
    person,
    poll,
    refused,
)

from nodes import card as card_node, settings
from nodes.store import Store
from protos import card_pb2, card_pb2_grpc, cs_pb2, kizon_pb2, records_pb2
from testbed.cli import main
from testbed.client import Counter, channel, node_cert, node_status

A, B = "142140", "142115"  # 伊勢原市, 秦野市
PIN = "4321"
Code = grpc.StatusCode


# -- helpers ------------------------------------------------------------------------------------


def change(counter: Counter, code: str, action, pin: str = "", reason: str = "") -> card_pb2.CardStatus:
    """One step of the card lifecycle at the counter (kizon → CS → card)."""
    return counter(counter.kizon.ChangeCard, card_pb2.CardRequest(action=action, resident_code=code, pin=pin,
                                                                  reason=reason))


def state(card, code: str) -> str:
    """The card system's state of a person's card."""
    return card.GetCardStatus(key(code), timeout=5).state


def wait_manufactured(card, code: str) -> None:
    """Wait (bounded) for the manufacturing batch to pick up an applied card."""
    poll(lambda: state(card, code) == "manufactured", what=f"the card of {code} to be manufactured")


def issued_card(counter: Counter, card, pin: str = PIN, who=None):
    """A new resident (国外転入) with a card applied for, manufactured and issued: (住民票, CardStatus)."""
    record = move_in_from_abroad(counter, who)
    change(counter, record.resident_code, card_pb2.APPLY)
    wait_manufactured(card, record.resident_code)
    return record, change(counter, record.resident_code, card_pb2.ISSUE, pin=pin)


def resident(counter: Counter, code: str) -> records_pb2.ResidentRecord:
    """The current entry of a person's 住民票 at kizon."""
    return counter(counter.kizon.GetResident, key(code))


def verify(counter: Counter, card_number: str, pin: str):
    """本人確認 by card and PIN at the CS (統合端末)."""
    return counter(counter.cs.VerifyByCard, cs_pb2.CardIdentityCheck(card_number=card_number, pin=pin))


def card_stub(network, ch_list: list):
    """A stub on the card node, called with cs-142140's certificate."""
    ch = channel(network.topology.find("card"), node_cert(network.pki, f"cs-{A}"))
    ch_list.append(ch)
    return card_pb2_grpc.CardManagementStub(ch)


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def card(network):
    """The card node, called as cs-142140."""
    with channel(network.topology.find("card"), node_cert(network.pki, f"cs-{A}")) as ch:
        yield card_pb2_grpc.CardManagementStub(ch)


# -- 送付先情報 and the 個人番号通知書 -------------------------------------------------------------
def _newly_numbered(counter: Counter, how: str) -> records_pb2.ResidentRecord:
    if how == "国外転入":
        return move_in_from_abroad(counter, person("送付 花子", "ソウフ ハナコ", "1985-07-07", "2"))
    head = move_in_from_abroad(counter, person("送付 太郎", "ソウフ タロウ"))
    return counter(counter.kizon.Birth, kizon_pb2.BirthRequest(
        household_number=head.household_number, child=person("送付 一郎", "ソウフ イチロウ", TODAY),
        notification_date=TODAY)).records[0]


@pytest.mark.parametrize("how", ["国外転入", "出生"])
def test_delivery_info_reaches_card_unedited(clerk, card, how):
    """The 送付先情報 of a newly numbered resident reaches the card system as the 住民票 says it."""
    record = _newly_numbered(clerk, how)
    assert resident(clerk, record.resident_code) == record
    entry = eventually(lambda: card.GetDeliveryInfo(key(record.resident_code), timeout=5))
    info = entry.delivery
    for item in ("resident_code", "individual_number", "name_kanji", "name_kana", "birth_date", "sex", "postal_code",
                 "address", "municipality_code", "operator_id", "terminal_id"):
        assert getattr(info, item) == getattr(record, item), item
    assert info.individual_number and info.individual_number != "*" * 12
    assert (info.delivery_name_kanji, info.delivery_name_kanji_length) == (record.name_kanji, len(record.name_kanji))
    assert (info.delivery_address_kanji, info.delivery_address_kanji_length) == (record.address, len(record.address))
    assert info.delivery_postal_code == record.postal_code and record.postal_code
    assert (info.municipality_code, info.operator_id, info.terminal_id) == (A, "OP0001", "T0001")
    assert dt.datetime.fromisoformat(entry.received_at)


@pytest.mark.parametrize("how", ["国外転入", "出生"])
def test_notice_is_printed(clerk, card, how):
    """The 個人番号通知書 of a newly numbered resident is printed by the next batch (within seconds)."""
    record = _newly_numbered(clerk, how)

    def printed():
        entry = eventually(lambda: card.GetDeliveryInfo(key(record.resident_code), timeout=5))
        return entry if entry.notice_printed_at else None

    entry = poll(printed, timeout=5, what="the 個人番号通知書 to be printed")
    assert dt.datetime.fromisoformat(entry.notice_printed_at) >= dt.datetime.fromisoformat(entry.received_at)


# -- the card lifecycle -------------------------------------------------------------------------
def test_card_lifecycle(clerk, card):
    """APPLY → manufactured → ISSUE with PIN → SUSPEND → LIFT → REVOKE → RETURN, each giving its state."""
    record = move_in_from_abroad(clerk)
    code = record.resident_code
    assert state(card, code) == "none"
    applied = change(clerk, code, card_pb2.APPLY)
    assert (applied.state, applied.resident_code, applied.municipality_code) == ("applied", code, A)
    assert re.fullmatch(r"[0-9]{12}", applied.card_number)
    wait_manufactured(card, code)
    issued = change(clerk, code, card_pb2.ISSUE, pin=PIN)
    assert (issued.state, issued.card_number) == ("issued", applied.card_number)
    assert (issued.pin_failures, issued.pin_locked) == (0, False)
    assert change(clerk, code, card_pb2.SUSPEND, reason="紛失").state == "suspended"
    assert change(clerk, code, card_pb2.LIFT, reason="発見").state == "issued"
    assert change(clerk, code, card_pb2.REVOKE, reason="本人の申請").state == "revoked"
    assert change(clerk, code, card_pb2.RETURN).state == "returned"
    assert state(card, code) == "returned"


def test_card_issued_follows_the_card(clerk, card):
    """kizon's 個人番号カード交付状況 is set by ISSUE, kept while suspended and cleared by REVOKE."""
    record = move_in_from_abroad(clerk)
    code = record.resident_code
    assert not record.card_issued
    change(clerk, code, card_pb2.APPLY)
    assert not resident(clerk, code).card_issued
    wait_manufactured(card, code)
    change(clerk, code, card_pb2.ISSUE, pin=PIN)
    assert resident(clerk, code).card_issued
    change(clerk, code, card_pb2.SUSPEND)
    assert resident(clerk, code).card_issued
    change(clerk, code, card_pb2.REVOKE)
    assert not resident(clerk, code).card_issued


def test_issue_before_manufacture(clerk, card):
    """ISSUE of a card not yet manufactured (applied, or never applied for) breaks the card rule."""
    never = move_in_from_abroad(clerk)
    with refused(Code.FAILED_PRECONDITION, "card rule", "ISSUE", "none", reason="CARD_STATE_TRANSITION"):
        change(clerk, never.resident_code, card_pb2.ISSUE, pin=PIN)
    # Right after APPLY the card is still "applied" unless the once-a-second batch ran in between:
    # try a few people so the refusal is certain to be seen.
    for _ in range(5):
        code = move_in_from_abroad(clerk).resident_code
        change(clerk, code, card_pb2.APPLY)
        try:
            change(clerk, code, card_pb2.ISSUE, pin=PIN)
        except grpc.RpcError as exc:
            assert exc.code() == Code.FAILED_PRECONDITION, exc.details()
            assert "card rule" in exc.details() and "applied" in exc.details(), exc.details()
            break
    else:
        pytest.fail("ISSUE right after APPLY was never refused")
    assert state(card, code) in ("applied", "manufactured")


def test_invalid_steps(clerk, card):
    """LIFT of an issued card, SUSPEND twice and a three-digit PIN are refused, naming the card rule."""
    record = move_in_from_abroad(clerk)
    code = record.resident_code
    change(clerk, code, card_pb2.APPLY)
    wait_manufactured(card, code)
    with refused(Code.INVALID_ARGUMENT, "card rule", "four digits", reason="PIN_FORMAT"):
        change(clerk, code, card_pb2.ISSUE, pin="123")
    assert state(card, code) == "manufactured"
    change(clerk, code, card_pb2.ISSUE, pin=PIN)
    with refused(Code.FAILED_PRECONDITION, "card rule", "LIFT", "issued", reason="CARD_STATE_TRANSITION"):
        change(clerk, code, card_pb2.LIFT)
    change(clerk, code, card_pb2.SUSPEND)
    with refused(Code.FAILED_PRECONDITION, "card rule", "SUSPEND", "suspended", reason="CARD_STATE_TRANSITION"):
        change(clerk, code, card_pb2.SUSPEND)
    assert state(card, code) == "suspended"


# -- 本人確認 by card and PIN --------------------------------------------------------------------
def test_verify_by_card(clerk, card):
    """本人確認 by card and PIN at the CS answers the holder's 本人確認情報."""
    record, status = issued_card(clerk, card, who=person("確認 次郎", "カクニン ジロウ", "1970-03-04"))
    info = verify(clerk, status.card_number, PIN)
    assert (info.resident_code, info.name_kanji, info.name_kana, info.birth_date, info.sex, info.address) == (
        record.resident_code, record.name_kanji, record.name_kana, record.birth_date, record.sex, record.address)
    assert info.individual_number == record.individual_number


def test_wrong_pin_counts_attempts_and_locks(clerk, card):
    """Wrong PINs name the attempts left; a right PIN resets the count; three wrong in a row lock the card."""
    _, status = issued_card(clerk, card)
    number = status.card_number
    with refused(Code.UNAUTHENTICATED, "PIN rule", "2 attempts left", reason="PIN_WRONG"):
        verify(clerk, number, "0000")
    verify(clerk, number, PIN)  # a right PIN resets the count
    for left in ("2 attempts left", "1 attempt left", "0 attempts left"):
        with refused(Code.UNAUTHENTICATED, "PIN rule", left, reason="PIN_WRONG"):
            verify(clerk, number, "0000")
    with refused(Code.FAILED_PRECONDITION, "PIN rule", "locked", reason="PIN_LOCKED"):
        verify(clerk, number, PIN)
    locked = card.GetCardStatus(key(status.resident_code), timeout=5)
    assert (locked.state, locked.pin_locked, locked.pin_failures) == ("issued", True, 3)
    reset = change(clerk, status.resident_code, card_pb2.RESET_PIN, pin="8765")  # 暗証番号の再設定 at the counter
    assert (reset.state, reset.pin_locked) == ("issued", False)
    with refused(Code.UNAUTHENTICATED, "PIN rule", reason="PIN_WRONG"):
        verify(clerk, number, PIN)  # the old PIN is gone
    assert verify(clerk, number, "8765").resident_code == status.resident_code


def test_suspended_card_cannot_verify(clerk, card):
    """A suspended card proves nobody, even with the right PIN."""
    record, status = issued_card(clerk, card)
    change(clerk, record.resident_code, card_pb2.SUSPEND, reason="紛失")
    with refused(Code.FAILED_PRECONDITION, "card rule", "suspended", reason="CARD_NOT_USABLE"):
        verify(clerk, status.card_number, PIN)


# -- death and moves ------------------------------------------------------------------------------
def test_death_revokes_the_card(clerk, card):
    """死亡 at kizon revokes the person's card (CS → card from the outbox, within seconds)."""
    record, status = issued_card(clerk, card)
    clerk(clerk.kizon.Death, kizon_pb2.DeathRequest(resident_code=record.resident_code, death_date=TODAY,
                                                    notification_date=TODAY))
    poll(lambda: state(card, record.resident_code) == "revoked", timeout=5, what="the card to be revoked")
    with refused(Code.FAILED_PRECONDITION, "card rule", "revoked", reason="CARD_NOT_USABLE"):
        verify(clerk, status.card_number, PIN)


def test_death_of_a_former_card_holder_does_not_stop_revocations(fresh_network):
    """The death of someone whose card was already revoked leaves later deaths still revoking cards."""
    fresh_network.up()
    chans: list = []
    try:
        card = card_stub(fresh_network, chans)
        with Counter(fresh_network, A) as clerk:
            former, _ = issued_card(clerk, card)
            change(clerk, former.resident_code, card_pb2.REVOKE, reason="本人の申請")
            holder, _ = issued_card(clerk, card)
            for who in (former, holder):
                clerk(clerk.kizon.Death, kizon_pb2.DeathRequest(resident_code=who.resident_code, death_date=TODAY,
                                                                notification_date=TODAY))
            poll(lambda: state(card, holder.resident_code) == "revoked", timeout=5,
                 what="the card of the second death to be revoked")
        assert not node_status(fresh_network, fresh_network.topology.find("cs", A)).blocked
    finally:
        for ch in chans:
            ch.close()


def test_special_move_in_refused_with_a_suspended_card(clerk, clerk_b, card):
    """特例転出 with a card that is then suspended: the 特例転入 is refused for the suspended card."""
    record, _ = issued_card(clerk, card)
    code = record.resident_code
    change(clerk, code, card_pb2.SUSPEND, reason="紛失")
    assert resident(clerk, code).card_issued  # still a card holder: 特例転出 is allowed
    moved = clerk(clerk.kizon.MoveOut, kizon_pb2.MoveOutRequest(
        resident_code=code, destination_address="神奈川県秦野市河原町1番1号", destination_municipality_code=B,
        planned_date=TODAY, notification_date=TODAY, special=True))
    assert moved.certificate.card_holder
    request = kizon_pb2.MoveInRequest(person=records_pb2.ResidentRecord(resident_code=code), address=address(B),
                                      move_in_date=TODAY, notification_date=TODAY, special=True)
    with refused(Code.FAILED_PRECONDITION, "特例転入 rule", "suspended", reason="SPECIAL_MOVE_IN_CARD_USABLE"):
        eventually(lambda: clerk_b(clerk_b.kizon.MoveIn, request))  # NOT_FOUND until the 転出証明書情報 arrives
    with refused(Code.NOT_FOUND, reason="RECORD_NOT_FOUND"):
        resident(clerk_b, code)


def test_card_follows_its_holder_on_a_special_move_in(fresh_network):
    """After a 特例転入 the new city manages the card: it may suspend and lift it, and a death there revokes it."""
    fresh_network.up()
    chans: list = []
    try:
        card = card_stub(fresh_network, chans)
        with Counter(fresh_network, A) as clerk, Counter(fresh_network, B) as clerk_b:
            record, status = issued_card(clerk, card)
            code = record.resident_code
            clerk(clerk.kizon.MoveOut, kizon_pb2.MoveOutRequest(
                resident_code=code, destination_address="神奈川県秦野市河原町1番1号", destination_municipality_code=B,
                planned_date=TODAY, notification_date=TODAY, special=True))
            moved = eventually(lambda: clerk_b(clerk_b.kizon.MoveIn, kizon_pb2.MoveInRequest(
                person=records_pb2.ResidentRecord(resident_code=code), address=address(B), move_in_date=TODAY,
                notification_date=TODAY, special=True))).records[0]
            assert moved.card_issued and state(card, code) == "issued"
            assert change(clerk_b, code, card_pb2.SUSPEND, reason="紛失").state == "suspended"
            assert change(clerk_b, code, card_pb2.LIFT).state == "issued"
            clerk_b(clerk_b.kizon.Death, kizon_pb2.DeathRequest(resident_code=code, death_date=TODAY,
                                                                notification_date=TODAY))
            poll(lambda: state(card, code) == "revoked", timeout=5, what="the card to be revoked")
    finally:
        for ch in chans:
            ch.close()


def test_card_follows_a_resident_code_change(clerk, card):
    """After a 住民票コード変更 the card proves the same person under the new code and is managed by it."""
    record, status = issued_card(clerk, card)
    offer = clerk(clerk.kizon.OfferResidentCodes, key(record.resident_code))
    new = clerk(clerk.kizon.ChangeResidentCode, kizon_pb2.ResidentCodeChangeRequest(
        resident_code=record.resident_code, offer_id=offer.offer_id, chosen=offer.candidates[0])).records[0]
    assert new.card_issued
    # the card system hears of the new code from the CS's outbox: wait for it
    assert eventually(lambda: verify(clerk, status.card_number, PIN)).resident_code == new.resident_code
    assert eventually(lambda: state(card, new.resident_code)) == "issued"
    assert change(clerk, new.resident_code, card_pb2.SUSPEND).state == "suspended"


# -- the 送付先情報 purge ---------------------------------------------------------------------------
def _purge(network, capsys) -> dict[str, int]:
    """`testbed batch purge` on a network; {node: records purged} as it reports them."""
    network.topology.save(network.state_dir / "topology.yaml")
    capsys.readouterr()
    assert main(["--state-dir", str(network.state_dir), "batch", "purge"]) == 0
    out = capsys.readouterr().out
    found = dict((m[1], int(m[2])) for m in re.finditer(r"^(\S+)\s+purge: (\d+) records$", out, re.M))
    assert set(found) == {"card", f"cs-{A}", f"cs-{B}"}, out
    return found


def test_batch_purge_keeps_recent_delivery_infos(network, clerk, card, capsys):
    """`testbed batch purge` runs on card and both CSs and keeps 送付先情報 inside its retention (90 days)."""
    record = move_in_from_abroad(clerk)
    eventually(lambda: card.GetDeliveryInfo(key(record.resident_code), timeout=5))
    _purge(network, capsys)
    assert card.GetDeliveryInfo(key(record.resident_code), timeout=5).delivery.resident_code == record.resident_code


def test_delivery_retention_counts_whole_days(fresh_network, monkeypatch, capsys):
    """Retention is counted in whole days from the start of today (UTC): with 0 days, today's 送付先情報
    stays until the first purge of tomorrow; with 90, until the purge 91 days on."""
    with monkeypatch.context() as env:
        env.setenv("TESTBED_DELIVERY_RETENTION_DAYS", "0")
        fresh_network.up()
    chans: list = []
    try:
        card = card_stub(fresh_network, chans)
        with Counter(fresh_network, A) as clerk:
            record = move_in_from_abroad(clerk)
        entry = eventually(lambda: card.GetDeliveryInfo(key(record.resident_code), timeout=5))
        assert _purge(fresh_network, capsys)["card"] == 0
        assert card.GetDeliveryInfo(key(record.resident_code), timeout=5).received_at == entry.received_at
    finally:
        for ch in chans:
            ch.close()
    fresh_network.down()
    # The node's own purge on the node's own store (no row written by hand), run for later days.
    store = Store(fresh_network.state_dir / "data" / "card" / "store.sqlite", card_node.SCHEMA)
    try:
        servicer = card_node.Servicer(SimpleNamespace(store=store, background=lambda job: None,
                                                      own_secret=lambda name: b"k" * 32))
        received = dt.datetime.fromisoformat(entry.received_at).astimezone(dt.timezone.utc).date()
        monkeypatch.setattr(settings, "_current", settings.Settings(delivery_retention_days=90))
        assert servicer.purge(received + dt.timedelta(days=90)) == 0
        monkeypatch.setattr(settings, "_current", settings.Settings(delivery_retention_days=0))
        assert servicer.purge(received) == 0
        assert servicer.purge(received + dt.timedelta(days=1)) == 1
    finally:
        store.close()
