"""The 住基GW's link with 法務省's 在留カード等発行システム (seed: 既存住基 function 7, 住基GW function 2):

- ImmigrationNotices: the 法務省通知 (住基法第30条の50) the CS received, taken by a background job and applied to the
  住民票 職権, in 法務省's order, each once: a notice is a change of kizon's own under the key moj:<m>:<sequence>,
  through the change engine (intent, CS, commit), so a notice applied just before a kill -9 is answered from the
  ledger when it is taken again, never applied twice. A notice about someone who is not a current foreign resident
  here holding the card it names is set aside (logged and audited with the rule) and the notices behind it go on;
- MunicipalityNoticeWriter: the 市町村通知 (入管法第61条の8の2) a change of a foreign resident's 住所, 世帯 or 氏名
  attaches to the update for the CS to number and send to 法務省 (never for a load, nor for a change a 法務省通知
  made: 法務省 knows it already, and telling it back would echo).
"""
from __future__ import annotations

import asyncio
import logging

import grpc

from nodes import guard, rules
from nodes.authn import Peer
from nodes.intents import request_digest
from nodes.kizon.family import apply_once, retry_later
from nodes.kizon.items import CURRENT, REMOVED, mark, next_entry, today_iso
from nodes.kizon.parts import Changes, Gate, Records
from nodes.residence import CARD_NUMBER, DEPARTURE, EXPIRY, KINDS, check_change
from nodes.reasons import moj as R
from protos import moj_pb2

log = logging.getLogger("nodes.kizon")  # one logger name for the whole node

FOREIGN = "外国人住民"  # 住民種別 of a foreign resident (住基法第30条の45)
KEY_PREFIX = "moj:"  # the change engine's key of a change a 法務省通知 made
POLL = 1.0  # seconds between looks for 法務省通知 at the CS
CURSOR = "immigration_cursor"  # counter: the CS's id of the last 法務省通知 taken and handled
APPLIED = "immigration_notice"  # counter: 法務省's number of the last notice applied (or set aside)
METHOD = "kizon/法務省通知"  # how a notice's change is named in the audit and on the call context
# 除票 by 法務省通知 (住基法施行令第12条第3項: 職権消除): the 消除の事由 of each kind
REMOVAL_REASONS = {DEPARTURE: "出国", EXPIRY: "在留期間満了等"}
# 異動事由 after which 法務省 is told (入管法第61条の8の2): the 住居地 (転入 to 職権消除), the 世帯 (世帯分離 to 世帯主変更),
# the 氏名 or any of these corrected (職権修正), and a new 住民票コード (the key its next 法務省通知 will name)
NOTICE_REASONS = frozenset({"転入", "国外転入", "転居", "転出", "国外転出", "死亡", "職権記載", "職権消除",
                            "世帯分離", "世帯合併", "世帯主変更", "職権修正", "住民票コード変更"})
CORRECTED_ITEMS = ("name_kanji", "name_romaji", "address", "household_number", "householder_name", "relationship")


def is_foreign_resident(record) -> bool:
    """Whether a 住民票 is of a foreign resident holding a 在留カード of the layout (the people 法務省 keeps: a number
    of another shape names no card of theirs, and a notice under it would hold up the change at the CS)."""
    return record.resident_type == FOREIGN and bool(CARD_NUMBER.fullmatch(record.residence_card_number))


class MunicipalityNoticeWriter:
    """The 市町村通知 of a change: for a foreign resident's 住所, 世帯 or 氏名, to 法務省 through the CS."""

    def __init__(self, runtime, municipality: str, register: Records):
        self.rt = runtime
        self.municipality = municipality
        self.register = register
        self.enabled = any(n.kind == "moj" for n in runtime.topology.nodes)  # (no 法務省 here: nobody to tell)

    def notice(self, record, key: str) -> moj_pb2.MunicipalityNotice | None:
        """The 市町村通知 a history entry calls for, or None (not a foreign resident's, not such a change, or a change
        a 法務省通知 made)."""
        if not self.enabled or key.startswith(KEY_PREFIX) or not is_foreign_resident(record) \
                or record.change_reason not in NOTICE_REASONS:
            return None
        if record.change_reason == "職権修正" and not self._corrected(record):
            return None  # (a correction of items 法務省 does not hold: 選挙, 国保, ...)
        removed = record.status == REMOVED
        return moj_pb2.MunicipalityNotice(
            municipality_code=self.municipality, resident_code=record.resident_code,
            residence_card_number=record.residence_card_number, reason=record.change_reason,
            address=record.move_out_destination_planned if removed else record.address,
            household_number=record.household_number, householder_name=record.householder_name,
            relationship=record.relationship, name=record.name_romaji or record.name_kanji,
            event_date=record.change_date)

    def _corrected(self, record) -> bool:
        """Whether a 職権修正 changes an item 法務省 holds (氏名, 住居地, 世帯)."""
        before = self.register.find(self.rt.store.db, record.resident_code)
        return before is None or any(getattr(before, item) != getattr(record, item) for item in CORRECTED_ITEMS)


