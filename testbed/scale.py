"""Generated topologies for the scale curve: N municipalities of 神奈川県 (real 市町村コード, with their
prefecture) plus the national systems, each municipality with the default one's terminals and operators.

`testbed topology generate --municipalities N` writes one; `testbed bench --topology FILE` measures it.

Each keeps the 移行 targets the default topology names for its municipalities (伊勢原市's 既存住基 and 宛名 in
the government cloud), so that `testbed migrate 142140 --to gcloud` and `testbed bench --migrate` work on it;
the other municipalities get none (a target is a process of its own beside the node it replaces: targets for
every municipality would double the idle processes the scale curve measures beside the working ones).
"""
from __future__ import annotations

from pathlib import Path

from testbed.topology import Topology

PREFECTURE = ("140007", "神奈川県")
# 伊勢原市 and 秦野市 first (the postal data here has their 町字), then other cities of the prefecture.
MUNICIPALITIES = (
    ("142140", "伊勢原市"), ("142115", "秦野市"), ("142034", "平塚市"), ("142123", "厚木市"),
    ("142051", "藤沢市"), ("142069", "小田原市"), ("142077", "茅ヶ崎市"), ("142131", "大和市"),
    ("142158", "海老名市"), ("142166", "座間市"), ("142042", "鎌倉市"), ("142182", "綾瀬市"),
    ("142018", "横須賀市"), ("142085", "逗子市"), ("142107", "三浦市"), ("142174", "南足柄市"),
)
FIRST_PORT = 20101
SHARED = (("prefecture-140007", "prefecture"), ("national", "national"), ("card", "card"), ("intermediate", "intermediate"))


def generate(count: int, base_port: int | None = None) -> Topology:
    """A topology of the first count municipalities of MUNICIPALITIES, one prefecture, the national systems, and the
    default topology's targets of those municipalities. Its gRPC ports run from FIRST_PORT (metrics +1000, a CS's
    search +2000 and +3000, as in the default topology), the targets' after the nodes'; with base_port, every port
    of every node and target is one of the consecutive ports from base_port instead (Topology.at_base_port;
    ValueError when they would not fit below the ephemeral range or above it)."""
    if not 1 <= count <= len(MUNICIPALITIES):
        raise ValueError(f"--municipalities must be 1 to {len(MUNICIPALITIES)} (the 神奈川県 cities listed in "
                         f"testbed/scale.py), not {count}")
    default = Topology.load()
    template = default.municipalities[0]
    chosen = MUNICIPALITIES[:count]
    ports = iter(range(FIRST_PORT, FIRST_PORT + 1000))
    nodes = []
    for code, _ in chosen:
        for kind in ("kizon", "cs", "atena"):
            nodes.append({"name": f"{kind}-{code}", "kind": kind, "municipality": code, "address": f"127.0.0.1:{next(ports)}"})
    for name, kind in SHARED:
        node = {"name": name, "kind": kind, "address": f"127.0.0.1:{next(ports)}"}
        if kind == "prefecture":
            node["prefecture"] = PREFECTURE[0]
        nodes.append(node)
    codes = {code for code, _ in chosen}
    targets = [{"name": t.name, "kind": t.kind, "municipality": t.municipality, "site": t.site,
                "address": f"127.0.0.1:{next(ports)}"} for t in default.targets if t.municipality in codes]
    topology = Topology.from_dict({
        "name": f"kanagawa-{count}",
        "prefectures": [{"code": PREFECTURE[0], "name": PREFECTURE[1]}],
        "municipalities": [
            {"code": code, "name": name, "prefecture": PREFECTURE[0], "terminals": list(template.terminals),
             "number_terminals": list(template.number_terminals),
             "operators": [{"id": o.id, "roles": list(o.roles)} for o in template.operators]}
            for code, name in chosen],
        "nodes": nodes,
        "targets": targets,
    })
    return topology if base_port is None else topology.at_base_port(base_port)


def write(count: int, path: str | Path, base_port: int | None = None) -> Path:
    """Generate the topology of count municipalities (its ports from base_port, if given) and save it to path."""
    return generate(count, base_port).save(path)
