"""The run report as a load tester reads it (testbed/report.py) and `testbed report compare`: nice tick values, one
percentile rule for the table and the charts, English beside every operation's Japanese name, the true environment,
and the comparison of two runs with its exit codes. Fast: synthetic results, no network; the last test renders
the report of a small real run."""
from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import pytest

from scenarios.workload import PER_100K
from testbed import cli, report
from testbed.network import Network
from testbed.run import RunOptions, environment, run_scenario
from testbed.topology import Topology

ROOT = Path(__file__).resolve().parent.parent


# -- a synthetic run --------------------------------------------------------------------------------------------------
def synthetic(counts: dict[str, int] | None = None, wall: float = 40.0, slower: float = 1.0, errors: int = 0,
              rate_share: float = 1.0, seed: int = 1) -> dict:
    """A run's result as `testbed run` writes it, made up: counts calls per operation over wall seconds, latencies
    multiplied by slower, errors failed calls, rate_share of the offered events completed."""
    rng = random.Random(seed)
    counts = counts if counts is not None else {"証明書": 1500, "転入": 150, "転居": 50, "死亡": 5}
    seconds = int(wall) + 1
    operations, latencies, by_op = {}, [], {}
    throughput, offered = [0] * seconds, [0] * seconds
    for op, n in counts.items():
        done = int(n * rate_share)
        lat = sorted(rng.uniform(2, 10) * slower * (8 if i % 50 == 0 else 1) for i in range(done))  # (a 2% tail)
        times = sorted(rng.uniform(0, wall) for _ in range(done))
        by_op[op] = [0] * seconds
        for t in times:
            throughput[int(t)] += 1
            by_op[op][int(t)] += 1
        for t in (rng.uniform(0, wall) for _ in range(n)):
            offered[int(t)] += 1
        latencies += [(round(t, 3), round(v, 3)) for t, v in zip(times, rng.sample(lat, len(lat)))]
        operations[op] = {"count": done, "errors": {"UNAVAILABLE": errors} if errors and op == "証明書" else {},
                          "skipped": 0, **{key: (lat[-1] if share >= 1 else report.percentile(lat, share)) if lat else 0.0
                                           for key, share in report.SHARES.items()},
                          "error_examples": ["node down"] if errors and op == "証明書" else []}
    latencies.sort()
    nodes = ["kizon-142140", "cs-142140", "atena-142140", "kizon-142115", "cs-142115", "atena-142115",
             "prefecture-140007", "national", "card", "intermediate", "kizon-142140-gcloud", "atena-142140-gcloud"]
    samples, cpu, client = [], {n: 1.0 for n in nodes}, 1.0
    for i in range(int(wall)):
        for k, n in enumerate(nodes):
            cpu[n] += 0.05 * (k + 1) * slower
        client += 0.3
        samples.append({"t": float(i), "cpu_s": dict(cpu), "rss_mb": {n: 60.0 + k for k, n in enumerate(nodes)},
                        "outbox": {n: (i % 3 if k < 2 else 0) for k, n in enumerate(nodes)}, "applied": {},
                        "client_cpu_s": round(client, 3), "client_rss_mb": 90.0, "machine_cpu_pct": 40.0, "load1": 1.2})
    completed = sum(o["count"] for o in operations.values())
    replay = {"scenario": "march-peak", "seed": 1, "speed": 1000.0, "concurrency": 16, "events": sum(counts.values()),
              "wall_seconds": wall, "completed": completed, "errors": errors, "operations": operations,
              "throughput_per_s": throughput, "errors_per_s": [errors if i == 3 else 0 for i in range(seconds)],
              "p99_ms_per_s": [0.0] * seconds, "offered_per_s": offered, "sent_per_s": offered,
              "throughput_by_op_per_s": by_op, "in_flight_mean_per_s": [1.5] * seconds,
              "in_flight_max_per_s": [4] * seconds, "machine_cores": 4, "lag_p50_s": 0.001, "lag_max_s": 0.02,
              "counter": {}, "retried_calls": 0, "faults": [], "samples": samples,
              "propagation_lag_s": [0.2] * seconds, "latencies": latencies, "acknowledged": 10}
    return {"scenario": "march-peak", "seed": 1, "outcome": "passed" if not errors else "failed",
            "municipalities": {"142140": 500, "142115": 500}, "trace": "trace.jsonl", "replay": replay,
            "consistency_ok": True, "audit_ok": True, "checks": ["整合性確認 142140: 0 differences"],
            "invariants": {"ok": True}, "environment": {"topology": "kanagawa", "python": "3.11", "grpcio": "1.x"}}


