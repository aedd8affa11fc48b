"""Every hop keeps the characters of the register byte for byte (docs/characters.md): three residents of 伊勢原市,
registered at the counter (two 国外転入, one 出生), whose names, 旧氏 and 方書 hold each sample 外字 (髙, 﨑, 德, 濵,
𠮷 U+20BB7, 𩸽 U+29E3D, 葛 + IVS U+E0100, the private-use U+E000) and the 異体字 邊 and 邉, read back at every hop
that holds them: kizon's 住民票 and its history, the CS's, the prefecture's and national's 本人確認情報, the card
system's 送付先情報, atena's 宛名 (庁内連携) and the 中間サーバ's 副本 (情報提供), a 住民票の写し issued at the counter,
and the migration layout's files (the codec round trip of kizon's history: a full export needs a frozen site, which
the shared network cannot be).

At the CS, the prefecture and national the 外字数 items are what their items hold (nodes/records.py); the 送付先情報's
代替文字 items are those substitute() gives. A CS update sent as kizon sends it, stating a wrong 外字数 or 外字フラグ, is
refused (GAIJI_ITEMS) and writes nothing.
"""
from __future__ import annotations

import html
import random
import re
import uuid
from types import SimpleNamespace

import grpc
import pytest
from helpers import TODAY, address, eventually, key, person, poll, refused

from nodes import characters as C
from nodes.offices import office_of
from nodes.records import IDENTITY_GAIJI, delivery_info, identity_character_errors
from protos import (
    atena_pb2,
    atena_pb2_grpc,
    card_pb2_grpc,
    cs_pb2_grpc,
    identity_pb2,
    intermediate_pb2,
    intermediate_pb2_grpc,
    kizon_pb2,
    migration_pb2,
    national_pb2,
    national_pb2_grpc,
    prefecture_pb2_grpc,
    records_pb2,
)
from testbed import requests
from testbed.client import channel, named_cert, node_cert
from testbed.migration import layout

A = "142140"  # 伊勢原市
IVS = "葛\U000E0100"  # 葛 + U+E0100: one character
PUA = "\ue000"  # a vendor 外字 nobody identified
JIMU = "19-8-2-53"  # a 事務 whose items hold the name, the 旧氏, the 世帯主 and the address
TEXTS = ("name_kanji", "address", "former_surname_kanji")  # the text items of 本人確認情報 that the samples reach
Code = grpc.StatusCode

# Who is registered: what the counter types (person, 方書) and how (国外転入, or 出生 into the first one's household).
HEAD = (person("髙﨑 德子", "タカサキ トクコ", "1980-02-03", "2", former_surname_kanji="𠮷田𩸽",
               former_surname_kana="ヨシダホッケ"), f"{IVS}荘{PUA}号 𩸽棟")
CHILD = person("髙﨑 𠮷𩸽", "タカサキ ヨシホ", TODAY, "1")  # (lives at HEAD's address)
OTHER = (person(f"{IVS}西 {PUA}濵", "カサイ ハマ", "1975-05-06", "1"), "髙德ハイツ 邊邉")


def test_the_residents_hold_every_sample():
    """Between them, the names, 旧氏 and 方書 typed hold every sample character and the private-use U+E000."""
    typed = "".join([HEAD[0].name_kanji, HEAD[0].former_surname_kanji, HEAD[1], CHILD.name_kanji, OTHER[0].name_kanji,
                     OTHER[1]])
    assert set(C.SAMPLES) | {PUA} <= set(C.characters(typed))


def differences(what: str, got: str, want: str) -> str:
    """A hop's text against what it should hold, code point by code point ('' when byte for byte the same)."""
    if got.encode("utf-8") == want.encode("utf-8"):
        return ""
    points = lambda text: " ".join(f"U+{ord(c):04X}" for c in text)  # noqa: E731
    return f"{what}: {got!r} [{points(got)}] is not {want!r} [{points(want)}]"


def same_texts(hop: str, got, want, items=TEXTS) -> None:
    """The text items of a message a hop holds are those of want, byte for byte."""
    wrong = [d for item in items if (d := differences(f"{hop} {item}", getattr(got, item), getattr(want, item)))]
    assert not wrong, "\n".join(wrong)


# -- fixtures -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def residents(network, clerk):
    """The three residents as kizon answered their 届出: SimpleNamespace(head, child, other), each a 住民票."""
    def from_abroad(who, katagaki):
        line = f"{random.randint(1, 2000)}番地"
        return clerk(clerk.kizon.MoveIn, requests.move_in_from_abroad(who, address(A, line, katagaki),
                                                                      today=TODAY)).records[0]
    head = from_abroad(*HEAD)
    child = clerk(clerk.kizon.Birth, kizon_pb2.BirthRequest(household_number=head.household_number, child=CHILD,
                                                           notification_date=TODAY)).records[0]
    other = from_abroad(*OTHER)
    return SimpleNamespace(head=head, child=child, other=other)


