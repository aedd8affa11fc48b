"""裁判員候補者名簿 (seed system 3 function 3; docs/jury.md): the 名簿調製プログラム asks a municipality's kizon for the
year's list over the 住基GW, and gets people drawn by lot from the eligible electors only, once a year.

On a network of its own (a test kills kizon): 伊勢原市 holds 400 eligible electors beside one of each kind who is not
(under 18, a foreign resident, resident for less than three months, no 選挙 flag, a 除票), all flagged as electors
but the one without the flag, so that the office's own measures are what keep them out; its list is drawn once, for
two people (one in 200). 秦野市 holds three and is never drawn: its refusals stand for a year not yet drawn.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
from contextlib import closing
from types import SimpleNamespace

import grpc
import pytest
from conftest import make_network
from helpers import eventually, kill, poll, refused

from certs.identity import office_uri, parse
from nodes.clock import office_today
from nodes.kizon import jury
from nodes.reasons import access as A, gateway as G
from nodes.refusal import Violation
from protos import gateway_pb2, gateway_pb2_grpc, records_pb2
from scenarios.population import Generator
from testbed import requests
from testbed.client import Counter, channel, named_cert, terminal_cert
from testbed.jury import draw_jury_list
from testbed.load import load_records, place_name

A_CODE, B_CODE = "142140", "142115"  # 伊勢原市 (drawn), 秦野市 (never drawn)
ELECTORS = 400  # eligible in 伊勢原市 when its list is drawn: one in 200 → a list of two
Code = grpc.StatusCode
TODAY = office_today()
NEXT_YEAR = TODAY.year + 1  # always open (docs/jury.md)
REFERENCE = "横浜地方裁判所小田原支部 割当通知 第12号"


def _years_ago(years: int, days: int = 0) -> str:
    """A date this many years (and days) before the office's today, as an ISO date."""
    try:
        day = TODAY.replace(year=TODAY.year - years)
    except ValueError:  # (29 February)
        day = TODAY.replace(year=TODAY.year - years, day=28)
    return (day - dt.timedelta(days=days)).isoformat()


def _as(record, *, born: str, since: str, elector: bool = True, name: tuple[str, str] | None = None):
    """A copy of a generated record, born and resident here since these dates, with this 選挙 flag."""
    copy = records_pb2.ResidentRecord()
    copy.CopyFrom(record)
    copy.birth_date, copy.elector = born, elector
    copy.resident_since = copy.address_since = copy.change_date = copy.notification_date = since
    copy.change_reason = "出生" if since == born else "転入"
    if name:
        copy.name_kanji, copy.name_kana = name
    return copy


def _entry(record) -> tuple:
    """What a list gives of a person."""
    return record.name_kanji, record.name_kana, record.birth_date, record.sex, record.address


def populate(network, municipality: str, electors: int, seed: int, *, others: bool = False) -> dict:
    """Load electors eligible residents and, with others, one of each kind who is not (all but one flagged as
    electors); the records loaded, by kind."""
    place = place_name(network.topology, municipality)
    generated = list(Generator(municipality, place, seed).residents(electors + 200))
    japanese = iter(r for r in generated if r.resident_type == "日本人")
    adult, settled = _years_ago(40), _years_ago(5)
    kinds = {"eligible": [_as(next(japanese), born=adult, since=settled) for _ in range(electors)]}
    if others:
        foreign = next(r for r in generated if r.resident_type == "外国人住民")
        kinds.update({
            "under 18": [_as(next(japanese), born=_years_ago(17), since=_years_ago(17),
                             name=("未成年 花子", "ミセイネン ハナコ"))],
            "foreign": [_as(foreign, born=adult, since=settled)],
            "newcomer": [_as(next(japanese), born=adult, since=_years_ago(0, 60),
                             name=("転入 直後", "テンニュウ チョクゴ"))],
            "no flag": [_as(next(japanese), born=adult, since=settled, elector=False,
                            name=("選挙権 無", "センキョケン ナシ"))],
            "removed": [_as(next(japanese), born=adult, since=settled, name=("死亡 済", "シボウ スミ"))],
        })
    asyncio.run(load_records(network, municipality, [r for rs in kinds.values() for r in rs], show_progress=False))
    if others:
        with Counter(network, municipality) as clerk:  # 死亡届: an elector becomes a 除票
            clerk(clerk.kizon.Death, requests.death(kinds["removed"][0].resident_code))
    return kinds


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """The network of this module (a test kills its kizon), up for the module."""
    network = make_network(tmp_path_factory.mktemp("jury"))
    try:
        network.up()
        yield network
    finally:
        network.down()


