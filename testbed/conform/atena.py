"""The cases of the 団体内統合宛名システム (異動 of its own municipality only; the 副本 it feeds the 中間サーバ carries the
符号, never the 個人番号; 庁内連携 by the 個人番号 for a 事務 of 番号法 別表 only) and of the 中間サーバ (tenant isolation,
no 個人番号 in a 副本, 情報提供 for a 事務 of the 主務省令第2条の表 and its items only, a card holder's own
情報提供等記録), each as the network's own callers send them: kizon, the office systems, atena, the 情報提供NWS,
マイナポータル.

A 副本 a case registers is of a person of its own making (a 住民票 of the run's person with 住民票コード, 個人番号,
宛名番号 and 符号 no one else has), so that no real person's entry changes."""
from __future__ import annotations

import time
import uuid

import grpc

from nodes import jimu as J
from nodes.numbers import with_individual_number_check, with_resident_code_check
from nodes.reasons import card as CR, office as O, platform as P
from nodes.refusal import reason_of
from protos import atena_pb2, atena_pb2_grpc, intermediate_pb2, intermediate_pb2_grpc, records_pb2
from testbed.client import named_cert, node_cert
from testbed.conform.card import PIN, WRONG_PIN, _new_card, _node, _other_municipality
from testbed.conform.case import Failed, Skipped, answered, case, outcome, refused, said, same

JIMU = "19-8-2-81"  # 児童手当法による児童手当の支給に関する事務 (its items include the 世帯 and 続柄)
ARRIVAL = 15.0  # seconds a change may take from kizon through atena to the 中間サーバ (outboxes)


# -- who calls ------------------------------------------------------------------------------------------------------
def _atena_as_kizon(subject):
    """The subject 宛名 system as its municipality's 既存住基 calls it."""
    return atena_pb2_grpc.AtenaStub(subject.as_node(subject.kizon().name))


def _office(subject, system: str):
    """庁内連携 of the municipality's 宛名 system (the subject, or the network's) as one of its office systems calls it."""
    end = subject.node if subject.role == "atena" else _node(subject, "atena", subject.home())
    return atena_pb2_grpc.OfficeLinkStub(subject.channel(named_cert(subject.pki, f"office-{subject.home()}-{system}"),
                                                         end))


def _intermediate(subject, cert):
    """The 中間サーバ (the subject, or the network's) as the holder of cert calls it."""
    end = subject.node if subject.role == "intermediate" else _node(subject, "intermediate")
    return intermediate_pb2_grpc.IntermediateServerStub(subject.channel(cert, end))


def _as_atena(subject, municipality: str | None = None):
    """The 中間サーバ as a municipality's 宛名 system calls it (the subject's municipality unless told)."""
    return _intermediate(subject, node_cert(subject.pki, _node(subject, "atena", municipality or subject.home()).name))


def _provide(subject, tenant: str, fugo: str, jimu: str = JIMU):
    """情報提供 as the 情報提供NWS asks for it: a call returning the reply."""
    server = _intermediate(subject, named_cert(subject.pki, "infonws"))
    return lambda: server.ProvideInfo(intermediate_pb2.ProvisionRequest(
        tenant=tenant, fugo=fugo, inquiry_id=f"conform-{uuid.uuid4().hex[:12]}", jimu=jimu), timeout=10)


def _jimu() -> J.Jimu:
    return J.table().get(JIMU) or next(iter(J.table().values()))


# -- people of the case's own making ------------------------------------------------------------------------------
def _invented(subject, municipality: str | None = None, **items) -> records_pb2.ResidentRecord:
    """The run's person's 住民票 restated as a person of the case's own: a 住民票コード, 個人番号 and 宛名番号 no one
    was given (the 9 blocks: the network numbers from below), of municipality."""
    record = records_pb2.ResidentRecord()
    record.CopyFrom(subject.person())
    record.ClearField("notifier")  # (kizon's 受付 record: never part of the 宛名)
    token = uuid.uuid4().int
    record.resident_code = with_resident_code_check(f"9{token % 10**9:09d}")
    record.individual_number = with_individual_number_check(f"9{token % 10**10:010d}")
    record.atena_number = f"9{token % 10**14:014d}"
    record.municipality_code = municipality or subject.home()
    record.name_kanji, record.name_kana = "適合 副本", "テキゴウ フクホン"
    for name, value in items.items():
        setattr(record, name, value)
    return record


