"""The cases of the items a caller types, wherever it can send them: sizes, characters, required items, 性別, the
地方公共団体コード and the 個人番号 at kizon's counter and in the updates the 市町村CS takes from kizon, a read of a record no one
holds; and the rest of the formats and kinds of the other doors: the initial load (移行) at kizon, a card for a current
resident only, 庁内連携's keys at the 宛名 system, the card system's actions and PINs, the certificate a kiosk shows
the 証明書交付センター.

A refused change of a person reads them back (their 住民票's every entry at kizon, their 本人確認情報 at the CS) and
asserts it is as it was; a refused change of someone new reads back that no one holds their 住民票コード."""
from __future__ import annotations

import uuid

from nodes.numbers import municipality_code_valid, with_individual_number_check
from nodes.reasons import card as CR, centre as X, common as C, kizon as K, koseki as F, moj as M, office as O
from protos import atena_pb2, card_pb2, centre_pb2, common_pb2, identity_pb2, kizon_pb2, records_pb2
from testbed.conform.atena import _office
from testbed.conform.card import _card_state, _card_system, _cs_name, _invented_code, _kiosk, _manufactured
from testbed.conform.case import Skipped, answered, case, refused, same
from testbed.conform.counter import _address, _counter, _history, _key, _register, _today
from testbed.conform.cs import _as_kizon, _refused_update, _search
from testbed.requests import OUTSIDE, OUTSIDE_ADDRESS, death, with_notifier

R = records_pb2
NOT_A_CASE = {
    F.FAMILY_NOTICE_KIND.reason: "a 戸籍 notice carries the 戸籍 system's own sequence number (the next one kizon "
                                 "expects): a case's notice would take the number of the 戸籍 system's next one, and "
                                 "a refused notice is answered in the acknowledgement, not refused",
    M.IMMIGRATION_NOTICE_ITEMS.reason: "kizon takes the 法務省通知 from its CS itself (a background job) and sets a "
                                       "malformed one aside in its log and audit: no caller's request is refused",
    K.REQUEST_IN_PROGRESS.reason: "it needs a retry to arrive while the first request with its 依頼管理番号 is still "
                                  "being served: a race, or a first request held up by a stopped CS",
    K.CHANGES_WAIT_FOR_CS.reason: "it needs changes sent to the 市町村CS left unsettled (the CS stopped or a crash "
                                  "between the two): fault injection",
    K.CHANGE_OUTCOME_UNKNOWN.reason: "it needs the 市町村CS to fail to answer a change it may have applied (the CS "
                                     "stopped mid-change): fault injection",
    O.OFFICE_SYSTEM_UNKNOWN.reason: "the policy lets only the office systems of the 事務 table (tax, election) reach "
                                    "庁内連携: any other caller is refused by the policy before the rule",
    X.CENTRE_CHALLENGE_EXPIRED.reason: "a challenge lives 60 s by the centre's clock: trying it takes a minute's wait "
                                       "or a clock moved",
}


def _unknown_code() -> str:
    """A well-formed 住民票コード no one was given."""
    return _invented_code()


def _bad_municipality_code() -> str:
    """A 6-digit code whose check digit is wrong (the subject's own with another last digit)."""
    return next(f"14214{d}" for d in "0123456789" if not municipality_code_valid(f"14214{d}"))


def _bad_individual_number() -> str:
    """12 digits whose check digit is wrong."""
    good = with_individual_number_check(f"9{uuid.uuid4().int % 10**10:010d}")
    return good[:-1] + str((int(good[-1]) + 1) % 10)


def _within(subject, code: str, **address) -> kizon_pb2.MoveWithinRequest:
    """A 転居届 of a person, today, to an address of the municipality stated so."""
    place = {"line": "9番地", **address}
    return with_notifier(kizon_pb2.MoveWithinRequest(
        resident_code=code, address=_address(subject, place.pop("line"), 0, place.pop("katagaki", "")),
        move_date=_today()))


