"""The cases of the 市町村CS: 本人確認情報検索 (PIA Ⅲ(2)2) as a terminal sees it, and the updates of the 本人確認情報
from 既存住基 (PIA Ⅲ(2)5) as kizon sends them; a refused update leaves the CS's 本人確認情報 as it was."""
from __future__ import annotations

import uuid

from nodes.clock import office_today
from nodes.numbers import with_individual_number_check, with_resident_code_check
from nodes.reasons import common as C, cs as R
from protos import common_pb2, cs_pb2_grpc, identity_pb2, records_pb2
from testbed.conform.case import answered, case, outcome, refused, same


def _search(subject):
    """The subject's 本人確認情報検索 as the municipality's first terminal reaches it (the search process, if any)."""
    ch = subject.channel(subject.terminal(), subject.node.search_end() or subject.node)
    stub = cs_pb2_grpc.CommunicationServerStub(ch)
    return lambda query: stub.SearchIdentity(query, metadata=subject.session(), timeout=10)


def _as_kizon(subject):
    """The subject as its municipality's 既存住基 calls it."""
    return cs_pb2_grpc.CommunicationServerStub(subject.as_node(f"kizon-{subject.municipality}"))


def _held(subject, cs) -> records_pb2.IdentityInfo:
    """The run's person as the CS holds them."""
    return cs.GetIdentity(common_pb2.ResidentKey(resident_code=subject.person().resident_code), timeout=10)


def _restated(info: records_pb2.IdentityInfo, reason: str = "職権修正", **items) -> records_pb2.IdentityInfo:
    """The 本人確認情報 as kizon would send a change of it, with items stated otherwise."""
    changed = records_pb2.IdentityInfo()
    changed.CopyFrom(info)
    for name, value in items.items():
        setattr(changed, name, value)
    changed.change_reason, changed.change_date = reason, office_today().isoformat()
    changed.request_control_number = uuid.uuid4().hex
    return changed


def _refused_update(subject, rule, municipality: str | None = None, reason: str = "職権修正", **items) -> str:
    """Send the run's person restated so, assert the refusal under rule, and that the CS holds them as before."""
    cs = _as_kizon(subject)
    before = _held(subject, cs)
    code = municipality or subject.municipality
    batch = identity_pb2.IdentityUpdateBatch(municipality_code=code, updates=[identity_pb2.IdentityUpdate(
        municipality_code=code, info=_restated(before, reason, **items))])
    observed = refused(lambda: cs.SubmitIdentityUpdates(batch, timeout=10), rule, node=subject.node.name)
    same(before, _held(subject, cs), "the 本人確認情報 afterwards")
    return observed


# -- 本人確認情報検索 ---------------------------------------------------------------------------------------------
@case("cs/検索/two-items", roles=("cs",), profiles=("rules", "security"), rules=(R.SEARCH_TWO_ITEMS,),
      request="SearchIdentity by 氏名 alone; by 氏名 and 性別", asserts="INVALID_ARGUMENT SEARCH_TWO_ITEMS, both")
def two_items(subject) -> str:
    """A 4情報 search names two items besides 性別."""
    search = _search(subject)
    seen = [refused(lambda: search(identity_pb2.IdentitySearch(name_kana="テキゴウ シケン")), R.SEARCH_TWO_ITEMS)]
    seen.append(refused(lambda: search(identity_pb2.IdentitySearch(name_kana="テキゴウ シケン", sex="9")),
                        R.SEARCH_TWO_ITEMS))
    return "; ".join(seen)


@case("cs/検索/address-key", roles=("cs",), profiles=("rules",), rules=(R.SEARCH_ADDRESS_KEY,),
      request="SearchIdentity by 氏名 and one character of 住所", asserts="INVALID_ARGUMENT SEARCH_ADDRESS_KEY")
def address_key(subject) -> str:
    """A 住所 key names at least the prefecture and the municipality."""
    search = _search(subject)
    return refused(lambda: search(identity_pb2.IdentitySearch(name_kana="テキゴウ シケン", address="神")),
                   R.SEARCH_ADDRESS_KEY)


@case("cs/検索/by-code", roles=("cs",), profiles=("rules",), standard="PIA Ⅲ(2)2 (本人確認情報検索)",
      request="SearchIdentity by the 住民票コード of a person registered for the run",
      asserts="exactly that person, with the 氏名 kizon registered")
