"""The conformance suite: the network's rules as cases with stable ids, run against any implementation of a node
role (`testbed conform ROLE --target NODE`). case.py declares a case; the other modules declare the cases (wire.py of every
role; access.py and roster.py of sessions and operators; cs.py, notices.py, kizon.py, counter.py, bulk.py, items.py,
relay.py, koseki.py, card.py, atena.py, site.py of their roles);
subject.py reaches the node under test; run.py selects and runs them; output.py writes the results.

Every rule of the catalogue (nodes/reasons/) is checked by a case, or named in a module's NOT_A_CASE with why no
caller of the topology can try it over the wire (a test of the suite holds the two together)."""
from testbed.conform import (access, atena, bulk, card, counter, cs, items, kizon, koseki, notices, relay,  # noqa: F401
                             roster, site, wire)  # (they declare the cases)
from testbed.conform.case import CASES, PROFILES, Case
from testbed.conform.run import ALL, Result, SelectionError, read_expected_failures, roles, run_cases, select, unexpected

_MODULES = (access, atena, bulk, card, counter, cs, items, kizon, koseki, notices, relay, roster, site, wire)
# rule id → why no case tries it (each module's NOT_A_CASE)
NOT_A_CASE: dict[str, str] = {rule: why for module in _MODULES for rule, why in getattr(module, "NOT_A_CASE", {}).items()}

__all__ = ["ALL", "CASES", "NOT_A_CASE", "PROFILES", "Case", "Result", "SelectionError", "read_expected_failures",
           "roles", "run_cases", "select", "unexpected"]
