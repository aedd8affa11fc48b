"""More cases of the 既存住基's counter: the 異動 themselves (転入 with a 転出証明書, 転居, 転出 and 国外転出, 出生, 死亡,
the 世帯 changes), who makes a 届出 and the counter's 本人確認 of them, the dates of a 届出, the 写し and who may be
given what, 職権, and the items the office owns. Each refused change reads the register back (GetHistory or
GetHousehold before and after) and asserts it is as it was; a case that changes a person registers its own."""
from __future__ import annotations

import datetime as dt
import uuid

import grpc

from nodes.clock import office_today
from nodes.numbers import individual_number_valid, with_individual_number_check, with_resident_code_check
from nodes.reasons import common as C, kizon as K, platform as P
from protos import card_pb2, common_pb2, identity_pb2, kizon_pb2, kizon_pb2_grpc, records_pb2
from scenarios.towns import towns
from testbed.conform.case import Failed, Skipped, answered, case, refused, same
from testbed.requests import OUTSIDE, OUTSIDE_ADDRESS, notifier, with_notifier

R = records_pb2
CURRENT, REMOVED = R.ResidentRecord.STATUS_CURRENT, R.ResidentRecord.STATUS_REMOVED
CHANGE = 30  # seconds a 異動 may take (kizon, then its CS)
READ = 10
# Items of a 住民票 a 転居 writes besides the address: the trail of the entry (who, when, why).
TRAIL = {"history_number", "is_latest", "change_reason", "change_date", "notification_date", "request_control_number",
         "operator_id", "terminal_id", "recorded_at", "change_reason_detail", "notifier"}
ADDRESS = {"town_code", "address_line", "katagaki", "postal_code", "address", "address_since"}
# What a 第三者 may be given (住基法第12条の3: the 基礎証明事項); what a 写し never prints for one.
NOT_FOR_A_THIRD_PARTY = {"relationship", "householder_name", "resident_code", "individual_number", "honseki",
                         "hittousha"}


# -- the counter, and what a case needs made first -----------------------------------------------------------------
def _today(days: int = 0) -> str:
    """The office's today (moved by days), as the counter writes a date."""
    return (office_today() + dt.timedelta(days=days)).isoformat()


def _key(code: str) -> common_pb2.ResidentKey:
    return common_pb2.ResidentKey(resident_code=code)


def _counter(subject, operator: str | None = None):
    """(stub, session metadata) of an operator (default: the municipality's first) at its first terminal."""
    return kizon_pb2_grpc.KizonStub(subject.channel(subject.terminal())), subject.session(operator)


def _operator(subject, *, having: tuple[str, ...] = (), lacking: tuple[str, ...] = ()) -> str:
    """The first operator of the municipality's roster (as the topology names it) holding every role of having and
    none of lacking; Skipped when there is none."""
    place = subject.topology.municipality(subject.home())
    for operator in place.operators:
        if all(r in operator.roles for r in having) and not any(r in operator.roles for r in lacking):
            return operator.id
    raise Skipped(f"no operator of {place.code} holds {', '.join(having) or 'any role'}"
                  + (f" without {', '.join(lacking)}" if lacking else "") + ": add one to the roster to try the rule")


def _address(subject, line: str, town: int = 0, katagaki: str = "") -> R.Address:
    """An address on one of the municipality's 町字 (the first, or the town-th)."""
    listed = towns(subject.home())
    return R.Address(town_code=listed[min(town, len(listed) - 1)].code, address_line=line, katagaki=katagaki)


def _register(subject, stub, session, *, name: str = "適合 窓口", kana: str = "テキゴウ マドグチ",
              line: str = "3番地") -> R.ResidentRecord:
    """A new person of the case's own (国外転入 at the municipality's first 町字), head of a household of their own."""
    request = with_notifier(kizon_pb2.MoveInRequest(
        person=R.ResidentRecord(name_kanji=name, name_kana=kana, birth_date="1985-06-15", sex="2"),
        address=_address(subject, line), move_in_date=_today(), from_abroad=True))
    return answered(lambda: stub.MoveIn(request, metadata=session, timeout=CHANGE)).records[0]


def _history(stub, session, code: str) -> list:
    """Every entry of a person's 住民票 (the current one last), as the register answers GetHistory."""
    return list(answered(lambda: stub.GetHistory(_key(code), metadata=session, timeout=READ)).entries)


def _members(stub, session, household: str) -> list:
    """The current members of a household, as the register answers GetHousehold."""
    return list(answered(lambda: stub.GetHousehold(kizon_pb2.HouseholdRequest(household_number=household),
                                                   metadata=session, timeout=READ)).entries)


def _issued(stub, session, code: str) -> list:
    """The 交付履歴 of a person."""
    return list(answered(lambda: stub.GetIssuanceHistory(_key(code), metadata=session, timeout=READ)).records)


def _unknown_code() -> str:
    """A well-formed 住民票コード of no one's (a random one of the 9 series)."""
    return with_resident_code_check(f"9{uuid.uuid4().int % 10**9:09d}")


def _move_out(stub, session, code: str, *, to: str = OUTSIDE, planned: str | None = None,
              special: bool = False) -> kizon_pb2.MoveOutRequest:
    """A 転出届 (by the person) to a municipality, outside the network by default, planned for today."""
    return with_notifier(kizon_pb2.MoveOutRequest(
        resident_code=code, destination_address=OUTSIDE_ADDRESS if to == OUTSIDE else "転出先 1番地",
        destination_municipality_code=to, planned_date=planned or _today(), special=special))


def _moved_out(subject, stub, session, name: str) -> tuple[R.ResidentRecord, identity_pb2.MoveOutCertificate]:
    """A person of the case's own who moved out to 千代田区 (outside the network): their 除票 and 転出証明書."""
    who = _register(subject, stub, session, name=name)
    reply = answered(lambda: stub.MoveOut(_move_out(stub, session, who.resident_code), metadata=session,
                                          timeout=CHANGE))
    return reply.change.records[0], reply.certificate


def _returning(subject, removed: R.ResidentRecord, *, number: str | None = None, name: str = "適合 帰来",
               kana: str = "テキゴウ キライ") -> kizon_pb2.MoveInRequest:
    """The 転入届 of a former resident back from 千代田区, with 千代田区's 転出証明書 as the clerk types it from the paper:
    the person as registered there (married there: another 氏名), their 個人番号 (number: as given, "" for none)."""
    number = removed.individual_number if number is None else number
    if number and not individual_number_valid(number):
        raise Skipped(f"the operator is shown no 個人番号 ({number!r}): run with an operator holding individual_number "
                      "at a terminal registered for it")
    paper = identity_pb2.MoveOutCertificate(
        certificate_number=f"{OUTSIDE}-{uuid.uuid4().int % 10**8:08d}", issuing_municipality_code=OUTSIDE,
        person=R.ResidentRecord(resident_code=removed.resident_code, individual_number=number, name_kanji=name,
                                name_kana=kana, birth_date=removed.birth_date, sex=removed.sex,
                                address=OUTSIDE_ADDRESS),
        planned_move_out_date=_today(), destination_address=f"{subject.home()} 5番地",
        destination_municipality_code=subject.home())
    return with_notifier(kizon_pb2.MoveInRequest(person=R.ResidentRecord(resident_code=removed.resident_code),
                                                 address=_address(subject, "5番地"), move_in_date=_today(),
                                                 certificate=paper))


