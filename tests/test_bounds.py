"""Bounds, tried as an outside attacker would: unknown method names sent to grow the metrics, idle TCP connections
that never start TLS held open to exhaust a node's file descriptors, and an operator session signed with the
municipality's session key for someone the roster does not name. Each attack runs against real node processes
(a network of its own), bounded in count and time on loopback, while a counter terminal keeps working; the node's
resident memory and the counter's latency are printed (pytest -s), never asserted as timings."""
from __future__ import annotations

import select
import socket
import statistics
import threading
import time
from contextlib import contextmanager

import grpc
import psutil
import pytest
from grpc import StatusCode as Code

from conftest import network_of_its_own
from helpers import key, move_in_from_abroad, poll as wait_for, refused
from nodes import limits
from nodes.guard import SESSION_KEY
from nodes.sessions import issue_session
from protos import common_pb2, cs_pb2_grpc, identity_pb2, kizon_pb2, kizon_pb2_grpc
from testbed.client import Counter, bad_cert, channel, fetch_metrics, monitor_cert, terminal_cert
from testbed.kit import ready

A = "142140"
MB = 2**20
UNKNOWN_CALLS = 2_000  # unknown method names sent (the attacker sent 20,000; 2,000 show the growth as well)
NAME_LENGTH = 1_500  # characters of each name, as the attacker sent them
GRPC_FLOOD = 1_500  # idle connections to a gRPC port: more than the node admits (limits.MAX_CONNECTIONS)
METRICS_FLOOD = 600  # idle connections to a metrics port: many times what it admits (limits.METRICS_MAX_CONNECTIONS)
SETTLE = 20 * MB  # what a node may keep after an attack is over, above what it held before (limits.TRIM_GROWTH + 4 MB)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """A network of its own: the attacks load its nodes, which no other test should feel."""
    yield from network_of_its_own(tmp_path_factory, "bounds")


@pytest.fixture(scope="module")
def resident(net):
    """The 住民票コード of a resident of 伊勢原市, for the counter's calls during the attacks."""
    with Counter(net, A) as clerk:
        return move_in_from_abroad(clerk).resident_code


def rss(pid: int) -> int:
    """Resident memory of a process."""
    return psutil.Process(pid).memory_info().rss


def fds(pid: int) -> int:
    """Open file descriptors of a process."""
    return psutil.Process(pid).num_fds()


def search_pid(net) -> int:
    """The process of the CS's search process (a child of the CS)."""
    children = psutil.Process(net.pid(f"cs-{A}")).children()
    return next(p.pid for p in children if "nodes.search_process" in " ".join(p.cmdline()))


class Counting(threading.Thread):
    """A counter terminal calling over its open channel again and again while an attack runs: every call's
    latency and failure, and the node's peak memory and descriptors, sampled between calls."""

    def __init__(self, call, pid: int):
        super().__init__(daemon=True)
        self.call, self.pid = call, pid
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.peak_rss = self.peak_fds = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            started = time.perf_counter()
            try:
                self.call()
                self.latencies.append(time.perf_counter() - started)
            except grpc.RpcError as exc:
                self.failures.append(f"{exc.code().name}: {exc.details()}")
            self.sample()
            self.done.wait(0.02)

    def sample(self) -> None:
        """Note the node's memory and descriptors now."""
        self.peak_rss = max(self.peak_rss, rss(self.pid))
        self.peak_fds = max(self.peak_fds, fds(self.pid))

    def stop(self) -> None:
        """End the calls; wait for the thread."""
        self.done.set()
        self.join(30)

    def summary(self) -> str:
        """The calls' latencies in ms (median, max) and how many failed."""
        if not self.latencies:
            return f"no call answered; {len(self.failures)} failed"
        return (f"{len(self.latencies)} calls, median {statistics.median(self.latencies) * 1e3:.1f} ms, "
                f"max {max(self.latencies) * 1e3:.1f} ms, {len(self.failures)} failed")


@contextmanager
def counting(call, pid: int):
    """A Counting thread around the block: its figures once the block is over."""
    probe = Counting(call, pid)
    call()  # (the channel is up before the attack starts)
    probe.start()
    try:
        yield probe
    finally:
        probe.stop()


