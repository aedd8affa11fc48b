"""Client side helpers: channels to nodes with a chosen certificate, the way terminals and tools call."""
from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from certs.identity import KIND_DOMAIN
from certs.pki import PKI
from nodes.authn import Authenticator
from nodes.peers import check_server, gates, refused_locally
from nodes.reasons import access as A
from nodes.guard import OPERATOR_KEY, REQUEST_KEY, SESSION_KEY
from nodes.sessions import APPROVAL_DOORS, CS_READ_APPROVAL_KEY, READ_APPROVAL_KEY
from nodes.tls import ClientCert, aio_channel, pinned, sync_channel
from protos import cs_pb2_grpc, kizon_pb2, kizon_pb2_grpc, koseki_pb2_grpc, ops_pb2, ops_pb2_grpc
from testbed import requests


def terminal_cert(pki: PKI, municipality: str, terminal: str) -> ClientCert:
    """The certificate of a counter terminal."""
    return ClientCert(*pki.client_files(f"terminal-{municipality}-{terminal}"), pki.trust_bundle)


def monitor_cert(pki: PKI, node_kind: str) -> ClientCert:
    """The monitor certificate of the trust domain a node kind belongs to."""
    return ClientCert(*pki.client_files(f"monitor-{KIND_DOMAIN[node_kind]}"), pki.trust_bundle)


def console_cert(pki: PKI, node_kind: str) -> ClientCert:
    """The operations console certificate of the trust domain a node kind belongs to (runs batches)."""
    return ClientCert(*pki.client_files(f"console-{KIND_DOMAIN[node_kind]}"), pki.trust_bundle)


def node_cert(pki: PKI, node_name: str) -> ClientCert:
    """A node's own client certificate (to call as that node would)."""
    return ClientCert(*pki.node_files(node_name, "client"), pki.trust_bundle)


def named_cert(pki: PKI, name: str) -> ClientCert:
    """A client certificate by folder name under clients/ (e.g. 'infonws')."""
    return ClientCert(*pki.client_files(name), pki.trust_bundle)


def bad_cert(pki: PKI, case: str) -> ClientCert:
    """A certificate of the bad-certificate kit."""
    return ClientCert(*pki.bad_files(case), pki.trust_bundle)


class PeerRefused(grpc.RpcError):
    """A call not sent: the server presented a revoked or misnamed certificate (the peer rule, PEER_CERTIFICATE)."""

    def __init__(self, details: str):
        super().__init__(details)
        self._details = details

    def code(self):
        return A.PEER_CERTIFICATE.code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return refused_locally(self._details).trailing_metadata()


