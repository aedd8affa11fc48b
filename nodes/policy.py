"""The authorization policy: for each kind of server, which callers may call which methods.

Default deny: a call is allowed only if a rule below names the caller's kind, the caller stands
in the rule's scope relative to the server (same municipality, same prefecture, any) and the
method is one the rule lists. Encodes DESIGN §3:

- terminals reach their own municipality's kizon, and its CS for 本人確認 and 検索 only;
- the CS is reached from office systems only by kizon (PIA Ⅲ(2)3);
- the CS and atena never connect: no rule names one as the caller of the other;
- CS ↔ prefecture ↔ national stay inside Juki-net; national's 符号 method alone is open to atena;
- the 中間サーバ is reached by each municipality's atena and by the 情報提供NWS, one method each;
- the 戸籍 system is reached by its municipality's terminals (届出) and kizon's 住基GW (附票), and reaches kizon's
  住基GW alone; the office systems (税務, 選挙, the 名簿調製プログラム) reach one method each;
- コンビニ交付: kiosks reach the 証明書交付センター alone (and kizon's card-and-PIN method); the centre reaches the card
  system's certificate check and each コンビニ交付システム's issuance; the コンビニ交付システム reaches its kizon's
  住基GW for that one method, and its kizon alone registers シリアル番号 there.
"""
from __future__ import annotations

from dataclasses import dataclass

from certs.identity import KIND_DOMAIN
from nodes.kinds import MIGRATING
from nodes.reasons import access as A
from nodes.refusal import Rule

SAME_MUNICIPALITY = "same-municipality"
SAME_PREFECTURE = "same-prefecture"
OWN_DOMAIN = "own-domain"
ANY = "any"

# Health checking and reflection are open to every caller the server's policy names. Reflection is served as v1 and
# as v1alpha, to the same callers: current grpcurl asks v1 first, grpcurl 1.8.6 and grpcio-reflection's client v1alpha.
INTROSPECTION = (
    "/grpc.health.v1.Health/*",
    "/grpc.reflection.v1.ServerReflection/*",
    "/grpc.reflection.v1alpha.ServerReflection/*",
)


@dataclass(frozen=True)
class Allow:
    """One rule: callers of this kind, in this scope, may call these methods (``Service/*`` allowed)."""

    caller: str
    scope: str
    methods: tuple[str, ...]


def _m(service: str, *names: str) -> tuple[str, ...]:
    return tuple(f"/testbed.v1.{service}/{n}" for n in names)


