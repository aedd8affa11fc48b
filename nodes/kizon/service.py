"""The kizon servicer: it builds the parts of this package (parts.py names what they call of one another) and hands
each RPC of the Kizon service to the part that serves it."""
from __future__ import annotations

from nodes import certificates, site
from nodes.sessions import ROSTER_SCHEMA
from nodes.kizon.changes import ChangeEngine
from nodes.kizon.counter import Counter
from nodes.kizon.disclosure import Disclosures
from nodes.kizon.family import AnnexNotices, FamilyNotices
from nodes.kizon.gateway import GatewayServicer
from nodes.kizon.immigration import ImmigrationNotices
from nodes.kizon.initial_load import InitialLoad
from nodes.kizon.issuance import Issuance
from nodes.kizon.jury import Jury
from nodes.kizon.notices import MoveInNotices
from nodes.kizon.official import Official
from nodes.kizon.operators import Operators
from nodes.kizon import register
from nodes.kizon.register import Inquiry, Register
from nodes.scrubber import Scrubber
from nodes.kizon.relocation import KizonSite
from protos import cs_pb2_grpc, gateway_pb2_grpc, kizon_pb2, kizon_pb2_grpc, migration_pb2_grpc

SERVICE_NAME = kizon_pb2.DESCRIPTOR.services_by_name["Kizon"].full_name
SCHEMA = certificates.SCHEMA + site.SCHEMA + ROSTER_SCHEMA + """
CREATE TABLE IF NOT EXISTS operators (          -- 操作者の名簿 (operators.py): kizon's own, seeded from the topology
    id TEXT PRIMARY KEY,                        -- 操作者ID: a removed operator's row stays, so an id is never reused
    roles TEXT NOT NULL,                        -- comma-separated, of nodes/sessions.py ROLES
    contractor TEXT NOT NULL DEFAULT '',        -- 委託先 ('' for the municipality's own staff)
    subcontractor TEXT NOT NULL DEFAULT '',     -- 再委託先
    permission TEXT NOT NULL DEFAULT '',        -- the 再委託 permission it works under (subcontract_permissions)
    since INTEGER NOT NULL,                     -- roster version from which its sessions count (added, role taken away)
    added_by TEXT NOT NULL,
    added_at REAL NOT NULL,
    changed_at REAL,
    removed_by TEXT,
    removed_at REAL
);
CREATE TABLE IF NOT EXISTS subcontract_permissions (  -- 再委託の許諾 a manager recorded
    reference TEXT PRIMARY KEY,
    contractor TEXT NOT NULL,
    subcontractor TEXT NOT NULL,
    permitted_by TEXT NOT NULL,
    reason TEXT NOT NULL,
    permitted_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS roster_deliveries (  -- the roster version each node that admits our sessions acknowledged
    target TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS residents (
    atena_number TEXT PRIMARY KEY,              -- 宛名番号: the person, for good
    resident_code TEXT NOT NULL UNIQUE,         -- 住民票コード (changes on a 住民票コード変更)
    household_number TEXT NOT NULL,             -- 世帯番号
    history_number INTEGER NOT NULL,            -- 個人履歴番号 of the current entry
    status INTEGER NOT NULL,                    -- ResidentRecord.Status: current or 除票
    town_code TEXT NOT NULL,
    record BLOB NOT NULL,
    rx1 INTEGER NOT NULL DEFAULT 0,             -- the REGISTER_ITEMS digest's first 128 bits (nodes/digests.py)
    rx2 INTEGER NOT NULL DEFAULT 0
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
""" + register.TREE.schema()



def add_to_server(servicer, server) -> None:
    """Register the servicer on a gRPC server."""
    kizon_pb2_grpc.add_KizonServicer_to_server(servicer, server)
    gateway_pb2_grpc.add_KizonGatewayServicer_to_server(servicer.gateway, server)
    migration_pb2_grpc.add_MigrationServicer_to_server(servicer.site, server)


