"""Conversions between the record messages: what of a 住民票 becomes 本人確認情報 or 送付先情報."""
from __future__ import annotations

import hashlib
from functools import lru_cache

from nodes import characters
from protos import records_pb2


@lru_cache(maxsize=None)
def common_fields(source_class, target_class) -> tuple[str, ...]:
    """Names of the fields two messages share under the same name and type."""
    fields = source_class.DESCRIPTOR.fields_by_name
    return tuple(f.name for f in target_class.DESCRIPTOR.fields
                 if f.name in fields and fields[f.name].type == f.type and fields[f.name].is_repeated == f.is_repeated)


def copy_common(source, target_class):
    """A target_class message holding every field that source has under the same name and type."""
    target = target_class()
    for name in common_fields(type(source), target_class):
        value = getattr(source, name)
        if value:
            setattr(target, name, value)
    return target


def identity_info(record: records_pb2.ResidentRecord, *, operator: str = "", terminal: str = "") -> records_pb2.IdentityInfo:
    """本人確認情報 of a 住民票 (PIA 別添1 (2)), its 外字 items computed; the CS numbers it later."""
    info = copy_common(record, records_pb2.IdentityInfo)
    info.operator_id = operator
    info.terminal_id = terminal
    info.name_kana_seion = characters.kana_seion(record.name_kana)
    fill_identity_characters(info)
    return info


# The text items of 本人確認情報 and the 外字数 item each has (PIA 別添1 (2) items 2/3, 11/12, 18/19, 37/38).
IDENTITY_GAIJI = (("name_kanji", "name_gaiji_count"), ("address", "address_gaiji_count"),
                  ("previous_address", "previous_address_gaiji_count"),
                  ("former_surname_kanji", "former_surname_gaiji_count"))


def fill_identity_characters(info: records_pb2.IdentityInfo) -> None:
    """The 外字数 of each text item of 本人確認情報 and its 外字フラグ, by their definition (nodes/characters.py)."""
    flag = False
    for text, count in IDENTITY_GAIJI:
        n = characters.gaiji_count(getattr(info, text))
        setattr(info, count, n)
        flag = flag or n > 0
    info.gaiji_flag = flag


def identity_character_errors(info: records_pb2.IdentityInfo) -> list[str]:
    """The 外字 items of 本人確認情報 that differ from their definition (empty when they all agree)."""
    wrong = []
    flag = False
    for text, count in IDENTITY_GAIJI:
        n = characters.gaiji_count(getattr(info, text))
        flag = flag or n > 0
        if getattr(info, count) != n:
            wrong.append(f"{count} {getattr(info, count)} (its {text} holds {n})")
    if info.gaiji_flag != flag:
        wrong.append(f"gaiji_flag {info.gaiji_flag} (the items hold {'some' if flag else 'no'} 外字)")
    return wrong


PRINT_CATEGORY = "1"  # 印刷区分 (the testbed's code): 1 個人番号通知書 with the 交付申請書


def delivery_info(record: records_pb2.ResidentRecord, office=None, *, operator: str = "", terminal: str = "",
                  processing_date: str = "", control_number: str = "") -> records_pb2.DeliveryInfo:
    """送付先情報 of a newly numbered resident (PIA 別添1 (3), all 67 items): addressed to the resident's home, with
    the office (nodes/offices.Office) that hands the card over, the 外字 items and the 代替文字 for a receiver that
    shows only JIS X 0213."""
    info = copy_common(record, records_pb2.DeliveryInfo)
    info.delivery_control_number = control_number
    info.delivery_postal_code = record.postal_code
    info.delivery_address_kanji = record.address
    info.delivery_name_kanji = record.name_kanji
    if office is not None:
        info.municipality_name = office.name
        info.municipality_postal_code = office.postal_code
        info.municipality_address = office.address
        info.municipality_phone = office.phone
        info.issuing_place_name = office.issuing_place
        info.issuing_place_postal_code = office.postal_code
        info.issuing_place_address = office.address
        info.issuing_place_phone = office.phone
        info.card_delivery_place_name = office.card_delivery_place
        info.card_delivery_place_postal_code = office.postal_code
        info.card_delivery_place_address = office.address
        info.card_delivery_place_phone = office.phone
    info.target_person_count = 1
    info.processing_date = processing_date
    info.operator_id, info.terminal_id = operator, terminal
    info.print_category = PRINT_CATEGORY
    fill_delivery_characters(info)
    return info