@pytest.fixture(scope="module")
def everyone(residents):
    """The three 住民票, with what was typed for each: [(label, 住民票, person typed, 方書 typed)]."""
    return [("国外転入", residents.head, HEAD[0], HEAD[1]), ("出生", residents.child, CHILD, HEAD[1]),
            ("国外転入 (other)", residents.other, OTHER[0], OTHER[1])]


@pytest.fixture(scope="module")
def held(network, clerk, everyone):
    """The 住民票 as kizon holds each now (read back at the counter), by 住民票コード."""
    return {r.resident_code: clerk(clerk.kizon.GetResident, key(r.resident_code)) for _, r, _, _ in everyone}


@pytest.fixture(scope="module")
def national(network):
    """National, called as 伊勢原市's CS."""
    with channel(network.topology.find("national"), node_cert(network.pki, f"cs-{A}")) as ch:
        yield national_pb2_grpc.NationalServerStub(ch)


def caught_up(stub, code: str, sequence: int, what: str) -> records_pb2.IdentityInfo:
    """A node's 本人確認情報 of a person once it has the CS's update numbered sequence."""
    def look():
        try:
            info = stub.GetIdentity(key(code), timeout=10)
        except grpc.RpcError as exc:
            if exc.code() != Code.NOT_FOUND:
                raise
            return None
        return info if info.update_sequence >= sequence else None
    return poll(look, timeout=30, what=f"{what} to hold {code} at 更新順番号 {sequence}")


# -- kizon ----------------------------------------------------------------------------------------------------------
def test_kizon_keeps_what_the_counter_typed(clerk, everyone, held):
    """The 住民票 (as answered, as read back, and each history entry) holds the name, 旧氏 and 方書 as typed."""
    for label, answered, typed, katagaki in everyone:
        record = held[answered.resident_code]
        for hop, got in ((f"kizon's answer ({label})", answered), (f"kizon's 住民票 ({label})", record),
                         *((f"kizon's history {e.history_number} ({label})", e)
                           for e in clerk(clerk.kizon.GetHistory, key(answered.resident_code)).entries)):
            same_texts(hop, got, typed, ("name_kanji", "former_surname_kanji"))
            assert not differences(f"{hop} katagaki", got.katagaki, katagaki)
            assert got.address.endswith(f" {katagaki}"), differences(f"{hop} address", got.address, katagaki)
        assert record.address == answered.address
    assert held[everyone[1][1].resident_code].householder_name == HEAD[0].name_kanji  # (the 出生 took the 世帯主's)


# -- CS, prefecture, national -----------------------------------------------------------------------------------------
def gaiji_items_hold(hop: str, info: records_pb2.IdentityInfo) -> None:
    """The 外字数 and 外字フラグ of 本人確認情報 are what its items hold."""
    for text, count in IDENTITY_GAIJI:
        assert getattr(info, count) == C.gaiji_count(getattr(info, text)), f"{hop}: {count} of {getattr(info, text)!r}"
    assert not identity_character_errors(info), f"{hop}: {identity_character_errors(info)}"


def test_cs_prefecture_and_national_keep_them_with_their_gaiji_counts(network, clerk, national, everyone, held):
    """本人確認情報 at the CS, the prefecture and national: the name, address and 旧氏 of the 住民票 byte for byte, each
    外字数 the 外字 of its item, the 外字フラグ set."""
    with channel(network.topology.find("prefecture"), node_cert(network.pki, f"cs-{A}")) as ch:
        prefecture = prefecture_pb2_grpc.PrefectureServerStub(ch)
        for label, answered, _, _ in everyone:
            code, record = answered.resident_code, held[answered.resident_code]
            at_cs = clerk(clerk.cs.GetIdentity, key(code))
            hops = [("CS", at_cs), ("prefecture", caught_up(prefecture, code, at_cs.update_sequence, "the prefecture")),
                    ("national", caught_up(national, code, at_cs.update_sequence, "national"))]
            for hop, info in hops:
                same_texts(f"{hop}'s 本人確認情報 ({label})", info, record)
                gaiji_items_hold(f"{hop} ({label})", info)
                assert info.gaiji_flag and info.name_gaiji_count >= 2 and info.address_gaiji_count >= 2
                assert info == at_cs, f"{hop} ({label}) holds other items than the CS"
    assert (at_cs.name_gaiji_count, at_cs.address_gaiji_count) == (3, 2)  # (葛+IVS, U+E000 and 濵; 髙 and 德, not 邊邉)
    head = clerk(clerk.cs.GetIdentity, key(everyone[0][1].resident_code))
    assert (head.name_gaiji_count, head.address_gaiji_count, head.former_surname_gaiji_count) == (3, 3, 2)


