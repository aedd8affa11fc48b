"""The 本人確認情報ファイル as the CS, the prefecture and national each keep it.

Updates from a municipality carry its 更新順番号; a receiver applies them in order, ignores
duplicates (already applied) and refuses a gap (a missing update) so that the sender re-sends.
Each row keeps digests of its items for the 整合性確認 (nodes/filedigests.py reads them) and the columns that
searches use.
"""
from __future__ import annotations

import hashlib
import re

from google.protobuf.message import DecodeError

from nodes import rules

from nodes.numbers import individual_number_valid
from nodes.reasons import common as C, cs as R
from nodes.digests import Tree, halves
from nodes.records import register_digest
from nodes.store import rows_in
from nodes.weaken import weakened
from protos import identity_pb2, records_pb2

SCHEMA = """
CREATE TABLE IF NOT EXISTS identity (     -- one row per person and municipality: a 消除 record stays
    resident_code TEXT NOT NULL,            -- 住民票コード
    municipality_code TEXT NOT NULL,        -- 市町村コード
    update_sequence INTEGER NOT NULL,       -- 更新順番号 of the last update applied
    individual_number TEXT,                 -- 個人番号 (search key)
    name_kana TEXT NOT NULL,                -- ふりがな氏名 (search key)
    name_kanji TEXT NOT NULL,               -- 漢字氏名 (search key)
    birth_date TEXT NOT NULL,
    sex TEXT NOT NULL,
    address TEXT NOT NULL,
    status INTEGER NOT NULL,                -- レコード状況フラグ: 0 現存, 1 消除
    updated_at TEXT NOT NULL,               -- タイムスタンプ given by the CS
    digest BLOB NOT NULL,                   -- SHA-1 of the items, for the 整合性確認
    info BLOB NOT NULL,                     -- IdentityInfo, the 40 items
    dx1 INTEGER NOT NULL DEFAULT 0,         -- the digest's first 128 bits, for the tree of ranges (nodes/digests.py)
    dx2 INTEGER NOT NULL DEFAULT 0,
    rx1 INTEGER NOT NULL DEFAULT 0,         -- … and the REGISTER_ITEMS digest's: what kizon's 住民票 must match
    rx2 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (resident_code, municipality_code)
);
CREATE INDEX IF NOT EXISTS identity_municipality ON identity(municipality_code, resident_code);
CREATE TABLE IF NOT EXISTS applied (
    municipality_code TEXT PRIMARY KEY,
    last_sequence INTEGER NOT NULL          -- highest 更新順番号 applied in order
);
"""

# The search keys of 本人確認情報検索: only where searches are answered (the CS and national).
SEARCH_SCHEMA = """
CREATE INDEX IF NOT EXISTS identity_number ON identity(individual_number);
CREATE INDEX IF NOT EXISTS identity_kana ON identity(name_kana, birth_date);
CREATE INDEX IF NOT EXISTS identity_kanji ON identity(name_kanji, birth_date);
"""

# The ranges of the identity file: per municipality, the identity digest (pair 0) and the register digest (pair 1).
TREE = Tree("identity", "resident_code", "municipality_code", (("dx1", "dx2"), ("rx1", "rx2")))
IDENTITY, REGISTER = 0, 1  # the kinds of digest TREE keeps
SCHEMA += TREE.schema()
COLUMNS = ("resident_code", "municipality_code", "update_sequence", "individual_number", "name_kana", "name_kanji",
           "birth_date", "sex", "address", "status", "updated_at", "dx1", "dx2", "rx1", "rx2", "digest", "info")
UPSERT = (
    f"INSERT INTO identity ({', '.join(COLUMNS)}) VALUES ({','.join('?' * len(COLUMNS))}) "
    "ON CONFLICT(resident_code, municipality_code) DO UPDATE SET "
    + ", ".join(f"{c}=excluded.{c}" for c in COLUMNS[2:])
)
# Items that say how an update travelled, not what it says: left out of the digest.
TRANSPORT_ITEMS = ("update_sequence", "recovery_update_sequence", "timestamp")
SEQUENCE_DUE_KEY = "x-sequence-due"  # trailing metadata of a gap refusal: the 更新順番号 the receiver needs next
SEARCH_LIMIT = 100  # the most matches one search returns
MUNICIPALITY_IN_ADDRESS = re.compile(r".{2,4}?[都道府県].+?[市区町村]")  # a 住所 key names 都道府県 and 市区町村


