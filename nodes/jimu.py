"""事務 of the 主務省令第2条の表 (番号法第19条第8号): for which 事務 the 市町村長 provides 住民票関係情報 through the
情報提供ネットワークシステム, and which items of the 副本 each may receive.

The seed (PIA, shared/seeds/000_c04c89fe7c88fa9f.txt lines 459–467) gives the legal ground: the 項 of the 主務省令第2条の表
whose 第三欄 (情報提供者) is 「市町村長」 and whose 第四欄 (利用特定個人情報) includes 「住民票関係情報」, and lists their
numbers (SEED_KOU). The published table has some 170 項; TABLE is a sample of ten of the seed's 項. The 項 numbers are
the seed's; which 情報照会者 and 事務 each number stands for, and the items each is given, are the testbed's reading
(each entry's `source` says so), not a copy of the published text. See docs/jimu.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from protos import records_pb2

CODE_PREFIX = "19-8-2-"  # 番号法第19条第8号, 主務省令第2条の表, then the 項 number
# The 項 the seed lists (PIA l.461–467): 第三欄 市町村長, 第四欄 住民票関係情報.
SEED_KOU = frozenset({1, 2, 3, 5, 7, 11, 13, 15, 20, 28, 37, 39, 48, 53, 57, 58, 59, 63, 65, 66, 69, 73, 75, 76, 81,
                      83, 84, 86, 87, 91, 92, 96, 106, 108, 110, 112, 115, 118, 124, 129, 130, 132, 136, 137, 138, 141,
                      142, 144, 149, 150, 151, 152, 155, 156, 158, 160, 163, 164, 165, 166})
# 住民票関係情報: the items of the 住民票 (住基法第7条) the 副本 holds. Never the 個人番号 (符号 only between
# institutions, PIA 中間サーバ ※１), never the 住民票コード (an institution identifies people by 符号 only), never
# the municipality's own keys and bookkeeping (宛名番号, 履歴, 依頼管理番号, 操作者, 届出人), and not 本籍/筆頭者
# (戸籍関係情報, not asked for by any 事務 of the sample).
PROVIDABLE = frozenset({
    "household_number", "resident_type",
    "name_kanji", "name_kana", "name_romaji", "former_surname_kanji", "former_surname_kana", "alias_kanji", "alias_kana",
    "birth_date", "sex", "relationship", "householder_name",
    "town_code", "address_line", "katagaki", "postal_code", "address",
    "article_30_45_category", "residence_status", "nationality", "residence_period_expiry_date",
    "resident_since", "address_since", "change_reason", "change_date", "notification_date",
    "previous_municipality_code", "previous_address", "move_out_destination_planned", "move_out_destination_confirmed",
    "planned_move_out_date", "removal_reason", "removal_date",
    "elector", "national_health_insurance", "late_stage_elderly", "long_term_care", "national_pension", "child_allowance",
})

# Item groups the entries share (field names of records.proto ResidentRecord).
NAME = ("name_kanji", "name_kana", "former_surname_kanji", "alias_kanji")
PERSON = (*NAME, "birth_date", "sex")
ADDRESS = ("postal_code", "address")
HOUSEHOLD = ("household_number", "relationship", "householder_name")
MOVES = ("resident_since", "address_since", "change_reason", "change_date", "previous_municipality_code",
         "previous_address")
REMOVAL = ("removal_reason", "removal_date")
READING = "項 number from the seed's list (PIA l.461–467); 情報照会者, 事務 and items: the testbed's reading"


@dataclass(frozen=True)
class Jimu:
    """One 項 of the 主務省令第2条の表: who asks (情報照会者), for which 事務, and the items it may receive."""

    code: str  # "19-8-2-<項>": the stable key a 情報照会 names
    kou: int  # 項 number in the 主務省令第2条の表
    requester: str  # 第一欄 情報照会者
    name: str  # 第二欄 事務
    items: tuple[str, ...]  # items of the 副本 (ResidentRecord field names) provided for the 事務
    source: str  # where the entry comes from
    why: str  # why these items


def _entry(kou: int, requester: str, name: str, items: tuple[str, ...], why: str) -> Jimu:
    return Jimu(f"{CODE_PREFIX}{kou}", kou, requester, name, items, READING, why)


_ENTRIES = (
    _entry(1, "全国健康保険協会", "健康保険法による保険給付の支給に関する事務", (*PERSON, *ADDRESS, *HOUSEHOLD),
           "被扶養者の認定: 同一世帯の要件は世帯と続柄で確かめる"),
    _entry(2, "健康保険組合", "健康保険法による保険給付の支給に関する事務", (*PERSON, *ADDRESS, *HOUSEHOLD),
           "被扶養者の認定 (as 項1, for a 組合管掌健康保険)"),
    _entry(28, "都道府県知事", "生活保護法による保護の決定及び実施に関する事務",
           (*PERSON, *ADDRESS, *HOUSEHOLD, "resident_since", "change_reason", "change_date", "previous_address"),
           "保護は世帯単位: 世帯の構成と、居住地を定めた異動"),
    _entry(37, "日本年金機構", "厚生年金保険法による保険給付の支給に関する事務",
           (*PERSON, *ADDRESS, "address_since", "change_reason", "change_date", *REMOVAL),
           "受給権者の住所と生存 (消除 = 死亡の届出), 年齢要件の生年月日"),
    _entry(53, "日本年金機構", "国民年金法による年金である給付の支給に関する事務",
           (*PERSON, *ADDRESS, *HOUSEHOLD, *MOVES, *REMOVAL),
           "住所, 生年月日, 異動の日 (被保険者期間), 遺族基礎年金の生計同一には世帯と続柄"),
    _entry(63, "都道府県知事", "児童扶養手当法による児童扶養手当の支給に関する事務",
           (*PERSON, *ADDRESS, *HOUSEHOLD, "change_reason", "change_date"),
           "児童と養育者の世帯と続柄, 転入転出で変わる支給"),
    _entry(81, "市町村長", "児童手当法による児童手当の支給に関する事務",
           (*PERSON, *ADDRESS, *HOUSEHOLD, "change_reason", "change_date"),
           "受給者と別居の児童 (他市町村に住む子): 児童の世帯, 続柄, 生年月日"),
    _entry(96, "後期高齢者医療広域連合", "高齢者の医療の確保に関する法律による後期高齢者医療給付の支給に関する事務",
           (*PERSON, *ADDRESS, *HOUSEHOLD, *MOVES, "late_stage_elderly"),
           "75歳の資格取得 (生年月日), 住所地特例 (前住所), 保険料軽減の世帯"),
    _entry(124, "市町村長", "介護保険法による保険給付の支給に関する事務",
           (*PERSON, *ADDRESS, *MOVES, "long_term_care"),
           "住所地特例: 転入前の市町村と異動の日"),
    _entry(141, "独立行政法人日本学生支援機構", "独立行政法人日本学生支援機構法による学資の貸与及び支給に関する事務",
           (*NAME, "birth_date", *ADDRESS, *HOUSEHOLD),
           "生計維持者: 学生と同じ世帯の者と続柄"),
)


@cache
def table() -> dict[str, Jimu]:
    """The 事務 the 中間サーバ provides for, by code; ValueError if an entry breaks the table's own rules."""
    fields = set(records_pb2.ResidentRecord.DESCRIPTOR.fields_by_name)
    found: dict[str, Jimu] = {}
    for jimu in _ENTRIES:
        if jimu.kou not in SEED_KOU:
            raise ValueError(f"事務 {jimu.code}: 項 {jimu.kou} is not one the seed lists")
        if jimu.code in found:
            raise ValueError(f"事務 {jimu.code} is declared twice")
        bad = [i for i in jimu.items if i not in fields or i not in PROVIDABLE]
        if bad or len(set(jimu.items)) != len(jimu.items) or not jimu.items:
            raise ValueError(f"事務 {jimu.code}: items {bad or jimu.items} are not distinct 住民票関係情報 items")
        found[jimu.code] = jimu
    return found


def projection(record: records_pb2.ResidentRecord, jimu: Jimu) -> records_pb2.ResidentRecord:
    """A new record holding only the 事務's items of the 副本, everything else left unset."""
    provided = records_pb2.ResidentRecord()
    for item in jimu.items:
        setattr(provided, item, getattr(record, item))  # items are scalars (PROVIDABLE holds no message field)
    return provided