@pytest.mark.parametrize("nationwide", [False, True], ids=["CS's search", "national's search"])
def test_a_search_by_the_name_finds_them_as_they_are(clerk, everyone, held, nationwide):
    """本人確認情報検索 by the 漢字氏名 as typed (外字 and all) with the 生年月日: the CS's search process (its own index), or
    national's, finds the person, and answers the items byte for byte."""
    for label, answered, typed, _ in everyone:
        record = held[answered.resident_code]
        search = identity_pb2.IdentitySearch(name_kanji=typed.name_kanji, birth_date=typed.birth_date,
                                             nationwide=nationwide)
        found = poll(lambda: [m for m in clerk(clerk.cs.SearchIdentity, search).matches
                              if m.resident_code == record.resident_code], timeout=30,
                     what=f"a search by {typed.name_kanji!r} to find {label}")
        same_texts(f"search ({'nationwide' if nationwide else 'CS'}, {label})", found[0], record)
        gaiji_items_hold(f"search ({label})", found[0])


# -- the card system --------------------------------------------------------------------------------------------------
def test_the_card_system_gets_the_delivery_info_as_defined(network, everyone, held):
    """送付先情報 at the card system (once the CS has sent it): name and address byte for byte, every one of the 67 items
    what kizon's 住基GW makes of the 住民票 by definition, the 代替文字 items those substitute() gives."""
    office = office_of(network.topology, A)
    with channel(network.topology.find("card"), node_cert(network.pki, f"cs-{A}")) as ch:
        card = card_pb2_grpc.CardManagementStub(ch)
        for label, answered, _, _ in everyone:
            record = held[answered.resident_code]
            got = eventually(lambda: card.GetDeliveryInfo(key(answered.resident_code), timeout=5), timeout=30).delivery
            hop = f"card system's 送付先情報 ({label})"
            same_texts(hop, got, record, ("name_kanji", "address"))
            assert not differences(f"{hop} delivery_name_kanji", got.delivery_name_kanji, record.name_kanji)
            assert not differences(f"{hop} delivery_address_kanji", got.delivery_address_kanji, record.address)
            want = delivery_info(record, office, operator="OP0001", terminal="T0001",
                                 processing_date=got.processing_date, control_number=got.delivery_control_number)
            wrong = [f.name for f in want.DESCRIPTOR.fields if getattr(got, f.name) != getattr(want, f.name)]
            assert not wrong, f"{hop}: " + ", ".join(f"{n} {getattr(got, n)!r} (by definition {getattr(want, n)!r})"
                                                     for n in wrong)
            assert re.fullmatch(rf"{A}\d{{14}}", got.delivery_control_number) and got.processing_date == TODAY
            for text, sub in ((got.name_kanji, "substitute_name"), (got.address, "substitute_address")):
                replaced = C.substitute(text)
                assert (getattr(got, sub), getattr(got, f"{sub}_positions")) == (replaced.text, replaced.positions_text)
                assert getattr(got, f"{sub}_length") == len(C.characters(replaced.text))
                getattr(got, sub).encode("euc_jis_2004")
            assert got.gaiji_flag and got.name_kanji_gaiji_count == C.gaiji_count(record.name_kanji)
            assert got.address_gaiji_count == C.gaiji_count(record.address)
            assert got.gaiji_pattern == C.pattern(record.name_kanji, record.address)
        # (the last: U+E000 in the name has no 代替文字; 髙 in the address has one, 德 is JIS X 0213)
        assert (got.substitute_conversion_result, got.gaiji_pattern) == ("2", "32")


