"""The cases of the 都道府県サーバ and the 全国サーバ: what a CS relays to its prefecture and a prefecture to national
(本人確認情報の通知, PIA Ⅲ(2)5): who may send whose updates, the 更新順番号 (a gap refused naming the number due, a
duplicate ignored, a batch not reordered), national's numbers (住民票コード pools and offers, the 個人番号 it alone
issues, and to whom), the 全国検索 keys and the 整合性確認's own records; and, for every role, the audit entry a
refused call leaves (the Operations service's count of them).

Every batch the suite sends is one the receiver must refuse or ignore, never one it may apply: its people are
newcomers numbered by national for the run (a 住民票コード pooled to the municipality's CS and its 個人番号), and a
batch whose refusal rests on the 更新順番号 ends with an update numbered far beyond anything the CS will send, so
that should the CS's own updates close the gap between reading the number due and sending, the batch is still
refused whole and the CS's sequence at the receiver stays its own.
"""
from __future__ import annotations

import time
import uuid

import grpc

from certs.identity import KIND_DOMAIN, monitor_uri, parse
from nodes.clock import office_today, stamp
from nodes.digests import LEAF
from nodes.identityfile import SEQUENCE_DUE_KEY
from nodes.national import MAX_POOL
from nodes.numbers import individual_number_valid, with_individual_number_check, with_resident_code_check
from nodes.reasons import access as A, common as C, cs as R, national as N
from protos import common_pb2, cs_pb2, identity_pb2, kizon_pb2_grpc, national_pb2, national_pb2_grpc, ops_pb2, \
    ops_pb2_grpc, prefecture_pb2_grpc, records_pb2
from scenarios.towns import towns
from testbed.client import node_cert
from testbed.conform.case import EVERY_ROLE, Failed, Skipped, answered, case, outcome, refused, same
from testbed.kit import methods_of, policy_decision
from testbed.requests import death, move_in_from_abroad

OUTSIDE = "131016"  # 東京都千代田区: a municipality of another prefecture (no node of the topology serves it)
FAR = 10**9  # a 更新順番号 this far beyond the number due is one no CS reaches while a case runs
ARRIVAL = 20.0  # seconds a change made at kizon may take to reach national
AUDITED = 5  # refused calls the audit case makes (what else the node audits meanwhile can only add to the count)


# -- the callers ----------------------------------------------------------------------------------------------
def _municipalities(subject) -> tuple[str, str]:
    """(the home municipality, another municipality of its prefecture that has a CS), or Skipped."""
    home = subject.home()
    prefecture = subject.topology.municipality(home).prefecture
    for m in subject.topology.municipalities:
        if m.code != home and m.prefecture == prefecture and _has(subject, "cs", m.code):
            return home, m.code
    raise Skipped(f"the topology has no second municipality of prefecture {prefecture} with a CS: the case calls "
                  "as the CS of one municipality about another")


def _has(subject, kind: str, municipality: str | None = None) -> bool:
    try:
        subject.topology.find(kind, municipality)
    except KeyError:
        return False
    return True


def _prefecture_name(subject) -> str:
    """The node name of the home municipality's prefecture server."""
    code = subject.topology.municipality(subject.home()).prefecture
    try:
        return subject.topology.find("prefecture", prefecture=code).name
    except KeyError:
        raise Skipped(f"no prefecture server of {code} in this topology") from None


def _at_prefecture(subject, municipality: str):
    """The subject (a prefecture server) as the CS of a municipality calls it."""
    return prefecture_pb2_grpc.PrefectureServerStub(subject.as_node(f"cs-{municipality}"))


def _national_as(subject, name: str):
    """National (the subject, or the network's national server) as the node name calls it."""
    if subject.role == "national":
        return national_pb2_grpc.NationalServerStub(subject.as_node(name))
    node = subject.topology.find("national")
    return national_pb2_grpc.NationalServerStub(subject.channel(node_cert(subject.pki, name), node))


def _receiver(subject, sender: str = ""):
    """(how the subject takes a batch from sender, how a person is read back there) for the relay the subject ends:
    a prefecture from a CS (default: the home municipality's), national from a prefecture (default: the home
    municipality's)."""
    home = subject.home()
    if subject.role == "prefecture":
        stub = prefecture_pb2_grpc.PrefectureServerStub(subject.as_node(sender or f"cs-{home}"))
        return stub.ApplyIdentityUpdates, _at_prefecture(subject, home).GetIdentity
    stub = national_pb2_grpc.NationalServerStub(subject.as_node(sender or _prefecture_name(subject)))
    return stub.ApplyIdentityUpdates, _national_as(subject, f"cs-{home}").GetIdentity


