"""既存住民基本台帳システム (既存住基): the resident register behind the counter.

Every counter operation (出生, 転入, 転居, 転出, 死亡, 職権修正, 住民票コード変更, 世帯分離,
世帯合併, 世帯主変更) writes a new history entry (個人履歴番号) for each person it touches and
keeps removed records (除票). The CS checks and acknowledges the 本人確認情報 first; only then does
kizon commit, so a refused or unreachable CS leaves nothing written. A retried request (same
x-request-id) is answered, not applied twice. Changes reach atena from a durable outbox.
"""
from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import functools
import hmac
import logging
import re
import time
import uuid

import grpc

from nodes import audit, certificates, rules
from nodes.clock import KIOSK_HOURS, kiosk_clock, office_today
from nodes.intents import Intent, Ledger, change_of, control_number, request_digest, request_key, set_sequence
from nodes.outbox import Target
from nodes import identityfile
from nodes.records import REGISTER_ITEMS, delivery_info, identity_info, record_view, register_view, view_digest
from nodes.runtime import APPROVAL_KEY, REQUEST_KEY, current_call
from nodes.sessions import TokenError, issue_approval, issue_session, verify
from nodes.store import next_counter, rows_in
from protos import (atena_pb2, atena_pb2_grpc, card_pb2, common_pb2, cs_pb2, cs_pb2_grpc, identity_pb2, kizon_pb2,
                    kizon_pb2_grpc, records_pb2)
from scenarios.towns import town

log = logging.getLogger(__name__)

SERVICE_NAME = kizon_pb2.DESCRIPTOR.services_by_name["Kizon"].full_name
BULK_OUTPUT_LIMIT = 100  # records one output may hold without a manager's approval (PIA Ⅲ(2)3)
MOVE_IN_DAYS = 14  # a 転入届 within 14 days of moving in (住基法第22条)
NOTICE_POLL = 1.0  # seconds between looks for 転入通知 at the CS
LOCK_STRIPES = 256
CURRENT = records_pb2.ResidentRecord.STATUS_CURRENT
REMOVED = records_pb2.ResidentRecord.STATUS_REMOVED
KANA = re.compile(r"[ァ-ヶー・ 　]+")
# Items of the former municipality's 住民票 that a 転入 does not take over: its own numbering,
# the state of the record there, and the trail of who wrote it.
NOT_CARRIED_OVER = ("atena_number", "history_number", "is_latest", "household_number", "householder_name", "relationship",
                    "status", "removal_reason", "removal_date", "move_out_destination_planned",
                    "move_out_destination_confirmed", "planned_move_out_date", "request_control_number", "operator_id",
                    "terminal_id", "recorded_at", "change_reason_detail", "town_code", "address_line", "katagaki")
# What a clerk types for a person; everything else of a 住民票 the office derives (numbers, household,
# status, card, dates of the office, the trail). A request that sets a derived item is refused.
PERSON_ITEMS = {"name_kanji", "name_kana", "name_romaji", "former_surname_kanji", "former_surname_kana", "alias_kanji",
                "alias_kana", "birth_date", "sex", "relationship", "resident_type", "honseki", "hittousha",
                "article_30_45_category", "residence_status", "residence_card_number", "nationality",
                "residence_period_expiry_date"}
BIRTH_ITEMS = {"name_kanji", "name_kana", "name_romaji", "alias_kanji", "alias_kana", "birth_date", "sex", "relationship",
               "nationality"}
MOVE_IN_ITEMS = {"resident_code", "relationship"}  # 転入: the rest comes from the 転出証明書
ITEM_REPORT_LIMIT = 1000  # records of a consistency report whose differing items are named one by one
SETTLE_WAIT = 5.0  # seconds a counter change waits for pending changes to be settled with the CS
MOVE_WITHIN_DAYS = 14  # a 転居届 within 14 days of moving (住基法第23条)
MOVE_OUT_DAYS_AFTER = 14  # a 転出届 at most 14 days after moving out (住基法第24条) …
MOVE_OUT_DAYS_AHEAD = 30  # … or up to a month before the planned date
AMBIGUOUS = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED,
             grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}  # the CS may or may not have applied the change
_pending_var: contextvars.ContextVar = contextvars.ContextVar("pending_change", default=None)

# Items a 職権修正 may correct: the person's own items and the eligibility flags, never numbers or keys.
CORRECTABLE = PERSON_ITEMS | {"elector", "national_health_insurance", "late_stage_elderly", "long_term_care",
                              "national_pension", "child_allowance"}

SCHEMA = certificates.SCHEMA + """
CREATE TABLE IF NOT EXISTS residents (
    atena_number TEXT PRIMARY KEY,              -- 宛名番号: the person, for good
    resident_code TEXT NOT NULL UNIQUE,         -- 住民票コード (changes on a 住民票コード変更)
    household_number TEXT NOT NULL,             -- 世帯番号
    history_number INTEGER NOT NULL,            -- 個人履歴番号 of the current entry
    status INTEGER NOT NULL,                    -- ResidentRecord.Status: current or 除票
    town_code TEXT NOT NULL,
    record BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS residents_household ON residents(household_number);
CREATE INDEX IF NOT EXISTS residents_town ON residents(town_code);
CREATE TABLE IF NOT EXISTS history (
    atena_number TEXT NOT NULL,
    history_number INTEGER NOT NULL,
    record BLOB NOT NULL,
    PRIMARY KEY (atena_number, history_number)
);
CREATE TABLE IF NOT EXISTS requests (           -- x-request-id already applied, and the answer given
    request_id TEXT PRIMARY KEY,
    reply BLOB NOT NULL
);
"""


def add_to_server(servicer, server) -> None:
    """Register the servicer on a gRPC server."""
    kizon_pb2_grpc.add_KizonServicer_to_server(servicer, server)


def _today() -> str:
    return office_today().isoformat()



def require_person_items(record: records_pb2.ResidentRecord) -> None:
    """The items every 住民票 needs: 氏名 in kanji and katakana, 生年月日, 性別."""
    rules.require_text(record.name_kanji, "氏名")
    if not KANA.fullmatch(record.name_kana or ""):
        raise rules.invalid(f"ふりがな rule: {record.name_kana!r} is not written in katakana")
    rules.require_date(record.birth_date, "生年月日")
    if record.sex not in ("1", "2", "9"):
        raise rules.invalid(f"性別 rule: {record.sex!r} is not 1 (男), 2 (女) or 9 (不詳)")


class PendingChange:
    """The request being served: its scoped 依頼管理番号, what it asked, and what it reserved at the CS."""

    def __init__(self, key: str, digest: bytes):
        self.key, self.digest = key, digest
        self.reserved = False  # 住民票コード reserved at the CS under this key


def counter_change(handler):
    """A counter change (異動): answered once per scoped 依頼管理番号, refused when the id is reused for
    another request, held while earlier changes are being settled with the CS."""
    @functools.wraps(handler)
    async def change(self, request, context):
        return await self._change(handler, request, context)
    return change