# -- atena and the 中間サーバ --------------------------------------------------------------------------------------------
def test_atena_and_the_intermediate_server_keep_them(network, everyone, held):
    """The 宛名 an office system reads from atena (庁内連携) and the 副本 the 中間サーバ provides (情報提供): the name,
    address, 旧氏 and 世帯主 of the 住民票 byte for byte."""
    atena = network.topology.find("atena", A)
    with channel(atena, named_cert(network.pki, f"office-{A}-tax")) as office_ch, \
            channel(network.topology.find("national"), node_cert(network.pki, f"atena-{A}")) as fugo_ch, \
            channel(network.topology.find("intermediate"), named_cert(network.pki, "infonws")) as copy_ch:
        office = atena_pb2_grpc.OfficeLinkStub(office_ch)
        fugos = national_pb2_grpc.NationalServerStub(fugo_ch)
        copies = intermediate_pb2_grpc.IntermediateServerStub(copy_ch)
        for label, answered, _, _ in everyone:
            record = held[answered.resident_code]
            found = eventually(lambda: office.LookupResident(atena_pb2.OfficeQuery(atena_number=record.atena_number),
                                                             timeout=10), timeout=30)
            same_texts(f"atena's 宛名 ({label})", found, record, ("name_kanji", "address"))
            number = national_pb2.FugoRequest(individual_number=record.individual_number)
            fugo = fugos.IssueFugo(number, timeout=10).fugo
            provided = eventually(lambda: copies.ProvideInfo(intermediate_pb2.ProvisionRequest(
                tenant=A, fugo=fugo, inquiry_id=f"Q-{uuid.uuid4().hex[:12]}", jimu=JIMU), timeout=10),
                timeout=30).record
            same_texts(f"中間サーバ's 副本 ({label})", provided, record, (*TEXTS, "householder_name"))


# -- a certificate at the counter ----------------------------------------------------------------------------------
def printed(text: str) -> dict[str, list[str]]:
    """Label → every value printed under it in a certificate's text."""
    found: dict[str, list[str]] = {}
    for label, value in re.findall(r"^  ([^:]+): (.*)$", text, re.M):
        found.setdefault(label, []).append(value)
    return found


def test_a_certificate_prints_them(clerk, everyone, held):
    """住民票の写し (個人, and 世帯 for the household): the name and address printed byte for byte, in the text and the
    HTML page."""
    for label, answered, _, _ in everyone:
        record = held[answered.resident_code]
        cert = clerk(clerk.kizon.IssueCertificate, kizon_pb2.CertificateRequest(kind=kizon_pb2.RESIDENT_COPY,
                                                                               resident_code=record.resident_code))
        items = printed(cert.text)
        for item, value in (("氏名", record.name_kanji), ("住所", record.address)):
            assert len(items[item]) == 1, items
            assert not differences(f"住民票の写し {item} ({label})", items[item][0], value)
            assert html.escape(value) in cert.html, f"住民票の写し's HTML ({label}) lacks {value!r}"
    head, child = held[everyone[0][1].resident_code], held[everyone[1][1].resident_code]
    cert = clerk(clerk.kizon.IssueCertificate, kizon_pb2.CertificateRequest(kind=kizon_pb2.HOUSEHOLD_COPY,
                                                                           resident_code=head.resident_code))
    assert sorted(printed(cert.text)["氏名"]) == sorted([head.name_kanji, child.name_kanji])
    assert printed(cert.text)["住所"] == [head.address] * 2


# -- the migration layout ------------------------------------------------------------------------------------------
def test_the_migration_layout_carries_them(clerk, everyone, held, tmp_path):
    """kizon's history entries and 宛名 rows written to the layout's files (UTF-8) and read back: the same records; the
    file holds each name and address as its UTF-8 bytes; the household row names the 世帯主 and the address."""
    entries = [e for _, answered, _, _ in everyone
               for e in clerk(clerk.kizon.GetHistory, key(answered.resident_code)).entries]
    items = [("kizon", migration_pb2.MigrationItem(history=e)) for e in entries]
    items += [("atena", migration_pb2.MigrationItem(atena=migration_pb2.AtenaRow(
        unified_atena_number=f"{n:015d}", atena_number=r.atena_number, fugo="F" * 24, record=r)))
        for n, r in enumerate(held.values(), start=1)]
    for name in ("history.csv", "atena.csv", "households.csv"):
        layout.write_file(tmp_path, layout.BY_NAME[name], layout.rows_of(items, layout.BY_NAME[name]))
    data = (tmp_path / "history.csv").read_bytes()
    for record in held.values():
        for text in (record.name_kanji, record.address, record.katagaki):
            assert text.encode("utf-8") in data, f"history.csv lacks the bytes of {text!r}"
    spec = layout.BY_NAME["history.csv"]
    codec = layout.Codec.of(spec, records_pb2.ResidentRecord)
    back = [records_pb2.ResidentRecord(**codec.values(row)) for _, row in layout.read_rows(tmp_path, spec)]
    assert len(back) == len(entries)
    for got, want in zip(back, entries):
        same_texts(f"history.csv {want.resident_code}", got, want, (*TEXTS, "katagaki", "householder_name"))
        assert got == want, f"history.csv does not give {want.resident_code} back"
    spec = layout.BY_NAME["atena.csv"]
    codec = layout.Codec.of(spec, records_pb2.ResidentRecord, "record_")
    back = [records_pb2.ResidentRecord(**codec.values(row)) for _, row in layout.read_rows(tmp_path, spec)]
    assert back == list(held.values())
    head = held[everyone[0][1].resident_code]
    rows = {row["household_number"]: row for _, row in layout.read_rows(tmp_path, layout.BY_NAME["households.csv"])}
    assert (rows[head.household_number]["householder_name"], rows[head.household_number]["address"]) == (
        head.name_kanji, head.address)


