"""The shared node runtime: mTLS server, authentication, default-deny authorization, audit,
health checking, reflection, the durable store, peer channels and clean shutdown.

A node module supplies only its servicer; everything here is the same for all of them.
"""
from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import sys
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import psutil
from cryptography import x509
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

from certs.identity import parse
from certs.pki import PKI, write_private
from nodes import audit, kinds, limits, metrics, weaken, witness
from nodes.health import HealthServicer
from nodes.authn import Authenticator
from nodes.children import Child
from nodes.guard import CallContext, GuardInterceptor
from nodes.metrics import NodeMetrics
from nodes.outbox import Outbox, Target
from nodes.peers import PeerWatch
from nodes.reasons import common as C
from nodes.rules import Violation
from nodes.store import Store
from nodes.topology import SEARCH_END
from nodes.tls import ClientCert, aio_channel, pinned, server_credentials
from nodes.weaken import weakened
from protos import migration_pb2, ops_pb2, ops_pb2_grpc

log = logging.getLogger(__name__)

BIND_ENV = "TESTBED_BIND"
COUNTED_TABLES = ("residents", "identity", "code_pool", "delivery", "entries", "copies", "move_out_certificates")
PEER_TIMEOUT = 10.0  # seconds a node waits on a peer's answer


SEARCH_CHAIN = SEARCH_END  # the audit chain of a node's search process, beside the node's own


def checkpoints_path(state_dir: Path, node_name: str, chain: str = "") -> Path:
    """Where a node (or, with chain, its search process) publishes its audit checkpoints: outside its data folder."""
    return Path(state_dir) / "checkpoints" / f"{node_name}{'.' + chain if chain else ''}.jsonl"


def audit_path(state_dir: Path, node_name: str, chain: str = "") -> Path:
    """A node's audit log, or (with chain) the audit log of its search process, in the node's data folder."""
    return Path(state_dir) / "data" / node_name / (f"{chain}-audit.jsonl" if chain else "audit.jsonl")


