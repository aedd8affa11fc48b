"""The 中間サーバ's tenants end to end: every identity the PKI issued tries every tenant-sensitive call,
no data crosses tenants, every 情報提供 is recorded for the person's own 符号, staff log in to their
own municipality's tenant, and a birth travels from the counter to the 副本 and can be followed
through the audit logs.
"""
from __future__ import annotations

import datetime as dt
import re
import uuid
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest
from helpers import TODAY, eventually, issue_card, key, move_in_from_abroad, person, poll, refused

from certs.identity import OFFICE_SYSTEMS
from nodes import audit
from nodes.jimu import projection, table
from protos import (
    atena_pb2,
    atena_pb2_grpc,
    card_pb2_grpc,
    intermediate_pb2,
    intermediate_pb2_grpc,
    kizon_pb2,
    national_pb2,
    national_pb2_grpc,
    prefecture_pb2_grpc,
)
from testbed.cli import main
from testbed.client import (
    ClientCert,
    Counter,
    channel,
    named_cert,
    node_cert,
    terminal_cert,
)

A, B = "142140", "142115"  # 伊勢原市, 秦野市
ROOT = "spiffe://testbed.jp/"
ATENA = {m: f"{ROOT}lg/{m}/atena" for m in (A, B)}
INFONWS, PORTAL = f"{ROOT}platform/infonws", f"{ROOT}platform/portal"
Code = grpc.StatusCode
# How the intermediate answers each certificate of the bad kit, whatever is asked.
BAD_KIT = {"expired": Code.UNAVAILABLE, "not_yet_valid": Code.UNAVAILABLE, "rogue_ca": Code.UNAVAILABLE,
           "no_client_auth": Code.UNAVAILABLE, "revoked": Code.UNAUTHENTICATED, "wrong_domain": Code.UNAUTHENTICATED,
           "wrong_municipality": Code.PERMISSION_DENIED, "wrong_role": Code.PERMISSION_DENIED}


# -- helpers ------------------------------------------------------------------------------------


@contextmanager
def stub(network, node_kind: str, cert: ClientCert, stub_class, municipality: str | None = None):
    """A stub on a node, called with the given certificate."""
    with channel(network.topology.find(node_kind, municipality), cert) as ch:
        yield stub_class(ch)


def intermediate(network, cert: ClientCert):
    """A stub on the 中間サーバ."""
    return stub(network, "intermediate", cert, intermediate_pb2_grpc.IntermediateServerStub)


def fugo_of(network, municipality: str, individual_number: str) -> str:
    """The person's 符号, asked of national as the municipality's atena asks (the same person, the same 符号)."""
    with stub(network, "national", node_cert(network.pki, f"atena-{municipality}"),
              national_pb2_grpc.NationalServerStub) as national:
        return national.IssueFugo(national_pb2.FugoRequest(individual_number=individual_number), timeout=5).fugo


JIMU = "19-8-2-81"  # 児童手当法による児童手当の支給に関する事務 (its items include the 世帯 and 続柄)


def provide(network, tenant: str, fugo: str, inquiry: str | None = None) -> intermediate_pb2.ProvisionReply:
    """情報提供 as the 情報提供NWS asks for it (for the 児童手当 事務)."""
    with intermediate(network, named_cert(network.pki, "infonws")) as server:
        return server.ProvideInfo(intermediate_pb2.ProvisionRequest(
            tenant=tenant, fugo=fugo, inquiry_id=inquiry or f"Q-{uuid.uuid4().hex[:12]}", jimu=JIMU), timeout=5)


def provided_items(record):
    """What a 情報提供 for JIMU holds of a 住民票: that 事務's items and nothing else (no 個人番号, no 住民票コード)."""
    return projection(record, table()[JIMU])


PIN = "1234"


def provisions(network, card_number: str, tenant: str = "", fugo: str = "") -> list:
    """情報提供等記録 of a card holder, as マイナポータル reads them (card and PIN first)."""
    with intermediate(network, named_cert(network.pki, "portal")) as server:
        return list(server.ListProvisions(intermediate_pb2.ProvisionQuery(
            card_number=card_number, pin=PIN, tenant=tenant, fugo=fugo), timeout=10).records)


def full_record(network, municipality: str, code: str):
    """A person's 住民票 as kizon holds it (read at a terminal allowed to see the 個人番号)."""
    with Counter(network, municipality) as counter:
        return counter(counter.kizon.GetResident, key(code))