def by_code(subject) -> str:
    """A search by 住民票コード finds the person."""
    person = subject.person()
    found = answered(lambda: _search(subject)(identity_pb2.IdentitySearch(resident_code=person.resident_code)))
    names = [(m.resident_code, m.name_kanji) for m in found.matches]
    same([(person.resident_code, person.name_kanji)], names, "the matches")
    return f"1 match: {person.resident_code} {person.name_kanji}"


# -- the updates from kizon ---------------------------------------------------------------------------------------
@case("cs/更新/own-municipality", roles=("cs",), profiles=("rules",), rules=(R.CS_MUNICIPALITY,),
      request="SubmitIdentityUpdates as kizon, the batch and its record of another municipality (131016)",
      asserts="INVALID_ARGUMENT CS_MUNICIPALITY; the 本人確認情報 unchanged")
def own_municipality(subject) -> str:
    """A CS takes updates of its own municipality only."""
    return _refused_update(subject, R.CS_MUNICIPALITY, municipality="131016", municipality_code="131016")


@case("cs/更新/gaiji-items", roles=("cs",), profiles=("rules",), rules=(C.GAIJI_ITEMS,),
      request="SubmitIdentityUpdates as kizon: a 職権修正 stating one 外字 more in the name than it holds",
      asserts="INVALID_ARGUMENT GAIJI_ITEMS; the 本人確認情報 unchanged")
def gaiji_items(subject) -> str:
    """外字数 and 外字フラグ are what the items hold."""
    cs = _as_kizon(subject)
    held = _held(subject, cs)
    return _refused_update(subject, C.GAIJI_ITEMS, name_gaiji_count=held.name_gaiji_count + 1)


@case("cs/更新/move-within-address-only", roles=("cs",), profiles=("rules",), rules=(R.MOVE_WITHIN_ADDRESS_ONLY,),
      request="SubmitIdentityUpdates as kizon: a 転居 that changes the 氏名",
      asserts="FAILED_PRECONDITION MOVE_WITHIN_ADDRESS_ONLY; the 本人確認情報 unchanged")
def move_within_address_only(subject) -> str:
    """A 転居 changes only the address."""
    return _refused_update(subject, R.MOVE_WITHIN_ADDRESS_ONLY, reason="転居", name_kanji="適合 別名")


@case("cs/更新/already-resident", roles=("cs",), profiles=("rules",), rules=(R.ALREADY_CURRENT_RESIDENT,),
      request="SubmitIdentityUpdates as kizon: a 出生 stating the 住民票コード of a current resident",
      asserts="FAILED_PRECONDITION ALREADY_CURRENT_RESIDENT; the 本人確認情報 unchanged")
def already_resident(subject) -> str:
    """A 出生, 転入 or 国外転入 is of someone not already a current resident here."""
    return _refused_update(subject, R.ALREADY_CURRENT_RESIDENT, reason="出生")


@case("cs/更新/number-by-national", roles=("cs",), profiles=("rules", "security"),
      rules=(C.INDIVIDUAL_NUMBER_BY_NATIONAL,),
      request="SubmitIdentityUpdates as kizon: a 出生 with a 住民票コード and a 個人番号 of kizon's own making "
              "(well-formed, never issued)",
      asserts="INVALID_ARGUMENT INDIVIDUAL_NUMBER_BY_NATIONAL; nothing recorded of the invented person")
def number_by_national(subject) -> str:
    """National alone issues 個人番号: a new person's number is the one national holds for the 住民票コード."""
    cs = _as_kizon(subject)
    invented = with_resident_code_check(f"9{uuid.uuid4().int % 10**9:09d}")
    number = with_individual_number_check(f"9{uuid.uuid4().int % 10**10:010d}")
    info = _restated(_held(subject, cs), "出生", resident_code=invented, individual_number=number)
    batch = identity_pb2.IdentityUpdateBatch(municipality_code=subject.municipality, updates=[
        identity_pb2.IdentityUpdate(municipality_code=subject.municipality, info=info)])
    observed = refused(lambda: cs.SubmitIdentityUpdates(batch, timeout=10), C.INDIVIDUAL_NUMBER_BY_NATIONAL,
                       node=subject.node.name)
    code, _, _, _ = outcome(lambda: cs.GetIdentity(common_pb2.ResidentKey(resident_code=invented), timeout=10))
    same("NOT_FOUND", code.name, f"the CS's answer for {invented} afterwards")
    return observed