class NodeRuntime:
    """Everything a servicer needs: its node, the topology, store, audit log, outbox and peers."""

    def __init__(self, topology, node_name: str, state_dir: str | Path, pki_dir: str | Path, search: bool = False):
        self.topology = topology
        self.search = search  # the node's search process: reads the node's store, audits in a chain of its own
        self.label = f"{node_name}.{SEARCH_CHAIN}" if search else node_name  # (in messages and the audit)
        self.node = topology.node(node_name)
        self.identity = parse(self.node.identity)
        self.state_dir = Path(state_dir)
        self.pki = PKI(pki_dir)
        data = self.state_dir / "data" / node_name
        self.kind = kinds.kind(self.node.kind)
        self.module = kinds.load(self.kind)
        self.store = (Store(data / "store.sqlite", read_only=True) if search
                      else Store(data / "store.sqlite", self.module.schema))
        cert_path, key_path = self.pki.node_files(node_name, "client")
        public_key = x509.load_pem_x509_certificate(cert_path.read_bytes()).public_key()
        audit_key = b"" if weakened("audit-key") else self.pki.audit_key(node_name, create=True)
        chain = SEARCH_CHAIN if search else ""
        # Heads go to the witness of this network (outside the state folder, found from the environment: never
        # from a setting in the state folder, which whoever can write it could point elsewhere).
        self.audit = audit.AuditLog(audit_path(self.state_dir, node_name, chain), self.label, audit_key,
                                    checkpoints_path(self.state_dir, node_name, chain),
                                    audit.Signer(key_path.read_bytes()), public_key,
                                    witness.Client(witness.folder(self.state_dir, self.pki.dir)))
        self.authenticator = Authenticator(pki_dir, topology.identities(), data / "crl_numbers.json",
                                           topology.target_identities())
        self.topology_path: Path | None = topology.source
        cert, key = self.pki.node_files(node_name, "client")
        self.client_cert = ClientCert(cert, key, self.pki.trust_bundle)
        self.peer_addresses = self._links_plan()
        self.peer_watch = PeerWatch(self.authenticator, self.client_cert, self.peer_address)
        self.metrics = NodeMetrics(self)
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._background: list = []
        self._tasks: list[asyncio.Task] = []
        self.outbox: Outbox | None = None
        self.servicer: kinds.NodeServicer | None = None
        self.peer_timeout = PEER_TIMEOUT
        # Operator sessions are signed per municipality; a node of one municipality checks only its own.
        # Sessions are checked with public keys: of this node's municipality, or of every municipality for a
        # node without one (the 中間サーバ's staff logins). Only kizon holds a signing key (see session_signer).
        self.session_keys = {m.code: key for m in topology.municipalities
                             if self.node.municipality in (None, m.code)
                             and (key := self.pki.session_public_key(m.code)) is not None}

    def own_secret(self, name: str, size: int = 32) -> bytes:
        """A secret of this node alone, in its own PKI folder (made on first use)."""
        path = self.pki.dir / "nodes" / self.node.name / name
        if not path.exists():
            write_private(path, os.urandom(size))
        return path.read_bytes()

    def _links_plan(self) -> dict[str, str]:
        """callee → the address to reach it at, from the links plan when the network relays its links
        (testbed/links.py): the relay of the link, with its profile; else every peer at its own address."""
        try:
            plan = json.loads((self.state_dir / "links" / "plan.json").read_text())
        except (OSError, ValueError):
            return {}
        prefix = f"{self.node.name}->"
        return {name[len(prefix):]: spec["listen"] for name, spec in plan.items() if name.startswith(prefix)}

    def peer_address(self, node) -> str:
        """Where this node reaches a peer: the relay of their link, or the peer's own address."""
        return self.peer_addresses.get(node.name, node.address)

    def channel(self, node) -> grpc.aio.Channel:
        """A cached mTLS channel to a peer node, presenting this node's client certificate."""
        ch = self._channels.get(node.name)
        if ch is None:
            self.peer_watch.watch(node)
            ch = self._channels[node.name] = aio_channel(self.peer_address(node), node.host_name,
                                                         pinned(self.client_cert, kinds.kind(node.kind).domain),
                                                         self.peer_watch.interceptors(node))
        return ch

    def stub(self, stub_class, kind: str, municipality: str | None = None, prefecture: str | None = None):
        """A stub of stub_class on the peer node of kind (for a municipality or prefecture); a migration target
        talks to the targets of its own site where there are some (its kizon to its atena)."""
        own_site = [n for n in self.topology.targets if self.node.site and n.site == self.node.site
                    and n.kind == kind and n.municipality == municipality]
        return stub_class(self.channel(own_site[0] if own_site else self.topology.find(kind, municipality, prefecture)))

    def reload_topology(self) -> bool:
        """Read the topology file again (after a cut over, `testbed` sends SIGHUP): admit whom it names now, the
        targets read-only. Whether anything changed."""
        if self.topology_path is None:
            return False
        try:
            topology = type(self.topology).load(self.topology_path)
            node = topology.node(self.node.name)
        except (OSError, ValueError, KeyError) as exc:
            log.error("topology not reloaded from %s: %s; keeping the one in use", self.topology_path, exc)
            return False
        if topology.to_dict() == self.topology.to_dict():
            return False
        self.topology, self.node = topology, node
        self.authenticator.set_roster(topology.identities(), topology.target_identities())
        log.info("topology reloaded: %d nodes, %d targets; admitted identities updated", len(topology.nodes),
                 len(topology.targets))
        return True

    async def call_peer(self, method, request, peer: str, unreachable: str = ""):
        """Call a peer; its refusal comes back as a Violation with the same status, naming the peer.
        With `unreachable`, a peer that cannot be reached is UNAVAILABLE with that explanation."""
        try:
            return await method(request, timeout=self.peer_timeout)
        except grpc.aio.AioRpcError as exc:
            if unreachable and exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise C.PEER_UNAVAILABLE(f"{peer} unreachable ({exc.code().name}): {unreachable}") from None
            raise Violation.relayed(exc, peer) from None

    def use_outbox(self, targets: dict[str, Target]) -> Outbox:
        """Give this node a durable outbox delivering to the given targets."""
        self.outbox = Outbox(self.store, targets, timeout=PEER_TIMEOUT)
        return self.outbox

    @property
    def municipality(self):
        """The municipality this node belongs to (its topology entry), or None."""
        return self.topology.municipality(self.node.municipality) if self.node.municipality else None

    def may_see_number(self, call: "CallContext") -> bool:
        """個人番号 is shown to nodes, and to operators with the permission on registered terminals."""
        if not call.is_terminal:
            return True
        return (call.session is not None and "individual_number" in call.session.roles
                and call.terminal in self.municipality.number_terminals)

    def background(self, coroutine_function) -> None:
        """Run coroutine_function() as a task while the server runs (batches, pollers)."""
        self._background.append(coroutine_function)

    def start_background(self) -> None:
        """Start the outbox and the background tasks once the server is up."""
        if self.outbox is not None:
            self.outbox.start()
        self._background.append(self._checkpoints)
        self._background.append(self.peer_watch.run)
        self._tasks = [asyncio.create_task(f(), name=f.__name__) for f in self._background]

    async def _checkpoints(self) -> None:
        """Publish a signed checkpoint of the audit log, and show its head to the witness, every few seconds."""
        while True:
            await asyncio.sleep(audit.CHECKPOINT_SECONDS)
            self.audit.checkpoint(show=False)
            if self.audit.unwitnessed:  # (from a thread: a slow or stopped witness never holds up the node's calls)
                await asyncio.to_thread(self.audit.show, self.audit.head_now())

    async def close(self) -> None:
        """Stop background work and deliveries, close peer channels, the store and the audit log."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.outbox is not None:
            await self.outbox.stop()
        for ch in self._channels.values():
            await ch.close()
        self.store.close()
        self.audit.close()


class OperationsServicer(ops_pb2_grpc.OperationsServicer):
    """Metrics every node answers to its domain's monitor."""

    def __init__(self, runtime: NodeRuntime):
        self.rt = runtime

    async def GetStatus(self, request, context):
        """Memory, outbox backlog, applied 更新順番号 (and, when asked, record counts) of this node."""
        status = ops_pb2.NodeStatus(node=self.rt.node.name, rss_mb=psutil.Process().memory_info().rss / 2**20,
                                    audit_entries=self.rt.audit.seq)
        if self.rt.outbox is not None:
            status.outbox_pending = self.rt.outbox.pending()
            status.blocked.extend(sorted(self.rt.outbox.blocked))
            status.dead_letters = sum(n for n, _ in self.rt.outbox.dead_letters().values())
            status.oldest_pending_seconds = max((age for _, age in self.rt.outbox.depths().values()), default=0.0)
        db = self.rt.store.db
        if db.execute("SELECT 1 FROM sqlite_master WHERE name='applied'").fetchone():
            status.applied.update(dict(db.execute("SELECT municipality_code, last_sequence FROM applied")))
        for table in COUNTED_TABLES if request.counts else ():
            if db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone():
                status.counts[table] = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        return status


    async def RunBatch(self, request, context):
        """A node's batch job on demand; nodes without one answer that they have none."""
        audit.set_subject(request.name)
        jobs = kinds.batches_of(self.rt.kind, self.rt.servicer)
        if request.name not in jobs:
            return ops_pb2.BatchResult(node=self.rt.node.name, name=request.name, detail="no such batch on this node")
        affected = jobs[request.name]()
        log.info("batch %s: %d records", request.name, affected)
        return ops_pb2.BatchResult(node=self.rt.node.name, name=request.name, affected=affected, detail="done")


