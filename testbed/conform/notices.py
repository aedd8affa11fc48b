"""The cases of the 市町村CS on what it takes besides kizon's plain updates: the notices other CSs and 法務省 send it
(転出証明書情報, 転入通知, 戸籍附票通知, 法務省通知), the 特例転入 they allow, the notices kizon attaches to an update
(附票通知, 市町村通知), the 住民票コード pool and a 住民票コード変更, group commits, the card steps and the 広域交付.

Each notice "from another CS" is sent with the certificate of the other municipality's CS of the topology (or
法務省's), exactly as that node sends it; a refused one leaves nothing behind at the subject: the numbers a sender's
notices have reached (read back by a repeat, which the CS answers with that number), the notices kizon would take
(read with a cursor of 0, which takes nothing away), the 本人確認情報. A case that must leave something (a
転出証明書情報 it sent) removes it afterwards: the certificate is restated as long past its deadline, and the CS's
purge deletes it. People a case changes are its own, registered at the municipality's counter."""
from __future__ import annotations

import datetime as dt
import time
import uuid
import weakref

import grpc

from nodes.clock import office_today
from nodes.numbers import with_resident_code_check
from nodes.reasons import cs as R, moj as M, national as N
from nodes.refusal import reason_of
from protos import (card_pb2, card_pb2_grpc, common_pb2, cs_pb2, cs_pb2_grpc, identity_pb2, kizon_pb2,
                    kizon_pb2_grpc, moj_pb2, records_pb2)
from scenarios.towns import towns
from testbed.client import node_cert
from testbed.conform.case import Failed, Skipped, answered, case, outcome, refused, said, same
from testbed.requests import death, with_notifier

FAR = 10**9  # a notice number this far past the last one is one no sender reaches while a case runs
ARRIVAL = 20.0  # seconds a change made at kizon may take to reach the subject CS
MADE_WITHIN = 15.0  # seconds the card system's batch may take to make an applied card
PIN = "4321"  # the PIN of a card a case has issued
GROUP_LIMIT = 256  # batches one SubmitIdentityUpdateGroup may carry (nodes/groupcommit.py)
LONG_PAST = "2000-01-01"  # a planned move-out date past every deadline: the CS's purge deletes its certificate
_MADE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # subject → people this module made for its run

NOT_A_CASE = {
    R.POOL_EMPTY.reason: "a draw refills the pool from national first (up to 100,000 codes a request): the pool is "
                         "empty only when national fails to answer a refill, a fault no caller of the topology makes",
    R.SEQUENCE_BEHIND_PREFECTURE.reason: "needs the CS's store restored from a copy older than what its prefecture "
                                         "applied, and the CS restarted on it (the restore drill, not a call)",
    N.INDIVIDUAL_NUMBER_UNIQUE.reason: "national re-draws a colliding 個人番号 100 times from 10^11 numbers: no "
                                       "request makes it run out (only a number space filled in its store would)",
    N.PREFECTURE_OWN_MUNICIPALITIES.reason: "the policy lets only a CS of the prefecture's own prefix call it, and "
                                            "every such CS of the topology is of its municipalities: a stranger is "
                                            "refused at authentication (CERTIFICATE_NOT_IN_TOPOLOGY) first",
}


# -- the callers ----------------------------------------------------------------------------------------------
def _today(days: int = 0) -> str:
    return (office_today() + dt.timedelta(days=days)).isoformat()


def _invented() -> str:
    """A well-formed 住民票コード no one was given (the 9 block: the network numbers from below)."""
    return with_resident_code_check(f"9{uuid.uuid4().int % 10**9:09d}")


def _other(subject) -> str:
    """Another municipality of the topology with a CS (the sender of the notices), or Skipped."""
    for m in subject.topology.municipalities:
        if m.code != subject.municipality:
            try:
                subject.topology.find("cs", m.code)
            except KeyError:
                continue
            return m.code
    raise Skipped("the topology has no second municipality with a CS: the case sends as another CS")


def _as_cs(subject, municipality: str):
    """The subject as the CS of another municipality calls it."""
    return cs_pb2_grpc.CommunicationServerStub(subject.as_node(f"cs-{municipality}"))


def _as_kizon(subject):
    """The subject as its municipality's 既存住基 calls it."""
    return cs_pb2_grpc.CommunicationServerStub(subject.as_node(f"kizon-{subject.municipality}"))


def _as_moj(subject):
    """The subject as 法務省 calls it (Skipped when the network has none)."""
    try:
        name = subject.topology.find("moj").name
    except KeyError:
        raise Skipped("the topology has no 法務省 (moj) node") from None
    return cs_pb2_grpc.CommunicationServerStub(subject.as_node(name))


def _counter(subject):
    """A call at the counter of the subject's municipality: (method, request) → reply, with the operator's session."""
    stub = kizon_pb2_grpc.KizonStub(subject.channel(subject.terminal(), subject.kizon()))
    session = subject.session()
    return lambda method, request, timeout=30: getattr(stub, method)(request, metadata=session, timeout=timeout)


def _key(code: str) -> common_pb2.ResidentKey:
    return common_pb2.ResidentKey(resident_code=code)


def _held(subject, code: str) -> records_pb2.IdentityInfo:
    """The 本人確認情報 the subject holds of code."""
    return _as_kizon(subject).GetIdentity(_key(code), timeout=10)


def _absent(subject, code: str, what: str) -> None:
    """Assert that the subject holds no 本人確認情報 of code."""
    code_seen, _, _, _ = outcome(lambda: _held(subject, code))
    same("NOT_FOUND", code_seen.name, f"the CS's answer for {what} ({code}) afterwards")


