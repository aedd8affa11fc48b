"""The 送付先情報ファイル at the 市町村CS (docs/delivery.md): held in the transaction of the update that carried it,
checked against national's 機構保存本人確認情報 before it is sent (情報の突合, seed 1615–1617), sent to the card system
once it matches, held (and retried) while it does not, kept for the retention and then deleted in one batch at the CS
and at the card system, leaving nothing to read back from the store or its WAL (seed 2876–2882).

A network of its own: its tests stop the prefecture and the card system, kill the CS, and end by deleting.
"""
from __future__ import annotations

import datetime as dt
import re
import sqlite3
from types import SimpleNamespace

import grpc
import pytest

from conftest import network_of_its_own
from helpers import address, eventually, key, kill, move_in_from_abroad, person, poll, refused
from nodes import card as card_node, clock, settings
from nodes.cs import delivery as delivery_file
from nodes.cs.housekeeping import Housekeeping
from nodes.cs.service import SCHEMA as CS_SCHEMA
from nodes.store import Store
from protos import card_pb2_grpc, records_pb2
from testbed import requests
from testbed.cli import main
from testbed.client import Counter, channel, node_cert

A = "142140"
CS = f"cs-{A}"
MARKER_NAME = "削除確認 花子"
MARKER_ADDRESS = "神奈川県伊勢原市削除確認町九丁目九番九号"


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """A network of its own (nodes are stopped and killed here; the last test deletes with the network down)."""
    yield from network_of_its_own(tmp_path_factory, "delivery")


@pytest.fixture(scope="module")
def clerk(net):
    """OP0001 at T0001 of 伊勢原市."""
    with Counter(net, A) as counter:
        yield counter


@pytest.fixture(scope="module")
def card(net):
    """The card system, called as the CS would."""
    with channel(net.topology.find("card"), node_cert(net.pki, CS)) as ch:
        yield card_pb2_grpc.CardManagementStub(ch)


def held(net, code: str):
    """The CS's 送付先情報ファイル row of a person: (sent_at, result, checks, info), read from its store on disk."""
    path = net.state_dir / "data" / CS / "store.sqlite"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2, isolation_level=None)
    try:
        return db.execute("SELECT sent_at, result, checks, info FROM delivery_file WHERE resident_code=?",
                          (code,)).fetchone()
    finally:
        db.close()


def not_at_card(card, code: str) -> None:
    """The card system has no 送付先情報 of the person."""
    with refused(grpc.StatusCode.NOT_FOUND, reason="RECORD_NOT_FOUND"):
        card.GetDeliveryInfo(key(code), timeout=5)


def marker_info(code: str = "12345678903", number: str = "123456789018") -> records_pb2.DeliveryInfo:
    """A 送付先情報 whose name and address are found nowhere else (what must be gone after the purge)."""
    return records_pb2.DeliveryInfo(resident_code=code, individual_number=number, municipality_code=A,
                                    name_kanji=MARKER_NAME, delivery_name_kanji=MARKER_NAME, address=MARKER_ADDRESS,
                                    delivery_address_kanji=MARKER_ADDRESS, birth_date="1990-01-02", sex="2")


def on_disk(path) -> bytes:
    """The bytes of a SQLite store and of its WAL, as anyone reading the disk would find them."""
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


# -- what a deletion leaves on disk (no network) ------------------------------------------------------------------
def _fill(store: Store, count: int = 300) -> None:
    with store.transaction() as db:
        db.execute("CREATE TABLE IF NOT EXISTS kept (code TEXT PRIMARY KEY, info BLOB, sent TEXT)")
        db.executemany("INSERT INTO kept VALUES (?,?,NULL)",
                       [(f"{i:011d}", marker_info().SerializeToString() + bytes(300)) for i in range(count)])
    with store.transaction() as db:
        db.execute("UPDATE kept SET sent='2024-04-01T00:00:00+00:00'")  # (a row rewritten leaves its old cell)


def test_a_plain_delete_leaves_the_record_on_disk(tmp_path):
    """Without secure_delete and the WAL emptied, a deleted 送付先情報 is still in the file: what the purge's test
    below would find if the stores did not overwrite (so that test is not vacuous)."""
    store = Store(tmp_path / "plain.sqlite")
    try:
        _fill(store)
        with store.transaction() as db:
            db.execute("DELETE FROM kept")
        assert store.scalar("SELECT COUNT(*) FROM kept") == 0
        assert MARKER_NAME.encode() in on_disk(store.path)
    finally:
        store.close()


def test_a_secure_delete_and_an_emptied_wal_leave_nothing(tmp_path):
    """With the store overwriting what it deletes and the WAL checkpointed to nothing, no byte of the deleted
    送付先情報 is left, neither in the database nor in its WAL."""
    store = Store(tmp_path / "secure.sqlite")
    try:
        store.secure_delete()
        _fill(store)
        with store.transaction() as db:
            db.execute("DELETE FROM kept")
        assert store.truncate_wal()
        wal = store.path.with_name(store.path.name + "-wal")
        assert not wal.exists() or wal.stat().st_size == 0
        for marker in (MARKER_NAME, MARKER_ADDRESS):
            assert marker.encode() not in on_disk(store.path), marker
    finally:
        store.close()


