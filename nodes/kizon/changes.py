"""How a counter change is made (ChangeEngine): 依頼管理番号, the intent, the CS's answer, the commit, and settling
what a crash left."""
from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import uuid

import grpc

from nodes import audit, clock, rules
from nodes.reasons import common as C
from nodes.reasons import kizon as K
from nodes.refusal import CATALOGUE, PEER_REFUSED, rule_of, well_formed_reason
from nodes.intents import Intent, Ledger, change_of, control_number, request_digest, request_key, set_sequence
from nodes.kizon import requesters
from nodes.kizon.gateway import Layout
from nodes.kizon.items import CURRENT, today_iso
from nodes.kizon.parts import Gate, PendingChange, Records
from nodes.groupcommit import STATUS, GroupSender
from nodes.guard import REQUEST_KEY, current_call
from nodes.outbox import Target
from nodes.store import next_counter
from protos import atena_pb2, atena_pb2_grpc, conbini_pb2, conbini_pb2_grpc, cs_pb2, identity_pb2, kizon_pb2, records_pb2

log = logging.getLogger("nodes.kizon")  # one logger name for the whole node

LOCK_STRIPES = 256
SETTLE_WAIT = 5.0  # seconds a counter change waits for pending changes to be settled with the CS
AMBIGUOUS = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED,
             grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}  # the CS may or may not have applied the change
pending_var: contextvars.ContextVar = contextvars.ContextVar("pending_change", default=None)


def _refused_by_cs(outcome) -> rules.Violation:
    """The CS's refusal of one change of a group (a GroupOutcome): its code and the rule it names, kept."""
    rule = CATALOGUE.get(outcome.reason, PEER_REFUSED)  # (a rule id's shape at most, never the CS's free text)
    return rules.Violation(rule, f"市町村CS: {outcome.detail}", code=STATUS.get(outcome.code, grpc.StatusCode.UNKNOWN),
                           reason=outcome.reason if well_formed_reason(outcome.reason) else rule.reason)


async def cs_call(runtime, method, request):
    """A call to this municipality's CS; its refusal is passed on, its absence says nothing was written."""
    return await runtime.call_peer(method, request, "市町村CS", unreachable="nothing was recorded")