def without_number(record):
    """A 住民票 as its 副本 holds it: everything but the 個人番号 (符号 only, between institutions)."""
    copy = type(record)()
    copy.CopyFrom(record)
    copy.ClearField("individual_number")
    return copy


def resident_of(network, municipality: str, who):
    """A new resident (国外転入) whose 副本 is on the municipality's tenant: SimpleNamespace(record, fugo, unified)."""
    with Counter(network, municipality) as counter:
        record = move_in_from_abroad(counter, who)
    record = full_record(network, municipality, record.resident_code)
    fugo = fugo_of(network, municipality, record.individual_number)
    copy = eventually(lambda: provide(network, municipality, fugo, "T-setup")).record
    assert copy == provided_items(record) and not copy.individual_number
    # The 団体内統合宛名番号: atena answers it when kizon tells it of the person again (same entry, same 符号).
    with stub(network, "atena", node_cert(network.pki, f"kizon-{municipality}"), atena_pb2_grpc.AtenaStub,
              municipality) as atena:
        batch = atena_pb2.ResidentChangeBatch(items=[atena_pb2.ResidentChange(record=record)])
        reply = atena.NotifyResidentChanges(batch, timeout=10).replies[0]
    assert reply.fugo == fugo
    with Counter(network, municipality) as counter:  # a card, to read their own 情報提供等記録 at the portal
        card = issue_card(counter, record.resident_code, PIN)
    return SimpleNamespace(record=without_number(record), fugo=fugo, unified=reply.unified_atena_number,
                           card=card.card_number)


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def people(network):
    """A resident of each tenant, with 符号 and 団体内統合宛名番号."""
    return {A: resident_of(network, A, person("副本 一子", "フクホン イチコ", "1981-01-01", "2")),
            B: resident_of(network, B, person("副本 二郎", "フクホン ジロウ", "1982-02-02"))}


# -- every identity against every call ----------------------------------------------------------
def every_identity(pki) -> list[tuple[str, str, ClientCert, str | None]]:
    """(label, identity, certificate, bad-kit case) of every client certificate the PKI issued and the bad kit."""
    found = []
    for entry in pki.index():
        cert = ClientCert(pki.dir / entry["cert"], pki.dir / entry["key"], pki.trust_bundle)
        label = Path(entry["cert"]).parent.name
        if entry["role"] == "client" and entry["domain"] != "rogue":
            found.append((label, entry["identity"], cert, None))
        elif entry["role"].startswith("bad:"):
            found.append((f"bad/{label}", entry["identity"], cert, entry["role"].removeprefix("bad:")))
    return found


def expected(identity: str, case: str | None, call: str) -> grpc.StatusCode:
    """The one identity each call is for; everyone else is refused (the bad kit as it always is)."""
    if case is not None:
        return BAD_KIT[case]
    allowed = {"register": ATENA[B], "provide": INFONWS, "list": PORTAL}[call]
    return Code.OK if identity == allowed else Code.PERMISSION_DENIED


def test_tenant_isolation_for_every_identity(network, people):
    """Every client certificate and every bad-kit certificate tries to register a 副本 of 142115, 情報提供 of
    142140 and the 情報提供等記録: only atena-142115 registers, only infonws provides, only portal lists; everyone
    else is refused."""
    theirs, ours = people[B], people[A]
    calls = {
        "register": lambda s: s.RegisterCopies(intermediate_pb2.CopyBatch(items=[intermediate_pb2.CopyRegistration(
            unified_atena_number=theirs.unified, fugo=theirs.fugo, record=theirs.record)]), timeout=5),
        "provide": lambda s: s.ProvideInfo(intermediate_pb2.ProvisionRequest(tenant=A, fugo=ours.fugo,
                                                                              inquiry_id="T-matrix", jimu=JIMU), timeout=5),
        "list": lambda s: s.ListProvisions(intermediate_pb2.ProvisionQuery(card_number=ours.card, pin=PIN), timeout=10),
    }
    identities = every_identity(network.pki)
    terminals = sum(len(m.terminals) for m in network.topology.municipalities)
    offices = len(OFFICE_SYSTEMS) * len(network.topology.municipalities)
    # every node's client certificate, every terminal and office system, infonws, portal, 2 kiosks, the 入管 office,
    # 3 monitors, 3 consoles; the 8 kit cases
    assert len([i for i in identities if i[3] is None]) == len(network.topology.all_nodes) + terminals + offices + 2 + \
        2 + 1 + 3 + 3
    assert sorted(i[3] for i in identities if i[3]) == sorted(BAD_KIT)
    assert {ATENA[A], ATENA[B], INFONWS, PORTAL} <= {i[1] for i in identities if i[3] is None}
    wrong = []
    for label, identity, cert, case in identities:
        with intermediate(network, cert) as server:
            for name, call in calls.items():
                try:
                    call(server)
                    code, details = Code.OK, ""
                except grpc.RpcError as exc:
                    code, details = exc.code(), exc.details() or ""
                want = expected(identity, case, name)
                if code != want:
                    wrong.append(f"{label} {name}: {code.name} ({details}), expected {want.name}")
                elif identity == ATENA[A] and name == "register" and "tenant isolation" not in details:
                    wrong.append(f"{label} {name}: refused without naming tenant isolation ({details})")
    assert not wrong, "\n".join(wrong)
    assert provide(network, B, theirs.fugo).record == provided_items(theirs.record)  # the one write allowed changed nothing


