"""本人確認情報検索: served by the CS and, for terminals, by a search process of its own beside it.

The search process (``python -m nodes.search_process``, started and restarted by the CS) holds the CS's identity and
reads the CS's store through a read-only connection: SQLite's WAL lets it read while the CS writes, so a
terminal's search never waits in the CS's event loop behind the updates of the counters.
"""
from __future__ import annotations

from nodes import audit, identityfile
from nodes.cs import parts
from nodes.cs.bulk import BulkOutput
from nodes.cs.peers import National
from nodes.guard import current_call
from protos import cs_pb2_grpc


class Search:
    """本人確認情報検索 under the two-item rule, with 個人番号 shown only to whom may see it (parts.Disclosure)."""

    def __init__(self, runtime, national: parts.NationalPeer, bulk: parts.BulkOutput):
        self._rt = runtime
        self._municipality = runtime.node.municipality
        self._national = national
        self._bulk = bulk

    async def search(self, request):
        """本人確認情報検索 under the two-item rule; nationwide asks national for other municipalities."""
        identityfile.search_kind(request)
        audit.set_subject(request.resident_code or (request.individual_number and "個人番号") or "4情報")
        if request.nationwide:
            result = await self._national.national_call(self._national.national.SearchIdentity, request)
            result.source = "national"
        else:
            result = identityfile.search(self._rt.store, request, self._municipality)
            result.source = "cs"
        # Every person a terminal is shown counts towards its operator's bulk output (PIA Ⅲ(2)3), before it is shown.
        self._bulk.read(current_call(), (info.resident_code for info in result.matches))
        for info in result.matches:
            self.shown(info)
        return result

    def shown(self, info):
        """The 本人確認情報 as this caller may see it: 個人番号 masked without the permission."""
        if not self._rt.may_see_number(current_call()) and info.individual_number:
            info.individual_number = "*" * 12
        return info


class SearchServicer(cs_pb2_grpc.CommunicationServerServicer):
    """The search process's servicer: SearchIdentity alone; every other method is not served here."""

    def __init__(self, runtime):
        self.search = Search(runtime, National(runtime), BulkOutput(runtime))

    async def SearchIdentity(self, request, context):
        """本人確認情報検索 under the two-item rule; nationwide asks national for other municipalities."""
        return await self.search.search(request)
