"""The roles an operator may hold, in one place: what each is for, and the methods a role limits its holder to
(read by the sessions, the guard, kizon's roster and the topology's check)."""
from __future__ import annotations

ROLES = {
    "clerk": "窓口の職員: the counter's 届出, 照会 and 交付",
    "individual_number": "個人番号利用権限 (PIA 1922–1925): sees the 個人番号, on a terminal registered for it",
    "manager": "approves bulk output (PIA Ⅲ(2)3) and keeps the roster of operators (PIA 2464–2471)",
    "official": "職権記載・職権消除 (PIA 77, 81)",
    "operations": "batches and the full 整合性確認 from a terminal",
    "contractor": "委託先の作業者 (PIA 783–868): 住民票の写し等の交付 and 住所異動 only, never the 個人番号",
}
CONTRACTOR = "contractor"
# The operations the 委託 covers (PIA 783–868: 住民票の写し等の交付に関する事務、住所異動に関する業務): finding the
# person and the household, issuing the 写し, and the 転入・転居・転出. A role named here limits its holder to these
# methods, at every node (a role not named here limits nothing by itself).
ROLE_METHODS = {
    CONTRACTOR: frozenset(f"/testbed.v1.Kizon/{name}" for name in (
        "GetResident", "GetHousehold", "IssueCertificate", "MoveIn", "MoveWithin", "MoveOut")),
}
# A 委託先's operator holds the role contractor alone: the roles below are the municipality's staff's (PIA 1922–1925).
STAFF_ROLES = frozenset(ROLES) - {CONTRACTOR}


def methods_allowed(roles) -> frozenset[str] | None:
    """The methods operators holding these roles may call (None: any the policy lets a terminal call)."""
    if not roles or any(r not in ROLE_METHODS for r in roles):
        return None
    return frozenset().union(*(ROLE_METHODS[r] for r in roles))