def _applied(subject, municipality: str) -> int:
    """The highest 更新順番号 of a municipality the subject has applied (its Operations status, as the monitor)."""
    status = ops_pb2_grpc.OperationsStub(subject.as_monitor()).GetStatus(ops_pb2.StatusRequest(), timeout=10)
    return status.applied.get(municipality, 0)


# -- the newcomers of a batch ---------------------------------------------------------------------------------
def _numbered(subject, count: int) -> list[tuple[str, str]]:
    """count (住民票コード, 個人番号) national issued for the run to the home municipality's CS: a pool drawn and its
    numbers assigned, as a CS numbers a new person (they are no one's yet, and never will be)."""
    national = _national_as(subject, f"cs-{subject.home()}")
    codes = list(national.IssueResidentCodePool(national_pb2.PoolRequest(municipality_code=subject.home(), count=count),
                                                timeout=10).resident_codes)
    numbers = national.AssignIndividualNumbers(cs_pb2.ResidentCodes(resident_codes=codes), timeout=10)
    return [(a.resident_code, a.individual_number) for a in numbers.assignments]


def _newcomer(subject, municipality: str, sequence: int, numbers: tuple[str, str]) -> identity_pb2.IdentityUpdate:
    """The 国外転入 of a newcomer to municipality as its CS numbers the update."""
    today = office_today().isoformat()
    try:
        place = subject.topology.municipality(municipality)
        address = f"{subject.topology.prefectures.get(place.prefecture, '')}{place.name}適合1番地"
    except KeyError:
        address = "東京都千代田区千代田1番1号"
    code, number = numbers
    info = records_pb2.IdentityInfo(
        resident_code=code, name_kanji="適合 中継", name_kana="テキゴウ チュウケイ", name_kana_seion="テキコウ チユウケイ",
        birth_date="1990-04-01", sex="9", municipality_code=municipality, address=address, individual_number=number,
        resident_since=today, address_since=today, notification_date=today, change_reason="国外転入",
        change_date=today, resident_code_use_date=today, request_control_number=uuid.uuid4().hex,
        update_sequence=sequence, timestamp=stamp())
    return identity_pb2.IdentityUpdate(municipality_code=municipality, info=info)


def _batch(municipality: str, updates) -> identity_pb2.IdentityUpdateBatch:
    return identity_pb2.IdentityUpdateBatch(municipality_code=municipality, updates=list(updates))


def _nowhere(read, updates, where: str) -> None:
    """Assert that the subject holds none of the batch's newcomers afterwards."""
    for update in updates:
        code, _, _, _ = outcome(lambda: read(common_pb2.ResidentKey(resident_code=update.info.resident_code),
                                             timeout=10))
        same("NOT_FOUND", code.name, f"{where}'s answer for the refused newcomer {update.info.resident_code}")


def _with_trailers(call):
    """(call, the trailing metadata its refusal carried, filled once it has run)."""
    trailers: dict[str, str] = {}

    def run():
        try:
            return call()
        except grpc.RpcError as exc:
            trailers.update((k, v) for k, v in (exc.trailing_metadata() or ()))
            raise
    return run, trailers


def _refused_own(subject, batch_municipality: str, record_municipality: str, rule, sender: str) -> str:
    """A batch of batch_municipality with one newcomer of record_municipality, numbered as due, refused under rule
    by the subject; the newcomer held nowhere afterwards."""
    send, read = _receiver(subject, sender)
    due = _applied(subject, batch_municipality) + 1
    update = _newcomer(subject, record_municipality, due, _numbered(subject, 1)[0])
    batch = _batch(batch_municipality, [update])
    observed = refused(lambda: send(batch, timeout=10), rule, node=subject.node.name)
    _nowhere(read, [update], subject.node.name)
    return observed


def _refused_sequence(subject, order) -> str:
    """A batch of the home municipality's newcomers numbered by order(due) (and a far one after them), refused under
    UPDATE_SEQUENCE_ORDER naming the number due; none of them held afterwards."""
    send, read = _receiver(subject)
    home = subject.home()
    before = _applied(subject, home)
    numbers = order(before + 1) + [before + 1 + FAR]
    updates = [_newcomer(subject, home, n, pair) for n, pair in zip(numbers, _numbered(subject, len(numbers)))]
    call, trailers = _with_trailers(lambda: send(_batch(home, updates), timeout=10))
    observed = refused(call, R.UPDATE_SEQUENCE_ORDER, node=subject.node.name)
    after = _applied(subject, home)
    named = trailers.get(SEQUENCE_DUE_KEY, "")
    if not named.isdigit() or not before + 1 <= int(named) <= after + 1:
        raise Failed(f"{SEQUENCE_DUE_KEY} {before + 1} (the number due)", f"{SEQUENCE_DUE_KEY} {named or '(none)'}",
                     R.UPDATE_SEQUENCE_ORDER.reason)
    _nowhere(read, updates, subject.node.name)
    return f"{observed}; {SEQUENCE_DUE_KEY} {named}; sent {', '.join(str(n) for n in numbers)}; nothing applied"


