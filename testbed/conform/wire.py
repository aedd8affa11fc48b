"""The wire cases, of every node role: mutual TLS (versions, suites, the client certificate), the bad-certificate
kit, identities the topology does not name, revocation, the policy matrix, health, and typed refusals."""
from __future__ import annotations

import ssl
import time

import grpc
from cryptography.hazmat.primitives.asymmetric import rsa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from certs.identity import JUKINET, KIND_DOMAIN, LAN, monitor_uri, node_uri, parse, terminal_uri
from certs.pki import BAD_CASES, PassphraseError
from nodes.reasons import access as A, common as C, platform as P
from nodes.refusal import DOMAIN, PEER_REFUSED, reason_of
from nodes.tls import ClientCert, pinned
from testbed.conform.case import EVERY_ROLE, Failed, Skipped, case, outcome, refused, said
from testbed.kit import (CRL_RELOAD, HANDSHAKE, handshake, methods_of, policy_clients, policy_decision,
                         policy_differences, refused_by_guard)

HEALTH = "/grpc.health.v1.Health/Check"
POLICY = (A.DEFAULT_DENY, A.SCOPE, A.TRUST_DOMAIN, A.NEVER_CALLS, A.KIT_IDENTITY)  # the policy's refusals
KIT_RULES = {"expired": (), "not_yet_valid": (), "rogue_ca": (), "no_client_auth": (),
             "revoked": (A.CERTIFICATE_REVOKED,), "wrong_domain": (A.CERTIFICATE_ISSUER, A.TRUST_DOMAIN),
             "wrong_municipality": POLICY, "wrong_role": POLICY}  # (which policy rule depends on the node's role)
KIT_STANDARD = {"expired": "RFC 5280 §4.1.2.5", "not_yet_valid": "RFC 5280 §4.1.2.5", "rogue_ca": "RFC 5280 §6",
                "no_client_auth": "RFC 5280 §4.2.1.12", "revoked": "", "wrong_domain": "", "wrong_municipality": "",
                "wrong_role": ""}

# The wire's rules no case tries, and why.
NOT_A_CASE = {
    A.CERTIFICATE_REQUIRED.reason: "the TLS handshake refuses a client without a certificate before any call "
                                   "(tls/client-certificate-required); the rule is the guard's second line",
    A.REVOCATION_UNKNOWN.reason: "needs the node's CRL of a domain missing or stale",
    C.PEER_UNAVAILABLE.reason: "needs a peer of the node stopped",
    PEER_REFUSED.reason: "a peer's refusal that names no rule of the catalogue: the reference's peers name theirs",
}


def _monitor(subject) -> ClientCert:
    domain = KIND_DOMAIN[subject.role]
    return pinned(ClientCert(*subject.pki.client_files(f"monitor-{domain}"), subject.pki.trust_bundle), domain)


def _health(subject, cert: ClientCert):
    ch = subject.channel(cert)
    return outcome(lambda: ch.unary_unary(HEALTH)(b"", timeout=5))


# -- TLS ----------------------------------------------------------------------------------------------------------
@case("tls/client-certificate-required", roles=(EVERY_ROLE,), profiles=("wire", "security"),
      standard="RFC 8446 §4.3.2; DESIGN §3 (mutual TLS)", request="a TLS 1.3 handshake without a client certificate",
      asserts="the connection is closed before any HTTP/2 frame")
def client_certificate_required(subject) -> str:
    """A client without a certificate gets no HTTP/2 connection."""
    ok, detail = handshake(subject.node, None, ssl.TLSVersion.TLSv1_3, trust=subject.pki.trust_bundle)
    if ok:
        raise Failed("refused", f"accepted ({detail})")
    return f"refused: {detail}"


@case("tls/versions", roles=(EVERY_ROLE,), profiles=("wire", "security"), standard="RFC 8996; DESIGN §3",
      request="handshakes at TLS 1.0, 1.1, 1.2 and 1.3 with the domain's monitor certificate",
      asserts="1.0 and 1.1 refused, 1.2 and 1.3 accepted")
def versions(subject) -> str:
    """TLS 1.2 and 1.3 only."""
    cert, seen = _monitor(subject), []
    for version, should in ((ssl.TLSVersion.TLSv1, False), (ssl.TLSVersion.TLSv1_1, False),
                            (ssl.TLSVersion.TLSv1_2, True), (ssl.TLSVersion.TLSv1_3, True)):
        ok, _ = handshake(subject.node, cert, version)
        seen.append(f"{version.name} {'accepted' if ok else 'refused'}")
        if ok != should:
            raise Failed(f"{version.name} {'accepted' if should else 'refused'}", ", ".join(seen))
    return ", ".join(seen)


@case("tls/forward-secrecy", roles=(EVERY_ROLE,), profiles=("wire", "security"), standard="RFC 9325 §4.1",
      request="a TLS 1.2 handshake offering only RSA key exchange",
      asserts="refused: ECDHE suites only")