def _split(info: records_pb2.IdentityInfo) -> tuple[bytes, bytes]:
    """(the items without the transport items, the transport items) serialized: the file keeps their
    concatenation, which protobuf parses as the whole message, and the digest covers the first part."""
    transport = records_pb2.IdentityInfo(update_sequence=info.update_sequence,
                                         recovery_update_sequence=info.recovery_update_sequence, timestamp=info.timestamp)
    for name in TRANSPORT_ITEMS:
        info.ClearField(name)
    core = info.SerializeToString(deterministic=True)
    info.MergeFrom(transport)
    return core, transport.SerializeToString()


def digest(info: records_pb2.IdentityInfo) -> bytes:
    """SHA-1 of the 本人確認情報 items, without the transport items."""
    return hashlib.sha1(_split(info)[0]).digest()


def stored_digest(blob: bytes) -> bytes:
    """digest() of a stored 本人確認情報, from its bytes: row() stores the transport items first and the items
    after them, so the digest covers the bytes after those (at most three) leading fields. A record stored
    otherwise (by an older version, items first) is parsed and recomputed in full."""
    start = _after_transport(blob)
    if start:
        return hashlib.sha1(memoryview(blob)[start:]).digest()
    info = records_pb2.IdentityInfo.FromString(blob)
    suffix = records_pb2.IdentityInfo(update_sequence=info.update_sequence,
                                      recovery_update_sequence=info.recovery_update_sequence,
                                      timestamp=info.timestamp).SerializeToString()
    if suffix and blob.endswith(suffix):
        return hashlib.sha1(blob[:-len(suffix)]).digest()
    return digest(info)


# The transport items' tags (field numbers 29 and 30 as varints, 36 as a string), in the order row() writes them.
_UPDATE_SEQUENCE, _RECOVERY_SEQUENCE, _TIMESTAMP = b"\xe8\x01", b"\xf0\x01", b"\xa2\x02"


def _after_transport(blob: bytes) -> int:
    """Where the items start after the leading transport items (0 if the blob does not start with them)."""
    pos = 0
    for tag in (_UPDATE_SEQUENCE, _RECOVERY_SEQUENCE, _TIMESTAMP):
        if blob.startswith(tag, pos):
            value, pos = _read_varint(blob, pos + 2)
            if tag == _TIMESTAMP:
                pos += value
    return pos if pos <= len(blob) else 0