def listen_address(address: str) -> str:
    """Where to listen for an address of the topology: on TESTBED_BIND's host instead when it is set (a node on
    several networks, in its own namespace or container, listens on all of them: TESTBED_BIND=0.0.0.0)."""
    host = os.environ.get(BIND_ENV)
    return f"{host}:{address.rsplit(':', 1)[1]}" if host else address


REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
REFLECTION_V1_FILE = "grpc/reflection/v1/reflection.proto"  # (upstream's name for it, as other servers report it)


def _reflection_v1_descriptor() -> None:
    """Put grpc.reflection.v1 into the default descriptor pool, made from v1alpha's descriptor."""
    # grpcio-reflection ships v1alpha alone (grpc/grpc#38576); v1 is the same protocol under a new package, field for
    # field, so the descriptor reflection describes it by is v1alpha's renamed.
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(REFLECTION_V1_FILE)
        return  # (already there: put by an earlier server of this process, or by a library that ships it)
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    old, new = reflection_pb2.DESCRIPTOR.package, REFLECTION_V1.rsplit(".", 1)[0]
    proto.name, proto.package = REFLECTION_V1_FILE, new
    for message in proto.message_type:
        for item in message.field:
            if item.type_name:  # (assigned even empty, it counts as set: a scalar field with one is invalid)
                item.type_name = item.type_name.replace(f".{old}.", f".{new}.")
    for method in proto.service[0].method:
        method.input_type = method.input_type.replace(f".{old}.", f".{new}.")
        method.output_type = method.output_type.replace(f".{old}.", f".{new}.")
    proto.options.java_package = "io.grpc.reflection.v1"
    proto.options.go_package = "google.golang.org/grpc/reflection/grpc_reflection_v1"
    proto.options.ClearField("deprecated")  # (v1alpha is the deprecated one)
    pool.AddSerializedFile(proto.SerializeToString())