def _move_out(code: str, **items) -> kizon_pb2.MoveOutRequest:
    """A 転出届 of a person to 千代田区, planned today, with items stated otherwise."""
    fields = {"resident_code": code, "destination_address": OUTSIDE_ADDRESS, "destination_municipality_code": OUTSIDE,
              "planned_date": _today()}
    fields.update(items)
    return with_notifier(kizon_pb2.MoveOutRequest(**fields))


def _refused_change(subject, rule, method: str, request) -> str:
    """Send a change of the run's person at the counter; assert the refusal and that their 住民票 is as it was."""
    stub, session = _counter(subject)
    code = subject.person().resident_code
    before = _history(stub, session, code)
    observed = refused(lambda: getattr(stub, method)(request, metadata=session, timeout=30), rule)
    same(before, _history(stub, session, code), f"the 住民票 of {code} afterwards")
    return observed


def _absent_at_kizon(subject, code: str) -> None:
    """Assert kizon holds no 住民票 of code (RECORD_NOT_FOUND)."""
    stub, session = _counter(subject)
    refused(lambda: stub.GetResident(_key(code), metadata=session, timeout=10), C.RECORD_NOT_FOUND)


def _move_in_abroad(subject, **person) -> kizon_pb2.MoveInRequest:
    items = {"name_kanji": "適合 項目", "name_kana": "テキゴウ コウモク", "birth_date": "1990-04-01", "sex": "9"}
    items.update(person)
    return with_notifier(kizon_pb2.MoveInRequest(person=R.ResidentRecord(**items), address=_address(subject, "2番地"),
                                                 move_in_date=_today(), from_abroad=True))


# == kizon's counter: the items ========================================================================================
@case("kizon/項目/length", roles=("kizon",), profiles=("rules",), rules=(C.ITEM_LENGTH,),
      request="MoveWithin (転居) of the run's person to an address whose 番地 has 61 characters",
      asserts="INVALID_ARGUMENT ITEM_LENGTH; their 住民票 unchanged")
def item_length(subject) -> str:
    """A text item is within its length."""
    return _refused_change(subject, C.ITEM_LENGTH, "MoveWithin",
                           _within(subject, subject.person().resident_code, line="1" * 61))


@case("kizon/項目/characters", roles=("kizon",), profiles=("rules", "security"), rules=(C.ITEM_CHARACTERS,),
      request="MoveWithin (転居) of the run's person: a 番地 holding U+0000; a 方書 holding U+202E (a BiDi override)",
      asserts="INVALID_ARGUMENT ITEM_CHARACTERS, both; their 住民票 unchanged")
def item_characters(subject) -> str:
    """A text item holds no control, format or surrogate character."""
    code = subject.person().resident_code
    seen = [_refused_change(subject, C.ITEM_CHARACTERS, "MoveWithin", _within(subject, code, line="1番\x00地")),
            _refused_change(subject, C.ITEM_CHARACTERS, "MoveWithin",
                            _within(subject, code, katagaki="適合荘\u202e101"))]
    return f"{seen[0].split(':')[0]}, ×2"


@case("kizon/項目/required", roles=("kizon",), profiles=("rules",), rules=(C.ITEM_REQUIRED,),
      request="MoveOut (転出) of the run's person with a 転出先 of blanks",
      asserts="INVALID_ARGUMENT ITEM_REQUIRED; their 住民票 unchanged (still a current resident)")
def item_required(subject) -> str:
    """A required item is present."""
    return _refused_change(subject, C.ITEM_REQUIRED, "MoveOut",
                           _move_out(subject.person().resident_code, destination_address="  "))


@case("kizon/性別/code", roles=("kizon",), profiles=("rules",), rules=(C.SEX_CODE,),
      request="MoveIn (国外転入) of a new person with 性別 3; with 性別 男",
      asserts="INVALID_ARGUMENT SEX_CODE, both")
