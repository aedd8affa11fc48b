"""The CS servicer: the parts of this package (nodes/cs/parts.py), built and wired to their peers; RPCs delegate."""
from __future__ import annotations

from nodes import filedigests, identityfile
from nodes.cs.annex import SCHEMA as ANNEX_SCHEMA, Annex
from nodes.cs.bulk import BulkOutput
from nodes.cs.cards import Cards
from nodes.cs.delivery import SCHEMA as DELIVERY_SCHEMA, DeliveryFile
from nodes.cs.housekeeping import Housekeeping
from nodes.cs.immigration import SCHEMA as IMMIGRATION_SCHEMA, Immigration
from nodes.cs.moves import Moves
from nodes.cs.peers import Peers
from nodes.cs.pool import CodePool
from nodes.cs.queries import Queries
from nodes.cs.register import Register
from nodes.cs.search import Search
from nodes.cs.updates import Updates
from nodes.guard import current_call
from nodes.sessions import ROSTER_SCHEMA, RosterReceiver
from protos import cs_pb2, cs_pb2_grpc

# What is reached from outside this package, kept:
#   nodes.cs.SERVICE_NAME, SCHEMA, add_to_server, Servicer (nodes/runtime.py: runtime.module.*)
#   Servicer.batches() (nodes/runtime.py RunBatch, by getattr); Servicer has no .site (runtime.py's hasattr: only
#     kizon and atena serve Migration)
#   nodes.cs.search.SearchServicer (nodes/search_process.py: its .SearchIdentity)
#   nodes.cs.check_items, changed_items, check_special_move_in (nodes/cs/__init__.py)
#   nodes.cs.checks.POOL_LOW, POOL_REFILL (now read from nodes.settings.current() when asked)

SERVICE_NAME = cs_pb2.DESCRIPTOR.services_by_name["CommunicationServer"].full_name
SCHEMA = identityfile.SCHEMA + identityfile.SEARCH_SCHEMA + ROSTER_SCHEMA + """
CREATE TABLE IF NOT EXISTS code_pool (resident_code TEXT PRIMARY KEY);   -- 住民票コード not yet used
CREATE TABLE IF NOT EXISTS code_reservations (     -- 住民票コード drawn for a request, not yet used
    resident_code TEXT PRIMARY KEY,
    reservation TEXT NOT NULL,              -- the 依頼管理番号 (kizon's request key) it is kept for
    reserved_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS code_reservations_by ON code_reservations(reservation);
CREATE TABLE IF NOT EXISTS update_journal (             -- updates as sent to the prefecture, by 更新順番号
    update_sequence INTEGER PRIMARY KEY,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS code_offers (
    resident_code TEXT NOT NULL,            -- who asked for a 住民票コード変更
    candidate TEXT NOT NULL,
    PRIMARY KEY (resident_code, candidate)
);
CREATE TABLE IF NOT EXISTS move_out_certificates (      -- 転出証明書情報 received (特例転入 to come)
    resident_code TEXT PRIMARY KEY,
    from_municipality TEXT NOT NULL,
    planned_move_out_date TEXT NOT NULL,
    received_at TEXT NOT NULL,
    certificate BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS move_in_notices (            -- 転入通知 received for former residents
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    resident_code TEXT NOT NULL,
    notice BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (                   -- 依頼管理番号 already applied: retries are answered
    request_control_number TEXT PRIMARY KEY,
    update_sequence INTEGER NOT NULL,
    digest BLOB NOT NULL                                -- of the update's items: a reused number must repeat them
);
""" + DELIVERY_SCHEMA + ANNEX_SCHEMA + IMMIGRATION_SCHEMA


def add_to_server(servicer, server) -> None:
    """Register the servicer on a gRPC server."""
    cs_pb2_grpc.add_CommunicationServerServicer_to_server(servicer, server)