class Servicer(kizon_pb2_grpc.KizonServicer):
    """The counter operations of 既存住基: each RPC delegated to a part.

    Reached from outside this package: `site` (the Migration service) and `gateway` (the 住基GW's service,
    gateway.py), both served by add_to_server (nodes/kinds.py declares kizon a kind that migrates and serves the
    gateway also, with no batch jobs). Nothing else of the servicer is read from outside, so no part is exposed
    through a delegating property.
    """

    def __init__(self, runtime):
        self.rt = runtime
        self.municipality = municipality = runtime.node.municipality
        place = runtime.topology.municipality(municipality)
        place_name = runtime.topology.prefectures.get(place.prefecture, "") + place.name
        cs = runtime.stub(cs_pb2_grpc.CommunicationServerStub, "cs", municipality)
        # The freeze of the site (移行), read by the parts that change the register. It lives in the store: the
        # Migration service's own SiteState below reads and writes the same rows.
        gate = site.SiteState(runtime)
        self.register = Register(runtime, municipality, place_name)
        register.upgrade(runtime.store)  # (a register of an older version: its digests and ranges, once)
        runtime.scrub(Scrubber(runtime.store, register.TREE, "record", ("rx1", "rx2"), register.kept_digests))
        self.changes = ChangeEngine(runtime, municipality, cs, self.register, gate)  # settles a crash's intents first
        self.operators = Operators(runtime, municipality)
        self.disclosures = Disclosures(runtime.store, municipality, runtime.session_keys)  # bulk output, every door
        self.inquiry = Inquiry(self.register, self.disclosures)
        self.counter = Counter(runtime, municipality, cs, self.register, self.changes)
        self.official = Official(self.register, self.changes)  # 職権記載, 職権消除, 国外転出
        self.issuance = Issuance(runtime, municipality, place_name, cs, self.register, self.disclosures, gate)
        self.initial_load = InitialLoad(runtime, municipality, cs, self.register, self.changes, gate)
        self.site = site.MigrationServicer(runtime, KizonSite(runtime.store, municipality, self.changes))  # 移行
        runtime.background(MoveInNotices(runtime, cs, self.register, gate).poll)
        # 住基GW (gateway.py): the 戸籍 system's notices, the 附票通知 it passes on, the 裁判員候補者名簿, and the
        # 法務省通知 of the foreign residents (immigration.py)
        self.gateway = GatewayServicer(FamilyNotices(runtime, municipality, self.register, self.changes, gate),
                                       Jury(runtime, municipality, self.register), self.issuance)
        runtime.background(AnnexNotices(runtime, cs, gate).poll)
        if any(n.kind == "moj" for n in runtime.topology.nodes):  # the 法務省通知, applied 職権 (none: no 法務省)
            runtime.background(ImmigrationNotices(runtime, municipality, cs, self.register, self.changes, gate).poll)

    # -- operators (operators.py) ----------------------------------------------------------------------
    async def Login(self, request, context):
        """操作者認証 at a terminal."""
        return self.operators.login(request)

    async def ApproveBulkOutput(self, request, context):
        """A manager's prior approval of one bulk output."""
        return self.operators.approve_bulk_output(request)

    async def ListOperators(self, request, context):
        """The roster of operators (名簿)."""
        return self.operators.list_operators(request)

    async def AddOperator(self, request, context):
        """A manager adds an operator (the credential shown once)."""
        return await self.operators.add_operator(request)

    async def ChangeOperatorRoles(self, request, context):
        """A manager changes another operator's roles."""
        return await self.operators.change_roles(request)

    async def RemoveOperator(self, request, context):
        """A manager removes an operator (their sessions revoked)."""
        return await self.operators.remove_operator(request)

    async def PermitSubcontract(self, request, context):
        """A manager records a 再委託 permission."""
        return self.operators.permit_subcontract(request)

    # -- 異動 at the counter (counter.py) ---------------------------------------------------------------
    async def Birth(self, request, context):
        """出生."""
        return await self.counter.birth(request)

    async def MoveIn(self, request, context):
        """転入 (with a 転出証明書, by 特例, or from abroad)."""
        return await self.counter.move_in(request)

    async def MoveWithin(self, request, context):
        """転居."""
        return await self.counter.move_within(request)

    async def MoveOut(self, request, context):
        """転出 (or 特例転出), with its 転出証明書."""
        return await self.counter.move_out(request)

    async def Death(self, request, context):
        """死亡."""
        return await self.counter.death(request)

    async def Correct(self, request, context):
        """職権修正."""
        return await self.counter.correct(request)

    async def RecordByOffice(self, request, context):
        """職権記載."""
        return await self.official.record(request)

    async def RemoveByOffice(self, request, context):
        """職権消除."""
        return await self.official.remove(request)

    async def Emigrate(self, request, context):
        """国外転出."""
        return await self.official.emigrate(request)

    async def OfferResidentCodes(self, request, context):
        """住民票コード変更請求, first step: the candidates."""
        return await self.counter.offer_resident_codes(request)

    async def ChangeResidentCode(self, request, context):
        """住民票コード変更請求, second step: the chosen code."""
        return await self.counter.change_resident_code(request)

    async def SplitHousehold(self, request, context):
        """世帯分離."""
        return await self.counter.split_household(request)

    async def MergeHousehold(self, request, context):
        """世帯合併."""
        return await self.counter.merge_household(request)

    async def ChangeHouseholder(self, request, context):
        """世帯主変更."""
        return await self.counter.change_householder(request)

    # -- 照会 and bulk output (register.py) --------------------------------------------------------------
    async def GetResident(self, request, context):
        """住民票の照会."""
        return self.inquiry.resident(request)

    async def GetHistory(self, request, context):
        """Every history entry of a person."""
        return self.inquiry.history(request)

    async def GetHousehold(self, request, context):
        """The current members of a household."""
        return self.inquiry.household(request)

    async def ExportResidents(self, request, context):
        """Bulk output of the register."""
        for record in self.inquiry.export(request):
            yield record

    # -- certificates and cards (issuance.py) ------------------------------------------------------------
    async def ChangeCard(self, request, context):
        """A step of the 個人番号カード's lifecycle."""
        return await self.issuance.change_card(request)

    async def IssueCertificate(self, request, context):
        """証明書の交付 at the counter (広域交付 too)."""
        return await self.issuance.certificate(request)

    async def GetIssuanceHistory(self, request, context):
        """交付履歴 of a person."""
        return self.issuance.issuance_history(request)

    async def IssueKioskCertificate(self, request, context):
        """コンビニ交付."""
        return await self.issuance.kiosk_certificate(request)

    # -- the initial load and 整合性確認 (initial_load.py) ---------------------------------------------------
    async def CheckConsistency(self, request, context):
        """整合性確認 of the whole chain."""
        return await self.initial_load.check_consistency(request)

    async def BulkLoad(self, request_iterator, context):
        """移行: the initial load of existing residents."""
        return await self.initial_load.bulk_load(request_iterator)
