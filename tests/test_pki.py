"""The PKI generator (certs/pki.py) and `testbed pki init|revoke`."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID

from certs.identity import DOMAINS, JUKINET, KIND_DOMAIN, LAN, PLATFORM, parse
from certs.pki import BAD_CASES, PKI
from testbed.cli import main
from testbed.topology import Topology

SERVER_AUTH, CLIENT_AUTH = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH


@pytest.fixture(scope="module")
def topology() -> Topology:
    return Topology.load()


@pytest.fixture(scope="module")
def pki(tmp_path_factory, topology) -> PKI:
    """One PKI for the read-only tests."""
    pki = PKI(tmp_path_factory.mktemp("pki") / "pki")
    pki.init(topology)
    return pki


@pytest.fixture
def fresh_pki(tmp_path, topology) -> PKI:
    """A PKI of its own, for tests that revoke."""
    pki = PKI(tmp_path / "pki")
    pki.init(topology)
    return pki


def load_chain(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def load_cert(path: Path) -> x509.Certificate:
    return load_chain(path)[0]


def issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


def uris(cert: x509.Certificate) -> list[str]:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier)


def dns_names(cert: x509.Certificate) -> list[str]:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)


def ekus(cert: x509.Certificate) -> list:
    try:
        return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return []


def is_ca(cert: x509.Certificate) -> bool:
    return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def crl_serials(pki: PKI, domain: str) -> set[int]:
    return {r.serial_number for r in x509.load_pem_x509_crl(pki.crl_path(domain).read_bytes())}


def ca_cert(pki: PKI, domain: str) -> x509.Certificate:
    return load_cert(pki.ca_dir(domain) / "ca.pem")


def test_private_keys_are_owner_only(pki):
    """Every *.key file the PKI writes has mode 0600."""
    keys = list(pki.dir.rglob("*.key"))
    assert len(keys) >= len(pki.index()) + len(DOMAINS) + 1
    assert {k.relative_to(pki.dir).as_posix(): k.stat().st_mode & 0o777 for k in keys} == {
        k.relative_to(pki.dir).as_posix(): 0o600 for k in keys}


def test_issuing_cas_are_signed_by_root(pki):
    """Each trust domain's issuing CA is a CA certificate signed by the self-signed root."""
    root = load_cert(pki.trust_bundle)
    assert is_ca(root) and issued_by(root, root)
    for domain in DOMAINS:
        ca = ca_cert(pki, domain)
        assert is_ca(ca), domain
        assert issued_by(ca, root), domain
        assert not issued_by(ca, ca), domain


def test_node_certificates(pki, topology):
    """Each node has a serverAuth and a clientAuth certificate with its URI SAN, issued by its domain's CA."""
    root = load_cert(pki.trust_bundle)
    for node in topology.nodes:
        domain = KIND_DOMAIN[node.kind]
        ca = ca_cert(pki, domain)
        server_pem, server_key = pki.node_files(node.name, "server")
        client_pem, client_key = pki.node_files(node.name, "client")
        assert server_key.exists() and client_key.exists()
        server, client = load_chain(server_pem), load_chain(client_pem)
        for chain in (server, client):
            assert uris(chain[0]) == [node.identity], node.name
            assert issued_by(chain[0], ca), node.name
            assert chain[1] == ca and issued_by(chain[1], root), node.name
            assert not is_ca(chain[0])
            for other in set(DOMAINS) - {domain}:
                assert not issued_by(chain[0], ca_cert(pki, other)), (node.name, other)
        assert ekus(server[0]) == [SERVER_AUTH], node.name
        assert node.host_name in dns_names(server[0]), node.name
        assert ekus(client[0]) == [CLIENT_AUTH], node.name


def test_crls_signed_by_their_ca(pki):
    """Each domain's CRL is issued and signed by that domain's CA, and by no other."""
    for domain in DOMAINS:
        crl = x509.load_pem_x509_crl(pki.crl_path(domain).read_bytes())
        assert crl.issuer == ca_cert(pki, domain).subject
        assert crl.is_signature_valid(ca_cert(pki, domain).public_key())
        for other in set(DOMAINS) - {domain}:
            assert not crl.is_signature_valid(ca_cert(pki, other).public_key())


def test_clients_issued(pki, topology):
    """Terminals, the 情報提供NWS and each domain's monitor have client certificates from the right CA."""
    expected = {f"terminal-{m.code}-{t}": LAN for m in topology.municipalities for t in m.terminals}
    expected.update({"infonws": PLATFORM} | {f"monitor-{d}": d for d in DOMAINS})
    for name, domain in expected.items():
        cert = load_cert(pki.client_files(name)[0])
        assert parse(uris(cert)[0]).domain == domain, name
        assert issued_by(cert, ca_cert(pki, domain)), name
        assert ekus(cert) == [CLIENT_AUTH], name


