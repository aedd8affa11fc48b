"""Conversions between the record messages: what of a 住民票 becomes 本人確認情報 or 送付先情報."""
from __future__ import annotations

import hashlib
from functools import lru_cache

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
    """本人確認情報 of a 住民票 (PIA 別添1 (2)); the CS numbers it later."""
    info = copy_common(record, records_pb2.IdentityInfo)
    info.operator_id = operator
    info.terminal_id = terminal
    return info


def delivery_info(record: records_pb2.ResidentRecord) -> records_pb2.DeliveryInfo:
    """送付先情報 of a newly numbered resident (PIA 別添1 (3)), addressed to the resident's home."""
    info = copy_common(record, records_pb2.DeliveryInfo)
    info.delivery_postal_code = record.postal_code
    info.delivery_address_kanji = record.address
    info.delivery_address_kanji_length = len(record.address)
    info.delivery_name_kanji = record.name_kanji
    info.delivery_name_kanji_length = len(record.name_kanji)
    return info


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