def series(body: str) -> list[str]:
    """The series of an exposition."""
    return [line.rsplit(" ", 1)[0] for line in body.splitlines() if line and not line.startswith("#")]


def scrape(node, net) -> tuple[str, float]:
    """GET /metrics as the domain's monitor: (body, seconds it took)."""
    started = time.perf_counter()
    status, body = fetch_metrics(node, monitor_cert(net.pki, node.kind), timeout=60)
    assert status == 200, body[:200]
    return body, time.perf_counter() - started


# -- 1. metrics as a memory bomb ----------------------------------------------------------------------------------
def test_unknown_method_names_grow_no_metric_label(net, resident):
    """2,000 calls to distinct unknown methods of 1,500 characters, half with a revoked certificate, half from the
    domain's monitor (admitted, then UNIMPLEMENTED: no such method): the counter's calls are answered throughout, every attack call
    is counted under the one "unknown" method label, /metrics stays a few hundred series, the audit keeps only a
    bounded prefix of each name, and kizon's memory comes back."""
    kizon = net.topology.find("kizon", A)
    pid = net.pid(kizon.name)
    body, _ = scrape(kizon, net)
    before_series, before_rss = len(series(body)), rss(pid)
    revoked, monitor = bad_cert(net.pki, "revoked"), monitor_cert(net.pki, "kizon")
    codes: dict[str, int] = {}
    with Counter(net, A) as clerk, counting(lambda: clerk(clerk.kizon.GetResident, key(resident), timeout=30),
                                            pid) as probe:
        started = time.perf_counter()
        for half, cert in enumerate((revoked, monitor)):
            with channel(kizon, cert) as ch:
                pending = []
                for i in range(UNKNOWN_CALLS // 2):
                    name = f"/testbed.v1.Kizon/{half}{i:05d}".ljust(len("/testbed.v1.Kizon/") + NAME_LENGTH, "x")
                    pending.append(ch.unary_unary(name).future(b"", timeout=60))
                    if len(pending) >= 64:  # a window of calls in flight, as a client pipelines them
                        for call in pending:
                            codes[call.code().name] = codes.get(call.code().name, 0) + 1
                        pending.clear()
                        probe.sample()
                for call in pending:
                    codes[call.code().name] = codes.get(call.code().name, 0) + 1
        attack_seconds = time.perf_counter() - started
        body, scrape_seconds = scrape(kizon, net)
        probe.sample()
    after = series(body)
    settled = wait_for(lambda: (r := rss(pid)) <= before_rss + SETTLE and r, 15, "kizon's memory to come back")
    entries = net.audit_file(kizon.name).read_text(encoding="utf-8").splitlines()[-UNKNOWN_CALLS:]
    print(f"\n[unknown methods] {UNKNOWN_CALLS} calls in {attack_seconds:.1f} s: {codes}; counter during the attack: "
          f"{probe.summary()}; kizon RSS {before_rss / MB:.0f} MB before, {probe.peak_rss / MB:.0f} MB peak, "
          f"{settled / MB:.0f} MB after; /metrics {before_series} → {len(after)} series, {len(body) / 1024:.0f} KiB, "
          f"scraped in {scrape_seconds * 1e3:.0f} ms; longest audit line {max(map(len, entries))} characters")
    assert codes == {"UNAUTHENTICATED": UNKNOWN_CALLS // 2, "UNIMPLEMENTED": UNKNOWN_CALLS // 2}, codes
    assert probe.latencies and not probe.failures, probe.failures[:3]
    assert "xxxxxxxxxx" not in body and len(after) < before_series + 100, len(after)
    unknown = [s for s in after if s.startswith('testbed_requests_total{') and 'method="unknown"' in s]
    assert {s.split('code="')[1].split('"')[0] for s in unknown} == {"UNAUTHENTICATED", "UNIMPLEMENTED"}, unknown
    assert all(len(line) < 1_000 for line in entries), "an audit entry keeps the whole of a caller's method name"


# -- 2. connections that never start TLS --------------------------------------------------------------------------
def open_idle(host: str, port: int, count: int) -> list[socket.socket]:
    """count TCP connections that send nothing (no TLS ClientHello): what a connection flood holds open."""
    held = []
    for _ in range(count):
        try:
            held.append(socket.create_connection((host, int(port)), timeout=3))
        except OSError:
            break  # (the listen queue is full: the server is not accepting)
    return held


def closed_by_server(held: list[socket.socket]) -> int:
    """How many of the connections the server has closed (EOF or reset seen on the socket)."""
    poller = select.poll()
    for s in held:
        poller.register(s, select.POLLIN | select.POLLERR | select.POLLHUP)
    ready = {fd for fd, _ in poller.poll(0)}
    closed = 0
    for s in held:
        if s.fileno() in ready:
            try:
                closed += s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
            except BlockingIOError:
                pass
            except OSError:  # reset
                closed += 1
    return closed


def flood(host: str, port: int, count: int, pid: int, timeout: float) -> tuple[int, int, float | None]:
    """Hold count idle connections. Returns how many were opened, the most descriptors the node held above what it
    held before (sampled all along), and the seconds from the last connection opened until the node had closed every
    one of them (None if not within timeout). Every connection is closed on this side at the end."""
    held = []
    before = fds(pid)
    sampler = Counting(lambda: None, pid)  # (no calls: only its samples, every 20 ms)
    sampler.start()
    try:
        for _ in range(0, count, 100):
            held += open_idle(host, port, min(100, count - len(held)))
        started = time.perf_counter()
        deadline = time.monotonic() + timeout
        while (closed := closed_by_server(held)) < len(held) and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(held), sampler.peak_fds - before, (time.perf_counter() - started if closed == len(held) else None)
    finally:
        sampler.stop()
        for s in held:
            s.close()


def grpc_ends(net, resident):
    """(label, node as reached, pid, a counter's call) of each gRPC server attacked: kizon and the CS's search
    process."""
    cs = net.topology.find("cs", A)
    search = cs.search_end()
    return {"kizon": (net.topology.find("kizon", A), lambda: net.pid(f"kizon-{A}"),
                      lambda clerk: clerk(clerk.kizon.GetResident, key(resident), timeout=30)),
            "cs.search": (search, lambda: search_pid(net),
                          lambda clerk: clerk(clerk.cs.SearchIdentity, identity_pb2.IdentitySearch(
                              resident_code=resident), timeout=30))}


@pytest.mark.parametrize("end", ["kizon", "cs.search"])
def test_idle_connections_without_a_certificate_do_not_exhaust_the_node(net, resident, end):
    """1,500 TCP connections that never send a ClientHello: the node holds no more than its connection cap of them
    (the rest are closed as they come), closes every one once the handshake timeout has passed, answers the counter
    throughout on its open channel, admits a new terminal once they are gone, and gives its memory back."""
    node, pid_of, call = grpc_ends(net, resident)[end]
    pid = pid_of()
    host, port = node.address.rsplit(":", 1)
    before_rss, before_fds = rss(pid), fds(pid)
    cap = limits.max_connections()
    with Counter(net, A) as clerk, counting(lambda: call(clerk), pid) as probe:
        opened, most, seconds = flood(host, port, GRPC_FLOOD, pid, limits.HANDSHAKE_TIMEOUT_MS / 1000 + 15)
    with Counter(net, A, "T0002", "OP0002") as newcomer:  # a terminal that connects only now
        call(newcomer)
    settled = wait_for(lambda: (r := rss(pid)) <= before_rss + SETTLE and r, 15, f"{end}'s memory to come back")
    print(f"\n[idle connections → {end}] {opened} opened, at most {most} more descriptors held by the node (of "
          f"{before_fds}), all closed after {seconds if seconds is None else round(seconds, 1)} s (cap {cap}, "
          f"handshake timeout {limits.HANDSHAKE_TIMEOUT_MS} ms); counter: "
          f"{probe.summary()}; RSS {before_rss / MB:.0f} MB before, {probe.peak_rss / MB:.0f} MB peak, "
          f"{settled / MB:.0f} MB after")
    assert opened == GRPC_FLOOD
    assert 0 < most <= cap + 50, f"{end} held {most} connections (its cap is {cap})"
    assert seconds is not None, "connections that never began TLS were not closed by the handshake timeout"
    assert probe.latencies and not probe.failures, probe.failures[:3]


def test_idle_connections_to_the_metrics_port_are_capped_and_timed_out(net):
    """600 TCP connections to kizon's metrics port that never send a ClientHello: the endpoint holds at most its cap,
    closes the rest as they come and every one after its handshake timeout, and the monitor scrapes again."""
    kizon = net.topology.find("kizon", A)
    pid = net.pid(kizon.name)
    host, port = kizon.metrics_address.rsplit(":", 1)
    before_fds = fds(pid)
    cap = limits.METRICS_MAX_CONNECTIONS
    opened, most, seconds = flood(host, port, METRICS_FLOOD, pid, limits.METRICS_HANDSHAKE_SECONDS + 15)
    body, scrape_seconds = scrape(kizon, net)
    print(f"\n[idle connections → kizon metrics] {opened} opened, at most {most} more descriptors held by the node, "
          f"all closed after {seconds if seconds is None else round(seconds, 1)} s (cap {cap}, handshake timeout "
          f"{limits.METRICS_HANDSHAKE_SECONDS} s); scrape after: {scrape_seconds * 1e3:.0f} ms")
    assert opened == METRICS_FLOOD
    # (asyncio accepts up to its listen backlog, the cap, at each turn of its loop, and the handler that refuses a
    # connection runs a few turns after its accept: a fast flood is held at a few times the cap for a moment)
    assert 0 < most <= 5 * cap + 20, f"the metrics endpoint held {most} connections (its cap is {cap})"
    assert seconds is not None, "connections that never began TLS were not closed by the handshake timeout"
    refused = [float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
               if line.startswith("testbed_metrics_connections_refused_total ")]
    assert refused and refused[0] >= 1, "the connections over the cap are not counted"


# -- the other channel arguments, as gRPC core applies them --------------------------------------------------------
def test_oversized_metadata_and_messages_never_reach_the_guard(net, resident):
    """Metadata over limits.ABSOLUTE_MAX_METADATA_SIZE and a request over limits.MAX_RECEIVE_MESSAGE are refused by
    gRPC core itself (RESOURCE_EXHAUSTED), before any code of the node runs; the counter goes on."""
    with Counter(net, A) as clerk:
        with pytest.raises(grpc.RpcError) as caught:
            clerk(clerk.kizon.GetResident, key(resident),
                  metadata=(("x-padding", "p" * limits.ABSOLUTE_MAX_METADATA_SIZE),))
        assert caught.value.code() in (Code.RESOURCE_EXHAUSTED, Code.INTERNAL), caught.value.details()
        body = b"\x0a" + b"\xff\xff\xff\x02" + b"x" * (limits.MAX_RECEIVE_MESSAGE + 1)  # (one huge field)
        with pytest.raises(grpc.RpcError) as caught:
            clerk._channels[0].unary_unary("/testbed.v1.Kizon/GetResident")(body, metadata=clerk.metadata, timeout=30)
        assert caught.value.code() == Code.RESOURCE_EXHAUSTED, caught.value.details()
        assert clerk(clerk.kizon.GetResident, key(resident)).resident_code == resident


def test_grpc_honours_the_stream_and_idle_limits():
    """On a server built with limits.server_options() (the idle time shortened to 300 ms to be seen here): as many
    calls at once on one connection as MAX_CONCURRENT_STREAMS all run; past it no more than that run at once (grpcio
    refuses the rest, UNAVAILABLE, rather than queue them); and an idle connection is closed by the server (the
    client's channel goes back to IDLE, and its next call reconnects)."""
    import asyncio
    options = [(k, 300 if k == "grpc.max_connection_idle_ms" else v) for k, v in limits.server_options()]
    running = most = 0

    async def slow(request, context):
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.3)
        running -= 1
        return b""

    async def burst(call, count: int) -> dict[str, int]:
        codes: dict[str, int] = {}
        for result in await asyncio.gather(*(call(b"", timeout=30) for _ in range(count)), return_exceptions=True):
            name = result.code().name if isinstance(result, grpc.RpcError) else "OK"
            codes[name] = codes.get(name, 0) + 1
        return codes

    async def main():
        nonlocal most
        server = grpc.aio.server(options=options)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.T", {
            "Slow": grpc.unary_unary_rpc_method_handler(slow)}),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                call = ch.unary_unary("/t.T/Slow")
                await call(b"", timeout=10)  # (the server's SETTINGS, with its stream limit, are known from here on)
                at_limit = await burst(call, limits.MAX_CONCURRENT_STREAMS)
                most_at_limit, most = most, 0
                past = await burst(call, limits.MAX_CONCURRENT_STREAMS + 100)
                deadline = time.monotonic() + 10
                while ch.get_state() != grpc.ChannelConnectivity.IDLE and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                idle = ch.get_state()
                await call(b"", timeout=10)
                return at_limit, most_at_limit, past, idle
        finally:
            await server.stop(None)

    at_limit, most_at_limit, past, idle = asyncio.run(main())
    print(f"\n[channel arguments] {limits.MAX_CONCURRENT_STREAMS} calls at once on one connection: {at_limit}, "
          f"{most_at_limit} running at once; {limits.MAX_CONCURRENT_STREAMS + 100}: {past}, {most} running at once; "
          f"an idle channel became {idle.name}")
    # (all of them answered; how many ran at the very same moment depends on the scheduler, never more than the limit)
    assert at_limit == {"OK": limits.MAX_CONCURRENT_STREAMS} and most_at_limit <= limits.MAX_CONCURRENT_STREAMS
    assert most <= limits.MAX_CONCURRENT_STREAMS and set(past) <= {"OK", "UNAVAILABLE"}, past
    assert idle == grpc.ChannelConnectivity.IDLE


