"""Identities of the testbed: SPIFFE-style URI SANs and the trust domain each belongs to.

Every certificate carries one URI SAN such as ``spiffe://testbed.jp/lg/142140/cs``. The path
says what the holder is; the trust domain (Juki-net, municipal LAN, platform) follows from it,
so the issuing CA of a certificate can be checked against the identity it claims.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

TRUST_ROOT = "spiffe://testbed.jp/"

JUKINET = "jukinet"  # 住基ネット: cs, prefecture, national, card
LAN = "lan"  # 庁内LAN of each municipality: kizon, atena, terminals
PLATFORM = "platform"  # 中間サーバ・プラットフォーム: intermediate, 情報提供NWS
DOMAINS = (JUKINET, LAN, PLATFORM)
# The bad-certificate kit's cases. A kit certificate names ``kit/<case>/`` before the identity it
# imitates: it can be told apart (and revoked) on its own, and the policy never lets it work.
KIT_CASES = ("expired", "not_yet_valid", "rogue_ca", "revoked", "wrong_domain", "wrong_municipality", "wrong_role",
             "no_client_auth")
_KIT = re.compile(r"kit/(?P<case>[a-z_]+)/(?P<path>.+)")

# The domain each kind of holder belongs to; monitors name their domain in the path.
KIND_DOMAIN = {
    "kizon": LAN,
    "atena": LAN,
    "koseki": LAN,  # 戸籍システム of a municipality
    "conbini": LAN,  # コンビニ交付システム of a municipality (seed system 6): issues for the 証明書交付センター
    "terminal": LAN,
    # office systems of a municipality that read the register (庁内連携: seed systems 7 and 3)
    "tax": LAN,  # 税務システム (番号法 別表 事務: may use the 個人番号)
    "election": LAN,  # 選挙システム (not in 別表: never the 個人番号)
    "jury": LAN,  # 最高裁判所の名簿調製プログラム, run at the 選挙管理委員会 (the 裁判員候補者名簿)
    "cs": JUKINET,
    "prefecture": JUKINET,
    "national": JUKINET,
    "card": JUKINET,
    "intermediate": PLATFORM,
    "infonws": PLATFORM,
    "kiosk": JUKINET,  # コンビニ交付 kiosk (the multi-copy machine of a store), a client of the 証明書交付センター
    "centre": JUKINET,  # J-LIS's 証明書交付センター: checks the card's 利用者証明用電子証明書, asks the municipality
    # 法務省: the 在留カード等発行システム (a node) and the 入管 offices that record changes (a client); both on
    # 住基ネット, which carries the 法務省通知 and the 市町村通知 (住基法第30条の50, 入管法第61条の8の2)
    "moj": JUKINET,
    "immigration": JUKINET,
    "portal": PLATFORM,  # マイナポータル: residents reading their own 情報提供等記録
}

_PATTERNS = (
    (re.compile(r"lg/(?P<municipality>[0-9]{6})/(?P<kind>kizon|cs|atena|koseki|conbini)"), None),
    (re.compile(r"lg/(?P<municipality>[0-9]{6})/office/(?P<kind>tax|election|jury)"), None),
    # a municipality's system at another site (the government cloud): lg/<m>/site/<site>/<kind>
    (re.compile(r"lg/(?P<municipality>[0-9]{6})/site/(?P<site>[a-z][a-z0-9-]{0,15})/(?P<kind>kizon|atena)"), None),
    (re.compile(r"lg/(?P<municipality>[0-9]{6})/terminal/(?P<terminal>[A-Za-z0-9_-]{1,32})"), "terminal"),
    (re.compile(r"pref/(?P<prefecture>[0-9]{6})/server"), "prefecture"),
    (re.compile(r"jlis/(?P<kind>national|card)"), None),
    (re.compile(r"jlis/kofu-centre"), "centre"),
    (re.compile(r"jlis/kiosk/(?P<terminal>[A-Za-z0-9_-]{1,32})"), "kiosk"),
    (re.compile(r"platform/(?P<kind>intermediate|infonws|portal)"), None),
    (re.compile(r"gov/moj/residence-card"), "moj"),
    (re.compile(r"gov/moj/office"), "immigration"),
    (re.compile(r"ops/(?P<domain>jukinet|lan|platform)/monitor"), "monitor"),
    (re.compile(r"ops/(?P<domain>jukinet|lan|platform)/console"), "console"),
)


class IdentityError(ValueError):
    """A URI SAN that names no holder the testbed knows."""


@dataclass(frozen=True)
class Identity:
    """Who a certificate says its holder is: kind, municipality or prefecture, terminal id."""

    uri: str
    kind: str
    domain: str
    municipality: str | None = None
    prefecture: str | None = None
    terminal: str | None = None
    kit: str | None = None  # the bad-certificate kit case this identity belongs to, if any
    site: str | None = None  # the site of a municipality's system other than its own office (e.g. gcloud)

    @property
    def path(self) -> str:
        """The identity without the ``spiffe://testbed.jp/`` prefix."""
        return self.uri[len(TRUST_ROOT):]

    @property
    def prefecture_prefix(self) -> str | None:
        """The two-digit prefecture part shared by a prefecture and its municipalities."""
        code = self.municipality or self.prefecture
        return code[:2] if code else None


