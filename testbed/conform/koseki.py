"""The cases of the 戸籍 system (its 届出 and the 附票), of 法務省's 在留カード等発行システム (the changes an 入管 office
records, the 市町村通知 it takes) and of kizon's 住基GW (the 戸籍 system's notices, the 法務省通知 applied 職権, the
裁判員候補者名簿), each as the network's own callers send them.

A case that needs people in a 戸籍 loads a 戸籍 of its own through the LAN's operations console (the load every 戸籍
system takes: LoadFamilyRegisters), of people known to no register unless the case moved them in first; a case that
needs a 在留カード loads its own through 法務省's console. None of them changes the run's person, and no case sends a
notice that takes a number of a real sender's sequence (a notice the suite forges is far ahead of any real one).
"""
from __future__ import annotations

import datetime as dt
import time
import uuid

import grpc

from nodes.clock import office_today
from nodes.guard import REQUEST_KEY
from nodes.numbers import with_resident_code_check
from nodes.reasons import access as A, gateway as G, koseki as F, moj as R
from protos import (common_pb2, gateway_pb2, gateway_pb2_grpc, identity_pb2, kizon_pb2, kizon_pb2_grpc, koseki_pb2,
                    koseki_pb2_grpc, moj_pb2, moj_pb2_grpc, records_pb2)
from scenarios.towns import towns
from testbed.client import console_cert, login_request, named_cert, node_cert, session_metadata, terminal_cert
from testbed.conform.case import Failed, Skipped, answered, case, outcome, refused, said, same
from testbed.requests import notifier, with_notifier

FAR_AHEAD = 10**12  # a notice number no real sender reaches: a forged notice never takes a real one's place
ARRIVAL = 15.0  # seconds a notice may take to reach the 住民票 (the 住基GW takes 法務省通知 from the CS each second)
FOREIGN = "外国人住民"


# -- the nodes and the callers ------------------------------------------------------------------------------------
def _node(subject, kind: str):
    """The node of a kind that serves the subject's municipality (the subject itself when it is one)."""
    if subject.role == kind:
        return subject.node
    try:
        return subject.topology.find(kind, None if kind == "moj" else subject.home())
    except KeyError:
        raise Skipped(f"no {kind} node serves {subject.home()} in this topology") from None


def _elsewhere(subject) -> str:
    """Another municipality of the topology (Skipped without one)."""
    other = next((m.code for m in subject.topology.municipalities if m.code != subject.home()), None)
    if other is None:
        raise Skipped("the topology has one municipality: a caller of another one needs a second")
    return other


def _cert(subject, kind: str, municipality: str):
    """The client certificate of a municipality's node of a kind (Skipped when the topology has none)."""
    try:
        return node_cert(subject.pki, subject.topology.find(kind, municipality).name)
    except KeyError:
        raise Skipped(f"no {kind} of {municipality} in this topology") from None


def _named(subject, name: str):
    """A client certificate of the PKI by name (Skipped when the PKI issued none)."""
    cert = named_cert(subject.pki, name)
    if not cert.cert.exists():
        raise Skipped(f"the PKI issued no client certificate {name}")
    return cert


def _place_name(subject) -> str:
    """The municipality's name as a 本籍 begins with it (都道府県 and 市町村)."""
    place = subject.topology.municipality(subject.home())
    return subject.topology.prefectures.get(place.prefecture, "") + place.name


def _code() -> str:
    """A 住民票コード of the right shape that names no one (a person of a 戸籍 who has no 住民票)."""
    return with_resident_code_check(f"9{uuid.uuid4().int % 10**9:09d}")


def _card_number() -> str:
    """A new 在留カード番号 of the layout (its letters Q and K, which the population's cards never use)."""
    return f"QK{uuid.uuid4().int % 10**8:08d}KQ"


def _years_ago(years: int) -> str:
    today = office_today()
    return today.replace(year=today.year - years, day=min(today.day, 28)).isoformat()


def _later(days: int = 3 * 365) -> str:
    return (office_today() + dt.timedelta(days=days)).isoformat()


def _refused_by_any(call, rules) -> str:
    """Assert that call is refused under one of the rules (its status code and id); what was observed."""
    code, reason, details, _ = outcome(call)
    if not any(code == r.code and reason == r.reason for r in rules):
        raise Failed(" or ".join(f"{r.code.name} {r.reason}" for r in rules), said(code, reason, details), reason)
    return said(code, reason)


# -- the 戸籍 system ---------------------------------------------------------------------------------------------
def _desk(subject):
    """(a 届出 sender, the 戸籍 counter's stub): the municipality's first terminal, its operator's session."""
    stub = koseki_pb2_grpc.FamilyRegisterSystemStub(subject.channel(subject.terminal(), _node(subject, "koseki")))
    session = subject.session()

    def send(method, request, request_id: str = ""):
        metadata = session + (((REQUEST_KEY, request_id),) if request_id else ())
        return lambda: method(with_notifier(request), metadata=metadata, timeout=10)
    return send, stub


def _member(relationship: str = "筆頭者", *, sex: str = "1", born: str = "1980-04-01", code: str = "",
            given: tuple[str, str] = ("一郎", "イチロウ"), confirmed: bool = False) -> koseki_pb2.FamilyMember:
    """A person 在籍 in a 戸籍 (氏 適合; a 住民票コード of no one unless given)."""
    return koseki_pb2.FamilyMember(resident_code=code or _code(), surname="適合", given_name=given[0],
                                   surname_kana="テキゴウ", given_name_kana=given[1], reading_confirmed=confirmed,
                                   birth_date=born, sex=sex, status="在籍", relationship=relationship)


def _married(husband: koseki_pb2.FamilyMember, wife: koseki_pb2.FamilyMember) -> None:
    husband.spouse, wife.spouse = wife.resident_code, husband.resident_code
    wife.surname_before_marriage, wife.surname_kana_before_marriage = "旧姓", "キュウセイ"


def _loaded(subject, *families: list[koseki_pb2.FamilyMember]) -> list[koseki_pb2.FamilyRegister]:
    """Load a 戸籍 for each list of members (the first its 筆頭者) through the LAN's console, at a 本籍 here; the 戸籍
    as the 戸籍 system holds them. Numbers of ten digits below any the system gives (its counter stays where it is)."""
    registers = []
    for members in families:
        number = f"0{uuid.uuid4().int % 10**9:09d}"
        head = members[0]
        registers.append(koseki_pb2.FamilyRegister(
            register_number=number, honseki=f"{_place_name(subject)}適合{number[-5:]}番地",
            hittousha=f"{head.surname} {head.given_name}", members=members, status="現在"))
    loader = koseki_pb2_grpc.FamilyRegisterSystemStub(subject.channel(console_cert(subject.pki, "koseki"),
                                                                      _node(subject, "koseki")))
    code, reason, details, _ = outcome(lambda: loader.LoadFamilyRegisters(
        koseki_pb2.FamilyRegisterLoad(registers=registers), timeout=10))
    if code != grpc.StatusCode.OK:
        raise Skipped(f"the LAN's console could not load a 戸籍 for the case ({said(code, reason, details)}): the "
                      "case needs people 在籍 here (koseki/移行/load shows the load)")
    return [_register(subject, r.register_number) for r in registers]