def _read_varint(blob: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(blob):
        byte = blob[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            break
        shift += 7
    return value, pos


def row(info: records_pb2.IdentityInfo, register: bool = False) -> tuple:
    """The identity table row of one person's 本人確認情報 (COLUMNS: its digest and its stored blob last): the blob
    is the transport items followed by the items (protobuf parses the concatenation as the whole message), so that
    stored_digest() finds the items without parsing. register: with the REGISTER_ITEMS digest (the CS's file, which
    kizon's 住民票 are compared with; elsewhere nothing compares it, and it is 0)."""
    core, transport = _split(info)
    digest = hashlib.sha1(core).digest()
    return (info.resident_code, info.municipality_code, info.update_sequence, info.individual_number or None,
            info.name_kana, info.name_kanji, info.birth_date, info.sex, info.address, info.record_status_flag,
            info.timestamp, *halves(digest), *(halves(register_digest(info)) if register else NO_REGISTER), digest,
            transport + core)


NO_REGISTER = (0, 0)  # (rx1, rx2) of a file nobody compares with kizon's register


def kept_digests(blob: bytes, register: bool = False) -> tuple:
    """(dx1, dx2, rx1, rx2, digest) of a stored 本人確認情報 computed from its bytes, as row() keeps them: what its
    row must hold (the scrubber's measure). Bytes that are not a record are given digests of the bytes, equal to no
    record's."""
    try:
        digest = stored_digest(blob)
        kept = halves(register_digest(records_pb2.IdentityInfo.FromString(blob))) if register else NO_REGISTER
    except DecodeError:
        digest = hashlib.sha1(b"unreadable:" + blob).digest()
        kept = halves(digest) if register else NO_REGISTER
    return (*halves(digest), *kept, digest)


def store_identities(db, infos, rows: list[tuple] | None = None, register: bool = False, indexes=None) -> None:
    """Write people's 本人確認情報, replacing older versions (and the old code after a 住民票コード変更).
    rows, when the caller has made them already with row(), saves making them again (register: see row());
    indexes (a nodes.deferred.DeferredIndexes of the file) is told of the batch first."""
    rows = rows or [row(info, register) for info in infos]
    if indexes is not None:
        indexes.note(db, len(rows))
    renamed = [(i.former_resident_code,) for i in infos if i.change_reason == "住民票コード変更" and i.former_resident_code]
    if renamed:
        # Row by row: a person renamed in this batch must not lose the row written just before.
        for info, values in zip(infos, rows):
            if info.change_reason == "住民票コード変更" and info.former_resident_code:
                db.execute("DELETE FROM identity WHERE resident_code=? AND municipality_code=?",
                           (info.former_resident_code, info.municipality_code))
            db.execute(UPSERT, values)
        return
    db.executemany(UPSERT, rows)


def update_bytes(municipality: str, info_bytes: bytes) -> bytes:
    """A serialized IdentityUpdate(municipality_code, info) made from already serialized info: protobuf's
    wire format is a concatenation of fields, so the 40 items need not be serialized a second time."""
    muni = municipality.encode()
    return b"\x0a" + _varint(len(muni)) + muni + b"\x12" + _varint(len(info_bytes)) + info_bytes


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits, value = value & 0x7F, value >> 7
        out.append(bits | (0x80 if value else 0))
        if not value:
            return bytes(out)


def last_sequence(db, municipality: str) -> int:
    """The highest 更新順番号 of a municipality applied here."""
    found = db.execute("SELECT last_sequence FROM applied WHERE municipality_code=?", (municipality,)).fetchone()
    return found[0] if found else 0


def set_last_sequence(db, municipality: str, sequence: int) -> None:
    """Record the highest 更新順番号 of a municipality applied here."""
    db.execute("INSERT INTO applied VALUES (?,?) ON CONFLICT(municipality_code) DO UPDATE SET last_sequence=excluded.last_sequence",
               (municipality, sequence))


def apply_updates(db, municipality: str, updates, indexes=None) -> tuple[list, int, list]:
    """Apply numbered updates of one municipality in order; return (applied updates, last sequence,
    their rows: row()[-1] is each one's serialized 本人確認情報, for passing them on); indexes: see store_identities."""
    last = last_sequence(db, municipality)
    applied = []
    for update in updates:
        info = update.info
        seq = info.update_sequence
        if update.municipality_code != municipality or info.municipality_code != municipality:
            raise C.MUNICIPALITY_OWN(f"市町村コード rule: an update of {info.municipality_code or update.municipality_code} "
                                     f"arrived in a batch of {municipality}")
        rules.require_resident_code(info.resident_code)
        if seq <= last:
            continue  # a duplicate of what is already applied: re-sends are harmless
        if seq != last + 1:
            raise R.UPDATE_SEQUENCE_ORDER(f"更新順番号 rule: {municipality} sent {seq} but {last + 1} "
                                          "is due (gap)", trailing=((SEQUENCE_DUE_KEY, str(last + 1)),))
        last = seq
        applied.append(update)
    rows = [row(u.info) for u in applied]
    store_identities(db, [u.info for u in applied], rows, indexes=indexes)
    set_last_sequence(db, municipality, last)
    return applied, last, rows


def statuses(db, municipality: str, resident_codes) -> dict[str, int]:
    """レコード状況フラグ of those of the given people the file holds for a municipality."""
    return dict(rows_in(db, "SELECT resident_code, status FROM identity WHERE municipality_code=? AND resident_code",
                        resident_codes, (municipality,)))


def read_identity(store, resident_code: str) -> records_pb2.IdentityInfo:
    """One person's 本人確認情報, or NOT_FOUND."""
    rules.require_resident_code(resident_code)
    # The current record first; among 消除 records, the latest.
    found = store.one("SELECT info FROM identity WHERE resident_code=? ORDER BY status, updated_at DESC LIMIT 1",
                      (resident_code,))
    if found is None:
        raise C.RECORD_NOT_FOUND(f"照会: no 本人確認情報 with 住民票コード {resident_code}")
    return records_pb2.IdentityInfo.FromString(found[0])


def read_identities(store, municipality: str, resident_codes) -> identity_pb2.IdentityList:
    """The 本人確認情報 a municipality holds of several people (those that exist)."""
    result = identity_pb2.IdentityList()
    for (blob,) in rows_in(store.db, "SELECT info FROM identity WHERE municipality_code=? AND resident_code",
                           resident_codes, (municipality,)):
        result.items.add().MergeFromString(blob)
    return result


def search_kind(query: identity_pb2.IdentitySearch) -> str:
    """Which keys a search uses, or INVALID_ARGUMENT naming the rule (PIA Ⅲ(2)2)."""
    if query.resident_code:
        rules.require_resident_code(query.resident_code)
        return "resident_code"
    if query.individual_number:
        if not individual_number_valid(query.individual_number):
            raise C.INDIVIDUAL_NUMBER_FORMAT("個人番号 rule: the search key is not 12 digits with a valid check digit")
        return "individual_number"
    name = query.name_kana or query.name_kanji
    if query.birth_date:  # a key no one can have is bad input, not a search that finds nobody
        rules.require_past_date(query.birth_date, "生年月日")
    if query.address and not MUNICIPALITY_IN_ADDRESS.match(query.address):
        raise R.SEARCH_ADDRESS_KEY("検索 rule (PIA Ⅲ(2)2): the 住所 key must name at least the prefecture and the municipality "
                                   "(e.g. 神奈川県伊勢原市…)")
    if name and (query.birth_date or query.address or weakened("search-rule")):
        return "four_items"
    raise R.SEARCH_TWO_ITEMS("検索 rule (PIA Ⅲ(2)2): search by 住民票コード, by 個人番号, or by 氏名 with 生年月日 or 住所; "
                             "性別 does not count as a key")


def search(store, query: identity_pb2.IdentitySearch, municipality: str | None = None) -> identity_pb2.IdentitySearchResult:
    """本人確認情報検索 under the two-item rule; municipality limits it to one municipality's people."""
    kind = search_kind(query)
    where, params = [], []
    if kind == "resident_code":
        where.append("resident_code=?"), params.append(query.resident_code)
    elif kind == "individual_number":
        where.append("individual_number=?"), params.append(query.individual_number)
    else:
        column = "name_kana" if query.name_kana else "name_kanji"
        where.append(f"{column}=?"), params.append(query.name_kana or query.name_kanji)
        if query.birth_date:
            where.append("birth_date=?"), params.append(query.birth_date)
        if query.address:
            where.append("substr(address, 1, ?)=?"), params.extend((len(query.address), query.address))
    if query.sex:
        where.append("sex=?"), params.append(query.sex)
    if municipality:
        # The unary + keeps SQLite on the search-key index instead of scanning the municipality's rows.
        where.append("+municipality_code=?"), params.append(municipality)
    limit = min(query.limit or SEARCH_LIMIT, SEARCH_LIMIT)
    rows = store.db.execute(f"SELECT info FROM identity WHERE {' AND '.join(where)} LIMIT ?", (*params, limit + 1)).fetchall()
    result = identity_pb2.IdentitySearchResult(truncated=len(rows) > limit)
    for (blob,) in rows[:limit]:
        result.matches.add().MergeFromString(blob)
    return result
