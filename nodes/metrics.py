"""Prometheus metrics of a node (prometheus-client), served over HTTPS to its domain's monitor alone.

What a monitoring stack scrapes: calls served by method and status with their latency (histogram); per
outbox target, items waiting and the age of the oldest; the highest 更新順番号 applied per municipality;
audit entries; the store's size on disk; the process's CPU seconds and resident memory. The endpoint is
`https://<node's metrics address>/metrics` with the node's own server certificate; a client must present
the monitor certificate of the node's trust domain (not revoked), anything else gets 403 and nothing else.
"""
from __future__ import annotations

import asyncio
import logging
import ssl
import time
from pathlib import Path

import psutil
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from certs.identity import KIND_DOMAIN, monitor_uri
from nodes.authn import AuthenticationError

log = logging.getLogger(__name__)
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MAX_REQUEST = 8192  # bytes of an HTTP request head: a scrape is one short GET


class NodeMetrics:
    """The metrics of one node: counters and histograms the runtime feeds, gauges read at each scrape."""

    def __init__(self, runtime):
        self.rt = runtime
        disable_created_metrics()  # the *_created series say only when the process started
        self.registry = CollectorRegistry()
        self.requests = Counter("testbed_requests", "Calls served, by method and status", ["method", "code"],
                                registry=self.registry)
        self.latency = Histogram("testbed_request_seconds", "Time to serve a call, by method", ["method"],
                                 buckets=BUCKETS, registry=self.registry)
        self.registry.register(_Readings(runtime))

    def observe(self, method: str, code: str, seconds: float) -> None:
        """One call served (or refused)."""
        self.requests.labels(method, code).inc()
        self.latency.labels(method).observe(seconds)

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
    """Serve GET /metrics over HTTPS at address (host:port) to the domain's monitor."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        started = time.perf_counter()
        status, body = 400, b"bad request\n"
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            if len(head) > MAX_REQUEST:
                raise ValueError("request head too long")
            line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
            why = monitor_allowed(runtime, der)
            if why:
                status, body = 403, f"{why}\n".encode()
            elif len(line) == 3 and line[0] == "GET" and line[1].split("?")[0] == "/metrics":
                status, body = 200, metrics.exposition()
            else:
                status, body = 404, b"only GET /metrics here\n"
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ValueError,
                ConnectionError, ssl.SSLError):
            pass
        finally:
            reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found"}[status]
            try:
                writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                             f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
                await writer.drain()
                writer.close()
            except (ConnectionError, ssl.SSLError, RuntimeError):
                pass
            metrics.observe("/metrics", str(status), time.perf_counter() - started)

    host, port = address.rsplit(":", 1)
    return await asyncio.start_server(handle, host, int(port), ssl=_context(runtime), limit=MAX_REQUEST)
