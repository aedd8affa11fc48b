"""The HTML report of a run, as a load tester reads it: the figures at a glance (offered against achieved rate, calls
in flight, latency, the client's and the machine's CPU), the operations table, then charts drawn as inline SVG (no
scripts, no downloads) on one shared time axis: offered, sent and completed rate, calls in flight, latency over
time, each operation's throughput (small multiples), propagation lag, the nodes (the busiest few and the others)
and the load generator beside the machine; then the simulated counter's queue, a migration if any, and the true
environment (topology file, ports, population, machine, versions).

One rule for percentiles everywhere (the table, every chart and `testbed report compare`): a percentile is given
only from enough samples (`needed`: p50 and p90 from 20, p99 from 100, p99.9 from 1,000; the max from 1); with
fewer, "too few samples". Axis ticks are nice numbers (1, 2, 2.5 or 5 × 10^k). Operation names are Japanese with
their English beside them (OPERATIONS).

`figures` gives a run's headline figures, as the glance table shows them and `testbed report compare` holds two
runs' against each other (`compare`, with thresholds: THRESHOLDS by default)."""
from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path

# -- names ------------------------------------------------------------------------------------------------------------
# The trace's operations (scenarios/workload.py, testbed/replay.py) in English beside their Japanese names.
OPERATIONS = {
    "出生": "birth",
    "死亡": "death",
    "転入": "move-in",
    "転出": "move-out",
    "転居": "move within",
    "証明書": "certificate",  # 住民票の写し etc. at the counter
    "コンビニ交付": "kiosk certificate",  # at a convenience-store kiosk, with the card
    "本人確認": "identity check",  # on the 統合端末 (CS)
    "検索": "identity search",  # 本人確認情報検索
    "情報提供": "information provision",  # to the 情報提供NWS (中間サーバ)
    "夜間バッチ": "nightly batch",
    "国外転出": "emigration",  # a move abroad: a 除票, no 転出証明書
    "職権消除": "removal by the office",  # after a 実態調査
    "職権記載": "entry by the office",  # after a 実態調査
    "婚姻": "marriage",  # 婚姻届 at the 戸籍 counter: the 住民票 follows by notice
    "離婚": "divorce",  # 離婚届 at the 戸籍 counter
    "法務省通知": "immigration notice",  # a change of 在留 recorded by 法務省, applied to the 住民票 by notice
    "裁判員候補者名簿": "jury candidate list",  # drawn once a year for the 名簿調製プログラム
}


def english(op: str) -> str:
    """The English name of an operation ("" for one the table does not know)."""
    return OPERATIONS.get(op, "")


def named(op: str) -> str:
    """An operation's Japanese name with its English beside it: "転入 (move-in)"."""
    return f"{op} ({OPERATIONS[op]})" if op in OPERATIONS else op


# -- the percentile rule ----------------------------------------------------------------------------------------------
FEW = 20  # fewer samples than this: no percentile at all
SHARES = {"p50_ms": 0.50, "p90_ms": 0.90, "p99_ms": 0.99, "p999_ms": 0.999, "max_ms": 1.0}
PERCENTILE_NAMES = {"p50_ms": "p50", "p90_ms": "p90", "p99_ms": "p99", "p999_ms": "p99.9", "max_ms": "max"}


def needed(share: float) -> int:
    """Samples a percentile needs to be given (the table, the charts, `report compare` alike): at least FEW, and so
    many that one lies above it: p50 and p90 from 20, p99 from 100, p99.9 from 1,000; the max (share 1) from 1."""
    return 1 if share >= 1 else max(FEW, round(1 / (1 - share)))


def shown(n: int, share: float) -> bool:
    """Whether n samples are enough for the share-percentile (`needed`)."""
    return n >= needed(share)


def percentile(values, share: float) -> float:
    """The value below which `share` of the values lie (nearest rank, as testbed.replay; 0 for none)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def few(n: int, share: float) -> str:
    """What a table cell or a chart says instead of a percentile n samples cannot give."""
    return f"too few samples (n = {n:,}; {PERCENTILE_NAME_OF.get(share, 'it')} needs {needed(share):,})"


PERCENTILE_NAME_OF = {share: PERCENTILE_NAMES[key] for key, share in SHARES.items()}


# -- ticks ------------------------------------------------------------------------------------------------------------
def nice_step(span: float, count: int = 5, integer: bool = False) -> float:
    """The step of about count ticks over span: 1, 2, 2.5 or 5 × 10^k (1, 2 or 5 × 10^k, at least 1, for counts)."""
    raw = span / count if span > 0 else 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    steps = (1, 2, 5, 10) if integer else (1, 2, 2.5, 5, 10)
    step = next(m * magnitude for m in steps if m * magnitude >= raw * (1 - 1e-9))
    return max(1.0, step) if integer else step


def nice_ticks(high: float, low: float = 0.0, count: int = 5, integer: bool = False) -> list[float]:
    """Tick values from low (rounded down) to at least high, at a nice step: the last is the axis's end."""
    if not high > low:
        high = low + 1
    step = nice_step(high - low, count, integer)
    first = math.floor(low / step + 1e-9) * step
    intervals = max(1, math.ceil((high - first) / step - 1e-9))
    return [_clean(first + k * step) for k in range(intervals + 1)]


def _clean(value: float) -> float:
    value = round(value, 10)
    return float(round(value)) if abs(value - round(value)) < 1e-9 else value


def tick_text(value: float, step: float) -> str:
    """A tick's label with as many decimals as its step needs (0.25 → 2, 2.5 → 1, 20 → 0), thousands separated."""
    decimals = next((d for d in range(10) if abs(step * 10 ** d - round(step * 10 ** d)) < 1e-6 * max(1, step * 10 ** d)), 3)
    return f"{value:,.{decimals}f}"


def log_ticks(low: float, high: float) -> list[float]:
    """Ticks of a log axis: 1, 2 and 5 × 10^k from low to high (only the decades when there are many)."""
    ticks = [m * 10 ** k for k in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1)
             for m in (1, 2, 5)]
    inside = [t for t in ticks if low * (1 - 1e-9) <= t <= high * (1 + 1e-9)]
    return inside if len(inside) <= 10 else [t for t in inside if math.isclose(math.log10(t), round(math.log10(t)))]


# -- charts -----------------------------------------------------------------------------------------------------------
WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 58, 16, 22, 30
SMALL = (352, 130)  # a small multiple
# distinct colours for the few lines a chart has (never more than six: the rest are "others", in grey)
PALETTE = ["#1f6feb", "#e8590c", "#2da44e", "#cf222e", "#8250df", "#bf8700"]
OTHERS = "#8c959f"
TOP_NODES = 5  # per-node charts: these many busiest nodes by name, the rest as "others"