def _duplicate(subject) -> str:
    """A newcomer numbered as the last update the subject applied: answered, none applied, the newcomer held
    nowhere."""
    send, read = _receiver(subject)
    home = subject.home()
    last = _applied(subject, home)
    if last == 0:
        raise Skipped(f"{subject.node.name} has applied no update of {home} yet: register someone there first")
    update = _newcomer(subject, home, last, _numbered(subject, 1)[0])
    ack = answered(lambda: send(_batch(home, [update]), timeout=10))
    same(0, ack.applied, "updates applied of a batch that repeats an applied 更新順番号")
    if not ack.accepted or ack.update_sequence < last:
        raise Failed(f"accepted, update_sequence >= {last}",
                     f"accepted={ack.accepted} update_sequence={ack.update_sequence}")
    _nowhere(read, [update], subject.node.name)
    return f"{last} again: accepted, applied 0, up to {ack.update_sequence}; the repeat's newcomer held nowhere"


# == the 都道府県サーバ ==========================================================================================
@case("prefecture/更新/own-municipality", roles=("prefecture",), profiles=("rules", "security"),
      rules=(C.MUNICIPALITY_OWN,),
      request="ApplyIdentityUpdates as the CS of 142140: a batch of 142115 (its update numbered as due there)",
      asserts="PERMISSION_DENIED MUNICIPALITY_OWN; the newcomer held nowhere")
def prefecture_own_municipality(subject) -> str:
    """A CS sends its own municipality's updates only."""
    home, other = _municipalities(subject)
    return _refused_own(subject, other, other, C.MUNICIPALITY_OWN, f"cs-{home}")


@case("prefecture/更新/record-of-another", roles=("prefecture",), profiles=("rules", "security"),
      rules=(C.MUNICIPALITY_OWN,),
      request="ApplyIdentityUpdates as the CS of 142140: its own batch carrying a record of 142115, numbered as due",
      asserts="PERMISSION_DENIED MUNICIPALITY_OWN; the record held nowhere")
def prefecture_record_of_another(subject) -> str:
    """Each record of a batch is of the batch's municipality: none is smuggled in another's."""
    home, other = _municipalities(subject)
    return _refused_own(subject, home, other, C.MUNICIPALITY_OWN, f"cs-{home}")


@case("prefecture/更新順番号/gap", roles=("prefecture",), profiles=("delivery",), rules=(R.UPDATE_SEQUENCE_ORDER,),
      request="ApplyIdentityUpdates as the CS of 142140: a batch of newcomers numbered one past the number due "
              "(then 10^9 past it)",
      asserts="FAILED_PRECONDITION UPDATE_SEQUENCE_ORDER, x-sequence-due the number due; nothing applied")
def prefecture_gap(subject) -> str:
    """Updates are applied in 更新順番号 order: a gap is refused, naming the number due."""
    return _refused_sequence(subject, lambda due: [due + 1])


@case("prefecture/更新順番号/duplicate", roles=("prefecture",), profiles=("delivery",),
      rules=(R.UPDATE_SEQUENCE_ORDER,), standard="DESIGN §5 (a re-send is harmless)",
      request="ApplyIdentityUpdates as the CS of 142140: a newcomer numbered as the last update applied",
      asserts="accepted, applied 0; the newcomer held nowhere (a duplicate is ignored, not applied again)")
def prefecture_duplicate(subject) -> str:
    """A 更新順番号 already applied is a re-send: answered and ignored."""
    return _duplicate(subject)


@case("prefecture/更新順番号/out-of-order", roles=("prefecture",), profiles=("delivery",),
      rules=(R.UPDATE_SEQUENCE_ORDER,),
      request="ApplyIdentityUpdates as the CS of 142140: newcomers numbered the number due and the next, in "
              "reverse order (then 10^9 past it)",
      asserts="FAILED_PRECONDITION UPDATE_SEQUENCE_ORDER naming the number due (not reordered); nothing applied")
def prefecture_out_of_order(subject) -> str:
    """A batch is applied in the order sent: a receiver does not sort it."""
    return _refused_sequence(subject, lambda due: [due + 1, due])


