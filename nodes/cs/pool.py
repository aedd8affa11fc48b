"""住民票コード: the pool national issued, reservations per request, offers for a 住民票コード変更, 個人番号 relayed."""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict

import grpc

from nodes import audit, rules, settings
from nodes.cs import parts
from nodes.cs.checks import ISSUED_KEPT, LOOKS_AT_ONCE, NEW_NUMBER_REASONS, RESERVATION_SECONDS
from nodes.reasons import common as C, cs as R
from protos import common_pb2, cs_pb2, identity_pb2, national_pb2

log = logging.getLogger("nodes.cs")  # one logger name for the whole node


class CodePool:
    """Numbers: the 住民票コード pool and its refill, new people's 個人番号, code change offers (parts.Pool)."""

    def __init__(self, runtime, peers: parts.Peers, register: parts.Register):
        self._rt = runtime
        self._municipality = runtime.node.municipality
        self._peers = peers
        self._register = register
        self._refill: asyncio.Task | None = None
        # 住民票コード → 個人番号 as national last answered (bounded). An OrderedDict: popping a plain dict's first
        # key again and again makes each next(iter()) walk the holes left before it (12% of the CS's CPU in a load).
        self._issued: OrderedDict[str, str] = OrderedDict()
        self._rng = random.SystemRandom()

    async def draw(self, request):
        """住民票コード drawn at random from this municipality's pool and reserved for one request (the same
        reservation draws the same codes again); refilled from national when low."""
        if not 1 <= request.count <= 1000:
            raise R.POOL_DRAW_SIZE("pool rule: draw 1..1000 codes at a time")
        rules.check_text(request.reservation, "reservation")
        reservation = request.reservation or f"unreserved:{self._rng.getrandbits(64):016x}"
        kept = [r[0] for r in self._rt.store.db.execute(
            "SELECT resident_code FROM code_reservations WHERE reservation=? ORDER BY resident_code", (reservation,))]
        if len(kept) >= request.count:  # a retry of the same request: the same codes
            audit.set_subject(",".join(kept[:request.count]))
            return await self._numbered(request, cs_pb2.ResidentCodes(resident_codes=kept[:request.count]))
        wanted = request.count - len(kept)
        limits = settings.current()
        if self._available() < wanted:
            await self._refill_pool(max(limits.pool_refill, wanted))
        codes: list[str] = []
        with self._rt.store.transaction() as db:
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
                raise R.POOL_EMPTY("pool rule: the 住民票コード pool is empty")
            db.executemany("INSERT INTO code_reservations VALUES (?,?,?)", [(c, reservation, time.time()) for c in codes])
        codes = kept + codes
        audit.set_subject(",".join(codes))
        left = self._available()
        if left < limits.pool_low:
            log.warning("ALERT 住民票コード pool of %s is low: %d left (threshold %d)", self._municipality, left,
                        limits.pool_low)
            if self._refill is None or self._refill.done():
                self._refill = asyncio.create_task(self._refill_pool(limits.pool_refill))
        return await self._numbered(request, cs_pb2.ResidentCodes(resident_codes=codes))

    async def _numbered(self, request, drawn):
        """Codes drawn, with national's 個人番号 for each when the draw asks for them: a 出生 or 国外転入 makes one call
        for both instead of two (the same code gives the same number again: a retry is answered the same)."""
        if request.numbered:
            numbers = await self.assign_numbers(cs_pb2.ResidentCodes(resident_codes=drawn.resident_codes))
            drawn.numbers.extend(numbers.assignments)
        return drawn

    async def release(self, request):
        """Codes reserved for a request that was refused or abandoned go back to the pool."""
        audit.set_subject(request.reservation)
        with self._rt.store.transaction() as db:
            released = self._release(db, "reservation=?", (request.reservation,))
        return common_pb2.UpdateAck(accepted=True, applied=released)

    def release_stale(self, db) -> int:
        """Codes reserved and not used for RESERVATION_SECONDS go back to the pool; how many."""
        return self._release(db, "reserved_at < ?", (time.time() - RESERVATION_SECONDS,))

    def use_reserved(self, db, info) -> None:
        """A new person's 住民票コード must be one this CS reserved for this very request; it is used up."""
        reservation = info.request_control_number.rsplit(":", 1)[0]
        found = db.execute("DELETE FROM code_reservations WHERE resident_code=? AND reservation=?",
                           (info.resident_code, reservation)).rowcount
        if not found:
            raise R.POOL_CODE_RESERVED(f"住民票コード rule: {info.resident_code} was not drawn from the pool of "
                                       f"{self._municipality} for this request")

    def _release(self, db, where: str, params: tuple) -> int:
        codes = db.execute(f"SELECT resident_code FROM code_reservations WHERE {where}", params).fetchall()
        db.executemany("INSERT OR IGNORE INTO code_pool(resident_code) VALUES (?)", codes)
        db.execute(f"DELETE FROM code_reservations WHERE {where}", params)
        return len(codes)

    def _available(self) -> int:
        return self._rt.store.scalar("SELECT COUNT(*) FROM code_pool", default=0)

    async def _refill_pool(self, count: int) -> None:
        try:
            reply = await self._peers.national.IssueResidentCodePool(
                national_pb2.PoolRequest(municipality_code=self._municipality, count=count), timeout=self._rt.peer_timeout)
        except grpc.aio.AioRpcError as exc:
            log.error("住民票コード pool refill failed: %s %s", exc.code().name, exc.details())
            if self._available() == 0:
                raise C.PEER_UNAVAILABLE(f"pool rule: the pool is empty and national did not "
                                         f"answer ({exc.code().name})") from None
            return
        with self._rt.store.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO code_pool VALUES (?)", [(c,) for c in reply.resident_codes])
        log.info("住民票コード pool refilled with %d codes", len(reply.resident_codes))

    async def status(self, request):
        """How many codes are left, and whether that is below the alert threshold."""
        left = self._available()
        low = settings.current().pool_low
        return cs_pb2.PoolStatus(available=left, low_watermark=low, low=left < low)

    async def assign_numbers(self, request):
        """個人番号 for new residents, generated by national (the CS relays, and remembers national's answer for
        the update that follows)."""
        audit.set_batch_subject(request.resident_codes)
        reply = await self._peers.national_call(self._peers.national.AssignIndividualNumbers, request)
        self._remember_numbers({a.resident_code: a.individual_number for a in reply.assignments})
        return reply

    def _remember_numbers(self, numbers: dict[str, str]) -> None:
        """Keep what national answered, bounded (the oldest forgotten first: national is asked again)."""
        self._issued.update(numbers)
        while len(self._issued) > ISSUED_KEPT:
            self._issued.popitem(last=False)

    async def check_new_numbers(self, updates) -> None:
        """National alone issues 個人番号: every new person's number must be the one national holds for the
        住民票コード (a number it did not issue, or another person's, is refused, never stored)."""
        wanted = {u.info.resident_code: u.info.individual_number for u in updates
                  if u.migration or u.info.change_reason in NEW_NUMBER_REASONS}
        for code, number in wanted.items():
            if not number:
                raise C.INDIVIDUAL_NUMBER_BY_NATIONAL(f"個人番号 rule: the update of new person {code} carries no 個人番号; "
                                                      "national issues one for every person (AssignIndividualNumbers)")
        # National's answers to kizon's own AssignIndividualNumbers (relayed here a moment ago) settle most; the
        # rest (an update after a restart, or one nobody asked a number for) are looked up without issuing any.
        unknown = [c for c, n in wanted.items() if self._issued.get(c) != n]
        looks = []
        national = self._peers.national
        for start in range(0, len(unknown), LOOKS_AT_ONCE):  # (a batch of 5,000 strangers: not 5,000 calls at once)
            looks += await asyncio.gather(*(self._peers.national_call(national.CheckResidence, identity_pb2.ResidenceQuery(
                resident_code=c, individual_number=wanted[c], municipality_code=self._municipality))
                for c in unknown[start:start + LOOKS_AT_ONCE]))
        for code, residence in zip(unknown, looks):
            if residence.current_in:
                raise C.ONE_CURRENT_RESIDENCE(f"住所 rule (one current residence): {code} is a current resident of "
                                              f"{', '.join(residence.current_in)}")
            if residence.deceased_in:
                raise C.REMOVED_STAY_REMOVED(f"除票 rule (removed people stay removed): {code} was recorded as dead in "
                                             f"{', '.join(residence.deceased_in)}")
            if not residence.number_matches:
                raise C.INDIVIDUAL_NUMBER_BY_NATIONAL(f"個人番号 rule (national alone issues 個人番号): the 個人番号 given "
                                                      f"for {code} is not the one national issued")

    async def offer(self, request):
        """住民票コード変更請求: candidates from national, remembered for the change that follows."""
        audit.set_subject(request.resident_code)
        if self._register.current(self._rt.store.db, request.resident_code) is None:
            raise C.RECORD_NOT_FOUND(f"変更請求: no 本人確認情報 of {request.resident_code} here")
        reply = await self._peers.national_call(self._peers.national.OfferResidentCodes, request)
        with self._rt.store.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO code_offers VALUES (?,?)",
                           [(request.resident_code, c) for c in reply.candidates])
        return reply

    def offered(self, db, resident_code: str, candidate: str) -> bool:
        """Whether candidate is among the codes national offered to resident_code for a 住民票コード変更."""
        return db.execute("SELECT 1 FROM code_offers WHERE resident_code=? AND candidate=?",
                          (resident_code, candidate)).fetchone() is not None

    def use_offers(self, db, resident_code: str) -> None:
        """The 住民票コード変更 is made: the codes offered to resident_code are forgotten."""
        db.execute("DELETE FROM code_offers WHERE resident_code=?", (resident_code,))
