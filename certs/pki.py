"""The PKI generator: root CA, issuing CAs per trust domain, leaf certificates, CRLs, bad-certificate kit.

Folder layout under the PKI directory (default ``.testbed/pki``):

    root/ca.pem                      the testbed root CA (the only trust anchor)
    ca/<domain>/ca.pem               issuing CA of a trust domain (jukinet, lan, platform)
    ca/<domain>/crl.pem              its certificate revocation list
    private/root/ca.key, private/<domain>/ca.key
                                     the CA keys: read by `testbed pki` alone, in a folder of mode 0700;
                                     encrypted when TESTBED_CA_PASSPHRASE is set (`testbed pki protect`)
    nodes/<node>/server.pem, .key    server certificate (serverAuth; URI SAN + DNS SANs), with chain
    nodes/<node>/client.pem, .key    client certificate (clientAuth; URI SAN), with chain
                                     (every leaf of an issuing CA names that CA's crl.pem as its CRL
                                     distribution point: a file: URI, see crl_uri)
    clients/<name>/client.pem, .key  terminals, 情報提供NWS, monitors
    bad/<case>/client.pem, .key      the bad-certificate kit for probing (see BAD_CASES)
    jpki/ca.pem                      the JPKI 利用者証明用 CA (a root of its own: never an mTLS trust anchor), which
                                     signs the 利用者証明用電子証明書 of the cards; private/jpki/ca.key its key
    nodes/<card>/jpki-ca.pem, .key   the card system's own copy of it (it alone issues with it);
    nodes/<centre>/jpki-ca.pem       the 証明書交付センター's copy of the certificate (it checks the cards' against it)
    sessions/<municipality>.key      the Ed25519 key a municipality's sessions and approvals are signed with
                                     (the PKI's copy; each kizon of the municipality holds its own copy,
                                     nodes/<kizon>/session.key, at every site it runs)
    sessions/public/<municipality>.pub  its public key, which the CS and the 中間サーバ check them with
    operators/<municipality>.json    each operator's roles and login credential (for the terminals' side)
    nodes/kizon-<m>/operators.json   what kizon keeps: roles and a salted hash of each credential
    index.json                       every issued certificate: identity, serial, domain, files

Private keys are written with mode 0600. Leaf files hold the leaf followed by its issuing CA.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs.identity import (DOMAINS, IMMIGRATION_URI, JUKINET, KIND_DOMAIN, LAN, OFFICE_SYSTEMS, PLATFORM, console_uri, kiosk_uri, kit_uri,
                            monitor_uri, node_uri, office_uri, platform_uri, terminal_uri)

PASSPHRASE_ENV = "TESTBED_CA_PASSPHRASE"  # when set, the CA keys are written (and read) encrypted with it
CA_DAYS = 3650
LEAF_DAYS = 397
CRL_DAYS = 30
JPKI = "jpki"  # the folder of the JPKI 利用者証明用 CA (not one of DOMAINS: no node's TLS trusts it)
ORG = "Municipal Network Testbed"

# The bad-certificate kit: what each case is, for probing mutual authentication.
BAD_CASES = {
    "expired": "a terminal certificate whose validity ended yesterday",
    "not_yet_valid": "a terminal certificate valid only from next month",
    "rogue_ca": "a terminal identity signed by a self-signed CA outside the testbed",
    "revoked": "a terminal certificate on the LAN CA's revocation list",
    "wrong_domain": "a kizon identity issued by the platform CA instead of the LAN CA",
    "wrong_municipality": "a terminal of another municipality (refused by the same-municipality rule)",
    "wrong_role": "an atena identity (atena may not call kizon's counter or the CS; never a working credential)",
    "no_client_auth": "a terminal certificate without the clientAuth extended key usage",
}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, unit: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG)]
    if unit:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def write_private(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only (mode 0600), replacing any old one atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def write_public(path: Path, data: bytes) -> None:
    """Write a public file (certificate, CRL) atomically, so readers never see half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def key_pem(key) -> bytes:
    """PKCS#8 PEM of a private key, unencrypted (the nodes read it unattended)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    """PEM of a certificate."""
    return cert.public_bytes(serialization.Encoding.PEM)


class PassphraseError(Exception):
    """A CA key that cannot be read: protected by a passphrase that was not given, or given wrong."""


def _passphrase() -> bytes | None:
    value = os.environ.get(PASSPHRASE_ENV)
    return value.encode() if value else None


def ca_key_pem(key) -> bytes:
    """PKCS#8 PEM of a CA key: encrypted with the passphrase of TESTBED_CA_PASSPHRASE when it is set."""
    secret = _passphrase()
    encryption = serialization.BestAvailableEncryption(secret) if secret else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def load_ca_key(path: Path):
    """A CA key, decrypted with TESTBED_CA_PASSPHRASE when it is protected."""
    data, secret = path.read_bytes(), _passphrase()
    if b"ENCRYPTED" not in data:
        return serialization.load_pem_private_key(data, None)
    if secret is None:
        raise PassphraseError(f"the CA keys are passphrase-protected: set {PASSPHRASE_ENV} to use them")
    try:
        return serialization.load_pem_private_key(data, secret)
    except ValueError:
        raise PassphraseError(f"wrong CA passphrase in {PASSPHRASE_ENV}: {path} cannot be decrypted") from None