class Servicer(kizon_pb2_grpc.KizonServicer):
    """The counter operations of 既存住基."""

    def __init__(self, runtime):
        self.rt = runtime
        self.municipality = runtime.node.municipality
        place = runtime.topology.municipality(self.municipality)
        self.place_name = runtime.topology.prefectures.get(place.prefecture, "") + place.name
        self.cs = runtime.stub(cs_pb2_grpc.CommunicationServerStub, "cs", self.municipality)
        atena = runtime.stub(atena_pb2_grpc.AtenaStub, "atena", self.municipality)
        self.outbox = runtime.use_outbox({"atena": Target(atena.NotifyResidentChanges, atena_pb2.ResidentChangeBatch)})
        self._locks = [asyncio.Lock() for _ in range(LOCK_STRIPES)]
        self.ledger = Ledger(runtime.store)
        self._inflight: set[str] = set()
        self._settled_event = asyncio.Event()  # set while no intent waits to be settled with the CS
        self._settler: asyncio.Task | None = None
        if self.ledger.pending():
            runtime.background(self._settle)  # left by a crash: settled before any new change is made
        else:
            self._settled_event.set()
        runtime.background(self._poll_move_in_notices)

    # -- 依頼管理番号 and pending changes -------------------------------------------------------------
    async def _change(self, handler, request, context):
        call = current_call()
        client_id = call.metadata.get(REQUEST_KEY) or uuid.uuid4().hex
        rules.check_text(client_id, "x-request-id")
        pending = PendingChange(request_key(call.peer.identity.uri, call.operator, call.method, client_id),
                                request_digest(call.method, request))
        answer = self._answered(pending, client_id)
        if answer is not None:
            return answer
        await self._wait_settled()  # (an intent of this very request may be among those being settled)
        if pending.key in self._inflight:
            raise rules.Violation(grpc.StatusCode.ABORTED, f"依頼管理番号 rule: {REQUEST_KEY} {client_id} is being "
                                  "served; retry once it has been answered")
        answer = self._answered(pending, client_id)
        if answer is not None:
            return answer
        self._inflight.add(pending.key)
        token = _pending_var.set(pending)
        try:
            rules.check_message_text(request)
            return await handler(self, request, context)
        except rules.Violation:
            if pending.reserved and self.ledger.intent(pending.key) is None:
                await self._release(pending.key)  # a refused change gives its 住民票コード back to the pool
            raise
        finally:
            _pending_var.reset(token)
            self._inflight.discard(pending.key)

    def _answered(self, pending: PendingChange, client_id: str):
        """The first reply to this request if it was applied; a reused id with another request is refused."""
        found = self.ledger.answered(pending.key)
        if found is None:
            intent = self.ledger.intent(pending.key)
            if intent is not None and intent.digest != pending.digest:
                raise rules.precondition(f"依頼管理番号 rule: {REQUEST_KEY} {client_id} was used for a different request")
            return None
        digest, reply = found
        if digest != pending.digest:
            raise rules.precondition(f"依頼管理番号 rule: {REQUEST_KEY} {client_id} was used for a different request")
        return self._shown_reply(reply)

    async def _wait_settled(self) -> None:
        if self._settled_event.is_set():
            return
        try:
            await asyncio.wait_for(self._settled_event.wait(), SETTLE_WAIT)
        except asyncio.TimeoutError:
            count = len(self.ledger.pending())
            raise rules.Violation(grpc.StatusCode.UNAVAILABLE, f"整合 rule: {count} changes sent to the 市町村CS wait for "
                                  "its answer (it is unreachable); no change is made until they are settled — retry "
                                  f"later with the same {REQUEST_KEY}") from None

    def _unsettled(self) -> None:
        """A change's outcome at the CS is unknown: hold new changes and settle it in the background."""
        self._settled_event.clear()
        if self._settler is None or self._settler.done():
            self._settler = asyncio.create_task(self._settle())

    async def _settle(self) -> None:
        """Ask the CS which pending intents it applied: commit those here, drop the others."""
        delay = 0.1
        while True:
            keys = [k for k in self.ledger.pending() if k not in self._inflight]
            if not keys:  # (intents of changes in flight are settled by their own calls)
                self._settled_event.set()
                return
            try:
                reply = await self.cs.GetRequestStatus(cs_pb2.RequestStatusQuery(
                    request_control_numbers=[control_number(k, 0) for k in keys]), timeout=self.rt.peer_timeout)
            except grpc.aio.AioRpcError as exc:
                log.warning("settling %d pending changes: the CS did not answer (%s); retrying", len(keys), exc.code().name)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            applied = {s.request_control_number.rsplit(":", 1)[0]: s.update_sequence for s in reply.applied}
            for key in keys:
                intent = self.ledger.intent(key)
                if intent is None or key in self._inflight:
                    continue
                if key in applied:
                    self._write(intent, applied[key])
                    log.info("settled %s: applied at the CS (更新順番号 %d), committed here", key, applied[key])
                else:
                    self.ledger.drop(key)
                    await self._release(key)
                    log.info("settled %s: never applied at the CS, dropped", key)
                self.rt.audit.append(caller=self.rt.node.identity, method="kizon/整合", status="OK",
                                     subject=",".join(u.info.resident_code for u in intent.batch.updates))

    async def _release(self, reservation: str) -> None:
        """Give 住民票コード reserved for a change that was not made back to the pool (best effort: the CS
        also releases reservations left unused for an hour)."""
        try:
            await self.cs.ReleaseResidentCodes(cs_pb2.CodeRelease(reservation=reservation), timeout=self.rt.peer_timeout)
        except grpc.aio.AioRpcError as exc:
            log.warning("住民票コード reserved for %s not released now (%s); the CS releases them later", reservation,
                        exc.code().name)

    def _notified(self, request) -> str:
        """届出年月日: the office's today; a request may repeat it but never set another date."""
        today = _today()
        if request.notification_date and request.notification_date != today:
            raise rules.invalid(f"届出年月日 rule: the office records the day of the 届出 itself ({today}), "
                                f"not {request.notification_date}")
        return today

    # -- operators ------------------------------------------------------------------------------
    async def Login(self, request, context):
        """操作者認証 at a terminal: a session bound to this terminal's certificate."""
        call = current_call()
        audit.set_subject(request.operator_id)
        if not call.is_terminal:
            raise rules.denied("login rule: operators log in at a terminal")
        operator = self.rt.pki.operators(self.municipality).get(request.operator_id)
        if operator is None or not hmac.compare_digest(operator["credential"], request.credential):
            raise rules.unauthenticated(f"operator rule: authentication failed for {request.operator_id!r}")
        token, expires = issue_session(self.rt.session_key, request.operator_id, operator["roles"], self.municipality,
                                       call.terminal, call.peer.fingerprint)
        return kizon_pb2.Session(token=token, operator_id=request.operator_id, roles=operator["roles"],
                                 expires_at=dt.datetime.fromtimestamp(expires, dt.timezone.utc).isoformat())

    async def ApproveBulkOutput(self, request, context):
        """A manager's prior approval of one bulk output (PIA Ⅲ(2)3 その他)."""
        session = current_call().session
        audit.set_subject(f"approval:{request.max_records}")
        if session is None or "manager" not in session.roles:
            raise rules.denied("bulk output rule (PIA Ⅲ(2)3): only a manager approves bulk output")
        rules.require_text(request.purpose, "目的")
        if request.max_records == 0:
            raise rules.invalid("bulk output rule: max_records must be at least 1")
        token, expires = issue_approval(self.rt.session_key, session.operator, self.municipality, request.purpose,
                                        request.max_records)
        return kizon_pb2.BulkApproval(token=token, expires_at=dt.datetime.fromtimestamp(expires, dt.timezone.utc).isoformat())

    # -- reading the register ---------------------------------------------------------------------
    def _person(self, resident_code: str) -> records_pb2.ResidentRecord:
        rules.require_resident_code(resident_code)
        found = self.rt.store.one("SELECT record FROM residents WHERE resident_code=?", (resident_code,))
        if found is None:
            raise rules.not_found(f"照会: no 住民票 with 住民票コード {resident_code} in {self.municipality}")
        return records_pb2.ResidentRecord.FromString(found[0])

    def _current(self, resident_code: str) -> records_pb2.ResidentRecord:
        record = self._person(resident_code)
        if record.status != CURRENT:
            raise rules.precondition(f"除票 rule: {resident_code} is no longer a resident of {self.municipality} "
                                     f"({record.removal_reason} {record.removal_date})")
        return record

    def _members(self, household: str) -> list[records_pb2.ResidentRecord]:
        rows = self.rt.store.db.execute("SELECT record FROM residents WHERE household_number=? AND status=? ORDER BY atena_number",
                                        (household, CURRENT)).fetchall()
        return [records_pb2.ResidentRecord.FromString(r[0]) for r in rows]

    def _household(self, household: str) -> list[records_pb2.ResidentRecord]:
        rules.require_text(household, "世帯番号")
        members = self._members(household)
        if not members:
            raise rules.not_found(f"世帯 rule: no household {household} with current members in {self.municipality}")
        return members

    def _shown(self, record: records_pb2.ResidentRecord) -> records_pb2.ResidentRecord:
        """The record as this caller may see it: 個人番号 masked without the permission."""
        if record.individual_number and not self.rt.may_see_number(current_call()):
            shown = records_pb2.ResidentRecord()
            shown.CopyFrom(record)
            shown.individual_number = "*" * 12
            return shown
        return record

    async def GetResident(self, request, context):
        """住民票の照会: the current entry of a person's 住民票 (除票 included)."""
        audit.set_subject(request.resident_code)
        return self._shown(self._person(request.resident_code))

    async def GetHistory(self, request, context):
        """Every history entry (個人履歴番号) of a person, oldest first."""
        audit.set_subject(request.resident_code)
        person = self._person(request.resident_code)
        rows = self.rt.store.db.execute("SELECT record FROM history WHERE atena_number=? ORDER BY history_number",
                                        (person.atena_number,)).fetchall()
        return kizon_pb2.HistoryReply(entries=[self._shown(records_pb2.ResidentRecord.FromString(r[0])) for r in rows])

    async def GetHousehold(self, request, context):
        """The current members of a household."""
        audit.set_subject(request.household_number)
        return kizon_pb2.HistoryReply(entries=[self._shown(r) for r in self._household(request.household_number)])

    async def ExportResidents(self, request, context):
        """Bulk output: more than BULK_OUTPUT_LIMIT records only with a manager's approval token."""
        call = current_call()
        where, params = ["1=1"], []
        if request.town_code:
            where.append("town_code=?"), params.append(request.town_code)
        if not request.include_removed:
            where.append("status=?"), params.append(CURRENT)
        count = self.rt.store.scalar(f"SELECT COUNT(*) FROM residents WHERE {' AND '.join(where)}", tuple(params), 0)
        audit.set_subject(f"export:{count}")
        if count > BULK_OUTPUT_LIMIT:
            self._check_approval(call, count)
        cursor = self.rt.store.db.execute(f"SELECT record FROM residents WHERE {' AND '.join(where)} ORDER BY atena_number",
                                          tuple(params))
        for (blob,) in cursor:
            yield self._shown(records_pb2.ResidentRecord.FromString(blob))

    def _check_approval(self, call, count: int) -> None:
        token = call.metadata.get(APPROVAL_KEY)
        rule = f"bulk output rule (PIA Ⅲ(2)3): {count} records exceed {BULK_OUTPUT_LIMIT}"
        if not token:
            raise rules.denied(f"{rule}; a manager's approval ({APPROVAL_KEY}) is required")
        try:
            approval = verify(self.rt.session_key, token, "approval")
        except TokenError as exc:
            raise rules.denied(f"{rule}; the approval is not valid: {exc}") from None
        if approval["muni"] != self.municipality or approval["max"] < count:
            raise rules.denied(f"{rule}; the approval covers {approval['max']} records of {approval['muni']}")
        if call.session is not None and approval["approver"] == call.session.operator:
            raise rules.denied(f"{rule}; an operator may not approve their own output")

    # -- the counter operations ---------------------------------------------------------------
    @counter_change
    async def Birth(self, request, context):
        """出生: a new 住民票 in an existing household, with a 住民票コード from the pool and a new 個人番号."""
        child = request.child
        rules.refuse_set(child, {f.name for f in child.DESCRIPTOR.fields} - BIRTH_ITEMS, "出生 rule")
        require_person_items(child)
        notified = self._notified(request)
        rules.require_past_date(child.birth_date, "生年月日", not_before=office_today() - dt.timedelta(days=366))
        async with self._locked(request.household_number):
            members = self._household(request.household_number)
            head = _head(members)
            code, number = await self._new_numbers()
            record = records_pb2.ResidentRecord()
            record.CopyFrom(child)
            _take_household(record, head)
            record.relationship = child.relationship or "子"
            record.resident_code, record.individual_number = code, number
            record.resident_type = head.resident_type
            if head.resident_type != "外国人住民":
                record.honseki, record.hittousha = head.honseki, head.hittousha
            record.resident_since = record.address_since = child.birth_date
            _mark(record, "出生", child.birth_date, notified)
            return await self._commit([record], new={code}, delivery={code})

    @counter_change
    async def MoveIn(self, request, context):
        """転入: with a 転出証明書, by 特例 with the card, or from abroad."""
        person = request.person
        notified = self._notified(request)
        moved_in = rules.require_past_date(request.move_in_date, "転入年月日")
        if moved_in < office_today() - dt.timedelta(days=MOVE_IN_DAYS):
            raise rules.precondition(f"転入 rule (住基法第22条): the 転入届 came {(office_today() - moved_in).days} days "
                                     f"after moving in (at most {MOVE_IN_DAYS})")
        address = self._address(request.address)
        if request.from_abroad:
            if person.resident_code or person.individual_number:
                await self._refuse_known_person(person)
            rules.refuse_set(person, {f.name for f in person.DESCRIPTOR.fields} - PERSON_ITEMS, "国外転入 rule")
            require_person_items(person)
            rules.require_past_date(person.birth_date, "生年月日")
        else:
            rules.require_resident_code(person.resident_code)
            rules.refuse_set(person, {f.name for f in person.DESCRIPTOR.fields} - MOVE_IN_ITEMS, "転入 rule",
                             "taken from the 転出証明書 (or set by the office)")
        async with self._locked(request.household_number or person.resident_code or "new"):
            previous = None
            if request.from_abroad:
                code, number = await self._new_numbers()
                source = person
            else:
                previous = self._existing(person.resident_code)
                if request.special:
                    asked = kizon_pb2.MoveInRequest()
                    asked.CopyFrom(request)
                    asked.notification_date = notified
                    certificate = await self._cs_call(self.cs.TakeMoveOutCertificate, asked)
                elif request.HasField("certificate"):
                    certificate = request.certificate
                    self._check_paper_certificate(certificate, person)
                else:
                    raise rules.invalid("転入 rule: a 転出証明書 is required (or 特例転入 with the card)")
                source = records_pb2.ResidentRecord()
                source.CopyFrom(certificate.person)
                require_person_items(source)
                code = source.resident_code
                number = await self._national_number(code, source.individual_number)
            record = records_pb2.ResidentRecord()
            record.CopyFrom(source)
            for name in NOT_CARRIED_OVER:
                record.ClearField(name)
            record.resident_code, record.individual_number = code, number
            if request.household_number:
                head = _head(self._household(request.household_number))
                _take_household(record, head)
                if not person.relationship:
                    raise rules.invalid("転入 rule: 続柄 is required to join a household")
                record.relationship = person.relationship
            else:
                record.household_number = self._new_household_number()
                record.relationship = "世帯主"
                record.householder_name = record.name_kanji
                _set_address(record, address)
            if not request.from_abroad:
                record.previous_municipality_code = certificate.issuing_municipality_code
                record.previous_address = certificate.person.address
            record.resident_since = record.address_since = moved_in.isoformat()
            if previous is not None:  # a former resident coming back: the same person, the next history entry
                record.atena_number = previous.atena_number
                record.history_number = previous.history_number
            _mark(record, "国外転入" if request.from_abroad else "転入", moved_in.isoformat(), notified)
            extras = identity_pb2.IdentityUpdate(special_move_in=request.special)
            if not request.from_abroad:
                extras.move_in_notice.CopyFrom(identity_pb2.MoveInNotice(
                    resident_code=code, from_municipality_code=self.municipality,
                    to_municipality_code=certificate.issuing_municipality_code, new_address=record.address,
                    move_in_date=moved_in.isoformat(), notified_at=notified))
            return await self._commit([record], new={code}, delivery={code} if request.from_abroad else set(),
                                      extras={code: extras})

    def _check_paper_certificate(self, certificate, person) -> None:
        """A paper 転出証明書 as typed at the counter: the person's items, codes and dates must hold up."""
        if certificate.person.resident_code != person.resident_code:
            raise rules.invalid("転入 rule: the 転出証明書 is for another person")
        rules.require_municipality_code(certificate.issuing_municipality_code, "転出証明書 rule: 発行市町村コード")
        if certificate.issuing_municipality_code == self.municipality:
            raise rules.invalid("転入 rule: a 転出証明書 of this municipality is a 転居, not a 転入")
        if certificate.person.individual_number:
            rules.require_individual_number(certificate.person.individual_number)
        rules.require_past_date(certificate.person.birth_date, "生年月日")
        if certificate.planned_move_out_date:
            rules.require_date(certificate.planned_move_out_date, "転出予定年月日")

    async def _national_number(self, code: str, typed: str) -> str:
        """The 個人番号 national holds for a 住民票コード (generated now if it has none); a number typed from a
        paper 転出証明書 must be that one."""
        residence = await self._cs_call(self.cs.CheckResidence, identity_pb2.ResidenceQuery(
            resident_code=code, individual_number=typed, municipality_code=self.municipality))
        number = residence.individual_number if residence.known else (await self._assign_numbers([code]))[code]
        if typed and typed != number:
            raise rules.invalid(f"個人番号 rule: the 個人番号 on the 転出証明書 of {code} is not the one national holds")
        return number

    async def _refuse_known_person(self, person) -> None:
        """A 国外転入 is a new person: numbers that national knows make it a 転入; numbers it does not are invented."""
        if person.resident_code:
            rules.require_resident_code(person.resident_code)
            residence = await self._cs_call(self.cs.CheckResidence, identity_pb2.ResidenceQuery(
                resident_code=person.resident_code, municipality_code=self.municipality))
            if residence.known:
                raise rules.precondition(f"国外転入 rule: {person.resident_code} already has a 住民票コード and 個人番号; "
                                         "record a 転入 with the 転出証明書, not a new person")
        raise rules.invalid("国外転入 rule: resident_code, individual_number are set by the office, not by the request")

    @counter_change
    async def MoveWithin(self, request, context):
        """転居: a new address within the city (the whole household if asked)."""
        address = self._address(request.address)
        notified = self._notified(request)
        moved = rules.require_past_date(request.move_date, "転居年月日")
        if moved < office_today() - dt.timedelta(days=MOVE_WITHIN_DAYS):
            raise rules.precondition(f"転居 rule (住基法第23条): the 転居届 came {(office_today() - moved).days} days after "
                                     f"moving (at most {MOVE_WITHIN_DAYS})")
        person = self._current(request.resident_code)
        async with self._locked(person.household_number):
            person = self._current(request.resident_code)
            people = self._members(person.household_number) if request.whole_household else [person]
            changed = []
            for member in people:
                record = _next(member)
                _set_address(record, address)
                record.address_since = moved.isoformat()
                _mark(record, "転居", moved.isoformat(), notified)
                changed.append(record)
            return await self._commit(changed)

    @counter_change
    async def MoveOut(self, request, context):
        """転出 (or 特例転出 for a card holder): the 住民票 becomes a 除票; a 転出証明書 is issued."""
        planned = rules.require_date(request.planned_date, "転出予定年月日")
        today = office_today()
        if not today - dt.timedelta(days=MOVE_OUT_DAYS_AFTER) <= planned <= today + dt.timedelta(days=MOVE_OUT_DAYS_AHEAD):
            raise rules.precondition(f"転出 rule (住基法第24条): the planned date {planned} must lie between "
                                     f"{MOVE_OUT_DAYS_AFTER} days ago and {MOVE_OUT_DAYS_AHEAD} days ahead of today ({today})")
        notified = self._notified(request)
        rules.require_text(request.destination_address, "転出先")
        if request.destination_municipality_code or request.special:
            rules.require_municipality_code(request.destination_municipality_code, "転出先市町村コード")
        if request.destination_municipality_code == self.municipality:
            raise rules.invalid("転出 rule: a move within the municipality is a 転居")
        person = self._current(request.resident_code)
        if request.special and not person.card_issued:
            raise rules.precondition("特例転出 rule: only a 個人番号カード holder may move out without a 転出証明書")
        async with self._locked(person.household_number):
            person = self._current(request.resident_code)
            record = _next(person)
            record.status = REMOVED
            record.removal_reason, record.removal_date = "転出", planned.isoformat()
            record.move_out_destination_planned = request.destination_address
            record.planned_move_out_date = planned.isoformat()
            _mark(record, "転出", planned.isoformat(), notified)
            certificate = identity_pb2.MoveOutCertificate(
                certificate_number=f"{self.municipality}-{next_counter(self.rt.store.db, 'certificate_number'):08d}",
                issuing_municipality_code=self.municipality, person=record, planned_move_out_date=planned.isoformat(),
                destination_address=request.destination_address,
                destination_municipality_code=request.destination_municipality_code, card_holder=person.card_issued,
                issued_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
            extras = identity_pb2.IdentityUpdate()
            if request.special:
                extras.move_out_certificate.CopyFrom(certificate)

            def with_certificate(change):
                # The 転出証明書 carries the 住民票 as committed (its trail and 個人履歴番号 included).
                certificate.person.CopyFrom(change.records[0])
                return kizon_pb2.MoveOutReply(change=change, certificate=certificate)
            return await self._commit([record], extras={record.resident_code: extras}, wrap=with_certificate)

    @counter_change
    async def Death(self, request, context):
        """死亡: the 住民票 becomes a 除票 (kept)."""
        notified = self._notified(request)
        died = rules.require_past_date(request.death_date, "死亡年月日")
        person = self._current(request.resident_code)
        if died < rules.require_date(person.birth_date, "生年月日"):
            raise rules.invalid(f"死亡年月日 rule: {died} is before the birth date {person.birth_date}")
        async with self._locked(person.household_number):
            record = _next(self._current(request.resident_code))
            record.status = REMOVED
            record.removal_reason, record.removal_date = "死亡", died.isoformat()
            _mark(record, "死亡", died.isoformat(), notified)
            return await self._commit([record])

    @counter_change
    async def Correct(self, request, context):
        """職権修正: correct items of a 住民票, never its numbers or keys."""
        rules.require_text(request.reason, "修正理由")
        wanted = request.corrected
        person = self._person(wanted.resident_code)
        touched = [f.name for f, _ in wanted.ListFields() if f.name not in ("resident_code",)]
        forbidden = sorted(set(touched) - CORRECTABLE)
        if forbidden:
            raise rules.invalid(f"職権修正 rule: {', '.join(forbidden)} cannot be corrected this way")
        if not touched:
            raise rules.invalid("職権修正 rule: nothing to correct")
        if "birth_date" in touched:
            rules.require_past_date(wanted.birth_date, "生年月日")
        async with self._locked(person.household_number):
            record = _next(self._person(wanted.resident_code))
            for name in touched:
                setattr(record, name, getattr(wanted, name))
            require_person_items(record)
            _mark(record, "職権修正", _today(), _today(), detail=request.reason)
            return await self._commit([record])

    async def OfferResidentCodes(self, request, context):
        """住民票コード変更請求, first step: candidates offered by national through the CS."""
        audit.set_subject(request.resident_code)
        self._current(request.resident_code)
        reply = await self._cs_call(self.cs.OfferResidentCodes,
                                    cs_pb2.CodeOfferRequest(resident_code=request.resident_code, count=3))
        return kizon_pb2.ResidentCodeOffer(offer_id=request.resident_code, candidates=reply.candidates)

    @counter_change
    async def ChangeResidentCode(self, request, context):
        """住民票コード変更請求, second step: the person's choice among the offered codes."""
        rules.require_resident_code(request.chosen)
        person = self._current(request.resident_code)
        async with self._locked(person.household_number):
            record = _next(self._current(request.resident_code))
            record.resident_code = request.chosen
            _mark(record, "住民票コード変更", _today(), _today())
            return await self._commit([record], former={request.chosen: request.resident_code})

    @counter_change
    async def SplitHousehold(self, request, context):
        """世帯分離: a member leaves to head a household of their own at the same address."""
        notified = self._notified(request)
        person = self._current(request.resident_code)
        async with self._locked(person.household_number):
            person = self._current(request.resident_code)
            if len(self._members(person.household_number)) < 2 or person.relationship == "世帯主":
                raise rules.precondition("世帯分離 rule: a member other than the 世帯主 of a household of two or more")
            record = _next(person)
            record.household_number = self._new_household_number()
            record.relationship, record.householder_name = "世帯主", record.name_kanji
            _mark(record, "世帯分離", _today(), notified)
            return await self._commit([record])

    @counter_change
    async def MergeHousehold(self, request, context):
        """世帯合併: the members of one household join another at the same address."""
        notified = self._notified(request)
        if request.from_household == request.into_household:
            raise rules.invalid("世帯合併 rule: two different households are needed")
        async with self._locked(request.from_household, request.into_household):
            leaving, staying = self._household(request.from_household), self._household(request.into_household)
            head = _head(staying)
            if leaving[0].address != head.address:
                raise rules.precondition("世帯合併 rule: households merge only at the same address")
            changed = []
            for member in leaving:
                record = _next(member)
                _take_household(record, head)
                record.relationship = "同居人"
                _mark(record, "世帯合併", _today(), notified)
                changed.append(record)
            return await self._commit(changed)

    @counter_change
    async def ChangeHouseholder(self, request, context):
        """世帯主変更: another member becomes the 世帯主."""
        notified = self._notified(request)
        async with self._locked(request.household_number):
            members = self._household(request.household_number)
            chosen = [m for m in members if m.resident_code == request.new_head_resident_code]
            if not chosen:
                raise rules.precondition(f"世帯主変更 rule: {request.new_head_resident_code} is not a member of the household")
            if chosen[0].relationship == "世帯主":
                raise rules.precondition("世帯主変更 rule: that member is already the 世帯主")
            changed = []
            for member in members:
                record = _next(member)
                if member.resident_code == request.new_head_resident_code:
                    record.relationship = "世帯主"
                elif member.relationship == "世帯主":
                    record.relationship = "同居人"
                record.householder_name = chosen[0].name_kanji
                _mark(record, "世帯主変更", _today(), notified)
                changed.append(record)
            return await self._commit(changed)

    # -- certificates -------------------------------------------------------------------------------
    async def IssueCertificate(self, request, context):
        """住民票の写し, 記載事項証明書, 転出証明書, 除票の写し at the counter; 広域交付 with the card."""
        call = current_call()
        audit.set_subject(request.resident_code or request.card_number)
        if request.kind not in certificates.TITLES:
            raise rules.invalid("証明書 rule: unknown kind of certificate")
        items = certificates.items_for(request, certificates.RESIDENT_FIELDS)
        if request.include_individual_number and not self.rt.may_see_number(call):
            raise rules.denied("個人番号 rule: this operator or terminal may not print the 個人番号")
        if request.home_municipality_code and request.home_municipality_code != self.municipality:
            return await self._wide_area(request, call, items)
        person = self._person(request.resident_code)
        removed = person.status == REMOVED
        if request.kind in (kizon_pb2.REMOVED_COPY, kizon_pb2.MOVE_OUT) and not removed:
            raise rules.precondition(f"証明書 rule: {request.resident_code} is a current resident: no 除票 to certify")
        if request.kind == kizon_pb2.MOVE_OUT and person.removal_reason != "転出":
            raise rules.precondition("転出証明書 rule: only for a 転出")
        if request.kind not in (kizon_pb2.REMOVED_COPY, kizon_pb2.MOVE_OUT) and removed:
            raise rules.precondition(f"除票 rule: {request.resident_code} is no longer a resident; ask for a 除票の写し")
        people = self._members(person.household_number) if request.kind == kizon_pb2.HOUSEHOLD_COPY else [person]
        return self._issue(request.kind, request.resident_code, people, items, f"{self.place_name} 窓口", call.terminal,
                           call.operator, request.justification)

    async def _wide_area(self, request, call, items):
        """広域交付: the 住民票の写し of a resident of another municipality, who proves themself with the card."""
        if request.kind != kizon_pb2.RESIDENT_COPY or request.include_individual_number:
            raise rules.invalid("広域交付 rule: a 住民票の写し (個人) only, without the 個人番号")
        info = await self._cs_call(self.cs.WideAreaLookup, cs_pb2.WideAreaRequest(
            home_municipality_code=request.home_municipality_code, card_number=request.card_number, pin=request.pin))
        audit.set_subject(info.resident_code)
        items = [i for i in items if i in set(f.name for f in info.DESCRIPTOR.fields)]
        return self._issue(request.kind, info.resident_code, [info], items, f"{self.place_name} 窓口（広域交付）", call.terminal,
                           call.operator, request.justification)

    def _issue(self, kind, resident_code, people, items, place, terminal, operator, justification):
        with self.rt.store.transaction() as db:
            number, issued_at = certificates.record_issuance(db, self.municipality, kind, resident_code, place, terminal,
                                                             operator, items, justification)
        text, page = certificates.render(kind, number, issued_at, place, people, items)
        return kizon_pb2.Certificate(issue_number=number, kind=kind, issued_at=issued_at, place=place, items_printed=items,
                                     text=text, html=page)

    async def GetIssuanceHistory(self, request, context):
        """交付履歴: every certificate issued here about a person."""
        audit.set_subject(request.resident_code)
        rules.require_resident_code(request.resident_code)
        return certificates.history(self.rt.store.db, request.resident_code)

    async def IssueKioskCertificate(self, request, context):
        """コンビニ交付: during its hours, to the holder of a card and PIN who lives here."""
        call = current_call()
        audit.set_subject(request.card_number)
        if call.peer.identity.kind != "kiosk":
            raise rules.denied("コンビニ交付 rule: only a kiosk front end issues at the kiosk")
        now = kiosk_clock()
        if not KIOSK_HOURS[0] <= now < KIOSK_HOURS[1]:
            raise rules.precondition(f"コンビニ交付 rule: the service runs 06:30–23:00 (it is {now.strftime('%H:%M')})")
        if request.kind not in (kizon_pb2.RESIDENT_COPY, kizon_pb2.HOUSEHOLD_COPY):
            raise rules.invalid("コンビニ交付 rule: 住民票の写し (個人 or 世帯) only")
        info = await self._cs_call(self.cs.VerifyByCard, cs_pb2.CardIdentityCheck(card_number=request.card_number, pin=request.pin))
        audit.set_subject(info.resident_code)
        person = self._person(info.resident_code)
        if person.status != CURRENT:
            raise rules.precondition(f"コンビニ交付 rule: the card holder is not a resident of {self.municipality}")
        people = self._members(person.household_number) if request.kind == kizon_pb2.HOUSEHOLD_COPY else [person]
        return self._issue(request.kind, person.resident_code, people, list(certificates.STANDARD_ITEMS),
                           f"コンビニ交付 ({call.peer.identity.terminal})", call.peer.identity.terminal, "", "")

    # -- the 個人番号カード -------------------------------------------------------------------------------
    async def ChangeCard(self, request, context):
        """A step of the card's lifecycle at the counter, through the CS to the card system."""
        audit.set_subject(request.resident_code)
        person = self._person(request.resident_code)
        if request.action in (card_pb2.APPLY, card_pb2.ISSUE) and person.status != CURRENT:
            raise rules.precondition(f"card rule: {request.resident_code} is not a resident of {self.municipality}")
        asked = card_pb2.CardRequest()
        asked.CopyFrom(request)
        asked.municipality_code = self.municipality
        status = await self._cs_call(self.cs.ChangeCard, asked)
        holds = status.state in ("issued", "suspended")
        if holds != person.card_issued:
            person.card_issued = holds  # 交付状況 follows the card; not a change of the 住民票's items
            with self.rt.store.transaction() as db:
                db.execute("UPDATE residents SET record=? WHERE atena_number=?", (person.SerializeToString(), person.atena_number))
        return status

    # -- 整合性確認 ----------------------------------------------------------------------------------------
    async def CheckConsistency(self, request, context):
        """整合性確認 of the whole chain: kizon's 住民票 against the CS's 本人確認情報 (REGISTER_ITEMS), and the CS
        against the prefecture and national; digests are computed from the records, never read back."""
        started = time.perf_counter()
        if request.municipality_code and request.municipality_code != self.municipality:
            raise rules.denied(f"整合性確認 rule: this kizon checks only {self.municipality}")
        audit.set_subject(self.municipality)
        query = common_pb2.ConsistencyRequest(municipality_code=self.municipality)
        try:
            report, theirs = await asyncio.gather(
                self.cs.CheckConsistency(query, timeout=600),
                identityfile.collect_digests(self.cs.RegisterDigests(query, timeout=600)))
        except grpc.aio.AioRpcError as exc:
            raise rules.Violation(grpc.StatusCode.UNAVAILABLE, f"整合性確認: the 市町村CS did not answer: {exc.details()}") from None
        ours = {}
        for code, blob in self.rt.store.db.execute("SELECT resident_code, record FROM residents"):
            ours[code] = view_digest(record_view(records_pb2.ResidentRecord.FromString(blob)))
        report.records_kizon = len(ours)
        kizon_differences = []
        for code in sorted(c for c in ours if c not in theirs):
            kizon_differences.append(identity_pb2.ConsistencyDifference(resident_code=code, node="cs", items=["missing"]))
        for code in sorted(c for c in theirs if c not in ours):
            kizon_differences.append(identity_pb2.ConsistencyDifference(resident_code=code, node="kizon", items=["missing"]))
        differing = sorted(c for c, d in ours.items() if c in theirs and theirs[c] != d)
        for code in differing[:ITEM_REPORT_LIMIT]:
            mine = record_view(self._person(code))
            other = register_view(await self._cs_call(self.cs.GetIdentity, common_pb2.ResidentKey(resident_code=code)))
            items = [n for n in REGISTER_ITEMS if getattr(mine, n) != getattr(other, n)]
            kizon_differences.append(identity_pb2.ConsistencyDifference(resident_code=code, node="cs", items=items or ["digest"]))
        kizon_differences += [identity_pb2.ConsistencyDifference(resident_code=c, node="cs", items=["digest"])
                              for c in differing[ITEM_REPORT_LIMIT:]]
        # The kizon ↔ cs differences first: they come before those further down the chain.
        rest = list(report.differences)
        del report.differences[:]
        report.differences.extend(kizon_differences + rest)
        report.seconds = time.perf_counter() - started
        return report

    # -- the initial load ---------------------------------------------------------------------------
    async def BulkLoad(self, request_iterator, context):
        """移行: existing residents in batches, numbered by national, checked and stored by the CS. Each batch is
        a change of its own (依頼管理番号 x-request-id:N): a load resumed with the same id skips what is in."""
        call = current_call()
        if call.session is None or "manager" not in call.session.roles:
            raise rules.denied("移行 rule: the initial load is run by a manager")
        summary = kizon_pb2.LoadSummary()
        load_id = call.metadata.get(REQUEST_KEY) or uuid.uuid4().hex
        rules.check_text(load_id, "x-request-id")
        await self._wait_settled()
        async for batch in request_iterator:
            key = request_key(call.peer.identity.uri, call.operator, call.method, f"{load_id}:{summary.batches}")
            pending = PendingChange(key, request_digest(call.method, batch))
            token = _pending_var.set(pending)
            try:
                if self._answered(pending, f"{load_id}:{summary.batches}") is None:
                    reply = await self._load_batch(batch)
                    summary.last_update_sequence = reply.update_sequence
            finally:
                _pending_var.reset(token)
            summary.records += len(batch.records)
            summary.batches += 1
        audit.set_subject(f"移行:{summary.records}")
        return summary

    async def _load_batch(self, batch) -> kizon_pb2.ChangeReply:
        """One batch of the initial load: existing numbers are kept, an existing resident is never overwritten."""
        rules.check_message_text(batch)
        records = list(batch.records)
        for record in records:
            rules.require_resident_code(record.resident_code)
            require_person_items(record)
            rules.require_past_date(record.birth_date, "生年月日")
        codes = [r.resident_code for r in records]
        atena_numbers = [r.atena_number for r in records if r.atena_number]
        if len(set(codes)) < len(codes) or len(set(atena_numbers)) < len(atena_numbers):
            raise rules.invalid("移行 rule: a 住民票コード or 宛名番号 appears twice in one batch")
        taken = self._taken(codes) or [r[0] for r in rows_in(
            self.rt.store.db, "SELECT atena_number FROM residents WHERE atena_number", atena_numbers)]
        if taken:
            raise rules.already_exists(f"移行 rule: {len(taken)} of these residents are already recorded, e.g. {taken[0]}")
        numbers = await self._assign_numbers(codes)
        for record in records:
            record.individual_number = numbers[record.resident_code]
            record.municipality_code = self.municipality
            record.status = CURRENT
            record.history_number = 0
        migration = identity_pb2.IdentityUpdate(migration=True)
        reply = await self._commit(records, new=set(codes), echo=False, feed_atena=not batch.skip_atena,
                                   extras={code: migration for code in codes})
        self._advance_household_numbers(records)
        return reply

    def _advance_household_numbers(self, records) -> None:
        """New households after a load must not reuse a loaded 世帯番号."""
        loaded = max((int(r.household_number) for r in records if r.household_number.isdigit()), default=0)
        self.rt.store.db.execute("INSERT INTO counters VALUES ('household_number', ?) ON CONFLICT(name) DO UPDATE SET "
                                 "value = MAX(value, excluded.value)", (loaded,))

    def _taken(self, codes: list[str]) -> list[str]:
        return [r[0] for r in rows_in(self.rt.store.db, "SELECT resident_code FROM residents WHERE resident_code", codes)]

    # -- how a change is made -------------------------------------------------------------------------
    async def _commit(self, records, *, new=frozenset(), delivery=frozenset(), extras=None, former=None,
                      feed_atena: bool = True, echo: bool = True, wrap=None):
        """Write the change down (an intent), have the CS check and apply the 本人確認情報, then commit the
        records here; a refusal leaves nothing written, a lost answer is settled with the CS."""
        call = current_call()
        pending = _pending_var.get()
        audit.set_batch_subject(r.resident_code for r in records)
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        fresh = [r for r in records if r.resident_code in new and not r.atena_number]
        if fresh:  # numbers are drawn now and kept in the intent (a refusal leaves a gap)
            with self.rt.store.transaction() as db:
                first = next_counter(db, "atena_number", len(fresh)) - len(fresh) + 1
            for offset, record in enumerate(fresh):
                record.atena_number = f"{first + offset:015d}"
                record.history_number = 0
        for record in records:
            record.history_number += 1
            record.is_latest = True
            if not record.status:
                record.status = CURRENT
        batch = identity_pb2.IdentityUpdateBatch(municipality_code=self.municipality)
        for index, record in enumerate(records):
            record.municipality_code = self.municipality
            record.request_control_number = control_number(pending.key, index)
            record.operator_id, record.terminal_id, record.recorded_at = call.operator, call.terminal, now
            update = batch.updates.add(municipality_code=self.municipality)
            if extras and record.resident_code in extras:
                update.MergeFrom(extras[record.resident_code])
            update.info.CopyFrom(identity_info(record, operator=call.operator, terminal=call.terminal))
            update.info.record_status_flag = 0 if record.status == CURRENT else 1
            if former and record.resident_code in former:
                update.info.former_resident_code = former[record.resident_code]
                update.info.resident_code_use_date = _today()
            if record.resident_code in delivery:
                update.delivery.CopyFrom(delivery_info(record))
        change = kizon_pb2.ChangeReply(request_control_number=pending.key)
        if echo:
            change.records.extend(records)
        intent = Intent(pending.key, pending.digest, wrap(change) if wrap else change, list(records), batch, feed_atena)
        self.ledger.write(intent)
        try:
            ack = await self.cs.SubmitIdentityUpdates(batch, timeout=self.rt.peer_timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in AMBIGUOUS:  # the CS may have applied it: keep the intent, settle it when the CS answers
                self._inflight.discard(pending.key)
                self._unsettled()
                raise rules.Violation(grpc.StatusCode.UNAVAILABLE, f"市町村CS unreachable ({exc.code().name}): the change "
                                      "is settled with the CS when it is back; retry with the same "
                                      f"{REQUEST_KEY} for its answer") from None
            self.ledger.drop(pending.key)
            raise rules.Violation(exc.code(), f"市町村CS: {exc.details()}") from None
        self._write(intent, ack.update_sequence)
        return self._shown_reply(intent.reply)

    def _write(self, intent: Intent, sequence: int) -> None:
        """Commit an intent the CS has applied: the records, the feed to atena and the answer, at once."""
        set_sequence(intent.reply, sequence)
        records = intent.records
        blobs = [r.SerializeToString() for r in records]
        with self.rt.store.transaction() as db:
            db.executemany("INSERT INTO residents VALUES (?,?,?,?,?,?,?) ON CONFLICT(atena_number) DO UPDATE SET "
                           "resident_code=excluded.resident_code, household_number=excluded.household_number, "
                           "history_number=excluded.history_number, status=excluded.status, "
                           "town_code=excluded.town_code, record=excluded.record",
                           [(r.atena_number, r.resident_code, r.household_number, r.history_number, r.status,
                             r.town_code, blob) for r, blob in zip(records, blobs)])
            db.executemany("INSERT INTO history VALUES (?,?,?)",
                           [(r.atena_number, r.history_number, blob) for r, blob in zip(records, blobs)])
            if intent.feed_atena:
                self.outbox.put_many(db, "atena", [atena_pb2.ResidentChange(record=r) for r in records])
            self.ledger.finish(db, intent)
        if intent.feed_atena:
            self.outbox.wake("atena")

    def _shown_reply(self, reply):
        """A reply as this caller may see it (個人番号 masked without the permission)."""
        change = change_of(reply)
        shown = [self._shown(r) for r in change.records]
        del change.records[:]
        change.records.extend(shown)
        if isinstance(reply, kizon_pb2.MoveOutReply) and reply.HasField("certificate"):
            reply.certificate.person.CopyFrom(self._shown(reply.certificate.person))
        return reply

    async def _cs_call(self, method, request):
        """A call to this municipality's CS; its refusal is passed on, its absence says nothing was written."""
        return await self.rt.call_peer(method, request, "市町村CS", unreachable="nothing was recorded")

    async def _new_numbers(self) -> tuple[str, str]:
        """A 住民票コード from the pool (reserved for this request: a retry draws the same one, a refusal gives
        it back) and the 個人番号 national generates for it."""
        pending = _pending_var.get()
        pending.reserved = True
        codes = await self._cs_call(self.cs.DrawResidentCodes, cs_pb2.CodeDraw(count=1, reservation=pending.key))
        code = codes.resident_codes[0]
        return code, (await self._assign_numbers([code]))[code]

    async def _assign_numbers(self, codes: list[str]) -> dict[str, str]:
        reply = await self._cs_call(self.cs.AssignIndividualNumbers, cs_pb2.ResidentCodes(resident_codes=codes))
        return {a.resident_code: a.individual_number for a in reply.assignments}

    def _existing(self, resident_code: str) -> records_pb2.ResidentRecord | None:
        """A person's record if they were ever registered here; a current resident may not move in."""
        found = self.rt.store.one("SELECT record FROM residents WHERE resident_code=?", (resident_code,))
        if found is None:
            return None
        record = records_pb2.ResidentRecord.FromString(found[0])
        if record.status == CURRENT:
            raise rules.precondition(f"転入 rule (PIA Ⅲ(2)5): {resident_code} is already a resident of {self.municipality}")
        return record

    def _new_household_number(self) -> str:
        return f"{next_counter(self.rt.store.db, 'household_number'):010d}"

    def _address(self, address) -> records_pb2.Address:
        """An address on this municipality's 町字 list, with its full text and postal code."""
        place = town(self.municipality, address.town_code)
        if place is None:
            raise rules.invalid(f"町字 rule: {address.town_code!r} is not a 町字 of {self.municipality}")
        rules.require_text(address.address_line, "番地")
        full = records_pb2.Address()
        full.CopyFrom(address)
        full.postal_code = address.postal_code or place.postal_code
        full.address = f"{self.place_name}{place.name}{address.address_line}" + (f" {address.katagaki}" if address.katagaki else "")
        return full

    def _locked(self, *keys: str):
        """Serialize changes to the same households (striped locks, taken in a fixed order)."""
        stripes = sorted({hash(k) % LOCK_STRIPES for k in keys})
        return _MultiLock([self._locks[i] for i in stripes])

    # -- 転入通知 --------------------------------------------------------------------------------
    async def _poll_move_in_notices(self) -> None:
        """Take 転入通知 from the CS and finalize the 除票 of each former resident (転出確定)."""
        cursor = self.rt.store.scalar("SELECT value FROM counters WHERE name='notice_cursor'", default=0)
        while True:
            await asyncio.sleep(NOTICE_POLL)
            try:
                reply = await self.cs.TakeMoveInNotices(cs_pb2.NoticeCursor(processed_up_to=cursor),
                                                        timeout=self.rt.peer_timeout)
            except grpc.aio.AioRpcError:
                continue
            if not reply.notices:
                continue
            with self.rt.store.transaction() as db:
                for notice in reply.notices:
                    self._confirm_move_out(db, notice)
                db.execute("INSERT INTO counters VALUES ('notice_cursor', ?) ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                           (reply.last_id,))
            cursor = reply.last_id

    def _confirm_move_out(self, db, notice) -> None:
        found = db.execute("SELECT record FROM residents WHERE resident_code=?", (notice.resident_code,)).fetchone()
        if found is None:
            log.warning("転入通知 for %s, who is not in this register", notice.resident_code)
            return
        record = _next(records_pb2.ResidentRecord.FromString(found[0]))
        if record.status != REMOVED or record.removal_reason != "転出" or record.move_out_destination_confirmed:
            log.warning("転入通知 for %s, whose 住民票 is not 転出予定 here: ignored", notice.resident_code)
            self.rt.audit.append(caller=self.rt.node.identity, method="kizon/転入通知受理", status="FAILED_PRECONDITION",
                                 subject=notice.resident_code)
            return
        record.history_number += 1
        record.move_out_destination_confirmed = notice.new_address
        _mark(record, "転出確定", notice.move_in_date, notice.notified_at)
        record.recorded_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        blob = record.SerializeToString()
        db.execute("UPDATE residents SET history_number=?, record=? WHERE atena_number=?",
                   (record.history_number, blob, record.atena_number))
        db.execute("INSERT INTO history VALUES (?,?,?)", (record.atena_number, record.history_number, blob))
        self.rt.audit.append(caller=self.rt.node.identity, method="kizon/転入通知受理", status="OK",
                             subject=notice.resident_code)


class _MultiLock:
    def __init__(self, locks):
        self.locks = locks

    async def __aenter__(self):
        for lock in self.locks:
            await lock.acquire()

    async def __aexit__(self, *exc):
        for lock in reversed(self.locks):
            lock.release()


def _head(members) -> records_pb2.ResidentRecord:
    for member in members:
        if member.relationship == "世帯主":
            return member
    return members[0]


def _take_household(record, head) -> None:
    """Put record in head's household, at head's address."""
    record.household_number = head.household_number
    record.householder_name = head.name_kanji
    for name in ("town_code", "address_line", "katagaki", "postal_code", "address"):
        setattr(record, name, getattr(head, name))


def _set_address(record, address) -> None:
    for name in ("town_code", "address_line", "katagaki", "postal_code", "address"):
        setattr(record, name, getattr(address, name))


def _next(record) -> records_pb2.ResidentRecord:
    """A copy of a record to become its next history entry (the number is given at commit)."""
    copy = records_pb2.ResidentRecord()
    copy.CopyFrom(record)
    return copy


def _mark(record, reason: str, change_date: str, notification_date: str, detail: str = "") -> None:
    record.change_reason, record.change_date, record.notification_date = reason, change_date, notification_date
    record.change_reason_detail = detail
