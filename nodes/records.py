"""Conversions between the record messages: what of a 住民票 becomes 本人確認情報 or 送付先情報."""
from __future__ import annotations

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
