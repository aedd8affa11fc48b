"""The commands on runs already made: `report compare A B` (two runs' figures side by side, regressions flagged against
thresholds) and `report html RUN` (a run's report written again from its result.json, by this version's report)."""
from __future__ import annotations

import json
import math
import unicodedata
from pathlib import Path

from testbed import report
from testbed.cli.common import Refusal

COMPARE_HELP = """\
Every figure of run A beside run B: the change, absolute and in %, and each figure with a threshold judged
against it. A threshold is the change allowed in the figure's worse direction, in % (the sign is optional:
p99_ms=20 and p99_ms=+20 are the same; rate=-10 lets the achieved rate fall by 10%); for a count that should
be none (errors, checks) it is how many B may have. FIGURE is a figure's name (as the report's "At a glance"
table names it) or OP.NAME for one operation (OP in Japanese or English: 転入.p99_ms, move-in.p99_ms); an
operation's latency takes the threshold of the figure of every operation unless given its own; "off" turns
a threshold off. Defaults: p99_ms=+20 (p99 latency, of every operation and of each), rate=-10 (achieved
rate), errors=0 (any failed call in B), checks=0 (any failed check in B). A latency either run has too few
samples for (p99 needs 100, p99.9 1,000) is shown as such and not judged.
Exit status: 0 when no figure is over its threshold, 1 when one is, 2 when A or B cannot be read."""


def register(sub) -> None:
    """Add `report` and its subcommands to the subcommands of `testbed`."""
    p = sub.add_parser("report", help="compare two runs (regressions against thresholds), or write a run's report again")
    commands = p.add_subparsers(dest="report_command", required=True, metavar="{compare,html}")
    c = commands.add_parser("compare", help="two runs' figures side by side, regressions flagged (exit 1)",
                            description=COMPARE_HELP)
    c.add_argument("a", metavar="A", help="the run to compare against: a run folder, or its result.json")
    c.add_argument("b", metavar="B", help="the run compared: a run folder, or its result.json")
    c.add_argument("--threshold", action="append", default=[], metavar="FIGURE=PCT",
                   help="the change allowed in FIGURE's worse direction, in %% (a count: how many), or off; "
                        "again for more (defaults: p99_ms=+20 rate=-10 errors=0 checks=0)")
    c.add_argument("--json", metavar="OUT", help="also write the comparison to this file")
    c.add_argument("--all", action="store_true", help="every figure, also those of each operation that did not change")
    c.set_defaults(func=cmd_compare)
    h = commands.add_parser("html", help="write a run's report again from its result.json")
    h.add_argument("run", metavar="RUN", help="a run folder, or its result.json")
    h.add_argument("--out", help="where to write it (default: report.html beside the result.json)")
    h.set_defaults(func=cmd_html)


def read_run(given: str, command: str) -> tuple[Path, dict]:
    """(the result.json, the run it holds) of a run folder or a result.json; a Refusal (exit 2, one line) when it
    cannot be read or holds no run."""
    path = Path(given)
    if path.is_dir():
        path = path / "result.json"
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Refusal(f"{given}: no such run (give a run folder, e.g. reports/march-peak-…, or its result.json)",
                      command=command) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise Refusal(f"{given}: cannot be read ({exc.__class__.__name__}: {exc})", command=command) from None
    except json.JSONDecodeError as exc:
        raise Refusal(f"{path}: not a run's result.json (not JSON: {exc.msg} at line {exc.lineno})",
                      command=command) from None
    replay = run.get("replay") if isinstance(run, dict) else None
    if not isinstance(replay, dict) or not isinstance(replay.get("operations"), dict) or "completed" not in replay:
        raise Refusal(f"{path}: not a run's result.json (no replay with its operations: is it of `testbed run`?)",
                      command=command)
    return path, run


def cmd_compare(args) -> int:
    """testbed report compare A B: the figures side by side; exit 1 when one is over its threshold."""
    command = "report compare"
    path_a, a = read_run(args.a, command)
    path_b, b = read_run(args.b, command)
    operations = {*a["replay"]["operations"], *b["replay"]["operations"]}
    try:
        limits = report.parse_thresholds(args.threshold, operations)
    except ValueError as exc:
        raise Refusal(str(exc), command=command) from None
    rows = report.compare(a, b, limits)
    regressions = [r for r in rows if r["regression"]]
    # (without --all, an operation's figures only where they say something: changed, judged, or over a threshold)
    shown = [r for r in rows if args.all or "." not in r["figure"] or r["regression"]
             or (r["a"] is not None or r["b"] is not None) and (r["limit"] is not None or (r["change"] or 0) != 0)]
    unjudged = [r for r in rows if "." in r["figure"] and r not in shown and r["note"].startswith("too few")]
    print(f"A: {path_a} ({_about(a)})\nB: {path_b} ({_about(b)})\n")
    print(table(shown))
    if unjudged:
        print(f"({len(unjudged)} percentiles of single operations not shown: too few samples in A or B; --all lists them)")
    if regressions:
        print(f"\n{len(regressions)} over {'its' if len(regressions) == 1 else 'their'} threshold: "
              + "; ".join(f"{r['figure']} {_change(r)} (limit {r['limit_text']})" for r in regressions))
    else:
        print("\nno figure over its threshold")
    if args.json:
        out = {"a": str(path_a), "b": str(path_b), "thresholds": limits,
               "figures": [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
                           for r in rows],
               "regressions": [r["figure"] for r in regressions]}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, ensure_ascii=False, indent=1), encoding="utf-8")
        print(f"written {args.json}")
    return 1 if regressions else 0


def _about(run: dict) -> str:
    env = run.get("environment") or {}
    return ", ".join(str(x) for x in (run.get("scenario"), run.get("outcome"), env.get("time"), env.get("commit")) if x)


def _change(row: dict) -> str:
    if row["change"] is None:
        return ""
    pct = row["change_pct"]
    return (f"{'+' if row['change'] >= 0 else '−'}{report.number(abs(row['change']))}"
            + (f" ({'+' if pct >= 0 else '−'}{abs(pct):.1f}%)" if pct is not None else " (new)"))


def table(rows: list[dict]) -> str:
    """The comparison as aligned text: figure, A, B, change, limit, verdict."""
    lines = [("figure", "A", "B", "change", "limit", "")]
    for r in rows:
        verdict = "REGRESSION" if r["regression"] else r["note"] or ("ok" if r["limit"] is not None else "")
        unit = f" ({r['unit']})" if r["unit"] in ("ms", "s", "MB") else ""  # (the others say theirs in the label)
        lines.append((f"{r['label']}{unit}", report.number(r["a"]), report.number(r["b"]), _change(r),
                      r["limit_text"], verdict))
    widths = [max(_width(line[i]) for line in lines) for i in range(5)]
    return "\n".join("  ".join([_pad(line[0], widths[0]), *(_pad(line[i], widths[i], right=True) for i in range(1, 5)),
                                line[5]]).rstrip() for line in lines)


def _width(text: str) -> int:
    """Columns text takes in a terminal (a kanji or kana: two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    space = " " * max(0, width - _width(text))
    return space + text if right else text + space


def cmd_html(args) -> int:
    """testbed report html RUN: the report of a run written again from its result.json."""
    path, run = read_run(args.run, "report html")
    page = report.write(run, Path(args.out) if args.out else path.parent / "report.html")
    print(f"written {page}")
    return 0