def _register(subject, number: str) -> koseki_pb2.FamilyRegister:
    """A 戸籍 as the counter reads it."""
    send, stub = _desk(subject)
    return answered(send(stub.GetFamilyRegister, koseki_pb2.FamilyRegisterKey(register_number=number)))


def _unchanged(subject, registers) -> None:
    """Assert that each 戸籍 reads as it did."""
    for register in registers:
        same(register, _register(subject, register.register_number), f"戸籍 {register.register_number} afterwards")


def _annex_notice(subject, resident_code: str, to: str, sequence: int) -> identity_pb2.AnnexNotice:
    """A 戸籍附票通知 of a 転居 from this municipality, numbered far ahead of any real one."""
    return identity_pb2.AnnexNotice(
        resident_code=resident_code, from_municipality_code=subject.home(), to_municipality_code=to,
        honseki=f"{_place_name(subject)}適合1番地", name_kanji="適合 一郎", birth_date="1980-04-01",
        address=f"{_place_name(subject)}偽装1番地", address_since=office_today().isoformat(), reason="転居",
        sequence=sequence)


def _annex(subject, resident_code: str) -> koseki_pb2.AnnexHistory:
    send, stub = _desk(subject)
    return answered(send(stub.GetAnnex, common_pb2.ResidentKey(resident_code=resident_code)))


@case("koseki/附票/sender", roles=("koseki",), profiles=("security",), rules=(A.DEFAULT_DENY, A.SCOPE, A.TRUST_DOMAIN),
      request="RecordAnnexNotices of a well-formed 附票通知 for a person 在籍 here, as a counter terminal, as another "
              "municipality's kizon and as this municipality's CS",
      asserts="PERMISSION_DENIED DEFAULT_DENY, POLICY_SCOPE, TRUST_DOMAIN; the person's 附票 unchanged")
def annex_sender(subject) -> str:
    """Only the municipality's own kizon (its 住基GW) hands the 戸籍 system 附票通知."""
    (register,) = _loaded(subject, [_member()])
    person = register.members[0].resident_code
    before = _annex(subject, person)
    batch = koseki_pb2.AnnexNoticeBatch(items=[_annex_notice(subject, person, subject.home(), FAR_AHEAD)])
    node = _node(subject, "koseki")
    seen = []
    for cert, rule in ((subject.terminal(), A.DEFAULT_DENY), (_cert(subject, "kizon", _elsewhere(subject)), A.SCOPE),
                       (_cert(subject, "cs", subject.home()), A.TRUST_DOMAIN)):
        stub = koseki_pb2_grpc.FamilyRegisterSystemStub(subject.channel(cert, node))
        seen.append(refused(lambda: stub.RecordAnnexNotices(batch, metadata=subject.session(), timeout=10), rule))
    same(before, _annex(subject, person), "the 附票 afterwards")
    return "; ".join(seen)


@case("koseki/届出/other-municipality", roles=("koseki",), profiles=("security",), rules=(A.SCOPE,),
      request="RecordDeath of a person 在籍 here from another municipality's terminal, its operator logged in there",
      asserts="PERMISSION_DENIED POLICY_SCOPE; the person still 在籍")
def other_municipality(subject) -> str:
    """A 届出 is filed at the 本籍地's own counter: a terminal of another municipality files nothing here."""
    (register,) = _loaded(subject, [_member()])
    other = _elsewhere(subject)
    place = subject.topology.municipality(other)
    cert = terminal_cert(subject.pki, other, place.terminals[0])
    kizon = kizon_pb2_grpc.KizonStub(subject.channel(cert, subject.topology.find("kizon", other)))
    token = answered(lambda: kizon.Login(login_request(subject.network, other, place.operators[0].id), timeout=10))
    stub = koseki_pb2_grpc.FamilyRegisterSystemStub(subject.channel(cert, _node(subject, "koseki")))
    observed = refused(lambda: stub.RecordDeath(with_notifier(koseki_pb2.DeathNotification(
        resident_code=register.members[0].resident_code, death_date=office_today().isoformat())),
        metadata=session_metadata(token.token), timeout=10), A.SCOPE)
    _unchanged(subject, [register])
    return observed


@case("koseki/附票/addressee", roles=("koseki",), profiles=("rules",), rules=(F.ANNEX_NOTICE_ADDRESSEE,),
      request="RecordAnnexNotices as kizon: one 附票通知 addressed here, one addressed to another municipality",
      asserts="INVALID_ARGUMENT ANNEX_NOTICE_ADDRESSEE for the batch; the 附票 of the person here unchanged")
def annex_addressee(subject) -> str:
    """A 附票通知 handed to a 戸籍 system is addressed to its municipality, the 本籍地."""
    (register,) = _loaded(subject, [_member()])
    person = register.members[0].resident_code
    before = _annex(subject, person)
    batch = koseki_pb2.AnnexNoticeBatch(items=[
        _annex_notice(subject, person, subject.home(), FAR_AHEAD + uuid.uuid4().int % 10**9),
        _annex_notice(subject, _code(), _elsewhere(subject), FAR_AHEAD + uuid.uuid4().int % 10**9)])
    stub = koseki_pb2_grpc.FamilyRegisterSystemStub(subject.channel(_cert(subject, "kizon", subject.home()),
                                                                    _node(subject, "koseki")))
    observed = refused(lambda: stub.RecordAnnexNotices(batch, timeout=10), F.ANNEX_NOTICE_ADDRESSEE)
    same(before, _annex(subject, person), "the 附票 afterwards")
    return observed


@case("koseki/移行/load", roles=("koseki",), profiles=("rules", "security"), rules=(F.KOSEKI_LOAD_TAKEN, A.DEFAULT_DENY),
      request="LoadFamilyRegisters of a new 戸籍 as the LAN's console; again; the same number with another 本籍; "
              "the load as kizon and as a terminal",
      asserts="loaded once (the repeat answered, none loaded); ALREADY_EXISTS KOSEKI_LOAD_TAKEN; PERMISSION_DENIED "
              "DEFAULT_DENY; the 戸籍 as first loaded")
