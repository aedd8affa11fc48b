"""Bulk output (PIA Ⅲ(2)3 その他) counted at every door: exports and every read that returns personal data.

An operator's window (BULK_WINDOW_HOURS, the server's clock) adds up the records they exported and the
people whose data any read returned them (a 住民票, history, a household, a certificate, an issuance history);
beyond BULK_OUTPUT_LIMIT a manager's prior approval is needed. Reading the same person again in the window
counts once: a clerk serving a family looks at the same few people many times. An export spends an
approval whole (one output each); reads spend an approval record by record up to the count it covers.
"""
from __future__ import annotations

import time

from nodes import audit, disclosed
from nodes.guard import APPROVAL_KEY
from nodes.reasons import kizon as K
from nodes.kizon.items import BULK_OUTPUT_LIMIT, BULK_WINDOW_HOURS
from nodes.sessions import READ_APPROVAL_KEY, TokenError, verify
from nodes.store import rows_in
from nodes.weaken import weakened

SCHEMA = """
CREATE TABLE IF NOT EXISTS disclosures (        -- whose data each operator was shown, when, under which approval
    operator TEXT NOT NULL,
    resident_code TEXT NOT NULL,
    at REAL NOT NULL,
    approval_id TEXT,
    PRIMARY KEY (operator, resident_code)
);
CREATE INDEX IF NOT EXISTS disclosures_window ON disclosures(operator, at);
""" + disclosed.UNAPPROVED_INDEX + """
"""