@case("prefecture/整合性確認/own-records", roles=("prefecture",), profiles=("rules", "security"),
      rules=(C.CONSISTENCY_OWN_RECORDS,),
      request="IdentityDigests of 142115 as the CS of 142140; GetIdentities of people of 142140 as the CS of 142115",
      asserts="PERMISSION_DENIED CONSISTENCY_OWN_RECORDS; no record of 142140 given to 142115")
def prefecture_own_records(subject) -> str:
    """A 整合性確認 compares only the caller's own records."""
    home, other = _municipalities(subject)
    return _own_records(subject, _at_prefecture(subject, home), _at_prefecture(subject, other), home, other)


def _own_records(subject, own, another, home: str, other: str) -> str:
    """The digests of another municipality refused; the records of home asked by other's CS not given."""
    observed = refused(lambda: list(own.IdentityDigests(common_pb2.ConsistencyRequest(municipality_code=other),
                                                        timeout=10)), C.CONSISTENCY_OWN_RECORDS, node=subject.node.name)
    codes = _some_codes(own, home)
    if not codes:
        return f"{observed} (no record of {home} held to ask for as {other})"
    mine = answered(lambda: own.GetIdentities(common_pb2.ResidentKeys(resident_codes=codes), timeout=10))
    theirs = answered(lambda: another.GetIdentities(common_pb2.ResidentKeys(resident_codes=codes), timeout=10))
    same([], [i.resident_code for i in theirs.items], f"the records of {home} given to the CS of {other}")
    return f"{observed}; {len(codes)} of {home}: {len(mine.items)} to its CS, none to {other}'s"


def _some_codes(stub, municipality: str, count: int = 5) -> list[str]:
    """A few 住民票コード the node holds of a municipality (the first batch of its digests, the rest cancelled)."""
    stream = stub.IdentityDigests(common_pb2.ConsistencyRequest(municipality_code=municipality), timeout=30)
    for batch in stream:
        stream.cancel()
        return list(batch.resident_codes[:count])
    return []


STILL_TRIES = 10  # reads of a file's ranges until two agree (deliveries of earlier cases may still be arriving)
RANGES_REQUEST = ("IdentityDigests as the CS of 142140: ranges named by five digits, by a letter, and 10,001 of them; "
                  "then the ranges of the whole file, down one branch to a leaf, and the records of that leaf")
RANGES_ASSERT = ("INVALID_ARGUMENT CONSISTENCY_RANGE each time; the ten top ranges count every record the file holds of "
                 "142140, each range the ranges inside it, and a leaf's records are those whose 住民票コード begin with it")


@case("prefecture/整合性確認/ranges", roles=("prefecture",), profiles=("rules",), rules=(C.CONSISTENCY_RANGE,),
      request=RANGES_REQUEST, asserts=RANGES_ASSERT)
def prefecture_ranges(subject) -> str:
    """The tree of ranges the 整合性確認 walks: well-formed ranges only, and each range what its records add up to."""
    return _ranges(subject, _at_prefecture(subject, subject.home()))


def _ranges(subject, stub) -> str:
    """The malformed ranges refused; the ranges of the home municipality's file added up, down one branch."""
    home = subject.home()

    def asked(prefixes, ranges=True):
        query = common_pb2.ConsistencyRequest(municipality_code=home, prefixes=prefixes, ranges=ranges)
        return list(stub.IdentityDigests(query, timeout=30))
    observed = [refused(lambda p=p: asked(p), C.CONSISTENCY_RANGE, node=subject.node.name)
                for p in (["12345"], ["1a"], ["0"] * 10_001)]
    def ranges(prefixes):
        return [r for b in asked(prefixes) for r in b.ranges]
    for _ in range(STILL_TRIES):  # (updates of earlier cases may still be arriving: a file that holds still is read)
        top = ranges([])
        records = sum(len(b.resident_codes) for b in asked([], ranges=False))
        levels, leaf = [], (top[0] if top else None)
        while leaf is not None and len(leaf.prefix) < LEAF:  # (down one branch: each range and the ranges inside it)
            inside = ranges([leaf.prefix])
            levels.append((leaf, inside))
            leaf = inside[0] if inside else None
        codes = [c for b in asked([leaf.prefix], ranges=False) for c in b.resident_codes] if leaf else []
        if ranges([]) == top:
            break
    else:
        raise Failed(f"the ranges of {home} changed at every one of {STILL_TRIES} reads")
    same(records, sum(r.records for r in top), "the records the ten top ranges count")
    if not top:
        return f"{observed[0]}; no record of {home} held"
    for outer, inside in levels:
        same(outer.records, sum(r.records for r in inside), f"the records the ranges inside {outer.prefix} count")
    if leaf is None:
        raise Failed(f"range {levels[-1][0].prefix} counts records but holds no range inside it")
    same(leaf.records, len(codes), f"the records of leaf {leaf.prefix}")
    same([], [c for c in codes if not c.startswith(leaf.prefix)], f"records outside leaf {leaf.prefix}")
    return f"{observed[0]}; {records} records in {len(top)} top ranges, leaf {leaf.prefix} holds {leaf.records}"


