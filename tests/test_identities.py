"""Only who the topology names: unknown terminals and municipalities, the kit's own identities, weak keys,
and CRLs that are stale or rolled back — each tried as an attacker with a certificate of their own."""
from __future__ import annotations

import datetime as dt

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from certs.identity import JUKINET, LAN, node_uri, terminal_uri
from certs.pki import cert_pem, issue_leaf, key_pem, write_private, write_public
from helpers import key, poll
from nodes.tls import ClientCert
from protos import common_pb2, cs_pb2_grpc, kizon_pb2, kizon_pb2_grpc, national_pb2, national_pb2_grpc
from testbed.client import Counter, bad_cert, channel

A = "142140"


def own_cert(network, tmp_path, domain: str, identity: str, **kw) -> ClientCert:
    """A certificate an attacker obtained from the testbed's own CA for an identity of their choosing."""
    ca = network.pki.authority(domain)
    cert, private = issue_leaf(ca, identity, **kw)
    folder = tmp_path / identity.rsplit("/", 2)[-1]
    folder.mkdir(parents=True, exist_ok=True)
    write_public(folder / "client.pem", cert_pem(cert) + cert_pem(ca.cert))
    write_private(folder / "client.key", key_pem(private))
    return ClientCert(folder / "client.pem", folder / "client.key", network.pki.trust_bundle)


def call_status(node, cert, call) -> tuple[grpc.StatusCode, str]:
    """(status, details) of one call to a node with a certificate."""
    with channel(node, cert) as ch:
        try:
            call(ch)
        except grpc.RpcError as exc:
            return exc.code(), exc.details()
    return grpc.StatusCode.OK, ""


def login(ch):
    """Kizon.Login (the first thing a terminal does)."""
    return kizon_pb2_grpc.KizonStub(ch).Login(kizon_pb2.LoginRequest(operator_id="OP0001", credential="x"), timeout=5)


def test_a_terminal_the_topology_does_not_name_is_refused(network, tmp_path):
    """A well-formed terminal identity signed by the LAN CA but absent from the topology: UNAUTHENTICATED."""
    cert = own_cert(network, tmp_path, LAN, terminal_uri(A, "T9999"))
    code, details = call_status(network.topology.find("kizon", A), cert, login)
    assert code == grpc.StatusCode.UNAUTHENTICATED and "identity rule" in details, details


def test_a_cs_of_a_municipality_outside_the_topology_is_refused(network, tmp_path):
    """A CS of 千代田区 (a real code, not in this network) cannot reach national."""
    cert = own_cert(network, tmp_path, JUKINET, node_uri("cs", "131016"))
    code, details = call_status(network.topology.find("national"), cert, lambda ch: national_pb2_grpc.NationalServerStub(
        ch).GetIdentity(common_pb2.ResidentKey(resident_code="24727059608"), timeout=5))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "identity rule" in details, details


@pytest.mark.parametrize("node_kind,call", [
    ("national", lambda ch: national_pb2_grpc.NationalServerStub(ch).IssueFugo(
        national_pb2.FugoRequest(individual_number="123456789018"), timeout=5)),
    ("kizon", login),
])
def test_the_wrong_role_kit_is_no_working_credential(network, node_kind, call):
    """The kit's atena identity is refused everywhere: where atena may call, by the kit rule."""
    node = network.topology.find(node_kind, A if node_kind == "kizon" else None)
    code, details = call_status(node, bad_cert(network.pki, "wrong_role"), call)
    assert code == grpc.StatusCode.PERMISSION_DENIED, details
    assert ("kit rule" if node_kind == "national" else "default deny") in details, details


def test_an_rsa_1024_client_key_is_refused(network, tmp_path):
    """A short RSA key is refused by the key size rule even from a listed terminal."""
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    cert = own_cert(network, tmp_path, LAN, terminal_uri(A, "T0002"), key=weak)
    code, details = call_status(network.topology.find("kizon", A), cert, login)
    assert code == grpc.StatusCode.UNAUTHENTICATED and "key size rule" in details, details