def forward_secrecy(subject) -> str:
    """No cipher suite without forward secrecy."""
    ok, detail = handshake(subject.node, _monitor(subject), ssl.TLSVersion.TLSv1_2,
                           ciphers="AES128-SHA:AES256-SHA:AES128-GCM-SHA256")
    if ok:
        raise Failed("refused", f"accepted ({detail})")
    return f"refused: {detail}"


def _kit_case(name: str):
    @case(f"tls/bad-certificate/{name}", roles=(EVERY_ROLE,), profiles=("wire", "security"), rules=KIT_RULES[name],
          standard=KIT_STANDARD[name] or "", request=f"Health/Check with the kit's {name} certificate",
          asserts="refused at the handshake" if name in HANDSHAKE else
          f"refused by authentication or the policy under {' or '.join(r.reason for r in KIT_RULES[name])}")
    def bad_certificate(subject) -> str:
        cert = ClientCert(*subject.pki.bad_files(name), subject.pki.trust_bundle)
        code, reason, details, _ = _health(subject, cert)
        rules = {r.reason for r in KIT_RULES[name]}
        if name in HANDSHAKE:
            ok, expected = code == grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE (the handshake refused)"
        else:  # (refused by the guard under the rule the case is about, not by another that happens to stand near)
            ok, expected = refused_by_guard(code, reason) and reason in rules, f"refused under {' or '.join(sorted(rules))}"
        observed = said(code, reason, details)
        if not ok:
            raise Failed(expected, observed)
        return observed
    bad_certificate.__doc__ = f"The kit's {name} certificate is refused."
    return bad_certificate


for _name in BAD_CASES:
    _kit_case(_name)


# -- identities ---------------------------------------------------------------------------------------------------
def _stranger(subject) -> str:
    """An identity of the subject's trust domain that names a place outside the topology."""
    domain = KIND_DOMAIN[subject.role]
    if domain == JUKINET:
        return node_uri("cs", "131016")
    if domain == LAN:
        return terminal_uri(subject.home(), "T9999")
    raise Skipped(f"an identity of the {domain} domain names no place outside the topology")


def _minted(subject, label: str, identity: str, key=None) -> ClientCert:
    try:
        return subject.minter.mint(label, KIND_DOMAIN[subject.role], identity, key)
    except PassphraseError as exc:
        raise Skipped(f"{exc} (the case mints certificates with the domain's CA)") from None


@case("identity/not-in-topology", roles=(EVERY_ROLE,), profiles=("wire", "security"),
      rules=(A.CERTIFICATE_NOT_IN_TOPOLOGY,), request="Health/Check with a certificate of the domain's own CA naming "
      "a node or terminal the topology does not list", asserts="UNAUTHENTICATED CERTIFICATE_NOT_IN_TOPOLOGY")
def not_in_topology(subject) -> str:
    """A well-formed identity the topology does not name is refused at authentication."""
    code, reason, details, _ = _health(subject, _minted(subject, "stranger", _stranger(subject)))
    if (code, reason) != (grpc.StatusCode.UNAUTHENTICATED, A.CERTIFICATE_NOT_IN_TOPOLOGY.reason):
        raise Failed("UNAUTHENTICATED CERTIFICATE_NOT_IN_TOPOLOGY", said(code, reason, details))
    return said(code, reason, details)


@case("identity/short-key", roles=(EVERY_ROLE,), profiles=("wire", "security"), rules=(A.CERTIFICATE_KEY_SIZE,),
      request="Health/Check with the monitor's identity on an RSA-1024 key", asserts="refused at authentication")
def short_key(subject) -> str:
    """A key shorter than the policy's minimum is refused, whoever the certificate names."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    code, reason, details, _ = _health(subject, _minted(subject, "short-key", _monitor_identity(subject), key))
    if code not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNAVAILABLE):
        raise Failed("UNAUTHENTICATED (or the handshake refused)", said(code, reason, details))
    return said(code, reason, details)


def _monitor_identity(subject) -> str:
    """The monitor identity of the subject's trust domain (a caller every node lets read its health)."""
    return monitor_uri(KIND_DOMAIN[subject.role])


@case("identity/revoked", roles=(EVERY_ROLE,), profiles=("wire", "security"), rules=(A.CERTIFICATE_REVOKED,),
      request="Health/Check with a monitor certificate minted for the run, then revoked",
      asserts=f"answered before, UNAUTHENTICATED CERTIFICATE_REVOKED within {CRL_RELOAD:g} s of the revocation")