@pytest.fixture(scope="module")
def kinds(net) -> dict:
    """Both municipalities' electors loaded: 伊勢原市's records by kind."""
    loaded = populate(net, A_CODE, ELECTORS, seed=31, others=True)
    populate(net, B_CODE, 3, seed=32)
    return loaded


@pytest.fixture(scope="module")
def drawn(net, kinds) -> gateway_pb2.JuryList:
    """伊勢原市's list for next year, drawn once for this module: two people."""
    return draw_jury_list(net, A_CODE, NEXT_YEAR, 2, REFERENCE)


# -- the rule, measured by the office's clock (no network) ----------------------------------------------------------
def _record(born: str, since: str, **items) -> records_pb2.ResidentRecord:
    """A 住民票 that is eligible but for what items say otherwise."""
    fields = {"status": records_pb2.ResidentRecord.STATUS_CURRENT, "elector": True, "resident_type": "日本人",
              "birth_date": born, "resident_since": since, "address_since": since, **items}
    return records_pb2.ResidentRecord(**fields)


def test_an_elector_is_of_age_the_day_before_the_eighteenth_birthday():
    """年齢計算ニ関スル法律: a person whose 18th birthday is tomorrow is 18 today; one whose birthday is the day after is
    not; a 29 February child is 18 on the 28th of a common year."""
    today = dt.date(2026, 12, 3)
    assert jury.eligible(_record("2008-12-04", "2010-01-01"), today)
    assert not jury.eligible(_record("2008-12-05", "2010-01-01"), today)
    assert jury.eligible(_record("2008-02-29", "2010-01-01"), dt.date(2026, 2, 28))
    assert not jury.eligible(_record("2008-02-29", "2010-01-01"), dt.date(2026, 2, 27))


def test_an_elector_has_been_resident_three_months():
    """公職選挙法第21条: three months from resident_since (a later 転居, address_since, does not restart them);
    month ends shorter than the day count as the month's last day."""
    assert jury.eligible(_record("1980-01-01", "2026-09-03"), dt.date(2026, 12, 3))
    assert not jury.eligible(_record("1980-01-01", "2026-09-04"), dt.date(2026, 12, 3))
    moved = _record("1980-01-01", "2020-01-01")
    moved.address_since = "2026-12-01"
    assert jury.eligible(moved, dt.date(2026, 12, 3))
    assert jury.eligible(_record("1980-01-01", "2026-02-28"), dt.date(2026, 5, 31))
    assert not jury.eligible(_record("1980-01-01", "2026-03-01"), dt.date(2026, 5, 31))


def test_no_flag_no_vote_no_date_no_draw():
    """The 選挙人名簿 flag, a foreign resident, a 除票 and a record without its dates each keep a person off the list."""
    today = dt.date(2026, 12, 3)
    assert jury.eligible(_record("1980-01-01", "2000-01-01"), today)
    assert not jury.eligible(_record("1980-01-01", "2000-01-01", elector=False), today)
    assert not jury.eligible(_record("1980-01-01", "2000-01-01", resident_type="外国人住民"), today)
    removed = records_pb2.ResidentRecord.STATUS_REMOVED
    assert not jury.eligible(_record("1980-01-01", "2000-01-01", status=removed), today)
    assert not jury.eligible(_record("", "2000-01-01"), today) and not jury.eligible(_record("1980-01-01", ""), today)
    assert not jury.eligible(_record("1980-13-01", "2000-01-01"), today)


def test_the_limit_and_the_years_open():
    """One in 200 eligible, rounded up; next year always, the current one until the end of March."""
    assert [jury.allotment_limit(n) for n in (0, 1, 200, 201, 400, 401)] == [0, 1, 1, 2, 2, 3]
    assert jury.years_open(dt.date(2026, 3, 31)) == (2026, 2027)
    assert jury.years_open(dt.date(2026, 4, 1)) == (2027,)
    assert str(jury.ELECTORS_PER_CANDIDATE) in G.JURY_LIST_ALLOTMENT_LIMIT.summary


def test_the_list_has_no_place_for_numbers_or_the_honseki():
    """A candidate is 氏名, かな, 生年月日, 性別 and 住所: no 住民票コード, 個人番号 or 本籍 can travel in a list."""
    assert set(gateway_pb2.JuryCandidate.DESCRIPTOR.fields_by_name) == {"name_kanji", "name_kana", "birth_date", "sex",
                                                                       "address"}