def _refused_change(call, rule, stub, session, code: str, what: str = "") -> str:
    """Assert call is refused under rule and that the person's 住民票 (every entry) is as it was before."""
    before = _history(stub, session, code)
    observed = refused(call, rule)
    same(before, _history(stub, session, code), what or f"the 住民票 of {code} afterwards")
    return observed


def _within(subject, code: str, **more) -> kizon_pb2.MoveWithinRequest:
    """A 転居届 of a person to another address of the municipality, today (more: items to state otherwise)."""
    items = {"resident_code": code, "address": _address(subject, "9番地"), "move_date": _today()}
    items.update(more)
    return kizon_pb2.MoveWithinRequest(**items)


def _certificate(code: str, kind=kizon_pb2.RESIDENT_COPY, requester: R.Requester | None = None,
                 **more) -> kizon_pb2.CertificateRequest:
    """A request for a 写し of a person (the 請求者 本人 unless given)."""
    request = kizon_pb2.CertificateRequest(kind=kind, resident_code=code, **more)
    request.requester.CopyFrom(requester or notifier(code=code))
    return request


def _refused_issue(request, rule, stub, session, code: str) -> str:
    """Assert IssueCertificate of request is refused under rule and that the person's 交付履歴 is as it was."""
    before = _issued(stub, session, code)
    observed = refused(lambda: stub.IssueCertificate(request, metadata=session, timeout=CHANGE), rule)
    same(before, _issued(stub, session, code), f"the 交付履歴 of {code} afterwards")
    return observed


AGENT = dict(kind=R.REQUESTER_AGENT, name="代理 人", power_of_attorney="委任状-適合-1", identity_document="運転免許証")
THIRD = dict(kind=R.REQUESTER_THIRD_PARTY, name="第三 者", reason="債権の回収のため", identity_document="運転免許証")


# -- 転入 with a 転出証明書 -------------------------------------------------------------------------------------------
@case("kizon/転入/items-from-certificate", roles=("kizon",), profiles=("rules",),
      rules=(K.MOVE_IN_ITEMS_FROM_CERTIFICATE,),
      request="a former resident back from 千代田区 with its 転出証明書 (another 氏名 there): MoveIn typing the 氏名, "
              "then MoveIn with the 住民票コード alone",
      asserts="INVALID_ARGUMENT MOVE_IN_ITEMS_FROM_CERTIFICATE, the 除票 unchanged; then answered: the 住民票 has the "
              "certificate's 氏名 and 個人番号, 転入前 千代田区, at the address asked")
def items_from_certificate(subject) -> str:
    """A 転入 gives the 住民票コード and 続柄 only: the other items come from the 転出証明書."""
    stub, session = _counter(subject)
    removed, _ = _moved_out(subject, stub, session, "適合 旧姓")
    request = _returning(subject, removed)
    typed = kizon_pb2.MoveInRequest()
    typed.CopyFrom(request)
    typed.person.name_kanji = "適合 自称"
    observed = _refused_change(lambda: stub.MoveIn(typed, metadata=session, timeout=CHANGE),
                               K.MOVE_IN_ITEMS_FROM_CERTIFICATE, stub, session, removed.resident_code)
    arrived = answered(lambda: stub.MoveIn(request, metadata=session, timeout=CHANGE)).records[0]
    paper = request.certificate
    got = (arrived.resident_code, arrived.individual_number, arrived.name_kanji, arrived.name_kana, arrived.birth_date,
           arrived.status, arrived.previous_municipality_code, arrived.previous_address, arrived.town_code,
           arrived.address_line)
    same((removed.resident_code, paper.person.individual_number, paper.person.name_kanji, paper.person.name_kana,
          paper.person.birth_date, CURRENT, OUTSIDE, OUTSIDE_ADDRESS, request.address.town_code,
          request.address.address_line), got, "the 住民票 the 転入 wrote (from the 転出証明書)")
    return f"{observed}; then answered: {arrived.name_kanji} from {arrived.previous_municipality_code}"


@case("kizon/転入/individual-number", roles=("kizon",), profiles=("rules", "security"),
      rules=(K.MOVE_IN_INDIVIDUAL_NUMBER_REQUIRED, C.INDIVIDUAL_NUMBER_BY_NATIONAL),
      request="a former resident back from 千代田区: MoveIn whose 転出証明書 has no 個人番号, then one with a well-formed "
              "個人番号 that is not theirs",
      asserts="INVALID_ARGUMENT MOVE_IN_INDIVIDUAL_NUMBER_REQUIRED, then INVALID_ARGUMENT INDIVIDUAL_NUMBER_BY_NATIONAL; "
              "the 除票 unchanged")
def individual_number(subject) -> str:
    """A 転入 of a person national knows carries the 個人番号 national holds for them."""
    stub, session = _counter(subject)
    removed, _ = _moved_out(subject, stub, session, "適合 番号")
    code = removed.resident_code
    none = _returning(subject, removed, number="")
    seen = [_refused_change(lambda: stub.MoveIn(none, metadata=session, timeout=CHANGE),
                            K.MOVE_IN_INDIVIDUAL_NUMBER_REQUIRED, stub, session, code)]
    guessed = with_individual_number_check(f"{uuid.uuid4().int % 10**11:011d}")
    if guessed == removed.individual_number:  # (one chance in 10^11)
        guessed = with_individual_number_check(f"{(int(guessed[:11]) + 1) % 10**11:011d}")
    other = _returning(subject, removed, number=guessed)
    seen.append(_refused_change(lambda: stub.MoveIn(other, metadata=session, timeout=CHANGE),
                                C.INDIVIDUAL_NUMBER_BY_NATIONAL, stub, session, code))
    return "; ".join(seen)


@case("kizon/転入/certificate", roles=("kizon",), profiles=("rules",),
      rules=(K.MOVE_IN_CERTIFICATE_REQUIRED, K.MOVE_IN_CERTIFICATE_OTHER_PERSON),
      request="MoveIn (not from abroad, not 特例) of a 住民票コード with no 転出証明書; then with the 転出証明書 of another "
              "住民票コード",
      asserts="INVALID_ARGUMENT MOVE_IN_CERTIFICATE_REQUIRED, then INVALID_ARGUMENT MOVE_IN_CERTIFICATE_OTHER_PERSON; "
              "the register holds no one of that code (RECORD_NOT_FOUND)")
