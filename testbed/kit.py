"""The attacker's kit, shared by the probe and the conformance suite: a call's status and rule, whether the guard
refused it, a call of any method with an empty request, a bare TLS handshake at one version, and certificates
minted for a run by the PKI's own CA (as a careless or compromised issuer would) and revoked when it ends."""
from __future__ import annotations

import shutil
import socket
import ssl
import tempfile
import warnings
from pathlib import Path

import grpc
from cryptography import x509
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2

from certs.identity import DOMAINS, parse
from certs.pki import cert_pem, issue_leaf, key_pem, write_private, write_public
from nodes import kinds
from nodes.policy import Decision, authorize
from nodes.reasons import access as A
from nodes.refusal import rule_of
from nodes.tls import ClientCert

REFUSED = "refused"
HANDSHAKE = {"expired", "not_yet_valid", "rogue_ca", "no_client_auth"}
# The rules by which authentication or the policy refuse (any other answer means the caller was let in).
POLICY_RULES = frozenset(r.reason for r in (A.DEFAULT_DENY, A.SCOPE, A.TRUST_DOMAIN, A.NEVER_CALLS, A.KIT_IDENTITY))
AUTHN_RULES = frozenset(r.reason for r in (A.CERTIFICATE_REQUIRED, A.CERTIFICATE_IDENTITY, A.CERTIFICATE_KEY_USAGE,
                                           A.CERTIFICATE_ISSUER, A.CERTIFICATE_KEY_SIZE, A.CERTIFICATE_NOT_IN_TOPOLOGY,
                                           A.CERTIFICATE_REVOKED, A.REVOCATION_UNKNOWN))
CALL_TIMEOUT = 5.0
CRL_RELOAD = 2.0  # seconds a node may take to refuse a certificate just revoked (it re-reads a changed CRL)
CONNECT_TRIES = 3  # an allowed call that found no connection is tried again this many times, each once connected


def status_of(call) -> tuple[grpc.StatusCode, str, str]:
    """(status code, message with the rule id in front, rule id) of a call (OK, "", "" when it succeeds)."""
    try:
        call()
    except grpc.RpcError as exc:
        reason = rule_of(exc)
        return exc.code(), f"[{reason}] {exc.details() or ''}" if reason else exc.details() or "", reason
    return grpc.StatusCode.OK, "", ""


def refused_by_guard(code: grpc.StatusCode, reason: str) -> bool:
    """Whether authentication or the policy refused the call (rather than the application answering)."""
    if code == grpc.StatusCode.UNAVAILABLE:
        return True
    if code == grpc.StatusCode.UNAUTHENTICATED and reason in AUTHN_RULES:
        return True
    return code == grpc.StatusCode.PERMISSION_DENIED and reason in POLICY_RULES


def ready(ch, timeout: float = CALL_TIMEOUT) -> bool:
    """Whether the channel connects within timeout (a refused or slow handshake is retried by the channel)."""
    try:
        grpc.channel_ready_future(ch).result(timeout=timeout)
        return True
    except grpc.FutureTimeoutError:
        return False


def _path(method) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def call_any(ch, method) -> tuple[grpc.StatusCode, str, str]:
    """Call a method with an empty request, whatever its kind of streaming."""
    path = _path(method)
    if method.client_streaming and method.server_streaming:
        return status_of(lambda: next(iter(ch.stream_stream(path)(iter(()), timeout=CALL_TIMEOUT)), None))
    if method.client_streaming:
        return status_of(lambda: ch.stream_unary(path)(iter(()), timeout=CALL_TIMEOUT))
    if method.server_streaming:
        return status_of(lambda: next(iter(ch.unary_stream(path)(b"", timeout=CALL_TIMEOUT)), None))
    return status_of(lambda: ch.unary_unary(path)(b"", timeout=CALL_TIMEOUT))


def kit_rule(case: str) -> str:
    """The rule a case of the bad-certificate kit exercises."""
    return {"expired": "certificate validity", "not_yet_valid": "certificate validity", "rogue_ca": "trust anchor",
            "no_client_auth": "clientAuth key usage", "revoked": "crl", "wrong_domain": "trust-domain separation",
            "wrong_municipality": "same-municipality rule", "wrong_role": "default deny / kit rule"}[case]


