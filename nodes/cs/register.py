"""The 本人確認情報ファイル of this municipality as the parts of the CS read it, one person at a time."""
from __future__ import annotations

from protos import records_pb2


class Register:
    """One person's 本人確認情報 in this municipality's file (parts.Register)."""

    def __init__(self, municipality: str):
        self.municipality = municipality

    def current(self, db, resident_code: str) -> records_pb2.IdentityInfo | None:
        """The 本人確認情報 of resident_code here (current or 除票), or None."""
        found = db.execute("SELECT info FROM identity WHERE resident_code=? AND municipality_code=?",
                           (resident_code, self.municipality)).fetchone()
        return records_pb2.IdentityInfo.FromString(found[0]) if found else None