def load(subject) -> str:
    """A load brings 戸籍 not yet held, from the LAN's console alone; a repeat is answered, not loaded twice."""
    number = f"0{uuid.uuid4().int % 10**9:09d}"
    register = koseki_pb2.FamilyRegister(register_number=number, honseki=f"{_place_name(subject)}移行{number[-5:]}番地",
                                         hittousha="適合 一郎", members=[_member()], status="現在")
    node = _node(subject, "koseki")
    console = koseki_pb2_grpc.FamilyRegisterSystemStub(subject.channel(console_cert(subject.pki, "koseki"), node))
    first = answered(lambda: console.LoadFamilyRegisters(koseki_pb2.FamilyRegisterLoad(registers=[register]),
                                                         timeout=10))
    again = answered(lambda: console.LoadFamilyRegisters(koseki_pb2.FamilyRegisterLoad(registers=[register]),
                                                         timeout=10))
    same((1, 0), (first.applied, again.applied), "the 戸籍 loaded by the load and by its repeat")
    held = _register(subject, number)
    other = koseki_pb2.FamilyRegister()
    other.CopyFrom(register)
    other.honseki += "の1"
    seen = [refused(lambda: console.LoadFamilyRegisters(koseki_pb2.FamilyRegisterLoad(registers=[other]), timeout=10),
                    F.KOSEKI_LOAD_TAKEN)]
    for cert in (_cert(subject, "kizon", subject.home()), subject.terminal()):
        stub = koseki_pb2_grpc.FamilyRegisterSystemStub(subject.channel(cert, node))
        seen.append(refused(lambda: stub.LoadFamilyRegisters(koseki_pb2.FamilyRegisterLoad(registers=[other]),
                                                             metadata=subject.session(), timeout=10), A.DEFAULT_DENY))
    same(held, _register(subject, number), "the 戸籍 afterwards")
    return f"loaded 1, repeat 0; {'; '.join(seen)}"


@case("koseki/婚姻/impediments", roles=("koseki",), profiles=("rules",),
      rules=(F.MARRIAGE_ALREADY_MARRIED, F.MARRIAGE_AGE),
      request="Marry a married man to an unmarried woman; Marry an unmarried man to a girl of 16",
      asserts="FAILED_PRECONDITION MARRIAGE_ALREADY_MARRIED; FAILED_PRECONDITION MARRIAGE_AGE; every 戸籍 unchanged")
def marriage_impediments(subject) -> str:
    """Neither party of a 婚姻 is married (重婚の禁止), and both are 18 or over (婚姻適齢)."""
    husband, wife = _member(), _member("妻", sex="2", given=("花子", "ハナコ"))
    _married(husband, wife)
    girl = _member("子", sex="2", born=_years_ago(16), given=("幼子", "オサナゴ"))
    registers = _loaded(subject, [husband, wife, girl], [_member(sex="2", given=("独身", "ドクシン"))],
                        [_member(given=("次郎", "ジロウ"))])
    married, single, man = (registers[0].members[0].resident_code, registers[1].members[0].resident_code,
                            registers[2].members[0].resident_code)
    send, stub = _desk(subject)
    seen = [refused(send(stub.Marry, koseki_pb2.MarriageRequest(husband=married, wife=single, surname_of="husband")),
                    F.MARRIAGE_ALREADY_MARRIED),
            refused(send(stub.Marry, koseki_pb2.MarriageRequest(husband=man, wife=registers[0].members[2].resident_code,
                                                                surname_of="husband")), F.MARRIAGE_AGE)]
    _unchanged(subject, registers)
    return "; ".join(seen)


@case("koseki/婚姻/parties", roles=("koseki",), profiles=("rules",), rules=(F.MARRIAGE_PARTIES,),
      request="Marry naming one person as 夫 and 妻; naming no 氏 the couple takes; naming a woman as the 夫",
      asserts="INVALID_ARGUMENT MARRIAGE_PARTIES, each; both 戸籍 unchanged")
def marriage_parties(subject) -> str:
    """A 婚姻届 names two different people, the 夫 and the 妻, and whose 氏 the couple takes."""
    registers = _loaded(subject, [_member()], [_member(sex="2", given=("花子", "ハナコ"))])
    man, woman = (r.members[0].resident_code for r in registers)
    send, stub = _desk(subject)
    seen = [refused(send(stub.Marry, request), F.MARRIAGE_PARTIES) for request in (
        koseki_pb2.MarriageRequest(husband=man, wife=man, surname_of="husband"),
        koseki_pb2.MarriageRequest(husband=man, wife=woman),
        koseki_pb2.MarriageRequest(husband=woman, wife=man, surname_of="husband"))]
    _unchanged(subject, registers)
    return "; ".join(seen)


@case("koseki/離婚/surname-keeper", roles=("koseki",), profiles=("rules",),
      rules=(F.DIVORCE_SURNAME_KEEPER, F.DIVORCE_NOT_MARRIED),
      request="Divorce naming the 筆頭者 of a married couple (who kept the 氏); Divorce naming an unmarried person",
      asserts="FAILED_PRECONDITION DIVORCE_SURNAME_KEEPER; FAILED_PRECONDITION DIVORCE_NOT_MARRIED; the couple still "
              "married in their 戸籍")
def divorce(subject) -> str:
    """A 離婚届 names a married person, the one who took the other's 氏 (and returns to the former one)."""
    husband, wife = _member(), _member("妻", sex="2", given=("花子", "ハナコ"))
    _married(husband, wife)
    registers = _loaded(subject, [husband, wife], [_member(given=("独身", "ドクシン"))])
    send, stub = _desk(subject)
    seen = [refused(send(stub.Divorce, koseki_pb2.DivorceRequest(resident_code=husband.resident_code)),
                    F.DIVORCE_SURNAME_KEEPER),
            refused(send(stub.Divorce, koseki_pb2.DivorceRequest(resident_code=registers[1].members[0].resident_code)),
                    F.DIVORCE_NOT_MARRIED)]
    _unchanged(subject, registers)
    return "; ".join(seen)


@case("koseki/本籍/here", roles=("koseki",), profiles=("rules",), rules=(F.HONSEKI_HERE,),
      request="Transfer (転籍) a 戸籍 to a 本籍 in 東京都千代田区; to its present 本籍; to the municipality's name alone",
      asserts="INVALID_ARGUMENT HONSEKI_HERE, each; the 戸籍's 本籍 unchanged")
def honseki_here(subject) -> str:
    """A new 本籍 of this 戸籍 system lies in this municipality and differs from the present one."""
    (register,) = _loaded(subject, [_member()])
    send, stub = _desk(subject)
    seen = [refused(send(stub.Transfer, koseki_pb2.TransferRequest(register_number=register.register_number,
                                                                   new_honseki=honseki)), F.HONSEKI_HERE)
            for honseki in ("東京都千代田区千代田1番", register.honseki, _place_name(subject))]
    _unchanged(subject, [register])
    return "; ".join(seen)


@case("koseki/転籍/closed-register", roles=("koseki",), profiles=("rules",), rules=(F.KOSEKI_REGISTER_CLOSED,),
      request="Transfer (転籍) of a 戸籍 whose only member is 除籍 (死亡), to a new 本籍 here",
      asserts="FAILED_PRECONDITION KOSEKI_REGISTER_CLOSED; the 戸籍's 本籍 unchanged")
