"""The 本人確認情報ファイル as the CS, the prefecture and national each keep it.

Updates from a municipality carry its 更新順番号; a receiver applies them in order, ignores
duplicates (already applied) and refuses a gap (a missing update) so that the sender re-sends.
"""
from __future__ import annotations

from nodes import rules
from protos import records_pb2

SCHEMA = """
CREATE TABLE IF NOT EXISTS identity (
    resident_code TEXT PRIMARY KEY,         -- 住民票コード
    municipality_code TEXT NOT NULL,        -- 市町村コード
    update_sequence INTEGER NOT NULL,       -- 更新順番号 of the last update applied
    info BLOB NOT NULL                      -- IdentityInfo, the 40 items
);
CREATE INDEX IF NOT EXISTS identity_municipality ON identity(municipality_code);
CREATE TABLE IF NOT EXISTS applied (
    municipality_code TEXT PRIMARY KEY,
    last_sequence INTEGER NOT NULL          -- highest 更新順番号 applied in order
);
"""


def store_identity(db, info: records_pb2.IdentityInfo) -> None:
    """Write one person's 本人確認情報, replacing the older version."""
    db.execute(
        "INSERT INTO identity VALUES (?,?,?,?) ON CONFLICT(resident_code) DO UPDATE SET "
        "municipality_code=excluded.municipality_code, update_sequence=excluded.update_sequence, info=excluded.info",
        (info.resident_code, info.municipality_code, info.update_sequence, info.SerializeToString()),
    )


def apply_updates(db, municipality: str, updates) -> tuple[list, int]:
    """Apply numbered updates of one municipality in order; return (applied updates, last sequence)."""
    row = db.execute("SELECT last_sequence FROM applied WHERE municipality_code=?", (municipality,)).fetchone()
    last = row[0] if row else 0
    applied = []
    for update in updates:
        info = update.info
        seq = info.update_sequence
        if update.municipality_code != municipality or info.municipality_code != municipality:
            raise rules.denied(f"市町村コード rule: an update of {info.municipality_code or update.municipality_code} "
                               f"arrived in a batch of {municipality}")
        rules.require_resident_code(info.resident_code)
        if seq <= last:
            continue  # a duplicate of what is already applied: re-sends are harmless
        if seq != last + 1:
            raise rules.precondition(f"更新順番号 rule: {municipality} sent {seq} but {last + 1} is due (gap)")
        store_identity(db, info)
        last = seq
        applied.append(update)
    db.execute("INSERT INTO applied VALUES (?,?) ON CONFLICT(municipality_code) DO UPDATE SET last_sequence=excluded.last_sequence",
               (municipality, last))
    return applied, last


def read_identity(store, resident_code: str) -> records_pb2.IdentityInfo:
    """One person's 本人確認情報, or NOT_FOUND."""
    rules.require_resident_code(resident_code)
    row = store.one("SELECT info FROM identity WHERE resident_code=?", (resident_code,))
    if row is None:
        raise rules.not_found(f"照会: no 本人確認情報 with 住民票コード {resident_code}")
    return records_pb2.IdentityInfo.FromString(row[0])
