"""The registry of node kinds (nodes/kinds.py): every kind the network runs is in it, each kind's module has what the
kind declares, and no other module keeps a list of the kinds of its own. Fast: no network, no processes but one
interpreter."""
from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from google.protobuf import descriptor_pool

from certs.identity import KIND_DOMAIN
from nodes import NODE_MODULES, kinds
from nodes.kinds import KINDS
from nodes.topology import CALLS, NODE_KINDS, SEARCH_KINDS, Topology

ROOT = Path(__file__).resolve().parent.parent
SEVEN = {"kizon", "cs", "atena", "prefecture", "national", "card", "intermediate", "koseki", "moj", "conbini", "centre"}
# Collections naming every kind that are not lists of the kinds: (file, the name assigned) → why.
NOT_LISTS = {
    ("certs/identity.py", "KIND_DOMAIN"): "the domain of every holder kind, clients too; certs/ does not import nodes/, "
                                          "the registry reads its domains from here",
    ("nodes/policy.py", "POLICY"): "the rules of each kind of server (held equal to the registry below)",
    ("nodes/refusal.py", "OWNERS"): "the owners of rules: the kinds and others (common, access, site, ...)",
    ("testbed/catalogue.py", "OWNER_TITLES"): "the titles of the rule catalogue's sections, by owner",
}


class Anything:
    """A stand-in servicer: every attribute is there (a callable, itself with every attribute)."""

    def __getattr__(self, name):
        return Anything()

    def __call__(self, *args, **kwargs):
        return None


class RecordingServer:
    """A stand-in gRPC server: which services were registered on it, with which methods."""

    def __init__(self):
        self.services: dict[str, set[str]] = {}

    def add_generic_rpc_handlers(self, handlers):
        for handler in handlers:
            self.services.setdefault(handler.service_name(), set()).update(
                path.rsplit("/", 1)[1] for path in handler._method_handlers)

    def add_registered_method_handlers(self, service, handlers):
        self.services.setdefault(service, set()).update(handlers)


def test_every_kind_of_the_topologies_is_registered():
    """The default topology's nodes and targets, and every topology shipped, are of registered kinds."""
    default = Topology.load()
    assert {n.kind for n in default.all_nodes} == set(KINDS)
    for path in sorted((ROOT / "nodes" / "topologies").glob("*.yaml")):
        assert {n.kind for n in Topology.load(path).all_nodes} <= set(KINDS), path


def test_the_lists_of_kinds_are_the_registry():
    """The eight kinds; the topology's, the policy's and the package's lists are the registry's."""
    from nodes.guard import CLIENT_KINDS
    from nodes.policy import MIGRATION_RIGHTS, POLICY
    assert set(KINDS) == SEVEN and all(k.name == name for name, k in KINDS.items())
    assert NODE_KINDS == kinds.NAMES == tuple(KINDS)
    assert SEARCH_KINDS == kinds.SEARCHING == ("cs",)
    assert kinds.MIGRATING == ("kizon", "atena")
    assert NODE_MODULES == {name: k.module for name, k in KINDS.items()}
    assert set(POLICY) == set(KINDS)
    assert set(MIGRATION_RIGHTS) == set(kinds.MIGRATING)
    assert not CLIENT_KINDS & set(KINDS) and CLIENT_KINDS >= {"terminal", "kiosk", "monitor", "console"}
    for k in KINDS.values():
        assert k.domain == KIND_DOMAIN[k.name]
        order = (kinds.LAN, kinds.JUKINET, kinds.LGWAN)
        assert k.segments and list(k.segments) == sorted(k.segments, key=order.index), k
        assert all(callee in KINDS and scope in (kinds.SAME, kinds.OTHER, kinds.ANY) for callee, scope in k.calls), k
    assert set(CALLS) == {(k.name, callee) for k in KINDS.values() for callee, _ in k.calls}
    with pytest.raises(KeyError, match="no node kind 'terminal'"):
        kinds.kind("terminal")


