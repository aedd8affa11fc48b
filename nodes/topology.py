"""A topology: which nodes exist, where they listen, which terminals and kiosks there are.

The topology is also the roster of identities: a certificate is admitted only if the topology names
its holder (DESIGN §3, trust hygiene). Nodes read it; the testbed commands write it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from certs.identity import (DOMAINS, IMMIGRATION_URI, OFFICE_SYSTEMS, console_uri, kiosk_uri, local_government_code_valid, monitor_uri,
                            node_uri, office_uri, platform_uri, terminal_uri)
from nodes import kinds, ports
from nodes.roles import CONTRACTOR, ROLES

DNS_SUFFIX = "testbed.internal"
# Who calls whom (DESIGN §2): (caller kind, callee kind) → "same" (same municipality), "other" (another one) or "any"
# (each kind's calls in nodes/kinds.py).
CALLS = {(k.name, callee): scope for k in kinds.KINDS.values() for callee, scope in k.calls}
METRICS_OFFSET = 1000  # a node's metrics port, when the topology gives none: its gRPC port + 1000
SEARCH_OFFSET = 2000  # a CS's 本人確認情報検索 port, when the topology gives none: its gRPC port + 2000
SEARCH_END = "search"  # NODE.search: a CS's search process, in audit chains, metrics jobs and probe reports
SEARCH_KINDS = kinds.SEARCHING  # nodes that serve 本人確認情報検索 from a process of their own beside the node
NODE_KINDS = kinds.NAMES  # (nodes/kinds.py: the registry of kinds)
DEFAULT_KIOSKS = ("K0001", "K0002")  # コンビニ交付 front ends, when a topology names none
PLATFORM_CLIENTS = ("infonws", "portal")  # 情報提供NWS and the マイナポータル stand-in


@dataclass(frozen=True)
class Node:
    """One emulated system: its name, kind, place and listening address."""

    name: str
    kind: str
    address: str
    municipality: str | None = None
    prefecture: str | None = None
    site: str | None = None  # a site other than the municipality's own office (e.g. gcloud: the government cloud)
    metrics: str | None = None  # where its Prometheus metrics are served (default: the gRPC port + 1000)
    search: str | None = None  # where a CS's search process listens (default: the gRPC port + 2000)
    search_metrics: str | None = None  # where the search process serves its metrics (default: search port + 1000)
    # Run by someone else (a vendor's system under test): the testbed neither starts nor stops it, hands its
    # operator its certificates (`testbed pki issue`), and talks to it exactly as to one of its own.
    external: bool = False

    @property
    def identity(self) -> str:
        """The URI SAN this node's certificates carry."""
        return node_uri(self.kind, self.municipality, self.prefecture, self.site)

    @property
    def metrics_address(self) -> str:
        """host:port of the node's metrics endpoint (HTTPS, for its domain's monitor)."""
        return self.metrics or _beside(self.address, METRICS_OFFSET)

    @property
    def search_address(self) -> str | None:
        """host:port of the node's search process (本人確認情報検索 for terminals), or None for a node without one."""
        if self.kind not in SEARCH_KINDS:
            return None
        return self.search or _beside(self.address, SEARCH_OFFSET)

    @property
    def search_metrics_address(self) -> str | None:
        """host:port of the search process's metrics endpoint, or None for a node without one."""
        if not self.search_address:
            return None
        return self.search_metrics or _beside(self.search_address, METRICS_OFFSET)

    def search_end(self) -> "Node | None":
        """The node as its search process is reached (same name and identity; the search address and the search
        metrics address), or None."""
        if not self.search_address:
            return None
        return dataclasses.replace(self, address=self.search_address, metrics=self.search_metrics_address)

    def ends(self) -> list[tuple[str, "Node"]]:
        """(label, node) of each process of the node that callers reach: the node, and NODE.search if it has one."""
        search = self.search_end()
        return [(self.name, self)] + ([(f"{self.name}.{SEARCH_END}", search)] if search else [])

    @property
    def listening(self) -> tuple[str, ...]:
        """Every address the node's processes listen on: gRPC, metrics and, for a CS, search and its metrics."""
        return tuple(a for a in self._addresses() if a)

    def ports(self) -> tuple[int | None, ...]:
        """The ports of listening's four addresses (None where the node has no such address)."""
        return tuple(int(a.rsplit(":", 1)[1]) if a else None for a in self._addresses())

    def _addresses(self) -> tuple[str | None, ...]:
        return self.address, self.metrics_address, self.search_address, self.search_metrics_address

    def moved(self, host: str, port: int, metrics: int, search: int | None = None,
              search_metrics: int | None = None) -> "Node":
        """The same node listening at host on other ports (search: only for a node that has a search process)."""
        searching = search and self.kind in SEARCH_KINDS
        return Node(self.name, self.kind, f"{host}:{port}", self.municipality, self.prefecture, self.site,
                    f"{host}:{metrics}", f"{host}:{search}" if searching else None,
                    f"{host}:{search_metrics}" if searching and search_metrics else None, self.external)

    @property
    def host_name(self) -> str:
        """The DNS name in the server certificate, used as the TLS target name."""
        return f"{self.name}.{DNS_SUFFIX}"



