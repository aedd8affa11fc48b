"""Bulk output at the CS (PIA Ⅲ(2)3 その他; seed 2376, 2665: 大量のデータ出力に際しては、事前に管理責任者の承認を得る).

The 統合端末 reads 本人確認情報 at the CS (GetIdentity, SearchIdentity, VerifyByCard) as the counter reads 住民票 at kizon,
and is held to the same rule and threshold (kizon's BULK_OUTPUT_LIMIT people per operator in
BULK_WINDOW_HOURS; the same person read again in the window counts once). Beyond it a read needs a manager's approval
(x-read-approval-token): a token kizon signs with the municipality's session key, which the CS checks with the public
key it holds (it cannot mint one). kizon's record of the approval is out of the CS's reach, so the token itself must
say for whom, at which terminal and for how many people ("req", "term", "max"; a token without them is refused
here), and the CS keeps a ledger of its own of what each approval has covered here.

The account lives in a small SQLite file of its own beside the CS's store (LEDGER), written by the CS (GetIdentity,
VerifyByCard) and by its search process (SearchIdentity, served apart with a read-only view of the CS's store), each
read counted in one short transaction: it survives a restart, and neither process waits on the other's store.
"""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from nodes import disclosed
from nodes.reasons import cs as R
from nodes.sessions import CS_READ_APPROVAL_KEY, TokenError, verify
from nodes.store import rows_in
from nodes.weaken import weakened

# kizon's threshold (nodes/kizon/items.py; not imported from there: that would load kizon into the CS; a test holds
# the two equal): people an operator may be shown without a manager's approval …
BULK_OUTPUT_LIMIT = 100
BULK_WINDOW_HOURS = 24  # … within this many hours
LEDGER = "disclosures.sqlite"  # beside the CS's store.sqlite
BUSY_SECONDS = 5.0  # how long one process waits for the other's transaction on the ledger
SCHEMA = """
CREATE TABLE IF NOT EXISTS disclosures (        -- whose 本人確認情報 each operator was shown at a 統合端末, when, under what
    operator TEXT NOT NULL,
    resident_code TEXT NOT NULL,
    at REAL NOT NULL,
    approval_id TEXT,                           -- the approval that covered it (NULL: within the limit)
    PRIMARY KEY (operator, resident_code)
);
CREATE INDEX IF NOT EXISTS disclosures_window ON disclosures(operator, at);
""" + disclosed.UNAPPROVED_INDEX + """
CREATE TABLE IF NOT EXISTS approvals (          -- the approvals spent here, as their tokens said, and what they covered
    id TEXT PRIMARY KEY,
    approver TEXT NOT NULL,
    requester TEXT NOT NULL,
    terminal TEXT NOT NULL,
    max_records INTEGER NOT NULL,
    used_records INTEGER NOT NULL DEFAULT 0,
    expires_at REAL NOT NULL,
    first_used_at REAL NOT NULL
);
"""