def certificate_required(subject) -> str:
    """A 転入 presents the 転出証明書 of the person moving in (or is a 特例転入)."""
    stub, session = _counter(subject)
    code, other = _unknown_code(), _unknown_code()
    bare = with_notifier(kizon_pb2.MoveInRequest(person=R.ResidentRecord(resident_code=code),
                                                 address=_address(subject, "6番地"), move_in_date=_today()))
    seen = [refused(lambda: stub.MoveIn(bare, metadata=session, timeout=CHANGE), K.MOVE_IN_CERTIFICATE_REQUIRED)]
    someone_else = kizon_pb2.MoveInRequest()
    someone_else.CopyFrom(bare)
    someone_else.certificate.CopyFrom(identity_pb2.MoveOutCertificate(
        issuing_municipality_code=OUTSIDE, planned_move_out_date=_today(),
        person=R.ResidentRecord(resident_code=other, name_kanji="別人 証明", name_kana="ベツジン ショウメイ",
                                birth_date="1980-01-01", sex="1")))
    seen.append(refused(lambda: stub.MoveIn(someone_else, metadata=session, timeout=CHANGE),
                        K.MOVE_IN_CERTIFICATE_OTHER_PERSON))
    for held in (code, other):
        refused(lambda: stub.GetResident(_key(held), metadata=session, timeout=READ), C.RECORD_NOT_FOUND)
    return "; ".join(seen)


@case("kizon/転居/within-municipality", roles=("kizon",), profiles=("rules",), rules=(K.MOVE_WITHIN_IS_TENKYO,),
      request="MoveOut to the municipality itself; then (moved out to 千代田区) MoveIn here with this municipality's own "
              "転出証明書",
      asserts="INVALID_ARGUMENT MOVE_WITHIN_IS_TENKYO at both doors; the 住民票 (then the 除票) unchanged")
def within_municipality(subject) -> str:
    """A move within the municipality is a 転居, never a 転出 or a 転入."""
    stub, session = _counter(subject)
    who = _register(subject, stub, session, name="適合 市内")
    code = who.resident_code
    inside = _move_out(stub, session, code, to=subject.home())
    seen = [_refused_change(lambda: stub.MoveOut(inside, metadata=session, timeout=CHANGE), K.MOVE_WITHIN_IS_TENKYO,
                            stub, session, code)]
    reply = answered(lambda: stub.MoveOut(_move_out(stub, session, code), metadata=session, timeout=CHANGE))
    back = with_notifier(kizon_pb2.MoveInRequest(person=R.ResidentRecord(resident_code=code),
                                                 address=_address(subject, "7番地"), move_in_date=_today(),
                                                 certificate=reply.certificate))
    seen.append(_refused_change(lambda: stub.MoveIn(back, metadata=session, timeout=CHANGE), K.MOVE_WITHIN_IS_TENKYO,
                                stub, session, code))
    return "; ".join(seen)


# -- 転居 -------------------------------------------------------------------------------------------------------------
@case("kizon/転居/address-only", roles=("kizon",), profiles=("rules",), standard="住基法第23条 (転居届)",
      request="MoveWithin of a person of the case's own to another 町字 (with a 方書)",
      asserts="answered: a new entry whose items differ from the previous one in the address (and the entry's trail) "
              "only, the previous entry kept in the history")
def address_only(subject) -> str:
    """A 転居 changes the address of the 住民票 and nothing else of the person."""
    stub, session = _counter(subject)
    who = _register(subject, stub, session, name="適合 転居")
    before = _history(stub, session, who.resident_code)
    request = with_notifier(_within(subject, who.resident_code, address=_address(subject, "8番地", 1, "適合荘101")))
    moved = answered(lambda: stub.MoveWithin(request, metadata=session, timeout=CHANGE)).records[0]
    after = _history(stub, session, who.resident_code)
    same(before, after[:len(before)], "the earlier entries of the history")
    same(len(before) + 1, len(after), "entries after one 転居")
    same(moved, after[-1], "the current entry (the reply's)")
    previous = before[-1]
    changed = {f.name for f in R.ResidentRecord.DESCRIPTOR.fields if getattr(previous, f.name) != getattr(moved, f.name)}
    same(set(), changed - ADDRESS - TRAIL, "items a 転居 changed besides the address")
    same((request.address.town_code, request.address.address_line, request.address.katagaki, _today(), "転居"),
         (moved.town_code, moved.address_line, moved.katagaki, moved.address_since, moved.change_reason),
         "the new address and its date")
    return f"answered: {previous.address} → {moved.address}; changed {', '.join(sorted(changed & ADDRESS))}"


@case("kizon/転居/dates", roles=("kizon",), profiles=("rules",),
      rules=(C.DATE_FORMAT, C.DATE_NOT_FUTURE, C.NOTIFICATION_LATE),
      request="MoveWithin of the run's person dated 2024/04/01, tomorrow, and 15 days ago",
      asserts="INVALID_ARGUMENT DATE_FORMAT, INVALID_ARGUMENT DATE_NOT_FUTURE, FAILED_PRECONDITION NOTIFICATION_LATE; "
              "the 住民票 unchanged")
def move_within_dates(subject) -> str:
    """A 転居年月日 is a date, not in the future, and the 届出 comes within 14 days of it."""
    stub, session = _counter(subject)
    code = subject.person().resident_code
    seen = []
    for date, rule in (("2024/04/01", C.DATE_FORMAT), (_today(1), C.DATE_NOT_FUTURE), (_today(-15), C.NOTIFICATION_LATE)):
        request = with_notifier(_within(subject, code, move_date=date))
        seen.append(_refused_change(lambda: stub.MoveWithin(request, metadata=session, timeout=CHANGE), rule,
                                    stub, session, code))
    return "; ".join(seen)


# -- 転出 and 国外転出 -------------------------------------------------------------------------------------------------
@case("kizon/転出/removes", roles=("kizon",), profiles=("rules",), rules=(K.CURRENT_RESIDENT_REQUIRED,),
      request="MoveOut to 千代田区 of a person of the case's own; then MoveWithin and Death of the 除票",
      asserts="answered: a 除票 (転出) and a 転出証明書 of this municipality for the person; then FAILED_PRECONDITION "
              "CURRENT_RESIDENT_REQUIRED twice, the 除票 unchanged")
