"""The conformance suite: the network's rules as cases with stable ids, run against any implementation of a node
role (`testbed conform ROLE --target NODE`). case.py declares a case; the other modules declare the cases (wire.py of every
role; cs.py, kizon.py, counter.py, relay.py, koseki.py, card.py, atena.py of their roles);
subject.py reaches the node under test; run.py selects and runs them; output.py writes the results."""
from testbed.conform import atena, card, counter, cs, kizon, koseki, relay, wire  # noqa: F401  (they declare the cases)
from testbed.conform.case import CASES, PROFILES, Case
from testbed.conform.run import ALL, Result, SelectionError, read_expected_failures, roles, run_cases, select, unexpected

__all__ = ["ALL", "CASES", "PROFILES", "Case", "Result", "SelectionError", "read_expected_failures", "roles",
           "run_cases", "select", "unexpected"]