def sex_code(subject) -> str:
    """性別 is 1 (男), 2 (女) or 9 (不詳)."""
    stub, session = _counter(subject)
    seen = [refused(lambda: stub.MoveIn(_move_in_abroad(subject, sex=sex), metadata=session, timeout=30), C.SEX_CODE)
            for sex in ("3", "男")]
    return f"{seen[0].split(':')[0]}, ×2"


@case("kizon/市町村コード/format", roles=("kizon",), profiles=("rules",), rules=(C.MUNICIPALITY_CODE_FORMAT,),
      request="MoveOut (転出) of the run's person to a 転出先市町村コード with a wrong check digit; of 5 digits",
      asserts="INVALID_ARGUMENT MUNICIPALITY_CODE_FORMAT, both; their 住民票 unchanged")
def municipality_code_format(subject) -> str:
    """A 地方公共団体コード is 6 digits with a valid check digit."""
    code = subject.person().resident_code
    seen = [_refused_change(subject, C.MUNICIPALITY_CODE_FORMAT, "MoveOut",
                            _move_out(code, destination_municipality_code=bad))
            for bad in (_bad_municipality_code(), "13101")]
    return f"{seen[0].split(':')[0]}, ×2"


@case("kizon/個人番号/format", roles=("kizon",), profiles=("rules",), rules=(C.INDIVIDUAL_NUMBER_FORMAT,),
      request="MoveIn (転入) with a paper 転出証明書 of 千代田区 whose 個人番号 has a wrong check digit (a 住民票コード "
              "no one holds here)",
      asserts="INVALID_ARGUMENT INDIVIDUAL_NUMBER_FORMAT; no 住民票 of that 住民票コード afterwards")
def individual_number_format(subject) -> str:
    """A 個人番号 is 12 digits with a valid check digit."""
    stub, session = _counter(subject)
    code = _unknown_code()
    paper = identity_pb2.MoveOutCertificate(
        certificate_number=f"{OUTSIDE}-{uuid.uuid4().int % 10**8:08d}", issuing_municipality_code=OUTSIDE,
        person=R.ResidentRecord(resident_code=code, individual_number=_bad_individual_number(), name_kanji="適合 番号",
                                name_kana="テキゴウ バンゴウ", birth_date="1980-02-02", sex="1", address=OUTSIDE_ADDRESS),
        planned_move_out_date=_today(), destination_address=f"{subject.home()} 5番地",
        destination_municipality_code=subject.home())
    request = with_notifier(kizon_pb2.MoveInRequest(person=R.ResidentRecord(resident_code=code),
                                                    address=_address(subject, "5番地"), move_in_date=_today(),
                                                    certificate=paper))
    observed = refused(lambda: stub.MoveIn(request, metadata=session, timeout=30), C.INDIVIDUAL_NUMBER_FORMAT)
    _absent_at_kizon(subject, code)
    return observed


@case("kizon/照会/not-found", roles=("kizon",), profiles=("rules",), rules=(C.RECORD_NOT_FOUND,),
      request="GetResident of a well-formed 住民票コード no one holds", asserts="NOT_FOUND RECORD_NOT_FOUND")
def kizon_not_found(subject) -> str:
    """A read names a record the node holds."""
    stub, session = _counter(subject)
    code = _unknown_code()
    return refused(lambda: stub.GetResident(_key(code), metadata=session, timeout=10), C.RECORD_NOT_FOUND,
                   node=subject.node.name)


@case("kizon/カード/current-resident", roles=("kizon",), profiles=("rules",), rules=(K.CARD_CURRENT_RESIDENT,),
      request="ChangeCard APPLY at the counter for a person (of the case's own) who died",
      asserts="FAILED_PRECONDITION CARD_CURRENT_RESIDENT; their 除票 unchanged")
