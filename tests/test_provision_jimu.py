"""情報提供 by 事務 and item (番号法第19条第8号, 主務省令第2条の表; the seed's PIA l.459–467): the 中間サーバ answers a
情報照会 only for a 事務 of the table and only with that 事務's items of the 副本, records the 事務 and the items in the
情報提供等記録, and the card holder reads them at マイナポータル. A 事務 it does not hold exactly as the table writes it,
or none, is refused before the 副本 is looked up, and records nothing.
"""
from __future__ import annotations

import re
import sqlite3
import uuid
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest
from helpers import eventually, issue_card, key, move_in_from_abroad, person, refused

from nodes import intermediate, jimu as J
from nodes.store import Store
from protos import intermediate_pb2, intermediate_pb2_grpc, national_pb2, national_pb2_grpc, records_pb2
from testbed.client import channel, named_cert, node_cert

ROOT = Path(__file__).resolve().parents[1]
A = "142140"  # 伊勢原市
PIN = "1234"
Code = grpc.StatusCode
PENSION, CHILD = "19-8-2-37", "19-8-2-81"  # 厚生年金保険法 (no 世帯 items), 児童手当法 (世帯 and 続柄)
NEVER = {"individual_number", "resident_code", "atena_number", "history_number", "request_control_number",
         "operator_id", "terminal_id", "notifier", "honseki", "hittousha"}


# -- helpers ----------------------------------------------------------------------------------------------------
def ask(network, fugo: str, jimu: str, inquiry: str = "") -> intermediate_pb2.ProvisionReply:
    """情報照会 as the 情報提供NWS makes it."""
    with channel(network.topology.find("intermediate"), named_cert(network.pki, "infonws")) as ch:
        return intermediate_pb2_grpc.IntermediateServerStub(ch).ProvideInfo(intermediate_pb2.ProvisionRequest(
            tenant=A, fugo=fugo, inquiry_id=inquiry or f"Q-{uuid.uuid4().hex[:12]}", jimu=jimu), timeout=5)


def records(network, card: str) -> dict[str, intermediate_pb2.ProvisionRecord]:
    """The card holder's 情報提供等記録 (マイナポータル), by provision id."""
    with channel(network.topology.find("intermediate"), named_cert(network.pki, "portal")) as ch:
        found = intermediate_pb2_grpc.IntermediateServerStub(ch).ListProvisions(
            intermediate_pb2.ProvisionQuery(card_number=card, pin=PIN), timeout=10).records
    return {r.provision_id: r for r in found}


def set_fields(record) -> set[str]:
    """The names of the fields a message sets."""
    return {field.name for field, _ in record.ListFields()}