@dataclass(frozen=True)
class Series:
    """One line of a chart: (x, y) points, y None for a gap (nothing drawn there)."""

    name: str
    points: list
    color: str = PALETTE[0]
    dashed: bool = False


@dataclass(frozen=True)
class Axis:
    """An x axis from 0 to its last tick (every time chart of a report shares one: seconds of wall time)."""

    ticks: tuple
    label: str

    @classmethod
    def over(cls, high: float, label: str) -> "Axis":
        return cls(tuple(nice_ticks(high)), label)

    @property
    def end(self) -> float:
        return self.ticks[-1]


def chart(series: list[Series], title: str, unit: str, axis: Axis, markers=(), target: float | None = None,
          target_label: str = "", size: tuple[int, int] = (WIDTH, HEIGHT), integer: bool = False, note: str = "",
          legend: bool = True) -> str:
    """A line chart of series over axis, y from 0 to a nice top; markers (x, label) as dashed red lines (faults), a
    target as a dashed green horizontal line; gaps where a point is None (a lone point drawn as a dot)."""
    width, height = size
    values = [y for s in series for _, y in s.points if y is not None]
    yticks = nice_ticks(max([*values, target or 0, 0]) or 1, integer=integer)
    top, ystep = yticks[-1], (yticks[1] - yticks[0])
    xstep = axis.ticks[1] - axis.ticks[0]
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    fx = lambda v: LEFT + min(max(v, 0.0), axis.end) / axis.end * plot_w  # noqa: E731
    fy = lambda v: TOP + plot_h - v / top * plot_h  # noqa: E731
    parts = []
    for v in yticks:
        parts.append(f'<line x1="{LEFT}" y1="{fy(v):.1f}" x2="{width - RIGHT}" y2="{fy(v):.1f}" stroke="#eee"/>'
                     f'<text x="{LEFT - 5}" y="{fy(v) + 4:.1f}" text-anchor="end" font-size="10">{tick_text(v, ystep)}</text>')
    for v in axis.ticks:
        parts.append(f'<line x1="{fx(v):.1f}" y1="{TOP + plot_h}" x2="{fx(v):.1f}" y2="{TOP + plot_h + 3}" stroke="#888"/>'
                     f'<text x="{fx(v):.1f}" y="{TOP + plot_h + 14}" text-anchor="middle" font-size="10">'
                     f'{tick_text(v, xstep)}</text>')
    parts.append(f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{width - RIGHT}" y2="{TOP + plot_h}" stroke="#888"/>'
                 f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#888"/>'
                 f'<text x="{LEFT}" y="{TOP - 8}" font-size="11">{html.escape(unit)}</text>'
                 f'<text x="{width - RIGHT}" y="{height - 3}" text-anchor="end" font-size="11">{html.escape(axis.label)}</text>')
    for k, (at, label) in enumerate(markers):
        parts.append(f'<line x1="{fx(at):.1f}" y1="{TOP}" x2="{fx(at):.1f}" y2="{TOP + plot_h}" stroke="#d00" '
                     f'stroke-dasharray="4 3"/>' + (f'<text x="{fx(at) + 3:.1f}" y="{TOP + 10 + 11 * (k % 3)}" '
                                                    f'font-size="10" fill="#d00">{html.escape(label)}</text>'
                                                    if width >= WIDTH else ""))
    if target is not None:
        parts.append(f'<line x1="{LEFT}" y1="{fy(target):.1f}" x2="{width - RIGHT}" y2="{fy(target):.1f}" stroke="#2a2" '
                     f'stroke-dasharray="6 3"/><text x="{width - RIGHT}" y="{fy(target) - 3:.1f}" text-anchor="end" '
                     f'font-size="10" fill="#2a2">{html.escape(target_label)}</text>')
    for s in series:
        parts.append(_line(s, fx, fy))
    keys = " ".join(f'<span style="color:{s.color}">{"┅" if s.dashed else "■"}</span> {html.escape(s.name)}'
                    for s in series) if legend and (len(series) > 1 or series and series[0].name) else ""
    return (f'<figure><figcaption>{html.escape(title)}</figcaption><svg viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img">{"".join(parts)}</svg>'
            + (f'<div class="legend">{keys}</div>' if keys else "")
            + (f'<div class="note">{html.escape(note)}</div>' if note else "") + "</figure>")


def _line(s: Series, fx, fy) -> str:
    out, run = [], []
    dash = ' stroke-dasharray="5 3"' if s.dashed else ""
    for x, y in [*s.points, (None, None)]:
        if x is not None and y is not None:
            run.append((fx(x), fy(y)))
            continue
        if len(run) == 1:
            out.append(f'<circle cx="{run[0][0]:.1f}" cy="{run[0][1]:.1f}" r="2" fill="{s.color}"/>')
        elif run:
            out.append(f'<polyline fill="none" stroke="{s.color}" stroke-width="1.5"{dash} '
                       f'points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in run)}"/>')
        run = []
    return "".join(out)


def small_multiples(charts: list[str]) -> str:
    return f'<div class="multiples">{"".join(charts)}</div>'


def histogram(values: list[float], title: str, unit: str, bins: int = 24) -> str:
    """A histogram of values on a log scale, as bars, with ticks at 1, 2 and 5 × 10^k."""
    values = [v for v in values if v > 0]
    if not values:
        return ""
    low, high = math.log10(min(values)), math.log10(max(values)) + 1e-9
    width = (high - low) / bins or 1
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((math.log10(v) - low) / width))] += 1
    yticks = nice_ticks(max(counts), integer=True)
    top = yticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    bar = plot_w / bins
    fy = lambda c: TOP + plot_h - c * plot_h / top  # noqa: E731
    parts = [f'<line x1="{LEFT}" y1="{fy(v):.1f}" x2="{WIDTH - RIGHT}" y2="{fy(v):.1f}" stroke="#eee"/><text x="{LEFT - 5}" '
             f'y="{fy(v) + 4:.1f}" text-anchor="end" font-size="10">{tick_text(v, yticks[1] - yticks[0])}</text>'
             for v in yticks]
    parts += [f'<rect x="{LEFT + i * bar:.1f}" y="{fy(c):.1f}" width="{bar - 1:.1f}" height="{TOP + plot_h - fy(c):.1f}" '
              f'fill="#1f6feb"><title>{10 ** (low + i * width):.3g}–{10 ** (low + (i + 1) * width):.3g} {unit}: {c}</title></rect>'
              for i, c in enumerate(counts)]
    span = 10 ** low, 10 ** high
    for t in log_ticks(*span):
        x = LEFT + (math.log10(t) - low) / (high - low or 1) * plot_w
        parts.append(f'<line x1="{x:.1f}" y1="{TOP + plot_h}" x2="{x:.1f}" y2="{TOP + plot_h + 3}" stroke="#888"/>'
                     f'<text x="{x:.1f}" y="{TOP + plot_h + 14}" font-size="10" text-anchor="middle">{t:g}</text>')
    return (f'<figure><figcaption>{html.escape(title)}</figcaption><svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
            f'height="{HEIGHT}" role="img"><line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" '
            f'stroke="#888"/>{"".join(parts)}<text x="{LEFT}" y="{TOP - 8}" font-size="11">calls</text>'
            f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 3}" text-anchor="end" font-size="11">{html.escape(unit)} (log scale)'
            f'</text></svg></figure>')