class ImmigrationNotices:
    """The background job that takes the 法務省通知 from the CS and applies each to the 住民票 (職権), in order, once."""

    def __init__(self, runtime, municipality: str, cs, register: Records, changes: Changes, gate: Gate):
        self.rt = runtime
        self.municipality = municipality
        self.cs = cs  # this municipality's 市町村CS (a CommunicationServerStub)
        self.register = register
        self.changes = changes
        self.gate = gate

    async def poll(self) -> None:
        """Take 法務省通知 from the CS; move the cursor past them once each is applied or set aside."""
        # The changes are kizon's own (no terminal, no operator), made outside any call: the change engine reads who
        # makes a change from the call context, so this job's task carries one naming the node itself.
        guard.serve_as(guard.CallContext(Peer(self.rt.identity, 0, ""), method=METHOD))
        while True:
            await asyncio.sleep(POLL)
            if self.gate.reason():  # frozen (移行中, or a target not yet open): the register does not change
                continue
            # read each time: an import (移行) brings the counters of the site the register came from
            cursor = self.rt.store.scalar("SELECT value FROM counters WHERE name=?", (CURSOR,), default=0)
            try:
                reply = await self.cs.TakeImmigrationNotices(moj_pb2.ImmigrationCursor(processed_up_to=cursor),
                                                             timeout=self.rt.peer_timeout)
            except grpc.aio.AioRpcError:
                continue
            if reply.notices and await self.apply(reply.notices) and reply.last_id != cursor:
                with self.rt.store.transaction() as db:
                    db.execute("INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET "
                               "value=excluded.value", (CURSOR, reply.last_id))

    async def apply(self, notices) -> bool:
        """Apply the notices after the last one applied, in order; whether all were handled (False: one is to be
        taken again, after a transient refusal or a number out of order)."""
        applied = self.rt.store.scalar("SELECT value FROM counters WHERE name=?", (APPLIED,), default=0)
        for notice in notices:
            if notice.sequence <= applied:
                continue  # (applied already: taken again after a crash before the cursor moved)
            if notice.sequence != applied + 1 or self.gate.reason():
                # (the CS keeps 法務省's order and refuses a gap: a number out of order is left for the office)
                if notice.sequence != applied + 1:
                    log.error("法務省通知 %d taken where %d is due: held", notice.sequence, applied + 1)
                return False
            status, subject = "OK", f"{notice.sequence} {notice.resident_code[:11]}"
            try:
                await self._apply_once(notice)
            except rules.Violation as exc:
                if retry_later(exc):
                    log.warning("法務省通知 %d not applied yet (%s): taken again later", notice.sequence, exc)
                    return False
                status, subject = exc.code.name, f"{subject} set aside: {exc.reason}"
                log.warning("法務省通知 %d (%s of %s) set aside: %s", notice.sequence, notice.change.kind,
                            notice.residence_card_number, exc)
            self.rt.audit.append(caller=self.rt.node.identity, method=METHOD, status=status, subject=subject)
            applied = notice.sequence
            with self.rt.store.transaction() as db:
                db.execute("INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET "
                           "value=excluded.value", (APPLIED, applied))
        return True

    async def _apply_once(self, notice) -> None:
        """One notice as a change of kizon's own, under its key: answered from the ledger if a crash left it applied."""
        await apply_once(self.changes, f"{KEY_PREFIX}{self.municipality}:{notice.sequence}",
                         request_digest("moj-notice", notice), lambda: self._change(notice))

    async def _change(self, notice) -> None:
        change = notice.change
        if notice.municipality_code != self.municipality or change.residence_card_number != \
                notice.residence_card_number or change.kind not in KINDS:
            raise R.IMMIGRATION_NOTICE_ITEMS(f"法務省通知 rule: notice {notice.sequence} is not a change of "
                                             f"{', '.join(KINDS)} addressed to {self.municipality}")
        try:
            event = check_change(change, future_expiry=False)
        except rules.Violation as exc:
            raise R.IMMIGRATION_NOTICE_ITEMS(f"法務省通知 rule: {exc}") from None
        person = self._holder(notice)
        async with self.changes.locked(person.household_number):
            record = next_entry(self._holder(notice))
            detail = f"法務省通知 第{notice.sequence}号 ({change.kind})"
            today = today_iso()
            if change.kind in REMOVAL_REASONS:
                record.status = REMOVED
                record.removal_reason, record.removal_date = REMOVAL_REASONS[change.kind], event
                mark(record, "職権消除", event, today, detail=detail)
            else:
                if change.residence_status:
                    record.residence_status = change.residence_status
                if change.period_expiry_date:
                    record.residence_period_expiry_date = change.period_expiry_date
                if change.new_card_number:
                    record.residence_card_number = change.new_card_number
                mark(record, "職権修正", event, today, detail=detail)
            await self.changes.commit([record])

    def _holder(self, notice):
        """The 住民票 the notice is about: a current foreign resident here holding the card it names."""
        try:
            rules.require_resident_code(notice.resident_code)
            record = self.register.current(notice.resident_code)
        except rules.Violation:
            record = None
        if record is None or record.status != CURRENT or record.resident_type != FOREIGN \
                or record.residence_card_number != notice.residence_card_number:
            raise R.IMMIGRATION_NOTICE_RESIDENT(f"法務省通知 rule: {notice.resident_code[:11] or 'nobody'} is not a "
                                                f"current foreign resident here holding {notice.residence_card_number}")
        return record