POLICY: dict[str, tuple[Allow, ...]] = {
    "kizon": (
        Allow("terminal", SAME_MUNICIPALITY, _m("Kizon", "*")),
        # コンビニ交付: the kiosk front end crosses domains on purpose, for this one method.
        Allow("kiosk", ANY, _m("Kizon", "IssueKioskCertificate")),
        # 住基GW: the 戸籍 system's notices, and the 裁判員候補者名簿 for the 名簿調製プログラム (never a terminal).
        Allow("koseki", SAME_MUNICIPALITY, _m("KizonGateway", "ApplyFamilyRegisterNotices")),
        Allow("jury", SAME_MUNICIPALITY, _m("KizonGateway", "DrawJuryCandidates")),
        Allow("conbini", SAME_MUNICIPALITY, _m("KizonGateway", "IssueForConvenience")),
    ),
    "cs": (
        Allow("kizon", SAME_MUNICIPALITY, _m(
            "CommunicationServer", "SubmitIdentityUpdates", "SubmitIdentityUpdateGroup", "GetIdentity", "SearchIdentity", "DrawResidentCodes",
            "GetPoolStatus", "AssignIndividualNumbers", "OfferResidentCodes", "TakeMoveOutCertificate",
            "TakeMoveInNotices", "ChangeCard", "VerifyByCard", "WideAreaLookup", "ReleaseResidentCodes",
            "GetRequestStatus", "CheckResidence", "RegisterDigests", "CheckConsistency", "ReceiveOperatorRoster",
            "TakeAnnexNotices", "TakeImmigrationNotices")),
        Allow("terminal", SAME_MUNICIPALITY, _m(
            "CommunicationServer", "GetIdentity", "SearchIdentity", "GetPoolStatus", "CheckConsistency",
            "PurgeExpiredCertificates", "VerifyByCard")),
        # CS ↔ CS between municipalities: 転出証明書情報, 転入通知, 戸籍附票通知 and 広域交付 only.
        Allow("cs", ANY, _m("CommunicationServer", "ReceiveMoveOutCertificate", "ReceiveMoveInNotice", "ReceiveAnnexNotice",
                            "ProvideForWideArea")),
        # 法務省 → the 住居地's CS: the 法務省通知 (nodes/cs/immigration.py checks it is addressed here).
        Allow("moj", ANY, _m("CommunicationServer", "ReceiveImmigrationNotice")),
    ),
    "atena": (
        Allow("kizon", SAME_MUNICIPALITY, _m("Atena", "*")),
        # 庁内連携: the office systems read the 宛名 (the 個人番号 for a 番号法 別表 事務 alone: nodes/office.py).
        Allow("tax", SAME_MUNICIPALITY, _m("OfficeLink", "LookupResident")),
        Allow("election", SAME_MUNICIPALITY, _m("OfficeLink", "LookupResident")),
    ),
    "koseki": (
        # 届出 at the 戸籍 counter, and the 戸籍 and 附票 read there.
        Allow("terminal", SAME_MUNICIPALITY, _m("FamilyRegisterSystem", "Marry", "Divorce", "Transfer", "RecordReading",
                                                "RecordDeath", "GetFamilyRegister", "GetAnnex")),
        # The 住基GW of the municipality's kizon: 戸籍附票通知, from here or another municipality's CS.
        Allow("kizon", SAME_MUNICIPALITY, _m("FamilyRegisterSystem", "RecordAnnexNotices", "ListAnnexCurrent",
                                                     "ReceiveOperatorRoster")),
    ),
    "conbini": (
        # JPKI情報 (シリアル番号) from the municipality's own kizon; the centre's requests for a verified holder.
        Allow("kizon", SAME_MUNICIPALITY, _m("ConvenienceIssuance", "RegisterUserSerials")),
        Allow("centre", ANY, _m("ConvenienceIssuance", "IssueForCentre")),
    ),
    "prefecture": (
        Allow("cs", SAME_PREFECTURE, _m("PrefectureServer", "ApplyIdentityUpdates", "GetIdentity", "IdentityDigests",
                                        "GetIdentities")),
    ),
    "national": (
        Allow("prefecture", ANY, _m("NationalServer", "ApplyIdentityUpdates")),
        Allow("cs", ANY, _m("NationalServer", "GetIdentity", "SearchIdentity", "IssueResidentCodePool",
                            "AssignIndividualNumbers", "OfferResidentCodes", "IdentityDigests", "GetIdentities",
                            "CheckResidence")),
        Allow("atena", ANY, _m("NationalServer", "IssueFugo", "IssueFugos")),
        # The 情報提供NWS's own registry of 符号 (a stand-in kept by national): that one method, across domains.
        Allow("infonws", ANY, _m("NationalServer", "SampleFugo")),
    ),
    "card": (
        Allow("cs", ANY, _m("CardManagement", "SubmitDeliveryInfos", "GetDeliveryInfo", "ChangeCard", "GetCardStatus",
                            "CheckPin")),
        # 証明書交付センター: whether a card's 利用者証明用電子証明書 is in force, that method alone.
        Allow("centre", ANY, _m("CardManagement", "CheckUserCertificate")),
        # マイナポータル: the 中間サーバ has the card system check a resident's card and PIN, that method alone.
        Allow("intermediate", ANY, _m("CardManagement", "CheckPin")),
    ),
    "centre": (
        # コンビニ交付: the kiosks of the stores, across domains only to here.
        Allow("kiosk", ANY, _m("CertificateIssuanceCentre", "BeginIssuance", "CompleteIssuance")),
    ),
    "moj": (
        # 入管 offices record changes of 在留 and read a card; every CS sends its municipality's 市町村通知.
        Allow("immigration", ANY, _m("ResidenceCardSystem", "RecordResidenceChange", "GetResidenceCard")),
        Allow("cs", ANY, _m("ResidenceCardSystem", "ReceiveMunicipalityNotice")),
    ),
    "intermediate": (
        Allow("atena", ANY, _m("IntermediateServer", "RegisterCopies")),
        Allow("infonws", ANY, _m("IntermediateServer", "ProvideInfo")),
        # Staff of a municipality log in to its own tenant; a resident reads their own 情報提供等記録.
        Allow("terminal", ANY, _m("IntermediateServer", "StaffLogin", "StaffLogout")),
        Allow("portal", ANY, _m("IntermediateServer", "ListProvisions")),
        # Each municipality's kizon sends its signed roster of operators (its own tenant's: RosterReceiver checks).
        Allow("kizon", ANY, _m("IntermediateServer", "ReceiveOperatorRoster")),
    ),
}