def test_a_rolled_back_crl_does_not_readmit(fresh_network):
    """After a revocation, the older CRL copied back is refused: the revoked terminal stays out (and the
    node fails closed for that domain until a current CRL is back)."""
    fresh_network.up()
    pki = fresh_network.pki
    old = pki.crl_path(LAN).read_bytes()
    with Counter(fresh_network, A, "T0002", "OP0002") as t2:
        pki.revoke(terminal_uri(A, "T0002"))
        with pytest.raises(grpc.RpcError) as err:
            t2(t2.kizon.GetResident, key("24727059608"))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED and "revocation" in err.value.details()
        write_public(pki.crl_path(LAN), old)
        with pytest.raises(grpc.RpcError) as err:
            t2(t2.kizon.GetResident, key("24727059608"))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED and "rolled back" in err.value.details()
    log = fresh_network.log_file(f"kizon-{A}").read_text()
    assert "rolled back" in log and "failing closed" in log


def test_a_stale_crl_fails_closed(fresh_network):
    """A CRL whose nextUpdate has passed is refused, with a clear line in the node's log."""
    fresh_network.up()
    pki = fresh_network.pki
    ca = pki.authority(LAN)
    now = dt.datetime.now(dt.timezone.utc)
    stale = (x509.CertificateRevocationListBuilder().issuer_name(ca.cert.subject)
             .last_update(now - dt.timedelta(days=40)).next_update(now - dt.timedelta(days=10))
             .add_extension(x509.CRLNumber(100), critical=False).sign(ca.key, hashes.SHA256()))
    write_public(pki.crl_path(LAN), stale.public_bytes(serialization.Encoding.PEM))
    with channel(fresh_network.topology.find("cs", A), ClientCert(*pki.node_files(f"kizon-{A}", "client"),
                                                                  pki.trust_bundle)) as ch:
        with pytest.raises(grpc.RpcError) as err:
            cs_pb2_grpc.CommunicationServerStub(ch).GetPoolStatus(common_pb2.Empty(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED and "stale" in err.value.details()
    assert "stale" in fresh_network.log_file(f"cs-{A}").read_text()


def test_server_certificates_name_only_their_own_host(network):
    """No server certificate carries 'localhost' unless asked for: each name belongs to one server."""
    for node in network.topology.nodes:
        cert = x509.load_pem_x509_certificate(network.pki.node_files(node.name, "server")[0].read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
        assert names == [node.host_name]


# -- authentication before parsing ---------------------------------------------------------------------------
GARBAGE = b"\xff\xff\xff\xff\x0f"  # not a protobuf message: a field tag with no end


def raw_call(node, cert, method: str, body: bytes):
    """A unary call with a raw body, as a fuzzer sends it."""
    with channel(node, cert) as ch:
        try:
            ch.unary_unary(method)(body, timeout=5)
        except grpc.RpcError as exc:
            return exc.code(), exc.details()
    return grpc.StatusCode.OK, ""


def test_a_malformed_body_is_invalid_argument_and_audited(network):
    """A body that is not a message: INVALID_ARGUMENT naming the rule, with an audit entry."""
    node = network.topology.find("cs", A)
    cert = ClientCert(*network.pki.node_files(f"kizon-{A}", "client"), network.pki.trust_bundle)
    code, details = raw_call(node, cert, "/testbed.v1.CommunicationServer/GetPoolStatus", GARBAGE)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "message rule" in details, details
    poll(lambda: any("GetPoolStatus" in line and '"status":"INVALID_ARGUMENT"' in line
                     for line in network.audit_file(node.name).read_text().splitlines()), what="the audit entry")


@pytest.mark.parametrize("case", ["revoked", "wrong_domain"])
def test_a_refused_caller_is_refused_before_its_body_is_read(network, case):
    """A revoked or wrong-domain certificate with a malformed body: refused as a caller, not as a body."""
    code, details = raw_call(network.topology.find("kizon", A), bad_cert(network.pki, case),
                             "/testbed.v1.Kizon/GetResident", GARBAGE)
    assert code == grpc.StatusCode.UNAUTHENTICATED, details


def test_an_unknown_method_is_audited(network):
    """A method no service has: UNIMPLEMENTED for an admitted caller, with an audit entry naming it."""
    node = network.topology.find("national")
    cert = ClientCert(*network.pki.node_files(f"cs-{A}", "client"), network.pki.trust_bundle)
    code, details = raw_call(node, cert, "/testbed.v1.NationalServer/DropEverything", b"")
    assert code in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.PERMISSION_DENIED), details
    poll(lambda: "DropEverything" in network.audit_file(node.name).read_text(), what="the audit entry")


# -- clients verify servers ---------------------------------------------------------------------------------
def test_a_server_of_another_trust_domain_posing_as_a_node_is_refused(network, tmp_path):
    """A server presenting a platform-CA certificate for cs-142140.testbed.internal: a client pinned to the
    Juki-net CA refuses the handshake; the same client reaches the real CS."""
    from concurrent import futures

    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    from certs.identity import PLATFORM
    from nodes.tls import server_credentials
    from nodes.topology import Node
    real = network.topology.find("cs", A)
    pki = network.pki
    ca = pki.authority(PLATFORM)
    cert, private = issue_leaf(ca, node_uri("cs", A), server=True, client=False, dns_names=(real.host_name,))
    write_public(tmp_path / "server.pem", cert_pem(cert) + cert_pem(ca.cert))
    write_private(tmp_path / "server.key", key_pem(private))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_secure_port("127.0.0.1:0", server_credentials(tmp_path / "server.pem", tmp_path / "server.key",
                                                                      pki.trust_bundle))
    server.start()
    try:
        impostor = Node(real.name, real.kind, f"127.0.0.1:{port}", real.municipality)
        as_kizon = ClientCert(*pki.node_files(f"kizon-{A}", "client"), pki.trust_bundle)
        check = lambda ch: health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=3)  # noqa: E731
        code, details = call_status(impostor, as_kizon, check)
        assert code == grpc.StatusCode.UNAVAILABLE, details
        assert call_status(real, as_kizon, check)[0] == grpc.StatusCode.OK
    finally:
        server.stop(None)


def test_a_node_sends_nothing_to_a_peer_whose_certificate_is_revoked(fresh_network):
    """The CS's server certificate revoked: within seconds kizon stops sending to it (UNAVAILABLE naming the peer
    rule, nothing written), and says so in its log."""
    from helpers import TODAY, address, move_in_from_abroad, person, poll
    from testbed.client import Counter
    fresh_network.up()
    pki = fresh_network.pki
    cs_uri = node_uri("cs", A)
    serial = next(int(e["serial"]) for e in pki.index() if e["identity"] == cs_uri and e["role"] == "server")
    with Counter(fresh_network, A) as clerk:
        who = move_in_from_abroad(clerk)
        pki.revoke(serial=serial)

        def refused_now():
            try:
                clerk(clerk.kizon.MoveWithin, kizon_pb2.MoveWithinRequest(
                    resident_code=who.resident_code, address=address(A, "9番地"), move_date=TODAY))
            except grpc.RpcError as exc:
                return exc.code() == grpc.StatusCode.UNAVAILABLE and "peer rule" in exc.details() and exc
            return False
        refusal = poll(refused_now, timeout=15, what="kizon to refuse the revoked CS")
        assert "CRL" in refusal.details()
        before = clerk(clerk.kizon.GetResident, key(who.resident_code)).history_number
        assert refused_now()  # refused again, and nothing written by it
        assert clerk(clerk.kizon.GetResident, key(who.resident_code)).history_number == before
    assert "peer rule: nothing is sent to cs-142140" in fresh_network.log_file(f"kizon-{A}").read_text()


def test_a_terminal_sends_nothing_to_a_server_whose_certificate_is_revoked(fresh_network):
    """Terminals and tools check servers as nodes do: kizon's server certificate revoked, a counter that
    connects afterwards gets UNAVAILABLE naming the peer rule, and kizon never hears of the call."""
    from testbed.client import Counter, channel, monitor_cert
    fresh_network.up()
    pki = fresh_network.pki
    kizon = fresh_network.topology.find("kizon", A)
    Counter(fresh_network, A).close()  # before: the counter logs in
    serial = next(int(e["serial"]) for e in pki.index() if e["identity"] == kizon.identity and e["role"] == "server")
    pki.revoke(serial=serial)
    audit_before = fresh_network.audit_file(kizon.name).read_text().count("\n")
    with pytest.raises(grpc.RpcError) as refused:
        Counter(fresh_network, A)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "peer rule" in refused.value.details() and f"serial {serial}" in refused.value.details()
    ch = channel(kizon, monitor_cert(pki, "kizon"))
    with pytest.raises(grpc.RpcError) as again:
        ch.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=5)
    assert "CRL" in again.value.details()
    assert fresh_network.audit_file(kizon.name).read_text().count("\n") == audit_before  # nothing reached kizon