def test_bad_kit_is_complete(pki):
    """Every case of BAD_CASES has a certificate and a key."""
    for case in BAD_CASES:
        pem, key = pki.bad_files(case)
        assert pem.exists() and key.exists(), case


def test_bad_kit_cases(pki, topology):
    """Each bad-kit certificate is bad in exactly the advertised way."""
    now = dt.datetime.now(dt.timezone.utc)
    home, other = topology.municipalities[0].code, topology.municipalities[1].code
    bad = {case: load_cert(pki.bad_files(case)[0]) for case in BAD_CASES}
    lan, platform = ca_cert(pki, LAN), ca_cert(pki, PLATFORM)
    root = load_cert(pki.trust_bundle)

    assert bad["expired"].not_valid_after_utc < now and issued_by(bad["expired"], lan)
    assert bad["not_yet_valid"].not_valid_before_utc > now and issued_by(bad["not_yet_valid"], lan)

    rogue = bad["rogue_ca"]
    assert not any(issued_by(rogue, ca) for ca in [root] + [ca_cert(pki, d) for d in DOMAINS])
    assert issued_by(rogue, load_chain(pki.bad_files("rogue_ca")[0])[1])

    assert bad["revoked"].serial_number in crl_serials(pki, LAN)
    assert not any(c.serial_number in crl_serials(pki, LAN) for case, c in bad.items() if case != "revoked")

    wrong_domain = parse(uris(bad["wrong_domain"])[0])
    assert (wrong_domain.kind, wrong_domain.domain) == ("kizon", LAN)
    assert issued_by(bad["wrong_domain"], platform) and not issued_by(bad["wrong_domain"], lan)

    wrong_muni = parse(uris(bad["wrong_municipality"])[0])
    assert (wrong_muni.kind, wrong_muni.municipality) == ("terminal", other) and other != home
    assert issued_by(bad["wrong_municipality"], lan)

    wrong_role = parse(uris(bad["wrong_role"])[0])
    assert (wrong_role.kind, wrong_role.municipality) == ("atena", home)
    assert issued_by(bad["wrong_role"], lan) and CLIENT_AUTH in ekus(bad["wrong_role"])

    assert CLIENT_AUTH not in ekus(bad["no_client_auth"]) and issued_by(bad["no_client_auth"], lan)
    assert parse(uris(bad["no_client_auth"])[0]).kind == "terminal"


def test_index_lists_every_certificate(pki):
    """index.json names each issued certificate with its file, whose serial matches."""
    entries = pki.index()
    assert len({e["serial"] for e in entries}) == len(entries)
    for e in entries:
        assert str(load_cert(pki.dir / e["cert"]).serial_number) == e["serial"], e
        assert (pki.dir / e["key"]).exists()


def test_init_refuses_existing_pki(pki, topology):
    """init on an initialised folder raises FileExistsError and leaves the root as it was."""
    before = pki.trust_bundle.read_bytes()
    with pytest.raises(FileExistsError):
        pki.init(topology)
    assert pki.trust_bundle.read_bytes() == before


def test_init_force_replaces(fresh_pki, topology):
    """init(force=True) replaces an existing PKI with a new root."""
    before = fresh_pki.trust_bundle.read_bytes()
    fresh_pki.init(topology, force=True)
    assert fresh_pki.trust_bundle.read_bytes() != before


def test_revoke_puts_serials_on_crl(fresh_pki, topology):
    """revoke(identity) lists every serial of that identity on its CA's CRL and keeps earlier ones."""
    identity = topology.find("kizon", municipality="142140").identity
    already = crl_serials(fresh_pki, LAN)
    serials = fresh_pki.revoke(identity)
    issued = {e["serial"] for e in fresh_pki.index() if e["identity"] == identity and e["domain"] == LAN}
    assert issued <= set(serials) and len(issued) >= 2
    assert {int(s) for s in issued} | already <= crl_serials(fresh_pki, LAN)
    crl = x509.load_pem_x509_crl(fresh_pki.crl_path(LAN).read_bytes())
    assert crl.is_signature_valid(ca_cert(fresh_pki, LAN).public_key())
    other = topology.find("kizon", municipality="142115").identity
    assert not {int(e["serial"]) for e in fresh_pki.index() if e["identity"] == other} & crl_serials(fresh_pki, LAN)


