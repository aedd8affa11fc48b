"""庁内連携 (seed system 7, 庁内連携システム): the office systems of a municipality read the 宛名 of a person from the
団体内統合宛名システム, each for its own 事務.

The seed (PIA, shared/seeds/000_c04c89fe7c88fa9f.txt l.1917–1918, again at l.4430–4438): 「選挙システムや戸籍システムなど、
番号法第９条第１項別表に記載されない事務については、個人番号を用いた連携を行えないよう、仕組みとして担保する」; and the 移転
within the office is 「番号法第９条第１項別表に定める事務において、宛名情報として使用するため」 (l.921, l.955, l.1023–1025).

The 事務 is read from the caller's certificate, never from the request: an office system cannot claim another's. The
policy (nodes/policy.py) already lets only 税務 and 選挙 of the same municipality in; this module keeps the 個人番号 rule
again on its own, so that a policy widened by mistake still never hands the number to a 事務 outside the 別表.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from nodes import audit, rules
from nodes.guard import current_call
from nodes.reasons import common as C, office as O
from protos import atena_pb2, atena_pb2_grpc, records_pb2

KEYS = ("unified_atena_number", "atena_number", "individual_number")  # the fields of OfficeQuery that name a person
NUMBER_15 = re.compile(r"[0-9]{15}")  # 団体内統合宛名番号 and 宛名番号: both drawn as 15-digit counters


@dataclass(frozen=True)
class OfficeJimu:
    """The 事務 an office system does with the register, and whether 番号法第9条第1項 別表 lists it."""

    system: str  # the caller's identity kind (certs/identity.py OFFICE_SYSTEMS)
    name: str  # the 事務
    in_table: bool  # 番号法第9条第1項 別表: the 個人番号 may be used (received, and looked up by)
    ground: str  # the law the 事務 is done under


JIMU: dict[str, OfficeJimu] = {j.system: j for j in (
    OfficeJimu("tax", "地方税の賦課徴収", True, "地方税法; 番号法第9条第1項 別表"),
    OfficeJimu("election", "選挙人名簿の調製", False, "公職選挙法第19条 (not in 番号法 別表)"),
    OfficeJimu("jury", "裁判員候補者名簿の調製", False, "裁判員法 (not in 番号法 別表)"),
)}


def jimu_of(kind: str) -> OfficeJimu:
    """The 事務 of an office system, by its identity kind; refused for a caller that is not one of the table."""
    jimu = JIMU.get(kind)
    if jimu is None:
        raise O.OFFICE_SYSTEM_UNKNOWN(f"庁内連携 rule: a {kind} is not an office system of the 事務 table "
                                      f"({', '.join(sorted(JIMU))})")
    return jimu


def the_one_key(query: atena_pb2.OfficeQuery) -> tuple[str, str]:
    """(field, value) of the one key a query names the person by."""
    given = [name for name in KEYS if getattr(query, name)]
    if len(given) != 1:
        raise O.OFFICE_QUERY_ONE_KEY(f"庁内連携 rule: give exactly one of {', '.join(KEYS)} "
                                     f"({len(given)} given{': ' + ', '.join(given) if given else ''})")
    return given[0], getattr(query, given[0])


def require_key_format(field: str, value: str) -> None:
    """A key of a query in its format: a 個人番号 with its check digit, the other keys 15 digits."""
    if field == "individual_number":
        rules.require_individual_number(value)
    elif not NUMBER_15.fullmatch(value):
        raise O.OFFICE_KEY_FORMAT(f"庁内連携 rule: {field} {value[:20]!r} is not 15 digits")


class OfficeLink(atena_pb2_grpc.OfficeLinkServicer):
    """The OfficeLink service of the 宛名 system: a person's 宛名 for an office system, by its 事務."""

    def __init__(self, runtime):
        self.rt = runtime

    async def LookupResident(self, request, context):
        """庁内連携: the 宛名 of one person; the 個人番号 only for a 別表 事務, never the 符号 nor the 本籍."""
        jimu = jimu_of(current_call().peer.identity.kind)
        field, value = the_one_key(request)
        by_number = field == "individual_number"
        # The 個人番号 itself is never written to the audit log: the entry says that a lookup by it was made.
        audit.set_subject("個人番号" if by_number else value)
        if by_number and not jimu.in_table:
            # Refused before the number is even checked or the store read: a 事務 outside the 別表 learns nothing.
            raise O.OFFICE_NUMBER_NOT_IN_TABLE(f"番号法第9条第1項 別表 rule: {jimu.name} ({jimu.system}) is not a 事務 "
                                               "of the 別表 and may not look a person up by the 個人番号")
        require_key_format(field, value)
        # field is one of KEYS (a column name, never the caller's text)
        row = self.rt.store.one(f"SELECT unified_atena_number, individual_number, record FROM entries WHERE {field}=?",
                                (value,))
        if row is None:
            raise C.RECORD_NOT_FOUND(f"庁内連携 rule: no person of {self.rt.node.municipality} has that {field}")
        unified, number, blob = row
        record = records_pb2.ResidentRecord.FromString(blob)
        audit.set_subject(f"{record.resident_code} (団体内統合宛名番号 {unified}, {jimu.name})")
        return answer(record, unified, number or "", jimu)


def answer(record: records_pb2.ResidentRecord, unified: str, number: str, jimu: OfficeJimu) -> atena_pb2.OfficeRecord:
    """The OfficeRecord of a person for a 事務: the 宛名 items, the 個人番号 for a 別表 事務 alone."""
    return atena_pb2.OfficeRecord(
        unified_atena_number=unified, atena_number=record.atena_number, name_kanji=record.name_kanji,
        name_kana=record.name_kana, birth_date=record.birth_date, sex=record.sex, address=record.address,
        household_number=record.household_number, relationship=record.relationship, elector=record.elector,
        current=record.status == records_pb2.ResidentRecord.STATUS_CURRENT,
        individual_number=number if jimu.in_table else "", jimu=jimu.name)