def test_atena_writes_only_its_own_tenant(network, people):
    """atena of 142140 registering a 副本 of a 142115 resident is refused naming tenant isolation."""
    theirs = people[B]
    with intermediate(network, node_cert(network.pki, f"atena-{A}")) as server:
        with refused(Code.PERMISSION_DENIED, "tenant isolation", A, B, reason="TENANT_ISOLATION"):
            server.RegisterCopies(intermediate_pb2.CopyBatch(items=[intermediate_pb2.CopyRegistration(
                unified_atena_number=theirs.unified, fugo=theirs.fugo, record=theirs.record)]), timeout=5)
    with pytest.raises(grpc.RpcError) as caught:
        provide(network, A, theirs.fugo)
    assert caught.value.code() == Code.NOT_FOUND
    assert provide(network, B, theirs.fugo).record == provided_items(theirs.record)


def test_provision_never_crosses_tenants(network, people):
    """情報提供 of tenant 142140 by a 符号 that only 142115 holds finds nothing, and records nothing."""
    fugo = people[B].fugo
    with refused(Code.NOT_FOUND, "情報提供", A, reason="RECORD_NOT_FOUND"):
        provide(network, A, fugo)
    assert provide(network, B, fugo).record.name_kanji == people[B].record.name_kanji


def test_the_portal_shows_a_card_holder_only_their_own_records(network, people):
    """マイナポータル: the card and PIN decide whose 情報提供等記録 are read; asking for someone else's 符号 or
    another tenant is refused, and a wrong PIN reads nothing."""
    ours, theirs = people[A], people[B]
    with refused(Code.PERMISSION_DENIED, "portal rule", reason="PORTAL_OWN_RECORD"):
        provisions(network, theirs.card, fugo=ours.fugo)
    with refused(Code.PERMISSION_DENIED, "portal rule", reason="PORTAL_OWN_RECORD"):
        provisions(network, theirs.card, tenant=A)
    with intermediate(network, named_cert(network.pki, "portal")) as server:
        with refused(Code.UNAUTHENTICATED, "PIN rule", reason="PIN_WRONG"):
            server.ListProvisions(intermediate_pb2.ProvisionQuery(card_number=ours.card, pin="0000"), timeout=10)


def test_every_provision_is_recorded(network, people):
    """Each 情報提供 is in the 情報提供等記録 the person reads by their own 符号, with infonws as requester."""
    ours = people[A]
    inquiry = f"Q-{uuid.uuid4().hex[:12]}"
    before = dt.datetime.now(dt.timezone.utc)
    reply = provide(network, A, ours.fugo, inquiry)
    assert reply.record == provided_items(ours.record)
    kept = {r.provision_id: r for r in provisions(network, ours.card)}
    assert reply.provision_id in kept
    entry = kept[reply.provision_id]
    assert (entry.inquiry_id, entry.requester) == (inquiry, INFONWS)
    assert dt.datetime.fromisoformat(entry.provided_at) >= before - dt.timedelta(seconds=1)
    assert all(r.requester == INFONWS for r in kept.values())
    assert reply.provision_id not in {r.provision_id for r in provisions(network, people[B].card)}


# -- staff ----------------------------------------------------------------------------------------
def _staff_entries(network, subject: str, since: str) -> list[dict]:
    return [e for e in audit.follow([network.audit_file("intermediate")], subject) if e["time"] >= since]


