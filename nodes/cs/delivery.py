"""送付先情報ファイル at the 市町村CS: what kizon sends for the 個人番号通知書, held here, checked, sent, then deleted.

The 送付先情報 an update from kizon carries is written to the file in the transaction of that update (so what kizon's
acknowledged update carried is never lost, whatever is killed when). A background sender takes what is held, makes
the 情報の突合 (seed 1615–1617: 入手した送付先情報に含まれる４情報等の変更の有無を確認する … 機構保存本人確認情報との
情報の突合を行う) against national's 本人確認情報, sends what matches to the card system in batches and marks it sent
once the card system has acknowledged it (the card system takes the same one twice as once). What does not match,
or is not yet known at national (it learns through the prefecture's outbox, a moment later), stays held with the
reason and is checked again later. Sent or held, a 送付先情報 is kept for the retention (settings
delivery_retention_days) and then deleted in the purge batch, overwritten and checkpointed out of the WAL
(seed 2876–2882). docs/delivery.md tells the whole flow.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3
import time

import grpc

from nodes import clock, settings
from nodes.cs import parts
from nodes.outbox import PERMANENT
from nodes.records import fill_delivery_characters
from protos import card_pb2, common_pb2, records_pb2

log = logging.getLogger("nodes.cs")  # one logger name for the whole node

SCHEMA = """
CREATE TABLE IF NOT EXISTS delivery_file (      -- 送付先情報ファイル: 送付先情報 from kizon, held until sent, kept a while
    resident_code TEXT PRIMARY KEY,             -- 住民票コード (a newer 送付先情報 of the person replaces the older)
    info BLOB NOT NULL,                         -- DeliveryInfo as kizon sent it (sent on unedited)
    received_at TEXT NOT NULL,                  -- when the update that carried it was applied here (UTC)
    sent_at TEXT,                               -- when the card system acknowledged it (NULL: held)
    checked_at TEXT,                            -- the last 突合 with national
    result TEXT NOT NULL DEFAULT '',            -- its outcome: '' not checked yet, 'matched', else why it is held
    checks INTEGER NOT NULL DEFAULT 0,          -- 突合 made so far
    next_check REAL NOT NULL DEFAULT 0          -- (time.time()) not checked again before this
);
CREATE INDEX IF NOT EXISTS delivery_file_held ON delivery_file(sent_at, next_check);
"""
# The 4情報 (氏名, 住所, 生年月日, 性別) and the 個人番号 of a 送付先情報, each the same item of national's 本人確認情報.
MATCH_ITEMS = ("name_kanji", "address", "birth_date", "sex", "individual_number")
MATCHED = "matched"
NOT_AT_NATIONAL = "not yet at national"  # (national learns of a new person a moment after the CS)
SEND_BATCH = 500  # 送付先情報 checked and sent in one go
FIRST_CHECK = 0.05  # seconds after it is held before the first 突合: national learns of a new person about then
RETRY_FIRST = 0.2  # seconds before the second 突合 of a held one; doubled each time, up to RETRY_MOST
RETRY_MOST = 60.0
IDLE_SECONDS = 1.0  # the sender looks for due ones at least this often
AUDIT_UNKNOWN_AFTER = 5  # 突合 that found the person not yet at national before that is audited (~6 s: not a lag)


def mismatches(delivery: records_pb2.DeliveryInfo, national: records_pb2.IdentityInfo | None,
               municipality: str) -> str:
    """Why a 送付先情報 may not be sent as it stands ('' when it may): the 4情報 and the 個人番号 must be those national
    holds now, of a current resident of this municipality."""
    if national is None:
        return NOT_AT_NATIONAL
    if national.record_status_flag != 0 or national.municipality_code != municipality:
        return "no longer a current resident at national"
    differ = [n for n in MATCH_ITEMS if getattr(delivery, n) != getattr(national, n)]
    return f"differs from national in {', '.join(differ)}" if differ else ""


REFRESHED = ("name_kanji", "address")  # items a later 異動 (転居, 職権修正 of the name) changes: taken from national


def refreshed(delivery: records_pb2.DeliveryInfo, national: records_pb2.IdentityInfo | None,
              municipality: str) -> records_pb2.DeliveryInfo | None:
    """The 送付先情報 brought up to national's 本人確認情報 when it differs only in what a later 異動 changes (a
    family that moved within the city before the 通知書 went out is sent it at the new address); None otherwise."""
    if national is None or national.record_status_flag != 0 or national.municipality_code != municipality:
        return None
    differ = [n for n in MATCH_ITEMS if getattr(delivery, n) != getattr(national, n)]
    if not differ or not set(differ) <= set(REFRESHED):
        return None
    fresh = records_pb2.DeliveryInfo()
    fresh.CopyFrom(delivery)
    fresh.name_kanji, fresh.address = national.name_kanji, national.address
    fresh.delivery_name_kanji = national.name_kanji
    fresh.delivery_address_kanji = national.address
    fill_delivery_characters(fresh)  # (the lengths, 外字 and 代替文字 of the new name and address)
    return fresh


class DeliveryFile:
    """The 送付先情報ファイル (parts.DeliveryFile): held in the update's transaction, 突合, sent, purged."""

    def __init__(self, runtime, peers: parts.Peers):
        self._rt = runtime
        self._municipality = runtime.node.municipality
        self._peers = peers
        self._wake = asyncio.Event()
        runtime.background(self._send_loop)

    # -- written with the update ----------------------------------------------------------------------------------
    def hold(self, db: sqlite3.Connection, delivery: records_pb2.DeliveryInfo) -> None:
        """Keep a 送付先情報 in the open transaction of the update that carried it (sent later by the sender)."""
        db.execute("INSERT INTO delivery_file(resident_code, info, received_at, next_check) VALUES (?,?,?,?) "
                   "ON CONFLICT(resident_code) DO UPDATE SET info=excluded.info, received_at=excluded.received_at, "
                   "sent_at=NULL, checked_at=NULL, result='', checks=0, next_check=excluded.next_check",
                   (delivery.resident_code, delivery.SerializeToString(), clock.stamp(), time.time() + FIRST_CHECK))

    def wake(self) -> None:
        """Tell the sender that something was held (after the commit)."""
        self._wake.set()

    # -- the sender -----------------------------------------------------------------------------------------------
    async def _send_loop(self) -> None:
        self._take_over_outbox()
        while True:
            try:
                more = await self.send_due()
            except Exception:  # (a bug must not stop the sending for good; it is logged and tried again)
                log.exception("送付先情報: the sender failed; trying again")
                more = False
            if more:
                continue
            self._wake.clear()
            due = self._rt.store.scalar("SELECT MIN(next_check) FROM delivery_file WHERE sent_at IS NULL")
            wait = IDLE_SECONDS if due is None else min(IDLE_SECONDS, max(0.0, due - time.time()))
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except asyncio.TimeoutError:
                pass

    async def send_due(self) -> bool:
        """One round: 突合 of the held 送付先情報 that are due, the matching ones sent and marked sent; whether more
        are due at once."""
        now = time.time()
        rows = self._rt.store.db.execute(
            "SELECT resident_code, info, checks, result FROM delivery_file WHERE sent_at IS NULL AND next_check <= ? "
            "ORDER BY received_at LIMIT ?", (now, SEND_BATCH)).fetchall()
        if not rows:
            return False
        try:
            found = await self._peers.national.GetIdentities(
                common_pb2.ResidentKeys(resident_codes=[r[0] for r in rows]), timeout=self._rt.peer_timeout)
        except grpc.aio.AioRpcError as exc:
            log.warning("送付先情報: 突合 not possible now, national did not answer (%s); %d held", exc.code().name,
                        len(rows))
            self._postpone(rows, f"national unreachable ({exc.code().name})", audit=False)
            return False
        national = {i.resident_code: i for i in found.items}
        matched, held = [], []
        for code, blob, checks, result in rows:
            delivery = records_pb2.DeliveryInfo.FromString(blob)
            why = mismatches(delivery, national.get(code), self._municipality)
            fresh = refreshed(delivery, national.get(code), self._municipality) if why else None
            if fresh is not None:  # a later 異動 of the person: sent with the 4情報 national holds now
                why, delivery = "", fresh
            (held if why else matched).append((code, blob, checks, result, why, delivery))
        if held:
            self._postpone([(c, b, n, r) for c, b, n, r, _, _ in held], None, reasons={c: w for c, _, _, _, w, _ in held})
        if matched:
            await self._send([(c, b, n, d) for c, b, n, _, _, d in matched])
        return len(rows) == SEND_BATCH

    async def _send(self, rows) -> None:
        """Send matched 送付先情報 as they are; marked sent once the card system acknowledges them."""
        batch = card_pb2.DeliveryBatch(items=[d for _, _, _, d in rows])
        try:
            await self._peers.card.SubmitDeliveryInfos(batch, timeout=self._rt.peer_timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in PERMANENT and len(rows) > 1:  # which of them does it refuse? each alone
                for row in rows:
                    await self._send([row])
                return
            reason = f"card system refused or did not answer ({exc.code().name})"
            log.warning("送付先情報: %d not delivered: %s %s", len(rows), exc.code().name, exc.details())
            self._postpone([(c, b, n, MATCHED) for c, b, n, _ in rows], reason)
            return
        stamp = clock.stamp()
        with self._rt.store.transaction() as db:
            # (only the very 送付先情報 that was sent: a newer one held meanwhile waits for its own 突合)
            db.executemany("UPDATE delivery_file SET info=?, sent_at=?, checked_at=?, result=?, checks=checks+1 "
                           "WHERE resident_code=? AND info=? AND sent_at IS NULL",
                           [(d.SerializeToString(), stamp, stamp, MATCHED, code, blob) for code, blob, _, d in rows])
        for code, _, _, _ in rows:
            self._rt.audit.append(caller=self._rt.node.identity, method="cs/送付先情報送付", status="OK", subject=code)

    def _postpone(self, rows, reason: str | None, reasons: dict | None = None, audit: bool = True) -> None:
        """Keep these held with why, to be checked again later (sooner the first times: national is learning)."""
        now, stamp = time.time(), clock.stamp()
        updates = []
        for code, blob, checks, before in rows:
            why = reason or reasons[code]
            updates.append((stamp, why, now + min(RETRY_FIRST * 2 ** checks, RETRY_MOST), code, blob))
            # Audited when the outcome changes, not at every retry; a person national does not know yet only once
            # that lasts (a new person is unknown there for a moment: the prefecture's outbox is on its way).
            if audit and (why != before if why != NOT_AT_NATIONAL else checks + 1 == AUDIT_UNKNOWN_AFTER):
                self._rt.audit.append(caller=self._rt.node.identity, method="cs/送付先情報突合", status="HELD",
                                      subject=f"{code}: {why}"[:200])
        with self._rt.store.transaction() as db:
            db.executemany("UPDATE delivery_file SET checked_at=?, result=?, checks=checks+1, next_check=? "
                           "WHERE resident_code=? AND info=? AND sent_at IS NULL", updates)

    def _take_over_outbox(self) -> None:
        """送付先情報 an earlier version of the CS queued in its outbox for the card system become held here (once)."""
        db = self._rt.store.db
        if not db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='outbox'").fetchone():
            return
        with self._rt.store.transaction() as tx:
            queued = tx.execute("SELECT payload FROM outbox WHERE target='card' ORDER BY id").fetchall()
            for (payload,) in queued:
                self.hold(tx, records_pb2.DeliveryInfo.FromString(payload))
            tx.execute("DELETE FROM outbox WHERE target='card'")
        if queued:
            log.info("送付先情報: %d queued by an earlier version taken into the 送付先情報ファイル", len(queued))

    # -- what is kept, and the purge ------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """送付先情報 in the file: held (by their last outcome) and sent."""
        found = {"sent": self._rt.store.scalar("SELECT COUNT(*) FROM delivery_file WHERE sent_at IS NOT NULL",
                                               default=0)}
        for result, count in self._rt.store.db.execute(
                "SELECT result, COUNT(*) FROM delivery_file WHERE sent_at IS NULL GROUP BY result"):
            found[f"held: {result or 'not checked yet'}"] = count
        return found

    def purge_expired(self, db, today: dt.date | None = None) -> int:
        """Delete, in the caller's transaction, every 送付先情報 received before the retention (whole days, UTC, as at
        the card system); one never sent is audited as expired. How many."""
        today = today or clock.now().date()
        kept = dt.timedelta(days=settings.current().delivery_retention_days)
        cutoff = dt.datetime.combine(today - kept, dt.time(), dt.timezone.utc).isoformat()
        for code, result in db.execute("SELECT resident_code, result FROM delivery_file WHERE received_at < ? AND "
                                       "sent_at IS NULL", (cutoff,)).fetchall():
            self._rt.audit.append(caller=self._rt.node.identity, method="cs/送付先情報消去", status="EXPIRED",
                                  subject=f"{code}: never sent ({result or 'not checked'})"[:200])
        return db.execute("DELETE FROM delivery_file WHERE received_at < ?", (cutoff,)).rowcount
