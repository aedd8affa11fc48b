"""Training mode: weaknesses switched on on purpose (`testbed up --weaken NAME`), for testers to find.

Each name turns one rule off in every node of the network; the nodes say so loudly in their logs and
`testbed status` shows it. `testbed probe` must then fail on exactly that rule.
"""
from __future__ import annotations

from nodes import settings

ENV = settings.WEAKEN
WEAKNESSES = {
    "crl": "revocation is not checked: a revoked certificate is accepted",
    "topology-identity": "any well-formed identity is admitted, named in the topology or not",
    "search-rule": "本人確認情報検索 by 氏名 alone is answered (the two-item rule is off)",
    "bulk-output": "bulk output needs no manager's approval",
    "audit-key": "the audit chain is keyed with an empty key (anyone can re-chain it)",
    "number-in-copy": "the 個人番号 travels in the 副本 to the 中間サーバ and in 情報提供",
}

# The rules of the catalogue each weakness switches off (none where no refusal names it: the audit key, the copies'
# items): with the weakness on, the conformance cases of those rules fail, and no other (testbed/conform/).
RULES: dict[str, tuple[str, ...]] = {
    "crl": ("CERTIFICATE_REVOKED",), "topology-identity": ("CERTIFICATE_NOT_IN_TOPOLOGY",),
    "search-rule": ("SEARCH_TWO_ITEMS",),
    # (no approval is asked for, so none is checked: the rules of spending one are off too, the issuing ones not)
    "bulk-output": ("BULK_OUTPUT_APPROVAL_REQUIRED", "BULK_OUTPUT_APPROVAL_INVALID", "BULK_OUTPUT_APPROVAL_COUNT",
                    "BULK_OUTPUT_APPROVAL_PURPOSE", "BULK_OUTPUT_APPROVAL_USED", "BULK_OUTPUT_APPROVAL_OTHER_OPERATOR",
                    "BULK_OUTPUT_APPROVAL_EXPIRED", "CS_BULK_OUTPUT_APPROVAL_REQUIRED", "CS_BULK_OUTPUT_APPROVAL_INVALID",
                    "CS_BULK_OUTPUT_APPROVAL_COUNT", "CS_BULK_OUTPUT_APPROVAL_OTHER_OPERATOR",
                    "CS_BULK_OUTPUT_SELF_APPROVAL"),
    "audit-key": (), "number-in-copy": ()}


def cases_of(weakness: str, cases) -> set[str]:
    """The ids of those cases that check a rule the weakness switches off (the cases it must fail)."""
    return {c.id for c in cases if set(c.rules) & set(RULES[weakness])}


def parse(text: str) -> tuple[str, ...]:
    """The weakness names in a comma-separated list; ValueError naming an unknown one."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in WEAKNESSES]
    if unknown:
        raise ValueError(f"unknown weakness {', '.join(unknown)}; `testbed up --weaken list` lists them")
    return names


def active() -> frozenset[str]:
    """The weaknesses this process was started with (its settings)."""
    return settings.current().weaknesses


def weakened(name: str) -> bool:
    """Whether a weakness is switched on in this process."""
    return name in active()
