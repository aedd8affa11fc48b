"""The conformance step of a migration: the `rules` profile of the suite (testbed/conform/) against each target
node after the verify and before the cut over, so that a new site that does not keep the network's rules is never
cut over to.

A target before its cut over is frozen and holds the register just loaded: the suite's person is one of the
migrated residents, and a case that needs a change accepted is SKIPPED there (it cannot be reached until the site is
open, and a change made to try it would be invented data in the new register). What the suite can try (reads,
sessions, bulk output and its approvals, refusals a node gives before it looks at its freeze) it tries.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

PROFILE = "rules"
RESULTS = {"PASSED": "ok", "FAILED": "failed", "WARNING": "warning", "SKIPPED": "skipped"}  # → a step check's result


def expected_failures(path: Path | None) -> dict[str, str]:
    """The team's expected-failures file for the target (testbed/conform/run.py reads it); {} without one.
    ValueError or OSError naming what is wrong."""
    from testbed import conform
    return conform.read_expected_failures(path) if path else {}


def run(network, nodes: dict, resident: str, known: dict[str, str]) -> tuple[list[tuple[str, str, str]], dict, list[str]]:
    """The profile against every target node (kind → node): the step's checks (case at node, result, what was
    observed), its figures (verdict counts per node) and the failures the expected-failures file does not list."""
    from testbed import conform
    checks, figures, failed = [], {}, []
    for kind, node in sorted(nodes.items()):
        try:
            cases = conform.select(kind, PROFILE)
        except conform.SelectionError:
            checks.append((f"conformance of {node.name}", "ok", f"no {kind} case in the {PROFILE} profile"))
            continue
        results = conform.run_cases(network, node, cases, known, resident)
        figures[node.name] = dict(Counter(r.verdict for r in results))
        for r in results:
            note = f" (expected failure: {r.known})" if r.known else ""
            checks.append((f"{r.case} at {node.name}", RESULTS[r.verdict], r.observed + note))
        failed += [f"{r.case} at {node.name}" for r in conform.unexpected(results)]
    return checks, figures, failed