def closed_register(subject) -> str:
    """A 戸籍 whose every member is 除籍 is a 除籍簿: it takes no 転籍."""
    removed = _member()
    removed.status, removed.removal_reason = "除籍", "死亡"
    (register,) = _loaded(subject, [removed])
    send, stub = _desk(subject)
    observed = refused(send(stub.Transfer, koseki_pb2.TransferRequest(
        register_number=register.register_number, new_honseki=f"{_place_name(subject)}適合転籍先1番地")),
        F.KOSEKI_REGISTER_CLOSED)
    _unchanged(subject, [register])
    return observed


@case("koseki/振り仮名/katakana-once", roles=("koseki",), profiles=("rules",), rules=(F.READING_KATAKANA, F.READING_ONCE),
      request="RecordReading in hiragana; RecordReading of a person whose 振り仮名 is recorded already",
      asserts="INVALID_ARGUMENT READING_KATAKANA; FAILED_PRECONDITION READING_ONCE; the 戸籍 unchanged")
def reading(subject) -> str:
    """The 振り仮名 is written in katakana, and recorded by 届出 once (later only with the court's permission)."""
    (register,) = _loaded(subject, [_member(), _member("妻", sex="2", given=("花子", "ハナコ"), confirmed=True)])
    presumed, recorded = (m.resident_code for m in register.members)
    send, stub = _desk(subject)
    seen = [refused(send(stub.RecordReading, koseki_pb2.ReadingRequest(
                resident_code=presumed, surname_kana="てきごう", given_name_kana="イチロウ")), F.READING_KATAKANA),
            refused(send(stub.RecordReading, koseki_pb2.ReadingRequest(
                resident_code=recorded, surname_kana="テキゴウ", given_name_kana="ハナ")), F.READING_ONCE)]
    _unchanged(subject, [register])
    return "; ".join(seen)


@case("koseki/死亡/date", roles=("koseki",), profiles=("rules",), rules=(F.DEATH_DATE,),
      request="RecordDeath dated the day before the person's birth",
      asserts="INVALID_ARGUMENT DEATH_DATE; the person still 在籍")
def death_date(subject) -> str:
    """A 死亡 is on or after the person's birth."""
    (register,) = _loaded(subject, [_member(born="1980-04-01")])
    send, stub = _desk(subject)
    observed = refused(send(stub.RecordDeath, koseki_pb2.DeathNotification(
        resident_code=register.members[0].resident_code, death_date="1980-03-31")), F.DEATH_DATE)
    _unchanged(subject, [register])
    return observed


@case("koseki/届出人/required", roles=("koseki",), profiles=("rules",), rules=(F.KOSEKI_NOTIFIER_REQUIRED,),
      request="RecordReading with a 届出人 but no 本人確認書類; with no 届出人",
      asserts="INVALID_ARGUMENT KOSEKI_NOTIFIER_REQUIRED, both; the 戸籍 unchanged")
def notifier_required(subject) -> str:
    """Every 届出 names its 届出人 and the document the counter checked them with."""
    (register,) = _loaded(subject, [_member()])
    stub = koseki_pb2_grpc.FamilyRegisterSystemStub(subject.channel(subject.terminal(), _node(subject, "koseki")))
    person = register.members[0].resident_code
    seen = []
    for who in (notifier(document=""), None):
        request = koseki_pb2.ReadingRequest(resident_code=person, surname_kana="テキゴウ", given_name_kana="イチ")
        if who is not None:
            request.notifier.CopyFrom(who)
        seen.append(refused(lambda: stub.RecordReading(request, metadata=subject.session(), timeout=10),
                            F.KOSEKI_NOTIFIER_REQUIRED))
    _unchanged(subject, [register])
    return "; ".join(seen)


@case("koseki/本籍地/not-in-register", roles=("koseki",), profiles=("rules",), rules=(F.KOSEKI_NOT_IN_REGISTER,),
      request="RecordReading and GetFamilyRegister of the run's person (a 住民票 here, a 戸籍 nowhere here)",
      asserts="FAILED_PRECONDITION KOSEKI_NOT_IN_REGISTER, both")
def not_in_register(subject) -> str:
    """A 届出 names people 在籍 in a 戸籍 of this municipality: the 本籍地 keeps the 戸籍, the 住所地 does not."""
    code = subject.person().resident_code
    send, stub = _desk(subject)
    return "; ".join([
        refused(send(stub.RecordReading, koseki_pb2.ReadingRequest(resident_code=code, surname_kana="テキゴウ",
                                                                   given_name_kana="シケン")), F.KOSEKI_NOT_IN_REGISTER),
        refused(send(stub.GetFamilyRegister, koseki_pb2.FamilyRegisterKey(resident_code=code)),
                F.KOSEKI_NOT_IN_REGISTER)])


# -- kizon's 住基GW: the 戸籍 system's notices ----------------------------------------------------------------------
def _counter(subject):
    """(stub, session metadata) of the municipality's first terminal at its kizon."""
    return kizon_pb2_grpc.KizonStub(subject.channel(subject.terminal(), _node(subject, "kizon"))), subject.session()


def _moved_in(subject, **items) -> records_pb2.ResidentRecord:
    """A new person of the case's own (国外転入 at the municipality's first 町字), with items as given."""
    person = {"name_kanji": "適合 住基", "name_kana": "テキゴウ ジュウキ", "birth_date": "1980-04-01", "sex": "1"}
    person.update(items)
    stub, session = _counter(subject)
    reply = answered(lambda: stub.MoveIn(with_notifier(kizon_pb2.MoveInRequest(
        person=records_pb2.ResidentRecord(**person),
        address=records_pb2.Address(town_code=towns(subject.home())[0].code, address_line="3番地"),
        move_in_date=office_today().isoformat(), from_abroad=True)), metadata=session, timeout=30))
    return reply.records[0]


def _resident(subject, code: str) -> records_pb2.ResidentRecord:
    stub, session = _counter(subject)
    return answered(lambda: stub.GetResident(common_pb2.ResidentKey(resident_code=code), metadata=session,
                                             timeout=10))


def _until(subject, code: str, holds, what: str) -> records_pb2.ResidentRecord:
    """The person's 住民票 once holds(record) (a bounded wait for a notice to be applied)."""
    deadline = time.monotonic() + ARRIVAL
    while True:
        record = _resident(subject, code)
        if holds(record):
            return record
        if time.monotonic() > deadline:
            raise Failed(what, f"not within {ARRIVAL:.0f} s: {record.change_reason} {record.change_reason_detail}"[:200])
        time.sleep(0.1)  # (a bounded wait for the notice to reach the 住民票)


def _gateway(subject, cert) -> gateway_pb2_grpc.KizonGatewayStub:
    return gateway_pb2_grpc.KizonGatewayStub(subject.channel(cert, _node(subject, "kizon")))