def _reached(subject, code: str, when, what: str) -> records_pb2.IdentityInfo:
    """The subject's record of code once when(record) holds (a change at kizon reaches its CS in its time)."""
    deadline = time.monotonic() + ARRIVAL
    while True:
        try:
            info = _held(subject, code)
            if when(info):
                return info
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
        if time.monotonic() > deadline:
            raise Skipped(f"{what} ({code}) did not reach the CS as the case needs within {ARRIVAL:g} s")
        time.sleep(0.1)  # (a bounded wait for kizon's change to reach the CS)


# -- people of the module's own -------------------------------------------------------------------------------
def _made(subject) -> dict:
    return _MADE.setdefault(subject, {})


def _register(subject, name: str = "適合 通知", kana: str = "テキゴウ ツウチ") -> records_pb2.ResidentRecord:
    """A new person (国外転入 at the municipality's counter), once the subject holds them."""
    reply = _counter(subject)("MoveIn", with_notifier(kizon_pb2.MoveInRequest(
        person=records_pb2.ResidentRecord(name_kanji=name, name_kana=kana, birth_date="1988-08-08", sex="9"),
        address=records_pb2.Address(town_code=towns(subject.home())[0].code, address_line="4番地"),
        move_in_date=_today(), from_abroad=True)))
    person = reply.records[0]
    _reached(subject, person.resident_code, lambda info: True, "the person registered at the counter")
    return person


def _removed(subject) -> records_pb2.IdentityInfo:
    """A 除票 of the run: a person of the module's own, registered and then dead (made once, shared: left so)."""
    made = _made(subject)
    if "removed" not in made:
        person = _register(subject, "適合 除票", "テキゴウ ジョヒョウ")
        _counter(subject)("Death", death(person.resident_code, today=_today()))
        made["removed"] = _reached(subject, person.resident_code, lambda info: info.record_status_flag != 0,
                                   "the 死亡")
    return made["removed"]


def _card_holder(subject) -> tuple[str, card_pb2.CardStatus]:
    """(住民票コード, card) of a person of the module's own with a card issued with PIN (made once, shared: only read)."""
    made = _made(subject)
    if "holder" not in made:
        counter = _counter(subject)
        code = _register(subject, "適合 広域", "テキゴウ コウイキ").resident_code
        counter("ChangeCard", card_pb2.CardRequest(action=card_pb2.APPLY, resident_code=code))
        request = card_pb2.CardRequest(action=card_pb2.ISSUE, resident_code=code, pin=PIN)
        deadline = time.monotonic() + MADE_WITHIN
        while True:
            try:
                made["holder"] = (code, counter("ChangeCard", request))
                break
            except grpc.RpcError as exc:
                why = reason_of(exc)
                reason = why.reason if why else ""
                if reason != "CARD_STATE_TRANSITION" or time.monotonic() > deadline:
                    raise Skipped(f"a card for the case could not be issued at the counter "
                                  f"({said(exc.code(), reason, exc.details() or '')})") from None
            time.sleep(0.1)  # (bounded: the card system's batch makes applied cards about once a second)
    return made["holder"]


def _card_state(subject, code: str) -> str:
    """The state of a person's card as the card system tells the subject's CS."""
    try:
        node = subject.topology.find("card")
    except KeyError:
        raise Skipped("the topology has no card system") from None
    stub = card_pb2_grpc.CardManagementStub(subject.channel(node_cert(subject.pki, subject.node.name), node))
    return stub.GetCardStatus(_key(code), timeout=10).state


# -- 転出証明書情報 and the 特例転入 -----------------------------------------------------------------------------------
def _certificate(subject, sender: str, code: str, *, planned: str | None = None, card_holder: bool = True,
                 issuing: str | None = None, destination: str | None = None) -> identity_pb2.MoveOutCertificate:
    """The 転出証明書情報 of code as sender's CS makes it at a 特例転出 to the subject's municipality."""
    return identity_pb2.MoveOutCertificate(
        certificate_number=f"適合-{uuid.uuid4().hex[:12]}", issuing_municipality_code=issuing or sender,
        person=records_pb2.ResidentRecord(resident_code=code, name_kanji="適合 特例", name_kana="テキゴウ トクレイ",
                                          birth_date="1990-04-01", sex="9"),
        planned_move_out_date=planned or _today(), destination_address="適合1番地",
        destination_municipality_code=destination or subject.municipality, card_holder=card_holder,
        issued_at=_today())


def _take(subject, code: str, move_in_date: str | None = None):
    """TakeMoveOutCertificate as kizon at a 特例転入 of code: a call."""
    request = kizon_pb2.MoveInRequest(person=records_pb2.ResidentRecord(resident_code=code),
                                      move_in_date=move_in_date or _today(), notification_date=_today(), special=True)
    return lambda: _as_kizon(subject).TakeMoveOutCertificate(request, timeout=10)


def _purger(subject) -> str:
    """An operator of the municipality who may run the CS's purge (the operations or the manager role)."""
    place = subject.topology.municipality(subject.home())
    for role in ("operations", "manager"):
        found = next((o.id for o in place.operators if role in o.roles), None)
        if found:
            return found
    raise Skipped(f"no operator of {place.code} holds the operations or manager role: the case cannot remove the "
                  "転出証明書情報 it sends (the CS's purge)")


