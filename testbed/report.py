"""The HTML report of a run: a summary, then charts drawn as inline SVG (no scripts, no downloads):
throughput over time, latency percentiles per operation, and the simulated counter's queue."""
from __future__ import annotations

import html
from pathlib import Path

WIDTH, HEIGHT, PAD = 720, 220, 40


def _polyline(points: list[tuple[float, float]], color: str) -> str:
    return f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}"/>'


TICKS = 5
FEW = 20  # fewer samples than this: no percentiles, "too few samples"


def line_chart(values: list[float], title: str, unit: str, x_label: str, markers=(), target: float | None = None,
               target_label: str = "") -> str:
    """A line chart of values over their index, with ticks on both axes, markers (x, label) drawn as dashed
    lines (faults), and a target drawn as a horizontal line where one applies."""
    top = max([*values, target or 0], default=0) or 1
    n = max(len(values) - 1, 1)
    x = lambda i: PAD + i * (WIDTH - 2 * PAD) / n  # noqa: E731
    y = lambda v: HEIGHT - PAD - v * (HEIGHT - 2 * PAD) / top  # noqa: E731
    points = [(x(i), y(v)) for i, v in enumerate(values)]
    extra = "".join(f'<line x1="{x(at):.1f}" y1="{PAD}" x2="{x(at):.1f}" y2="{HEIGHT - PAD}" stroke="#d00" '
                    f'stroke-dasharray="4 3"/><text x="{x(at) + 3:.1f}" y="{PAD + 10 + 11 * (k % 3)}" font-size="10" '
                    f'fill="#d00">{html.escape(label)}</text>' for k, (at, label) in enumerate(markers))
    if target is not None:
        extra += (f'<line x1="{PAD}" y1="{y(target):.1f}" x2="{WIDTH - PAD}" y2="{y(target):.1f}" stroke="#2a2" '
                  f'stroke-dasharray="6 3"/><text x="{WIDTH - PAD}" y="{y(target) - 3:.1f}" text-anchor="end" '
                  f'font-size="10" fill="#2a2">{html.escape(target_label)}</text>')
    return (f'<figure><figcaption>{html.escape(title)}</figcaption><svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
            f'height="{HEIGHT}" role="img">{_axes(top, unit, x_label, len(values))}{extra}'
            f'{_polyline(points, "#1f6feb")}</svg></figure>')


PALETTE = ["#1f6feb", "#f0883e", "#2da44e", "#cf222e", "#8250df", "#bf8700", "#0a3069", "#e16f24", "#57606a", "#1b7c83",
           "#a40e26", "#6639ba"]


def multi_line_chart(series: dict[str, list[float]], title: str, unit: str, x_label: str, markers=(),
                     target: float | None = None, target_label: str = "") -> str:
    """Several named series on one chart (one colour each, a legend), with markers and a target as line_chart."""
    length = max((len(v) for v in series.values()), default=0)
    top = max([v for values in series.values() for v in values] + [target or 0], default=0) or 1
    n = max(length - 1, 1)
    x = lambda i: PAD + i * (WIDTH - 2 * PAD) / n  # noqa: E731
    y = lambda v: HEIGHT - PAD - v * (HEIGHT - 2 * PAD) / top  # noqa: E731
    lines, legend = [], []
    for k, (name, values) in enumerate(series.items()):
        color = PALETTE[k % len(PALETTE)]
        lines.append(_polyline([(x(i), y(v)) for i, v in enumerate(values)], color))
        legend.append(f'<span style="color:{color}">■</span> {html.escape(name)}')
    extra = "".join(f'<line x1="{x(at):.1f}" y1="{PAD}" x2="{x(at):.1f}" y2="{HEIGHT - PAD}" stroke="#d00" '
                    f'stroke-dasharray="4 3"/>' for at, _ in markers)
    if target is not None:
        extra += (f'<line x1="{PAD}" y1="{y(target):.1f}" x2="{WIDTH - PAD}" y2="{y(target):.1f}" stroke="#2a2" '
                  f'stroke-dasharray="6 3"/><text x="{WIDTH - PAD}" y="{y(target) - 3:.1f}" text-anchor="end" '
                  f'font-size="10" fill="#2a2">{html.escape(target_label)}</text>')
    return (f'<figure><figcaption>{html.escape(title)}</figcaption><svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
            f'height="{HEIGHT}" role="img">{_axes(top, unit, x_label, length)}{extra}{"".join(lines)}</svg>'
            f'<div style="font-size:11px">{" ".join(legend)}</div></figure>')


