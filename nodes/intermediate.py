"""中間サーバ・プラットフォーム: one 副本 partition per municipality (tenant) and 情報提供 by 符号.

The tenant of a write is always the calling atena's own municipality, taken from its
certificate, never from the message: no tenant can write another's data, whatever it sends.
A 情報提供 names its 事務 (番号法第19条第8号, 主務省令第2条の表; nodes/jimu.py) and answers only that 事務's items.
The 事務 is what the 情報提供NWS vouches for (it checks the 情報照会者 against the table, as in the real system);
the 中間サーバ checks that the 事務 is one of the table and gives nothing beyond its items.
"""
from __future__ import annotations

import uuid

from nodes.guard import current_call
from nodes import audit, clock, jimu as J, rules
from nodes.reasons import access as A, common as C, platform as R
from nodes.sessions import ROSTER_SCHEMA, RosterReceiver
from nodes.weaken import weakened
from protos import card_pb2, card_pb2_grpc, common_pb2, intermediate_pb2, intermediate_pb2_grpc, records_pb2

PROVISION_COLUMNS = ("jimu", "items")  # added to 情報提供等記録 after its first version
SERVICE_NAME = intermediate_pb2.DESCRIPTOR.services_by_name["IntermediateServer"].full_name
SCHEMA = ROSTER_SCHEMA + """
CREATE TABLE IF NOT EXISTS copies (
    tenant TEXT NOT NULL,                   -- 市町村コード of the owning municipality
    fugo TEXT NOT NULL,                     -- 符号
    unified_atena_number TEXT NOT NULL,     -- 団体内統合宛名番号
    record BLOB NOT NULL,                   -- 副本 of 住民票関係情報
    PRIMARY KEY (tenant, fugo)
);
CREATE TABLE IF NOT EXISTS provisions (    -- 情報提供等記録
    provision_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    fugo TEXT NOT NULL,
    inquiry_id TEXT NOT NULL,
    requester TEXT NOT NULL,
    provided_at TEXT NOT NULL,
    jimu TEXT NOT NULL DEFAULT '',          -- the 事務 (主務省令第2条の表) provided for
    items TEXT NOT NULL DEFAULT ''          -- the items provided, comma-separated ResidentRecord field names
);
CREATE INDEX IF NOT EXISTS provisions_fugo ON provisions(tenant, fugo);
CREATE TABLE IF NOT EXISTS copy_people (   -- whose 副本 each 符号 is (for a card holder's own 情報提供等記録)
    tenant TEXT NOT NULL,
    resident_code TEXT NOT NULL,
    fugo TEXT NOT NULL,
    PRIMARY KEY (tenant, resident_code)
);
CREATE TABLE IF NOT EXISTS staff_log (     -- 中間サーバ staff login and logout, per tenant
    at TEXT NOT NULL,
    tenant TEXT NOT NULL,
    operator TEXT NOT NULL,
    terminal TEXT NOT NULL,
    event TEXT NOT NULL
);
"""


def add_to_server(servicer, server) -> None:
    """Register the servicer on a gRPC server."""
    intermediate_pb2_grpc.add_IntermediateServerServicer_to_server(servicer, server)


