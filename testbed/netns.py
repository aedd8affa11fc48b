"""`testbed up --isolated`: each node in a Linux network namespace of its own, on bridges made per segment.

One bridge per segment of the topology (住基 LAN per municipality, 住基ネット, LGWAN, the cloud segment of a
site), each its own /24 of 10.77.0.0/16; each node gets a veth on every segment the real network gives it
and nothing else, and no default route: a node can reach only the subnets it is on, so kizon cannot even
open a TCP connection to national. The host (where terminals, tools and the links relay run) has the .254
address of every bridge. Every name begins with `tb` (namespaces `tb-<node>`, bridges `tbbr<i>`, veths
`tbh<k>-<i>`), so that `testbed down` finds and removes leftovers, also after a crash. Needs root and
iproute2; nothing here touches addresses outside 10.77.0.0/16 or links the testbed did not make.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from nodes.topology import Node, Topology

NETWORK = "10.77"
HOST = 254


class NetnsError(RuntimeError):
    """The namespaces could not be made (not root, no iproute2, the kernel refused)."""


@dataclass
class Plan:
    """Which segment is which subnet and bridge, and each node's address on each of its segments."""

    segments: dict[str, int]  # segment → index (subnet 10.77.<index>.0/24, bridge tbbr<index>)
    addresses: dict[str, dict[str, str]]  # node → segment → ip

    def host_ip(self, segment: str) -> str:
        """The host's address on a segment."""
        return f"{NETWORK}.{self.segments[segment]}.{HOST}"

    def to_dict(self) -> dict:
        return {"segments": self.segments, "addresses": self.addresses}

    @classmethod
    def from_dict(cls, data: dict) -> "Plan":
        return cls(data["segments"], data["addresses"])


def namespace(node_name: str) -> str:
    """The network namespace of a node."""
    return f"tb-{node_name}"


def plan(topology: Topology) -> Plan:
    """Subnets for the segments and addresses for the nodes, in a stable order."""
    segments = {name: i + 1 for i, name in enumerate(topology.segments())}
    addresses: dict[str, dict[str, str]] = {}
    for k, node in enumerate(topology.all_nodes):
        addresses[node.name] = {s: f"{NETWORK}.{segments[s]}.{k + 1}" for s in topology.segments_of(node)}
    return Plan(segments, addresses)


def placed(topology: Topology, layout: Plan) -> Topology:
    """The topology with each node at its address on its first segment (what the host's tools use)."""
    def move(node: Node) -> Node:
        ip = next(iter(layout.addresses[node.name].values()))
        return node.moved(ip, *node.ports())
    return Topology(topology.name, [move(n) for n in topology.nodes], list(topology.municipalities),
                    dict(topology.prefectures), kiosks=topology.kiosks, targets=[move(n) for n in topology.targets])


def available() -> str:
    """"" if namespaces can be made here, else why not."""
    import os
    if os.geteuid() != 0:
        return "--isolated needs root (it makes network namespaces, bridges and veth pairs)"
    if shutil.which("ip") is None:
        return "--isolated needs iproute2 (`ip`)"
    return ""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    run = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and run.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {run.stderr.strip()}")
    return run


def create(topology: Topology, layout: Plan) -> None:
    """Make the bridges, namespaces and veth pairs of the plan (after removing any leftovers)."""
    destroy()
    try:
        for segment, i in layout.segments.items():
            bridge = f"tbbr{i}"
            _ip("link", "add", bridge, "type", "bridge")
            _ip("addr", "add", f"{layout.host_ip(segment)}/24", "dev", bridge)
            _ip("link", "set", bridge, "up")
        for k, node in enumerate(topology.all_nodes):
            ns = namespace(node.name)
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            for segment, ip in layout.addresses[node.name].items():
                i = layout.segments[segment]
                host_end, node_end = f"tbh{k}-{i}", f"tbn{k}-{i}"
                _ip("link", "add", host_end, "type", "veth", "peer", "name", node_end)
                _ip("link", "set", host_end, "master", f"tbbr{i}")
                _ip("link", "set", host_end, "up")
                _ip("link", "set", node_end, "netns", ns)
                _ip("-n", ns, "link", "set", node_end, "name", f"eth{i}")
                _ip("-n", ns, "addr", "add", f"{ip}/24", "dev", f"eth{i}")
                _ip("-n", ns, "link", "set", f"eth{i}", "up")
    except NetnsError:
        destroy()
        raise


def leftovers() -> tuple[list[str], list[str]]:
    """(namespaces, links) the testbed made that exist now."""
    run = _ip("netns", "list", check=False)
    spaces = [line.split()[0] for line in run.stdout.splitlines() if line.startswith("tb-")]
    run = _ip("-o", "link", "show", check=False)
    names = [line.split(":")[1].strip().split("@")[0] for line in run.stdout.splitlines() if ":" in line]
    return spaces, [n for n in names if n.startswith(("tbbr", "tbh"))]


def destroy() -> list[str]:
    """Remove every namespace, bridge and veth the testbed made (found by name); what was removed."""
    spaces, links = leftovers()
    for ns in spaces:
        _ip("netns", "delete", ns, check=False)  # its veth ends go with it, and their host ends
    for link in links:
        _ip("link", "delete", link, check=False)
    return spaces + [link for link in links if link.startswith("tbbr")]


def command(node_name: str, program: list[str]) -> list[str]:
    """The command that runs program inside a node's namespace."""
    return ["ip", "netns", "exec", namespace(node_name), *program]


def save(path: Path, layout: Plan) -> None:
    """Keep the plan beside the network's state (for the links relay and `testbed down`)."""
    path.write_text(json.dumps(layout.to_dict(), indent=1))


def load(path: Path) -> Plan | None:
    """The plan of an isolated network, or None."""
    try:
        return Plan.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError):
        return None