def histogram(values: list[float], title: str, unit: str, bins: int = 24) -> str:
    """A histogram of values on a log scale of ms (1 µs … the largest), as bars."""
    import math
    values = [v for v in values if v > 0]
    if not values:
        return ""
    low, high = math.log10(min(values)), math.log10(max(values)) + 1e-9
    width = (high - low) / bins or 1
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((math.log10(v) - low) / width))] += 1
    top = max(counts)
    bar = (WIDTH - 2 * PAD) / bins
    bars = "".join(f'<rect x="{PAD + i * bar:.1f}" y="{HEIGHT - PAD - c * (HEIGHT - 2 * PAD) / top:.1f}" '
                   f'width="{bar - 1:.1f}" height="{c * (HEIGHT - 2 * PAD) / top:.1f}" fill="#1f6feb"><title>'
                   f'{10 ** (low + i * width):.1f}–{10 ** (low + (i + 1) * width):.1f} {unit}: {c}</title></rect>'
                   for i, c in enumerate(counts))
    ticks = "".join(f'<text x="{PAD + i * bar:.1f}" y="{HEIGHT - PAD + 14}" font-size="10" text-anchor="middle">'
                    f'{10 ** (low + i * width):.3g}</text>' for i in range(0, bins + 1, 4))
    return (f'<figure><figcaption>{html.escape(title)}</figcaption><svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
            f'height="{HEIGHT}" role="img"><line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
            f'stroke="#888"/>{bars}{ticks}<text x="{PAD}" y="{PAD - 10}" font-size="11">calls (max {top:,})</text>'
            f'<text x="{WIDTH - PAD}" y="{HEIGHT - 4}" text-anchor="end" font-size="11">{html.escape(unit)} (log scale)'
            f'</text></svg></figure>')


def _axes(top: float, unit: str, x_label: str, length: int) -> str:
    ticks = []
    for k in range(TICKS + 1):
        value, yy = top * k / TICKS, HEIGHT - PAD - k * (HEIGHT - 2 * PAD) / TICKS
        ticks.append(f'<line x1="{PAD - 3}" y1="{yy:.1f}" x2="{PAD}" y2="{yy:.1f}" stroke="#888"/>'
                     f'<text x="{PAD - 5}" y="{yy + 4:.1f}" text-anchor="end" font-size="10">{value:,.{0 if top >= 10 else 1}f}</text>')
        at, xx = round((length - 1) * k / TICKS), PAD + k * (WIDTH - 2 * PAD) / TICKS
        ticks.append(f'<line x1="{xx:.1f}" y1="{HEIGHT - PAD}" x2="{xx:.1f}" y2="{HEIGHT - PAD + 3}" stroke="#888"/>'
                     f'<text x="{xx:.1f}" y="{HEIGHT - PAD + 14}" text-anchor="middle" font-size="10">{at}</text>')
    return (f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#888"/>'
            f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#888"/>{"".join(ticks)}'
            f'<text x="{PAD}" y="{PAD - 10}" font-size="11">{html.escape(unit)}</text>'
            f'<text x="{WIDTH - PAD}" y="{HEIGHT - 4}" text-anchor="end" font-size="11">{html.escape(x_label)}</text>')


def bar_chart(rows: list[tuple[str, float, float]], title: str) -> str:
    """Paired bars (p50, p99 in ms) per operation."""
    top = max((p99 for _, _, p99 in rows), default=0) or 1
    row_height = 22
    height = PAD + row_height * len(rows) + 10
    label_width = 120
    scale = (WIDTH - label_width - 80) / top
    parts = []
    for i, (name, p50, p99) in enumerate(rows):
        y = PAD + i * row_height
        parts.append(f'<text x="{label_width - 6}" y="{y + 13}" text-anchor="end" font-size="12">{html.escape(name)}</text>'
                     f'<rect x="{label_width}" y="{y + 2}" width="{p99 * scale:.1f}" height="14" fill="#f0b429"/>'
                     f'<rect x="{label_width}" y="{y + 2}" width="{p50 * scale:.1f}" height="14" fill="#1f6feb"/>'
                     f'<text x="{label_width + p99 * scale + 4:.1f}" y="{y + 13}" font-size="11">{p50:.1f} / {p99:.1f} ms</text>')
    legend = (f'<rect x="{label_width}" y="8" width="10" height="10" fill="#1f6feb"/><text x="{label_width + 14}" y="17" '
              f'font-size="11">p50</text><rect x="{label_width + 50}" y="8" width="10" height="10" fill="#f0b429"/>'
              f'<text x="{label_width + 64}" y="17" font-size="11">p99</text>')
    return (f'<figure><figcaption>{html.escape(title)}</figcaption><svg viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
            f'height="{height}" role="img">{legend}{"".join(parts)}</svg></figure>')


