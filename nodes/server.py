"""A node's process: its gRPC server behind the guard (the node's servicer, or its search process's), health,
reflection, metrics and the children it runs, from start to a clean stop."""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc

from nodes import kinds, limits, metrics, weaken
from nodes.children import Child
from nodes.guard import GuardInterceptor
from nodes.health import HealthServicer
from nodes.operations import OperationsServicer
from nodes.reflection import enable_reflection
from nodes.runtime import BIND_ENV, NodeRuntime
from nodes.tls import server_credentials
from protos import ops_pb2, ops_pb2_grpc

log = logging.getLogger("nodes.runtime")  # (the name the nodes' logs have always carried)


def listen_address(address: str) -> str:
    """Where to listen for an address of the topology: on TESTBED_BIND's host instead when it is set (a node on
    several networks, in its own namespace or container, listens on all of them: TESTBED_BIND=0.0.0.0)."""
    host = os.environ.get(BIND_ENV)
    return f"{host}:{address.rsplit(':', 1)[1]}" if host else address


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