@pytest.mark.parametrize("uri", [f"spiffe://testbed.jp/lg/{B_CODE}/office/jury",
                                 f"spiffe://testbed.jp/lg/{A_CODE}/office/election",
                                 f"spiffe://testbed.jp/lg/{A_CODE}/terminal/T0001"])
def test_any_caller_but_the_municipalitys_jury_program_is_refused_before_anything_is_read(monkeypatch, uri):
    """Defence in depth behind the policy: kizon itself gives the list to its own 名簿調製プログラム alone, and refuses
    anyone else before the store or the register is read."""
    class Untouchable:
        def __getattr__(self, name):
            raise AssertionError(f"{name} was read")

    part = jury.Jury.__new__(jury.Jury)  # (no runtime: nothing of it may be touched)
    part.rt, part.municipality, part.register, part.gate = Untouchable(), A_CODE, Untouchable(), Untouchable()
    monkeypatch.setattr(jury, "current_call", lambda: SimpleNamespace(peer=SimpleNamespace(identity=parse(uri))))
    request = gateway_pb2.JuryListRequest(year=NEXT_YEAR, count=1, allotment_reference=REFERENCE)
    with pytest.raises(Violation) as caught:
        asyncio.run(part.draw(request))
    assert caught.value.rule is G.JURY_LIST_CALLER, caught.value


# -- the list ---------------------------------------------------------------------------------------------------------
def test_the_list_names_eligible_electors_only(kinds, drawn):
    """Two distinct people, each one of the eligible; the count of eligible is exactly those loaded eligible (so the
    under-18, the foreign resident, the newcomer, the unflagged and the 除票 were each left out); no 住民票コード or
    本籍 of anyone is in the answer."""
    eligible = {_entry(r) for r in kinds["eligible"]}
    others = {_entry(r) for kind, rs in kinds.items() if kind != "eligible" for r in rs}
    assert not eligible & others  # (the test's own population tells the kinds apart)
    assert drawn.year == NEXT_YEAR and drawn.eligible == ELECTORS and drawn.list_id and drawn.drawn_at
    named = [_entry(c) for c in drawn.candidates]
    assert len(named) == 2 and len(set(named)) == 2 and set(named) <= eligible
    wire = drawn.SerializeToString()
    everyone = [r for rs in kinds.values() for r in rs]
    assert not [r.resident_code for r in everyone if r.resident_code.encode() in wire]
    # (a 本籍 is written like an address of the same 町字: one that is a candidate's own address is not a leak)
    addresses = {c.address for c in drawn.candidates}
    assert not [r.honseki for r in everyone if r.honseki and r.honseki.encode() in wire and r.honseki not in addresses]


def test_the_output_is_audited_and_counted_with_the_list(net, drawn):
    """kizon's audit entry of the draw names the list, its year and its size; its bulk-output account holds the two
    people, under the 名簿調製プログラム's name."""
    log = net.audit_file(f"kizon-{A_CODE}")

    def entries():
        found = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        return [e for e in found
                if e["method"].endswith("/DrawJuryCandidates") and drawn.list_id in e.get("subject", "")]
    entry = poll(entries, what="the draw's audit entry")[0]
    assert entry["subject"] == f"裁判員候補者名簿 {NEXT_YEAR} 2 {drawn.list_id}" and entry["status"] == "OK"
    store = net.state_dir / "data" / f"kizon-{A_CODE}" / "store.sqlite"
    with closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)) as db:
        outputs = db.execute("SELECT records FROM outputs WHERE operator=?", (office_uri(A_CODE, "jury"),)).fetchall()
    assert outputs == [(2,)]


def test_the_same_request_answers_the_same_list(net, drawn):
    """Asked again (an answer lost on the way), the same request gets the same list: the same people, id and time."""
    assert draw_jury_list(net, A_CODE, NEXT_YEAR, 2, REFERENCE) == drawn


@pytest.mark.parametrize("count, reference", [(1, REFERENCE), (2, "横浜地方裁判所 割当通知 第13号")])
def test_another_request_for_a_drawn_year_is_refused(net, drawn, count, reference):
    """The year's list is drawn once: another count or another notice is refused, naming the list drawn."""
    with refused(Code.FAILED_PRECONDITION, drawn.list_id, reason=G.JURY_LIST_ONCE_A_YEAR.reason):
        draw_jury_list(net, A_CODE, NEXT_YEAR, count, reference)


# -- refusals of a year not drawn (秦野市) ----------------------------------------------------------------------------
def _closed_years() -> list[int]:
    """Years no list may be drawn for today: last year, this one after March, the year after next, year 0."""
    return [TODAY.year - 1, TODAY.year + 2, 0] + ([TODAY.year] if TODAY.month > 3 else [])