def render(run: dict) -> str:
    """The whole report as one HTML page."""
    result = run["replay"]
    invariants = run.get("invariants", {"ok": True})
    ok = result["errors"] == 0 and run["consistency_ok"] and run["audit_ok"] and invariants.get("ok", True)
    skipped = sum(o["skipped"] for o in result["operations"].values())
    verdict = ("passed" if not skipped else f"passed, with {skipped:,} events skipped (see below)") if ok else "problems found"

    def cells(o):
        if o["count"] < FEW:
            return f'<td colspan="5" style="text-align:center;color:#888">too few samples (n = {o["count"]})</td>'
        return "".join(f"<td>{o[k]:.1f}</td>" for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"))
    rows = "".join(
        f"<tr><td>{html.escape(op)}</td><td>{o['count']:,}</td><td>{sum(o['errors'].values())}</td><td>{o['skipped']}</td>"
        f"{cells(o)}<td>{html.escape(o.get('note', '') or '; '.join(o['error_examples'][:1]))}</td></tr>"
        for op, o in result["operations"].items())
    markers = [(f["started_s"], f["fault"]) for f in result.get("faults", []) if f.get("started_s") is not None]
    faults = "".join(_fault_row(f) for f in result.get("faults", []))
    checks = "".join(f"<li>{html.escape(line)}</li>" for line in run["checks"])
    queues = "".join(
        line_chart([q for _, q in stats.get("queue_by_hour", [])], f"Counter queue of {code} (simulated, max per hour)",
                   "people waiting", "simulated hours")
        + f"<p>{stats['served']:,} served; mean wait {stats['mean_wait_min']:.1f} min, p95 {stats['p95_wait_min']:.1f} min, "
          f"max {stats['max_wait_min']:.1f} min (the worst hour: {stats.get('worst_hour_mean_wait_min', 0):.0f} min on "
          f"average); longest queue {stats['max_queue']}</p>"
        for code, stats in result["counter"].items())
    latency_rows = [(op, o["p50_ms"], o["p99_ms"]) for op, o in result["operations"].items() if o["count"]]
    return f"""<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>testbed run: {html.escape(run['scenario'])}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:780px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
td:first-child,th:first-child,td:last-child{{text-align:left}}figure{{margin:1.5em 0}}figcaption{{font-weight:600}}
.verdict{{font-size:1.3em;padding:.4em .8em;display:inline-block;border-radius:4px;background:{'#d1f5d3' if ok else '#fdd'}}}</style>
</head><body>
<h1>{html.escape(run['scenario'])} — {html.escape(verdict)}</h1>
<p class="verdict">{result['completed']:,} of {result['events']:,} events completed, {result['errors']} errors,
{result['wall_seconds']:.0f} s at ×{result['speed']:,.0f}</p>
<p>Seed {run['seed']}; municipalities {html.escape(', '.join(f'{c} ({n:,} residents)' for c, n in run['municipalities'].items()))};
trace {html.escape(run['trace'])}; {result['concurrency']} calls in flight at most; lag behind schedule p50 {result['lag_p50_s']:.2f} s,
max {result['lag_max_s']:.2f} s.</p>
<h2>Checks</h2><ul>{checks}</ul>
{f'<h2>Faults</h2><table><tr><th>fault</th><th>began (s)</th><th>undone (s)</th><th>answering again after (s)</th><th>note</th></tr>{faults}</table><p>Calls the terminals retried with the same 依頼管理番号: {result.get("retried_calls", 0)}.</p>' if faults else ''}
<h2>Operations</h2>
<table><tr><th>operation</th><th>done</th><th>errors</th><th>skipped</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th><th>note</th></tr>{rows}</table>
{line_chart(result['throughput_per_s'], 'Throughput over time', 'completed events per second', 'seconds of wall time', markers)}
{line_chart(result.get('p99_ms_per_s', []), 'Latency over time (p99 of each second, every operation)', 'ms', 'seconds of wall time', markers)}
{line_chart(result.get('errors_per_s', []), 'Errors over time', 'failed calls per second', 'seconds of wall time', markers)}
{histogram([lat for _, lat in result.get('latencies', [])], 'Latency of every completed event', 'ms')}
{line_chart(result.get('propagation_lag_s', []), 'Propagation lag: acknowledged at the counter → applied at national (the largest of each second)', 'seconds', 'seconds of wall time', markers)}
{_node_charts(result, markers)}
{bar_chart(latency_rows, 'Latency per operation (p50 and p99)')}
<h2>The simulated counter</h2>{queues}
{_migration(run)}
{_environment(run)}
</body></html>
"""


def _node_charts(result: dict, markers) -> str:
    """Outbox depth, CPU (share of a core) and resident memory of every node, once a second."""
    samples = result.get("samples", [])
    if len(samples) < 2:
        return ""
    nodes = sorted({name for s in samples for name in s["cpu_s"]})
    outbox = {n: [s["outbox"].get(n, 0) for s in samples] for n in nodes if any(s["outbox"].get(n) for s in samples)}
    cpu = {n: [max(0.0, 100 * (b["cpu_s"].get(n, 0) - a["cpu_s"].get(n, 0)) / max(b["t"] - a["t"], 1e-3))
               for a, b in zip(samples, samples[1:])] for n in nodes}
    rss = {n: [s["rss_mb"].get(n, 0) for s in samples] for n in nodes}
    return (multi_line_chart(outbox, "Outbox depth per node (items waiting to be delivered)", "items", "seconds of wall time",
                             markers) if outbox else "<p>No outbox held anything at the samples (every delivery was immediate).</p>") + \
        multi_line_chart(cpu, "CPU per node", "% of one core", "seconds of wall time", markers) + \
        multi_line_chart(rss, "Resident memory per node", "MB", "seconds of wall time", markers, target=300,
                         target_label="target ≤ 300 MB (DESIGN §9)")


def _fault_row(fault: dict) -> str:
    seconds = lambda v: "" if v is None else f"{v:.1f}"  # noqa: E731
    return (f"<tr><td>{html.escape(fault['fault'])}</td><td>{seconds(fault['started_s'])}</td>"
            f"<td>{seconds(fault['undone_s'])}</td><td>{seconds(fault['recovered_s'])}</td>"
            f"<td>{html.escape('; '.join(fault['notes']))}</td></tr>")


def _environment(run: dict) -> str:
    """Where and how the run was made: commit, versions, machine, topology, every option."""
    env = run.get("environment")
    if not env:
        return ""
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in env.items())
    return f"<h2>Environment</h2><table>{rows}</table>"