class Servicer(intermediate_pb2_grpc.IntermediateServerServicer):
    """副本 store and 情報提供."""

    def __init__(self, runtime):
        self.rt = runtime
        self.rosters = RosterReceiver(runtime.store, runtime.session_keys)  # each tenant's kizon's roster
        self.card = runtime.stub(card_pb2_grpc.CardManagementStub, "card")
        have = {row[1] for row in runtime.store.db.execute("PRAGMA table_info(provisions)")}
        for column in PROVISION_COLUMNS:  # a store of an earlier version: its records name no 事務
            if column not in have:
                runtime.store.db.execute(f"ALTER TABLE provisions ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")

    async def RegisterCopies(self, request, context):
        """副本の登録 into the caller's own tenant."""
        tenant = current_call().peer.identity.municipality
        for item in request.items:
            rules.require_text(item.fugo, "符号")
            rules.require_text(item.unified_atena_number, "団体内統合宛名番号")
            if item.record.municipality_code != tenant:
                raise R.TENANT_ISOLATION(f"tenant isolation: atena of {tenant} may not register data of {item.record.municipality_code}")
            if item.record.individual_number and not weakened("number-in-copy"):
                raise R.INTERMEDIATE_NO_INDIVIDUAL_NUMBER("符号 rule: a 副本 carries no 個人番号 (institutions identify people by 符号 only)")
        if request.items:
            audit.set_batch_subject(i.record.resident_code for i in request.items)
        with self.rt.store.transaction() as db:
            db.executemany("INSERT INTO copies VALUES (?,?,?,?) ON CONFLICT(tenant, fugo) DO UPDATE SET "
                           "unified_atena_number=excluded.unified_atena_number, record=excluded.record",
                           [(tenant, i.fugo, i.unified_atena_number, i.record.SerializeToString()) for i in request.items])
            db.executemany("INSERT INTO copy_people VALUES (?,?,?) ON CONFLICT(tenant, resident_code) DO UPDATE SET "
                           "fugo=excluded.fugo", [(tenant, i.record.resident_code, i.fugo) for i in request.items])
        return common_pb2.UpdateAck(accepted=True, applied=len(request.items))

    async def ProvideInfo(self, request, context):
        """情報提供: the items of the 事務 asked for, from the tenant's 副本 for a 符号, recorded in the 情報提供等記録."""
        audit.set_subject(request.fugo)
        rules.require_text(request.fugo, "符号")
        rules.require_text(request.tenant, "tenant")
        rules.require_text(request.inquiry_id, "照会番号")
        jimu = self._jimu(request.jimu)  # before the 副本 is looked up: a refusal says nothing of the 符号
        row = self.rt.store.one("SELECT record FROM copies WHERE tenant=? AND fugo=?", (request.tenant, request.fugo))
        if row is None:
            raise C.RECORD_NOT_FOUND(f"情報提供: tenant {request.tenant} holds no 副本 for this 符号")
        copy = records_pb2.ResidentRecord.FromString(row[0])
        record = J.projection(copy, jimu)  # the 事務's items only: never the 個人番号 nor the 住民票コード
        if weakened("number-in-copy") and copy.individual_number:
            record.individual_number = copy.individual_number  # (training mode: the rule switched off on purpose)
        audit.set_subject(f"{request.fugo},{copy.resident_code}")
        provision_id = uuid.uuid4().hex
        with self.rt.store.transaction() as db:
            db.execute("INSERT INTO provisions (provision_id, tenant, fugo, inquiry_id, requester, provided_at, jimu, "
                       "items) VALUES (?,?,?,?,?,?,?,?)",
                       (provision_id, request.tenant, request.fugo, request.inquiry_id,
                        current_call().peer.identity.uri, clock.stamp("microseconds"), jimu.code, ",".join(jimu.items)))
        return intermediate_pb2.ProvisionReply(record=record, provision_id=provision_id, items_provided=jimu.items)

    @staticmethod
    def _jimu(code: str) -> J.Jimu:
        """The 事務 a 情報照会 names, exactly as the table writes its code (no folding of case, width or spaces)."""
        if not code.strip():
            raise R.PROVISION_JIMU_REQUIRED("事務 rule: a 情報照会 names the 事務 it is for "
                                            f"(a code of the 主務省令第2条の表, e.g. {next(iter(J.table()))})")
        found = J.table().get(code)
        if found is None:
            raise R.PROVISION_JIMU_NOT_IN_TABLE(f"事務 rule: {code[:40]!r} is not a 事務 of the 主務省令第2条の表 for which "
                                                "the 市町村長 provides 住民票関係情報")
        return found

    async def ListProvisions(self, request, context):
        """情報提供等記録 of the card holder (マイナポータル): card and PIN checked by the card system, then the
        records of the holder's own 符号; no one reads another person's."""
        audit.set_subject(request.card_number)
        rules.require_text(request.card_number, "カード番号")
        rules.require_text(request.pin, "暗証番号")
        card = await self.rt.call_peer(self.card.CheckPin, card_pb2.PinCheck(card_number=request.card_number,
                                                                             pin=request.pin), "個人番号カード管理システム")
        found = self.rt.store.one("SELECT fugo FROM copy_people WHERE tenant=? AND resident_code=?",
                                  (card.municipality_code, card.resident_code))
        if found is None:
            raise C.RECORD_NOT_FOUND(f"情報提供等記録: no 副本 of the card holder in {card.municipality_code}")
        tenant, fugo = card.municipality_code, found[0]
        if (request.tenant and request.tenant != tenant) or (request.fugo and request.fugo != fugo):
            raise R.PORTAL_OWN_RECORD("portal rule: a card holder reads their own 情報提供等記録 only")
        audit.set_subject(f"{fugo},{card.resident_code}")
        rows = self.rt.store.db.execute("SELECT provision_id, inquiry_id, requester, provided_at, jimu, items "
                                        "FROM provisions WHERE tenant=? AND fugo=? ORDER BY provided_at", (tenant, fugo))
        return intermediate_pb2.ProvisionRecords(records=[intermediate_pb2.ProvisionRecord(
            provision_id=r[0], inquiry_id=r[1], requester=r[2], provided_at=r[3], jimu=r[4],
            items=r[5].split(",") if r[5] else []) for r in rows])

    async def StaffLogin(self, request, context):
        """A municipality's staff member logs in to the municipality's own tenant (recorded)."""
        return self._staff(request, "login")

    async def StaffLogout(self, request, context):
        """A municipality's staff member logs out (recorded)."""
        return self._staff(request, "logout")

    async def ReceiveOperatorRoster(self, request, context):
        """操作者の名簿 from a municipality's kizon: its own tenant's only."""
        return self.rosters.receive(request, current_call().peer.identity.municipality)

    def _staff(self, request, event: str):
        call = current_call()
        if call.operator != request.operator_id:
            raise A.OPERATOR_CLAIM(f"staff rule: the session is {call.operator}'s, not {request.operator_id}'s")
        tenant = call.peer.identity.municipality
        audit.set_subject(f"{tenant}:{request.operator_id}")
        at = clock.stamp("microseconds")
        with self.rt.store.transaction() as db:
            db.execute("INSERT INTO staff_log VALUES (?,?,?,?,?)", (at, tenant, request.operator_id, call.terminal, event))
        return intermediate_pb2.StaffAck(recorded_at=at, tenant=tenant)
