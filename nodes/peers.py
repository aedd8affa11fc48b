"""Servers checked as strictly as clients: a node refuses to send to a peer whose server certificate is
revoked or names another identity.

gRPC's Python client cannot run a check of its own on the server's certificate (DESIGN §11): the chain
and the DNS name are checked by TLS (each channel trusting only the issuing CA of the peer's domain),
and this watcher does the rest. It reads each peer's server certificate with a TLS handshake of its own
(again every 30 s, for a peer restarted with another certificate) and every 3 s checks its URI SAN
against the topology and its serial against the domain's CRL (re-read when the file changes). Calls to a peer that fails are refused on this side
(UNAVAILABLE, naming the rule) until the peer presents a good certificate again: nothing is sent to a
peer that cannot be authenticated (PIA Ⅲ(2)5).
"""
from __future__ import annotations

import asyncio
import functools
import logging
import socket
import ssl

import grpc
from cryptography import x509

from certs.identity import KIND_DOMAIN
from nodes.authn import AuthenticationError
from nodes.reasons import access as A
from nodes.refusal import trailers

log = logging.getLogger(__name__)

CHECK_SECONDS = 3.0  # how often each peer's certificate is held against the CRLs (cheap: no connection)
HANDSHAKE_SECONDS = 30.0  # how often each peer's certificate is read again (a handshake)
HANDSHAKE_TIMEOUT = 3.0


class PeerWatch:
    """The verdict on each peer's server certificate, kept fresh in the background."""

    def __init__(self, authenticator, client_cert, address_of=lambda node: node.address):
        self.authenticator = authenticator
        self.client_cert = client_cert
        self.address_of = address_of  # where a peer is reached (its link's relay, when links are relayed)
        self.peers: dict[str, object] = {}  # node name → topology node
        self.refused: dict[str, str] = {}  # node name → why nothing may be sent there
        self.certificates: dict[str, tuple[float, x509.Certificate]] = {}  # node name → (read at, certificate)

    def watch(self, node) -> None:
        """Check this peer from now on."""
        self.peers[node.name] = node

    def interceptors(self, node) -> list:
        """Client interceptors that refuse calls to the peer while its certificate is refused."""
        return gates(functools.partial(self._refusal, node.name))

    def _refusal(self, name: str) -> str:
        why = self.refused.get(name)
        return f"peer rule: nothing is sent to {name}: {why}" if why else ""

    async def run(self) -> None:
        """Check every peer now and then, for as long as the node runs."""
        while True:
            for name, node in list(self.peers.items()):
                verdict = await self.check(node)
                if verdict and self.refused.get(name) != verdict:
                    log.error("peer rule: nothing is sent to %s: %s", name, verdict)
                elif not verdict and name in self.refused:
                    log.info("peer rule: %s presents a good certificate again", name)
                if verdict:
                    self.refused[name] = verdict
                else:
                    self.refused.pop(name, None)
            await asyncio.sleep(CHECK_SECONDS)

    async def check(self, node) -> str:
        """"" if the peer's server certificate is acceptable, else why not (an unreachable peer is not judged)."""
        now = asyncio.get_running_loop().time()
        read_at, cert = self.certificates.get(node.name, (None, None))
        if cert is None or now - read_at > HANDSHAKE_SECONDS:
            try:
                der = await asyncio.wait_for(self._server_certificate(node), HANDSHAKE_TIMEOUT)
            except (OSError, ssl.SSLError, asyncio.TimeoutError):
                return self.refused.get(node.name, "")  # down or busy: keep what was known
            cert = x509.load_der_x509_certificate(der)
            self.certificates[node.name] = (now, cert)
        return judge_server(cert, node, self.authenticator)

    async def _server_certificate(self, node) -> bytes:
        host, port = self.address_of(node).rsplit(":", 1)
        _, writer = await asyncio.open_connection(host, int(port), ssl=_context(self.client_cert, node),
                                                  server_hostname=node.host_name)
        try:
            return writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        finally:
            writer.close()


def judge_server(cert: x509.Certificate, node, authenticator) -> str:
    """"" if a server certificate is the one the topology expects of node and not revoked, else why not."""
    try:
        uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        uris = []
    if uris != [node.identity]:
        return f"its server certificate names {uris or 'no identity'}, not {node.identity}"
    try:
        if authenticator.crls[KIND_DOMAIN[node.kind]].revoked(cert.serial_number):
            return f"its server certificate (serial {cert.serial_number}) is on the {KIND_DOMAIN[node.kind]} CRL"
    except AuthenticationError as exc:
        return str(exc)
    return ""


def check_server(node, client_cert, authenticator, timeout: float = HANDSHAKE_TIMEOUT) -> str:
    """The same judgement for a terminal or tool about to call node: a handshake of its own, then
    judge_server; "" when the node cannot be reached (the call itself will say so)."""
    host, port = node.address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as raw:
            with _context(client_cert, node).wrap_socket(raw, server_hostname=node.host_name) as tls:
                der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return ""
    return judge_server(x509.load_der_x509_certificate(der), node, authenticator)


def _context(client_cert, node) -> ssl.SSLContext:
    """A client context trusting only the issuing CA of node's trust domain, presenting client_cert."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(client_cert.trust.parent.parent / "ca" / KIND_DOMAIN[node.kind] / "ca.pem")
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.load_cert_chain(client_cert.cert, client_cert.key)
    context.set_alpn_protocols(["h2"])
    return context


def refused_locally(details: str) -> grpc.aio.AioRpcError:
    """A call refused before it is sent (the peer rule), carrying its rule as a server's refusal would."""
    violation = A.PEER_CERTIFICATE(details)
    trailing = grpc.aio.Metadata(*trailers(violation, "", details))
    return grpc.aio.AioRpcError(violation.code, grpc.aio.Metadata(), trailing, details=details)


def gates(refusal) -> list:
    """The asyncio client interceptors (one per kind of call) that refuse every call while refusal() names a
    reason ("" lets the call through): the peer rule, for a node's peers and a tool's channels alike."""
    return [gate(refusal) for gate in (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)]


class _Gate:
    """Refuses calls while its refusal() says why (asyncio channels take one interceptor class per kind of call)."""

    def __init__(self, refusal):
        self.refusal = refusal

    def refuse_if_refused(self) -> None:
        why = self.refusal()
        if why:
            raise refused_locally(why)


class _UnaryUnary(_Gate, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, details, request):
        self.refuse_if_refused()
        return await continuation(details, request)


class _UnaryStream(_Gate, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, details, request):
        self.refuse_if_refused()
        return await continuation(details, request)


class _StreamUnary(_Gate, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation, details, request_iterator):
        self.refuse_if_refused()
        return await continuation(details, request_iterator)


class _StreamStream(_Gate, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation, details, request_iterator):
        self.refuse_if_refused()
        return await continuation(details, request_iterator)