def test_the_match_is_of_the_four_items_and_the_number():
    """情報の突合: 氏名, 住所, 生年月日, 性別 and 個人番号 as national holds them, of a current resident here."""
    info = marker_info()
    national = records_pb2.IdentityInfo(resident_code=info.resident_code, individual_number=info.individual_number,
                                        name_kanji=MARKER_NAME, address=MARKER_ADDRESS, birth_date="1990-01-02", sex="2",
                                        municipality_code=A, name_kana="ちがう")  # (the かな is no item of the match)
    assert delivery_file.mismatches(info, national, A) == ""
    assert delivery_file.mismatches(info, None, A) == delivery_file.NOT_AT_NATIONAL
    for item, other in (("name_kanji", "別人 花子"), ("address", "神奈川県伊勢原市別町1番"), ("birth_date", "1990-01-03"),
                        ("sex", "1"), ("individual_number", "999999999999")):
        changed = records_pb2.IdentityInfo()
        changed.CopyFrom(national)
        setattr(changed, item, other)
        assert delivery_file.mismatches(info, changed, A) == f"differs from national in {item}"
    gone = records_pb2.IdentityInfo()
    gone.CopyFrom(national)
    gone.record_status_flag = 1
    assert "no longer a current resident" in delivery_file.mismatches(info, gone, A)


# -- the flow, live -------------------------------------------------------------------------------------------------
def test_a_delivery_is_checked_then_sent(net, clerk, card):
    """The 送付先情報 of a new resident is in the CS's file, matched against national, sent and marked sent."""
    record = move_in_from_abroad(clerk, person("送付 確認", "ソウフ カクニン", "1979-03-03", "1"))
    sent_at, result, checks, info = poll(lambda: (row := held(net, record.resident_code)) and row[0] and row,
                                         what="the 送付先情報 to be sent")
    assert result == delivery_file.MATCHED and checks >= 1
    entry = eventually(lambda: card.GetDeliveryInfo(key(record.resident_code), timeout=5))
    assert entry.delivery.SerializeToString() == info  # (sent unedited)


def test_a_person_national_does_not_know_yet_is_held_then_sent(net, clerk, card):
    """With the prefecture down national cannot learn of a new resident: the 送付先情報 is held (retried, with the
    reason), not sent; once the prefecture is back and national knows the person, it is sent."""
    kill(net, "prefecture-140007")
    try:
        record = move_in_from_abroad(clerk)
        row = poll(lambda: (r := held(net, record.resident_code)) and r[2] >= 3 and r, what="three 突合")
        assert row[0] is None and row[1] == delivery_file.NOT_AT_NATIONAL
        not_at_card(card, record.resident_code)
    finally:
        net.up()
    poll(lambda: held(net, record.resident_code)[0], timeout=30, what="the held 送付先情報 to be sent")
    eventually(lambda: card.GetDeliveryInfo(key(record.resident_code), timeout=5))


def test_a_delivery_overtaken_by_a_move_goes_to_the_new_address(net, clerk, card):
    """A 転居 reaches national before the 送付先情報 of the person's 転入 is checked: its address is no longer the
    latest (seed 1616: 最新の４情報等であることを確認する), so it is sent with national's address, never the old one."""
    kill(net, "prefecture-140007")
    try:
        record = move_in_from_abroad(clerk)
        moved = clerk(clerk.kizon.MoveWithin, requests.move_within(record.resident_code, address(A, "999番地"))).records[0]
    finally:
        net.up()
    entry = eventually(lambda: card.GetDeliveryInfo(key(record.resident_code), timeout=5), timeout=30)
    assert entry.delivery.address == moved.address != record.address
    assert entry.delivery.delivery_address_kanji == moved.address


def test_a_delivery_that_differs_in_what_no_move_changes_is_held():
    """The 突合 takes the name and the address of a later 異動 from national; a 生年月日, 性別 or 個人番号 that differs
    holds the 送付先情報 with the reason (no network: the rule of nodes/cs/delivery.py)."""
    from nodes.cs.delivery import mismatches, refreshed
    from protos import records_pb2
    delivery = records_pb2.DeliveryInfo(resident_code="1", name_kanji="甲", address="A", birth_date="2000-01-01", sex="1",
                                        individual_number="123456789018")
    national = records_pb2.IdentityInfo(resident_code="1", municipality_code=A, name_kanji="甲", address="B",
                                        birth_date="2000-01-01", sex="1", individual_number="123456789018")
    assert refreshed(delivery, national, A).delivery_address_kanji == "B"
    national.sex = "2"
    assert refreshed(delivery, national, A) is None
    assert mismatches(delivery, national, A) == "differs from national in address, sex"
    national.sex, national.record_status_flag = "1", 1
    assert refreshed(delivery, national, A) is None