class _RefuseAll(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                 grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Refuses every call on a blocking channel to a server that failed the peer rule."""

    def __init__(self, details: str):
        self.details = details

    def _refuse(self, *args):
        raise PeerRefused(self.details)

    intercept_unary_unary = intercept_unary_stream = intercept_stream_unary = intercept_stream_stream = _refuse


_authenticators: dict[Path, Authenticator] = {}


def server_verdict(node, cert: ClientCert) -> str:
    """"" if node presents the server certificate the topology expects, not revoked; else the peer rule's
    reason (terminals and tools check servers as strictly as servers check them)."""
    pki_dir = cert.trust.parent.parent
    if pki_dir not in _authenticators:
        _authenticators[pki_dir] = Authenticator(pki_dir)
    why = check_server(node, cert, _authenticators[pki_dir])
    return f"peer rule: nothing is sent to {node.name}: {why}" if why else ""


def channel(node, cert: ClientCert, verify_server: bool = True) -> grpc.Channel:
    """A blocking mTLS channel to a node, trusting only the issuing CA of the node's trust domain; with
    verify_server, calls are refused (UNAVAILABLE, peer rule) if the node's certificate is revoked or names
    another identity."""
    ch = sync_channel(node.address, node.host_name, pinned(cert, KIND_DOMAIN[node.kind]))
    why = server_verdict(node, cert) if verify_server else ""
    return grpc.intercept_channel(ch, _RefuseAll(why)) if why else ch


def async_channel(node, cert: ClientCert, verify_server: bool = True, interceptors=None) -> grpc.aio.Channel:
    """An asyncio mTLS channel to a node, trusting only the issuing CA of the node's trust domain; with
    verify_server, calls are refused as by channel() when the node's certificate fails the peer rule."""
    why = server_verdict(node, cert) if verify_server else ""
    refusing = gates(lambda: why) if why else []
    return aio_channel(node.address, node.host_name, pinned(cert, KIND_DOMAIN[node.kind]),
                       interceptors=(refusing + list(interceptors or ())) or None)


def operator_metadata(operator: str) -> tuple[tuple[str, str], ...]:
    """Call metadata that names the operator at a terminal."""
    return ((OPERATOR_KEY, operator),)


async def check_health(node, cert: ClientCert, timeout: float = 1.0) -> bool:
    """Whether a node answers SERVING to a health check over mTLS."""
    async with async_channel(node, cert, verify_server=False) as ch:  # polled often; a health check sends nothing
        try:
            reply = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        except grpc.aio.AioRpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


class NotYet(grpc.RpcError):
    """Raised inside eventually(): what is awaited has not arrived yet (retried like NOT_FOUND)."""

    def code(self):
        return grpc.StatusCode.NOT_FOUND


def eventually(call, timeout: float = 10.0, codes=(grpc.StatusCode.NOT_FOUND,), pause: float = 0.05):
    """Retry call while it answers one of codes (by default NOT_FOUND: an update still on its way through
    the outboxes; UNAVAILABLE for a peer just restarted), bounded by timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except grpc.RpcError as exc:
            if exc.code() not in codes or time.monotonic() > deadline:
                raise
        time.sleep(pause)


def cs_stub(cs_channel, search_channel=None) -> cs_pb2_grpc.CommunicationServerStub:
    """A terminal's stub of its CS: 本人確認情報検索 goes to the CS's search process (its own port, the same
    identity), so that it never queues behind the updates; every other call goes to the CS itself."""
    stub = cs_pb2_grpc.CommunicationServerStub(cs_channel)
    if search_channel is not None:
        stub.SearchIdentity = cs_pb2_grpc.CommunicationServerStub(search_channel).SearchIdentity
    return stub


class Counter:
    """A counter terminal (窓口端末 / 統合端末) with an operator logged in: kizon and CS stubs and the session."""

    def __init__(self, network, municipality: str, terminal: str = "T0001", operator: str = "OP0001", interceptors=(),
                 reads: int = 0):
        cert, ends = terminal_ends(network, municipality, terminal)
        self.network, self.municipality, self.terminal, self.operator = network, municipality, terminal, operator
        self._channels = [channel(end, cert) for end in ends]
        calls = [grpc.intercept_channel(ch, *interceptors) if interceptors else ch for ch in self._channels]
        self.kizon = kizon_pb2_grpc.KizonStub(calls[0])
        self.cs = cs_stub(*calls[1:])
        self.koseki = None  # the 戸籍 counter's stub, where the topology has a 戸籍 system
        try:
            koseki = network.topology.find("koseki", municipality)
        except KeyError:
            pass
        else:
            self._channels.append(channel(koseki, cert))
            self.koseki = koseki_pb2_grpc.FamilyRegisterSystemStub(self._channels[-1])
        self.session = self.kizon.Login(login_request(network, municipality, operator), timeout=10)
        approvals = bulk_approval(network, municipality, operator, terminal, READS_PURPOSE, reads,
                                  spent_at=APPROVAL_DOORS) if reads else ()
        self.metadata = session_metadata(self.session.token, *approvals)

    def __call__(self, method, request, *, request_id: str | None = None, metadata=(), timeout: float = 30):
        """Call a stub method of this terminal with the operator's session."""
        extra = ((REQUEST_KEY, request_id),) if request_id else ()
        return method(requests.with_notifier(request), metadata=self.metadata + extra + tuple(metadata), timeout=timeout)

    def close(self) -> None:
        """Close the terminal's channels."""
        for ch in self._channels:
            ch.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


MANAGER = ("T0003", "OP0003")  # the terminal and operator that approve bulk output in the default topology
# What the testbed's own terminals ask a manager to approve when they stand for a whole office's counter work
# (a replay, a load test, a test suite): the reads of more people than one clerk may see without approval.
APPROVAL_ATTEMPTS = 3  # an approval asked of a node that could not finish the handshake (a machine saturated)
READS_PURPOSE = "testbed: 窓口業務の照会 (an office's counter work through one operator id)"


def bulk_approval(network, municipality: str, operator: str, terminal: str, purpose: str, max_records: int,
                  manager: tuple[str, str] = MANAGER, spent_at: str | tuple[str, ...] = "kizon"):
    """A manager's approval token for one bulk output by operator at terminal (PIA Ⅲ(2)3), spent at one door
    (kizon, or reads at the CS); given several doors, a token for each, in their order (one login of the manager)."""
    doors = (spent_at,) if isinstance(spent_at, str) else spent_at
    with Counter(network, municipality, *manager) as approver:
        tokens = tuple(approver(approver.kizon.ApproveBulkOutput, kizon_pb2.BulkApprovalRequest(
            purpose=purpose, max_records=max_records, requester_operator_id=operator, terminal_id=terminal,
            spent_at=door)).token for door in doors)
    return tokens[0] if isinstance(spent_at, str) else tokens


async def async_bulk_approval(network, municipality: str, operator: str, terminal: str, purpose: str, max_records: int,
                              manager: tuple[str, str] = MANAGER, spent_at: str | tuple[str, ...] = "kizon"):
    """bulk_approval() from an asyncio program; a node too busy to finish a handshake is asked again (3 times)."""
    doors = (spent_at,) if isinstance(spent_at, str) else spent_at
    for attempt in range(APPROVAL_ATTEMPTS):
        try:
            kizon, _, metadata, channels = await async_login(network, municipality, *manager)
            try:
                tokens = tuple([(await kizon.ApproveBulkOutput(kizon_pb2.BulkApprovalRequest(
                    purpose=purpose, max_records=max_records, requester_operator_id=operator, terminal_id=terminal,
                    spent_at=door), metadata=metadata, timeout=30)).token for door in doors])
            finally:
                for ch in channels:
                    await ch.close()
            return tokens[0] if isinstance(spent_at, str) else tokens
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or attempt == APPROVAL_ATTEMPTS - 1:
                raise
            await asyncio.sleep(1.0 + attempt)
    raise AssertionError("no attempt was made")  # (APPROVAL_ATTEMPTS is at least 1)


async def async_login(network, municipality: str, terminal: str, operator: str, interceptors=None, reads: int = 0):
    """(kizon stub, cs stub, session metadata, channels) of an asyncio terminal; with reads, the metadata carries a
    manager's standing approval for that many people's records (see Counter)."""
    cert, ends = terminal_ends(network, municipality, terminal)
    channels = [async_channel(end, cert, interceptors=interceptors) for end in ends]
    kizon = kizon_pb2_grpc.KizonStub(channels[0])
    session = await kizon.Login(login_request(network, municipality, operator), timeout=10)
    approvals = await async_bulk_approval(network, municipality, operator, terminal, READS_PURPOSE, reads,
                                          spent_at=APPROVAL_DOORS) if reads else ()
    return kizon, cs_stub(*channels[1:]), session_metadata(session.token, *approvals), channels


def terminal_ends(network, municipality: str, terminal: str) -> tuple[ClientCert, list]:
    """A terminal's certificate and what it connects to: kizon, the CS, and the CS's search process if it has one."""
    cs = network.topology.find("cs", municipality)
    ends = [network.topology.find("kizon", municipality), cs] + ([cs.search_end()] if cs.search_address else [])
    return terminal_cert(network.pki, municipality, terminal), ends


def login_request(network, municipality: str, operator: str) -> kizon_pb2.LoginRequest:
    """The Login of an operator of the network's roster, with the credential the PKI holds for them."""
    credential = network.pki.operators(municipality)[operator]["credential"]
    return kizon_pb2.LoginRequest(operator_id=operator, credential=credential)


def session_metadata(token: str, approval: str = "", cs_approval: str = "") -> tuple[tuple[str, str], ...]:
    """Call metadata of a logged-in operator: the session and, beyond the bulk-output limit, a manager's standing
    approvals of the reads (PIA Ⅲ(2)3): one spent at kizon, one at the CS (each door reads its own key)."""
    return ((SESSION_KEY, token),) + (((READ_APPROVAL_KEY, approval),) if approval else ()) + (
        ((CS_READ_APPROVAL_KEY, cs_approval),) if cs_approval else ())


def node_status(network, node, counts: bool = False) -> object:
    """A node's operations status (metrics), read with its domain's monitor certificate; record counts
    only when asked for, since they scan every table."""
    # polled (every 0.1 s while a load drains): no handshake of its own each time; a status read sends nothing
    with channel(node, monitor_cert(network.pki, node.kind), verify_server=False) as ch:
        return ops_pb2_grpc.OperationsStub(ch).GetStatus(ops_pb2.StatusRequest(counts=counts), timeout=10)


def default_state_dir() -> Path:
    """The testbed's working folder: $TESTBED_HOME or ./.testbed."""
    return Path(os.environ.get("TESTBED_HOME", ".testbed")).resolve()


def fetch_metrics(node, cert: ClientCert, timeout: float = 5.0) -> tuple[int, str]:
    """GET /metrics of a node over HTTPS with a client certificate: (HTTP status, body)."""
    import http.client
    import socket
    import ssl
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(pinned(cert, KIND_DOMAIN[node.kind]).trust)
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.load_cert_chain(cert.cert, cert.key)
    host, port = node.metrics_address.rsplit(":", 1)
    conn = http.client.HTTPSConnection(host, int(port), context=context, timeout=timeout)
    # the server's own DNS name is checked, whatever address it is reached at
    conn.sock = context.wrap_socket(socket.create_connection((host, int(port)), timeout), server_hostname=node.host_name)
    try:
        conn.request("GET", "/metrics")
        reply = conn.getresponse()
        return reply.status, reply.read().decode("utf-8", errors="replace")
    finally:
        conn.close()