def card_current_resident(subject) -> str:
    """A 個人番号カード is applied for by a current resident of the municipality."""
    stub, session = _counter(subject)
    who = _register(subject, stub, session, name="適合 故人", kana="テキゴウ コジン")
    answered(lambda: stub.Death(death(who.resident_code), metadata=session, timeout=30))
    before = _history(stub, session, who.resident_code)
    observed = refused(lambda: stub.ChangeCard(card_pb2.CardRequest(action=card_pb2.APPLY, resident_code=who.resident_code),
                                               metadata=session, timeout=30), K.CARD_CURRENT_RESIDENT)
    same(before, _history(stub, session, who.resident_code), "the 除票 afterwards")
    return observed


# == kizon: the initial load (移行) ====================================================================================
def _manager(subject) -> str:
    place = subject.topology.municipality(subject.home())
    found = next((o.id for o in place.operators if "manager" in o.roles), None)
    if found is None:
        raise Skipped(f"no operator of {place.code} holds the manager role (the initial load is a manager's)")
    return found


def _load(subject, records):
    """BulkLoad of one batch as the municipality's manager sends it."""
    stub, session = _counter(subject, _manager(subject))
    batch = kizon_pb2.ResidentBatch(records=records)
    return lambda: stub.BulkLoad(iter([batch]), metadata=session, timeout=30)


def _loaded(code: str, name: str = "適合 移行") -> R.ResidentRecord:
    return R.ResidentRecord(resident_code=code, name_kanji=name, name_kana="テキゴウ イコウ", birth_date="1975-05-05",
                            sex="2", address=f"{OUTSIDE_ADDRESS}")


@case("kizon/移行/duplicate", roles=("kizon",), profiles=("rules",), rules=(K.INITIAL_LOAD_DUPLICATE,),
      request="BulkLoad by a manager of one batch naming one new 住民票コード twice",
      asserts="INVALID_ARGUMENT INITIAL_LOAD_DUPLICATE; no 住民票 of that 住民票コード afterwards")
def initial_load_duplicate(subject) -> str:
    """A batch of the initial load names each 住民票コード once."""
    code = _unknown_code()
    observed = refused(_load(subject, [_loaded(code), _loaded(code, "適合 重複")]), K.INITIAL_LOAD_DUPLICATE)
    _absent_at_kizon(subject, code)
    return observed


@case("kizon/移行/already-recorded", roles=("kizon",), profiles=("rules",), rules=(K.INITIAL_LOAD_ALREADY_RECORDED,),
      request="BulkLoad by a manager of one batch holding the run's person's 住民票コード (another 氏名)",
      asserts="ALREADY_EXISTS INITIAL_LOAD_ALREADY_RECORDED; their 住民票 unchanged")
def initial_load_already_recorded(subject) -> str:
    """The initial load never overwrites a resident already recorded."""
    stub, session = _counter(subject)
    code = subject.person().resident_code
    before = _history(stub, session, code)
    observed = refused(_load(subject, [_loaded(code, "適合 上書")]), K.INITIAL_LOAD_ALREADY_RECORDED)
    same(before, _history(stub, session, code), f"the 住民票 of {code} afterwards")
    return observed


# == the CS: the items of kizon's updates ==============================================================================
@case("cs/更新/individual-number-format", roles=("cs",), profiles=("rules",), rules=(C.INDIVIDUAL_NUMBER_FORMAT,),
      request="SubmitIdentityUpdates as kizon: a 職権修正 stating a 個人番号 with a wrong check digit; SearchIdentity "
              "from a terminal by a 個人番号 of 3 digits",
      asserts="INVALID_ARGUMENT INDIVIDUAL_NUMBER_FORMAT, both; the 本人確認情報 unchanged")
def cs_individual_number_format(subject) -> str:
    """A 個人番号 is 12 digits with a valid check digit."""
    observed = _refused_update(subject, C.INDIVIDUAL_NUMBER_FORMAT, individual_number=_bad_individual_number())
    search = _search(subject)
    refused(lambda: search(identity_pb2.IdentitySearch(individual_number="123")), C.INDIVIDUAL_NUMBER_FORMAT)
    return f"{observed.split(':')[0]}, ×2"


