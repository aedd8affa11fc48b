"""The 住基GW's link with the 戸籍 system (住基法第9条第2項, 第19条; seed system 3 function 1):

- FamilyNotices: the 戸籍 system's notices of 婚姻, 離婚, 転籍, 振り仮名 and 死亡, applied to the 住民票 職権, in the
  notice order, each once (a notice is a change of kizon's own under the key koseki:<sequence>, so a retry after a
  crash is answered from the ledger, never applied twice);
- AnnexNotices: the 戸籍附票通知 the CS received for people whose 本籍 is here, handed to the 戸籍 system;
- AnnexWriter: the 戸籍附票通知 a change of address attaches for the CS to send to the 本籍地.
"""
from __future__ import annotations

import asyncio
import logging

import grpc

from nodes import audit, rules
from nodes.intents import request_digest
from nodes.kizon.items import REMOVED, head_of, mark, next_entry, today_iso
from nodes.kizon.parts import Changes, Gate, Records
from nodes.reasons import koseki as F
from protos import cs_pb2, identity_pb2, koseki_pb2, koseki_pb2_grpc

log = logging.getLogger("nodes.kizon")  # one logger name for the whole node

KINDS = ("婚姻", "離婚", "転籍", "振り仮名", "死亡")
# 異動事由 after which the 本籍地 is told the new address (a 死亡 the 戸籍 records itself; a 転出 is told by the
# municipality the person moves in to, at the 転入)
ANNEX_REASONS = frozenset({"転入", "国外転入", "転居", "国外転出", "職権記載", "職権消除"})
TRANSIENT = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED,
             grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.CANCELLED}  # the batch is tried again, not refused
# Refusals that say "not now" rather than "not this notice": the notice waits and is tried again, never set aside.
STANDING = frozenset({"SEQUENCE_BEHIND_PREFECTURE", "CHANGES_WAIT_FOR_CS", "REQUEST_IN_PROGRESS", "PEER_UNAVAILABLE",
                      "SITE_CHANGES_CLOSED"})
ANNEX_POLL = 1.0  # seconds between looks for 附票通知 at the CS
APPLIED = "family_notice"  # counter: the last 戸籍 notice the 住民票 holds


def retry_later(exc: rules.Violation) -> bool:
    """Whether a refusal of a notice's change is of the moment (the CS unreachable or behind, the site frozen), so that
    the notice is tried again rather than set aside."""
    return exc.code in TRANSIENT or exc.reason in STANDING


async def apply_once(changes: Changes, key: str, digest: bytes, change) -> None:
    """A notice's change of kizon's own under its key (change() makes it): nothing when the ledger holds it applied,
    also once the intents a crash left are settled."""
    with changes.pending(key, digest) as pending:
        if changes.answered(pending, key) is not None:
            return
        await changes.wait_settled()
        if changes.answered(pending, key) is not None:
            return  # (the crash's intent was this notice, settled as applied)
        await change()


def given_part(name: str) -> str:
    """The 名 of an 氏名 written 「氏 名」 (the whole name when it has no space)."""
    return name.split(" ", 1)[1] if " " in name else name


class AnnexWriter:
    """The 戸籍附票通知 of a change: to the municipality of the person's 本籍, found from the 本籍's text."""

    def __init__(self, topology, municipality: str):
        self.municipality = municipality
        places = []
        for place in topology.municipalities:
            places.append((topology.prefectures.get(place.prefecture, "") + place.name, place.code))
        self._places = sorted(places, key=lambda p: -len(p[0]))  # longest first: no name is a prefix of another's

    def honseki_municipality(self, honseki: str) -> str:
        """The 市町村コード of a 本籍 in this network ("" for one elsewhere or none)."""
        return next((code for place, code in self._places if honseki and honseki.startswith(place)), "")

    def notice(self, record) -> identity_pb2.AnnexNotice | None:
        """The 附票通知 a history entry calls for, or None (no 本籍 here or in the network, or not a change of address)."""
        if record.change_reason not in ANNEX_REASONS or not record.honseki:
            return None
        to = self.honseki_municipality(record.honseki)
        if not to:
            return None
        removed = record.status == REMOVED
        return identity_pb2.AnnexNotice(
            resident_code=record.resident_code, from_municipality_code=self.municipality, to_municipality_code=to,
            honseki=record.honseki, name_kanji=record.name_kanji, birth_date=record.birth_date,
            address="" if removed and record.change_reason != "国外転出" else (
                record.move_out_destination_planned if removed else record.address),
            address_since=record.change_date if removed else record.address_since, reason=record.change_reason)