class _ReflectionServicer(reflection.aio.ReflectionServicer):
    """grpcio-reflection's servicer, that finds the file of a method as well."""

    def _file_containing_symbol(self, request, fully_qualified_name):
        # The pool finds no method by its name (grpc/grpc#34743), so `grpcurl describe Service.Method` and a generic
        # client resolving a method would be told NOT_FOUND: a method's file is its service's.
        service, _, method = fully_qualified_name.rpartition(".")
        try:
            if method in self._pool.FindServiceByName(service).methods_by_name:
                fully_qualified_name = service
        except KeyError:
            pass  # (not a method: looked up as it is)
        return super()._file_containing_symbol(request, fully_qualified_name)


def enable_reflection(server: grpc.aio.Server, names) -> tuple[str, ...]:
    """Serve reflection of the services named as grpc.reflection.v1 and v1alpha; the names it lists (both included)."""
    # One servicer behind both: a v1 message is the same bytes as its v1alpha twin, so v1alpha's classes parse it.
    _reflection_v1_descriptor()
    names = tuple(names) + (REFLECTION_V1, reflection.SERVICE_NAME)
    servicer = _ReflectionServicer(names)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(REFLECTION_V1, {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo, request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString)}),))
    return names


OPERATIONS = ops_pb2.DESCRIPTOR.services_by_name["Operations"].full_name
HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


@dataclass(frozen=True)
class _Served:
    """What one process of a node serves, once its servicer is on the server: the services reflection lists (before
    reflection's own), the methods its metrics may name beside reflection's and health's (None: every method of
    those services), the services health reports serving (beside ""), and its gRPC and metrics addresses."""

    reflected: tuple[str, ...]
    methods: frozenset[str] | None
    healthy: tuple[str, ...]
    address: str
    metrics_address: str


def _serve_node(runtime: NodeRuntime, server: grpc.aio.Server) -> _Served:
    """The node's servicer, the services of its kind and Operations."""
    servicer = runtime.servicer = runtime.module.servicer(runtime)
    runtime.module.add_to_server(servicer, server)
    ops_pb2_grpc.add_OperationsServicer_to_server(OperationsServicer(runtime), server)
    # (a kind that migrates, kizon and atena, serves Migration beside its service: 移行)
    return _Served(runtime.kind.services[1:] + (runtime.kind.service, OPERATIONS), None, (runtime.kind.service,),
                   runtime.node.address, runtime.node.metrics_address)


def _serve_search(runtime: NodeRuntime, server: grpc.aio.Server) -> _Served:
    """The search process of the node: its kind's search servicer, for the search methods of the kind's service
    alone (any other method of the service is unknown here: UNIMPLEMENTED, method rule); no Operations."""
    end, service = runtime.kind.search, runtime.kind.service
    servicer = runtime.servicer = kinds.load_search(runtime.kind)(runtime)
    server.add_generic_rpc_handlers((methods_handler(servicer, service, end.methods),))
    return _Served((service,), frozenset(f"/{service}/{m}" for m in end.methods), (), runtime.node.search_address,
                   runtime.node.search_metrics_address)