def is_protected(path: Path) -> bool:
    """Whether a CA key file is encrypted."""
    return b"ENCRYPTED" in path.read_bytes()


@dataclass
class Authority:
    """A CA that can sign: its certificate and key, and where its CRL is published (the CRL distribution point of
    every leaf it issues; None: the leaves name none, as for the root, which issues no leaves, or a rogue CA)."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    crl_uri: str | None = None

    @classmethod
    def load(cls, folder: Path, key_folder: Path) -> "Authority":
        """Read a CA from ca.pem in folder and ca.key in key_folder."""
        cert = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
        return cls(cert, load_ca_key(key_folder / "ca.key"))

    def save(self, folder: Path, key_folder: Path) -> None:
        """Write ca.pem into folder and ca.key into key_folder (made 0700)."""
        write_public(folder / "ca.pem", cert_pem(self.cert))
        key_folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private(key_folder / "ca.key", ca_key_pem(self.key))


def _make_ca(subject: x509.Name, issuer: Authority | None, path_length: int) -> Authority:
    """A CA certificate and key: self-signed without an issuer, else signed by it."""
    key = _new_key()
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                                        critical=False)
    return Authority(builder.sign(issuer.key if issuer else key, hashes.SHA256()), key)


def make_root(common_name: str = "Testbed Root CA") -> Authority:
    """A self-signed root CA."""
    return _make_ca(_name(common_name), None, path_length=1)


def make_jpki_ca(common_name: str = "Testbed JPKI User Authentication CA") -> Authority:
    """A self-signed CA for 利用者証明用電子証明書 (JPKI): apart from the testbed root, so that no card certificate
    ever passes as an mTLS identity and no node certificate as a card's."""
    return _make_ca(_name(common_name, JPKI), None, path_length=0)


def make_issuing_ca(root: Authority, domain: str) -> Authority:
    """An issuing CA for one trust domain, signed by the root."""
    return _make_ca(_name(f"Testbed {domain} Issuing CA", domain), root, path_length=0)


