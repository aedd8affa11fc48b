"""本人確認情報検索: served by the CS and, for terminals, by a search process of its own beside it.

The search process (``python -m nodes.search_process``, started and restarted by the CS) holds the CS's identity and
reads the CS's store through a read-only connection: SQLite's WAL lets it read while the CS writes, so a
terminal's search never waits in the CS's event loop behind the updates of the counters.
"""
from __future__ import annotations

from nodes import audit, identityfile
from nodes.guard import current_call
from protos import cs_pb2_grpc, national_pb2_grpc


class SearchMixin:
    """本人確認情報検索 under the two-item rule, with 個人番号 shown only to whom may see it."""

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

    async def _national_call(self, method, request):
        return await self.rt.call_peer(method, request, "全国サーバ")


class SearchServicer(SearchMixin, cs_pb2_grpc.CommunicationServerServicer):
    """The search process's servicer: SearchIdentity alone; every other method is not served here."""

    def __init__(self, runtime):
        self.rt = runtime
        self.municipality = runtime.node.municipality
        self.national = runtime.stub(national_pb2_grpc.NationalServerStub, "national")