def move_out_removes(subject) -> str:
    """A 転出 makes the 住民票 a 除票 with its 転出証明書; a 除票 takes no counter change."""
    stub, session = _counter(subject)
    who = _register(subject, stub, session, name="適合 転出")
    code = who.resident_code
    reply = answered(lambda: stub.MoveOut(_move_out(stub, session, code), metadata=session, timeout=CHANGE))
    out, paper = reply.change.records[0], reply.certificate
    same((code, REMOVED, "転出", _today()), (out.resident_code, out.status, out.removal_reason, out.planned_move_out_date),
         "the 除票 the 転出 wrote")
    same((subject.home(), code, _today(), OUTSIDE),
         (paper.issuing_municipality_code, paper.person.resident_code, paper.planned_move_out_date,
          paper.destination_municipality_code), "the 転出証明書")
    same(REMOVED, answered(lambda: stub.GetResident(_key(code), metadata=session, timeout=READ)).status,
         "the person's status in the register")
    seen = [_refused_change(lambda: stub.MoveWithin(with_notifier(_within(subject, code)), metadata=session,
                                                    timeout=CHANGE), K.CURRENT_RESIDENT_REQUIRED, stub, session, code)]
    death = with_notifier(kizon_pb2.DeathRequest(resident_code=code, death_date=_today()))
    seen.append(_refused_change(lambda: stub.Death(death, metadata=session, timeout=CHANGE),
                                K.CURRENT_RESIDENT_REQUIRED, stub, session, code))
    return f"answered: 除票 and 転出証明書 {paper.certificate_number}; " + "; ".join(seen)


@case("kizon/転出/date-window", roles=("kizon",), profiles=("rules",), rules=(K.MOVE_OUT_DATE_WINDOW,),
      request="MoveOut planned 31 days ahead, and 15 days ago",
      asserts="FAILED_PRECONDITION MOVE_OUT_DATE_WINDOW both; the person still a current resident, unchanged")
def move_out_window(subject) -> str:
    """The planned date of a 転出 lies within 14 days past and 30 days ahead."""
    stub, session = _counter(subject)
    code = _register(subject, stub, session, name="適合 予定").resident_code
    seen = []
    for days in (31, -15):
        request = _move_out(stub, session, code, planned=_today(days))
        seen.append(_refused_change(lambda: stub.MoveOut(request, metadata=session, timeout=CHANGE),
                                    K.MOVE_OUT_DATE_WINDOW, stub, session, code))
    return "; ".join(seen)


@case("kizon/特例転出/card-holder", roles=("kizon",), profiles=("rules",), rules=(K.SPECIAL_MOVE_OUT_CARD_HOLDER,),
      request="MoveOut special (特例転出) of a person who holds no 個人番号カード",
      asserts="FAILED_PRECONDITION SPECIAL_MOVE_OUT_CARD_HOLDER; the person unchanged")
def special_move_out(subject) -> str:
    """Only a 個人番号カード holder moves out without a 転出証明書."""
    stub, session = _counter(subject)
    code = _register(subject, stub, session, name="適合 特例").resident_code
    others = [m.code for m in subject.topology.municipalities if m.code != subject.home()]
    request = _move_out(stub, session, code, to=others[0] if others else OUTSIDE, special=True)
    return _refused_change(lambda: stub.MoveOut(request, metadata=session, timeout=CHANGE),
                           K.SPECIAL_MOVE_OUT_CARD_HOLDER, stub, session, code)


@case("kizon/国外転出/destination", roles=("kizon",), profiles=("rules",), rules=(K.EMIGRATION_DESTINATION,),
      request="Emigrate with no country; then to a country, planned 31 days ahead",
      asserts="INVALID_ARGUMENT EMIGRATION_DESTINATION both; the person unchanged")
def emigration(subject) -> str:
    """A 国外転出 names the country and a planned date within the window of a 転出."""
    stub, session = _counter(subject)
    code = _register(subject, stub, session, name="適合 出国").resident_code
    seen = []
    for country, days in (("", 0), ("アメリカ合衆国", 31)):
        request = with_notifier(kizon_pb2.EmigrationRequest(resident_code=code, destination_country=country,
                                                            planned_date=_today(days)))
        seen.append(_refused_change(lambda: stub.Emigrate(request, metadata=session, timeout=CHANGE),
                                    K.EMIGRATION_DESTINATION, stub, session, code))
    return "; ".join(seen)


# -- 死亡 -------------------------------------------------------------------------------------------------------------
@case("kizon/死亡/removed-stays", roles=("kizon",), profiles=("rules",),
      rules=(K.CURRENT_RESIDENT_REQUIRED, C.REMOVED_STAY_REMOVED),
      request="Death of a person of the case's own; then MoveWithin of them, and MoveIn of them with a 転出証明書 of "
              "千代田区",
      asserts="answered: a 除票 (死亡); then FAILED_PRECONDITION CURRENT_RESIDENT_REQUIRED and FAILED_PRECONDITION "
              "REMOVED_STAY_REMOVED, the 除票 unchanged")
def death_removes(subject) -> str:
    """A dead person's 住民票 is a 除票: it takes no change, and the person is never registered again."""
    stub, session = _counter(subject)
    who = _register(subject, stub, session, name="適合 死亡")
    code = who.resident_code
    death = with_notifier(kizon_pb2.DeathRequest(resident_code=code, death_date=_today()))
    dead = answered(lambda: stub.Death(death, metadata=session, timeout=CHANGE)).records[0]
    same((REMOVED, "死亡", _today()), (dead.status, dead.removal_reason, dead.removal_date), "the 除票 the 死亡 wrote")
    seen = [_refused_change(lambda: stub.MoveWithin(with_notifier(_within(subject, code)), metadata=session,
                                                    timeout=CHANGE), K.CURRENT_RESIDENT_REQUIRED, stub, session, code)]
    back = _returning(subject, who, number=who.individual_number if individual_number_valid(who.individual_number)
                      else "")
    seen.append(_refused_change(lambda: stub.MoveIn(back, metadata=session, timeout=CHANGE), C.REMOVED_STAY_REMOVED,
                                stub, session, code))
    return "answered: 除票 (死亡); " + "; ".join(seen)


# -- 世帯 and 出生 ------------------------------------------------------------------------------------------------------
@case("kizon/世帯/moves-together", roles=("kizon",), profiles=("rules",), standard="住基法第23条; DESIGN §5 (世帯)",
      request="Birth of a child into the household of a person of the case's own; MoveWithin of the head, "
              "whole_household",
      asserts="answered: the child in the household (続柄 子, the head's address, a new 住民票コード); the 転居 moves "
              "both, who stay one household")