def _node(fields: dict) -> Node:
    """A node from its file form: every item a string, but external a flag."""
    unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(Node)})
    if unknown:
        raise ValueError(f"node {fields.get('name')}: unknown item {', '.join(map(str, unknown))}")
    external = fields.get("external", False)
    if not isinstance(external, bool):
        raise ValueError(f"node {fields.get('name')}: external is true or false, not {external!r}")
    return Node(**{k: (str(v) if v is not None else None) for k, v in fields.items() if k != "external"},
                external=external)


def _node_dict(node: Node) -> dict:
    """A node in its file form (external only where it is set)."""
    return {k: v for k, v in vars(node).items() if v is not None and not (k == "external" and not v)}

@dataclass(frozen=True)
class Operator:
    """A staff member (操作者) with their own id and roles: clerk, individual_number, manager."""

    id: str
    roles: tuple[str, ...] = ("clerk",)


@dataclass(frozen=True)
class Municipality:
    """A municipality (市町村): its code, name, prefecture and counter terminals."""

    code: str
    name: str
    prefecture: str
    terminals: tuple[str, ...] = ()
    number_terminals: tuple[str, ...] = ()  # terminals registered for 個人番号 display
    operators: tuple[Operator, ...] = ()


@dataclass
class Topology:
    """The whole emulated network."""

    name: str
    nodes: list[Node]
    municipalities: list[Municipality]
    prefectures: dict[str, str] = field(default_factory=dict)
    source: Path | None = None
    kiosks: tuple[str, ...] = DEFAULT_KIOSKS
    # Systems deployed at another site and not yet cut over to (移行 targets): started empty beside the
    # running ones, admitted read-only until `testbed migrate` cuts over to them.
    targets: list[Node] = field(default_factory=list)
    # Where the nodes' backups go and how long they are kept (testbed/backup.py): directory, retention_days.
    backup: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Topology":
        """Read a topology file; with no path, the default kanagawa network."""
        if path is None:
            text = resources.files("nodes").joinpath("topologies/kanagawa.yaml").read_text("utf-8")
            source = None
        else:
            source = Path(path)
            text = source.read_text("utf-8")
        return cls.from_dict(yaml.safe_load(text), source)

    @classmethod
    def from_dict(cls, data: dict, source: Path | None = None) -> "Topology":
        """Build and validate a topology from its parsed form."""
        nodes = [_node(n) for n in data["nodes"]]
        targets = [_node(n) for n in data.get("targets", ())]
        municipalities = [
            Municipality(str(m["code"]), m["name"], str(m["prefecture"]), tuple(m.get("terminals", ())),
                         tuple(m.get("number_terminals", ())),
                         tuple(Operator(str(o["id"]), tuple(o.get("roles", ("clerk",)))) for o in m.get("operators", ())))
            for m in data.get("municipalities", ())
        ]
        prefectures = {str(p["code"]): p["name"] for p in data.get("prefectures", ())}
        kiosks = tuple(str(k) for k in data.get("kiosks", DEFAULT_KIOSKS))
        topology = cls(data.get("name", "unnamed"), nodes, municipalities, prefectures, source, kiosks, targets,
                       dict(data.get("backup") or {}))
        topology.validate()
        return topology

    def to_dict(self) -> dict:
        """The topology in its file form."""
        return {
            "name": self.name,
            "prefectures": [{"code": c, "name": n} for c, n in self.prefectures.items()],
            "municipalities": [
                {"code": m.code, "name": m.name, "prefecture": m.prefecture, "terminals": list(m.terminals),
                 "number_terminals": list(m.number_terminals),
                 "operators": [{"id": o.id, "roles": list(o.roles)} for o in m.operators]}
                for m in self.municipalities
            ],
            "kiosks": list(self.kiosks),
            "nodes": [_node_dict(n) for n in self.nodes],
            **({"targets": [_node_dict(n) for n in self.targets]} if self.targets else {}),
            **({"backup": dict(self.backup)} if self.backup else {}),
        }

    def save(self, path: str | Path) -> Path:
        """Write the topology as YAML."""
        path = Path(path)
        path.write_text(yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False), "utf-8")
        self.source = path
        return path

    def validate(self) -> None:
        """Refuse a topology with unknown kinds, bad codes, duplicate names or addresses."""
        names, addresses = set(), set()
        for place in self.municipalities:
            for operator in place.operators:
                strange = sorted(set(operator.roles) - set(ROLES))
                if strange:
                    raise ValueError(f"operator {operator.id} of {place.code}: unknown role {', '.join(strange)} "
                                     f"(roles: {', '.join(ROLES)})")
                if CONTRACTOR in operator.roles and len(set(operator.roles)) > 1:
                    raise ValueError(f"operator {operator.id} of {place.code}: a 委託先's operator holds the role "
                                     f"{CONTRACTOR} alone")
        unknown = sorted(set(self.backup) - {"directory", "retention_days"})
        if unknown:
            raise ValueError(f"backup: unknown setting {', '.join(map(str, unknown))} (directory, retention_days)")
        for node in self.targets:
            if node.site is None or node.kind not in kinds.MIGRATING:
                raise ValueError(f"target {node.name}: a target names its site, and is a {' or an '.join(kinds.MIGRATING)}")
            if not any(n.kind == node.kind and n.municipality == node.municipality for n in self.nodes):
                raise ValueError(f"target {node.name}: no {node.kind} of {node.municipality} to move from")
        for node in self.nodes + self.targets:
            if node.kind not in NODE_KINDS:
                raise ValueError(f"node {node.name}: unknown kind {node.kind!r}")
            if node.name in names or node.address in addresses:
                raise ValueError(f"node {node.name}: duplicate name or address {node.address}")
            names.add(node.name)
            addresses.add(node.address)
            for code in (node.municipality, node.prefecture):
                if code is not None and not local_government_code_valid(code):
                    raise ValueError(f"node {node.name}: {code} fails the 地方公共団体コード check digit")
        for m in self.municipalities:
            if not local_government_code_valid(m.code):
                raise ValueError(f"municipality {m.name}: {m.code} fails the 地方公共団体コード check digit")
            ids = [o.id for o in m.operators]
            if len(ids) != len(set(ids)):
                raise ValueError(f"municipality {m.name}: operator ids must be unique (no shared ids)")
            if set(m.number_terminals) - set(m.terminals):
                raise ValueError(f"municipality {m.name}: number_terminals must be among its terminals")

    def identities(self) -> frozenset[str]:
        """Every identity this topology names: its nodes, terminals, kiosks, office systems, platform clients and
        monitors."""
        names = {n.identity for n in self.nodes}
        names |= {terminal_uri(m.code, t) for m in self.municipalities for t in m.terminals}
        names |= {kiosk_uri(k) for k in self.kiosks}
        names |= {office_uri(m.code, o) for m in self.municipalities for o in OFFICE_SYSTEMS}
        if any(n.kind == "moj" for n in self.nodes):
            names.add(IMMIGRATION_URI)
        names |= {platform_uri(p) for p in PLATFORM_CLIENTS}
        names |= {monitor_uri(d) for d in DOMAINS} | {console_uri(d) for d in DOMAINS}
        return frozenset(names)

    def target_identities(self) -> frozenset[str]:
        """The identities of the target nodes (admitted read-only until cut over)."""
        return frozenset(n.identity for n in self.targets)

    @property
    def all_nodes(self) -> list[Node]:
        """The running network's nodes and the targets beside them: every process `testbed up` starts."""
        return self.nodes + self.targets

    def sites(self, municipality: str) -> list[str]:
        """The sites this topology names as targets for a municipality's systems."""
        return sorted({n.site for n in self.targets if n.municipality == municipality})

    def cut_over(self, municipality: str, site: str) -> tuple["Topology", list[Node]]:
        """The topology after a municipality's systems moved to site: the targets take the place of the nodes they
        replace (same position), which leave the topology; (new topology, nodes replaced)."""
        moving = [n for n in self.targets if n.municipality == municipality and n.site == site]
        if not moving:
            raise KeyError(f"the topology names no target at {site} for {municipality}")
        replaced, nodes = [], []
        for node in self.nodes:
            new = next((t for t in moving if t.kind == node.kind and node.municipality == municipality), None)
            if new is not None:
                replaced.append(node)
            nodes.append(new or node)
        targets = [t for t in self.targets if t not in moving]
        return Topology(self.name, nodes, list(self.municipalities), dict(self.prefectures), None, self.kiosks,
                        targets), replaced

    def segments_of(self, node: Node) -> list[str]:
        """The network segments a node is attached to (DESIGN §2): its municipality's 住基 LAN, 住基ネット,
        LGWAN (with J-LIS's national and card systems, which serve 符号 and the portal's card checks there),
        and the cloud segment of its site; a system moved to a site keeps a (WAN) line to the LAN."""
        # (J-LIS's national and card systems face LGWAN too: 符号 for atena, card and PIN for the portal)
        found = []
        for segment in kinds.kind(node.kind).segments:
            if segment != kinds.LAN:
                found.append(segment)
            elif node.municipality:
                found.append(f"{kinds.LAN}-{node.municipality}")
        if node.site:
            found.append(f"cloud-{node.site}")
        return found

    def segments(self) -> dict[str, list[str]]:
        """segment → the names of the nodes attached to it (targets included), in a stable order."""
        found: dict[str, list[str]] = {}
        for node in self.all_nodes:
            for segment in self.segments_of(node):
                found.setdefault(segment, []).append(node.name)
        return dict(sorted(found.items()))

    def links(self) -> list[tuple[Node, Node, str]]:
        """Every (caller, callee, segment) the network has a path for: who calls whom (DESIGN §2), over the
        segment they share (a line to or from a moved system is its site's cloud link)."""
        found = []
        for caller in self.all_nodes:
            for callee in self.all_nodes:
                if caller is callee or (caller.kind, callee.kind) not in CALLS:
                    continue
                if CALLS[(caller.kind, callee.kind)] == "same" and caller.municipality != callee.municipality:
                    continue
                if CALLS[(caller.kind, callee.kind)] == "other" and caller.municipality == callee.municipality:
                    continue
                if (caller.kind, callee.kind) == ("kizon", "atena") and caller.site != callee.site:
                    continue  # each site's kizon feeds its own atena
                shared = [s for s in self.segments_of(caller) if s in self.segments_of(callee)]
                if not shared:
                    continue
                site = caller.site or callee.site
                found.append((caller, callee, f"cloud-{site}" if site else shared[0]))
        return found

    def node(self, name: str) -> Node:
        """The node called name (a target too)."""
        for node in self.all_nodes:
            if node.name == name:
                return node
        raise KeyError(f"no node {name!r} in topology {self.name}")

    def find(self, kind: str, municipality: str | None = None, prefecture: str | None = None) -> Node:
        """The node of a kind, for a municipality or prefecture where that matters."""
        for node in self.nodes:
            if node.kind != kind:
                continue
            if municipality is not None and node.municipality != municipality:
                continue
            if prefecture is not None and node.prefecture != prefecture:
                continue
            return node
        raise KeyError(f"no {kind} node for {municipality or prefecture or 'the network'}")

    def municipality(self, code: str) -> Municipality:
        """The municipality with this code."""
        for m in self.municipalities:
            if m.code == code:
                return m
        raise KeyError(f"no municipality {code} in topology {self.name}")

    def with_free_ports(self, host: str = "127.0.0.1") -> "Topology":
        """A copy whose nodes listen on ports the OS reports free now (for tests and benchmarks)."""
        count = len(self.all_nodes)
        ports = free_ports(host, 4 * count)
        moved = [n.moved(host, *ports[i::count]) for i, n in enumerate(self.all_nodes)]
        return Topology(self.name, moved[:len(self.nodes)], list(self.municipalities), dict(self.prefectures),
                        kiosks=self.kiosks, targets=moved[len(self.nodes):])

    def port_count(self) -> int:
        """How many ports the network listens on: each node's (and target's) gRPC and metrics ports, and for a CS
        also its search process's two."""
        return sum(len(n.listening) for n in self.all_nodes)

    def at_base_port(self, base: int, spare: int = 0) -> "Topology":
        """A copy whose nodes and targets listen on consecutive ports from base, each on its own host: in the order
        of all_nodes (the nodes, then the targets), and for each node its gRPC port, its metrics port, then for a
        CS its search process's port and that process's metrics port (as Node.moved takes them). ValueError, in one
        line, when those ports (and spare more after them, for a caller's own use) would reach below 1024, above
        65535 or into the kernel's ephemeral range, which outgoing connections take their ports from."""
        count = self.port_count()
        check_port_range(base, count + spare, f"the {count} ports of the {self.name} topology"
                                              + (f" and the {spare} after them" if spare else ""))
        port = iter(range(base, base + count))
        moved = []
        for node in self.all_nodes:
            host = node.address.rsplit(":", 1)[0]
            grpc, metrics = next(port), next(port)
            search = (next(port), next(port)) if node.search_address else ()
            moved.append(node.moved(host, grpc, metrics, *search))
        return Topology(self.name, moved[:len(self.nodes)], list(self.municipalities), dict(self.prefectures),
                        kiosks=self.kiosks, targets=moved[len(self.nodes):])