def test_revoke_the_kit_apart_from_the_real_identity(fresh_pki):
    """The kit's wrong_domain case names itself (kit/...): revoking the real kizon leaves the kit alone, and
    the kit case is revoked on its own, by identity or by serial."""
    real = "spiffe://testbed.jp/lg/142140/kizon"
    kit = "spiffe://testbed.jp/kit/wrong_domain/lg/142140/kizon"
    serials = {int(s) for s in fresh_pki.revoke(real)}
    assert serials == {int(e["serial"]) for e in fresh_pki.index() if e["identity"] == real}
    assert serials <= crl_serials(fresh_pki, LAN) and not serials & crl_serials(fresh_pki, PLATFORM)
    kit_serial = next(int(e["serial"]) for e in fresh_pki.index() if e["identity"] == kit)
    assert fresh_pki.revoke(serial=kit_serial) == [str(kit_serial)]
    assert kit_serial in crl_serials(fresh_pki, PLATFORM)
    assert not serials & crl_serials(fresh_pki, JUKINET)


def test_each_new_crl_has_a_higher_number(fresh_pki):
    """Every CRL carries a nextUpdate and a CRL number; a revocation writes a higher number."""
    from certs.pki import crl_number
    before = x509.load_pem_x509_crl(fresh_pki.crl_path(LAN).read_bytes())
    fresh_pki.revoke("spiffe://testbed.jp/lg/142140/terminal/T0002")
    after = x509.load_pem_x509_crl(fresh_pki.crl_path(LAN).read_bytes())
    assert crl_number(after) == crl_number(before) + 1 and after.next_update_utc is not None


def test_revoke_unknown_identity(fresh_pki):
    """revoke of an identity never issued raises KeyError and changes no CRL."""
    before = {d: fresh_pki.crl_path(d).read_bytes() for d in DOMAINS}
    with pytest.raises(KeyError):
        fresh_pki.revoke("spiffe://testbed.jp/lg/142140/terminal/NOBODY")
    assert {d: fresh_pki.crl_path(d).read_bytes() for d in DOMAINS} == before


def test_cli_init_and_revoke(tmp_path, capsys):
    """`testbed pki init` and `testbed pki revoke` return 0, and 2 for an unknown identity."""
    pki_dir, state = tmp_path / "pki", tmp_path / "state"
    base = ["--state-dir", str(state)]
    assert main(base + ["pki", "init", "--pki-dir", str(pki_dir)]) == 0
    pki = PKI(pki_dir)
    assert pki.exists() and len(pki.index()) > 0
    terminal = "spiffe://testbed.jp/lg/142140/terminal/T0001"
    assert main(base + ["pki", "revoke", terminal, "--pki-dir", str(pki_dir)]) == 0
    serial = next(int(e["serial"]) for e in pki.index() if e["identity"] == terminal and e["domain"] == LAN)
    assert serial in crl_serials(pki, LAN)
    assert main(base + ["pki", "revoke", "spiffe://testbed.jp/lg/142140/terminal/NOBODY",
                        "--pki-dir", str(pki_dir)]) == 2
    assert "NOBODY" in capsys.readouterr().err
    assert not state.exists()


def test_ca_keys_can_be_passphrase_protected(tmp_path, capsys, monkeypatch):
    """With TESTBED_CA_PASSPHRASE the CA keys are written encrypted (or `pki protect` encrypts them later);
    without it, or with a wrong one, a command that needs them says so in one line, and nothing is signed."""
    from certs.pki import PASSPHRASE_ENV
    state = tmp_path / "state"
    assert main(["--state-dir", str(state), "pki", "init"]) == 0
    pki = PKI(state / "pki")
    keys = [pki.private_dir(d) / "ca.key" for d in ("root", *DOMAINS)]
    assert not any(b"ENCRYPTED" in k.read_bytes() for k in keys)
    assert main(["--state-dir", str(state), "pki", "protect"]) == 2  # no passphrase given
    assert PASSPHRASE_ENV in capsys.readouterr().err
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse")
    assert main(["--state-dir", str(state), "pki", "protect"]) == 0
    assert all(b"ENCRYPTED" in k.read_bytes() and k.stat().st_mode & 0o777 == 0o600 for k in keys)
    serial = next(e["serial"] for e in pki.index() if e["domain"] == LAN)
    crl_before = pki.crl_path(LAN).read_bytes()
    for value in ("", "wrong"):
        monkeypatch.setenv(PASSPHRASE_ENV, value)
        capsys.readouterr()
        assert main(["--state-dir", str(state), "pki", "revoke", "--serial", serial]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and ("passphrase-protected" in err if not value else "wrong CA passphrase" in err)
        assert pki.crl_path(LAN).read_bytes() == crl_before
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse")
    assert main(["--state-dir", str(state), "pki", "revoke", "--serial", serial]) == 0
    assert int(serial) in {r.serial_number for r in x509.load_pem_x509_crl(pki.crl_path(LAN).read_bytes())}
