"""The kinds of node: one registry, read by the runtime, the topology, the policy, the guard and the probe.

Each kind says which module implements it (imported only when a node of the kind is started: this module imports
no node module), the trust domain its certificates belong to, the services it serves, whether it has a search
process, whether it can move to another site (移行: the Migration service, a ``site`` on its servicer), its batch
jobs, the network segments it is attached to and whom it calls. Every other list of kinds is derived from here.

The trust domains stay in certs/identity.py (KIND_DOMAIN: every holder kind, terminals and clients too), since
certs/ does not import nodes/; a kind reads its domain from there.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol, cast

from certs.identity import KIND_DOMAIN

if TYPE_CHECKING:  # (for the annotations alone)
    import grpc

    from nodes.site import MigrationServicer

NodeRuntime = Any  # nodes/runtime.NodeRuntime, which uses this registry: named here without importing it

MIGRATION_SERVICE = "testbed.v1.Migration"  # 移行: what a kind that migrates serves beside its own service
OPERATIONS_SERVICE = "testbed.v1.Operations"  # served by every node (nodes/runtime.py)

# Segments a node is attached to (DESIGN §2); LAN is its municipality's 住基 LAN (lan-<code>).
LAN, JUKINET, LGWAN = "lan", "jukinet", "lgwan"
# Whom a kind calls: the callee in the same municipality, in another one, or any.
SAME, OTHER, ANY = "same", "other", "any"


@dataclass(frozen=True)
class SearchEnd:
    """A kind's search process (nodes/search_process.py): the servicer it runs (``module:Class``) and the methods of
    the kind's service it serves, alone (any other is unknown there)."""

    servicer: str
    methods: tuple[str, ...]


@dataclass(frozen=True)
class NodeKind:
    """One kind of node."""

    name: str
    module: str  # the module implementing it: SCHEMA, SERVICE_NAME, Servicer, add_to_server (see NodeModule)
    service: str  # its own service (the full name; health checking reports it)
    segments: tuple[str, ...]  # LAN, JUKINET, LGWAN, in that order (a node at a site is on that site's cloud too)
    calls: tuple[tuple[str, str], ...] = ()  # (callee kind, SAME | OTHER | ANY)
    migrates: bool = False  # serves MIGRATION_SERVICE from its servicer's `site` (MigratingServicer); may be a target
    batches: tuple[str, ...] = ()  # batch jobs run on demand (Operations.RunBatch), from servicer.batches()
    search: SearchEnd | None = None  # its search process, if it has one
    also: tuple[str, ...] = ()  # services of its own it serves beside its service (full names), for other callers
    domain: str = field(init=False)  # its trust domain (certs/identity.py's KIND_DOMAIN)

    def __post_init__(self):
        object.__setattr__(self, "domain", KIND_DOMAIN[self.name])

    @property
    def services(self) -> tuple[str, ...]:
        """Every service of its own it serves (full names): its service, those it serves also, and Migration for a
        kind that migrates.
        (Operations, health checking and reflection are the runtime's, on every node.)"""
        return (self.service,) + self.also + ((MIGRATION_SERVICE,) if self.migrates else ())


KINDS: Mapping[str, NodeKind] = {k.name: k for k in (
    NodeKind("kizon", "nodes.kizon", "testbed.v1.Kizon", (LAN,),
             calls=(("cs", SAME), ("atena", SAME), ("koseki", SAME), ("conbini", SAME)),
             migrates=True, also=("testbed.v1.KizonGateway",)),
    NodeKind("cs", "nodes.cs", "testbed.v1.CommunicationServer", (LAN, JUKINET),
             calls=(("prefecture", ANY), ("national", ANY), ("card", ANY), ("cs", OTHER), ("moj", ANY)), batches=("purge",),
             search=SearchEnd("nodes.cs.search:SearchServicer", ("SearchIdentity",))),
    NodeKind("atena", "nodes.atena", "testbed.v1.Atena", (LAN, LGWAN), calls=(("national", ANY), ("intermediate", ANY)),
             migrates=True, also=("testbed.v1.OfficeLink",)),
    # 戸籍システム: its 届出 become notices kizon applies (職権); it keeps the 附票 of the people whose 本籍 is here.
    NodeKind("koseki", "nodes.koseki", "testbed.v1.FamilyRegisterSystem", (LAN,), calls=(("kizon", SAME),)),
    # コンビニ交付システム: the JPKI シリアル番号 from kizon; the 住民票の写し the 証明書交付センター asks for, from kizon's 住基GW.
    NodeKind("conbini", "nodes.conbini", "testbed.v1.ConvenienceIssuance", (LAN, LGWAN), calls=(("kizon", SAME),)),
    NodeKind("prefecture", "nodes.prefecture", "testbed.v1.PrefectureServer", (JUKINET,), calls=(("national", ANY),)),
    NodeKind("national", "nodes.national", "testbed.v1.NationalServer", (JUKINET, LGWAN)),
    NodeKind("card", "nodes.card", "testbed.v1.CardManagement", (JUKINET, LGWAN), batches=("purge",)),
    # 証明書交付センター (J-LIS): a kiosk's card checked by its 利用者証明用電子証明書, then the municipality asked.
    NodeKind("centre", "nodes.centre", "testbed.v1.CertificateIssuanceCentre", (JUKINET, LGWAN),
             calls=(("card", ANY), ("conbini", ANY))),
    # 法務省 在留カード等発行システム: 法務省通知 to the 住居地's CS, 市町村通知 from it (over 住基ネット).
    NodeKind("moj", "nodes.moj", "testbed.v1.ResidenceCardSystem", (JUKINET,), calls=(("cs", ANY),)),
    NodeKind("intermediate", "nodes.intermediate", "testbed.v1.IntermediateServer", (LGWAN,), calls=(("card", ANY),)),
)}
"""name → kind, in the order of the network (kizon first)."""