@pytest.mark.parametrize("name", sorted(SEVEN))
def test_each_module_has_what_its_kind_declares(name):
    """Its schema, its servicer class, add_to_server, its service; batches() exactly when the kind has batches (the
    jobs the kind names); a search servicer with the search methods when the kind has a search process."""
    k = kinds.kind(name)
    module = kinds.load(k)
    assert module is kinds.load(name) and module.kind is k
    assert isinstance(module.schema, str) and module.schema.strip()
    assert inspect.isclass(module.servicer) and callable(module.add_to_server)
    assert module.service_name == k.service
    batches = inspect.getattr_static(module.servicer, "batches", None)
    assert callable(batches) == bool(k.batches), "batches() and the kind's batches disagree"
    if k.batches:
        jobs = module.servicer.batches(Anything())  # (its jobs, as bound methods of a stand-in)
        if isinstance(jobs, Mapping):
            assert sorted(jobs) == sorted(k.batches)
    if k.search is None:
        with pytest.raises(ValueError):
            kinds.load_search(k)
    else:
        searcher = kinds.load_search(k)
        methods = descriptor_pool.Default().FindServiceByName(k.service).methods_by_name
        for method in k.search.methods:
            assert method in methods and not (methods[method].client_streaming or methods[method].server_streaming)
            assert callable(inspect.getattr_static(searcher, method))


@pytest.mark.parametrize("name", sorted(SEVEN))
def test_the_services_a_kind_declares_are_what_its_module_registers(name):
    """add_to_server registers the kind's services (its own, and Migration for a kind that migrates) with every
    method their descriptors name, and nothing else."""
    k = kinds.kind(name)
    module = kinds.load(k)
    server = RecordingServer()
    module.add_to_server(Anything(), server)
    assert set(server.services) == set(k.services)
    pool = descriptor_pool.Default()
    for service, methods in server.services.items():
        assert methods == {m.name for m in pool.FindServiceByName(service).methods}, service
    assert (kinds.MIGRATION_SERVICE in k.services) == k.migrates


def test_the_search_handler_serves_the_search_methods_alone():
    """The search process's handler (nodes/runtime.py) serves the kind's search methods alone, with the messages
    of the service's descriptor."""
    from nodes.server import methods_handler
    from protos import identity_pb2
    k = kinds.kind("cs")
    handler = methods_handler(Anything(), k.service, k.search.methods)
    assert handler.service_name() == k.service
    assert sorted(handler._method_handlers) == sorted(f"/{k.service}/{m}" for m in k.search.methods)
    search = handler._method_handlers[f"/{k.service}/SearchIdentity"]
    request = identity_pb2.IdentitySearch(name_kana="ケンサク", birth_date="1990-01-02")
    assert search.request_deserializer(request.SerializeToString()) == request


def test_the_registry_imports_no_node_module():
    """Importing the registry (and the package) imports no node module: each is imported when it is loaded."""
    code = "import sys, nodes.kinds; print(sorted(m for m in sys.modules if m.split('.')[0] == 'nodes'))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["['nodes',", "'nodes.kinds']"]


def test_certs_does_not_import_nodes():
    """certs/ stays below nodes/: the trust domains are read from it, never the other way round."""
    for path in sorted((ROOT / "certs").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                assert not any(a.name.split(".")[0] == "nodes" for a in node.names), path
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] != "nodes", path


def _kind_collections(path: Path):
    """(name assigned or None, line) of every tuple, list, set or dict literal in a file naming all seven kinds."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    owner: dict[int, str] = {}
    for statement in ast.walk(tree):
        if isinstance(statement, (ast.Assign, ast.AnnAssign)) and statement.value is not None:
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)] + \
                    [t.attr for t in targets if isinstance(t, ast.Attribute)]
            for inner in ast.walk(statement.value):
                owner.setdefault(id(inner), names[0] if names else None)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            items = node.elts
        elif isinstance(node, ast.Dict):
            items = [key for key in node.keys if key is not None]
        else:
            continue
        named = {i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)}
        if named >= SEVEN:
            yield owner.get(id(node)), node.lineno


def test_no_module_lists_the_kinds_of_its_own():
    """No module of nodes/, testbed/ or certs/ but the registry spells out the seven kinds in a tuple, list, set or
    dict: each derives its list from nodes/kinds.py (NOT_LISTS: the collections by kind that are not lists of them)."""
    found = []
    for folder in ("nodes", "testbed", "certs"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative == "nodes/kinds.py":
                continue
            found += [f"{relative}:{line} ({name or 'unnamed'})" for name, line in _kind_collections(path)
                      if (relative, name) not in NOT_LISTS]
    assert not found, f"lists of the node kinds outside nodes/kinds.py (derive them from it): {found}"


def test_the_scan_finds_a_list_of_the_kinds(tmp_path):
    """The scan above finds a list of the kinds where there is one."""
    path = tmp_path / "lister.py"
    path.write_text(f"MINE = {tuple(sorted(SEVEN))!r}\nOTHER = ('kizon', 'cs')\n", encoding="utf-8")
    assert list(_kind_collections(path)) == [("MINE", 1)]