def _death_notice(code: str) -> koseki_pb2.FamilyRegisterNoticeBatch:
    """The 戸籍 system's notice of a 死亡, numbered far ahead of any real one."""
    return koseki_pb2.FamilyRegisterNoticeBatch(items=[koseki_pb2.FamilyRegisterNotice(
        sequence=FAR_AHEAD, kind="死亡", resident_code=code, event_date=office_today().isoformat(),
        notification_date=office_today().isoformat(), notifier=notifier())])


@case("kizon/住基GW/戸籍通知/koseki-only", roles=("kizon",), profiles=("security",), rules=(A.DEFAULT_DENY, A.SCOPE),
      request="ApplyFamilyRegisterNotices (a 死亡 of the run's person) from a counter terminal with a session, from "
              "another municipality's 戸籍 system, from the CS and from atena",
      asserts="PERMISSION_DENIED DEFAULT_DENY, POLICY_SCOPE, DEFAULT_DENY, DEFAULT_DENY; the person still current")
def family_notice_sender(subject) -> str:
    """Only the municipality's own 戸籍 system sends the 住基GW its notices (never a counter terminal)."""
    person = subject.person()
    batch = _death_notice(person.resident_code)
    seen = []
    for cert, rule in ((subject.terminal(), A.DEFAULT_DENY), (_cert(subject, "koseki", _elsewhere(subject)), A.SCOPE),
                       (_cert(subject, "cs", subject.home()), A.DEFAULT_DENY),
                       (_cert(subject, "atena", subject.home()), A.DEFAULT_DENY)):
        gateway = _gateway(subject, cert)
        seen.append(refused(lambda: gateway.ApplyFamilyRegisterNotices(batch, metadata=subject.session(), timeout=10),
                            rule, node=subject.node.name))
    same(person.status, _resident(subject, person.resident_code).status, "the person's status afterwards")
    return "; ".join(seen)


@case("kizon/住基GW/戸籍通知/gap", roles=("kizon",), profiles=("delivery",), rules=(F.FAMILY_NOTICE_GAP,),
      request="ApplyFamilyRegisterNotices as the 戸籍 system: a 死亡 numbered far ahead of the next notice",
      asserts="FAILED_PRECONDITION FAMILY_NOTICE_GAP; the person's 住民票 unchanged")
def family_notice_gap(subject) -> str:
    """The 戸籍 system's notices are applied in their order, none skipped."""
    person = _moved_in(subject, name_kanji="適合 順番", name_kana="テキゴウ ジュンバン")
    gateway = _gateway(subject, _cert(subject, "koseki", subject.home()))
    observed = refused(lambda: gateway.ApplyFamilyRegisterNotices(_death_notice(person.resident_code), timeout=10),
                       F.FAMILY_NOTICE_GAP, node=subject.node.name)
    same(person, _resident(subject, person.resident_code), "the 住民票 afterwards")
    return observed


@case("kizon/住基GW/戸籍通知/applied", roles=("kizon",), profiles=("rules", "delivery"), rules=(F.FAMILY_NOTICE_RESIDENT,),
      standard="住基法第9条第2項 (戸籍 → 住民票, 職権)",
      request="at the 戸籍 counter: RecordReading of a person with no 住民票 here, then of a resident whose 戸籍 is "
              "here (sent twice with one 依頼管理番号)",
      asserts="the retry answers the same notice; the first notice set aside, the resident's 住民票 takes the "
              "振り仮名 (confirmed, 職権修正, the 戸籍 counter's 届出人) once")
def family_notice_applied(subject) -> str:
    """A 届出 of the 戸籍 system reaches the 住民票 by its notice, once; a notice of nobody here holds up no other."""
    person = _moved_in(subject, name_kanji="適合 読替", name_kana="テキゴウ ヨミカエ")
    surname, given = person.name_kanji.split(" ")
    stranger = _member(given=("他人", "タニン"))
    resident = koseki_pb2.FamilyMember(
        resident_code=person.resident_code, surname=surname, given_name=given, surname_kana="テキゴウ",
        given_name_kana="ヨミカエ", birth_date=person.birth_date, sex=person.sex, status="在籍", relationship="筆頭者")
    _loaded(subject, [stranger], [resident])
    send, stub = _desk(subject)
    answered(send(stub.RecordReading, koseki_pb2.ReadingRequest(resident_code=stranger.resident_code,
                                                                surname_kana="テキゴウ", given_name_kana="タニン")))
    asked = koseki_pb2.ReadingRequest(resident_code=person.resident_code, surname_kana="テキゴウ",
                                      given_name_kana="ヨミノカエ", notifier=notifier(name="適合 届出人"))
    key = f"conform-{uuid.uuid4().hex}"
    first = answered(send(stub.RecordReading, asked, key))
    again = answered(send(stub.RecordReading, asked, key))
    same(first.notice_sequence, again.notice_sequence, "the retry's notice")
    record = _until(subject, person.resident_code, lambda r: r.name_kana == "テキゴウ ヨミノカエ",
                    "the 振り仮名 on the 住民票")
    same((True, "職権修正", "適合 届出人", person.name_kanji),
         (record.name_kana_confirmed, record.change_reason, record.notifier.name, record.name_kanji),
         "the 住民票's 振り仮名 confirmed, 異動事由, 届出人, 氏名")
    history = answered(lambda: _counter(subject)[0].GetHistory(common_pb2.ResidentKey(
        resident_code=person.resident_code), metadata=subject.session(), timeout=10))
    applied = [e for e in history.entries if e.change_reason_detail == record.change_reason_detail]
    same(1, len(applied), "history entries of the notice")
    return f"notice {first.notice_sequence} applied once: {record.name_kana} ({record.change_reason_detail})"


# -- kizon's 住基GW: the 裁判員候補者名簿 ---------------------------------------------------------------------------
REFERENCE = "地方裁判所 割当通知 適合試験"


def _jury(subject, cert=None):
    """A draw of the 裁判員候補者名簿, as the municipality's 名簿調製プログラム asks (or as cert)."""
    gateway = _gateway(subject, cert or _named(subject, f"office-{subject.home()}-jury"))
    return lambda year, count, reference=REFERENCE: (lambda: gateway.DrawJuryCandidates(
        gateway_pb2.JuryListRequest(year=year, count=count, allotment_reference=reference), timeout=30))


@case("kizon/住基GW/裁判員/caller", roles=("kizon",), profiles=("security",),
      rules=(G.JURY_LIST_CALLER, A.DEFAULT_DENY, A.SCOPE),
      request="DrawJuryCandidates for next year (one person) from a counter terminal with a session, from the "
              "戸籍 system, from the 税務システム and from another municipality's 名簿調製プログラム",
      asserts="PERMISSION_DENIED each (DEFAULT_DENY or POLICY_SCOPE by the policy, or JURY_LIST_CALLER): no list drawn")