@pytest.mark.parametrize("municipality", [A, B])
def test_staff_login_and_logout_recorded_on_own_tenant(network, municipality):
    """Staff at a terminal log in to and out of their own municipality's tenant, recorded with operator and terminal."""
    since = dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")
    with Counter(network, municipality) as counter:
        with intermediate(network, terminal_cert(network.pki, municipality, "T0001")) as server:
            login = server.StaffLogin(intermediate_pb2.StaffEvent(operator_id="OP0001"), metadata=counter.metadata,
                                      timeout=5)
            logout = server.StaffLogout(intermediate_pb2.StaffEvent(operator_id="OP0001"), metadata=counter.metadata,
                                        timeout=5)
    assert login.tenant == logout.tenant == municipality
    assert dt.datetime.fromisoformat(login.recorded_at) <= dt.datetime.fromisoformat(logout.recorded_at)
    entries = _staff_entries(network, f"{municipality}:OP0001", since)
    seen = [(e["method"].rsplit("/", 1)[-1], e["status"], e["operator"], e["terminal"], e["caller"]) for e in entries]
    assert seen == [(method, "OK", "OP0001", "T0001", f"{ROOT}lg/{municipality}/terminal/T0001")
                    for method in ("StaffLogin", "StaffLogout")]


def test_staff_may_not_claim_another_operator(network):
    """A staff login naming an operator other than the session's is refused naming the staff rule."""
    with Counter(network, A) as counter:
        with intermediate(network, terminal_cert(network.pki, A, "T0001")) as server:
            for call in (server.StaffLogin, server.StaffLogout):
                with refused(Code.PERMISSION_DENIED, "staff rule", "OP0001", "OP0002", reason="OPERATOR_CLAIM"):
                    call(intermediate_pb2.StaffEvent(operator_id="OP0002"), metadata=counter.metadata, timeout=5)
            with refused(Code.UNAUTHENTICATED, "operator rule", reason="SESSION_REQUIRED"):
                server.StaffLogin(intermediate_pb2.StaffEvent(operator_id="OP0001"), timeout=5)


# -- a birth, from the counter to the 副本 --------------------------------------------------------------
@pytest.fixture(scope="module")
def newborn(network):
    """出生 at 伊勢原市's counter, awaited on every node it reaches: SimpleNamespace(record, fugo, ...)."""
    pki = network.pki
    with Counter(network, A) as counter:
        head = move_in_from_abroad(counter, person("出生 父", "シュッセイ チチ"))
        child = counter(counter.kizon.Birth, kizon_pb2.BirthRequest(
            household_number=head.household_number, child=person("出生 太郎", "シュッセイ タロウ", TODAY),
            notification_date=TODAY)).records[0]
        code = child.resident_code
        kizon_record = counter(counter.kizon.GetResident, key(code))
        cs_info = counter(counter.cs.GetIdentity, key(code))
        child_card = issue_card(counter, code, PIN)  # a newborn may hold a card: it reads their 情報提供等記録
    as_cs = node_cert(pki, f"cs-{A}")
    with stub(network, "prefecture", as_cs, prefecture_pb2_grpc.PrefectureServerStub) as prefecture:
        prefecture_info = eventually(lambda: prefecture.GetIdentity(key(code), timeout=5))
    with stub(network, "national", as_cs, national_pb2_grpc.NationalServerStub) as national:
        national_info = eventually(lambda: national.GetIdentity(key(code), timeout=5))
    with stub(network, "card", as_cs, card_pb2_grpc.CardManagementStub) as card:
        delivery = eventually(lambda: card.GetDeliveryInfo(key(code), timeout=5))
    fugo = fugo_of(network, A, child.individual_number)
    provided = eventually(lambda: provide(network, A, fugo))
    return SimpleNamespace(record=child, kizon=kizon_record, cs=cs_info, prefecture=prefecture_info,
                           national=national_info, delivery=delivery, fugo=fugo, provided=provided,
                           card=child_card.card_number)


def test_birth_reaches_every_node(newborn):
    """A birth in 伊勢原市 is on kizon, the CS, the prefecture, national, the card system (通知書 queued) and
    the 中間サーバ's 副本 (through atena)."""
    child = newborn.record
    assert newborn.kizon == child and child.change_reason == "出生" and child.municipality_code == A
    for info in (newborn.cs, newborn.prefecture, newborn.national):
        assert (info.resident_code, info.name_kanji, info.birth_date, info.municipality_code, info.change_reason) == (
            child.resident_code, "出生 太郎", TODAY, A, "出生")
        assert info.individual_number == child.individual_number
    assert newborn.prefecture.update_sequence == newborn.national.update_sequence == newborn.cs.update_sequence
    assert (newborn.delivery.delivery.resident_code, newborn.delivery.delivery.delivery_name_kanji) == (
        child.resident_code, "出生 太郎")
    assert newborn.provided.record == provided_items(child) and not newborn.provided.record.individual_number