# -- 3. a session for someone the roster does not name --------------------------------------------------------------
def forged_session(net, operator: str, roles, terminal: str = "T0001") -> tuple[tuple[str, str], ...]:
    """Session metadata signed with the municipality's own session key (as an attacker holding it would sign) for
    operator with roles, bound to the terminal's real certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    cert = terminal_cert(net.pki, A, terminal)
    fingerprint = x509.load_pem_x509_certificate(cert.cert.read_bytes()).fingerprint(hashes.SHA256()).hex()
    token, _ = issue_session(net.pki.session_signing_key(A), operator, roles, A, terminal, fingerprint)
    return ((SESSION_KEY, token),)


@pytest.mark.parametrize("operator,roles,code,rule", [
    ("OP9999", ["clerk", "manager", "individual_number"], Code.UNAUTHENTICATED, "is not an operator of"),
    ("OP0002", ["clerk", "manager", "individual_number"], Code.PERMISSION_DENIED, "holds no role"),
], ids=["not in the roster", "roles beyond the roster's"])
def test_a_session_the_roster_does_not_back_is_refused(net, resident, operator, roles, code, rule):
    """A well-signed session for OP9999 (no such operator), or for OP0002 (a clerk) claiming manager and 個人番号,
    is refused at kizon and at the CS naming the operator rule, and audited; OP0001's own session still works."""
    metadata = forged_session(net, operator, roles)
    cert = terminal_cert(net.pki, A, "T0001")
    with channel(net.topology.find("kizon", A), cert) as ch:
        assert ready(ch, 30)  # (a handshake a loaded machine did not finish in time is not what is tested here)
        with refused(code, "operator rule", rule):
            kizon_pb2_grpc.KizonStub(ch).GetResident(key(resident), metadata=metadata, timeout=10)
        with refused(code, "operator rule", rule):
            kizon_pb2_grpc.KizonStub(ch).ApproveBulkOutput(kizon_pb2.BulkApprovalRequest(
                purpose="統計", max_records=10, requester_operator_id="OP0001", terminal_id="T0001"),
                metadata=metadata, timeout=10)
    with channel(net.topology.find("cs", A), cert) as ch:
        assert ready(ch, 30)
        with refused(code, "operator rule", rule):
            cs_pb2_grpc.CommunicationServerStub(ch).GetPoolStatus(common_pb2.Empty(), metadata=metadata, timeout=10)
    entries = net.audit_file(f"kizon-{A}").read_text(encoding="utf-8").splitlines()[-5:]
    assert any(f'"operator":"{operator}"' in e and f'"status":"{code.name}"' in e for e in entries), entries
    with Counter(net, A) as clerk:
        assert clerk(clerk.kizon.GetResident, key(resident)).resident_code == resident