class BulkOutput:
    """The bulk-output account of this CS's terminal reads (parts.BulkOutput)."""

    def __init__(self, runtime):
        self._rt = runtime
        self._municipality = runtime.node.municipality
        self.path = Path(runtime.store.path).parent / LEDGER
        self._db: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        """The ledger (opened on first use, by whichever process reads first)."""
        if self._db is None:
            db = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(SCHEMA)
            self._db = db
        return self._db

    def read(self, call, resident_codes) -> None:
        """Count a terminal read about to return these people to the operator; refuse it beyond the limit without
        an approval that covers it (then nothing is returned and nothing is counted)."""
        if not call.is_terminal or not call.operator:
            return  # (kizon's reads for its counter are counted at kizon, for the operator there)
        codes = {c for c in resident_codes if c}
        if not codes:
            return
        now = time.time()
        since = now - BULK_WINDOW_HOURS * 3600
        db = self.db
        db.execute("BEGIN IMMEDIATE")  # (the CS and its search process count into the one account)
        try:
            seen = {r[0] for r in rows_in(db, disclosed.SEEN, codes, (call.operator, since))}
            fresh = sorted(codes - seen)
            if fresh:
                total = db.execute(disclosed.UNAPPROVED, (call.operator, since)).fetchone()[0]
                approval = None
                if total + len(fresh) > BULK_OUTPUT_LIMIT and not weakened("bulk-output"):
                    approval = self._spend(db, call, len(fresh), total, now)
                db.executemany("INSERT INTO disclosures VALUES (?,?,?,?) ON CONFLICT(operator, resident_code) DO UPDATE "
                               "SET at=excluded.at, approval_id=excluded.approval_id",
                               [(call.operator, code, now, approval) for code in fresh])
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def window_total(self, operator: str) -> int:
        """People an operator was shown here without an approval in the window."""
        since = time.time() - BULK_WINDOW_HOURS * 3600
        return self.db.execute(disclosed.UNAPPROVED, (operator, since)).fetchone()[0]

    def _spend(self, db, call, count: int, earlier: int, now: float) -> str:
        """Check the approval the call presents and spend count people of it: its id."""
        rule = (f"bulk output rule (PIA Ⅲ(2)3): reads of {count} people ({earlier + count} to {call.operator} in "
                f"{BULK_WINDOW_HOURS} h at the CS) exceed {BULK_OUTPUT_LIMIT}")
        token = call.metadata.get(CS_READ_APPROVAL_KEY)
        if not token:
            raise R.CS_BULK_OUTPUT_APPROVAL_REQUIRED(f"{rule}; a manager's approval for reads at the CS "
                                                     f"({CS_READ_APPROVAL_KEY}) is required")
        key = self._rt.session_keys.get(self._municipality)
        try:
            if key is None:
                raise TokenError(f"no session key of {self._municipality} to check it by")
            claim = verify(key, token, "approval")
        except TokenError as exc:
            raise R.CS_BULK_OUTPUT_APPROVAL_INVALID(f"{rule}; the approval is not valid: {exc}") from None
        approval_id = str(claim.get("id", ""))[:32]
        if claim.get("muni") != self._municipality or not approval_id:
            raise R.CS_BULK_OUTPUT_APPROVAL_INVALID(f"{rule}; the approval is not one of {self._municipality}")
        requester, terminal, most = claim.get("req"), claim.get("term"), claim.get("max")
        if not (isinstance(requester, str) and isinstance(terminal, str) and isinstance(most, int) and most > 0):
            raise R.CS_BULK_OUTPUT_APPROVAL_INVALID(
                f"{rule}; approval {approval_id} does not say for whom, at which terminal and for how many people "
                "(req, term, max): the CS cannot read kizon's record of it, so it spends only one that does")
        if claim.get("at") != "cs":  # (kizon's approvals are spent at kizon: each door keeps its own account)
            raise R.CS_BULK_OUTPUT_APPROVAL_INVALID(f"{rule}; approval {approval_id} is to be spent at "
                                                    f"{str(claim.get('at'))[:16]}, not at the CS")
        if claim.get("approver") == call.operator:
            raise R.CS_BULK_OUTPUT_SELF_APPROVAL(f"{rule}; an operator may not approve their own output")
        if (requester, terminal) != (call.operator, call.terminal):
            raise R.CS_BULK_OUTPUT_APPROVAL_OTHER_OPERATOR(f"{rule}; approval {approval_id} is for "
                                                           f"{requester[:32]} at {terminal[:32]}")
        db.execute("INSERT INTO approvals VALUES (?,?,?,?,?,0,?,?) ON CONFLICT(id) DO NOTHING",
                   (approval_id, str(claim.get("approver", ""))[:32], requester, terminal, most,
                    float(claim.get("exp", 0)), now))
        spent = db.execute("UPDATE approvals SET used_records=used_records+? WHERE id=? AND requester=? AND terminal=? "
                           "AND used_records+?<=max_records",
                           (count, approval_id, call.operator, call.terminal, count)).rowcount
        if not spent:
            used, most = db.execute("SELECT used_records, max_records FROM approvals WHERE id=?",
                                    (approval_id,)).fetchone()
            raise R.CS_BULK_OUTPUT_APPROVAL_COUNT(f"{rule}; approval {approval_id} covers {most} people, {used} of them "
                                                  f"spent here already")
        return approval_id