def _without_number(record: records_pb2.ResidentRecord) -> records_pb2.ResidentRecord:
    copy = records_pb2.ResidentRecord()
    copy.CopyFrom(record)
    copy.ClearField("individual_number")
    return copy


def _copy(record: records_pb2.ResidentRecord) -> intermediate_pb2.CopyRegistration:
    """A 副本 registration of record under a 符号 and 団体内統合宛名番号 no one else has."""
    return intermediate_pb2.CopyRegistration(unified_atena_number=f"9{uuid.uuid4().int % 10**14:014d}",
                                             fugo=f"CONFORM{uuid.uuid4().hex[:17].upper()}", record=record)


def _absent(call, what: str) -> None:
    """Assert that call is answered NOT_FOUND (nothing there: what)."""
    code, reason, details, _ = outcome(call)
    if code != grpc.StatusCode.NOT_FOUND:
        raise Failed(f"NOT_FOUND ({what})", said(code, reason, details), reason)


def _found(call, within: float = ARRIVAL, codes=(grpc.StatusCode.NOT_FOUND,)):
    """call()'s reply once it is no longer refused with one of codes (bounded: a change travels by outboxes)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return call()
        except grpc.RpcError as exc:
            if exc.code() not in codes or time.monotonic() > deadline:
                why = reason_of(exc)
                raise Failed(f"an answer within {within:g} s", said(exc.code(), why.reason if why else "",
                                                                     exc.details() or "")) from None
        time.sleep(0.1)  # (bounded: outboxes deliver within a second or so)


# == 団体内統合宛名システム ============================================================================================
@case("atena/副本/no-individual-number", roles=("atena",), profiles=("rules", "security"),
      standard="PIA 中間サーバ ※１; DESIGN §3 (符号, never the 個人番号, leaves the municipality)",
      request="NotifyResidentChanges as kizon of a new person's 住民票 with their 個人番号; 情報提供 of their 符号 as the "
              "情報提供NWS once the 副本 is on the 中間サーバ",
      asserts="a 団体内統合宛名番号 and a 符号; the entry keeps the 個人番号; the 副本 provided holds the 事務's items of "
              "the 住民票 and no 個人番号 (nor 住民票コード)")
def atena_copy_without_number(subject) -> str:
    """What atena sends the 中間サーバ identifies the person by 符号: the 個人番号 stays in the municipality."""
    record = _invented(subject)
    reply = answered(lambda: _atena_as_kizon(subject).NotifyResidentChanges(atena_pb2.ResidentChangeBatch(
        items=[atena_pb2.ResidentChange(record=record)]), timeout=30))
    if len(reply.replies) != 1 or not reply.replies[0].fugo or not reply.replies[0].unified_atena_number:
        raise Failed("one reply with a 団体内統合宛名番号 and a 符号", repr(reply)[:200])
    unified, fugo = reply.replies[0].unified_atena_number, reply.replies[0].fugo
    entry = answered(lambda: _atena_as_kizon(subject).GetEntry(atena_pb2.AtenaKey(unified_atena_number=unified),
                                                               timeout=10))
    same((record.individual_number, record.atena_number, fugo), (entry.individual_number, entry.atena_number,
                                                                 entry.fugo), "the entry (個人番号, 宛名番号, 符号)")
    provided = _found(_provide(subject, subject.home(), fugo))
    same("", provided.record.individual_number, "the 個人番号 in the 副本 provided")
    same("", provided.record.resident_code, "the 住民票コード in the 副本 provided")
    same(J.projection(_without_number(record), _jimu()), provided.record, "the 副本 provided (the 事務's items)")
    return f"符号 {fugo[:8]}…: {len(provided.items_provided)} items provided, no 個人番号"


@case("atena/市町村コード/own-municipality", roles=("atena",), profiles=("rules",), rules=(P.ATENA_OWN_MUNICIPALITY,),
      request="NotifyResidentChanges as kizon: one batch of a new person of the municipality and one of another "
              "municipality", asserts="INVALID_ARGUMENT ATENA_OWN_MUNICIPALITY; neither recorded (庁内連携 by either "
                                      "宛名番号 finds no one)")
def own_municipality(subject) -> str:
    """An atena takes 異動 only of records of its own municipality, and a batch with another's is refused whole."""
    ours, theirs = _invented(subject), _invented(subject, _other_municipality(subject))
    batch = atena_pb2.ResidentChangeBatch(items=[atena_pb2.ResidentChange(record=r) for r in (ours, theirs)])
    observed = refused(lambda: _atena_as_kizon(subject).NotifyResidentChanges(batch, timeout=30),
                       P.ATENA_OWN_MUNICIPALITY, node=subject.node.name)
    tax = _office(subject, "tax")
    for record in (ours, theirs):
        _absent(lambda: tax.LookupResident(atena_pb2.OfficeQuery(atena_number=record.atena_number), timeout=10),
                f"宛名番号 {record.atena_number} afterwards")
    return observed


