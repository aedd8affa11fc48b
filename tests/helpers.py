"""Test helpers: people to register and calls to make against a live network."""
from __future__ import annotations

import random
from nodes.numbers import with_individual_number_check, with_resident_code_check
from protos import kizon_pb2, kizon_pb2_grpc, records_pb2
from testbed.client import channel, eventually, operator_metadata, terminal_cert  # noqa: F401 (eventually re-exported)


def new_resident(rng: random.Random, municipality: str, name: str = "試験 太郎") -> records_pb2.ResidentRecord:
    """A 住民票 with fresh, valid numbers."""
    return records_pb2.ResidentRecord(
        resident_code=with_resident_code_check(f"{rng.randrange(10**10):010d}"),
        individual_number=with_individual_number_check(f"{rng.randrange(10**11):011d}"),
        name_kanji=name, name_kana="シケン タロウ", birth_date="1990-01-02", sex="1",
        address="神奈川県伊勢原市田中348番地", postal_code="259-1188", municipality_code=municipality,
        change_reason="転入", change_date="2026-04-01",
    )


def record_resident(network, record, terminal: str = "T0001", operator: str = "OP0001"):
    """Record a 住民票 at the kizon of its municipality through a counter terminal."""
    node = network.topology.find("kizon", record.municipality_code)
    with channel(node, terminal_cert(network.pki, record.municipality_code, terminal)) as ch:
        return kizon_pb2_grpc.KizonStub(ch).RecordResident(
            kizon_pb2.RecordResidentRequest(record=record), metadata=operator_metadata(operator), timeout=10)