@case("cs/更新/sex-code", roles=("cs",), profiles=("rules",), rules=(C.SEX_CODE,),
      request="SubmitIdentityUpdates as kizon: a 職権修正 stating 性別 3", asserts="INVALID_ARGUMENT SEX_CODE; the 本人確認情報 unchanged")
def cs_sex_code(subject) -> str:
    """性別 is 1 (男), 2 (女) or 9 (不詳)."""
    return _refused_update(subject, C.SEX_CODE, sex="3")


@case("cs/更新/item-required", roles=("cs",), profiles=("rules",), rules=(C.ITEM_REQUIRED,),
      request="SubmitIdentityUpdates as kizon: a 職権修正 stating a 漢字氏名 of blanks",
      asserts="INVALID_ARGUMENT ITEM_REQUIRED; the 本人確認情報 unchanged")
def cs_item_required(subject) -> str:
    """A required item is present."""
    return _refused_update(subject, C.ITEM_REQUIRED, name_kanji="  ")


@case("cs/更新/item-length", roles=("cs",), profiles=("rules",), rules=(C.ITEM_LENGTH,),
      request="SubmitIdentityUpdates as kizon: a 職権修正 stating a 漢字氏名 of 61 characters",
      asserts="INVALID_ARGUMENT ITEM_LENGTH; the 本人確認情報 unchanged")
def cs_item_length(subject) -> str:
    """A text item is within its length."""
    return _refused_update(subject, C.ITEM_LENGTH, name_kanji="長" * 61)


@case("cs/更新/item-characters", roles=("cs",), profiles=("rules", "security"), rules=(C.ITEM_CHARACTERS,),
      request="SubmitIdentityUpdates as kizon: a 職権修正 stating a 漢字氏名 holding U+0000",
      asserts="INVALID_ARGUMENT ITEM_CHARACTERS; the 本人確認情報 unchanged")
def cs_item_characters(subject) -> str:
    """A text item holds no control, format or surrogate character."""
    return _refused_update(subject, C.ITEM_CHARACTERS, name_kanji="適合\x00試験")


@case("cs/更新/municipality-code", roles=("cs",), profiles=("rules",), rules=(C.MUNICIPALITY_CODE_FORMAT,),
      request="SubmitIdentityUpdates as kizon: a 職権修正 stating a 前住所地市町村コード with a wrong check digit",
      asserts="INVALID_ARGUMENT MUNICIPALITY_CODE_FORMAT; the 本人確認情報 unchanged")
def cs_municipality_code(subject) -> str:
    """A 地方公共団体コード is 6 digits with a valid check digit."""
    return _refused_update(subject, C.MUNICIPALITY_CODE_FORMAT, previous_municipality_code=_bad_municipality_code())


@case("cs/照会/not-found", roles=("cs",), profiles=("rules",), rules=(C.RECORD_NOT_FOUND,),
      request="GetIdentity as kizon of a well-formed 住民票コード no one holds", asserts="NOT_FOUND RECORD_NOT_FOUND")
def cs_not_found(subject) -> str:
    """A read names a record the node holds."""
    code = _unknown_code()
    return refused(lambda: _as_kizon(subject).GetIdentity(common_pb2.ResidentKey(resident_code=code), timeout=10),
                   C.RECORD_NOT_FOUND, node=subject.node.name)


# == 団体内統合宛名システム: 庁内連携's keys ================================================================================
@case("atena/庁内連携/key-format", roles=("atena",), profiles=("rules",), rules=(O.OFFICE_KEY_FORMAT,),
      request="LookupResident as the tax system by a 宛名番号 of 3 digits; by a 団体内統合宛名番号 of 14 digits and a letter",
      asserts="INVALID_ARGUMENT OFFICE_KEY_FORMAT, both")
def office_key_format(subject) -> str:
    """A 団体内統合宛名番号 or 宛名番号 is 15 digits."""
    tax = _office(subject, "tax")
    seen = [refused(lambda: tax.LookupResident(atena_pb2.OfficeQuery(**key), timeout=10), O.OFFICE_KEY_FORMAT,
                    node=subject.node.name)
            for key in ({"atena_number": "123"}, {"unified_atena_number": "12345678901234a"})]
    return f"{seen[0].split(':')[0]}, ×2"