@pytest.mark.usefixtures("kinds")
@pytest.mark.parametrize("year", _closed_years())
def test_a_year_out_of_range_is_refused(net, year):
    """Only the office's next year (or this one until March) is drawn, by the office's clock."""
    with refused(Code.FAILED_PRECONDITION, str(NEXT_YEAR), reason=G.JURY_LIST_YEAR.reason):
        draw_jury_list(net, B_CODE, year, 1, REFERENCE)


@pytest.mark.usefixtures("kinds")
def test_a_list_of_no_one_is_refused(net):
    """count 0 is no list."""
    with refused(Code.INVALID_ARGUMENT, reason=G.JURY_LIST_COUNT.reason):
        draw_jury_list(net, B_CODE, NEXT_YEAR, 0, REFERENCE)


@pytest.mark.usefixtures("kinds")
@pytest.mark.parametrize("count", [2, 4_000_000_000])
def test_a_count_over_the_limit_is_refused(net, count):
    """Three eligible in 秦野市: a list of one at most (one in 200, rounded up); more is refused, naming the limit."""
    with refused(Code.FAILED_PRECONDITION, "3 electors", reason=G.JURY_LIST_ALLOTMENT_LIMIT.reason):
        draw_jury_list(net, B_CODE, NEXT_YEAR, count, REFERENCE)


@pytest.mark.usefixtures("kinds")
@pytest.mark.parametrize("reference", ["", "   "])
def test_a_draw_without_the_allotment_notice_is_refused(net, reference):
    """The court's notice of the allotment is named, not blank."""
    with refused(Code.INVALID_ARGUMENT, "allotment_reference", reason=G.JURY_LIST_ALLOTMENT.reason):
        draw_jury_list(net, B_CODE, NEXT_YEAR, 1, reference)


# -- who may ask -----------------------------------------------------------------------------------------------------
def test_a_terminal_is_refused_even_with_a_session(net, drawn):
    """A counter terminal with an operator logged in never reaches the 住基GW: even the drawn list's own request is
    refused."""
    with Counter(net, A_CODE) as clerk:
        kizon = net.topology.find("kizon", A_CODE)
        with channel(kizon, terminal_cert(net.pki, A_CODE, "T0001")) as ch:
            with refused(Code.PERMISSION_DENIED, reason=A.DEFAULT_DENY.reason):
                gateway_pb2_grpc.KizonGatewayStub(ch).DrawJuryCandidates(
                    gateway_pb2.JuryListRequest(year=NEXT_YEAR, count=2, allotment_reference=REFERENCE),
                    metadata=clerk.metadata, timeout=10)


@pytest.mark.parametrize("holder, rule", [
    (f"office-{A_CODE}-tax", A.DEFAULT_DENY),  # 税務 of the same municipality
    (f"office-{A_CODE}-election", A.DEFAULT_DENY),  # 選挙 keeps the 選挙人名簿, not this list
    (f"office-{B_CODE}-jury", A.SCOPE),  # 秦野市's 名簿調製プログラム on 伊勢原市's kizon
])
def test_other_office_systems_are_refused_by_the_policy(net, drawn, holder, rule):
    """Only the 名簿調製プログラム of the municipality asks; the others are refused before their request is read."""
    with refused(Code.PERMISSION_DENIED, reason=rule.reason):
        draw_jury_list(net, A_CODE, NEXT_YEAR, 2, REFERENCE, cert=named_cert(net.pki, holder))


# -- crash safety ------------------------------------------------------------------------------------------------------
def test_the_list_survives_kill_9_right_after_the_draw(fresh_network):
    """kizon is killed the moment it has answered the draw: restarted, it answers the same request with the same list
    (it was written down before it was answered) and still refuses another one for the year."""
    fresh_network.up()
    populate(fresh_network, A_CODE, 3, seed=33)
    first = draw_jury_list(fresh_network, A_CODE, NEXT_YEAR, 1, REFERENCE)
    kill(fresh_network, f"kizon-{A_CODE}")
    fresh_network.up()  # restarts only the killed node
    again = eventually(lambda: draw_jury_list(fresh_network, A_CODE, NEXT_YEAR, 1, REFERENCE), timeout=30,
                       codes=(Code.UNAVAILABLE,))
    assert again == first and first.eligible == 3 and len(first.candidates) == 1
    with refused(Code.FAILED_PRECONDITION, first.list_id, reason=G.JURY_LIST_ONCE_A_YEAR.reason):
        draw_jury_list(fresh_network, A_CODE, NEXT_YEAR, 1, "横浜地方裁判所 割当通知 第14号")