# == the 全国サーバ ==============================================================================================
@case("national/更新/prefecture-sends-own", roles=("national",), profiles=("rules", "security"),
      rules=(N.PREFECTURE_SENDS_OWN,),
      request="ApplyIdentityUpdates as the prefecture server of 神奈川県: a batch of 131016 (東京都千代田区)",
      asserts="PERMISSION_DENIED PREFECTURE_SENDS_OWN; the newcomer held nowhere")
def national_prefecture_sends_own(subject) -> str:
    """National takes from a prefecture only the updates of that prefecture's municipalities."""
    return _refused_own(subject, OUTSIDE, OUTSIDE, N.PREFECTURE_SENDS_OWN, _prefecture_name(subject))


@case("national/更新/record-of-another", roles=("national",), profiles=("rules", "security"),
      rules=(C.MUNICIPALITY_OWN,),
      request="ApplyIdentityUpdates as the prefecture server: a batch of 142140 carrying a record of 131016",
      asserts="PERMISSION_DENIED MUNICIPALITY_OWN; the record held nowhere")
def national_record_of_another(subject) -> str:
    """A prefecture smuggles no other prefecture's record inside a batch of its own municipality."""
    return _refused_own(subject, subject.home(), OUTSIDE, C.MUNICIPALITY_OWN, _prefecture_name(subject))


@case("national/更新/number-by-national", roles=("national",), profiles=("rules", "security"),
      rules=(C.INDIVIDUAL_NUMBER_BY_NATIONAL,),
      request="ApplyIdentityUpdates as the prefecture server: a newcomer of 142140 numbered as due but carrying a "
              "well-formed 個人番号 national never issued (then one 10^9 past it)",
      asserts="INVALID_ARGUMENT INDIVIDUAL_NUMBER_BY_NATIONAL; the newcomer held nowhere")
def national_number_by_national(subject) -> str:
    """National alone issues 個人番号: a relayed update cannot store a number of the sender's making."""
    send, read = _receiver(subject)
    home = subject.home()
    due = _applied(subject, home) + 1
    (code, number), far = _numbered(subject, 2)
    updates = [_newcomer(subject, home, due, (code, _other_number(number))), _newcomer(subject, home, due + FAR, far)]
    observed = refused(lambda: send(_batch(home, updates), timeout=10), C.INDIVIDUAL_NUMBER_BY_NATIONAL,
                       node=subject.node.name)
    _nowhere(read, updates, subject.node.name)
    return observed


@case("national/更新/recode-of-another", roles=("national",), profiles=("rules", "security"),
      rules=(C.INDIVIDUAL_NUMBER_BY_NATIONAL,),
      request="ApplyIdentityUpdates as the prefecture server: a 住民票コード変更 of 142140 to a fresh code, from a code "
              "national issued a 個人番号 to but holds no record of, carrying that number (then one 10^9 past it)",
      asserts="INVALID_ARGUMENT INDIVIDUAL_NUMBER_BY_NATIONAL; neither code held afterwards")
def national_recode_of_another(subject) -> str:
    """A 住民票コード変更 carries over only the number of a person the sending municipality holds at national."""
    send, read = _receiver(subject)
    home = subject.home()
    due = _applied(subject, home) + 1
    (former, number), (fresh, _), far = _numbered(subject, 3)
    recode = _newcomer(subject, home, due, (fresh, number))
    recode.info.change_reason, recode.info.former_resident_code = "住民票コード変更", former
    updates = [recode, _newcomer(subject, home, due + FAR, far)]
    observed = refused(lambda: send(_batch(home, updates), timeout=10), C.INDIVIDUAL_NUMBER_BY_NATIONAL,
                       node=subject.node.name)
    _nowhere(read, updates, subject.node.name)
    _nowhere(read, [_newcomer(subject, home, due, (former, number))], subject.node.name)
    return observed


def _other_number(number: str) -> str:
    """A well-formed 個人番号 (its check digit right) other than number."""
    return with_individual_number_check(f"{(int(number[:11]) + 1) % 10**11:011d}")


@case("national/更新順番号/gap", roles=("national",), profiles=("delivery",), rules=(R.UPDATE_SEQUENCE_ORDER,),
      request="ApplyIdentityUpdates as the prefecture server: a batch of 142140's newcomers numbered one past the "
              "number due (then 10^9 past it)",
      asserts="FAILED_PRECONDITION UPDATE_SEQUENCE_ORDER, x-sequence-due the number due; nothing applied")