def svgs(page: str) -> list[str]:
    return re.findall(r"<svg.*?</svg>", page, re.S)


def tick_labels(svg: str) -> list[float]:
    """The numbers an SVG chart writes on its axes."""
    return [float(t.replace(",", "")) for t in re.findall(r'text-anchor="(?:end|middle)" font-size="10">([-0-9.,]+)</text>', svg)]


# -- nice ticks -------------------------------------------------------------------------------------------------------
def nice(step: float) -> bool:
    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-12)
    return any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5))


@pytest.mark.parametrize("high, expected", [(4.41, [0, 1, 2, 3, 4, 5]), (2.35, [0, 0.5, 1, 1.5, 2, 2.5]),
                                            (100, [0, 20, 40, 60, 80, 100]), (11, [0, 2.5, 5, 7.5, 10, 12.5]),
                                            (0.0, [0, 0.2, 0.4, 0.6, 0.8, 1])])
def test_nice_ticks_are_1_2_2point5_5_times_a_power_of_ten(high, expected):
    assert report.nice_ticks(high) == expected


def test_nice_ticks_for_any_range_cover_it_with_a_nice_step():
    rng = random.Random(7)
    for _ in range(500):
        high = 10 ** rng.uniform(-3, 6)
        ticks = report.nice_ticks(high)
        step = ticks[1] - ticks[0]
        assert ticks[0] == 0 and ticks[-1] >= high * (1 - 1e-9) and 3 <= len(ticks) <= 7, (high, ticks)
        assert nice(step) and all(math.isclose(b - a, step, rel_tol=1e-6) for a, b in zip(ticks, ticks[1:]))
        assert ticks[-1] - step < high  # (no empty interval on top)
        counts = report.nice_ticks(high, integer=True)
        assert all(float(t).is_integer() for t in counts), counts
    assert report.tick_text(0.25, 0.25) == "0.25" and report.tick_text(7.5, 2.5) == "7.5"
    assert report.tick_text(12500, 2500) == "12,500"


def test_every_axis_of_the_report_has_nice_ticks_on_one_shared_time_axis():
    """No tick like 2.35 or 4.41 anywhere; every chart of wall time runs over the same axis (0 … the same end)."""
    page = report.render(synthetic(wall=37.3))
    charts = svgs(page)
    assert len(charts) >= 10
    for svg in charts:
        labels = tick_labels(svg)
        assert all(nice(b - a) for a, b in zip(labels, labels[1:]) if b > a), (labels, svg[:200])
    time_charts = [svg for svg in charts if "seconds of wall time" in svg]
    assert len(time_charts) >= 8  # rate, in flight, latency, per operation ×4, propagation, client, nodes ×3
    x_axes = {tuple(re.findall(r'text-anchor="middle" font-size="10">([0-9.,]+)</text>', svg)) for svg in time_charts}
    assert x_axes == {("0", "10", "20", "30", "40")}, x_axes


# -- one percentile rule ----------------------------------------------------------------------------------------------
def row_of(page: str, op: str) -> str:
    return re.search(rf"<tr><td>{op}</td>.*?</tr>", page).group(0)