class ChangeEngine:
    """How a counter change is made: 依頼管理番号, the intent (the Ledger), the locks, the CS's answer, the commit,
    and settling with the CS what a crash or a lost answer left."""

    def __init__(self, runtime, municipality: str, cs, register: Records, gate: Gate):
        self.rt = runtime
        self.municipality = municipality
        self.cs = cs  # this municipality's 市町村CS (a CommunicationServerStub)
        self.register = register
        self.gate = gate
        atena = runtime.stub(atena_pb2_grpc.AtenaStub, "atena", municipality)
        targets = {"atena": Target(atena.NotifyResidentChanges, atena_pb2.ResidentChangeBatch)}
        if any(n.kind == "conbini" and n.municipality == municipality for n in runtime.topology.nodes):
            # (a node has one outbox: the JPKI情報 for the コンビニ交付システム, queued by issuance.py, travels in it too)
            conbini = runtime.stub(conbini_pb2_grpc.ConvenienceIssuanceStub, "conbini", municipality)
            targets["conbini"] = Target(conbini.RegisterUserSerials, conbini_pb2.UserSerialBatch)
        self.outbox = runtime.use_outbox(targets)
        self._locks = [asyncio.Lock() for _ in range(LOCK_STRIPES)]
        self.ledger = Ledger(runtime.store)
        self.layout = Layout(runtime, municipality, register)  # 住基GW: the update the CS takes, with its notices
        self.submitter = GroupSender(self._send_group)  # changes to the CS, group-committed under load
        self._inflight: set[str] = set()
        self._completing: set[str] = set()  # changes sent to the CS whose outcome is still being committed here
        self._settled_event = asyncio.Event()  # set while no intent waits to be settled with the CS
        self._settler: asyncio.Task | None = None
        if self.ledger.pending():
            runtime.background(self._settle)  # left by a crash: settled before any new change is made
        else:
            self._settled_event.set()

    # -- 依頼管理番号 and pending changes -------------------------------------------------------------
    async def serve(self, request, handler, notifier=None):
        """A counter change (異動): answered once per scoped 依頼管理番号, refused when the id is reused for
        another request, held while earlier changes are being settled with the CS; handler() makes it. notifier: the
        届出人 (checked against the register and recorded on the entries when the change is committed)."""
        self.gate.refuse_if_frozen()
        call = current_call()
        client_id = call.metadata.get(REQUEST_KEY) or uuid.uuid4().hex
        rules.check_text(client_id, "x-request-id")
        pending = PendingChange(request_key(call.peer.identity.uri, call.operator, call.method, client_id),
                                request_digest(call.method, request))
        answer = self.answered(pending, client_id)
        if answer is not None:
            return answer
        if await self.wait_settled():  # an intent of this very request may have been among those settled
            answer = self.answered(pending, client_id)
            if answer is not None:
                return answer
        if pending.key in self._inflight or pending.key in self._completing:
            raise K.REQUEST_IN_PROGRESS(f"依頼管理番号 rule: {REQUEST_KEY} {client_id} is being "
                                        "served; retry once it has been answered")
        self._inflight.add(pending.key)
        pending.notifier = notifier
        token = pending_var.set(pending)
        try:
            return await handler()
        except rules.Violation:
            if pending.reserved and self.ledger.intent(pending.key) is None:
                await self._release(pending.key)  # a refused change gives its 住民票コード back to the pool
            raise
        finally:
            pending_var.reset(token)
            self._inflight.discard(pending.key)

    @contextlib.contextmanager
    def pending(self, key: str, digest: bytes):
        """A change of its own (a batch of a load) being served under this key while the block runs."""
        pending = PendingChange(key, digest)
        token = pending_var.set(pending)
        try:
            yield pending
        finally:
            pending_var.reset(token)

    def answered(self, pending: PendingChange, client_id: str):
        """The first reply to this request if it was applied; a reused id with another request is refused."""
        found = self.ledger.answered(pending.key)
        if found is None:
            intent = self.ledger.intent(pending.key)
            if intent is not None and intent.digest != pending.digest:
                raise C.REQUEST_ID_REUSED(f"依頼管理番号 rule: {REQUEST_KEY} {client_id} was used for a different request")
            return None
        digest, reply = found
        if digest != pending.digest:
            raise C.REQUEST_ID_REUSED(f"依頼管理番号 rule: {REQUEST_KEY} {client_id} was used for a different request")
        return self._shown_reply(reply)

    async def wait_settled(self) -> bool:
        """Wait (bounded) until no intent waits to be settled with the CS; whether there was any wait."""
        if self._settled_event.is_set():
            return False
        try:
            await asyncio.wait_for(self._settled_event.wait(), SETTLE_WAIT)
        except asyncio.TimeoutError:
            count = len(self.ledger.pending())
            raise K.CHANGES_WAIT_FOR_CS(f"整合 rule: {count} changes sent to the 市町村CS wait for "
                                        "its answer (it is unreachable); no change is made until they are settled — retry "
                                        f"later with the same {REQUEST_KEY}") from None
        return True

    def pending_count(self) -> int:
        """Changes sent to the CS and not yet settled here."""
        return len(self.ledger.pending())

    def drain(self) -> None:
        """Push what is queued on: settle intents with the CS, deliver the feed to atena."""
        if self.ledger.pending() and self._settled_event.is_set():
            self._unsettled()
        if self.outbox is not None:
            self.outbox.wake("atena")

    def _unsettled(self) -> None:
        """A change's outcome at the CS is unknown: hold new changes and settle it in the background."""
        self._settled_event.clear()
        if self._settler is None or self._settler.done():
            self._settler = asyncio.create_task(self._settle())

    async def _settle(self) -> None:
        """Ask the CS which pending intents it applied: commit those here, drop the others."""
        delay = 0.1
        while True:
            keys = [k for k in self.ledger.pending() if k not in self._inflight and k not in self._completing]
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
                if intent is None or key in self._inflight or key in self._completing:
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

    def notified(self, request) -> str:
        """届出年月日: the office's today; a request may repeat it but never set another date."""
        today = today_iso()
        if request.notification_date and request.notification_date != today:
            raise C.SET_BY_SERVER(f"届出年月日 rule: the office records the day of the 届出 itself ({today}), "
                                  f"not {request.notification_date}")
        return today

    # -- how a change is made -------------------------------------------------------------------------
    async def commit(self, records, *, new=frozenset(), delivery=frozenset(), extras=None, former=None,
                     feed_atena: bool = True, echo: bool = True, wrap=None):
        """Write the change down (an intent), have the CS check and apply the 本人確認情報, then commit the
        records here; a refusal leaves nothing written, a lost answer is settled with the CS."""
        call = current_call()
        pending = pending_var.get()
        audit.set_batch_subject(r.resident_code for r in records)
        now = clock.stamp()
        fresh = [r for r in records if r.resident_code in new and not r.atena_number]
        if fresh:  # numbers are drawn now and kept in the intent (a refusal leaves a gap)
            with self.rt.store.transaction() as db:
                first = next_counter(db, "atena_number", len(fresh)) - len(fresh) + 1
            for offset, record in enumerate(fresh):
                record.atena_number = f"{first + offset:015d}"
                record.history_number = 0
        if pending.notifier is not None:
            self._note_notifier(pending.notifier, records)
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
            self.layout.fill(update, record, key=pending.key, operator=call.operator, terminal=call.terminal,
                             former=(former or {}).get(record.resident_code, ""), delivery=record.resident_code in delivery)
        change = kizon_pb2.ChangeReply(request_control_number=pending.key)
        if echo:
            change.records.extend(records)
        intent = Intent(pending.key, pending.digest, wrap(change) if wrap else change, list(records), batch, feed_atena)
        self.ledger.write(intent)
        # From here the change is finished whatever becomes of the caller: a client that goes away (a cancelled
        # call, a closed stream of a load) must not leave an intent the CS may be applying at this moment. A retry
        # meanwhile is told the request is being served; once finished, it gets the answer.
        self._completing.add(pending.key)
        completion = asyncio.ensure_future(self._complete(intent, batch))
        completion.add_done_callback(functools.partial(self._completed, intent.key))
        await asyncio.shield(completion)
        return self._shown_reply(intent.reply)

    def _note_notifier(self, notifier, records) -> None:
        """The 届出人 of the change, recorded on every entry it writes; where the 届出人 gives a 住民票コード it is
        checked: as 本人, one of the persons of the 届出; as 同一世帯の者, a current member of the first one's household."""
        first = records[0]
        if notifier.kind == records_pb2.REQUESTER_SELF and notifier.resident_code:
            if notifier.resident_code not in {r.resident_code for r in records}:
                raise K.REQUESTER_NOT_SELF(f"届出 rule: the 届出人 {notifier.resident_code} as 本人 is not a person of "
                                           "this 届出")
        elif notifier.kind == records_pb2.REQUESTER_HOUSEHOLD and notifier.resident_code:
            requesters.check_relation(notifier, first, self.register.members, "届出")
        for record in records:
            record.notifier.CopyFrom(notifier)

    def _completed(self, key: str, completion: asyncio.Future) -> None:
        self._completing.discard(key)
        if not completion.cancelled():
            completion.exception()  # (retrieved: a refusal nobody waits for any more is not an error of kizon)

    async def _complete(self, intent: Intent, batch) -> None:
        """Have the CS apply a written intent, then commit it here or drop it; an unknown outcome is settled."""
        try:
            outcome = await self.submitter.submit(batch)  # (with the changes of the other counters of this moment)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in AMBIGUOUS and rule_of(exc) != "PEER_CERTIFICATE":
                # the CS may have applied it: keep the intent, settle it when the CS answers
                self._inflight.discard(intent.key)
                self._completing.discard(intent.key)
                self._unsettled()
                raise K.CHANGE_OUTCOME_UNKNOWN(f"市町村CS unreachable ({exc.code().name}): the change "
                                         "is settled with the CS when it is back; retry with the same "
                                         f"{REQUEST_KEY} for its answer") from None
            self.ledger.drop(intent.key)
            raise rules.Violation.relayed(exc, "市町村CS") from None
        if outcome.code:  # the CS refused this change alone: nothing of it was applied there
            self.ledger.drop(intent.key)
            raise _refused_by_cs(outcome)
        self._write(intent, outcome.ack.update_sequence)

    async def _send_group(self, batches: list) -> list:
        """One SubmitIdentityUpdateGroup call for the batches of several changes; one outcome per batch."""
        reply = await self.cs.SubmitIdentityUpdateGroup(cs_pb2.IdentityUpdateGroup(batches=batches),
                                                        timeout=self.rt.peer_timeout)
        if len(reply.outcomes) != len(batches):  # not an answer to what was asked: settle each change
            raise grpc.aio.AioRpcError(grpc.StatusCode.INTERNAL, details=f"the CS answered {len(reply.outcomes)} "
                                       f"outcomes for {len(batches)} changes")
        return list(reply.outcomes)

    def _write(self, intent: Intent, sequence: int) -> None:
        """Commit an intent the CS has applied: the records, the feed to atena and the answer, at once."""
        set_sequence(intent.reply, sequence)
        records = intent.records
        with self.rt.store.transaction() as db:
            self.register.write(db, records)  # the 住民票 entries, the feed and the answer: one transaction
            if intent.feed_atena:
                self.outbox.put_many(db, "atena", [_for_atena(r) for r in records])
            self.ledger.finish(db, intent)
        if intent.feed_atena:
            self.outbox.wake("atena")

    def _shown_reply(self, reply):
        """A reply as this caller may see it (個人番号 masked without the permission)."""
        change = change_of(reply)
        shown = [self.register.shown(r) for r in change.records]
        del change.records[:]
        change.records.extend(shown)
        if isinstance(reply, kizon_pb2.MoveOutReply) and reply.HasField("certificate"):
            reply.certificate.person.CopyFrom(self.register.shown(reply.certificate.person))
        return reply

    async def new_numbers(self) -> tuple[str, str]:
        """A 住民票コード from the pool (reserved for this request: a retry draws the same one, a refusal gives
        it back) and the 個人番号 national generates for it."""
        pending = pending_var.get()
        pending.reserved = True
        codes = await cs_call(self.rt, self.cs.DrawResidentCodes, cs_pb2.CodeDraw(count=1, reservation=pending.key,
                                                                                     numbered=True))
        code = codes.resident_codes[0]
        numbered = {a.resident_code: a.individual_number for a in codes.numbers}
        if numbered.get(code):  # (one call for both; a CS that does not number its draws is asked for the number)
            return code, numbered[code]
        return code, (await self.assign_numbers([code]))[code]

    async def assign_numbers(self, codes: list[str]) -> dict[str, str]:
        """The 個人番号 national holds (or generates) for these 住民票コード."""
        reply = await cs_call(self.rt, self.cs.AssignIndividualNumbers, cs_pb2.ResidentCodes(resident_codes=codes))
        return {a.resident_code: a.individual_number for a in reply.assignments}

    def locked(self, *keys: str):
        """Serialize changes to the same households (striped locks, taken in a fixed order)."""
        stripes = sorted({hash(k) % LOCK_STRIPES for k in keys})
        return _MultiLock([self._locks[i] for i in stripes])


class _MultiLock:
    """Several locks taken in order and given back in reverse."""

    def __init__(self, locks):
        self.locks = locks

    async def __aenter__(self):
        for lock in self.locks:
            await lock.acquire()

    async def __aexit__(self, *exc):
        for lock in reversed(self.locks):
            lock.release()


def _for_atena(record) -> atena_pb2.ResidentChange:
    """The change as the 宛名 system receives it: the register's items, not who made the 届出 or how they were checked
    (kizon's own 受付 record, no item of the 宛名)."""
    change = atena_pb2.ResidentChange(record=record)
    change.record.ClearField("notifier")
    return change