def revoked(subject) -> str:
    """A certificate revoked by serial is refused from the next CRL the node reads."""
    cert = _minted(subject, "revoked", _monitor_identity(subject))
    code, reason, details, _ = _health(subject, cert)
    if code != grpc.StatusCode.OK:
        raise Skipped(f"the fresh certificate itself was refused ({said(code, reason, details)})")
    subject.pki.revoke(serial=subject.minter.serial(cert))
    deadline = time.monotonic() + CRL_RELOAD
    while True:
        code, reason, details, _ = _health(subject, cert)
        if reason == A.CERTIFICATE_REVOKED.reason or time.monotonic() > deadline:
            break
        time.sleep(0.05)  # (bounded: the node re-reads a CRL once it sees its file change)
    if (code, reason) != (grpc.StatusCode.UNAUTHENTICATED, A.CERTIFICATE_REVOKED.reason):
        raise Failed("UNAUTHENTICATED CERTIFICATE_REVOKED", said(code, reason, details))
    return said(code, reason, details)


# -- the policy -------------------------------------------------------------------------------------------------
@case("policy/matrix", roles=(EVERY_ROLE,), profiles=("wire", "security"),
      rules=(A.DEFAULT_DENY, A.SCOPE, A.TRUST_DOMAIN, A.NEVER_CALLS),
      request="every method of the role with an empty request, as every client identity the PKI issued",
      asserts="let in exactly where the policy (nodes/policy.py) allows; refused by the guard everywhere else")
def policy_matrix(subject) -> str:
    """Default deny: each identity reaches exactly the methods the policy grants it."""
    methods, clients = methods_of(subject.role), policy_clients(subject.pki)
    wrong = [f"{identity.removeprefix('spiffe://testbed.jp/')} {w}" for identity, cert in clients
             for w in policy_differences(subject.channel(cert), subject.node, identity, methods)]
    calls = len(methods) * len(clients)
    if wrong:
        raise Failed(f"{calls} calls as the policy says", f"{len(wrong)} differ: " + "; ".join(wrong[:5]))
    return f"{calls} calls of {len(clients)} identities, each as the policy says"


# -- health and refusals ----------------------------------------------------------------------------------------
@case("health/serving", roles=(EVERY_ROLE,), profiles=("wire",), standard="gRPC health checking protocol",
      request="Health/Check as the domain's monitor", asserts="SERVING")
def serving(subject) -> str:
    """The node answers the standard health check."""
    stub = health_pb2_grpc.HealthStub(subject.as_monitor())
    try:
        status = stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status
    except grpc.RpcError as exc:
        raise Failed("SERVING", exc.code().name) from None
    if status != health_pb2.HealthCheckResponse.SERVING:
        raise Failed("SERVING", health_pb2.HealthCheckResponse.ServingStatus.Name(status))
    return "SERVING"


@case("health/unknown-service", roles=(EVERY_ROLE,), profiles=("wire",), rules=(P.HEALTH_SERVICE_UNKNOWN,),
      request="Health/Check of the service conform.NoSuchService as the domain's monitor",
      asserts="NOT_FOUND HEALTH_SERVICE_UNKNOWN (a service the node does not serve is not reported SERVING)")
def unknown_service(subject) -> str:
    """A health check of a service the node does not serve is NOT_FOUND, as the protocol says."""
    stub = health_pb2_grpc.HealthStub(subject.as_monitor())
    return refused(lambda: stub.Check(health_pb2.HealthCheckRequest(service="conform.NoSuchService"), timeout=5),
                   P.HEALTH_SERVICE_UNKNOWN)


@case("errors/typed-refusal", roles=(EVERY_ROLE,), profiles=("wire",), rules=(A.DEFAULT_DENY,),
      standard="google.rpc.Status with ErrorInfo (AIP-193)",
      request="a unary method of the role the domain's monitor is not granted, as the monitor",
      asserts="PERMISSION_DENIED with an ErrorInfo: reason DEFAULT_DENY, domain juki-net.testbed, node the subject")
def typed_refusal(subject) -> str:
    """A refusal names its rule, its domain and the refusing node in a google.rpc.Status, not only in words."""
    monitor, server = parse(_monitor_identity(subject)), parse(subject.node.identity)
    path = next((p for p in _unary_paths(subject.role) if policy_decision(server, monitor, p) == A.DEFAULT_DENY), None)
    if path is None:
        raise Skipped("the monitor is granted every unary method of this role")
    try:
        subject.as_monitor().unary_unary(path)(b"", timeout=5)
    except grpc.RpcError as exc:
        why = reason_of(exc)
        got = f"{exc.code().name} {why.reason if why else '-'} {why.domain if why else '-'} {why.node if why else '-'}"
        want = f"PERMISSION_DENIED {A.DEFAULT_DENY.reason} {DOMAIN} {subject.node.name}"
        if got != want:
            raise Failed(want, got) from None
        return f"{path.rsplit('/', 1)[1]}: {got}"
    raise Failed("PERMISSION_DENIED DEFAULT_DENY", f"{path} answered")


def _unary_paths(role: str) -> list[str]:
    return [f"/{m.containing_service.full_name}/{m.name}" for m in methods_of(role)
            if not m.client_streaming and not m.server_streaming]