def moves_together(subject) -> str:
    """A child is born into the household; a 転居 of the whole household moves every member."""
    stub, session = _counter(subject)
    head = _register(subject, stub, session, name="適合 世帯主")
    household = head.household_number
    birth = with_notifier(kizon_pb2.BirthRequest(household_number=household, child=R.ResidentRecord(
        name_kanji="適合 子", name_kana="テキゴウ コ", birth_date=_today(), sex="1")))
    child = answered(lambda: stub.Birth(birth, metadata=session, timeout=CHANGE)).records[0]
    same((household, "子", head.address, CURRENT), (child.household_number, child.relationship, child.address,
                                                    child.status), "the child's 世帯, 続柄, address")
    if child.resident_code == head.resident_code or not child.resident_code:
        raise Failed("a new 住民票コード for the child", repr(child.resident_code))
    request = with_notifier(_within(subject, head.resident_code, whole_household=True,
                                    address=_address(subject, "10番地", 2)))
    moved = answered(lambda: stub.MoveWithin(request, metadata=session, timeout=CHANGE)).records
    same({head.resident_code, child.resident_code}, {r.resident_code for r in moved}, "the people the 転居 moved")
    members = _members(stub, session, household)
    same({(head.resident_code, request.address.town_code, "10番地"), (child.resident_code, request.address.town_code,
                                                                      "10番地")},
         {(m.resident_code, m.town_code, m.address_line) for m in members}, "the household at its new address")
    return f"answered: child {child.resident_code} born into {household}; both moved to {moved[0].address}"


@case("kizon/世帯/join", roles=("kizon",), profiles=("rules",),
      rules=(K.HOUSEHOLD_RELATIONSHIP_REQUIRED, K.HOUSEHOLD_NOT_FOUND),
      request="MoveIn (国外転入) into the run's person's household with no 続柄; Birth into a 世帯番号 no household has",
      asserts="INVALID_ARGUMENT HOUSEHOLD_RELATIONSHIP_REQUIRED, NOT_FOUND HOUSEHOLD_NOT_FOUND; the household as it "
              "was, and no household of that number")
def household_join(subject) -> str:
    """A person who joins a household has a 続柄, and the household exists."""
    stub, session = _counter(subject)
    household = subject.person().household_number
    before = _members(stub, session, household)
    joining = with_notifier(kizon_pb2.MoveInRequest(
        person=R.ResidentRecord(name_kanji="適合 同居", name_kana="テキゴウ ドウキョ", birth_date="1992-02-02", sex="1"),
        household_number=household, address=_address(subject, "1番地"), move_in_date=_today(), from_abroad=True))
    seen = [refused(lambda: stub.MoveIn(joining, metadata=session, timeout=CHANGE), K.HOUSEHOLD_RELATIONSHIP_REQUIRED)]
    same(before, _members(stub, session, household), "the household afterwards")
    nobody = f"{uuid.uuid4().int % 10**10:010d}"
    look = kizon_pb2.HouseholdRequest(household_number=nobody)
    refused(lambda: stub.GetHousehold(look, metadata=session, timeout=READ), K.HOUSEHOLD_NOT_FOUND)
    birth = with_notifier(kizon_pb2.BirthRequest(household_number=nobody, child=R.ResidentRecord(
        name_kanji="適合 孤児", name_kana="テキゴウ コジ", birth_date=_today(), sex="2")))
    seen.append(refused(lambda: stub.Birth(birth, metadata=session, timeout=CHANGE), K.HOUSEHOLD_NOT_FOUND))
    refused(lambda: stub.GetHousehold(look, metadata=session, timeout=READ), K.HOUSEHOLD_NOT_FOUND)
    return "; ".join(seen)


@case("kizon/世帯分離/member", roles=("kizon",), profiles=("rules",), rules=(K.HOUSEHOLD_SPLIT_MEMBER,),
      request="SplitHousehold of the run's person, the 世帯主 of a household of one",
      asserts="FAILED_PRECONDITION HOUSEHOLD_SPLIT_MEMBER; the 住民票 unchanged")
def split_member(subject) -> str:
    """A 世帯分離 takes a member other than the 世帯主 out of a household of two or more."""
    stub, session = _counter(subject)
    person = subject.person()
    if len(_members(stub, session, person.household_number)) != 1:
        raise Skipped(f"the run's person's household {person.household_number} is not a household of one")
    request = with_notifier(kizon_pb2.HouseholdSplitRequest(resident_code=person.resident_code))
    return _refused_change(lambda: stub.SplitHousehold(request, metadata=session, timeout=CHANGE),
                           K.HOUSEHOLD_SPLIT_MEMBER, stub, session, person.resident_code)


@case("kizon/世帯合併/two-households", roles=("kizon",), profiles=("rules",),
      rules=(K.HOUSEHOLD_MERGE_TWO, K.HOUSEHOLD_MERGE_SAME_ADDRESS),
      request="MergeHousehold of the run's person's household into itself; then of a household at another address "
              "into it",
      asserts="INVALID_ARGUMENT HOUSEHOLD_MERGE_TWO, then FAILED_PRECONDITION HOUSEHOLD_MERGE_SAME_ADDRESS; both "
              "households as they were")
def merge_households(subject) -> str:
    """A 世帯合併 names two different households at one address."""
    stub, session = _counter(subject)
    into = subject.person().household_number
    other = _register(subject, stub, session, name="適合 合併", line="11番地").household_number
    before = (_members(stub, session, into), _members(stub, session, other))
    seen = []
    for leaving, rule in ((into, K.HOUSEHOLD_MERGE_TWO), (other, K.HOUSEHOLD_MERGE_SAME_ADDRESS)):
        request = with_notifier(kizon_pb2.HouseholdMergeRequest(from_household=leaving, into_household=into))
        seen.append(refused(lambda: stub.MergeHousehold(request, metadata=session, timeout=CHANGE), rule))
    same(before, (_members(stub, session, into), _members(stub, session, other)), "the two households afterwards")
    return "; ".join(seen)


@case("kizon/世帯主変更/other-member", roles=("kizon",), profiles=("rules",), rules=(K.HOUSEHOLDER_CHANGE_OTHER_MEMBER,),
      request="ChangeHouseholder of the run's person's household to its 世帯主 itself; then to someone not of it",
      asserts="FAILED_PRECONDITION HOUSEHOLDER_CHANGE_OTHER_MEMBER both; the household as it was")
def householder_change(subject) -> str:
    """A 世帯主変更 makes a member other than the 世帯主 the 世帯主."""
    stub, session = _counter(subject)
    person = subject.person()
    household = person.household_number
    before = _members(stub, session, household)
    seen = []
    for new_head in (person.resident_code, _unknown_code()):
        request = with_notifier(kizon_pb2.HouseholderChangeRequest(household_number=household,
                                                                   new_head_resident_code=new_head))
        seen.append(refused(lambda: stub.ChangeHouseholder(request, metadata=session, timeout=CHANGE),
                            K.HOUSEHOLDER_CHANGE_OTHER_MEMBER))
    same(before, _members(stub, session, household), "the household afterwards")
    return "; ".join(seen)