class Servicer(cs_pb2_grpc.CommunicationServerServicer):
    """The CS: checks, numbers and forwards 本人確認情報; pools, certificates, notices, cards, search."""

    def __init__(self, runtime):
        filedigests.keep(runtime, register=True)  # (the 整合性確認's digests and ranges, kizon's too: an older file
        # upgraded, the scrubber)
        # What the CS deletes (送付先情報 past its retention above all) is overwritten, not left in free pages.
        runtime.store.secure_delete()
        peers = Peers(runtime)
        self.rosters = RosterReceiver(runtime.store, runtime.session_keys)  # kizon's roster, for the guard
        register = Register(runtime.node.municipality)
        self.bulk = BulkOutput(runtime)  # terminal reads counted (PIA Ⅲ(2)3), in a ledger the search process shares
        self.search = Search(runtime, peers, self.bulk)
        self.pool = CodePool(runtime, peers, register)
        self.moves = Moves(runtime, peers, register)
        self.deliveries = DeliveryFile(runtime, peers)  # the 送付先情報ファイル and its sender (突合, then the card system)
        self.annex = Annex(runtime)  # 戸籍附票通知 to and from the 本籍地
        self.immigration = Immigration(runtime)  # 法務省通知 from 法務省, 市町村通知 to it
        self.updates = Updates(runtime, peers, register, self.pool, self.moves, self.deliveries,
                               self.annex, self.immigration)  # (builds the outbox)
        self.housekeeping = Housekeeping(runtime, self.pool, self.updates, self.moves, self.deliveries)  # (daily purge)
        self.cards = Cards(runtime, peers, self.search, self.bulk)
        self.queries = Queries(runtime, peers, self.search, self.bulk)

    def batches(self) -> dict:
        """Batch jobs this node runs on demand."""
        return self.housekeeping.batches()

    # -- 本人確認情報の更新 (nodes/cs/updates.py) ------------------------------------------------------------
    async def SubmitIdentityUpdates(self, request, context):
        """本人確認情報の更新 from kizon: checked, numbered, stored and queued, all or nothing."""
        return await self.updates.submit(request)

    async def SubmitIdentityUpdateGroup(self, request, context):
        """Group commit: several counters' batches in one transaction, each applied or refused on its own."""
        return await self.updates.submit_group(request)

    async def GetRequestStatus(self, request, context):
        """Which 依頼管理番号 this CS has applied, with the 更新順番号 it gave each."""
        return await self.updates.request_status(request)

    # -- 住民票コード and 個人番号 (nodes/cs/pool.py) ------------------------------------------------------------
    async def DrawResidentCodes(self, request, context):
        """住民票コード drawn from this municipality's pool and reserved for one request."""
        return await self.pool.draw(request)

    async def ReleaseResidentCodes(self, request, context):
        """Codes reserved for a request that was refused or abandoned go back to the pool."""
        return await self.pool.release(request)

    async def GetPoolStatus(self, request, context):
        """How many codes are left, and whether that is below the alert threshold."""
        return await self.pool.status(request)

    async def ReceiveOperatorRoster(self, request, context):
        """操作者の名簿 from this municipality's kizon (revocation of its operators' sessions here too)."""
        return self.rosters.receive(request, current_call().peer.identity.municipality)

    async def AssignIndividualNumbers(self, request, context):
        """個人番号 for new residents, generated by national (relayed)."""
        return await self.pool.assign_numbers(request)

    async def OfferResidentCodes(self, request, context):
        """住民票コード変更請求: candidates from national, remembered for the change that follows."""
        return await self.pool.offer(request)

    # -- between municipalities (nodes/cs/moves.py, nodes/cs/housekeeping.py) ---------------------------------
    async def ReceiveMoveOutCertificate(self, request, context):
        """転出証明書情報 from the former municipality's CS, kept until the 特例転入 or its deadline."""
        return await self.moves.receive_certificate(request)

    async def TakeMoveOutCertificate(self, request, context):
        """特例転入 at kizon: the 転出証明書情報 received for the person, windows and card checked."""
        return await self.moves.take_certificate(request)

    async def ReceiveMoveInNotice(self, request, context):
        """転入通知 from the new municipality's CS about a former resident of here."""
        return await self.moves.receive_notice(request)

    async def TakeMoveInNotices(self, request, context):
        """The 転入通知 received so far; those kizon says it has recorded are deleted."""
        return await self.moves.take_notices(request)

    async def ReceiveAnnexNotice(self, request, context):
        """戸籍附票通知 from a 住所地's CS about a person whose 本籍 is here (nodes/cs/annex.py)."""
        return await self.annex.receive(request)

    async def TakeAnnexNotices(self, request, context):
        """The 戸籍附票通知 received so far, for kizon's 住基GW; those it has handed on are deleted."""
        return await self.annex.take(request)

    async def ReceiveImmigrationNotice(self, request, context):
        """法務省通知 from 法務省 about a foreign resident of here (nodes/cs/immigration.py)."""
        return await self.immigration.receive(request)

    async def TakeImmigrationNotices(self, request, context):
        """The 法務省通知 received so far, for kizon's 住基GW; those it has applied are deleted."""
        return await self.immigration.take(request)

    async def PurgeExpiredCertificates(self, request, context):
        """The batch that deletes 転出証明書情報 not used in time (PIA Ⅰ2 システム2 ③)."""
        return await self.housekeeping.purge_on_demand(request)

    # -- the 個人番号カード (nodes/cs/cards.py) -----------------------------------------------------------------
    async def ChangeCard(self, request, context):
        """The card lifecycle for kizon: passed to the card system for this municipality's residents."""
        return await self.cards.change(request)

    async def VerifyByCard(self, request, context):
        """本人確認 with the card: card and PIN checked by the card system, then the 本人確認情報."""
        return await self.cards.verify(request)

    async def WideAreaLookup(self, request, context):
        """広域交付 at this municipality: the card proves who asks; their CS gives the 本人確認情報."""
        return await self.cards.wide_area_lookup(request)

    async def ProvideForWideArea(self, request, context):
        """広域交付 elsewhere: the 本人確認情報 of a current resident of here, for another CS."""
        return await self.cards.provide_for_wide_area(request)

    # -- reads (nodes/cs/queries.py, nodes/cs/search.py) -------------------------------------------------------
    async def GetIdentity(self, request, context):
        """本人確認情報の照会 for this municipality's 統合端末 and kizon."""
        return await self.queries.identity(request)

    async def CheckResidence(self, request, context):
        """One person, one current residence: national's view of a person about to move in here (relayed)."""
        return await self.queries.residence(request)

    async def RegisterDigests(self, request, context):
        """整合性確認 of kizon: digests of the REGISTER_ITEMS of this municipality's 本人確認情報 (a stream)."""
        async for batch in self.queries.register_digests(request):
            yield batch

    async def CheckConsistency(self, request, context):
        """整合性確認: every record that differs between this CS, the prefecture and national."""
        return await self.queries.consistency(request)

    async def SearchIdentity(self, request, context):
        """本人確認情報検索 under the two-item rule; nationwide asks national for other municipalities."""
        return await self.search.search(request)