def methods_handler(servicer, service: str, methods) -> grpc.GenericRpcHandler:
    """A handler of the named (unary) methods of a service alone, served by servicer's methods of the same names;
    the messages are the service's, from its descriptor."""
    described = descriptor_pool.Default().FindServiceByName(service)
    handlers = {}
    for name in methods:
        method = described.methods_by_name[name]
        if method.client_streaming or method.server_streaming:
            raise TypeError(f"/{service}/{name} streams: only unary methods are served alone")
        request = message_factory.GetMessageClass(method.input_type)
        reply = message_factory.GetMessageClass(method.output_type)
        handlers[name] = grpc.unary_unary_rpc_method_handler(getattr(servicer, name),
                                                             request_deserializer=request.FromString,
                                                             response_serializer=reply.SerializeToString)
    return grpc.method_handlers_generic_handler(service, handlers)


@asynccontextmanager
async def run_server(runtime: NodeRuntime, bind: str | None = None):
    """Start the node's gRPC server (or, for a runtime of its search process, the search process's); yield (server,
    port). Port 0 in bind picks a free port. Its connections, handshakes, idle connections, streams and message and
    metadata sizes are bounded (nodes/limits.py)."""
    server = grpc.aio.server(interceptors=[GuardInterceptor(runtime)], options=limits.server_options())
    served = (_serve_search if runtime.search else _serve_node)(runtime, server)
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    # Reflection as on every node (v1 and v1alpha): a generic client finds a search process's method as at the node.
    names = enable_reflection(server, served.reflected + (HEALTH,))
    labelled = metrics.methods_of(*names) if served.methods is None else (
        served.methods | metrics.methods_of(*names[len(served.reflected):]))
    runtime.metrics.serve_methods(labelled)  # the method labels there can be: these alone
    cert, key = runtime.pki.node_files(runtime.node.name, "server")
    port = server.add_secure_port(bind or listen_address(served.address),
                                  server_credentials(cert, key, runtime.pki.trust_bundle))
    await server.start()
    # the metrics endpoint beside it (on a free port of the same host when the caller chose where to bind)
    scrape = await metrics.serve(runtime, runtime.metrics,
                                 f"{bind.rsplit(':', 1)[0]}:0" if bind else listen_address(served.metrics_address))
    runtime.background(limits.give_back_memory)  # (what a flood of connections allocated goes back to the system)
    runtime.start_background()
    for name in ("",) + served.healthy:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("%s serving on port %d (at most %d connections, of %d open files)", runtime.label, port,
             limits.max_connections(), limits.open_files_limit())
    try:
        yield server, port
    finally:
        await health_servicer.enter_graceful_shutdown()
        scrape.close()
        await server.stop(grace=2.0)
        await runtime.close()


def search_argv(topology_path: Path | None, node_name: str, state_dir: Path, pki_dir: Path) -> list[str]:
    """The command line of a node's search process (nodes/search_process.py)."""
    return ([sys.executable, "-m", "nodes.search_process", "--node", node_name, "--state-dir", str(state_dir),
             "--pki-dir", str(pki_dir)] + (["--topology", str(topology_path)] if topology_path else []))


async def serve(topology, node_name: str, state_dir: Path, pki_dir: Path) -> None:
    """Run one node until SIGTERM or SIGINT, then stop cleanly."""
    if weaken.active():
        log.warning("WEAKENED ON PURPOSE (training mode, never for real use): %s",
                    "; ".join(f"{n}: {weaken.WEAKNESSES[n]}" for n in sorted(weaken.active())))
    runtime = NodeRuntime(topology, node_name, state_dir, pki_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    children = [Child(f"{node_name}.search", search_argv(topology.source, node_name, state_dir, pki_dir))
                if runtime.node.search_address else None]
    children = [c for c in children if c]

    def reload() -> None:  # a cut over: whom to admit has changed, here and in the children
        runtime.reload_topology()
        for child in children:
            child.signal(signal.SIGHUP)
    loop.add_signal_handler(signal.SIGHUP, reload)
    async with run_server(runtime):
        for child in children:  # (once the store's schema exists: a search process only reads it)
            child.start()
        watchers = [asyncio.create_task(child.watch()) for child in children]
        # What start-up allocated stays: keep it out of every later collection (fewer, shorter GC pauses).
        gc.collect()
        gc.freeze()
        await stop.wait()
        for task in watchers:
            task.cancel()
        for child in children:
            child.stop()
    log.info("%s stopped", node_name)