UNKNOWN_FIELD_CALLS = 40  # requests of nearly 4 MiB of unknown fields each (over a million fields apiece)
# What parsing and refusing them may cost beyond receiving as many 4 MiB requests at all: measured at about 90 MB
# of peak (the node's allocator keeps the arenas of a million-field parse for a while), in a node of ~60 MB at rest.
FLOOD_MARGIN = 192 * MB  # over the other flood (40 × 4 MiB in flight): 100 MB apart alone, 150 MB on a loaded machine


def test_a_flood_of_unknown_fields_costs_little_and_is_refused(net, resident):
    """kizon's own certificate floods its CS with update batches made of a million three-byte unknown fields each (the
    most the message size allows): every one is refused under MESSAGE_UNKNOWN_FIELD, naming only the first fields;
    the counter's 本人確認 at the CS goes on meanwhile; the CS's peak memory is that of receiving as many 4 MiB
    requests that the policy refuses unread (gRPC's own buffers), within FLOOD_MARGIN."""
    from google.protobuf.internal import encoder
    from nodes.reasons import access as R
    from testbed.client import node_cert
    field = encoder._VarintBytes((900 << 3) | 0) + b"\x01"  # field 900, varint 1: three bytes
    body = identity_pb2.IdentityUpdateBatch(municipality_code=A).SerializeToString() + field * (
        (limits.MAX_RECEIVE_MESSAGE - 64) // len(field))
    pid = net.pid(f"cs-{A}")
    peaks = {}
    for method, code, reason in (("PurgeExpiredCertificates", Code.PERMISSION_DENIED, None),  # (kizon may not call it)
                                 ("SubmitIdentityUpdates", Code.INVALID_ARGUMENT, R.MESSAGE_UNKNOWN_FIELD.reason)):
        with Counter(net, A) as clerk, counting(lambda: clerk(clerk.cs.GetIdentity, key(resident)), pid) as probe, \
                channel(net.topology.find("cs", A), node_cert(net.pki, f"kizon-{A}")) as ch:
            send = ch.unary_unary(f"/testbed.v1.CommunicationServer/{method}")
            started = time.perf_counter()
            for _ in range(UNKNOWN_FIELD_CALLS):
                with pytest.raises(grpc.RpcError) as caught:
                    send(body, timeout=60)
                assert caught.value.code() == code, caught.value.details()
                assert len(caught.value.details()) < 600  # (the first fields named, not a million)
                probe.sample()
            per_call = (time.perf_counter() - started) / UNKNOWN_FIELD_CALLS
        assert not probe.failures, probe.failures[:3]
        peaks[method] = probe.peak_rss
        print(f"\n{method}: {UNKNOWN_FIELD_CALLS} requests of {len(body) / MB:.1f} MiB, {per_call * 1e3:.0f} ms each "
              f"to refuse; counter meanwhile: {probe.summary()}; CS RSS peak {probe.peak_rss / MB:.0f} MB")
    with refused(Code.INVALID_ARGUMENT, "#900", reason=R.MESSAGE_UNKNOWN_FIELD.reason), \
            channel(net.topology.find("cs", A), node_cert(net.pki, f"kizon-{A}")) as ch:
        ch.unary_unary("/testbed.v1.CommunicationServer/SubmitIdentityUpdates")(body, timeout=60)
    assert peaks["SubmitIdentityUpdates"] <= peaks["PurgeExpiredCertificates"] + FLOOD_MARGIN, peaks
