"""The shared node runtime: mTLS server, authentication, default-deny authorization, audit,
health checking, reflection, the durable store, peer channels and clean shutdown.

A node module supplies only its servicer; everything here is the same for all of them.
"""
from __future__ import annotations

import asyncio
import contextvars
import gc
import importlib
import json
import logging
import os
import signal
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import psutil
from cryptography import x509
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from certs.identity import KIND_DOMAIN, parse
from certs.pki import PKI, write_private
from nodes import NODE_MODULES, audit, metrics, weaken
from nodes.authn import AuthenticationError, Authenticator
from nodes.metrics import NodeMetrics
from nodes.outbox import Outbox, Target
from nodes.peers import PeerWatch
from nodes.sessions import OperatorSession, TokenError, check_session
from nodes.policy import Decision, authorize
from nodes.rules import Violation, check_message_text
from nodes.store import Store
from nodes.tls import ClientCert, aio_channel, pinned, server_credentials
from nodes.weaken import weakened
from protos import migration_pb2, ops_pb2, ops_pb2_grpc

log = logging.getLogger(__name__)

OPERATOR_KEY = "x-operator-id"
TERMINAL_KEY = "x-terminal-id"
SESSION_KEY = "x-operator-session"
APPROVAL_KEY = "x-approval-token"
REQUEST_KEY = "x-request-id"
LOGIN_METHOD = "/testbed.v1.Kizon/Login"
BIND_ENV = "TESTBED_BIND"
CLIENT_KINDS = {"terminal", "kiosk", "infonws", "portal", "monitor", "console"}  # callers that are not nodes
# What a migration target not yet cut over to may call: the reads of the verification (移行 rule).
TARGET_METHODS = frozenset({"/testbed.v1.CommunicationServer/RegisterDigests", "/testbed.v1.CommunicationServer/GetIdentity",
                            "/testbed.v1.CommunicationServer/CheckConsistency", "/grpc.health.v1.Health/Check"})
COUNTED_TABLES = ("residents", "identity", "code_pool", "delivery", "entries", "copies", "move_out_certificates")
PEER_TIMEOUT = 10.0  # seconds a node waits on a peer's answer


_call_var: contextvars.ContextVar = contextvars.ContextVar("call")


def checkpoints_path(state_dir: Path, node_name: str) -> Path:
    """Where a node publishes its audit checkpoints: outside its own data folder."""
    return Path(state_dir) / "checkpoints" / f"{node_name}.jsonl"


def current_call() -> "CallContext":
    """The authenticated caller of the call being served."""
    return _call_var.get()


@dataclass
class CallContext:
    """What the interceptor learned about the caller, handed to the servicer."""

    peer: object
    method: str = ""
    operator: str = ""
    terminal: str = ""
    session: OperatorSession | None = None
    metadata: dict = field(default_factory=dict)

    @property
    def is_terminal(self) -> bool:
        """Whether a counter terminal (not another node) is calling."""
        return self.peer.identity.kind == "terminal"

    def require_role(self, roles: set[str], rule: str) -> None:
        """At a terminal, the operator must hold one of roles (nodes calling each other are not asked)."""
        if self.is_terminal and not (self.session is not None and roles & set(self.session.roles)):
            raise Violation(grpc.StatusCode.PERMISSION_DENIED, f"{rule}: operator {self.operator or '?'} needs the role "
                            f"{' or '.join(sorted(roles))}")