def _withdrawn(subject, sender: str, code: str) -> None:
    """Remove a certificate the case left: restated as long past its deadline, then the CS's purge (as the
    municipality's terminal); asserted gone."""
    answered(lambda: _as_cs(subject, sender).ReceiveMoveOutCertificate(
        _certificate(subject, sender, code, planned=LONG_PAST), timeout=10))
    cs = cs_pb2_grpc.CommunicationServerStub(subject.channel(subject.terminal()))
    answered(lambda: cs.PurgeExpiredCertificates(common_pb2.Empty(), metadata=subject.session(_purger(subject)),
                                                 timeout=30))
    left, reason, _, _ = outcome(_take(subject, code))
    same(R.MOVE_OUT_CERTIFICATE_NOT_FOUND.reason, reason, f"the certificate of {code} after the purge ({left.name})")


def _refused_take(subject, rule, *, certificate: dict, move_in_date: str | None = None, code: str | None = None) -> str:
    """A 転出証明書情報 sent from the other CS, the 特例転入's take refused under rule (the certificate still held as
    sent, where the case has a take that passes); the certificate removed afterwards."""
    _purger(subject)  # (Skipped before anything is sent, if no one could remove it)
    sender, code = _other(subject), code or _invented()
    sent = _certificate(subject, sender, code, **certificate)
    answered(lambda: _as_cs(subject, sender).ReceiveMoveOutCertificate(sent, timeout=10))
    try:
        return refused(_take(subject, code, move_in_date), rule, node=subject.node.name)
    finally:
        _withdrawn(subject, sender, code)


@case("cs/転出証明書情報/sender", roles=("cs",), profiles=("rules", "security"),
      rules=(R.MOVE_OUT_CERTIFICATE_SENDER,),
      request="ReceiveMoveOutCertificate as the CS of 142115: a certificate issued by 131016; one addressed to "
              "142115; then TakeMoveOutCertificate of the person as kizon",
      asserts="PERMISSION_DENIED MOVE_OUT_CERTIFICATE_SENDER, both; no certificate held for the person "
              "(NOT_FOUND MOVE_OUT_CERTIFICATE_NOT_FOUND)")
def certificate_sender(subject) -> str:
    """A CS sends only its own 転出証明書情報, addressed to the CS it reaches."""
    sender, code = _other(subject), _invented()
    cs = _as_cs(subject, sender)
    seen = [refused(lambda: cs.ReceiveMoveOutCertificate(_certificate(subject, sender, code, **items), timeout=10),
                    R.MOVE_OUT_CERTIFICATE_SENDER, node=subject.node.name)
            for items in ({"issuing": "131016"}, {"destination": sender})]
    _, reason, _, _ = outcome(_take(subject, code))
    same(R.MOVE_OUT_CERTIFICATE_NOT_FOUND.reason, reason, f"what the CS holds for {code} afterwards")
    return "; ".join(seen)


@case("cs/特例転入/no-certificate", roles=("cs",), profiles=("rules",), rules=(R.MOVE_OUT_CERTIFICATE_NOT_FOUND,),
      request="TakeMoveOutCertificate as kizon for a person no 転出証明書情報 was sent for",
      asserts="NOT_FOUND MOVE_OUT_CERTIFICATE_NOT_FOUND")
def no_certificate(subject) -> str:
    """A 特例転入 takes the 転出証明書情報 that has arrived for the person."""
    return refused(_take(subject, _invented()), R.MOVE_OUT_CERTIFICATE_NOT_FOUND, node=subject.node.name)


@case("cs/特例転入/card-holder", roles=("cs",), profiles=("rules",), rules=(R.SPECIAL_MOVE_IN_CARD_HOLDER,),
      request="ReceiveMoveOutCertificate as the CS of 142115 of someone holding no card; TakeMoveOutCertificate "
              "as kizon",
      asserts="FAILED_PRECONDITION SPECIAL_MOVE_IN_CARD_HOLDER (the certificate removed after)")
def card_holder(subject) -> str:
    """Only a 個人番号カード holder moves in without a 転出証明書."""
    return _refused_take(subject, R.SPECIAL_MOVE_IN_CARD_HOLDER, certificate={"card_holder": False})


@case("cs/特例転入/after-move-in", roles=("cs",), profiles=("rules",),
      rules=(R.SPECIAL_MOVE_IN_AFTER_MOVE_IN,),
      request="ReceiveMoveOutCertificate as the CS of 142115 (a card holder, planned today); TakeMoveOutCertificate "
              "as kizon of a move-in 15 days ago; then of one today",
      asserts="FAILED_PRECONDITION SPECIAL_MOVE_IN_AFTER_MOVE_IN; then the certificate as sent (the certificate "
              "removed after)")
def after_move_in(subject) -> str:
    """A 特例転入's 転入届 comes within 14 days of moving in."""
    _purger(subject)  # (Skipped before anything is sent, if no one could remove it)
    sender, code = _other(subject), _invented()
    sent = _certificate(subject, sender, code)
    answered(lambda: _as_cs(subject, sender).ReceiveMoveOutCertificate(sent, timeout=10))
    try:
        observed = refused(_take(subject, code, _today(-15)), R.SPECIAL_MOVE_IN_AFTER_MOVE_IN, node=subject.node.name)
        taken = answered(_take(subject, code))
        same(sent, taken, "the certificate a 特例転入 within the windows takes")
    finally:
        _withdrawn(subject, sender, code)
    return f"{observed}; today: the certificate {sent.certificate_number}"