def bar_chart(operations: dict, title: str) -> str:
    """p50 and p99 bars (ms) per operation, by the percentile rule: an operation with too few samples for a
    percentile has no bar for it, and says so."""
    rows = [(op, o["count"], o.get("p50_ms", 0.0), o.get("p99_ms", 0.0)) for op, o in operations.items() if o["count"]]
    drawn = [p for _, n, p50, p99 in rows for p, share in ((p50, 0.5), (p99, 0.99)) if shown(n, share)]
    if not drawn:
        return (f"<p><b>{html.escape(title)}</b>: no operation has the {needed(0.5)} calls a p50 needs (the table "
                f"above gives each one's count and max).</p>")
    ticks = nice_ticks(max(drawn, default=0) or 1)
    top, step = ticks[-1], ticks[1] - ticks[0]
    row_height, label_width = 22, 190
    height = TOP + 14 + row_height * len(rows) + 24
    plot_w = WIDTH - label_width - 150
    fx = lambda v: label_width + v / top * plot_w  # noqa: E731
    base = TOP + 14 + row_height * len(rows)
    parts = [f'<line x1="{fx(v):.1f}" y1="{TOP + 14}" x2="{fx(v):.1f}" y2="{base}" stroke="#eee"/>'
             f'<text x="{fx(v):.1f}" y="{base + 14}" font-size="10" text-anchor="middle">{tick_text(v, step)}</text>'
             for v in ticks]
    for i, (op, n, p50, p99) in enumerate(rows):
        y = TOP + 14 + i * row_height
        parts.append(f'<text x="{label_width - 6}" y="{y + 13}" text-anchor="end" font-size="12">{html.escape(named(op))}</text>')
        if not shown(n, 0.5):
            parts.append(f'<text x="{label_width + 4}" y="{y + 13}" font-size="11" fill="#888">{html.escape(few(n, 0.5))}</text>')
            continue
        text = f"{p50:.1f} / {p99:.1f} ms" if shown(n, 0.99) else f"{p50:.1f} ms (p99: {few(n, 0.99)})"
        if shown(n, 0.99):
            parts.append(f'<rect x="{label_width}" y="{y + 2}" width="{p99 / top * plot_w:.1f}" height="14" fill="#f0b429"/>')
        parts.append(f'<rect x="{label_width}" y="{y + 2}" width="{p50 / top * plot_w:.1f}" height="14" fill="#1f6feb"/>'
                     f'<text x="{fx(max(p50, p99 if shown(n, 0.99) else 0)) + 4:.1f}" y="{y + 13}" font-size="11">'
                     f'{html.escape(text)}</text>')
    legend = (f'<rect x="{label_width}" y="6" width="10" height="10" fill="#1f6feb"/><text x="{label_width + 14}" y="15" '
              f'font-size="11">p50</text><rect x="{label_width + 50}" y="6" width="10" height="10" fill="#f0b429"/>'
              f'<text x="{label_width + 64}" y="15" font-size="11">p99</text>'
              f'<text x="{WIDTH - RIGHT}" y="{height - 3}" text-anchor="end" font-size="11">ms</text>')
    return (f'<figure><figcaption>{html.escape(title)}</figcaption><svg viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
            f'height="{height}" role="img">{legend}{"".join(parts)}</svg></figure>')


# -- windows of time --------------------------------------------------------------------------------------------------
WINDOWS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)  # seconds
MOST_WINDOWS = 120  # a time chart draws at most about this many points per line


def rate_window(seconds: float) -> int:
    """The window (s) of the rate charts: the shortest of WINDOWS giving at most MOST_WINDOWS points."""
    return next((w for w in WINDOWS if seconds / w <= MOST_WINDOWS), WINDOWS[-1])


def per_window(per_second: list, window: int, how: str = "mean", wall: float | None = None) -> list[tuple[float, float]]:
    """Per-second values in windows of `window` s: (the window's middle, its mean, its largest value, or for "rate"
    (counts per second) its count over the seconds of the run it covers: the run's last second is only partly of it,
    and a last window of less than half a second is left out rather than drawn as a spike)."""
    out = []
    for start in range(0, len(per_second), window):
        chunk = per_second[start:start + window]
        if how == "rate":
            covered = min(wall if wall is not None else len(per_second), start + len(chunk)) - start
            if covered < 0.5:
                continue
            out.append((start + covered / 2, sum(chunk) / covered))
        else:
            out.append((start + len(chunk) / 2, max(chunk) if how == "max" else sum(chunk) / len(chunk)))
    return out