def test_the_table_and_the_charts_give_a_percentile_by_the_same_rule():
    """p50 and p90 from 20 calls, p99 from 100, p99.9 from 1,000: an operation with 5 calls has none in the table
    and no bar; one with 50 has its p50 in both and its p99 in neither; one with 150 has both in both."""
    assert [report.needed(s) for s in (0.5, 0.9, 0.99, 0.999, 1.0)] == [20, 20, 100, 1000, 1]
    run = synthetic({"証明書": 150, "転居": 50, "死亡": 5})
    page = report.render(run)
    ops = run["replay"]["operations"]
    few = row_of(page, "死亡")
    assert "too few samples (n = 5; p50 needs 20)" in few and f"{ops['死亡']['p50_ms']:.1f}" not in few.split("</td>")[6]
    some = row_of(page, "転居")
    assert f"<td>{ops['転居']['p50_ms']:.1f}</td>" in some and "p99 needs 100" in some and "p99.9 needs 1,000" in some
    many = row_of(page, "証明書")
    assert f"<td>{ops['証明書']['p99_ms']:.1f}</td>" in many and "p99.9 needs 1,000" in many
    bars = next(svg for svg in svgs(page) if "p50</text>" in svg and "#f0b429" in svg)
    assert bars.count('fill="#f0b429"') == 1 + 1  # (the legend's and 証明書's p99: not 転居's, not 死亡's)
    assert "死亡 (death)</text>" in bars and "too few samples (n = 5; p50 needs 20)" in bars
    assert f"{ops['転居']['p50_ms']:.1f} ms (p99: too few samples (n = 50; p99 needs 100))" in bars
    assert f"{ops['証明書']['p50_ms']:.1f} / {ops['証明書']['p99_ms']:.1f} ms" in bars


def test_latency_over_time_draws_p99_only_for_windows_with_enough_calls():
    small = report.render(synthetic({"証明書": 60}, wall=30))
    assert "No window held the 100 calls p99 needs: it is not drawn." in small
    big = report.render(synthetic({"証明書": 6000}, wall=30))
    chart = re.search(r"Latency over time.*?</figure>", big, re.S).group(0)
    assert "No window held" not in chart and chart.count("<polyline") >= 3  # p50, p99, max


def test_per_node_charts_show_the_busiest_five_and_the_others():
    page = report.render(synthetic())
    cpu = re.search(r"<figcaption>CPU: the 5 busiest nodes.*?</figure>", page, re.S).group(0)
    legend = re.search(r'<div class="legend">(.*?)</div>', cpu).group(1)
    assert legend.count("■") == 5 and "others (7 nodes, summed)" in legend
    assert len(set(re.findall(r'stroke="(#[0-9a-f]{6})"', re.search(r"<svg.*</svg>", cpu, re.S).group(0))) - {"#888", "#eee"}) == 6
    assert "atena-142140-gcloud" in legend  # (the busiest: the synthetic nodes' CPU grows with their place)


def test_the_report_shows_offered_achieved_in_flight_per_operation_client_and_machine():
    page = report.render(synthetic(rate_share=0.5))
    for words in ("Offered and achieved rate", "offered (due by the schedule)", "completed (achieved)", "Calls in flight",
                  "limit: --concurrency 16", "Throughput per operation", "証明書 (certificate): 750 done",
                  "CPU of the load generator, the nodes and the machine", "replay process (client)",
                  "whole machine (busy)", "load average (1 min)", "4 cores", "At a glance"):
        assert words in page, words
    assert "the achieved rate is 50% of the offered" in page
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


# -- names ------------------------------------------------------------------------------------------------------------
def test_every_operation_has_an_english_name():
    dispatched = set(re.findall(r'op == "([^"]+)"', (ROOT / "testbed" / "replay.py").read_text(encoding="utf-8")))
    for op in {*PER_100K, "夜間バッチ", *dispatched}:
        assert report.english(op), f"no English name for {op}"
        assert report.named(op) == f"{op} ({report.english(op)})"
    assert {"出生": "birth", "転入": "move-in", "転居": "move within", "転出": "move-out", "死亡": "death",
            "証明書": "certificate"}.items() <= report.OPERATIONS.items()
    page = report.render(synthetic())
    assert "<tr><td>転入</td><td>move-in</td>" in page and "転入 (move-in)" in page


