"""The rule catalogue: every rule a node keeps, declared once beside its owner's name (one module per owner), each
with a stable id, its status, its reference and one line of what it says. `catalogue()` lists them all."""
from __future__ import annotations

from nodes.refusal import CATALOGUE, Rule
from nodes.reasons import (access, card, centre, common, conbini, cs, gateway, kizon, koseki, moj, national,  # noqa: F401
                           office, platform, site)  # (they declare)


def catalogue() -> list[Rule]:
    """Every rule of the testbed, by owner and id."""
    return sorted(CATALOGUE.values(), key=lambda r: (r.owner, r.reason))
