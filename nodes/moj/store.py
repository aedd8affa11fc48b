"""The 在留カード held by 法務省: one row per holder under the number of their current card, and the numbers of the
cards a new one replaced (never given again, and still leading to the holder: a municipality that has not yet
applied the 法務省通知 of a new card reports under the old number)."""
from __future__ import annotations

from protos import moj_pb2

SCHEMA = """
CREATE TABLE IF NOT EXISTS residence_cards (    -- 在留カード等: the holder, under the number of their current card
    residence_card_number TEXT PRIMARY KEY,
    record BLOB NOT NULL                        -- moj_pb2.ResidenceCardRecord
);
CREATE TABLE IF NOT EXISTS replaced_cards (     -- cards a new card replaced (変更, 更新, 再交付): numbers used for good
    residence_card_number TEXT PRIMARY KEY,
    replaced_by TEXT NOT NULL
);
"""
CHAIN_LIMIT = 100  # replacements followed at most from an old number to the current card (a loop is not followed)


class CardStore:
    """The 在留カード, read and written inside the caller's transaction."""

    def current(self, db, number: str) -> moj_pb2.ResidenceCardRecord | None:
        """The card held under this number now, or None (a replaced number gives None: see holder)."""
        row = db.execute("SELECT record FROM residence_cards WHERE residence_card_number=?", (number,)).fetchone()
        return moj_pb2.ResidenceCardRecord.FromString(row[0]) if row else None

    def holder(self, db, number: str) -> moj_pb2.ResidenceCardRecord | None:
        """The holder of this card now, through the cards that replaced it (None: a number never issued)."""
        for _ in range(CHAIN_LIMIT):
            found = self.current(db, number)
            if found is not None:
                return found
            row = db.execute("SELECT replaced_by FROM replaced_cards WHERE residence_card_number=?",
                             (number,)).fetchone()
            if row is None:
                return None
            number = row[0]
        return None

    def replaced(self, db, number: str) -> bool:
        """Whether this number is of a card a new one replaced."""
        found = db.execute("SELECT 1 FROM replaced_cards WHERE residence_card_number=?", (number,)).fetchone()
        return found is not None

    def taken(self, db, number: str) -> bool:
        """Whether this number was ever given to a card (current or replaced)."""
        return self.current(db, number) is not None or self.replaced(db, number)

    def save(self, db, record: moj_pb2.ResidenceCardRecord) -> None:
        """Write a holder's card under its number."""
        db.execute("INSERT INTO residence_cards VALUES (?, ?) ON CONFLICT(residence_card_number) DO UPDATE SET "
                   "record=excluded.record", (record.residence_card_number, record.SerializeToString()))

    def renumber(self, db, record: moj_pb2.ResidenceCardRecord, new_number: str) -> None:
        """A new card for the holder: the old number is kept as replaced, the record moves to the new one."""
        old = record.residence_card_number
        db.execute("DELETE FROM residence_cards WHERE residence_card_number=?", (old,))
        db.execute("INSERT INTO replaced_cards VALUES (?, ?)", (old, new_number))
        record.residence_card_number = new_number

    def count(self, db) -> int:
        """How many holders are held."""
        return db.execute("SELECT COUNT(*) FROM residence_cards").fetchone()[0]