# -- the environment --------------------------------------------------------------------------------------------------
def test_the_environment_block_shows_the_topology_file_ports_and_population(tmp_path):
    topology_file = Topology.load().with_free_ports().save(tmp_path / "mine.yaml")
    topology = Topology.load(topology_file)
    network = Network(tmp_path / "state", topology)
    env = environment(network, {"residents asked (per empty municipality)": 700}, topology_file,
                      {"142140": 512, "142115": 498})
    run = synthetic()
    run["environment"] = env
    page = report.render(run)
    block = page[page.index("<h2>Environment</h2>"):]
    assert str(topology_file) in block and "kanagawa" in block
    kizon = topology.find("kizon", "142140")
    port = int(kizon.address.rsplit(":", 1)[1])
    grpc_part = next(p for p in env["ports"]["kizon"].split("; ") if p.startswith("gRPC "))[len("gRPC "):]
    runs = [[int(x) for x in run.split("–")] for run in grpc_part.split(", ")]  # "a", or "a–b" for a run of ports
    assert any(r[0] <= port <= r[-1] for r in runs), (port, grpc_part)
    assert grpc_part in block
    ports = sorted(int(a.rsplit(":", 1)[1]) for n in topology.all_nodes for a in n.listening)
    assert env["ports"]["all"] == f"{ports[0]}–{ports[-1]} ({len(ports)} ports)"
    assert "142140 伊勢原市: 512" in block and "142115 秦野市: 498" in block
    assert "cores" in env["machine"] and env["python"].split()[0].count(".") == 2 and env["grpcio"]
    assert "built in" in environment(Network(tmp_path / "other", topology), {}, None, {})["topology file"]


# -- report compare ---------------------------------------------------------------------------------------------------
def save(run: dict, folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps(run, ensure_ascii=False), encoding="utf-8")
    return folder


