"""The kizon servicer: one class made of the concerns of this package, wired to its peers."""
from __future__ import annotations

import asyncio
import random

from nodes import certificates, site
from nodes.groupcommit import GroupSender
from nodes.intents import Ledger
from nodes.kizon.changes import LOCK_STRIPES, ChangeMixin
from nodes.kizon.counter import CounterMixin
from nodes.kizon.disclosure import Disclosures
from nodes.kizon.issuance import IssuanceMixin
from nodes.kizon.migration import MigrationMixin
from nodes.kizon.operators import OperatorsMixin
from nodes.kizon.register import RegisterMixin
from nodes.kizon.relocation import KizonSite
from nodes.outbox import Target
from protos import atena_pb2, atena_pb2_grpc, cs_pb2_grpc, kizon_pb2, kizon_pb2_grpc, migration_pb2_grpc

SERVICE_NAME = kizon_pb2.DESCRIPTOR.services_by_name["Kizon"].full_name
SCHEMA = certificates.SCHEMA + site.SCHEMA + """
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
CREATE TABLE IF NOT EXISTS approvals (          -- a manager's approvals of bulk output, each good once
    id TEXT PRIMARY KEY,
    approver TEXT NOT NULL,
    requester TEXT NOT NULL,
    terminal TEXT NOT NULL,
    purpose TEXT NOT NULL,
    max_records INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL,                               -- when an export used it up
    used_records INTEGER NOT NULL DEFAULT 0     -- records reads have spent of it
);
CREATE TABLE IF NOT EXISTS outputs (            -- every bulk output: who, when, how many, under which approval
    operator TEXT NOT NULL,
    at REAL NOT NULL,
    records INTEGER NOT NULL,
    approval_id TEXT
);
CREATE INDEX IF NOT EXISTS outputs_operator ON outputs(operator, at);
CREATE INDEX IF NOT EXISTS residents_town ON residents(town_code);
CREATE TABLE IF NOT EXISTS history (
    atena_number TEXT NOT NULL,
    history_number INTEGER NOT NULL,
    record BLOB NOT NULL,
    PRIMARY KEY (atena_number, history_number)
);
"""


def add_to_server(servicer, server) -> None:
    """Register the servicer on a gRPC server."""
    kizon_pb2_grpc.add_KizonServicer_to_server(servicer, server)
    migration_pb2_grpc.add_MigrationServicer_to_server(servicer.site, server)


class Servicer(CounterMixin, IssuanceMixin, MigrationMixin, OperatorsMixin, RegisterMixin, ChangeMixin,
               kizon_pb2_grpc.KizonServicer):
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
        self.submitter = GroupSender(self._send_group)  # changes to the CS, group-committed under load
        # The municipality's session signing key and its operators' credential verifiers: this node's alone.
        self.session_signer = runtime.pki.node_session_key(runtime.node.name, self.municipality)
        runtime.session_keys[self.municipality] = self.session_signer.public_key()
        self.operators = runtime.pki.operator_verifiers(runtime.node.name, self.municipality, create=True)
        self.disclosures = Disclosures(runtime.store, self.municipality, runtime.session_keys)  # bulk output, every door
        self._rng = random.SystemRandom()  # 世帯番号 that do not lead from one to the next
        self.site = site.MigrationServicer(runtime, KizonSite(self))  # 移行: the freeze, export and import
        self._inflight: set[str] = set()
        self._completing: set[str] = set()  # changes sent to the CS whose outcome is still being committed here
        self._settled_event = asyncio.Event()  # set while no intent waits to be settled with the CS
        self._settler: asyncio.Task | None = None
        if self.ledger.pending():
            runtime.background(self._settle)  # left by a crash: settled before any new change is made
        else:
            self._settled_event.set()
        runtime.background(self._poll_move_in_notices)
