"""The cases of the 既存住基: the counter's session, the items of a 届出 (the server decides what it owns), a 依頼管理番号
retried, and bulk output (PIA Ⅲ(2)3), each as a counter terminal sends it."""
from __future__ import annotations

import uuid

import grpc

from nodes.clock import office_today
from nodes.guard import APPROVAL_KEY, REQUEST_KEY
from nodes.numbers import with_resident_code_check
from nodes.reasons import access as A, common as C, kizon as K
from protos import common_pb2, kizon_pb2, kizon_pb2_grpc, records_pb2
from scenarios.towns import towns
from testbed.conform.case import Skipped, answered, case, refused, same
from testbed.requests import with_notifier

BULK_LIMIT = 100  # the records one operator may output without a manager's approval (PIA Ⅲ(2)3)


def _counter(subject):
    """(stub, session metadata) of the municipality's first terminal at the subject."""
    return kizon_pb2_grpc.KizonStub(subject.channel(subject.terminal())), subject.session()


def _move_in(subject, **person) -> kizon_pb2.MoveInRequest:
    """A 国外転入 of a new person at the municipality's first 町字, with person's items as given."""
    items = {"name_kanji": "適合 転入", "name_kana": "テキゴウ テンニュウ", "birth_date": "1990-04-01", "sex": "9"}
    items.update(person)
    return with_notifier(kizon_pb2.MoveInRequest(
        person=records_pb2.ResidentRecord(**items),
        address=records_pb2.Address(town_code=towns(subject.home())[0].code, address_line="2番地"),
        move_in_date=office_today().isoformat(), from_abroad=True))


@case("kizon/session/required", roles=("kizon",), profiles=("rules", "security"), rules=(A.SESSION_REQUIRED,),
      request="GetResident from a terminal with no operator logged in", asserts="UNAUTHENTICATED SESSION_REQUIRED")
def session_required(subject) -> str:
    """Every counter call carries an operator's session."""
    stub = kizon_pb2_grpc.KizonStub(subject.channel(subject.terminal()))
    code = subject.person().resident_code
    return refused(lambda: stub.GetResident(common_pb2.ResidentKey(resident_code=code), timeout=10),
                   A.SESSION_REQUIRED, node=subject.node.name)


@case("kizon/住民票コード/format", roles=("kizon",), profiles=("rules",), rules=(C.RESIDENT_CODE_FORMAT,),
      request="GetResident of 住民票コード 123", asserts="INVALID_ARGUMENT RESIDENT_CODE_FORMAT")
def resident_code_format(subject) -> str:
    """A 住民票コード is 11 digits with its check digit."""
    stub, session = _counter(subject)
    return refused(lambda: stub.GetResident(common_pb2.ResidentKey(resident_code="123"), metadata=session,
                                            timeout=10), C.RESIDENT_CODE_FORMAT)


@case("kizon/振り仮名/katakana", roles=("kizon",), profiles=("rules",), rules=(K.NAME_KANA_KATAKANA,),
      request="MoveIn (国外転入) with the reading in hiragana", asserts="INVALID_ARGUMENT NAME_KANA_KATAKANA")
def name_kana_katakana(subject) -> str:
    """The reading of a name is written in katakana."""
    stub, session = _counter(subject)
    return refused(lambda: stub.MoveIn(_move_in(subject, name_kana="てきごう ひらがな"), metadata=session, timeout=30),
                   K.NAME_KANA_KATAKANA)


@case("kizon/住所/town-code", roles=("kizon",), profiles=("rules",), rules=(K.TOWN_CODE_UNKNOWN,),
      request="MoveIn (国外転入) to 町字 9999999", asserts="INVALID_ARGUMENT TOWN_CODE_UNKNOWN")
def town_code(subject) -> str:
    """An address is on the municipality's 町字 list."""
    stub, session = _counter(subject)
    request = _move_in(subject)
    request.address.town_code = "9999999"
    return refused(lambda: stub.MoveIn(request, metadata=session, timeout=30), K.TOWN_CODE_UNKNOWN)


@case("kizon/server-decides/resident-code", roles=("kizon",), profiles=("rules", "security"), rules=(C.SET_BY_SERVER,),
      request="MoveIn (国外転入) stating a 住民票コード of its own making (well-formed, known to no one)",
      asserts="INVALID_ARGUMENT SET_BY_SERVER")
def server_decides(subject) -> str:
    """The node numbers a new person; a client that states the number is refused."""
    stub, session = _counter(subject)
    invented = with_resident_code_check(f"9{uuid.uuid4().int % 10**9:09d}")
    return refused(lambda: stub.MoveIn(_move_in(subject, resident_code=invented), metadata=session, timeout=30),
                   C.SET_BY_SERVER)


@case("kizon/国外転入/known-person", roles=("kizon",), profiles=("rules",), rules=(K.ABROAD_MOVE_IN_NEW_PERSON,),
      request="MoveIn (国外転入) of a person the network already numbered (the run's person's 住民票コード)",
      asserts="FAILED_PRECONDITION ABROAD_MOVE_IN_NEW_PERSON")
def known_person(subject) -> str:
    """A 国外転入 is of a new person: someone already numbered moves in with a 転出証明書."""
    stub, session = _counter(subject)
    taken = subject.person().resident_code
    return refused(lambda: stub.MoveIn(_move_in(subject, resident_code=taken), metadata=session, timeout=30),
                   K.ABROAD_MOVE_IN_NEW_PERSON)


@case("kizon/死亡/after-birth", roles=("kizon",), profiles=("rules",), rules=(K.DEATH_AFTER_BIRTH,),
      request="Death of the run's person dated the day before their birth",
      asserts="INVALID_ARGUMENT DEATH_AFTER_BIRTH; the person still a current resident")
