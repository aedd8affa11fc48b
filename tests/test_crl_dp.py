"""The CRL distribution point (issue 20, item 7): every certificate an issuing CA signs names where that CA's CRL is
published (a file: URI of its crl.pem), and the CRL found there is that CA's, the one revocation updates."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from cryptography import x509

from certs.identity import DOMAINS, LAN, terminal_uri
from certs.pki import PKI, issue_leaf
from testbed.topology import Node, Topology


@pytest.fixture
def pki(tmp_path) -> PKI:
    pki = PKI(tmp_path / "pki")
    pki.init(Topology.load())
    return pki


def leaf(pki: PKI, entry: dict) -> x509.Certificate:
    return x509.load_pem_x509_certificates((pki.dir / entry["cert"]).read_bytes())[0]


def distribution_points(cert: x509.Certificate) -> list[str]:
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    except x509.ExtensionNotFound:
        return []
    assert not points.critical
    return [name.value for point in points.value for name in point.full_name]


def crl_at(uri: str) -> x509.CertificateRevocationList:
    """The CRL a distribution point names (a file: URI, absolute)."""
    parsed = urlparse(uri)
    assert parsed.scheme == "file" and parsed.netloc == "" and Path(unquote(parsed.path)).is_absolute(), uri
    return x509.load_pem_x509_crl(Path(unquote(parsed.path)).read_bytes())


def test_every_certificate_names_its_cas_crl_and_the_crl_is_there(pki):
    """Every server and client certificate of the nodes and targets, every terminal, platform client, kiosk, monitor
    and console certificate, and the kit's certificates of the real CAs: one distribution point, its issuing CA's
    crl.pem, whose CRL is signed by that CA and lists the kit's revoked certificate; the rogue CA's has none."""
    entries = pki.index()
    roles = {e["role"] for e in entries}
    assert {"server", "client"} <= roles
    cas = {d: x509.load_pem_x509_certificate((pki.ca_dir(d) / "ca.pem").read_bytes()) for d in DOMAINS}
    for entry in entries:
        cert = leaf(pki, entry)
        points = distribution_points(cert)
        if entry["domain"] not in DOMAINS:  # the rogue CA's kit certificate: no CRL of the testbed's is its
            assert points == [], entry
            continue
        assert points == [pki.crl_path(entry["domain"]).resolve().as_uri()], entry
        crl = crl_at(points[0])
        ca = cas[entry["domain"]]
        assert crl.issuer == cert.issuer == ca.subject and crl.is_signature_valid(ca.public_key()), entry
        revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
        assert revoked == (entry["role"] == "bad:revoked"), entry
    servers = [e for e in entries if e["role"] == "server"]
    assert len(servers) == len(Topology.load().all_nodes)


def test_the_crl_found_there_is_the_one_revocation_updates(pki):
    """`pki revoke` writes the CRL the distribution point names: the revoked certificate is found on it."""
    entry = next(e for e in pki.index() if e["identity"] == terminal_uri("142140", "T0002"))
    cert = leaf(pki, entry)
    pki.revoke(entry["identity"])
    crl = crl_at(distribution_points(cert)[0])
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None


def test_reissued_and_later_issued_certificates_name_it_too(pki):
    """A reissued certificate, a target site's added later (issue_missing) and one a tool signs with the CA of
    PKI.authority (the probe's minted certificates) carry the same distribution point."""
    point = [pki.crl_path(LAN).resolve().as_uri()]
    fresh = pki.reissue(terminal_uri("142140", "T0001"))
    assert all(distribution_points(leaf(pki, e)) == point for e in fresh)
    topology = Topology.load()
    topology.targets.append(Node("atena-142115-gcloud", "atena", "127.0.0.1:20213", "142115", site="gcloud"))
    assert pki.issue_missing(topology) == ["atena-142115-gcloud"]
    for role in ("server", "client"):
        cert = x509.load_pem_x509_certificates(pki.node_files("atena-142115-gcloud", role)[0].read_bytes())[0]
        assert distribution_points(cert) == point
    minted, _ = issue_leaf(pki.authority(LAN), terminal_uri("142140", "T0003"))
    assert distribution_points(minted) == point
