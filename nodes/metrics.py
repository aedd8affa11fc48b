"""Prometheus metrics of a node (prometheus-client), served over HTTPS to its domain's monitor alone.

What a monitoring stack scrapes: gRPC calls served by method and gRPC status with their latency (histogram:
testbed_requests_total{method,code}, testbed_request_seconds{method}); the metrics endpoint's own HTTP requests
apart, by HTTP status (testbed_metrics_requests_total{http_code}, testbed_metrics_request_seconds), so that a code
label holds gRPC status names alone; per outbox target, items waiting and the age of the oldest; the highest
更新順番号 applied per municipality; audit entries; the store's size on disk; the process's CPU seconds and
resident memory. The endpoint is
`https://<node's metrics address>/metrics` with the node's own server certificate; a client must present
the monitor certificate of the node's trust domain (not revoked), anything else gets 403 and nothing else.
"""
from __future__ import annotations

import asyncio
import logging
import ssl
import time
from pathlib import Path

import grpc
import psutil
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from google.protobuf import descriptor_pool
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from certs.identity import KIND_DOMAIN, monitor_uri
from nodes import limits
from nodes.authn import AuthenticationError

log = logging.getLogger(__name__)
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MAX_REQUEST = limits.METRICS_MAX_REQUEST
SCRAPE = "/metrics"  # the one path the metrics endpoint serves
UNKNOWN = "unknown"  # the one method label of every call to a method the node does not serve
HTTP_STATUS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found"}
# Every code label of a gRPC call there can be: gRPC's status names. Anything else (there should be nothing else) is
# counted as UNKNOWN, so that no value from outside can add a series. The metrics endpoint's HTTP statuses are
# counted apart, under http_code (HTTP_CODES), never mixed with these.
CODES = frozenset(code.name for code in grpc.StatusCode)
HTTP_CODES = frozenset(str(status) for status in HTTP_STATUS)


def methods_of(*services: str) -> frozenset[str]:
    """The full method names (/package.Service/Method) of services, from their descriptors."""
    pool = descriptor_pool.Default()
    return frozenset(f"/{service}/{method.name}" for service in services
                     for method in pool.FindServiceByName(service).methods)


class NodeMetrics:
    """The metrics of one node: counters and histograms the runtime feeds, gauges read at each scrape. Labels come
    from fixed sets only: the methods the node serves (or "unknown") and the status codes there are; nothing a caller
    sends becomes a label."""

    def __init__(self, runtime):
        self.rt = runtime
        self.methods: frozenset[str] = frozenset()  # (the served methods are added as the server is built)
        disable_created_metrics()  # the *_created series say only when the process started
        self.registry = CollectorRegistry()
        self.requests = Counter("testbed_requests", "gRPC calls served, by method and gRPC status (code)",
                                ["method", "code"], registry=self.registry)
        self.latency = Histogram("testbed_request_seconds", "Time to serve a gRPC call, by method", ["method"],
                                 buckets=BUCKETS, registry=self.registry)
        self.scrapes = Counter("testbed_metrics_requests", "HTTP requests to the metrics endpoint, by HTTP status "
                               "(http_code)", ["http_code"], registry=self.registry)
        self.scrape_latency = Histogram("testbed_metrics_request_seconds", "Time to answer an HTTP request to the "
                                        "metrics endpoint", buckets=BUCKETS, registry=self.registry)
        self.refused_connections = Counter("testbed_metrics_connections_refused",
                                           "Connections to the metrics endpoint closed unserved: over its cap",
                                           registry=self.registry)
        self.registry.register(_Readings(runtime))

    def serve_methods(self, methods) -> None:
        """The methods the node's server serves: the only method labels besides "unknown"."""
        self.methods = frozenset(methods)

    def label(self, method: str) -> str:
        """The method label of a call: the method if the node serves it, else "unknown"."""
        return method if method in self.methods else UNKNOWN

    def observe(self, method: str, code: str, seconds: float) -> None:
        """One gRPC call served (or refused), under its method's label and its gRPC status name."""
        method = self.label(method)
        self.requests.labels(method, code if code in CODES else grpc.StatusCode.UNKNOWN.name).inc()
        self.latency.labels(method).observe(seconds)

    def observe_scrape(self, status: int, seconds: float) -> None:
        """One HTTP request to the metrics endpoint answered, under its HTTP status (one of HTTP_STATUS)."""
        self.scrapes.labels(str(status) if str(status) in HTTP_CODES else "400").inc()
        self.scrape_latency.observe(seconds)

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)