class NodeRuntime:
    """Everything a servicer needs: its node, the topology, store, audit log, outbox and peers."""

    def __init__(self, topology, node_name: str, state_dir: str | Path, pki_dir: str | Path):
        self.topology = topology
        self.node = topology.node(node_name)
        self.identity = parse(self.node.identity)
        self.state_dir = Path(state_dir)
        self.pki = PKI(pki_dir)
        data = self.state_dir / "data" / node_name
        self.module = importlib.import_module(NODE_MODULES[self.node.kind])
        self.store = Store(data / "store.sqlite", self.module.SCHEMA)
        cert_path, key_path = self.pki.node_files(node_name, "client")
        public_key = x509.load_pem_x509_certificate(cert_path.read_bytes()).public_key()
        audit_key = b"" if weakened("audit-key") else self.pki.audit_key(node_name, create=True)
        self.audit = audit.AuditLog(data / "audit.jsonl", node_name, audit_key,
                                    checkpoints_path(self.state_dir, node_name), audit.Signer(key_path.read_bytes()),
                                    public_key)
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
        self.servicer = None
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
                                                         pinned(self.client_cert, KIND_DOMAIN[node.kind]),
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
                raise Violation(grpc.StatusCode.UNAVAILABLE, f"{peer} unreachable ({exc.code().name}): {unreachable}") from None
            raise Violation(exc.code(), f"{peer}: {exc.details()}") from None

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
        """Publish a signed checkpoint of the audit log every few seconds while entries are added."""
        while True:
            await asyncio.sleep(audit.CHECKPOINT_SECONDS)
            self.audit.checkpoint()

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


class GuardInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates and authorizes every call, then writes its audit entry (default deny)."""

    def __init__(self, runtime: NodeRuntime):
        self.runtime = runtime
        self._guarded: dict[str, grpc.RpcMethodHandler] = {}  # one wrapped handler per method, made once
        self._verdicts: dict[tuple, str] = {}  # (caller identity, method) → "" (allowed) or the refusal

    async def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        guarded = self._guarded.get(method)
        if guarded is None:
            handler = await continuation(handler_call_details)
            if handler is None:  # an unknown method: still authenticated and audited (not cached: names are free)
                return grpc.unary_unary_rpc_method_handler(self._unknown(method))
            guarded = self._guarded[method] = self._wrap(handler, method)
        return guarded

    def _wrap(self, handler, method: str):
        """The handler behind authentication: it receives the request's bytes and parses them only once the
        caller has been authenticated and authorized (a refused caller's body is never deserialized)."""
        parse = handler.request_deserializer or (lambda data: data)
        serialize = handler.response_serializer
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(self._wrap_unary(handler.unary_unary, method, parse),
                                                       response_serializer=serialize)
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(self._wrap_stream(handler.stream_stream, method, _each(parse)),
                                                         response_serializer=serialize)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(self._wrap_stream(handler.unary_stream, method, parse),
                                                        response_serializer=serialize)
        return grpc.stream_unary_rpc_method_handler(self._wrap_unary(handler.stream_unary, method, _each(parse)),
                                                    response_serializer=serialize)

    def _unknown(self, method: str):
        async def unknown(request, context):
            async with self._guard(context, method):
                raise Violation(grpc.StatusCode.UNIMPLEMENTED, f"method rule: {method} is not a method of "
                                f"{self.runtime.node.name}")
        return unknown

    def _admit(self, context, method: str) -> CallContext:
        """Authenticate the peer and apply the policy; raise (code, message) on refusal."""
        auth = context.auth_context()
        pem = (auth.get("x509_pem_cert") or [None])[0]
        try:
            peer = self.runtime.authenticator.authenticate(pem)
        except AuthenticationError as exc:
            raise _Refusal(grpc.StatusCode.UNAUTHENTICATED, str(exc), "") from None
        call = CallContext(peer, method)
        key = (peer.identity, method)
        verdict = self._verdicts.get(key)
        if verdict is None:  # the policy is static: decide once per (caller, method)
            try:
                authorize(self.runtime.identity, peer.identity, method)
                verdict = ""
            except Decision as exc:
                verdict = str(exc)
            self._verdicts[key] = verdict
        if verdict:
            raise _Refusal(grpc.StatusCode.PERMISSION_DENIED, verdict, peer.identity.uri)
        if peer.target and method not in TARGET_METHODS:
            raise _Refusal(grpc.StatusCode.PERMISSION_DENIED, f"移行 rule: {peer.identity.uri} is a migration target "
                           f"not yet cut over to: it may only read ({method} is not a read)", peer.identity.uri)
        call.metadata = dict(context.invocation_metadata() or ())
        if peer.identity.kind == "kiosk":
            call.terminal = peer.identity.terminal
        if peer.identity.kind == "terminal" and not method.startswith("/grpc."):
            self._admit_operator(call, method)
        return call

    def _admit_operator(self, call: CallContext, method: str) -> None:
        """A terminal call needs a valid operator session for this very terminal (DESIGN §3)."""
        peer, metadata = call.peer, call.metadata
        call.terminal = peer.identity.terminal
        claimed_terminal = metadata.get(TERMINAL_KEY)
        if claimed_terminal and claimed_terminal != call.terminal:
            raise _Refusal(grpc.StatusCode.PERMISSION_DENIED,
                           f"terminal rule: {TERMINAL_KEY} {claimed_terminal} is not the certificate's terminal {call.terminal}",
                           peer.identity.uri, call)
        claimed_operator = metadata.get(OPERATOR_KEY, "")
        if method == LOGIN_METHOD:
            return  # the operator is known once Login has checked the credential (it sets call.operator)
        token = metadata.get(SESSION_KEY)
        key = self.runtime.session_keys.get(peer.identity.municipality)
        if not token or key is None:
            raise _Refusal(grpc.StatusCode.UNAUTHENTICATED,
                           f"operator rule: a terminal call must carry an operator session ({SESSION_KEY}) from Login",
                           peer.identity.uri, CallContext(peer, method, claimed_operator[:32], call.terminal))
        try:
            call.session = check_session(key, token, peer.identity.municipality, call.terminal, peer.fingerprint)
        except TokenError as exc:
            code = grpc.StatusCode.PERMISSION_DENIED if "terminal" in str(exc) else grpc.StatusCode.UNAUTHENTICATED
            raise _Refusal(code, f"session rule: {exc}", peer.identity.uri,
                           CallContext(peer, method, claimed_operator[:32], call.terminal)) from None
        call.operator = call.session.operator
        if claimed_operator and claimed_operator != call.operator:
            raise _Refusal(grpc.StatusCode.PERMISSION_DENIED,
                           f"operator rule: {OPERATOR_KEY} {claimed_operator} is not the session's operator {call.operator}",
                           peer.identity.uri, call)

    def _record(self, call: CallContext | None, caller: str, method: str, status: str) -> None:
        self.runtime.audit.append(
            caller=caller, method=method, status=status, subject=audit.subject_var.get(),
            operator=call.operator if call else "", terminal=call.terminal if call else "",
        )

    @asynccontextmanager
    async def _guard(self, context, method: str):
        """Admit the call or abort it; answer rule violations with their status; audit it either way."""
        audit.subject_var.set("")
        started = time.perf_counter()
        try:
            call = self._admit(context, method)
        except _Refusal as refusal:
            self._record(refusal.call, refusal.caller, method, refusal.code.name)
            self.runtime.metrics.observe(method, refusal.code.name, time.perf_counter() - started)
            await context.abort(refusal.code, refusal.message)
        _call_var.set(call)
        status = "OK"
        try:
            yield
        except Violation as violation:
            status = violation.code.name
            await context.abort(violation.code, str(violation), violation.trailing or ())
        except BaseException:
            code = context.code()
            status = code.name if isinstance(code, grpc.StatusCode) else "CANCELLED"
            raise
        finally:
            self._record(call, call.peer.identity.uri, method, status)
            self.runtime.metrics.observe(method, status, time.perf_counter() - started)

    def _wrap_unary(self, behavior, method, parse):
        async def guarded(request, context):
            async with self._guard(context, method):
                return await behavior(_parsed(parse, request, method), context)
        return guarded

    def _wrap_stream(self, behavior, method, parse):
        async def guarded(request_or_iterator, context):
            async with self._guard(context, method):
                async for item in behavior(_parsed(parse, request_or_iterator, method), context):
                    yield item
        return guarded


def _parsed(parse, data, method: str):
    """The request parsed from its bytes; a malformed body is INVALID_ARGUMENT naming the method. What a client
    (terminal, kiosk, platform client, operations) sends has every text item checked here, once, for every
    method: sizes and characters (nodes check what other nodes send by the rules of each item)."""
    try:
        message = parse(data)
    except Violation:
        raise
    except Exception:  # protobuf's DecodeError, or any parser's own
        raise Violation(grpc.StatusCode.INVALID_ARGUMENT, f"message rule: the request is not a valid message for "
                        f"{method}") from None
    call = _call_var.get(None)
    if call is not None and call.peer.identity.kind in CLIENT_KINDS and hasattr(message, "ListFields"):
        check_message_text(message)
    return message


def _each(parse):
    """A parser for a stream of requests: each item parsed as it arrives, after authentication."""
    def parse_stream(iterator):
        async def items():
            async for data in iterator:
                yield _parsed(parse, data, "this stream")
        return items()
    return parse_stream


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
        jobs = getattr(self.rt.servicer, "batches", lambda: {})()
        if request.name not in jobs:
            return ops_pb2.BatchResult(node=self.rt.node.name, name=request.name, detail="no such batch on this node")
        affected = jobs[request.name]()
        log.info("batch %s: %d records", request.name, affected)
        return ops_pb2.BatchResult(node=self.rt.node.name, name=request.name, affected=affected, detail="done")


class _Refusal(Exception):
    def __init__(self, code, message, caller, call=None):
        super().__init__(message)
        self.code, self.message, self.caller, self.call = code, message, caller, call


def listen_address(address: str) -> str:
    """Where to listen for an address of the topology: on TESTBED_BIND's host instead when it is set (a node on
    several networks, in its own namespace or container, listens on all of them: TESTBED_BIND=0.0.0.0)."""
    host = os.environ.get(BIND_ENV)
    return f"{host}:{address.rsplit(':', 1)[1]}" if host else address


@asynccontextmanager
async def run_server(runtime: NodeRuntime, bind: str | None = None):
    """Start the node's gRPC server; yield (server, port). Port 0 in bind picks a free port."""
    server = grpc.aio.server(interceptors=[GuardInterceptor(runtime)],
                             options=[("grpc.so_reuseport", 0)])
    servicer = runtime.servicer = runtime.module.Servicer(runtime)
    runtime.module.add_to_server(servicer, server)
    ops_pb2_grpc.add_OperationsServicer_to_server(OperationsServicer(runtime), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if hasattr(servicer, "site"):  # kizon and atena: the Migration service (移行)
        names_extra = (migration_pb2.DESCRIPTOR.services_by_name["Migration"].full_name,)
    else:
        names_extra = ()
    names = names_extra + (runtime.module.SERVICE_NAME, ops_pb2.DESCRIPTOR.services_by_name["Operations"].full_name,
             health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    cert, key = runtime.pki.node_files(runtime.node.name, "server")
    port = server.add_secure_port(bind or listen_address(runtime.node.address),
                                  server_credentials(cert, key, runtime.pki.trust_bundle))
    await server.start()
    # the metrics endpoint beside it (on a free port of the same host when the caller chose where to bind)
    scrape = await metrics.serve(runtime, runtime.metrics,
                                 f"{bind.rsplit(':', 1)[0]}:0" if bind else listen_address(runtime.node.metrics_address))
    runtime.start_background()
    for name in ("", runtime.module.SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("%s serving on port %d", runtime.node.name, port)
    try:
        yield server, port
    finally:
        await health_servicer.enter_graceful_shutdown()
        scrape.close()
        await server.stop(grace=2.0)
        await runtime.close()


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
    loop.add_signal_handler(signal.SIGHUP, runtime.reload_topology)  # a cut over: whom to admit has changed
    async with run_server(runtime):
        # What start-up allocated stays: keep it out of every later collection (fewer, shorter GC pauses).
        gc.collect()
        gc.freeze()
        await stop.wait()
    log.info("%s stopped", node_name)
