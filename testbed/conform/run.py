"""Running the cases of a role against a node: selection by profile and id, the expected-failures file a team keeps
beside its code, the verdicts (PASSED, FAILED, WARNING, SKIPPED) and whether the run fails."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from nodes.reasons.site import SITE_CHANGES_CLOSED
from nodes.topology import NODE_KINDS
from testbed.conform.case import CASES, PROFILES, Case, Failed, Skipped
from testbed.conform.subject import Subject

ALL = "all"
VERDICTS = ("PASSED", "FAILED", "WARNING", "SKIPPED")


class SelectionError(ValueError):
    """A selection that names no case: an unknown profile, case id or role, or a case of another role."""


@dataclass
class Result:
    """What one case did against the node."""

    case: str
    node: str
    verdict: str
    expected: str  # what the case asserts
    observed: str
    seconds: float
    reference: str
    request: str
    rules: tuple[str, ...]
    known: str = ""  # the expected-failures file's note, when the case is listed there

    def as_dict(self) -> dict:
        """The result as JSON takes it."""
        return asdict(self)


def roles() -> list[str]:
    """The node roles some case names (besides the cases of every role)."""
    return sorted({r for c in CASES.values() for r in c.roles if r != "*"})


def select(role: str, profile: str = ALL, ids: tuple[str, ...] = ()) -> list[Case]:
    """The cases of a role in a profile (or those named), in the order declared."""
    if role not in NODE_KINDS:
        raise SelectionError(f"no node role {role!r}: give one of {', '.join(sorted(NODE_KINDS))}")
    if profile != ALL and profile not in PROFILES:
        raise SelectionError(f"no profile {profile!r}: give one of {', '.join(PROFILES + (ALL,))}")
    unknown = [i for i in ids if i not in CASES]
    if unknown:
        raise SelectionError(f"no case {unknown[0]!r}: `testbed conform {role} --list` lists the role's cases")
    other = [i for i in ids if not CASES[i].applies_to(role)]
    if other:
        raise SelectionError(f"case {other[0]} is not one of the {role} role's (it is of {', '.join(CASES[other[0]].roles)})")
    chosen = [CASES[i] for i in ids] if ids else [
        c for c in CASES.values() if c.applies_to(role) and (profile == ALL or profile in c.profiles)]
    if not chosen:
        raise SelectionError(f"no case of the {role} role in profile {profile}")
    return chosen


def read_expected_failures(path: Path) -> dict[str, str]:
    """The expected-failures file: one case id a line, then optionally `#` and why (a known gap, its ticket);
    blank lines and lines starting with `#` are comments. ValueError naming the line of an unknown id."""
    known = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        case_id, _, note = text.partition("#")
        case_id = case_id.strip()
        if case_id not in CASES:
            raise ValueError(f"{path}:{number}: no case {case_id!r} (an id of `testbed conform ROLE --list`)")
        known[case_id] = note.strip() or "listed"
    return known


def run_cases(network, node, cases: list[Case], known: dict[str, str] | None = None,
              resident: str = "") -> list[Result]:
    """Every case against the node, in order; each verdict against the expected failures. resident: a 住民票コード
    the node holds, the run's person at a migration target (which takes no change before its cut over)."""
    known = known or {}
    subject = Subject(network, node, resident)
    results = []
    try:
        for c in cases:
            started = time.monotonic()
            try:
                observed, verdict = c.procedure(subject), "PASSED"
            except Failed as exc:
                observed, verdict = f"expected {exc.expected}; observed {exc.observed}", "FAILED"
                if subject.target and exc.reason == SITE_CHANGES_CLOSED.reason:  # (its rule cannot be reached yet)
                    observed, verdict = (f"{node.name} is a migration target and takes no change before its cut over "
                                         f"({exc.observed}); the case runs once the site is open"), "SKIPPED"
            except Skipped as exc:
                observed, verdict = str(exc), "SKIPPED"
            except Exception as exc:  # a case that cannot complete is a failure of the node, not of the run
                observed, verdict = f"the case could not complete: {type(exc).__name__}: {str(exc)[:300]}", "FAILED"
            if c.id in known and verdict == "PASSED":
                verdict = "WARNING"
                observed = f"{observed} (listed as an expected failure, but passed: take it off the list)"
            results.append(Result(c.id, node.name, verdict, c.asserts, observed, round(time.monotonic() - started, 3),
                                  c.reference, c.request, c.rules, known.get(c.id, "")))
    finally:
        subject.close()
    return results


def unexpected(results: list[Result]) -> list[Result]:
    """The failures the expected-failures file does not list: any of them fails the run."""
    return [r for r in results if r.verdict == "FAILED" and not r.known]