class _Readings:
    """Gauges read from the node's state at each scrape."""

    def __init__(self, runtime):
        self.rt = runtime
        self.process = psutil.Process()

    def collect(self):
        node = self.rt.label  # (NODE, or NODE.search for a CS's search process)
        depth = GaugeMetricFamily("testbed_outbox_items", "Items waiting in the outbox, by target", labels=["target"])
        age = GaugeMetricFamily("testbed_outbox_oldest_seconds", "Age of the oldest item waiting, by target",
                                labels=["target"])
        if self.rt.outbox is not None:
            for target, (count, oldest) in sorted(self.rt.outbox.depths().items()):
                depth.add_metric([target], count)
                age.add_metric([target], oldest)
        yield depth
        yield age
        dead = GaugeMetricFamily("testbed_outbox_dead_letters", "Items a receiver refused for good, set aside with its "
                                 "reason, by target (an alarm: someone must look at them)", labels=["target"])
        held = GaugeMetricFamily("testbed_outbox_blocked", "1 while a sequenced target is held by a refusal",
                                 labels=["target"])
        if self.rt.outbox is not None:
            letters = self.rt.outbox.dead_letters()
            for target in sorted(self.rt.outbox.targets):  # (the targets are the topology's: a fixed label set)
                dead.add_metric([target], letters.get(target, (0, ""))[0])
                held.add_metric([target], 1 if target in self.rt.outbox.blocked else 0)
        yield dead
        yield held
        applied = GaugeMetricFamily("testbed_applied_sequence", "Highest 更新順番号 applied, by municipality",
                                    labels=["municipality"])
        db = self.rt.store.db
        if db.execute("SELECT 1 FROM sqlite_master WHERE name='applied'").fetchone():
            for municipality, sequence in db.execute("SELECT municipality_code, last_sequence FROM applied"):
                applied.add_metric([municipality], sequence)
        yield applied
        yield CounterMetricFamily("testbed_audit_entries", "Entries in the audit chain", value=self.rt.audit.seq)
        size = sum(p.stat().st_size for p in _store_files(self.rt.store.path))
        yield GaugeMetricFamily("testbed_store_bytes", "Size of the node's store on disk (with its WAL)", value=size)
        cpu = self.process.cpu_times()
        yield CounterMetricFamily("testbed_process_cpu_seconds", "CPU time of the node process",
                                  value=cpu.user + cpu.system)
        yield GaugeMetricFamily("testbed_process_resident_bytes", "Resident memory of the node process",
                                value=self.process.memory_info().rss)
        scrubbed = CounterMetricFamily("testbed_scrub_records", "Stored records the scrubber has re-hashed", labels=["table"])
        passes = CounterMetricFamily("testbed_scrub_passes", "Passes of the scrubber over a whole table and its ranges",
                                     labels=["table"])
        damaged = CounterMetricFamily("testbed_scrub_damaged", "Records whose stored bytes no longer gave their kept "
                                      "digests, and ranges that did not hold what their records give (an alarm)",
                                      labels=["table", "what"])
        for scrubber in getattr(self.rt, "scrubbers", ()):  # (the node's own tables: a fixed label set)
            table = scrubber.tree.table
            scrubbed.add_metric([table], scrubber.done.records)
            passes.add_metric([table], scrubber.done.passes)
            damaged.add_metric([table, "record"], scrubber.done.damaged_records)
            damaged.add_metric([table, "range"], scrubber.done.damaged_ranges)
        yield scrubbed
        yield passes
        yield damaged
        info = GaugeMetricFamily("testbed_node_info", "The node this is", labels=["node", "kind", "identity"])
        info.add_metric([node, self.rt.node.kind, self.rt.node.identity], 1)
        yield info