def national_gap(subject) -> str:
    """Updates are applied in 更新順番号 order at national too: a gap is refused, naming the number due."""
    return _refused_sequence(subject, lambda due: [due + 1])


@case("national/更新順番号/duplicate", roles=("national",), profiles=("delivery",),
      rules=(R.UPDATE_SEQUENCE_ORDER,), standard="DESIGN §5 (a re-send is harmless)",
      request="ApplyIdentityUpdates as the prefecture server: a newcomer of 142140 numbered as the last applied",
      asserts="accepted, applied 0; the newcomer held nowhere")
def national_duplicate(subject) -> str:
    """A 更新順番号 already applied is a re-send: answered and ignored."""
    return _duplicate(subject)


@case("national/更新順番号/out-of-order", roles=("national",), profiles=("delivery",),
      rules=(R.UPDATE_SEQUENCE_ORDER,),
      request="ApplyIdentityUpdates as the prefecture server: 142140's newcomers numbered the number due and the "
              "next, in reverse order (then 10^9 past it)",
      asserts="FAILED_PRECONDITION UPDATE_SEQUENCE_ORDER naming the number due (not reordered); nothing applied")
def national_out_of_order(subject) -> str:
    """A batch is applied in the order sent: a receiver does not sort it."""
    return _refused_sequence(subject, lambda due: [due + 1, due])


@case("national/個人番号/issued-to", roles=("national",), profiles=("rules", "security"),
      rules=(N.RESIDENT_CODE_ISSUED_TO,),
      request="IssueResidentCodePool of 1 as the CS of 142140; AssignIndividualNumbers of that code as the CS of "
              "142115, then twice as the CS of 142140",
      asserts="PERMISSION_DENIED RESIDENT_CODE_ISSUED_TO, no number known for it after; then one valid 個人番号, "
              "the same when asked again")
def issued_to(subject) -> str:
    """A 住民票コード pooled to one municipality gets a 個人番号 only for it, and always the same one."""
    home, other = _municipalities(subject)
    own, another = _national_as(subject, f"cs-{home}"), _national_as(subject, f"cs-{other}")
    code = answered(lambda: own.IssueResidentCodePool(national_pb2.PoolRequest(municipality_code=home, count=1),
                                                      timeout=10)).resident_codes[0]
    ask = cs_pb2.ResidentCodes(resident_codes=[code])
    observed = refused(lambda: another.AssignIndividualNumbers(ask, timeout=10), N.RESIDENT_CODE_ISSUED_TO,
                       node=subject.node.name)
    standing = answered(lambda: own.CheckResidence(identity_pb2.ResidenceQuery(resident_code=code), timeout=10))
    same((False, ""), (standing.known, standing.individual_number), f"what national knows of {code}'s number after")
    first = answered(lambda: own.AssignIndividualNumbers(ask, timeout=10))
    again = answered(lambda: own.AssignIndividualNumbers(ask, timeout=10))
    numbers = [(a.resident_code, a.individual_number) for a in first.assignments]
    if len(numbers) != 1 or numbers[0][0] != code or not individual_number_valid(numbers[0][1]):
        raise Failed(f"one valid 個人番号 for {code}", repr(numbers))
    same(numbers, [(a.resident_code, a.individual_number) for a in again.assignments], "the 個人番号 asked again")
    return f"{observed}; for {home}: {numbers[0][1]}, the same again"


def _current_resident(subject, national) -> str:
    """A current resident of the home municipality national holds (one of its digests, else the run's person once
    it has reached national)."""
    home = subject.home()
    codes = _some_codes(national, home, 20)
    if codes:
        held = national.GetIdentities(common_pb2.ResidentKeys(resident_codes=codes), timeout=10)
        for info in held.items:
            if info.record_status_flag == 0 and info.municipality_code == home:
                return info.resident_code
    code = subject.person().resident_code
    _reached(national, code, lambda info: info.record_status_flag == 0, "the run's person")
    return code


def _reached(national, code: str, when, what: str) -> records_pb2.IdentityInfo:
    """National's record of code once when(record) holds (a change at kizon is relayed there in its time)."""
    deadline = time.monotonic() + ARRIVAL
    while True:
        try:
            info = national.GetIdentity(common_pb2.ResidentKey(resident_code=code), timeout=10)
            if when(info):
                return info
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
        if time.monotonic() > deadline:
            raise Skipped(f"{what} ({code}) did not reach national as the case needs within {ARRIVAL:g} s")
        time.sleep(0.1)  # (a bounded wait for the relay kizon → CS → prefecture → national)