@case("cs/特例転入/after-move-out", roles=("cs",), profiles=("rules",),
      rules=(R.SPECIAL_MOVE_IN_AFTER_MOVE_OUT,),
      request="ReceiveMoveOutCertificate as the CS of 142115 of a move-out planned 31 days ago; "
              "TakeMoveOutCertificate as kizon of a move-in today",
      asserts="FAILED_PRECONDITION SPECIAL_MOVE_IN_AFTER_MOVE_OUT (the certificate removed after)")
def after_move_out(subject) -> str:
    """A 特例転入's 転入届 comes within 30 days of the planned move-out date."""
    return _refused_take(subject, R.SPECIAL_MOVE_IN_AFTER_MOVE_OUT, certificate={"planned": _today(-31)})


@case("cs/特例転入/card-usable", roles=("cs",), profiles=("rules", "security"),
      rules=(R.SPECIAL_MOVE_IN_CARD_USABLE,),
      request="a person of the case's own whose card was applied for and revoked at the counter; "
              "ReceiveMoveOutCertificate of them as the CS of 142115 (a card holder); TakeMoveOutCertificate as kizon",
      asserts="FAILED_PRECONDITION SPECIAL_MOVE_IN_CARD_USABLE (the certificate removed after)")
def card_usable(subject) -> str:
    """A 特例転入 needs a 個人番号カード the card system holds as usable."""
    counter = _counter(subject)
    code = _register(subject, "適合 廃止", "テキゴウ ハイシ").resident_code
    counter("ChangeCard", card_pb2.CardRequest(action=card_pb2.APPLY, resident_code=code))
    counter("ChangeCard", card_pb2.CardRequest(action=card_pb2.REVOKE, resident_code=code, reason="本人の申請"))
    return _refused_take(subject, R.SPECIAL_MOVE_IN_CARD_USABLE, certificate={}, code=code)


@case("cs/特例転入/update-needs-certificate", roles=("cs",), profiles=("rules",),
      rules=(R.SPECIAL_MOVE_IN_CERTIFICATE,),
      request="SubmitIdentityUpdates as kizon: a 特例転入 (転入, special_move_in) of someone no 転出証明書情報 was "
              "sent for",
      asserts="FAILED_PRECONDITION SPECIAL_MOVE_IN_CERTIFICATE; nothing recorded of the person")
def update_needs_certificate(subject) -> str:
    """A 特例転入 update needs the 転出証明書情報 that has arrived for the person."""
    code = _invented()
    info = _restated(_held(subject, subject.person().resident_code), "転入", resident_code=code, individual_number="",
                     previous_municipality_code=_other(subject))
    observed = _submit_refused(subject, R.SPECIAL_MOVE_IN_CERTIFICATE,
                               identity_pb2.IdentityUpdate(municipality_code=subject.municipality, info=info,
                                                           special_move_in=True))
    _absent(subject, code, "the refused 特例転入")
    return observed


# -- 転入通知 --------------------------------------------------------------------------------------------------------
def _move_in_notice(subject, sender: str, code: str, **items) -> identity_pb2.MoveInNotice:
    fields = {"from_municipality_code": sender, "to_municipality_code": subject.municipality}
    fields.update(items)
    return identity_pb2.MoveInNotice(resident_code=code, new_address="適合1番地", move_in_date=_today(),
                                     notified_at=_today(), **fields)


def _move_in_notices_of(subject, code: str) -> list:
    """The 転入通知 of code the subject holds for kizon (a cursor of 0: none taken away)."""
    held = _as_kizon(subject).TakeMoveInNotices(cs_pb2.NoticeCursor(processed_up_to=0), timeout=10)
    return [n.SerializeToString() for n in held.notices if n.resident_code == code]


@case("cs/転入通知/sender", roles=("cs",), profiles=("rules", "security"), rules=(R.MOVE_IN_NOTICE_SENDER,),
      request="ReceiveMoveInNotice as the CS of 142115 about a former resident (a 除票 of the run): one from "
              "131016; one addressed to 142115",
      asserts="PERMISSION_DENIED MOVE_IN_NOTICE_SENDER, both; no notice of the person held for kizon")
def move_in_notice_sender(subject) -> str:
    """A CS sends only its own 転入通知, addressed to the CS it reaches."""
    sender, code = _other(subject), _removed(subject).resident_code
    cs = _as_cs(subject, sender)
    before = _move_in_notices_of(subject, code)
    seen = [refused(lambda: cs.ReceiveMoveInNotice(_move_in_notice(subject, sender, code, **items), timeout=10),
                    R.MOVE_IN_NOTICE_SENDER, node=subject.node.name)
            for items in ({"from_municipality_code": "131016"}, {"to_municipality_code": sender})]
    same(before, _move_in_notices_of(subject, code), f"the 転入通知 of {code} held for kizon")
    return "; ".join(seen)


@case("cs/転入通知/former-resident", roles=("cs",), profiles=("rules",), rules=(R.MOVE_IN_NOTICE_FORMER_RESIDENT,),
      request="ReceiveMoveInNotice as the CS of 142115, addressed here: about a current resident (the run's person); "
              "about someone never registered here",
      asserts="FAILED_PRECONDITION MOVE_IN_NOTICE_FORMER_RESIDENT, both; the resident still current, no notice "
              "held for kizon")