class FamilyNotices:
    """The 戸籍 system's notices, applied to the 住民票 職権 by the change engine, one at a time, in order."""

    def __init__(self, runtime, municipality: str, register: Records, changes: Changes, gate: Gate):
        self.rt = runtime
        self.municipality = municipality
        self.register = register
        self.changes = changes
        self.gate = gate
        self._lock = asyncio.Lock()  # one batch at a time: the notices' order is the order they are applied in

    async def apply(self, request: koseki_pb2.FamilyRegisterNoticeBatch) -> koseki_pb2.FamilyRegisterNoticeAck:
        """Apply each notice after the last one applied; a repeat is answered, a gap refused; a notice that breaks a
        rule of the 住民票 is set aside with the rule (named in the answer), the rest go on."""
        self.gate.refuse_if_frozen()
        if request.items:
            audit.set_batch_subject(n.resident_code for n in request.items)
        ack = koseki_pb2.FamilyRegisterNoticeAck()
        async with self._lock:
            applied = self.rt.store.scalar("SELECT value FROM counters WHERE name=?", (APPLIED,), default=0)
            for notice in request.items:
                if notice.sequence <= applied:
                    continue  # (applied already: the 戸籍 system sent it again)
                if notice.sequence != applied + 1:
                    raise F.FAMILY_NOTICE_GAP(f"戸籍 notice rule: the next notice is number {applied + 1}, not "
                                              f"{notice.sequence}")
                try:
                    await self._apply_once(notice)
                except rules.Violation as exc:
                    if retry_later(exc):
                        raise  # (nothing of this notice was written: the 戸籍 system sends it again)
                    ack.refused.append(f"{notice.sequence} {exc.reason}")
                    log.warning("戸籍 notice %d (%s of %s) refused: %s", notice.sequence, notice.kind,
                                notice.resident_code, exc)
                applied = notice.sequence
                with self.rt.store.transaction() as db:
                    db.execute("INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET "
                               "value=excluded.value", (APPLIED, applied))
        ack.applied_up_to = applied
        return ack

    async def _apply_once(self, notice) -> None:
        """One notice as a change of kizon's own, under its key: answered from the ledger if a crash left it applied."""
        await apply_once(self.changes, f"koseki:{self.municipality}:{notice.sequence}",
                         request_digest("koseki-notice", notice), lambda: self._change(notice))

    async def _change(self, notice) -> None:
        if notice.kind not in KINDS:
            raise F.FAMILY_NOTICE_KIND(f"戸籍 notice rule: {notice.kind[:16]!r} is not one of {', '.join(KINDS)}")
        rules.require_resident_code(notice.resident_code)
        for text, item in ((notice.surname, "氏"), (notice.surname_kana, "氏の振り仮名"), (notice.given_name_kana,
                           "名の振り仮名"), (notice.honseki, "本籍"), (notice.hittousha, "筆頭者")):
            rules.check_text(text, item)
        try:
            person = self.register.current(notice.resident_code)
        except rules.Violation:
            raise F.FAMILY_NOTICE_RESIDENT(f"戸籍 notice rule: {notice.resident_code} is not a current resident "
                                           "here") from None
        async with self.changes.locked(person.household_number):
            record = next_entry(self.register.current(notice.resident_code))
            # the 届出人 as the 戸籍 counter checked them (kizon's own requester checks are for its own counter)
            record.notifier.CopyFrom(notice.notifier)
            detail = f"{notice.kind}届 (戸籍 {notice.register_number})"
            event = notice.event_date or today_iso()
            if notice.kind == "死亡":
                rules.require_past_date(notice.event_date, "死亡年月日")
                record.status = REMOVED
                record.removal_reason, record.removal_date = "死亡", notice.event_date
                mark(record, "死亡", notice.event_date, notice.notification_date or today_iso(), detail=detail)
                await self.changes.commit([record])
                return
            if notice.surname:
                record.name_kanji = f"{notice.surname} {given_part(record.name_kanji)}"
                record.name_kana = f"{notice.surname_kana} {given_part(record.name_kana)}" if notice.surname_kana \
                    else record.name_kana
            if notice.kind == "振り仮名":
                record.name_kana = f"{notice.surname_kana} {notice.given_name_kana}"
                record.name_kana_confirmed = True  # (recorded by 届出 in the 戸籍: no longer presumed)
            if notice.honseki:
                record.honseki = notice.honseki
            if notice.hittousha:
                record.hittousha = notice.hittousha
            moved = [record]  # (one person: each notice is of one 住民票)
            if notice.join_household_of:
                detail += self._join(record, notice)
            if notice.separate_household:
                detail += self._separate(record)
            mark(record, "職権修正", event, notice.notification_date or today_iso(), detail=detail)
            for other in moved[1:]:
                mark(other, "職権修正", event, notice.notification_date or today_iso(), detail=detail)
            await self.changes.commit(moved)

    def _join(self, record, notice) -> str:
        """婚姻 of a couple at one address: the one alone in their 世帯 joins the other's (else the 世帯 stay)."""
        try:
            other = self.register.current(notice.join_household_of)
        except rules.Violation:
            return "; 世帯はそのまま (配偶者は住民でない)"
        alone = len(self.register.members(record.household_number)) == 1
        if other.household_number == record.household_number:
            record.relationship = notice.relationship or record.relationship
            return ""
        if not alone or other.address != record.address:
            return "; 世帯はそのまま (住所が異なるか世帯員がいる)"
        head = head_of(self.register.household(other.household_number))
        record.household_number, record.householder_name = head.household_number, head.name_kanji
        record.relationship = notice.relationship or "妻"
        return ""

    def _separate(self, record) -> str:
        """離婚 with separate_household: the person leaves for a 世帯 of their own at the same address."""
        if record.relationship == "世帯主":
            return "; 世帯主のまま"
        record.household_number = self.register.new_household_number()
        record.relationship, record.householder_name = "世帯主", record.name_kanji
        return ""