def test_information_inquiry_by_fugo_returns_the_newborn(network, newborn):
    """情報照会 by the newborn's 符号 returns their 住民票関係情報, and is recorded for them."""
    reply = provide(network, A, newborn.fugo, "Q-newborn")
    record = reply.record
    assert (record.name_kanji, record.name_kana, record.birth_date, record.household_number,
            record.relationship) == ("出生 太郎", "シュッセイ タロウ", TODAY, newborn.record.household_number, "子")
    assert not record.resident_code  # an institution knows people by 符号 only
    assert "Q-newborn" in {r.inquiry_id for r in provisions(network, newborn.card)}


def test_audit_follow_traces_the_birth(network, newborn, capsys):
    """`testbed audit follow <住民票コード>` lists the birth's entries on at least seven nodes."""
    code = newborn.record.resident_code
    network.topology.save(network.state_dir / "topology.yaml")
    capsys.readouterr()
    assert main(["--state-dir", str(network.state_dir), "audit", "follow", code]) == 0
    out = capsys.readouterr().out.splitlines()
    summary = re.fullmatch(r"(\d+) entries on (\d+) nodes", out[-1])
    assert summary and int(summary[2]) >= 7, out[-1]
    rows = {(line.split()[1], line.split()[2], line.split()[3]) for line in out[:-1]}
    assert int(summary[1]) == len(out) - 1
    for node, method in ((f"kizon-{A}", "Birth"), (f"cs-{A}", "SubmitIdentityUpdateGroup"),
                         ("prefecture-140007", "ApplyIdentityUpdates"), ("national", "ApplyIdentityUpdates"),
                         ("card", "SubmitDeliveryInfos"), (f"atena-{A}", "NotifyResidentChanges"),
                         ("intermediate", "RegisterCopies")):
        assert (node, method, "OK") in rows, (node, method, out)


# -- 符号, never 個人番号, across institutions ----------------------------------------------------------------
def test_a_copy_carrying_an_individual_number_is_refused(network, people):
    """atena strips the 個人番号 from every 副本; a copy that carries one is refused by the 中間サーバ."""
    ours = people[A]
    carrying = type(ours.record)()
    carrying.CopyFrom(ours.record)
    carrying.individual_number = "123456789018"
    with intermediate(network, node_cert(network.pki, f"atena-{A}")) as server:
        with refused(Code.INVALID_ARGUMENT, "符号 rule", reason="INTERMEDIATE_NO_INDIVIDUAL_NUMBER"):
            server.RegisterCopies(intermediate_pb2.CopyBatch(items=[intermediate_pb2.CopyRegistration(
                unified_atena_number=ours.unified, fugo=ours.fugo, record=carrying)]), timeout=5)
    assert not provide(network, A, ours.fugo).record.individual_number


def test_the_nws_cannot_enumerate_a_tenants_fugo(network, people):
    """The 中間サーバ lists no 符号 to anyone; the NWS's own registry (kept by national) answers the NWS alone."""
    with channel(network.topology.find("intermediate"), named_cert(network.pki, "infonws")) as ch:
        with pytest.raises(grpc.RpcError) as caught:
            ch.unary_unary("/testbed.v1.IntermediateServer/SampleFugo")(b"", timeout=5)
    assert caught.value.code() in (Code.UNIMPLEMENTED, Code.PERMISSION_DENIED)
    request = national_pb2.FugoSampleRequest(tenant=A, count=100)
    with stub(network, "national", named_cert(network.pki, "infonws"), national_pb2_grpc.NationalServerStub) as national:
        # (the sample is of national's current residents: the person's 本人確認情報 may still be on its way there)
        poll(lambda: people[A].fugo in national.SampleFugo(request, timeout=10).fugo or None, timeout=10,
             what="the resident's 符号 in national's sample")
    for cert in (named_cert(network.pki, "portal"), node_cert(network.pki, f"atena-{A}")):
        with stub(network, "national", cert, national_pb2_grpc.NationalServerStub) as national:
            with refused(Code.PERMISSION_DENIED, reason="DEFAULT_DENY"):
                national.SampleFugo(request, timeout=10)