def latency_window(latencies: list, end: float, shortest: int) -> int:
    """The window (s) of the latency-over-time chart: the shortest of WINDOWS from `shortest` whose busy windows
    (three in four, at least) hold the calls p99 needs, but no longer than a tenth of the run (at least ten points)."""
    longest = max(shortest, max((w for w in WINDOWS if w <= end / 10), default=1))
    for w in (w for w in WINDOWS if shortest <= w <= longest):
        counts = {}
        for t, _ in latencies:
            counts[int(t // w)] = counts.get(int(t // w), 0) + 1
        busy = sorted(counts.values())
        if busy and busy[len(busy) // 4] >= needed(0.99):
            return w
    return longest


# -- the figures of a run -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Figure:
    """One figure of a run, as the glance table shows it and `report compare` compares it: its name (as --threshold
    names it), what it is, its unit, which way is worse (+1: higher, -1: lower, 0: neither: shown, never flagged),
    whether it is a count that should be none (its threshold: how many are allowed, not a %), and for a latency the
    share of its percentile (the percentile rule decides whether it is given)."""

    name: str
    label: str
    unit: str
    worse: int
    count: bool = False
    share: float | None = None


FIGURES = [
    Figure("rate", "achieved rate (events completed per second)", "/s", -1),
    Figure("offered", "offered rate (events per second the schedule asked for)", "/s", 0),
    Figure("completed", "events completed", "", 0),
    Figure("errors", "failed calls", "", +1, count=True),
    Figure("checks", "failed checks (consistency, audit chains, acknowledged changes, invariants)", "", +1, count=True),
    *(Figure(key, f"{PERCENTILE_NAMES[key]} latency, every operation", "ms", +1, share=share) for key, share in SHARES.items()),
    Figure("lag_p50_s", "lag behind the schedule, p50", "s", +1),
    Figure("lag_max_s", "lag behind the schedule, max", "s", +1),
    Figure("in_flight_mean", "calls in flight, mean", "", 0),
    Figure("in_flight_max", "calls in flight, most", "", 0),
    Figure("propagation_max_s", "propagation lag counter → national, max", "s", +1),
    Figure("client_cpu_pct", "replay process CPU, mean (% of one core)", "%", +1),
    Figure("client_cpu_peak_pct", "replay process CPU, peak (% of one core)", "%", +1),
    Figure("machine_cpu_pct", "machine CPU, mean (% of all cores)", "%", +1),
    Figure("load_max", "machine load average (1 min), max", "", +1),
    Figure("node_cpu_pct", "all nodes' CPU, mean (% of one core)", "%", +1),
    Figure("rss_max_mb", "largest node memory (RSS)", "MB", +1),
    Figure("wall_s", "wall time of the replay", "s", 0),
]
# per operation: OP.NAME (OP in Japanese or English); its latencies take the threshold of the figure of every operation
OPERATION_FIGURES = [Figure("count", "done", "", 0), Figure("errors", "errors", "", +1, count=True),
                     *(Figure(key, PERCENTILE_NAMES[key], "ms", +1, share=share) for key, share in SHARES.items())]
# `report compare`'s thresholds unless told otherwise: over these, a change is a regression (a % in the worse
# direction; for a count, how many B may have)
THRESHOLDS = {"p99_ms": 20.0, "rate": -10.0, "errors": 0.0, "checks": 0.0}


def figures(run: dict) -> dict[str, tuple[float | None, int | None]]:
    """A run's figures by name: (value or None where the run has none, the samples it is of for a latency)."""
    result = run.get("replay") or {}
    wall = result.get("wall_seconds") or 0.0
    per = lambda total: total / wall if wall > 0 else None  # noqa: E731
    latencies = [lat for _, lat in result.get("latencies", [])]
    samples = result.get("samples", [])
    out: dict[str, tuple[float | None, int | None]] = {
        "rate": (per(result.get("completed", 0)), None),
        "offered": (per(sum(result["offered_per_s"])) if "offered_per_s" in result else None, None),
        "completed": (result.get("completed"), None),
        "errors": (result.get("errors"), None),
        "checks": (sum(1 for ok in (run.get("consistency_ok"), run.get("audit_ok"),
                                    (run.get("invariants") or {}).get("ok")) if ok is False), None),
        "lag_p50_s": (result.get("lag_p50_s"), None), "lag_max_s": (result.get("lag_max_s"), None),
        "propagation_max_s": (max(result["propagation_lag_s"], default=0.0) if "propagation_lag_s" in result else None, None),
        "wall_s": (wall or None, None),
    }
    if "latencies" in result:
        for key, share in SHARES.items():
            out[key] = (max(latencies, default=0.0) if share >= 1 else percentile(latencies, share), len(latencies))
    if "in_flight_mean_per_s" in result:
        means = result["in_flight_mean_per_s"]
        out["in_flight_mean"] = (sum(means) / wall if wall > 0 else None, None)  # (each second's mean, over the run)
        out["in_flight_max"] = (max(result["in_flight_max_per_s"], default=0), None)
    client = _rates(samples, "client_cpu_s")
    if client:
        out["client_cpu_pct"] = (100 * _mean_rate(samples, "client_cpu_s"), None)
        out["client_cpu_peak_pct"] = (100 * max(v for _, v in client), None)
    machine = [s["machine_cpu_pct"] for s in samples[1:] if "machine_cpu_pct" in s]
    if machine:
        out["machine_cpu_pct"] = (sum(machine) / len(machine), None)
        out["load_max"] = (max(s["load1"] for s in samples if "load1" in s), None)
    if len(samples) >= 2:
        span = samples[-1]["t"] - samples[0]["t"]
        nodes = {n for s in samples for n in s.get("cpu_s", {})}
        used = sum(max(0.0, samples[-1]["cpu_s"].get(n, 0) - samples[0]["cpu_s"].get(n, 0)) for n in nodes)
        out["node_cpu_pct"] = (100 * used / span if span > 0 else None, None)
        out["rss_max_mb"] = (max((v for s in samples for v in s.get("rss_mb", {}).values()), default=None), None)
    for op, o in result.get("operations", {}).items():
        out[f"{op}.count"] = (o["count"], None)
        out[f"{op}.errors"] = (sum(o["errors"].values()), None)
        for key in SHARES:
            out[f"{op}.{key}"] = (o.get(key), o["count"])
    return out


def _rates(samples: list, key: str) -> list[tuple[float, float]]:
    """(middle of the interval, seconds of CPU per second) between consecutive samples holding key."""
    have = [s for s in samples if key in s]
    return [((a["t"] + b["t"]) / 2, max(0.0, b[key] - a[key]) / (b["t"] - a["t"]))
            for a, b in zip(have, have[1:]) if b["t"] > a["t"]]


def _mean_rate(samples: list, key: str) -> float:
    have = [s for s in samples if key in s]
    span = have[-1]["t"] - have[0]["t"] if len(have) >= 2 else 0
    return max(0.0, have[-1][key] - have[0][key]) / span if span > 0 else 0.0


def figure_of(name: str) -> Figure:
    """The Figure a name (NAME or OP.NAME) is of."""
    op, _, base = name.rpartition(".")
    for figure in (OPERATION_FIGURES if op else FIGURES):
        if figure.name == base:
            return figure
    raise KeyError(name)


def figure_label(name: str) -> str:
    op, _, base = name.rpartition(".")
    figure = figure_of(name)
    return f"{named(op)} {figure.label}" if op else figure.label


# -- comparing two runs -----------------------------------------------------------------------------------------------
def operation_key(token: str, operations=()) -> str | None:
    """The Japanese name of an operation named in Japanese or English (move-in, "move within", move_within)."""
    if token in OPERATIONS or token in operations:
        return token
    simple = lambda s: s.lower().replace(" ", "-").replace("_", "-")  # noqa: E731
    return next((op for op, en in OPERATIONS.items() if simple(en) == simple(token)), None)


def parse_thresholds(items, operations=(), defaults: dict | None = None) -> dict[str, float | None]:
    """The thresholds of `report compare`: THRESHOLDS, then each FIGURE=PCT given (FIGURE: a figure's name, or
    OP.NAME for one operation; PCT: the change allowed in the figure's worse direction, in %, its sign optional;
    for a count, how many are allowed; "off": never flagged). ValueError, in one line, for one it cannot take."""
    limits: dict[str, float | None] = dict(THRESHOLDS if defaults is None else defaults)
    for item in items or ():
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip().rstrip("%").strip()
        if not sep or not name or not value:
            raise ValueError(f"--threshold {item!r}: give FIGURE=PCT (e.g. p99_ms=20, rate=-10, errors=0)")
        op, _, base = name.rpartition(".")
        if op:
            key = operation_key(op, operations)
            if key is None:
                raise ValueError(f"--threshold {item}: no operation {op!r} (give one of "
                                 f"{', '.join(f'{j} ({e})' for j, e in OPERATIONS.items())})")
            name = f"{key}.{base}"
        try:
            figure = figure_of(name)
        except KeyError:
            names = [f.name for f in FIGURES if f.worse] + [f"OP.{f.name}" for f in OPERATION_FIGURES if f.worse]
            raise ValueError(f"--threshold {item}: no figure {name!r} that can regress (give one of "
                             f"{', '.join(names)})") from None
        if not figure.worse:
            raise ValueError(f"--threshold {item}: {figure.name} ({figure.label}) is shown, never judged")
        if value.lower() in ("off", "none"):
            limits[name] = None
            continue
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"--threshold {item}: {value!r} is not a number (e.g. {figure.name}=20, or off)") from None
        if not math.isfinite(number):
            raise ValueError(f"--threshold {item}: give a finite number")
        if figure.count:
            if number < 0 or value.startswith("-"):
                raise ValueError(f"--threshold {item}: {figure.name} is a count: give how many are allowed (e.g. "
                                 f"{figure.name}=0)")
        elif number and (value.startswith("-") or value.startswith("+")) and (number > 0) != (figure.worse > 0):
            way = "a fall" if figure.worse < 0 else "a rise"
            raise ValueError(f"--threshold {item}: {way} of {figure.name} is what is worse: give "
                             f"{figure.name}={'-' if figure.worse < 0 else '+'}{abs(number):g}")
        limits[name] = abs(number) if not figure.count else number
    return limits


def limit_of(name: str, limits: dict) -> float | None:
    """The threshold of a figure: its own, else (for an operation's latency) that of the figure of every
    operation; None: never flagged."""
    op, _, base = name.rpartition(".")
    limit = limits.get(name) if name in limits else limits.get(base) if op and figure_of(name).share is not None else None
    return None if limit is None else limit if figure_of(name).count else abs(limit)  # (a %: its size; the way is the figure's)


def compare(a: dict, b: dict, limits: dict | None = None) -> list[dict]:
    """Every figure of run a beside run b: the change (absolute and %), its threshold and whether it is over it
    (a regression). A latency either run has too few samples for (the percentile rule) is not judged."""
    limits = THRESHOLDS if limits is None else limits
    fa, fb = figures(a), figures(b)
    names = [f.name for f in FIGURES]
    ops = list(dict.fromkeys([*(a.get("replay") or {}).get("operations", {}), *(b.get("replay") or {}).get("operations", {})]))
    names += [f"{op}.{f.name}" for op in ops for f in OPERATION_FIGURES]
    rows = []
    for name in names:
        (va, na), (vb, nb) = fa.get(name, (None, None)), fb.get(name, (None, None))
        if va is None and vb is None:
            continue
        figure = figure_of(name)
        limit = limit_of(name, limits) if figure.worse else None
        row = {"figure": name, "label": figure_label(name), "unit": figure.unit, "a": va, "b": vb, "change": None,
               "change_pct": None, "limit": limit, "limit_text": _limit_text(figure, limit), "regression": False,
               "note": ""}
        if figure.share is not None and not (shown(na or 0, figure.share) and shown(nb or 0, figure.share)):
            # (the percentile rule: a side with too few samples has no such percentile; neither is judged)
            row["note"] = f"too few samples (n = {na or 0:,} / {nb or 0:,}; needs {needed(figure.share):,})"
            row["a"] = va if shown(na or 0, figure.share) else None
            row["b"] = vb if shown(nb or 0, figure.share) else None
            rows.append(row)
            continue
        if va is not None and vb is not None:
            row["change"] = vb - va
            row["change_pct"] = 100 * (vb - va) / abs(va) if va else (0.0 if vb == va else None)
            if va == 0 and vb != va:
                row["note"] = "new (was 0)"
        if limit is not None and vb is not None:
            if figure.count:
                row["regression"] = vb > limit
            elif va is not None:
                pct = row["change_pct"]
                worse = figure.worse * (pct if pct is not None else math.copysign(math.inf, vb - va))
                row["regression"] = worse > limit
        rows.append(row)
    return rows


def _limit_text(figure: Figure, limit: float | None) -> str:
    if limit is None:
        return ""
    if figure.count:
        return f"≤ {limit:g}"
    return f"{'+' if figure.worse > 0 else '−'}{limit:g}%"


def number(value) -> str:
    """A figure's value, as wide as it needs to be: a count whole, a measure with 0–2 decimals by its size."""
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    magnitude = abs(value)
    return f"{value:,.{0 if magnitude >= 1000 else 1 if magnitude >= 10 else 2}f}"


def with_unit(value, unit: str) -> str:
    """A value and its unit: "12.5 ms", "37%", "3"."""
    return number(value) + ("%" if unit == "%" else f" {unit}" if unit else "") if value is not None else "–"


# -- the page ---------------------------------------------------------------------------------------------------------
def render(run: dict) -> str:
    """The whole report as one HTML page."""
    result = run["replay"]
    invariants = run.get("invariants", {"ok": True})
    ok = result["errors"] == 0 and run["consistency_ok"] and run["audit_ok"] and invariants.get("ok", True)
    skipped = sum(o["skipped"] for o in result["operations"].values())
    verdict = ("passed" if not skipped else f"passed, with {skipped:,} events skipped (see below)") if ok else "problems found"
    wall = result.get("wall_seconds") or 0.0
    axis = Axis.over(_time_span(result), "seconds of wall time")
    markers = [(f["started_s"], f["fault"]) for f in result.get("faults", []) if f.get("started_s") is not None]
    faults = "".join(_fault_row(f) for f in result.get("faults", []))
    checks = "".join(f"<li>{html.escape(line)}</li>" for line in run["checks"])
    queues = "".join(_queue(code, stats) for code, stats in result["counter"].items())
    municipalities = ", ".join(f"{c} ({n:,} residents)" for c, n in run["municipalities"].items())
    return f"""<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>testbed run: {html.escape(run['scenario'])}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:780px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
td:first-child,th:first-child,td:last-child{{text-align:left}}figure{{margin:1.5em 0}}figcaption{{font-weight:600}}
td.few{{text-align:center;color:#888}}.legend,.note{{font-size:11px;color:#444}}.warn{{color:#b35900}}
.multiples{{display:grid;grid-template-columns:1fr 1fr;gap:0 12px}}.multiples figure{{margin:.6em 0}}
.multiples figcaption{{font-weight:500;font-size:13px}}table.env td:last-child{{text-align:left}}
.verdict{{font-size:1.3em;padding:.4em .8em;display:inline-block;border-radius:4px;background:{'#d1f5d3' if ok else '#fdd'}}}</style>
</head><body>
<h1>{html.escape(run['scenario'])} — {html.escape(verdict)}</h1>
<p class="verdict">{result['completed']:,} of {result['events']:,} events completed, {result['errors']} errors,
{wall:.0f} s at ×{result['speed']:,.0f}</p>
<p>Seed {run['seed']}; municipalities {html.escape(municipalities)};
trace {html.escape(run['trace'])}; {result['concurrency']} calls in flight at most; lag behind schedule p50 {result['lag_p50_s']:.2f} s,
max {result['lag_max_s']:.2f} s.</p>
{_glance(run)}
<h2>Checks</h2><ul>{checks}</ul>
{f'<h2>Faults</h2><table><tr><th>fault</th><th>began (s)</th><th>undone (s)</th><th>answering again after (s)</th><th>note</th></tr>{faults}</table><p>Calls the terminals retried with the same 依頼管理番号: {result.get("retried_calls", 0)}.</p>' if faults else ''}
<h2>Operations</h2>
{_operations_table(result)}
<h2>Load over time</h2>
<p class="note">Every chart below shares one time axis: seconds of wall time from the start of the replay (0–{tick_text(axis.end, axis.ticks[1] - axis.ticks[0])} s){'; dashed red lines: faults' if markers else ''}.</p>
{_rate_charts(result, axis, markers)}
{_latency_chart(result, axis, markers)}
{_errors_chart(result, axis, markers)}
{_operation_multiples(result, axis)}
{histogram([lat for _, lat in result.get('latencies', [])], 'Latency of every completed event', 'ms')}
{_propagation_chart(result, axis, markers)}
<h2>The load generator and the machine</h2>
{_client_chart(run, axis, markers)}
<h2>The nodes</h2>
{_node_charts(result, axis, markers)}
{bar_chart(result['operations'], 'Latency per operation (p50 and p99, by the same rule as the table)')}
<h2>The simulated counter</h2>{queues}
{_migration(run)}
{_environment(run)}
</body></html>
"""


def _time_span(result: dict) -> float:
    """How long the time axis runs: the replay's wall time, or the last sample or completion if later."""
    return max([result.get("wall_seconds") or 0.0, *(s["t"] for s in result.get("samples", [])[-1:]),
                *(t for t, _ in result.get("latencies", [])[-1:])]) or 1.0


def _glance(run: dict) -> str:
    """The headline figures of the run (those `report compare` compares), in one table."""
    values = figures(run)
    result = run["replay"]
    rows = []
    for figure in FIGURES:
        value, n = values.get(figure.name, (None, None))
        if value is None:
            continue
        if figure.share is not None and not shown(n or 0, figure.share):
            text = few(n or 0, figure.share)
        else:
            text = with_unit(value, figure.unit)
        rows.append(f'<tr><td>{html.escape(figure.label)}</td><td>{html.escape(text)}</td>'
                    f'<td><code>{figure.name}</code></td></tr>')
    warnings = []
    rate, offered = values.get("rate", (None,))[0], values.get("offered", (None,))[0]
    if rate is not None and offered and rate < 0.9 * offered:
        warnings.append(f"the achieved rate is {100 * rate / offered:.0f}% of the offered: the network (or the client) "
                        f"did not keep up with the schedule")
    if result.get("lag_max_s", 0) > 1:
        warnings.append(f"events were sent up to {result['lag_max_s']:.1f} s behind their schedule (all "
                        f"{result['concurrency']} call slots busy, or the client busy)")
    others = _others_cores(values, result.get("machine_cores") or 1)
    if others is not None and others >= 0.5:
        warnings.append(f"other processes on the machine kept about {others:.1f} cores busy during the replay: the run "
                        "shared its machine (compare it with runs made alone)")
    peak = values.get("client_cpu_peak_pct", (None,))[0]
    if peak is not None and peak >= 85:
        warnings.append(f"the replay process reached {peak:.0f}% of one core: the load generator itself may be what "
                        f"limits the rate (its event loop runs on one core)")
    return ('<h2>At a glance</h2><table><tr><th>figure</th><th>value</th><th>name in <code>report compare</code></th></tr>'
            + "".join(rows) + "</table>"
            + "".join(f'<p class="warn">⚠ {html.escape(w)}</p>' for w in warnings))


def _operations_table(result: dict) -> str:
    wall = result.get("wall_seconds") or 0.0

    def cells(o):
        n = o["count"]
        if not shown(n, 0.5):
            return (f'<td colspan="4" class="few">{html.escape(few(n, 0.5))}</td>'
                    + (f"<td>{o['max_ms']:.1f}</td>" if n else "<td></td>"))
        return "".join(f"<td>{o[key]:.1f}</td>" if shown(n, share) else
                       f'<td class="few" title="{html.escape(few(n, share))}">–</td>' for key, share in SHARES.items())
    rows = "".join(
        f"<tr><td>{html.escape(op)}</td><td>{html.escape(english(op))}</td><td>{o['count']:,}</td>"
        f"<td>{o['count'] / wall if wall else 0:.2f}</td><td>{sum(o['errors'].values())}</td><td>{o['skipped']}</td>"
        f"{cells(o)}<td>{html.escape(o.get('note', '') or '; '.join(o['error_examples'][:1]))}</td></tr>"
        for op, o in result["operations"].items())
    return (f"<table><tr><th>operation</th><th>(English)</th><th>done</th><th>per s</th><th>errors</th><th>skipped</th>"
            f"<th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th><th>note</th></tr>{rows}</table>"
            f'<p class="note">A percentile is given only from enough calls, here and in every chart: p50 and p90 from '
            f'{needed(0.5)}, p99 from {needed(0.99)}, p99.9 from {needed(0.999):,} (– : too few; hover for n).</p>')


def _rate_charts(result: dict, axis: Axis, markers) -> str:
    wall = result.get("wall_seconds") or None
    window = rate_window(axis.end)
    per = f"per {window} s window" if window > 1 else "per second"
    series = []
    if "offered_per_s" in result:
        series.append(Series("offered (due by the schedule)", per_window(result["offered_per_s"], window, "rate", wall),
                             OTHERS, True))
        series.append(Series("sent (given a call slot)", per_window(result["sent_per_s"], window, "rate", wall),
                             PALETTE[1]))
    series.append(Series("completed (achieved)", per_window(result["throughput_per_s"], window, "rate", wall), PALETTE[0]))
    if result.get("errors"):
        series.append(Series("failed", per_window(result.get("errors_per_s", []), window, "rate", wall), PALETTE[3]))
    out = chart(series, f"Offered and achieved rate ({per})", "events per second", axis, markers,
                note="offered: the events the trace's schedule made due; sent: those that got one of the "
                     f"{result['concurrency']} call slots; completed: answered without error")
    if "in_flight_mean_per_s" in result:
        out += chart([Series("mean", per_window(result["in_flight_mean_per_s"], window), PALETTE[0]),
                      Series("most at once", per_window(result["in_flight_max_per_s"], window, "max"), PALETTE[1])],
                     f"Calls in flight ({per})", "calls", axis, markers, target=result["concurrency"],
                     target_label=f"limit: --concurrency {result['concurrency']}", integer=True)
    return out


def _latency_chart(result: dict, axis: Axis, markers) -> str:
    latencies = result.get("latencies", [])
    if not latencies:
        return ""
    window = latency_window(latencies, axis.end, rate_window(axis.end))
    buckets: dict[int, list[float]] = {}
    for t, lat in latencies:
        buckets.setdefault(int(t // window), []).append(lat)
    keys = range(int(axis.end // window) + 1)
    middle = lambda k: k * window + window / 2  # noqa: E731

    def line(share):
        return [(middle(k), (max(buckets[k]) if share >= 1 else percentile(buckets[k], share))
                 if k in buckets and shown(len(buckets[k]), share) else None) for k in keys]
    p99 = line(0.99)
    missing = "" if any(v is not None for _, v in p99) else \
        f" No window held the {needed(0.99)} calls p99 needs: it is not drawn."
    return chart([Series("p50", line(0.5), PALETTE[0]), Series("p99", p99, PALETTE[1]),
                  Series("max", line(1.0), OTHERS, True)],
                 f"Latency over time (every operation, windows of {window} s)", "ms", axis, markers,
                 note=f"p50 drawn where a window holds at least {needed(0.5)} calls, p99 where it holds "
                      f"{needed(0.99)} (the table's rule); the max wherever there is a call.{missing}")


def _errors_chart(result: dict, axis: Axis, markers) -> str:
    wall = result.get("wall_seconds") or None
    if not result.get("errors"):
        return "<p>No call failed.</p>"
    window = rate_window(axis.end)
    return chart([Series("", per_window(result.get("errors_per_s", []), window, "rate", wall), PALETTE[3])],
                 f"Errors over time ({'per second' if window == 1 else f'per {window} s window'})",
                 "failed calls per second", axis, markers)


def _operation_multiples(result: dict, axis: Axis) -> str:
    """Each operation's throughput over time: one small chart each, on the same time axis."""
    wall = result.get("wall_seconds") or None
    by_op = result.get("throughput_by_op_per_s")
    if not by_op:
        return ""
    window = rate_window(axis.end)
    ordered = sorted(by_op.items(), key=lambda item: -sum(item[1]))
    charts = [chart([Series("", per_window(values, window, "rate", wall), PALETTE[0])],
                    f"{named(op)}: {sum(values):,} done", "per second", axis, size=SMALL, legend=False)
              for op, values in ordered]
    return (f"<h3>Throughput per operation ({'per second' if window == 1 else f'per {window} s window'}, "
            f"completed calls)</h3>" + small_multiples(charts))


def _propagation_chart(result: dict, axis: Axis, markers) -> str:
    lags = result.get("propagation_lag_s", [])
    if not lags:
        return ""
    window = rate_window(axis.end)
    return chart([Series("", per_window(lags, window, "max"), PALETTE[0])],
                 "Propagation lag: acknowledged at the counter → applied at national (the largest in each "
                 f"{'second' if window == 1 else f'{window} s window'})", "seconds", axis, markers)


def _client_chart(run: dict, axis: Axis, markers) -> str:
    """The replay process's own CPU beside the nodes' and the whole machine's, and the load average: is the load
    generator, or the machine, the limit?"""
    result = run["replay"]
    samples = result.get("samples", [])
    if not any("client_cpu_s" in s for s in samples):
        return "<p>This run's result has no readings of the client and the machine.</p>"
    cores = result.get("machine_cores") or 1
    nodes = sorted({n for s in samples for n in s.get("cpu_s", {})})
    node_total = [(t, sum(per.values()) / 100) for t, per in _node_rates(samples, nodes)]  # (% of one core → cores)
    series = [Series("replay process (client)", _rates(samples, "client_cpu_s"), PALETTE[0]),
              Series("all nodes", node_total, PALETTE[2]),
              Series("whole machine (busy)", [(s["t"], s["machine_cpu_pct"] * cores / 100) for s in samples[1:]
                                              if "machine_cpu_pct" in s], PALETTE[3]),
              Series("load average (1 min)", [(s["t"], s["load1"]) for s in samples if "load1" in s], OTHERS, True)]
    values = figures(run)
    client, peak = values.get("client_cpu_pct", (None,))[0], values.get("client_cpu_peak_pct", (None,))[0]
    machine = values.get("machine_cpu_pct", (None,))[0]
    note = (f"The replay process used {with_unit(client, '%')} of one core on average, {with_unit(peak, '%')} at its "
            f"peak; the machine ({cores} cores) was {with_unit(machine, '%')} busy on average.")
    others = _others_cores(values, cores)
    if others is not None and others >= 0.25:
        note += (f" Other processes (neither the replay nor a node) kept about {others:.1f} cores busy: the run shared "
                 "its machine, and its figures may be the poorer for it.")
    return chart(series, "CPU of the load generator, the nodes and the machine; load average", "cores busy", axis,
                 markers, target=cores, target_label=f"{cores} cores", note=note)


def _others_cores(values: dict, cores: int) -> float | None:
    """Cores the machine spent, on average, on neither the replay process nor the nodes."""
    machine, client, nodes = (values.get(k, (None,))[0] for k in ("machine_cpu_pct", "client_cpu_pct", "node_cpu_pct"))
    if None in (machine, client, nodes):
        return None
    return max(0.0, machine * cores / 100 - client / 100 - nodes / 100)


def _node_rates(samples: list, nodes: list) -> list[tuple[float, dict]]:
    return [((a["t"] + b["t"]) / 2, {n: max(0.0, 100 * (b["cpu_s"].get(n, 0) - a["cpu_s"].get(n, 0)) / max(b["t"] - a["t"], 1e-3))
                                     for n in nodes}) for a, b in zip(samples, samples[1:])]


def _busiest(values: dict[str, list[tuple[float, float]]], rank, combine, combined: str) -> list[Series]:
    """The TOP_NODES nodes first by rank, each its own colour, and the rest combined as one grey line."""
    ordered = sorted(values, key=lambda n: (-rank(values[n]), n))
    top, rest = ordered[:TOP_NODES], ordered[TOP_NODES:]
    series = [Series(n, values[n], PALETTE[k]) for k, n in enumerate(top)]
    if rest:
        points = [(t, combine([values[n][i][1] for n in rest])) for i, (t, _) in enumerate(values[rest[0]])]
        series.append(Series(f"others ({len(rest)} nodes, {combined})", points, OTHERS, True))
    return series


def _node_charts(result: dict, axis: Axis, markers) -> str:
    """Outbox depth, CPU (share of a core) and resident memory of the busiest nodes (and the others together), then
    a table of every node."""
    samples = result.get("samples", [])
    if len(samples) < 2:
        return ""
    nodes = sorted({name for s in samples for name in s["cpu_s"]})
    rates = _node_rates(samples, nodes)
    cpu = {n: [(t, per[n]) for t, per in rates] for n in nodes}
    rss = {n: [(s["t"], s["rss_mb"].get(n, 0)) for s in samples] for n in nodes}
    outbox = {n: [(s["t"], s["outbox"].get(n, 0)) for s in samples] for n in nodes
              if any(s["outbox"].get(n) for s in samples)}
    mean = lambda points: sum(v for _, v in points) / len(points) if points else 0.0  # noqa: E731
    peak = lambda points: max((v for _, v in points), default=0.0)  # noqa: E731
    parts = [chart(_busiest(outbox, peak, sum, "summed"), "Outbox depth (items waiting to be delivered): the "
                   f"{TOP_NODES} deepest nodes", "items", axis, markers, integer=True) if outbox else
             "<p>No outbox held anything at the samples (every delivery was immediate).</p>",
             chart(_busiest(cpu, mean, sum, "summed"), f"CPU: the {TOP_NODES} busiest nodes", "% of one core", axis,
                   markers),
             chart(_busiest(rss, peak, max, "the largest of them"), f"Resident memory: the {TOP_NODES} largest nodes",
                   "MB", axis, markers, target=300, target_label="target ≤ 300 MB per node (DESIGN §9)")]
    rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{mean(cpu[n]):.1f}</td><td>{peak(cpu[n]):.1f}</td>"
                   f"<td>{peak(rss[n]):.0f}</td><td>{peak(outbox.get(n, [])):.0f}</td></tr>"
                   for n in sorted(nodes, key=lambda n: -mean(cpu[n])))
    parts.append("<table><tr><th>node</th><th>CPU mean %</th><th>CPU peak %</th><th>RSS peak MB</th>"
                 f"<th>outbox peak</th></tr>{rows}</table>")
    return "".join(parts)


def _queue(code: str, stats: dict) -> str:
    hours = [q for _, q in stats.get("queue_by_hour", [])]
    drawn = chart([Series("", list(enumerate(hours)), PALETTE[0])], f"Counter queue of {code} (simulated, max per hour)",
                  "people waiting", Axis.over(max(len(hours) - 1, 1), "simulated hours (not the wall-time axis)"),
                  integer=True) if hours else ""
    return (drawn + f"<p>{stats['served']:,} served; mean wait {stats['mean_wait_min']:.1f} min, p95 "
            f"{stats['p95_wait_min']:.1f} min, max {stats['max_wait_min']:.1f} min (the worst hour: "
            f"{stats.get('worst_hour_mean_wait_min', 0):.0f} min on average); longest queue {stats['max_queue']}</p>")


def _fault_row(fault: dict) -> str:
    seconds = lambda v: "" if v is None else f"{v:.1f}"  # noqa: E731
    return (f"<tr><td>{html.escape(fault['fault'])}</td><td>{seconds(fault['started_s'])}</td>"
            f"<td>{seconds(fault['undone_s'])}</td><td>{seconds(fault['recovered_s'])}</td>"
            f"<td>{html.escape('; '.join(fault['notes']))}</td></tr>")


def _environment(run: dict) -> str:
    """Where and how the run was made: the topology file and ports actually used, the population actually loaded,
    machine, versions, commit, every option (a value that is a mapping: one line per key)."""
    env = run.get("environment")
    if not env:
        return ""

    def cell(value) -> str:
        if isinstance(value, dict):
            return "<br>".join(f"{html.escape(str(k))}: {html.escape(_plain(v))}" for k, v in value.items())
        return html.escape(_plain(value))
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{cell(v)}</td></tr>" for k, v in env.items())
    return f'<h2>Environment</h2><table class="env">{rows}</table>'


def _plain(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def _migration(run: dict) -> str:
    """The migration inside the freeze window: downtime, steps, and the counters' load before and after."""
    migration = run.get("migration")
    if not migration:
        return ""
    from testbed.migration.report import steps_table
    before, after = run["replay_before"]["operations"], run["replay"]["operations"]

    def cells(o: dict) -> str:
        n = o.get("count", 0)
        return f"<td>{n:,}</td>" + "".join(f"<td>{o[key]:.1f}</td>" if shown(n, share) else
                                           f'<td class="few" title="{html.escape(few(n, share))}">–</td>'
                                           for key, share in (("p50_ms", 0.5), ("p99_ms", 0.99)))
    rows = "".join(f"<tr><td>{html.escape(named(op))}</td>{cells(before.get(op, {}))}{cells(after.get(op, {}))}</tr>"
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