@case("kizon/出生/dates", roles=("kizon",), profiles=("rules",), rules=(C.DATE_NOT_FUTURE,),
      request="Birth into the run's person's household born tomorrow; born 400 days ago",
      asserts="INVALID_ARGUMENT DATE_NOT_FUTURE both; the household as it was")
def birth_dates(subject) -> str:
    """A 生年月日 of a 出生 is not in the future, nor older than a year."""
    stub, session = _counter(subject)
    household = subject.person().household_number
    before = _members(stub, session, household)
    seen = []
    for days in (1, -400):
        birth = with_notifier(kizon_pb2.BirthRequest(household_number=household, child=R.ResidentRecord(
            name_kanji="適合 出生", name_kana="テキゴウ シュッセイ", birth_date=_today(days), sex="2")))
        seen.append(refused(lambda: stub.Birth(birth, metadata=session, timeout=CHANGE), C.DATE_NOT_FUTURE))
    same(before, _members(stub, session, household), "the household afterwards")
    return "; ".join(seen)


# -- items the office owns ------------------------------------------------------------------------------------------
@case("kizon/server-decides/derived-items", roles=("kizon",), profiles=("rules", "security"), rules=(C.SET_BY_SERVER,),
      request="Birth into the run's person's household stating the child's 個人番号, then its status; MoveIn (国外転入) "
              "into it stating a 個人履歴番号; ChangeCard stating the 市町村コード",
      asserts="INVALID_ARGUMENT SET_BY_SERVER each; the household and the person's 住民票 as they were")
def derived_items(subject) -> str:
    """Items the office derives (numbers, status, history, the municipality) are never set by the request."""
    stub, session = _counter(subject)
    person = subject.person()
    household = person.household_number
    before = (_members(stub, session, household), _history(stub, session, person.resident_code))
    child = dict(name_kanji="適合 派生", name_kana="テキゴウ ハセイ", birth_date=_today(), sex="1")
    attempts = [
        ("Birth 個人番号", lambda: stub.Birth(with_notifier(kizon_pb2.BirthRequest(
            household_number=household, child=R.ResidentRecord(
                individual_number=with_individual_number_check(f"{uuid.uuid4().int % 10**11:011d}"), **child))),
            metadata=session, timeout=CHANGE)),
        ("Birth status", lambda: stub.Birth(with_notifier(kizon_pb2.BirthRequest(
            household_number=household, child=R.ResidentRecord(status=CURRENT, **child))),
            metadata=session, timeout=CHANGE)),
        ("国外転入 個人履歴番号", lambda: stub.MoveIn(with_notifier(kizon_pb2.MoveInRequest(
            person=R.ResidentRecord(relationship="同居人", history_number=7, **child), household_number=household,
            address=_address(subject, "1番地"), move_in_date=_today(), from_abroad=True)),
            metadata=session, timeout=CHANGE)),
        ("ChangeCard 市町村コード", lambda: stub.ChangeCard(card_pb2.CardRequest(
            action=card_pb2.APPLY, resident_code=person.resident_code, municipality_code=OUTSIDE),
            metadata=session, timeout=CHANGE)),
    ]
    seen = [f"{what}: {refused(call, C.SET_BY_SERVER)}" for what, call in attempts]
    same(before, (_members(stub, session, household), _history(stub, session, person.resident_code)),
         "the household and the person's 住民票 afterwards")
    return "; ".join(s[:90] for s in seen)


# -- who makes a 届出, and when ----------------------------------------------------------------------------------------
@case("kizon/届出人/who-may-notify", roles=("kizon",), profiles=("rules", "security"), rules=(K.NOTIFIER_KIND,),
      request="Death of a person of the case's own notified by the person (本人); MoveWithin of them notified by a 第三者",
      asserts="PERMISSION_DENIED NOTIFIER_KIND both; the person still a current resident, unchanged")
def who_may_notify(subject) -> str:
    """A 死亡 is not notified by the person, and a 第三者 makes no 届出 but a 死亡."""
    stub, session = _counter(subject)
    code = _register(subject, stub, session, name="適合 届出").resident_code
    death = kizon_pb2.DeathRequest(resident_code=code, death_date=_today(), notifier=notifier(code=code))
    seen = [_refused_change(lambda: stub.Death(death, metadata=session, timeout=CHANGE), K.NOTIFIER_KIND,
                            stub, session, code)]
    move = _within(subject, code, notifier=R.Requester(**THIRD))
    seen.append(_refused_change(lambda: stub.MoveWithin(move, metadata=session, timeout=CHANGE), K.NOTIFIER_KIND,
                                stub, session, code))
    return "; ".join(seen)


@case("kizon/本人確認/requester", roles=("kizon",), profiles=("rules", "security"),
      rules=(K.REQUESTER_REQUIRED, K.REQUESTER_DOCUMENT),
      request="MoveWithin of the run's person with no 届出人, then with a 本人確認書類 the counter does not accept (社員証); "
              "IssueCertificate with no 請求者, then 本人 without their 住民票コード",
      asserts="INVALID_ARGUMENT REQUESTER_REQUIRED, REQUESTER_DOCUMENT, REQUESTER_REQUIRED, REQUESTER_REQUIRED; the "
              "住民票 and the 交付履歴 unchanged")
def requester_checked(subject) -> str:
    """A 届出 names its 届出人 and a 写し its 請求者, with the 本人確認書類 the counter accepts."""
    stub, session = _counter(subject)
    code = subject.person().resident_code
    seen = [_refused_change(lambda: stub.MoveWithin(_within(subject, code), metadata=session, timeout=CHANGE),
                            K.REQUESTER_REQUIRED, stub, session, code)]
    badge = _within(subject, code, notifier=notifier(code=code, document="社員証"))
    seen.append(_refused_change(lambda: stub.MoveWithin(badge, metadata=session, timeout=CHANGE), K.REQUESTER_DOCUMENT,
                                stub, session, code))
    nobody = kizon_pb2.CertificateRequest(kind=kizon_pb2.RESIDENT_COPY, resident_code=code)
    seen.append(_refused_issue(nobody, K.REQUESTER_REQUIRED, stub, session, code))
    seen.append(_refused_issue(_certificate(code, requester=notifier()), K.REQUESTER_REQUIRED, stub, session, code))
    return "; ".join(seen)


@case("kizon/届出年月日/office-today", roles=("kizon",), profiles=("rules",), rules=(C.SET_BY_SERVER,),
      request="MoveWithin of the run's person stating a 届出年月日 of yesterday, then of tomorrow",
      asserts="INVALID_ARGUMENT SET_BY_SERVER both; the 住民票 unchanged")
def notification_date(subject) -> str:
    """The 届出年月日 is the office's today: a request may repeat it, never set another."""
    stub, session = _counter(subject)
    code = subject.person().resident_code
    seen = []
    for days in (-1, 1):
        request = with_notifier(_within(subject, code, notification_date=_today(days)))
        seen.append(_refused_change(lambda: stub.MoveWithin(request, metadata=session, timeout=CHANGE),
                                    C.SET_BY_SERVER, stub, session, code))
    return "; ".join(seen)


