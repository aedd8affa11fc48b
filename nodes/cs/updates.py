"""本人確認情報の更新 from kizon: checked (PIA Ⅲ(2)5), numbered, stored, journaled and queued for the prefecture."""
from __future__ import annotations

import asyncio
import logging
import time

import grpc

from nodes import audit, clock, identityfile, rules
from nodes.cs import parts
from nodes.cs.checks import (ADDRESS_ITEMS, CHANGE_ITEMS, CURRENT, JOURNAL_KEEP, NEW_PERSON_REASONS, POOL_REASONS,
                             RESIDENCE_RETRIES, changed_items, check_delivery_items, check_items, check_special_move_in,
                             mark_recovery)
from nodes.deferred import DeferredIndexes
from nodes.groupcommit import GROUP_LIMIT, STATUS
from nodes.guard import current_call
from nodes.outbox import Target
from nodes.reasons import common as C, cs as R
from nodes.store import next_counter, rows_in
from protos import card_pb2, common_pb2, cs_pb2, cs_pb2_grpc, identity_pb2, moj_pb2, moj_pb2_grpc, records_pb2

log = logging.getLogger("nodes.cs")  # one logger name for the whole node
STANDING_WAIT = 10.0  # seconds from the start during which updates wait for the prefecture to say where it stands
DELIVERY = "送付先情報"  # (what an update queued for the 送付先情報ファイル's sender, beside the outbox targets)


def _refusal(exc: rules.Violation) -> cs_pb2.GroupOutcome:
    return cs_pb2.GroupOutcome(code=exc.code.value[0], detail=str(exc), reason=exc.reason)