def move_in_notice_former_resident(subject) -> str:
    """A 転入通知 is of a former resident whose 転出 here it closes."""
    sender, person, stranger = _other(subject), subject.person().resident_code, _invented()
    cs = _as_cs(subject, sender)
    before = _held(subject, person)
    seen = [refused(lambda: cs.ReceiveMoveInNotice(_move_in_notice(subject, sender, code), timeout=10),
                    R.MOVE_IN_NOTICE_FORMER_RESIDENT, node=subject.node.name) for code in (person, stranger)]
    same(before, _held(subject, person), "the resident's 本人確認情報 afterwards")
    same([], _move_in_notices_of(subject, person) + _move_in_notices_of(subject, stranger),
         "the 転入通知 held for kizon")
    return "; ".join(seen)


# -- 戸籍附票通知 ----------------------------------------------------------------------------------------------------
def _annex(subject, sender: str, code: str, sequence: int, **items) -> identity_pb2.AnnexNotice:
    fields = {"from_municipality_code": sender, "to_municipality_code": subject.municipality}
    fields.update(items)
    return identity_pb2.AnnexNotice(resident_code=code, honseki="適合本籍1番地", name_kanji="適合 附票",
                                    birth_date="1990-04-01", address="適合1番地", address_since=_today(), reason="転居",
                                    sequence=sequence, **fields)


def _annex_last(subject, sender: str) -> int:
    """The last 附票通知 number the subject stored from sender (a repeat, numbered 0, is answered with it)."""
    repeat = _annex(subject, sender, _invented(), 0)
    ack = answered(lambda: _as_cs(subject, sender).ReceiveAnnexNotice(repeat, timeout=10))
    if not ack.accepted or ack.applied:
        raise Failed("a repeat answered: accepted, applied 0", f"accepted={ack.accepted} applied={ack.applied}")
    return ack.update_sequence


def _annex_held(subject, code: str) -> list:
    """The 附票通知 of code the subject holds for kizon (a cursor of 0: none taken away)."""
    held = _as_kizon(subject).TakeAnnexNotices(cs_pb2.AnnexCursor(processed_up_to=0), timeout=10)
    return [n.SerializeToString() for n in held.notices if n.resident_code == code]


@case("cs/附票通知/sender", roles=("cs",), profiles=("rules", "security"), rules=(R.ANNEX_NOTICE_SENDER,),
      request="ReceiveAnnexNotice as the CS of 142115, numbered as due: one from 131016; one addressed to 131016",
      asserts="PERMISSION_DENIED ANNEX_NOTICE_SENDER, both; the sender's number as before, no notice held for kizon")
def annex_sender(subject) -> str:
    """A CS sends only its own 戸籍附票通知, addressed to the 本籍地 it reaches."""
    sender, code = _other(subject), _invented()
    cs = _as_cs(subject, sender)
    last = _annex_last(subject, sender)
    seen = [refused(lambda: cs.ReceiveAnnexNotice(_annex(subject, sender, code, last + 1, **items), timeout=10),
                    R.ANNEX_NOTICE_SENDER, node=subject.node.name)
            for items in ({"from_municipality_code": "131016"}, {"to_municipality_code": "131016"})]
    same(last, _annex_last(subject, sender), f"the last 附票通知 number from {sender}")
    same([], _annex_held(subject, code), "the 附票通知 held for kizon of the refused notices")
    return "; ".join(seen)


@case("cs/附票通知/gap", roles=("cs",), profiles=("delivery",), rules=(R.ANNEX_NOTICE_GAP,),
      request="ReceiveAnnexNotice as the CS of 142115 numbered 10^9 past its last one; then one repeating its last",
      asserts="FAILED_PRECONDITION ANNEX_NOTICE_GAP, the number as before, no notice held; the repeat answered "
              "(applied 0)")
def annex_gap(subject) -> str:
    """戸籍附票通知 from one municipality arrive in their order, none skipped; a repeat is answered."""
    sender, code = _other(subject), _invented()
    last = _annex_last(subject, sender)
    observed = refused(lambda: _as_cs(subject, sender).ReceiveAnnexNotice(_annex(subject, sender, code, last + FAR),
                                                                          timeout=10),
                       R.ANNEX_NOTICE_GAP, node=subject.node.name)
    same(last, _annex_last(subject, sender), f"the last 附票通知 number from {sender}")
    same([], _annex_held(subject, code), "the 附票通知 held for kizon of the refused notice")
    return f"{observed}; a repeat answered, up to {last}"


# -- 法務省通知 ------------------------------------------------------------------------------------------------------
def _immigration(subject, sequence: int, *, municipality: str | None = None, card: str = "ZZ00000000ZZ",
                 changed_card: str | None = None, code: str | None = None) -> moj_pb2.ImmigrationNotice:
    """A 法務省通知 of a 出国 (a change that carries no items) on a card no one holds."""
    return moj_pb2.ImmigrationNotice(
        sequence=sequence, municipality_code=municipality or subject.municipality, resident_code=code or _invented(),
        residence_card_number=card, notified_at=_today(),
        change=moj_pb2.ResidenceChange(residence_card_number=changed_card or card, kind="出国", event_date=_today()))


def _immigration_last(subject) -> int:
    """The last 法務省通知 number the subject stored (a repeat, numbered 0, is answered with it)."""
    ack = answered(lambda: _as_moj(subject).ReceiveImmigrationNotice(_immigration(subject, 0), timeout=10))
    if not ack.accepted or ack.applied:
        raise Failed("a repeat answered: accepted, applied 0", f"accepted={ack.accepted} applied={ack.applied}")
    return ack.update_sequence


def _immigration_held(subject, code: str) -> list:
    held = _as_kizon(subject).TakeImmigrationNotices(moj_pb2.ImmigrationCursor(processed_up_to=0), timeout=10)
    return [n.SerializeToString() for n in held.notices if n.resident_code == code]