# -- 写しの交付 ---------------------------------------------------------------------------------------------------------
@case("kizon/写し/除票", roles=("kizon",), profiles=("rules",),
      rules=(K.CERTIFICATE_REMOVED_ONLY, K.CERTIFICATE_CURRENT_ONLY, K.MOVE_OUT_CERTIFICATE_FOR_MOVE_OUT),
      request="IssueCertificate of a 除票の写し and a 転出証明書 of the run's person (current); of a 住民票の写し and a "
              "転出証明書 of a dead person of the case's own, then their 除票の写し",
      asserts="FAILED_PRECONDITION CERTIFICATE_REMOVED_ONLY twice, CERTIFICATE_CURRENT_ONLY, "
              "MOVE_OUT_CERTIFICATE_FOR_MOVE_OUT, no 交付履歴 written; the 除票の写し answered")
def removed_certificates(subject) -> str:
    """A 除票の写し certifies a 除票, a 転出証明書 a 転出, a 住民票の写し a current resident."""
    stub, session = _counter(subject)
    living = subject.person().resident_code
    seen = [_refused_issue(_certificate(living, kind), K.CERTIFICATE_REMOVED_ONLY, stub, session, living)
            for kind in (kizon_pb2.REMOVED_COPY, kizon_pb2.MOVE_OUT)]
    dead = _register(subject, stub, session, name="適合 故人").resident_code
    answered(lambda: stub.Death(with_notifier(kizon_pb2.DeathRequest(resident_code=dead, death_date=_today())),
                                metadata=session, timeout=CHANGE))
    heir = R.Requester(**AGENT)
    seen.append(_refused_issue(_certificate(dead, requester=heir), K.CERTIFICATE_CURRENT_ONLY, stub, session, dead))
    seen.append(_refused_issue(_certificate(dead, kizon_pb2.MOVE_OUT, heir), K.MOVE_OUT_CERTIFICATE_FOR_MOVE_OUT,
                               stub, session, dead))
    copy = answered(lambda: stub.IssueCertificate(_certificate(dead, kizon_pb2.REMOVED_COPY, heir), metadata=session,
                                                  timeout=CHANGE))
    if "removal_reason" not in copy.items_printed:
        raise Failed("a 除票の写し printing the 消除事由", repr(list(copy.items_printed)))
    return "; ".join(seen) + f"; 除票の写し {copy.issue_number} answered"


@case("kizon/写し/who-asks", roles=("kizon",), profiles=("rules", "security"),
      rules=(K.REQUESTER_NOT_SELF, K.REQUESTER_NOT_HOUSEHOLD),
      request="IssueCertificate of the run's person asked by 本人 naming another 住民票コード; by 同一世帯の者 naming "
              "someone of no household of theirs; by 同一世帯の者 naming the person themself",
      asserts="PERMISSION_DENIED REQUESTER_NOT_SELF, REQUESTER_NOT_HOUSEHOLD twice; no 交付履歴 written")
def who_asks(subject) -> str:
    """本人 and 同一世帯の者 are checked against the register, never taken on the requester's word."""
    stub, session = _counter(subject)
    code = subject.person().resident_code
    stranger = _unknown_code()
    asks = ((notifier(code=stranger), K.REQUESTER_NOT_SELF),
            (notifier(R.REQUESTER_HOUSEHOLD, code=stranger), K.REQUESTER_NOT_HOUSEHOLD),
            (notifier(R.REQUESTER_HOUSEHOLD, code=code), K.REQUESTER_NOT_HOUSEHOLD))
    return "; ".join(_refused_issue(_certificate(code, requester=who), rule, stub, session, code) for who, rule in asks)


@case("kizon/写し/agent-number", roles=("kizon",), profiles=("rules", "security"), rules=(K.REQUESTER_INDIVIDUAL_NUMBER,),
      request="IssueCertificate of the run's person with the 個人番号 (and a justification) asked by a 代理人 with a 委任状, "
              "by an operator who may print the 個人番号",
      asserts="PERMISSION_DENIED REQUESTER_INDIVIDUAL_NUMBER; no 交付履歴 written")
def agent_number(subject) -> str:
    """A 写し with the 個人番号 is given to 本人 or 同一世帯の者 only."""
    operator = _operator(subject, having=("individual_number",))
    place = subject.topology.municipality(subject.home())
    if place.terminals[0] not in place.number_terminals:
        raise Skipped(f"the terminal {place.terminals[0]} is not registered for the 個人番号")
    stub, session = _counter(subject, operator)
    code = subject.person().resident_code
    request = _certificate(code, requester=R.Requester(**AGENT), include_individual_number=True,
                           justification="税の手続のため")
    return _refused_issue(request, K.REQUESTER_INDIVIDUAL_NUMBER, stub, session, code)


@case("kizon/写し/third-party", roles=("kizon",), profiles=("rules", "security"), rules=(K.REQUESTER_THIRD_PARTY_SCOPE,),
      request="IssueCertificate asked by a 第三者 (with a reason): the household's 写し; a 記載事項証明書 of the 本籍; then "
              "the person's 住民票の写し",
      asserts="PERMISSION_DENIED REQUESTER_THIRD_PARTY_SCOPE twice, no 交付履歴 written; the 写し answered printing the "
              "基礎証明事項 only (no 続柄, 世帯主, 住民票コード)")
def third_party(subject) -> str:
    """A 第三者 is given the 基礎証明事項 of the persons asked for, never a household's 写し."""
    stub, session = _counter(subject)
    code = subject.person().resident_code
    stranger = R.Requester(**THIRD)
    seen = [_refused_issue(_certificate(code, kizon_pb2.HOUSEHOLD_COPY, stranger), K.REQUESTER_THIRD_PARTY_SCOPE,
                           stub, session, code),
            _refused_issue(_certificate(code, kizon_pb2.STATED_ITEMS, stranger, items=["name_kanji", "honseki"]),
                           K.REQUESTER_THIRD_PARTY_SCOPE, stub, session, code)]
    copy = answered(lambda: stub.IssueCertificate(_certificate(code, requester=stranger), metadata=session,
                                                  timeout=CHANGE))
    same(set(), set(copy.items_printed) & NOT_FOR_A_THIRD_PARTY, "items beyond the 基礎証明事項 printed for a 第三者")
    return "; ".join(seen) + f"; the 写し printed {', '.join(copy.items_printed)}"