@case("atena/庁内連携/number-not-in-table", roles=("atena",), profiles=("rules", "security"),
      rules=(O.OFFICE_NUMBER_NOT_IN_TABLE,),
      request="LookupResident as the election system by the run's person's 個人番号, then by their 宛名番号",
      asserts="PERMISSION_DENIED OFFICE_NUMBER_NOT_IN_TABLE; by 宛名番号 the person, without the 個人番号")
def number_not_in_table(subject) -> str:
    """Only an office system of a 番号法 別表 事務 looks a person up by the 個人番号, or is given it."""
    person = subject.person()
    if not person.individual_number or not person.atena_number:
        raise Skipped("the counter's answer for the run's person names no 個人番号 or 宛名番号")
    election = _office(subject, "election")
    observed = refused(lambda: election.LookupResident(atena_pb2.OfficeQuery(
        individual_number=person.individual_number), timeout=10), O.OFFICE_NUMBER_NOT_IN_TABLE, node=subject.node.name)
    found = _found(lambda: election.LookupResident(atena_pb2.OfficeQuery(atena_number=person.atena_number),
                                                   timeout=10))
    same((person.name_kanji, ""), (found.name_kanji, found.individual_number), "the election system's answer")
    return f"{observed}; by 宛名番号: {found.name_kanji}, no 個人番号"


# == 中間サーバ =====================================================================================================
@case("intermediate/副本/no-individual-number", roles=("intermediate",), profiles=("rules", "security"),
      rules=(P.INTERMEDIATE_NO_INDIVIDUAL_NUMBER,),
      request="RegisterCopies as the municipality's atena of a 副本 carrying the 個人番号; then the same 副本 without it; "
              "情報提供 of its 符号 as the 情報提供NWS after each",
      asserts="INVALID_ARGUMENT INTERMEDIATE_NO_INDIVIDUAL_NUMBER and nothing provided for the 符号; without the number "
              "accepted, and provided with the 事務's items only (no 個人番号, no 住民票コード)")
def intermediate_no_number(subject) -> str:
    """A 副本 carries no 個人番号: between institutions people are identified by 符号 only."""
    atena, copy = _as_atena(subject), _copy(_invented(subject))
    observed = refused(lambda: atena.RegisterCopies(intermediate_pb2.CopyBatch(items=[copy]), timeout=10),
                       P.INTERMEDIATE_NO_INDIVIDUAL_NUMBER, node=subject.node.name)
    _absent(_provide(subject, subject.home(), copy.fugo), "the refused 副本's 符号 afterwards")
    stripped = intermediate_pb2.CopyRegistration()
    stripped.CopyFrom(copy)
    stripped.record.ClearField("individual_number")
    answered(lambda: atena.RegisterCopies(intermediate_pb2.CopyBatch(items=[stripped]), timeout=10))
    provided = answered(_provide(subject, subject.home(), copy.fugo))
    same(J.projection(stripped.record, _jimu()), provided.record, "the 副本 provided (the 事務's items)")
    same(list(_jimu().items), list(provided.items_provided), "the items provided")
    return f"{observed}; without it: {len(provided.items_provided)} items provided, no 個人番号"