def varint(value: int) -> bytes:
    """A protobuf base-128 varint."""
    out = bytearray()
    while True:
        out.append(value & 0x7F | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


@pytest.fixture(scope="module")
def resident(network, clerk):
    """A new resident (国外転入) of 伊勢原市 with a card: SimpleNamespace(record, fugo, card), record as kizon holds it."""
    record = move_in_from_abroad(clerk, person("事務 確認", "ジム カクニン", "1960-03-04", "2"))
    record = clerk(clerk.kizon.GetResident, key(record.resident_code))
    assert record.individual_number, "the clerk sees the 個人番号 (needed to learn the 符号)"
    with channel(network.topology.find("national"), node_cert(network.pki, f"atena-{A}")) as ch:
        fugo = national_pb2_grpc.NationalServerStub(ch).IssueFugo(
            national_pb2.FugoRequest(individual_number=record.individual_number), timeout=5).fugo
    eventually(lambda: ask(network, fugo, PENSION, "T-setup"))  # the 副本 is on the 中間サーバ
    card = issue_card(clerk, record.resident_code, PIN)
    return SimpleNamespace(record=record, fugo=fugo, card=card.card_number)


# -- the table (no network) -------------------------------------------------------------------------------------
def test_the_table_is_a_sample_of_the_seeds_items():
    """8–12 事務, each a 項 the seed lists, coded 19-8-2-<項>, with distinct items of the 住民票 (ResidentRecord)
    that are 住民票関係情報: never the 個人番号, the 住民票コード, or the municipality's own keys and bookkeeping."""
    table = J.table()
    assert 8 <= len(table) <= 12
    fields = set(records_pb2.ResidentRecord.DESCRIPTOR.fields_by_name)
    for code, jimu in table.items():
        assert code == jimu.code == f"19-8-2-{jimu.kou}" and jimu.kou in J.SEED_KOU, jimu
        assert jimu.requester and jimu.name.endswith("事務") and jimu.source and jimu.why, jimu
        assert jimu.items and len(set(jimu.items)) == len(jimu.items), jimu
        assert set(jimu.items) <= fields and not set(jimu.items) & NEVER, jimu
    assert J.SEED_KOU == {1, 2, 3, 5, 7, 11, 13, 15, 20, 28, 37, 39, 48, 53, 57, 58, 59, 63, 65, 66, 69, 73, 75, 76, 81,
                          83, 84, 86, 87, 91, 92, 96, 106, 108, 110, 112, 115, 118, 124, 129, 130, 132, 136, 137, 138,
                          141, 142, 144, 149, 150, 151, 152, 155, 156, 158, 160, 163, 164, 165, 166}
    assert not J.PROVIDABLE & NEVER
    assert len({j.items for j in table.values()}) >= 5, "the 事務 differ in what they receive"


def test_the_loader_refuses_an_entry_outside_the_rules(monkeypatch):
    """A 項 the seed does not list, an item that is not 住民票関係情報, or an unknown field, is an error at load."""
    good = J._ENTRIES[0]
    for bad in (J.Jimu("19-8-2-4", 4, "x", "x事務", good.items, "s", "w"),
                J.Jimu(good.code, good.kou, "x", "x事務", ("name_kanji", "individual_number"), "s", "w"),
                J.Jimu(good.code, good.kou, "x", "x事務", ("name_kanji", "resident_code"), "s", "w"),
                J.Jimu(good.code, good.kou, "x", "x事務", ("no_such_item",), "s", "w")):
        monkeypatch.setattr(J, "_ENTRIES", (bad,))
        J.table.cache_clear()
        with pytest.raises(ValueError):
            J.table()
    monkeypatch.undo()
    J.table.cache_clear()
    assert len(J.table()) == len(J._ENTRIES)


def test_a_projection_holds_the_items_only():
    """A projection of a full 住民票 sets only the 事務's items, and none of the 個人番号 and 住民票コード."""
    full = records_pb2.ResidentRecord(**{f.name: "1" for f in records_pb2.ResidentRecord.DESCRIPTOR.fields
                                         if f.type == f.TYPE_STRING})
    for jimu in J.table().values():
        provided = J.projection(full, jimu)
        assert set_fields(provided) == set(jimu.items) - {f for f in jimu.items if isinstance(getattr(full, f), bool)}
        assert not provided.individual_number and not provided.resident_code


def test_docs_list_every_jimu():
    """docs/jimu.md has a row for each 事務 of the table (code, 項, 情報照会者, 事務) and no other code."""
    text = (ROOT / "docs" / "jimu.md").read_text(encoding="utf-8")
    shown = set(re.findall(r"`(19-8-2-\d+)`", text))
    assert shown == set(J.table())
    for jimu in J.table().values():
        row = next(line for line in text.splitlines() if f"`{jimu.code}`" in line)
        assert f"| {jimu.kou} |" in row and jimu.requester in row and jimu.name in row, row
        assert all(f"`{item}`" in row for item in jimu.items), row


def test_an_old_store_gains_the_columns(tmp_path):
    """A 情報提供等記録 of the version before 事務 were kept gains the jimu and items columns; its rows name none."""
    path = tmp_path / "store.sqlite"
    old = Store(path, "CREATE TABLE provisions (provision_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, fugo TEXT NOT NULL,"
                      " inquiry_id TEXT NOT NULL, requester TEXT NOT NULL, provided_at TEXT NOT NULL);")
    old.db.execute("INSERT INTO provisions VALUES ('p1', ?, 'F', 'Q', 'spiffe://x', '2025-01-01')", (A,))
    old.close()
    store = Store(path, intermediate.SCHEMA)
    try:
        intermediate.Servicer(SimpleNamespace(store=store, stub=lambda *a, **k: None, session_keys={}))
        columns = [r[1] for r in store.db.execute("PRAGMA table_info(provisions)")]
        assert columns[-2:] == ["jimu", "items"]
        assert store.one("SELECT jimu, items FROM provisions WHERE provision_id='p1'") == ("", "")
        intermediate.Servicer(SimpleNamespace(store=store, stub=lambda *a, **k: None, session_keys={}))  # and again: nothing to do
    finally:
        store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM provisions").fetchone() == (1,)
    fresh = Store(tmp_path / "fresh.sqlite", intermediate.SCHEMA)  # a fresh store has them from its schema
    try:
        assert [r[1] for r in fresh.db.execute("PRAGMA table_info(provisions)")][-2:] == ["jimu", "items"]
    finally:
        fresh.close()


# -- on the network ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("code", [PENSION, CHILD])
def test_a_provision_holds_exactly_the_jimus_items(network, resident, code):
    """情報提供 for a 事務 returns that 事務's items of the 副本 and nothing else, and says which items they are."""
    jimu = J.table()[code]
    reply = ask(network, resident.fugo, code)
    assert list(reply.items_provided) == list(jimu.items)
    given = set_fields(reply.record)
    assert given <= set(jimu.items), given - set(jimu.items)
    assert given == set(jimu.items) & set_fields(resident.record)  # every item of the 事務 the 副本 holds
    assert {"name_kanji", "birth_date", "address"} <= given
    for item in jimu.items:
        assert getattr(reply.record, item) == getattr(resident.record, item), item
    assert not given & NEVER


def test_two_jimu_receive_different_items(network, resident):
    """The 世帯 items go to the 児童手当 事務 and not to the 厚生年金 事務 (whose items hold no 世帯)."""
    pension, child = ask(network, resident.fugo, PENSION), ask(network, resident.fugo, CHILD)
    household = {"household_number", "relationship", "householder_name"}
    assert household & set_fields(resident.record) == household
    assert household <= set_fields(child.record)
    assert not household & set_fields(pension.record)
    assert pension.record.name_kanji == child.record.name_kanji == resident.record.name_kanji


def test_the_record_names_the_jimu_and_items(network, resident):
    """Each 情報提供 is in the card holder's 情報提供等記録 with its 事務 and the items provided."""
    replies = {code: ask(network, resident.fugo, code, f"Q-{code}") for code in (PENSION, CHILD)}
    kept = records(network, resident.card)
    for code, reply in replies.items():
        entry = kept[reply.provision_id]
        assert (entry.jimu, list(entry.items), entry.inquiry_id) == (code, list(J.table()[code].items), f"Q-{code}")
    assert all(r.jimu in J.table() for r in kept.values())


@pytest.mark.parametrize("jimu", ["", " ", "   "])
def test_a_provision_without_a_jimu_is_refused(network, resident, jimu):
    """A 情報照会 naming no 事務 is refused (INVALID_ARGUMENT) and records nothing."""
    before = records(network, resident.card)
    with refused(Code.INVALID_ARGUMENT, "事務 rule", reason="PROVISION_JIMU_REQUIRED"):
        ask(network, resident.fugo, jimu)
    assert records(network, resident.card).keys() == before.keys()


@pytest.mark.parametrize("jimu", [
    "19-8-2-4",            # a 項 the seed does not list (its 情報提供者 is not the 市町村長)
    "19-8-2-999",          # no such 項
    "19-8-2-3",            # a 項 the seed lists but the testbed's table does not hold
    "住民基本台帳に関する事務",  # a 事務 by name
    " 19-8-2-37",          # whitespace before
    "19-8-2-37 ",          # whitespace after
    "１９-８-２-３７",        # full-width digits (NFKC would fold them)
    "19‐8‐2‐37",           # U+2010 hyphens
    "19-8-2-037",          # a leading zero
    "19-8-2-37,19-8-2-81",  # two 事務 at once
    "19-8-2-*",            # a pattern
    "1" * 100,             # as long as a text item may be
])
def test_a_jimu_not_in_the_table_is_refused(network, resident, jimu):
    """A 事務 not written exactly as the table writes it is refused (PERMISSION_DENIED), whatever 符号 it names:
    a 符号 the tenant holds and one it does not get the same answer, and nothing is recorded."""
    before = records(network, resident.card)
    with refused(Code.PERMISSION_DENIED, "事務 rule", reason="PROVISION_JIMU_NOT_IN_TABLE") as caught:
        ask(network, resident.fugo, jimu)
    assert jimu not in caught.value.details() or len(jimu) <= 40  # not echoed at length
    with refused(Code.PERMISSION_DENIED, reason="PROVISION_JIMU_NOT_IN_TABLE"):
        ask(network, "F" * 24, jimu)  # no such 符号: refused the same way, before the lookup
    assert records(network, resident.card).keys() == before.keys()


def test_case_of_the_code(network, resident):
    """The codes hold no letter, so case cannot change them; a code written with a letter is no code."""
    assert all(code == code.upper() == code.lower() for code in J.table())
    for jimu in ("X19-8-2-37", "19-8-2-37a", "19-8-2-37A"):
        with refused(Code.PERMISSION_DENIED, reason="PROVISION_JIMU_NOT_IN_TABLE"):
            ask(network, resident.fugo, jimu)


@pytest.mark.parametrize("jimu", ["1" * 101, "19-8-2-37" * 2000])
def test_a_very_long_jimu_is_refused_by_the_guard(network, resident, jimu):
    """A 事務 longer than a text item may be is refused before the servicer sees it (項目長 rule)."""
    with refused(Code.INVALID_ARGUMENT, "項目長 rule", reason="ITEM_LENGTH") as caught:
        ask(network, resident.fugo, jimu)
    assert jimu not in caught.value.details()


def test_a_control_character_in_the_jimu_is_refused(network, resident):
    """A 事務 with a control character (a NUL after a valid code) is refused by the guard (文字 rule)."""
    with refused(Code.INVALID_ARGUMENT, "文字 rule", reason="ITEM_CHARACTERS"):
        ask(network, resident.fugo, f"{PENSION}\x00")


def test_an_item_cannot_be_asked_for(network, resident):
    """ProvisionRequest has no field for items: a request carrying one anyway (an extra field 5 naming the
    individual_number, or a field 6 shaped like ProvisionReply.items_provided) is refused whole (message rule), and a
    request with the 事務 alone still gets only that 事務's items."""
    base = intermediate_pb2.ProvisionRequest(tenant=A, fugo=resident.fugo, inquiry_id="Q-item", jimu=PENSION)
    with channel(network.topology.find("intermediate"), named_cert(network.pki, "infonws")) as ch:
        raw = ch.unary_unary("/testbed.v1.IntermediateServer/ProvideInfo", request_serializer=lambda b: b,
                             response_deserializer=intermediate_pb2.ProvisionReply.FromString)
        for number in (5, 6, 3000):
            extra = varint(number << 3 | 2) + varint(len(b"individual_number")) + b"individual_number"
            with refused(Code.INVALID_ARGUMENT, "message rule", reason="MESSAGE_UNKNOWN_FIELD"):
                raw(base.SerializeToString() + extra, timeout=5)
        reply = raw(base.SerializeToString(), timeout=5)
    assert set_fields(reply.record) <= set(J.table()[PENSION].items) and not reply.record.individual_number
