"""戸籍の附票 (住基法第16条–第20条): the address history of the people of this municipality's 戸籍, from the 戸籍附票通知
of the municipalities they live in, each notice kept once; and the load of a population's 戸籍."""
from __future__ import annotations

from nodes import audit, clock, rules
from nodes.reasons import koseki as F
from protos import common_pb2, koseki_pb2

SCHEMA = """
CREATE TABLE IF NOT EXISTS annex (              -- 附票: one entry per change of address, oldest first
    resident_code TEXT NOT NULL,
    number INTEGER NOT NULL,
    entry BLOB NOT NULL,                        -- koseki_pb2.AnnexEntry
    PRIMARY KEY (resident_code, number)
);
CREATE TABLE IF NOT EXISTS annex_seen (         -- each 附票通知 (sender, number) is kept once
    from_municipality TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    PRIMARY KEY (from_municipality, sequence)
);
CREATE TABLE IF NOT EXISTS annex_unmatched (    -- 附票通知 of nobody 在籍 here: kept for the office to look into
    from_municipality TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    notice BLOB NOT NULL
);
"""
PAGE_LIMIT = 1000  # 附票 entries a page of ListAnnexCurrent holds at most


class Annex:
    """The 附票 of the people of this municipality's 戸籍."""

    def __init__(self, runtime, registers):
        self.rt = runtime
        self.municipality = runtime.node.municipality
        self.registers = registers

    def record(self, request) -> common_pb2.UpdateAck:
        """附票通知 addressed here: a new entry for a person 在籍 here, set aside otherwise; a repeat is not kept twice."""
        for notice in request.items:
            if notice.to_municipality_code != self.municipality:
                raise F.ANNEX_NOTICE_ADDRESSEE(f"附票 rule: a notice for {notice.to_municipality_code[:8]} reached the "
                                               f"戸籍 system of {self.municipality}")
            rules.require_resident_code(notice.resident_code)
            for text, item in ((notice.address, "住所"), (notice.reason, "異動事由"), (notice.honseki, "本籍")):
                rules.check_text(text, item)
        if request.items:
            audit.set_batch_subject(n.resident_code for n in request.items)
        kept = 0
        with self.rt.store.transaction() as db:
            for notice in request.items:
                if db.execute("INSERT OR IGNORE INTO annex_seen VALUES (?, ?)",
                              (notice.from_municipality_code, notice.sequence)).rowcount == 0:
                    continue  # (handed on again after a lost answer)
                here = db.execute("SELECT 1 FROM members WHERE resident_code=?", (notice.resident_code,)).fetchone()
                if here is None:
                    db.execute("INSERT INTO annex_unmatched VALUES (?, ?, ?)", (notice.from_municipality_code,
                                                                                 notice.sequence, notice.SerializeToString()))
                    continue
                self._append(db, koseki_pb2.AnnexEntry(
                    resident_code=notice.resident_code, address=notice.address, address_since=notice.address_since,
                    municipality_code=notice.from_municipality_code, reason=notice.reason,
                    recorded_at=clock.stamp()))
                kept += 1
        return common_pb2.UpdateAck(accepted=True, applied=kept)

    def _append(self, db, entry) -> None:
        number = db.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM annex WHERE resident_code=?",
                            (entry.resident_code,)).fetchone()[0]
        db.execute("INSERT INTO annex VALUES (?, ?, ?)", (entry.resident_code, number, entry.SerializeToString()))

    def history(self, request) -> koseki_pb2.AnnexHistory:
        """The 附票 of a person 在籍 here, oldest entry first."""
        db = self.rt.store.db
        audit.set_subject(request.resident_code)
        register, _ = self.registers.of(db, request.resident_code)
        reply = koseki_pb2.AnnexHistory(resident_code=request.resident_code, register_number=register.register_number)
        for (blob,) in db.execute("SELECT entry FROM annex WHERE resident_code=? ORDER BY number",
                                  (request.resident_code,)):
            reply.entries.add().MergeFromString(blob)
        return reply

    def current(self, request) -> koseki_pb2.AnnexCurrent:
        """The latest 附票 entry of each person 在籍 here, after a 住民票コード, in 住民票コード order."""
        rules.check_text(request.after_resident_code, "住民票コード")
        limit = min(request.limit or PAGE_LIMIT, PAGE_LIMIT)
        rows = self.rt.store.db.execute(
            "SELECT a.entry FROM members m JOIN annex a ON a.resident_code = m.resident_code AND a.number = "
            "(SELECT MAX(number) FROM annex WHERE resident_code = m.resident_code) WHERE m.resident_code > ? "
            "ORDER BY m.resident_code LIMIT ?", (request.after_resident_code, limit)).fetchall()
        reply = koseki_pb2.AnnexCurrent()
        for (blob,) in rows:
            reply.entries.add().MergeFromString(blob)
        audit.set_subject(f"{len(rows)} 附票")
        return reply

    def load(self, request) -> common_pb2.UpdateAck:
        """The 戸籍 of a population and the first 附票 entry of each member: a 戸籍 held already with other content
        is refused; a repeat of the same load is answered."""
        audit.set_subject(f"{len(request.registers)} 戸籍")
        loaded = 0
        with self.rt.store.transaction() as db:
            for register in request.registers:
                blob = register.SerializeToString()
                found = db.execute("SELECT record FROM registers WHERE register_number=?",
                                   (register.register_number,)).fetchone()
                if found is not None:
                    if found[0] != blob:
                        raise F.KOSEKI_LOAD_TAKEN(f"load rule: 戸籍 {register.register_number[:16]} is held here "
                                                  "with other content")
                    continue
                db.execute("INSERT INTO registers VALUES (?, ?)", (register.register_number, blob))
                db.executemany("INSERT INTO members VALUES (?, ?) ON CONFLICT(resident_code) DO UPDATE SET "
                               "register_number=excluded.register_number",
                               [(m.resident_code, register.register_number) for m in register.members
                                if m.resident_code and m.status == "在籍"])
                loaded += 1
            for entry in request.annex:
                if db.execute("SELECT 1 FROM annex WHERE resident_code=?", (entry.resident_code,)).fetchone() is None:
                    self._append(db, entry)
            db.execute("INSERT INTO counters(name, value) VALUES ('register_number', ?) ON CONFLICT(name) DO UPDATE "
                       "SET value=MAX(value, excluded.value)",
                       (max([int(r.register_number) for r in request.registers if r.register_number.isdigit()],
                            default=0),))
        return common_pb2.UpdateAck(accepted=True, applied=loaded)