# 移行: the operations console of the LAN freezes, exports, imports and opens the kinds that migrate (kizon and atena:
# nodes/kinds.py) (testbed migrate), and runs kizon's 整合性確認 of a new site before it is opened.
_AFTER_IMPORT = {"kizon": _m("Kizon", "CheckConsistency")}
MIGRATION_RIGHTS = {kind: _m("Migration", "*") + _AFTER_IMPORT.get(kind, ()) for kind in MIGRATING}
# The console also loads a population's 戸籍 into an empty 戸籍 system (and reads the 附票 for `testbed check`), and
# a population's foreign residents into 法務省's 在留カード等発行システム.
LOAD_RIGHTS = {"koseki": _m("FamilyRegisterSystem", "LoadFamilyRegisters", "ListAnnexCurrent"),
               "moj": _m("ResidenceCardSystem", "LoadResidenceCards")}


# Pairs that must never connect, whatever rules are added later: refused before the allow-list.
NEVER: dict[tuple[str, str], str] = {
    ("atena", "cs"): "CS–atena separation (PIA Ⅲ(2)3): the CS and the 宛名 system never connect",
    ("cs", "atena"): "CS–atena separation (PIA Ⅲ(2)3): the CS and the 宛名 system never connect",
}


def _method_matches(patterns: tuple[str, ...], method: str) -> bool:
    for pattern in patterns:
        if pattern.endswith("/*"):
            if method.startswith(pattern[:-1]):
                return True
        elif pattern == method:
            return True
    return False


def _in_scope(scope: str, caller, server) -> bool:
    if scope == ANY:
        return True
    if scope == SAME_MUNICIPALITY:
        return caller.municipality is not None and caller.municipality == server.municipality
    if scope == SAME_PREFECTURE:
        return caller.prefecture_prefix is not None and caller.prefecture_prefix == server.prefecture_prefix
    if scope == OWN_DOMAIN:
        return caller.domain == server.domain
    return False


class Decision(Exception):
    """A refusal: the rule of the catalogue that refused (nodes/reasons/access.py), the message naming it."""

    def __init__(self, rule: Rule, message: str):
        super().__init__(message)
        self.rule = rule


def rules_for(server_kind: str) -> tuple[Allow, ...]:
    """The server's rules, with introspection open to its callers and its domain's monitor."""
    rules = POLICY.get(server_kind, ())
    extra = [Allow(r.caller, r.scope, INTROSPECTION) for r in rules]
    # The monitor reads (health, reflection, status); only the operations console runs batches.
    extra.append(Allow("monitor", OWN_DOMAIN, INTROSPECTION + ("/testbed.v1.Operations/GetStatus",)))
    extra.append(Allow("console", OWN_DOMAIN, INTROSPECTION + ("/testbed.v1.Operations/*",)))
    if server_kind in MIGRATION_RIGHTS:
        extra.append(Allow("console", OWN_DOMAIN, MIGRATION_RIGHTS[server_kind]))
    if server_kind in LOAD_RIGHTS:
        extra.append(Allow("console", OWN_DOMAIN, LOAD_RIGHTS[server_kind]))
    return rules + tuple(extra)


def accepted_domains(server_kind: str) -> set[str]:
    """The trust domains whose certificates this kind of server accepts at all."""
    domains = {KIND_DOMAIN[r.caller] for r in POLICY.get(server_kind, ()) if r.caller in KIND_DOMAIN}
    domains.add(KIND_DOMAIN[server_kind])
    return domains


def authorize(server, caller, method: str) -> None:
    """Allow the call or raise Decision naming the rule that refuses it (default deny). An identity of the
    bad-certificate kit is refused by the rule that refuses what it imitates, else by the kit rule."""
    _decide(server, caller, method)
    if caller.kit:
        raise Decision(A.KIT_IDENTITY, f"kit rule: {caller.uri} belongs to the bad-certificate kit ({caller.kit}) and is never a "
                       "working credential")


def _decide(server, caller, method: str) -> None:
    never = NEVER.get((caller.kind, server.kind))
    if never:
        raise Decision(A.NEVER_CALLS, f"{never} ({caller.uri})")
    if caller.domain not in accepted_domains(server.kind):
        raise Decision(
            A.TRUST_DOMAIN, f"trust-domain separation: {server.kind} accepts no certificate from the {caller.domain} domain "
            f"({caller.uri})"
        )
    rules = rules_for(server.kind)
    for rule in rules:
        if rule.caller == caller.kind and _in_scope(rule.scope, caller, server) and _method_matches(rule.methods, method):
            return
    for rule in rules:
        if rule.caller == caller.kind and _method_matches(rule.methods, method):
            where = server.municipality or server.prefecture or server.kind
            raise Decision(A.SCOPE, f"{rule.scope} rule: {caller.uri} may not call {method} on {server.kind} of {where}")
    raise Decision(A.DEFAULT_DENY, f"default deny: no rule lets a {caller.kind} ({caller.uri}) call {method} on {server.kind}")
