"""`testbed topology generate` and `testbed bench --topology`: the scale curve's two commands, at a small size."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

from certs.identity import local_government_code_valid
from testbed.cli import main
from testbed.scale import MUNICIPALITIES, generate


def test_a_generated_topology_names_real_codes_of_one_prefecture():
    """N municipalities of 神奈川県 with valid 市町村コード, each with kizon, cs and atena; one prefecture; the
    national systems; distinct names and addresses (validated like any topology)."""
    topology = generate(4)
    assert [m.code for m in topology.municipalities] == [code for code, _ in MUNICIPALITIES[:4]]
    assert all(local_government_code_valid(m.code) and m.prefecture == "140007" for m in topology.municipalities)
    kinds = sorted(n.kind for n in topology.nodes)
    assert kinds.count("kizon") == kinds.count("cs") == kinds.count("atena") == 4
    assert {"prefecture", "national", "card", "intermediate"} <= set(kinds)
    with pytest.raises(ValueError, match="1 to"):
        generate(len(MUNICIPALITIES) + 1)


def test_topology_generate_refuses_nonsense_in_one_line(tmp_path, capsys):
    """--municipalities 0 is refused with one line naming the range."""
    assert main(["topology", "generate", "--municipalities", "0", "--out", str(tmp_path / "t.yaml")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "1 to" in err[0]
    assert main(["topology", "generate", "--municipalities", "2", "--out", str(tmp_path / "no" / "such" / "t.yaml")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write" in err[0]


def test_bench_over_a_generated_topology(tmp_path, capsys, monkeypatch, request):
    """The benchmark loads and drives every municipality of a generated topology (the third one with made-up
    町字): zero errors, every municipality's nodes busy, the figures in the JSON; the folder it made for its network
    is gone at the end."""
    # (where its own folder goes, to be looked at after: short, as the zygote's socket path in it must be)
    scratch = Path(tempfile.mkdtemp(prefix="tb-"))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    request.addfinalizer(lambda: shutil.rmtree(scratch, ignore_errors=True))
    path = tmp_path / "three.yaml"
    assert main(["topology", "generate", "--municipalities", "3", "--out", str(path)]) == 0
    assert len(yaml.safe_load(path.read_text())["municipalities"]) == 3
    figures_path = tmp_path / "figures.json"
    code = main(["bench", "--topology", str(path), "--residents", "300", "--flows", "90", "--json", str(figures_path)])
    out = capsys.readouterr().out
    assert not list(scratch.glob("testbed-bench-*"))  # (its network's folder, and the vendor export's)
    figures = json.loads(figures_path.read_text())
    assert code == 0, (figures.get("flow_errors_by_code"), out)
    assert figures["municipalities"] == 3 and figures["residents"] == 900 and figures["flow_errors"] == 0
    third = MUNICIPALITIES[2][0]
    assert figures["node_cpu_ms"].get(f"kizon-{third}", 0) > 0 and figures["node_cpu_ms"].get(f"cs-{third}", 0) > 0
    assert figures["busiest_node"] in figures["node_busy"] and 0 < figures["prefecture_busy"]
    assert "busiest_node" in out and "flow_cpu_ms" in out
    assert {"echo_calls_per_s", "bulk_load_seconds", "flow_per_s", "flow_cpu_ms", "search_p50_ms", "search_p99_ms",
            "search_p99_ms_saturated", "search_in_process_p99_ms", "consistency_seconds", "max_node_rss_mb"} <= set(figures)
    # the searches as the search process timed them: a bucket bound of its own histogram
    assert figures["search_in_process_p99_ms"] > 0 and "in the search process" in out
