"""The initial load (移行 of an existing register into kizon), and the 整合性確認 of kizon against the chain."""
from __future__ import annotations

import asyncio
import time
import uuid

import grpc

from nodes import audit, digests, filedigests, rules
from nodes.reasons import access as A
from nodes.reasons import common as C
from nodes.reasons import kizon as K
from nodes.intents import request_digest, request_key
from nodes.kizon.changes import cs_call
from nodes.kizon.items import CURRENT, ITEM_REPORT_LIMIT, require_person_items
from nodes.kizon.parts import Changes, Gate, Records
from nodes.records import register_differences, register_digest
from nodes.rules import OPERATIONS_ROLES
from nodes.guard import REQUEST_KEY, current_call
from protos import common_pb2, identity_pb2, kizon_pb2, records_pb2

DRAIN_SECONDS = 30.0  # how long a refused load's remaining batches are read (and ignored) before it is answered


async def _drain(request_iterator) -> None:
    """Read what the client still sends of a refused stream (bounded in time), so that it receives the refusal
    itself: a client still sending when the answer comes sees its send fail (INTERNAL) instead."""
    async def rest():
        """Read the rest of the stream."""
        async for _ in request_iterator:
            pass
    try:
        await asyncio.wait_for(rest(), DRAIN_SECONDS)
    except (asyncio.TimeoutError, rules.Violation):
        pass