def _migration(run: dict) -> str:
    """The migration inside the freeze window: downtime, steps, and the counters' load before and after."""
    migration = run.get("migration")
    if not migration:
        return ""
    from testbed.migration.report import steps_table
    before, after = run["replay_before"]["operations"], run["replay"]["operations"]
    rows = "".join(
        f"<tr><td>{html.escape(op)}</td><td>{before.get(op, {}).get('count', 0):,}</td>"
        f"<td>{before.get(op, {}).get('p50_ms', 0):.1f}</td><td>{before.get(op, {}).get('p99_ms', 0):.1f}</td>"
        f"<td>{after.get(op, {}).get('count', 0):,}</td><td>{after.get(op, {}).get('p50_ms', 0):.1f}</td>"
        f"<td>{after.get(op, {}).get('p99_ms', 0):.1f}</td></tr>"
        for op in sorted(set(before) | set(after)))
    down = migration["downtime"]
    return f"""<h2>Migration of {html.escape(migration['municipality'])} to {html.escape(migration['site'])}:
{html.escape(migration['result'])}</h2>
<p>Downtime window (counters closed): {html.escape(down['start'] or '-')} → {html.escape(down['end'] or '-')},
<b>{down['seconds']} s</b>.</p>
{steps_table(migration)}
<h3>Counter load before the freeze (old site) and after it (new site)</h3>
<table><tr><th>operation</th><th>before: done</th><th>p50 ms</th><th>p99 ms</th><th>after: done</th><th>p50 ms</th>
<th>p99 ms</th></tr>{rows}</table>"""


def write(run: dict, path: str | Path) -> Path:
    """Write the report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(run), encoding="utf-8")
    return path
