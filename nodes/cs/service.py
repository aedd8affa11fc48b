"""The CS servicer: one class made of the concerns of this package, wired to its peers."""
from __future__ import annotations

import asyncio
import random

from nodes import identityfile
from nodes.cs.cards import CardsMixin
from nodes.cs.checks import mark_recovery
from nodes.cs.moves import MovesMixin
from nodes.cs.pool import PoolMixin
from nodes.cs.queries import QueriesMixin
from nodes.cs.search import SearchMixin
from nodes.cs.updates import UpdatesMixin
from nodes.outbox import Target
from protos import card_pb2, card_pb2_grpc, cs_pb2, cs_pb2_grpc, identity_pb2, national_pb2_grpc, prefecture_pb2_grpc

SERVICE_NAME = cs_pb2.DESCRIPTOR.services_by_name["CommunicationServer"].full_name
SCHEMA = identityfile.SCHEMA + identityfile.SEARCH_SCHEMA + """
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
"""


def add_to_server(servicer, server) -> None:
    """Register the servicer on a gRPC server."""
    cs_pb2_grpc.add_CommunicationServerServicer_to_server(servicer, server)


class Servicer(UpdatesMixin, QueriesMixin, SearchMixin, PoolMixin, MovesMixin, CardsMixin, cs_pb2_grpc.CommunicationServerServicer):
    """The CS: checks, numbers and forwards 本人確認情報; pools, certificates, notices, search."""

    def __init__(self, runtime):
        self.rt = runtime
        self.municipality = runtime.node.municipality
        prefecture_code = runtime.topology.municipality(self.municipality).prefecture
        self.prefecture = runtime.stub(prefecture_pb2_grpc.PrefectureServerStub, "prefecture", prefecture=prefecture_code)
        self.national = runtime.stub(national_pb2_grpc.NationalServerStub, "national")
        card = self.card = runtime.stub(card_pb2_grpc.CardManagementStub, "card")
        targets = {
            "card-lifecycle": Target(card.ChangeCard, card_pb2.CardRequest, None),
            "prefecture": Target(self.prefecture.ApplyIdentityUpdates, identity_pb2.IdentityUpdateBatch, "updates",
                                 {"municipality_code": self.municipality}, mark_recovery=mark_recovery,
                                 repair=self._resend_gap, sequenced=True),
            "card": Target(card.SubmitDeliveryInfos, card_pb2.DeliveryBatch),
        }
        for other in runtime.topology.municipalities:
            if other.code != self.municipality:
                peer = runtime.stub(cs_pb2_grpc.CommunicationServerStub, "cs", other.code)
                targets[f"certificate:{other.code}"] = Target(peer.ReceiveMoveOutCertificate, identity_pb2.MoveOutCertificate, None)
                targets[f"notice:{other.code}"] = Target(peer.ReceiveMoveInNotice, identity_pb2.MoveInNotice, None)
        self.outbox = runtime.use_outbox(targets)
        self._refill: asyncio.Task | None = None
        self._issued: dict[str, str] = {}  # 住民票コード → 個人番号 as national last answered (bounded)
        self._rng = random.SystemRandom()
        runtime.background(self._purge_daily)