def parse(uri: str) -> Identity:
    """Parse a URI SAN into an Identity, or raise IdentityError."""
    if not uri.startswith(TRUST_ROOT):
        raise IdentityError(f"identity {uri!r} is outside the testbed trust root {TRUST_ROOT}")
    path = uri[len(TRUST_ROOT):]
    kit = None
    in_kit = _KIT.fullmatch(path)
    if in_kit:
        kit, path = in_kit["case"], in_kit["path"]
        if kit not in KIT_CASES:
            raise IdentityError(f"identity {uri!r}: {kit!r} is not a case of the bad-certificate kit")
    for pattern, fixed_kind in _PATTERNS:
        match = pattern.fullmatch(path)
        if not match:
            continue
        groups = match.groupdict()
        for code in (groups.get("municipality"), groups.get("prefecture")):
            if code is not None and not local_government_code_valid(code):
                raise IdentityError(f"identity {uri!r}: {code} fails the 地方公共団体コード check digit")
        kind = fixed_kind or groups["kind"]
        domain = groups.get("domain") or KIND_DOMAIN[kind]
        return Identity(
            uri=uri,
            kind=kind,
            domain=domain,
            municipality=groups.get("municipality"),
            prefecture=groups.get("prefecture"),
            terminal=groups.get("terminal"),
            kit=kit,
            site=groups.get("site"),
        )
    raise IdentityError(f"identity {uri!r} names no known holder")


def node_uri(kind: str, municipality: str | None = None, prefecture: str | None = None, site: str | None = None) -> str:
    """The URI SAN of a node of the given kind (at a site of its own, for a municipality's moved system)."""
    if site is not None:
        if kind not in ("kizon", "atena") or not re.fullmatch(r"[a-z][a-z0-9-]{0,15}", site):
            raise IdentityError(f"no {kind} can be at site {site!r} (kizon and atena only; a short lowercase name)")
        return f"{TRUST_ROOT}lg/{municipality}/site/{site}/{kind}"
    if kind in ("kizon", "cs", "atena", "koseki", "conbini"):
        return f"{TRUST_ROOT}lg/{municipality}/{kind}"
    if kind == "centre":
        return f"{TRUST_ROOT}jlis/kofu-centre"
    if kind == "prefecture":
        return f"{TRUST_ROOT}pref/{prefecture}/server"
    if kind in ("national", "card"):
        return f"{TRUST_ROOT}jlis/{kind}"
    if kind in ("intermediate", "infonws", "portal"):
        return f"{TRUST_ROOT}platform/{kind}"
    if kind == "moj":
        return f"{TRUST_ROOT}gov/moj/residence-card"
    raise IdentityError(f"no node kind {kind!r}")


IMMIGRATION_URI = f"{TRUST_ROOT}gov/moj/office"  # the 入管 office client that records changes of 在留


def platform_uri(kind: str) -> str:
    """The URI SAN of a platform client (情報提供NWS, portal)."""
    return f"{TRUST_ROOT}platform/{kind}"


OFFICE_SYSTEMS = ("tax", "election", "jury")  # the office systems each municipality has a client certificate for


def office_uri(municipality: str, office: str) -> str:
    """The URI SAN of an office system of a municipality (税務, 選挙, the 名簿調製プログラム)."""
    if office not in OFFICE_SYSTEMS:
        raise IdentityError(f"no office system {office!r} (the office systems: {', '.join(OFFICE_SYSTEMS)})")
    return f"{TRUST_ROOT}lg/{municipality}/office/{office}"


def terminal_uri(municipality: str, terminal: str) -> str:
    """The URI SAN of a counter terminal (窓口端末 / 統合端末) of a municipality."""
    return f"{TRUST_ROOT}lg/{municipality}/terminal/{terminal}"


def kiosk_uri(kiosk: str) -> str:
    """The URI SAN of a コンビニ交付 kiosk front end."""
    return f"{TRUST_ROOT}jlis/kiosk/{kiosk}"


def kit_uri(case: str, imitated: str) -> str:
    """The URI SAN of a bad-certificate kit case imitating another identity."""
    return f"{TRUST_ROOT}kit/{case}/{imitated[len(TRUST_ROOT):]}"


def monitor_uri(domain: str) -> str:
    """The URI SAN of the operations monitor that health-checks the nodes of one trust domain (read only)."""
    return f"{TRUST_ROOT}ops/{domain}/monitor"


def console_uri(domain: str) -> str:
    """The URI SAN of the operations console of one trust domain: it alone runs batch jobs on demand."""
    return f"{TRUST_ROOT}ops/{domain}/console"


def local_government_code_valid(code: str) -> bool:
    """全国地方公共団体コード: five digits and a check digit (weights 6..2, 11 - sum mod 11, ones digit)."""
    if not re.fullmatch(r"[0-9]{6}", code):
        return False
    total = sum(int(d) * w for d, w in zip(code[:5], (6, 5, 4, 3, 2)))
    return (11 - total % 11) % 10 == int(code[5])