NAMES: tuple[str, ...] = tuple(KINDS)
SEARCHING: tuple[str, ...] = tuple(k.name for k in KINDS.values() if k.search)  # kinds with a search process
MIGRATING: tuple[str, ...] = tuple(k.name for k in KINDS.values() if k.migrates)  # kinds a site may move


def kind(name: str) -> NodeKind:
    """The kind called name (KeyError naming the kinds there are otherwise)."""
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"no node kind {name!r} (the kinds: {', '.join(NAMES)})") from None


class NodeServicer(Protocol):
    """What the runtime needs of every node's servicer: made from the node's runtime. What more it has, its kind
    declares (MigratingServicer when it migrates, BatchServicer when it has batches); nothing is probed for."""

    def __init__(self, runtime: NodeRuntime) -> None: ...


class MigratingServicer(NodeServicer, Protocol):
    """The servicer of a kind that migrates: its `site` serves the Migration service (nodes/site.py)."""

    site: "MigrationServicer"


class BatchServicer(NodeServicer, Protocol):
    """The servicer of a kind with batches: name → the job (run on demand; the number of records it touched)."""

    def batches(self) -> Mapping[str, Callable[[], int]]: ...


@dataclass(frozen=True)
class NodeModule:
    """A kind's module as the runtime uses it."""

    kind: NodeKind
    schema: str  # the store's schema
    service_name: str  # its SERVICE_NAME (load checks it is the kind's service)
    servicer: Callable[[NodeRuntime], NodeServicer]  # its Servicer class
    add_to_server: Callable[[NodeServicer, "grpc.aio.Server"], None]  # registers kind.services on a server


def load(node_kind: NodeKind | str) -> NodeModule:
    """Import the kind's module (once) and view it as a NodeModule; a module that does not declare its kind's
    service is refused (TypeError)."""
    return _load(kind(node_kind) if isinstance(node_kind, str) else node_kind)


def load_search(node_kind: NodeKind | str) -> Callable[[NodeRuntime], NodeServicer]:
    """The servicer class of the kind's search process (ValueError for a kind without one)."""
    return _load_search(kind(node_kind) if isinstance(node_kind, str) else node_kind)


@cache
def _load(node_kind: NodeKind) -> NodeModule:
    module = importlib.import_module(node_kind.module)
    loaded = NodeModule(node_kind, module.SCHEMA, module.SERVICE_NAME, module.Servicer, module.add_to_server)
    if loaded.service_name != node_kind.service:
        raise TypeError(f"{node_kind.module} serves {loaded.service_name}, its kind {node_kind.name} says "
                        f"{node_kind.service}")
    return loaded


@cache
def _load_search(node_kind: NodeKind) -> Callable[[NodeRuntime], NodeServicer]:
    if node_kind.search is None:
        raise ValueError(f"a {node_kind.name} has no search process (only {', '.join(SEARCHING)})")
    module, _, name = node_kind.search.servicer.partition(":")
    return vars(importlib.import_module(module))[name]


def batches_of(node_kind: NodeKind, servicer: NodeServicer) -> Mapping[str, Callable[[], int]]:
    """The batch jobs of a node's servicer: none unless its kind has batches."""
    return cast(BatchServicer, servicer).batches() if node_kind.batches else {}