class Updates:
    """The 本人確認情報 updates, in 更新順番号 order, and their outbox to the prefecture, the card system and other
    CSs (the journal of what was sent: parts.Journal); the 送付先情報 they carry go to the 送付先情報ファイル."""

    def __init__(self, runtime, peers: parts.Peers, register: parts.Register, pool: parts.Pool,
                 certificates: parts.Certificates, deliveries: parts.Deliveries, annex: parts.AnnexQueue,
                 immigration: parts.ImmigrationQueue):
        self._rt = runtime
        self._municipality = runtime.node.municipality
        self._peers = peers
        self._register = register
        self._pool = pool
        self._certificates = certificates
        self._deliveries = deliveries
        self._annex = annex
        self._immigration = immigration
        self._indexes = DeferredIndexes(runtime, "identity")  # (made after a load into the empty file)
        card, prefecture = peers.card, peers.prefecture
        targets = {
            "card-lifecycle": Target(card.ChangeCard, card_pb2.CardRequest, None),
            "prefecture": Target(prefecture.ApplyIdentityUpdates, identity_pb2.IdentityUpdateBatch, "updates",
                                 {"municipality_code": self._municipality}, mark_recovery=mark_recovery,
                                 repair=self._resend_gap, sequenced=True),
            # (送付先情報 is not sent from the outbox: it is held in the 送付先情報ファイル, checked, then sent)
        }
        for other in runtime.topology.municipalities:
            if other.code != self._municipality:
                peer = runtime.stub(cs_pb2_grpc.CommunicationServerStub, "cs", other.code)
                targets[f"certificate:{other.code}"] = Target(peer.ReceiveMoveOutCertificate, identity_pb2.MoveOutCertificate, None)
                targets[f"notice:{other.code}"] = Target(peer.ReceiveMoveInNotice, identity_pb2.MoveInNotice, None)
                targets[f"annex:{other.code}"] = Target(peer.ReceiveAnnexNotice, identity_pb2.AnnexNotice, None)
        if any(n.kind == "moj" for n in runtime.topology.nodes):  # 市町村通知 to 法務省, in order, never skipped
            moj = runtime.stub(moj_pb2_grpc.ResidenceCardSystemStub, "moj")
            targets["moj"] = Target(moj.ReceiveMunicipalityNotice, moj_pb2.MunicipalityNotice, None, sequenced=True)
        self._outbox = runtime.use_outbox(targets)
        # Where the prefecture's numbering of this municipality stands, learned once at start (_compare_with_prefecture).
        self._standing_known = asyncio.Event()
        self._behind: tuple[int, int] | None = None  # (this CS's last 更新順番号, the prefecture's) when behind
        self._standing_until = time.monotonic() + STANDING_WAIT  # updates wait for the answer until then, no longer
        runtime.background(self._compare_with_prefecture)

    async def submit(self, request):
        """本人確認情報の更新 from kizon: checked, numbered, stored and queued, all or nothing."""
        if request.updates:
            audit.set_batch_subject(u.info.resident_code for u in request.updates)
        await self._check_batch(request)
        with self._rt.store.transaction() as db:
            sequence, queued = self._apply(db, request.updates)
        self._wake(queued)
        return common_pb2.UpdateAck(accepted=True, update_sequence=sequence, applied=len(request.updates))

    async def submit_group(self, request):
        """Group commit: the batches of several counters in one transaction, each applied or refused on its own
        (a savepoint each) exactly as SubmitIdentityUpdates would have answered it alone."""
        if len(request.batches) > GROUP_LIMIT:
            raise R.GROUP_SIZE(f"group rule: at most {GROUP_LIMIT} batches in one call, not {len(request.batches)}")
        outcomes: list[cs_pb2.GroupOutcome | None] = [None] * len(request.batches)

        async def checked(index, batch):
            try:
                await self._check_batch(batch)
            except rules.Violation as exc:
                outcomes[index] = _refusal(exc)
        await asyncio.gather(*(checked(i, b) for i, b in enumerate(request.batches)))
        queued: set[str] = set()
        with self._rt.store.transaction() as db:
            for index, batch in enumerate(request.batches):
                if outcomes[index] is not None:
                    continue
                db.execute("SAVEPOINT batch")
                try:
                    sequence, more = self._apply(db, batch.updates)
                except rules.Violation as exc:
                    db.execute("ROLLBACK TO batch")
                    outcomes[index] = _refusal(exc)
                else:
                    queued |= more
                    outcomes[index] = cs_pb2.GroupOutcome(ack=common_pb2.UpdateAck(
                        accepted=True, update_sequence=sequence, applied=len(batch.updates)))
                db.execute("RELEASE batch")
        self._wake(queued)
        # The call's own audit entry names what was applied; each refusal gets an entry of its own.
        call = current_call()
        for batch, outcome in zip(request.batches, outcomes):
            if outcome.code:
                self._rt.audit.append(caller=call.peer.identity.uri, method=call.method,
                                      status=STATUS[outcome.code].name,
                                      subject=",".join(u.info.resident_code for u in batch.updates)[:200])
        audit.set_batch_subject(u.info.resident_code for b, o in zip(request.batches, outcomes) if not o.code
                                for u in b.updates)
        return cs_pb2.GroupOutcomes(outcomes=outcomes)

    def _wake(self, queued: set[str]) -> None:
        """After the commit: the outbox targets and the 送付先情報 sender that have something new."""
        if DELIVERY in queued:
            self._deliveries.wake()
        self._outbox.wake(*(queued - {DELIVERY}))

    async def _check_batch(self, request) -> None:
        """What is checked before a batch's transaction: the municipality, the numbering, one residence per 転入."""
        if request.municipality_code != self._municipality:
            raise R.CS_MUNICIPALITY(f"市町村コード rule: this CS serves {self._municipality}, not {request.municipality_code}")
        await self._refuse_if_behind()
        for update in request.updates:
            if update.info.change_reason == "転入" and not update.migration:
                await self._check_one_residence(update.info)
        await self._pool.check_new_numbers(request.updates)

    async def _refuse_if_behind(self) -> None:
        """Number nothing while the prefecture has applied more of this municipality's 更新順番号 than this CS holds:
        a store restored from an old copy would number updates again that the prefecture has, and it would drop
        them as duplicates, silently (found by the restore drill). Waits a moment for the comparison at start."""
        left = self._standing_until - time.monotonic()
        if not self._standing_known.is_set() and left > 0:
            try:
                await asyncio.wait_for(self._standing_known.wait(), left)
            except asyncio.TimeoutError:
                pass  # (a prefecture out of reach since the start: the CS takes updates, as it does while it is down)
        if self._behind:
            own, theirs = self._behind
            raise R.SEQUENCE_BEHIND_PREFECTURE(
                f"更新順番号 rule: this CS holds updates up to {own} but the prefecture has applied {theirs}: the CS's "
                "store is older than what it acknowledged (restored from an old copy?); roll it forward from the "
                "prefecture (`testbed restore` does) before it numbers anything")

    async def _compare_with_prefecture(self) -> None:
        """At start: ask the prefecture how far it has applied this municipality's updates (an empty batch), until
        it answers; compared with what this CS has numbered."""
        pause = 0.2
        while True:
            try:
                ack = await self._peers.prefecture.ApplyIdentityUpdates(
                    identity_pb2.IdentityUpdateBatch(municipality_code=self._municipality), timeout=self._rt.peer_timeout)
                break
            except grpc.aio.AioRpcError as exc:
                log.warning("更新順番号: the prefecture did not say where it stands (%s); asking again", exc.code().name)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)  # (one empty call: cheap to ask again soon, and updates wait for it)
        own = identityfile.last_sequence(self._rt.store.db, self._municipality)
        log.info("更新順番号: this CS holds up to %d, the prefecture has applied %d", own, ack.update_sequence)
        if ack.update_sequence > own:
            self._behind = (own, ack.update_sequence)
            log.error("更新順番号: this CS holds up to %d, the prefecture has applied %d: no update is numbered until "
                      "the store is rolled forward", own, ack.update_sequence)
            self._rt.audit.append(caller=self._rt.node.identity, method="cs/更新順番号", status="FAILED_PRECONDITION",
                                  subject=f"behind the prefecture: {own} < {ack.update_sequence}")
        self._standing_known.set()

    def _apply(self, db, updates) -> tuple[int, set[str]]:
        """Check every update against the file (and the batch before it), then number and queue them."""
        seen: dict[str, records_pb2.IdentityInfo | None] = {}
        fresh = []
        sequence = 0
        # One look at the file for the whole batch: which of these people it holds, and how.
        known = identityfile.statuses(db, self._municipality, {u.info.former_resident_code or u.info.resident_code for u in updates})
        for update in updates:
            info = update.info
            if update.municipality_code != self._municipality or info.municipality_code != self._municipality:
                raise R.CS_MUNICIPALITY(f"市町村コード rule: this CS serves {self._municipality}")
            check_items(info)
            if update.HasField("delivery"):
                check_delivery_items(update.delivery)
            request_id = info.request_control_number
            if request_id:
                done = db.execute("SELECT update_sequence, digest FROM requests WHERE request_control_number=?",
                                  (request_id,)).fetchone()
                if done:  # a retry of an update applied before: answer it, apply nothing
                    if done[1] != identityfile.digest(info):
                        raise C.REQUEST_ID_REUSED(f"依頼管理番号 rule: {request_id} was used for a different update")
                    sequence = max(sequence, done[0])
                    continue
            code = info.former_resident_code if info.change_reason == "住民票コード変更" else info.resident_code
            if code in seen:
                before = seen[code]
            elif (update.migration or info.change_reason in NEW_PERSON_REASONS) and code not in known:
                before = None  # the common case of a load: a new person, nothing to read
            else:
                before = self._register.current(db, code)
            self._check_logic(db, update, before)
            if info.change_reason in POOL_REASONS and not update.migration:
                self._pool.use_reserved(db, info)
            seen[code] = info
            if info.change_reason == "住民票コード変更":
                seen[info.resident_code] = info
            fresh.append(update)
        if not fresh:
            return sequence, set()
        queued = {"prefecture"}
        sequence = next_counter(db, "update_sequence", len(fresh)) - len(fresh)
        stamp = clock.stamp()
        requests, rows = [], []
        for update in fresh:
            info = update.info
            sequence += 1
            info.update_sequence, info.timestamp = sequence, stamp
            rows.append(identityfile.row(info, register=True))  # serialized once: for the file, its digests and the outbox
            if info.request_control_number:
                requests.append((info.request_control_number, sequence, rows[-1][-2]))
            self._side_effects(db, update, queued)
        db.executemany("INSERT OR IGNORE INTO requests VALUES (?,?,?)", requests)
        identityfile.store_identities(db, [u.info for u in fresh], rows, indexes=self._indexes)
        identityfile.set_last_sequence(db, self._municipality, fresh[-1].info.update_sequence)
        payloads = [identityfile.update_bytes(self._municipality, r[-1]) for r in rows]
        self._outbox.put_payloads(db, "prefecture", payloads)
        # Kept after delivery too: a prefecture that lost updates gets them again from here.
        db.executemany("INSERT INTO update_journal VALUES (?,?)",
                       [(u.info.update_sequence, p) for u, p in zip(fresh, payloads)])
        return fresh[-1].info.update_sequence, queued

    async def _check_one_residence(self, info) -> None:
        """One person, one current residence: a 転入 only of someone national knows as current nowhere else
        (a 転出 there, on its way to national, is waited for a moment)."""
        query = identity_pb2.ResidenceQuery(resident_code=info.resident_code, individual_number=info.individual_number,
                                            municipality_code=self._municipality)
        for attempt in range(RESIDENCE_RETRIES):
            residence = await self._peers.national_call(
                self._peers.national.CheckResidence, query,
                unreachable="the one-residence rule cannot be checked; nothing was recorded")
            if not residence.current_in:
                break
            await asyncio.sleep(0.3)
        else:
            raise C.ONE_CURRENT_RESIDENCE(f"住所 rule (one current residence): {info.resident_code} is a current resident of "
                                          f"{', '.join(residence.current_in)}; a 転入 needs the 転出 there first")
        if residence.deceased_in:
            raise C.REMOVED_STAY_REMOVED(f"除票 rule (removed people stay removed): {info.resident_code} was recorded as "
                                         f"dead in {', '.join(residence.deceased_in)}")
        if info.individual_number and not residence.known:
            raise C.INDIVIDUAL_NUMBER_BY_NATIONAL(f"個人番号 rule (national alone issues 個人番号): national has issued no 個人番号 for "
                                                  f"{info.resident_code}")
        if residence.known and info.individual_number and residence.individual_number != info.individual_number:
            raise C.INDIVIDUAL_NUMBER_BY_NATIONAL(f"個人番号 rule: {info.resident_code} has another 個人番号 at national")

    async def _resend_gap(self, refusal) -> bool:
        """The prefecture lacks updates it was sent before (a gap): re-send them from the journal, each with
        its 異常時更新順番号, so that the blocked batch can follow."""
        due = dict(refusal.trailing_metadata() or ()).get(identityfile.SEQUENCE_DUE_KEY)
        if not due or not due.isdigit():
            return False
        rows = self._rt.store.db.execute("SELECT update_sequence, payload FROM update_journal WHERE update_sequence >= ? "
                                         "ORDER BY update_sequence LIMIT 1000", (int(due),)).fetchall()
        if not rows or rows[0][0] != int(due):
            log.error("更新順番号 gap at the prefecture from %s: no longer in the journal, a full resend is needed", due)
            return False
        batch = identity_pb2.IdentityUpdateBatch(municipality_code=self._municipality)
        with self._rt.store.transaction() as db:
            for _, payload in rows:
                update = batch.updates.add()
                update.MergeFromString(payload)
                mark_recovery(update, next_counter(db, "recovery_sequence"))
        try:
            await self._peers.prefecture.ApplyIdentityUpdates(batch, timeout=self._rt.peer_timeout)
        except grpc.aio.AioRpcError as exc:
            log.error("re-sending %d updates from %s failed: %s %s", len(rows), due, exc.code().name, exc.details())
            return False
        log.warning("更新順番号 gap at the prefecture repaired: %d updates from %s re-sent", len(rows), due)
        return True

    def _card_housekeeping(self, db, action, resident_code: str, queued: set[str], former: str = "", reason: str = "") -> None:
        """Queue a step the card system must take because of this update (in the same transaction)."""
        self._outbox.put(db, "card-lifecycle", card_pb2.CardRequest(
            action=action, resident_code=resident_code, municipality_code=self._municipality, reason=reason,
            former_resident_code=former))
        queued.add("card-lifecycle")

    def _check_logic(self, db, update, before) -> None:
        """The CS's logic checks of an update against what the file holds (PIA Ⅲ(2)5)."""
        info = update.info
        reason = info.change_reason
        if reason in NEW_PERSON_REASONS or update.migration:
            if before is not None and before.record_status_flag == CURRENT:
                raise R.ALREADY_CURRENT_RESIDENT(f"{reason} rule (PIA Ⅲ(2)5): 住民票コード {info.resident_code} is already "
                                                 f"a current resident of {self._municipality}")
            if update.special_move_in:
                certificate = self._certificates.certificate(db, info.resident_code)
                if certificate is None:
                    raise R.SPECIAL_MOVE_IN_CERTIFICATE(f"特例転入 rule: no 転出証明書情報 has arrived for {info.resident_code}")
                check_special_move_in(certificate, info.change_date)
            return
        if before is None:
            raise R.CHANGE_NEEDS_RECORD(f"{reason} rule: there is no 本人確認情報 of {info.former_resident_code or info.resident_code} "
                                        f"in {self._municipality} to change")
        if before.record_status_flag != CURRENT and reason != "職権修正":
            raise R.CHANGE_CURRENT_ONLY(f"{reason} rule: {before.resident_code} is no longer a resident (除票)")
        if info.individual_number != before.individual_number:  # (a 住民票コード変更 keeps the person's number)
            raise C.INDIVIDUAL_NUMBER_BY_NATIONAL(f"個人番号 rule (national alone issues 個人番号): a {reason} cannot change the 個人番号 "
                                                  f"of {before.resident_code}")
        if reason == "転居":
            extra = [n for n in changed_items(before, info) if n not in ADDRESS_ITEMS | CHANGE_ITEMS]
            if extra:
                raise R.MOVE_WITHIN_ADDRESS_ONLY(f"転居 rule (PIA Ⅲ(2)5): only the address may change, but {', '.join(extra)} "
                                                 "changed too")
        if reason == "住民票コード変更":
            if not self._pool.offered(db, info.former_resident_code, info.resident_code):
                raise R.RECODE_OFFERED_CODE(f"住民票コード変更 rule: {info.resident_code} is not among the codes offered "
                                            f"to {info.former_resident_code}")

    def _side_effects(self, db, update, queued: set[str]) -> None:
        """What an update brings besides itself: 送付先情報, 転出証明書情報, 転入通知, 戸籍附票通知, 市町村通知, a used
        offer."""
        info = update.info
        if update.HasField("delivery"):  # 送付先情報ファイル: in this transaction, sent after its 突合
            self._deliveries.hold(db, update.delivery)
            queued.add(DELIVERY)
        if update.HasField("move_out_certificate"):
            target = f"certificate:{update.move_out_certificate.destination_municipality_code}"
            if target in self._outbox.targets:
                self._outbox.put(db, target, update.move_out_certificate)
                queued.add(target)
        if update.HasField("move_in_notice"):
            target = f"notice:{update.move_in_notice.to_municipality_code}"
            if target in self._outbox.targets:  # a former municipality outside this network hears nothing
                self._outbox.put(db, target, update.move_in_notice)
                queued.add(target)
        if update.HasField("annex_notice"):  # 戸籍附票通知: numbered here, to the 本籍地 (or kept for our own 戸籍)
            target = self._annex.queue(db, update.annex_notice, info.resident_code)
            if target in self._outbox.targets:  # a 本籍地 outside this network hears nothing
                self._outbox.put(db, target, update.annex_notice)
                queued.add(target)
        if update.HasField("municipality_notice"):  # 市町村通知: numbered here, to 法務省 (none in the network: nobody)
            target = self._immigration.queue(db, update.municipality_notice, info.resident_code)
            if target in self._outbox.targets:
                self._outbox.put(db, target, update.municipality_notice)
                queued.add(target)
        if update.special_move_in:
            self._certificates.use_certificate(db, info.resident_code)
        if info.change_reason == "死亡":  # the card of someone who died is revoked
            self._card_housekeeping(db, card_pb2.REVOKE, info.resident_code, queued, reason="死亡")
        if info.change_reason == "住民票コード変更":
            self._pool.use_offers(db, info.former_resident_code)
            self._card_housekeeping(db, card_pb2.RECODE, info.resident_code, queued, info.former_resident_code)
        if info.change_reason == "転入" and not update.migration:  # a card the mover holds follows them here
            # (a register loaded in a 移行 brings its residents' past 転入 with it: their cards are already here)
            self._card_housekeeping(db, card_pb2.TRANSFER, info.resident_code, queued)

    async def request_status(self, request):
        """Which 依頼管理番号 this CS has applied, with the 更新順番号 it gave each."""
        audit.set_subject(f"{len(request.request_control_numbers)} requests")
        reply = cs_pb2.RequestStatusReply()
        for number, sequence in rows_in(self._rt.store.db, "SELECT request_control_number, update_sequence FROM requests "
                                         "WHERE request_control_number", request.request_control_numbers):
            reply.applied.add(request_control_number=number, update_sequence=sequence)
        return reply

    def trim_journal(self, db) -> None:
        """Forget all but the latest JOURNAL_KEEP updates of the journal (those a gap could still ask for)."""
        last = db.execute("SELECT MAX(update_sequence) FROM update_journal").fetchone()[0] or 0
        db.execute("DELETE FROM update_journal WHERE update_sequence <= ?", (last - JOURNAL_KEEP,))
