"""The migration rehearsal's HTML report: the verdict, the downtime window, every step with its figures and checks."""
from __future__ import annotations

import html
from pathlib import Path

COLORS = {"ok": "#070", "recovered": "#a60", "failed": "#c00", "not run": "#888", "not done": "#c00", "skipped": "#888",
          "warning": "#a60"}


def verdict(report: dict) -> str:
    """The run's outcome in one line: passed, or where it failed and exactly what the rollback restored."""
    if report["result"] == "passed":
        return "passed"
    line = f"FAILED at {report['failed_step']}"
    rollback = report.get("rollback")
    if report["rolled_back"]:
        return line + " — rolled back, the old site is open again"
    if rollback:
        return (line + " — rollback INCOMPLETE; not restored: " + "; ".join(rollback["not_restored"])
                + (f"; restored: {', '.join(rollback['restored'])}" if rollback["restored"] else ""))
    if report["failed_step"] == "decommission":
        return line + " — after the cut over: the new site is open; the old site's destruction is not verified"
    return line + " — not rolled back"


def _bar(steps: list[dict], total: float) -> str:
    """Each step's share of the run, as one stacked bar (inline SVG)."""
    x, parts = 0.0, []
    palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7"]
    for i, s in enumerate(steps):
        width = 700 * s["seconds"] / total if total else 0
        parts.append(f'<rect x="{x:.1f}" y="0" width="{max(width, 0.5):.1f}" height="24" fill="{palette[i % 8]}">'
                     f'<title>{html.escape(s["name"])}: {s["seconds"]:.2f} s</title></rect>')
        if width > 50:
            parts.append(f'<text x="{x + 4:.1f}" y="16" font-size="11" fill="#fff">{html.escape(s["name"])}</text>')
        x += width
    return f'<svg width="700" height="24" role="img" aria-label="share of each step">{"".join(parts)}</svg>'


def steps_table(report: dict) -> str:
    """The steps, their results, times, shares, messages, figures and checks: a bar and a table."""
    steps = report["steps"]
    total = sum(s["seconds"] for s in steps) or 1.0
    rows = []
    for s in steps:
        figures = ", ".join(f"{k}: {v}" for k, v in s["figures"].items())
        rows.append(f'<tr><td>{html.escape(s["name"])}</td><td style="color:{COLORS.get(s["result"], "#000")}">'
                    f'<b>{html.escape(s["result"])}</b></td><td>{s["started"][11:23]}</td><td>{s["seconds"]:.2f}</td>'
                    f'<td>{100 * s["seconds"] / total:.0f}%</td><td>{html.escape(s["message"])}</td>'
                    f'<td>{html.escape(figures)}</td></tr>')
        for check, result, detail in s.get("checks", []):
            rows.append(f'<tr class="check"><td></td><td style="color:{COLORS.get(result, "#000")}">{html.escape(result)}'
                        f'</td><td colspan="3">{html.escape(check)}</td><td colspan="2">{html.escape(detail)}</td></tr>')
    return (_bar(steps, total) + "<table><tr><th>step</th><th>result</th><th>started (UTC)</th><th>s</th><th>share</th>"
            "<th>message</th><th>figures</th></tr>" + "".join(rows) + "</table>")


def characters_section(report: dict) -> str:
    """The character work of a run (文字同定 of the vendor's 外字, 代替文字 a JIS X 0213 receiver gets, unmapped 外字),
    each kind with its count and examples; empty when the run carried no vendor export."""
    work = report.get("characters")
    if not work:
        return ""
    parts = ["<h2>文字同定</h2>", f"<p>{html.escape(work.get('summary', ''))}</p>"]
    for kind, title in (("mapped", "identified through the vendor's 外字 table"),
                        ("unmapped", "unmapped: no standard character (carried only when the run accepts them)"),
                        ("substituted", "standard characters a JIS X 0213 receiver gets as 代替文字")):
        found = work.get(kind) or {}
        examples = found.get("examples", [])
        parts.append(f"<h3>{html.escape(kind)}: {found.get('characters', 0)} characters in {found.get('records', 0)} "
                     f"records — {html.escape(title)}</h3>")
        if examples:
            parts.append("<table><tr><th>code</th><th>description</th><th>standard</th><th>count</th><th>records and items"
                         "</th></tr>" + "".join(
                             f"<tr><td>{html.escape(e.get('code', ''))}</td><td>{html.escape(e.get('description', ''))}</td>"
                             f"<td>{html.escape(e.get('standard', ''))}</td><td>{e.get('count', 0)}</td>"
                             f"<td>{html.escape(', '.join(e.get('records', [])[:5]))}</td></tr>" for e in examples)
                         + "</table>")
    return "".join(parts)


def render(report: dict) -> str:
    """The report as one self-contained HTML page."""
    down = report["downtime"]
    return f"""<!doctype html><meta charset="utf-8"><title>移行 rehearsal {html.escape(report['run'])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}}tr.check td{{background:#f8f8f8}}</style>
<h1>移行 rehearsal: {html.escape(report['municipality'])} → {html.escape(report['site'])}</h1>
<p><b>{html.escape(verdict(report))}</b>{' — injected: ' + html.escape(', '.join(report['injected'])) if report['injected'] else ''}</p>
<p>Downtime window (counters closed): {html.escape(down['start'] or '-')} →
{html.escape(down['end'] or ('not ended: the counters are still closed' if down['start'] else '-'))}
<b>{'' if down['seconds'] is None else f"{down['seconds']:.2f} s"}</b>; the whole run {report['seconds']:.2f} s.</p>
{steps_table(report)}
{characters_section(report)}
{f'<p style="color:#c00">{html.escape(report["failure"])}</p>' if report.get('failure') else ''}"""


def write(report: dict, path: Path) -> Path:
    """Write the page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(report), encoding="utf-8")
    return path
