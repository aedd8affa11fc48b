"""The digests of the 整合性確認: computed from the stored bytes in a few microseconds, and the same as the
item-by-item definition they stand for (so that a damaged record cannot hide and an intact one never differs)."""
from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from nodes import filedigests, identityfile
from nodes.records import REGISTER_ITEMS, register_digest
from protos import records_pb2

text = st.text(max_size=12)
INFO = st.builds(records_pb2.IdentityInfo, resident_code=st.from_regex(r"[0-9]{11}", fullmatch=True), name_kanji=text,
                 name_kana=text, birth_date=text, sex=text, municipality_code=text, postal_code=text, address=text,
                 individual_number=text, resident_since=text, address_since=text, previous_municipality_code=text,
                 previous_address=text, former_surname_kanji=text, former_surname_kana=text, change_reason=text,
                 record_status_flag=st.integers(0, 1), update_sequence=st.integers(0, 2**40),
                 recovery_update_sequence=st.integers(0, 2**40), timestamp=text)


def by_name(source, flag: int) -> bytes:
    """The register digest as REGISTER_ITEMS defines it, item by item by name."""
    values = [getattr(source, n) for n in REGISTER_ITEMS[:-1]] + [flag]
    return hashlib.sha1("\x1f".join(map(str, values)).encode()).digest()


@given(INFO)
@settings(max_examples=200, deadline=None)
def test_the_register_digest_is_the_register_items_in_order(info):
    """register_digest() of 本人確認情報 and of the 住民票 with the same items: REGISTER_ITEMS, in their order."""
    assert register_digest(info) == by_name(info, info.record_status_flag)
    record = records_pb2.ResidentRecord(**{n: getattr(info, n) for n in REGISTER_ITEMS[:-1]},
                                        status=records_pb2.ResidentRecord.STATUS_REMOVED if info.record_status_flag else 0)
    assert register_digest(record) == register_digest(info)


@given(INFO)
@settings(max_examples=200, deadline=None)
def test_the_stored_digest_is_the_digest_of_the_items(info):
    """From the stored bytes (transport items first), from bytes stored items first (an older layout), and as
    row() records it: the same digest, which leaves out how the update travelled."""
    row = identityfile.row(info)
    blob = row[-1]
    assert records_pb2.IdentityInfo.FromString(blob) == info
    assert identityfile.stored_digest(blob) == identityfile.digest(info) == row[-2]
    core, transport = identityfile._split(info)
    assert identityfile.stored_digest(core + transport) == row[-2]
    moved = records_pb2.IdentityInfo()
    moved.CopyFrom(info)
    moved.update_sequence += 1
    moved.timestamp += "later"
    assert identityfile.stored_digest(identityfile.row(moved)[-1]) == row[-2]


def test_a_damaged_record_does_not_keep_its_digest():
    """A character changed among the items changes the digest, and so does a record cut short; bytes that are
    not a record at all are unreadable, equal to no record."""
    info = records_pb2.IdentityInfo(resident_code="12345678901", name_kanji="試験 太郎", update_sequence=300,
                                    timestamp="2026-11-26T00:00:00")
    blob = identityfile.row(info)[-1]
    damaged = blob.replace("太郎".encode(), "次郎".encode())
    assert identityfile.stored_digest(damaged) != identityfile.stored_digest(blob)
    assert identityfile.stored_digest(blob[:-3]) != identityfile.stored_digest(blob)
    batches = list(filedigests._batches(_Rows([("12345678901", b"\x0a\xff")]), identityfile.stored_digest))
    assert list(batches[0].digests) == [b"unreadable"]


class _Rows:
    def __init__(self, rows):
        self.rows = rows

    def fetchmany(self, size):
        rows, self.rows = self.rows, []
        return rows
