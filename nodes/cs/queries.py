"""照会 and the 整合性確認 against the prefecture and national (本人確認情報検索 is nodes/cs/search.py's)."""
from __future__ import annotations

import asyncio
import time

import grpc

from nodes import audit, digests, filedigests, identityfile, rules
from nodes.cs import parts
from nodes.cs.checks import changed_items
from nodes.reasons import common as C
from nodes.rules import OPERATIONS_ROLES
from nodes.guard import current_call
from protos import common_pb2, identity_pb2


class Queries:
    """Reads of the 本人確認情報ファイル: 照会, national's view of a residence, and the 整合性確認."""

    def __init__(self, runtime, peers: parts.Peers, disclosure: parts.Disclosure, bulk: parts.BulkOutput):
        self._rt = runtime
        self._municipality = runtime.node.municipality
        self._peers = peers
        self._disclosure = disclosure
        self._bulk = bulk

    async def identity(self, request):
        """本人確認情報の照会 for this municipality's 統合端末 and kizon."""
        audit.set_subject(request.resident_code)
        info = identityfile.read_identity(self._rt.store, request.resident_code)
        self._bulk.read(current_call(), (info.resident_code,))  # (a 統合端末's read counts: PIA Ⅲ(2)3)
        return self._disclosure.shown(info)

    async def residence(self, request):
        """One person, one current residence: national's view of a person about to move in here (relayed)."""
        audit.set_subject(request.resident_code)
        rules.require_resident_code(request.resident_code)
        query = identity_pb2.ResidenceQuery()
        query.CopyFrom(request)
        query.municipality_code = self._municipality
        reply = await self._peers.national_call(self._peers.national.CheckResidence, query)
        # kizon learns whether the number on a 転出証明書 is right, never the number itself: a person's 個人番号
        # reaches a municipality with the person (the certificate, the 転入 update), not by asking.
        reply.ClearField("individual_number")
        return reply

    async def register_digests(self, request):
        """整合性確認 of kizon: digests of the REGISTER_ITEMS of this municipality's 本人確認情報."""
        audit.set_subject(self._municipality)
        for batch in filedigests.digests_asked(self._rt.store, self._municipality, request, identityfile.REGISTER):
            yield batch

    async def consistency(self, request):
        """整合性確認: every record that differs between this CS, the prefecture and national. The trees of ranges
        are compared first and records only where ranges differ; deep: every record re-hashed at every hop."""
        started = time.perf_counter()
        current_call().require_role(OPERATIONS_ROLES, "整合性確認 rule")
        municipality = request.municipality_code or self._municipality
        if municipality != self._municipality:
            raise C.CONSISTENCY_OWN_RECORDS(f"整合性確認 rule: this CS checks only {self._municipality}")
        audit.set_subject(municipality)
        peers = (("prefecture", self._peers.prefecture), ("national", self._peers.national))
        try:
            if request.deep:
                ours, theirs = await self._all_digests(municipality)
                counts = [len(ours)] + [len(t) for t in theirs]
                compared = [(ours, t) for t in theirs]
            else:
                compared, counts = await self._differing_records(municipality)
        except grpc.aio.AioRpcError as exc:
            raise C.PEER_UNAVAILABLE(f"整合性確認: a peer did not answer: {exc.details()}") from None
        report = identity_pb2.ConsistencyReport(municipality_code=municipality, records_cs=counts[0],
                                                records_prefecture=counts[1], records_national=counts[2])
        for (node, stub), (ours, digests) in zip(peers, compared):
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

    async def _all_digests(self, municipality: str):
        """Every record's digest here and at both peers, each computed from the stored bytes."""
        query = common_pb2.ConsistencyRequest(municipality_code=municipality)
        prefecture, national = self._peers.prefecture, self._peers.national
        # The peers compute their digests while this CS computes its own.
        peers = asyncio.ensure_future(asyncio.gather(
            filedigests.collect_digests(prefecture.IdentityDigests(query, timeout=120)),
            filedigests.collect_digests(national.IdentityDigests(query, timeout=120))))
        try:
            ours = await filedigests.collect_here(filedigests.digest_batches(self._rt.store, municipality))
        except BaseException:
            peers.cancel()
            raise
        return ours, await peers

    async def _differing_records(self, municipality: str):
        """The trees of ranges walked against each peer's at once, down to the leaves that differ; the records of
        those leaves here and there (digests from the stored bytes), and the records each holds."""
        ours = filedigests.tree_of(self._rt.store, municipality, identityfile.IDENTITY)

        async def against(stub):
            async def theirs(prefixes):
                query = common_pb2.ConsistencyRequest(municipality_code=municipality, prefixes=prefixes, ranges=True)
                return digests.as_dict([r async for batch in stub.IdentityDigests(query, timeout=60) for r in batch.ranges])
            leaves, here, there = await digests.differing_leaves(ours, theirs)
            if not leaves:
                return ({}, {}), here, there
            query = common_pb2.ConsistencyRequest(municipality_code=municipality, prefixes=leaves)
            records = (filedigests.records_in(self._rt.store, municipality, leaves, identityfile.IDENTITY),
                       await filedigests.collect_digests(stub.IdentityDigests(query, timeout=120)))
            return records, await digests.counted(ours), await digests.counted(theirs)
        (a, here, prefecture), (b, _, national) = await asyncio.gather(against(self._peers.prefecture),
                                                                       against(self._peers.national))
        return [a, b], [here, prefecture, national]

    async def _item_differences(self, report, node: str, stub, codes: list[str]) -> None:
        """Name the differing items of each record whose digests differ."""
        for start in range(0, len(codes), 1000):
            chunk = codes[start:start + 1000]
            theirs = {i.resident_code: i for i in (await stub.GetIdentities(common_pb2.ResidentKeys(resident_codes=chunk),
                                                                             timeout=60)).items}
            ours = {i.resident_code: i for i in identityfile.read_identities(self._rt.store, self._municipality, chunk).items}
            for code in chunk:
                items = [n for n in changed_items(ours[code], theirs[code]) if n not in identityfile.TRANSPORT_ITEMS]
                report.differences.add(resident_code=code, node=node, items=items)