def handshake(node, cert: ClientCert | None, version, ciphers: str | None = None, trust: Path | None = None
               ) -> tuple[bool, str]:
    """Whether a TLS handshake (with this client certificate, at exactly this version) completes."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with warnings.catch_warnings():  # offering the old versions is the point of the test
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = version
    if version < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("ALL:@SECLEVEL=0")
    if ciphers:
        context.set_ciphers(ciphers)
    context.load_verify_locations(cert.trust if cert else trust)
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # the trust anchor is the domain's issuing CA
    context.set_alpn_protocols(["h2"])
    if cert is not None:
        context.load_cert_chain(cert.cert, cert.key)
    host, port = node.address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=CALL_TIMEOUT) as raw:
            with context.wrap_socket(raw, server_hostname=node.host_name) as tls:
                # TLS 1.3 reports a refused client certificate only after the handshake: the server then closes
                # the connection (an empty read) instead of sending its HTTP/2 settings.
                tls.settimeout(2.0)
                try:
                    first = tls.recv(1)
                except socket.timeout:
                    first = b"?"  # nothing said either way: counted as let in
                if not first:
                    return False, "the server closed the connection after the handshake"
                return True, tls.version() or ""
    except (ssl.SSLError, OSError) as exc:
        return False, str(exc)[:120]


def methods_of(kind: str) -> list:
    """Every method a node of a kind serves: its service's, the operations service's, and the health check."""
    module = kinds.load(kind)  # (its module puts its service's descriptor in the pool)
    pool = descriptor_pool.Default()
    methods = [m for name in (module.service_name, kinds.OPERATIONS_SERVICE) for m in pool.FindServiceByName(name).methods]
    return methods + [health_pb2.DESCRIPTOR.services_by_name["Health"].methods_by_name["Check"]]


def policy_clients(pki) -> list[tuple[str, ClientCert]]:
    """(identity, certificate) of every client identity the PKI issued in the trust domains."""
    return [(e["identity"], ClientCert(pki.dir / e["cert"], pki.dir / e["key"], pki.trust_bundle))
            for e in pki.index() if e["role"] == "client" and e["domain"] in DOMAINS]


def policy_decision(server, caller, path: str):
    """The rule by which the policy refuses caller at path, or None where it lets it in."""
    try:
        authorize(server, caller, path)
    except Decision as decision:
        return decision.rule
    return None


def policy_differences(ch, node, identity: str, methods) -> list[str]:
    """Each method where the node, called on ch as identity with an empty request, does otherwise than the policy
    says (let in where it refuses, or refused by the guard where it allows)."""
    server, caller, wrong = parse(node.identity), parse(identity), []
    # The unary methods are called all at once on the channel (the node answers them side by side; one after
    # another, a matrix of 9,000 calls spent most of its time waiting), the streaming ones one at a time.
    sent = {method: ch.unary_unary(_path(method)).future(b"", timeout=CALL_TIMEOUT)
            for method in methods if not (method.client_streaming or method.server_streaming)}
    for method in methods:
        allowed = policy_decision(server, caller, _path(method)) is None
        code, details, reason = status_of(sent[method].result) if method in sent else call_any(ch, method)
        for _ in range(CONNECT_TRIES):
            if not (allowed and code == grpc.StatusCode.UNAVAILABLE and not reason):
                break
            # No connection (a machine so busy that the handshake did not finish in time) says nothing of the
            # policy: once the channel connects again the call is tried again before it counts.
            if not ready(ch):
                break  # (it does not connect at all: that is the answer, not waited for again)
            code, details, reason = call_any(ch, method)
        if allowed == refused_by_guard(code, reason):
            wrong.append(f"{method.name}: {code.name} {details[:80]} (policy {'allows' if allowed else 'refuses'})")
    return wrong


class Minter:
    """Certificates minted for a run (in a scratch folder of its own), each revoked when the run ends."""

    def __init__(self, pki, purpose: str):
        self.pki = pki
        self.purpose = purpose  # what the PKI's index records as having asked for them
        self.scratch = Path(tempfile.mkdtemp(prefix=f"{purpose}-"))
        self.minted: list[int] = []

    def mint(self, label: str, domain: str, identity: str, key=None) -> ClientCert:
        """A client certificate for identity in domain (with key, or a fresh one), issued by the domain's CA."""
        ca = self.pki.authority(domain)
        cert, private = issue_leaf(ca, identity, key=key)
        folder = self.scratch / label.replace(" ", "-")
        folder.mkdir(parents=True, exist_ok=True)
        write_public(folder / "client.pem", cert_pem(cert) + cert_pem(ca.cert))
        write_private(folder / "client.key", key_pem(private))
        self.pki.record(cert, identity, domain, self.purpose, folder / "client.pem", folder / "client.key")
        self.minted.append(cert.serial_number)
        return ClientCert(folder / "client.pem", folder / "client.key", self.pki.trust_bundle)

    def serial(self, cert: ClientCert) -> int:
        """The serial number of a certificate minted here."""
        return x509.load_pem_x509_certificate(cert.cert.read_bytes()).serial_number

    def close(self) -> None:
        """Revoke everything minted, and remove the scratch folder: nothing made for the run stays usable."""
        for serial in self.minted:
            try:
                self.pki.revoke(serial=serial)
            except KeyError:
                pass
        self.minted.clear()
        shutil.rmtree(self.scratch, ignore_errors=True)
