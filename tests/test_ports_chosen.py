"""Ports a user can choose (issue 20, item 10): `--base-port N` of `up`, `run`, `bench` and `topology generate` puts
every node and target on consecutive ports from N, refused in one line where they would not fit; `topology generate`
keeps the 移行 targets, so that `testbed migrate` works on what it writes."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from nodes import ports
from testbed.bench import BenchOptions, run_bench
from testbed.cli import main
from testbed.network import NetworkError
from testbed.topology import Topology

ROOT = Path(__file__).resolve().parent.parent
TESTBED = [sys.executable, "-m", "testbed.cli"]
DEFAULT_PORTS = Topology.load().port_count()  # 28: ten nodes and two targets, gRPC and metrics each, two CSs' search


def listening_ports(topology: Topology) -> list[int]:
    return [p for n in topology.all_nodes for p in n.ports() if p]


def base_below_ephemeral(count: int) -> int:
    """A base port whose count ports end just below the ephemeral range (any machine's)."""
    return ports.ephemeral_range()[0] - count - 100


def one_line(capsys, *words: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    for word in words:
        assert word in err[0], err[0]
    return err[0]


def free_run(count: int) -> int:
    """The first of count consecutive ports free now, of blocks this test process holds (nodes/ports.py: no other
    process under the port policy hands them out while it holds them)."""
    for _ in range(ports.MAX_BLOCKS):
        got = sorted(ports.reserve("127.0.0.1", ports.BLOCK))
        start = 0
        for i in range(1, len(got) + 1):
            if i == len(got) or got[i] != got[i - 1] + 1:
                if i - start >= count:
                    return got[start]
                start = i
    pytest.skip(f"no {count} consecutive free ports in the blocks this process holds")


def test_generate_at_a_base_port_keeps_the_targets(tmp_path, capsys):
    """`topology generate --municipalities 3 --base-port N`: every listening port of every node and target in
    [N, N+k), all distinct, laid out node by node (gRPC, metrics, a CS's search and search metrics); the default
    topology's targets of its municipalities kept, so that the migration's cut over finds its site."""
    out = tmp_path / "three.yaml"
    count = 3 * 3 + 4  # 3 municipalities × (kizon, cs, atena), prefecture, national, card, intermediate
    k = 2 * (count + 2) + 2 * 3  # gRPC and metrics of each node and of the two targets; search and its metrics per CS
    base = base_below_ephemeral(k)
    assert main(["topology", "generate", "--municipalities", "3", "--base-port", str(base), "--out", str(out)]) == 0
    assert f"ports {base}-{base + k - 1}" in capsys.readouterr().out
    topology = Topology.load(out)  # (validated as any topology is)
    every = listening_ports(topology)
    assert len(every) == k == topology.port_count() and sorted(every) == list(range(base, base + k))
    assert listening_ports(topology) == sorted(every)  # in the topology's order, node by node
    cs = topology.find("cs", "142140")
    assert cs.ports() == tuple(range(cs.ports()[0], cs.ports()[0] + 4))
    assert [(t.name, t.site) for t in topology.targets] == [("kizon-142140-gcloud", "gcloud"), ("atena-142140-gcloud", "gcloud")]
    assert topology.sites("142140") == ["gcloud"]
    after, replaced = topology.cut_over("142140", "gcloud")  # what `testbed migrate 142140 --to gcloud` does at the end
    assert {n.name for n in replaced} == {"kizon-142140", "atena-142140"}
    # without --base-port: the ports of before (gRPC from 20101, metrics +1000, search +2000), the targets after
    plain = tmp_path / "plain.yaml"
    assert main(["topology", "generate", "--municipalities", "3", "--out", str(plain)]) == 0
    plain_topology = Topology.load(plain)
    assert plain_topology.find("kizon", "142140").address == "127.0.0.1:20101" and len(plain_topology.targets) == 2
    assert len(set(listening_ports(plain_topology))) == plain_topology.port_count()
    assert main(["topology", "generate", "--municipalities", "1", "--base-port", str(base), "--out", str(plain)]) == 0
    assert len(Topology.load(plain).targets) == 2


@pytest.mark.parametrize("command", [["up"], ["run", "march-peak"], ["bench"],
                                     ["topology", "generate", "--municipalities", "3"]])
def test_a_base_port_out_of_range_is_refused_in_one_line(tmp_path, capsys, command):
    """Below 1024, above 65535, or reaching into the kernel's ephemeral range: one line naming the range that would
    do, exit 2, nothing started or written."""
    low, high = ports.ephemeral_range()
    state = tmp_path / "state"
    out = ["--out", str(tmp_path / "t.yaml")] if command[0] == "topology" else []
    for base, why in ((80, "below 1024"), (65530, "above 65535"), (low - 10, "ephemeral range")):
        assert main(["--state-dir", str(state), *command, "--base-port", str(base), *out]) == 2
        line = one_line(capsys, f"--base-port {base}", why, "give a base port 1024 to")
        if why == "ephemeral range":
            assert f"{low}-{high}" in line
    assert not state.exists() and not (tmp_path / "t.yaml").exists()


def test_bench_at_a_base_port_refuses_a_taken_port_before_starting(tmp_path):
    """bench --base-port: its network and its echo on the ports from N, checked free before anything starts."""
    base = free_run(DEFAULT_PORTS + 1)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", base + DEFAULT_PORTS))  # the echo's port, the one after the nodes'
        squatter.listen()
        with pytest.raises(NetworkError, match=f"port {base + DEFAULT_PORTS} of the echo"):
            run_bench(BenchOptions(10, 1, state_dir=tmp_path / "bench", base_port=base))
    assert not (tmp_path / "bench").exists()


def cli(state_dir, *args, timeout: float = 180) -> subprocess.CompletedProcess:
    run = subprocess.run([*TESTBED, "--state-dir", str(state_dir), *args], capture_output=True, text=True,
                         timeout=timeout, cwd=ROOT)
    assert "Traceback" not in run.stdout + run.stderr, run.stdout[-2000:] + run.stderr[-2000:]
    return run


def test_up_at_a_base_port_then_status_then_down(tmp_path):
    """`up --base-port N` on a fresh state folder: every node and target listens on the ports from N, saved in the
    state folder; `status` finds them there; asking for other ports while it runs is refused in one line (its nodes
    cannot move while they run), by `run` too, the same ones are fine; `down` stops them all."""
    state = tmp_path / "state"
    base = free_run(DEFAULT_PORTS)
    try:
        up = cli(state, "up", "--base-port", str(base))
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        saved = Topology.load(state / "topology.yaml")
        assert sorted(listening_ports(saved)) == list(range(base, base + DEFAULT_PORTS))
        status = cli(state, "status", "--json", "--timeout", "5")
        rows = json.loads(status.stdout)
        assert status.returncode == 0 and all(r["healthy"] for r in rows), status.stdout
        assert len(rows) == len(saved.all_nodes) and {r["address"] for r in rows} == {n.address for n in saved.all_nodes}
        assert all(base <= int(r["address"].rsplit(":", 1)[1]) < base + DEFAULT_PORTS for r in rows)
        other = cli(state, "up", "--base-port", "2000")
        lines = other.stderr.strip().splitlines()
        assert other.returncode == 2 and len(lines) == 1 and "runs on other ports" in lines[0] and "testbed down" in lines[0]
        run = cli(state, "run", "march-peak", "--base-port", "2000", "--report-dir", str(tmp_path / "reports"))
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 2 and len(lines) == 1 and "runs on other ports" in lines[0], run.stderr
        assert not (tmp_path / "reports").exists()
        again = cli(state, "up", "--base-port", str(base))
        assert again.returncode == 0, again.stderr
        assert Topology.load(state / "topology.yaml").to_dict() == saved.to_dict()
    finally:
        down = cli(state, "down")
    assert down.returncode == 0 and f"stopped {len(Topology.load().all_nodes)} nodes" in down.stdout, down.stdout