def _store_files(path: Path):
    for suffix in ("", "-wal", "-shm"):
        candidate = Path(str(path) + suffix)
        if candidate.exists():
            yield candidate


def _context(runtime) -> ssl.SSLContext:
    cert, key = runtime.pki.node_files(runtime.node.name, "server")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    context.load_verify_locations(runtime.pki.trust_bundle)
    context.verify_mode = ssl.CERT_REQUIRED  # no client certificate, no handshake
    return context


def monitor_allowed(runtime, der: bytes | None) -> str:
    """"" if the peer is the monitor of this node's domain and not revoked, else why not."""
    if not der:
        return "no client certificate"
    cert = x509.load_der_x509_certificate(der)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    try:
        peer = runtime.authenticator.authenticate(pem)
    except AuthenticationError as exc:
        return str(exc)
    wanted = monitor_uri(KIND_DOMAIN[runtime.node.kind])
    if peer.identity.uri != wanted:
        return f"metrics rule: only {wanted} reads the metrics of {runtime.node.name}, not {peer.identity.uri}"
    return ""


async def serve(runtime, metrics: NodeMetrics, address: str) -> asyncio.AbstractServer:
    """Serve GET /metrics over HTTPS at address (host:port) to the domain's monitor. TLS starts only once a
    connection has a slot (limits.METRICS_MAX_CONNECTIONS, the rest closed at once), and each step has a deadline:
    the handshake, the request head and taking the answer, so that no connection holds a descriptor for long."""
    context = _context(runtime)
    open_connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_connections
        if open_connections >= limits.METRICS_MAX_CONNECTIONS:
            metrics.refused_connections.inc()
            writer.transport.abort()  # (no TLS yet: nothing to say, and nothing to wait for)
            return
        open_connections += 1
        answered = False
        try:
            answered = await _exchange(reader, writer)
        finally:
            open_connections -= 1
            # a client that took its answer gets a clean TLS close; any other is dropped now (a TLS close would wait
            # up to 30 s for a peer that does not read, its descriptor held after its slot was given back)
            writer.close() if answered else writer.transport.abort()

    async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """TLS, one request, its answer; whether the answer was taken."""
        try:
            await writer.start_tls(context, ssl_handshake_timeout=limits.METRICS_HANDSHAKE_SECONDS)
        except (OSError, ssl.SSLError, asyncio.TimeoutError, ConnectionError):
            return False  # (no client certificate, not TLS, or too slow: nothing is served, as before TLS was done)
        started = time.perf_counter()
        status, body = 400, b"bad request\n"
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), limits.METRICS_REQUEST_SECONDS)
            if len(head) > MAX_REQUEST:
                raise ValueError("request head too long")
            line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
            why = monitor_allowed(runtime, der)
            if why:
                status, body = 403, f"{why}\n".encode()
            elif len(line) == 3 and line[0] == "GET" and line[1].split("?")[0] == SCRAPE:
                status, body = 200, metrics.exposition()
            else:
                status, body = 404, b"only GET /metrics here\n"
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ValueError,
                ConnectionError, ssl.SSLError):
            pass
        finally:
            try:
                writer.write(f"HTTP/1.1 {status} {HTTP_STATUS[status]}\r\nContent-Type: text/plain; version=0.0.4; "
                             f"charset=utf-8\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                             + body)
                await asyncio.wait_for(writer.drain(), limits.METRICS_WRITE_SECONDS)
                answered = True
            except (ConnectionError, ssl.SSLError, RuntimeError, asyncio.TimeoutError):
                answered = False
            metrics.observe_scrape(status, time.perf_counter() - started)
        return answered

    host, port = address.rsplit(":", 1)
    # Plain TCP first: the handler counts the connection, then starts TLS itself (asyncio's own ssl= would run the
    # handshake before any code of ours could refuse a connection over the cap). The listen backlog is the cap too:
    # asyncio accepts up to a backlog of connections at a time before any handler runs.
    return await asyncio.start_server(handle, host, int(port), limit=MAX_REQUEST,
                                      backlog=limits.METRICS_MAX_CONNECTIONS)