@case("cs/法務省通知/addressee", roles=("cs",), profiles=("rules", "security"),
      rules=(M.IMMIGRATION_NOTICE_ADDRESSEE,),
      request="ReceiveImmigrationNotice as 法務省, numbered as due: a notice for 142115; one whose change names "
              "another card than the notice",
      asserts="PERMISSION_DENIED IMMIGRATION_NOTICE_ADDRESSEE, both; 法務省's number as before, no notice held")
def immigration_addressee(subject) -> str:
    """A 法務省通知 reaches the CS of the municipality it is addressed to, about the card its change was made on."""
    moj, code, last = _as_moj(subject), _invented(), _immigration_last(subject)
    seen = [refused(lambda: moj.ReceiveImmigrationNotice(_immigration(subject, last + 1, code=code, **items),
                                                         timeout=10), M.IMMIGRATION_NOTICE_ADDRESSEE,
                    node=subject.node.name)
            for items in ({"municipality": _other(subject)}, {"changed_card": "ZY00000000ZY"})]
    same(last, _immigration_last(subject), "the last 法務省通知 number")
    same([], _immigration_held(subject, code), "the 法務省通知 held for kizon of the refused notices")
    return "; ".join(seen)


@case("cs/法務省通知/gap", roles=("cs",), profiles=("delivery",), rules=(M.IMMIGRATION_NOTICE_GAP,),
      request="ReceiveImmigrationNotice as 法務省 numbered 10^9 past its last one; then one repeating its last",
      asserts="FAILED_PRECONDITION IMMIGRATION_NOTICE_GAP, the number as before, no notice held; the repeat "
              "answered (applied 0)")
def immigration_gap(subject) -> str:
    """法務省通知 arrive in 法務省's order for the municipality, none skipped; a repeat is answered."""
    moj, code, last = _as_moj(subject), _invented(), _immigration_last(subject)
    observed = refused(lambda: moj.ReceiveImmigrationNotice(_immigration(subject, last + FAR, code=code), timeout=10),
                       M.IMMIGRATION_NOTICE_GAP, node=subject.node.name)
    same(last, _immigration_last(subject), "the last 法務省通知 number")
    same([], _immigration_held(subject, code), "the 法務省通知 held for kizon of the refused notice")
    return f"{observed}; a repeat answered, up to {last}"


# -- what kizon sends: updates and the notices it attaches ----------------------------------------------------
def _restated(info: records_pb2.IdentityInfo, reason: str, **items) -> records_pb2.IdentityInfo:
    """The 本人確認情報 as kizon would send a change of it, with items stated otherwise."""
    changed = records_pb2.IdentityInfo()
    changed.CopyFrom(info)
    changed.change_reason, changed.change_date = reason, _today()
    changed.request_control_number = uuid.uuid4().hex
    for name, value in items.items():
        setattr(changed, name, value)
    return changed


def _submit_refused(subject, rule, *updates) -> str:
    """SubmitIdentityUpdates as kizon of the updates, refused under rule."""
    batch = identity_pb2.IdentityUpdateBatch(municipality_code=subject.municipality, updates=list(updates))
    return refused(lambda: _as_kizon(subject).SubmitIdentityUpdates(batch, timeout=10), rule, node=subject.node.name)


def _refused_change(subject, rule, code: str, reason: str, **attached) -> str:
    """A change of code's 本人確認情報 (with what kizon attaches) refused under rule; the record as before."""
    before = _held(subject, code)
    update = identity_pb2.IdentityUpdate(municipality_code=subject.municipality, info=_restated(before, reason),
                                         **attached)
    observed = _submit_refused(subject, rule, update)
    same(before, _held(subject, code), "the 本人確認情報 afterwards")
    return observed


@case("cs/更新/needs-record", roles=("cs",), profiles=("rules",), rules=(R.CHANGE_NEEDS_RECORD,),
      request="SubmitIdentityUpdates as kizon: a 転居 of a 住民票コード the CS holds no 本人確認情報 of",
      asserts="FAILED_PRECONDITION CHANGE_NEEDS_RECORD; nothing recorded of the code")
def change_needs_record(subject) -> str:
    """An update other than a new person's changes 本人確認情報 the CS holds."""
    code = _invented()
    info = _restated(_held(subject, subject.person().resident_code), "転居", resident_code=code, individual_number="")
    observed = _submit_refused(subject, R.CHANGE_NEEDS_RECORD,
                               identity_pb2.IdentityUpdate(municipality_code=subject.municipality, info=info))
    _absent(subject, code, "the 転居 of no one here")
    return observed


@case("cs/更新/current-only", roles=("cs",), profiles=("rules",), rules=(R.CHANGE_CURRENT_ONLY,),
      request="SubmitIdentityUpdates as kizon: a 転居 of a 除票 (a person of the run, dead)",
      asserts="FAILED_PRECONDITION CHANGE_CURRENT_ONLY; the 除票 unchanged")
def change_current_only(subject) -> str:
    """A 除票 is changed only by a 職権修正."""
    return _refused_change(subject, R.CHANGE_CURRENT_ONLY, _removed(subject).resident_code, "転居")


@case("cs/住民票コード変更/offered-code", roles=("cs",), profiles=("rules", "security"),
      rules=(R.RECODE_OFFERED_CODE,),
      request="SubmitIdentityUpdates as kizon: a 住民票コード変更 of the run's person to a code national never offered "
              "them",
      asserts="FAILED_PRECONDITION RECODE_OFFERED_CODE; the person as before, nothing recorded of the new code")