@case("atena/庁内連携/one-key", roles=("atena",), profiles=("rules",), rules=(O.OFFICE_QUERY_ONE_KEY,),
      request="LookupResident as the tax system naming no key; naming the run's person by 宛名番号 and 個人番号 both",
      asserts="INVALID_ARGUMENT OFFICE_QUERY_ONE_KEY, both")
def office_one_key(subject) -> str:
    """An office query names the person by exactly one key."""
    person, tax = subject.person(), _office(subject, "tax")
    if not person.atena_number or not person.individual_number:
        raise Skipped("the counter's answer for the run's person names no 個人番号 or 宛名番号")
    seen = [refused(lambda: tax.LookupResident(query, timeout=10), O.OFFICE_QUERY_ONE_KEY, node=subject.node.name)
            for query in (atena_pb2.OfficeQuery(), atena_pb2.OfficeQuery(
                atena_number=person.atena_number, individual_number=person.individual_number))]
    return f"{seen[0].split(':')[0]}, ×2"


# == 個人番号カード管理システム ============================================================================================
@case("card/lifecycle/action-unknown", roles=("card",), profiles=("rules",), rules=(CR.CARD_ACTION_UNKNOWN,),
      request="ChangeCard as the CS with action 42 (none of the lifecycle's) for a person without a card",
      asserts="INVALID_ARGUMENT CARD_ACTION_UNKNOWN; the person still without a card")
def card_action_unknown(subject) -> str:
    """A card step is one of the lifecycle's actions."""
    cs, code = _card_system(subject, _cs_name(subject)), _unknown_code()
    observed = refused(lambda: cs.ChangeCard(card_pb2.CardRequest(action=42, resident_code=code,
                                                                  municipality_code=subject.home()), timeout=10),
                       CR.CARD_ACTION_UNKNOWN, node=subject.node.name)
    same("none", _card_state(subject, code).state, f"the card of {code} afterwards")
    return observed


@case("card/暗証番号/format", roles=("card",), profiles=("rules",), rules=(CR.PIN_FORMAT,),
      request="ChangeCard ISSUE as the CS of a card the batch made, with the PIN '12a4'; with the PIN '12345'",
      asserts="INVALID_ARGUMENT PIN_FORMAT, both; the card still manufactured")
def pin_format(subject) -> str:
    """A card's PIN is four digits."""
    code, cs = _manufactured(subject), _card_system(subject, _cs_name(subject))
    seen = [refused(lambda: cs.ChangeCard(card_pb2.CardRequest(action=card_pb2.ISSUE, resident_code=code,
                                                               municipality_code=subject.home(), pin=pin), timeout=10),
                    CR.PIN_FORMAT, node=subject.node.name) for pin in ("12a4", "12345")]
    same("manufactured", _card_state(subject, code).state, "the card afterwards")
    return f"{seen[0].split(':')[0]}, ×2"


# == 証明書交付センター ===================================================================================================
@case("centre/利用者証明/format", roles=("centre",), profiles=("rules", "security"), rules=(X.CENTRE_CERTIFICATE_FORMAT,),
      request="BeginIssuance from a kiosk with bytes that are no certificate; with none",
      asserts="INVALID_ARGUMENT CENTRE_CERTIFICATE_FORMAT, both; no challenge given")
def centre_certificate_format(subject) -> str:
    """The kiosk presents the card's 利用者証明用電子証明書 as one DER X.509 certificate."""
    kiosk = _kiosk(subject)
    seen = [refused(lambda: kiosk.BeginIssuance(centre_pb2.BeginRequest(user_certificate=der), timeout=10),
                    X.CENTRE_CERTIFICATE_FORMAT, node=subject.node.name) for der in (b"\x30\x03not a certificate", b"")]
    return f"{seen[0].split(':')[0]}, ×2"