def jury_caller(subject) -> str:
    """Only the municipality's own 名簿調製プログラム is given its 裁判員候補者名簿."""
    year = office_today().year + 1
    seen = []
    for cert, rule in ((subject.terminal(), A.DEFAULT_DENY), (_cert(subject, "koseki", subject.home()), A.DEFAULT_DENY),
                       (_named(subject, f"office-{subject.home()}-tax"), A.DEFAULT_DENY),
                       (_named(subject, f"office-{_elsewhere(subject)}-jury"), A.SCOPE)):
        gateway = _gateway(subject, cert)
        seen.append(_refused_by_any(lambda: gateway.DrawJuryCandidates(gateway_pb2.JuryListRequest(
            year=year, count=1, allotment_reference=REFERENCE), metadata=subject.session(), timeout=10),
            (rule, G.JURY_LIST_CALLER)))
    return "; ".join(seen)


@case("kizon/住基GW/裁判員/request", roles=("kizon",), profiles=("rules",),
      rules=(G.JURY_LIST_COUNT, G.JURY_LIST_ALLOTMENT, G.JURY_LIST_YEAR),
      request="DrawJuryCandidates as the 名簿調製プログラム: for no one; without the allotment notice; for 1999 and "
              "for a year five years ahead",
      asserts="INVALID_ARGUMENT JURY_LIST_COUNT; INVALID_ARGUMENT JURY_LIST_ALLOTMENT; FAILED_PRECONDITION "
              "JURY_LIST_YEAR, both")
def jury_request(subject) -> str:
    """A list names at least one person, is drawn under the court's allotment notice, and for the year open."""
    draw, year = _jury(subject), office_today().year + 1
    return "; ".join([refused(draw(year, 0), G.JURY_LIST_COUNT), refused(draw(year, 1, " "), G.JURY_LIST_ALLOTMENT),
                      refused(draw(1999, 1), G.JURY_LIST_YEAR), refused(draw(year + 4, 1), G.JURY_LIST_YEAR)])


@case("kizon/住基GW/裁判員/limit", roles=("kizon",), profiles=("rules", "security"), rules=(G.JURY_LIST_ALLOTMENT_LIMIT,),
      request="DrawJuryCandidates as the 名簿調製プログラム for an open year, a million people",
      asserts="FAILED_PRECONDITION JURY_LIST_ALLOTMENT_LIMIT (at most one in 200 electors): no list drawn")
def jury_limit(subject) -> str:
    """A list names at most one in 200 of the eligible electors: more is a bulk output of the electorate."""
    draw, today = _jury(subject), office_today()
    for year in (today.year + 1, today.year) if today.month <= 3 else (today.year + 1,):
        code, reason, details, _ = outcome(draw(year, 10**6))
        if reason != G.JURY_LIST_ONCE_A_YEAR.reason:
            if (code, reason) != (G.JURY_LIST_ALLOTMENT_LIMIT.code, G.JURY_LIST_ALLOTMENT_LIMIT.reason):
                raise Failed("FAILED_PRECONDITION JURY_LIST_ALLOTMENT_LIMIT", said(code, reason, details), reason)
            return f"{year}: {said(code, reason)}"
    raise Skipped("the list of every open year was drawn already (JURY_LIST_ONCE_A_YEAR answers first): the case "
                  "runs on a municipality whose next year's list is not drawn")


# -- 法務省 ---------------------------------------------------------------------------------------------------------
def _card(subject, **items) -> moj_pb2.ResidenceCardRecord:
    """A 在留カード of the case's own: 有効, its 住居地 the subject's municipality, its holder no one unless given."""
    card = {"residence_card_number": _card_number(), "name_romaji": "TEKIGO SHIKEN", "nationality": "VNM",
            "birth_date": "1995-04-01", "sex": "1", "residence_status": "留学", "period_expiry_date": _later(365),
            "municipality_code": subject.home(), "resident_code": _code(), "address": _place_name(subject),
            "status": "有効"}
    card.update(items)
    return moj_pb2.ResidenceCardRecord(**card)


def _cards(subject, *cards) -> list[moj_pb2.ResidenceCardRecord]:
    """Load the cards through 法務省's console; the cards as the 入管 office reads them."""
    loader = moj_pb2_grpc.ResidenceCardSystemStub(subject.channel(console_cert(subject.pki, "moj"), _node(subject, "moj")))
    code, reason, details, _ = outcome(lambda: loader.LoadResidenceCards(moj_pb2.ResidenceCardLoad(records=cards),
                                                                         timeout=10))
    if code != grpc.StatusCode.OK:
        raise Skipped(f"法務省's console could not load a 在留カード for the case ({said(code, reason, details)}): "
                      "moj/移行/load shows the load")
    return [_read_card(subject, c.residence_card_number) for c in cards]


def _office(subject) -> moj_pb2_grpc.ResidenceCardSystemStub:
    """法務省's system as the 入管 office calls it."""
    return moj_pb2_grpc.ResidenceCardSystemStub(subject.channel(_named(subject, "immigration"), _node(subject, "moj")))


def _read_card(subject, number: str) -> moj_pb2.ResidenceCardRecord:
    office = _office(subject)
    return answered(lambda: office.GetResidenceCard(moj_pb2.ResidenceCardKey(residence_card_number=number),
                                                    timeout=10))


def _cards_unchanged(subject, cards) -> None:
    for card in cards:
        same(card, _read_card(subject, card.residence_card_number), f"the card {card.residence_card_number} afterwards")


def _record(subject, change, request_id: str = ""):
    office = _office(subject)
    metadata = ((REQUEST_KEY, request_id),) if request_id else ()
    return lambda: office.RecordResidenceChange(change, metadata=metadata, timeout=10)


def _foreigner(subject) -> tuple[records_pb2.ResidentRecord, moj_pb2.ResidenceCardRecord]:
    """A foreign resident of the case's own (国外転入 here) and their 在留カード at 法務省."""
    number = _card_number()
    person = _moved_in(subject, name_kanji="TEKIGO GAIKOKU", name_kana="テキゴウ ガイコク", name_romaji="TEKIGO GAIKOKU",
                       resident_type=FOREIGN, nationality="VNM", article_30_45_category="中長期在留者",
                       residence_status="留学", residence_card_number=number,
                       residence_period_expiry_date=_later(365), birth_date="1995-04-01")
    (card,) = _cards(subject, _card(subject, residence_card_number=number, resident_code=person.resident_code,
                                    address=person.address, name_romaji=person.name_romaji))
    return person, card


@case("kizon/住基GW/法務省通知/set-aside", roles=("kizon",), profiles=("rules", "delivery"),
      rules=(R.IMMIGRATION_NOTICE_RESIDENT,), standard="住基法第30条の50 (法務省通知, 職権)",
      request="as the 入管 office: a 再交付 on the card of someone with no 住民票 here, then a 在留期間更新 on the card "
              "of a foreign resident here",
      asserts="the first 法務省通知 set aside; the resident's 住民票 takes the second (new card, 満了の日, 職権修正, the "
              "notice's number)")