def issue_leaf(
    ca: Authority,
    identity: str,
    *,
    server: bool = False,
    client: bool = True,
    dns_names: tuple[str, ...] = (),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    key=None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Issue a leaf certificate carrying identity as its URI SAN (for a new P-256 key unless one is given)."""
    key = key or _new_key()
    now = _now()
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    sans = [x509.UniformResourceIdentifier(identity)] + [x509.DNSName(d) for d in dns_names]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(identity.rsplit("/", 2)[-2] + "/" + identity.rsplit("/", 1)[-1]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(minutes=5))
        .not_valid_after(not_after or now + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if ca.crl_uri:  # where a relying party finds the CRL this certificate would be revoked on (RFC 5280 §4.2.1.13)
        builder = builder.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(ca.crl_uri)], relative_name=None, reasons=None, crl_issuer=None)]),
            critical=False)
    return builder.sign(ca.key, hashes.SHA256()), key


def make_crl(ca: Authority, revoked: dict[int, dt.datetime], number: int = 1) -> x509.CertificateRevocationList:
    """A CRL signed by ca listing the revoked serials, with its CRL number (each new CRL a higher one:
    nodes refuse one older than the last they saw) and its nextUpdate (nodes refuse it once past)."""
    now = _now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - dt.timedelta(minutes=5))
        .next_update(now + dt.timedelta(days=CRL_DAYS))
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    for serial, when in sorted(revoked.items()):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    return builder.sign(ca.key, hashes.SHA256())


def credential_verifier(credential: str, salt: bytes | None = None) -> dict:
    """What kizon keeps of an operator's credential: a salt and a hash, never the credential itself."""
    salt = salt or os.urandom(16)
    return {"salt": salt.hex(), "verifier": hashlib.sha256(salt + credential.encode()).hexdigest()}


def credential_matches(entry: dict, credential: str) -> bool:
    """Whether a credential is the one a verifier was made from."""
    made = credential_verifier(credential, bytes.fromhex(entry["salt"]))
    return hmac.compare_digest(made["verifier"], entry["verifier"])


def crl_number(crl: x509.CertificateRevocationList) -> int:
    """The CRL number of a CRL (0 when it has none)."""
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return 0


class PKI:
    """A PKI directory: create it for a topology, issue into it, revoke from it."""

    def __init__(self, root_dir: str | Path):
        self.dir = Path(root_dir)

    # -- paths ---------------------------------------------------------------------------------
    @property
    def trust_bundle(self) -> Path:
        """The root certificate every node and client trusts."""
        return self.dir / "root" / "ca.pem"

    def private_dir(self, domain: str) -> Path:
        """Where a CA's key lives ("root" or a trust domain): read only by the PKI commands."""
        return self.dir / "private" / domain

    def authority(self, domain: str) -> Authority:
        """The issuing CA of a trust domain (or the root), able to sign: for the PKI commands and tests."""
        folder = self.dir / "root" if domain == "root" else self.ca_dir(domain)
        ca = Authority.load(folder, self.private_dir(domain))
        ca.crl_uri = None if domain == "root" else self.crl_uri(domain)
        return ca

    def ca_dir(self, domain: str) -> Path:
        """The folder of a trust domain's issuing CA."""
        return self.dir / "ca" / domain

    def crl_path(self, domain: str) -> Path:
        """The CRL file of a trust domain's issuing CA."""
        return self.ca_dir(domain) / "crl.pem"

    def crl_uri(self, domain: str) -> str:
        """The CRL distribution point of a trust domain's issuing CA: the file: URI of its crl.pem (absolute).

        A file: URI, because the testbed publishes its CRLs as files and nowhere else: every node reads its CRLs from
        this very path (also confined, whose view keeps pki/ca at the same path, and under compose, where every
        container mounts the PKI's ca/ folder at /state/pki/ca, the path `pki init` ran with). An http: point would
        need a CRL server the testbed does not run; the nodes' metrics endpoints answer only their domain's monitor
        over mutual TLS, which no relying party checking revocation could be asked to hold. (RFC 5280 asks a DER CRL
        of an http: or ftp: point; a file: point is the PEM the nodes read.) A PKI folder moved elsewhere keeps the
        old path in its certificates: `pki init --force` writes new ones."""
        return self.crl_path(domain).resolve().as_uri()

    def node_files(self, node_name: str, role: str) -> tuple[Path, Path]:
        """(certificate chain, key) of a node's server or client certificate."""
        folder = self.dir / "nodes" / node_name
        return folder / f"{role}.pem", folder / f"{role}.key"

    def jpki_ca_path(self) -> Path:
        """The JPKI 利用者証明用 CA's certificate (public)."""
        return self.dir / JPKI / "ca.pem"

    def jpki_node_files(self, node_name: str) -> tuple[Path, Path]:
        """(JPKI CA certificate, JPKI CA key) as a node holds them in its own folder (the key: the card system's)."""
        folder = self.dir / "nodes" / node_name
        return folder / "jpki-ca.pem", folder / "jpki-ca.key"

    def jpki_authority(self, create: bool = False) -> Authority:
        """The JPKI CA, able to sign (made, with its certificate published, if asked and missing)."""
        if not self.jpki_ca_path().exists() and create:
            ca = make_jpki_ca()
            ca.save(self.jpki_ca_path().parent, self.private_dir(JPKI))
            return ca
        return Authority.load(self.jpki_ca_path().parent, self.private_dir(JPKI))

    def give_jpki(self, node) -> None:
        """Copy into a node's own folder what it holds of the JPKI CA: the card system the certificate and key (it
        issues), the 証明書交付センター the certificate alone (it verifies); nothing for any other kind."""
        if node.kind not in ("card", "centre"):
            return
        ca = self.jpki_authority(create=True)
        cert_path, key_path = self.jpki_node_files(node.name)
        write_public(cert_path, cert_pem(ca.cert))
        if node.kind == "card":
            write_private(key_path, key_pem(ca.key))  # (unencrypted: the card system reads it unattended)

    def client_files(self, name: str) -> tuple[Path, Path]:
        """(certificate chain, key) of a non-node client: a terminal, 情報提供NWS, a monitor."""
        folder = self.dir / "clients" / name
        return folder / "client.pem", folder / "client.key"

    def bad_files(self, case: str) -> tuple[Path, Path]:
        """(certificate chain, key) of a bad-certificate kit case."""
        folder = self.dir / "bad" / case
        return folder / "client.pem", folder / "client.key"

    def audit_key_path(self, node_name: str) -> Path:
        """The key a node chains its audit log with (HMAC), in the node's own folder."""
        return self.dir / "nodes" / node_name / "audit.key"

    def audit_key(self, node_name: str, create: bool = False) -> bytes:
        """A node's audit key (made now if asked and there is none, for a PKI made before audit keys)."""
        path = self.audit_key_path(node_name)
        if create and not path.exists():
            write_private(path, os.urandom(32))
        return path.read_bytes()

    def session_key_path(self, municipality: str) -> Path:
        """The operator-session signing key of a municipality (its kizon's alone)."""
        return self.dir / "sessions" / f"{municipality}.key"

    def session_signing_key(self, municipality: str, create: bool = False) -> ed25519.Ed25519PrivateKey:
        """The Ed25519 key a municipality's kizon signs sessions with (made, with its public key, if asked and
        missing or of an earlier kind)."""
        path = self.session_key_path(municipality)
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), None)
            if isinstance(key, ed25519.Ed25519PrivateKey):
                return key
        except (OSError, ValueError, TypeError):
            pass
        if not create:
            raise KeyError(f"no session key for {municipality} in {path.parent}")
        key = ed25519.Ed25519PrivateKey.generate()
        write_private(path, key_pem(key))
        self._publish_session_key(municipality, key)
        return key

    def _publish_session_key(self, municipality: str, key: ed25519.Ed25519PrivateKey) -> None:
        write_public(self.session_public_path(municipality), key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    def session_public_path(self, municipality: str) -> Path:
        """Where the public session key of a municipality is published (a folder every node may read)."""
        return self.dir / "sessions" / "public" / f"{municipality}.pub"

    def node_session_key(self, node_name: str, municipality: str) -> ed25519.Ed25519PrivateKey:
        """A kizon's own copy of its municipality's session key (made from the PKI's copy if it is missing)."""
        path = self.dir / "nodes" / node_name / "session.key"
        if not path.exists():
            write_private(path, key_pem(self.session_signing_key(municipality, create=True)))
        return serialization.load_pem_private_key(path.read_bytes(), None)

    def session_public_key(self, municipality: str) -> ed25519.Ed25519PublicKey | None:
        """The public key sessions of a municipality are checked with (None when there is none)."""
        for path in (self.session_public_path(municipality), self.session_key_path(municipality).with_suffix(".pub")):
            try:
                key = serialization.load_pem_public_key(path.read_bytes())
            except (OSError, ValueError):
                continue
            return key if isinstance(key, ed25519.Ed25519PublicKey) else None
        return None

    def operator_verifiers(self, node_name: str, municipality: str, create: bool = False) -> dict:
        """What a kizon keeps of its operators: roles and salted credential hashes (made from the operator
        registry if asked and missing)."""
        path = self.dir / "nodes" / node_name / "operators.json"
        if not path.exists() and create:
            registry = self.operators(municipality)
            write_private(path, json.dumps({op: {"roles": e["roles"], **credential_verifier(e["credential"])}
                                            for op, e in registry.items()}, indent=1).encode())
        return json.loads(path.read_text())

    def operators_path(self, municipality: str) -> Path:
        """The operator registry of a municipality: roles and login credentials."""
        return self.dir / "operators" / f"{municipality}.json"

    def operators(self, municipality: str) -> dict:
        """{operator id: {"roles": [...], "credential": "..."}} of a municipality."""
        return json.loads(self.operators_path(municipality).read_text())

    def exists(self) -> bool:
        """Whether this directory holds an initialised PKI."""
        return (self.dir / "index.json").exists()

    # -- index ---------------------------------------------------------------------------------
    def index(self) -> list[dict]:
        """Every certificate issued here."""
        path = self.dir / "index.json"
        return json.loads(path.read_text()) if path.exists() else []

    def record(self, cert: x509.Certificate, identity: str, domain: str, role: str, cert_path: Path, key_path: Path) -> None:
        """Add a certificate issued outside `init` (e.g. by the probe) to the index, so it can be revoked."""
        self._save_index(self.index() + [{"identity": identity, "serial": str(cert.serial_number), "domain": domain,
                                          "role": role, "cert": str(cert_path), "key": str(key_path)}])

    def _save_index(self, entries: list[dict]) -> None:
        write_public(self.dir / "index.json", json.dumps(entries, indent=1, ensure_ascii=False).encode())

    # -- creation ------------------------------------------------------------------------------
    def init(self, topology, *, force: bool = False, localhost_san: bool = False) -> None:
        """Create the whole PKI for a topology: CAs, CRLs, node, client and bad-kit certificates."""
        if self.exists() and not force:
            raise FileExistsError(f"a PKI already exists in {self.dir} (use --force to replace it)")
        root = make_root()
        (self.dir / "private").mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.dir / "private", 0o700)
        root.save(self.dir / "root", self.private_dir("root"))
        cas = {d: make_issuing_ca(root, d) for d in DOMAINS}
        for domain, ca in cas.items():
            ca.save(self.ca_dir(domain), self.private_dir(domain))
            ca.crl_uri = self.crl_uri(domain)
        entries: list[dict] = []

        def record(cert, key, chain_path: Path, key_path: Path, identity: str, domain: str, role: str, ca=None):
            chain = cert_pem(cert) + (cert_pem(ca.cert) if ca is not None else b"")
            write_public(chain_path, chain)
            write_private(key_path, key_pem(key))
            entries.append({
                "identity": identity, "serial": str(cert.serial_number), "domain": domain, "role": role,
                "cert": str(chain_path.relative_to(self.dir)), "key": str(key_path.relative_to(self.dir)),
            })

        for node in topology.all_nodes:
            self._issue_node(node, cas[KIND_DOMAIN[node.kind]], record, localhost_san)
        make_jpki_ca().save(self.jpki_ca_path().parent, self.private_dir(JPKI))
        for node in topology.all_nodes:
            self.give_jpki(node)

        clients = [(f"terminal-{m.code}-{t}", terminal_uri(m.code, t), LAN) for m in topology.municipalities for t in m.terminals]
        clients += [(f"office-{m.code}-{o}", office_uri(m.code, o), LAN) for m in topology.municipalities for o in OFFICE_SYSTEMS]
        clients += [(kind, platform_uri(kind), PLATFORM) for kind in ("infonws", "portal")]
        clients += [(f"kiosk-{k}", kiosk_uri(k), JUKINET) for k in topology.kiosks]
        if any(n.kind == "moj" for n in topology.all_nodes):
            clients.append(("immigration", IMMIGRATION_URI, JUKINET))  # the 入管 office of 法務省
        clients += [(f"monitor-{d}", monitor_uri(d), d) for d in DOMAINS]
        clients += [(f"console-{d}", console_uri(d), d) for d in DOMAINS]
        for name, identity, domain in clients:
            cert, key = issue_leaf(cas[domain], identity)
            record(cert, key, *self.client_files(name), identity, domain, "client", cas[domain])

        for m in topology.municipalities:
            self.session_signing_key(m.code, create=True)
            registry = {o.id: {"roles": list(o.roles), "credential": os.urandom(16).hex()} for o in m.operators}
            write_private(self.operators_path(m.code), json.dumps(registry, indent=1).encode())
            for node in topology.all_nodes:
                if node.kind == "kizon" and node.municipality == m.code:
                    self.operator_verifiers(node.name, m.code, create=True)
                    self.node_session_key(node.name, m.code)

        revoked = self._issue_bad_kit(topology, cas, record)
        for domain, ca in cas.items():
            write_public(self.crl_path(domain), make_crl(ca, revoked.get(domain, {})).public_bytes(serialization.Encoding.PEM))
        self._save_index(entries)

    def _issue_node(self, node, ca: "Authority", record, localhost_san: bool = False) -> None:
        """A node's server and client certificates and its audit key."""
        domain = KIND_DOMAIN[node.kind]
        # One DNS name per server, which no other server carries ("localhost" only when asked for).
        dns = (node.host_name, "localhost") if localhost_san else (node.host_name,)
        cert, key = issue_leaf(ca, node.identity, server=True, client=False, dns_names=dns)
        record(cert, key, *self.node_files(node.name, "server"), node.identity, domain, "server", ca)
        cert, key = issue_leaf(ca, node.identity, server=False, client=True)
        record(cert, key, *self.node_files(node.name, "client"), node.identity, domain, "client", ca)
        write_private(self.audit_key_path(node.name), os.urandom(32))

    def issue_missing(self, topology) -> list[str]:
        """Issue what a topology names that this PKI lacks (a target site added later): the nodes issued."""
        entries, issued = self.index(), []
        known = {(e["identity"], e["role"]) for e in entries}

        def record(cert, key, chain_path: Path, key_path: Path, identity: str, domain: str, role: str, ca=None):
            write_public(chain_path, cert_pem(cert) + (cert_pem(ca.cert) if ca is not None else b""))
            write_private(key_path, key_pem(key))
            entries.append({"identity": identity, "serial": str(cert.serial_number), "domain": domain, "role": role,
                            "cert": str(chain_path.relative_to(self.dir)), "key": str(key_path.relative_to(self.dir))})

        for m in topology.municipalities:  # a PKI made before public keys had a folder of their own
            if not self.session_public_path(m.code).exists() and self.session_key_path(m.code).exists():
                self._publish_session_key(m.code, self.session_signing_key(m.code))
        for node in topology.all_nodes:
            if node.kind == "kizon" and (self.dir / "nodes" / node.name).exists():
                self.node_session_key(node.name, node.municipality)  # a PKI made before kizon held its own copy
            if node.kind in ("card", "centre") and not self.jpki_node_files(node.name)[0].exists() \
                    and (self.dir / "nodes" / node.name).exists():
                self.give_jpki(node)  # a PKI made before the JPKI CA
            if (node.identity, "server") in known and self.node_files(node.name, "server")[0].exists():
                continue
            self._issue_node(node, self.authority(KIND_DOMAIN[node.kind]), record)
            if node.kind == "kizon":
                self.operator_verifiers(node.name, node.municipality, create=True)
                self.node_session_key(node.name, node.municipality)
            self.give_jpki(node)
            issued.append(node.name)
        if issued:
            self._save_index(entries)
        return issued

    def _issue_bad_kit(self, topology, cas, record) -> dict[str, dict[int, dt.datetime]]:
        """Issue the bad-certificate kit against the first municipality; return serials to revoke."""
        home = topology.municipalities[0].code
        other = next((m.code for m in topology.municipalities if m.code != home), home)
        now = _now()
        revoked: dict[str, dict[int, dt.datetime]] = {}
        lan = cas[LAN]

        def bad(case, ca, identity, domain, **kw):
            cert, key = issue_leaf(ca, identity, **kw)
            record(cert, key, *self.bad_files(case), identity, domain, f"bad:{case}", ca)
            return cert

        terminal = terminal_uri(home, topology.municipalities[0].terminals[0] if topology.municipalities[0].terminals
                                else "T0001")
        bad("expired", lan, kit_uri("expired", terminal), LAN,
            not_before=now - dt.timedelta(days=400), not_after=now - dt.timedelta(days=1))
        bad("not_yet_valid", lan, kit_uri("not_yet_valid", terminal), LAN,
            not_before=now + dt.timedelta(days=30), not_after=now + dt.timedelta(days=400))
        rogue = make_root("Rogue Root CA")
        bad("rogue_ca", rogue, kit_uri("rogue_ca", terminal), "rogue")
        cert = bad("revoked", lan, kit_uri("revoked", terminal), LAN)
        revoked.setdefault(LAN, {})[cert.serial_number] = now
        bad("wrong_domain", cas[PLATFORM], kit_uri("wrong_domain", node_uri("kizon", home)), PLATFORM)
        bad("wrong_municipality", lan, kit_uri("wrong_municipality", terminal_uri(other, "T0001")), LAN)
        bad("wrong_role", lan, kit_uri("wrong_role", node_uri("atena", home)), LAN)
        bad("no_client_auth", lan, kit_uri("no_client_auth", terminal), LAN, server=True, client=False)
        return revoked

    def protect(self) -> list[str]:
        """Encrypt every CA key not yet protected with the passphrase of TESTBED_CA_PASSPHRASE; the domains done."""
        if _passphrase() is None:
            raise PassphraseError(f"set {PASSPHRASE_ENV} to the passphrase to protect the CA keys with")
        done = []
        for domain in ("root", *DOMAINS):
            path = self.private_dir(domain) / "ca.key"
            if not is_protected(path):
                write_private(path, ca_key_pem(load_ca_key(path)))
                done.append(domain)
        return done

    def reissue(self, identity: str) -> list[dict]:
        """A fresh certificate and key for every role of an identity, in the same files; the old ones revoked."""
        entries = self.index()
        current = {}
        for entry in entries:  # the latest certificate of each role of the identity
            if entry["identity"] == identity and entry["domain"] in DOMAINS:
                current[entry["role"]] = entry
        if not current:
            raise KeyError(f"no certificate was issued here for {identity}")
        ca = self.authority(next(iter(current.values()))["domain"])
        old = [int(e["serial"]) for e in current.values()]
        issued = []
        for role, entry in current.items():
            cert_path, key_path = self.dir / entry["cert"], self.dir / entry["key"]
            previous = x509.load_pem_x509_certificate(cert_path.read_bytes())
            try:
                dns = previous.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
                    x509.DNSName)
            except x509.ExtensionNotFound:
                dns = []
            cert, key = issue_leaf(ca, identity, server=role == "server", client=role != "server", dns_names=tuple(dns))
            write_public(cert_path, cert_pem(cert) + cert_pem(ca.cert))
            write_private(key_path, key_pem(key))
            fresh = {**entry, "serial": str(cert.serial_number)}
            entries.append(fresh)
            issued.append(fresh)
        self._save_index(entries)
        for serial in old:
            self.revoke(serial=serial)
        return issued

    def revoked_already(self, identity: str | None = None, serial: int | None = None) -> list[str]:
        """The serials asked for that are all on their CRLs already (empty when any one is not)."""
        entries = [e for e in self.index() if e["domain"] in DOMAINS and
                   (e["identity"] == identity if serial is None else int(e["serial"]) == serial)]
        if not entries:
            raise KeyError(f"no certificate was issued here for {identity if serial is None else f'serial {serial}'}")
        for e in entries:
            crl = x509.load_pem_x509_crl(self.crl_path(e["domain"]).read_bytes())
            if crl.get_revoked_certificate_by_serial_number(int(e["serial"])) is None:
                return []
        return [e["serial"] for e in entries]

    # -- revocation ----------------------------------------------------------------------------
    def revoke(self, identity: str | None = None, serial: int | None = None) -> list[str]:
        """Put every certificate issued for identity (or the one with this serial) on its CA's CRL; return
        the serials revoked."""
        entries = [e for e in self.index() if e["domain"] in DOMAINS and
                   (e["identity"] == identity if serial is None else int(e["serial"]) == serial)]
        if not entries:
            raise KeyError(f"no certificate was issued here for {identity if serial is None else f'serial {serial}'}")
        serials = []
        for domain in sorted({e["domain"] for e in entries}):
            ca = self.authority(domain)
            crl = x509.load_pem_x509_crl(self.crl_path(domain).read_bytes())
            revoked = {r.serial_number: r.revocation_date_utc for r in crl}
            number = crl_number(crl) + 1
            for e in entries:
                if e["domain"] == domain:
                    revoked.setdefault(int(e["serial"]), _now())
                    serials.append(e["serial"])
            write_public(self.crl_path(domain), make_crl(ca, revoked, number).public_bytes(serialization.Encoding.PEM))
        return serials
