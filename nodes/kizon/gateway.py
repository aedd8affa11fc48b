"""住基GW (MICJET住基GWサーバ, seed system 3): kizon's exchanges with the systems around it other than the counter, in
one place so that a site that replaces kizon keeps them:

- Layout: the layout conversion of a 住民票 history entry into what the CS takes (the 40 items of the 本人確認情報,
  the 送付先情報 of a new number: 送付先連携), with the notices it carries: the 戸籍附票通知 to the 本籍地
  (family.AnnexWriter) and the 市町村通知 to 法務省 (immigration.MunicipalityNoticeWriter);
- the 戸籍 system's notices (family.FamilyNotices) and the 法務省通知 (immigration.py), applied 職権;
- the 裁判員候補者名簿 for the 名簿調製プログラム (jury.py);
- the コンビニ交付システム's certificates for the 証明書交付センター (issuance.py), and the JPKI情報 (シリアル番号) it is
  sent from the card steps.

The notices and the list are served as a service of their own (KizonGateway), which no counter terminal reaches
(nodes/policy.py). Its register holds standard characters (nodes/characters.py): a vendor's
外字 are identified when its register moves in (the migration's 文字同定, docs/characters.md)."""
from __future__ import annotations

from nodes.kizon.family import AnnexWriter
from nodes.kizon.immigration import MunicipalityNoticeWriter
import hashlib

from nodes.kizon.items import CURRENT, today_iso
from nodes.offices import office_of
from nodes.records import delivery_info, identity_info
from protos import gateway_pb2, gateway_pb2_grpc, identity_pb2, records_pb2

SERVICE_NAME = gateway_pb2.DESCRIPTOR.services_by_name["KizonGateway"].full_name


class Layout:
    """The 住基GW's conversion of a 住民票 history entry into the update its CS takes, with the notices it carries."""

    def __init__(self, runtime, municipality: str, register):
        self.annex = AnnexWriter(runtime.topology, municipality)  # 戸籍附票通知 to the 本籍地 of whom a change moves
        self.immigration = MunicipalityNoticeWriter(runtime, municipality, register)  # 市町村通知 to 法務省
        self.office = office_of(runtime.topology, municipality)  # who sends the 個人番号通知書 and hands the card over

    def fill(self, update: identity_pb2.IdentityUpdate, record: records_pb2.ResidentRecord, *, key: str,
             operator: str, terminal: str, former: str = "", delivery: bool = False) -> None:
        """Fill a CS update from a history entry (what kizon's change attached is kept): the 本人確認情報, the
        notices (never for a load: it moves nobody), the 旧住民票コード of a code change and the 送付先情報."""
        if not update.migration:
            annex = self.annex.notice(record)
            if annex is not None:
                update.annex_notice.CopyFrom(annex)
            told = self.immigration.notice(record, key)
            if told is not None:  # (a foreign resident's 住所, 世帯 or 氏名: the CS numbers it for 法務省)
                update.municipality_notice.CopyFrom(told)
        update.info.CopyFrom(identity_info(record, operator=operator, terminal=terminal))
        update.info.record_status_flag = 0 if record.status == CURRENT else 1
        if former:
            update.info.former_resident_code = former
            update.info.resident_code_use_date = today_iso()
        if delivery:
            # 送付先管理番号: one per 送付先情報, the same for a retry of the same change (its key)
            control = municipality_control(record.municipality_code, key)
            update.delivery.CopyFrom(delivery_info(record, self.office, operator=operator, terminal=terminal,
                                                   processing_date=today_iso(), control_number=control))


def municipality_control(municipality: str, key: str) -> str:
    """送付先管理番号 of the 送付先情報 a change (by its key) sends: the 市町村コード and 14 digits of the key's digest."""
    return municipality + f"{int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], 'big') % 10**14:014d}"


class GatewayServicer(gateway_pb2_grpc.KizonGatewayServicer):
    """The KizonGateway service: each RPC handed to the part that keeps its rule."""

    def __init__(self, family, jury, issuance):
        self.family = family  # family.FamilyNotices: the 戸籍 system's notices, applied 職権
        self.jury = jury  # jury.Jury: the 裁判員候補者名簿
        self.issuance = issuance  # issuance.Issuance: コンビニ交付 for the コンビニ交付システム

    async def ApplyFamilyRegisterNotices(self, request, context):
        """戸籍 → 住民票: the 戸籍 system's notices, applied in notice order, each once."""
        return await self.family.apply(request)

    async def DrawJuryCandidates(self, request, context):
        """The year's 裁判員候補者名簿 for the 名簿調製プログラム of this municipality."""
        return await self.jury.draw(request)

    async def IssueForConvenience(self, request, context):
        """コンビニ交付 through the 証明書交付センター: the certificate the コンビニ交付システム asks for."""
        return await self.issuance.convenience_certificate(request)