@case("national/個人番号/one-residence", roles=("national",), profiles=("rules", "security"),
      rules=(C.ONE_CURRENT_RESIDENCE,),
      request="AssignIndividualNumbers as the CS of 142115 for a current resident of 142140",
      asserts="FAILED_PRECONDITION ONE_CURRENT_RESIDENCE (no 個人番号 given)")
def one_residence(subject) -> str:
    """A 個人番号 goes only to a municipality that may register the person: no one current elsewhere."""
    home, other = _municipalities(subject)
    code = _current_resident(subject, _national_as(subject, f"cs-{home}"))
    another = _national_as(subject, f"cs-{other}")
    return refused(lambda: another.AssignIndividualNumbers(cs_pb2.ResidentCodes(resident_codes=[code]), timeout=10),
                   C.ONE_CURRENT_RESIDENCE, node=subject.node.name)


@case("national/個人番号/removed-stay-removed", roles=("national",), profiles=("rules",),
      rules=(C.REMOVED_STAY_REMOVED,),
      request="a person registered for the case (国外転入) and their 死亡 at the counter of 142140; once national "
              "holds the 死亡, AssignIndividualNumbers of them as the CS of 142115",
      asserts="FAILED_PRECONDITION REMOVED_STAY_REMOVED")
def removed_stay_removed(subject) -> str:
    """A person recorded as dead is registered nowhere again: national numbers them for no one."""
    home, other = _municipalities(subject)
    stub = kizon_pb2_grpc.KizonStub(subject.channel(subject.terminal(), subject.kizon()))
    today = office_today().isoformat()
    reply = stub.MoveIn(move_in_from_abroad(
        records_pb2.ResidentRecord(name_kanji="適合 死亡", name_kana="テキゴウ シボウ", birth_date="1990-04-01", sex="9"),
        records_pb2.Address(town_code=towns(home)[0].code, address_line="3番地"), today=today),
        metadata=subject.session(), timeout=30)
    code = reply.records[0].resident_code
    stub.Death(death(code, today=today), metadata=subject.session(), timeout=30)
    _reached(_national_as(subject, f"cs-{home}"), code, lambda info: info.change_reason == "死亡", "the 死亡")
    another = _national_as(subject, f"cs-{other}")
    return refused(lambda: another.AssignIndividualNumbers(cs_pb2.ResidentCodes(resident_codes=[code]), timeout=10),
                   C.REMOVED_STAY_REMOVED, node=subject.node.name)


@case("national/住民票コード/pool-own-municipality", roles=("national",), profiles=("rules", "security"),
      rules=(N.POOL_OWN_MUNICIPALITY,),
      request="IssueResidentCodePool as the CS of 142140 for 142115", asserts="PERMISSION_DENIED POOL_OWN_MUNICIPALITY")
def pool_own_municipality(subject) -> str:
    """A CS takes a pool of 住民票コード only for its own municipality."""
    home, other = _municipalities(subject)
    national = _national_as(subject, f"cs-{home}")
    return refused(lambda: national.IssueResidentCodePool(national_pb2.PoolRequest(municipality_code=other, count=1),
                                                          timeout=10), N.POOL_OWN_MUNICIPALITY, node=subject.node.name)


@case("national/住民票コード/pool-size", roles=("national",), profiles=("rules",), rules=(N.POOL_ISSUE_SIZE,),
      request=f"IssueResidentCodePool as the CS of 142140 of 0 codes; of {MAX_POOL + 1}",
      asserts="INVALID_ARGUMENT POOL_ISSUE_SIZE, both")
def pool_size(subject) -> str:
    """A pool request takes 1..MAX_POOL codes."""
    national = _national_as(subject, f"cs-{subject.home()}")
    return "; ".join(refused(lambda: national.IssueResidentCodePool(
        national_pb2.PoolRequest(municipality_code=subject.home(), count=count), timeout=30), N.POOL_ISSUE_SIZE,
        node=subject.node.name) for count in (0, MAX_POOL + 1))


@case("national/住民票コード/offer-size", roles=("national",), profiles=("rules",), rules=(N.CODE_OFFER_SIZE,),
      request="OfferResidentCodes (住民票コード変更請求) as the CS of 142140 of 0 candidates; of 11",
      asserts="INVALID_ARGUMENT CODE_OFFER_SIZE, both")
def offer_size(subject) -> str:
    """A 住民票コード変更請求 is offered 1..10 candidates."""
    national = _national_as(subject, f"cs-{subject.home()}")
    code = with_resident_code_check(f"9{uuid.uuid4().int % 10**9:09d}")
    return "; ".join(refused(lambda: national.OfferResidentCodes(
        cs_pb2.CodeOfferRequest(resident_code=code, count=count), timeout=10), N.CODE_OFFER_SIZE,
        node=subject.node.name) for count in (0, 11))