@case("intermediate/副本/tenant-isolation", roles=("intermediate",), profiles=("rules", "security"),
      rules=(P.TENANT_ISOLATION,),
      request="RegisterCopies as the municipality's atena: one batch of a 副本 of its own municipality and one of "
              "another's", asserts="PERMISSION_DENIED TENANT_ISOLATION; neither 符号 provided from either tenant")
def tenant_isolation(subject) -> str:
    """An atena registers 副本 only of its own municipality, into its own tenant; a batch with another's is refused
    whole."""
    home, other = subject.home(), _other_municipality(subject)
    ours, theirs = _copy(_without_number(_invented(subject))), _copy(_without_number(_invented(subject, other)))
    batch = intermediate_pb2.CopyBatch(items=[ours, theirs])
    observed = refused(lambda: _as_atena(subject).RegisterCopies(batch, timeout=10), P.TENANT_ISOLATION,
                       node=subject.node.name)
    for tenant in (home, other):
        for copy in (ours, theirs):
            _absent(_provide(subject, tenant, copy.fugo), f"the 符号 {copy.fugo} in tenant {tenant} afterwards")
    return observed


@case("intermediate/マイナポータル/own-record", roles=("intermediate",), profiles=("rules", "security"),
      rules=(P.PORTAL_OWN_RECORD, CR.PIN_WRONG),
      request="ListProvisions as マイナポータル with a new card holder's card and PIN: naming another 符号, another "
              "tenant; with a wrong PIN; as it stands",
      asserts="PERMISSION_DENIED PORTAL_OWN_RECORD twice, UNAUTHENTICATED PIN_WRONG; their own 情報提供等記録 answered")
def portal_own_record(subject) -> str:
    """A card holder reads only their own 情報提供等記録, proved by the card and its PIN."""
    card, other = _new_card(subject, key=False), _other_municipality(subject)
    portal = _intermediate(subject, named_cert(subject.pki, "portal"))

    def records(pin: str = PIN, **named):
        return portal.ListProvisions(intermediate_pb2.ProvisionQuery(card_number=card.status.card_number, pin=pin,
                                                                     **named), timeout=10)
    own = _found(records)  # (NOT_FOUND until the holder's 副本 has come through kizon and atena)
    seen = [refused(lambda: records(fugo=f"CONFORM{uuid.uuid4().hex[:17].upper()}"), P.PORTAL_OWN_RECORD,
                    node=subject.node.name),
            refused(lambda: records(tenant=other), P.PORTAL_OWN_RECORD, node=subject.node.name),
            refused(lambda: records(pin=WRONG_PIN), CR.PIN_WRONG)]
    return f"{seen[0]}, ×2; {seen[2].split(':')[0]}; own: {len(own.records)} record(s)"


@case("intermediate/情報提供/jimu", roles=("intermediate",), profiles=("rules", "security"),
      rules=(P.PROVISION_JIMU_REQUIRED, P.PROVISION_JIMU_NOT_IN_TABLE),
      request="ProvideInfo as the 情報提供NWS naming no 事務, a blank one, a code outside the 主務省令第2条の表 and a "
              "code of the table in full-width digits",
      asserts="INVALID_ARGUMENT PROVISION_JIMU_REQUIRED twice, PERMISSION_DENIED PROVISION_JIMU_NOT_IN_TABLE twice "
              "(judged before the 符号, which no tenant holds)")
def provision_jimu(subject) -> str:
    """住民票関係情報 is provided only for a 事務 of the 主務省令第2条の表 the 情報照会 names."""
    fugo, home = f"CONFORM{uuid.uuid4().hex[:17].upper()}", subject.home()
    wide = JIMU.translate(str.maketrans("0123456789-", "０１２３４５６７８９－"))
    seen = [refused(_provide(subject, home, fugo, jimu), P.PROVISION_JIMU_REQUIRED, node=subject.node.name)
            for jimu in ("", "  ")]
    seen += [refused(_provide(subject, home, fugo, jimu), P.PROVISION_JIMU_NOT_IN_TABLE, node=subject.node.name)
             for jimu in (f"{J.CODE_PREFIX}9999", wide)]
    return f"{seen[0].split(':')[0]} ×2; {seen[2].split(':')[0]} ×2"