class InitialLoad:
    """The bulk load of existing residents (BulkLoad) and the 整合性確認 (CheckConsistency)."""

    def __init__(self, runtime, municipality: str, cs, register: Records, changes: Changes, gate: Gate):
        self.rt = runtime
        self.municipality = municipality
        self.cs = cs  # this municipality's 市町村CS (a CommunicationServerStub)
        self.register = register
        self.changes = changes
        self.gate = gate

    # -- 整合性確認 ----------------------------------------------------------------------------------------
    async def check_consistency(self, request):
        """整合性確認 of the whole chain: kizon's 住民票 against the CS's 本人確認情報 (REGISTER_ITEMS), and the CS
        against the prefecture and national. The trees of ranges (kept as records are written, kept honest by the
        scrubbers) are compared first, records only where ranges differ, each re-hashed from its stored bytes;
        deep: every record at every hop re-hashed from its stored bytes."""
        started = time.perf_counter()
        current_call().require_role(OPERATIONS_ROLES, "整合性確認 rule")
        if request.municipality_code and request.municipality_code != self.municipality:
            raise C.CONSISTENCY_OWN_RECORDS(f"整合性確認 rule: this kizon checks only {self.municipality}")
        audit.set_subject(self.municipality)
        query = common_pb2.ConsistencyRequest(municipality_code=self.municipality, deep=request.deep)
        # The CS (and through it the prefecture and national) checks while kizon compares its register with the CS's.
        asked = asyncio.ensure_future(self.cs.CheckConsistency(query, timeout=600))
        try:
            ours, theirs, records = await (self._all_digests() if request.deep else self._differing_records())
            report = await asked
        except grpc.aio.AioRpcError as exc:
            asked.cancel()
            raise C.PEER_UNAVAILABLE(f"整合性確認: the 市町村CS did not answer: {exc.details()}") from None
        except BaseException:
            asked.cancel()
            raise
        report.records_kizon = records
        kizon_differences = []
        for code in sorted(c for c in ours if c not in theirs):
            kizon_differences.append(identity_pb2.ConsistencyDifference(resident_code=code, node="cs", items=["missing"]))
        for code in sorted(c for c in theirs if c not in ours):
            kizon_differences.append(identity_pb2.ConsistencyDifference(resident_code=code, node="kizon", items=["missing"]))
        differing = sorted(c for c, d in ours.items() if c in theirs and theirs[c] != d)
        for code in differing[:ITEM_REPORT_LIMIT]:
            other = await cs_call(self.rt, self.cs.GetIdentity, common_pb2.ResidentKey(resident_code=code))
            items = register_differences(self.register.person(code), other)
            kizon_differences.append(identity_pb2.ConsistencyDifference(resident_code=code, node="cs", items=items or ["digest"]))
        kizon_differences += [identity_pb2.ConsistencyDifference(resident_code=c, node="cs", items=["digest"])
                              for c in differing[ITEM_REPORT_LIMIT:]]
        # The kizon ↔ cs differences first: they come before those further down the chain.
        rest = list(report.differences)
        del report.differences[:]
        report.differences.extend(kizon_differences + rest)
        report.seconds = time.perf_counter() - started
        return report

    async def _all_digests(self):
        """Every 住民票's register digest and the CS's of every 本人確認情報, each computed from the stored bytes."""
        query = common_pb2.ConsistencyRequest(municipality_code=self.municipality)
        asked = asyncio.ensure_future(filedigests.collect_digests(self.cs.RegisterDigests(query, timeout=600)))
        ours = {}
        try:
            for rows in self.register.scan():
                for code, blob in rows:
                    ours[code] = register_digest(records_pb2.ResidentRecord.FromString(blob))
                await asyncio.sleep(0)  # (the CS's answers are read as they come)
        except BaseException:
            asked.cancel()
            raise
        return ours, await asked, len(ours)

    async def _differing_records(self):
        """The register's tree of ranges walked against the CS's, down to the leaves that differ; the records of
        those leaves here and at the CS (digests from the stored bytes), and how many 住民票 kizon holds."""
        async def theirs(prefixes):
            query = common_pb2.ConsistencyRequest(municipality_code=self.municipality, prefixes=prefixes, ranges=True)
            return digests.as_dict([r async for batch in self.cs.RegisterDigests(query, timeout=60) for r in batch.ranges])
        ours = self.register.tree()
        leaves, records, _ = await digests.differing_leaves(ours, theirs)
        if not leaves:
            return {}, {}, records
        query = common_pb2.ConsistencyRequest(municipality_code=self.municipality, prefixes=leaves)
        return (self.register.in_ranges(leaves),
                await filedigests.collect_digests(self.cs.RegisterDigests(query, timeout=600)), await digests.counted(ours))

    # -- the initial load ---------------------------------------------------------------------------
    async def bulk_load(self, request_iterator):
        """移行: existing residents in batches, numbered by national, checked and stored by the CS. Each batch is
        a change of its own (依頼管理番号 x-request-id:N): a load resumed with the same id skips what is in."""
        self.gate.refuse_if_frozen()
        call = current_call()
        if call.session is None or "manager" not in call.session.roles:
            raise A.OPERATOR_ROLE("移行 rule: the initial load is run by a manager")
        summary = kizon_pb2.LoadSummary()
        load_id = call.metadata.get(REQUEST_KEY) or uuid.uuid4().hex
        rules.check_text(load_id, "x-request-id")
        await self.changes.wait_settled()
        async for batch in request_iterator:
            key = request_key(call.peer.identity.uri, call.operator, call.method, f"{load_id}:{summary.batches}")
            with self.changes.pending(key, request_digest(call.method, batch)) as pending:
                try:
                    reply = self.changes.answered(pending, f"{load_id}:{summary.batches}")
                    if reply is None:
                        reply = await self._load_batch(batch)
                    # (a batch loaded by an earlier attempt of the same load counts with its own 更新順番号)
                    summary.last_update_sequence = max(summary.last_update_sequence, reply.update_sequence)
                except rules.Violation:
                    await _drain(request_iterator)
                    raise
            summary.records += len(batch.records)
            summary.batches += 1
        audit.set_subject(f"移行:{summary.records}")
        return summary

    async def _load_batch(self, batch) -> kizon_pb2.ChangeReply:
        """One batch of the initial load: existing numbers are kept, an existing resident is never overwritten."""
        records = list(batch.records)
        for record in records:
            rules.require_resident_code(record.resident_code)
            require_person_items(record)
            rules.require_past_date(record.birth_date, "生年月日")
        codes = [r.resident_code for r in records]
        atena_numbers = [r.atena_number for r in records if r.atena_number]
        if len(set(codes)) < len(codes) or len(set(atena_numbers)) < len(atena_numbers):
            raise K.INITIAL_LOAD_DUPLICATE("移行 rule: a 住民票コード or 宛名番号 appears twice in one batch")
        taken = self.register.taken(codes, atena_numbers)
        if taken:
            raise K.INITIAL_LOAD_ALREADY_RECORDED(f"移行 rule: {len(taken)} of these residents are already recorded, "
                                                  f"e.g. {taken[0]}")
        numbers = await self.changes.assign_numbers(codes)
        for record in records:
            record.individual_number = numbers[record.resident_code]
            record.municipality_code = self.municipality
            record.status = CURRENT
            record.history_number = 0
        migration = identity_pb2.IdentityUpdate(migration=True)
        reply = await self.changes.commit(records, new=set(codes), echo=False, feed_atena=not batch.skip_atena,
                                          extras={code: migration for code in codes})
        self.register.advance_household_numbers(records)
        return reply
