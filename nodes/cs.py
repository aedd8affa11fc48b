"""市町村コミュニケーションサーバ (市町村CS): the municipality's gateway into Juki-net.

Keeps the 本人確認情報ファイル and checks every update from kizon before it acknowledges it
(PIA Ⅲ(2)5), numbers it (更新順番号) and sends it from a durable outbox to the prefecture;
keeps the 住民票コード pool national issued; passes 転出証明書情報 and 転入通知 to other CSs;
answers 本人確認情報検索 and runs the 整合性確認 against the prefecture and national.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import random
import time

import grpc

from nodes import audit, identityfile, rules
from nodes.clock import office_today
from nodes.numbers import individual_number_valid
from nodes.outbox import Target
from nodes.runtime import current_call
from nodes.store import next_counter, rows_in
from protos import (card_pb2, card_pb2_grpc, common_pb2, cs_pb2, cs_pb2_grpc, identity_pb2, national_pb2,
                    national_pb2_grpc, prefecture_pb2_grpc, records_pb2)

log = logging.getLogger(__name__)

SERVICE_NAME = cs_pb2.DESCRIPTOR.services_by_name["CommunicationServer"].full_name
POOL_LOW = int(os.environ.get("TESTBED_POOL_LOW", "1000"))  # codes left that raise the low-pool alert
POOL_REFILL = int(os.environ.get("TESTBED_POOL_REFILL", "5000"))  # codes asked of national at a time
MOVE_IN_DAYS = 14  # 特例転入: the 転入届 within 14 days of moving in …
MOVE_OUT_DAYS = 30  # … and within 30 days of the planned move-out date (PIA Ⅰ2 システム2 ③)
PURGE_INTERVAL = 3600.0  # seconds between runs of the 転出証明書情報 purge

# Items a 転居 may change (PIA Ⅲ(2)5) besides the items that describe the change itself.
ADDRESS_ITEMS = {"oaza_aza_code", "postal_code", "address", "address_gaiji_count"}
CHANGE_ITEMS = {"change_reason", "change_date", "change_reason_detail", "notification_date", "address_since",
                "request_control_number", "operator_id", "terminal_id", "update_sequence",
                "recovery_update_sequence", "timestamp",
                # what a 住民票コード変更 recorded: it describes that change, not the person's address
                "former_resident_code", "resident_code_use_date"}
NEW_PERSON_REASONS = {"出生", "転入", "国外転入", "移行"}
POOL_REASONS = {"出生", "国外転入"}  # new people whose 住民票コード must come from this CS's pool
RESERVATION_SECONDS = 3600  # a 住民票コード reserved and not used for this long goes back to the pool
JOURNAL_KEEP = 200_000  # updates kept after delivery, to re-send when the prefecture reports a gap
RESIDENCE_RETRIES = 10  # looks at national (0.3 s apart) for a 転出 that may still be on its way
CURRENT, REMOVED = 0, 1  # レコード状況フラグ

SCHEMA = identityfile.SCHEMA + identityfile.SEARCH_SCHEMA + """
CREATE TABLE IF NOT EXISTS code_pool (resident_code TEXT PRIMARY KEY);   -- 住民票コード not yet used
CREATE TABLE IF NOT EXISTS code_reservations (     -- 住民票コード drawn for a request, not yet used
    resident_code TEXT PRIMARY KEY,
    reservation TEXT NOT NULL,              -- the 依頼管理番号 (kizon's request key) it is kept for
    reserved_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS code_reservations_by ON code_reservations(reservation);
CREATE TABLE IF NOT EXISTS update_journal (             -- updates as sent to the prefecture, by 更新順番号
    update_sequence INTEGER PRIMARY KEY,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS code_offers (
    resident_code TEXT NOT NULL,            -- who asked for a 住民票コード変更
    candidate TEXT NOT NULL,
    PRIMARY KEY (resident_code, candidate)
);
CREATE TABLE IF NOT EXISTS move_out_certificates (      -- 転出証明書情報 received (特例転入 to come)
    resident_code TEXT PRIMARY KEY,
    from_municipality TEXT NOT NULL,
    planned_move_out_date TEXT NOT NULL,
    received_at TEXT NOT NULL,
    certificate BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS move_in_notices (            -- 転入通知 received for former residents
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    resident_code TEXT NOT NULL,
    notice BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (                   -- 依頼管理番号 already applied: retries are answered
    request_control_number TEXT PRIMARY KEY,
    update_sequence INTEGER NOT NULL,
    digest BLOB NOT NULL                                -- of the update's items: a reused number must repeat them
);
"""


def add_to_server(servicer, server) -> None:
    """Register the servicer on a gRPC server."""
    cs_pb2_grpc.add_CommunicationServerServicer_to_server(servicer, server)



def check_items(info: records_pb2.IdentityInfo) -> None:
    """Malformed items of 本人確認情報 (PIA Ⅲ(2)5): numbers, required names, dates, codes, sizes, characters."""
    rules.check_message_text(info)
    rules.require_resident_code(info.resident_code)
    if info.individual_number and not individual_number_valid(info.individual_number):
        raise rules.invalid(f"個人番号 rule: {info.individual_number!r} is not 12 digits with a valid check digit")
    rules.require_text(info.name_kanji, "漢字氏名")
    rules.require_text(info.name_kana, "ふりがな氏名")
    rules.require_date(info.birth_date, "生年月日")
    if info.sex not in ("1", "2", "9"):
        raise rules.invalid(f"性別 rule: {info.sex!r} is not 1 (男), 2 (女) or 9 (不詳)")
    rules.require_text(info.change_reason, "異動事由")
    rules.require_past_date(info.birth_date, "生年月日")
    changed = rules.require_date(info.change_date, "異動年月日")
    if info.change_reason not in ("転出", "移行") and changed > office_today():
        raise rules.invalid(f"異動年月日 rule: {changed} is in the future")
    rules.require_text(info.address, "住所")
    if info.previous_municipality_code:
        rules.require_municipality_code(info.previous_municipality_code, "前住所地市町村コード")


def changed_items(before: records_pb2.IdentityInfo, after: records_pb2.IdentityInfo) -> list[str]:
    """Names of the items that differ between two versions of 本人確認情報."""
    return [f.name for f in after.DESCRIPTOR.fields if getattr(before, f.name) != getattr(after, f.name)]


def check_special_move_in(certificate, move_in_date: str) -> None:
    """特例転入 windows, measured to the office's today: within 14 days of moving in and 30 days of the
    planned move-out date (the 届出 is today, whatever a request says)."""
    notified = office_today()
    moved_in = rules.require_date(move_in_date, "転入年月日")
    planned = rules.require_date(certificate.planned_move_out_date, "転出予定年月日")
    if not certificate.card_holder:
        raise rules.precondition("特例転入 rule: only a 個人番号カード holder may move in without a 転出証明書")
    if notified > moved_in + dt.timedelta(days=MOVE_IN_DAYS):
        raise rules.precondition(f"特例転入 rule: the 転入届 came {(notified - moved_in).days} days after moving in "
                                 f"(at most {MOVE_IN_DAYS})")
    if notified > planned + dt.timedelta(days=MOVE_OUT_DAYS):
        raise rules.precondition(f"特例転入 rule: the 転入届 came {(notified - planned).days} days after the planned "
                                 f"move-out date (at most {MOVE_OUT_DAYS})")


class Servicer(cs_pb2_grpc.CommunicationServerServicer):
    """The CS: checks, numbers and forwards 本人確認情報; pools, certificates, notices, search."""

    def __init__(self, runtime):
        self.rt = runtime
        self.municipality = runtime.node.municipality
        prefecture_code = runtime.topology.municipality(self.municipality).prefecture
        self.prefecture = runtime.stub(prefecture_pb2_grpc.PrefectureServerStub, "prefecture", prefecture=prefecture_code)
        self.national = runtime.stub(national_pb2_grpc.NationalServerStub, "national")
        card = self.card = runtime.stub(card_pb2_grpc.CardManagementStub, "card")
        targets = {
            "card-lifecycle": Target(card.ChangeCard, card_pb2.CardRequest, None),
            "prefecture": Target(self.prefecture.ApplyIdentityUpdates, identity_pb2.IdentityUpdateBatch, "updates",
                                 {"municipality_code": self.municipality}, mark_recovery=_mark_recovery,
                                 repair=self._resend_gap),
            "card": Target(card.SubmitDeliveryInfos, card_pb2.DeliveryBatch),
        }
        for other in runtime.topology.municipalities:
            if other.code != self.municipality:
                peer = runtime.stub(cs_pb2_grpc.CommunicationServerStub, "cs", other.code)
                targets[f"certificate:{other.code}"] = Target(peer.ReceiveMoveOutCertificate, identity_pb2.MoveOutCertificate, None)
                targets[f"notice:{other.code}"] = Target(peer.ReceiveMoveInNotice, identity_pb2.MoveInNotice, None)
        self.outbox = runtime.use_outbox(targets)
        self._refill: asyncio.Task | None = None
        self._rng = random.SystemRandom()
        runtime.background(self._purge_daily)

    # -- 本人確認情報 -------------------------------------------------------------------------
    async def SubmitIdentityUpdates(self, request, context):
        """本人確認情報の更新 from kizon: checked, numbered, stored and queued, all or nothing."""
        if request.municipality_code != self.municipality:
            raise rules.invalid(f"市町村コード rule: this CS serves {self.municipality}, not {request.municipality_code}")
        if request.updates:
            audit.set_batch_subject(u.info.resident_code for u in request.updates)
        for update in request.updates:
            if update.info.change_reason == "転入" and not update.migration:
                await self._check_one_residence(update.info)
        with self.rt.store.transaction() as db:
            sequence, queued = self._apply(db, request.updates)
        self.outbox.wake(*queued)
        return common_pb2.UpdateAck(accepted=True, update_sequence=sequence, applied=len(request.updates))

    def _apply(self, db, updates) -> tuple[int, set[str]]:
        """Check every update against the file (and the batch before it), then number and queue them."""
        seen: dict[str, records_pb2.IdentityInfo | None] = {}
        fresh = []
        sequence = 0
        # One look at the file for the whole batch: which of these people it holds, and how.
        known = identityfile.statuses(db, self.municipality, {u.info.former_resident_code or u.info.resident_code for u in updates})
        for update in updates:
            info = update.info
            if update.municipality_code != self.municipality or info.municipality_code != self.municipality:
                raise rules.invalid(f"市町村コード rule: this CS serves {self.municipality}")
            check_items(info)
            request_id = info.request_control_number
            if request_id:
                done = db.execute("SELECT update_sequence, digest FROM requests WHERE request_control_number=?",
                                  (request_id,)).fetchone()
                if done:  # a retry of an update applied before: answer it, apply nothing
                    if done[1] != identityfile.digest(info):
                        raise rules.precondition(f"依頼管理番号 rule: {request_id} was used for a different update")
                    sequence = max(sequence, done[0])
                    continue
            code = info.former_resident_code if info.change_reason == "住民票コード変更" else info.resident_code
            if code in seen:
                before = seen[code]
            elif (update.migration or info.change_reason in NEW_PERSON_REASONS) and code not in known:
                before = None  # the common case of a load: a new person, nothing to read
            else:
                before = self._current(db, code)
            self._check_logic(db, update, before)
            if info.change_reason in POOL_REASONS and not update.migration:
                self._use_reserved_code(db, info)
            seen[code] = info
            if info.change_reason == "住民票コード変更":
                seen[info.resident_code] = info
            fresh.append(update)
        if not fresh:
            return sequence, set()
        queued = {"prefecture"}
        sequence = next_counter(db, "update_sequence", len(fresh)) - len(fresh)
        stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        requests, rows = [], []
        for update in fresh:
            info = update.info
            sequence += 1
            info.update_sequence, info.timestamp = sequence, stamp
            rows.append(identityfile.row(info))  # serialized once: for the file, its digest and the outbox
            if info.request_control_number:
                requests.append((info.request_control_number, sequence, rows[-1][-2]))
            self._side_effects(db, update, queued)
        db.executemany("INSERT OR IGNORE INTO requests VALUES (?,?,?)", requests)
        identityfile.store_identities(db, [u.info for u in fresh], rows)
        identityfile.set_last_sequence(db, self.municipality, fresh[-1].info.update_sequence)
        payloads = [identityfile.update_bytes(self.municipality, r[-1]) for r in rows]
        self.outbox.put_payloads(db, "prefecture", payloads)
        # Kept after delivery too: a prefecture that lost updates gets them again from here.
        db.executemany("INSERT INTO update_journal VALUES (?,?)",
                       [(u.info.update_sequence, p) for u, p in zip(fresh, payloads)])
        return fresh[-1].info.update_sequence, queued

    def _use_reserved_code(self, db, info) -> None:
        """A new person's 住民票コード must be one this CS reserved for this very request; it is used up."""
        reservation = info.request_control_number.rsplit(":", 1)[0]
        found = db.execute("DELETE FROM code_reservations WHERE resident_code=? AND reservation=?",
                           (info.resident_code, reservation)).rowcount
        if not found:
            raise rules.precondition(f"住民票コード rule: {info.resident_code} was not drawn from the pool of "
                                     f"{self.municipality} for this request")

    async def _check_one_residence(self, info) -> None:
        """One person, one current residence: a 転入 only of someone national knows as current nowhere else
        (a 転出 there, on its way to national, is waited for a moment)."""
        query = identity_pb2.ResidenceQuery(resident_code=info.resident_code, individual_number=info.individual_number,
                                            municipality_code=self.municipality)
        for attempt in range(RESIDENCE_RETRIES):
            residence = await self.rt.call_peer(self.national.CheckResidence, query, "全国サーバ",
                                                unreachable="the one-residence rule cannot be checked; nothing was recorded")
            if not residence.current_in:
                break
            await asyncio.sleep(0.3)
        else:
            raise rules.precondition(f"住所 rule (one current residence): {info.resident_code} is a current resident of "
                                     f"{', '.join(residence.current_in)}; a 転入 needs the 転出 there first")
        if residence.known and info.individual_number and residence.individual_number != info.individual_number:
            raise rules.invalid(f"個人番号 rule: {info.resident_code} has another 個人番号 at national")

    async def _resend_gap(self, refusal) -> bool:
        """The prefecture lacks updates it was sent before (a gap): re-send them from the journal, each with
        its 異常時更新順番号, so that the blocked batch can follow."""
        due = dict(refusal.trailing_metadata() or ()).get(identityfile.SEQUENCE_DUE_KEY)
        if not due or not due.isdigit():
            return False
        rows = self.rt.store.db.execute("SELECT update_sequence, payload FROM update_journal WHERE update_sequence >= ? "
                                        "ORDER BY update_sequence LIMIT 1000", (int(due),)).fetchall()
        if not rows or rows[0][0] != int(due):
            log.error("更新順番号 gap at the prefecture from %s: no longer in the journal, a full resend is needed", due)
            return False
        batch = identity_pb2.IdentityUpdateBatch(municipality_code=self.municipality)
        with self.rt.store.transaction() as db:
            for _, payload in rows:
                update = batch.updates.add()
                update.MergeFromString(payload)
                _mark_recovery(update, next_counter(db, "recovery_sequence"))
        try:
            await self.prefecture.ApplyIdentityUpdates(batch, timeout=self.rt.peer_timeout)
        except grpc.aio.AioRpcError as exc:
            log.error("re-sending %d updates from %s failed: %s %s", len(rows), due, exc.code().name, exc.details())
            return False
        log.warning("更新順番号 gap at the prefecture repaired: %d updates from %s re-sent", len(rows), due)
        return True

    def _card_housekeeping(self, db, action, resident_code: str, queued: set[str], former: str = "", reason: str = "") -> None:
        """Queue a step the card system must take because of this update (in the same transaction)."""
        self.outbox.put(db, "card-lifecycle", card_pb2.CardRequest(
            action=action, resident_code=resident_code, municipality_code=self.municipality, reason=reason,
            former_resident_code=former))
        queued.add("card-lifecycle")

    def _current(self, db, resident_code: str) -> records_pb2.IdentityInfo | None:
        found = db.execute("SELECT info FROM identity WHERE resident_code=? AND municipality_code=?",
                           (resident_code, self.municipality)).fetchone()
        return records_pb2.IdentityInfo.FromString(found[0]) if found else None

    def _check_logic(self, db, update, before) -> None:
        """The CS's logic checks of an update against what the file holds (PIA Ⅲ(2)5)."""
        info = update.info
        reason = info.change_reason
        if reason in NEW_PERSON_REASONS or update.migration:
            if before is not None and before.record_status_flag == CURRENT:
                raise rules.precondition(f"{reason} rule (PIA Ⅲ(2)5): 住民票コード {info.resident_code} is already "
                                         f"a current resident of {self.municipality}")
            if update.special_move_in:
                found = db.execute("SELECT certificate FROM move_out_certificates WHERE resident_code=?",
                                   (info.resident_code,)).fetchone()
                if found is None:
                    raise rules.precondition(f"特例転入 rule: no 転出証明書情報 has arrived for {info.resident_code}")
                check_special_move_in(identity_pb2.MoveOutCertificate.FromString(found[0]), info.change_date)
            return
        if before is None:
            raise rules.precondition(f"{reason} rule: there is no 本人確認情報 of {info.former_resident_code or info.resident_code} "
                                     f"in {self.municipality} to change")
        if before.record_status_flag != CURRENT and reason != "職権修正":
            raise rules.precondition(f"{reason} rule: {before.resident_code} is no longer a resident (除票)")
        if reason == "転居":
            extra = [n for n in changed_items(before, info) if n not in ADDRESS_ITEMS | CHANGE_ITEMS]
            if extra:
                raise rules.precondition(f"転居 rule (PIA Ⅲ(2)5): only the address may change, but {', '.join(extra)} "
                                         "changed too")
        if reason == "住民票コード変更":
            offered = db.execute("SELECT 1 FROM code_offers WHERE resident_code=? AND candidate=?",
                                 (info.former_resident_code, info.resident_code)).fetchone()
            if offered is None:
                raise rules.precondition(f"住民票コード変更 rule: {info.resident_code} is not among the codes offered "
                                         f"to {info.former_resident_code}")

    def _side_effects(self, db, update, queued: set[str]) -> None:
        """What an update brings besides itself: 送付先情報, 転出証明書情報, 転入通知, a used offer."""
        info = update.info
        if update.HasField("delivery"):
            self.outbox.put(db, "card", update.delivery)
            queued.add("card")
        if update.HasField("move_out_certificate"):
            target = f"certificate:{update.move_out_certificate.destination_municipality_code}"
            if target in self.outbox.targets:
                self.outbox.put(db, target, update.move_out_certificate)
                queued.add(target)
        if update.HasField("move_in_notice"):
            target = f"notice:{update.move_in_notice.to_municipality_code}"
            if target in self.outbox.targets:  # a former municipality outside this network hears nothing
                self.outbox.put(db, target, update.move_in_notice)
                queued.add(target)
        if update.special_move_in:
            db.execute("DELETE FROM move_out_certificates WHERE resident_code=?", (info.resident_code,))
        if info.change_reason == "死亡":  # the card of someone who died is revoked
            self._card_housekeeping(db, card_pb2.REVOKE, info.resident_code, queued, reason="死亡")
        if info.change_reason == "住民票コード変更":
            db.execute("DELETE FROM code_offers WHERE resident_code=?", (info.former_resident_code,))
            self._card_housekeeping(db, card_pb2.RECODE, info.resident_code, queued, info.former_resident_code)
        if info.change_reason == "転入":  # a card the mover holds follows them here
            self._card_housekeeping(db, card_pb2.TRANSFER, info.resident_code, queued)

    async def GetIdentity(self, request, context):
        """本人確認情報の照会 for this municipality's 統合端末 and kizon."""
        audit.set_subject(request.resident_code)
        info = identityfile.read_identity(self.rt.store, request.resident_code)
        return self._shown(info)

    async def SearchIdentity(self, request, context):
        """本人確認情報検索 under the two-item rule; nationwide asks national for other municipalities."""
        identityfile.search_kind(request)
        audit.set_subject(request.resident_code or (request.individual_number and "個人番号") or "4情報")
        if request.nationwide:
            result = await self._national_call(self.national.SearchIdentity, request)
            result.source = "national"
        else:
            result = identityfile.search(self.rt.store, request, self.municipality)
            result.source = "cs"
        for info in result.matches:
            self._shown(info)
        return result

    def _shown(self, info):
        """The 本人確認情報 as this caller may see it: 個人番号 masked without the permission."""
        if not self.rt.may_see_number(current_call()) and info.individual_number:
            info.individual_number = "*" * 12
        return info

    # -- numbers --------------------------------------------------------------------------------
    async def DrawResidentCodes(self, request, context):
        """住民票コード drawn at random from this municipality's pool and reserved for one request (the same
        reservation draws the same codes again); refilled from national when low."""
        if not 1 <= request.count <= 1000:
            raise rules.invalid("pool rule: draw 1..1000 codes at a time")
        rules.check_text(request.reservation, "reservation")
        reservation = request.reservation or f"unreserved:{self._rng.getrandbits(64):016x}"
        kept = [r[0] for r in self.rt.store.db.execute(
            "SELECT resident_code FROM code_reservations WHERE reservation=? ORDER BY resident_code", (reservation,))]
        if len(kept) >= request.count:  # a retry of the same request: the same codes
            audit.set_subject(",".join(kept[:request.count]))
            return cs_pb2.ResidentCodes(resident_codes=kept[:request.count])
        wanted = request.count - len(kept)
        if self._available() < wanted:
            await self._refill_pool(max(POOL_REFILL, wanted))
        codes: list[str] = []
        with self.rt.store.transaction() as db:
            bounds = "SELECT (SELECT MIN(rowid) FROM code_pool), (SELECT MAX(rowid) FROM code_pool)"  # two O(log n) looks
            low, high = db.execute(bounds).fetchone()
            while low is not None and len(codes) < wanted:
                # A random position in the pool: O(log n), where ORDER BY random() sorts the whole pool.
                found = db.execute("SELECT rowid, resident_code FROM code_pool WHERE rowid >= ? ORDER BY rowid LIMIT 1",
                                   (self._rng.randint(low, high),)).fetchone()
                db.execute("DELETE FROM code_pool WHERE rowid=?", (found[0],))
                codes.append(found[1])
                low, high = db.execute(bounds).fetchone()
            if len(codes) < wanted:
                raise rules.Violation(grpc.StatusCode.RESOURCE_EXHAUSTED, "pool rule: the 住民票コード pool is empty")
            db.executemany("INSERT INTO code_reservations VALUES (?,?,?)", [(c, reservation, time.time()) for c in codes])
        codes = kept + codes
        audit.set_subject(",".join(codes))
        left = self._available()
        if left < POOL_LOW:
            log.warning("ALERT 住民票コード pool of %s is low: %d left (threshold %d)", self.municipality, left, POOL_LOW)
            if self._refill is None or self._refill.done():
                self._refill = asyncio.create_task(self._refill_pool(POOL_REFILL))
        return cs_pb2.ResidentCodes(resident_codes=codes)

    async def ReleaseResidentCodes(self, request, context):
        """Codes reserved for a request that was refused or abandoned go back to the pool."""
        audit.set_subject(request.reservation)
        with self.rt.store.transaction() as db:
            released = self._release(db, "reservation=?", (request.reservation,))
        return common_pb2.UpdateAck(accepted=True, applied=released)

    def _release(self, db, where: str, params: tuple) -> int:
        codes = db.execute(f"SELECT resident_code FROM code_reservations WHERE {where}", params).fetchall()
        db.executemany("INSERT OR IGNORE INTO code_pool(resident_code) VALUES (?)", codes)
        db.execute(f"DELETE FROM code_reservations WHERE {where}", params)
        return len(codes)

    async def GetRequestStatus(self, request, context):
        """Which 依頼管理番号 this CS has applied, with the 更新順番号 it gave each."""
        audit.set_subject(f"{len(request.request_control_numbers)} requests")
        reply = cs_pb2.RequestStatusReply()
        for number, sequence in rows_in(self.rt.store.db, "SELECT request_control_number, update_sequence FROM requests "
                                        "WHERE request_control_number", request.request_control_numbers):
            reply.applied.add(request_control_number=number, update_sequence=sequence)
        return reply

    async def CheckResidence(self, request, context):
        """One person, one current residence: national's view of a person about to move in here (relayed)."""
        audit.set_subject(request.resident_code)
        rules.require_resident_code(request.resident_code)
        query = identity_pb2.ResidenceQuery()
        query.CopyFrom(request)
        query.municipality_code = self.municipality
        return await self._national_call(self.national.CheckResidence, query)

    async def RegisterDigests(self, request, context):
        """整合性確認 of kizon: digests of the REGISTER_ITEMS of this municipality's 本人確認情報."""
        audit.set_subject(self.municipality)
        for batch in identityfile.register_digest_batches(self.rt.store, self.municipality):
            yield batch

    def _available(self) -> int:
        return self.rt.store.scalar("SELECT COUNT(*) FROM code_pool", default=0)

    async def _refill_pool(self, count: int) -> None:
        try:
            reply = await self.national.IssueResidentCodePool(
                national_pb2.PoolRequest(municipality_code=self.municipality, count=count), timeout=self.rt.peer_timeout)
        except grpc.aio.AioRpcError as exc:
            log.error("住民票コード pool refill failed: %s %s", exc.code().name, exc.details())
            if self._available() == 0:
                raise rules.Violation(grpc.StatusCode.UNAVAILABLE, f"pool rule: the pool is empty and national did not "
                                      f"answer ({exc.code().name})") from None
            return
        with self.rt.store.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO code_pool VALUES (?)", [(c,) for c in reply.resident_codes])
        log.info("住民票コード pool refilled with %d codes", len(reply.resident_codes))

    async def GetPoolStatus(self, request, context):
        """How many codes are left, and whether that is below the alert threshold."""
        left = self._available()
        return cs_pb2.PoolStatus(available=left, low_watermark=POOL_LOW, low=left < POOL_LOW)

    async def AssignIndividualNumbers(self, request, context):
        """個人番号 for new residents, generated by national (the CS relays)."""
        audit.set_batch_subject(request.resident_codes)
        return await self._national_call(self.national.AssignIndividualNumbers, request)

    async def OfferResidentCodes(self, request, context):
        """住民票コード変更請求: candidates from national, remembered for the change that follows."""
        audit.set_subject(request.resident_code)
        if self._current(self.rt.store.db, request.resident_code) is None:
            raise rules.not_found(f"変更請求: no 本人確認情報 of {request.resident_code} here")
        reply = await self._national_call(self.national.OfferResidentCodes, request)
        with self.rt.store.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO code_offers VALUES (?,?)",
                           [(request.resident_code, c) for c in reply.candidates])
        return reply

    async def _national_call(self, method, request):
        return await self.rt.call_peer(method, request, "全国サーバ")

    # -- between municipalities -----------------------------------------------------------------
    async def ReceiveMoveOutCertificate(self, request, context):
        """転出証明書情報 from the former municipality's CS, kept until the 特例転入 or its deadline."""
        sender = current_call().peer.identity.municipality
        audit.set_subject(request.person.resident_code)
        rules.require_resident_code(request.person.resident_code)
        if request.issuing_municipality_code != sender or request.destination_municipality_code != self.municipality:
            raise rules.denied(f"転出証明書情報 rule: {sender} may send only its own certificates, addressed to here")
        rules.require_date(request.planned_move_out_date, "転出予定年月日")
        with self.rt.store.transaction() as db:
            db.execute("INSERT INTO move_out_certificates VALUES (?,?,?,?,?) ON CONFLICT(resident_code) DO UPDATE SET "
                       "from_municipality=excluded.from_municipality, planned_move_out_date=excluded.planned_move_out_date, "
                       "received_at=excluded.received_at, certificate=excluded.certificate",
                       (request.person.resident_code, sender, request.planned_move_out_date,
                        dt.datetime.now(dt.timezone.utc).isoformat(), request.SerializeToString()))
        return common_pb2.UpdateAck(accepted=True)

    async def TakeMoveOutCertificate(self, request, context):
        """特例転入 at kizon: the 転出証明書情報 received for the person, windows and card checked."""
        code = request.person.resident_code
        audit.set_subject(code)
        rules.require_resident_code(code)
        found = self.rt.store.one("SELECT certificate FROM move_out_certificates WHERE resident_code=?", (code,))
        if found is None:
            raise rules.not_found(f"特例転入 rule: no 転出証明書情報 has arrived for {code}")
        certificate = identity_pb2.MoveOutCertificate.FromString(found[0])
        check_special_move_in(certificate, request.move_in_date)
        card = await self._card_call(self.card.GetCardStatus, common_pb2.ResidentKey(resident_code=code))
        # A card the card system knows must be usable; cards from before the testbed are known only to kizon.
        if card.state not in ("none", "issued"):
            raise rules.precondition(f"特例転入 rule: the 個人番号カード is {card.state}")
        return certificate

    # -- cards ----------------------------------------------------------------------------------------
    async def ChangeCard(self, request, context):
        """The card lifecycle for kizon: passed to the card system for this municipality's residents."""
        audit.set_subject(request.resident_code)
        asked = card_pb2.CardRequest()
        asked.CopyFrom(request)
        asked.municipality_code = self.municipality
        return await self._card_call(self.card.ChangeCard, asked)

    async def VerifyByCard(self, request, context):
        """本人確認 with the card: card and PIN checked by the card system, then the 本人確認情報."""
        audit.set_subject(request.card_number)
        card = await self._card_call(self.card.CheckPin, card_pb2.PinCheck(card_number=request.card_number, pin=request.pin))
        audit.set_subject(card.resident_code)
        if card.municipality_code == self.municipality:
            return self._shown(identityfile.read_identity(self.rt.store, card.resident_code))
        return self._shown(await self._national_call(self.national.GetIdentity,
                                                     common_pb2.ResidentKey(resident_code=card.resident_code)))

    async def WideAreaLookup(self, request, context):
        """広域交付 at this municipality: the card proves who asks; their CS gives the 本人確認情報."""
        audit.set_subject(request.card_number)
        card = await self._card_call(self.card.CheckPin, card_pb2.PinCheck(card_number=request.card_number, pin=request.pin))
        if card.municipality_code != request.home_municipality_code:
            raise rules.precondition(f"広域交付 rule: the card holder lives in {card.municipality_code}, "
                                     f"not {request.home_municipality_code}")
        audit.set_subject(card.resident_code)
        home = self.rt.stub(cs_pb2_grpc.CommunicationServerStub, "cs", request.home_municipality_code)
        return await self.rt.call_peer(home.ProvideForWideArea, common_pb2.ResidentKey(resident_code=card.resident_code),
                                       f"市町村CS of {request.home_municipality_code}")

    async def ProvideForWideArea(self, request, context):
        """広域交付 elsewhere: the 本人確認情報 of a current resident of here, for another CS."""
        audit.set_subject(request.resident_code)
        info = identityfile.read_identity(self.rt.store, request.resident_code)
        if info.municipality_code != self.municipality or info.record_status_flag != CURRENT:
            raise rules.precondition(f"広域交付 rule: {request.resident_code} is not a current resident of {self.municipality}")
        return info

    async def _card_call(self, method, request):
        return await self.rt.call_peer(method, request, "個人番号カード管理システム")

    async def ReceiveMoveInNotice(self, request, context):
        """転入通知 from the new municipality's CS about a former resident of here."""
        sender = current_call().peer.identity.municipality
        audit.set_subject(request.resident_code)
        rules.require_resident_code(request.resident_code)
        if request.from_municipality_code != sender or request.to_municipality_code != self.municipality:
            raise rules.denied(f"転入通知 rule: {sender} may send only its own notices, addressed to here")
        here = self._current(self.rt.store.db, request.resident_code)
        if here is None or here.record_status_flag != REMOVED or here.change_reason != "転出":
            raise rules.precondition(f"転入通知 rule: {request.resident_code} has no 転出 here to close")
        with self.rt.store.transaction() as db:
            db.execute("INSERT INTO move_in_notices(resident_code, notice) VALUES (?,?)",
                       (request.resident_code, request.SerializeToString()))
        return common_pb2.UpdateAck(accepted=True)

    async def TakeMoveInNotices(self, request, context):
        """The 転入通知 received so far; those kizon says it has recorded are deleted."""
        with self.rt.store.transaction() as db:
            db.execute("DELETE FROM move_in_notices WHERE id<=?", (request.processed_up_to,))
            rows = db.execute("SELECT id, notice FROM move_in_notices ORDER BY id LIMIT 500").fetchall()
        reply = cs_pb2.MoveInNotices(last_id=rows[-1][0] if rows else request.processed_up_to)
        for _, blob in rows:
            reply.notices.add().MergeFromString(blob)
        audit.set_subject(f"{len(rows)} notices")
        return reply

    async def PurgeExpiredCertificates(self, request, context):
        """The batch that deletes 転出証明書情報 not used in time (PIA Ⅰ2 システム2 ③)."""
        purged = self._purge()
        audit.set_subject(f"{purged} purged")
        return common_pb2.UpdateAck(accepted=True, applied=purged)

    def batches(self) -> dict:
        """Batch jobs this node runs on demand."""
        return {"purge": self._purge}

    def _purge(self, today: dt.date | None = None) -> int:
        cutoff = (today or office_today()) - dt.timedelta(days=MOVE_OUT_DAYS)
        with self.rt.store.transaction() as db:
            self._release(db, "reserved_at < ?", (time.time() - RESERVATION_SECONDS,))
            last = db.execute("SELECT MAX(update_sequence) FROM update_journal").fetchone()[0] or 0
            db.execute("DELETE FROM update_journal WHERE update_sequence <= ?", (last - JOURNAL_KEEP,))
            return db.execute("DELETE FROM move_out_certificates WHERE planned_move_out_date < ?",
                              (cutoff.isoformat(),)).rowcount

    async def _purge_daily(self) -> None:
        while True:
            purged = self._purge()
            if purged:
                log.info("purged %d 転出証明書情報 past their deadline", purged)
            await asyncio.sleep(PURGE_INTERVAL)

    # -- 整合性確認 ------------------------------------------------------------------------------
    async def CheckConsistency(self, request, context):
        """整合性確認: every record that differs between this CS, the prefecture and national."""
        started = time.perf_counter()
        municipality = request.municipality_code or self.municipality
        if municipality != self.municipality:
            raise rules.denied(f"整合性確認 rule: this CS checks only {self.municipality}")
        audit.set_subject(municipality)
        query = common_pb2.ConsistencyRequest(municipality_code=municipality)
        ours = identityfile.collect(identityfile.digest_batches(self.rt.store, municipality))
        try:
            theirs = await asyncio.gather(identityfile.collect_digests(self.prefecture.IdentityDigests(query, timeout=120)),
                                          identityfile.collect_digests(self.national.IdentityDigests(query, timeout=120)))
        except grpc.aio.AioRpcError as exc:
            raise rules.Violation(grpc.StatusCode.UNAVAILABLE, f"整合性確認: a peer did not answer: {exc.details()}") from None
        report = identity_pb2.ConsistencyReport(municipality_code=municipality, records_cs=len(ours),
                                          records_prefecture=len(theirs[0]), records_national=len(theirs[1]))
        for node, stub, digests in (("prefecture", self.prefecture, theirs[0]), ("national", self.national, theirs[1])):
            missing = sorted(c for c in ours if c not in digests)
            extra = sorted(c for c in digests if c not in ours)
            differing = sorted(c for c, d in ours.items() if c in digests and digests[c] != d)
            for code in missing:
                report.differences.add(resident_code=code, node=node, items=["missing"])
            for code in extra:
                report.differences.add(resident_code=code, node=node, items=["extra"])
            if differing:
                await self._item_differences(report, node, stub, differing)
        report.seconds = time.perf_counter() - started
        return report

    async def _item_differences(self, report, node: str, stub, codes: list[str]) -> None:
        """Name the differing items of each record whose digests differ."""
        for start in range(0, len(codes), 1000):
            chunk = codes[start:start + 1000]
            theirs = {i.resident_code: i for i in (await stub.GetIdentities(common_pb2.ResidentKeys(resident_codes=chunk),
                                                                             timeout=60)).items}
            ours = {i.resident_code: i for i in identityfile.read_identities(self.rt.store, self.municipality, chunk).items}
            for code in chunk:
                items = [n for n in changed_items(ours[code], theirs[code]) if n not in identityfile.TRANSPORT_ITEMS]
                report.differences.add(resident_code=code, node=node, items=items)


def _mark_recovery(update, recovery: int) -> None:
    """A re-sent update carries its 異常時更新順番号."""
    update.info.recovery_update_sequence = recovery