class AnnexNotices:
    """The background job that takes the 戸籍附票通知 received at the CS and hands them to the 戸籍 system."""

    def __init__(self, runtime, cs, gate: Gate):
        self.rt = runtime
        self.cs = cs
        self.gate = gate
        self.koseki = None
        try:
            runtime.topology.find("koseki", runtime.node.municipality)
            self.koseki = runtime.stub(koseki_pb2_grpc.FamilyRegisterSystemStub, "koseki", runtime.node.municipality)
        except KeyError:
            pass  # (a network without a 戸籍 system: the notices stay at the CS)

    async def poll(self) -> None:
        """Take 附票通知 from the CS; once the 戸籍 system holds them, move the cursor past them."""
        while True:
            await asyncio.sleep(ANNEX_POLL)
            if self.koseki is None or self.gate.reason():
                continue
            cursor = self.rt.store.scalar("SELECT value FROM counters WHERE name='annex_cursor'", default=0)
            try:
                reply = await self.cs.TakeAnnexNotices(cs_pb2.AnnexCursor(processed_up_to=cursor),
                                                       timeout=self.rt.peer_timeout)
                if reply.notices:
                    await self.koseki.RecordAnnexNotices(koseki_pb2.AnnexNoticeBatch(items=reply.notices),
                                                         timeout=self.rt.peer_timeout)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in TRANSIENT:
                    log.warning("附票通知 not handed on: %s %s", exc.code().name, exc.details())
                continue
            if reply.last_id != cursor:
                with self.rt.store.transaction() as db:
                    db.execute("INSERT INTO counters(name, value) VALUES ('annex_cursor', ?) ON CONFLICT(name) DO "
                               "UPDATE SET value=excluded.value", (reply.last_id,))