def recode_offered_code(subject) -> str:
    """A 住民票コード変更 takes one of the codes national offered to the person."""
    person, code = subject.person().resident_code, _invented()
    before = _held(subject, person)
    info = _restated(before, "住民票コード変更", resident_code=code, former_resident_code=person,
                     resident_code_use_date=_today())
    observed = _submit_refused(subject, R.RECODE_OFFERED_CODE,
                               identity_pb2.IdentityUpdate(municipality_code=subject.municipality, info=info))
    same(before, _held(subject, person), "the person's 本人確認情報 afterwards")
    _absent(subject, code, "the code not offered")
    return observed


@case("cs/附票通知/items", roles=("cs",), profiles=("rules",), rules=(R.ANNEX_NOTICE_ITEMS,),
      request="SubmitIdentityUpdates as kizon: a 職権修正 of the run's person carrying a 戸籍附票通知 of another "
              "person; one carrying a notice from another municipality",
      asserts="INVALID_ARGUMENT ANNEX_NOTICE_ITEMS, both; the 本人確認情報 unchanged")
def annex_items(subject) -> str:
    """A 戸籍附票通知 kizon attaches is about the person of its update, from its municipality."""
    person, other = subject.person().resident_code, _other(subject)
    return "; ".join(_refused_change(subject, R.ANNEX_NOTICE_ITEMS, person, "職権修正", annex_notice=notice) for notice in (
        _annex(subject, subject.municipality, _invented(), 0, to_municipality_code=other),
        _annex(subject, other, person, 0, to_municipality_code=other)))


@case("cs/市町村通知/items", roles=("cs",), profiles=("rules",), rules=(M.MUNICIPALITY_NOTICE_ITEMS,),
      request="SubmitIdentityUpdates as kizon: a 職権修正 of the run's person carrying a 市町村通知 of another "
              "person; one carrying a notice with a malformed 在留カード番号",
      asserts="INVALID_ARGUMENT MUNICIPALITY_NOTICE_ITEMS, both; the 本人確認情報 unchanged")
def municipality_notice_items(subject) -> str:
    """A 市町村通知 kizon attaches is about the person of its update, from its municipality, with their card number."""
    person = subject.person().resident_code

    def notice(code: str, card: str) -> moj_pb2.MunicipalityNotice:
        return moj_pb2.MunicipalityNotice(municipality_code=subject.municipality, resident_code=code,
                                          residence_card_number=card, reason="職権修正", address="適合1番地",
                                          event_date=_today())
    return "; ".join(_refused_change(subject, M.MUNICIPALITY_NOTICE_ITEMS, person, "職権修正", municipality_notice=n)
                     for n in (notice(_invented(), "ZZ00000000ZZ"), notice(person, "1234")))


@case("cs/住民票コード/reserved", roles=("cs",), profiles=("rules", "security"), rules=(R.POOL_CODE_RESERVED,),
      request="DrawResidentCodes of 1 with its 個人番号 (numbered) as kizon for one request, and AssignIndividualNumbers "
              "of it; SubmitIdentityUpdates of a 国外転入 with that code under another 依頼管理番号; ReleaseResidentCodes",
      asserts="the draw's 個人番号 is national's (what AssignIndividualNumbers answers for the code); FAILED_PRECONDITION "
              "POOL_CODE_RESERVED; nothing recorded of the code; the code released to the pool")
def pool_code_reserved(subject) -> str:
    """A new person's 住民票コード is one this CS drew from its pool for that very request."""
    cs, reservation = _as_kizon(subject), f"conform-{uuid.uuid4().hex}"
    drawn = answered(lambda: cs.DrawResidentCodes(cs_pb2.CodeDraw(count=1, reservation=reservation, numbered=True),
                                                  timeout=30))
    code = drawn.resident_codes[0]
    try:
        number = answered(lambda: cs.AssignIndividualNumbers(cs_pb2.ResidentCodes(resident_codes=[code]),
                                                             timeout=10)).assignments[0].individual_number
        same([(code, number)], [(a.resident_code, a.individual_number) for a in drawn.numbers],
             "the 個人番号 of the numbered draw")
        info = _restated(_held(subject, subject.person().resident_code), "国外転入", resident_code=code,
                         individual_number=number, request_control_number=f"conform-{uuid.uuid4().hex}:1")
        observed = _submit_refused(subject, R.POOL_CODE_RESERVED,
                                   identity_pb2.IdentityUpdate(municipality_code=subject.municipality, info=info))
        _absent(subject, code, "the code drawn for another request")
    finally:
        released = cs.ReleaseResidentCodes(cs_pb2.CodeRelease(reservation=reservation), timeout=10)
    same(1, released.applied, "codes released of the case's reservation")
    return f"{observed}; {code} released"


@case("cs/住民票コード/draw-size", roles=("cs",), profiles=("rules",), rules=(R.POOL_DRAW_SIZE,),
      request="DrawResidentCodes as kizon of 0 codes; of 1001; then of 1 for a reservation, released",
      asserts="INVALID_ARGUMENT POOL_DRAW_SIZE, both, the pool as before; 1 code drawn, and released")