def immigration_notice(subject) -> str:
    """A 法務省通知 changes the 住民票 of the foreign resident holding its card; one of nobody here holds up none."""
    (stranger,) = _cards(subject, _card(subject))
    person, card = _foreigner(subject)
    answered(_record(subject, moj_pb2.ResidenceChange(residence_card_number=stranger.residence_card_number,
                                                      kind="在留カード再交付", new_card_number=_card_number())))
    renewed, expiry = _card_number(), _later()
    notice = answered(_record(subject, moj_pb2.ResidenceChange(
        residence_card_number=card.residence_card_number, kind="在留期間更新", period_expiry_date=expiry,
        new_card_number=renewed)))
    record = _until(subject, person.resident_code, lambda r: r.residence_card_number == renewed,
                    "the 在留期間更新 on the 住民票")
    same((expiry, "職権修正", True), (record.residence_period_expiry_date, record.change_reason,
                                      f"法務省通知 第{notice.sequence}号" in record.change_reason_detail),
         "the 満了の日, 異動事由, and the notice named")
    return f"法務省通知 {notice.sequence} applied: {record.residence_card_number} until {expiry}"


@case("moj/在留/who-records", roles=("moj",), profiles=("security",), rules=(A.DEFAULT_DENY, A.TRUST_DOMAIN),
      request="RecordResidenceChange (失効 of a valid card) from a counter terminal, kizon, the CS and 法務省's console; "
              "ReceiveMunicipalityNotice from the 入管 office",
      asserts="PERMISSION_DENIED TRUST_DOMAIN, TRUST_DOMAIN, DEFAULT_DENY, DEFAULT_DENY, DEFAULT_DENY; the card 有効")
def who_records(subject) -> str:
    """Only an 入管 office records a change of 在留; only a CS sends a 市町村通知."""
    (card,) = _cards(subject, _card(subject))
    node = _node(subject, "moj")
    change = moj_pb2.ResidenceChange(residence_card_number=card.residence_card_number, kind="失効")
    seen = []
    for cert, rule in ((subject.terminal(), A.TRUST_DOMAIN), (_cert(subject, "kizon", subject.home()), A.TRUST_DOMAIN),
                       (_cert(subject, "cs", subject.home()), A.DEFAULT_DENY),
                       (console_cert(subject.pki, "moj"), A.DEFAULT_DENY)):
        stub = moj_pb2_grpc.ResidenceCardSystemStub(subject.channel(cert, node))
        seen.append(refused(lambda: stub.RecordResidenceChange(change, timeout=10), rule))
    office = _office(subject)
    seen.append(refused(lambda: office.ReceiveMunicipalityNotice(moj_pb2.MunicipalityNotice(
        sequence=FAR_AHEAD, municipality_code=subject.home(), resident_code=card.resident_code,
        residence_card_number=card.residence_card_number, reason="転居", address="偽装"), timeout=10), A.DEFAULT_DENY))
    _cards_unchanged(subject, [card])
    return "; ".join(seen)


@case("moj/市町村通知/sender-and-order", roles=("moj",), profiles=("security", "delivery"),
      rules=(R.MUNICIPALITY_NOTICE_SENDER, R.MUNICIPALITY_NOTICE_GAP),
      request="ReceiveMunicipalityNotice (a 転居 of a card's holder): from another municipality's CS in this one's "
              "name; from this one's CS numbered far ahead of its next",
      asserts="PERMISSION_DENIED MUNICIPALITY_NOTICE_SENDER; FAILED_PRECONDITION MUNICIPALITY_NOTICE_GAP; the card's "
              "住居地 unchanged")
def municipality_notice(subject) -> str:
    """A CS sends only its own municipality's 市町村通知, in its order, none skipped."""
    (card,) = _cards(subject, _card(subject))
    notice = moj_pb2.MunicipalityNotice(
        sequence=FAR_AHEAD, municipality_code=subject.home(), resident_code=card.resident_code,
        residence_card_number=card.residence_card_number, reason="転居", address=f"{_place_name(subject)}偽装1番地",
        event_date=office_today().isoformat())
    node = _node(subject, "moj")
    seen = []
    for cert, rule in ((_cert(subject, "cs", _elsewhere(subject)), R.MUNICIPALITY_NOTICE_SENDER),
                       (_cert(subject, "cs", subject.home()), R.MUNICIPALITY_NOTICE_GAP)):
        stub = moj_pb2_grpc.ResidenceCardSystemStub(subject.channel(cert, node))
        seen.append(refused(lambda: stub.ReceiveMunicipalityNotice(notice, timeout=10), rule))
    _cards_unchanged(subject, [card])
    return "; ".join(seen)


def _nowhere(subject) -> str:
    """A 市町村コード of no municipality of the topology (a 住居地 no CS here serves)."""
    codes = {m.code for m in subject.topology.municipalities}
    return next(c for c in ("131016", "011002", "271004", "401005") if c not in codes)


@case("moj/在留カード/not-valid", roles=("moj",), profiles=("rules",),
      rules=(R.RESIDENCE_CARD_NOT_VALID, R.RESIDENCE_CHANGE_NO_MUNICIPALITY),
      request="RecordResidenceChange: a 再交付 on a card whose holder left (出国); a 再交付 on a card whose 住居地 is a "
              "municipality with no CS in the network",
      asserts="FAILED_PRECONDITION RESIDENCE_CARD_NOT_VALID; FAILED_PRECONDITION RESIDENCE_CHANGE_NO_MUNICIPALITY; both "
              "cards unchanged")
def card_not_valid(subject) -> str:
    """A change is recorded on a card that is 有効, of a holder whose 住居地 has a CS its 法務省通知 can go to."""
    cards = _cards(subject, _card(subject, status="出国"), _card(subject, municipality_code=_nowhere(subject)))
    seen = [refused(_record(subject, moj_pb2.ResidenceChange(residence_card_number=c.residence_card_number,
                                                             kind="在留カード再交付", new_card_number=_card_number())), rule)
            for c, rule in zip(cards, (R.RESIDENCE_CARD_NOT_VALID, R.RESIDENCE_CHANGE_NO_MUNICIPALITY))]
    _cards_unchanged(subject, cards)
    return "; ".join(seen)


@case("moj/在留カード/number-taken", roles=("moj",), profiles=("rules",), rules=(R.RESIDENCE_CARD_NUMBER_TAKEN,),
      request="RecordResidenceChange: a 再交付 giving a card the number of another card; giving it its own number",
      asserts="ALREADY_EXISTS RESIDENCE_CARD_NUMBER_TAKEN, both; both cards unchanged")
