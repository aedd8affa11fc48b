"""A conformance run's results as a table, JSON, JUnit XML (for a vendor's CI) and HTML (per case: id, reference,
request in brief, expected against observed, time); and the case list of docs/conformance.md."""
from __future__ import annotations

import html
import json
import unicodedata
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from nodes.reasons import catalogue
from testbed.conform.case import CASES, PROFILES
from testbed.conform.run import VERDICTS, Result


def summary(results: list[Result]) -> str:
    """PASSED n, FAILED n (k expected), WARNING n, SKIPPED n."""
    counts = Counter(r.verdict for r in results)
    known = sum(1 for r in results if r.verdict == "FAILED" and r.known)
    return ", ".join(f"{v} {counts.get(v, 0)}" + (f" ({known} expected)" if v == "FAILED" and known else "")
                     for v in VERDICTS)


def table(results: list[Result]) -> str:
    """One case a line: verdict, id, seconds, what was observed (cut to the line)."""
    width = max(_columns(r.case) for r in results)
    lines = [f"{'VERDICT':8} {'CASE'.ljust(width)} {'SECONDS':>7}  OBSERVED"]
    for r in results:
        mark = r.verdict + ("*" if r.known and r.verdict == "FAILED" else "")
        case = r.case + " " * (width - _columns(r.case))
        lines.append(f"{mark:8} {case} {r.seconds:7.2f}  {r.observed[:110]}")
    lines.append(summary(results) + ("  (* listed in the expected failures)" if any(r.known for r in results) else ""))
    return "\n".join(lines)


def _columns(text: str) -> int:
    """The columns a text takes in a terminal (a kanji or kana takes two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def write_json(results: list[Result], path: Path, meta: dict) -> None:
    """The run as JSON: what was run against what, and every result."""
    path.write_text(json.dumps({**meta, "summary": summary(results), "results": [r.as_dict() for r in results]},
                               ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def write_junit(results: list[Result], path: Path, meta: dict) -> None:
    """The run as JUnit XML: one testsuite, one testcase per case (classname: the role); a FAILED case not in the
    expected failures is a <failure>, one listed there a <skipped> naming why, a SKIPPED one a <skipped>."""
    suite = ET.Element("testsuite", name=f"conform {meta['role']} {meta['node']}", tests=str(len(results)),
                       failures=str(sum(r.verdict == "FAILED" and not r.known for r in results)),
                       skipped=str(sum(r.verdict == "SKIPPED" or (r.verdict == "FAILED" and bool(r.known))
                                       for r in results)),
                       time=f"{sum(r.seconds for r in results):.3f}")
    for r in results:
        element = ET.SubElement(suite, "testcase", classname=f"conform.{meta['role']}", name=r.case, time=f"{r.seconds:.3f}")
        if r.verdict == "FAILED" and not r.known:
            ET.SubElement(element, "failure", message=r.observed[:200]).text = f"{r.reference}\n{r.request}\n{r.observed}"
        elif r.verdict == "FAILED":
            ET.SubElement(element, "skipped", message=f"expected failure: {r.known}").text = r.observed
        elif r.verdict == "SKIPPED":
            ET.SubElement(element, "skipped", message=r.observed[:200])
        elif r.verdict == "WARNING":
            ET.SubElement(element, "system-out").text = r.observed
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def write_html(results: list[Result], path: Path, meta: dict) -> None:
    """The run as one HTML page: a row per case with its reference, the request in brief, expected and observed."""
    colour = {"PASSED": "#dfd", "FAILED": "#fdd", "WARNING": "#ffd", "SKIPPED": "#eee"}
    rows = "\n".join(
        f"<tr style='background:{colour[r.verdict]}'><td>{r.verdict}{' (expected)' if r.known and r.verdict == 'FAILED' else ''}"
        f"</td><td><code>{html.escape(r.case)}</code></td><td>{html.escape(r.reference)}</td>"
        f"<td>{html.escape(r.request)}</td><td>{html.escape(r.expected)}</td><td>{html.escape(r.observed)}</td>"
        f"<td>{r.seconds:.2f}</td></tr>" for r in results)
    path.write_text(f"""<!doctype html><meta charset="utf-8"><title>conform {html.escape(meta['role'])}</title>
<h1>testbed conform {html.escape(meta['role'])} --target {html.escape(meta['node'])}</h1>
<p>{html.escape(summary(results))}; profile {html.escape(meta['profile'])}</p>
<table border="1" cellpadding="4" style="border-collapse:collapse">
<tr><th>verdict</th><th>case</th><th>reference</th><th>request</th><th>expected</th><th>observed</th><th>s</th></tr>
{rows}
</table>
""", encoding="utf-8")


def markdown() -> str:
    """The case list of docs/conformance.md, from the catalogue of cases (a test holds the document to it)."""
    lines = ["| case | roles | profiles | rules | request | asserts |", "|---|---|---|---|---|---|"]
    for c in CASES.values():
        lines.append(f"| `{c.id}` | {', '.join('every' if r == '*' else r for r in c.roles)} | {', '.join(c.profiles)} "
                     f"| {', '.join(c.rules) or c.standard} | {c.request} | {c.asserts} |".replace("\n", " "))
    covered = {r for c in CASES.values() for r in c.rules}
    rules = catalogue()
    by_owner = Counter(r.owner for r in rules)
    have = Counter(r.owner for r in rules if r.reason in covered)
    lines += ["", f"{len(CASES)} cases; {len(covered)} of the catalogue's {len(rules)} rules have a case "
              f"(profiles: {', '.join(PROFILES)}, and `all`). By owner, rules with a case / rules:", ""]
    lines.append(", ".join(f"{owner} {have.get(owner, 0)}/{n}" for owner, n in sorted(by_owner.items())) + ".")
    from testbed.conform import NOT_A_CASE  # (the package, which imports this module's neighbours first)
    lines += ["", "The rules no case tries, and why no caller of the topology can try them over the wire (a test of "
              "the testbed's own that tries one brings the fault, the clock or the store access it needs):", "",
              "| rule | owner | why not a case |", "|---|---|---|"]
    owners = {r.reason: r.owner for r in rules}
    lines += [f"| `{rule}` | {owners.get(rule, '?')} | {why} |" for rule, why in sorted(NOT_A_CASE.items())]
    return "\n".join(lines)


GENERATED = "## The cases (generated)"


def document(text: str) -> str:
    """docs/conformance.md with its generated part (after GENERATED and its note) brought up to the cases."""
    head = text[:text.index(GENERATED)]
    return (f"{head}{GENERATED}\n\nGenerated from `testbed/conform/` (`python -m testbed.conform.output`); a test "
            f"keeps it current.\n\n{markdown()}\n")


if __name__ == "__main__":  # python -m testbed.conform.output: rewrite the generated part of docs/conformance.md
    import testbed.conform  # noqa: F401  (the cases)
    target = Path(__file__).resolve().parents[2] / "docs" / "conformance.md"
    target.write_text(document(target.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"written {target}")