def pool_draw_size(subject) -> str:
    """A draw from the 住民票コード pool takes 1..1000 codes."""
    cs = _as_kizon(subject)
    before = answered(lambda: cs.GetPoolStatus(common_pb2.Empty(), timeout=10)).available

    def draw(count: int):
        return lambda: cs.DrawResidentCodes(cs_pb2.CodeDraw(count=count, reservation=f"conform-{uuid.uuid4().hex}"),
                                            timeout=30)
    seen = [refused(draw(count), R.POOL_DRAW_SIZE, node=subject.node.name) for count in (0, 1001)]
    same(before, answered(lambda: cs.GetPoolStatus(common_pb2.Empty(), timeout=10)).available, "the codes in the pool")
    reservation = f"conform-{uuid.uuid4().hex}"
    drawn = answered(lambda: cs.DrawResidentCodes(cs_pb2.CodeDraw(count=1, reservation=reservation), timeout=30))
    released = cs.ReleaseResidentCodes(cs_pb2.CodeRelease(reservation=reservation), timeout=10)
    same((1, 1), (len(drawn.resident_codes), released.applied), "(codes drawn of 1, released)")
    return "; ".join(seen) + "; 1 drawn and released"


@case("cs/更新/group-size", roles=("cs",), profiles=("rules",), rules=(R.GROUP_SIZE,),
      request=f"SubmitIdentityUpdateGroup as kizon of {GROUP_LIMIT + 1} (empty) batches; of 1",
      asserts="INVALID_ARGUMENT GROUP_SIZE, the run's person as before; the group of 1 answered with one outcome")
def group_size(subject) -> str:
    """A group commit carries at most GROUP_LIMIT batches."""
    cs, person = _as_kizon(subject), subject.person().resident_code
    before = _held(subject, person)

    def group(count: int) -> cs_pb2.IdentityUpdateGroup:
        return cs_pb2.IdentityUpdateGroup(batches=[identity_pb2.IdentityUpdateBatch(
            municipality_code=subject.municipality) for _ in range(count)])
    observed = refused(lambda: cs.SubmitIdentityUpdateGroup(group(GROUP_LIMIT + 1), timeout=10), R.GROUP_SIZE,
                       node=subject.node.name)
    same(before, _held(subject, person), "the run's person afterwards")
    one = answered(lambda: cs.SubmitIdentityUpdateGroup(group(1), timeout=10))
    same([0], [o.code for o in one.outcomes], "the outcome codes of a group of one empty batch")
    return f"{observed}; a group of 1: one outcome, OK"


# -- the 個人番号カード and the 広域交付 ------------------------------------------------------------------------------
@case("cs/カード/step-by-cs", roles=("cs",), profiles=("rules", "security"), rules=(R.CARD_STEP_BY_CS,),
      request="ChangeCard as kizon of the run's person: TRANSFER; RECODE",
      asserts="PERMISSION_DENIED CARD_STEP_BY_CS, both; the card system's state of the person's card as before")
def card_step_by_cs(subject) -> str:
    """A card TRANSFER or RECODE is a step the CS takes itself, never one asked at the counter."""
    cs, code = _as_kizon(subject), subject.person().resident_code
    before = _card_state(subject, code)
    seen = [refused(lambda: cs.ChangeCard(card_pb2.CardRequest(action=action, resident_code=code,
                                                               former_resident_code=code), timeout=10),
                    R.CARD_STEP_BY_CS, node=subject.node.name) for action in (card_pb2.TRANSFER, card_pb2.RECODE)]
    same(before, _card_state(subject, code), "the card system's state of the person's card")
    return "; ".join(seen)


@case("cs/広域交付/home", roles=("cs",), profiles=("rules", "security"), rules=(R.WIDE_AREA_HOME,),
      request="a card of the case's own (a person of 142140, issued at the counter); WideAreaLookup as kizon with "
              "it and its PIN naming 142115 as the holder's home; then naming 142140",
      asserts="FAILED_PRECONDITION WIDE_AREA_HOME; then the holder's 本人確認情報")
def wide_area_home(subject) -> str:
    """A 広域交付 asks the CS of the municipality the card holder lives in."""
    code, card = _card_holder(subject)
    cs = _as_kizon(subject)

    def lookup(home: str):
        return lambda: cs.WideAreaLookup(cs_pb2.WideAreaRequest(home_municipality_code=home,
                                                                card_number=card.card_number, pin=PIN), timeout=10)
    observed = refused(lookup(_other(subject)), R.WIDE_AREA_HOME, node=subject.node.name)
    found = answered(lookup(subject.municipality))
    same(code, found.resident_code, "the 住民票コード the 広域交付 at home answers")
    return f"{observed}; at home: {found.resident_code}"


@case("cs/広域交付/current-resident", roles=("cs",), profiles=("rules", "security"),
      rules=(R.WIDE_AREA_CURRENT_RESIDENT,),
      request="ProvideForWideArea as the CS of 142115: of a 除票 here (a person of the run, dead); of the run's person",
      asserts="FAILED_PRECONDITION WIDE_AREA_CURRENT_RESIDENT; then the current resident's 本人確認情報")
def wide_area_current_resident(subject) -> str:
    """A CS provides for a 広域交付 only the 本人確認情報 of its current residents."""
    cs, removed, person = _as_cs(subject, _other(subject)), _removed(subject), subject.person().resident_code
    observed = refused(lambda: cs.ProvideForWideArea(_key(removed.resident_code), timeout=10),
                       R.WIDE_AREA_CURRENT_RESIDENT, node=subject.node.name)
    found = answered(lambda: cs.ProvideForWideArea(_key(person), timeout=10))
    same(person, found.resident_code, "the 住民票コード provided of the current resident")
    return f"{observed}; the current resident: {found.resident_code}"
