"""Only the 告示's items travel (PIA 2306–2312, 2639–2646): a request carrying a field its message does not define is
refused at every hop, whoever sends it, and nothing of it is stored or passed on. Each door is tried as the caller
that really uses it (kizon → CS, CS → prefecture → national, CS → card, atena → 中間サーバ, a terminal → kizon), with the
extra field at the top, deep inside a nested item, and as a field number the next version of the message might use.
"""
from __future__ import annotations

import grpc
import pytest
from google.protobuf.internal import encoder
from helpers import TODAY, address, person, refused

from nodes.reasons import access as A
from protos import common_pb2, identity_pb2, kizon_pb2, records_pb2
from testbed import requests
from testbed.client import channel, node_cert, terminal_cert

MUNI = "142140"
MARK = "未定義項目の値-unknown-field-marker"


def unknown(number: int, text: str = MARK) -> bytes:
    """A length-delimited field numbered as no message of the testbed numbers it, holding text."""
    data = text.encode()
    return encoder._VarintBytes((number << 3) | 2) + encoder._VarintBytes(len(data)) + data


def raw_call(ch, method: str, body: bytes, metadata=()):
    """Send bytes as they are (what a hostile or newer sender puts on the wire) and return the reply's bytes."""
    return ch.unary_unary(method)(body, metadata=metadata, timeout=15)


def update_batch(municipality: str, code: str, extra_in_info: bytes = b"", extra_top: bytes = b"") -> bytes:
    """An IdentityUpdateBatch of one update, with unknown bytes inside its 本人確認情報 and/or at its top."""
    info = records_pb2.IdentityInfo(municipality_code=municipality, resident_code=code, name_kanji="試験 太郎")
    update = identity_pb2.IdentityUpdate(municipality_code=municipality)
    update.info.MergeFromString(info.SerializeToString() + extra_in_info)
    batch = identity_pb2.IdentityUpdateBatch(municipality_code=municipality)
    batch.updates.add().CopyFrom(update)
    return batch.SerializeToString() + extra_top


@pytest.mark.parametrize("where", ["top", "nested"])
@pytest.mark.parametrize("door, caller, method", [
    ("cs", f"kizon-{MUNI}", "/testbed.v1.CommunicationServer/SubmitIdentityUpdates"),
    ("prefecture", f"cs-{MUNI}", "/testbed.v1.PrefectureServer/ApplyIdentityUpdates"),
    ("national", "prefecture-140007", "/testbed.v1.NationalServer/ApplyIdentityUpdates"),
])
def test_an_update_with_a_field_outside_the_items_is_refused_at_each_hop(network, door, caller, method, where):
    """The update path: refused before anything is applied, under the rule, at the CS, the prefecture and national."""
    node = network.topology.find(door, MUNI) if door == "cs" else network.topology.find(door)
    extra = unknown(901)
    body = update_batch(MUNI, "24727059608", extra_in_info=extra if where == "nested" else b"",
                        extra_top=extra if where == "top" else b"")
    with channel(node, node_cert(network.pki, caller)) as ch, \
            refused(grpc.StatusCode.INVALID_ARGUMENT, "#901", reason=A.MESSAGE_UNKNOWN_FIELD.reason):
        raw_call(ch, method, body)


def test_the_card_system_refuses_a_delivery_info_with_an_extra_item(network):
    """送付先情報 from the CS: an item outside the 67 of 別添1 (3) is refused, the rest is not stored either."""
    info = records_pb2.DeliveryInfo(resident_code="24727059608", individual_number="123456789018",
                                    municipality_code=MUNI)
    body = encoder._VarintBytes((1 << 3) | 2)
    item = info.SerializeToString() + unknown(777)
    body += encoder._VarintBytes(len(item)) + item
    with channel(network.topology.find("card"), node_cert(network.pki, f"cs-{MUNI}")) as ch:
        with refused(grpc.StatusCode.INVALID_ARGUMENT, "items.#777", reason=A.MESSAGE_UNKNOWN_FIELD.reason):
            raw_call(ch, "/testbed.v1.CardManagement/SubmitDeliveryInfos", body)
        with refused(grpc.StatusCode.NOT_FOUND):
            raw_call(ch, "/testbed.v1.CardManagement/GetDeliveryInfo",
                     common_pb2.ResidentKey(resident_code="24727059608").SerializeToString())


def test_a_terminal_request_with_an_extra_item_is_refused_and_nothing_is_registered(network, clerk):
    """At the counter: a 国外転入 whose person carries an extra field is refused; the same request without it goes
    through, and what is stored has no trace of the marker (the store keeps only the items of the message)."""
    message = requests.move_in_from_abroad(person("未定義 太郎", "ミテイギ タロウ"), address(MUNI, "9番地"), today=TODAY)
    hostile = kizon_pb2.MoveInRequest()
    hostile.CopyFrom(message)
    hostile.person.MergeFromString(unknown(950))
    cert = terminal_cert(network.pki, MUNI, clerk.terminal)
    with channel(network.topology.find("kizon", MUNI), cert) as ch, \
            refused(grpc.StatusCode.INVALID_ARGUMENT, "person.#950", reason=A.MESSAGE_UNKNOWN_FIELD.reason):
        raw_call(ch, "/testbed.v1.Kizon/MoveIn", hostile.SerializeToString(), metadata=clerk.metadata)
    reply = clerk(clerk.kizon.MoveIn, message)
    stored = clerk(clerk.kizon.GetResident, common_pb2.ResidentKey(resident_code=reply.records[0].resident_code))
    assert MARK.encode() not in stored.SerializeToString()


def test_the_intermediate_server_refuses_a_copy_with_an_extra_item(network):
    """副本の登録 from the atena: an extra field inside the 住民票関係情報 is refused."""
    from protos import intermediate_pb2
    record = records_pb2.ResidentRecord(municipality_code=MUNI, resident_code="24727059608")
    item = intermediate_pb2.CopyRegistration(fugo="F" * 16, unified_atena_number="1")
    item.record.MergeFromString(record.SerializeToString() + unknown(333))
    body = intermediate_pb2.CopyBatch(items=[item]).SerializeToString()
    with channel(network.topology.find("intermediate"), node_cert(network.pki, f"atena-{MUNI}")) as ch, \
            refused(grpc.StatusCode.INVALID_ARGUMENT, "items.record.#333", reason=A.MESSAGE_UNKNOWN_FIELD.reason):
        raw_call(ch, "/testbed.v1.IntermediateServer/RegisterCopies", body)


def test_a_request_of_known_fields_only_is_not_refused(network):
    """The rule does not fire on a clean request (the check compares sizes: it must not refuse what it cannot see)."""
    with channel(network.topology.find("card"), node_cert(network.pki, f"cs-{MUNI}")) as ch, \
            refused(grpc.StatusCode.NOT_FOUND):
        raw_call(ch, "/testbed.v1.CardManagement/GetDeliveryInfo",
                 common_pb2.ResidentKey(resident_code="24727059608").SerializeToString())


def test_a_flood_of_unknown_fields_is_named_in_brief():
    """A request holding a hundred thousand unknown fields is named by its first few, not all of them."""
    from nodes.rules import unknown_fields
    info = records_pb2.IdentityInfo()
    info.MergeFromString(b"".join(unknown(1000 + i, "x") for i in range(100_000)))
    found = unknown_fields(info)
    assert found[:2] == ["#1000", "#1001"] and len(found) == 20