def number_taken(subject) -> str:
    """A new card's number was never given to another card."""
    cards = _cards(subject, _card(subject), _card(subject))
    number = cards[0].residence_card_number
    seen = [refused(_record(subject, moj_pb2.ResidenceChange(residence_card_number=number, kind="在留カード再交付",
                                                             new_card_number=new)), R.RESIDENCE_CARD_NUMBER_TAKEN)
            for new in (cards[1].residence_card_number, number)]
    _cards_unchanged(subject, cards)
    return "; ".join(seen)


@case("moj/在留/kind-and-items", roles=("moj",), profiles=("rules",),
      rules=(R.RESIDENCE_CHANGE_KIND, R.RESIDENCE_CHANGE_ITEMS, R.RESIDENCE_PERIOD_EXPIRY,
             R.RESIDENCE_CARD_NUMBER_FORMAT),
      request="RecordResidenceChange: of kind 帰化; a 更新 with no new card; a 出国 with a 在留資格; a 更新 whose 満了の日 "
              "is today; on a card number in lower case; a 再交付 to the number X1",
      asserts="INVALID_ARGUMENT RESIDENCE_CHANGE_KIND, _ITEMS (2), RESIDENCE_PERIOD_EXPIRY, "
              "RESIDENCE_CARD_NUMBER_FORMAT (2); the card unchanged")
def kind_and_items(subject) -> str:
    """A change is of a kind 法務省 records, with that kind's items and no others, a 満了の日 ahead, numbers of the
    layout."""
    (card,) = _cards(subject, _card(subject))
    number, today = card.residence_card_number, office_today().isoformat()
    tries = ((R.RESIDENCE_CHANGE_KIND, moj_pb2.ResidenceChange(residence_card_number=number, kind="帰化")),
             (R.RESIDENCE_CHANGE_ITEMS, moj_pb2.ResidenceChange(residence_card_number=number, kind="在留期間更新",
                                                                period_expiry_date=_later())),
             (R.RESIDENCE_CHANGE_ITEMS, moj_pb2.ResidenceChange(residence_card_number=number, kind="出国",
                                                                residence_status="永住者")),
             (R.RESIDENCE_PERIOD_EXPIRY, moj_pb2.ResidenceChange(residence_card_number=number, kind="在留期間更新",
                                                                 period_expiry_date=today,
                                                                 new_card_number=_card_number())),
             (R.RESIDENCE_CARD_NUMBER_FORMAT, moj_pb2.ResidenceChange(residence_card_number=number.lower(),
                                                                      kind="失効")),
             (R.RESIDENCE_CARD_NUMBER_FORMAT, moj_pb2.ResidenceChange(residence_card_number=number,
                                                                      kind="在留カード再交付", new_card_number="X1")))
    seen = [refused(_record(subject, change), rule) for rule, change in tries]
    _cards_unchanged(subject, [card])
    return "; ".join(seen)


@case("moj/移行/load", roles=("moj",), profiles=("rules", "security"),
      rules=(R.RESIDENCE_CARD_LOAD_TAKEN, R.RESIDENCE_CARD_STATUS, A.DEFAULT_DENY),
      request="LoadResidenceCards as 法務省's console: a new card; again; the same number with another 住居地; a card "
              "of status 無効; the load as the 入管 office",
      asserts="loaded once (the repeat answered, none loaded); ALREADY_EXISTS RESIDENCE_CARD_LOAD_TAKEN; "
              "INVALID_ARGUMENT RESIDENCE_CARD_STATUS; PERMISSION_DENIED DEFAULT_DENY; the card as first loaded")
def card_load(subject) -> str:
    """A load brings cards not yet held, each 有効, 出国 or 失効, from the console alone; a repeat is answered."""
    card = _card(subject)
    loader = moj_pb2_grpc.ResidenceCardSystemStub(subject.channel(console_cert(subject.pki, "moj"), _node(subject, "moj")))

    def load_of(*cards):
        return lambda: loader.LoadResidenceCards(moj_pb2.ResidenceCardLoad(records=cards), timeout=10)
    first, again = answered(load_of(card)), answered(load_of(card))
    same((1, 0), (first.applied, again.applied), "the cards loaded by the load and by its repeat")
    held = _read_card(subject, card.residence_card_number)
    moved = moj_pb2.ResidenceCardRecord()
    moved.CopyFrom(card)
    moved.address += "1番地"
    office = _office(subject)
    seen = [refused(load_of(moved), R.RESIDENCE_CARD_LOAD_TAKEN),
            refused(load_of(_card(subject, status="無効")), R.RESIDENCE_CARD_STATUS),
            refused(lambda: office.LoadResidenceCards(moj_pb2.ResidenceCardLoad(records=[moved]), timeout=10),
                    A.DEFAULT_DENY)]
    _cards_unchanged(subject, [held])
    return f"loaded 1, repeat 0; {'; '.join(seen)}"


@case("moj/法務省通知/derived", roles=("moj",), profiles=("rules", "delivery"), rules=(R.RESIDENCE_CARD_NOT_VALID,),
      standard="住基法第30条の50; 入管法第20条",
      request="RecordResidenceChange (在留資格変更 with a new card, no 異動年月日) on a foreign resident's card, twice "
              "with one 依頼管理番号; then a 再交付 on the card it replaced",
      asserts="a 法務省通知 addressed to the card's 住居地, of its holder, numbered, dated today; the retry the same "
              "answer; the new card holds the change; the replaced card FAILED_PRECONDITION RESIDENCE_CARD_NOT_VALID")
def notice_derived(subject) -> str:
    """法務省 derives the 法務省通知 from the card it holds (addressee, person, number, date), once per request."""
    person, card = _foreigner(subject)
    renewed, expiry = _card_number(), _later()
    change = moj_pb2.ResidenceChange(residence_card_number=card.residence_card_number, kind="在留資格変更",
                                     residence_status="定住者", period_expiry_date=expiry, new_card_number=renewed)
    key = f"conform-{uuid.uuid4().hex}"
    notice = answered(_record(subject, change, key))
    same((subject.home(), person.resident_code, card.residence_card_number, office_today().isoformat(), True),
         (notice.municipality_code, notice.resident_code, notice.residence_card_number, notice.change.event_date,
          notice.sequence >= 1), "the notice's 住居地, person, card, 異動年月日 and number")
    same(notice, answered(_record(subject, change, key)), "the retry's answer")
    held = _read_card(subject, renewed)
    same(("定住者", expiry, "有効", person.resident_code),
         (held.residence_status, held.period_expiry_date, held.status, held.resident_code), "the new card")
    observed = refused(_record(subject, moj_pb2.ResidenceChange(residence_card_number=card.residence_card_number,
                                                                kind="在留カード再交付", new_card_number=_card_number())),
                       R.RESIDENCE_CARD_NOT_VALID)
    return f"法務省通知 {notice.sequence} to {notice.municipality_code} of {notice.resident_code}; the old card {observed}"