# The text items of 送付先情報 with their 項目長 and 外字数 items ("" where the item list has none).
DELIVERY_TEXTS = (
    ("delivery_address_kanji", "delivery_address_kanji_length", "delivery_address_kanji_gaiji_count"),
    ("delivery_name_kanji", "delivery_name_kanji_length", "delivery_name_kanji_gaiji_count"),
    ("municipality_name", "municipality_name_length", ""),
    ("municipality_address", "municipality_address_length", "municipality_address_gaiji_count"),
    ("issuing_place_name", "issuing_place_name_length", "issuing_place_name_gaiji_count"),
    ("issuing_place_address", "issuing_place_address_length", "issuing_place_address_gaiji_count"),
    ("card_delivery_place_name", "card_delivery_place_name_length", "card_delivery_place_name_gaiji_count"),
    ("card_delivery_place_address", "card_delivery_place_address_length", "card_delivery_place_address_gaiji_count"),
    ("name_kanji", "name_kanji_length", "name_kanji_gaiji_count"),
    ("name_kana", "name_kana_length", ""),
    ("address", "address_length", "address_gaiji_count"),
    ("former_surname_kanji", "", "former_surname_gaiji_count"),
)


def fill_delivery_characters(info: records_pb2.DeliveryInfo) -> None:
    """The 項目長 (in characters as the register counts them) and 外字数 of each text item of 送付先情報, its 外字フラグ
    and 外字パターン, and the 代替文字 of 氏名 and 住所 with their positions and the 代替文字変換結果."""
    flag = False
    for text, length, count in DELIVERY_TEXTS:
        value = getattr(info, text)
        if length:
            setattr(info, length, len(characters.characters(value)))
        if count:
            n = characters.gaiji_count(value)
            setattr(info, count, n)
            flag = flag or n > 0
    info.gaiji_flag = flag
    info.gaiji_pattern = characters.pattern(info.name_kanji, info.address)
    name, address = characters.substitute(info.name_kanji), characters.substitute(info.address)
    results = {name.result, address.result}
    info.substitute_conversion_result = "2" if "2" in results else ("1" if "1" in results else "0")
    for sub, text, length, positions in ((name, "substitute_name", "substitute_name_length", "substitute_name_positions"),
                                         (address, "substitute_address", "substitute_address_length",
                                          "substitute_address_positions")):
        # (the 代替文字 form only where it differs: otherwise the original is what every receiver shows)
        setattr(info, text, sub.text if sub.positions else "")
        setattr(info, length, len(characters.characters(sub.text)) if sub.positions else 0)
        setattr(info, positions, sub.positions_text)


# The 本人確認情報 items that kizon's 住民票 and the CS's file must agree on (整合性確認 kizon ↔ CS): the
# person, not the trail of the last change (a 転出確定 or a card step changes kizon alone).
REGISTER_ITEMS = ("resident_code", "individual_number", "name_kanji", "name_kana", "birth_date", "sex",
                  "municipality_code", "postal_code", "address", "resident_since", "address_since",
                  "previous_municipality_code", "previous_address", "former_surname_kanji", "former_surname_kana",
                  "record_status_flag")


def register_digest(source) -> bytes:
    """SHA-1 of the REGISTER_ITEMS of a 住民票 (ResidentRecord) or of 本人確認情報 (IdentityInfo), computed
    from the items themselves; the two agree when the person's items do."""
    if isinstance(source, records_pb2.ResidentRecord):
        flag = 1 if source.status == records_pb2.ResidentRecord.STATUS_REMOVED else 0
    else:
        flag = source.record_status_flag
    # The items one by one rather than by name in a loop: the 整合性確認 computes this for every person,
    # and attribute access written out costs about 60% of a loop by name (REGISTER_ITEMS, in this order: checked by a test).
    s = source
    return hashlib.sha1("\x1f".join((
        s.resident_code, s.individual_number, s.name_kanji, s.name_kana, s.birth_date, s.sex, s.municipality_code,
        s.postal_code, s.address, s.resident_since, s.address_since, s.previous_municipality_code, s.previous_address,
        s.former_surname_kanji, s.former_surname_kana, str(flag))).encode()).digest()


def register_differences(record: records_pb2.ResidentRecord, info: records_pb2.IdentityInfo) -> list[str]:
    """Names of the REGISTER_ITEMS in which a 住民票 and its 本人確認情報 differ."""
    flag = 1 if record.status == records_pb2.ResidentRecord.STATUS_REMOVED else 0
    return [name for name in REGISTER_ITEMS
            if (flag if name == "record_status_flag" else getattr(record, name)) != getattr(info, name)]


def delivery_character_errors(info: records_pb2.DeliveryInfo) -> list[str]:
    """The 項目長, 外字 and 代替文字 items of a 送付先情報 that differ from what its texts give (empty when all agree)."""
    derived = records_pb2.DeliveryInfo()
    derived.CopyFrom(info)
    fill_delivery_characters(derived)
    if derived == info:
        return []
    return [f"{f.name} {getattr(info, f.name)!r} (its texts give {getattr(derived, f.name)!r})"
            for f in info.DESCRIPTOR.fields if getattr(info, f.name) != getattr(derived, f.name)]