@case("kizon/写し/individual-number", roles=("kizon",), profiles=("rules", "security"),
      rules=(K.INDIVIDUAL_NUMBER_PRINT_PERMISSION, P.CERTIFICATE_NUMBER_JUSTIFICATION),
      request="IssueCertificate of the run's person with the 個人番号 (本人, justified) by an operator without the "
              "permission; with the 個人番号 and no justification",
      asserts="PERMISSION_DENIED INDIVIDUAL_NUMBER_PRINT_PERMISSION, INVALID_ARGUMENT CERTIFICATE_NUMBER_JUSTIFICATION; "
              "no 交付履歴 written")
def number_permission(subject) -> str:
    """The 個人番号 is printed only with a justification, for staff with the permission."""
    stub, session = _counter(subject, _operator(subject, having=("clerk",), lacking=("individual_number",)))
    code = subject.person().resident_code
    justified = _certificate(code, include_individual_number=True, justification="年金の手続のため")
    seen = [_refused_issue(justified, K.INDIVIDUAL_NUMBER_PRINT_PERMISSION, stub, session, code)]
    unjustified = _certificate(code, include_individual_number=True)
    seen.append(_refused_issue(unjustified, P.CERTIFICATE_NUMBER_JUSTIFICATION, *_counter(subject), code))
    return "; ".join(seen)


@case("kizon/写し/kind", roles=("kizon",), profiles=("rules",),
      rules=(K.CERTIFICATE_KIND_UNKNOWN, P.CERTIFICATE_STATED_ITEMS),
      request="IssueCertificate of the run's person of kind UNSPECIFIED; a 記載事項証明書 naming no item; one naming the "
              "個人番号 as an item",
      asserts="INVALID_ARGUMENT CERTIFICATE_KIND_UNKNOWN, CERTIFICATE_STATED_ITEMS twice; no 交付履歴 written")
def certificate_kind(subject) -> str:
    """A certificate is of a kind the office issues; a 記載事項証明書 names the items of the 住民票 it certifies."""
    stub, session = _counter(subject)
    code = subject.person().resident_code
    asks = ((_certificate(code, kizon_pb2.CERTIFICATE_KIND_UNSPECIFIED), K.CERTIFICATE_KIND_UNKNOWN),
            (_certificate(code, kizon_pb2.STATED_ITEMS), P.CERTIFICATE_STATED_ITEMS),
            (_certificate(code, kizon_pb2.STATED_ITEMS, items=["name_kanji", "individual_number"]),
             P.CERTIFICATE_STATED_ITEMS))
    return "; ".join(_refused_issue(request, rule, stub, session, code) for request, rule in asks)


@case("kizon/広域交付/resident-copy-only", roles=("kizon",), profiles=("rules",), rules=(K.WIDE_AREA_RESIDENT_COPY_ONLY,),
      request="IssueCertificate for a resident of another municipality (広域交付, card and PIN) of the household's 写し, "
              "then of a 記載事項証明書",
      asserts="INVALID_ARGUMENT WIDE_AREA_RESIDENT_COPY_ONLY both (before the card is looked up)")
def wide_area(subject) -> str:
    """広域交付 issues a 住民票の写し (個人) only, without the 個人番号."""
    stub, session = _counter(subject)
    others = [m.code for m in subject.topology.municipalities if m.code != subject.home()]
    home = others[0] if others else OUTSIDE
    seen = []
    for kind, items in ((kizon_pb2.HOUSEHOLD_COPY, []), (kizon_pb2.STATED_ITEMS, ["name_kanji"])):
        request = kizon_pb2.CertificateRequest(kind=kind, home_municipality_code=home, card_number="000000000000",
                                               pin="1234", items=items)
        seen.append(refused(lambda: stub.IssueCertificate(request, metadata=session, timeout=CHANGE),
                            K.WIDE_AREA_RESIDENT_COPY_ONLY))
    return "; ".join(seen)


# -- 職権 ---------------------------------------------------------------------------------------------------------------
@case("kizon/職権/role-and-survey", roles=("kizon",), profiles=("rules", "security"),
      rules=(K.OFFICIAL_ROLE, K.OFFICIAL_SURVEY_REQUIRED),
      request="RemoveByOffice (職権消除) of a person of the case's own by an operator without the role official; by an "
              "official naming no 実態調査; by an official naming no reason",
      asserts="PERMISSION_DENIED OFFICIAL_ROLE, INVALID_ARGUMENT OFFICIAL_SURVEY_REQUIRED twice; the person still a "
              "current resident, unchanged")
def official_removal(subject) -> str:
    """職権消除 is made by the role official, naming its reason and the 実態調査 it rests on."""
    clerk = _operator(subject, having=("clerk",), lacking=("official",))
    official = _operator(subject, having=("official",))
    stub, session = _counter(subject, clerk)
    code = _register(subject, stub, session, name="適合 職権").resident_code

    def removal(reason="実態調査の結果、居住の実態なし", survey="調査-適合-1"):
        return kizon_pb2.OfficialRemovalRequest(resident_code=code, reason=reason, survey_reference=survey,
                                                found_date=_today())
    seen = [_refused_change(lambda: stub.RemoveByOffice(removal(), metadata=session, timeout=CHANGE), K.OFFICIAL_ROLE,
                            stub, session, code)]
    as_official = subject.session(official)
    for request in (removal(survey=""), removal(reason="")):
        seen.append(_refused_change(lambda: stub.RemoveByOffice(request, metadata=as_official, timeout=CHANGE),
                                    K.OFFICIAL_SURVEY_REQUIRED, stub, session, code))
    return "; ".join(seen)


@case("kizon/職権修正/items", roles=("kizon",), profiles=("rules", "security"),
      rules=(K.CORRECTION_ITEMS, K.CORRECTION_EMPTY),
      request="Correct (職権修正) of the run's person stating a 個人番号, a 世帯番号, a status; then stating nothing to "
              "correct",
      asserts="INVALID_ARGUMENT CORRECTION_ITEMS three times, then INVALID_ARGUMENT CORRECTION_EMPTY; the 住民票 "
              "unchanged")
def correction_items(subject) -> str:
    """A 職権修正 corrects the person's items, never numbers or keys, and at least one."""
    stub, session = _counter(subject)
    person = subject.person()
    code = person.resident_code
    seen = []
    for items, rule in (({"individual_number": with_individual_number_check("12345678901")}, K.CORRECTION_ITEMS),
                        ({"household_number": f"{uuid.uuid4().int % 10**10:010d}"}, K.CORRECTION_ITEMS),
                        ({"status": REMOVED}, K.CORRECTION_ITEMS), ({}, K.CORRECTION_EMPTY)):
        request = kizon_pb2.CorrectionRequest(corrected=R.ResidentRecord(resident_code=code, **items), reason="誤記の訂正")
        seen.append(_refused_change(lambda: stub.Correct(request, metadata=session, timeout=CHANGE), rule,
                                    stub, session, code))
    return "; ".join(s[:80] for s in seen)