class Disclosures:
    """The bulk-output account of one kizon: exports, reads and the approvals they spend."""

    def __init__(self, store, municipality: str, session_keys: dict):
        self.store = store
        self.municipality = municipality
        self.session_keys = session_keys
        store.db.executescript(SCHEMA)
        if "used_records" not in {r[1] for r in store.db.execute("PRAGMA table_info(approvals)")}:
            store.db.execute("ALTER TABLE approvals ADD COLUMN used_records INTEGER NOT NULL DEFAULT 0")

    def window_total(self, operator: str) -> int:
        """Records an operator was given without an approval in the window: exported, plus people read."""
        since = time.time() - BULK_WINDOW_HOURS * 3600
        exported = self.store.scalar("SELECT SUM(records) FROM outputs WHERE operator=? AND at>? AND approval_id IS NULL",
                                     (operator, since), 0)
        read = self.store.scalar(disclosed.UNAPPROVED, (operator, since), 0)
        return exported + read

    def read(self, call, resident_codes) -> None:
        """Count a read about to return these people's data to the caller; refuse it beyond the limit without
        an approval (nothing is returned and nothing is counted then)."""
        codes = {c for c in resident_codes if c}
        if not codes or call.operator is None:
            return
        now = time.time()
        since = now - BULK_WINDOW_HOURS * 3600
        seen = {r[0] for r in rows_in(self.store.db, disclosed.SEEN, codes, (call.operator, since))}
        fresh = sorted(codes - seen)
        if not fresh:
            return
        approval = None
        total = self.window_total(call.operator)
        if total + len(fresh) > BULK_OUTPUT_LIMIT and not weakened("bulk-output"):
            approval = self._spend_for_reads(call, len(fresh), total)
        with self.store.transaction() as db:
            db.executemany("INSERT INTO disclosures VALUES (?,?,?,?) ON CONFLICT(operator, resident_code) DO UPDATE SET "
                           "at=excluded.at, approval_id=excluded.approval_id",
                           [(call.operator, code, now, approval) for code in fresh])

    def export(self, call, request, count: int) -> str | None:
        """Count an export of count records; the approval it spends (whole), if the window needs one."""
        earlier = self.window_total(call.operator)
        approval = None
        if earlier + count > BULK_OUTPUT_LIMIT and not weakened("bulk-output"):
            approval, approver = self._spend_for_export(call, request, count, earlier)
            audit.set_subject(f"export:{count} approval {approval} by {approver} for {call.operator}")
        with self.store.transaction() as db:
            db.execute("INSERT INTO outputs VALUES (?,?,?,?)", (call.operator, time.time(), count, approval))
        return approval

    def _rule(self, call, what: str, count: int, earlier: int) -> str:
        return (f"bulk output rule (PIA Ⅲ(2)3): {what} of {count} records ({earlier + count} to {call.operator} in "
                f"{BULK_WINDOW_HOURS} h) exceed {BULK_OUTPUT_LIMIT}")

    def _approval(self, call, rule: str, key: str) -> tuple:
        """The approval the call presents under a metadata key, checked for this operator at this terminal: its row."""
        token = call.metadata.get(key)
        if not token:
            raise K.BULK_OUTPUT_APPROVAL_REQUIRED(f"{rule}; a manager's approval ({key}) is required")
        try:
            claim = verify(self.session_keys[self.municipality], token, "approval")
        except TokenError as exc:
            raise K.BULK_OUTPUT_APPROVAL_INVALID(f"{rule}; the approval is not valid: {exc}") from None
        if claim.get("at", "kizon") != "kizon":  # (an approval of reads at the CS is the CS's to spend, and only there)
            raise K.BULK_OUTPUT_APPROVAL_INVALID(f"{rule}; the approval is to be spent at {str(claim.get('at'))[:16]}, "
                                                 "not at kizon")
        found = self.store.one("SELECT id, approver, requester, terminal, purpose, max_records, used_at, used_records, "
                               "expires_at FROM approvals WHERE id=?", (claim.get("id"),))
        if claim.get("muni") != self.municipality or found is None:
            raise K.BULK_OUTPUT_APPROVAL_INVALID(f"{rule}; the approval is not one of {self.municipality}")
        approval_id, approver, requester, terminal, _, _, used_at, _, expires_at = found
        if used_at is not None:
            raise K.BULK_OUTPUT_APPROVAL_USED(f"{rule}; approval {approval_id} was used already (one output each)")
        if expires_at < time.time():
            raise K.BULK_OUTPUT_APPROVAL_EXPIRED(f"{rule}; approval {approval_id} has expired")
        if approver == call.operator:
            raise K.BULK_OUTPUT_SELF_APPROVAL(f"{rule}; an operator may not approve their own output")
        if (requester, terminal) != (call.operator, call.terminal):
            raise K.BULK_OUTPUT_APPROVAL_OTHER_OPERATOR(f"{rule}; approval {approval_id} is for {requester} at {terminal}")
        return found

    def _spend_for_export(self, call, request, count: int, earlier: int) -> tuple[str, str]:
        """Check the approval for this export and use it up: (approval id, approver)."""
        rule = self._rule(call, "an export", count, earlier)
        approval_id, approver, _, _, purpose, max_records, _, used_records, _ = self._approval(call, rule, APPROVAL_KEY)
        if purpose != request.purpose:
            raise K.BULK_OUTPUT_APPROVAL_PURPOSE(f"{rule}; approval {approval_id} is for the purpose {purpose!r}")
        if count + used_records > max_records:
            raise K.BULK_OUTPUT_APPROVAL_COUNT(f"{rule}; approval {approval_id} covers {max_records} records")
        with self.store.transaction() as db:
            spent = db.execute("UPDATE approvals SET used_at=? WHERE id=? AND used_at IS NULL",
                               (time.time(), approval_id)).rowcount
        if not spent:
            raise K.BULK_OUTPUT_APPROVAL_USED(f"{rule}; approval {approval_id} was used already (one output each)")
        return approval_id, approver

    def _spend_for_reads(self, call, count: int, earlier: int) -> str:
        """Spend count records of the approval the call presents on reads: its id."""
        rule = self._rule(call, "reads", count, earlier)
        approval_id, approver, _, _, purpose, max_records, _, _, _ = self._approval(call, rule, READ_APPROVAL_KEY)
        with self.store.transaction() as db:
            spent = db.execute("UPDATE approvals SET used_records=used_records+? WHERE id=? AND used_at IS NULL AND "
                               "used_records+?<=max_records", (count, approval_id, count)).rowcount
        if not spent:
            raise K.BULK_OUTPUT_APPROVAL_COUNT(f"{rule}; approval {approval_id} by {approver} ({purpose}) covers {max_records} "
                                               "records and is spent")
        return approval_id