def death_after_birth(subject) -> str:
    """A 死亡 is on or after the 生年月日."""
    stub, session = _counter(subject)
    person = subject.person()
    key = common_pb2.ResidentKey(resident_code=person.resident_code)
    observed = refused(lambda: stub.Death(with_notifier(kizon_pb2.DeathRequest(
        resident_code=person.resident_code, death_date="1990-03-31")), metadata=session, timeout=30),
        K.DEATH_AFTER_BIRTH)
    same(person.status, stub.GetResident(key, metadata=session, timeout=10).status, "the person's status")
    return observed


@case("kizon/依頼管理番号/retry", roles=("kizon",), profiles=("delivery",), rules=(C.REQUEST_ID_REUSED,),
      request="MoveIn twice with one 依頼管理番号, then another MoveIn with it",
      asserts="the retry answers the first registration (one person); the other request is FAILED_PRECONDITION "
              "REQUEST_ID_REUSED")
def request_retried(subject) -> str:
    """A retry is answered from the first outcome; a 依頼管理番号 used again for another request is refused."""
    stub, session = _counter(subject)
    with_id = session + ((REQUEST_KEY, f"conform-{uuid.uuid4().hex}"),)
    first = answered(lambda: stub.MoveIn(_move_in(subject, name_kanji="適合 再送"), metadata=with_id, timeout=30))
    again = answered(lambda: stub.MoveIn(_move_in(subject, name_kanji="適合 再送"), metadata=with_id, timeout=30))
    same([r.resident_code for r in first.records], [r.resident_code for r in again.records], "the retry's person")
    observed = refused(lambda: stub.MoveIn(_move_in(subject, name_kanji="適合 別人"), metadata=with_id, timeout=30),
                       C.REQUEST_ID_REUSED)
    return f"retry answered {first.records[0].resident_code} again; {observed}"


# -- bulk output --------------------------------------------------------------------------------------------------
def _taken(stream, limit: int = BULK_LIMIT + 1) -> list:
    """At most limit messages of a stream, the rest cancelled: a node under test that streams without end (or a
    hostile one) costs the suite no more than that."""
    taken = []
    for message in stream:
        taken.append(message)
        if len(taken) >= limit:
            stream.cancel()
            break
    return taken


def _over_the_limit(subject, stub, session) -> None:
    """Skip unless the register holds more people than one operator may output without approval (an export
    without approval that is refused, or answered with more than the limit, shows it)."""
    try:
        seen = len(_taken(stub.ExportResidents(kizon_pb2.ExportRequest(), metadata=session, timeout=30)))
    except grpc.RpcError:
        return  # (refused: more than the limit, or refused for another reason the case itself will show)
    if seen <= BULK_LIMIT:
        raise Skipped(f"the register holds {seen} people, within the limit: load more than {BULK_LIMIT} "
                      "(testbed load) to try the rule")


@case("kizon/一括出力/approval-required", roles=("kizon",), profiles=("rules", "security"),
      rules=(K.BULK_OUTPUT_APPROVAL_REQUIRED,),
      request=f"ExportResidents of a register over {BULK_LIMIT} people, no approval",
      asserts="PERMISSION_DENIED BULK_OUTPUT_APPROVAL_REQUIRED, before any record is sent")
def approval_required(subject) -> str:
    """Output of more people than the limit needs a manager's approval."""
    stub, session = _counter(subject)
    _over_the_limit(subject, stub, session)
    seen = []

    def export():
        seen.extend(r.resident_code for r in _taken(stub.ExportResidents(kizon_pb2.ExportRequest(), metadata=session,
                                                                            timeout=30)))
    observed = refused(export, K.BULK_OUTPUT_APPROVAL_REQUIRED)
    same([], seen, "records sent before the refusal")
    return observed


@case("kizon/一括出力/forged-approval", roles=("kizon",), profiles=("rules", "security"),
      rules=(K.BULK_OUTPUT_APPROVAL_INVALID, K.BULK_OUTPUT_APPROVAL_REQUIRED),  # (a forgery matters where one is due)
      request=f"ExportResidents of a register over {BULK_LIMIT} people with an approval token made up by the caller",
      asserts="PERMISSION_DENIED BULK_OUTPUT_APPROVAL_INVALID")
def forged_approval(subject) -> str:
    """An approval is one the node itself issued."""
    stub, session = _counter(subject)
    _over_the_limit(subject, stub, session)
    return refused(lambda: _taken(stub.ExportResidents(kizon_pb2.ExportRequest(purpose="適合試験"),
                                                       metadata=session + ((APPROVAL_KEY, "forged.token"),), timeout=30)),
                   K.BULK_OUTPUT_APPROVAL_INVALID)


@case("kizon/一括出力/self-approval", roles=("kizon",), profiles=("rules", "security"),
      rules=(K.BULK_OUTPUT_SELF_APPROVAL,), request="ApproveBulkOutput by a manager for their own output",
      asserts="PERMISSION_DENIED BULK_OUTPUT_SELF_APPROVAL")
def self_approval(subject) -> str:
    """No one approves their own bulk output, a manager included."""
    place = subject.topology.municipality(subject.home())
    manager = next((o.id for o in place.operators if "manager" in o.roles), None)
    if manager is None:
        raise Skipped(f"no operator of {place.code} holds the manager role")
    stub, session = kizon_pb2_grpc.KizonStub(subject.channel(subject.terminal())), subject.session(manager)
    return refused(lambda: stub.ApproveBulkOutput(kizon_pb2.BulkApprovalRequest(
        purpose="適合試験", max_records=1000, requester_operator_id=manager, terminal_id=place.terminals[0]),
        metadata=session, timeout=10), K.BULK_OUTPUT_SELF_APPROVAL)