def compare(capsys, *args) -> tuple[int, str, str]:
    code = cli.main(["report", "compare", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_compare_flags_a_regression_over_its_threshold_and_exits_1(tmp_path, capsys):
    a = save(synthetic(), tmp_path / "a")
    b = save(synthetic(slower=1.5), tmp_path / "b")  # every latency +50%: p99 over the default +20%
    code, out, err = compare(capsys, a, b, "--json", tmp_path / "cmp.json")
    assert code == 1 and err == ""
    line = next(line for line in out.splitlines() if line.startswith("p99 latency, every operation"))
    assert "REGRESSION" in line and "+20%" in line
    assert re.search(r"証明書 \(certificate\) p99 \(ms\).*REGRESSION", out)  # (1,500 calls: judged)
    assert not re.search(r"転居 \(move within\) p99 .*REGRESSION", out)  # (50 calls: too few for p99, not judged)
    written = json.loads((tmp_path / "cmp.json").read_text())
    assert "p99_ms" in written["regressions"] and "証明書.p99_ms" in written["regressions"]
    row = next(r for r in written["figures"] if r["figure"] == "p99_ms")
    assert row["regression"] and row["change_pct"] > 20 and row["limit"] == 20
    assert next(r for r in written["figures"] if r["figure"] == "転居.p99_ms")["note"].startswith("too few samples")
    # the user's thresholds: a +60% p99 allowed, then the p50 judged too
    assert compare(capsys, a, b, "--threshold", "p99_ms=60")[0] == 0
    code, out, _ = compare(capsys, a, b, "--threshold", "p99_ms=60", "--threshold", "p50_ms=+10")
    assert code == 1 and "REGRESSION" in next(line for line in out.splitlines() if line.startswith("p50 latency"))
    assert compare(capsys, a, b, "--threshold", "p99_ms=60", "--threshold", "move-in.p99_ms=5")[0] == 1


def test_compare_within_thresholds_exits_0(tmp_path, capsys):
    a = save(synthetic(), tmp_path / "a")
    b = save(synthetic(slower=1.05), tmp_path / "b")  # the same calls a little slower: within +20%
    code, out, err = compare(capsys, a / "result.json", b)
    assert code == 0 and err == "" and "no figure over its threshold" in out and "REGRESSION" not in out


def test_compare_flags_errors_and_a_fallen_rate(tmp_path, capsys):
    a = save(synthetic(), tmp_path / "a")
    code, out, _ = compare(capsys, a, save(synthetic(errors=3), tmp_path / "errors"))
    assert code == 1 and re.search(r"^failed calls .*≤ 0\s+REGRESSION", out, re.M)
    steady = ("--threshold", "p99_ms=off")  # (the synthetic runs' latencies differ by chance: the rate alone here)
    code, out, _ = compare(capsys, a, save(synthetic(rate_share=0.8), tmp_path / "slow"), *steady)
    assert code == 1 and re.search(r"^achieved rate .*−10%\s+REGRESSION", out, re.M)
    assert compare(capsys, a, tmp_path / "slow", *steady, "--threshold", "rate=-25")[0] == 0


@pytest.mark.parametrize("make, words", [
    (lambda d: None, "no such run"),
    (lambda d: (d.mkdir(), (d / "result.json").write_text("{not json")), "not JSON"),
    (lambda d: (d.mkdir(), (d / "result.json").write_text('{"scenario": "x"}')), "not a run's result.json"),
])
def test_compare_of_unreadable_input_is_one_line_and_exit_2(tmp_path, capsys, make, words):
    good = save(synthetic(), tmp_path / "good")
    make(tmp_path / "bad")
    code, out, err = compare(capsys, good, tmp_path / "bad")
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("testbed report compare: ") and words in err


@pytest.mark.parametrize("threshold, words", [("p99_ms", "give FIGURE=PCT"), ("nosuch=5", "no figure 'nosuch'"),
                                              ("rate=+10", "give rate=-10"), ("errors=-1", "is a count"),
                                              ("offered=5", "shown, never judged"), ("p99_ms=lots", "not a number"),
                                              ("mars.p99_ms=5", "no operation 'mars'")])
def test_compare_refuses_a_threshold_it_cannot_take_in_one_line(tmp_path, capsys, threshold, words):
    a = save(synthetic(), tmp_path / "a")
    code, out, err = compare(capsys, a, a, "--threshold", threshold)
    assert code == 2 and err.count("\n") == 1 and words in err, err


def test_report_html_writes_a_report_again_from_a_result(tmp_path, capsys):
    run = synthetic()
    del run["replay"]["offered_per_s"], run["replay"]["in_flight_mean_per_s"]  # (an older run's result renders too)
    folder = save(run, tmp_path / "old")
    assert cli.main(["report", "html", str(folder)]) == 0
    assert "<svg" in (folder / "report.html").read_text(encoding="utf-8")


# -- a real run -------------------------------------------------------------------------------------------------------
def test_a_small_real_run_reports_the_new_figures_and_its_true_environment(fresh_network, tmp_path):
    """A short march-peak on its own network: result.json holds offered, sent, in flight, per-operation throughput
    and the client's and machine's readings; the report shows them with the topology file it was given."""
    topology_file = fresh_network.topology.save(tmp_path / "given.yaml")
    network = Network(fresh_network.state_dir, Topology.load(topology_file))
    code = run_scenario(network, RunOptions("march-peak", residents=300, seed=2, minutes=0.15, concurrency=4,
                                            report_dir=tmp_path / "reports"))
    assert code == 0
    (out,) = (tmp_path / "reports").iterdir()
    run = json.loads((out / "result.json").read_text(encoding="utf-8"))
    result = run["replay"]
    seconds = int(result["wall_seconds"]) + 1
    for key in ("offered_per_s", "sent_per_s", "in_flight_mean_per_s", "in_flight_max_per_s"):
        assert len(result[key]) == seconds, key
    assert sum(result["offered_per_s"]) == sum(result["sent_per_s"]) == result["events"]
    assert sum(map(sum, result["throughput_by_op_per_s"].values())) == result["completed"]
    assert max(result["in_flight_max_per_s"]) <= 4
    assert all({"client_cpu_s", "machine_cpu_pct", "load1"} <= set(s) for s in result["samples"])
    env = run["environment"]
    assert env["topology file"] == str(topology_file)
    assert env["population (when the replay began)"] == {"142140 伊勢原市": 300, "142115 秦野市": 300}
    kizon = network.topology.find("kizon", "142140").address.rsplit(":", 1)[1]
    assert kizon in env["ports"]["kizon"]
    page = (out / "report.html").read_text(encoding="utf-8")
    for words in ("Offered and achieved rate", "Calls in flight", "Throughput per operation", "replay process (client)",
                  str(topology_file), "142140 伊勢原市: 300", "証明書 (certificate)"):
        assert words in page, words
    assert cli.main(["report", "compare", str(out), str(out)]) == 0