def _beside(address: str, offset: int) -> str:
    """host:port of an address offset ports from another (a node's metrics and search ports)."""
    host, port = address.rsplit(":", 1)
    return f"{host}:{int(port) + offset}"


def free_ports(host: str, count: int, avoid=frozenset()) -> list[int]:
    """count distinct ports free now on host (and not in avoid), below the kernel's ephemeral range (a port the
    kernel hands out for outgoing connections could be taken by another node's call before its node binds it),
    reserved for this process so that no other program choosing at the same time picks them (nodes/ports.py)."""
    return ports.reserve(host, count, avoid)


def check_port_range(first: int, count: int, what: str = "the ports") -> None:
    """ValueError (one line, naming the ranges that would do) unless the count ports from first are all from 1024 to
    65535 and outside the kernel's ephemeral range (a port it hands out for an outgoing connection could be taken
    by another node's call before the node binds it)."""
    last = first + count - 1
    low, high = ports.ephemeral_range()
    if 1024 <= first and last <= 65535 and (last < low or first > high):
        return
    fits = [f"{a} to {b}" for a, b in ((1024, low - count), (high + 1, 65536 - count)) if a <= b]
    if first < 1024 or last > 65535:
        why = "below 1024" if first < 1024 else "above 65535"
    else:
        why = f"into the kernel's ephemeral range {low}-{high} (net.ipv4.ip_local_port_range: outgoing connections' ports)"
    raise ValueError(f"{what} would run {first}-{last}, {why}; give a base port "
                     f"{' or '.join(fits) if fits else 'that leaves room for them'}")
