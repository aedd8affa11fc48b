"""戸籍附票通知 (住基法第19条): when a resident whose 本籍 is elsewhere changes address, the 住所地 tells the 本籍地, CS to
CS, numbered per sender and addressed, in order, each stored once; the 本籍地's kizon takes them for its 戸籍 system.

A notice for this municipality's own 戸籍 system (本籍 here) is stored here at once, numbered like the others, so that
kizon's 住基GW takes every 附票通知 from one place (nodes/kizon/family.py)."""
from __future__ import annotations

from nodes import audit, rules
from nodes.guard import current_call
from nodes.reasons import cs as R
from nodes.store import next_counter
from protos import common_pb2, cs_pb2, identity_pb2

SCHEMA = """
CREATE TABLE IF NOT EXISTS annex_notices (              -- 戸籍附票通知 for people whose 本籍 is here, until kizon takes them
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    from_municipality TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    notice BLOB NOT NULL,
    UNIQUE (from_municipality, sequence)
);
CREATE TABLE IF NOT EXISTS annex_received (             -- the last 附票通知 number stored from each sender
    sender TEXT PRIMARY KEY,
    last INTEGER NOT NULL
);
"""
TAKE_LIMIT = 500  # notices kizon takes at a time


def target_of(municipality: str) -> str:
    """The outbox target of the 附票通知 to a 本籍地's CS."""
    return f"annex:{municipality}"


class Annex:
    """戸籍附票通知: numbered and queued when an update carries one, received from other CSs, taken by kizon."""

    def __init__(self, runtime):
        self._rt = runtime
        self._municipality = runtime.node.municipality

    def queue(self, db, notice: identity_pb2.AnnexNotice, resident_code: str) -> str | None:
        """In an update's transaction: check and number a 附票通知 kizon attached; stored here for a 本籍 here (None),
        else the outbox target it goes to (it may be outside this network: then nobody is told)."""
        if notice.resident_code != resident_code or notice.from_municipality_code != self._municipality:
            raise R.ANNEX_NOTICE_ITEMS(f"戸籍附票通知 rule: the notice of {resident_code} names "
                                       f"{notice.resident_code[:16]} from {notice.from_municipality_code[:8]}")
        rules.require_municipality_code(notice.to_municipality_code, "戸籍附票通知 rule: 本籍地")
        notice.sequence = next_counter(db, target_of(notice.to_municipality_code))
        if notice.to_municipality_code == self._municipality:
            self._store(db, notice)
            return None
        return target_of(notice.to_municipality_code)

    async def receive(self, request: identity_pb2.AnnexNotice):
        """戸籍附票通知 from a 住所地's CS: its own, addressed here, the next of its numbers (a repeat is answered)."""
        sender = current_call().peer.identity.municipality
        audit.set_subject(request.resident_code)
        rules.require_resident_code(request.resident_code)
        if request.from_municipality_code != sender or request.to_municipality_code != self._municipality:
            raise R.ANNEX_NOTICE_SENDER(f"戸籍附票通知 rule: {sender} may send only its own notices, addressed to here")
        for text, item in ((request.honseki, "本籍"), (request.name_kanji, "氏名"), (request.address, "住所"),
                           (request.reason, "異動事由")):
            rules.check_text(text, item)
        with self._rt.store.transaction() as db:
            last = db.execute("SELECT last FROM annex_received WHERE sender=?", (sender,)).fetchone()
            last = last[0] if last else 0
            if request.sequence <= last:
                return common_pb2.UpdateAck(accepted=True, update_sequence=last, applied=0)  # (a repeat)
            if request.sequence != last + 1:
                raise R.ANNEX_NOTICE_GAP(f"戸籍附票通知 rule: the next notice from {sender} is number {last + 1}, "
                                         f"not {request.sequence}")
            self._store(db, request)
        return common_pb2.UpdateAck(accepted=True, update_sequence=request.sequence, applied=1)

    def _store(self, db, notice) -> None:
        db.execute("INSERT INTO annex_notices(from_municipality, sequence, notice) VALUES (?,?,?)",
                   (notice.from_municipality_code, notice.sequence, notice.SerializeToString()))
        db.execute("INSERT INTO annex_received(sender, last) VALUES (?, ?) ON CONFLICT(sender) DO UPDATE SET "
                   "last=excluded.last", (notice.from_municipality_code, notice.sequence))

    async def take(self, request: cs_pb2.AnnexCursor):
        """The 附票通知 stored so far, in arrival order; those kizon says its 戸籍 system holds are deleted."""
        with self._rt.store.transaction() as db:
            db.execute("DELETE FROM annex_notices WHERE id<=?", (request.processed_up_to,))
            rows = db.execute("SELECT id, notice FROM annex_notices ORDER BY id LIMIT ?", (TAKE_LIMIT,)).fetchall()
        reply = cs_pb2.AnnexNotices(last_id=rows[-1][0] if rows else request.processed_up_to)
        for _, blob in rows:
            reply.notices.add().MergeFromString(blob)
        audit.set_subject(f"{len(rows)} 附票通知")
        return reply