def test_what_kizon_was_told_is_kept_through_a_kill(net, clerk, card):
    """kill -9 of the CS after it acknowledged an update, while the card system is down: the 送付先情報 is in the
    CS's store (written with the update), and is sent once both are back, once."""
    kill(net, "card")
    try:
        record = move_in_from_abroad(clerk)
        kill(net, CS)
        row = held(net, record.resident_code)
        assert row is not None and row[0] is None
    finally:
        net.up()
    poll(lambda: held(net, record.resident_code)[0], timeout=30, what="the 送付先情報 to be sent after the restart")
    first = eventually(lambda: card.GetDeliveryInfo(key(record.resident_code), timeout=5))
    assert card.GetDeliveryInfo(key(record.resident_code), timeout=5).received_at == first.received_at


def test_the_batch_keeps_what_is_inside_its_retention(net, clerk, card, capsys):
    """`testbed batch purge` at the CS and the card system deletes nothing received today (90 days)."""
    record = move_in_from_abroad(clerk)
    poll(lambda: (row := held(net, record.resident_code)) and row[0], what="the 送付先情報 to be sent")
    net.topology.save(net.state_dir / "topology.yaml")
    capsys.readouterr()
    assert main(["--state-dir", str(net.state_dir), "batch", "purge"]) == 0
    out = capsys.readouterr().out
    found = dict((m[1], int(m[2])) for m in re.finditer(r"^(\S+)\s+purge: (\d+) records$", out, re.M))
    assert found[CS] == 0 and found["card"] == 0, out
    assert held(net, record.resident_code)[0]
    eventually(lambda: card.GetDeliveryInfo(key(record.resident_code), timeout=5))


def test_the_purge_leaves_nothing_to_read_back(net, clerk):
    """Past the retention the purge deletes every 送付先情報 at the CS (sent or never sent, the latter audited as
    expired) and at the card system; neither store nor WAL holds a byte of them afterwards. Run by the nodes' own
    purge on the nodes' own stores (the network down), for a day past the retention."""
    sent = move_in_from_abroad(clerk)
    poll(lambda: (row := held(net, sent.resident_code)) and row[0], what="the 送付先情報 to be sent")
    net.down()
    later = clock.now().date() + dt.timedelta(days=settings.current().delivery_retention_days + 2)
    audited = []
    # -- at the CS ---------------------------------------------------------------------------------------------
    store = Store(net.state_dir / "data" / CS / "store.sqlite", CS_SCHEMA)
    try:
        runtime = SimpleNamespace(store=store, background=lambda job: None, node=SimpleNamespace(
            municipality=A, identity=f"spiffe://testbed.jp/lg/{A}/cs"), audit=SimpleNamespace(
            append=lambda **entry: audited.append(entry)))
        store.secure_delete()  # (as the CS's servicer does at start)
        deliveries = delivery_file.DeliveryFile(runtime, peers=None)
        live = store.scalar("SELECT info FROM delivery_file WHERE resident_code=?", (sent.resident_code,))
        with store.transaction() as db:  # one more never sent, one more sent: both past the retention below
            deliveries.hold(db, marker_info())
            deliveries.hold(db, marker_info("24727059608"))
            db.execute("UPDATE delivery_file SET sent_at=? WHERE resident_code='24727059608'", (clock.stamp(),))
        nothing = SimpleNamespace(release_stale=lambda db: 0, trim_journal=lambda db: None,
                                  purge_expired=lambda db, cutoff: 0)
        kept = store.scalar("SELECT COUNT(*) FROM delivery_file")
        assert Housekeeping(runtime, nothing, nothing, nothing, deliveries).purge(later) == kept
        assert store.scalar("SELECT COUNT(*) FROM delivery_file") == 0
        disk = on_disk(store.path)
        for marker in (MARKER_NAME.encode(), MARKER_ADDRESS.encode(), live):
            assert marker not in disk
        assert any(e["status"] == "EXPIRED" and e["subject"].startswith("12345678903") for e in audited)
    finally:
        store.close()
    # -- at the card system -----------------------------------------------------------------------------------------
    store = Store(net.state_dir / "data" / "card" / "store.sqlite", card_node.SCHEMA)
    try:
        servicer = card_node.Servicer(SimpleNamespace(store=store, background=lambda job: None,
                                                      own_secret=lambda name: b"k" * 32))
        live = store.scalar("SELECT info FROM delivery WHERE resident_code=?", (sent.resident_code,))
        assert live
        with store.transaction() as db:
            card_node.keep_deliveries(db, A, [marker_info()])
            db.execute("UPDATE delivery SET notice_printed_at=?", (clock.stamp(),))  # (as the printing batch does)
        assert MARKER_NAME.encode() in on_disk(store.path)  # (it is there before the purge)
        assert servicer.purge(later) >= 2
        assert store.scalar("SELECT COUNT(*) FROM delivery") == 0
        disk = on_disk(store.path)
        for marker in (MARKER_NAME.encode(), MARKER_ADDRESS.encode(), live):
            assert marker not in disk
    finally:
        store.close()