# -- a wrong 外字数 sent to the CS ------------------------------------------------------------------------------------
def restated(info: records_pb2.IdentityInfo, **items) -> records_pb2.IdentityInfo:
    """The 本人確認情報 as a 職権修正 would send it, with items stated otherwise."""
    wrong = records_pb2.IdentityInfo()
    wrong.CopyFrom(info)
    for name, value in items.items():
        setattr(wrong, name, value(info) if callable(value) else value)
    wrong.change_reason, wrong.change_date, wrong.request_control_number = "職権修正", TODAY, uuid.uuid4().hex
    return wrong


WRONG = {  # what kizon (or someone with its certificate) states: the items named in the refusal
    "one 外字 more in the name": ({"name_gaiji_count": lambda i: i.name_gaiji_count + 1}, "name_gaiji_count"),
    "no 外字 in the address": ({"address_gaiji_count": 0}, "address_gaiji_count"),
    "the 旧氏 counted by code points": ({"former_surname_gaiji_count": lambda i: len(i.former_surname_kanji)},
                                      "former_surname_gaiji_count"),
    "a new name with the old count": ({"name_kanji": "髙﨑 𠮷𠮷德子"}, "name_gaiji_count"),
    "an IVS counted as two": ({"address": lambda i: i.address + IVS,
                               "address_gaiji_count": lambda i: i.address_gaiji_count + 2}, "address_gaiji_count"),
    "no 外字フラグ": ({"gaiji_flag": False}, "gaiji_flag"),
}


@pytest.mark.parametrize("case", list(WRONG))
def test_a_wrong_gaiji_count_from_kizon_is_refused(network, national, residents, case):
    """SubmitIdentityUpdates as kizon, stating a 外字数 or 外字フラグ its items do not hold: refused under GAIJI_ITEMS
    (INVALID_ARGUMENT) naming the item; the CS's 本人確認情報 and national's stay as they were."""
    code = residents.head.resident_code
    items, named = WRONG[case]
    with channel(network.topology.find("cs", A), node_cert(network.pki, f"kizon-{A}")) as ch:
        cs = cs_pb2_grpc.CommunicationServerStub(ch)
        before = cs.GetIdentity(key(code), timeout=10)
        at_national = caught_up(national, code, before.update_sequence, "national")
        batch = identity_pb2.IdentityUpdateBatch(municipality_code=A, updates=[
            identity_pb2.IdentityUpdate(municipality_code=A, info=restated(before, **items))])
        with refused(Code.INVALID_ARGUMENT, "外字数 rule", named, reason="GAIJI_ITEMS"):
            cs.SubmitIdentityUpdates(batch, timeout=10)
        assert cs.GetIdentity(key(code), timeout=10) == before
    assert national.GetIdentity(key(code), timeout=10) == at_national


def test_a_move_within_changes_the_gaiji_flag_with_the_address(network, clerk, national):
    """A 転居 from a 方書 holding a 外字 to one holding none (and back) of a person whose other items hold none: the
    CS takes it (its 外字フラグ follows the address: an item the 転居 changes) and keeps the flag and count the
    address gives, as national does."""
    who = clerk(clerk.kizon.MoveIn, requests.move_in_from_abroad(
        person("転居 外字", "テンキョ ガイジ", "1981-03-04", "1"), address(A, f"{random.randint(1, 2000)}番地", "髙荘"),
        today=TODAY)).records[0]
    with channel(network.topology.find("cs", A), node_cert(network.pki, f"kizon-{A}")) as ch:
        cs = cs_pb2_grpc.CommunicationServerStub(ch)
        for katagaki, flag in (("高荘", False), ("髙荘", True)):
            moved = clerk(clerk.kizon.MoveWithin, requests.move_within(
                who.resident_code, address(A, f"{random.randint(1, 2000)}番地", katagaki), today=TODAY))
            sequence = moved.update_sequence
            info = caught_up(cs, who.resident_code, sequence, "the CS")
            assert (info.gaiji_flag, info.address_gaiji_count) == (flag, int(flag)), katagaki
            assert not identity_character_errors(caught_up(national, who.resident_code, sequence, "national"))