@case("national/検索/keys", roles=("national",), profiles=("rules", "security"),
      rules=(R.SEARCH_TWO_ITEMS, R.SEARCH_ADDRESS_KEY),
      request="SearchIdentity (全国検索) as the CS of 142140 by 氏名 alone; by 氏名 and 性別; by 氏名 and one "
              "character of 住所",
      asserts="INVALID_ARGUMENT SEARCH_TWO_ITEMS, twice; INVALID_ARGUMENT SEARCH_ADDRESS_KEY")
def national_search_keys(subject) -> str:
    """A 全国検索 names two items besides 性別, and a 住所 key names the prefecture and the municipality."""
    national = _national_as(subject, f"cs-{subject.home()}")

    def search(**keys):
        return lambda: national.SearchIdentity(identity_pb2.IdentitySearch(**keys), timeout=10)
    return "; ".join((
        refused(search(name_kana="テキゴウ シケン"), R.SEARCH_TWO_ITEMS, node=subject.node.name),
        refused(search(name_kana="テキゴウ シケン", sex="9"), R.SEARCH_TWO_ITEMS, node=subject.node.name),
        refused(search(name_kana="テキゴウ シケン", address="神"), R.SEARCH_ADDRESS_KEY, node=subject.node.name)))


@case("national/整合性確認/own-records", roles=("national",), profiles=("rules", "security"),
      rules=(C.CONSISTENCY_OWN_RECORDS,),
      request="IdentityDigests of 142115 as the CS of 142140; GetIdentities of people of 142140 as the CS of 142115",
      asserts="PERMISSION_DENIED CONSISTENCY_OWN_RECORDS; no record of 142140 given to 142115")
def national_own_records(subject) -> str:
    """A 整合性確認 compares only the caller's own records."""
    home, other = _municipalities(subject)
    return _own_records(subject, _national_as(subject, f"cs-{home}"), _national_as(subject, f"cs-{other}"), home, other)


@case("national/整合性確認/ranges", roles=("national",), profiles=("rules",), rules=(C.CONSISTENCY_RANGE,),
      request=RANGES_REQUEST, asserts=RANGES_ASSERT)
def national_ranges(subject) -> str:
    """The tree of ranges the 整合性確認 walks: well-formed ranges only, and each range what its records add up to."""
    return _ranges(subject, _national_as(subject, f"cs-{subject.home()}"))


# == every role: the audit of a refusal =========================================================================
@case("audit/refusal/recorded", roles=(EVERY_ROLE,), profiles=("security",), rules=(A.DEFAULT_DENY,),
      standard="DESIGN §3 (every call audited); PIA Ⅲ(2)7",
      request=f"Operations/GetStatus as the domain's monitor; {AUDITED} calls of a method the monitor is not "
              "granted; GetStatus again",
      asserts=f"each call PERMISSION_DENIED DEFAULT_DENY; the status's audit_entries up by at least {AUDITED}")
def refusal_audited(subject) -> str:
    """A refused call leaves an entry in the node's audit log, as an answered one does."""
    monitor, server = parse(monitor_uri(KIND_DOMAIN[subject.role])), parse(subject.node.identity)
    unary = [f"/{m.containing_service.full_name}/{m.name}" for m in methods_of(subject.role)
             if not m.client_streaming and not m.server_streaming]
    path = next((p for p in unary if policy_decision(server, monitor, p) == A.DEFAULT_DENY), None)
    if path is None:
        raise Skipped("the monitor is granted every unary method of this role: no refusal to audit")
    ops = ops_pb2_grpc.OperationsStub(subject.as_monitor())
    call = subject.as_monitor().unary_unary(path)
    before = answered(lambda: ops.GetStatus(ops_pb2.StatusRequest(), timeout=10)).audit_entries
    for _ in range(AUDITED):
        refused(lambda: call(b"", timeout=5), A.DEFAULT_DENY, node=subject.node.name)
    after = answered(lambda: ops.GetStatus(ops_pb2.StatusRequest(), timeout=10)).audit_entries
    if after - before < AUDITED:  # (the first GetStatus's own entry is among them, where the node audits reads)
        raise Failed(f"audit_entries {before} + at least {AUDITED}",
                     f"{after} (+{after - before}) after {AUDITED} calls refused PERMISSION_DENIED DEFAULT_DENY")
    return f"{AUDITED} × {path.rsplit('/', 1)[1]} PERMISSION_DENIED DEFAULT_DENY; audit_entries {before} → {after}"

